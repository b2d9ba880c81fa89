/* dns_driver — runs the DNS adaptor (src/dns/dns_udns.c) in the real loop
 * against a server, for tests/proto/test_dns.py:
 *
 *   dns_driver SERVER mx|host NAME [NAME...]
 *   dns_driver SERVER drop NAME         (start, drop at once, wait 2 s)
 *   dns_driver SERVER reload NAME...    (start, then dns_start again: each
 *                                        answered once, as TEMP)
 *   dns_driver SERVER idle [NAME]       (after NAME's answer, or with no
 *                                        query, the watcher must ask for
 *                                        no wake-up: no pass serves it)
 *
 * Prints for each NAME, in the order the answers come:
 *   result NAME OK|TEMP|PERM n=N why=TEXT
 *   target NAME HOST PREF ADDR
 * and "sync-callback" if a callback ran inside dns_query_*, "done" at the
 * end. Exits 0 when every query was answered exactly once in 40 s. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "dns/dns.h"

#define MAXQ 32

static int inside_query;
static int answers[MAXQ];
static const char *names[MAXQ];

static void on_result(void *ctx, const struct dns_result *r)
{
	int i = (int)(long)ctx;
	static const char *st[] = { "OK", "TEMP", "PERM" };

	if (inside_query)
		printf("sync-callback\n");
	answers[i]++;
	printf("result %s %s n=%d why=%s\n", names[i],
	       r->status >= 0 && r->status <= 2 ? st[r->status] : "?", r->n,
	       r->why);
	for (int k = 0; k < r->n; k++) {
		char buf[64];
		const struct dns_target *t = &r->t[k];
		const void *a = t->addr.ss_family == AF_INET ?
			(const void *)&((const struct sockaddr_in *)&t->addr)->sin_addr :
			(const void *)&((const struct sockaddr_in6 *)&t->addr)->sin6_addr;
		inet_ntop(t->addr.ss_family, a, buf, sizeof(buf));
		printf("target %s %s %d %s\n", names[i], t->host, t->pref, buf);
	}
	fflush(stdout);
}

static int pending(int n)
{
	for (int i = 0; i < n; i++)
		if (answers[i] == 0)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int n = 0, rc = 0;
	int64_t end;

	if (argc < 3) {
		fprintf(stderr, "usage: dns_driver SERVER mx|host|drop|idle [NAME...]\n");
		return 64;
	}
	log_init(0);
	loop_init();
	if (dns_start(argv[1]) != 0) {
		fprintf(stderr, "dns_start failed\n");
		return 1;
	}
	if (strcmp(argv[2], "idle") == 0) {
		int served = 0;
		if (argc > 3) {
			names[0] = argv[3];
			n = 1;
			if (dns_query_mx(argv[3], on_result, (void *)0) != 0)
				return 1;
			end = now_ms() + 40000;
			while (pending(n) && now_ms() < end)
				loop_step(1000);
		}
		/* Nothing pending: no deadline, so no pass serves anything. */
		for (int i = 0; i < 3; i++)
			served += loop_step(100);
		printf("idle served=%d\n", served);
		dns_stop();
		printf("done\n");
		return served == 0 && !pending(n) ? 0 : 1;
	}
	for (int i = 3; i < argc && n < MAXQ; i++, n++) {
		int q;
		names[n] = argv[i];
		inside_query = 1;
		if (strcmp(argv[2], "host") == 0)
			q = dns_query_host(argv[i], on_result, (void *)(long)n);
		else
			q = dns_query_mx(argv[i], on_result, (void *)(long)n);
		inside_query = 0;
		if (q != 0) {
			printf("refused %s\n", argv[i]);
			answers[n] = 1;
		}
	}
	if (strcmp(argv[2], "reload") == 0 && dns_start(argv[1]) != 0) {
		fprintf(stderr, "dns_start again failed\n");
		return 1;
	}
	if (strcmp(argv[2], "drop") == 0) {
		for (int i = 0; i < n; i++)
			dns_drop((void *)(long)i);
		end = now_ms() + 2000;
		while (now_ms() < end)
			loop_step(100);
		for (int i = 0; i < n; i++)
			if (answers[i])
				rc = 1;
		printf("dropped %s\n", rc ? "but answered" : "quietly");
		dns_stop();
		printf("done\n");
		return rc;
	}
	end = now_ms() + 40000;
	while (pending(n) && now_ms() < end)
		loop_step(1000);
	/* A late second answer would show up here. */
	end = now_ms() + 300;
	while (now_ms() < end)
		loop_step(100);
	for (int i = 0; i < n; i++)
		if (answers[i] != 1) {
			printf("answered %s %d times\n", names[i], answers[i]);
			rc = 1;
		}
	dns_stop();
	log_flush();
	printf("done\n");
	return rc;
}
