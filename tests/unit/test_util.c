/* util and line reader cases. */
#include <string.h>

#include "core/b64.h"
#include "core/conn.h"
#include "core/util.h"
#include "unit.h"

void test_util(void)
{
	static const struct { const char *in; int ok; uint64_t want; } sizes[] = {
		{ "10M", 0, 10u << 20 }, { "512k", 0, 512u << 10 }, { "1G", 0, 1u << 30 },
		{ "100", 0, 100 }, { "", -1, 0 }, { "M", -1, 0 }, { "-1", -1, 0 },
		{ "12x", -1, 0 }, { "99999999999999999999", -1, 0 },
		{ "18014398509481984k", -1, 0 }, /* 2^54 KiB overflows */
	};
	static const struct { const char *in; int ok; uint64_t want; } durs[] = {
		{ "5d", 0, 432000 }, { "30m", 0, 1800 }, { "45s", 0, 45 }, { "2h", 0, 7200 },
		{ "90", 0, 90 }, { "1w", 0, 604800 }, { "d", -1, 0 }, { "1.5h", -1, 0 },
		{ "3650d", 0, 315360000 }, { "3651d", -1, 0 }, { "522w", -1, 0 },
		{ "106751991167301d", -1, 0 }, /* overflowed now + lifetime in ms */
	};
	char buf[64];
	uint64_t v;

	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		v = 0;
		int rc = parse_size(sizes[i].in, &v);
		CHECK(rc == sizes[i].ok && (rc != 0 || v == sizes[i].want),
		      "parse_size(%s) = %d, %llu", sizes[i].in, rc, (unsigned long long)v);
	}
	for (size_t i = 0; i < ARRAY_LEN(durs); i++) {
		v = 0;
		int rc = parse_duration(durs[i].in, &v);
		CHECK(rc == durs[i].ok && (rc != 0 || v == durs[i].want),
		      "parse_duration(%s) = %d, %llu", durs[i].in, rc, (unsigned long long)v);
	}
	CHECK(parse_u64("65535", 65535, &v) == 0 && v == 65535, "u64 max");
	CHECK(parse_u64("65536", 65535, &v) != 0, "u64 over max");
	CHECK(parse_u64("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX,
	      "u64 2^64-1");
	CHECK(parse_u64("18446744073709551616", UINT64_MAX, &v) != 0, "u64 2^64");
	CHECK(parse_u64("184467440737095516150", UINT64_MAX, &v) != 0, "u64 10 * 2^64");
	CHECK(str_copy(buf, 4, "abcdef", 6) == -1 && strcmp(buf, "abc") == 0, "str_copy cut");
	CHECK(str_copy(buf, 8, "ab\0cd", 5) == 0 && strcmp(buf, "ab") == 0, "str_copy NUL");
	CHECK(str_ieq("HeLLo", 5, "hello") && !str_ieq("hell", 4, "hello") &&
	      !str_ieq("hello!", 6, "hello"), "str_ieq");
	str_printable(buf, sizeof(buf), "a\r\n\x01\xff" "b", 6);
	CHECK(strcmp(buf, "a\\x0d\\x0a\\x01\\xffb") == 0, "printable: %s", buf);
	str_printable(buf, 16, "0123456789abcdefghijkl", 22);
	CHECK(strlen(buf) < 16 && strstr(buf, "...") != NULL, "printable cut: %s", buf);
}

/* Feeds text into a linebuf the way conn does and collects the events. */
static void lb_run(const char *in, size_t inlen, size_t cap, size_t max,
		   char *out, size_t outn)
{
	char store[64];
	struct linebuf lb = { .buf = store, .cap = cap };
	size_t o = 0, i = 0;

	out[0] = '\0';
	while (i < inlen || lb.off < lb.len) {
		char *line = NULL;
		size_t len = 0;
		int crlf = 0, rc;
		size_t room = lb_compact(&lb);
		size_t take = inlen - i < room ? inlen - i : room;

		memcpy(lb.buf + lb.len, in + i, take);
		lb.len += take;
		i += take;
		while ((rc = lb_next(&lb, max, &line, &len, &crlf)) != LB_NEED)
			o += (size_t)snprintf(out + o, outn - o, rc == LB_LINE ?
					      "[%.*s%s]" : "<long>", (int)len, line,
					      crlf ? "" : "/lf");
		if (take == 0 && rc == LB_NEED)
			break;
	}
}

