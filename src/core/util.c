/* util — small pure helpers (see util.h). */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rfc5322_date(char *buf, size_t n, time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, n, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

int str_copy(char *dst, size_t n, const char *src, size_t len)
{
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < len && src[i] != '\0'; i++) {
		if (i + 1 >= n) {
			dst[i] = '\0';
			return -1;
		}
		dst[i] = src[i];
	}
	dst[i] = '\0';
	return 0;
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

int str_ieq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		if (b[i] == '\0' || lower(a[i]) != lower(b[i]))
			return 0;
	}
	return b[alen] == '\0';
}

void str_lower(char *s)
{
	for (; *s; s++)
		*s = lower(*s);
}

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		/* Without a 64-bit division: on 32-bit targets that is
		 * libgcc's __udivdi3, 1.1 KB on MIPS. */
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v) || v > max)
			return -1;
	}
	*out = v;
	return 0;
}

/* Number with one optional unit letter from units[], scaled by mult[]. */
static int parse_scaled(const char *s, const char *units, const uint64_t *mult,
			uint64_t *out)
{
	char num[24];
	size_t len = strlen(s);
	uint64_t v, r, m = 1;
	const char *u;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len + 1);
	u = strchr(units, lower(num[len - 1]));
	if (u && num[len - 1] != '\0') {
		m = mult[u - units];
		num[len - 1] = '\0';
	}
	if (parse_u64(num, UINT64_MAX, &v) != 0 || __builtin_mul_overflow(v, m, &r))
		return -1;
	*out = r;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1024, 1024 * 1024, 1024 * 1024 * 1024 };
	return parse_scaled(s, "kmg", mult, out);
}

int parse_duration(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400, 604800 };
	uint64_t v;

	/* A bound far below what overflows "now + duration" in milliseconds
	 * anywhere the daemon adds them. */
	if (parse_scaled(s, "smhdw", mult, &v) != 0 || v > DURATION_MAX)
		return -1;
	*out = v;
	return 0;
}

char *str_printable(char *dst, size_t n, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	struct buf b;

	if (n < 8)
		return dst[0] = '\0', dst;
	buf_init(&b, dst, n);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		/* Room for the longest escape, then "..." and the NUL. */
		if (!buf_fits(&b, 4, 4)) {
			buf_adds(&b, "...");
			break;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf_addc(&b, (char)c);
		} else {
			char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			buf_add(&b, esc, sizeof(esc));
		}
	}
	buf_nul(&b);
	return dst;
}

char *str_clean(char *dst, size_t n, const char *src, size_t len)
{
	struct buf b;

	if (n == 0)
		return dst;
	buf_init(&b, dst, n - 1);       /* and the NUL */
	for (size_t i = 0; src && i < len && src[i] && buf_remaining(&b) > 0; i++) {
		unsigned char c = (unsigned char)src[i];
		buf_addc(&b, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
	}
	dst[b.len] = '\0';
	return dst;
}

int rename_noreplace(int from_dfd, const char *from, int to_dfd, const char *to)
{
	/* 1 is RENAME_NOREPLACE (linux/fs.h); libc wrappers vary. */
	if (syscall(SYS_renameat2, from_dfd, from, to_dfd, to, 1u) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
	if (linkat(from_dfd, from, to_dfd, to, 0) != 0)
		return -1;
	return unlinkat(from_dfd, from, 0) == 0 || errno == ENOENT ? 0 : -1;
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = file_sync(fd);
	close(fd);
	return rc;
}

int util_sync_off;
unsigned long util_syncs;

int file_sync(int fd)
{
	util_syncs++;
	return util_sync_off ? 0 : fsync(fd);
}

void wb_init(struct wb *w, int64_t from)
{
	w->done = w->started = from;
}

void wb_step(int fd, struct wb *w, int64_t end)
{
	if (util_sync_off || end <= w->started)
		return;         /* nothing new: a second call in one step */
	if (w->started > w->done)
		sync_file_range(fd, w->done, w->started - w->done,
				SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER);
	w->done = w->started;
	sync_file_range(fd, w->started, end - w->started, SYNC_FILE_RANGE_WRITE);
	w->started = end;
}

int write_all_fd(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int fsync_parent_of(const char *path)
{
	char dir[600];
	const char *slash = strrchr(path, '/');
	size_t l = slash ? (size_t)(slash - path) : 0;

	if (!slash)
		return fsync_dir(".");
	if (l >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, l ? l : 1);
	dir[l ? l : 1] = '\0';
	return fsync_dir(dir);
}

int mkdir_parents(const char *path)
{
	char p[1024];

	if (str_copy(p, sizeof(p), path, strlen(path)) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (size_t i = 1; p[i]; i++) {
		if (p[i] != '/' || p[i - 1] == '/')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -1;
		p[i] = '/';
	}
	return 0;
}

char *file_slurp(const char *path, size_t max, size_t *len, char *err,
		 size_t errlen)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max) {
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes",
			 path, max);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (memchr(buf, '\0', got)) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(buf);
		return NULL;
	}
	*len = got;
	return buf;
}
