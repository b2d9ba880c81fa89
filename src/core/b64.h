/* b64 — strict base64 (RFC 4648 §4) and PEM (RFC 7468) decoding: pure
 * functions over the caller's buffers, no I/O, no allocation. */
#ifndef POSTIE_B64_H
#define POSTIE_B64_H

#include <stddef.h>

/* Buffer sizes: decoded bytes of n base64 chars, and chars (with the NUL)
 * needed to encode n bytes. */
#define B64_DECODED_MAX(n) ((n) / 4 * 3)
#define B64_ENCODED_SIZE(n) (((n) + 2) / 3 * 4 + 1)

/* The value (0..63) of one base64 character, or -1. */
int b64_value(unsigned char c);

/* Decodes in[0..inlen) into out. The input MUST be canonical base64: a
 * multiple of 4 chars, '=' padding only at the end, no whitespace, unused
 * bits zero. Returns the decoded length, or -1 on any bad input or when the
 * result would not fit in outcap bytes (nothing useful is left in out).
 * out may be in itself (each quad's bytes land before the next is read). */
int b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap);

/* Encodes in[0..len) with padding into out, NUL-terminated. Returns the
 * length without the NUL, or 0 when it does not fit (out is then "" if
 * outcap > 0). */
size_t b64_encode(const unsigned char *in, size_t len, char *out, size_t outcap);

/* The longest PEM label kept ("CERTIFICATE", "EC PRIVATE KEY"...). */
#define PEM_LABEL_MAX 127

/* Gets each PEM object's label (NUL-terminated) and DER, or der NULL
 * and len 0 for a damaged one (its body not base64, too big for the
 * scratch room, or cut short by a BEGIN or the end); 0 goes on. */
typedef int (*pem_fn)(void *ctx, const char *label, const unsigned char *der,
		      size_t len);

/* Walks the objects of a PEM text: "-----BEGIN L-----", base64 lines
 * (spaces, tabs and CR ignored), "-----END L-----". Text between objects
 * is skipped (a CA bundle's comments). Each object is decoded into
 * scratch[0..cap), which must hold its base64 text; a damaged one goes to
 * fn as such (the caller decides: a CA bundle skips it, a key fails).
 * Returns the number of objects, or -1 on a label over PEM_LABEL_MAX or
 * when fn returns non-zero. */
int pem_each(const char *text, size_t len, unsigned char *scratch, size_t cap,
	     pem_fn fn, void *ctx);

#endif
