/* libFuzzer: DNS answers for relaying (dns/dns_udns: udns parses, postie
 * picks MX hosts, orders them, drops null MX, looks up addresses and
 * assembles the targets). The fuzzer is the DNS server on 127.0.0.1: the
 * input is a list of answers, each [u16 length LE][flags 2][an, ns, ar
 * counts 2 each][answer records...]; each query that arrives (the MX
 * lookup of dest.lan, then the exchangers' addresses) gets the query's ID
 * and question and the next answer; when the list is used up, SERVFAIL.
 * The callback must come exactly once, with a status of OK, TEMP or PERM,
 * at most DNS_MAX_TARGETS targets, at least one when OK, each an IPv4 or
 * IPv6 address of the right length with a NUL-terminated name. */
#include "session.h"
#include <arpa/inet.h>
#include "dns/dns.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int sfd = -1, calls;
static char server[64];

static void on_result(void *ctx, const struct dns_result *r)
{
	(void)ctx;
	calls++;
	if (r->status != DNS_OK && r->status != DNS_TEMP && r->status != DNS_PERM)
		abort();
	if (r->n < 0 || r->n > DNS_MAX_TARGETS || (r->status == DNS_OK && r->n == 0) ||
	    !memchr(r->why, '\0', sizeof(r->why)))
		abort();
	for (int i = 0; i < r->n; i++) {
		const struct dns_target *t = &r->t[i];
		if (!memchr(t->host, '\0', sizeof(t->host)))
			abort();
		if (!(t->addr.ss_family == AF_INET && t->len == sizeof(struct sockaddr_in)) &&
		    !(t->addr.ss_family == AF_INET6 && t->len == sizeof(struct sockaddr_in6)))
			abort();
	}
}

static void setup(void)
{
	int port;

	sfd = fz_loopback_socket(SOCK_DGRAM, &port);
	fz_setup_with("dns", "smtp 127.0.0.1:1", "");
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	if (dns_start(server) != 0)
		abort();
}

/* Answers one query in q[0..ql) with the next chunk of the input (or
 * SERVFAIL when none is left). */
static void answer(int fd, const unsigned char *q, size_t ql,
		   const struct sockaddr_in *to, const unsigned char **in,
		   const unsigned char *end)
{
	unsigned char out[1500];
	size_t qend = 12, n;
	const unsigned char *c = NULL;
	size_t cl = 0;

	if (ql < 12)
		return;
	while (qend < ql && q[qend] != 0)
		qend += 1 + q[qend];
	qend += 5;              /* the root label, QTYPE, QCLASS */
	if (qend > ql)
		return;
	if (end - *in >= 2) {
		cl = (size_t)((*in)[0] | (*in)[1] << 8);
		c = *in + 2;
		if (cl > (size_t)(end - c))
			cl = (size_t)(end - c);
		*in = c + cl;
	}
	memcpy(out, q, qend);
	out[2] = 0x81;          /* QR, RD */
	out[3] = 0x82;          /* RA, SERVFAIL */
	memset(out + 6, 0, 6);
	n = qend;
	if (c && cl >= 8) {
		out[2] = (unsigned char)(c[0] | 0x80);
		out[3] = c[1];
		memcpy(out + 6, c + 2, 6);
		if (cl - 8 > sizeof(out) - n)
			cl = sizeof(out) - n + 8;
		memcpy(out + n, c + 8, cl - 8);
		n += cl - 8;
	}
	sendto(fd, out, n, 0, (const struct sockaddr *)to, sizeof(*to));
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const unsigned char *in = data, *end = data + size;
	unsigned char q[1500];
	static int ctx;

	if (sfd < 0)
		setup();
	if (size > 8192)
		return 0;
	calls = 0;
	if (dns_query_mx("dest.lan", on_result, &ctx) != 0)
		abort();        /* every lookup of the last input has ended */
	for (int step = 0; step < 3000 && calls == 0; step++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t ql = recvfrom(sfd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);

		if (ql > 0)
			answer(sfd, q, (size_t)ql, &from, &in, end);
		loop_step(0);
	}
	if (calls == 0) {
		/* udns ignored an answer and would retry later: start over
		 * (dns_stop frees its queries, no callback comes) */
		dns_stop();
		if (dns_start(server) != 0)
			abort();
	}
	if (calls > 1)
		abort();
	return 0;
}
