/* smtp_data — the DATA reader: a pure byte-level state machine that undoes
 * dot-stuffing, turns CRLF into LF, and finds the end of data. Only
 * CRLF "." CRLF ends data (after a line that itself ended in CRLF); a bare
 * LF ends a content line but never starts a terminator, and a bare CR is
 * content (SMTP smuggling, CVE-2023-51764/5/6). */
#ifndef POSTIE_SMTP_DATA_H
#define POSTIE_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

enum {
	DATA_8BIT = 1,          /* a byte >= 0x80 was seen */
	DATA_NUL = 2,           /* a NUL byte was seen */
	DATA_BARE_LF = 4,       /* a line ended in LF alone */
	DATA_BARE_CR = 8,       /* a CR not followed by LF */
};

struct smtp_data {
	int state;
	int done;               /* end of data seen */
	unsigned flags;
	uint64_t size;          /* bytes emitted so far */
};

/* Counts the Received: fields in the header of a message given as its
 * LF-ended bytes, in pieces of any size: a count past the hop limit means
 * mail goes round in a loop (RFC 5321 6.3). */
struct smtp_hops {
	unsigned hops;
	unsigned char pos;      /* bytes of "received:" matched at a line start */
	unsigned char state;    /* HOPS_BOL, HOPS_MID, HOPS_BODY */
};

void smtp_data_init(struct smtp_data *d);
void smtp_hops_init(struct smtp_hops *h);
void smtp_hops_feed(struct smtp_hops *h, const char *p, size_t len);
/* Consumes up to inlen bytes, writing message bytes to out (LF line ends).
 * Stops at the end of data or when out has less than 2 bytes of room.
 * Returns bytes consumed; *outlen gets bytes written. */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen,
		      char *out, size_t outcap, size_t *outlen);

#endif
