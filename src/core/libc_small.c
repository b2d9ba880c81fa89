/* libc_small — small replacements for the C library functions postie uses,
 * linked only into static musl builds (LIBC_SMALL = y in toolchain/<t>.mk)
 * so that the static link takes these instead of musl's much larger
 * archive members. Same names and semantics as C11/POSIX for the subset
 * postie (and the musl members it links, e.g. inet_ntop) uses; written
 * from the standards, not from musl.
 *
 * Limits and behaviour changes, on purpose:
 * - printf family: flags "-+ #0", width and precision (also '*'), length
 *   hh h l ll z j t, conversions d i u o x X c s p %. No floating point
 *   (postie prints none): %f %e %g %a consume their double argument and
 *   print the conversion literally; %n is not supported (printed
 *   literally, its argument untouched). Return value as C99 (the length
 *   that would have been written); -1/EOVERFLOW beyond INT_MAX.
 *   Only the string and file-descriptor forms (snprintf, vsnprintf,
 *   dprintf, vdprintf): postie has no stdio streams. vdprintf formats
 *   through a 128-byte stack buffer written with write(2), so output is
 *   not cut; a failed write makes it return -1.
 * - strtol, strtoul, strtoll, strtoull, strtoimax, strtoumax: C11, in
 *   the C locale.
 * - __assert_fail (what assert() calls in musl builds of the libraries)
 *   prints its line with dprintf and aborts, as musl's does.
 * - sscanf: whitespace, literals, %% and %d %i(decimal) %u %x %c %s %n with
 *   '*', width and length hh h l ll z j t. Anything else (%[ %f %p ...)
 *   stops the scan. Out-of-range integers saturate.
 * - gmtime_r for any 64-bit time_t whose year fits an int (else NULL,
 *   EOVERFLOW). localtime_r IS gmtime_r: no TZ, no /etc/localtime, the
 *   date headers postie writes (Received:, Date:, mbox From_) are in UTC
 *   with "+0000", which RFC 5322 allows.
 * - strftime: %a %b %h %d %e %H %M %S %m %y %Y %j %T %D %F %R %z %Z %n %t %%
 *   in the C locale; any other conversion is copied literally.
 * - getopt: POSIX; a leading ':' in optstring; no GNU permutation or
 *   optional arguments; optind = 0 resets.
 * - getpwnam/getpwuid read /etc/passwd only (no nscd), lines up to 511
 *   bytes; the result is a static buffer overwritten by the next call.
 * - setgroups/setgid/setuid are the raw system calls: they change the
 *   calling thread only, which is the whole process since postie has one
 *   thread. This drops musl's all-threads synccall machinery.
 * - faccessat: the system call when the flags ask nothing or AT_EACCESS
 *   with effective ids equal to the real ones; else faccessat2 (Linux
 *   5.8; ENOSYS before), never musl's fork-and-ask fallback.
 * - qsort: stable merge sort, no recursion, O(n log n), with a malloc'd
 *   copy of the array (insertion sort when malloc fails).
 * - strerror: the texts of the errors postie's calls can return (62 of
 *   them); any other number is "error N" in a static buffer.
 * - strstr: O(n·m) (postie's needles are a few constant bytes).
 * - isatty: tcgetattr's TCGETS (ENOTTY or EBADF from the kernel).
 * - strlen, stpcpy, stpncpy: a byte at a time; strcasecmp, strncasecmp:
 *   ASCII case folding (musl's tolower is ASCII's in every locale).
 * - abort: SIGABRT with the default action, then _exit(127); no locks.
 * - inet_pton: AF_INET (no leading zeros, as musl) and AF_INET6 (with a
 *   trailing dotted quad); inet_ntop: RFC 5952 text, mapped IPv4 dotted.
 * - fstatat (and so musl's stat, fstat, lstat): the statx system call
 *   (Linux 4.11; ENOSYS before), no fallback to the older stat calls.
 * - clock_gettime: the system call (clock_gettime64, then the 32-bit one
 *   on kernels before 5.1), no vDSO.
 * - memcpy: words when both pointers are equally aligned, else bytes.
 * - tcgetattr, tcsetattr: the ioctl system call, not through ioctl().
 * - sigaction (and musl's signal()): the rt_sigaction system call; no
 *   lock around SIGABRT's disposition (postie has one thread), none of
 *   musl's bookkeeping for threads and posix_spawn.
 * - fcntl, fchmod, fchown, socket, accept4: the system calls, without
 *   musl's fallbacks for kernels before 2.6.28, O_PATH descriptors and
 *   F_GETOWN of a process group.
 * - setsockopt, getsockopt, bind, listen: the system calls; no retry of
 *   SO_RCVTIMEO/SO_SNDTIMEO/SO_TIMESTAMP* with the 32-bit option numbers
 *   on 32-bit targets under kernels before 5.1 (postie sets none).
 * - signal (SA_RESTART, as musl's), sigaddset (refuses musl's signals
 *   32..34, as musl's), sigprocmask (the system call; the old mask is
 *   the kernel's, musl's hides its three signals from it).
 * - open, openat: the openat system call with O_LARGEFILE; no F_SETFD
 *   for kernels before 2.6.23 that ignore O_CLOEXEC. lseek: _llseek on
 *   32-bit targets. readdir: getdents64 on musl's own DIR (its opendir
 *   and closedir stay). gethostname: uname's node name, cut with a NUL.
 *   inotify_init1, inotify_add_watch: the system calls.
 * - unlink, unlinkat, rmdir, mkdir, mkdirat, rename, link, linkat,
 *   chmod, access, umask, kill, close, ftruncate, _Exit, getuid,
 *   geteuid, getgid, getegid, getpid: the system calls (the *at ones for
 *   paths); close counts EINTR as closed, as musl's.
 * - read, write, pread, pwrite, fsync, poll, ppoll, connect, sendto,
 *   recvfrom, getrandom: the system calls, not cancellation points
 *   (postie has one thread). ppoll: ppoll_time64 on 32-bit targets,
 *   the 32-bit call before Linux 5.1; poll is ppoll on aarch64.
 * - __libc_start_main (what crt1 calls): musl's steps, in MIPS16, on
 *   musl 1.2's private state (struct __libc's leading fields); musl's
 *   __init_tls sets up the thread pointer and TLS.
 * - __udivdi3, __umoddi3, __divdi3, __moddi3 (gcc's 64-bit division on
 *   32-bit targets): a bit at a time; x / 0 is 0.
 * - __ashldi3, __lshrdi3 (gcc's 64-bit shifts from MIPS16 code): in
 *   32-bit halves, counts 0..63.
 * - malloc, free, calloc, realloc: power-of-two size classes (16 B to
 *   16 KiB, with free lists, never coalesced or returned) carved from
 *   64 KiB anonymous mappings; larger blocks are mappings of their own,
 *   unmapped by free (the system calls, not musl's mmap/munmap). Not
 *   thread-safe (postie has one thread); no aligned_alloc/posix_memalign
 *   (nothing postie links uses them).
 */
#include <errno.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "core/fdio.h"

/* ---- 64-bit division without libgcc on 32-bit targets ------------------ */

/* *v /= d, returns *v % d, for 0 < d < 2^24. On 32-bit targets the
 * quotient is built 8 bits at a time with 32-bit divisions, so printf and
 * gmtime do not pull libgcc's __udivdi3/__umoddi3 (about 2 KB on mips). */
static uint32_t udiv64(uint64_t *v, uint32_t d)
{
	if (sizeof(long) >= 8) {
		uint32_t r = (uint32_t)(*v % d);
		*v /= d;
		return r;
	}
	uint64_t q = 0;
	uint32_t r = 0;
	for (int shift = 56; shift >= 0; shift -= 8) {
		uint32_t cur = (r << 8) | (uint32_t)((*v >> shift) & 0xff);
		q = (q << 8) | (cur / d);
		r = cur % d;
	}
	*v = q;
	return r;
}

/* Floor division of a by d (0 < d < 2^24): returns the quotient and
 * stores a remainder in [0, d). */
static int64_t fdiv64(int64_t a, uint32_t d, uint32_t *rem)
{
	uint64_t u;
	uint32_t r;

	if (a >= 0) {
		u = (uint64_t)a;
		*rem = udiv64(&u, d);
		return (int64_t)u;
	}
	u = (uint64_t)(-(a + 1));       /* a = -(u + 1), no overflow */
	r = udiv64(&u, d);
	*rem = d - 1 - r;
	return -(int64_t)u - 1;
}

/* ---- printf family ----------------------------------------------------- */

struct out {
	char *buf;
	size_t cap;     /* string: bytes of buf; fd: chunk size */
	size_t pos;
	size_t total;   /* bytes produced, written or not */
	int fd;         /* -1: string output */
	int err;
};

static void out_flush(struct out *o)
{
	const char *p = o->buf;

	while (o->fd >= 0 && o->pos && !o->err) {
		ssize_t w = write(o->fd, p, o->pos);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = 1;
		else
			p += w, o->pos -= (size_t)w;
	}
	o->pos = 0;
}

static void out_c(struct out *o, char c)
{
	if (o->fd >= 0) {
		if (o->pos == o->cap)
			out_flush(o);
		o->buf[o->pos++] = c;
	} else if (o->pos + 1 < o->cap) {
		o->buf[o->pos++] = c;
	}
	o->total++;
}

static void out_n(struct out *o, const char *s, size_t n)
{
	while (n--)
		out_c(o, *s++);
}

static void out_pad(struct out *o, char c, long n)
{
	while (n-- > 0)
		out_c(o, c);
}

enum { F_LEFT = 1, F_ZERO = 2, F_PLUS = 4, F_SPACE = 8, F_ALT = 16 };
enum { L_NONE, L_HH, L_H, L_L, L_LL, L_Z, L_J, L_T, L_BIGL };

struct spec {
	int flags;
	long width;
	long prec;      /* -1: none */
	int len;
};

static const char *parse_len(const char *f, int *len)
{
	*len = L_NONE;
	switch (*f) {
	case 'h': f++; *len = L_H; if (*f == 'h') { f++; *len = L_HH; } break;
	case 'l': f++; *len = L_L; if (*f == 'l') { f++; *len = L_LL; } break;
	case 'z': f++; *len = L_Z; break;
	case 'j': f++; *len = L_J; break;
	case 't': f++; *len = L_T; break;
	case 'L': f++; *len = L_BIGL; break;
	}
	return f;
}

