/* SEARCH matching (imap_search.c): the linear case-insensitive matcher
 * against a naive one, fed whole and in pieces (a match split between two
 * chunks must be found), and SEARCH programs over messages fed at every
 * split. Built only with CONFIG_IMAP. */
#include <stdio.h>
#include <string.h>

#include "proto/imap_parse.h"
#include "proto/imap_search.h"
#include "unit.h"

static uint16_t tab[8192];

static int naive(const char *h, size_t hn, const char *n, size_t nn)
{
	for (size_t i = 0; i + nn <= hn; i++) {
		size_t k = 0;
		while (k < nn && ci_fold((unsigned char)h[i + k]) ==
		       ci_fold((unsigned char)n[k]))
			k++;
		if (k == nn)
			return 1;
	}
	return 0;
}

/* Feeds hay in pieces cut at a and b (a <= b <= hn). */
static int split3(const char *h, size_t hn, const char *n, size_t nn,
		  size_t a, size_t b)
{
	uint32_t st = 0;

	ci_kmp_init(n, nn, tab);
	return ci_kmp_feed(n, nn, tab, &st, h, a) ||
	       ci_kmp_feed(n, nn, tab, &st, h + a, b - a) ||
	       ci_kmp_feed(n, nn, tab, &st, h + b, hn - b);
}

static void test_matcher(void)
{
	static const struct { const char *hay, *needle; int want; } t[] = {
		{ "hello world", "WORLD", 1 },
		{ "hello world", "worlds", 0 },
		{ "", "", 1 },
		{ "abc", "", 1 },
		{ "", "a", 0 },
		{ "aaab", "aab", 1 },           /* restart inside a partial match */
		{ "abababac", "ababac", 1 },
		{ "abababab", "ababac", 0 },
		{ "AbAbAbAc", "aBaBaC", 1 },
		{ "xxaaaaaaaab", "aaaaaaab", 1 },
		{ "abcabdabcabc", "abcabc", 1 },
		{ "mississippi", "ISSIP", 1 },
		{ "mississippi", "issipi", 0 },
		{ "\xc3\xa9t\xc3\xa9", "\xc3\xa9T", 1 },        /* 8-bit bytes as they are */
		{ "\xc3\x89T", "\xc3\xa9t", 0 },                /* no folding beyond ASCII */
		{ "[@`{", "[@`{", 1 },
		{ "@", "`", 0 },                /* 0x40 / 0x60 are not letters */
		{ "Z", "z", 1 },
	};
	unsigned seed = 12345;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *h = t[i].hay, *n = t[i].needle;
		size_t hn = strlen(h), nn = strlen(n);
		CHECK(ci_find(h, hn, n, nn, tab) == t[i].want, "'%s' in '%s'", n, h);
		/* every cut into three pieces finds the same */
		for (size_t a = 0; a <= hn; a++)
			for (size_t b = a; b <= hn; b++)
				CHECK(split3(h, hn, n, nn, a, b) == t[i].want,
				      "'%s' in '%s' cut at %zu,%zu", n, h, a, b);
	}
	/* Random texts over a small alphabet: many partial matches. */
	for (int round = 0; round < 3000; round++) {
		char h[64], n[12];
		size_t hn, nn;
		seed = seed * 1103515245u + 12345u;
		hn = (seed >> 16) % sizeof(h);
		seed = seed * 1103515245u + 12345u;
		nn = 1 + (seed >> 16) % (sizeof(n) - 1);
		for (size_t i = 0; i < hn; i++) {
			seed = seed * 1103515245u + 12345u;
			h[i] = "aAbB"[(seed >> 16) % (round % 2 ? 4 : 2)];
		}
		for (size_t i = 0; i < nn; i++) {
			seed = seed * 1103515245u + 12345u;
			n[i] = "abAB"[(seed >> 16) % (round % 2 ? 4 : 2)];
		}
		int want = naive(h, hn, n, nn);
		CHECK(ci_find(h, hn, n, nn, tab) == want, "round %d", round);
		size_t a = hn ? (seed >> 8) % hn : 0;
		CHECK(split3(h, hn, n, nn, a, a + (hn - a) / 2) == want,
		      "round %d cut at %zu", round, a);
	}
	/* One byte at a time: the state carries over every boundary. */
	{
		static char big[4096];
		static const char needle[] = "aaaaaaaaaaaaaaaaaaab";
		uint32_t st = 0;
		int found = 0;
		memset(big, 'A', sizeof(big));
		big[sizeof(big) - 1] = 'B';
		ci_kmp_init(needle, sizeof(needle) - 1, tab);
		for (size_t i = 0; i < sizeof(big) && !found; i++)
			found = ci_kmp_feed(needle, sizeof(needle) - 1, tab, &st, big + i, 1);
		CHECK(found && st == sizeof(needle) - 1, "byte-wise periodic needle");
		big[sizeof(big) - 1] = 'A';
		st = 0;
		CHECK(!ci_kmp_feed(needle, sizeof(needle) - 1, tab, &st, big, sizeof(big)) &&
		      st == sizeof(needle) - 2, "no match: state %u", st);
	}
}

