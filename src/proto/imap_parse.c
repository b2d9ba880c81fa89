/* imap_parse — IMAP command grammar, pure (see imap_parse.h). Every loop
 * advances through the caller's buffer or stops; recursion (SEARCH lists)
 * is bounded by IMAP_SEARCH_DEPTH. */
#include "proto/imap_parse.h"

#include <string.h>

#include "store/index.h"

static int fail(struct ip *ip, const char *why)
{
	if (!ip->err)
		ip->err = why;
	return -1;
}

void ip_init(struct ip *ip, char *buf, size_t len)
{
	ip->p = buf;
	ip->end = buf + len;
	ip->err = NULL;
	ip->depth = 0;
}

int ip_done(const struct ip *ip)
{
	return ip->p >= ip->end;
}

int ip_peek(const struct ip *ip)
{
	return ip->p < ip->end ? (unsigned char)*ip->p : -1;
}

int ip_char(struct ip *ip, int ch)
{
	if (ip_peek(ip) != ch)
		return fail(ip, "unexpected character");
	ip->p++;
	return 0;
}

int ip_sp(struct ip *ip)
{
	if (ip_peek(ip) != ' ')
		return fail(ip, "expected a space");
	ip->p++;
	return 0;
}

int ip_end(struct ip *ip)
{
	return ip_done(ip) ? 0 : fail(ip, "unexpected characters at the end");
}

static int is_ctl(int c)
{
	return c < 0x20 || c == 0x7f;
}

/* ATOM-CHAR: any CHAR except atom-specials "(){ %*\"\\]" and CTL. */
static int atom_char(int c, int brackets)
{
	if (c < 0 || c >= 0x80 || is_ctl(c))
		return 0;
	if (c == ']')
		return brackets;
	return !strchr("(){ %*\"\\", c);
}

int ip_tag(struct ip *ip, const char **s, size_t *n)
{
	char *b = ip->p;

	while (ip->p < ip->end && atom_char((unsigned char)*ip->p, 1) && *ip->p != '+')
		ip->p++;
	*s = b;
	*n = (size_t)(ip->p - b);
	if (*n == 0 || *n > IMAP_TAG_MAX)
		return fail(ip, "bad tag");
	return 0;
}

int ip_atom(struct ip *ip, const char **s, size_t *n, int brackets)
{
	char *b = ip->p;

	while (ip->p < ip->end && atom_char((unsigned char)*ip->p, brackets))
		ip->p++;
	*s = b;
	*n = (size_t)(ip->p - b);
	return *n ? 0 : fail(ip, "expected an atom");
}

static int digits(struct ip *ip, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;
	char *b = ip->p;

	while (ip->p < ip->end && *ip->p >= '0' && *ip->p <= '9') {
		unsigned d = (unsigned)(*ip->p - '0');
		if (x > (max - d) / 10)
			return fail(ip, "number too large");
		x = x * 10 + d;
		ip->p++;
	}
	if (ip->p == b)
		return fail(ip, "expected a number");
	*v = x;
	return 0;
}

int ip_number(struct ip *ip, uint32_t *v)
{
	uint64_t x;

	if (digits(ip, UINT32_MAX, &x) != 0)
		return -1;
	*v = (uint32_t)x;
	return 0;
}

int ip_number64(struct ip *ip, uint64_t *v)
{
	return digits(ip, (uint64_t)INT64_MAX, v);
}

static int literal(struct ip *ip, char **s, size_t *n)
{
	uint64_t len;

	ip->p++;        /* '{' */
	if (digits(ip, (uint64_t)INT64_MAX, &len) != 0)
		return -1;
	if (ip_peek(ip) == '+')
		ip->p++;
	if (ip_char(ip, '}') != 0 || ip_char(ip, '\r') != 0 || ip_char(ip, '\n') != 0)
		return fail(ip, "bad literal");
	if (len > (uint64_t)(ip->end - ip->p))
		return fail(ip, "literal longer than the command");
	if (memchr(ip->p, '\0', (size_t)len))
		return fail(ip, "NUL in a literal");
	*s = ip->p;
	*n = (size_t)len;
	ip->p += len;
	return 0;
}

