/* IMAP parser and MIME structure: tables of {input, want}. Built only
 * with CONFIG_IMAP. */
#include <stdio.h>
#include <string.h>

#include "proto/imap_parse.h"
#include "proto/mime.h"
#include "unit.h"

static int parse_fetch(const char *text, struct fetch_req *r)
{
	static char buf[512];
	struct ip ip;

	snprintf(buf, sizeof(buf), "%s", text);
	ip_init(&ip, buf, strlen(buf));
	return ip_fetch_atts(&ip, r);
}

static int parse_search(const char *text, struct search_prog *p)
{
	static char buf[2048];
	struct ip ip;

	snprintf(buf, sizeof(buf), "%s", text);
	ip_init(&ip, buf, strlen(buf));
	return ip_search(&ip, p);
}

static void test_tokens(void)
{
	static const struct { const char *in; int ok; const char *want; } astr[] = {
		{ "abc", 0, "abc" },
		{ "\"a b\\\"c\"", 0, "a b\"c" },
		{ "{3}\r\nx y", 0, "x y" },
		{ "{3+}\r\nx\"y", 0, "x\"y" },
		{ "{4}\r\nxy", -1, NULL },
		{ "\"unterminated", -1, NULL },
		{ "\"bad\\x\"", -1, NULL },
		{ "(", -1, NULL },
		{ "{99999999999999999999}\r\n", -1, NULL },
	};
	for (size_t i = 0; i < sizeof(astr) / sizeof(astr[0]); i++) {
		char buf[64], *s;
		size_t n;
		struct ip ip;
		snprintf(buf, sizeof(buf), "%s", astr[i].in);
		ip_init(&ip, buf, strlen(buf));
		int rc = ip_astring(&ip, &s, &n);
		CHECK(rc == astr[i].ok, "astring %s", astr[i].in);
		if (rc == 0 && astr[i].want)
			CHECK(n == strlen(astr[i].want) && memcmp(s, astr[i].want, n) == 0,
			      "astring %s value", astr[i].in);
	}
	/* NUL inside a literal or quoted string is refused */
	{
		char buf[] = "{3}\r\na\0b";
		char *s;
		size_t n;
		struct ip ip;
		ip_init(&ip, buf, sizeof(buf) - 1);
		CHECK(ip_astring(&ip, &s, &n) == -1, "NUL literal");
	}
	static const struct { const char *in; uint64_t n; int plus, rc; } lit[] = {
		{ "a LOGIN {5}", 5, 0, 1 }, { "a {12+}", 12, 1, 1 }, { "a {}", 0, 0, -1 },
		{ "a b", 0, 0, 0 }, { "{x}", 0, 0, 0 }, { "a {1234567890123456789}", 0, 0, -1 },
	};
	for (size_t i = 0; i < sizeof(lit) / sizeof(lit[0]); i++) {
		uint64_t n = 0;
		int plus = 0, rc = ip_literal_tail(lit[i].in, strlen(lit[i].in), &n, &plus);
		CHECK(rc == lit[i].rc && (rc != 1 || (n == lit[i].n && plus == lit[i].plus)),
		      "literal tail %s: %d", lit[i].in, rc);
	}
}

