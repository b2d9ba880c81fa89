/* fdio — buffered reading and writing over a file descriptor, what postie
 * used stdio for (configuration and state files, the message sendmail
 * reads, the CLI's output): a fixed buffer inside the struct, no
 * allocation, no locking, no FILE. Output is formatted with buf_printf
 * into the buffer; text longer than the buffer goes out through dprintf.
 * Errors are sticky: after one, every call fails and err holds errno. */
#ifndef POSTIE_FDIO_H
#define POSTIE_FDIO_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"

#define FDIO_BUF 2048   /* bytes buffered per reader or writer */

struct fdio_in {
	int fd, err, eof;
	size_t pos, len;
	off_t off;              /* file offset of buf[0] */
	char buf[FDIO_BUF];
};

struct fdio_out {
	int fd, err;
	struct buf b;
	char mem[FDIO_BUF];
};

void fdio_in_init(struct fdio_in *r, int fd);
/* The next byte, or -1 at the end of the input or on an error (err). */
int fdio_getc(struct fdio_in *r);
/* The next byte without taking it, or -1. */
int fdio_peek(struct fdio_in *r);
/* As fgets: up to n - 1 bytes, through the first '\n', NUL-terminated;
 * NULL when nothing was read (end or error). */
char *fdio_gets(struct fdio_in *r, char *line, size_t n);
/* Offset in the file of the next byte fdio_getc returns. */
off_t fdio_tell(const struct fdio_in *r);

void fdio_out_init(struct fdio_out *w, int fd);
int fdio_write(struct fdio_out *w, const void *p, size_t n);
int fdio_puts(struct fdio_out *w, const char *s);
int fdio_printf(struct fdio_out *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Writes out what is buffered; 0, or -1 when this or an earlier write failed. */
int fdio_flush(struct fdio_out *w);

/* The first n - 1 bytes (fewer at the end) of the file at path,
 * NUL-terminated: the head of a small file such as a pid file. Their
 * count, or -1 (errno) when the file cannot be opened or read. */
long fdio_read_head(const char *path, char *buf, size_t n);

/* Whole strings straight to standard output and error (one write each). */
int fdio_out(int fd, const char *s);

#endif
