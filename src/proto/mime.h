/* mime — the structure of a message as IMAP needs it (RFC 2045/2046,
 * RFC 3501 §7.4.2): parts, their header and body offsets, line counts,
 * the header fields BODYSTRUCTURE and ENVELOPE show; and the renderers
 * of ENVELOPE and BODYSTRUCTURE. Pure: the message is fed in chunks of
 * any size (as IMAP sends it: CRLF line ends) and nothing is read twice
 * or allocated. Limits: MIME_MAX_PARTS parts, MIME_MAX_DEPTH levels
 * (deeper parts are body text of their parent), header values share a
 * MIME_ARENA-byte arena and header fields of MIME_LINE bytes
 * (CONFIG_IMAP_FIELD_MAX): a value that did not fit whole is marked cut,
 * and ENVELOPE shows such a field as NIL, never shortened. */
#ifndef POSTIE_MIME_H
#define POSTIE_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define MIME_MAX_PARTS 64
#define MIME_MAX_DEPTH 8
#define MIME_LINE CONFIG_IMAP_FIELD_MAX
#define MIME_ARENA (2 * MIME_LINE + 4096)

enum {
	MH_CTYPE, MH_CTE, MH_CID, MH_CDESC, MH_CDISP, MH_CLANG, MH_CLOC, MH_CMD5,
	MH_DATE, MH_SUBJECT, MH_FROM, MH_SENDER, MH_REPLYTO, MH_TO, MH_CC,
	MH_BCC, MH_INREPLYTO, MH_MSGID, MH_COUNT
};

struct mime_part {
	int16_t parent, child, next, last;      /* -1: none */
	uint8_t depth;
	uint8_t multipart;      /* has children separated by its boundary */
	uint8_t message;        /* message/rfc822 with one child message */
	uint8_t closed;         /* multipart: close delimiter seen */
	uint8_t in_header;
	uint64_t hdr_off, body_off, end_off;
	uint64_t body_line, lines;
	uint16_t hv[MH_COUNT], hl[MH_COUNT];    /* arena offset, length */
	uint32_t cut;                           /* bit h: value hv[h] was cut */
	uint16_t bnd, bndlen;                   /* boundary in the arena */
};

struct mime {
	int n;                  /* parts; part 0 is the message */
	int cur;                /* part whose header or body we are in */
	uint64_t pos, line_start, line_no;
	int hfield;             /* header field being collected, or -1 */
	size_t llen;            /* bytes of the line held in line[] */
	int ltrunc;
	int cr;
	size_t alen;
	int done;
	char line[MIME_LINE];
	char hbuf[MIME_LINE];   /* the header field being unfolded */
	size_t hlen;
	int hcut;               /* ... and it did not fit whole */
	char arena[MIME_ARENA];
	struct mime_part part[MIME_MAX_PARTS];
};

void mime_init(struct mime *m);
void mime_feed(struct mime *m, const char *p, size_t n);
void mime_end(struct mime *m);
/* The header value (unfolded, trimmed) or NULL. */
const char *mime_hv(const struct mime *m, int part, int h, size_t *len);
/* 1 when that value is only the start of a longer one. */
int mime_hv_cut(const struct mime *m, int part, int h);
/* The part of a section path ("1.2.3"); for n = 0, part 0. -1 when there
 * is no such part. A path into a message/rfc822 part goes to its
 * message's parts, as RFC 3501 says. `for_text` is set when the path is
 * followed by HEADER/TEXT/HEADER.FIELDS, which then name the header of
 * the encapsulated message. */
int mime_find(const struct mime *m, const uint32_t *path, int n, int for_text);

/* Bounded output (a checked buffer) with a sticky overflow mark: after
 * one refused append nothing more is added, so a caller that sees
 * overflow throws the whole text away. */
struct mime_out {
	struct buf b;
	int overflow;
};
void mime_out_init(struct mime_out *o, char *buf, size_t cap);
void mime_out_str(struct mime_out *o, const char *s, size_t n);  /* raw */
/* An IMAP string (quoted, or a literal when it holds 8-bit data), or NIL
 * when s is NULL. */
void mime_out_nstring(struct mime_out *o, const char *s, size_t n);

/* The output of mime_envelope and mime_bodystructure is kept across
 * restarts (IMAP's structure cache, NAME.sc): bump MIME_OUT_FORMAT with
 * any change to what they write, and the caches are started afresh. */
#define MIME_OUT_FORMAT 3

void mime_envelope(const struct mime *m, int part, struct mime_out *o);
/* ext: BODYSTRUCTURE (1) or BODY (0). */
void mime_bodystructure(const struct mime *m, int part, int ext, struct mime_out *o);

/* Date header to a day number (days since 1970-01-01); -1 if unparsable. */
int64_t mime_date_days(const char *s, size_t n);

#endif