static int quoted(struct ip *ip, char **s, size_t *n)
{
	char *w, *b;

	ip->p++;        /* '"' */
	b = w = ip->p;
	while (ip->p < ip->end) {
		char c = *ip->p++;
		if (c == '"') {
			*s = b;
			*n = (size_t)(w - b);
			return 0;
		}
		if (c == '\\') {
			if (ip->p >= ip->end || (*ip->p != '"' && *ip->p != '\\'))
				return fail(ip, "bad escape in a quoted string");
			c = *ip->p++;
		} else if (c == '\0' || c == '\r' || c == '\n') {
			return fail(ip, "bad character in a quoted string");
		}
		*w++ = c;
	}
	return fail(ip, "unterminated quoted string");
}

int ip_string(struct ip *ip, char **s, size_t *n)
{
	int c = ip_peek(ip);

	if (c == '"')
		return quoted(ip, s, n);
	if (c == '{')
		return literal(ip, s, n);
	return fail(ip, "expected a string");
}

int ip_astring(struct ip *ip, char **s, size_t *n)
{
	int c = ip_peek(ip);

	if (c == '"' || c == '{')
		return ip_string(ip, s, n);
	return ip_atom(ip, (const char **)s, n, 1);
}

int ip_list_mailbox(struct ip *ip, char **s, size_t *n)
{
	int c = ip_peek(ip);
	char *b = ip->p;

	if (c == '"' || c == '{')
		return ip_string(ip, s, n);
	while (ip->p < ip->end && (atom_char((unsigned char)*ip->p, 1) ||
				   *ip->p == '%' || *ip->p == '*'))
		ip->p++;
	*s = b;
	*n = (size_t)(ip->p - b);
	return *n ? 0 : fail(ip, "expected a mailbox pattern");
}

/* seq-number: nz-number or '*' (0 for '*'). */
static int seq_number(struct ip *ip, uint32_t *v)
{
	if (ip_peek(ip) == '*') {
		ip->p++;
		*v = 0;
		return 0;
	}
	if (ip_number(ip, v) != 0 || *v == 0)
		return fail(ip, "bad sequence number");
	return 0;
}

int ip_seqset(struct ip *ip, const char **s, size_t *n)
{
	char *b = ip->p;
	uint32_t v;

	for (;;) {
		if (seq_number(ip, &v) != 0)
			return fail(ip, "bad sequence set");
		if (ip_peek(ip) == ':') {
			ip->p++;
			if (seq_number(ip, &v) != 0)
				return fail(ip, "bad sequence set");
		}
		if (ip_peek(ip) != ',')
			break;
		ip->p++;
	}
	*s = b;
	*n = (size_t)(ip->p - b);
	return 0;
}

void seq_iter_init(struct seq_iter *it, const char *s, size_t n)
{
	it->p = s;
	it->end = s + n;
}

static uint32_t seq_val(struct seq_iter *it, uint32_t star)
{
	uint64_t x = 0;

	if (it->p < it->end && *it->p == '*') {
		it->p++;
		return star;
	}
	while (it->p < it->end && *it->p >= '0' && *it->p <= '9') {
		x = x * 10 + (uint64_t)(*it->p++ - '0');
		if (x > UINT32_MAX)
			x = UINT32_MAX;
	}
	return (uint32_t)x;
}

int seq_next(struct seq_iter *it, uint32_t star, uint32_t *lo, uint32_t *hi)
{
	uint32_t a, b;

	if (it->p >= it->end)
		return 0;
	a = b = seq_val(it, star);
	if (it->p < it->end && *it->p == ':') {
		it->p++;
		b = seq_val(it, star);
	}
	if (it->p < it->end && *it->p == ',')
		it->p++;
	*lo = a < b ? a : b;
	*hi = a < b ? b : a;
	return 1;
}

int seq_has(const char *s, size_t n, uint32_t star, uint32_t v)
{
	struct seq_iter it;
	uint32_t lo, hi;

	seq_iter_init(&it, s, n);
	while (seq_next(&it, star, &lo, &hi))
		if (v >= lo && v <= hi)
			return 1;
	return 0;
}

int ip_month(const char *s)
{
	static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";

	for (int m = 0; m < 12; m++) {
		int ok = 1;
		for (int k = 0; k < 3; k++)
			if ((s[k] | 0x20) != names[m * 3 + k])
				ok = 0;
		if (ok)
			return m + 1;
	}
	return 0;
}

