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

static void part_start(struct srch_mime *mm);

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
	mdec_ew_init(&x->ew);
	part_start(&x->mm);
	x->mm.bol = 1;
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

/* Decoded text to the BODY and TEXT keys' second automaton (TEXT also
 * takes the decoded header values). */
static void dec_feed(struct srch_scan *x, const struct search_prog *p,
		     const uint16_t *tab, int text_only, const char *b, size_t n)
{
	size_t at = 0;

	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		struct srch_key *ky = &x->key[k];
		if (!is_text(nd->op))
			continue;
		/* Header values and body text on automata of their own: the
		 * two are found in either order within one chunk. */
		if ((nd->op == SK_TEXT || (nd->op == SK_BODY && !text_only)) &&
		    !ky->hit && ci_kmp_feed(nd->s2, nd->s2len, tab + at,
					    text_only ? &ky->m3 : &ky->m2, b, n))
			ky->hit = 1;
		at += nd->s2len;
	}
}

/* Decoded value bytes of the current field: to the HEADER keys naming
 * it. */
static void value_keys(struct srch_scan *x, const struct search_prog *p,
		       const uint16_t *tab, const char *b, size_t n)
{
	char f[2 * 256];
	size_t at = 0, fn;
	int addr = 0;

	dec_feed(x, p, tab, 1, b, n);
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
}

/* Raw value bytes of the current field: RFC 2047 decoded, then to the
 * keys. */
static void value_feed(struct srch_scan *x, const struct search_prog *p,
		       const uint16_t *tab, const char *b, size_t n)
{
	char d[MDEC_EW_OUT(256)];
	struct buf o;

	for (size_t off = 0; off < n; off += 256) {
		buf_init(&o, d, sizeof(d));
		mdec_ew_feed(&x->ew, b + off, n - off < 256 ? n - off : 256, &o);
		value_keys(x, p, tab, d, o.len);
	}
	if (x->in_date) {
		struct buf dt;

		buf_init(&dt, x->date, sizeof(x->date));
		dt.len = x->dlen;
		buf_add(&dt, b, n < buf_remaining(&dt) ? n : buf_remaining(&dt));
		x->dlen = dt.len;
	}
}

/* The end of a field's value: what the decoder held back. */
static void value_end(struct srch_scan *x, const struct search_prog *p,
		      const uint16_t *tab)
{
	char d[MDEC_EW_OUT(0)];
	struct buf o;

	buf_init(&o, d, sizeof(d));
	mdec_ew_end(&x->ew, &o);
	value_keys(x, p, tab, d, o.len);
	dec_feed(x, p, tab, 1, "\n", 1);      /* no TEXT match across fields */
	mdec_ew_init(&x->ew);
}