static const char msg1[] =
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.org\r\n"
	"Subject: quarterly\r\n"
	" report attached\r\n"
	"X-From: mallory@example.net\r\n"
	"Date: Tue, 3 Feb 2026 10:00:00 +0000\r\n"
	"Subject :spaced\r\n"
	"\r\n"
	"Hello Bob,\r\n"
	"the numbers are in.\r\n";

/* header only, no blank line */
static const char msg2[] = "Subject: short\r\nFrom: carol@example.org\r\n";
/* Comments inside an address (imaptest search-addresses, message 3). */
static const char msg3[] = "From: <user-from (comment)@ (comment)\r\n domain.org>\r\n"
	"To: Real To <x@y>\r\nSubject: a (b) c\r\n\r\nbody\r\n";

static int run(const char *prog, const char *msg, size_t cut, size_t cut2)
{
	static char buf[1024];
	static struct search_prog p;
	static struct srch_scan x;
	struct srch_msg m;
	struct ip ip;
	size_t n = strlen(msg);

	snprintf(buf, sizeof(buf), "%s", prog);
	ip_init(&ip, buf, strlen(buf));
	if (ip_search(&ip, &p) != 0)
		return -1;
	memset(&m, 0, sizeof(m));
	m.seq = m.count = 1;
	m.uid = m.star_uid = 7;
	m.size = n;
	m.internal_day = ip_days(2026, 2, 5);
	if (srch_tables(&p, tab, sizeof(tab) / sizeof(tab[0])) != 0)
		return -1;
	srch_begin(&x, &p);
	srch_feed(&x, &p, tab, msg, cut);
	srch_feed(&x, &p, tab, msg + cut, cut2 - cut);
	srch_feed(&x, &p, tab, msg + cut2, n - cut2);
	srch_end(&x, &p, tab);
	return srch_eval(&x, &p, &m);
}

