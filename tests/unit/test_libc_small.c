/* src/core/libc_small.c cases: printf family, sscanf, gmtime_r/strftime,
 * getopt, getpwnam/getpwuid, qsort. Built only where that module is linked
 * (LIBC_SMALL = y), so these calls reach the small versions. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <grp.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/inotify.h>
#include <sys/utsname.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

/* Called through volatile pointers so that gcc neither computes results at
 * compile time (-fprintf-return-value) nor warns about the edge cases these
 * tests make on purpose; printf argument types are still checked. */
typedef int snprintf_fn(char *, size_t, const char *, ...) __attribute__((format(printf, 3, 4)));
typedef size_t strftime_fn(char *, size_t, const char *, const struct tm *);
static snprintf_fn *volatile snp = snprintf;
static strftime_fn *volatile sft = strftime;

/* snprintf into a 64-byte buffer; checks the text and the return value. */
#define FMT(want, ...) do { \
	char b_[64]; \
	int r_ = snp(b_, sizeof(b_), __VA_ARGS__); \
	CHECK(r_ == (int)strlen(want) && strcmp(b_, want) == 0, \
	      "%s: got \"%s\" (%d), want \"%s\"", #__VA_ARGS__, b_, r_, want); \
} while (0)

static void test_printf(void)
{
	char b[8];
	const char *nul = NULL;

	FMT("plain", "plain");
	FMT("100%", "100%%");
	FMT("a=abc.", "a=%s.", "abc");
	FMT("[  abc]", "[%5s]", "abc");
	FMT("[abc  ]", "[%-5s]", "abc");
	FMT("[ab]", "[%.2s]", "abcdef");
	FMT("[abc]", "[%.*s]", 3, "abcdef");
	FMT("[ab]", "[%.*s]", 2, "ab\0cd");
	FMT("[   ]", "[%*s]", 3, "");
	FMT("[x  ]", "[%*s]", -3, "x");
	FMT("[abcdef]", "[%.*s]", -1, "abcdef");
	FMT("[(null)]", "[%s]", nul);
	FMT("[abcdefghijklmnopqrstuvwx               ]", "[%-39s]", "abcdefghijklmnopqrstuvwx");
	FMT("0 -1 42 2147483647 -2147483648", "%d %d %i %d %d", 0, -1, 42, INT_MAX, INT_MIN);
	FMT("4294967295 0", "%u %u", UINT_MAX, 0u);
	FMT("-9223372036854775808 9223372036854775807", "%lld %lld", LLONG_MIN, LLONG_MAX);
	FMT("18446744073709551615", "%llu", ULLONG_MAX);
	FMT("-5 123456789", "%ld %lu", -5L, 123456789UL);
	FMT("12345 -7", "%zu %zd", (size_t)12345, (ssize_t)-7);
	FMT("-1 255 -2 65535", "%hhd %hhu %hd %hu", -1, 255, -2, 65535);
	FMT("-1 99", "%jd %td", (intmax_t)-1, (ptrdiff_t)99);
	FMT("ff FF 0a 00ff 0xff 0XFF 0", "%x %X %02x %04x %#x %#X %#x", 255u, 255u, 10u, 255u, 255u, 255u, 0u);
	FMT("deadbeefcafe", "%llx", 0xdeadbeefcafeULL);
	FMT("17 017 0", "%o %#o %#o", 15u, 15u, 0u);
	FMT("[   42] [42   ] [00042] [-0042] [  -42]", "[%5d] [%-5d] [%05d] [%05d] [%5d]", 42, 42, 42, -42, -42);
	FMT("[+42] [ 42] [+0]", "[%+d] [% d] [%+d]", 42, 42, 0);
	FMT("[  007] [] [00042]", "[%5.3d] [%.0d] [%.5u]", 7, 0, 42u);
	FMT("000001 123456 1234567", "%06ld %06ld %06ld", 1L, 123456L, 1234567L);
	FMT("[       5]", "[%8lld]", 5LL);
	FMT("[ab]", "[%c%c]", 'a', 'b');
	FMT("[  x]", "[%3c]", 'x');
	FMT("0x1234", "%p", (void *)0x1234);
	FMT("%g -> %f!", "%g -> %f!", 1.5, 2.5);     /* floats: not supported */

	/* Truncation: always NUL-terminated, the return value is the full length. */
	CHECK(snp(b, sizeof(b), "%s", "0123456789") == 10 && strcmp(b, "0123456") == 0, "cut");
	CHECK(snp(b, 1, "%d", 12345) == 5 && b[0] == '\0', "n = 1");
	b[0] = 'z';
	CHECK(snp(b, 0, "%d", 12345) == 5 && b[0] == 'z', "n = 0");
	CHECK(snp(NULL, 0, "%s-%u", "abc", 12u) == 6, "size query");
	CHECK(snp(b, sizeof(b), "%5s|", "ab") == 6 && strcmp(b, "   ab|") == 0, "fits");

	/* dprintf through an fd: long output (over the 128-byte chunk) is
	 * not cut, order with other writes is kept. */
	{
		int fd = memfd_create("dprintf", MFD_CLOEXEC);
		char big[700], line[1600];
		ssize_t got;
		memset(big, 'q', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		CHECK(fd >= 0, "memfd");
		if (fd >= 0) {
			CHECK(write(fd, "A", 1) == 1, "write");
			int r = dprintf(fd, "<%s|%s>", big, big);
			CHECK(write(fd, "Z\n", 2) == 2, "write");
			got = pread(fd, line, sizeof(line) - 1, 0);
			line[got > 0 ? got : 0] = '\0';
			CHECK(r == 2 * 699 + 3, "dprintf length %d", r);
			CHECK(strlen(line) == 2 * 699 + 6 && line[0] == 'A' && line[1] == '<' &&
			      line[701] == '|' && strcmp(line + 2 * 699 + 3, ">Z\n") == 0,
			      "dprintf content");
			close(fd);
		}
		CHECK(dprintf(-1, "x%d", 1) == -1, "dprintf to a bad fd fails");
	}
}

static void test_sscanf(void)
{
	long long a = 0, b = 0;
	int n = 0, idx = 0, off = -1;
	char st = 0, s1[24], s2[8], addr[257];

	CHECK(sscanf("A 1234567890123", "A %lld", &a) == 1 && a == 1234567890123LL, "A");
	CHECK(sscanf("N 3 -17", "N %lld %lld", &a, &b) == 2 && a == 3 && b == -17, "N");
	CHECK(sscanf("N 3 x", "N %d %lld", &n, &b) == 1 && n == 3, "N partial");
	CHECK(sscanf("B 3", "A %lld", &a) == 0, "literal mismatch");
	CHECK(sscanf("", "A %lld", &a) == EOF, "empty is EOF");
	CHECK(sscanf("A ", "A %lld", &a) == EOF, "input ends before conversion");
	CHECK(sscanf("S 2 D 250-2.0.0 rest of line", "S %d %c %23s %n", &idx, &st, s1, &off) == 3 &&
	      idx == 2 && st == 'D' && strcmp(s1, "250-2.0.0") == 0 && off == 16, "S line %d", off);
	CHECK(sscanf("S P user@example.org 4.4.1 why", "S %c %256s %7s %n", &st, addr, s2, &off) == 3 &&
	      st == 'P' && strcmp(addr, "user@example.org") == 0 && strcmp(s2, "4.4.1") == 0 &&
	      off == 27, "queue S line %d", off);
	CHECK(sscanf("S P a 12345678901", "S %c %256s %7s %n", &st, addr, s2, &off) == 3 &&
	      strcmp(s2, "1234567") == 0, "width cut");
	CHECK(sscanf("S P a", "S %c %256s %7s %n", &st, addr, s2, &off) == 2, "missing field");
	CHECK(sscanf("99999999999999999999", "%lld", &a) == 1 && a == LLONG_MAX, "saturates");
	CHECK(sscanf("-99999999999999999999", "%lld", &a) == 1 && a == LLONG_MIN, "saturates neg");
	CHECK(sscanf("ff 0x10 7", "%x %x %*d %n", (unsigned *)&n, (unsigned *)&idx, &off) == 2 &&
	      n == 255 && idx == 16 && off == 9, "hex, suppressed");
	CHECK(sscanf("5%x", "%d%%x", &n) == 1 && n == 5, "%%%%");
}

static void test_time(void)
{
	static const struct { long long t; const char *want; int yday, wday; } cases[] = {
		{ 0, "Thu, 01 Jan 1970 00:00:00 +0000", 0, 4 },
		{ 951782400, "Tue, 29 Feb 2000 00:00:00 +0000", 59, 2 },
		{ 978307199, "Sun, 31 Dec 2000 23:59:59 +0000", 365, 0 },
		{ 1709251199, "Thu, 29 Feb 2024 23:59:59 +0000", 59, 4 },
		{ 1735689600, "Wed, 01 Jan 2025 00:00:00 +0000", 0, 3 },
		{ 4107542400LL, "Mon, 01 Mar 2100 00:00:00 +0000", 59, 1 },
		{ 2147483647LL, "Tue, 19 Jan 2038 03:14:07 +0000", 18, 2 },
		{ 2147483648LL, "Tue, 19 Jan 2038 03:14:08 +0000", 18, 2 },
		{ -1, "Wed, 31 Dec 1969 23:59:59 +0000", 364, 3 },
		{ -2208988800LL, "Mon, 01 Jan 1900 00:00:00 +0000", 0, 1 },
		{ -62135596800LL, "Mon, 01 Jan 1 00:00:00 +0000", 0, 1 },
		{ 253402300799LL, "Fri, 31 Dec 9999 23:59:59 +0000", 364, 5 },
	};
	char b[64];
	struct tm tm;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		time_t t = (time_t)cases[i].t;
		if ((long long)t != cases[i].t)
			continue;       /* 32-bit time_t */
		memset(&tm, 0x55, sizeof(tm));
		CHECK(gmtime_r(&t, &tm) == &tm, "gmtime_r %lld", cases[i].t);
		size_t n = sft(b, sizeof(b), "%a, %d %b %Y %H:%M:%S %z", &tm);
		CHECK(n == strlen(cases[i].want) && strcmp(b, cases[i].want) == 0 &&
		      tm.tm_yday == cases[i].yday && tm.tm_wday == cases[i].wday && tm.tm_isdst == 0,
		      "%lld: \"%s\" yday %d wday %d", cases[i].t, b, tm.tm_yday, tm.tm_wday);
		struct tm lt;
		CHECK(localtime_r(&t, &lt) == &lt && lt.tm_year == tm.tm_year &&
		      lt.tm_yday == tm.tm_yday && lt.tm_hour == tm.tm_hour && lt.tm_sec == tm.tm_sec &&
		      lt.tm_gmtoff == 0, "localtime_r = gmtime_r");
	}
	/* Every day of 1900..2100 against a naive day counter. */
	{
		static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		long long days = -25567;        /* 1900-01-01 */
		int bad = 0;
		for (int y = 1900; y <= 2100 && !bad; y++) {
			int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
			int yday = 0;
			for (int m = 0; m < 12 && !bad; m++) {
				int nd = mdays[m] + (m == 1 && leap);
				for (int d = 1; d <= nd; d++, days++, yday++) {
					time_t t = (time_t)(days * 86400 + 45296);      /* 12:34:56 */
					if (!gmtime_r(&t, &tm) || tm.tm_year != y - 1900 || tm.tm_mon != m ||
					    tm.tm_mday != d || tm.tm_yday != yday || tm.tm_hour != 12 ||
					    tm.tm_min != 34 || tm.tm_sec != 56 ||
					    tm.tm_wday != (int)(((days % 7) + 11) % 7)) {
						bad = 1;
						CHECK(0, "day %lld: %d-%d-%d", days, y, m + 1, d);
						break;
					}
				}
			}
		}
		CHECK(!bad, "1900..2100");
	}
	if (sizeof(time_t) > 4) {
		time_t t = (time_t)INT64_MAX;
		errno = 0;
		CHECK(gmtime_r(&t, &tm) == NULL && errno == EOVERFLOW, "year overflow");
	}

	time_t t = 1234567890;  /* Fri Feb 13 23:31:30 2009 */
	gmtime_r(&t, &tm);
	CHECK(sft(b, sizeof(b), "%a %b %e %H:%M:%S %Y", &tm) == 24 &&
	      strcmp(b, "Fri Feb 13 23:31:30 2009") == 0, "mbox From_: %s", b);
	t = 1233619200;         /* Tue Feb  3 00:00:00 2009 */
	gmtime_r(&t, &tm);
	CHECK(sft(b, sizeof(b), "%a %b %e %H:%M:%S %Y", &tm) == 24 &&
	      strcmp(b, "Tue Feb  3 00:00:00 2009") == 0, "%%e pads: %s", b);
	CHECK(sft(b, sizeof(b), "%a %b %d %H:%M:%S", &tm) > 0 &&
	      strcmp(b, "Tue Feb 03 00:00:00") == 0, "mailq: %s", b);
	{
		CHECK(sft(b, sizeof(b), "%m/%y %j %T %F %D %R %Z %% %Q%t%n", &tm) > 0 &&
		      strcmp(b, "02/09 034 00:00:00 2009-02-03 02/03/09 00:00 UTC % %Q\t\n") == 0,
		      "misc: %s", b);
	}
	tm.tm_gmtoff = -(5 * 3600 + 30 * 60);
	CHECK(sft(b, sizeof(b), "%z", &tm) == 5 && strcmp(b, "-0530") == 0, "%%z: %s", b);
	tm.tm_gmtoff = 3600;
	CHECK(sft(b, sizeof(b), "%z", &tm) == 5 && strcmp(b, "+0100") == 0, "%%z: %s", b);
	/* Too small: 0. Exactly enough (with the NUL): the length. */
	CHECK(sft(b, 5, "%Y%m", &tm) == 0, "too small");
	CHECK(sft(b, 7, "%Y%m", &tm) == 6 && strcmp(b, "200902") == 0, "exact");
	CHECK(sft(b, 6, "%Y%m", &tm) == 0, "no room for NUL");
	CHECK(sft(b, 1, "", &tm) == 0 && b[0] == '\0', "empty");
}