static void out_num(struct out *o, const struct spec *sp, uint64_t u,
		    unsigned base, int upper, const char *prefix)
{
	char digits[24];
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t nd = 0, npre = strlen(prefix);
	long prec = sp->prec, zeros, len;

	while (u) {
		digits[sizeof(digits) - 1 - nd] = set[udiv64(&u, base)];
		nd++;
	}
	if (prec < 0)
		prec = 1;
	/* '#' with octal: the first digit must be 0. */
	if (base == 8 && (sp->flags & F_ALT) && (long)nd >= prec)
		prec = (long)nd + 1;
	zeros = prec > (long)nd ? prec - (long)nd : 0;
	len = (long)npre + zeros + (long)nd;
	if ((sp->flags & F_ZERO) && !(sp->flags & F_LEFT) && sp->prec < 0 &&
	    sp->width > len) {
		zeros += sp->width - len;
		len = sp->width;
	}
	if (!(sp->flags & F_LEFT))
		out_pad(o, ' ', sp->width - len);
	out_n(o, prefix, npre);
	out_pad(o, '0', zeros);
	out_n(o, digits + sizeof(digits) - nd, nd);
	if (sp->flags & F_LEFT)
		out_pad(o, ' ', sp->width - len);
}

static void out_str(struct out *o, const struct spec *sp, const char *s, size_t n)
{
	if (!(sp->flags & F_LEFT))
		out_pad(o, ' ', sp->width - (long)n);
	out_n(o, s, n);
	if (sp->flags & F_LEFT)
		out_pad(o, ' ', sp->width - (long)n);
}

static uint64_t arg_unsigned(int len, va_list *ap)
{
	switch (len) {
	case L_HH: return (unsigned char)va_arg(*ap, unsigned);
	case L_H: return (unsigned short)va_arg(*ap, unsigned);
	case L_L: return va_arg(*ap, unsigned long);
	case L_LL: return va_arg(*ap, unsigned long long);
	case L_Z: return va_arg(*ap, size_t);
	case L_J: return va_arg(*ap, uintmax_t);
	case L_T: return (uint64_t)va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, unsigned);
	}
}

static int64_t arg_signed(int len, va_list *ap)
{
	switch (len) {
	case L_HH: return (signed char)va_arg(*ap, int);
	case L_H: return (short)va_arg(*ap, int);
	case L_L: return va_arg(*ap, long);
	case L_LL: return va_arg(*ap, long long);
	case L_Z: return (ssize_t)va_arg(*ap, size_t);
	case L_J: return va_arg(*ap, intmax_t);
	case L_T: return va_arg(*ap, ptrdiff_t);
	default: return va_arg(*ap, int);
	}
}

static void format(struct out *o, const char *f, va_list *ap)
{
	while (*f) {
		const char *start = f;
		struct spec sp = { 0, 0, -1, L_NONE };
		const char *prefix = "";
		char c;

		if (*f != '%') {
			out_c(o, *f++);
			continue;
		}
		for (f++;; f++) {
			if (*f == '-') sp.flags |= F_LEFT;
			else if (*f == '0') sp.flags |= F_ZERO;
			else if (*f == '+') sp.flags |= F_PLUS;
			else if (*f == ' ') sp.flags |= F_SPACE;
			else if (*f == '#') sp.flags |= F_ALT;
			else break;
		}
		if (*f == '*') {
			sp.width = va_arg(*ap, int);
			if (sp.width < 0) {
				sp.flags |= F_LEFT;
				sp.width = -sp.width;
			}
			f++;
		} else {
			while (*f >= '0' && *f <= '9' && sp.width < 100000)
				sp.width = sp.width * 10 + (*f++ - '0');
		}
		if (*f == '.') {
			f++;
			sp.prec = 0;
			if (*f == '*') {
				sp.prec = va_arg(*ap, int);
				if (sp.prec < 0)
					sp.prec = -1;
				f++;
			} else {
				while (*f >= '0' && *f <= '9' && sp.prec < 100000)
					sp.prec = sp.prec * 10 + (*f++ - '0');
			}
		}
		f = parse_len(f, &sp.len);
		c = *f;
		if (c)
			f++;
		switch (c) {
		case 'd':
		case 'i': {
			int64_t v = arg_signed(sp.len, ap);
			uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
			if (v < 0)
				prefix = "-";
			else if (sp.flags & F_PLUS)
				prefix = "+";
			else if (sp.flags & F_SPACE)
				prefix = " ";
			out_num(o, &sp, u, 10, 0, prefix);
			break;
		}
		case 'u':
			out_num(o, &sp, arg_unsigned(sp.len, ap), 10, 0, "");
			break;
		case 'o':
			out_num(o, &sp, arg_unsigned(sp.len, ap), 8, 0, "");
			break;
		case 'x':
		case 'X': {
			uint64_t u = arg_unsigned(sp.len, ap);
			if ((sp.flags & F_ALT) && u)
				prefix = c == 'x' ? "0x" : "0X";
			out_num(o, &sp, u, 16, c == 'X', prefix);
			break;
		}
		case 'p':
			sp.flags |= F_ALT;
			out_num(o, &sp, (uintptr_t)va_arg(*ap, void *), 16, 0, "0x");
			break;
		case 'c': {
			char ch = (char)va_arg(*ap, int);
			out_str(o, &sp, &ch, 1);
			break;
		}
		case 's': {
			const char *s = va_arg(*ap, const char *);
			if (!s)
				s = "(null)";
			out_str(o, &sp, s, sp.prec < 0 ? strlen(s) : strnlen(s, (size_t)sp.prec));
			break;
		}
		case '%':
			out_c(o, '%');
			break;
		case 'f': case 'F': case 'e': case 'E':
		case 'g': case 'G': case 'a': case 'A':
			/* Not supported (no floating point code in postie):
			 * skip the argument, show the conversion. */
			if (sp.len == L_BIGL)
				(void)va_arg(*ap, long double);
			else
				(void)va_arg(*ap, double);
			/* fall through */
		default:
			out_n(o, start, (size_t)(f - start));
			break;
		}
	}
}

static int result(const struct out *o)
{
	if (o->err)
		return -1;
	if (o->total > INT_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	return (int)o->total;
}

int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt, va_list ap)
{
	struct out o = { buf, n, 0, 0, -1, 0 };
	va_list aq;

	va_copy(aq, ap);
	format(&o, fmt, &aq);
	va_end(aq);
	if (n)
		buf[o.pos] = '\0';
	return result(&o);
}

int snprintf(char *restrict buf, size_t n, const char *restrict fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

int vdprintf(int fd, const char *restrict fmt, va_list ap)
{
	char chunk[128];
	struct out o = { chunk, sizeof(chunk), 0, 0, fd, 0 };
	va_list aq;

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	va_copy(aq, ap);
	format(&o, fmt, &aq);
	va_end(aq);
	out_flush(&o);
	return result(&o);
}

int dprintf(int fd, const char *restrict fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vdprintf(fd, fmt, ap);
	va_end(ap);
	return r;
}

/* assert() in the libraries (udns): musl's __assert_fail prints with
 * fprintf, which would link all of stdio and the floating-point printf. */
_Noreturn void __assert_fail(const char *expr, const char *file, int line,
			     const char *func);
_Noreturn void __assert_fail(const char *expr, const char *file, int line,
			     const char *func)
{
	dprintf(2, "Assertion failed: %s (%s: %s: %d)\n", expr, file, func, line);
	abort();
}

/* ---- sscanf ------------------------------------------------------------ */

static int is_space(int c)
{
	return c == ' ' || (unsigned)(c - '\t') < 5;
}

static int digit_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	return 99;
}

static void store_int(void *p, int len, uint64_t v)
{
	switch (len) {
	case L_HH: *(unsigned char *)p = (unsigned char)v; break;
	case L_H: *(unsigned short *)p = (unsigned short)v; break;
	case L_L: *(unsigned long *)p = (unsigned long)v; break;
	case L_LL: *(unsigned long long *)p = v; break;
	case L_Z: *(size_t *)p = (size_t)v; break;
	case L_J: *(uintmax_t *)p = v; break;
	case L_T: *(ptrdiff_t *)p = (ptrdiff_t)v; break;
	default: *(unsigned *)p = (unsigned)v; break;
	}
}

/* Returns the number of characters of an integer at s (at most width),
 * 0 when there is none; *v gets the value, saturated to the type. */