static void test_programs(void)
{
	static const struct { const char *prog, *msg; int want; } t[] = {
		{ "SUBJECT quarterly", msg1, 1 },
		{ "SUBJECT \"quarterly report\"", msg1, 1 },    /* unfolded */
		{ "SUBJECT {18}\r\nquarterly\r\n report", msg1, 0 },
		{ "SUBJECT spaced", msg1, 1 },                  /* "Subject :" */
		{ "SUBJECT Hello", msg1, 0 },                   /* body is not header */
		{ "FROM mallory", msg1, 0 },                    /* X-From is not From */
		{ "HEADER x-from MALLORY", msg1, 1 },
		{ "HEADER X-From \"\"", msg1, 1 },              /* present at all */
		{ "HEADER Cc \"\"", msg1, 0 },
		{ "TO \"example.orgSubject\"", msg1, 0 },       /* not across fields */
		{ "BODY \"hello bob\"", msg1, 1 },
		{ "BODY alice", msg1, 0 },
		{ "TEXT alice", msg1, 1 },
		{ "TEXT {5}\r\nin.\r\n", msg1, 1 },
		{ "NOT BODY numbers", msg1, 0 },
		{ "NOT BODY absent", msg1, 1 },
		{ "OR BODY absent SUBJECT report", msg1, 1 },
		{ "SENTON 3-Feb-2026", msg1, 1 },
		{ "SENTBEFORE 3-Feb-2026", msg1, 0 },
		{ "ON 5-Feb-2026", msg1, 1 },
		{ "SENTON 5-Feb-2026", msg2, 1 },       /* no Date: INTERNALDATE */
		{ "SUBJECT short FROM carol", msg2, 1 },
		{ "BODY carol", msg2, 0 },              /* all header, no body */
		{ "TEXT carol", msg2, 1 },
		{ "UID 7 LARGER 10", msg1, 1 },
		{ "FROM user-from@domain.org", msg3, 1 },
		{ "FROM comment", msg3, 1 },            /* the raw value too */
		{ "HEADER from user-from@domain.org", msg3, 1 },
		{ "TO realto", msg3, 0 },               /* words stay apart */
		{ "TO \"real to <x@y>\"", msg3, 1 },
		{ "SUBJECT \"a c\"", msg3, 0 },        /* not for Subject */
		{ "KEYWORD $Junk", msg1, 0 },
		{ "UNKEYWORD $Junk", msg1, 1 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = strlen(t[i].msg);
		CHECK(run(t[i].prog, t[i].msg, 0, 0) == t[i].want, "%s", t[i].prog);
		for (size_t a = 0; a <= n; a += 1)
			for (size_t b = a; b <= n; b += 7)
				CHECK(run(t[i].prog, t[i].msg, a, b) == t[i].want,
				      "%s cut at %zu,%zu", t[i].prog, a, b);
	}
}

/* Decided before the end: a header key at the end of the header, a BODY
 * key as soon as it is found; a NOT BODY key only at the end. */
static void test_early(void)
{
	static char buf[256];
	static struct search_prog p;
	static struct srch_scan x;
	struct srch_msg m;
	struct ip ip;
	const char *body = strstr(msg1, "\r\n\r\n") + 4;
	size_t hn = (size_t)(body - msg1);

	memset(&m, 0, sizeof(m));
	m.seq = m.count = 1;
	snprintf(buf, sizeof(buf), "SUBJECT absent");
	ip_init(&ip, buf, strlen(buf));
	CHECK(ip_search(&ip, &p) == 0 && srch_tables(&p, tab, 8192) == 0, "parse");
	srch_begin(&x, &p);
	srch_feed(&x, &p, tab, msg1, hn - 1);
	CHECK(srch_eval(&x, &p, &m) == SRCH_UNKNOWN, "header not over yet");
	srch_feed(&x, &p, tab, msg1 + hn - 1, 1);
	CHECK(srch_eval(&x, &p, &m) == SRCH_NO, "decided at the blank line");

	snprintf(buf, sizeof(buf), "NOT BODY bob");
	ip_init(&ip, buf, strlen(buf));
	CHECK(ip_search(&ip, &p) == 0 && srch_tables(&p, tab, 8192) == 0, "parse");
	srch_begin(&x, &p);
	srch_feed(&x, &p, tab, msg1, hn + 3);
	CHECK(srch_eval(&x, &p, &m) == SRCH_UNKNOWN, "NOT BODY open");
	srch_feed(&x, &p, tab, msg1 + hn + 3, 8);
	CHECK(srch_eval(&x, &p, &m) == SRCH_NO, "NOT BODY decided when found");

	/* Needles longer than the table refuse. */
	CHECK(srch_tables(&p, tab, 2) == -1, "table too small");
}

void test_search(void)
{
	test_matcher();
	test_programs();
	test_early();
}
