/* imap_search — SEARCH keys over a message fed in chunks, and the linear
 * case-insensitive matcher under them (see imap_search.h). Owns no
 * buffers: the failure tables live in the caller's array, the per-key
 * state in the caller's struct srch_scan. Limits: IMAP_SEARCH_NODES keys,
 * IMAP_SEARCH_DEPTH levels (as parsed), CI_NEEDLE_MAX octets a needle,
 * SRCH_DATE_MAX octets of the Date: field. */
#include "proto/imap_search.h"

#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "proto/mime.h"
#include "store/index.h"

/* ---- the matcher ------------------------------------------------------ */

void ci_kmp_init(const char *needle, size_t n, uint16_t *fail)
{
	size_t k = 0;

	if (n == 0)
		return;
	fail[0] = 0;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = ci_fold((unsigned char)needle[i]);
		while (k > 0 && ci_fold((unsigned char)needle[k]) != c)
			k = fail[k - 1];
		if (ci_fold((unsigned char)needle[k]) == c)
			k++;
		fail[i] = (uint16_t)k;
	}
}

int ci_kmp_feed(const char *needle, size_t n, const uint16_t *fail,
		uint32_t *state, const char *text, size_t tn)
{
	size_t k = *state;

	if (n == 0 || k >= n) {
		*state = (uint32_t)n;
		return 1;
	}
	for (size_t i = 0; i < tn; i++) {
		unsigned char c = ci_fold((unsigned char)text[i]);
		while (k > 0 && ci_fold((unsigned char)needle[k]) != c)
			k = fail[k - 1];
		if (ci_fold((unsigned char)needle[k]) == c && ++k == n) {
			*state = (uint32_t)n;
			return 1;
		}
	}
	*state = (uint32_t)k;
	return 0;
}

int ci_find(const char *hay, size_t hn, const char *needle, size_t nn,
	    uint16_t *fail)
{
	uint32_t st = 0;

	if (nn > CI_NEEDLE_MAX)
		return 0;
	ci_kmp_init(needle, nn, fail);
	return ci_kmp_feed(needle, nn, fail, &st, hay, hn);
}

/* ---- the program ------------------------------------------------------ */

static int is_text(int op)
{
	return op == SK_HEADER || op == SK_BODY || op == SK_TEXT;
}

unsigned srch_needs(const struct search_prog *p)
{
	unsigned need = 0;

	for (int k = 0; k < p->n; k++) {
		int op = p->node[k].op;
		if (op == SK_BEFORE || op == SK_ON || op == SK_SINCE ||
		    op == SK_SENTBEFORE || op == SK_SENTON || op == SK_SENTSINCE)
			need |= SRCH_NEED_IDATE;
		if (is_text(op) || op == SK_SENTBEFORE || op == SK_SENTON ||
		    op == SK_SENTSINCE)
			need |= SRCH_NEED_TEXT;
	}
	return need;
}

int srch_tables(const struct search_prog *p, uint16_t *tab, size_t ntab)
{
	size_t at = 0;

	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		if (!is_text(nd->op))
			continue;
		if (nd->s2len > CI_NEEDLE_MAX || nd->s2len > ntab - at ||
		    (nd->op == SK_HEADER && nd->slen > CI_NEEDLE_MAX))
			return -1;
		ci_kmp_init(nd->s2, nd->s2len, tab + at);
		at += nd->s2len;
	}
	return 0;
}

void srch_begin(struct srch_scan *x, const struct search_prog *p)
{
	(void)p;
	memset(x, 0, sizeof(*x));
	x->sent_day = -1;
}

/* ---- the header ------------------------------------------------------- */

/* Header states: at a line start, in a field name, in blanks between the
 * name and its colon, in a value, after a CR in a value, after a CR at a
 * line start (the blank line that ends the header, normally). */
enum { H_BOL, H_NAME, H_NAME_WSP, H_VALUE, H_CR, H_BOL_CR };

static void key_feed(struct srch_scan *x, const struct search_prog *p,
		     const uint16_t *tab, int k, size_t at, const char *b, size_t n)
{
	const struct search_node *nd = &p->node[k];
	struct srch_key *ky = &x->key[k];

	if (!ky->hit && ci_kmp_feed(nd->s2, nd->s2len, tab + at, &ky->m, b, n))
		ky->hit = 1;
}

