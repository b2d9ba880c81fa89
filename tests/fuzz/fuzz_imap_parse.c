/* libFuzzer: the IMAP command grammar. Each input is one command as it
 * arrives (literals inline); it goes through every entry point the
 * server uses after the tag and verb: astrings, sequence sets (and their
 * iteration), FETCH attributes, SEARCH programs, dates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/imap_parse.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static char buf[16384];

static void load(struct ip *ip, const unsigned char *data, size_t size)
{
	memcpy(buf, data, size);
	ip_init(ip, buf, size);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct fetch_req fr;
	static struct search_prog sp;
	struct ip ip;
	const char *s;
	char *w;
	size_t n;
	uint64_t lit;
	int plus;

	if (size > sizeof(buf))
		return 0;
	ip_literal_tail((const char *)data, size, &lit, &plus);
	load(&ip, data, size);
	if (ip_tag(&ip, &s, &n) == 0 && ip_sp(&ip) == 0)
		while (!ip_done(&ip) && ip_astring(&ip, &w, &n) == 0 && ip_sp(&ip) == 0)
			;
	load(&ip, data, size);
	if (ip_seqset(&ip, &s, &n) == 0) {
		struct seq_iter it;
		uint32_t lo, hi;
		seq_iter_init(&it, s, n);
		for (int i = 0; i < 100000 && seq_next(&it, 77, &lo, &hi); i++)
			if (lo > hi)
				abort();
		seq_has(s, n, 0, 1);
		if (ip_sp(&ip) == 0)
			ip_fetch_atts(&ip, &fr);
	}
	load(&ip, data, size);
	if (ip_fetch_atts(&ip, &fr) == 0 && (fr.nsecs > IMAP_FETCH_SECS ||
					     fr.nitems > IMAP_FETCH_ITEMS))
		abort();
	load(&ip, data, size);
	if (ip_search(&ip, &sp) == 0 && sp.n > IMAP_SEARCH_NODES)
		abort();
	load(&ip, data, size);
	{
		int32_t d;
		int64_t t;
		if (ip_date(&ip, &d) != 0) {
			load(&ip, data, size);
			ip_datetime(&ip, &t);
		}
	}
	load(&ip, data, size);
	ip_list_mailbox(&ip, &w, &n);
	return 0;
}
