/* sasl — strict base64 and the SASL PLAIN message (see sasl.h). Limits:
 * outputs bounded by the caller's capacity, PLAIN fields SASL_FIELD_MAX.
 * Only canonical base64 is accepted so that one response has exactly one
 * meaning; a value that decodes loosely is a client bug or a probe. */
#include "proto/sasl.h"

#include "core/buf.h"

#include <limits.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 char, or -1. Comparisons instead of a 256-byte table:
 * size matters more here (also used by IMAP SEARCH's decoder, mimedec). */
int sasl_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Number of '=' at the end of the last quad (0..2), or -1 if misplaced. */
static int b64_padding(const char *in, size_t inlen)
{
	if (inlen == 0 || in[inlen - 1] != '=')
		return 0;
	if (in[inlen - 2] != '=')
		return 1;
	return 2;
}

int b64_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
	struct buf b;
	size_t i, n;
	int pad;

	if (inlen % 4 != 0)
		return -1;
	pad = b64_padding(in, inlen);
	n = inlen / 4 * 3 - (size_t)pad;
	if (n > outcap || n > INT_MAX)
		return -1;
	buf_init(&b, out, outcap);
	for (i = 0; i < inlen; i += 4) {
		int v[4];
		unsigned long w;
		int last = i + 4 == inlen ? pad : 0;

		for (int k = 0; k < 4; k++) {
			/* '=' only where the padding count says: any other '='
			 * (middle of the data, "A=B=", "A===") is a bad char. */
			v[k] = k >= 4 - last ? 0 : sasl_b64_value((unsigned char)in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
		    (unsigned long)v[2] << 6 | (unsigned long)v[3];
		/* RFC 4648 §3.5: the bits padding hides must be zero. */
		if ((last == 1 && (w & 0xff)) || (last == 2 && (w & 0xffff)))
			return -1;
		unsigned char g[3] = { (unsigned char)(w >> 16), (unsigned char)(w >> 8),
				       (unsigned char)w };
		buf_add(&b, g, 3 - (size_t)last);
	}
	return b.full ? -1 : (int)b.len;
}

size_t b64_encode(const unsigned char *in, size_t len, char *out, size_t outcap)
{
	struct buf b;
	size_t i;

	if (outcap == 0)
		return 0;
	/* Groups needed vs groups that fit, without overflowing len + 2. */
	if (len / 3 + (len % 3 != 0) > (outcap - 1) / 4) {
		out[0] = '\0';
		return 0;
	}
	buf_init(&b, out, outcap);
	for (i = 0; i < len; i += 3) {
		size_t left = len - i;
		unsigned long w = (unsigned long)in[i] << 16;

		if (left > 1)
			w |= (unsigned long)in[i + 1] << 8;
		if (left > 2)
			w |= in[i + 2];
		char q[4] = { b64_alphabet[w >> 18 & 63], b64_alphabet[w >> 12 & 63],
			      left > 1 ? b64_alphabet[w >> 6 & 63] : '=',
			      left > 2 ? b64_alphabet[w & 63] : '=' };
		buf_add(&b, q, 4);
	}
	buf_nul(&b);
	return b.len;
}

int sasl_plain_parse(const unsigned char *buf, size_t len, struct sasl_plain *out)
{
	const unsigned char *nul1, *nul2, *end = buf + len;

	if (len == 0)
		return -1;
	nul1 = memchr(buf, '\0', len);
	if (!nul1)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
	if (!nul2 || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)))
		return -1;
	out->authzid = (const char *)buf;
	out->authzid_len = (size_t)(nul1 - buf);
	out->authcid = (const char *)nul1 + 1;
	out->authcid_len = (size_t)(nul2 - nul1 - 1);
	out->passwd = (const char *)nul2 + 1;
	out->passwd_len = (size_t)(end - nul2 - 1);
	if (out->authcid_len == 0 || out->passwd_len == 0 ||
	    out->authzid_len > SASL_FIELD_MAX || out->authcid_len > SASL_FIELD_MAX ||
	    out->passwd_len > SASL_FIELD_MAX)
		return -1;
	return 0;
}
