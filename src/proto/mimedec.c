/* mimedec — streaming quoted-printable, base64 and RFC 2047 decoders and
 * ISO-8859-1 to UTF-8, for SEARCH (see mimedec.h). Lenient like mail
 * readers: a malformed escape stays as it is, characters outside the
 * base64 alphabet are skipped. Limits: MDEC_EW_MAX octets an
 * encoded-word, MDEC_WS_MAX octets of blanks held between two. */
#include "proto/mimedec.h"

#include "core/b64.h"
#include "core/util.h"

int mdec_charset(const char *s, size_t n)
{
	static const char *const latin1[] = {
		"iso-8859-1", "iso8859-1", "latin1", "iso_8859-1", "l1",
		"windows-1252", "cp1252",       /* a superset; close enough */
	};

	for (size_t i = 0; i < sizeof(latin1) / sizeof(latin1[0]); i++)
		if (str_ieq(s, n, latin1[i]))
			return MDEC_CS_LATIN1;
	return MDEC_CS_RAW;
}

int mdec_encoding(const char *s, size_t n)
{
	if (str_ieq(s, n, "quoted-printable"))
		return MDEC_QP;
	if (str_ieq(s, n, "base64"))
		return MDEC_B64;
	return MDEC_ID;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One decoded octet, converted to UTF-8 when the charset says so. */
static void put(int cs, unsigned char c, struct buf *out)
{
	if (cs == MDEC_CS_LATIN1 && c >= 0x80) {
		buf_addc(out, (char)(0xc0 | (c >> 6)));
		buf_addc(out, (char)(0x80 | (c & 0x3f)));
	} else {
		buf_addc(out, (char)c);
	}
}

void mdec_init(struct mdec *d, int enc, int cs)
{
	d->enc = (uint8_t)enc;
	d->cs = (uint8_t)cs;
	d->st = d->hi = d->nq = 0;
	d->acc = 0;
}

static void b64_flush(struct mdec *d, struct buf *out)
{
	if (d->nq == 2) {
		put(d->cs, (unsigned char)(d->acc >> 4), out);
	} else if (d->nq == 3) {
		put(d->cs, (unsigned char)(d->acc >> 10), out);
		put(d->cs, (unsigned char)(d->acc >> 2), out);
	}
	d->nq = 0;
	d->acc = 0;
}

static void b64_byte(struct mdec *d, unsigned char c, struct buf *out)
{
	int v = b64_value(c);

	if (c == '=') {
		b64_flush(d, out);
		return;
	}
	if (v < 0)
		return;
	d->acc = (d->acc << 6) | (uint32_t)v;
	if (++d->nq == 4) {
		put(d->cs, (unsigned char)(d->acc >> 16), out);
		put(d->cs, (unsigned char)(d->acc >> 8), out);
		put(d->cs, (unsigned char)d->acc, out);
		d->nq = 0;
		d->acc = 0;
	}
}

static void qp_byte(struct mdec *d, unsigned char c, struct buf *out)
{
	for (;;) {
		switch (d->st) {
		case 0:
			if (c == '=')
				d->st = 1;
			else
				put(d->cs, c, out);
			return;
		case 1:                 /* after '=' */
			if (hexval(c) >= 0) {
				d->hi = c;
				d->st = 2;
				return;
			}
			if (c == ' ' || c == '\t') {
				d->st = 3;
				return;
			}
			if (c == '\r') {
				d->st = 4;
				return;
			}
			if (c == '\n') {        /* soft line break */
				d->st = 0;
				return;
			}
			put(d->cs, '=', out);
			d->st = 0;
			continue;
		case 2:                 /* "=X" */
			d->st = 0;
			if (hexval(c) >= 0) {
				put(d->cs, (unsigned char)(hexval(d->hi) << 4 | hexval(c)), out);
				return;
			}
			put(d->cs, '=', out);
			put(d->cs, d->hi, out);
			continue;
		case 3:                 /* "=" and blanks: padding before CRLF? */
			if (c == ' ' || c == '\t')
				return;
			if (c == '\r') {
				d->st = 4;
				return;
			}
			d->st = 0;
			if (c == '\n')
				return;
			put(d->cs, '=', out);
			continue;
		default:                /* "=" CR */
			d->st = 0;
			if (c == '\n')
				return;
			continue;
		}
	}
}

void mdec_feed(struct mdec *d, const char *in, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (d->enc == MDEC_QP)
			qp_byte(d, c, out);
		else if (d->enc == MDEC_B64)
			b64_byte(d, c, out);
		else
			put(d->cs, c, out);
	}
}

