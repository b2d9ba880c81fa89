/* b64 — strict base64 (RFC 4648 §4) and PEM (RFC 7468), see b64.h.
 * Owns no memory: outputs go to the caller's buffers, bounded by their
 * capacity. Only canonical base64 is accepted so that one value has
 * exactly one meaning (a SASL response that decodes loosely is a client
 * bug or a probe); PEM bodies are canonical base64 split into lines. */
#include "core/b64.h"

#include "core/buf.h"

#include <limits.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Comparisons instead of a 256-byte table: size matters more here. */
int b64_value(unsigned char c)
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
			v[k] = k >= 4 - last ? 0 : b64_value((unsigned char)in[i + k]);
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

/* One PEM boundary line, "-----BEGIN L-----" or "-----END L-----"
 * (kw "BEGIN " or "END "): the label's length, or -1. */
static long pem_boundary(const char *s, size_t n, const char *kw, const char **label)
{
	size_t k = strlen(kw);

	if (n < 10 + k || memcmp(s, "-----", 5) != 0 || memcmp(s + 5, kw, k) != 0 ||
	    memcmp(s + n - 5, "-----", 5) != 0)
		return -1;
	*label = s + 5 + k;
	return (long)(n - 10 - k);
}

/* An object that cannot be decoded goes to fn as NULL; it counts. */
static int damaged(pem_fn fn, void *ctx, const char *name, int *n)
{
	(*n)++;
	return fn(ctx, name, NULL, 0);
}

int pem_each(const char *text, size_t len, unsigned char *scratch, size_t cap,
	     pem_fn fn, void *ctx)
{
	const char *end = text + len, *label;
	char name[PEM_LABEL_MAX + 1];
	struct buf o;
	int n = 0, open = 0;

	buf_init(&o, scratch, cap);
	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		const char *le = nl ? nl : end;
		size_t ll;
		long k;

		while (le > text && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
			le--;
		ll = (size_t)(le - text);
		if ((k = pem_boundary(text, ll, "BEGIN ", &label)) >= 0) {
			if (k > PEM_LABEL_MAX)
				return -1;
			if (open && damaged(fn, ctx, name, &n) != 0)
				return -1;      /* the object before was cut short */
			memcpy(name, label, (size_t)k);
			name[k] = '\0';
			buf_reset(&o);
			open = 1;
		} else if (open && pem_boundary(text, ll, "END ", &label) >= 0) {
			/* Decoded in place: each quad's 3 bytes land before the
			 * next quad is read. */
			int d = o.full ? -1 : b64_decode((const char *)scratch, o.len,
							 scratch, cap);
			if (fn(ctx, name, d < 0 ? NULL : scratch, d < 0 ? 0 : (size_t)d) != 0)
				return -1;
			open = 0;
			n++;
		} else if (open) {
			for (const char *s = text; s < le; s++)
				if (*s != ' ' && *s != '\t')
					buf_add(&o, s, 1);
		}
		text = nl ? nl + 1 : end;
	}
	if (open && damaged(fn, ctx, name, &n) != 0)
		return -1;
	return n;
}
