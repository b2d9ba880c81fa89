/* mime — message structure and the ENVELOPE/BODYSTRUCTURE renderers (see
 * mime.h). Pure and chunked: one pass over the bytes, fixed tables, loops
 * bounded by the input, the part count and the depth. */
#include "proto/mime.h"

#include <stdio.h>
#include <string.h>

#include "proto/imap_parse.h"

static const char *const hnames[MH_COUNT] = {
	"content-type", "content-transfer-encoding", "content-id",
	"content-description", "content-disposition", "content-language",
	"content-location", "content-md5", "date", "subject", "from", "sender",
	"reply-to", "to", "cc", "bcc", "in-reply-to", "message-id",
};

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, size_t n, const char *b)
{
	size_t i;

	for (i = 0; i < n && b[i]; i++)
		if (lower((unsigned char)a[i]) != b[i])
			return 0;
	return i == n && !b[i];
}

static int new_part(struct mime *m, int parent, uint64_t at)
{
	struct mime_part *p;
	int k;

	if (m->n >= MIME_MAX_PARTS)
		return -1;
	k = m->n++;
	p = &m->part[k];
	memset(p, 0, sizeof(*p));
	p->parent = (int16_t)parent;
	p->child = p->next = p->last = -1;
	p->hdr_off = p->body_off = p->end_off = at;
	p->in_header = 1;
	p->depth = parent >= 0 ? (uint8_t)(m->part[parent].depth + 1) : 0;
	if (parent >= 0) {
		struct mime_part *pp = &m->part[parent];
		if (pp->last >= 0)
			m->part[pp->last].next = (int16_t)k;
		else
			pp->child = (int16_t)k;
		pp->last = (int16_t)k;
	}
	return k;
}

void mime_init(struct mime *m)
{
	m->n = 0;
	m->pos = m->line_start = m->line_no = 0;
	m->hfield = -1;
	m->llen = 0;
	m->ltrunc = 0;
	m->cr = 0;
	m->alen = 1;            /* offset 0 means "none" */
	m->hlen = 0;
	m->hcut = 0;
	m->done = 0;
	m->cur = new_part(m, -1, 0);
}

const char *mime_hv(const struct mime *m, int part, int h, size_t *len)
{
	const struct mime_part *p = &m->part[part];

	if (!p->hv[h])
		return NULL;
	*len = p->hl[h];
	return m->arena + p->hv[h];
}

int mime_hv_cut(const struct mime *m, int part, int h)
{
	return (int)(m->part[part].cut >> h & 1);
}

/* Appends what fits of p[0..n) to the array arr (cap bytes, *len in
 * use): a long value is cut, not refused. Returns the bytes kept. */
static size_t add_cut(char *arr, size_t cap, size_t *len, const char *p, size_t n)
{
	struct buf b;
	size_t k;

	buf_init(&b, arr, cap);
	buf_commit(&b, *len);
	k = n < buf_remaining(&b) ? n : buf_remaining(&b);
	buf_add(&b, p, k);
	*len = b.len;
	return k;
}

/* Keeps s[0..n) in the arena; *cut is set when not all of it fits. */
static uint16_t arena_put(struct mime *m, const char *s, size_t n, uint16_t *len,
			  int *cut)
{
	struct buf a;
	size_t at = m->alen;

	buf_init(&a, m->arena, sizeof(m->arena));
	buf_commit(&a, at);
	if (buf_remaining(&a) < 2) {
		*len = 0;
		*cut = 1;
		return 0;
	}
	if (n > buf_remaining(&a) - 1) {
		n = buf_remaining(&a) - 1;      /* and its NUL */
		*cut = 1;
	}
	buf_add(&a, s, n);
	buf_addc(&a, '\0');
	m->alen = a.len;
	*len = (uint16_t)n;
	return (uint16_t)at;
}

