/* mime7 — 8-bit → quoted-printable conversion (see mime7.h). Limits:
 * header lines are looked at up to MIME7_HDR_MAX bytes (longer ones pass
 * unchanged); output lines stay within 76 characters (RFC 2045). */
#include "proto/mime7.h"

#include <string.h>
#include <strings.h>

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
static size_t header_line(struct mime7 *m, char *out)
{
	const char *l = m->hline;
	size_t len = m->hlen, o = 0;

	if (len == 1) {         /* the empty line: end of the header */
		if (!m->multipart) {
			if (!m->mime_version) {
				memcpy(out, "MIME-Version: 1.0\n", 18);
				o = 18;
			}
			memcpy(out + o, "Content-Transfer-Encoding: quoted-printable\n", 44);
			o += 44;
		}
		out[o++] = '\n';
		m->phase = m->multipart ? P_PASS : P_QP;
		return o;
	}
	if ((l[0] == ' ' || l[0] == '\t') && m->skip_cont)
		return 0;       /* continuation of a dropped header */
	m->skip_cont = 0;
	if (starts(l, len, "Content-Transfer-Encoding:")) {
		m->skip_cont = 1;
		return 0;
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
	memcpy(out, l, len);
	return len;
}

static size_t qp_byte(struct mime7 *m, unsigned char c, char *out)
{
	size_t o = 0, need = 1;
	int lit = c >= 33 && c <= 126 && c != '=';

	if (!lit)
		need = 3;
	if (m->col + need > 75) {       /* soft line break */
		out[o++] = '=';
		out[o++] = '\n';
		m->col = 0;
	}
	if (lit || ((c == ' ' || c == '\t'))) {
		out[o++] = (char)c;
		m->col++;
	} else {
		out[o++] = '=';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
		m->col += 3;
	}
	return o;
}

/* Space or tab before a line end must be encoded; so hold it back. */
static size_t qp_flush_pend(struct mime7 *m, char *out, int at_eol)
{
	size_t o = 0;

	if (!m->has_pend)
		return 0;
	m->has_pend = 0;
	if (!at_eol)
		return qp_byte(m, m->pend, out);
	if (m->col + 3 > 75) {
		out[o++] = '=';
		out[o++] = '\n';
		m->col = 0;
	}
	out[o++] = '=';
	out[o++] = hex[m->pend >> 4];
	out[o++] = hex[m->pend & 15];
	m->col += 3;
	return o;
}

size_t mime7_feed(struct mime7 *m, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (m->phase == P_HEAD) {
			if (m->long_line) {
				/* The rest of an over-long header line, unchanged. */
				out[o++] = (char)c;
				m->long_line = c != '\n';
				continue;
			}
			m->hline[m->hlen++] = (char)c;
			if (c != '\n' && m->hlen == MIME7_HDR_MAX) {
				memcpy(out + o, m->hline, m->hlen);
				o += m->hlen;
				m->hlen = 0;
				m->long_line = 1;
				continue;
			}
			if (c == '\n') {
				o += header_line(m, out + o);
				m->hlen = 0;
			}
			continue;
		}
		if (m->phase == P_PASS) {
			out[o++] = (char)c;
			continue;
		}
		if (c == '\n') {
			o += qp_flush_pend(m, out + o, 1);
			out[o++] = '\n';
			m->col = 0;
			continue;
		}
		o += qp_flush_pend(m, out + o, 0);
		if (c == ' ' || c == '\t') {
			m->pend = c;
			m->has_pend = 1;
			continue;
		}
		o += qp_byte(m, c, out + o);
	}
	return o;
}

size_t mime7_end(struct mime7 *m, char *out)
{
	size_t o = 0;

	if (m->phase == P_HEAD && m->hlen) {
		memcpy(out, m->hline, m->hlen);
		o = m->hlen;
		m->hlen = 0;
	}
	if (m->phase == P_QP)
		o += qp_flush_pend(m, out + o, 1);
	return o;
}