static void test_getopt(void)
{
	char p[] = "postie", c[] = "-c", cf[] = "/etc/p.conf", t[] = "-t", tv[] = "-tV",
	     cx[] = "-cx.conf", dd[] = "--", rest[] = "file", q[] = "-q", dash[] = "-";
	int r1, r2, r3;

	{
		char *argv[] = { p, c, cf, tv, rest, NULL };
		optind = 0;
		opterr = 0;
		r1 = getopt(5, argv, "c:tVh");
		CHECK(r1 == 'c' && optarg == argv[2] && optind == 3, "-c arg");
		r1 = getopt(5, argv, "c:tVh");
		r2 = getopt(5, argv, "c:tVh");
		r3 = getopt(5, argv, "c:tVh");
		CHECK(r1 == 't' && r2 == 'V' && r3 == -1 && optind == 4, "group then operand %d", optind);
	}
	{
		char *argv[] = { p, cx, t, dd, t, NULL };
		optind = 0;
		r1 = getopt(5, argv, "c:tVh");
		CHECK(r1 == 'c' && strcmp(optarg, "x.conf") == 0 && optind == 2, "-cVALUE");
		r1 = getopt(5, argv, "c:tVh");
		r2 = getopt(5, argv, "c:tVh");
		CHECK(r1 == 't' && r2 == -1 && optind == 4, "-- ends options, optind %d", optind);
	}
	{
		char *argv[] = { p, q, c, NULL };
		optind = 0;
		r1 = getopt(3, argv, "c:tVh");
		CHECK(r1 == '?' && optopt == 'q', "unknown");
		r1 = getopt(3, argv, "c:tVh");
		CHECK(r1 == '?' && optopt == 'c' && optind == 3, "missing arg");
		optind = 2;
		r1 = getopt(3, argv, ":c:tVh");
		CHECK(r1 == ':' && optopt == 'c', "missing arg with ':'");
	}
	{
		char *argv[] = { p, dash, t, NULL };
		optind = 0;
		CHECK(getopt(3, argv, "t") == -1 && optind == 1, "'-' is an operand");
	}
	optind = 1;
	opterr = 1;
}

static void test_passwd(void)
{
	struct passwd *pw = getpwnam("root");
	CHECK(pw && pw->pw_uid == 0 && pw->pw_gid == 0 && strcmp(pw->pw_name, "root") == 0 &&
	      pw->pw_dir[0] == '/' && pw->pw_shell[0] == '/', "getpwnam root");
	pw = getpwuid(0);
	CHECK(pw && strcmp(pw->pw_name, "root") == 0, "getpwuid 0");
	errno = 0;
	CHECK(getpwnam("no-such-user-postie") == NULL && errno == 0, "not found");
	CHECK(getpwnam("roo") == NULL && getpwnam("") == NULL, "prefix, empty");
}

/* strtol family: bases, prefixes, signs, saturation, the end pointer. */
static void test_strto(void)
{
	static const struct {
		const char *in;
		int base;
		long long want;
		int end, range;         /* bytes taken; ERANGE expected */
	} ll[] = {
		{ "0", 10, 0, 1, 0 }, { "  -42x", 10, -42, 5, 0 }, { "+7", 10, 7, 2, 0 },
		{ "0x1F", 0, 31, 4, 0 }, { "0X1f", 16, 31, 4, 0 }, { "1f", 16, 31, 2, 0 },
		{ "0x", 0, 0, 1, 0 }, { "0xg", 16, 0, 1, 0 }, { "017", 0, 15, 3, 0 },
		{ "019", 0, 1, 2, 0 }, { "z", 36, 35, 1, 0 }, { "101", 2, 5, 3, 0 },
		{ "", 10, 0, 0, 0 }, { " - 1", 10, 0, 0, 0 }, { "abc", 10, 0, 0, 0 },
		{ "9223372036854775807", 10, LLONG_MAX, 19, 0 },
		{ "9223372036854775808", 10, LLONG_MAX, 19, 1 },
		{ "-9223372036854775808", 10, LLONG_MIN, 20, 0 },
		{ "-9223372036854775809", 10, LLONG_MIN, 20, 1 },
		{ "99999999999999999999999", 10, LLONG_MAX, 23, 1 },
	};
	char *end;

	for (size_t i = 0; i < sizeof(ll) / sizeof(ll[0]); i++) {
		errno = 0;
		long long v = strtoll(ll[i].in, &end, ll[i].base);
		CHECK(v == ll[i].want && end == ll[i].in + ll[i].end &&
		      (errno == ERANGE) == ll[i].range, "strtoll(\"%s\", %d) = %lld, end %d",
		      ll[i].in, ll[i].base, v, (int)(end - ll[i].in));
	}
	errno = 0;
	CHECK(strtoull("18446744073709551615", &end, 10) == ULLONG_MAX && errno == 0 &&
	      *end == '\0', "strtoull max");
	CHECK(strtoull("18446744073709551616", NULL, 10) == ULLONG_MAX && errno == ERANGE,
	      "strtoull over");
	errno = 0;
	CHECK(strtoull("-1", NULL, 10) == ULLONG_MAX && errno == 0, "strtoull -1");
	CHECK(strtoul("-1", NULL, 10) == ULONG_MAX, "strtoul -1");
	errno = 0;
	CHECK(strtol("2147483647", NULL, 10) == 2147483647L && errno == 0, "strtol int max");
	if (sizeof(long) == 4) {
		CHECK(strtol("2147483648", NULL, 10) == LONG_MAX && errno == ERANGE, "strtol over");
		errno = 0;
		CHECK(strtol("-2147483648", NULL, 10) == LONG_MIN && errno == 0, "strtol min");
		CHECK(strtoul("4294967296", NULL, 10) == ULONG_MAX && errno == ERANGE,
		      "strtoul over");
	}
	errno = 0;
	CHECK(strtol("5", &end, 1) == 0 && errno == EINVAL, "bad base");
	CHECK(strtoimax("-12", NULL, 10) == -12 && strtoumax("12", NULL, 0) == 12, "imax");
}

/* assert() in the libraries: one line on stderr, then abort. */
_Noreturn void __assert_fail(const char *expr, const char *file, int line,
			     const char *func);

static void test_assert(void)
{
	char got[256] = "";
	int fd = memfd_create("assert", MFD_CLOEXEC), st = 0;
	pid_t pid;

	if (fd < 0)
		return;
	pid = fork();
	if (pid == 0) {
		dup2(fd, 2);
		__assert_fail("n > 0", "x.c", 12, "f");
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
	      WTERMSIG(st) == SIGABRT, "aborts (status %d)", st);
	/* Only the first line: qemu-user adds its own about the signal. */
	CHECK(pread(fd, got, sizeof(got) - 1, 0) > 0 &&
	      strncmp(got, "Assertion failed: n > 0 (x.c: f: 12)\n", 37) == 0, "line: %s", got);
	close(fd);
}

/* setgroups/setgid/setuid are raw system calls (setgroups32 and the like
 * on 32-bit ARM): drop to 100000 (over 16 bits) in a child, as root only. */
static void test_setid(void)
{
	pid_t pid;
	int st = -1;

	if (geteuid() != 0)
		return;
	pid = fork();
	if (pid == 0) {
		gid_t g[1];
		if (setgroups(0, NULL) != 0 || getgroups(1, g) != 0)
			_exit(1);
		if (setgid(100000) != 0 || getgid() != 100000 || getegid() != 100000)
			_exit(2);
		if (setuid(100000) != 0 || getuid() != 100000 || geteuid() != 100000)
			_exit(3);
		if (setuid(0) == 0 || errno != EPERM)
			_exit(4);
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "setgroups/setgid/setuid: child status %d", st);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

struct rec { char key[5]; short v; };

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->key, ((const struct rec *)b)->key);
}

static void test_qsort(void)
{
	static int v[1000];
	unsigned seed = 12345;
	int ok;

	for (int n = 0; n <= 1000; n = n ? n * 3 + 1 : 1) {
		long long sum = 0, sum2 = 0;
		for (int i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			v[i] = (int)(seed >> 8) % (n / 2 + 1) - n / 4;   /* duplicates, negatives */
			sum += v[i];
		}
		qsort(v, (size_t)n, sizeof(v[0]), cmp_int);
		ok = 1;
		for (int i = 0; i < n; i++) {
			sum2 += v[i];
			if (i && v[i - 1] > v[i])
				ok = 0;
		}
		CHECK(ok && sum == sum2, "qsort n=%d", n);
	}
	{
		struct rec r[] = { { "d", 4 }, { "a", 1 }, { "c", 3 }, { "e", 5 }, { "b", 2 } };
		qsort(r, 5, sizeof(r[0]), cmp_rec);
		ok = 1;
		for (int i = 0; i < 5; i++)
			ok &= r[i].v == i + 1 && r[i].key[0] == 'a' + i;
		CHECK(ok, "qsort 7-byte records");
	}
	{
		/* Stable: equal keys keep their order (aliases report the later
		 * of two duplicates). */
		static struct rec r[300];
		for (int i = 0; i < 300; i++) {
			seed = seed * 1103515245 + 12345;
			r[i].key[0] = (char)('a' + (seed >> 16) % 5);
			r[i].key[1] = '\0';
			r[i].v = (short)i;
		}
		qsort(r, 300, sizeof(r[0]), cmp_rec);
		ok = 1;
		for (int i = 1; i < 300; i++)
			ok &= r[i - 1].key[0] < r[i].key[0] ||
			      (r[i - 1].key[0] == r[i].key[0] && r[i - 1].v < r[i].v);
		CHECK(ok, "qsort stable");
	}
}