/* The field collected in hbuf is complete. */
static void field_done(struct mime *m)
{
	struct mime_part *p = &m->part[m->cur];
	size_t i = 0, n = m->hlen, nl;
	const char *s = m->hbuf;
	int cut = m->hcut;

	m->hlen = 0;
	m->hcut = 0;
	while (i < n && s[i] != ':')
		i++;
	if (i == n)
		return;
	nl = i;
	while (nl > 0 && (s[nl - 1] == ' ' || s[nl - 1] == '\t'))
		nl--;
	for (int h = 0; h < MH_COUNT; h++) {
		if (!ieq(s, nl, hnames[h]) || p->hv[h])
			continue;
		i++;
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		while (n > i && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		p->hv[h] = arena_put(m, s + i, n - i, &p->hl[h], &cut);
		if (cut)
			p->cut |= 1u << h;
		return;
	}
}

/* Content-Type parameter `name` of value v; *len gets its length. */
static const char *param(const char *v, size_t n, const char *name, size_t *len,
			 char *tmp, size_t tmpcap);

static void ctype_of(const struct mime *m, int k, const char **t, size_t *tl,
		     const char **st, size_t *stl)
{
	size_t n, i = 0, j;
	const char *v = mime_hv(m, k, MH_CTYPE, &n);
	const struct mime_part *par = m->part[k].parent >= 0 ? &m->part[m->part[k].parent] : NULL;

	if (v) {
		while (i < n && v[i] != '/' && v[i] != ';' && v[i] != ' ')
			i++;
		j = i + 1;
		while (j < n && v[j] != ';' && v[j] != ' ' && v[j] != '\t' && v[j] != '(')
			j++;
		if (i < n && v[i] == '/' && i > 0 && j > i + 1) {
			*t = v;
			*tl = i;
			*st = v + i + 1;
			*stl = j - i - 1;
			return;
		}
	}
	if (par && par->multipart) {
		size_t pn, sl;
		const char *pv = mime_hv(m, m->part[k].parent, MH_CTYPE, &pn);
		if (pv && pn >= 16 && ieq(pv, 16, "multipart/digest")) {
			(void)sl;
			*t = "message";
			*tl = 7;
			*st = "rfc822";
			*stl = 6;
			return;
		}
	}
	*t = "text";
	*tl = 4;
	*st = "plain";
	*stl = 5;
}

static void header_done(struct mime *m)
{
	struct mime_part *p = &m->part[m->cur];
	const char *t, *st, *b;
	size_t tl, stl, bl, n;
	char tmp[80];
	int k;

	p->in_header = 0;
	p->body_off = m->pos;
	p->body_line = m->line_no;
	ctype_of(m, m->cur, &t, &tl, &st, &stl);
	if (p->depth + 1 >= MIME_MAX_DEPTH)
		return;
	if (ieq(t, tl, "multipart")) {
		const char *v = mime_hv(m, m->cur, MH_CTYPE, &n);
		b = v ? param(v, n, "boundary", &bl, tmp, sizeof(tmp)) : NULL;
		if (b && bl > 0 && bl <= 70) {
			int cut = 0;
			p->bnd = arena_put(m, b, bl, &p->bndlen, &cut);
			if (p->bnd && !cut)
				p->multipart = 1;
		}
	} else if (ieq(t, tl, "message") && ieq(st, stl, "rfc822")) {
		k = new_part(m, m->cur, m->pos);
		if (k >= 0) {
			m->part[k].body_line = m->line_no;
			p->message = 1;
			m->cur = k;
		}
	}
}

/* Ends the parts from cur up to (not including) anc at offset end. */
static void close_to(struct mime *m, int anc, uint64_t end, uint64_t line)
{
	int k = m->cur;

	while (k >= 0 && k != anc) {
		struct mime_part *p = &m->part[k];
		if (p->in_header) {
			p->in_header = 0;
			p->body_off = end < p->hdr_off ? p->hdr_off : end;
			p->body_line = line;
		}
		p->end_off = end < p->body_off ? p->body_off : end;
		p->lines = line > p->body_line ? line - p->body_line : 0;
		k = p->parent;
	}
}

/* A line starting "--": a boundary of an open multipart? */
static int boundary(struct mime *m, const char *l, size_t n)
{
	for (int k = m->cur; k >= 0; k = m->part[k].parent) {
		struct mime_part *p = &m->part[k];
		const char *b = m->arena + p->bnd;
		size_t bl = p->bndlen, rest;
		int close;

		if (!p->multipart || p->closed || p->in_header)
			continue;
		if (n < 2 + bl || memcmp(l + 2, b, bl) != 0)
			continue;
		rest = 2 + bl;
		close = n >= rest + 2 && l[rest] == '-' && l[rest + 1] == '-';
		if (close)
			rest += 2;
		while (rest < n && (l[rest] == ' ' || l[rest] == '\t'))
			rest++;
		if (rest != n)
			continue;
		/* The CRLF before the delimiter belongs to it. */
		uint64_t end = m->line_start >= 2 ? m->line_start - 2 : 0;
		/* line_no already counts this delimiter line, and the line
		 * end before it is the delimiter's: the part's lines are the
		 * line ends in its body (as Dovecot counts them), so
		 * "one CRLF two" is 1 line. */
		close_to(m, k, end, m->line_no >= 2 ? m->line_no - 2 : 0);
		m->cur = k;
		if (close) {
			p->closed = 1;
		} else {
			int c = new_part(m, k, m->pos);
			if (c >= 0)
				m->cur = c;
		}
		return 1;
	}
	return 0;
}

/* One complete line (without CRLF) that started at m->line_start; m->pos
 * is already after its end. */
static void line(struct mime *m, const char *l, size_t n, int cut)
{
	struct mime_part *p = &m->part[m->cur];

	if (p->in_header) {
		if (n > 0 && (l[0] == ' ' || l[0] == '\t')) {
			if (m->hlen &&
			    (add_cut(m->hbuf, sizeof(m->hbuf), &m->hlen, l, n) < n || cut))
				m->hcut = 1;
			return;
		}
		if (m->hlen)
			field_done(m);
		if (n == 0) {
			header_done(m);
			return;
		}
		m->hlen = 0;
		m->hcut = add_cut(m->hbuf, sizeof(m->hbuf), &m->hlen, l, n) < n || cut;
		if (!memchr(l, ':', n)) {
			/* Not a header line: the header ended without its
			 * blank line; this line is body. */
			m->hlen = 0;
			header_done(m);
			p = &m->part[m->cur];
			p->body_off = m->line_start;
			p->body_line = m->line_no - 1;
		}
		return;
	}
	if (!cut && n >= 2 && l[0] == '-' && l[1] == '-')
		boundary(m, l, n);
}

void mime_feed(struct mime *m, const char *s, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(s, '\n', n);
		size_t k = nl ? (size_t)(nl - s) : n;

		/* The line so far, cut at MIME_LINE. */
		if (add_cut(m->line, sizeof(m->line), &m->llen, s, k) < k)
			m->ltrunc = 1;
		m->pos += k;
		s += k;
		n -= k;
		if (!nl)
			return;
		m->pos++;
		s++;
		n--;
		size_t l = m->llen;
		if (l > 0 && m->line[l - 1] == '\r')
			l--;
		m->line_no++;
		line(m, m->line, l, m->ltrunc);
		m->llen = 0;
		m->ltrunc = 0;
		m->line_start = m->pos;
	}
}

