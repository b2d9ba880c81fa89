/* libFuzzer: the streaming MIME decoders (mimedec.c). The first input
 * octet picks the decoder (QP, base64 or identity, each with or without
 * ISO-8859-1 conversion, or RFC 2047); the rest is fed whole and in
 * pieces of 1 to 13 octets. Differential: every chunking gives the same
 * output, and each call stays within the room its header promises. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "proto/mimedec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t run(int kind, const char *in, size_t n, size_t step, char *out,
		  size_t cap)
{
	static char tmp[MDEC_EW_OUT(13) + MDEC_OUT(65536)];
	struct mdec d;
	struct mdec_ew e;
	struct buf o, t;

	buf_init(&o, out, cap);
	mdec_init(&d, kind % 3, kind / 3 % 2 ? MDEC_CS_LATIN1 : MDEC_CS_RAW);
	mdec_ew_init(&e);
	for (size_t i = 0; i < n; i += step) {
		size_t k = n - i < step ? n - i : step;
		buf_init(&t, tmp, kind >= 6 ? MDEC_EW_OUT(k) : MDEC_OUT(k));
		if (kind >= 6)
			mdec_ew_feed(&e, in + i, k, &t);
		else
			mdec_feed(&d, in + i, k, &t);
		if (t.full)
			__builtin_trap();
		buf_add(&o, t.p, t.len);
	}
	buf_init(&t, tmp, kind >= 6 ? MDEC_EW_OUT(0) : MDEC_OUT(0));
	if (kind >= 6)
		mdec_ew_end(&e, &t);
	else
		mdec_end(&d, &t);
	if (t.full || o.full)
		__builtin_trap();
	buf_add(&o, t.p, t.len);
	return o.len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char whole[4 * 65536], part[4 * 65536];
	const char *in = (const char *)data + 1;
	size_t n, wn;
	int kind;

	if (size < 1 || size > 65536)
		return 0;
	kind = data[0] % 7;
	n = size - 1;
	wn = run(kind, in, n, n ? n : 1, whole, sizeof(whole));
	for (size_t step = 1; step <= 13; step += 4)
		if (run(kind, in, n, step, part, sizeof(part)) != wn ||
		    memcmp(whole, part, wn) != 0)
			__builtin_trap();
	return 0;
}
