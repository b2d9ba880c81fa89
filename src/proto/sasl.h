/* sasl — the pure parts of SMTP AUTH (RFC 4954): the PLAIN message (RFC
 * 4616), with strict base64 from core/b64.h. No I/O, no allocation;
 * results point into the caller's buffer. The LOGIN exchange is the
 * caller's state machine: it only needs b64_decode/b64_encode and the two
 * prompts below. */
#ifndef POSTIE_SASL_H
#define POSTIE_SASL_H

#include <stddef.h>

#include "core/b64.h"

/* AUTH LOGIN challenges: base64 of "Username:" and "Password:". */
#define SASL_LOGIN_USER_PROMPT "VXNlcm5hbWU6"
#define SASL_LOGIN_PASS_PROMPT "UGFzc3dvcmQ6"

/* RFC 4616 §2: each PLAIN field is at most 255 octets. */
#define SASL_FIELD_MAX 255

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