/* b[0..n) of an address value without its comments into out (room for
 * 2 * n bytes); returns the bytes written. The state carries over
 * between calls within one field. */
static size_t addr_filter(struct srch_scan *x, const char *b, size_t n, char *out)
{
	struct buf o;

	buf_init(&o, out, sat_add(n, n));       /* the promised room */
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		if (x->a_depth) {
			if (x->a_esc)
				x->a_esc = 0;
			else if (c == '\\')
				x->a_esc = 1;
			else if (c == '(' && x->a_depth < 255)
				x->a_depth++;
			else if (c == ')' && --x->a_depth == 0)
				x->a_space = 1;         /* a comment parts words */
			continue;
		}
		if (x->a_quote) {
			if (x->a_esc)
				x->a_esc = 0;
			else if (c == '\\')
				x->a_esc = 1;
			else if (c == '"')
				x->a_quote = 0;
			buf_addc(&o, c);
			x->a_last = c;
			continue;
		}
		if (c == '(') {
			x->a_depth = 1;
			continue;
		}
		if (c == ' ' || c == '\t') {
			x->a_space = 1;
			continue;
		}
		if (x->a_space && x->a_last && x->a_last != '@' && c != '@')
			buf_addc(&o, ' ');
		x->a_space = 0;
		if (c == '"')
			x->a_quote = 1;
		buf_addc(&o, c);
		x->a_last = c;
	}
	return o.len;
}

static int is_addr_field(const struct search_node *nd)
{
	static const char *const names[] = { "from", "to", "cc", "bcc" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (str_ieq(nd->s, nd->slen, names[i]))
			return 1;
	return 0;
}

/* Value bytes of the current field: to the HEADER keys naming it. */
static void value_feed(struct srch_scan *x, const struct search_prog *p,
		       const uint16_t *tab, const char *b, size_t n)
{
	char f[2 * 256];
	size_t at = 0, fn;
	int addr = 0;

	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		if (!is_text(nd->op))
			continue;
		if (nd->op == SK_HEADER && x->key[k].active) {
			key_feed(x, p, tab, k, at, b, n);
			addr |= x->key[k].addr;
		}
		at += nd->s2len;
	}
	for (size_t off = 0; addr && off < n; off += 256) {
		fn = addr_filter(x, b + off, n - off < 256 ? n - off : 256, f);
		at = 0;
		for (int k = 0; k < p->n; k++) {
			const struct search_node *nd = &p->node[k];
			struct srch_key *ky = &x->key[k];
			if (!is_text(nd->op))
				continue;
			if (nd->op == SK_HEADER && ky->active && ky->addr && !ky->hit &&
			    ci_kmp_feed(nd->s2, nd->s2len, tab + at, &ky->m2, f, fn))
				ky->hit = 1;
			at += nd->s2len;
		}
	}
	if (x->in_date) {
		struct buf d;

		buf_init(&d, x->date, sizeof(x->date));
		d.len = x->dlen;
		buf_add(&d, b, n < buf_remaining(&d) ? n : buf_remaining(&d));
		x->dlen = d.len;
	}
}

static void name_start(struct srch_scan *x, const struct search_prog *p)
{
	for (int k = 0; k < p->n; k++) {
		x->key[k].active = 0;
		x->key[k].npos = 0;
		x->key[k].nok = 1;
	}
	if (x->in_date)
		x->have_date = 1;
	x->in_date = 0;
	x->dpos = 0;
	x->dok = 1;
}

static void name_byte(struct srch_scan *x, const struct search_prog *p,
		      unsigned char c)
{
	static const char date[] = "date";

	c = ci_fold(c);
	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		struct srch_key *ky = &x->key[k];
		if (nd->op != SK_HEADER || !ky->nok)
			continue;
		if (ky->npos < nd->slen && ci_fold((unsigned char)nd->s[ky->npos]) == c)
			ky->npos++;
		else
			ky->nok = 0;
	}
	if (x->dok && x->dpos < 4 && date[x->dpos] == c)
		x->dpos++;
	else
		x->dok = 0;
}