static void test_faccessat(void)
{
	errno = 0;
	CHECK(faccessat(AT_FDCWD, "/nonexistent/postie", F_OK, AT_EACCESS) == -1 &&
	      errno == ENOENT, "faccessat missing: %d", errno);
	CHECK(faccessat(AT_FDCWD, "/", R_OK | X_OK, AT_EACCESS) == 0, "faccessat /");
	CHECK(faccessat(AT_FDCWD, "/", X_OK, 0) == 0, "faccessat / no flags");
	{
		int fd = open(".", O_RDONLY | O_DIRECTORY);
		CHECK(fd >= 0 && faccessat(fd, ".", F_OK, AT_EACCESS) == 0, "faccessat dirfd");
		if (fd >= 0)
			close(fd);
	}
}

/* The allocator: blocks of every size class and mappings of their own,
 * filled with a pattern and checked before they are freed (an overlap of
 * two live blocks shows as a broken pattern), in a shuffled order; realloc
 * keeps the contents; calloc zeroes a reused block; alignment. */
static unsigned char pat(size_t id, size_t i)
{
	return (unsigned char)(id * 131 + i * 7 + 1);
}

static void test_malloc(void)
{
	enum { N = 400 };
	static unsigned char *p[N];
	static size_t len[N];
	unsigned seed = 777;
	int ok = 1, aligned = 1;

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < N; i++) {
			seed = seed * 1103515245 + 12345;
			/* Mostly small, some around the class edges, a few large. */
			len[i] = (seed >> 8) % 8 == 0 ? (seed >> 4) % 70000 : (seed >> 8) % 600;
			if (i % 50 == 0)
				len[i] = ((size_t)1 << (i / 50 % 15)) - sizeof(max_align_t);
			if (len[i] > 100000)
				len[i] = 0;
			p[i] = malloc(len[i]);
			if (!p[i]) {
				ok = 0;
				continue;
			}
			aligned &= (uintptr_t)p[i] % _Alignof(max_align_t) == 0;
			for (size_t k = 0; k < len[i]; k++)
				p[i][k] = pat(i, k);
		}
		/* Free every other block, grow the rest. */
		for (size_t i = 0; i < N; i += 2) {
			for (size_t k = 0; p[i] && k < len[i]; k++)
				ok &= p[i][k] == pat(i, k);
			free(p[i]);
			p[i] = NULL;
		}
		for (size_t i = 1; i < N; i += 2) {
			size_t n = len[i] * 2 + 3;
			unsigned char *q = realloc(p[i], n);
			if (!q) {
				ok = 0;
				continue;
			}
			for (size_t k = 0; k < len[i]; k++)
				ok &= q[k] == pat(i, k);
			for (size_t k = len[i]; k < n; k++)
				q[k] = pat(i, k);
			p[i] = q;
			len[i] = n;
		}
		for (size_t i = 0; i < N; i += 2) {
			len[i] = i % 7 * 100 + 5;
			p[i] = calloc(len[i], 1);
			if (!p[i]) {
				ok = 0;
				continue;
			}
			for (size_t k = 0; k < len[i]; k++) {
				ok &= p[i][k] == 0;
				p[i][k] = pat(i, k);
			}
		}
		for (size_t j = 0; j < N; j++) {
			size_t i = (j * 37) % N;        /* 37 is prime to N */
			for (size_t k = 0; p[i] && k < len[i]; k++)
				ok &= p[i][k] == pat(i, k);
			free(p[i]);
			p[i] = NULL;
		}
	}
	CHECK(ok, "malloc/realloc/calloc/free keep every block's bytes");
	CHECK(aligned, "malloc alignment");
	free(NULL);
	errno = 0;
	{
		volatile size_t huge = SIZE_MAX - 8;
		CHECK(malloc(huge) == NULL && errno == ENOMEM, "malloc huge");
	}
	errno = 0;
	{
		volatile size_t half = SIZE_MAX / 2;
		CHECK(calloc(half, 4) == NULL && errno == ENOMEM, "calloc overflow");
	}
	{
		char *a = realloc(NULL, 10), *b;
		CHECK(a != NULL, "realloc(NULL)");
		memcpy(a, "abcdefghi", 10);
		b = realloc(a, 5);             /* shrink: same block */
		CHECK(b == a && memcmp(b, "abcde", 5) == 0, "realloc shrink");
		free(b);
	}
}

static void test_strerror(void)
{
	CHECK(strcmp(strerror(EPERM), "Operation not permitted") == 0, "EPERM");
	CHECK(strcmp(strerror(ENOENT), "No such file or directory") == 0, "ENOENT");
	CHECK(strcmp(strerror(EACCES), "Permission denied") == 0, "EACCES");
	CHECK(strcmp(strerror(ENOSPC), "No space left on device") == 0, "ENOSPC");
	CHECK(strcmp(strerror(EDQUOT), "Quota exceeded") == 0, "EDQUOT");
	CHECK(strcmp(strerror(ECONNREFUSED), "Connection refused") == 0, "ECONNREFUSED");
	CHECK(strcmp(strerror(ECANCELED), "Operation canceled") == 0, "ECANCELED (the last)");
	CHECK(strcmp(strerror(0), "error 0") == 0, "0: %s", strerror(0));
	CHECK(strcmp(strerror(-5), "error -5") == 0, "-5: %s", strerror(-5));
}

static void test_inet(void)
{
	static const struct {
		const char *in;
		int ok;
		const char *out;        /* inet_ntop's text when ok */
	} v6[] = {
		{ "::1", 1, "::1" },
		{ "::", 1, "::" },
		{ "1::", 1, "1::" },
		{ "2001:db8::1", 1, "2001:db8::1" },
		{ "2001:DB8:0:0:1:0:0:1", 1, "2001:db8::1:0:0:1" },
		{ "1:2:3:4:5:6:7:8", 1, "1:2:3:4:5:6:7:8" },
		{ "1:0:3:4:5:6:7:8", 1, "1:0:3:4:5:6:7:8" },
		{ "1:2:3:4:5:6:7::", 1, "1:2:3:4:5:6:7:0" },
		{ "::ffff:192.0.2.1", 1, "::ffff:192.0.2.1" },
		{ "64:ff9b::192.0.2.33", 1, "64:ff9b::c000:221" },
		{ "fe80::0:0:1", 1, "fe80::1" },
		{ ":1", 0, NULL },
		{ "1:", 0, NULL },
		{ "1:::2", 0, NULL },
		{ "1::2::3", 0, NULL },
		{ "1:2:3:4:5:6:7:8:9", 0, NULL },
		{ "1:2:3:4:5:6:7:8::", 0, NULL },
		{ "1:2:3:4:5:6:7", 0, NULL },
		{ "12345::", 0, NULL },
		{ "g::", 0, NULL },
		{ "::1.2.3", 0, NULL },
		{ "1:2:3:4:5:6:7:1.2.3.4", 0, NULL },
		{ "", 0, NULL },
	};
	static const struct {
		const char *in;
		int ok;
	} v4[] = {
		{ "127.0.0.1", 1 }, { "255.255.255.255", 1 }, { "0.0.0.0", 1 },
		{ "256.0.0.1", 0 }, { "1.2.3", 0 }, { "1.2.3.4.5", 0 }, { "01.2.3.4", 0 },
		{ "1.2.3.4 ", 0 }, { "", 0 }, { "1..2.3", 0 }, { "a.b.c.d", 0 },
	};
	unsigned char a[16];
	char text[48];

	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		int r = inet_pton(AF_INET6, v6[i].in, a);
		CHECK(r == v6[i].ok, "inet_pton6 %s: %d", v6[i].in, r);
		if (r == 1 && v6[i].out) {
			const char *t = inet_ntop(AF_INET6, a, text, sizeof(text));
			CHECK(t && strcmp(t, v6[i].out) == 0, "inet_ntop6 %s: %s", v6[i].in,
			      t ? t : "NULL");
		}
	}
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		int r = inet_pton(AF_INET, v4[i].in, a);
		CHECK(r == v4[i].ok, "inet_pton4 %s: %d", v4[i].in, r);
		if (r == 1) {
			const char *t = inet_ntop(AF_INET, a, text, sizeof(text));
			CHECK(t && strcmp(t, v4[i].in) == 0, "inet_ntop4 %s", v4[i].in);
		}
	}
	inet_pton(AF_INET6, "2001:db8::1", a);
	errno = 0;
	CHECK(inet_ntop(AF_INET6, a, text, 11) == NULL && errno == ENOSPC, "ntop short");
	CHECK(inet_ntop(AF_INET6, a, text, 12) != NULL, "ntop exact");
	CHECK(inet_pton(12345, "1.2.3.4", a) == -1 && errno == EAFNOSUPPORT, "pton family");
}

static void test_strstr(void)
{
	const char *h = "250-AUTH LOGIN PLAIN ";
	CHECK(strstr(h, " PLAIN ") == h + 14, "strstr");
	CHECK(strstr(h, " CRAM ") == NULL, "strstr absent");
	CHECK(strstr(h, "") == h, "strstr empty needle");
	CHECK(strstr("", "") != NULL && strstr("", "a") == NULL, "strstr empty haystack");
	CHECK(strstr("aaab", "aab") != NULL, "strstr overlap");
	CHECK(strstr("ab", "abc") == NULL, "strstr longer needle");
}

/* abort() in a child: it dies of SIGABRT even with a handler set and the
 * signal blocked. */
static void on_abrt(int sig)
{
	(void)sig;
	_exit(3);
}

static void test_abort(void)
{
	pid_t pid = fork();
	int st = 0;

	if (pid == 0) {
		sigset_t set;
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		signal(SIGABRT, on_abrt);
		sigemptyset(&set);
		sigaddset(&set, SIGABRT);
		sigprocmask(SIG_BLOCK, &set, NULL);
		abort();
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
	      WTERMSIG(st) == SIGABRT, "abort: status %#x", st);
}

/* ---- fstatat: stat, fstat, lstat ---- */

/* Every field postie reads, against what the test set: size, mode, a
 * 64-bit mtime with nanoseconds (after 2038), nlink, uid/gid, ino (as
 * readdir sees it), dev (the directory's), a symlink through lstat. */
static void test_stat(void)
{
	const char *t = getenv("TMPDIR");
	char dir[256], file[300], link2[300], sym[300];
	struct timespec when[2] = { { 4102444800LL + 7, 123456789 }, { 1000000000, 5 } };
	struct stat a, b, c, d, ds;
	ino_t dino = 0;
	DIR *dp;
	struct dirent *de;
	int fd;

	snprintf(dir, sizeof(dir), "%s/postie-stat-XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp %s: %s", dir, strerror(errno));
		return;
	}
	snprintf(file, sizeof(file), "%s/f", dir);
	snprintf(link2, sizeof(link2), "%s/g", dir);
	snprintf(sym, sizeof(sym), "%s/s", dir);
	fd = open(file, O_CREAT | O_WRONLY | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, "0123456789abc", 13) == 13 && fchmod(fd, 0641) == 0 &&
	      futimens(fd, (struct timespec[2]){ when[1], when[0] }) == 0,
	      "stat: set up %s", file);
	CHECK(link(file, link2) == 0 && symlink("f", sym) == 0, "stat: links");
	CHECK(fstat(fd, &a) == 0 && stat(file, &b) == 0 && lstat(file, &c) == 0 &&
	      fstatat(AT_FDCWD, link2, &d, 0) == 0 && stat(dir, &ds) == 0, "stat calls");
	CHECK(a.st_size == 13 && a.st_mode == (S_IFREG | 0641) && a.st_nlink == 2 &&
	      a.st_uid == getuid() && a.st_gid == getegid() &&
	      a.st_mtim.tv_sec == when[0].tv_sec && a.st_mtim.tv_nsec == when[0].tv_nsec &&
	      a.st_mtime == when[0].tv_sec &&
	      a.st_atim.tv_sec == when[1].tv_sec && a.st_atim.tv_nsec == when[1].tv_nsec &&
	      a.st_ctim.tv_sec > 1600000000 && a.st_dev == ds.st_dev && a.st_blksize > 0,
	      "fstat: size %lld mode %o nlink %ld uid %ld mtime %lld.%09ld",
	      (long long)a.st_size, (unsigned)a.st_mode, (long)a.st_nlink, (long)a.st_uid,
	      (long long)a.st_mtim.tv_sec, (long)a.st_mtim.tv_nsec);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0 && memcmp(&a, &c, sizeof(a)) == 0 &&
	      memcmp(&a, &d, sizeof(a)) == 0, "stat, lstat, fstatat and fstat differ");
	CHECK(S_ISDIR(ds.st_mode) && ds.st_mode == (S_IFDIR | 0700) && ds.st_nlink == 2,
	      "stat dir: mode %o nlink %ld", (unsigned)ds.st_mode, (long)ds.st_nlink);
	CHECK(lstat(sym, &c) == 0 && S_ISLNK(c.st_mode) && c.st_size == 1 && c.st_ino != a.st_ino &&
	      stat(sym, &d) == 0 && d.st_ino == a.st_ino, "lstat symlink");
	CHECK(fstatat(AT_FDCWD, sym, &c, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(c.st_mode),
	      "fstatat AT_SYMLINK_NOFOLLOW");
	dp = opendir(dir);
	while (dp && (de = readdir(dp)))
		if (strcmp(de->d_name, "f") == 0)
			dino = de->d_ino;
	if (dp)
		closedir(dp);
	CHECK(dino && dino == a.st_ino, "st_ino %llu, readdir %llu",
	      (unsigned long long)a.st_ino, (unsigned long long)dino);
	{
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		CHECK(dfd >= 0 && fstatat(dfd, "g", &c, 0) == 0 && memcmp(&a, &c, sizeof(a)) == 0,
		      "fstatat with a directory fd");
		if (dfd >= 0)
			close(dfd);
	}
	errno = 0;
	CHECK(stat("/nonexistent/postie", &c) == -1 && errno == ENOENT, "stat ENOENT: %d", errno);
	errno = 0;
	CHECK(fstat(-1, &c) == -1 && errno == EBADF, "fstat -1: %d", errno);
	errno = 0;
	CHECK(fstatat(AT_FDCWD, "", &c, 0) == -1 && errno == ENOENT, "stat \"\": %d", errno);
	if (fd >= 0)
		close(fd);
	unlink(sym);
	unlink(link2);
	unlink(file);
	rmdir(dir);
}