void mime_end(struct mime *m)
{
	if (m->done)
		return;
	m->done = 1;
	if (m->llen) {
		m->line_no++;
		line(m, m->line, m->llen, m->ltrunc);
		m->llen = 0;
	}
	if (m->hlen && m->part[m->cur].in_header)
		field_done(m);
	close_to(m, -1, m->pos, m->line_no);
}

int mime_find(const struct mime *m, const uint32_t *path, int n, int for_text)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		const struct mime_part *p = &m->part[k];
		int c;
		/* A message/rfc822 part: its numbers are those of the
		 * message. Not so for the top (i = 0): part 1 of a message
		 * whose body is message/rfc822 is that whole message. */
		if (i > 0 && p->message && p->child >= 0)
			p = &m->part[k = p->child];
		if (!p->multipart) {
			if (path[i] != 1)
				return -1;
			continue;       /* part 1 of a single-part is itself */
		}
		c = p->child;
		for (uint32_t j = 1; j < path[i] && c >= 0; j++)
			c = m->part[c].next;
		if (c < 0)
			return -1;
		k = c;
	}
	if (for_text && n > 0) {
		if (!m->part[k].message || m->part[k].child < 0)
			return -1;
		k = m->part[k].child;
	}
	return k;
}

/* ---- output --------------------------------------------------------- */

void mime_out_init(struct mime_out *o, char *buf, size_t cap)
{
	buf_init(&o->b, buf, cap);
	o->overflow = 0;
}

void mime_out_str(struct mime_out *o, const char *s, size_t n)
{
	if (o->overflow || buf_add(&o->b, s, n) != 0)
		o->overflow = 1;
}

static void out_c(struct mime_out *o, const char *s)
{
	mime_out_str(o, s, strlen(s));
}

