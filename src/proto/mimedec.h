/* mimedec — streaming decoders for searching text as the reader sees it:
 * quoted-printable and base64 bodies (RFC 2045 §6.7, §6.8), RFC 2047
 * encoded-words in header values, and ISO-8859-1 to UTF-8. Pure: each
 * decoder keeps its state in a small struct, takes its input in chunks
 * of any size and writes into a checked buffer; nothing is read twice
 * or allocated. Limits: an encoded-word is at most MDEC_EW_MAX octets
 * (RFC 2047 says 75; a longer one stays as it is), at most MDEC_WS_MAX
 * octets of blanks between two encoded-words are held back. Charsets
 * other than UTF-8, US-ASCII and ISO-8859-1 are passed through as they
 * decode (no conversion). */
#ifndef POSTIE_MIMEDEC_H
#define POSTIE_MIMEDEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum { MDEC_ID, MDEC_QP, MDEC_B64 };            /* transfer encodings */
enum { MDEC_CS_RAW, MDEC_CS_LATIN1 };           /* what charset conversion */

/* The charset conversion for a charset name (UTF-8, US-ASCII and
 * unknown ones: MDEC_CS_RAW). */
int mdec_charset(const char *s, size_t n);
/* The transfer encoding for a Content-Transfer-Encoding value. */
int mdec_encoding(const char *s, size_t n);

/* A body decoder: transfer encoding, then the charset conversion. */
struct mdec {
	uint8_t enc, cs;
	uint8_t st;             /* QP: after '=' (1), its first hex digit
				 * (2), blanks after '=' (3), a CR there (4) */
	uint8_t hi;             /* QP: that hex digit */
	uint8_t nq;             /* base64: sextets held */
	uint32_t acc;           /* base64: their bits */
};
/* The room mdec_feed needs in out for n input octets. */
#define MDEC_OUT(n) (2 * (n) + 8)
void mdec_init(struct mdec *d, int enc, int cs);
void mdec_feed(struct mdec *d, const char *in, size_t n, struct buf *out);
/* The end of the part: what is held back (room MDEC_OUT(0)). */
void mdec_end(struct mdec *d, struct buf *out);

/* RFC 2047 in one header value, fed in chunks (the unfolded value). */
#define MDEC_EW_MAX 76
#define MDEC_WS_MAX 32
struct mdec_ew {
	uint8_t prev;           /* the last thing out was an encoded-word */
	uint8_t part;           /* '?'s seen in the held word */
	uint8_t ewlen, wslen;
	char ew[MDEC_EW_MAX];   /* a word that may be an encoded-word */
	char ws[MDEC_WS_MAX];   /* blanks after an encoded-word */
};
/* The room mdec_ew_feed needs in out for n input octets. */
#define MDEC_EW_OUT(n) (2 * ((n) + MDEC_EW_MAX + MDEC_WS_MAX) + 8)
void mdec_ew_init(struct mdec_ew *e);
void mdec_ew_feed(struct mdec_ew *e, const char *in, size_t n, struct buf *out);
/* The end of the value: what is held back, as it is. */
void mdec_ew_end(struct mdec_ew *e, struct buf *out);

#endif