static size_t scan_int(const char *s, size_t width, unsigned base, int sgn,
		       int len, uint64_t *v)
{
	const uint64_t lim = base == 16 ? UINT64_MAX / 16 : UINT64_MAX / 10;
	const unsigned lim_d = base == 16 ? 15 : 5;
	size_t i = 0, nd = 0;
	int neg = 0, over = 0;
	uint64_t u = 0, max;

	if (i < width && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (base == 16 && i + 1 < width && s[i] == '0' && (s[i + 1] | 0x20) == 'x' &&
	    digit_val(s[i + 2]) < 16)
		i += 2;
	for (; i < width; i++, nd++) {
		unsigned d = (unsigned)digit_val(s[i]);
		if (d >= base)
			break;
		if (u > lim || (u == lim && d > lim_d))
			over = 1;
		u = u * base + d;
	}
	if (!nd)
		return 0;
	if (len == L_LL || len == L_J || (sizeof(long) == 8 && (len == L_L || len == L_Z || len == L_T)))
		max = sgn ? INT64_MAX : UINT64_MAX;
	else if (len == L_HH || len == L_H || len == L_NONE)
		max = sgn ? INT_MAX : UINT_MAX;    /* as wide as int: C leaves it undefined */
	else
		max = sgn ? INT32_MAX : UINT32_MAX;
	if (over || u > max + (uint64_t)(sgn && neg))
		u = max + (uint64_t)(sgn && neg);
	*v = neg ? 0 - u : u;
	return i;
}

int sscanf(const char *restrict str, const char *restrict fmt, ...)
{
	const char *s = str;
	int n = 0;
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		int skip = 0, len;
		size_t width = 0;
		char c;

		if (is_space(*fmt)) {
			while (is_space(*s))
				s++;
			continue;
		}
		if (*fmt != '%' || fmt[1] == '%') {
			if (*fmt == '%') {
				fmt++;
				while (is_space(*s))
					s++;
			}
			if (*s != *fmt)
				goto fail;
			s++;
			continue;
		}
		fmt++;
		if (*fmt == '*') {
			skip = 1;
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9' && width < 100000)
			width = width * 10 + (size_t)(*fmt++ - '0');
		fmt = parse_len(fmt, &len);
		c = *fmt;
		if (c == 'n') {
			if (!skip)
				store_int(va_arg(ap, void *), len, (uint64_t)(s - str));
			continue;
		}
		if (c != 'c')
			while (is_space(*s))
				s++;
		if (!*s)
			goto fail;
		if (c == 'c') {
			char *d = skip ? NULL : va_arg(ap, char *);
			if (!width)
				width = 1;
			if (strnlen(s, width) < width)
				goto fail;
			if (d)
				memcpy(d, s, width);
			s += width;
		} else if (c == 's') {
			char *d = skip ? NULL : va_arg(ap, char *);
			size_t i = 0;
			while (s[i] && !is_space(s[i]) && (!width || i < width)) {
				if (d)
					d[i] = s[i];
				i++;
			}
			if (d)
				d[i] = '\0';
			s += i;
		} else if (c == 'd' || c == 'i' || c == 'u' || c == 'x' || c == 'X') {
			uint64_t v;
			size_t used = scan_int(s, width ? width : SIZE_MAX,
					       c == 'x' || c == 'X' ? 16 : 10,
					       c == 'd' || c == 'i', len, &v);
			if (!used)
				break;
			if (!skip)
				store_int(va_arg(ap, void *), len, v);
			s += used;
		} else {
			break;  /* not supported: stop as on a matching failure */
		}
		if (!skip)
			n++;
	}
	va_end(ap);
	return n;
fail:
	va_end(ap);
	/* Input ended (or a literal did not match at the end) before any
	 * conversion: EOF, as C requires for an input failure. */
	return (n == 0 && !*s) ? EOF : n;
}

/* ---- strtol family ---------------------------------------------------- */

/* musl's strtol reads through a string FILE and its scanf number scanner,
 * which links stdio's buffer and exit machinery. The C semantics: leading
 * blanks, a sign, base 0 (prefix 0x or 0 decides) or 2..36, "0x" taken
 * only before a hex digit; out of range saturates with ERANGE; no digits:
 * 0 and *end = nptr. Returns the magnitude, *neg and *over. */
static uint64_t to_u64(const char *nptr, char **end, int base, int *neg, int *over)
{
	const char *s = nptr;
	uint64_t v = 0, lim = UINT64_MAX;
	uint32_t lim_d;
	int any = 0;

	*neg = *over = 0;
	if (base < 0 || base == 1 || base > 36) {
		errno = EINVAL;
		if (end)
			*end = (char *)nptr;
		return 0;
	}
	while (is_space(*s))
		s++;
	if (*s == '+' || *s == '-')
		*neg = *s++ == '-';
	if ((base == 0 || base == 16) && s[0] == '0' && (s[1] | 0x20) == 'x' &&
	    digit_val(s[2]) < 16) {
		s += 2;
		base = 16;
	} else if (base == 0) {
		base = s[0] == '0' ? 8 : 10;
	}
	lim_d = udiv64(&lim, (uint32_t)base);
	for (; digit_val(*s) < base; s++, any = 1) {
		uint32_t d = (uint32_t)digit_val(*s);
		if (v > lim || (v == lim && d > lim_d))
			*over = 1;
		else
			v = v * (uint32_t)base + d;
	}
	if (end)
		*end = (char *)(any ? s : nptr);
	return v;
}

static uint64_t to_unsigned(const char *nptr, char **end, int base, uint64_t max)
{
	int neg, over;
	uint64_t v = to_u64(nptr, end, base, &neg, &over);

	if (over || v > max) {
		errno = ERANGE;
		return max;
	}
	return neg ? (0 - v) & max : v;
}

static int64_t to_signed(const char *nptr, char **end, int base, int64_t max)
{
	int neg, over;
	uint64_t v = to_u64(nptr, end, base, &neg, &over);

	if (over || v > (uint64_t)max + neg) {
		errno = ERANGE;
		return neg ? -max - 1 : max;
	}
	return neg ? (int64_t)(0 - v) : (int64_t)v;
}

long strtol(const char *restrict s, char **restrict end, int base)
{
	return (long)to_signed(s, end, base, LONG_MAX);
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base)
{
	return (unsigned long)to_unsigned(s, end, base, ULONG_MAX);
}

long long strtoll(const char *restrict s, char **restrict end, int base)
{
	return to_signed(s, end, base, LLONG_MAX);
}

unsigned long long strtoull(const char *restrict s, char **restrict end, int base)
{
	return to_unsigned(s, end, base, ULLONG_MAX);
}

intmax_t strtoimax(const char *restrict s, char **restrict end, int base)
{
	return to_signed(s, end, base, INTMAX_MAX);
}

uintmax_t strtoumax(const char *restrict s, char **restrict end, int base)
{
	return to_unsigned(s, end, base, UINTMAX_MAX);
}

/* ---- time -------------------------------------------------------------- */

struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict tm)
{
	uint32_t sec, doe, yoe, doy, mp, yy;
	int64_t days, era, year;

	days = fdiv64((int64_t)*t, 86400, &sec);
	/* Civil date from days since 1970-01-01 in 400-year eras of 146097
	 * days starting on March 1st (the leap day ends the year). */
	era = fdiv64(days + 719468, 146097, &doe);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	yy = yoe + (mp >= 10);                  /* civil year within the era */
	year = era * 400 + yy;
	if (year - 1900 > INT_MAX || year - 1900 < INT_MIN) {
		errno = EOVERFLOW;
		return NULL;
	}
	tm->tm_year = (int)(year - 1900);
	tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	if (mp >= 10)
		tm->tm_yday = (int)(doy - 306);
	else
		tm->tm_yday = (int)(doy + 59 + (yy % 4 == 0 && (yy % 100 != 0 || yy % 400 == 0)));
	/* 146097 days are a whole number of weeks; 1970-01-01 was a Thursday. */
	tm->tm_wday = (int)((doe + 3) % 7);
	tm->tm_hour = (int)(sec / 3600);
	tm->tm_min = (int)(sec / 60 % 60);
	tm->tm_sec = (int)(sec % 60);
	tm->tm_isdst = 0;
	tm->tm_gmtoff = 0;
	tm->tm_zone = "UTC";
	return tm;
}

struct tm *localtime_r(const time_t *restrict t, struct tm *restrict tm)
{
	return gmtime_r(t, tm);
}

static const char wday_names[] = "SunMonTueWedThuFriSat";
static const char mon_names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* strftime's body; a separate function so that %T and the like can
 * recurse with a format that is not a literal. */
static size_t fmt_time(char *buf, size_t max, const char *fmt, const struct tm *tm)
{
	size_t pos = 0;

	for (; *fmt; fmt++) {
		char tmp[24];
		const char *s = tmp;
		size_t n = 1;
		long long num = 0;
		int width = 0;  /* > 0: print num zero-padded, < 0: space-padded */

		tmp[0] = *fmt;
		if (*fmt == '%' && fmt[1]) {
			switch (*++fmt) {
			case 'a':
				s = (unsigned)tm->tm_wday < 7 ? wday_names + 3 * tm->tm_wday : "???";
				n = 3;
				break;
			case 'b':
			case 'h':
				s = (unsigned)tm->tm_mon < 12 ? mon_names + 3 * tm->tm_mon : "???";
				n = 3;
				break;
			case 'd': num = tm->tm_mday; width = 2; break;
			case 'e': num = tm->tm_mday; width = -2; break;
			case 'H': num = tm->tm_hour; width = 2; break;
			case 'M': num = tm->tm_min; width = 2; break;
			case 'S': num = tm->tm_sec; width = 2; break;
			case 'm': num = tm->tm_mon + 1; width = 2; break;
			case 'j': num = tm->tm_yday + 1; width = 3; break;
			case 'y':       /* 1900 is a multiple of 100 */
				num = tm->tm_year % 100;
				num += num < 0 ? 100 : 0;
				width = 2;
				break;
			case 'Y': num = (long long)tm->tm_year + 1900; width = 1; break;
			case 'z': {
				long off = tm->tm_gmtoff, a = off < 0 ? -off : off;
				tmp[0] = off < 0 ? '-' : '+';
				num = a / 3600 * 100 + a / 60 % 60;
				width = 4;
				break;
			}
			case 'Z':
				s = tm->tm_zone ? tm->tm_zone : "";
				n = strlen(s);
				break;
			case 'T': s = "%H:%M:%S"; n = 0; break;
			case 'R': s = "%H:%M"; n = 0; break;
			case 'D': s = "%m/%d/%y"; n = 0; break;
			case 'F': s = "%Y-%m-%d"; n = 0; break;
			case 'n': tmp[0] = '\n'; break;
			case 't': tmp[0] = '\t'; break;
			case '%': break;
			default:        /* unknown: copied literally */
				s = fmt - 1;
				n = 2;
				break;
			}
		}
		if (width) {
			size_t sign = *fmt == 'z';
			n = sign + (size_t)snprintf(tmp + sign, sizeof(tmp) - sign,
						    width > 0 ? "%0*lld" : "%*lld",
						    width > 0 ? width : -width, num);
		} else if (n == 0) {    /* %T %R %D %F */
			n = fmt_time(buf + pos, max - pos, s, tm);
			if (n == 0)
				return 0;
			pos += n;
			continue;
		}
		if (max == 0 || n >= max - pos)
			return 0;
		memcpy(buf + pos, s, n);
		pos += n;
	}
	if (pos >= max)
		return 0;
	buf[pos] = '\0';
	return pos;
}

size_t strftime(char *restrict buf, size_t max, const char *restrict fmt,
		const struct tm *restrict tm)
{
	return fmt_time(buf, max, fmt, tm);
}

/* ---- getopt ------------------------------------------------------------ */

char *optarg;
int optind = 1, opterr = 1, optopt;
static int optpos;      /* index inside argv[optind] of the next option char */

static void opt_err(const char *prog, const char *msg, int c)
{
	dprintf(2, "%s%s%c\n", prog, msg, c);
}

