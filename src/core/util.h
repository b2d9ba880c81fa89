/* util — small pure helpers: monotonic time, bounded string copies, number
 * parsing with overflow checks, and a few whole-file reads and syncs. */
#ifndef POSTIE_UTIL_H
#define POSTIE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in ms (the session fuzz targets wrap clock_gettime
 * with a virtual clock: tests/fuzz/memsock.c). */
int64_t now_ms(void);

/* t as an RFC 5322 date in local time ("Sun, 06 Dec 2026 02:20:55 +0000")
 * for Date: and Received: fields; n of 64 holds any. */
void rfc5322_date(char *buf, size_t n, time_t t);

/* Copies at most len bytes of src (stops at NUL) into dst of size n, always
 * NUL-terminated. Returns 0, or -1 when it had to truncate. */
int str_copy(char *dst, size_t n, const char *src, size_t len);

/* ASCII-only case-insensitive compare of a[0..alen) with NUL-terminated b. */
int str_ieq(const char *a, size_t alen, const char *b);
void str_lower(char *s);

/* "123" -> 123; rejects signs, junk and overflow past max. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);
/* "10M", "512k", "1G", "100" (bytes). */
int parse_size(const char *s, uint64_t *out);
/* "5d", "12h", "30m", "45s", "90" (seconds), at most DURATION_MAX. */
#define DURATION_MAX (3650ull * 86400)         /* 3650d, about ten years */
int parse_duration(const char *s, uint64_t *out);

/* Copies client data for a log line: at most max bytes, control and
 * non-ASCII bytes as \xNN, "..." when cut. Returns dst. */
char *str_printable(char *dst, size_t n, const char *src, size_t len);
/* Copies text another program wrote (a server's reply) to keep and show
 * as it is: at most n-1 bytes, stopping at a NUL; control characters
 * (TAB, CR, LF included) become blanks, everything else (a backslash, a
 * quote, UTF-8) is kept unescaped. Returns dst. */
char *str_clean(char *dst, size_t n, const char *src, size_t len);

/* renameat that never replaces an existing `to`: -1 with errno EEXIST
 * then. renameat2(RENAME_NOREPLACE) where the kernel and file system
 * have it, else linkat + unlinkat (a crash between them leaves both
 * names, never a lost file). */
int rename_noreplace(int from_dfd, const char *from, int to_dfd, const char *to);
/* fsync of a directory (after a create, rename or unlink in it). */
int fsync_dir(const char *dir);
/* fsync(fd), the one the store uses for mail (fsync_dir too). When
 * util_sync_off is set (by a test harness only: the fuzz targets, whose
 * scratch files nobody needs after a power cut) it only returns 0. */
int file_sync(int fd);
extern int util_sync_off;
/* Calls of file_sync so far (also with util_sync_off): a session that
 * synced ends its turn of the loop pass (core/conn). */
extern unsigned long util_syncs;
/* Bounded write-back of a file written front to back in steps (mbox
 * appends, copies and rewrites, a loop pass each): wb_step, called at the
 * end of a step, waits for the bytes whose write-back the step before
 * started and starts (without waiting) that of the bytes written since,
 * up to end. So at most about two steps' worth is dirty when the final
 * file_sync comes, and that fsync does not hold the loop for the
 * write-back of a whole file; each step waits for one step's bytes. */
struct wb {
	int64_t done;           /* written back, waited for */
	int64_t started;        /* write-back started up to here */
};
void wb_init(struct wb *w, int64_t from);
void wb_step(int fd, struct wb *w, int64_t end);
/* write() until all of buf is out (EINTR retried). 0 or -1. */
int write_all_fd(int fd, const void *buf, size_t n);
/* fsync of the directory that holds path. */
int fsync_parent_of(const char *path);
/* Makes the missing directories above path (0755, umask aside), not path
 * itself. 0, or -1 with errno. */
int mkdir_parents(const char *path);
/* Reads a whole small file into a NUL-terminated heap buffer; refuses
 * files over max bytes and files holding a NUL. The caller frees it.
 * NULL with the cause in err. Used by the users, aliases and TLS
 * loaders. */
char *file_slurp(const char *path, size_t max, size_t *len, char *err,
		 size_t errlen);

/* WITH(CONFIG_X, "...") is the literal where the option (0 or 1 in
 * autoconf.h) is on, else "" (WITHOUT the other way round), so texts of
 * what a build has are joined at compile time into one literal. */
#define WITH(option, text) WITH_(option, text)
#define WITH_(on, text) WITH_##on(text)
#define WITH_1(text) text
#define WITH_0(text) ""
#define WITHOUT(option, text) WITHOUT_(option, text)
#define WITHOUT_(on, text) WITHOUT_##on(text)
#define WITHOUT_1(text) ""
#define WITHOUT_0(text) text
/* A number option as a literal: STR(CONFIG_X) is "123". */
#define STR(x) STR_(x)
#define STR_(x) #x

#endif