void mdec_end(struct mdec *d, struct buf *out)
{
	if (d->enc == MDEC_B64) {
		b64_flush(d, out);
	} else if (d->enc == MDEC_QP) {
		if (d->st == 1 || d->st == 2)
			put(d->cs, '=', out);
		if (d->st == 2)
			put(d->cs, d->hi, out);
	}
	d->st = 0;
}

/* ---- RFC 2047 ---------------------------------------------------------- */

void mdec_ew_init(struct mdec_ew *e)
{
	e->prev = e->part = e->ewlen = e->wslen = 0;
}

/* The held word "=?cs?E?text?=" is complete: decoded into out. 0 when
 * it is no encoded-word after all (an unknown encoding). */
static int ew_decode(const struct mdec_ew *e, struct buf *out)
{
	size_t q1 = 2, cl, t0, t1 = (size_t)e->ewlen - 2;
	struct mdec d;
	char enc;

	while (e->ew[q1] != '?')
		q1++;
	enc = e->ew[q1 + 1];
	t0 = q1 + 3;
	for (cl = 2; cl < q1 && e->ew[cl] != '*'; cl++)  /* RFC 2231 language */
		;
	if (enc == 'b' || enc == 'B') {
		mdec_init(&d, MDEC_B64, mdec_charset(e->ew + 2, cl - 2));
		mdec_feed(&d, e->ew + t0, t1 - t0, out);
		mdec_end(&d, out);
		return 1;
	}
	if (enc != 'q' && enc != 'Q')
		return 0;
	mdec_init(&d, MDEC_QP, mdec_charset(e->ew + 2, cl - 2));
	for (size_t i = t0; i < t1; i++)
		mdec_feed(&d, e->ew[i] == '_' ? " " : e->ew + i, 1, out);
	mdec_end(&d, out);
	return 1;
}

static void ew_flush(struct mdec_ew *e, struct buf *out)
{
	buf_add(out, e->ws, e->wslen);
	buf_add(out, e->ew, e->ewlen);
	e->wslen = e->ewlen = e->part = 0;
	e->prev = 0;
}

/* Can c extend the held word? '?'s mark its parts: 1 in the charset,
 * 2 the encoding letter, 3 the text, 4 the closing "?=". */
static int ew_takes(const struct mdec_ew *e, unsigned char c)
{
	if (e->ewlen >= MDEC_EW_MAX || c <= ' ' || c >= 127)
		return 0;
	if (e->ewlen == 1)
		return c == '?';
	switch (e->part) {
	case 1:
		return c != '?' || e->ewlen > 2;
	case 2:
		return c == '?' ? e->ew[e->ewlen - 1] != '?' : e->ew[e->ewlen - 1] == '?';
	case 3:
		return 1;
	default:
		return c == '=';
	}
}

void mdec_ew_feed(struct mdec_ew *e, const char *in, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (e->ewlen) {
			if (ew_takes(e, c)) {
				e->ew[e->ewlen++] = (char)c;
				if (c == '?')
					e->part++;
				if (c != '=' || e->part < 4)
					continue;
				size_t mark = out->len;
				if (!e->prev)
					buf_add(out, e->ws, e->wslen);
				if (ew_decode(e, out)) {
					e->ewlen = e->wslen = e->part = 0;
					e->prev = 1;
					continue;
				}
				buf_truncate(out, mark);
				ew_flush(e, out);
				continue;
			}
			ew_flush(e, out);       /* not one: as it is */
		}
		if (c == '=') {
			e->ew[0] = '=';
			e->ewlen = 1;
			e->part = 0;
		} else if (e->prev && (c == ' ' || c == '\t') && e->wslen < MDEC_WS_MAX) {
			e->ws[e->wslen++] = (char)c;
		} else {
			buf_add(out, e->ws, e->wslen);
			e->wslen = 0;
			e->prev = 0;
			buf_addc(out, (char)c);
		}
	}
}

void mdec_ew_end(struct mdec_ew *e, struct buf *out)
{
	ew_flush(e, out);
}