/* ---- clock_gettime ---- */

#ifndef SYS_clock_gettime32     /* musl's name on 32-bit targets */
#define SYS_clock_gettime32 SYS_clock_gettime
#endif

/* CLOCK_MONOTONIC between two readings of the kernel's own (32-bit
 * layout) system call: no assumption about how fast the machine is. */
static void test_clock(void)
{
	long k1[2], k2[2];
	struct timespec ts, rt;
	int ok;

	ok = syscall(SYS_clock_gettime32, CLOCK_MONOTONIC, k1) == 0 &&
	     clock_gettime(CLOCK_MONOTONIC, &ts) == 0 &&
	     syscall(SYS_clock_gettime32, CLOCK_MONOTONIC, k2) == 0;
	CHECK(ok && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000 &&
	      (ts.tv_sec > k1[0] || (ts.tv_sec == k1[0] && ts.tv_nsec >= k1[1])) &&
	      (ts.tv_sec < k2[0] || (ts.tv_sec == k2[0] && ts.tv_nsec <= k2[1])),
	      "clock_gettime MONOTONIC %lld.%09ld not within %ld.%09ld .. %ld.%09ld",
	      (long long)ts.tv_sec, (long)ts.tv_nsec, k1[0], k1[1], k2[0], k2[1]);
	CHECK(clock_gettime(CLOCK_REALTIME, &rt) == 0 && rt.tv_sec > 1600000000 &&
	      rt.tv_nsec >= 0 && rt.tv_nsec < 1000000000 && time(NULL) >= rt.tv_sec,
	      "clock_gettime REALTIME %lld.%09ld", (long long)rt.tv_sec, (long)rt.tv_nsec);
	errno = 0;
	CHECK(clock_gettime((clockid_t)12345, &ts) == -1 && errno == EINVAL,
	      "clock_gettime bad clock: %d", errno);
}

/* ---- memcpy ---- */

/* Every alignment of source and destination, lengths 0..80: the bytes
 * copied, none around them touched, dst returned. */
static void test_memcpy(void)
{
	static unsigned char src[128], dst[128];
	int bad = 0;

	for (int i = 0; i < 128; i++)
		src[i] = (unsigned char)(i * 7 + 1);
	for (int so = 0; so < 8; so++)
		for (int doff = 0; doff < 8; doff++)
			for (int n = 0; n <= 80; n++) {
				volatile unsigned char *v = dst;
				for (int i = 0; i < 128; i++)
					v[i] = 0xee;
				if (memcpy(dst + doff, src + so, (size_t)n) != dst + doff)
					bad++;
				for (int i = 0; i < 128; i++)
					if (v[i] != (i >= doff && i < doff + n ?
						     src[so + i - doff] : 0xee))
						bad++;
			}
	CHECK(bad == 0, "memcpy: %d wrong bytes", bad);
}

/* ---- tcgetattr, tcsetattr ---- */

/* On a pseudo-terminal: ECHO off and back as cli.c's password prompt
 * does, every `act`, and the errors. */
static void test_termios(void)
{
	struct termios t0, t1, t2;
	int m = posix_openpt(O_RDWR | O_NOCTTY), s = -1, p[2] = { -1, -1 };
	char *name;

	CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0 && (name = ptsname(m)) &&
	      (s = open(name, O_RDWR | O_NOCTTY)) >= 0, "a pseudo-terminal: %s", strerror(errno));
	CHECK(s >= 0 && tcgetattr(s, &t0) == 0 && (t0.c_lflag & ECHO), "tcgetattr");
	t1 = t0;
	t1.c_lflag &= ~(tcflag_t)ECHO;
	t1.c_cc[VMIN] = 3;
	CHECK(tcsetattr(s, TCSAFLUSH, &t1) == 0 && tcgetattr(s, &t2) == 0 &&
	      !(t2.c_lflag & ECHO) && t2.c_cc[VMIN] == 3 && t2.c_iflag == t0.c_iflag,
	      "tcsetattr TCSAFLUSH: lflag %#x", (unsigned)t2.c_lflag);
	CHECK(tcsetattr(s, TCSADRAIN, &t0) == 0 && tcgetattr(s, &t2) == 0 &&
	      (t2.c_lflag & ECHO) && t2.c_cc[VMIN] == t0.c_cc[VMIN], "tcsetattr TCSADRAIN");
	CHECK(tcsetattr(s, TCSANOW, &t1) == 0 && tcgetattr(s, &t2) == 0 && !(t2.c_lflag & ECHO),
	      "tcsetattr TCSANOW");
	errno = 0;
	CHECK(tcsetattr(s, 3, &t0) == -1 && errno == EINVAL, "tcsetattr bad act: %d", errno);
	errno = 0;
	CHECK(pipe(p) == 0 && tcgetattr(p[0], &t2) == -1 && errno == ENOTTY,
	      "tcgetattr on a pipe: %d", errno);
	errno = 0;
	CHECK(tcgetattr(-1, &t2) == -1 && errno == EBADF, "tcgetattr -1: %d", errno);
	CHECK(isatty(s) == 1 && isatty(m) == 1, "isatty on a pseudo-terminal");
	errno = 0;
	CHECK(isatty(p[0]) == 0 && errno == ENOTTY, "isatty on a pipe: %d", errno);
	errno = 0;
	CHECK(isatty(-1) == 0 && errno == EBADF, "isatty -1: %d", errno);
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	if (s >= 0)
		close(s);
	if (m >= 0)
		close(m);
}

/* ---- sigaction ---- */

static volatile sig_atomic_t sa_got, sa_masked, sa_signo, sa_pid_ok;

static void sa_plain(int sig)
{
	sigset_t cur;

	sa_got = sig;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	sa_masked = sigismember(&cur, SIGUSR1) == 1 && sigismember(&cur, SIGUSR2) == 1 &&
		    sigismember(&cur, SIGTERM) == 0;
}

static void sa_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	sa_got = sig;
	sa_signo = si->si_signo;
	sa_pid_ok = si->si_pid == getpid();
}

/* Handlers that run and return (the signal return trampoline), the mask
 * while they run, SA_SIGINFO's siginfo, the old action read back with
 * its flags and mask, SIG_IGN, signal(), and the invalid signals. */
static void test_sigaction(void)
{
	struct sigaction sa, old, cur;
	volatile long before = 0x12345678, after;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sa_plain;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	sa.sa_flags = SA_RESTART;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	CHECK(sigaction(SIGUSR1, &sa, &old) == 0 && old.sa_handler == SIG_DFL,
	      "sigaction SIGUSR1");
	sa_got = 0;
	kill(getpid(), SIGUSR1);
	after = before;
	CHECK(sa_got == SIGUSR1 && sa_masked && after == 0x12345678, "handler: got %d masked %d",
	      (int)sa_got, (int)sa_masked);
	CHECK(sigaction(SIGUSR1, NULL, &cur) == 0 && cur.sa_handler == sa_plain &&
	      (cur.sa_flags & SA_RESTART) && !(cur.sa_flags & SA_SIGINFO) &&
	      sigismember(&cur.sa_mask, SIGUSR2) == 1 && sigismember(&cur.sa_mask, SIGTERM) == 0,
	      "sigaction old: flags %#x", (unsigned)cur.sa_flags);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sa_info;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction SA_SIGINFO");
	sa_got = 0;
	kill(getpid(), SIGUSR2);
	CHECK(sa_got == SIGUSR2 && sa_signo == SIGUSR2 && sa_pid_ok, "SA_SIGINFO handler: %d %d",
	      (int)sa_got, (int)sa_signo);
	CHECK(sigaction(SIGUSR2, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL,
	      "SA_RESETHAND reset the handler");

	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	CHECK(sigaction(SIGUSR1, &sa, &old) == 0 && old.sa_handler == sa_plain, "SIG_IGN");
	sa_got = 0;
	kill(getpid(), SIGUSR1);
	CHECK(sa_got == 0, "ignored signal ran a handler");
	CHECK(signal(SIGUSR1, sa_plain) == SIG_IGN && signal(SIGUSR1, SIG_DFL) == sa_plain,
	      "signal()");

	for (int bad = 0; bad < 4; bad++) {
		int sig = bad == 0 ? 0 : bad == 1 ? 32 : bad == 2 ? 34 : _NSIG;
		errno = 0;
		CHECK(sigaction(sig, &sa, NULL) == -1 && errno == EINVAL, "sigaction(%d): %d",
		      sig, errno);
	}
	errno = 0;
	sa.sa_handler = sa_plain;
	CHECK(sigaction(SIGKILL, &sa, NULL) == -1 && errno == EINVAL, "sigaction SIGKILL");
}

/* ---- fcntl, fchmod, fchown, socket, accept4 ---- */

/* A record lock beyond 4 GiB (musl's 64-bit struct flock through the
 * kernel's fcntl64), seen and waited for by a child process. */
static void test_fcntl_lock(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 5000000000LL, .l_len = 10 };
	pid_t pid;
	int st = -1;

	CHECK(fcntl(fd, F_SETLK, &fl) == 0, "F_SETLK: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				   .l_start = 5000000005LL, .l_len = 1 };
		int bits = 0;
		if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_WRLCK &&
		    q.l_start == 5000000000LL && q.l_len == 10 && q.l_pid == getppid())
			bits |= 1;
		q.l_start = 5000000005LL;
		q.l_len = 1;
		if (fcntl(fd, F_SETLK, &q) == -1 && (errno == EAGAIN || errno == EACCES))
			bits |= 2;
		q.l_start = 4999999990LL;
		q.l_len = 10;
		if (fcntl(fd, F_SETLKW, &q) == 0)   /* does not overlap */
			bits |= 4;
		_exit(bits);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	      "record locks in the child: %#x", st);
	fl.l_type = F_UNLCK;
	CHECK(fcntl(fd, F_SETLK, &fl) == 0, "F_UNLCK");
}

