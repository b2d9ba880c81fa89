/* imap_parse — the pure half of the IMAP server (RFC 3501 §9 grammar):
 * tokens of one command, sequence sets, FETCH attribute lists and SEARCH
 * programs. No I/O, no allocation: the caller owns the command buffer,
 * which holds the command as it came off the wire (literals inline as
 * "{n}\r\n" + n octets, "{n+}" too), without the final CRLF. Quoted
 * strings are unescaped in place, so the buffer MUST be writable; results
 * point into it. Every function returns 0 on success and -1 on a syntax
 * error (ip->err says why); none reads past the end of the buffer.
 *
 * Limits: IMAP_FETCH_ITEMS attributes, IMAP_FETCH_SECS body sections,
 * IMAP_FIELDS header names per command, IMAP_PART_DEPTH section levels,
 * IMAP_SEARCH_NODES search keys nested at most IMAP_SEARCH_DEPTH deep. */
#ifndef POSTIE_IMAP_PARSE_H
#define POSTIE_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define IMAP_TAG_MAX 64
#define IMAP_FETCH_ITEMS 24
#define IMAP_FETCH_SECS 8
#define IMAP_FIELDS 32
#define IMAP_PART_DEPTH 8
#define IMAP_SEARCH_NODES 64
#define IMAP_SEARCH_DEPTH 12

struct ip {
	char *p, *end;
	const char *err;
	int depth;
};

void ip_init(struct ip *ip, char *buf, size_t len);
int ip_done(const struct ip *ip);               /* 1 at the end */
int ip_peek(const struct ip *ip);               /* next octet or -1 */
int ip_char(struct ip *ip, int ch);             /* consumes ch */
int ip_sp(struct ip *ip);                       /* one SP */
int ip_end(struct ip *ip);                      /* nothing more */
int ip_tag(struct ip *ip, const char **s, size_t *n);
/* ATOM-CHARs (and ']' when brackets is set, for ASTRING-CHAR). */
int ip_atom(struct ip *ip, const char **s, size_t *n, int brackets);
/* quoted / literal: NUL refused, quoted unescaped in place. */
int ip_string(struct ip *ip, char **s, size_t *n);
int ip_astring(struct ip *ip, char **s, size_t *n);
/* LIST mailbox patterns: list-char (atom chars plus % * ]) or a string. */
int ip_list_mailbox(struct ip *ip, char **s, size_t *n);
int ip_number(struct ip *ip, uint32_t *v);      /* 0..2^32-1 */
int ip_number64(struct ip *ip, uint64_t *v);    /* 0..2^63-1 */
/* A sequence set ("1,3:5,7:*", "$" not supported); the text is returned
 * for seq_next. */
int ip_seqset(struct ip *ip, const char **s, size_t *n);
/* "dd-Mon-yyyy" (SEARCH) as a day number (days since 1970-01-01). */
int ip_date(struct ip *ip, int32_t *days);
/* "dd-Mon-yyyy hh:mm:ss +zzzz" (APPEND), quoted: seconds since the epoch. */
int ip_datetime(struct ip *ip, int64_t *t);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
int32_t ip_days(int y, int m, int d);
/* "Mon" -> 1..12, 0 if none (case-insensitive). */
int ip_month(const char *s);

/* A literal announced at the end of a line: "...{123}" or "{123+}".
 * Returns 1 with *n and *plus, 0 when the line does not end so, -1 when
 * it does but the number is bad or too large (over 2^63). */
int ip_literal_tail(const char *line, size_t len, uint64_t *n, int *plus);

/* Sequence sets: iterates the ranges of a set checked by ip_seqset,
 * with '*' as star, each range ordered (lo <= hi). 1 with a range, 0 at
 * the end. */
struct seq_iter {
	const char *p, *end;
};
void seq_iter_init(struct seq_iter *it, const char *s, size_t n);
int seq_next(struct seq_iter *it, uint32_t star, uint32_t *lo, uint32_t *hi);
int seq_has(const char *s, size_t n, uint32_t star, uint32_t v);

/* ---- FETCH ---------------------------------------------------------- */

enum {
	FA_UID = 1, FA_FLAGS = 2, FA_SIZE = 4, FA_INTERNALDATE = 8,
	FA_ENVELOPE = 16, FA_BODYSTRUCTURE = 32, FA_BODY = 64, FA_MODSEQ = 128,
};

enum { SEC_ALL, SEC_HEADER, SEC_FIELDS, SEC_FIELDS_NOT, SEC_TEXT, SEC_MIME };
enum { RFC822_NONE, RFC822_ALL, RFC822_HEADER, RFC822_TEXT };

struct fetch_sec {
	uint8_t kind;           /* SEC_* */
	uint8_t peek;
	uint8_t rfc822;         /* RFC822_*: answered with that name */
	uint8_t nparts;
	uint32_t part[IMAP_PART_DEPTH];
	uint8_t field0, nfields;        /* in fetch_req.fields */
	uint8_t partial;
	uint32_t pstart, plen;
	const char *spec;       /* the text between [ and ], as sent */
	size_t spec_len;
};

struct fetch_item {
	uint8_t attr;           /* one FA_* bit, or 0 for a section */
	uint8_t sec;
};

struct fetch_req {
	unsigned attrs;         /* union of the FA_* items asked */
	int nitems, nsecs, nfields;
	int sets_seen;          /* a non-peek section: \Seen gets set */
	int changedsince;       /* CONDSTORE modifier given */
	uint64_t since;
	/* the arrays: filled up to nitems, nsecs, nfields */
	struct fetch_item items[IMAP_FETCH_ITEMS];
	struct fetch_sec secs[IMAP_FETCH_SECS];
	const char *fields[IMAP_FIELDS];
	size_t field_len[IMAP_FIELDS];
};

/* The att list of FETCH (macro, one item or a list) and an optional
 * modifier list "(CHANGEDSINCE n)"; must reach the end. */
int ip_fetch_atts(struct ip *ip, struct fetch_req *r);

/* ---- SEARCH --------------------------------------------------------- */

enum {
	SK_ALL, SK_AND, SK_OR, SK_NOT, SK_SEQ, SK_UID,
	SK_FLAG, SK_UNFLAG,             /* num: IDX_F_* bits */
	SK_NEW, SK_OLD, SK_RECENT, SK_KEYWORD, SK_UNKEYWORD,
	SK_LARGER, SK_SMALLER,
	SK_BEFORE, SK_ON, SK_SINCE,     /* internal date, num: day */
	SK_SENTBEFORE, SK_SENTON, SK_SENTSINCE,
	SK_HEADER,                      /* s: field, s2: text */
	SK_BODY, SK_TEXT,
	SK_MODSEQ,
};

struct search_node {
	uint8_t op;
	int16_t child, next;            /* -1: none */
	const char *s, *s2;
	size_t slen, s2len;
	uint64_t num;
};

struct search_prog {
	int n;
	struct search_node node[IMAP_SEARCH_NODES];
	int needs_header, needs_body;
};

/* [CHARSET x] key *(SP key) up to the end; node 0 is the root (an AND).
 * Charsets other than US-ASCII and UTF-8 fail with err "BADCHARSET". */
int ip_search(struct ip *ip, struct search_prog *p);

#endif