static void name_start(struct srch_scan *x, const struct search_prog *p,
		       const uint16_t *tab)
{
	value_end(x, p, tab);
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

static void header_end(struct srch_scan *x, const struct search_prog *p,
		       const uint16_t *tab)
{
	name_start(x, p, tab);
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
				header_end(x, p, tab);
				return i;
			} else if (c == ' ' || c == '\t') {
				x->hstate = H_VALUE;    /* folded: same field */
			} else {
				name_start(x, p, tab);
				x->hstate = H_NAME;
			}
			break;
		case H_BOL_CR:
			if (c == '\n') {
				i++;
				header_end(x, p, tab);
				return i;
			}
			/* A stray CR at a line start: a line that is no field. */
			name_start(x, p, tab);
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

/* ---- the MIME structure, for decoding ---------------------------------- */

enum { MM_HDR, MM_BODY, MM_SKIP };
enum { MT_TEXT, MT_MULTI, MT_MSG, MT_OTHER };

static void part_start(struct srch_mime *mm)
{
	mm->mode = MM_HDR;
	mm->type = MT_TEXT;     /* RFC 2045: text/plain; charset=us-ascii */
	mm->enc = MDEC_ID;
	mm->cs = MDEC_CS_RAW;
	mm->nblen = 0;
	mm->flen = 0;
	mm->hdr_end = 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

static int iprefix(const char *s, size_t n, const char *pre)
{
	size_t k = strlen(pre);

	return n >= k && str_ieq(s, k, pre);
}

/* Content-Type: its type, boundary and charset parameters. */
static void ctype_field(struct srch_mime *mm, const char *v, size_t n)
{
	size_t i = 0, t;

	while (i < n && v[i] != ';')
		i++;
	t = i;
	const char *ty = v;
	trim(&ty, &t);
	mm->type = iprefix(ty, t, "text/") ? MT_TEXT : iprefix(ty, t, "multipart/") ?
		MT_MULTI : str_ieq(ty, t, "message/rfc822") ? MT_MSG : MT_OTHER;
	while (i < n) {
		size_t a = ++i, e, vl = 0;
		char val[SRCH_BND_MAX];
		while (i < n && v[i] != '=' && v[i] != ';')
			i++;
		e = i;
		const char *name = v + a;
		size_t nl = e - a;
		trim(&name, &nl);
		if (i >= n || v[i] != '=')
			continue;
		i++;
		while (i < n && is_blank(v[i]))
			i++;
		if (i < n && v[i] == '"') {
			for (i++; i < n && v[i] != '"'; i++) {
				if (v[i] == '\\' && i + 1 < n)
					i++;
				if (vl < sizeof(val))
					val[vl++] = v[i];
			}
			if (i < n)
				i++;
		} else {
			for (; i < n && v[i] != ';' && !is_blank(v[i]); i++)
				if (vl < sizeof(val))
					val[vl++] = v[i];
		}
		while (i < n && v[i] != ';')
			i++;
		if (str_ieq(name, nl, "boundary") && vl > 0) {
			memcpy(mm->nb, val, vl);
			mm->nblen = (uint8_t)vl;
		} else if (str_ieq(name, nl, "charset")) {
			mm->cs = (uint8_t)mdec_charset(val, vl);
		}
	}
}

/* A whole (unfolded) header field of a part. */
static void part_field(struct srch_mime *mm)
{
	const char *f = mm->field, *name = f, *v;
	size_t n = mm->flen, c = 0, nl, vl;

	while (c < n && f[c] != ':')
		c++;
	if (c >= n)
		return;
	nl = c;
	trim(&name, &nl);
	v = f + c + 1;
	vl = n - c - 1;
	trim(&v, &vl);
	if (str_ieq(name, nl, "content-transfer-encoding"))
		mm->enc = (uint8_t)mdec_encoding(v, vl);
	else if (str_ieq(name, nl, "content-type"))
		ctype_field(mm, v, vl);
}

static void part_header_end(struct srch_mime *mm)
{
	if (mm->type == MT_MULTI && mm->nblen && mm->depth < MIME_MAX_DEPTH) {
		memcpy(mm->bnd[mm->depth], mm->nb, mm->nblen);
		mm->bndlen[mm->depth++] = mm->nblen;
		mm->mode = MM_SKIP;             /* the preamble */
		return;
	}
	if (mm->type == MT_MSG) {
		part_start(mm);                 /* the enclosed message's header */
		return;
	}
	mm->mode = MM_BODY;
	if (mm->type == MT_TEXT)
		mdec_init(&mm->dec, mm->enc, mm->cs);
	else
		mdec_init(&mm->dec, MDEC_ID, MDEC_CS_RAW);
}

/* Header bytes of a part (the message's own header first). */
static void part_header_byte(struct srch_mime *mm, char c)
{
	if (mm->bol) {
		mm->bol = 0;
		if (c == '\r' || c == '\n') {
			part_field(mm);
			mm->flen = 0;
			mm->hdr_end = 1;
		} else if (!is_blank(c)) {
			part_field(mm);
			mm->flen = 0;
		}
	}
	if (c == '\n') {
		mm->bol = 1;
		if (mm->hdr_end) {
			mm->hdr_end = 0;
			part_header_end(mm);
		}
		return;
	}
	if (c != '\r' && mm->flen < sizeof(mm->field))
		mm->field[mm->flen++] = c;
}

/* Body bytes of a leaf part: decoded, to the keys. */
static void body_out(struct srch_scan *x, const struct search_prog *p,
		     const uint16_t *tab, const char *b, size_t n)
{
	char d[MDEC_OUT(256)];
	struct buf o;

	if (x->mm.mode != MM_BODY)
		return;
	for (size_t off = 0; off < n; off += 256) {
		buf_init(&o, d, sizeof(d));
		mdec_feed(&x->mm.dec, b + off, n - off < 256 ? n - off : 256, &o);
		dec_feed(x, p, tab, 0, d, o.len);
	}
}

static void body_end(struct srch_scan *x, const struct search_prog *p,
		     const uint16_t *tab)
{
	char d[MDEC_OUT(0)];
	struct buf o;

	if (x->mm.mode != MM_BODY)
		return;
	buf_init(&o, d, sizeof(d));
	mdec_end(&x->mm.dec, &o);
	dec_feed(x, p, tab, 0, d, o.len);
	dec_feed(x, p, tab, 0, "\n", 1);        /* no match across parts */
}

/* The held line (without its LF) a boundary of an open multipart? Then
 * the parts inside it are closed, and a new part (or the epilogue)
 * starts. */
static int boundary_line(struct srch_scan *x, const struct search_prog *p,
			 const uint16_t *tab)
{
	struct srch_mime *mm = &x->mm;
	const char *l = mm->field;
	size_t n = mm->flen;

	while (n && (l[n - 1] == '\r' || is_blank(l[n - 1])))
		n--;
	if (n < 2 || l[0] != '-' || l[1] != '-')
		return 0;
	for (int k = mm->depth - 1; k >= 0; k--) {
		size_t bl = mm->bndlen[k];
		int close;
		if (n < 2 + bl || memcmp(l + 2, mm->bnd[k], bl) != 0)
			continue;
		close = n == 4 + bl && l[2 + bl] == '-' && l[3 + bl] == '-';
		if (n != 2 + bl && !close)
			continue;
		body_end(x, p, tab);
		if (close) {
			mm->depth = (uint8_t)k;
			mm->mode = MM_SKIP;     /* the epilogue */
		} else {
			mm->depth = (uint8_t)(k + 1);
			part_start(mm);
		}
		return 1;
	}
	return 0;
}

/* The whole message, header included, through the MIME structure. */
static void mime_feed_scan(struct srch_scan *x, const struct search_prog *p,
			   const uint16_t *tab, const char *b, size_t n)
{
	struct srch_mime *mm = &x->mm;
	size_t i = 0;

	while (i < n) {
		if (mm->mode == MM_HDR) {
			part_header_byte(mm, b[i++]);
			continue;
		}
		if (mm->depth == 0) {           /* no boundary can come */
			body_out(x, p, tab, b + i, n - i);
			return;
		}
		if (mm->hold) {
			char c = b[i++];
			if (c == '\n') {
				mm->hold = 0;
				mm->bol = 1;
				if (!boundary_line(x, p, tab)) {
					body_out(x, p, tab, mm->field, mm->flen);
					body_out(x, p, tab, "\n", 1);
				}
			} else if (mm->flen < 2 * SRCH_BND_MAX) {
				mm->field[mm->flen++] = c;
			} else {                /* too long for a boundary */
				mm->hold = 0;
				body_out(x, p, tab, mm->field, mm->flen);
				body_out(x, p, tab, &c, 1);
			}
			continue;
		}
		if (mm->bol && b[i] == '-') {
			mm->hold = 1;
			mm->bol = 0;
			mm->flen = 0;
			continue;
		}
		const char *nl = memchr(b + i, '\n', n - i);
		size_t run = nl ? (size_t)(nl - (b + i)) + 1 : n - i;
		body_out(x, p, tab, b + i, run);
		i += run;
		mm->bol = nl != NULL;
	}
}

static int wants_decoded(const struct search_prog *p)
{
	for (int k = 0; k < p->n; k++)
		if (p->node[k].op == SK_BODY || p->node[k].op == SK_TEXT)
			return 1;
	return 0;
}

void srch_feed(struct srch_scan *x, const struct search_prog *p,
	       const uint16_t *tab, const char *b, size_t n)
{
	size_t at = 0;

	if (x->ended)
		return;
	if (wants_decoded(p))
		mime_feed_scan(x, p, tab, b, n);
	/* TEXT sees everything, header included. */
	for (int k = 0; k < p->n; k++) {
		const struct search_node *nd = &p->node[k];
		if (!is_text(nd->op))
			continue;
		if (nd->op == SK_TEXT)
			key_feed(x, p, tab, k, at, b, n);
		at += nd->s2len;
	}
	/* BODY keys see the decoded text only (mime_feed_scan): a part
	 * without transfer encoding is its raw bytes there. */
	if (!x->in_body)
		header_feed(x, p, tab, b, n);
}

void srch_end(struct srch_scan *x, const struct search_prog *p,
	      const uint16_t *tab)
{
	if (x->ended)
		return;
	if (!x->in_body)
		header_end(x, p, tab);
	if (x->mm.hold) {
		x->mm.hold = 0;
		if (!boundary_line(x, p, tab))
			body_out(x, p, tab, x->mm.field, x->mm.flen);
	}
	body_end(x, p, tab);
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
