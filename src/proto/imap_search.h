/* imap_search — SEARCH evaluation (RFC 3501 §6.4.4), pure: no I/O, no
 * allocation. The caller feeds a message's facts (numbers, flags, dates)
 * and its bytes as IMAP sends them (CRLF line ends) in chunks of any size,
 * and may stop feeding as soon as srch_eval() is decided, so a search of a
 * huge message can be spread over many loop passes.
 *
 * Text keys (BODY, TEXT, HEADER and FROM/TO/CC/BCC/SUBJECT) are matched
 * case-insensitively (ASCII letters fold; other octets, UTF-8 included,
 * compare exactly) by one KMP automaton per key, all run
 * side by side over one pass of the message: the cost is linear in the
 * message for each key, whatever the needle, and a match split between
 * two chunks is found. HEADER values are unfolded (the CRLF of a folded
 * line is dropped); the Date: field is kept for SENTBEFORE/ON/SINCE.
 * FROM, TO, CC and BCC match the raw value or the value with its
 * comments taken out, so an address split by comments is found whole.
 * Header values are matched after RFC 2047 decoding; BODY matches the
 * text of each leaf part decoded from quoted-printable or base64
 * (ISO-8859-1 converted to UTF-8, other charsets as they are; a part
 * without transfer encoding as it is), found by following the multipart
 * boundaries line by line (mimedec.h): part headers, boundaries,
 * preamble and epilogue are not body text. TEXT matches the raw message
 * and the decoded header values and body text.
 *
 * Limits: the search program's IMAP_SEARCH_NODES keys; needles up to
 * CI_NEEDLE_MAX octets; the failure tables of one program share a
 * caller-owned array (srch_tables). */
#ifndef POSTIE_IMAP_SEARCH_H
#define POSTIE_IMAP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "proto/imap_parse.h"
#include "proto/mime.h"
#include "proto/mimedec.h"

#define CI_NEEDLE_MAX 65535
#define SRCH_DATE_MAX 96        /* bytes of the Date: value kept */

/* ---- the matcher ------------------------------------------------------ */

/* ASCII lower case of c (bytes >= 128 unchanged). */
static inline unsigned char ci_fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* The KMP failure function of needle[0..n) under ASCII folding into
 * fail[0..n): fail[i] is the longest proper border of needle[0..i].
 * n MUST be at most CI_NEEDLE_MAX. */
void ci_kmp_init(const char *needle, size_t n, uint16_t *fail);
/* Runs text[0..tn) through the automaton; *state (0 at the start) is the
 * number of needle bytes matched so far and carries over between calls.
 * Returns 1 as soon as a match ends inside text (then *state is n), 0
 * otherwise. An empty needle matches at once. Linear: at most 2 * tn
 * steps. */
int ci_kmp_feed(const char *needle, size_t n, const uint16_t *fail,
		uint32_t *state, const char *text, size_t tn);
/* One call over a whole text, with the caller's table of n entries:
 * 1 when needle occurs in hay. */
int ci_find(const char *hay, size_t hn, const char *needle, size_t nn,
	    uint16_t *fail);

/* ---- evaluation ------------------------------------------------------- */

enum { SRCH_NO = 0, SRCH_YES = 1, SRCH_UNKNOWN = 2 };

/* What the index and the session know of one message. */
struct srch_msg {
	uint32_t seq, count;    /* its number, messages in the mailbox */
	uint32_t uid, star_uid; /* its UID, the highest UID ("*") */
	uint32_t flags;         /* IDX_F_* */
	int recent;
	uint64_t size, modseq;
	int64_t internal_day;   /* days since 1970 of INTERNALDATE */
	/* Keywords, when the session keeps them: 1 when the message has the
	 * keyword kw. NULL: no keywords (KEYWORD never matches). */
	int (*has_keyword)(void *ctx, const char *kw, size_t n);
	void *kw_ctx;
};

/* Per text key: its automaton and, for HEADER, the field name matched. */
struct srch_key {
	uint32_t m;             /* KMP state */
	uint16_t npos;          /* HEADER: field-name bytes matched */
	uint8_t nok;            /* HEADER: the name still matches */
	uint8_t active;         /* HEADER: inside a field of that name */
	uint8_t hit;            /* found: stays so for this message */
	uint8_t addr;           /* HEADER of an address field: also match
				 * the value with comments taken out */
	uint32_t m2;            /* KMP state over that; BODY and TEXT:
				 * over the decoded body text */
	uint32_t m3;            /* TEXT: over the decoded header values */
};

#define SRCH_BND_MAX 70         /* octets of a boundary (RFC 2046) */
#define SRCH_FIELD_MAX 512      /* octets of a part's header field kept */

/* The MIME structure, line by line, as far as decoding needs it: the
 * open multiparts' boundaries, each leaf part's transfer encoding and
 * charset. */
struct srch_mime {
	uint8_t mode;           /* in a header, a leaf body, or skipping */
	uint8_t depth;          /* open multiparts */
	uint8_t bol;            /* at a line start */
	uint8_t hold;           /* holding a line that may be a boundary */
	uint8_t hdr_end;        /* the empty line that ends a header */
	uint8_t type, enc, cs;  /* of the part whose header we read */
	uint8_t nblen;
	uint8_t bndlen[MIME_MAX_DEPTH];
	char bnd[MIME_MAX_DEPTH][SRCH_BND_MAX];
	char nb[SRCH_BND_MAX];  /* that part's boundary parameter */
	size_t flen;
	char field[SRCH_FIELD_MAX];     /* a header field, unfolded, or
					 * the held line */
	struct mdec dec;
};

struct srch_scan {
	int hstate;             /* where we are in the header */
	int in_body, ended;
	int cr;                 /* a CR held back in a header value */
	uint16_t dpos;          /* "date" name bytes matched */
	uint8_t dok, in_date, have_date;
	char date[SRCH_DATE_MAX];
	size_t dlen;
	int64_t sent_day;       /* -1: none (INTERNALDATE stands in) */
	/* The address value without comments, blanks around '@' and runs
	 * of blanks ("<a (x)@ (y) b.org>" is "<a@b.org>"). */
	uint8_t a_depth, a_esc, a_quote, a_space;
	char a_last;
	struct mdec_ew ew;      /* RFC 2047 in the current header value */
	struct srch_mime mm;
	struct srch_key key[IMAP_SEARCH_NODES];
};

/* What a program needs beyond the index record. */
enum { SRCH_NEED_IDATE = 1, SRCH_NEED_TEXT = 2 };
unsigned srch_needs(const struct search_prog *p);

/* The failure tables of every text key into tab[0..ntab); -1 when their
 * needles add up to more than ntab (a program of one command fits a
 * table of the command's size). Call again before feeding when another
 * program may have used the same table since. */
int srch_tables(const struct search_prog *p, uint16_t *tab, size_t ntab);

/* A new message. */
void srch_begin(struct srch_scan *x, const struct search_prog *p);
/* Bytes of the message in order (CRLF line ends), any chunking. */
void srch_feed(struct srch_scan *x, const struct search_prog *p,
	       const uint16_t *tab, const char *b, size_t n);
/* The end of the message. */
void srch_end(struct srch_scan *x, const struct search_prog *p,
	      const uint16_t *tab);
/* SRCH_YES / SRCH_NO once decided (always after srch_end, often before:
 * a BODY key found, a header-only program at the end of the header),
 * else SRCH_UNKNOWN. */
int srch_eval(const struct srch_scan *x, const struct search_prog *p,
	      const struct srch_msg *m);

#endif