static void out_num(struct mime_out *o, uint64_t v)
{
	char b[24];
	int k = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);

	mime_out_str(o, b, (size_t)k);
}

void mime_out_nstring(struct mime_out *o, const char *s, size_t n)
{
	int eight = 0;

	if (!s) {
		out_c(o, "NIL");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			eight = 1;
	if (eight) {
		char b[32];
		int k = snprintf(b, sizeof(b), "{%zu}\r\n", n);
		mime_out_str(o, b, (size_t)k);
		for (size_t i = 0; i < n; i++) {
			char c = s[i];
			if (c == '\0' || c == '\r' || c == '\n')
				c = ' ';
			mime_out_str(o, &c, 1);
		}
		return;
	}
	out_c(o, "\"");
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '"' || c == '\\')
			mime_out_str(o, "\\", 1);
		else if ((unsigned char)c < 0x20 || c == 0x7f)
			c = ' ';
		mime_out_str(o, &c, 1);
	}
	out_c(o, "\"");
}

/* Uppercased IMAP string (types and subtypes are shown in capitals). */
static void out_upper(struct mime_out *o, const char *s, size_t n)
{
	char b[80];
	struct buf u;

	buf_init(&u, b, sizeof(b) - 1);
	for (size_t i = 0; i < n; i++)
		buf_addc(&u, (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]));
	mime_out_nstring(o, b, u.len);
}

/* ---- parameters (RFC 2045 §5.1; comments skipped, no RFC 2231) ----- */

struct pscan {
	const char *s, *end;
	const char *cmt;        /* first non-blank comment skipped, or NULL */
	size_t cmtl;
};

static void skip_ws(struct pscan *ps)
{
	const char *open = NULL;
	int depth = 0;

	while (ps->s < ps->end) {
		char c = *ps->s;
		if (c == '(') {
			if (depth++ == 0)
				open = ps->s + 1;
		} else if (c == ')' && depth > 0) {
			if (--depth == 0 && !ps->cmt) {
				const char *e = ps->s;
				while (open < e && (*open == ' ' || *open == '\t'))
					open++;
				while (e > open && (e[-1] == ' ' || e[-1] == '\t'))
					e--;
				if (e > open) {
					ps->cmt = open;
					ps->cmtl = (size_t)(e - open);
				}
			}
		} else if (!depth && c != ' ' && c != '\t') {
			break;
		}
		ps->s++;
	}
}

/* Next "name=value" after a ';': 1 with the pieces (value unquoted into
 * tmp when quoted), 0 when none is left. */
static int next_param(struct pscan *ps, const char **nm, size_t *nl,
		      const char **v, size_t *vl, char *tmp, size_t tmpcap)
{
	while (ps->s < ps->end && *ps->s != ';') {
		if (*ps->s == '"') {
			ps->s++;
			while (ps->s < ps->end && *ps->s != '"')
				ps->s += (*ps->s == '\\' && ps->s + 1 < ps->end) ? 2 : 1;
		}
		if (ps->s < ps->end)
			ps->s++;
	}
	if (ps->s >= ps->end)
		return 0;
	ps->s++;
	skip_ws(ps);
	*nm = ps->s;
	while (ps->s < ps->end && *ps->s != '=' && *ps->s != ';' && *ps->s != ' ' &&
	       *ps->s != '\t')
		ps->s++;
	*nl = (size_t)(ps->s - *nm);
	skip_ws(ps);
	if (ps->s >= ps->end || *ps->s != '=' || *nl == 0) {
		*vl = 0;
		*v = NULL;
		return 1;
	}
	ps->s++;
	skip_ws(ps);
	if (ps->s < ps->end && *ps->s == '"') {
		struct buf t;
		buf_init(&t, tmp, tmpcap);
		ps->s++;
		while (ps->s < ps->end && *ps->s != '"') {
			if (*ps->s == '\\' && ps->s + 1 < ps->end)
				ps->s++;
			buf_addc(&t, *ps->s);   /* cut at tmpcap */
			ps->s++;
		}
		if (ps->s < ps->end)
			ps->s++;
		*v = tmp;
		*vl = t.len;
		return 1;
	}
	*v = ps->s;
	while (ps->s < ps->end && *ps->s != ';' && *ps->s != ' ' && *ps->s != '\t' &&
	       *ps->s != '(')
		ps->s++;
	*vl = (size_t)(ps->s - *v);
	return 1;
}

