/* sasl — the pure parts of SMTP AUTH (RFC 4954): strict base64 (RFC 4648
 * §4) and the PLAIN message (RFC 4616). No I/O, no allocation; results
 * point into the caller's buffer. The LOGIN exchange is the caller's state
 * machine: it only needs b64_decode/b64_encode and the two prompts below. */
#ifndef POSTIE_SASL_H
#define POSTIE_SASL_H

#include <stddef.h>

/* AUTH LOGIN challenges: base64 of "Username:" and "Password:". */
#define SASL_LOGIN_USER_PROMPT "VXNlcm5hbWU6"
#define SASL_LOGIN_PASS_PROMPT "UGFzc3dvcmQ6"

/* RFC 4616 §2: each PLAIN field is at most 255 octets. */
#define SASL_FIELD_MAX 255

/* Buffer sizes: decoded bytes of n base64 chars, and chars (with the NUL)
 * needed to encode n bytes. */
#define B64_DECODED_MAX(n) ((n) / 4 * 3)
#define B64_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* The value (0..63) of one base64 character, or -1. */
int sasl_b64_value(unsigned char c);

/* Decodes in[0..inlen) into out. The input MUST be canonical base64: a
 * multiple of 4 chars, '=' padding only at the end, no whitespace, unused
 * bits zero. Returns the decoded length, or -1 on any bad input or when the
 * result would not fit in outcap bytes (nothing useful is left in out). */
int b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap);

/* Encodes in[0..len) with padding into out, NUL-terminated. Returns the
 * length without the NUL, or 0 when it does not fit (out is then "" if
 * outcap > 0). */
size_t b64_encode(const unsigned char *in, size_t len, char *out, size_t outcap);

/* "[authzid] NUL authcid NUL passwd". The fields are NOT NUL-terminated:
 * use the lengths. authzid_len is 0 when absent. */
struct sasl_plain {
	const char *authzid, *authcid, *passwd;
	size_t authzid_len, authcid_len, passwd_len;
};

/* Splits a decoded PLAIN response: exactly two NULs, authcid and passwd
 * non-empty, every field at most SASL_FIELD_MAX bytes. 0 or -1. */
int sasl_plain_parse(const unsigned char *buf, size_t len, struct sasl_plain *out);

#endif
