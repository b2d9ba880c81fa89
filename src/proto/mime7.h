/* mime7 — 8-bit to 7-bit conversion for servers without 8BITMIME, as
 * Postfix does by default: the body of a single-part message becomes
 * quoted-printable (RFC 2045) and its Content-Transfer-Encoding says so.
 * A multipart message is passed through unchanged (its 8-bit parts are
 * not converted; documented). Pure: no I/O, bytes in, bytes out, LF line
 * ends on both sides (the SMTP layer adds CR and dot-stuffing). */
#ifndef POSTIE_MIME7_H
#define POSTIE_MIME7_H

#include <stddef.h>

#define MIME7_HDR_MAX 200       /* header bytes kept for inspection; the rest of a longer line passes */

struct mime7 {
	int phase;              /* headers, body (qp), body (pass) */
	int multipart, mime_version, skip_cont, long_line;
	size_t col;             /* output column in the current qp line */
	size_t hlen;            /* bytes of the header line being read */
	char hline[MIME7_HDR_MAX + 2];
	unsigned char pend;     /* a held-back space or tab at line end */
	int has_pend;
	int overflow;           /* out was smaller than promised: a caller bug */
};

void mime7_init(struct mime7 *m);
/* Converts in[0..n); out must have room for 4*n + MIME7_HDR_MAX + 96
 * bytes. Returns bytes written. */
size_t mime7_feed(struct mime7 *m, const char *in, size_t n, char *out);
/* Flushes what is held back at the end of the message; out must have
 * room for MIME7_HDR_MAX + 96 bytes. */
size_t mime7_end(struct mime7 *m, char *out);

#endif