static void test_fdcalls(void)
{
	const char *t = getenv("TMPDIR");
	char path[256];
	struct stat st;
	struct sockaddr_in a = { .sin_family = AF_INET }, peer;
	socklen_t alen = sizeof(a), plen = sizeof(peer);
	int fd, d, ls, c, s;

	snprintf(path, sizeof(path), "%s/postie-fd-XXXXXX", t ? t : "/tmp");
	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp %s", path);
	if (fd < 0)
		return;
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "F_GETFL");
	CHECK(fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK) == 0 &&
	      (fcntl(fd, F_GETFL) & (O_APPEND | O_NONBLOCK)) == (O_APPEND | O_NONBLOCK), "F_SETFL");
	CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC, "F_SETFD");
	d = fcntl(fd, F_DUPFD_CLOEXEC, 20);
	CHECK(d >= 20 && fcntl(d, F_GETFD) == FD_CLOEXEC, "F_DUPFD_CLOEXEC: %d", d);
	if (d >= 0)
		close(d);
	errno = 0;
	CHECK(fcntl(-1, F_GETFL) == -1 && errno == EBADF, "fcntl -1: %d", errno);
	test_fcntl_lock(fd);

	CHECK(fchmod(fd, 0641) == 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0641,
	      "fchmod: %o", (unsigned)st.st_mode);
	CHECK(fchown(fd, getuid(), getgid()) == 0 && fchown(fd, (uid_t)-1, (gid_t)-1) == 0,
	      "fchown to our own ids");
	if (getuid() == 0)      /* root: an id of more than 16 bits */
		CHECK(fchown(fd, 70000, 70001) == 0 && fstat(fd, &st) == 0 &&
		      st.st_uid == 70000 && st.st_gid == 70001, "fchown 70000: %ld %ld",
		      (long)st.st_uid, (long)st.st_gid);
	errno = 0;
	CHECK(fchmod(-1, 0600) == -1 && errno == EBADF && fchown(-1, 0, 0) == -1 && errno == EBADF,
	      "fchmod/fchown -1: %d", errno);
	close(fd);
	unlink(path);

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(ls >= 0 && fcntl(ls, F_GETFD) == FD_CLOEXEC && !(fcntl(ls, F_GETFL) & O_NONBLOCK) &&
	      bind(ls, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(ls, 4) == 0 &&
	      getsockname(ls, (struct sockaddr *)&a, &alen) == 0, "socket/listen: %s",
	      strerror(errno));
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(c >= 0 && (fcntl(c, F_GETFL) & O_NONBLOCK) && fcntl(c, F_GETFD) == 0,
	      "socket SOCK_NONBLOCK");
	if (c >= 0 && connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
		CHECK(errno == EINPROGRESS, "connect: %s", strerror(errno));
	s = accept4(ls, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
	CHECK(s >= 0 && fcntl(s, F_GETFD) == FD_CLOEXEC && (fcntl(s, F_GETFL) & O_NONBLOCK) &&
	      plen == sizeof(peer) && peer.sin_family == AF_INET &&
	      peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "accept4: %s", strerror(errno));
	errno = 0;
	CHECK(fcntl(ls, F_SETFL, O_NONBLOCK) == 0 && accept4(ls, NULL, NULL, 0) == -1 &&
	      (errno == EAGAIN || errno == EWOULDBLOCK), "accept4 with nothing pending: %d", errno);
	errno = 0;
	CHECK(socket(12345, SOCK_STREAM, 0) == -1 && errno == EAFNOSUPPORT, "socket bad family: %d",
	      errno);
	for (int *p = (int[]){ s, c, ls }, i = 0; i < 3; i++)
		if (p[i] >= 0)
			close(p[i]);
}

/* ---- setsockopt, getsockopt, bind, listen ---- */

static void test_sockcalls(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a), len;
	int one = 1, v = -1, ls, c;

	ls = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	len = sizeof(v);
	CHECK(ls >= 0 && getsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &v, &len) == 0 && v == 0 &&
	      len == sizeof(v), "SO_REUSEADDR initially: %d", v);
	v = -1;
	CHECK(setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	      getsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &v, &len) == 0 && v != 0,
	      "SO_REUSEADDR set: %d", v);
	v = -1;
	CHECK(setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
	      getsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v != 0,
	      "TCP_NODELAY: %d", v);
	v = -1;
	CHECK(getsockopt(ls, SOL_SOCKET, SO_TYPE, &v, &len) == 0 && v == SOCK_STREAM, "SO_TYPE");
	errno = 0;
	CHECK(setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, 1) == -1 && errno == EINVAL,
	      "setsockopt short value: %d", errno);
	errno = 0;
	CHECK(getsockopt(-1, SOL_SOCKET, SO_TYPE, &v, &len) == -1 && errno == EBADF,
	      "getsockopt -1: %d", errno);
	CHECK(bind(ls, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(ls, 2) == 0 &&
	      getsockname(ls, (struct sockaddr *)&a, &alen) == 0 && a.sin_port != 0,
	      "bind/listen: %s", strerror(errno));
	errno = 0;
	CHECK(bind(ls, (struct sockaddr *)&a, sizeof(a)) == -1 && errno == EINVAL,
	      "bind twice: %d", errno);
	errno = 0;
	CHECK(listen(-1, 1) == -1 && errno == EBADF, "listen -1: %d", errno);
	/* a refused non-blocking connect: its error comes from SO_ERROR,
	 * as conn.c reads it; the port was the listener's, now closed.
	 * Any error number: qemu-user hands over the host's (111 on x86
	 * where MIPS has 146). */
	close(ls);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c >= 0) {
		struct pollfd p = { .fd = c, .events = POLLOUT };
		int r = connect(c, (struct sockaddr *)&a, sizeof(a));
		v = 0;
		len = sizeof(v);
		if (r != 0 && errno == EINPROGRESS)
			poll(&p, 1, 10000);
		CHECK((r == -1 && errno == ECONNREFUSED) ||
		      (getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &len) == 0 && v > 0 &&
		       len == sizeof(v)),
		      "SO_ERROR after a refused connect: %d", v);
		close(c);
	}
}

static volatile sig_atomic_t sg_got;

static void sg_handler(int sig)
{
	sg_got = sig;
}

/* ---- signal, sigaddset, sigprocmask ---- */

static void test_sigset(void)
{
	struct sigaction cur;
	sigset_t s, u1, old, now;
	int bad = 0;

	for (int sig = 1; sig < _NSIG; sig++) {
		int r;
		sigemptyset(&s);
		errno = 0;
		r = sigaddset(&s, sig);
		if (sig >= 32 && sig <= 34) {
			bad += r != -1 || errno != EINVAL;
			continue;
		}
		bad += r != 0;
		for (int k = 1; k < _NSIG; k++)
			bad += sigismember(&s, k) != (k == sig);
	}
	bad += sigaddset(&s, -1) != -1 || sigaddset(&s, _NSIG) != -1;
	bad += sigaddset(&s, 0) != -1 || errno != EINVAL;
	CHECK(bad == 0, "sigaddset: %d wrong", bad);

	sigemptyset(&u1);
	sigaddset(&u1, SIGUSR1);
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIGRTMIN + 1);
	CHECK(sigprocmask(SIG_SETMASK, &u1, &old) == 0 && sigprocmask(SIG_BLOCK, &s, NULL) == 0 &&
	      sigprocmask(SIG_BLOCK, NULL, &now) == 0 && sigismember(&now, SIGUSR1) == 1 &&
	      sigismember(&now, SIGUSR2) == 1 && sigismember(&now, SIGRTMIN + 1) == 1 &&
	      sigismember(&now, SIGTERM) == 0, "sigprocmask SIG_BLOCK");
	CHECK(sigprocmask(SIG_UNBLOCK, &s, &now) == 0 && sigismember(&now, SIGUSR2) == 1 &&
	      sigprocmask(SIG_SETMASK, &old, &now) == 0 && sigismember(&now, SIGUSR2) == 0 &&
	      sigismember(&now, SIGUSR1) == 1, "sigprocmask SIG_UNBLOCK");
	errno = 0;
	CHECK(sigprocmask(12345, &s, NULL) == -1 && errno == EINVAL, "sigprocmask bad how: %d",
	      errno);

	CHECK(signal(SIGUSR2, sg_handler) == SIG_DFL && sigaction(SIGUSR2, NULL, &cur) == 0 &&
	      cur.sa_handler == sg_handler && (cur.sa_flags & SA_RESTART), "signal: flags %#x",
	      (unsigned)cur.sa_flags);
	sg_got = 0;
	CHECK(raise(SIGUSR2) == 0 && sg_got == SIGUSR2, "signal's handler ran");
	CHECK(signal(SIGUSR2, SIG_DFL) == sg_handler, "signal returns the old handler");
	errno = 0;
	CHECK(signal(SIGKILL, sg_handler) == SIG_ERR && errno == EINVAL &&
	      signal(33, SIG_IGN) == SIG_ERR, "signal SIGKILL");
}

/* ---- open, openat, lseek, readdir, gethostname, inotify ---- */

/* A scratch directory under $TMPDIR; "" when none could be made. */
static void tmp_dir(char *path, size_t n, const char *tag)
{
	const char *t = getenv("TMPDIR");

	snprintf(path, n, "%s/postie-%s-XXXXXX", t ? t : "/tmp", tag);
	if (!mkdtemp(path))
		path[0] = '\0';
}

static void test_open_lseek(void)
{
	char dir[256], path[300];
	struct stat st;
	mode_t um = umask(022);
	int d, fd, p[2];

	tmp_dir(dir, sizeof(dir), "open");
	CHECK(dir[0], "mkdtemp");
	if (!dir[0])
		return;
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0644 &&
	      fcntl(fd, F_GETFD) == FD_CLOEXEC, "open O_CREAT: mode %o", (unsigned)st.st_mode);
	errno = 0;
	CHECK(open(path, O_RDWR | O_CREAT | O_EXCL, 0600) == -1 && errno == EEXIST,
	      "open O_EXCL: %d", errno);
	errno = 0;
	CHECK(open(dir, O_WRONLY) == -1 && errno == EISDIR, "open a directory to write: %d", errno);
	/* lseek: 64-bit offsets, relative moves, the errors */
	CHECK(write(fd, "abcdef", 6) == 6 && lseek(fd, 0, SEEK_CUR) == 6 &&
	      lseek(fd, -2, SEEK_CUR) == 4 && lseek(fd, 0, SEEK_END) == 6 &&
	      lseek(fd, 1, SEEK_SET) == 1, "lseek small");
	CHECK(lseek(fd, 5000000000LL, SEEK_SET) == 5000000000LL &&
	      lseek(fd, -1, SEEK_CUR) == 4999999999LL && write(fd, "z", 1) == 1 &&
	      lseek(fd, 0, SEEK_END) == 5000000000LL && lseek(fd, -3000000000LL, SEEK_END) ==
	      2000000000LL, "lseek beyond 4 GiB: %s", strerror(errno));
	errno = 0;
	CHECK(lseek(fd, -1, SEEK_SET) == -1 && errno == EINVAL && lseek(fd, 0, 7) == -1 &&
	      errno == EINVAL, "lseek invalid: %d", errno);
	if (pipe(p) == 0) {
		errno = 0;
		CHECK(lseek(p[0], 0, SEEK_CUR) == -1 && errno == ESPIPE, "lseek pipe: %d", errno);
		close(p[0]);
		close(p[1]);
	}
	close(fd);
	/* openat relative to a directory descriptor; O_TMPFILE's mode */
	d = open(dir, O_RDONLY | O_DIRECTORY);
	fd = d >= 0 ? openat(d, "f", O_RDONLY) : -1;
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 5000000000LL, "openat: %lld",
	      (long long)st.st_size);
	if (fd >= 0)
		close(fd);
	errno = 0;
	CHECK(openat(d, "missing", O_RDONLY) == -1 && errno == ENOENT, "openat missing: %d", errno);
	fd = openat(d, "g", O_WRONLY | O_CREAT | O_TRUNC, 0640);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0640, "openat O_CREAT: %o",
	      (unsigned)st.st_mode);
	if (fd >= 0)
		close(fd);
	fd = openat(d, ".", O_TMPFILE | O_RDWR, 0604);
	if (fd >= 0 || errno != EOPNOTSUPP) {   /* tmpfs and ext4 have it */
		CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0604,
		      "O_TMPFILE: %d %o", errno, (unsigned)st.st_mode);
		if (fd >= 0)
			close(fd);
	}
	unlinkat(d, "f", 0);
	unlinkat(d, "g", 0);
	if (d >= 0)
		close(d);
	rmdir(dir);
	umask(um);
}

