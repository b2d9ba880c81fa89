/* smtp_data — DATA byte state machine (see smtp_data.h). Each input byte
 * yields at most two output bytes (a held-back CR or dot plus itself). */
#include "proto/smtp_data.h"

#include "core/buf.h"

enum {
	S_BOL_CRLF,     /* line start after CRLF (or the start of data) */
	S_BOL_LF,       /* line start after a bare LF */
	S_MID,          /* inside a line */
	S_CR,           /* CR held back inside a line */
	S_DOT_CRLF,     /* "." at a line start after CRLF */
	S_DOT_LF,       /* "." at a line start after bare LF */
	S_DOT_CRLF_CR,  /* ".\r" after CRLF: may be the end */
	S_DOT_LF_CR,    /* ".\r" after bare LF: never the end */
};

void smtp_data_init(struct smtp_data *d)
{
	d->state = S_BOL_CRLF;
	d->done = 0;
	d->flags = 0;
	d->size = 0;
}

size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen,
		      char *out, size_t outcap, size_t *outlen)
{
	struct buf b;
	size_t i = 0;

	/* Each step writes at most two bytes: stop while two are free. */
	buf_init(&b, out, outcap);
	while (i < inlen && !d->done && buf_fits(&b, 2, 0)) {
		unsigned char c = (unsigned char)in[i];

		switch (d->state) {
		case S_BOL_CRLF:
		case S_BOL_LF:
			if (c == '.') {
				d->state = d->state == S_BOL_CRLF ? S_DOT_CRLF : S_DOT_LF;
				i++;
				continue;
			}
			d->state = S_MID;
			continue;       /* same byte, as inside a line */
		case S_DOT_CRLF:
		case S_DOT_LF:
			if (c == '\r') {
				d->state = d->state == S_DOT_CRLF ? S_DOT_CRLF_CR : S_DOT_LF_CR;
				i++;
				continue;
			}
			if (c == '\n') {
				/* ".\n": a lone dot line without CRLF is content. */
				buf_addc(&b, '.');
				d->state = S_MID;
				continue;
			}
			/* Dot-stuffing: the leading dot goes. */
			d->state = S_MID;
			continue;
		case S_DOT_CRLF_CR:
			if (c == '\n') {
				d->done = 1;
				i++;
				continue;
			}
			buf_addc(&b, '\r');
			d->flags |= DATA_BARE_CR;
			d->state = S_MID;
			continue;
		case S_DOT_LF_CR:
			if (c == '\n') {
				buf_add(&b, ".\n", 2);
				d->state = S_BOL_CRLF;
				i++;
				continue;
			}
			buf_addc(&b, '\r');
			d->flags |= DATA_BARE_CR;
			d->state = S_MID;
			continue;
		case S_CR:
			if (c == '\n') {
				buf_addc(&b, '\n');
				d->state = S_BOL_CRLF;
				i++;
				continue;
			}
			buf_addc(&b, '\r');
			d->flags |= DATA_BARE_CR;
			d->state = S_MID;
			continue;
		case S_MID:
		default:
			i++;
			if (c == '\r') {
				d->state = S_CR;
				continue;
			}
			if (c == '\n') {
				buf_addc(&b, '\n');
				d->flags |= DATA_BARE_LF;
				d->state = S_BOL_LF;
				continue;
			}
			if (c == 0)
				d->flags |= DATA_NUL;
			else if (c >= 0x80)
				d->flags |= DATA_8BIT;
			buf_addc(&b, (char)c);
			continue;
		}
	}
	d->size += b.len;
	*outlen = b.len;
	return i;
}

enum { HOPS_BOL, HOPS_NAME, HOPS_MID, HOPS_BODY };

void smtp_hops_init(struct smtp_hops *h)
{
	h->hops = 0;
	h->pos = 0;
	h->state = HOPS_BOL;
}

void smtp_hops_feed(struct smtp_hops *h, const char *p, size_t len)
{
	static const char name[] = "received:";

	for (size_t i = 0; i < len && h->state != HOPS_BODY; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\n') {
			/* An empty line ends the header. */
			h->state = h->state == HOPS_BOL ? HOPS_BODY : HOPS_BOL;
			h->pos = 0;
			continue;
		}
		if (h->state == HOPS_BOL) {
			h->state = HOPS_NAME;
			h->pos = 0;
		}
		if (h->state != HOPS_NAME)
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 'a' - 'A');
		if (c != (unsigned char)name[h->pos]) {
			h->state = HOPS_MID;
			continue;
		}
		if (++h->pos == sizeof(name) - 1) {
			h->hops++;
			h->state = HOPS_MID;
		}
	}
}