static const char *param(const char *v, size_t n, const char *name, size_t *len,
			 char *tmp, size_t tmpcap)
{
	struct pscan ps = { v, v + n, NULL, 0 };
	const char *nm, *pv;
	size_t nl, vl;

	while (next_param(&ps, &nm, &nl, &pv, &vl, tmp, tmpcap))
		if (pv && ieq(nm, nl, name)) {
			*len = vl;
			return pv;
		}
	return NULL;
}

/* "(" name SP value ... ")" or NIL. */
static void out_params(struct mime_out *o, const char *v, size_t n, int text)
{
	struct pscan ps = { v, v ? v + n : v, NULL, 0 };
	const char *nm, *pv;
	size_t nl, vl;
	char tmp[256];
	int any = 0;

	while (v && next_param(&ps, &nm, &nl, &pv, &vl, tmp, sizeof(tmp))) {
		if (!pv)
			continue;
		out_c(o, any ? " " : "(");
		any = 1;
		out_upper(o, nm, nl);
		out_c(o, " ");
		mime_out_nstring(o, pv, vl);
	}
	if (any)
		out_c(o, ")");
	else
		out_c(o, text ? "(\"CHARSET\" \"US-ASCII\")" : "NIL");
}

/* ---- addresses (RFC 5322 §3.4, forgiving) -------------------------- */

struct atok {
	const char *s;
	size_t n;
	int kind;               /* 'a' atom/word, 'q' quoted, or a special */
};

static int addr_tok(struct pscan *ps, struct atok *t)
{
	skip_ws(ps);
	if (ps->s >= ps->end)
		return 0;
	t->s = ps->s;
	if (*ps->s == '"') {
		ps->s++;
		t->s = ps->s;
		while (ps->s < ps->end && *ps->s != '"')
			ps->s += (*ps->s == '\\' && ps->s + 1 < ps->end) ? 2 : 1;
		t->n = (size_t)(ps->s - t->s);
		if (ps->s < ps->end)
			ps->s++;
		t->kind = 'q';
		return 1;
	}
	if (strchr("<>,:;@", *ps->s)) {
		t->kind = *ps->s++;
		t->n = 1;
		return 1;
	}
	while (ps->s < ps->end && !strchr("<>,:;@\"( \t", *ps->s))
		ps->s++;
	if (ps->s == t->s)      /* a stray ')' */
		ps->s++;
	t->n = (size_t)(ps->s - t->s);
	t->kind = 'a';
	return 1;
}

/* Collects the words of a phrase into buf (blank-separated). */
static void phrase_add(char *buf, size_t cap, size_t *len, const struct atok *t)
{
	struct buf b;

	buf_init(&b, buf, cap);
	buf_commit(&b, *len);
	if (b.len)
		buf_addc(&b, ' ');
	for (size_t i = 0; i < t->n; i++) {
		char c = t->s[i];
		if (t->kind == 'q' && c == '\\' && i + 1 < t->n)
			c = t->s[++i];
		buf_addc(&b, c);        /* cut at cap */
	}
	*len = b.len;
}

static void out_addr(struct mime_out *o, const char *name, size_t nl,
		     const char *adl, size_t al,
		     const char *mbox, size_t ml, const char *host, size_t hl)
{
	out_c(o, "(");
	mime_out_nstring(o, nl ? name : NULL, nl);
	out_c(o, " ");
	mime_out_nstring(o, al ? adl : NULL, al);
	out_c(o, " ");
	mime_out_nstring(o, mbox, ml);
	out_c(o, " ");
	mime_out_nstring(o, host, hl);
	out_c(o, ")");
}

/* One address list; NIL when empty. More than ENV_ADDR_MAX addresses
 * overflow the output (the caller's stand-in), never a shortened list. */
