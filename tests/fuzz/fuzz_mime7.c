/* libFuzzer: 8-bit to 7-bit conversion (mime7) for the relay. The input
 * is converted whole and in chunks whose size comes from the first byte:
 * both give the same bytes; when "multipart" appears nowhere (in any
 * case), the body comes out 7-bit. */
#include <stdlib.h>
#include <string.h>
#include "proto/mime7.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static size_t run(const char *in, size_t n, size_t chunk, char *out)
{
	struct mime7 m;
	size_t o = 0;

	mime7_init(&m);
	for (size_t i = 0; i < n; i += chunk) {
		size_t k = n - i < chunk ? n - i : chunk;
		o += mime7_feed(&m, in + i, k, out + o);
	}
	o += mime7_end(&m, out + o);
	return o;
}

static int has_multipart(const unsigned char *p, size_t n)
{
	static const char w[] = "multipart";

	for (size_t i = 0; i + 9 <= n; i++) {
		size_t k = 0;
		while (k < 9 && (p[i + k] | 0x20) == w[k])
			k++;
		if (k == 9)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static char a[4 * 8192 + 8192], b[4 * 8192 + 8192 * 8];
	size_t chunk, na, nb;

	if (size < 1 || size > 8192)
		return 0;
	chunk = (size_t)(data[0] % 64) + 1;
	na = run((const char *)data + 1, size - 1, size, a);
	nb = run((const char *)data + 1, size - 1, chunk, b);
	if (na != nb || memcmp(a, b, na) != 0)
		abort();
	if (!has_multipart(data + 1, size - 1)) {
		const char *body = memmem(a, na, "\n\n", 2);
		for (const char *p = body; p && p < a + na; p++)
			if ((unsigned char)*p >= 0x80)
				abort();
	}
	return 0;
}