int32_t ip_days(int y, int m, int d)
{
	/* Howard Hinnant's days_from_civil. */
	int era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* d?d-Mon-yyyy at s[0..n); returns chars used or -1. */
static int date_text(const char *s, size_t n, int32_t *days)
{
	size_t i = 0;
	int d = 0, m, y = 0, k;

	if (i < n && s[i] == ' ')
		i++;
	for (k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '9'; k++)
		d = d * 10 + (s[i++] - '0');
	if (k == 0 || d < 1 || d > 31 || i + 9 > n || s[i] != '-' || s[i + 4] != '-')
		return -1;
	m = ip_month(s + i + 1);
	if (!m)
		return -1;
	i += 5;
	for (k = 0; k < 4; k++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		y = y * 10 + (s[i++] - '0');
	}
	*days = ip_days(y, m, d);
	return (int)i;
}

int ip_date(struct ip *ip, int32_t *days)
{
	char *s;
	size_t n;
	int used;

	if (ip_peek(ip) == '"' || ip_peek(ip) == '{') {
		if (ip_string(ip, &s, &n) != 0)
			return -1;
		used = date_text(s, n, days);
		return used == (int)n ? 0 : fail(ip, "bad date");
	}
	s = ip->p;
	n = (size_t)(ip->end - ip->p);
	used = date_text(s, n, days);
	if (used < 0 || s[0] == ' ')
		return fail(ip, "bad date");
	ip->p += used;
	return 0;
}

static int two(const char *s, int *v)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

int ip_datetime(struct ip *ip, int64_t *t)
{
	char *s;
	size_t n;
	int32_t days;
	int used, hh, mm, ss, zh, zm;

	if (ip_peek(ip) != '"' || ip_string(ip, &s, &n) != 0)
		return fail(ip, "bad date-time");
	used = date_text(s, n, &days);
	/* " hh:mm:ss +zzzz" */
	if (used < 0 || n != (size_t)used + 15 || s[used] != ' ' ||
	    two(s + used + 1, &hh) || s[used + 3] != ':' || two(s + used + 4, &mm) ||
	    s[used + 6] != ':' || two(s + used + 7, &ss) || s[used + 9] != ' ' ||
	    (s[used + 10] != '+' && s[used + 10] != '-') ||
	    two(s + used + 11, &zh) || two(s + used + 13, &zm) ||
	    hh > 23 || mm > 59 || ss > 60 || zm > 59)
		return fail(ip, "bad date-time");
	*t = (int64_t)days * 86400 + hh * 3600 + mm * 60 + ss;
	*t += (s[used + 10] == '+' ? -1 : 1) * (int64_t)(zh * 3600 + zm * 60);
	return 0;
}

int ip_literal_tail(const char *line, size_t len, uint64_t *n, int *plus)
{
	size_t i;
	uint64_t x = 0, mul = 1;

	if (len < 3 || line[len - 1] != '}')
		return 0;
	i = len - 1;
	*plus = 0;
	if (line[i - 1] == '+') {
		*plus = 1;
		i--;
	}
	size_t end = i;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || line[i - 1] != '{')
		return 0;
	if (i == end || end - i > 18)
		return -1;
	for (size_t k = end; k > i; k--) {
		x += (uint64_t)(line[k - 1] - '0') * mul;
		mul *= 10;
	}
	*n = x;
	return 1;
}

/* ---- FETCH ---------------------------------------------------------- */

static int word_is(const char *s, size_t n, const char *w)
{
	size_t i;

	for (i = 0; i < n && w[i]; i++)
		if ((s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]) != w[i])
			return 0;
	return i == n && !w[i];
}

/* Fetch attribute names: letters, digits, '.', and nothing else. */
static int att_name(struct ip *ip, const char **s, size_t *n)
{
	char *b = ip->p;

	while (ip->p < ip->end && ((*ip->p >= 'A' && *ip->p <= 'Z') ||
				   (*ip->p >= 'a' && *ip->p <= 'z') ||
				   (*ip->p >= '0' && *ip->p <= '9') || *ip->p == '.'))
		ip->p++;
	*s = b;
	*n = (size_t)(ip->p - b);
	return *n ? 0 : fail(ip, "expected a fetch attribute");
}

