/* address parser and DATA reader cases. */
#include <string.h>

#include "core/util.h"
#include "proto/address.h"
#include "proto/smtp_data.h"
#include "unit.h"

void test_address(void)
{
	static const struct {
		const char *in;
		int utf8;
		int want;               /* consumed bytes, or ADDR_E* */
		unsigned flags;         /* must be set */
		const char *local, *domain;
	} t[] = {
		{ "<user@example.org>", 0, 18, 0, "user", "example.org" },
		{ "<>", 0, 2, ADDR_NULL, "", "" },
		{ "<> SIZE=10", 0, 2, ADDR_NULL, "", "" },
		{ "<a.b+c@x.y> BODY=8BITMIME", 0, 11, 0, "a.b+c", "x.y" },
		{ "user@example.org", 0, 16, ADDR_NOBRACKETS, "user", "example.org" },
		{ "<\"john doe\"@x.org>", 0, 18, ADDR_QUOTED, "\"john doe\"", "x.org" },
		{ "<\"a@b\"@x.org>", 0, 13, ADDR_QUOTED | ADDR_ODD_LOCAL, "\"a@b\"", "x.org" },
		{ "<user%other@x.org>", 0, 18, ADDR_ODD_LOCAL, "user%other", "x.org" },
		{ "<a!b@x.org>", 0, 11, ADDR_ODD_LOCAL, "a!b", "x.org" },
		{ "<@relay.org,@r2.org:u@x.org>", 0, 28, ADDR_ROUTE, "u", "x.org" },
		{ "<u@[127.0.0.1]>", 0, 15, ADDR_LITERAL, "u", "[127.0.0.1]" },
		{ "<u@[IPv6:::1]>", 0, 14, ADDR_LITERAL, "u", "[IPv6:::1]" },
		{ "<Postmaster>", 0, 12, ADDR_NODOMAIN, "Postmaster", "" },
		{ "<bob>", 0, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<u@x.org", 0, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<u@@x.org>", 0, ADDR_EDOMAIN, 0, NULL, NULL },
		{ "<.u@x.org>", 0, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<u..v@x.org>", 0, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<u@-x.org>", 0, ADDR_EDOMAIN, 0, NULL, NULL },
		{ "<u@x-.org>", 0, ADDR_EDOMAIN, 0, NULL, NULL },
		{ "<u@x..org>", 0, ADDR_EDOMAIN, 0, NULL, NULL },
		{ "<u@[1.2.3]>", 0, ADDR_EDOMAIN, 0, NULL, NULL },
		{ "<u@x.org>junk", 0, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<u v@x.org>", 0, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<\"unterminated@x.org>", 0, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<j\xc3\xb6rg@x.org>", 1, 13, ADDR_UTF8, "j\xc3\xb6rg", "x.org" },
		{ "<j\xc3\xb6rg@x.org>", 0, ADDR_E8BIT, 0, NULL, NULL },
		{ "<j\xc3(rg@x.org>", 1, ADDR_ESYNTAX, 0, NULL, NULL },
		{ "<j\xc0\xafrg@x.org>", 1, ADDR_E8BIT, 0, NULL, NULL }, /* overlong */
		{ "<u@b\xc3\xbc" "cher.de>", 1, 14, ADDR_UTF8, "u", "b\xc3\xbc" "cher.de" },
	};
	struct addr a;

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		int n = addr_parse_path(t[i].in, strlen(t[i].in), &a, t[i].utf8);
		CHECK(n == t[i].want, "case %zu %s: got %d want %d", i, t[i].in, n,
		      t[i].want);
		if (n < 0 || n != t[i].want)
			continue;
		CHECK((a.flags & t[i].flags) == t[i].flags, "case %zu flags %x", i,
		      a.flags);
		CHECK(a.local_len == strlen(t[i].local) &&
		      memcmp(a.local ? a.local : "", t[i].local, a.local_len) == 0,
		      "case %zu local %.*s", i, (int)a.local_len, a.local);
		CHECK(a.domain_len == strlen(t[i].domain) &&
		      memcmp(a.domain ? a.domain : "", t[i].domain, a.domain_len) == 0,
		      "case %zu domain", i);
	}
	/* Length limits: 64 local, 255 domain, 256 path (the defaults;
	 * the local part and path cases follow the build's limits). */
	char big[1400];
	memset(big, 0, sizeof(big));
	big[0] = '<';
	memset(big + 1, 'a', CONFIG_SMTP_LOCAL_MAX + 1);
	strcpy(big + CONFIG_SMTP_LOCAL_MAX + 2, "@x.org>");
	CHECK(addr_parse_path(big, strlen(big), &a, 0) == ADDR_ELOCAL, "long local");
	memset(big + 1, 'a', CONFIG_SMTP_LOCAL_MAX);
	strcpy(big + CONFIG_SMTP_LOCAL_MAX + 1, "@x.org>");
	CHECK(addr_parse_path(big, strlen(big), &a, 0) > 0, "local at the limit");
	strcpy(big, "<u@");
	for (int k = 0; k < 4; k++)
		strcat(big, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(big, "org>");
	CHECK(addr_parse_path(big, strlen(big), &a, 0) > 0, "207-byte domain");
	/* A local part at its limit and a 254-byte domain: over the
	 * path limit unless SMTP_PATH_MAX allows both. */
	memset(big, 0, sizeof(big));
	memset(big, 'b', CONFIG_SMTP_LOCAL_MAX);
	strcat(big, "@");
	for (int k = 0; k < 4; k++)
		strcat(big, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(big, "aaaaaa");
	if (CONFIG_SMTP_PATH_MAX < CONFIG_SMTP_LOCAL_MAX + 250)
		CHECK(addr_parse_path(big, strlen(big), &a, 0) == ADDR_EPATH,
		      "path over the limit");
	strcpy(big, "<u@");
	for (int k = 0; k < 6; k++)
		strcat(big, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(big, "org>");
	CHECK(addr_parse_path(big, strlen(big), &a, 0) == ADDR_EDOMAIN, "long domain");
	strcpy(big, "<u@");
	strcat(big, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org>");
	CHECK(addr_parse_path(big, strlen(big), &a, 0) == ADDR_EDOMAIN, "64-byte label");

	char key[80];
	addr_parse_path("<\"Jo\\\"e\"@x>", 12, &a, 0);
	CHECK(addr_local_key(&a, key, sizeof(key)) == 0 && strcmp(key, "jo\"e") == 0,
	      "key %s", key);
	addr_parse_path("<DEMO@x>", 8, &a, 0);
	CHECK(addr_local_key(&a, key, sizeof(key)) == 0 && strcmp(key, "demo") == 0,
	      "key %s", key);
	CHECK(utf8_valid("\xed\xa0\x80", 3) == 0, "surrogate refused");
	CHECK(utf8_valid("\xf4\x90\x80\x80", 4) == 0, "past U+10FFFF refused");
	CHECK(utf8_valid("\xe2\x82\xac", 3) == 1, "euro sign");
	CHECK(utf8_valid("\xe2\x82", 2) == 0, "truncated");
}

/* Runs input through the DATA reader in chunks of `chunk` bytes. */
static int data_run(const char *in, size_t len, size_t chunk, char *out,
		    size_t *outlen, unsigned *flags, size_t *rest)
{
	struct smtp_data d;
	size_t i = 0, o = 0;

	smtp_data_init(&d);
	while (i < len && !d.done) {
		size_t n = len - i < chunk ? len - i : chunk, got;
		size_t used = smtp_data_feed(&d, in + i, n, out + o, 4096 - o, &got);
		i += used;
		o += got;
	}
	*outlen = o;
	*flags = d.flags;
	*rest = len - i;
	return d.done;
}

void test_smtp_data(void)
{
	static const struct {
		const char *in;
		int done;
		const char *want;
		size_t rest;            /* bytes left after the end of data */
		unsigned flags;
	} t[] = {
		{ "hello\r\n.\r\n", 1, "hello\n", 0, 0 },
		{ ".\r\n", 1, "", 0, 0 },
		{ "a\r\n..b\r\n.\r\nMAIL", 1, "a\n.b\n", 4, 0 },
		{ "..\r\n.\r\n", 1, ".\n", 0, 0 },
		/* smuggling: bare LF before or after the dot never ends data */
		{ "a\n.\nMAIL FROM:<x>\r\n.\r\n", 1, "a\n.\nMAIL FROM:<x>\n", 0, DATA_BARE_LF },
		{ "a\n.\r\nMAIL\r\n.\r\n", 1, "a\n.\nMAIL\n", 0, DATA_BARE_LF },
		{ "a\r\n.\nMAIL\r\n.\r\n", 1, "a\n.\nMAIL\n", 0, DATA_BARE_LF },
		{ "a\r.\r\nb\r\n.\r\n", 1, "a\r.\nb\n", 0, DATA_BARE_CR },
		{ "a\r\n.\r.\r\n.\r\n", 1, "a\n\r.\n", 0, DATA_BARE_CR },
		{ "x\r\r\n.\r\n", 1, "x\r\n", 0, DATA_BARE_CR },
		{ "no end\r\n", 0, "no end\n", 0, 0 },
		{ "8\xe9t\r\n.\r\n", 1, "8\xe9t\n", 0, DATA_8BIT },
		{ "n\0l\r\n.\r\n", 1, "n\0l\n", 0, DATA_NUL },
	};
	/* Explicit lengths for the case with a NUL. */
	char out[4096];
	size_t olen, rest;
	unsigned flags;

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		size_t len = strlen(t[i].in), wl = strlen(t[i].want);
		if (t[i].flags & DATA_NUL) {
			len = 8;
			wl = 4;
		}
		for (size_t chunk = 1; chunk <= len; chunk = chunk * 2 + 1) {
			int done = data_run(t[i].in, len, chunk, out, &olen, &flags, &rest);
			CHECK(done == t[i].done && olen == wl &&
			      memcmp(out, t[i].want, wl) == 0 && rest == t[i].rest &&
			      (flags & t[i].flags) == t[i].flags,
			      "case %zu chunk %zu: done %d olen %zu rest %zu flags %x",
			      i, chunk, done, olen, rest, flags);
		}
	}
	/* A tiny output buffer must not lose bytes: feed stops early. */
	struct smtp_data d;
	size_t got;
	smtp_data_init(&d);
	size_t used = smtp_data_feed(&d, "abcdef\r\n", 8, out, 3, &got);
	CHECK(used == 2 && got == 2, "small out: used %zu got %zu", used, got);
}

/* Received: fields counted in the header only, whatever the split. */
void test_smtp_hops(void)
{
	static const struct { const char *in; unsigned want; } t[] = {
		{ "Received: a\nReceived: b\nSubject: x\n\nReceived: body\n", 2 },
		{ "RECEIVED:x\n received: folded\nreceived :x\nX-Received: y\n", 1 },
		{ "Subject: s\nreceived:\n\treceived: cont\nreceived: c", 2 },
		{ "Receive: no\nReceived no\n\n", 0 },
		{ "\nReceived: after the empty line\n", 0 },
	};
	struct smtp_hops h;

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		size_t len = strlen(t[i].in);
		for (size_t chunk = 1; chunk <= len; chunk++) {
			smtp_hops_init(&h);
			for (size_t off = 0; off < len; off += chunk)
				smtp_hops_feed(&h, t[i].in + off,
					       len - off < chunk ? len - off : chunk);
			CHECK(h.hops == t[i].want, "hops case %zu chunk %zu: %u",
			      i, chunk, h.hops);
		}
	}
}
