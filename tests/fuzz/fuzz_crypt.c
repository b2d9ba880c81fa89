/* libFuzzer: SHA-crypt on hostile hash strings and passwords. Input: one
 * byte for the password length, the password, then the hash/setting up
 * to a NUL. Whatever passwd_crypt() writes must verify, and verify() may
 * only say 1 for the exact string crypt writes. Settings asking for more
 * than FUZZ_ROUNDS_MAX rounds are skipped to keep runs fast (the limit
 * itself is a unit test). */
#include <stdint.h>
#include <string.h>

#include "store/passwd.h"

#define FUZZ_ROUNDS_MAX 20000
#define HASH_IN_MAX 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Any "rounds=" with more than 5 digits or over the cap: too slow. */
static int too_slow(const char *s)
{
	const char *r = strstr(s, "rounds=");
	unsigned long v = 0;
	int digits = 0;

	if (!r)
		return 0;
	for (r += 7; *r >= '0' && *r <= '9'; r++, digits++)
		v = v * 10 + (unsigned long)(*r - '0');
	return digits > 5 || v > FUZZ_ROUNDS_MAX || too_slow(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char hash[HASH_IN_MAX + 1], out[PASSWD_HASH_MAX];
	const char *pw;
	size_t pwlen, hlen;
	int v, c;

	if (size < 1)
		return 0;
	/* 255 means "all the rest": reaches past PASSWD_MAX_LEN. */
	pwlen = data[0] == 255 ? size - 1 : data[0];
	if (pwlen > size - 1)
		pwlen = size - 1;
	pw = (const char *)data + 1;
	hlen = size - 1 - pwlen;
	if (hlen > HASH_IN_MAX)
		hlen = HASH_IN_MAX;
	memcpy(hash, data + 1 + pwlen, hlen);
	hash[hlen] = '\0';
	if (too_slow(hash))
		return 0;

	v = passwd_verify(pw, pwlen, hash);
	if (v < -1 || v > 1)
		__builtin_trap();
	c = passwd_crypt(pw, pwlen, hash, out, sizeof(out));
	if (v == 1 && (c != 0 || strcmp(out, hash) != 0))
		__builtin_trap();
	if (c != 0)
		return 0;
	if (!memchr(out, '\0', sizeof(out)) || out[0] != '$' ||
	    (out[1] != '5' && out[1] != '6') || out[2] != '$')
		__builtin_trap();
	if (passwd_verify(pw, pwlen, out) != 1)
		__builtin_trap();
	if (pwlen > 0 && passwd_verify(pw, pwlen - 1, out) != 0)
		__builtin_trap();
	return 0;
}
