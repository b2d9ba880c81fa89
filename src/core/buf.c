/* buf — checked appends into caller-owned fixed arrays (see buf.h). The
 * only code in postie's protocol and store layers that writes at an
 * offset into a fixed array; everything else calls it. */
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

int buf_add(struct buf *b, const void *data, size_t n)
{
	if (!buf_fits(b, n, 0)) {
		b->full = 1;
		return -1;
	}
	if (n)
		memmove(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	size_t room = buf_remaining(b);
	int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);

	/* vsnprintf wants room for its NUL too: n == room did not fit. */
	if (n < 0 || (size_t)n >= room) {
		if (room)
			b->p[b->len] = '\0';
		b->full = 1;
		return -1;
	}
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *buf_reserve(struct buf *b, size_t n)
{
	if (!buf_fits(b, n, 0)) {
		b->full = 1;
		return NULL;
	}
	return b->p + b->len;
}

void buf_commit(struct buf *b, size_t k)
{
	/* A commit past the free space is a caller bug; clamp, never wrap. */
	b->len = sat_add(b->len, k) > b->cap ? b->cap : b->len + k;
}

void buf_truncate(struct buf *b, size_t len)
{
	if (len < b->len)
		b->len = len;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

int buf_nul(struct buf *b)
{
	if (b->len >= b->cap) {
		b->full = 1;
		return -1;
	}
	b->p[b->len] = '\0';
	return 0;
}