static void test_seqsets(void)
{
	static const struct { const char *in; int ok; uint32_t star, v; int has; } t[] = {
		{ "1", 0, 10, 1, 1 }, { "1:3", 0, 10, 2, 1 }, { "3:1", 0, 10, 2, 1 },
		{ "5:*", 0, 10, 10, 1 }, { "*", 0, 10, 9, 0 }, { "1,4:5,9", 0, 10, 4, 1 },
		{ "1,4:5,9", 0, 10, 6, 0 }, { "0", -1, 0, 0, 0 }, { "1:", -1, 0, 0, 0 },
		{ ",1", -1, 0, 0, 0 }, { "4294967296", -1, 0, 0, 0 }, { "1:0", -1, 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char buf[64];
		const char *s;
		size_t n;
		struct ip ip;
		snprintf(buf, sizeof(buf), "%s", t[i].in);
		ip_init(&ip, buf, strlen(buf));
		int rc = ip_seqset(&ip, &s, &n);
		if (rc == 0 && !ip_done(&ip))
			rc = -1;
		CHECK(rc == t[i].ok, "seqset %s", t[i].in);
		if (rc == 0)
			CHECK(seq_has(s, n, t[i].star, t[i].v) == t[i].has, "seq_has %s %u",
			      t[i].in, t[i].v);
	}
}

static void test_fetch_atts(void)
{
	struct fetch_req r;

	CHECK(parse_fetch("FLAGS", &r) == 0 && r.nitems == 1 && r.attrs == FA_FLAGS, "FLAGS");
	CHECK(parse_fetch("ALL", &r) == 0 && r.nitems == 4, "ALL");
	CHECK(parse_fetch("FULL", &r) == 0 && (r.attrs & FA_BODY), "FULL");
	CHECK(parse_fetch("(UID BODY.PEEK[HEADER.FIELDS (From \"Subject\")]<0.100>)", &r) == 0 &&
	      r.nsecs == 1 && r.secs[0].kind == SEC_FIELDS && r.secs[0].nfields == 2 &&
	      r.secs[0].partial && r.secs[0].plen == 100 && !r.sets_seen, "fields");
	CHECK(parse_fetch("BODY[1.2.MIME]", &r) == 0 && r.secs[0].nparts == 2 &&
	      r.secs[0].kind == SEC_MIME && r.sets_seen, "mime");
	CHECK(parse_fetch("BODY[]", &r) == 0 && r.secs[0].spec_len == 0, "body[]");
	CHECK(parse_fetch("RFC822.HEADER", &r) == 0 && r.secs[0].rfc822 == RFC822_HEADER &&
	      !r.sets_seen, "rfc822.header");
	CHECK(parse_fetch("(FLAGS) (CHANGEDSINCE 5)", &r) == 0 && r.changedsince && r.since == 5,
	      "changedsince");
	static const char *const bad[] = {
		"", "(", "()", "(FLAGS", "BODY[", "BODY[1.]", "BODY[0]", "BODY[MIME]",
		"BODY[HEADER.FIELDS]", "BODY[HEADER.FIELDS ()]", "BODY[]<1>", "BODY[]<1.0>",
		"BOGUS", "FLAGS extra", "BODY[1.2.3.4.5.6.7.8.9]",
		"(BODY[] BODY[] BODY[] BODY[] BODY[] BODY[] BODY[] BODY[] BODY[])",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(parse_fetch(bad[i], &r) == -1, "bad fetch %s", bad[i]);
}

static void test_search_prog(void)
{
	static struct search_prog p;
	char deep[400];

	CHECK(parse_search("ALL", &p) == 0 && p.n == 2, "ALL");
	CHECK(parse_search("CHARSET UTF-8 FROM x", &p) == 0 && p.needs_header, "charset");
	CHECK(parse_search("CHARSET KOI8-R ALL", &p) == -1, "bad charset");
	CHECK(parse_search("OR (SEEN FLAGGED) NOT 1:3 UID 5:* LARGER 10 SINCE 1-Feb-2024 "
			   "HEADER X-A \"b c\" BODY x", &p) == 0 && p.needs_body, "complex");
	CHECK(parse_search("SINCE 31-Foo-2024", &p) == -1, "bad date");
	CHECK(parse_search("OR SEEN", &p) == -1, "OR one arg");
	CHECK(parse_search("(SEEN", &p) == -1, "unclosed");
	CHECK(parse_search("LARGER x", &p) == -1, "larger x");
	memset(deep, 0, sizeof(deep));
	for (int i = 0; i < 30; i++)
		strcat(deep, "(");
	strcat(deep, "ALL");
	for (int i = 0; i < 30; i++)
		strcat(deep, ")");
	CHECK(parse_search(deep, &p) == -1, "too deep");
	CHECK(ip_days(1970, 1, 1) == 0 && ip_days(2024, 2, 29) == 19782, "days");
}

static const char multi[] =
	"From: x@example.net\r\nSubject: multi\r\n"
	"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
	"pre\r\n--B\r\nContent-Type: text/plain\r\n\r\none\r\ntwo\r\n"
	"--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n"
	"--B--\r\nepi\r\n";

static void run_mime(struct mime *m, const char *text, size_t chunk)
{
	size_t n = strlen(text);

	mime_init(m);
	for (size_t off = 0; off < n; off += chunk)
		mime_feed(m, text + off, n - off < chunk ? n - off : chunk);
	mime_end(m);
}

static void test_mime_struct(void)
{
	static struct mime m;
	static char out[4096];
	struct mime_out o;
	size_t chunks[] = { 1, 3, 7, 4096 };

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		run_mime(&m, multi, chunks[c]);
		uint32_t p1[] = { 1 }, p2[] = { 2 };
		int k1 = mime_find(&m, p1, 1, 0), k2 = mime_find(&m, p2, 1, 1);
		CHECK(m.n == 4 && k1 == 1 && k2 == 3, "parts %d %d %d", m.n, k1, k2);
		if (k1 == 1) {
			const struct mime_part *p = &m.part[1];
			CHECK(p->end_off - p->body_off == 8 && p->lines == 1,
			      "part 1 size %llu lines %llu",
			      (unsigned long long)(p->end_off - p->body_off),
			      (unsigned long long)p->lines);
			CHECK(memcmp(multi + p->body_off, "one\r\ntwo", 8) == 0, "part 1 body");
		}
		if (k2 == 3) {
			const struct mime_part *p = &m.part[3];
			CHECK(memcmp(multi + p->body_off, "body", 4) == 0 &&
			      p->end_off - p->body_off == 4, "inner text");
		}
	}
	mime_out_init(&o, out, sizeof(out));
	mime_bodystructure(&m, 0, 1, &o);
	out[o.b.len] = '\0';
	CHECK(!o.overflow && strstr(out, "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") "
				    "NIL NIL \"7BIT\" 8 1 NIL NIL NIL NIL)(\"MESSAGE\" \"RFC822\"")
	      && strstr(out, " \"MIXED\" (\"BOUNDARY\" \"B\") NIL NIL NIL)"), "bs %s", out);
	run_mime(&m, "From: \"A, B\" <a@b.c>, d@e, Group: x@y;, <f@g>\r\n"
		 "To: undisclosed-recipients:;\r\nSubject: s\r\n\r\nx", 5);
	mime_out_init(&o, out, sizeof(out));
	mime_envelope(&m, 0, &o);
	out[o.b.len] = '\0';
	CHECK(strstr(out, "((\"A, B\" NIL \"a\" \"b.c\")(NIL NIL \"d\" \"e\")"
		     "(NIL NIL \"Group\" NIL)(NIL NIL \"x\" \"y\")(NIL NIL NIL NIL)"
		     "(NIL NIL \"f\" \"g\"))") != NULL, "env %s", out);
	CHECK(strstr(out, "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))") != NULL,
	      "group %s", out);
	/* Empty Sender and Reply-To default to From (RFC 3501 7.4.2). */
	run_mime(&m, "From: a@b\r\nSender: \r\nReply-To:\r\n\r\nx", 3);
	mime_out_init(&o, out, sizeof(out));
	mime_envelope(&m, 0, &o);
	out[o.b.len] = '\0';
	CHECK(strcmp(out, "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
		     "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)") == 0, "empty %s", out);
	/* A source route is the address's adl (imaptest fetch-envelope). */
	run_mime(&m, "From: <@route:user@domain>\r\nTo: X <@a,@b.c:u@d>\r\n\r\nx", 4);
	mime_out_init(&o, out, sizeof(out));
	mime_envelope(&m, 0, &o);
	out[o.b.len] = '\0';
	CHECK(strstr(out, "NIL ((NIL \"@route\" \"user\" \"domain\")) ((NIL \"@route\"") &&
	      strstr(out, "((\"X\" \"@a,@b.c\" \"u\" \"d\"))"), "route %s", out);
	/* A To: of 40 addresses on one 1.2 KB line comes whole; one longer
	 * than a field may be is NIL, never a shortened list. */
	{
		static char big[3 * MIME_LINE];
		size_t n = (size_t)snprintf(big, sizeof(big), "From: a@b\r\nTo: ");
		for (int i = 0; i < 40; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n,
					      "%s\"Person %d\" <p%d@example.org>",
					      i ? ", " : "", i, i);
		snprintf(big + n, sizeof(big) - n, "\r\n\r\nx");
		run_mime(&m, big, 100);
		mime_out_init(&o, out, sizeof(out));
		mime_envelope(&m, 0, &o);
		out[o.b.len] = '\0';
		if (MIME_LINE > n)
			CHECK(strstr(out, "(\"Person 39\" NIL \"p39\" \"example.org\")) NIL") &&
			      strstr(out, "((\"Person 0\" NIL"), "40 addresses: %.200s", out);
		else
			CHECK(strstr(out, "\"b\")) NIL NIL NIL NIL NIL)"), "cut: %.200s", out);
		n = (size_t)snprintf(big, sizeof(big), "From: a@b\r\nTo: ");
		while (n < 2 * MIME_LINE)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "x%zu@example.org,\r\n ", n);
		n += (size_t)snprintf(big + n, sizeof(big) - n, "last@example.org\r\n"
				      "Message-ID: <id@x>\r\n\r\nx");
		run_mime(&m, big, 64);
		mime_out_init(&o, out, sizeof(out));
		mime_envelope(&m, 0, &o);
		out[o.b.len] = '\0';
		CHECK(strcmp(out, "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
			     "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL \"<id@x>\")") == 0,
		      "too long: %.300s", out);
	}
	/* hostile: deep nesting and many parts stay bounded */
	{
		static char deep[20000];
		size_t n = 0;
		for (int i = 0; i < 40; i++)
			n += (size_t)snprintf(deep + n, sizeof(deep) - n,
				"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
		for (int i = 0; i < 200; i++)
			n += (size_t)snprintf(deep + n, sizeof(deep) - n, "--b7\r\n\r\nx\r\n");
		run_mime(&m, deep, 13);
		CHECK(m.n <= MIME_MAX_PARTS, "parts bounded %d", m.n);
		mime_out_init(&o, out, sizeof(out));
		mime_bodystructure(&m, 0, 1, &o);
		CHECK(o.b.len <= sizeof(out), "bs bounded");
	}
	CHECK(mime_date_days("Sat, 3 Jan 2026 01:05:34 +0000", 30) == ip_days(2026, 1, 3),
	      "date");
	CHECK(mime_date_days("garbage", 7) == -1, "bad date");
}

void test_imap(void)
{
	test_tokens();
	test_seqsets();
	test_fetch_atts();
	test_search_prog();
	test_mime_struct();
}