int getopt(int argc, char *const argv[], const char *optstring)
{
	const char *arg, *p;
	int c, quiet = optstring[0] == ':';

	if (optind == 0) {
		optind = 1;
		optpos = 0;
	}
	optarg = NULL;
	if (optind >= argc || !argv[optind])
		return -1;
	arg = argv[optind];
	if (optpos == 0) {
		if (arg[0] != '-' || arg[1] == '\0')
			return -1;
		if (arg[1] == '-' && arg[2] == '\0') {
			optind++;
			return -1;
		}
		optpos = 1;
	}
	c = (unsigned char)arg[optpos++];
	if (arg[optpos] == '\0') {
		optind++;
		optpos = 0;
	}
	p = c != ':' ? strchr(optstring + quiet, c) : NULL;
	if (!p) {
		optopt = c;
		if (opterr && !quiet)
			opt_err(argv[0], ": illegal option -- ", c);
		return '?';
	}
	if (p[1] == ':') {
		if (optpos) {           /* "-cvalue" */
			optarg = (char *)arg + optpos;
			optind++;
			optpos = 0;
		} else if (optind < argc) {
			optarg = argv[optind++];
		} else {
			optopt = c;
			if (quiet)
				return ':';
			if (opterr)
				opt_err(argv[0], ": option requires an argument -- ", c);
			return '?';
		}
	}
	return c;
}

/* ---- passwd ------------------------------------------------------------ */

static struct passwd pw_ent;
static char pw_line[512];

/* Splits pw_line (one /etc/passwd line) into pw_ent; 0 when well formed. */
static int pw_parse(void)
{
	char *f[7], *p = pw_line;
	uint32_t id[2];

	for (int i = 0; i < 7; i++) {
		f[i] = p;
		p += strcspn(p, i < 6 ? ":" : "\n");
		if (i < 6 && *p != ':')
			return -1;
		*p++ = '\0';
	}
	for (int i = 0; i < 2; i++) {
		const char *s = f[2 + i];
		id[i] = 0;
		if (!*s)
			return -1;
		for (; *s; s++) {
			uint32_t d = (uint32_t)(*s - '0');
			if (d > 9 || id[i] > (UINT32_MAX - d) / 10)
				return -1;
			id[i] = id[i] * 10 + d;
		}
	}
	pw_ent.pw_name = f[0];
	pw_ent.pw_passwd = f[1];
	pw_ent.pw_uid = (uid_t)id[0];
	pw_ent.pw_gid = (gid_t)id[1];
	pw_ent.pw_gecos = f[4];
	pw_ent.pw_dir = f[5];
	pw_ent.pw_shell = f[6];
	return 0;
}

static struct passwd *pw_find(const char *name, uid_t uid)
{
	struct fdio_in r;
	struct passwd *found = NULL;
	int e = errno, fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	fdio_in_init(&r, fd);
	while (!found && fdio_gets(&r, pw_line, sizeof(pw_line))) {
		if (!strchr(pw_line, '\n') && fdio_peek(&r) >= 0) {
			/* Too long: skip the rest of the line. */
			while (fdio_gets(&r, pw_line, sizeof(pw_line)) && !strchr(pw_line, '\n'))
				;
			continue;
		}
		if (pw_parse() != 0)
			continue;
		if (name ? strcmp(pw_ent.pw_name, name) == 0 : pw_ent.pw_uid == uid)
			found = &pw_ent;
	}
	close(fd);
	errno = e;      /* not found is not an error */
	return found;
}

struct passwd *getpwnam(const char *name)
{
	return pw_find(name, 0);
}

struct passwd *getpwuid(uid_t uid)
{
	return pw_find(NULL, uid);
}

/* ---- credentials ------------------------------------------------------- */

/* 32-bit ARM (and i386) have 16-bit legacy calls under the plain names. */
#ifdef SYS_setgroups32
#define NR_SETGROUPS SYS_setgroups32
#define NR_SETGID SYS_setgid32
#define NR_SETUID SYS_setuid32
#else
#define NR_SETGROUPS SYS_setgroups
#define NR_SETGID SYS_setgid
#define NR_SETUID SYS_setuid
#endif

int setgroups(size_t n, const gid_t *list)
{
	return (int)syscall(NR_SETGROUPS, (long)n, list);
}

int setgid(gid_t gid)
{
	return (int)syscall(NR_SETGID, (long)gid);
}

int setuid(uid_t uid)
{
	return (int)syscall(NR_SETUID, (long)uid);
}

/* ---- qsort ------------------------------------------------------------- */

/* Stable, although C does not ask for it: postie reports the later of two
 * duplicate entries (aliases), which an unstable sort could reorder. */
typedef int (*cmp_fn)(const void *, const void *);

static void swap_bytes(char *a, char *b, size_t n)
{
	while (n--) {
		char t = *a;
		*a++ = *b;
		*b++ = t;
	}
}

/* Merges the sorted runs [lo, mid) and [mid, hi) of b (byte offsets),
 * with tmp holding a copy of the left run. */
static void merge(char *b, char *tmp, size_t lo, size_t mid, size_t hi,
		  size_t size, cmp_fn cmp)
{
	char *l = tmp, *le = tmp + (mid - lo), *r = b + mid, *re = b + hi, *d = b + lo;

	memcpy(tmp, b + lo, mid - lo);
	while (l < le) {
		if (r < re && cmp(r, l) < 0) {
			memcpy(d, r, size);
			r += size;
		} else {
			memcpy(d, l, size);
			l += size;
		}
		d += size;
	}
}

void qsort(void *base, size_t n, size_t size, cmp_fn cmp)
{
	char *b = base, *tmp;
	size_t total, w, lo;

	if (n < 2 || size == 0)
		return;
	tmp = n <= SIZE_MAX / size ? malloc(n * size) : NULL;
	total = n * size;
	if (!tmp) {
		/* No memory for the merge: insertion sort, O(n^2) but stable. */
		for (size_t i = size; i < total; i += size)
			for (size_t j = i; j > 0 && cmp(b + j - size, b + j) > 0; j -= size)
				swap_bytes(b + j - size, b + j, size);
		return;
	}
	/* Bottom-up merge sort: runs of w elements, w doubling. */
	for (w = size; w < total; w *= 2)
		for (lo = 0; lo + w < total; lo += 2 * w)
			merge(b, tmp, lo, lo + w, total - lo - w > w ? lo + 2 * w : total, size, cmp);
	free(tmp);
}

/* ---- faccessat ----------------------------------------------------------- */

/* AT_EACCESS asks with the effective ids. postie never runs set-id (run_as
 * sets real and effective ids alike), so the plain system call answers;
 * otherwise, and for other flags, faccessat2 (Linux 5.8) does. This drops
 * musl's fallback, which forks a child to ask. */
int faccessat(int fd, const char *path, int mode, int flag)
{
	if (flag == 0 || (flag == AT_EACCESS && getuid() == geteuid() && getgid() == getegid()))
		return (int)syscall(SYS_faccessat, fd, path, mode);
	return (int)syscall(SYS_faccessat2, fd, path, mode, flag);
}

/* ---- malloc, free, calloc, realloc ------------------------------------- */

/* postie allocates at start and reload (users, aliases, certificates) and
 * udns once per query: a few hundred blocks, never on the per-command
 * path. So: power-of-two size classes from 16 bytes to 16 KiB, each with
 * a free list, carved from 64 KiB anonymous mappings; larger blocks are
 * mappings of their own and go back to the system when freed. O(1) for
 * every call; at most half of a small block is slack, and memory of the
 * small classes is kept for reuse, not returned (postie's use is flat).
 * Single-threaded, like postie. A block's header holds its size while it
 * is in use and the free list's link while it is free. */
union sm_hdr {
	size_t size;
	union sm_hdr *next;
	max_align_t align;
};

#define SM_HDR sizeof(union sm_hdr)
#define SM_MIN_SHIFT 4
#define SM_MAX_SHIFT 14
#define SM_AREA ((size_t)64 << 10)

static union sm_hdr *sm_free_list[SM_MAX_SHIFT + 1];
static char *sm_cur, *sm_end;

/* The mmap and munmap system calls, not musl's functions (their offset
 * and size checks, and the lock for MAP_FIXED, are for other callers);
 * mmap2 on 32-bit targets, with offset 0 either call. */
#ifdef SYS_mmap2
#define SM_SYS_MMAP SYS_mmap2
#else
#define SM_SYS_MMAP SYS_mmap
#endif

static void *sm_map(size_t n)
{
	long p = syscall(SM_SYS_MMAP, 0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);

	return p == -1 ? NULL : (void *)p;
}

/* Puts the block h of 2^k bytes on its free list. */
static void sm_push(union sm_hdr *h, unsigned k)
{
	h->next = sm_free_list[k];
	sm_free_list[k] = h;
}

void *malloc(size_t n)
{
	union sm_hdr *h;
	size_t size;
	unsigned k = SM_MIN_SHIFT;

	if (n > SIZE_MAX / 2) {
		errno = ENOMEM;
		return NULL;
	}
	n += SM_HDR;
	if (n > ((size_t)1 << SM_MAX_SHIFT)) {
		size = (n + 4095) & ~(size_t)4095;
		h = sm_map(size);
	} else {
		while (((size_t)1 << k) < n)
			k++;
		size = (size_t)1 << k;
		h = sm_free_list[k];
		if (h) {
			sm_free_list[k] = h->next;
		} else {
			if ((size_t)(sm_end - sm_cur) < size) {
				char *a = sm_map(SM_AREA);
				if (!a) {
					errno = ENOMEM;
					return NULL;
				}
				/* The rest of the old area, in the largest blocks
				 * that fit (all sizes are multiples of 16). */
				while (sm_end - sm_cur >= (1 << SM_MIN_SHIFT)) {
					unsigned j = SM_MAX_SHIFT;
					while (((size_t)1 << j) > (size_t)(sm_end - sm_cur))
						j--;
					sm_push((union sm_hdr *)(void *)sm_cur, j);
					sm_cur += (size_t)1 << j;
				}
				sm_cur = a;
				sm_end = a + SM_AREA;
			}
			h = (union sm_hdr *)(void *)sm_cur;
			sm_cur += size;
		}
	}
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	h->size = size;
	return h + 1;
}

void free(void *p)
{
	union sm_hdr *h;
	unsigned k = SM_MIN_SHIFT;

	if (!p)
		return;
	h = (union sm_hdr *)p - 1;
	if (h->size > ((size_t)1 << SM_MAX_SHIFT)) {
		syscall(SYS_munmap, h, h->size);
		return;
	}
	while (((size_t)1 << k) < h->size)
		k++;
	sm_push(h, k);
}

void *calloc(size_t m, size_t n)
{
	void *p;

	if (n && m > SIZE_MAX / n) {
		errno = ENOMEM;
		return NULL;
	}
	p = malloc(m * n);
	return p ? memset(p, 0, m * n) : NULL;
}