static int add_item(struct ip *ip, struct fetch_req *r, unsigned attr, int sec)
{
	if (r->nitems >= IMAP_FETCH_ITEMS)
		return fail(ip, "too many fetch attributes");
	r->items[r->nitems].attr = (uint8_t)attr;
	r->items[r->nitems].sec = (uint8_t)sec;
	r->nitems++;
	r->attrs |= attr;
	return 0;
}

static struct fetch_sec *new_sec(struct ip *ip, struct fetch_req *r)
{
	struct fetch_sec *sec;

	if (r->nsecs >= IMAP_FETCH_SECS) {
		fail(ip, "too many body sections");
		return NULL;
	}
	sec = &r->secs[r->nsecs];
	memset(sec, 0, sizeof(*sec));
	return sec;
}

/* "[" section "]" ["<" n "." n ">"] after BODY or BODY.PEEK. */
static int section(struct ip *ip, struct fetch_req *r, int peek)
{
	struct fetch_sec *sec = new_sec(ip, r);
	const char *w;
	size_t n;

	if (!sec || ip_char(ip, '[') != 0)
		return -1;
	sec->peek = (uint8_t)peek;
	sec->spec = ip->p;
	sec->kind = SEC_ALL;
	while (ip_peek(ip) >= '0' && ip_peek(ip) <= '9') {
		uint32_t v;
		if (sec->nparts >= IMAP_PART_DEPTH)
			return fail(ip, "section nested too deep");
		if (ip_number(ip, &v) != 0 || v == 0)
			return fail(ip, "bad section number");
		sec->part[sec->nparts++] = v;
		if (ip_peek(ip) != '.')
			break;
		ip->p++;
	}
	if (ip_peek(ip) != ']') {
		if (sec->nparts && ip->p[-1] != '.')
			return fail(ip, "bad section");
		if (att_name(ip, &w, &n) != 0)
			return -1;
		if (word_is(w, n, "HEADER"))
			sec->kind = SEC_HEADER;
		else if (word_is(w, n, "TEXT"))
			sec->kind = SEC_TEXT;
		else if (word_is(w, n, "MIME") && sec->nparts)
			sec->kind = SEC_MIME;
		else if (word_is(w, n, "HEADER.FIELDS"))
			sec->kind = SEC_FIELDS;
		else if (word_is(w, n, "HEADER.FIELDS.NOT"))
			sec->kind = SEC_FIELDS_NOT;
		else
			return fail(ip, "bad section");
		if (sec->kind == SEC_FIELDS || sec->kind == SEC_FIELDS_NOT) {
			sec->field0 = (uint8_t)r->nfields;
			if (ip_sp(ip) != 0 || ip_char(ip, '(') != 0)
				return -1;
			for (;;) {
				char *f;
				size_t fl;
				if (r->nfields >= IMAP_FIELDS)
					return fail(ip, "too many header fields");
				if (ip_astring(ip, &f, &fl) != 0)
					return -1;
				r->fields[r->nfields] = f;
				r->field_len[r->nfields++] = fl;
				sec->nfields++;
				if (ip_peek(ip) != ' ')
					break;
				ip->p++;
			}
			if (ip_char(ip, ')') != 0)
				return -1;
		}
	} else if (sec->nparts && ip->p[-1] == '.') {
		return fail(ip, "bad section");
	}
	sec->spec_len = (size_t)(ip->p - sec->spec);
	if (ip_char(ip, ']') != 0)
		return -1;
	if (ip_peek(ip) == '<') {
		ip->p++;
		if (ip_number(ip, &sec->pstart) != 0 || ip_char(ip, '.') != 0 ||
		    ip_number(ip, &sec->plen) != 0 || sec->plen == 0 ||
		    ip_char(ip, '>') != 0)
			return fail(ip, "bad partial");
		sec->partial = 1;
	}
	if (!peek)
		r->sets_seen = 1;
	r->nsecs++;
	return add_item(ip, r, 0, r->nsecs - 1);
}

static int rfc822_sec(struct ip *ip, struct fetch_req *r, int which, int kind,
		      int peek)
{
	struct fetch_sec *sec = new_sec(ip, r);

	if (!sec)
		return -1;
	sec->kind = (uint8_t)kind;
	sec->rfc822 = (uint8_t)which;
	sec->peek = (uint8_t)peek;
	if (!peek)
		r->sets_seen = 1;
	r->nsecs++;
	return add_item(ip, r, 0, r->nsecs - 1);
}

