/* libFuzzer: strict base64, PEM and the SASL PLAIN splitter. Decoding is tried
 * with output room of exactly the capacity given, so a write past it is
 * an ASan report; anything that decodes must encode back to the same
 * bytes (only canonical base64 is accepted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/sasl.h"

#define IN_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes into the last cap bytes of a global buffer, so one byte too
 * many lands past its end, which ASan reports (no malloc: faster). */
static int decode_cap(const uint8_t *data, size_t size, size_t cap, int full)
{
	static unsigned char tail[IN_MAX];
	int n = b64_decode((const char *)data, size, tail + sizeof(tail) - cap, cap);

	if (n > (int)cap)
		__builtin_trap();
	/* Same answer whatever the room, as long as it fits. */
	if (full >= 0 && (size_t)full <= cap && n != full)
		__builtin_trap();
	if (n >= 0 && n != full)
		__builtin_trap();
	return n;
}

static void check_b64(const uint8_t *data, size_t size)
{
	static unsigned char out[IN_MAX];
	static char enc[IN_MAX / 3 * 4 + 8];
	int full = b64_decode((const char *)data, size, out, sizeof(out));
	size_t caps[] = { 0, 1, 2, 3, 4, 5, size / 4 * 3 - 1, size / 4 * 3 };

	if (full >= 0) {
		size_t e = b64_encode(out, (size_t)full, enc, sizeof(enc));
		if (size % 4 != 0 || e != size || memcmp(enc, data, size) != 0)
			__builtin_trap();
	}
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (caps[i] <= IN_MAX)
			decode_cap(data, size, caps[i], full);
	}
	/* Any bytes encode and decode back, and encoding is bounded. */
	if (size <= sizeof(out)) {
		size_t e = b64_encode(data, size, enc, sizeof(enc));
		if (e != B64_ENCODED_SIZE(size) - 1 || enc[e] != '\0')
			__builtin_trap();
		if (b64_encode(data, size, enc, e) != 0)
			__builtin_trap();
		e = b64_encode(data, size, enc, sizeof(enc));
		if (b64_decode(enc, e, out, size) != (int)size ||
		    memcmp(out, data, size) != 0)
			__builtin_trap();
	}
}

static int inside(const uint8_t *data, size_t size, const char *p, size_t len)
{
	const uint8_t *q = (const uint8_t *)p;
	return q >= data && q + len <= data + size && !memchr(p, '\0', len);
}

static void check_plain(const uint8_t *data, size_t size)
{
	struct sasl_plain p;

	if (sasl_plain_parse(data, size, &p) != 0)
		return;
	if (!inside(data, size, p.authzid, p.authzid_len) ||
	    !inside(data, size, p.authcid, p.authcid_len) ||
	    !inside(data, size, p.passwd, p.passwd_len))
		__builtin_trap();
	if (p.authcid_len == 0 || p.passwd_len == 0 ||
	    p.authzid_len > SASL_FIELD_MAX || p.authcid_len > SASL_FIELD_MAX ||
	    p.passwd_len > SASL_FIELD_MAX)
		__builtin_trap();
	if (p.authzid_len + p.authcid_len + p.passwd_len + 2 != size ||
	    (const uint8_t *)p.authzid != data ||
	    p.passwd + p.passwd_len != (const char *)data + size)
		__builtin_trap();
}

/* PEM: every object's DER lies in the scratch room given (a heap block
 * of exactly that size, so ASan sees a write past it) or is NULL with
 * length 0 (damaged), and its label is a NUL-terminated string of at
 * most PEM_LABEL_MAX bytes. */
static int pem_check(void *ctx, const char *label, const unsigned char *der, size_t len)
{
	const unsigned char *scratch = ctx;

	if ((der != scratch && !(der == NULL && len == 0)) || strlen(label) > PEM_LABEL_MAX)
		__builtin_trap();
	return label[0] == 'R';         /* a refusal ends the walk */
}

static void check_pem(const uint8_t *data, size_t size)
{
	size_t cap = size / 2 + 1;
	unsigned char *scratch = malloc(cap);

	if (!scratch)
		return;
	(void)pem_each((const char *)data, size, scratch, cap, pem_check, scratch);
	free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > IN_MAX)
		return 0;
	check_b64(data, size);
	check_plain(data, size);
	check_pem(data, size);
	return 0;
}
