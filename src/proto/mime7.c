/* mime7 — 8-bit → quoted-printable conversion (see mime7.h). Limits:
 * header lines are looked at up to MIME7_HDR_MAX bytes (longer ones pass
 * unchanged); output lines stay within 76 characters (RFC 2045). */
#include "proto/mime7.h"

#include <string.h>
#include <strings.h>

#include "core/buf.h"

enum { P_HEAD, P_QP, P_PASS };

static const char hex[] = "0123456789ABCDEF";

void mime7_init(struct mime7 *m)
{
	memset(m, 0, sizeof(*m));
	m->phase = P_HEAD;
}

static int starts(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len >= n && strncasecmp(line, name, n) == 0;
}

/* One complete header line (with its LF): decide, drop or keep it. */
static void header_line(struct mime7 *m, struct buf *out)
{
	const char *l = m->hline;
	size_t len = m->hlen;

	if (len == 1) {         /* the empty line: end of the header */
		if (!m->multipart) {
			if (!m->mime_version)
				buf_adds(out, "MIME-Version: 1.0\n");
			buf_adds(out, "Content-Transfer-Encoding: quoted-printable\n");
		}
		buf_addc(out, '\n');
		m->phase = m->multipart ? P_PASS : P_QP;
		return;
	}
	if ((l[0] == ' ' || l[0] == '\t') && m->skip_cont)
		return;         /* continuation of a dropped header */
	m->skip_cont = 0;
	if (starts(l, len, "Content-Transfer-Encoding:")) {
		m->skip_cont = 1;
		return;
	}
	if (starts(l, len, "MIME-Version:"))
		m->mime_version = 1;
	if (starts(l, len, "Content-Type:")) {
		const char *v = l + 13;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "multipart/", 10) == 0)
			m->multipart = 1;
	}
	buf_add(out, l, len);
}

static void qp_hex(struct mime7 *m, unsigned char c, struct buf *out)
{
	char e[3] = { '=', hex[c >> 4], hex[c & 15] };

	buf_add(out, e, 3);
	m->col += 3;
}

static void qp_soft_break(struct mime7 *m, size_t need, struct buf *out)
{
	if (m->col + need > 75) {
		buf_add(out, "=\n", 2);
		m->col = 0;
	}
}

static void qp_byte(struct mime7 *m, unsigned char c, struct buf *out)
{
	int lit = c >= 33 && c <= 126 && c != '=';

	qp_soft_break(m, lit ? 1 : 3, out);
	if (lit || c == ' ' || c == '\t') {
		buf_addc(out, (char)c);
		m->col++;
	} else {
		qp_hex(m, c, out);
	}
}

/* Space or tab before a line end must be encoded; so hold it back. */
static void qp_flush_pend(struct mime7 *m, struct buf *out, int at_eol)
{
	if (!m->has_pend)
		return;
	m->has_pend = 0;
	if (!at_eol) {
		qp_byte(m, m->pend, out);
		return;
	}
	qp_soft_break(m, 3, out);
	qp_hex(m, m->pend, out);
}

static void feed_byte(struct mime7 *m, unsigned char c, struct buf *out)
{
	if (m->phase == P_HEAD) {
		if (m->long_line) {
			/* The rest of an over-long header line, unchanged. */
			buf_addc(out, (char)c);
			m->long_line = c != '\n';
			return;
		}
		struct buf h;

		buf_init(&h, m->hline, MIME7_HDR_MAX);
		h.len = m->hlen;
		buf_addc(&h, (char)c);
		m->hlen = h.len;
		if (c != '\n' && m->hlen == MIME7_HDR_MAX) {
			buf_add(out, m->hline, m->hlen);
			m->hlen = 0;
			m->long_line = 1;
			return;
		}
		if (c == '\n') {
			header_line(m, out);
			m->hlen = 0;
		}
		return;
	}
	if (m->phase == P_PASS) {
		buf_addc(out, (char)c);
		return;
	}
	if (c == '\n') {
		qp_flush_pend(m, out, 1);
		buf_addc(out, '\n');
		m->col = 0;
		return;
	}
	qp_flush_pend(m, out, 0);
	if (c == ' ' || c == '\t') {
		m->pend = c;
		m->has_pend = 1;
		return;
	}
	qp_byte(m, c, out);
}

size_t mime7_feed(struct mime7 *m, const char *in, size_t n, char *out)
{
	struct buf b;

	/* The room the caller promises (mime7.h); a full buffer refuses. */
	buf_init(&b, out, sat_add(sat_add(n, sat_add(n, sat_add(n, n))), MIME7_HDR_MAX + 96));
	for (size_t i = 0; i < n; i++)
		feed_byte(m, (unsigned char)in[i], &b);
	m->overflow |= b.full;
	return b.len;
}

size_t mime7_end(struct mime7 *m, char *out)
{
	struct buf b;

	buf_init(&b, out, MIME7_HDR_MAX + 96);
	if (m->phase == P_HEAD && m->hlen) {
		buf_add(&b, m->hline, m->hlen);
		m->hlen = 0;
	}
	if (m->phase == P_QP)
		qp_flush_pend(m, &b, 1);
	m->overflow |= b.full;
	return b.len;
}
