/* fdio cases: lines across buffer refills, over-long lines, the offset,
 * printf larger than the buffer, sticky write errors. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fdio.h"
#include "core/util.h"
#include "unit.h"

static int mem_file(const char *data, size_t n)
{
	int fd = memfd_create("fdio", MFD_CLOEXEC);

	if (fd >= 0 && (write_all_fd(fd, data, n) != 0 || lseek(fd, 0, SEEK_SET) != 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void test_reader(void)
{
	static char text[3 * FDIO_BUF + 100];
	char line[FDIO_BUF + 16];
	struct fdio_in r;
	size_t n = 0, lines = 0, bytes = 0, bad = 0;
	int fd;

	/* Lines of 1..97 bytes, so that many cross a refill. */
	for (size_t k = 1; n + k + 1 < sizeof(text); k = k % 97 + 1) {
		memset(text + n, 'a' + (int)(k % 26), k);
		text[n + k] = '\n';
		n += k + 1;
	}
	fd = mem_file(text, n);
	CHECK(fd >= 0, "memfd");
	if (fd < 0)
		return;
	fdio_in_init(&r, fd);
	while (fdio_gets(&r, line, sizeof(line))) {
		size_t l = strlen(line);
		if (l < 2 || line[l - 1] != '\n' || memcmp(line, text + bytes, l) != 0)
			bad++;
		bytes += l;
		lines++;
		if (fdio_tell(&r) != (off_t)bytes)
			bad++;
	}
	CHECK(bad == 0 && bytes == n && r.eof && !r.err, "lines: %zu bad, %zu of %zu bytes",
	      bad, bytes, n);
	CHECK(fdio_getc(&r) == -1 && fdio_peek(&r) == -1, "end stays the end");
	close(fd);

	/* A line longer than the array comes in pieces; no LF at the end. */
	memset(text, 'x', 100);
	memcpy(text + 100, "\nlast", 5);
	fd = mem_file(text, 105);
	if (fd >= 0) {
		char small[40];
		fdio_in_init(&r, fd);
		CHECK(fdio_gets(&r, small, sizeof(small)) && strlen(small) == 39, "piece 1");
		CHECK(fdio_gets(&r, small, sizeof(small)) && strlen(small) == 39, "piece 2");
		CHECK(fdio_gets(&r, small, sizeof(small)) && strcmp(small + 22, "\n") == 0,
		      "piece 3 ends the line");
		CHECK(fdio_peek(&r) == 'l' && fdio_gets(&r, small, sizeof(small)) &&
		      strcmp(small, "last") == 0, "last line without LF");
		CHECK(fdio_gets(&r, small, sizeof(small)) == NULL, "then nothing");
		close(fd);
	}

	/* A read error is reported, not taken as the end. */
	fdio_in_init(&r, -1);
	CHECK(fdio_getc(&r) == -1 && r.err == EBADF && !r.eof, "read error");
}

static void test_writer(void)
{
	static char big[3 * FDIO_BUF], back[4 * FDIO_BUF];
	struct fdio_out w;
	ssize_t got;
	int fd = mem_file("", 0);

	CHECK(fd >= 0, "memfd");
	if (fd < 0)
		return;
	memset(big, 'b', sizeof(big) - 1);
	fdio_out_init(&w, fd);
	CHECK(fdio_puts(&w, "head ") == 0, "puts");
	CHECK(fdio_printf(&w, "%d<%s>", 42, big) == 0, "printf over the buffer");
	CHECK(fdio_write(&w, "tail", 4) == 0 && fdio_flush(&w) == 0, "write, flush");
	got = pread(fd, back, sizeof(back) - 1, 0);
	back[got > 0 ? got : 0] = '\0';
	CHECK(got == (ssize_t)(5 + 2 + 1 + sizeof(big) - 1 + 1 + 4) &&
	      strncmp(back, "head 42<bbb", 11) == 0 &&
	      strcmp(back + got - 5, ">tail") == 0, "content, in order (%zd bytes)", got);
	close(fd);

	/* Errors stick. */
	fdio_out_init(&w, -1);
	CHECK(fdio_puts(&w, "x") == 0, "buffered: no error yet");
	CHECK(fdio_flush(&w) == -1 && w.err == EBADF, "flush fails");
	CHECK(fdio_puts(&w, "y") == -1 && fdio_flush(&w) == -1, "and stays failed");

	/* The head of a file. */
	char head[8];
	CHECK(fdio_read_head("/nonexistent/postie", head, sizeof(head)) == -1, "no file");
}

void test_fdio(void)
{
	test_reader();
	test_writer();
}