void test_linebuf(void)
{
	static const struct { const char *in; size_t cap, max; const char *want; } t[] = {
		{ "HELO a\r\nNOOP\r\n", 32, 16, "[HELO a][NOOP]" },
		{ "bare\nlf\r\n", 32, 16, "[bare/lf][lf]" },
		{ "partial", 32, 16, "" },
		{ "0123456789abcdefXYZ\r\nok\r\n", 32, 16, "<long>[ok]" },
		/* longer than the whole buffer: skipped to the LF, then resumes */
		{ "0123456789012345678901234567890123456789\r\nNOOP\r\n", 16, 10, "<long>[NOOP]" },
		{ "exactly16bytes!!\r\n", 32, 16, "[exactly16bytes!!]" },
		{ "\r\n\n", 32, 16, "[][/lf]" },
	};
	char out[256];

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		lb_run(t[i].in, strlen(t[i].in), t[i].cap, t[i].max, out, sizeof(out));
		CHECK(strcmp(out, t[i].want) == 0, "case %zu: got %s want %s", i, out,
		      t[i].want);
	}
}

struct pem_seen {
	int n, refuse_at;
	char labels[128];
	unsigned char der[64];
	size_t der_len;
};

static int pem_collect(void *ctx, const char *label, const unsigned char *der, size_t len)
{
	struct pem_seen *p = ctx;
	size_t l = strlen(p->labels);

	if (++p->n == p->refuse_at)
		return -1;
	if (!der) {
		snprintf(p->labels + l, sizeof(p->labels) - l, "%s[bad];", label);
		return len != 0;
	}
	snprintf(p->labels + l, sizeof(p->labels) - l, "%s[%zu];", label, len);
	if (len <= sizeof(p->der) - p->der_len) {
		memcpy(p->der + p->der_len, der, len);
		p->der_len += len;
	}
	return 0;
}

void test_pem(void)
{
	char long_label[200], text[512];
	static const struct {
		const char *in;
		size_t cap;
		int refuse_at, want;
		const char *labels, *der;
	} t[] = {
		/* comments around, CRLF, trailing blanks, a body split oddly */
		{ "# CA one\n-----BEGIN CERTIFICATE-----\r\nYWJj\r\nZGVm \r\n"
		  "-----END CERTIFICATE-----\r\ntext\n-----BEGIN EC PRIVATE KEY-----\n"
		  "e\tH\n0=\n-----END EC PRIVATE KEY-----", 64, 0, 2,
		  "CERTIFICATE[6];EC PRIVATE KEY[2];", "abcdefx}" },
		{ "-----BEGIN X-----\n-----END X-----\n", 64, 0, 1, "X[0];", "" },
		/* END without BEGIN is skipped; an object left open is damaged */
		{ "-----END X-----\n-----BEGIN A-----\nYQ==\n-----END A-----\n"
		  "-----BEGIN B-----\nYmI=\n", 64, 0, 2, "A[1];B[bad];", "a" },
		{ "-----BEGIN A-----\nY!==\n-----END A-----\n", 64, 0, 1, "A[bad];", "" },
		{ "-----BEGIN A-----\nYWJ\n-----END A-----\n", 64, 0, 1, "A[bad];", "" },
		/* a BEGIN inside an object: that one was cut short */
		{ "-----BEGIN A-----\n-----BEGIN B-----\nYQ==\n-----END B-----\n",
		  64, 0, 2, "A[bad];B[1];", "a" },
		{ "-----BEGIN A-----\nYWJjZGVm\n-----END A-----\n", 7, 0, 1, "A[bad];", "" },
		{ "-----BEGIN A-----\nYWJjZGVm\n-----END A-----\n", 8, 0, 1, "A[6];", "abcdef" },
		{ "-----BEGIN A-----\nYQ==\n-----END A-----\n-----BEGIN B-----\nYQ==\n"
		  "-----END B-----\n", 64, 2, -1, "A[1];", "a" },
		{ "-----BEGIN-----\nYQ==\n-----END-----\n----BEGIN A-----\n", 64, 0, 0, "", "" },
	};

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		struct pem_seen p = { .refuse_at = t[i].refuse_at };
		unsigned char scratch[64];
		int n = pem_each(t[i].in, strlen(t[i].in), scratch, t[i].cap, pem_collect, &p);

		CHECK(n == t[i].want, "pem case %zu: got %d want %d", i, n, t[i].want);
		CHECK(strcmp(p.labels, t[i].labels) == 0, "pem case %zu: labels %s want %s", i,
		      p.labels, t[i].labels);
		CHECK(p.der_len == strlen(t[i].der) && memcmp(p.der, t[i].der, p.der_len) == 0,
		      "pem case %zu: wrong bytes", i);
	}
	/* Labels up to PEM_LABEL_MAX bytes, not one more. */
	for (int extra = 0; extra <= 1; extra++) {
		struct pem_seen p = { 0 };
		unsigned char scratch[16];
		size_t k = PEM_LABEL_MAX + (size_t)extra;

		memset(long_label, 'L', k);
		long_label[k] = '\0';
		snprintf(text, sizeof(text), "-----BEGIN %s-----\nYQ==\n-----END %s-----\n",
			 long_label, long_label);
		CHECK(pem_each(text, strlen(text), scratch, sizeof(scratch), pem_collect, &p) ==
		      (extra ? -1 : 1), "pem label of %zu bytes", k);
	}
}
