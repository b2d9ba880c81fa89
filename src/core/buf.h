/* buf — the one checked way to put bytes into a fixed array.
 *
 * A struct buf describes caller-owned memory (no allocation): cap bytes at
 * p, of which len are in use. Every operation either fits whole or refuses
 * whole: it returns -1, leaves the contents as they were and sets `full`,
 * so a caller can do a series of appends and check once at the end. All
 * size arithmetic saturates, so a length near SIZE_MAX refuses instead of
 * wrapping. Protocol code MUST NOT write into a session array by hand
 * (`memcpy(x + len, ...)`, `size - a - b`); it SHALL use these. */
#ifndef POSTIE_BUF_H
#define POSTIE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *p;
	size_t cap, len;
	int full;               /* an append was refused since init/reset */
};

/* a + b, or SIZE_MAX when it would wrap. */
static inline size_t sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* a - b, or 0 when b > a. */
static inline size_t sat_sub(size_t a, size_t b)
{
	return a > b ? a - b : 0;
}

static inline void buf_init(struct buf *b, void *mem, size_t cap)
{
	b->p = mem;
	b->cap = cap;
	b->len = 0;
	b->full = 0;
}

static inline void buf_reset(struct buf *b)
{
	b->len = 0;
	b->full = 0;
}

static inline size_t buf_remaining(const struct buf *b)
{
	return sat_sub(b->cap, b->len);
}

/* Room for n more bytes (and, when keep > 0, keep bytes after them). */
static inline int buf_fits(const struct buf *b, size_t n, size_t keep)
{
	return sat_add(n, keep) <= buf_remaining(b);
}

/* Appends n bytes of data; 0, or -1 (nothing written) when they do not fit.
 * data may lie inside the buffer itself (a compaction in place). */
int buf_add(struct buf *b, const void *data, size_t n);
/* A NUL-terminated string, without its NUL. */
int buf_adds(struct buf *b, const char *s);

/* One byte; inline, for the byte-at-a-time converters (mboxrd quoting,
 * CRLF conversion). */
static inline int buf_addc(struct buf *b, char c)
{
	if (b->len >= b->cap) {
		b->full = 1;
		return -1;
	}
	b->p[b->len] = c;
	b->len++;
	return 0;
}

/* b over cap bytes at mem of which the first len are already in use
 * (clamped to cap). */
static inline void buf_init_len(struct buf *b, void *mem, size_t cap, size_t len)
{
	b->p = mem;
	b->cap = cap;
	b->len = len < cap ? len : cap;
	b->full = 0;
}
/* printf into the free space; -1 (nothing kept) when it does not fit whole. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Pointer to n free bytes at the end that the caller may fill, then make
 * part of the contents with buf_commit(b, k), k <= n. NULL when n bytes are
 * not free. Nothing is counted until the commit. */
char *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t k);
/* Back to an earlier length (a mark taken from b->len); never grows. */
void buf_truncate(struct buf *b, size_t len);
/* Removes the first n bytes (all when n >= len), moving the rest down. */
void buf_consume(struct buf *b, size_t n);
/* NUL after the contents (not counted in len); -1 when no byte is free. */
int buf_nul(struct buf *b);

#endif
