/* libFuzzer: the bounce writer with hostile values and original headers.
 * Input: recipient, diagnostic, remote host and status split at '\x01',
 * the rest is the original message. The report must keep its shape: no
 * CR or NUL, exactly three parts and one closing boundary. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "relay/bounce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char out[BOUNCE_HEADERS_MAX * 2 + 16384];

static int count(const char *hay, size_t n, const char *needle)
{
	size_t l = strlen(needle);
	int c = 0;

	for (size_t i = 0; i + l <= n; i++)
		if (memcmp(hay + i, needle, l) == 0)
			c++;
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int src = -1, dst = -1;
	char field[4][512];
	size_t pos = 0;
	struct bounce_rcpt r;
	struct bounce_msg m;
	char b[200], mark[220];
	const char *p, *e;
	ssize_t n;

	if (size > 64 * 1024)
		return 0;
	if (src < 0) {
		src = memfd_create("src", 0);
		dst = memfd_create("dst", 0);
	}
	for (int i = 0; i < 4; i++) {
		size_t k = 0;
		while (pos < size && data[pos] != 1 && k < sizeof(field[i]) - 1)
			field[i][k++] = data[pos] ? (char)data[pos] : ' ', pos++;
		field[i][k] = '\0';
		if (pos < size)
			pos++;
	}
	if (ftruncate(src, 0) != 0 || ftruncate(dst, 0) != 0 ||
	    lseek(dst, 0, SEEK_SET) != 0)
		return 0;
	if (pwrite(src, data + pos, size - pos, 0) != (ssize_t)(size - pos))
		return 0;
	r = (struct bounce_rcpt){ field[0], field[3], field[1], field[2],
				  (int)(size & 1) };
	m = (struct bounce_msg){ .hostname = "h.test", .sender = field[0],
		.orig_id = field[1], .arrival = 1, .r = &r, .n = 1,
		.src_fd = src, .data_off = 0, .data_len = (long long)(size - pos) };
	if (bounce_write(dst, &m) != 0)
		__builtin_trap();
	n = pread(dst, out, sizeof(out) - 1, 0);
	if (n <= 0 || (size_t)n == sizeof(out) - 1)
		__builtin_trap();
	out[n] = '\0';
	if (memchr(out, '\r', (size_t)n) || memchr(out, '\0', (size_t)n))
		__builtin_trap();
	p = strstr(out, "\n\tboundary=\"");
	if (!p)
		__builtin_trap();
	p += 12;
	e = strchr(p, '"');
	if (!e || e - p >= 190)
		__builtin_trap();
	snprintf(b, sizeof(b), "%.*s", (int)(e - p), p);
	snprintf(mark, sizeof(mark), "\n--%s", b);
	/* three part starts plus the closing one, nothing else */
	if (count(out, (size_t)n, mark) != 4)
		__builtin_trap();
	snprintf(mark, sizeof(mark), "\n--%s--\n", b);
	if (count(out, (size_t)n, mark) != 1)
		__builtin_trap();
	return 0;
}