#define ENV_ADDR_MAX 1000
#define MISSING_DOMAIN "MISSING_DOMAIN"
static void out_addrs(struct mime_out *o, const char *v, size_t n)
{
	struct pscan ps;
	struct atok t;
	char phrase[256], local[256], dom[256], adl[256];
	size_t pl = 0, ll = 0, dl = 0, al = 0;
	int any = 0, angle = 0, at = 0, count = 0, group = 0, route = 0;

	if (!v) {
		out_c(o, "NIL");
		return;
	}
	ps.s = v;
	ps.end = v + n;
	ps.cmt = NULL;          /* "a@b (Real Name)": the name without a phrase */
	for (int guard = 0; guard < 16 * ENV_ADDR_MAX; guard++) {
		int more = addr_tok(&ps, &t);
		if (more && route) {
			/* <@a,@b:user@dom>: the source route is the adl */
			if (t.kind == ':') {
				route = 0;
			} else {
				struct buf b;
				char punct = (char)t.kind;  /* not &t.kind: an int */
				buf_init(&b, adl, sizeof(adl));
				buf_commit(&b, al);
				buf_add(&b, t.kind == 'a' ? t.s : &punct,
					t.kind == 'a' ? t.n : 1);
				al = b.len;
			}
			continue;
		}
		if (more && t.kind == '@' && angle && !ll && !at) {
			route = 1;
			adl[0] = '@';
			al = 1;
			continue;
		}
		if (more && t.kind == '<') {
			if (ll)
				phrase_add(phrase, sizeof(phrase), &pl,
					   &(struct atok){ local, ll, 'a' });
			angle = 1;
			at = 0;
			ll = dl = 0;
			continue;
		}
		if (more && t.kind == '@') {
			at = 1;
			continue;
		}
		if (more && t.kind == ':' && !angle) {
			/* group start: (NIL NIL "name" NIL) */
			if (ll)
				phrase_add(phrase, sizeof(phrase), &pl,
					   &(struct atok){ local, ll, 'a' });
			out_c(o, any ? "" : "(");
			any = 1;
			out_addr(o, NULL, 0, NULL, 0, phrase, pl, NULL, 0);
			group = 1;
			ps.cmt = NULL;
			pl = ll = dl = 0;
			at = 0;
			continue;
		}
		if (more && (t.kind == 'a' || t.kind == 'q')) {
			if (angle || at) {
				if (at)
					phrase_add(dom, sizeof(dom), &dl, &t);
				else {
					ll = 0;
					phrase_add(local, sizeof(local), &ll, &t);
				}
			} else {
				/* before '<' words are a phrase, or a bare local part */
				if (ll)
					phrase_add(phrase, sizeof(phrase), &pl,
						   &(struct atok){ local, ll, 'a' });
				ll = 0;
				phrase_add(local, sizeof(local), &ll, &t);
			}
			continue;
		}
		if (more && t.kind == '>') {
			angle = 0;
			continue;
		}
		/* ',' ';' or the end: the address is complete. One without
		 * a domain ("From: root") gets the host MISSING_DOMAIN, as
		 * Dovecot gives it: a NIL host marks a group start. */
		if (ll || dl) {
			const char *host = dl ? dom : MISSING_DOMAIN;
			size_t hl = dl ? dl : sizeof(MISSING_DOMAIN) - 1;
			if (count++ == ENV_ADDR_MAX)
				o->overflow = 1;
			out_c(o, any ? "" : "(");
			any = 1;
			if (pl)
				out_addr(o, phrase, pl, adl, al, local, ll, host, hl);
			else
				out_addr(o, ps.cmt, ps.cmt ? ps.cmtl : 0, adl, al,
					 local, ll, host, hl);
		}
		ps.cmt = NULL;
		pl = ll = dl = al = 0;
		at = angle = route = 0;
		if (more && t.kind == ';' && group) {
			out_addr(o, NULL, 0, NULL, 0, NULL, 0, NULL, 0);
			group = 0;
		}
		if (!more)
			break;
	}
	out_c(o, any ? ")" : "NIL");
}

void mime_envelope(const struct mime *m, int part, struct mime_out *o)
{
	static const int order[] = { MH_DATE, MH_SUBJECT, MH_FROM, MH_SENDER,
		MH_REPLYTO, MH_TO, MH_CC, MH_BCC, MH_INREPLYTO, MH_MSGID };
	size_t n;
	const char *v;

	out_c(o, "(");
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int h = order[i];
		if (i)
			out_c(o, " ");
		v = mime_hv(m, part, h, &n);
		/* Sender and Reply-To default to From when absent or
		 * empty (RFC 3501 §7.4.2). */
		if ((h == MH_SENDER || h == MH_REPLYTO) && (!v || n == 0)) {
			h = MH_FROM;
			v = mime_hv(m, part, h, &n);
		}
		/* A field too long to keep whole: NIL, not a shortened
		 * value (a cut address list ends in a wrong address). */
		if (v && mime_hv_cut(m, part, h))
			v = NULL;
		if (h >= MH_FROM && h <= MH_BCC)
			out_addrs(o, v, v ? n : 0);
		else
			mime_out_nstring(o, v, v ? n : 0);
	}
	out_c(o, ")");
}