void *realloc(void *p, size_t n)
{
	size_t have;
	void *q;

	if (!p)
		return malloc(n);
	have = ((union sm_hdr *)p - 1)->size - SM_HDR;
	if (n <= have)
		return p;
	q = malloc(n);
	if (q) {
		memcpy(q, p, have);
		free(p);
	}
	return q;
}

/* ---- strerror ------------------------------------------------------------ */

/* The errors postie's system calls can return, in one string: each entry
 * is its number's index in sm_errnos, the texts separated by NULs. Any
 * other number prints as "error N". */
static const unsigned short sm_errnos[] = {
	EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, EBADF, ECHILD, EAGAIN,
	ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR,
	EINVAL, ENFILE, EMFILE, ENOTTY, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS,
	EMLINK, EPIPE, ERANGE, ENAMETOOLONG, ENOLCK, ENOSYS, ENOTEMPTY, ELOOP,
	EOVERFLOW, EILSEQ, ENOTSOCK, EMSGSIZE, EPROTONOSUPPORT, ENOTSUP,
	EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL, ENETDOWN, ENETUNREACH,
	ECONNABORTED, ECONNRESET, ENOBUFS, EISCONN, ENOTCONN, ETIMEDOUT,
	ECONNREFUSED, EHOSTDOWN, EHOSTUNREACH, EALREADY, EINPROGRESS, ESTALE,
	EDQUOT, EPROTO, ECANCELED,
};
static const char sm_errtext[] =
	"Operation not permitted\0No such file or directory\0No such process\0"
	"Interrupted system call\0I/O error\0No such device or address\0"
	"Argument list too long\0Bad file descriptor\0No child process\0"
	"Resource temporarily unavailable\0Out of memory\0Permission denied\0"
	"Bad address\0Resource busy\0File exists\0Cross-device link\0"
	"No such device\0Not a directory\0Is a directory\0Invalid argument\0"
	"Too many open files in system\0No file descriptors available\0"
	"Not a tty\0Text file busy\0File too large\0No space left on device\0"
	"Invalid seek\0Read-only file system\0Too many links\0Broken pipe\0"
	"Result not representable\0Filename too long\0No locks available\0"
	"Function not implemented\0Directory not empty\0Symbolic link loop\0"
	"Value too large for data type\0Illegal byte sequence\0Not a socket\0"
	"Message too large\0Protocol not supported\0Not supported\0"
	"Address family not supported by protocol\0Address in use\0"
	"Address not available\0Network is down\0Network unreachable\0"
	"Connection aborted\0Connection reset by peer\0"
	"No buffer space available\0Socket is connected\0"
	"Socket not connected\0Operation timed out\0Connection refused\0"
	"Host is down\0Host is unreachable\0Operation already in progress\0"
	"Operation in progress\0Stale file handle\0Quota exceeded\0"
	"Protocol error\0Operation canceled";

char *strerror(int e)
{
	static char other[24];
	const char *s = sm_errtext;

	for (size_t i = 0; i < sizeof(sm_errnos) / sizeof(sm_errnos[0]); i++) {
		if (sm_errnos[i] == e)
			return (char *)s;
		s += strlen(s) + 1;
	}
	snprintf(other, sizeof(other), "error %d", e);
	return other;
}

/* ---- strstr -------------------------------------------------------------- */

/* O(n·m): postie looks for a few bytes (" PLAIN ", "PRIVATE KEY") in
 * short strings, never for client data in mail. */
char *strstr(const char *h, const char *n)
{
	size_t k = strlen(n);

	for (; *h; h++)
		if (strncmp(h, n, k) == 0)
			return (char *)h;
	return k ? NULL : (char *)h;
}

/* ---- abort --------------------------------------------------------------- */

/* SIGABRT with its default action (a core dump), whatever handler or
 * mask was set; _exit if it somehow returns. musl's also takes its
 * internal locks for other threads, which postie does not have. */
_Noreturn void abort(void)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t set;

	sigaction(SIGABRT, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGABRT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), SIGABRT);
	_exit(127);
}

/* ---- inet_pton, inet_ntop ----------------------------------------------- */

/* Dotted quad: four decimal parts 0..255 without leading zeros. */
static int pton4(const char *s, unsigned char *a)
{
	for (int i = 0; i < 4; i++) {
		int v = 0, j = 0;
		for (; j < 3 && s[j] >= '0' && s[j] <= '9'; j++)
			v = v * 10 + s[j] - '0';
		if (j == 0 || (j > 1 && s[0] == '0') || v > 255)
			return 0;
		a[i] = (unsigned char)v;
		s += j;
		if (*s++ != (i == 3 ? '\0' : '.'))
			return 0;
	}
	return 1;
}

/* RFC 4291 section 2.2: up to eight groups of 1-4 hex digits, one "::",
 * a dotted quad as the last 32 bits. */
static int pton6(const char *s, unsigned char *a)
{
	unsigned w[8], out[8] = { 0 };
	int n = 0, gap = -1;

	if (*s == ':' && *++s != ':')
		return 0;
	for (;;) {
		int j = 0;
		unsigned v = 0;
		if (*s == ':') {
			if (gap >= 0)
				return 0;
			gap = n;
			if (!*++s)
				break;
		}
		if (n == 8)
			return 0;
		for (; j < 4; j++) {
			int c = s[j] | 0x20, d = s[j] >= '0' && s[j] <= '9' ? s[j] - '0' :
				c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				break;
			v = v * 16 + (unsigned)d;
		}
		if (j == 0)
			return 0;
		if (s[j] == '.') {
			unsigned char q[4];
			if (n > 6 || !pton4(s, q))
				return 0;
			w[n++] = (unsigned)q[0] << 8 | q[1];
			w[n++] = (unsigned)q[2] << 8 | q[3];
			break;
		}
		w[n++] = v;
		s += j;
		if (!*s)
			break;
		if (*s++ != ':' || !*s)
			return 0;
	}
	if (gap < 0 ? n != 8 : n == 8)
		return 0;
	if (gap < 0)
		gap = n;
	for (int i = 0; i < n; i++)
		out[i < gap ? i : 8 - n + i] = w[i];
	for (int i = 0; i < 8; i++) {
		a[2 * i] = (unsigned char)(out[i] >> 8);
		a[2 * i + 1] = (unsigned char)out[i];
	}
	return 1;
}

int inet_pton(int af, const char *restrict s, void *restrict a)
{
	if (af == AF_INET)
		return pton4(s, a);
	if (af == AF_INET6)
		return pton6(s, a);
	errno = EAFNOSUPPORT;
	return -1;
}

/* IPv6 as RFC 5952: lower-case hex, the longest run of two or more zero
 * groups (the first of equals) as "::", ::ffff:a.b.c.d for mapped IPv4. */
const char *inet_ntop(int af, const void *restrict src, char *restrict dst, socklen_t n)
{
	const unsigned char *a = src;
	char buf[48], *p = buf;

	if (af == AF_INET) {
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
	} else if (af != AF_INET6) {
		errno = EAFNOSUPPORT;
		return NULL;
	} else if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\377\377", 12) == 0) {
		snprintf(buf, sizeof(buf), "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
	} else {
		int best = -1, blen = 1;
		for (int i = 0, j; i < 8; i = j + 1) {
			for (j = i; j < 8 && !a[2 * j] && !a[2 * j + 1]; j++)
				;
			if (j - i > blen) {
				best = i;
				blen = j - i;
			}
		}
		for (int i = 0; i < 8; i++) {
			if (i == best) {
				*p++ = ':';
				if (i == 0)
					*p++ = ':';
				i += blen - 1;
				continue;
			}
			p += snprintf(p, 6, "%x%s", (unsigned)a[2 * i] << 8 | a[2 * i + 1],
				      i < 7 ? ":" : "");
		}
		*p = '\0';
	}
	if (strlen(buf) >= n) {
		errno = ENOSPC;
		return NULL;
	}
	return strcpy(dst, buf);
}

/* ---- fstatat (stat, fstat, lstat) ----------------------------------------- */

/* The statx(2) system call's struct (Linux 4.11, include/uapi/linux/stat.h). */
struct sm_statx_time {
	int64_t sec;
	uint32_t nsec;
	int32_t pad;
};
struct sm_statx {
	uint32_t mask, blksize;
	uint64_t attributes;
	uint32_t nlink, uid, gid;
	uint16_t mode, pad;
	uint64_t ino, size, blocks, attributes_mask;
	struct sm_statx_time atime, btime, ctime, mtime;
	uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
	uint64_t spare[14];
};

/* musl's stat, fstat and lstat call this. */
int fstatat(int fd, const char *restrict path, struct stat *restrict st, int flag)
{
	struct sm_statx x;

	if (syscall(SYS_statx, fd, path, flag, 0x7ff /* STATX_BASIC_STATS */, &x))
		return -1;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(x.dev_major, x.dev_minor);
	st->st_ino = x.ino;
	st->st_mode = x.mode;
	st->st_nlink = x.nlink;
	st->st_uid = x.uid;
	st->st_gid = x.gid;
	st->st_rdev = makedev(x.rdev_major, x.rdev_minor);
	st->st_size = (off_t)x.size;
	st->st_blksize = (blksize_t)x.blksize;
	st->st_blocks = (blkcnt_t)x.blocks;
	st->st_atim.tv_sec = x.atime.sec;
	st->st_atim.tv_nsec = x.atime.nsec;
	st->st_mtim.tv_sec = x.mtime.sec;
	st->st_mtim.tv_nsec = x.mtime.nsec;
	st->st_ctim.tv_sec = x.ctime.sec;
	st->st_ctim.tv_nsec = x.ctime.nsec;
#if defined(_REDIR_TIME64) && _REDIR_TIME64
	/* the 32-bit copies musl keeps for binaries built before time64 */
	st->__st_atim32.tv_sec = (long)x.atime.sec;
	st->__st_atim32.tv_nsec = (long)x.atime.nsec;
	st->__st_mtim32.tv_sec = (long)x.mtime.sec;
	st->__st_mtim32.tv_nsec = (long)x.mtime.nsec;
	st->__st_ctim32.tv_sec = (long)x.ctime.sec;
	st->__st_ctim32.tv_nsec = (long)x.ctime.nsec;
#endif
	return 0;
}

/* ---- clock_gettime -------------------------------------------------------- */

