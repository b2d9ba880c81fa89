/* libFuzzer: mboxrd quoting. Chunked and whole runs agree, and after
 * quoting no line starts with "From ". */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/mbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[6 * 8192 + 16], b[6 * 8192 + 16];
	struct mbox_quote q;
	size_t la = 0, lb = 0;

	if (size > 8192)
		return 0;
	mbox_quote_init(&q);
	la = mbox_quote(&q, (const char *)data, size, a);
	la += mbox_quote_end(&q, a + la);
	mbox_quote_init(&q);
	for (size_t i = 0; i < size; i += 3) {
		size_t n = size - i < 3 ? size - i : 3;
		lb += mbox_quote(&q, (const char *)data + i, n, b + lb);
	}
	lb += mbox_quote_end(&q, b + lb);
	if (la != lb || memcmp(a, b, la) != 0 || la < size)
		__builtin_trap();
	for (size_t i = 0; i + 5 <= la; i++)
		if ((i == 0 || a[i - 1] == '\n') && memcmp(a + i, "From ", 5) == 0)
			__builtin_trap();
	return 0;
}