static int fetch_att(struct ip *ip, struct fetch_req *r)
{
	const char *w;
	size_t n;

	if (att_name(ip, &w, &n) != 0)
		return -1;
	if (word_is(w, n, "UID"))
		return add_item(ip, r, FA_UID, 0);
	if (word_is(w, n, "FLAGS"))
		return add_item(ip, r, FA_FLAGS, 0);
	if (word_is(w, n, "RFC822.SIZE"))
		return add_item(ip, r, FA_SIZE, 0);
	if (word_is(w, n, "INTERNALDATE"))
		return add_item(ip, r, FA_INTERNALDATE, 0);
	if (word_is(w, n, "ENVELOPE"))
		return add_item(ip, r, FA_ENVELOPE, 0);
	if (word_is(w, n, "BODYSTRUCTURE"))
		return add_item(ip, r, FA_BODYSTRUCTURE, 0);
	if (word_is(w, n, "MODSEQ"))
		return add_item(ip, r, FA_MODSEQ, 0);
	if (word_is(w, n, "RFC822"))
		return rfc822_sec(ip, r, RFC822_ALL, SEC_ALL, 0);
	if (word_is(w, n, "RFC822.HEADER"))
		return rfc822_sec(ip, r, RFC822_HEADER, SEC_HEADER, 1);
	if (word_is(w, n, "RFC822.TEXT"))
		return rfc822_sec(ip, r, RFC822_TEXT, SEC_TEXT, 0);
	if (word_is(w, n, "BODY"))
		return ip_peek(ip) == '[' ? section(ip, r, 0) : add_item(ip, r, FA_BODY, 0);
	if (word_is(w, n, "BODY.PEEK"))
		return section(ip, r, 1);
	return fail(ip, "unknown fetch attribute");
}

int ip_fetch_atts(struct ip *ip, struct fetch_req *r)
{
	const char *w;
	size_t n;
	char *save = ip->p;

	memset(r, 0, offsetof(struct fetch_req, items));
	if (ip_peek(ip) == '(') {
		ip->p++;
		for (;;) {
			if (fetch_att(ip, r) != 0)
				return -1;
			if (ip_peek(ip) != ' ')
				break;
			ip->p++;
		}
		if (ip_char(ip, ')') != 0)
			return -1;
	} else if (att_name(ip, &w, &n) == 0 && (word_is(w, n, "ALL") ||
		   word_is(w, n, "FAST") || word_is(w, n, "FULL"))) {
		int all = !word_is(w, n, "FAST"), full = word_is(w, n, "FULL");
		if (add_item(ip, r, FA_FLAGS, 0) || add_item(ip, r, FA_INTERNALDATE, 0) ||
		    add_item(ip, r, FA_SIZE, 0) ||
		    (all && add_item(ip, r, FA_ENVELOPE, 0)) ||
		    (full && add_item(ip, r, FA_BODY, 0)))
			return -1;
	} else {
		ip->p = save;
		ip->err = NULL;
		if (fetch_att(ip, r) != 0)
			return -1;
	}
	if (ip_peek(ip) == ' ') {
		/* RFC 7162 modifiers: (CHANGEDSINCE n) */
		ip->p++;
		if (ip_char(ip, '(') != 0 || att_name(ip, &w, &n) != 0 ||
		    !word_is(w, n, "CHANGEDSINCE") || ip_sp(ip) != 0 ||
		    ip_number64(ip, &r->since) != 0 || ip_char(ip, ')') != 0)
			return fail(ip, "bad fetch modifier");
		r->changedsince = 1;
	}
	return ip_end(ip);
}

/* ---- SEARCH --------------------------------------------------------- */

static int node_new(struct ip *ip, struct search_prog *p, int op)
{
	struct search_node *nd;

	if (p->n >= IMAP_SEARCH_NODES)
		return fail(ip, "search program too large");
	nd = &p->node[p->n];
	memset(nd, 0, sizeof(*nd));
	nd->op = (uint8_t)op;
	nd->child = nd->next = -1;
	return p->n++;
}

static int search_key(struct ip *ip, struct search_prog *p);