/* Enough entries for several getdents64 batches, each seen once; a
 * directory removed while open ends the listing without an error. */
static void test_readdir(void)
{
	enum { N = 150 };
	static unsigned char seen[N];
	char dir[256], path[400], sub[300];
	struct dirent *e;
	int bad = 0, dots = 0, n = 0;
	DIR *d;

	tmp_dir(dir, sizeof(dir), "dir");
	CHECK(dir[0], "mkdtemp");
	if (!dir[0])
		return;
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%s/entry-with-a-long-name-%03d", dir, i);
		int fd = open(path, O_WRONLY | O_CREAT, 0600);
		bad += fd < 0;
		if (fd >= 0)
			close(fd);
	}
	memset(seen, 0, sizeof(seen));
	d = opendir(dir);
	for (int guard = 0; d && guard < 1000 && (e = readdir(d)) != NULL; guard++) {
		int k;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
			dots++;
			continue;
		}
		if (sscanf(e->d_name, "entry-with-a-long-name-%d", &k) == 1 && k >= 0 && k < N &&
		    !seen[k] && (e->d_type == DT_REG || e->d_type == DT_UNKNOWN))
			seen[k] = 1, n++;
		else
			bad++;
	}
	CHECK(d && bad == 0 && dots == 2 && n == N, "readdir: %d of %d, %d dots, %d bad", n, N,
	      dots, bad);
	if (d)
		closedir(d);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%s/entry-with-a-long-name-%03d", dir, i);
		unlink(path);
	}
	snprintf(sub, sizeof(sub), "%s/gone", dir);
	d = mkdir(sub, 0700) == 0 ? opendir(sub) : NULL;
	errno = 0;
	CHECK(d && rmdir(sub) == 0 && readdir(d) == NULL && errno == 0,
	      "readdir of a removed directory: %d", errno);
	if (d)
		closedir(d);
	rmdir(dir);
}

static void test_hostname(void)
{
	struct utsname u;
	char b[300];
	size_t n;

	CHECK(uname(&u) == 0, "uname");
	n = strlen(u.nodename);
	memset(b, 'x', sizeof(b));
	CHECK(gethostname(b, sizeof(b)) == 0 && strcmp(b, u.nodename) == 0, "gethostname: %s",
	      b);
	memset(b, 'x', sizeof(b));
	CHECK(gethostname(b, n + 1) == 0 && strcmp(b, u.nodename) == 0 && b[n + 1] == 'x',
	      "gethostname exact");
	memset(b, 'x', sizeof(b));
	CHECK(n < 2 || (gethostname(b, 2) == 0 && b[0] == u.nodename[0] && b[1] == '\0' &&
			b[2] == 'x'), "gethostname cut: %.3s", b);
	memset(b, 'x', sizeof(b));
	CHECK(gethostname(b, 0) == 0 && b[0] == 'x', "gethostname into 0 bytes");
}

static void test_inotify(void)
{
	char dir[256], path[300];
	union { struct inotify_event e; char b[sizeof(struct inotify_event) + 256]; } ev;
	int fd, wd;
	ssize_t r;

	tmp_dir(dir, sizeof(dir), "ino");
	CHECK(dir[0], "mkdtemp");
	if (!dir[0])
		return;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC && (fcntl(fd, F_GETFL) & O_NONBLOCK),
	      "inotify_init1: %s", strerror(errno));
	wd = inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO);
	errno = 0;
	CHECK(wd >= 0 && read(fd, ev.b, sizeof(ev.b)) == -1 && errno == EAGAIN,
	      "inotify_add_watch: %d", errno);
	snprintf(path, sizeof(path), "%s/new", dir);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	r = read(fd, ev.b, sizeof(ev.b));
	CHECK(r >= (ssize_t)sizeof(ev.e) && ev.e.wd == wd && (ev.e.mask & IN_CREATE) &&
	      strcmp(ev.e.name, "new") == 0, "inotify event: %zd %#x", r, (unsigned)ev.e.mask);
	errno = 0;
	CHECK(inotify_add_watch(fd, path, 0) == -1 && errno == EINVAL &&
	      inotify_add_watch(fd, "/nonexistent/x", IN_CREATE) == -1 && errno == ENOENT,
	      "inotify_add_watch errors: %d", errno);
	errno = 0;
	wd = inotify_init1(O_APPEND);   /* a flag qemu-user knows, but not inotify */
	CHECK(wd == -1 && errno == EINVAL, "inotify_init1 bad flags: %d", errno);
	if (wd >= 0)
		close(wd);
	if (fd >= 0)
		close(fd);
	unlink(path);
	rmdir(dir);
}

/* ---- file and process calls of one system call each ---- */

static void test_pathcalls(void)
{
	char dir[256], sub[300], f[300], g[300], h[300], i[300];
	struct stat st;
	mode_t um;
	int d, fd;

	tmp_dir(dir, sizeof(dir), "path");
	CHECK(dir[0], "mkdtemp");
	if (!dir[0])
		return;
	um = umask(022);
	CHECK(umask(077) == 022 && umask(022) == 077, "umask returns the old mask");
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(f, sizeof(f), "%s/f", dir);
	snprintf(g, sizeof(g), "%s/g", dir);
	snprintf(h, sizeof(h), "%s/h", dir);
	snprintf(i, sizeof(i), "%s/i", dir);
	CHECK(mkdir(sub, 0777) == 0 && stat(sub, &st) == 0 && S_ISDIR(st.st_mode) &&
	      (st.st_mode & 0777) == 0755, "mkdir: %o", (unsigned)st.st_mode);
	errno = 0;
	CHECK(mkdir(sub, 0700) == -1 && errno == EEXIST, "mkdir again: %d", errno);
	d = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(d >= 0 && mkdirat(d, "a", 0710) == 0 && fstatat(d, "a", &st, 0) == 0 &&
	      (st.st_mode & 0777) == 0710, "mkdirat: %o", (unsigned)st.st_mode);

	fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0, "create %s", f);
	CHECK(link(f, g) == 0 && linkat(d, "g", d, "h", 0) == 0 && stat(f, &st) == 0 &&
	      st.st_nlink == 3, "link, linkat: %ld links", (long)st.st_nlink);
	errno = 0;
	CHECK(link(f, h) == -1 && errno == EEXIST && linkat(d, "nothing", d, "x", 0) == -1 &&
	      errno == ENOENT, "link errors: %d", errno);
	errno = 0;
	CHECK(rename(g, i) == 0 && access(g, F_OK) == -1 && errno == ENOENT &&
	      access(i, F_OK) == 0 && stat(f, &st) == 0 && st.st_nlink == 3, "rename: %d", errno);
	/* over an existing name: h becomes the other file, f loses a link */
	close(open(g, O_WRONLY | O_CREAT, 0600));
	CHECK(rename(g, h) == 0 && unlink(i) == 0 && stat(f, &st) == 0 && st.st_nlink == 1,
	      "rename over h: %ld links", (long)st.st_nlink);
	errno = 0;
	CHECK(rename(g, i) == -1 && errno == ENOENT, "rename missing: %d", errno);
	CHECK(chmod(f, 0604) == 0 && stat(f, &st) == 0 && (st.st_mode & 07777) == 0604,
	      "chmod: %o", (unsigned)st.st_mode);
	errno = 0;
	CHECK(access(f, R_OK | W_OK) == 0 && access(f, X_OK) == -1 && errno == EACCES,
	      "access: %d", errno);
	errno = 0;
	CHECK(chmod(g, 0600) == -1 && errno == ENOENT, "chmod missing: %d", errno);

	/* ftruncate: lengths whose two 32-bit halves differ, both ways */
	CHECK(fd >= 0 && ftruncate(fd, 5000000000LL) == 0 && fstat(fd, &st) == 0 &&
	      st.st_size == 5000000000LL, "ftruncate 5e9: %lld", (long long)st.st_size);
	CHECK(ftruncate(fd, 0x100000003LL) == 0 && fstat(fd, &st) == 0 &&
	      st.st_size == 0x100000003LL, "ftruncate 2^32+3: %lld", (long long)st.st_size);
	CHECK(ftruncate(fd, 3) == 0 && fstat(fd, &st) == 0 && st.st_size == 3,
	      "ftruncate 3: %lld", (long long)st.st_size);
	errno = 0;
	CHECK(ftruncate(fd, -1) == -1 && errno == EINVAL, "ftruncate -1: %d", errno);
	errno = 0;
	CHECK(close(fd) == 0 && close(fd) == -1 && errno == EBADF, "close twice: %d", errno);

	errno = 0;
	CHECK(unlink(sub) == -1 && errno == EISDIR, "unlink a directory: %d", errno);
	errno = 0;
	CHECK(unlink(f) == 0 && unlink(f) == -1 && errno == ENOENT && unlinkat(d, "h", 0) == 0 &&
	      stat(h, &st) == -1, "unlink, unlinkat: %d", errno);
	errno = 0;
	CHECK(unlinkat(d, "a", 0) == -1 && errno == EISDIR && unlinkat(d, "a", AT_REMOVEDIR) == 0,
	      "unlinkat AT_REMOVEDIR: %d", errno);
	errno = 0;
	CHECK(rmdir(dir) == -1 && errno == ENOTEMPTY && rmdir(sub) == 0 && rmdir(dir) == 0 &&
	      stat(dir, &st) == -1, "rmdir: %d", errno);
	if (d >= 0)
		close(d);
	umask(um);
}

/* The ids against /proc/self/status (real, then effective); getpid
 * against fork's return, _Exit's and _exit's status, kill. */
static void test_proccalls(void)
{
	char b[2048], *u, *g;
	unsigned ru = 0, eu = 0, rg = 0, eg = 0;
	ssize_t n = 0;
	int fd = open("/proc/self/status", O_RDONLY), p[2], st = -1;
	pid_t pid, seen = 0;

	if (fd >= 0) {
		n = read(fd, b, sizeof(b) - 1);
		close(fd);
	}
	b[n > 0 ? n : 0] = '\0';
	u = strstr(b, "\nUid:");
	g = strstr(b, "\nGid:");
	CHECK(u && g && sscanf(u, "\nUid: %u %u", &ru, &eu) == 2 &&
	      sscanf(g, "\nGid: %u %u", &rg, &eg) == 2, "/proc/self/status");
	CHECK(getuid() == ru && geteuid() == eu && getgid() == rg && getegid() == eg,
	      "ids %u %u %u %u, /proc says %u %u %u %u", (unsigned)getuid(), (unsigned)geteuid(),
	      (unsigned)getgid(), (unsigned)getegid(), ru, eu, rg, eg);

	if (pipe(p) != 0) {
		CHECK(0, "pipe");
		return;
	}
	pid = fork();
	if (pid == 0) {
		pid_t me = getpid();
		_exit(write(p[1], &me, sizeof(me)) == sizeof(me) ? 42 : 1);
	}
	close(p[1]);
	CHECK(pid > 0 && read(p[0], &seen, sizeof(seen)) == sizeof(seen) && seen == pid &&
	      getpid() != pid && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	      WEXITSTATUS(st) == 42, "getpid in the child %ld, fork said %ld; status %#x",
	      (long)seen, (long)pid, st);
	close(p[0]);
	pid = fork();
	if (pid == 0)
		_Exit(7);
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	      "_Exit: %#x", st);
	pid = fork();
	if (pid == 0) {
		for (int k = 0; k < 600; k++)   /* bounded: killed long before */
			sleep(1);
		_exit(0);
	}
	CHECK(pid > 0 && kill(pid, 0) == 0 && kill(pid, SIGTERM) == 0 && waitpid(pid, &st, 0) == pid &&
	      WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "kill: %#x", st);
	errno = 0;
	CHECK(kill(getpid(), 12345) == -1 && errno == EINVAL && kill(getpid(), 0) == 0,
	      "kill bad signal: %d", errno);
}

