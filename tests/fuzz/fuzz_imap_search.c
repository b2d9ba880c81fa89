/* libFuzzer: SEARCH over a message (imap_search.c). The input is a search
 * program, a NUL, then a message. Differential: the message fed whole and
 * fed in pieces give the same answer, and a lone TEXT key is found
 * whenever memmem over the message and the needle folded to lower case
 * finds it (MIME decoding may find more). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/imap_parse.h"
#include "proto/imap_search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The oracle: both folded to lower case, then memmem. */
static int folded_find(const char *h, size_t hn, const char *n, size_t nn)
{
	static char fh[65536], fn[2048];

	for (size_t i = 0; i < hn; i++)
		fh[i] = (char)ci_fold((unsigned char)h[i]);
	for (size_t i = 0; i < nn; i++)
		fn[i] = (char)ci_fold((unsigned char)n[i]);
	return nn == 0 || memmem(fh, hn, fn, nn) != NULL;
}

static int run(const struct search_prog *p, const uint16_t *tab,
	       struct srch_scan *x, const char *msg, size_t n, size_t step)
{
	struct srch_msg m;

	memset(&m, 0, sizeof(m));
	m.seq = m.count = 1;
	m.uid = m.star_uid = 1;
	m.size = n;
	srch_begin(x, p);
	for (size_t i = 0; i < n; i += step)
		srch_feed(x, p, tab, msg + i, n - i < step ? n - i : step);
	srch_end(x, p, tab);
	return srch_eval(x, p, &m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char prog[2048];
	static struct search_prog p;
	static struct srch_scan x;
	static uint16_t tab[2048];
	const uint8_t *nul = memchr(data, 0, size);
	struct ip ip;
	size_t pl, ml;
	const char *msg;

	if (!nul || size > 65536)
		return 0;
	pl = (size_t)(nul - data);
	if (pl >= sizeof(prog))
		return 0;
	memcpy(prog, data, pl);
	msg = (const char *)nul + 1;
	ml = size - pl - 1;
	ip_init(&ip, prog, pl);
	if (ip_search(&ip, &p) != 0 || srch_tables(&p, tab, 2048) != 0)
		return 0;
	int whole = run(&p, tab, &x, msg, ml, ml ? ml : 1);
	if (whole != SRCH_YES && whole != SRCH_NO)
		__builtin_trap();
	for (size_t step = 1; step <= 13; step += 6)
		if (run(&p, tab, &x, msg, ml, step) != whole)
			__builtin_trap();
	/* A lone TEXT key: found whenever the naive search over the raw
	 * message finds it (it may also be found in the decoded text). */
	if (p.n == 2 && p.node[1].op == SK_TEXT && whole != SRCH_YES &&
	    folded_find(msg, ml, p.node[1].s2, p.node[1].s2len))
		__builtin_trap();
	return 0;
}
