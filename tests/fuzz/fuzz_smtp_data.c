/* libFuzzer: the DATA reader. Checks that the end of data is only ever
 * found right after CRLF "." CRLF, that chunking does not change the
 * result, and that output never overruns. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t run(const uint8_t *in, size_t len, size_t chunk, size_t outcap,
		  char *out, size_t *olen, int *done)
{
	struct smtp_data d;
	size_t i = 0, o = 0;

	smtp_data_init(&d);
	while (i < len && !d.done) {
		size_t n = len - i < chunk ? len - i : chunk, got;
		size_t room = 4 * len + 8 - o < outcap ? 4 * len + 8 - o : outcap;
		size_t used = smtp_data_feed(&d, (const char *)in + i, n, out + o,
					     room, &got);
		if (got > room || used > n)
			__builtin_trap();
		i += used;
		o += got;
	}
	*olen = o;
	*done = d.done;
	return i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[1 << 16], b[1 << 16];
	size_t la, lb, ia, ib;
	int da, db;

	if (size > 8192)
		return 0;
	ia = run(data, size, size ? size : 1, sizeof(a), a, &la, &da);
	ib = run(data, size, 1 + (size % 7), 3, b, &lb, &db);
	if (ia != ib || la != lb || da != db || memcmp(a, b, la) != 0)
		__builtin_trap();
	if (da) {
		/* the terminator is exactly CRLF . CRLF (or data starts ".\r\n") */
		if (ia < 3 || memcmp(data + ia - 3, ".\r\n", 3) != 0)
			__builtin_trap();
		if (ia > 3 && (ia < 5 || memcmp(data + ia - 5, "\r\n", 2) != 0))
			__builtin_trap();
	}
	return 0;
}