/* The system call, no vDSO (postie reads the clock a few times per event
 * loop turn, not per byte). 32-bit targets: clock_gettime64 (Linux 5.1),
 * which fills musl's 64-bit struct timespec as it is (the high half of
 * the kernel's 64-bit tv_nsec is musl's padding), then the 32-bit call on
 * older kernels. __clock_gettime is the name musl's own time() calls, so
 * that musl's version (and its vDSO lookup) is not linked. */
int __clock_gettime(clockid_t clk, struct timespec *ts);

int __clock_gettime(clockid_t clk, struct timespec *ts)
{
#ifdef SYS_clock_gettime64
	int e = errno;
	long t32[2];

	if (sizeof(time_t) > sizeof(long) && syscall(SYS_clock_gettime64, clk, ts) == 0)
		return 0;
	if (errno != ENOSYS || syscall(SYS_clock_gettime32, clk, t32))
		return -1;
	errno = e;
	ts->tv_sec = t32[0];
	ts->tv_nsec = t32[1];
	return 0;
#else
	return (int)syscall(SYS_clock_gettime, clk, ts);
#endif
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	return __clock_gettime(clk, ts);
}

/* ---- memcpy --------------------------------------------------------------- */

/* Words when source and destination are equally aligned, else bytes.
 * The optimize attribute keeps gcc from turning the byte loop back into
 * a call to memcpy. MIPS only: there musl's memcpy is C (1,140 bytes);
 * on ARM and x86 it is a fast assembly one (x86's memmove jumps into its
 * middle). */
#ifdef __mips__
typedef size_t __attribute__((__may_alias__)) sm_word;

__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	const uintptr_t w = sizeof(sm_word) - 1;

	if ((((uintptr_t)d ^ (uintptr_t)s) & w) == 0) {
		for (; n && ((uintptr_t)d & w); n--)
			*d++ = *s++;
		for (; n > w; n -= w + 1, d += w + 1, s += w + 1)
			*(sm_word *)(void *)d = *(const sm_word *)(const void *)s;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	const sm_word w = (sm_word)-1 / 255 * (unsigned char)c;

	for (; n && ((uintptr_t)d & (sizeof(w) - 1)); n--)
		*d++ = (unsigned char)c;
	for (; n >= sizeof(w); n -= sizeof(w), d += sizeof(w))
		*(sm_word *)(void *)d = w;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

/* memcpy above copies upwards, each unit read before it is written, so
 * it also moves to a lower address over an overlap; to a higher one
 * (inside the source) the bytes go downwards. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if ((uintptr_t)d - (uintptr_t)s >= n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}
#endif

/* ---- strchr, strchrnul, strspn, strcspn, memchr ----------------------------- */

/* A byte at a time: musl's read words at a time (strchrnul, memchr) or
 * build bit tables (strspn, strcspn), faster on long strings and about
 * 1 KB more on mips; postie's strings are lines and words.
 * __strchrnul is the name musl's getenv and strchr call. */
char *__strchrnul(const char *s, int c);

char *__strchrnul(const char *s, int c)
{
	while (*s && *(const unsigned char *)s != (unsigned char)c)
		s++;
	return (char *)s;
}

char *strchrnul(const char *s, int c)
{
	return __strchrnul(s, c);
}

char *strchr(const char *s, int c)
{
	char *r = __strchrnul(s, c);

	return *(unsigned char *)r == (unsigned char)c ? r : NULL;
}

size_t strspn(const char *s, const char *set)
{
	const char *p = s;

	while (*p && strchr(set, *p))
		p++;
	return (size_t)(p - s);
}

size_t strcspn(const char *s, const char *set)
{
	const char *p = s;

	while (*p && !strchr(set, *p))
		p++;
	return (size_t)(p - s);
}

void *memchr(const void *s, int c, size_t n)
{
	const unsigned char *p = s;

	for (; n; n--, p++)
		if (*p == (unsigned char)c)
			return (void *)p;
	return NULL;
}

/* ---- strlen, stpcpy, stpncpy, strcasecmp, strncasecmp ---------------------- */

/* A byte at a time, as the ones above: musl's strlen, stpcpy and
 * stpncpy read words at a time (56, 80 and 108 bytes on mips), its
 * case-insensitive compares call tolower() per byte. __stpcpy and
 * __stpncpy are the names musl's strcpy and strncpy call. Case folding
 * is ASCII's, as musl's tolower in every locale. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
size_t strlen(const char *s)
{
	const char *p = s;

	while (*p)
		p++;
	return (size_t)(p - s);
}

char *__stpcpy(char *restrict d, const char *restrict s);

__attribute__((optimize("no-tree-loop-distribute-patterns")))
char *__stpcpy(char *restrict d, const char *restrict s)
{
	while ((*d = *s++))
		d++;
	return d;
}

char *stpcpy(char *restrict d, const char *restrict s)
{
	return __stpcpy(d, s);
}

char *__stpncpy(char *restrict d, const char *restrict s, size_t n);

/* the rest of the n bytes NUL, the end the first NUL (or d + n) */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
char *__stpncpy(char *restrict d, const char *restrict s, size_t n)
{
	for (; n && (*d = *s); n--, d++, s++)
		;
	memset(d, 0, n);
	return d;
}

char *stpncpy(char *restrict d, const char *restrict s, size_t n)
{
	return __stpncpy(d, s, n);
}

static int sm_lower(int c)
{
	return (unsigned)c - 'A' < 26 ? c | 0x20 : c;
}

int strncasecmp(const char *l, const char *r, size_t n)
{
	const unsigned char *a = (const void *)l, *b = (const void *)r;

	for (; n; n--, a++, b++) {
		int d = sm_lower(*a) - sm_lower(*b);
		if (d || !*a)
			return d;
	}
	return 0;
}

int strcasecmp(const char *l, const char *r)
{
	return strncasecmp(l, r, SIZE_MAX);
}

/* ---- tcgetattr, tcsetattr, isatty ------------------------------------------ */

/* The ioctl system call itself: musl's go through its ioctl(), which on
 * 32-bit targets carries a table converting the time64-affected
 * commands (1,156 bytes on mips); TCGETS/TCSETS* have no times. */
int tcgetattr(int fd, struct termios *tio)
{
	return syscall(SYS_ioctl, fd, TCGETS, tio) ? -1 : 0;
}

int tcsetattr(int fd, int act, const struct termios *tio)
{
	if (act < 0 || act > 2) {
		errno = EINVAL;
		return -1;
	}
	return (int)syscall(SYS_ioctl, fd, TCSETS + act, tio);
}

/* A terminal is what answers TCGETS (as tcgetattr above); errno is the
 * kernel's: ENOTTY, or EBADF. */
int isatty(int fd)
{
	struct termios t;

	return tcgetattr(fd, &t) == 0;
}

/* ---- sigaction ------------------------------------------------------------- */

/* The rt_sigaction system call's struct: on MIPS the flags first and a
 * 128-signal mask, no return trampoline; elsewhere the handler, flags,
 * the trampoline (musl's __restore_rt and __restore, src/signal/ARCH/
 * restore.s; x86_64 has only the first) and a 64-signal mask. */
#ifdef __mips__
struct sm_ksigaction {
	unsigned flags;
	void (*handler)(int);
	unsigned long mask[4];
	unsigned long past_end; /* qemu-user writes a word more than Linux */
};
#else
struct sm_ksigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned mask[2];
};
void __restore_rt(void);
#ifdef __x86_64__
#define SM_RESTORE __restore_rt
#else
void __restore(void);
#define SM_RESTORE __restore
#endif
#endif

/* __sigaction is what musl's signal() calls, __libc_sigaction what its
 * __synccall (setrlimit) names for its own signal, which the range check
 * would refuse. */
int __libc_sigaction(int sig, const struct sigaction *restrict sa,
		     struct sigaction *restrict old);
int __sigaction(int sig, const struct sigaction *restrict sa, struct sigaction *restrict old);

int __libc_sigaction(int sig, const struct sigaction *restrict sa,
		     struct sigaction *restrict old)
{
	struct sm_ksigaction k, ko;

	if (sa) {
		k.handler = sa->sa_handler;
		k.flags = (unsigned)sa->sa_flags;
#ifndef __mips__
		k.flags |= SA_RESTORER;
		k.restorer = sa->sa_flags & SA_SIGINFO ? __restore_rt : SM_RESTORE;
#endif
		memcpy(&k.mask, &sa->sa_mask, sizeof(k.mask));
	}
	if (syscall(SYS_rt_sigaction, sig, sa ? &k : NULL, old ? &ko : NULL, sizeof(k.mask)))
		return -1;
	if (old) {
		memset(old, 0, sizeof(*old));
		old->sa_handler = ko.handler;
		old->sa_flags = (int)ko.flags;
		memcpy(&old->sa_mask, &ko.mask, sizeof(ko.mask));
	}
	return 0;
}

int __sigaction(int sig, const struct sigaction *restrict sa, struct sigaction *restrict old)
{
	/* 32..34 are musl's own (thread cancellation, synccall) */
	if (sig - 32U < 3 || sig - 1U >= _NSIG - 1) {
		errno = EINVAL;
		return -1;
	}
	return __libc_sigaction(sig, sa, old);
}

int sigaction(int sig, const struct sigaction *restrict sa, struct sigaction *restrict old)
{
	return __sigaction(sig, sa, old);
}

/* ---- fcntl, fchmod, fchown, socket, accept4 -------------------------------- */

/* The system calls themselves. musl's add fallbacks for kernels before
 * 2.6.28 (accept4, SOCK_CLOEXEC/SOCK_NONBLOCK for socket), for O_PATH
 * descriptors (fchmod and fchown through /proc/self/fd) and F_GETOWN of
 * a process group, none of which postie meets; fcntl keeps musl's
 * O_LARGEFILE on F_SETFL, and 32-bit targets' fcntl64 takes musl's
 * struct flock (64-bit offsets) as it is. */
#ifdef SYS_fcntl64
#define SM_SYS_FCNTL SYS_fcntl64
#else
#define SM_SYS_FCNTL SYS_fcntl
#endif
#ifdef SYS_fchown32             /* ARM: the call with 32-bit ids */
#define SM_SYS_FCHOWN SYS_fchown32
#else
#define SM_SYS_FCHOWN SYS_fchown
#endif

int fcntl(int fd, int cmd, ...)
{
	unsigned long arg;
	va_list ap;

	va_start(ap, cmd);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	if (cmd == F_SETFL)
		arg |= O_LARGEFILE;
	return (int)syscall(SM_SYS_FCNTL, fd, cmd, arg);
}

