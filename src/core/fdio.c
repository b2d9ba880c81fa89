/* fdio — buffered fd reading and writing instead of stdio (see fdio.h).
 * Limits: FDIO_BUF bytes buffered; a formatted piece longer than that is
 * written unbuffered with dprintf (after what is buffered). */
#include "core/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"

void fdio_in_init(struct fdio_in *r, int fd)
{
	memset(r, 0, offsetof(struct fdio_in, buf));
	r->fd = fd;
	r->off = 0;
}

static int fill(struct fdio_in *r)
{
	ssize_t n;

	if (r->pos < r->len)
		return 1;
	if (r->eof || r->err)
		return 0;
	r->off += (off_t)r->len;
	r->pos = r->len = 0;
	do
		n = read(r->fd, r->buf, sizeof(r->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		r->err = errno ? errno : EIO;
	else if (n == 0)
		r->eof = 1;
	else
		r->len = (size_t)n;
	return n > 0;
}

int fdio_peek(struct fdio_in *r)
{
	return fill(r) ? (unsigned char)r->buf[r->pos] : -1;
}

int fdio_getc(struct fdio_in *r)
{
	return fill(r) ? (unsigned char)r->buf[r->pos++] : -1;
}

char *fdio_gets(struct fdio_in *r, char *line, size_t n)
{
	struct buf b;

	if (n == 0)
		return NULL;
	buf_init(&b, line, n - 1);      /* and the NUL */
	while (buf_remaining(&b) > 0 && fill(r)) {
		size_t take = r->len - r->pos;
		const char *nl = memchr(r->buf + r->pos, '\n', take);

		if (nl)
			take = (size_t)(nl - (r->buf + r->pos)) + 1;
		if (take > buf_remaining(&b))
			take = buf_remaining(&b);
		buf_add(&b, r->buf + r->pos, take);
		r->pos += take;
		if (line[b.len - 1] == '\n')
			break;
	}
	line[b.len] = '\0';
	return b.len ? line : NULL;
}

off_t fdio_tell(const struct fdio_in *r)
{
	return r->off + (off_t)r->pos;
}

void fdio_out_init(struct fdio_out *w, int fd)
{
	w->fd = fd;
	w->err = 0;
	buf_init(&w->b, w->mem, sizeof(w->mem));
}

int fdio_flush(struct fdio_out *w)
{
	if (!w->err && w->b.len && write_all_fd(w->fd, w->b.p, w->b.len) != 0)
		w->err = errno ? errno : EIO;
	buf_reset(&w->b);
	return w->err ? -1 : 0;
}

int fdio_write(struct fdio_out *w, const void *p, size_t n)
{
	if (w->err)
		return -1;
	if (buf_add(&w->b, p, n) == 0)
		return 0;
	if (fdio_flush(w) != 0)
		return -1;
	if (buf_add(&w->b, p, n) == 0)
		return 0;
	if (write_all_fd(w->fd, p, n) != 0) {
		w->err = errno ? errno : EIO;
		return -1;
	}
	return 0;
}

int fdio_puts(struct fdio_out *w, const char *s)
{
	return fdio_write(w, s, strlen(s));
}

int fdio_printf(struct fdio_out *w, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (w->err)
		return -1;
	va_start(ap, fmt);
	rc = buf_vprintf(&w->b, fmt, ap);
	va_end(ap);
	if (rc >= 0)
		return 0;
	if (fdio_flush(w) != 0)
		return -1;
	va_start(ap, fmt);
	rc = buf_vprintf(&w->b, fmt, ap);
	va_end(ap);
	if (rc >= 0)
		return 0;
	va_start(ap, fmt);
	rc = vdprintf(w->fd, fmt, ap);
	va_end(ap);
	if (rc < 0)
		w->err = errno ? errno : EIO;
	return rc < 0 ? -1 : 0;
}

long fdio_read_head(const char *path, char *buf, size_t n)
{
	struct fdio_in r;
	struct buf b;
	size_t k = 0;
	int c, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || n == 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fdio_in_init(&r, fd);
	buf_init(&b, buf, n - 1);       /* and the NUL */
	while (buf_remaining(&b) > 0 && (c = fdio_getc(&r)) >= 0)
		buf_addc(&b, (char)c);
	k = b.len;
	buf[k] = '\0';
	close(fd);
	if (r.err) {
		errno = r.err;
		return -1;
	}
	return (long)k;
}

int fdio_out(int fd, const char *s)
{
	return write_all_fd(fd, s, strlen(s));
}
