/* address — RFC 5321 §4.1.2 path grammar (see address.h). Limits:
 * CONFIG_SMTP_LOCAL_MAX, CONFIG_SMTP_DOMAIN_MAX, CONFIG_SMTP_PATH_MAX. */
#include "proto/address.h"

#include <arpa/inet.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"

static int is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

int utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		if (i + n >= len)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Dot-string local part; returns length or -1. 8-bit bytes allowed and
 * checked later. */
static long dot_string(const char *s, size_t len)
{
	size_t i = 0;
	int need_atom = 1;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (need_atom)
				return -1;
			need_atom = 1;
		} else if (is_atext(c) || c >= 0x80) {
			need_atom = 0;
		} else {
			break;
		}
		i++;
	}
	if (need_atom)
		return -1;
	return (long)i;
}

static long quoted_string(const char *s, size_t len)
{
	size_t i = 1;

	if (len == 0 || s[0] != '"')
		return -1;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			return (long)(i + 1);
		if (c == '\\') {
			if (i + 1 >= len || (unsigned char)s[i + 1] < 32 ||
			    (unsigned char)s[i + 1] > 126)
				return -1;
			i += 2;
			continue;
		}
		if (c < 32 || c == 127)
			return -1;
		i++;
	}
	return -1;
}

/* Domain: sub-domain *("." sub-domain), or an address literal. */
static long domain(const char *s, size_t len, unsigned *flags)
{
	size_t i = 0, label = 0;

	if (len > 0 && s[0] == '[') {
		const char *end = memchr(s, ']', len);
		char buf[64];
		unsigned char bin[16];
		size_t l;

		if (!end)
			return -1;
		l = (size_t)(end - s - 1);
		if (str_copy(buf, sizeof(buf), s + 1, l) != 0 || strlen(buf) != l)
			return -1;
		if (l > 5 && strncasecmp(buf, "IPv6:", 5) == 0) {
			if (inet_pton(AF_INET6, buf + 5, bin) != 1)
				return -1;
		} else if (inet_pton(AF_INET, buf, bin) != 1) {
			return -1;
		}
		*flags |= ADDR_LITERAL;
		return (long)(l + 2);
	}
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
		} else if (is_alpha(c) || is_digit(c) || c >= 0x80) {
			label++;
		} else if (c == '-') {
			if (label == 0)
				return -1;
			label++;
		} else {
			break;
		}
		if (label > 63)
			return -1;
		i++;
	}
	if (label == 0 || s[i - 1] == '-')
		return -1;
	return (long)i;
}

/* Optional "@a,@b:" source route; returns bytes to skip, or -1. */
static long route(const char *s, size_t len)
{
	size_t i = 0;
	unsigned dummy = 0;

	if (len == 0 || s[0] != '@')
		return 0;
	for (;;) {
		long d;
		if (i >= len || s[i] != '@')
			return -1;
		d = domain(s + i + 1, len - i - 1, &dummy);
		if (d < 0)
			return -1;
		i += 1 + (size_t)d;
		if (i < len && s[i] == ',') {
			i++;
			continue;
		}
		if (i < len && s[i] == ':')
			return (long)(i + 1);
		return -1;
	}
}

int addr_parse_path(const char *s, size_t len, struct addr *a, int utf8_ok)
{
	size_t i = 0, start;
	int brackets = 0;
	long n;

	memset(a, 0, sizeof(*a));
	if (len > 0 && s[0] == '<') {
		brackets = 1;
		i = 1;
		if (len > 1 && s[1] == '>') {
			a->flags = ADDR_NULL;
			return 2;
		}
	} else {
		a->flags |= ADDR_NOBRACKETS;
	}
	start = i;
	n = route(s + i, len - i);
	if (n < 0)
		return ADDR_ESYNTAX;
	if (n > 0)
		a->flags |= ADDR_ROUTE;
	i += (size_t)n;
	a->local = s + i;
	if (i < len && s[i] == '"') {
		n = quoted_string(s + i, len - i);
		a->flags |= ADDR_QUOTED;
	} else {
		n = dot_string(s + i, len - i);
	}
	if (n < 0)
		return ADDR_ESYNTAX;
	a->local_len = (size_t)n;
	i += (size_t)n;
	if (a->local_len > CONFIG_SMTP_LOCAL_MAX)
		return ADDR_ELOCAL;
	if (i < len && s[i] == '@') {
		i++;
		a->domain = s + i;
		n = domain(s + i, len - i, &a->flags);
		if (n < 0)
			return ADDR_EDOMAIN;
		a->domain_len = (size_t)n;
		i += (size_t)n;
		if (a->domain_len > CONFIG_SMTP_DOMAIN_MAX)
			return ADDR_EDOMAIN;
	} else {
		/* Only <Postmaster> may come without a domain. */
		if (!(a->local_len == 10 && strncasecmp(a->local, "postmaster", 10) == 0))
			return ADDR_ESYNTAX;
		a->flags |= ADDR_NODOMAIN;
	}
	if (brackets) {
		if (i >= len || s[i] != '>')
			return ADDR_ESYNTAX;
		i++;
	}
	if (i - start + (brackets ? 1 : 2) > CONFIG_SMTP_PATH_MAX)
		return ADDR_EPATH;
	if (i < len && s[i] != ' ')
		return ADDR_ESYNTAX;
	for (size_t k = 0; k < a->local_len; k++) {
		unsigned char c = (unsigned char)a->local[k];
		if (c == '%' || c == '!' || c == '@')
			a->flags |= ADDR_ODD_LOCAL;
		if (c >= 0x80)
			a->flags |= ADDR_UTF8;
	}
	for (size_t k = 0; k < a->domain_len; k++)
		if ((unsigned char)a->domain[k] >= 0x80)
			a->flags |= ADDR_UTF8;
	if (a->flags & ADDR_UTF8) {
		if (!utf8_ok || !utf8_valid(a->local, a->local_len) ||
		    !utf8_valid(a->domain ? a->domain : "", a->domain_len))
			return ADDR_E8BIT;
	}
	return (int)i;
}

int addr_local_key(const struct addr *a, char *out, size_t n)
{
	const char *s = a->local;
	size_t len = a->local_len;
	struct buf b;

	if (a->flags & ADDR_QUOTED) {
		s++;
		len -= 2;
	}
	buf_init(&b, out, n);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if ((a->flags & ADDR_QUOTED) && c == '\\' && i + 1 < len)
			c = s[++i];
		buf_addc(&b, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
	}
	return buf_nul(&b) != 0 || b.full ? -1 : 0;
}