int fchmod(int fd, mode_t mode)
{
	return (int)syscall(SYS_fchmod, fd, mode);
}

int fchown(int fd, uid_t uid, gid_t gid)
{
	return (int)syscall(SM_SYS_FCHOWN, fd, uid, gid);
}

int socket(int domain, int type, int protocol)
{
	return (int)syscall(SYS_socket, domain, type, protocol);
}

int accept4(int fd, struct sockaddr *restrict addr, socklen_t *restrict len, int flags)
{
	return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

/* ---- setsockopt, getsockopt, bind, listen -------------------------------- */

/* The system calls themselves. musl's setsockopt and getsockopt retry
 * SO_RCVTIMEO/SO_SNDTIMEO/SO_TIMESTAMP* on 32-bit targets with the old
 * 32-bit option numbers for kernels before 5.1 (postie sets none of
 * them; on 5.1 and later the kernel takes musl's 64-bit timeval as it
 * is); its bind and listen are the same calls with six arguments' worth
 * of inline assembly (84 bytes each on mips). */
int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

int getsockopt(int fd, int level, int name, void *restrict val, socklen_t *restrict len)
{
	return (int)syscall(SYS_getsockopt, fd, level, name, val, len);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return (int)syscall(SYS_bind, fd, addr, len);
}

int listen(int fd, int backlog)
{
	return (int)syscall(SYS_listen, fd, backlog);
}

/* ---- signal, sigaddset, sigprocmask ---------------------------------------- */

/* signal() as musl's (SA_RESTART, through sigaction above); sigaddset
 * refuses musl's own signals 32..34 as musl's does; sigprocmask is the
 * rt_sigprocmask system call, without musl's pthread_sigmask, which hides
 * those three from the old mask (postie's mask never holds them). */
void (*signal(int sig, void (*fn)(int)))(int)
{
	struct sigaction sa = { .sa_handler = fn, .sa_flags = SA_RESTART }, old;

	return __sigaction(sig, &sa, &old) ? SIG_ERR : old.sa_handler;
}

int sigaddset(sigset_t *set, int sig)
{
	unsigned s = (unsigned)sig - 1, bits = 8 * sizeof(unsigned long);

	if (s >= _NSIG - 1 || sig - 32U < 3) {
		errno = EINVAL;
		return -1;
	}
	((unsigned long *)(void *)set)[s / bits] |= 1UL << (s % bits);
	return 0;
}

int sigprocmask(int how, const sigset_t *restrict set, sigset_t *restrict old)
{
	return (int)syscall(SYS_rt_sigprocmask, how, set, old, _NSIG / 8);
}

/* ---- open, openat, lseek, readdir, gethostname, inotify ------------------- */

/* open and openat: the openat system call with O_LARGEFILE added, as
 * musl does (32-bit targets need it for files beyond 2 GiB); not musl's
 * cancellation-point call, nor its F_SETFD for kernels before 2.6.23,
 * which ignore O_CLOEXEC. */
/* not inlined: open and openat share one copy (32 bytes less on mips) */
static __attribute__((noinline)) int sm_openat(int fd, const char *path, int flags, va_list ap)
{
	mode_t mode = 0;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		mode = va_arg(ap, mode_t);
	return (int)syscall(SYS_openat, fd, path, flags | O_LARGEFILE, mode);
}

int openat(int fd, const char *path, int flags, ...)
{
	va_list ap;
	int r;

	va_start(ap, flags);
	r = sm_openat(fd, path, flags, ap);
	va_end(ap);
	return r;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	int r;

	va_start(ap, flags);
	r = sm_openat(AT_FDCWD, path, flags, ap);
	va_end(ap);
	return r;
}

/* 32-bit targets: _llseek, the offset as two 32-bit words (high first)
 * and the result through a pointer; no 64-bit argument, so MIPS o32
 * needs no register pair. */
off_t lseek(int fd, off_t off, int whence)
{
#ifdef SYS__llseek
	off_t r;

	return syscall(SYS__llseek, fd, (long)(off >> 32), (long)off, &r, whence) ? -1 : r;
#else
	return (off_t)syscall(SYS_lseek, fd, off, whence);
#endif
}

/* readdir on the DIR that musl's opendir allocates: its struct
 * __dirstream (musl 1.2, src/dirent/__dirent.h), of which readdir uses
 * the descriptor, the buffer and the read position; getdents64's records
 * are struct dirent as they are. A directory removed while read (ENOENT)
 * ends the listing without an error, as musl's. */
struct __dirstream {
	off_t tell;
	int fd;
	int pos;
	int end;
	volatile int lock[1];
	char buf[2048];
};

struct dirent *readdir(DIR *d)
{
	struct dirent *de;

	if (d->pos >= d->end) {
		int e = errno;
		long n = syscall(SYS_getdents64, d->fd, d->buf, sizeof(d->buf));
		if (n <= 0) {
			if (n < 0 && errno == ENOENT)
				errno = e;
			return NULL;
		}
		d->end = (int)n;
		d->pos = 0;
	}
	de = (struct dirent *)(void *)(d->buf + d->pos);
	d->pos += de->d_reclen;
	d->tell = de->d_off;
	return de;
}

/* The node name from the uname system call, cut to len bytes with a
 * NUL in the last when it is longer (POSIX leaves that open). */
int gethostname(char *name, size_t len)
{
	struct utsname u;
	size_t n;

	if (syscall(SYS_uname, &u))
		return -1;
	n = strnlen(u.nodename, sizeof(u.nodename));
	if (len) {
		if (n >= len)
			n = len - 1;
		memcpy(name, u.nodename, n);
		name[n] = '\0';
	}
	return 0;
}

int inotify_init1(int flags)
{
	return (int)syscall(SYS_inotify_init1, flags);
}

int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	return (int)syscall(SYS_inotify_add_watch, fd, path, mask);
}

/* ---- file and process calls of one system call each ---------------------- */

/* musl's are 32-bit MIPS (an inline system call has no MIPS16 form),
 * 32 to 68 bytes each; these are MIPS16 calls of syscall(). The path
 * calls use the *at system calls (Linux 2.6.16) on every target, as
 * aarch64 has no other; ARM's ids are the 32-bit calls (getuid32...).
 * close treats EINTR as success, as musl's does (Linux has closed the
 * descriptor by then). */
#ifdef SYS_getuid32
#define SM_SYS_GETUID SYS_getuid32
#define SM_SYS_GETEUID SYS_geteuid32
#define SM_SYS_GETGID SYS_getgid32
#define SM_SYS_GETEGID SYS_getegid32
#else
#define SM_SYS_GETUID SYS_getuid
#define SM_SYS_GETEUID SYS_geteuid
#define SM_SYS_GETGID SYS_getgid
#define SM_SYS_GETEGID SYS_getegid
#endif

int unlinkat(int fd, const char *path, int flag)
{
	return (int)syscall(SYS_unlinkat, fd, path, flag);
}

int unlink(const char *path)
{
	return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
}

int rmdir(const char *path)
{
	return (int)syscall(SYS_unlinkat, AT_FDCWD, path, AT_REMOVEDIR);
}

int mkdirat(int fd, const char *path, mode_t mode)
{
	return (int)syscall(SYS_mkdirat, fd, path, mode);
}

int mkdir(const char *path, mode_t mode)
{
	return (int)syscall(SYS_mkdirat, AT_FDCWD, path, mode);
}

int rename(const char *old, const char *new)
{
	return (int)syscall(SYS_renameat, AT_FDCWD, old, AT_FDCWD, new);
}

int linkat(int fd1, const char *old, int fd2, const char *new, int flag)
{
	return (int)syscall(SYS_linkat, fd1, old, fd2, new, flag);
}

int link(const char *old, const char *new)
{
	return (int)syscall(SYS_linkat, AT_FDCWD, old, AT_FDCWD, new, 0);
}

int chmod(const char *path, mode_t mode)
{
	return (int)syscall(SYS_fchmodat, AT_FDCWD, path, mode);
}

int access(const char *path, int mode)
{
	return (int)syscall(SYS_faccessat, AT_FDCWD, path, mode);
}

mode_t umask(mode_t mode)
{
	return (mode_t)syscall(SYS_umask, mode);
}

int kill(pid_t pid, int sig)
{
	return (int)syscall(SYS_kill, pid, sig);
}

int close(int fd)
{
	int e = errno;

	if (syscall(SYS_close, fd) == 0)
		return 0;
	if (errno != EINTR)
		return -1;
	errno = e;
	return 0;
}

/* 32-bit MIPS and ARM pass a 64-bit argument in an even register pair:
 * where it follows an odd number of words, a zero word comes first,
 * then the two halves in memory order (musl's off_t is 64-bit
 * everywhere): union sm_off gives the halves. */
#define SM_PAIR (ULONG_MAX == 0xffffffffUL)
#if SM_PAIR
#if !defined(__mips__) && !defined(__arm__)
#error "64-bit system call arguments: this target's convention is not known here"
#endif
union sm_off {
	off_t v;
	long w[2];
};
#endif

int ftruncate(int fd, off_t len)
{
#if SM_PAIR
	union sm_off u = { len };

	return (int)syscall(SYS_ftruncate64, fd, 0L, u.w[0], u.w[1]);
#else
	return (int)syscall(SYS_ftruncate, fd, len);
#endif
}

_Noreturn void _Exit(int code)
{
	syscall(SYS_exit_group, code);
	for (;;)
		syscall(SYS_exit, code);
}

uid_t getuid(void)
{
	return (uid_t)syscall(SM_SYS_GETUID);
}

uid_t geteuid(void)
{
	return (uid_t)syscall(SM_SYS_GETEUID);
}

gid_t getgid(void)
{
	return (gid_t)syscall(SM_SYS_GETGID);
}

gid_t getegid(void)
{
	return (gid_t)syscall(SM_SYS_GETEGID);
}

pid_t getpid(void)
{
	return (pid_t)syscall(SYS_getpid);
}

/* ---- read, write, pread, pwrite, fsync, poll, ppoll, connect, sendto,
 * recvfrom, getrandom ---------------------------------------------------- */

/* The system calls, not musl's cancellation points (postie has one
 * thread and never cancels it): with them and open, openat and close
 * above, musl's __syscall_cp is left out. */