static void out_hv(struct mime_out *o, const struct mime *m, int k, int h)
{
	size_t n;
	const char *v = mime_hv(m, k, h, &n);

	mime_out_nstring(o, v, v ? n : 0);
}

/* Disposition: ("inline" ("filename" "x")) or NIL. */
static void out_disp(struct mime_out *o, const struct mime *m, int k)
{
	size_t n, i = 0;
	const char *v = mime_hv(m, k, MH_CDISP, &n);

	if (!v) {
		out_c(o, "NIL");
		return;
	}
	while (i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
		i++;
	out_c(o, "(");
	out_upper(o, v, i);
	out_c(o, " ");
	out_params(o, v, n, 0);
	out_c(o, ")");
}

/* The extension data every body ends with: " disposition language
 * location" (RFC 3501 body-ext-1part / body-ext-mpart). */
static void out_ext_tail(struct mime_out *o, const struct mime *m, int k)
{
	out_c(o, " ");
	out_disp(o, m, k);
	out_c(o, " ");
	out_hv(o, m, k, MH_CLANG);
	out_c(o, " ");
	out_hv(o, m, k, MH_CLOC);
}

void mime_bodystructure(const struct mime *m, int k, int ext, struct mime_out *o)
{
	const struct mime_part *p = &m->part[k];
	const char *t, *st, *v;
	size_t tl, stl, n;

	if (p->depth > MIME_MAX_DEPTH + 2)
		return;
	ctype_of(m, k, &t, &tl, &st, &stl);
	v = mime_hv(m, k, MH_CTYPE, &n);
	out_c(o, "(");
	if (p->multipart && p->child >= 0) {
		for (int c = p->child; c >= 0; c = m->part[c].next)
			mime_bodystructure(m, c, ext, o);
		out_c(o, " ");
		out_upper(o, st, stl);
		if (ext) {
			out_c(o, " ");
			out_params(o, v, v ? n : 0, 0);
			out_ext_tail(o, m, k);
		}
		out_c(o, ")");
		return;
	}
	if (p->multipart) {
		/* A multipart without parts: shown as an empty text part. */
		t = "text"; tl = 4; st = "plain"; stl = 5;
		v = NULL;
	}
	out_upper(o, t, tl);
	out_c(o, " ");
	out_upper(o, st, stl);
	out_c(o, " ");
	out_params(o, v, v ? n : 0, ieq(t, tl, "text"));
	out_c(o, " ");
	out_hv(o, m, k, MH_CID);
	out_c(o, " ");
	out_hv(o, m, k, MH_CDESC);
	out_c(o, " ");
	v = mime_hv(m, k, MH_CTE, &n);
	if (v)
		out_upper(o, v, n);
	else
		out_c(o, "\"7BIT\"");
	out_c(o, " ");
	out_num(o, p->end_off - p->body_off);
	if (p->message && p->child >= 0) {
		out_c(o, " ");
		mime_envelope(m, p->child, o);
		out_c(o, " ");
		mime_bodystructure(m, p->child, ext, o);
		out_c(o, " ");
		out_num(o, p->lines);
	} else if (ieq(t, tl, "text")) {
		out_c(o, " ");
		out_num(o, p->lines);
	}
	if (ext) {
		out_c(o, " ");
		out_hv(o, m, k, MH_CMD5);
		out_ext_tail(o, m, k);
	}
	out_c(o, ")");
}

int64_t mime_date_days(const char *s, size_t n)
{
	/* [day-name ","] d Mon yyyy ... */
	size_t i = 0;
	int d = 0, m, y = 0, k;

	while (i < n && !(s[i] >= '0' && s[i] <= '9'))
		i++;
	for (k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '9'; k++)
		d = d * 10 + (s[i++] - '0');
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (k == 0 || i + 3 > n || !(m = ip_month(s + i)))
		return -1;
	i += 3;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (k = 0; k < 4 && i < n && s[i] >= '0' && s[i] <= '9'; k++)
		y = y * 10 + (s[i++] - '0');
	if (k == 2)
		y += y < 50 ? 2000 : 1900;
	else if (k != 4)
		return -1;
	if (d < 1 || d > 31)
		return -1;
	return ip_days(y, m, d);
}