/* The colon: keys whose name matched whole take the value. */
static void name_end(struct srch_scan *x, const struct search_prog *p)
{
	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		struct srch_key *ky = &x->key[k];
		if (nd->op != SK_HEADER || !ky->nok || ky->npos != nd->slen)
			continue;
		ky->active = 1;
		ky->m = 0;      /* no match across two fields */
		ky->m2 = 0;
		ky->addr = (uint8_t)is_addr_field(nd);
		if (nd->s2len == 0)
			ky->hit = 1;
	}
	if (x->dok && x->dpos == 4 && !x->have_date)
		x->in_date = 1;
	x->a_depth = x->a_esc = x->a_quote = x->a_space = 0;
	x->a_last = 0;
}

static void header_end(struct srch_scan *x, const struct search_prog *p)
{
	name_start(x, p);
	for (int k = 0; k < p->n; k++)
		x->key[k].nok = 0;
	x->in_body = 1;
	if (x->have_date)
		x->sent_day = mime_date_days(x->date, x->dlen);
}

/* Header bytes: field names and values, until the blank line. Returns
 * the bytes consumed (less than n when the header ended inside b). */
static size_t header_feed(struct srch_scan *x, const struct search_prog *p,
			  const uint16_t *tab, const char *b, size_t n)
{
	size_t i = 0, run;

	while (i < n) {
		unsigned char c = (unsigned char)b[i];
		switch (x->hstate) {
		case H_BOL:
			if (c == '\r') {
				x->hstate = H_BOL_CR;
				i++;
			} else if (c == '\n') {
				i++;
				header_end(x, p);
				return i;
			} else if (c == ' ' || c == '\t') {
				x->hstate = H_VALUE;    /* folded: same field */
			} else {
				name_start(x, p);
				x->hstate = H_NAME;
			}
			break;
		case H_BOL_CR:
			if (c == '\n') {
				i++;
				header_end(x, p);
				return i;
			}
			/* A stray CR at a line start: a line that is no field. */
			name_start(x, p);
			for (int k = 0; k < p->n; k++)
				x->key[k].nok = 0;
			x->dok = 0;
			x->hstate = H_VALUE;
			break;
		case H_NAME:
			if (c == ':') {
				name_end(x, p);
				x->hstate = H_VALUE;
			} else if (c == ' ' || c == '\t') {
				x->hstate = H_NAME_WSP;
			} else if (c == '\r' || c == '\n') {
				x->hstate = H_VALUE;    /* no colon: not a field */
				continue;
			} else {
				name_byte(x, p, c);
			}
			i++;
			break;
		case H_NAME_WSP:
			if (c == ':') {
				name_end(x, p);
				x->hstate = H_VALUE;
				i++;
				break;
			}
			if (c != ' ' && c != '\t') {
				/* Blanks inside a name: no field we look for. */
				for (int k = 0; k < p->n; k++)
					x->key[k].nok = 0;
				x->dok = 0;
				x->hstate = H_VALUE;
				continue;
			}
			i++;
			break;
		case H_VALUE:
			for (run = i; run < n && b[run] != '\r' && b[run] != '\n'; run++)
				;
			if (run > i)
				value_feed(x, p, tab, b + i, run - i);
			i = run;
			if (i < n) {
				x->hstate = b[i] == '\r' ? H_CR : H_BOL;
				i++;
			}
			break;
		case H_CR:
			if (c == '\n') {
				x->hstate = H_BOL;
				i++;
				break;
			}
			value_feed(x, p, tab, "\r", 1);         /* a CR in a value */
			x->hstate = H_VALUE;
			break;
		}
	}
	return n;
}

void srch_feed(struct srch_scan *x, const struct search_prog *p,
	       const uint16_t *tab, const char *b, size_t n)
{
	size_t at = 0, h = 0;

	if (x->ended)
		return;
	/* TEXT sees everything, header included. */
	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		if (!is_text(nd->op))
			continue;
		if (nd->op == SK_TEXT)
			key_feed(x, p, tab, k, at, b, n);
		at += nd->s2len;
	}
	if (!x->in_body)
		h = header_feed(x, p, tab, b, n);
	if (!x->in_body || h >= n)
		return;
	at = 0;
	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		if (!is_text(nd->op))
			continue;
		if (nd->op == SK_BODY)
			key_feed(x, p, tab, k, at, b + h, n - h);
		at += nd->s2len;
	}
}