/* ---- read, write, pread, pwrite, fsync, poll, ppoll, sendto, recvfrom,
 * getrandom ---- */

static void test_rw(void)
{
	char dir[256], path[300], b[16];
	int fd, p[2];

	tmp_dir(dir, sizeof(dir), "rw");
	CHECK(dir[0], "mkdtemp");
	if (!dir[0])
		return;
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0 && write(fd, "0123456789", 10) == 10 && fsync(fd) == 0, "write, fsync");
	/* offsets whose 32-bit halves differ; the file position stays */
	CHECK(pwrite(fd, "high", 4, 5000000000LL) == 4 && pwrite(fd, "AB", 2, 3) == 2 &&
	      lseek(fd, 0, SEEK_CUR) == 10, "pwrite: %s", strerror(errno));
	memset(b, 0, sizeof(b));
	CHECK(pread(fd, b, 4, 5000000000LL) == 4 && memcmp(b, "high", 4) == 0 &&
	      pread(fd, b, 8, 0x100000000LL) == 8 && memcmp(b, "\0\0\0\0\0\0\0\0", 8) == 0 &&
	      pread(fd, b, 16, 5000000002LL) == 2 && memcmp(b, "gh", 2) == 0 &&
	      pread(fd, b, 6, 1) == 6 && memcmp(b, "12AB56", 6) == 0 && lseek(fd, 0, SEEK_CUR) == 10,
	      "pread: %.6s", b);
	CHECK(lseek(fd, 2, SEEK_SET) == 2 && read(fd, b, 4) == 4 && memcmp(b, "2AB5", 4) == 0 &&
	      read(fd, b, 0) == 0, "read");
	errno = 0;
	CHECK(pread(fd, b, 1, -1) == -1 && errno == EINVAL, "pread -1: %d", errno);
	errno = 0;
	CHECK(read(-1, b, 1) == -1 && errno == EBADF && write(-1, b, 1) == -1 && errno == EBADF &&
	      fsync(-1) == -1 && errno == EBADF, "bad descriptor: %d", errno);
	close(fd);
	unlink(path);
	rmdir(dir);
	if (pipe(p) == 0) {
		errno = 0;
		CHECK(pwrite(p[1], "x", 1, 0) == -1 && errno == ESPIPE && write(p[1], "xyz", 3) == 3 &&
		      read(p[0], b, sizeof(b)) == 3, "pipe: %d", errno);
		close(p[0]);
		close(p[1]);
	}
}

static void test_udp(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, from;
	socklen_t alen = sizeof(a), flen = sizeof(from);
	char b[16];
	int s1 = socket(AF_INET, SOCK_DGRAM, 0), s2 = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a2 = { .sin_family = AF_INET };
	socklen_t a2len = sizeof(a2);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a2.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(s1 >= 0 && s2 >= 0 && bind(s1, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	      getsockname(s1, (struct sockaddr *)&a, &alen) == 0 &&
	      bind(s2, (struct sockaddr *)&a2, sizeof(a2)) == 0 &&
	      getsockname(s2, (struct sockaddr *)&a2, &a2len) == 0, "udp sockets");
	CHECK(sendto(s2, "query", 5, 0, (struct sockaddr *)&a, sizeof(a)) == 5 &&
	      recvfrom(s1, b, sizeof(b), 0, (struct sockaddr *)&from, &flen) == 5 &&
	      memcmp(b, "query", 5) == 0 && flen == sizeof(from) && from.sin_port == a2.sin_port &&
	      from.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "sendto, recvfrom: %s",
	      strerror(errno));
	CHECK(connect(s2, (struct sockaddr *)&a, sizeof(a)) == 0 && send(s2, "ab", 2, 0) == 2 &&
	      recv(s1, b, sizeof(b), 0) == 2 && memcmp(b, "ab", 2) == 0, "connect, send, recv");
	errno = 0;
	CHECK(recvfrom(s1, b, sizeof(b), MSG_DONTWAIT, NULL, NULL) == -1 &&
	      (errno == EAGAIN || errno == EWOULDBLOCK), "recvfrom nothing: %d", errno);
	close(s1);
	close(s2);
}

static void test_getrandom(void)
{
	unsigned char a[32], b[32];
	int zero = 1;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	CHECK(getrandom(a, sizeof(a), 0) == (ssize_t)sizeof(a) &&
	      getrandom(b, sizeof(b), GRND_NONBLOCK) == (ssize_t)sizeof(b) &&
	      memcmp(a, b, sizeof(a)) != 0, "getrandom");
	for (size_t i = 0; i < sizeof(a); i++)
		zero &= a[i] == 0;
	CHECK(!zero, "getrandom gave zeros");
	errno = 0;
	CHECK(getrandom(a, 4, 0x40000) == -1 && errno == EINVAL, "getrandom bad flags: %d", errno);
}

static volatile sig_atomic_t pp_got;

static void pp_handler(int sig)
{
	pp_got = sig;
}

/* poll and ppoll: readiness, a zero and a short timeout, a bad timeout,
 * the signal mask swapped in for the wait only (a blocked, pending
 * signal arrives inside ppoll and makes it fail with EINTR). The struct
 * timespec is filled with ones first: musl's padding beside tv_nsec
 * must not reach the kernel. */
static void test_ppoll(void)
{
	struct timespec ts;
	struct sigaction sa = { .sa_handler = pp_handler }, old;
	sigset_t block, none, cur;
	int fds[2];
	struct pollfd p[2];
	int r;

	if (pipe(fds) != 0) {
		CHECK(0, "pipe");
		return;
	}
	p[0] = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	p[1] = (struct pollfd){ .fd = fds[1], .events = POLLOUT };
	memset(&ts, 0xff, sizeof(ts));
	ts.tv_sec = 0;
	ts.tv_nsec = 0;
	CHECK(ppoll(p, 1, &ts, NULL) == 0 && p[0].revents == 0 && poll(p, 1, 0) == 0,
	      "nothing ready");
	ts.tv_nsec = 1000000;
	CHECK(ppoll(p, 1, &ts, NULL) == 0 && poll(p, 1, 1) == 0, "short timeout");
	CHECK(ppoll(p, 2, &ts, NULL) == 1 && p[0].revents == 0 && p[1].revents == POLLOUT,
	      "ppoll writable");
	CHECK(write(fds[1], "x", 1) == 1 && ppoll(p, 2, NULL, NULL) == 2 &&
	      p[0].revents == POLLIN && p[1].revents == POLLOUT, "ppoll readable, no timeout");
	p[0].revents = p[1].revents = 0;
	CHECK(poll(p, 2, -1) == 2 && p[0].revents == POLLIN && p[1].revents == POLLOUT &&
	      poll(p, 2, 100000) == 2, "poll readable");
	ts.tv_nsec = 1000000000;
	errno = 0;
	CHECK(ppoll(p, 1, &ts, NULL) == -1 && errno == EINVAL, "ppoll tv_nsec 1e9: %d", errno);

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&none);
	sigaction(SIGUSR1, &sa, &old);
	sigprocmask(SIG_BLOCK, &block, NULL);
	pp_got = 0;
	kill(getpid(), SIGUSR1);
	ts.tv_sec = 30;
	ts.tv_nsec = 0;
	/* with the signal still blocked during the wait: data is ready */
	CHECK(ppoll(p, 1, &ts, &block) == 1 && pp_got == 0, "ppoll with the mask kept");
	p[0].fd = -1;      /* nothing to wait for but the signal */
	errno = 0;
	r = ppoll(p, 1, &ts, &none);
	CHECK(r == -1 && errno == EINTR && pp_got == SIGUSR1, "ppoll with the signal let in: %d %d",
	      r, errno);
	sigprocmask(SIG_SETMASK, NULL, &cur);
	CHECK(sigismember(&cur, SIGUSR1) == 1, "ppoll put the mask back");
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	sigaction(SIGUSR1, &old, NULL);
	close(fds[0]);
	close(fds[1]);
}

/* ---- program start-up ---- */

static int st_ctor_ran;

__attribute__((constructor)) static void st_ctor(void)
{
	st_ctor_ran = errno == 0 ? 1 : 2;
}

/* What __libc_start_main set up, seen from here: the constructor ran
 * (with errno usable), the environment, the auxiliary vector and page
 * size in musl's private state (getauxval and sysconf read them), the
 * program's name, the thread pointer (errno of this thread). */
static void test_startup(void)
{
	extern char **environ;
	extern char *program_invocation_name, *program_invocation_short_name;
	const char *slash = strrchr(program_invocation_name, '/');
	char **e = environ;
	int n = 0;

	CHECK(st_ctor_ran == 1, "constructor: %d", st_ctor_ran);
	for (; e && *e && n < 100000; e++)
		n += strncmp(*e, "PATH=", 5) == 0;
	CHECK(environ && n == (getenv("PATH") != NULL), "environ: %d", n);
	CHECK(getauxval(AT_PAGESZ) == 4096 && sysconf(_SC_PAGESIZE) == 4096 &&
	      getauxval(AT_UID) == getuid() && getauxval(AT_EGID) == getegid() &&
	      getauxval(AT_RANDOM) != 0, "auxv: page %lu %ld", getauxval(AT_PAGESZ),
	      sysconf(_SC_PAGESIZE));
	CHECK(strstr(program_invocation_name, "unit") &&
	      program_invocation_short_name == (slash ? slash + 1 : program_invocation_name),
	      "program name: %s", program_invocation_short_name);
	errno = 0;
	CHECK(close(-1) == -1 && errno == EBADF && *__errno_location() == EBADF, "errno");
}

/* ---- string functions ---- */

/* Every function against a plain loop of the test's own, over strings
 * with bytes above 127 and sets with and without NUL-adjacent cases. */
static void test_strings(void)
{
	static const char *const strs[] = { "", "a", "abc", "hello world", " \t x", "\xff\x80z",
					    "aaaaaaaaaaaaaaaaaaaaaaaaaaaab", "EHLO client.example\r\n" };
	static const char *const sets[] = { "", "a", "ab", " \t", "\r\n", "\xff", "lo", "xyz" };
	static const int chars[] = { 0, 'a', 'b', 'z', ' ', '\n', 0xff, 0x80, 'a' + 256 };
	int bad = 0;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		const char *s = strs[i];
		size_t n = strlen(s);
		for (size_t j = 0; j < sizeof(sets) / sizeof(sets[0]); j++) {
			size_t sp = 0, cs = 0;
			while (sp < n && memchr(sets[j], s[sp], strlen(sets[j])))
				sp++;
			while (cs < n && !memchr(sets[j], s[cs], strlen(sets[j])))
				cs++;
			bad += strspn(s, sets[j]) != sp;
			bad += strcspn(s, sets[j]) != cs;
		}
		for (size_t j = 0; j < sizeof(chars) / sizeof(chars[0]); j++) {
			unsigned char c = (unsigned char)chars[j];
			size_t k = 0;
			while (k < n && (unsigned char)s[k] != c)
				k++;
			bad += strchrnul(s, chars[j]) != s + k;
			bad += strchr(s, chars[j]) != (k < n || c == 0 ? s + k : NULL);
			bad += memchr(s, chars[j], n) != (k < n ? s + k : NULL);
			bad += memchr(s, chars[j], k) != NULL;
		}
	}
	CHECK(bad == 0, "string functions: %d wrong", bad);
}

/* The test's own fold and compare: the difference of the first
 * folded bytes that differ, or where the shorter string ends. */
static int ref_fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int ref_casecmp(const char *l, const char *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int d = ref_fold((unsigned char)l[i]) - ref_fold((unsigned char)r[i]);
		if (d || !l[i])
			return d;
	}
	return 0;
}