/* Keys up to ')' (in a list) or the end, as children of node `and`. */
static int search_list(struct ip *ip, struct search_prog *p, int and, int inner)
{
	int last = -1;

	for (;;) {
		int k = search_key(ip, p);
		if (k < 0)
			return -1;
		if (last < 0)
			p->node[and].child = (int16_t)k;
		else
			p->node[last].next = (int16_t)k;
		last = k;
		if (ip_peek(ip) != ' ')
			break;
		ip->p++;
	}
	if (inner)
		return ip_char(ip, ')');
	return 0;
}

struct skw {
	const char *name;
	uint8_t op, arg;        /* arg: 0 none, 1 astring, 2 number, 3 date,
				 * 4 two astrings, 5 flag keyword */
	uint8_t flag;
};

static const struct skw keys[] = {
	{ "ALL", SK_ALL, 0, 0 },
	{ "ANSWERED", SK_FLAG, 0, IDX_F_ANSWERED },
	{ "DELETED", SK_FLAG, 0, IDX_F_DELETED },
	{ "DRAFT", SK_FLAG, 0, IDX_F_DRAFT },
	{ "FLAGGED", SK_FLAG, 0, IDX_F_FLAGGED },
	{ "SEEN", SK_FLAG, 0, IDX_F_SEEN },
	{ "UNANSWERED", SK_UNFLAG, 0, IDX_F_ANSWERED },
	{ "UNDELETED", SK_UNFLAG, 0, IDX_F_DELETED },
	{ "UNDRAFT", SK_UNFLAG, 0, IDX_F_DRAFT },
	{ "UNFLAGGED", SK_UNFLAG, 0, IDX_F_FLAGGED },
	{ "UNSEEN", SK_UNFLAG, 0, IDX_F_SEEN },
	{ "NEW", SK_NEW, 0, 0 },
	{ "OLD", SK_OLD, 0, 0 },
	{ "RECENT", SK_RECENT, 0, 0 },
	{ "KEYWORD", SK_KEYWORD, 5, 0 },
	{ "UNKEYWORD", SK_UNKEYWORD, 5, 0 },
	{ "LARGER", SK_LARGER, 2, 0 },
	{ "SMALLER", SK_SMALLER, 2, 0 },
	{ "BEFORE", SK_BEFORE, 3, 0 },
	{ "ON", SK_ON, 3, 0 },
	{ "SINCE", SK_SINCE, 3, 0 },
	{ "SENTBEFORE", SK_SENTBEFORE, 3, 0 },
	{ "SENTON", SK_SENTON, 3, 0 },
	{ "SENTSINCE", SK_SENTSINCE, 3, 0 },
	{ "BCC", SK_HEADER, 1, 'b' },
	{ "CC", SK_HEADER, 1, 'c' },
	{ "FROM", SK_HEADER, 1, 'f' },
	{ "SUBJECT", SK_HEADER, 1, 's' },
	{ "TO", SK_HEADER, 1, 't' },
	{ "HEADER", SK_HEADER, 4, 0 },
	{ "BODY", SK_BODY, 1, 0 },
	{ "TEXT", SK_TEXT, 1, 0 },
	{ "UID", SK_UID, 6, 0 },
	{ "NOT", SK_NOT, 7, 0 },
	{ "OR", SK_OR, 8, 0 },
	{ "MODSEQ", SK_MODSEQ, 2, 0 },
};

static const char *const header_names[] = {
	['b'] = "Bcc", ['c'] = "Cc", ['f'] = "From", ['s'] = "Subject", ['t'] = "To",
};

/* MODSEQ's optional entry, "/flags/NAME" priv|shared|all (RFC 7162
 * §3.1.5), and the blank after it. One mod-sequence per message is kept,
 * so the entry is checked and the message's own is compared. */
static int modseq_entry(struct ip *ip)
{
	char *s;
	const char *w;
	size_t sl, n;

	if (ip_astring(ip, &s, &sl) != 0 || ip_sp(ip) != 0 ||
	    ip_atom(ip, &w, &n, 0) != 0 || ip_sp(ip) != 0)
		return -1;
	if (sl <= 7 || !str_ieq(s, 7, "/flags/"))
		return fail(ip, "MODSEQ entry is \"/flags/NAME\"");
	if (!word_is(w, n, "PRIV") && !word_is(w, n, "SHARED") && !word_is(w, n, "ALL"))
		return fail(ip, "MODSEQ entry type is priv, shared or all");
	return 0;
}