ssize_t read(int fd, void *buf, size_t n)
{
	return syscall(SYS_read, fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
#if SM_PAIR
	union sm_off u = { off };

	return syscall(SYS_pread64, fd, buf, n, 0L, u.w[0], u.w[1]);
#else
	return syscall(SYS_pread64, fd, buf, n, off);
#endif
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
#if SM_PAIR
	union sm_off u = { off };

	return syscall(SYS_pwrite64, fd, buf, n, 0L, u.w[0], u.w[1]);
#else
	return syscall(SYS_pwrite64, fd, buf, n, off);
#endif
}

int fsync(int fd)
{
	return (int)syscall(SYS_fsync, fd);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, addr, len);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
	       socklen_t alen)
{
	return syscall(SYS_sendto, fd, buf, n, flags, addr, alen);
}

ssize_t recvfrom(int fd, void *restrict buf, size_t n, int flags, struct sockaddr *restrict addr,
		 socklen_t *restrict alen)
{
	return syscall(SYS_recvfrom, fd, buf, n, flags, addr, alen);
}

ssize_t getrandom(void *buf, size_t n, unsigned flags)
{
	return syscall(SYS_getrandom, buf, n, flags);
}

/* 32-bit targets: ppoll_time64 (Linux 5.1) with the time copied into
 * the kernel's two 64-bit words (musl's struct timespec has unnamed
 * padding beside tv_nsec), then the 32-bit call on older kernels, the
 * seconds cut to what a long holds. The signal mask is the kernel's
 * size (_NSIG/8). */
int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *to, const sigset_t *mask)
{
#ifdef SYS_ppoll_time64
	long long t64[2] = { 0, 0 };
	long t32[2];
	long r;

	if (to) {
		t64[0] = to->tv_sec;
		t64[1] = to->tv_nsec;
	}
	r = syscall(SYS_ppoll_time64, fds, n, to ? t64 : NULL, mask, _NSIG / 8);
	if (r != -1 || errno != ENOSYS)
		return (int)r;
	t32[0] = (long)t64[0] == t64[0] ? (long)t64[0] : t64[0] < 0 ? -1 : LONG_MAX;
	t32[1] = (long)t64[1];
	return (int)syscall(SYS_ppoll, fds, n, to ? t32 : NULL, mask, _NSIG / 8);
#else
	return (int)syscall(SYS_ppoll, fds, n, to, mask, _NSIG / 8);
#endif
}

/* aarch64 has no poll system call: ppoll with the time in a timespec. */
int poll(struct pollfd *fds, nfds_t n, int ms)
{
#ifdef SYS_poll
	return (int)syscall(SYS_poll, fds, n, ms);
#else
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

	return ppoll(fds, n, ms >= 0 ? &ts : NULL, NULL);
#endif
}

/* ---- program start-up ------------------------------------------------------ */

/* What musl's crt1 calls: its __libc_start_main is 32-bit MIPS (776
 * bytes: the set-id check makes inline system calls). The same steps:
 * the environment, the auxiliary vector into musl's private state (its
 * struct __libc of 1.2, whose leading fields this mirrors), the thread
 * pointer and TLS (musl's __init_tls), the stack protector's canary
 * where a build has one, descriptors 0..2 opened on /dev/null for a
 * set-id start when closed, the constructors, then exit(main()). Nothing
 * here may fail with errno before __init_tls: errno lives in the thread
 * structure. The functions that run before the canary is set have no
 * stack protector. */
struct sm_libc {
	char can_do_threads, threaded, secure;
	volatile signed char need_locks;
	int threads_minus_1;
	size_t *auxv;
	void *tls_head;
	size_t tls_size, tls_align, tls_cnt, page_size;
};
extern struct sm_libc __libc;
extern size_t __hwcap, __sysinfo;
extern char *__progname, *__progname_full, **__environ;
void __init_tls(size_t *aux);
void __init_ssp(void *entropy) __attribute__((weak));
void _init(void);
extern void (*const __init_array_start[])(void) __attribute__((weak, visibility("hidden")));
extern void (*const __init_array_end[])(void) __attribute__((weak, visibility("hidden")));
int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
		      void (*init)(void), void (*fini)(void), void (*ldso)(void));

typedef int sm_main_fn(int, char **, char **);

__attribute__((noinline, no_stack_protector))
static void sm_init_libc(char **envp, char *pn)
{
	size_t aux[38] = { 0 }, *av, i;
	struct pollfd pfd[3] = { { .fd = 0 }, { .fd = 1 }, { .fd = 2 } };

	__environ = envp;
	for (i = 0; envp[i]; i++)
		;
	__libc.auxv = av = (size_t *)(void *)(envp + i + 1);
	for (i = 0; av[i]; i += 2)
		if (av[i] < 38)
			aux[av[i]] = av[i + 1];
	__hwcap = aux[AT_HWCAP];
	if (aux[AT_SYSINFO])
		__sysinfo = aux[AT_SYSINFO];
	__libc.page_size = aux[AT_PAGESZ];
	if (!pn)
		pn = (char *)aux[AT_EXECFN];
	if (!pn)
		pn = "";
	__progname = __progname_full = pn;
	for (i = 0; pn[i]; i++)
		if (pn[i] == '/')
			__progname = pn + i + 1;
	__init_tls(aux);
	if (__init_ssp)
		__init_ssp((void *)aux[AT_RANDOM]);
	if (aux[AT_UID] == aux[AT_EUID] && aux[AT_GID] == aux[AT_EGID] && !aux[AT_SECURE])
		return;
	if (poll(pfd, 3, 0) < 0)
		__builtin_trap();
	for (i = 0; i < 3; i++)
		if ((pfd[i].revents & POLLNVAL) && open("/dev/null", O_RDWR) < 0)
			__builtin_trap();
	__libc.secure = 1;
}

/* A frame of its own, after the canary is set. */
__attribute__((noinline))
static int sm_start_main(sm_main_fn *main, int argc, char **argv)
{
	_init();
	for (void (*const *f)(void) = __init_array_start; f < __init_array_end; f++)
		(*f)();
	exit(main(argc, argv, argv + argc + 1));
}

__attribute__((no_stack_protector))
int __libc_start_main(sm_main_fn *main, int argc, char **argv, void (*init)(void),
		      void (*fini)(void), void (*ldso)(void))
{
	int (*stage2)(sm_main_fn *, int, char **) = sm_start_main;

	(void)init, (void)fini, (void)ldso;
	sm_init_libc(argv + argc + 1, argv[0]);
	/* nothing of stage 2 (the thread pointer, the canary) moves above */
	__asm__ volatile("" : "+r"(stage2) : : "memory");
	return stage2(main, argc, argv);
}

/* ---- libgcc's 64-bit division -------------------------------------------- */

/* What gcc calls for 64-bit / and % on 32-bit targets without the
 * instruction (MIPS32 here; ARM EABI calls __aeabi_[u]ldivmod instead).
 * libgcc's are about 1.1 KB each on mips; these are one restoring
 * shift-subtract loop (64 steps, a 32-bit division when both operands
 * fit): postie divides 64-bit values only in rare places (sendmail's
 * numbers, BearSSL's certificate dates). Defined on every target so the
 * unit test can check them against the hardware on 64-bit hosts; unused
 * there, --gc-sections drops them. Division by zero returns 0 (libgcc's
 * traps or returns garbage: undefined behaviour either way). */
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t a, int64_t b);
int64_t __moddi3(int64_t a, int64_t b);

/* n / d, *rem = n % d. */
static uint64_t sm_udivmod(uint64_t n, uint64_t d, uint64_t *rem)
{
	uint64_t r = 0;

	if (!d) {
		*rem = 0;
		return 0;
	}
	if (!(n >> 32) && !(d >> 32)) {
		*rem = (uint32_t)n % (uint32_t)d;
		return (uint32_t)n / (uint32_t)d;
	}
	/* n's bits move into r from the top; the quotient bits fill n's
	 * bottom as they leave. */
	for (int i = 0; i < 64; i++) {
		r = r << 1 | n >> 63;
		n <<= 1;
		if (r >= d) {
			r -= d;
			n |= 1;
		}
	}
	*rem = r;
	return n;
}

uint64_t __udivdi3(uint64_t n, uint64_t d)
{
	uint64_t r;

	return sm_udivmod(n, d, &r);
}

uint64_t __umoddi3(uint64_t n, uint64_t d)
{
	uint64_t r;

	sm_udivmod(n, d, &r);
	return r;
}

/* C99: the quotient truncated toward zero, the remainder with the sign
 * of the dividend. Magnitudes as unsigned, so INT64_MIN needs no care
 * (INT64_MIN / -1 is undefined; it gives INT64_MIN, as libgcc's). */
static uint64_t sm_abs64(int64_t v)
{
	return v < 0 ? -(uint64_t)v : (uint64_t)v;
}

int64_t __divdi3(int64_t a, int64_t b)
{
	uint64_t r, q = sm_udivmod(sm_abs64(a), sm_abs64(b), &r);

	return (int64_t)((a < 0) != (b < 0) ? -q : q);
}

int64_t __moddi3(int64_t a, int64_t b)
{
	uint64_t r;

	sm_udivmod(sm_abs64(a), sm_abs64(b), &r);
	return (int64_t)(a < 0 ? -r : r);
}

/* ---- libgcc's 64-bit shifts ---------------------------------------------- */

/* libgcc's 64-bit shifts by a variable count, which gcc calls from
 * MIPS16 code (80 bytes each, 32-bit MIPS in Debian's libgcc): here in
 * 32-bit halves, MIPS16 like their callers. Counts 0..63, as libgcc's
 * (others are undefined in C). */
uint64_t __ashldi3(uint64_t u, int b);
uint64_t __lshrdi3(uint64_t u, int b);

uint64_t __ashldi3(uint64_t u, int b)
{
	uint32_t lo = (uint32_t)u, hi = (uint32_t)(u >> 32);

	if (b & 32) {
		hi = lo << (b & 31);
		lo = 0;
	} else if (b) {
		hi = hi << b | lo >> (32 - b);
		lo <<= b;
	}
	return (uint64_t)hi << 32 | lo;
}

uint64_t __lshrdi3(uint64_t u, int b)
{
	uint32_t lo = (uint32_t)u, hi = (uint32_t)(u >> 32);

	if (b & 32) {
		lo = hi >> (b & 31);
		hi = 0;
	} else if (b) {
		lo = lo >> b | hi << (32 - b);
		hi >>= b;
	}
	return (uint64_t)hi << 32 | lo;
}