/* strlen, stpcpy (through strcpy too), strcasecmp, strncasecmp over
 * pairs with case changes, bytes above 127, '@' '[' '`' '{' (next to
 * the letters) and every prefix length. */
static void test_strcase(void)
{
	static const char *const strs[] = { "", "a", "A", "abc", "ABD", "aBc", "abcd", "@", "`",
					    "[", "{", "Z", "z", "\xc4x", "\xe4x", "Received:",
					    "RECEIVED:", "received;", "mail FROM:<a@b>" };
	const size_t ns = sizeof(strs) / sizeof(strs[0]);
	char buf[64], *e;
	int bad = 0;

	for (size_t i = 0; i < ns; i++) {
		size_t n = 0;
		while (strs[i][n])
			n++;
		bad += strlen(strs[i]) != n;
		memset(buf, 'x', sizeof(buf));
		e = stpcpy(buf, strs[i]);
		bad += e != buf + n || memcmp(buf, strs[i], n + 1) != 0 || buf[n + 1] != 'x';
		bad += strcpy(buf + 1, strs[i]) != buf + 1 || memcmp(buf + 1, strs[i], n + 1) != 0;
		for (size_t j = 0; j < ns; j++) {
			bad += strcasecmp(strs[i], strs[j]) != ref_casecmp(strs[i], strs[j], SIZE_MAX);
			for (size_t k = 0; k <= 17; k++)
				bad += strncasecmp(strs[i], strs[j], k) != ref_casecmp(strs[i], strs[j], k);
		}
	}
	CHECK(bad == 0, "strlen/stpcpy/strcasecmp: %d wrong", bad);
	/* stpncpy (and strncpy through it): every source against every n */
	bad = 0;
	for (size_t i = 0; i < ns; i++) {
		size_t len = strlen(strs[i]);
		for (size_t n = 0; n <= 20; n++) {
			size_t c = len < n ? len : n;
			memset(buf, 'x', sizeof(buf));
			e = stpncpy(buf, strs[i], n);
			bad += e != buf + c || memcmp(buf, strs[i], c) != 0 || buf[n] != 'x';
			for (size_t k = c; k < n; k++)
				bad += buf[k] != '\0';
			memset(buf, 'x', sizeof(buf));
			bad += strncpy(buf, strs[i], n) != buf || memcmp(buf, strs[i], c) != 0 ||
			       buf[n] != 'x' || (c < n && buf[n - 1] != '\0');
		}
	}
	CHECK(bad == 0, "stpncpy/strncpy: %d wrong", bad);
	CHECK(strcasecmp("Subject", "SUBJECT") == 0 && strcasecmp("a", "B") < 0 &&
	      strcasecmp("b", "A") > 0 && strncasecmp("HELO x", "helo y", 5) == 0 &&
	      strncasecmp("HELO x", "helo y", 6) != 0 && strcasecmp("abc", "ab") > 0,
	      "strcasecmp: known values");
}

/* memset at every alignment and length 0..80, memmove over overlaps
 * in both directions: the bytes, the guards around them, the return. */
static void test_memset_memmove(void)
{
	static unsigned char buf[160], ref[160];
	int bad = 0;

	for (int off = 0; off < 8; off++)
		for (int n = 0; n <= 80; n++) {
			volatile unsigned char *v = buf;
			for (int i = 0; i < 160; i++)
				v[i] = 0xee;
			bad += memset(buf + off, 0x5a + n, (size_t)n) != buf + off;
			for (int i = 0; i < 160; i++)
				bad += v[i] != (i >= off && i < off + n ? (unsigned char)(0x5a + n) : 0xee);
		}
	for (int from = 0; from < 12; from++)
		for (int to = 0; to < 12; to++)
			for (int n = 0; n <= 70; n++) {
				volatile unsigned char *v = buf, *r = ref;
				for (int i = 0; i < 160; i++)
					v[i] = r[i] = (unsigned char)(i * 13 + 7);
				/* the reference: through a copy, so overlap does not matter */
				unsigned char tmp[80];
				for (int i = 0; i < n; i++)
					tmp[i] = r[from + i];
				for (int i = 0; i < n; i++)
					r[to + i] = tmp[i];
				bad += memmove(buf + to, buf + from, (size_t)n) != buf + to;
				for (int i = 0; i < 160; i++)
					bad += v[i] != r[i];
			}
	CHECK(bad == 0, "memset/memmove: %d wrong bytes", bad);
}

/* ---- 64-bit division (libgcc's names) ---- */

uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t a, int64_t b);
int64_t __moddi3(int64_t a, int64_t b);

/* q * d + r == n exactly (a 128-bit product from 32-bit halves, so the
 * check itself divides nothing) and r < d: q and r are n's quotient and
 * remainder by d, whatever code computed them. */
static int divides_to(uint64_t n, uint64_t d, uint64_t q, uint64_t r)
{
	uint64_t ql = (uint32_t)q, qh = q >> 32, dl = (uint32_t)d, dh = d >> 32;
	uint64_t ll = ql * dl, lh = ql * dh, hl = qh * dl, hh = qh * dh;
	uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;
	uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
	uint64_t lo = (mid << 32) | (uint32_t)ll;

	return r < d && hi == 0 && lo + r >= lo && lo + r == n;
}

static uint64_t div_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* CHECK for the many cases below: only failures are counted one by one. */
#define DIV_CHECK(cond, ...) do { if (!(cond)) CHECK(cond, __VA_ARGS__); } while (0)

static void div_one(uint64_t n, uint64_t d)
{
	int64_t a = (int64_t)n, b = (int64_t)d;
	uint64_t ua = a < 0 ? -n : n, ub = b < 0 ? -d : d;
	uint64_t q = __udivdi3(n, d), r = __umoddi3(n, d);
	int64_t sq = __divdi3(a, b), sr = __moddi3(a, b);
	/* signed: magnitudes divide, the quotient's sign is the signs'
	 * product, the remainder's the dividend's */
	uint64_t mq = (a < 0) != (b < 0) ? -(uint64_t)sq : (uint64_t)sq;
	uint64_t mr = a < 0 ? -(uint64_t)sr : (uint64_t)sr;

	DIV_CHECK(divides_to(n, d, q, r), "udiv %#" PRIx64 " / %#" PRIx64 " = %#" PRIx64
	      " r %#" PRIx64, n, d, q, r);
	if (a == INT64_MIN && b == -1)  /* undefined in C; libgcc's result */
		DIV_CHECK(sq == INT64_MIN && sr == 0, "INT64_MIN / -1");
	else
		DIV_CHECK(divides_to(ua, ub, mq, mr) && (mq == 0 || (sq < 0) == ((a < 0) != (b < 0))) &&
		      (mr == 0 || (sr < 0) == (a < 0)),
		      "div %" PRId64 " / %" PRId64 " = %" PRId64 " r %" PRId64, a, b, sq, sr);
	if (sizeof(long) >= 8 && !(a == INT64_MIN && b == -1)) {
		/* 64-bit hosts: the same as the CPU's division */
		volatile uint64_t vn = n, vd = d;
		volatile int64_t va = a, vb = b;
		DIV_CHECK(q == vn / vd && r == vn % vd && sq == va / vb && sr == va % vb,
		      "div %#" PRIx64 " / %#" PRIx64 " differs from the CPU's", n, d);
	}
}

static void test_division(void)
{
	static const uint64_t edge[] = {
		0, 1, 2, 3, 7, 10, 0x7fffffff, 0x80000000, 0xffffffff,
		0x100000000, 0x100000001, 0x123456789abcdef0, 0x7fffffffffffffff,
		0x8000000000000000, 0x8000000000000001, 0xfffffffffffffffe,
		0xffffffffffffffff, 0xffffffff00000000, 1000000007,
	};
	const size_t ne = sizeof(edge) / sizeof(edge[0]);
	uint64_t s = 0x9e3779b97f4a7c15;
	int fails = unit_fail;

	for (size_t i = 0; i < ne; i++)
		for (size_t j = 0; j < ne; j++)
			if (edge[j])
				div_one(edge[i], edge[j]);
	/* random operands of random bit lengths, so that every quotient
	 * length and both paths (32-bit, 64-bit loop) come up */
	for (int i = 0; i < 20000 && unit_fail == fails; i++) {
		uint64_t n = div_rand(&s) >> (div_rand(&s) & 63);
		uint64_t d = div_rand(&s) >> (div_rand(&s) & 63);
		if (d)
			div_one(n, d);
	}
	CHECK(unit_fail == fails, "64-bit division: %d wrong", unit_fail - fails);
	/* what postie's callers divide: times, sizes, dates */
	CHECK(__divdi3(-86399, 86400) == 0 && __moddi3(-86399, 86400) == -86399 &&
	      __divdi3(-86401, 86400) == -1 && __moddi3(-86401, 86400) == -1 &&
	      __udivdi3(1733450000000ULL, 1000) == 1733450000ULL &&
	      __umoddi3(1733450000123ULL, 1000) == 123, "division: known values");
}

/* ---- 64-bit shifts (libgcc's names) ---- */

uint64_t __ashldi3(uint64_t u, int b);
uint64_t __lshrdi3(uint64_t u, int b);

/* The reference moves one bit at a time (shifts by the constant 1,
 * which gcc does inline), so it calls neither function under test. */
static void test_shifts(void)
{
	static const uint64_t vals[] = { 0, 1, 0x80000000, 0xffffffff, 0x100000000,
					 0x8000000000000000, 0xffffffffffffffff,
					 0x0123456789abcdef, 0xfedcba9876543210 };
	uint64_t x = 0x9e3779b97f4a7c15;
	int bad = 0;

	for (int i = 0; i < 9 + 200; i++) {
		uint64_t v = i < 9 ? vals[i] : (x = x * 6364136223846793005ULL + 1442695040888963407ULL);
		uint64_t l = v, r = v;
		for (int b = 0; b < 64; b++) {
			bad += __ashldi3(v, b) != l || __lshrdi3(v, b) != r;
			l <<= 1;
			r >>= 1;
		}
	}
	CHECK(bad == 0, "64-bit shifts: %d wrong", bad);
}

/* A large block is a mapping of its own: written whole, and gone from
 * the address space once freed (mincore: ENOMEM for unmapped pages). */
static void test_malloc_map(void)
{
	size_t n = 200000;
	volatile size_t huge = SIZE_MAX - 4096; /* not known to gcc's size checks */
	unsigned char *p = malloc(n), vec[64];
	uintptr_t page;
	int ok = p != NULL;

	for (size_t i = 0; ok && i < n; i += 1000)
		p[i] = (unsigned char)i;
	for (size_t i = 0; ok && i < n; i += 1000)
		ok = p[i] == (unsigned char)i;
	CHECK(ok, "malloc(%zu)", n);
	if (!p)
		return;
	page = ((uintptr_t)p + 8192) & ~(uintptr_t)4095;
	CHECK(mincore((void *)page, 4096, vec) == 0, "mincore of a live block");
	free(p);
	errno = 0;
	CHECK(mincore((void *)page, 4096, vec) == -1 && errno == ENOMEM,
	      "freed large block still mapped: %d", errno);
	errno = 0;
	CHECK(malloc(huge) == NULL && errno == ENOMEM, "malloc(huge)");
}

void test_libc_small(void)
{
	test_printf();
	test_sscanf();
	test_time();
	test_getopt();
	test_passwd();
	test_setid();
	test_assert();
	test_strto();
	test_qsort();
	test_faccessat();
	test_malloc();
	test_malloc_map();
	test_strerror();
	test_inet();
	test_strstr();
	test_abort();
	test_division();
	test_shifts();
	test_stat();
	test_clock();
	test_memcpy();
	test_termios();
	test_sigaction();
	test_fdcalls();
	test_sockcalls();
	test_sigset();
	test_open_lseek();
	test_readdir();
	test_hostname();
	test_inotify();
	test_pathcalls();
	test_proccalls();
	test_rw();
	test_udp();
	test_getrandom();
	test_ppoll();
	test_startup();
	test_strings();
	test_strcase();
	test_memset_memmove();
}