static int search_key(struct ip *ip, struct search_prog *p)
{
	const char *w;
	size_t n;
	int k, c = ip_peek(ip);

	if (++ip->depth > IMAP_SEARCH_DEPTH)
		return fail(ip, "search program nested too deep");
	if (c == '(') {
		ip->p++;
		k = node_new(ip, p, SK_AND);
		if (k < 0 || search_list(ip, p, k, 1) != 0)
			return -1;
		ip->depth--;
		return k;
	}
	if (c == '*' || (c >= '0' && c <= '9')) {
		k = node_new(ip, p, SK_SEQ);
		if (k < 0 || ip_seqset(ip, &p->node[k].s, &p->node[k].slen) != 0)
			return -1;
		ip->depth--;
		return k;
	}
	if (ip_atom(ip, &w, &n, 0) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct skw *kw = &keys[i];
		struct search_node *nd;
		int32_t days;
		char *s;
		size_t sl;

		if (!word_is(w, n, kw->name))
			continue;
		k = node_new(ip, p, kw->op);
		if (k < 0)
			return -1;
		nd = &p->node[k];
		switch (kw->arg) {
		case 0:
			nd->num = kw->flag;
			break;
		case 1:
			if (ip_sp(ip) != 0 || ip_astring(ip, &s, &sl) != 0)
				return -1;
			nd->s2 = s;
			nd->s2len = sl;
			if (kw->op == SK_HEADER) {
				nd->s = header_names[kw->flag];
				nd->slen = strlen(nd->s);
				p->needs_header = 1;
			} else {
				p->needs_body = 1;
			}
			break;
		case 2:
			if (ip_sp(ip) != 0 ||
			    (kw->op == SK_MODSEQ && ip_peek(ip) == '"' &&
			     modseq_entry(ip) != 0) ||
			    ip_number64(ip, &nd->num) != 0)
				return -1;
			break;
		case 3:
			if (ip_sp(ip) != 0 || ip_date(ip, &days) != 0)
				return -1;
			nd->num = (uint64_t)(int64_t)days;
			if (kw->op >= SK_SENTBEFORE)
				p->needs_header = 1;
			break;
		case 4:
			if (ip_sp(ip) != 0 || ip_astring(ip, &s, &sl) != 0)
				return -1;
			nd->s = s;
			nd->slen = sl;
			if (ip_sp(ip) != 0 || ip_astring(ip, &s, &sl) != 0)
				return -1;
			nd->s2 = s;
			nd->s2len = sl;
			p->needs_header = 1;
			break;
		case 5:
			if (ip_sp(ip) != 0 || ip_atom(ip, &w, &n, 0) != 0)
				return -1;
			nd->s = w;
			nd->slen = n;
			break;
		case 6:
			if (ip_sp(ip) != 0 || ip_seqset(ip, &nd->s, &nd->slen) != 0)
				return -1;
			break;
		case 7: {
			int ch;
			if (ip_sp(ip) != 0 || (ch = search_key(ip, p)) < 0)
				return -1;
			p->node[k].child = (int16_t)ch;
			break;
		}
		case 8: {
			int a, b;
			if (ip_sp(ip) != 0 || (a = search_key(ip, p)) < 0 ||
			    ip_sp(ip) != 0 || (b = search_key(ip, p)) < 0)
				return -1;
			p->node[k].child = (int16_t)a;
			p->node[a].next = (int16_t)b;
			break;
		}
		}
		ip->depth--;
		return k;
	}
	return fail(ip, "unknown search key");
}

int ip_search(struct ip *ip, struct search_prog *p)
{
	const char *w;
	size_t n;
	char *save = ip->p, *cs;
	size_t csl;

	p->n = 0;
	p->needs_header = p->needs_body = 0;
	if (node_new(ip, p, SK_AND) != 0)
		return -1;
	if (ip_atom(ip, &w, &n, 0) == 0 && word_is(w, n, "CHARSET")) {
		if (ip_sp(ip) != 0 || ip_astring(ip, &cs, &csl) != 0 || ip_sp(ip) != 0)
			return -1;
		if (!word_is(cs, csl, "UTF-8") && !word_is(cs, csl, "US-ASCII"))
			return fail(ip, "BADCHARSET");
	} else {
		ip->p = save;
		ip->err = NULL;
	}
	if (search_list(ip, p, 0, 0) != 0)
		return -1;
	return ip_end(ip);
}