void srch_end(struct srch_scan *x, const struct search_prog *p)
{
	if (x->ended)
		return;
	if (!x->in_body)
		header_end(x, p);
	x->ended = 1;
}

/* ---- evaluation ------------------------------------------------------- */

static int day_cmp(int op, int64_t day, uint64_t num)
{
	switch (op) {
	case SK_BEFORE: case SK_SENTBEFORE:
		return day < (int64_t)num;
	case SK_ON: case SK_SENTON:
		return day == (int64_t)num;
	default:
		return day >= (int64_t)num;
	}
}

/* Three-valued: a text key not yet found is unknown until the part it
 * searches has gone by. */
static int eval(const struct srch_scan *x, const struct search_prog *p,
		const struct srch_msg *m, int k, int depth)
{
	const struct search_node *nd = &p->node[k];
	int r, any_unknown = 0;

	if (depth > IMAP_SEARCH_DEPTH + 2)
		return SRCH_NO;
	switch (nd->op) {
	case SK_ALL:
		return SRCH_YES;
	case SK_AND:
		for (int c = nd->child; c >= 0; c = p->node[c].next) {
			r = eval(x, p, m, c, depth + 1);
			if (r == SRCH_NO)
				return SRCH_NO;
			any_unknown |= r == SRCH_UNKNOWN;
		}
		return any_unknown ? SRCH_UNKNOWN : SRCH_YES;
	case SK_OR: {
		int a = eval(x, p, m, nd->child, depth + 1);
		if (a == SRCH_YES)
			return SRCH_YES;
		int b = eval(x, p, m, p->node[nd->child].next, depth + 1);
		if (b == SRCH_YES)
			return SRCH_YES;
		return a == SRCH_NO && b == SRCH_NO ? SRCH_NO : SRCH_UNKNOWN;
	}
	case SK_NOT:
		r = eval(x, p, m, nd->child, depth + 1);
		return r == SRCH_UNKNOWN ? r : !r;
	case SK_SEQ:
		return seq_has(nd->s, nd->slen, m->count, m->seq);
	case SK_UID:
		return seq_has(nd->s, nd->slen, m->star_uid, m->uid);
	case SK_FLAG:
		return (m->flags & nd->num) != 0;
	case SK_UNFLAG:
		return (m->flags & nd->num) == 0;
	case SK_NEW:
		return m->recent && !(m->flags & IDX_F_SEEN);
	case SK_RECENT:
		return m->recent != 0;
	case SK_OLD:
		return !m->recent;
	case SK_KEYWORD:
		return m->has_keyword ? m->has_keyword(m->kw_ctx, nd->s, nd->slen) != 0 : 0;
	case SK_UNKEYWORD:
		return m->has_keyword ? m->has_keyword(m->kw_ctx, nd->s, nd->slen) == 0 : 1;
	case SK_LARGER:
		return m->size > nd->num;
	case SK_SMALLER:
		return m->size < nd->num;
	case SK_MODSEQ:
		return m->modseq >= nd->num;
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE:
		return day_cmp(nd->op, m->internal_day, nd->num);
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if (!x->in_body)
			return SRCH_UNKNOWN;
		return day_cmp(nd->op, x->sent_day >= 0 ? x->sent_day : m->internal_day,
			       nd->num);
	case SK_HEADER:
		return x->key[k].hit ? SRCH_YES : x->in_body ? SRCH_NO : SRCH_UNKNOWN;
	case SK_BODY:
	case SK_TEXT:
		return x->key[k].hit ? SRCH_YES : x->ended ? SRCH_NO : SRCH_UNKNOWN;
	}
	return SRCH_NO;
}

int srch_eval(const struct srch_scan *x, const struct search_prog *p,
	      const struct srch_msg *m)
{
	return eval(x, p, m, 0, 0);
}
