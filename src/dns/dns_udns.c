/* dns_udns — the udns resolver as one loop watcher (see dns.h).
 *
 * Owns the default udns context, its UDP socket (one watcher: POLLIN
 * feeds dns_ioevent, the deadline is udns's next retransmission, 0 when
 * nothing is pending so an idle daemon never wakes up) and a fixed pool
 * of DNS_MAX_QUERIES lookups. A lookup is one MX query, then the A (and
 * AAAA with CONFIG_IPV6) queries of up to DNS_MAX_TARGETS exchangers, all
 * in flight at once. Results reach the caller only from the watcher's
 * handlers, after udns has returned, never from inside dns_query_*.
 *
 * Limits: names of at most 255 bytes of letters, digits, '-', '_' and
 * '.'; other names in answers are ignored. No allocation here beyond what
 * udns does per query (its query records and answers, freed on return).
 *
 * Cancel: udns 0.4's dns_cancel() unlinks a query without freeing it, and
 * later versions may free it; rather than guess, a cancelled lookup keeps
 * its pool slot until its udns queries come back (or time out, at most
 * about half a minute) and its caller is simply forgotten. */
#include "dns/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <udns.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/util.h"

#define DNS_NAME_MAX 255
/* Per exchanger when there are several, so that one host with many
 * addresses cannot crowd the backups out of the list. */
#define DNS_ADDRS_PER_MX (DNS_MAX_TARGETS / 2)

enum { LK_FREE, LK_MX, LK_ADDR, LK_DONE };

struct lookup;

struct mxhost {
	struct lookup *lk;
	char name[DNS_NAME_MAX + 1];
	int pref;
	int n4, n6;
	unsigned char a4[DNS_MAX_TARGETS][4];
	unsigned char a6[DNS_MAX_TARGETS][16];
	int temp;               /* an address query failed for now */
};

struct lookup {
	int state;
	int cancelled;          /* owner gone: finish silently */
	int pending;            /* udns queries in flight */
	int is_host;            /* dns_query_host, not MX */
	dns_fn fn;
	void *ctx;
	char domain[DNS_NAME_MAX + 1];
	int nmx;
	struct mxhost mx[DNS_MAX_TARGETS];
	unsigned rx0;           /* rx_count when it started */
	int64_t started;        /* now_ms() then */
	int no_server;          /* answered without asking a server */
	int local;              /* failed before asking any server */
	/* Set when state becomes LK_DONE without address lookups. */
	int status;
	char why[128];
};

static struct lookup pool[DNS_MAX_QUERIES];
static struct watcher w = { .fd = -1, .slot = -1 };
static int started;
static int can_open;            /* a server to talk to is known */
static int any_done;            /* some lookup waits in LK_DONE */
static int64_t udns_deadline;   /* from the udns timer callback */
static struct dns_result scratch;       /* valid during one callback */
static unsigned rnd_state;
/* Datagrams seen from the servers: a lookup that fails temporarily with
 * none seen since it started failed here (no server answered), not at
 * the destination's DNS. */
static unsigned rx_count;
/* When a lookup last ended with a server's real answer (found, or no such
 * name). A temporary failure while nothing at all has resolved for
 * DNS_HEALTH_MS is the resolver's trouble (a router's dnsmasq refusing
 * everything while the WAN is down), not the destination's. */
#define DNS_HEALTH_MS 60000
static int64_t last_answer_ms;

/* udns wants seconds; it uses time(NULL) when given 0, so the monotonic
 * clock is offset to keep it away from 0. */
#define UDNS_EPOCH 1000000

static time_t udns_now(void)
{
	return (time_t)(now_ms() / 1000 + UDNS_EPOCH);
}

static unsigned rnd(void)
{
	/* xorshift: only for shuffling MX hosts of equal preference. */
	if (!rnd_state)
		rnd_state = (unsigned)now_ms() * 2654435761u + 1;
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

static int valid_name(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 && i + 1 != len)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

/* The watcher's deadline: now when a finished lookup waits to be
 * reported, else udns's own, else none. */
static void arm(void)
{
	if (any_done)
		w.deadline = now_ms() > 0 ? now_ms() : 1;
	else
		w.deadline = udns_deadline;
}

/* udns counts in whole seconds of udns_now(): a deadline t seconds away
 * is the start of that second on the monotonic clock, when udns will
 * find it expired. */
static void set_udns_deadline(int t)
{
	int64_t d;

	if (t < 0) {
		udns_deadline = 0;
		return;
	}
	d = ((int64_t)udns_now() - UDNS_EPOCH + t) * 1000;
	udns_deadline = d > 0 ? d : 1;
}

static void on_udns_timer(struct dns_ctx *c, int timeout, void *data)
{
	(void)c;
	(void)data;
	set_udns_deadline(timeout);
	arm();
}

static void finish(struct lookup *lk, int status, const char *why)
{
	lk->state = LK_DONE;
	lk->status = status;
	snprintf(lk->why, sizeof(lk->why), "%s", why);
	any_done = 1;
}

static void add_target(struct dns_result *r, const struct mxhost *m,
		       int family, const unsigned char *a)
{
	struct dns_target *t;

	if (r->n >= DNS_MAX_TARGETS)
		return;
	t = &r->t[r->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", m->name);
	t->pref = m->pref;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a, 4);
		t->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a, 16);
		t->len = sizeof(*sin6);
	}
}

/* All address queries are back: the result in preference order, IPv4
 * before IPv6 for each host (a router's IPv6 is the likelier to be
 * broken, and a failed connect costs a whole timeout). */
static void assemble(struct lookup *lk, struct dns_result *r)
{
	int per = lk->nmx > 1 ? DNS_ADDRS_PER_MX : DNS_MAX_TARGETS;
	int temp = 0;

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < lk->nmx; i++) {
		const struct mxhost *m = &lk->mx[i];
		int k = 0;
		for (int j = 0; j < m->n4 && k < per; j++, k++)
			add_target(r, m, AF_INET, m->a4[j]);
		for (int j = 0; j < m->n6 && k < per; j++, k++)
			add_target(r, m, AF_INET6, m->a6[j]);
		temp |= m->temp;
	}
	/* Room left: the addresses cut by the per-host share. */
	for (int i = 0; i < lk->nmx && r->n < DNS_MAX_TARGETS; i++) {
		const struct mxhost *m = &lk->mx[i];
		int k = 0;
		for (int j = 0; j < m->n4; j++, k++)
			if (k >= per)
				add_target(r, m, AF_INET, m->a4[j]);
		for (int j = 0; j < m->n6; j++, k++)
			if (k >= per)
				add_target(r, m, AF_INET6, m->a6[j]);
	}
	if (r->n > 0) {
		r->status = DNS_OK;
		snprintf(r->why, sizeof(r->why), "%d address%s", r->n,
			 r->n == 1 ? "" : "es");
	} else if (temp) {
		r->status = DNS_TEMP;
		snprintf(r->why, sizeof(r->why), "%.80s: address lookup failed "
			 "for now", lk->domain);
	} else {
		r->status = DNS_PERM;
		snprintf(r->why, sizeof(r->why), "%.80s: no address for %s",
			 lk->domain, lk->is_host ? "host" : "its mail exchangers");
	}
}

static void query_done(struct lookup *lk)
{
	if (--lk->pending > 0)
		return;
	if (lk->cancelled) {
		lk->state = LK_FREE;
		return;
	}
	lk->state = LK_DONE;
	lk->status = -1;        /* from the addresses */
	any_done = 1;
}

static void on_a4(struct dns_ctx *c, struct dns_rr_a4 *rr, void *data)
{
	struct mxhost *m = data;

	if (!rr) {
		int st = dns_status(c);
		if (st != DNS_E_NXDOMAIN && st != DNS_E_NODATA)
			m->temp = 1;
	} else {
		/* A table of addresses: n4 < its size, checked each time. */
		for (int i = 0; i < rr->dnsa4_nrr && m->n4 < DNS_MAX_TARGETS; i++) {
			memcpy(m->a4[m->n4], &rr->dnsa4_addr[i], 4);
			m->n4++;
		}
		free(rr);
	}
	query_done(m->lk);
}

static void on_a6(struct dns_ctx *c, struct dns_rr_a6 *rr, void *data)
{
	struct mxhost *m = data;

	if (!rr) {
		int st = dns_status(c);
		if (st != DNS_E_NXDOMAIN && st != DNS_E_NODATA)
			m->temp = 1;
	} else {
		for (int i = 0; i < rr->dnsa6_nrr && m->n6 < DNS_MAX_TARGETS; i++) {
			memcpy(m->a6[m->n6], &rr->dnsa6_addr[i], 16);
			m->n6++;
		}
		free(rr);
	}
	query_done(m->lk);
}

static void submit_addrs(struct lookup *lk)
{
	lk->state = LK_ADDR;
	for (int i = 0; i < lk->nmx; i++) {
		struct mxhost *m = &lk->mx[i];
		m->lk = lk;
		if (dns_submit_a4(&dns_defctx, m->name, DNS_NOSRCH, on_a4, m))
			lk->pending++;
		else
			m->temp = 1;
		if (!CONFIG_IPV6)
			continue;
		if (dns_submit_a6(&dns_defctx, m->name, DNS_NOSRCH, on_a6, m))
			lk->pending++;
		else
			m->temp = 1;
	}
	if (lk->pending == 0) {
		lk->pending = 1;
		query_done(lk);
	}
}

/* Sorts by preference (insertion sort: at most DNS_MAX_TARGETS), equal
 * preferences in random order (RFC 5321 5.1). */
static void sort_mx(struct lookup *lk, const int *key)
{
	struct mxhost tmp;
	int k[DNS_MAX_TARGETS], kt;

	memcpy(k, key, sizeof(k));
	for (int i = 1; i < lk->nmx; i++) {
		for (int j = i; j > 0; j--) {
			if (lk->mx[j - 1].pref < lk->mx[j].pref ||
			    (lk->mx[j - 1].pref == lk->mx[j].pref &&
			     k[j - 1] <= k[j]))
				break;
			tmp = lk->mx[j];
			lk->mx[j] = lk->mx[j - 1];
			lk->mx[j - 1] = tmp;
			kt = k[j];
			k[j] = k[j - 1];
			k[j - 1] = kt;
		}
	}
}

static int have_mx(const struct lookup *lk, const char *name)
{
	for (int i = 0; i < lk->nmx; i++)
		if (strcasecmp(lk->mx[i].name, name) == 0)
			return 1;
	return 0;
}

/* Keeps the DNS_MAX_TARGETS best usable exchangers. */
static void take_mx(struct lookup *lk, const struct dns_rr_mx *rr)
{
	int key[DNS_MAX_TARGETS] = { 0 };

	for (int i = 0; i < rr->dnsmx_nrr; i++) {
		const struct dns_mx *mx = &rr->dnsmx_mx[i];
		int worst = 0;
		if (!mx->name || !valid_name(mx->name) || mx->priority < 0 ||
		    mx->priority > 65535 || have_mx(lk, mx->name))
			continue;
		if (lk->nmx == DNS_MAX_TARGETS) {
			for (int j = 1; j < lk->nmx; j++)
				if (lk->mx[j].pref > lk->mx[worst].pref)
					worst = j;
			if (lk->mx[worst].pref <= mx->priority)
				continue;
		} else {
			worst = lk->nmx++;
		}
		memset(&lk->mx[worst], 0, sizeof(lk->mx[worst]));
		snprintf(lk->mx[worst].name, sizeof(lk->mx[worst].name), "%s",
			 mx->name);
		lk->mx[worst].pref = mx->priority;
		key[worst] = (int)(rnd() & 0x7fffffff);
	}
	sort_mx(lk, key);
}

static int is_null_mx(const struct dns_rr_mx *rr)
{
	for (int i = 0; i < rr->dnsmx_nrr; i++) {
		const char *n = rr->dnsmx_mx[i].name;
		if (n && (n[0] == '\0' || strcmp(n, ".") == 0))
			return 1;
	}
	return 0;
}

static void on_mx(struct dns_ctx *c, struct dns_rr_mx *rr, void *data)
{
	struct lookup *lk = data;
	char why[128];

	lk->pending--;
	if (lk->cancelled) {
		free(rr);
		lk->state = LK_FREE;
		return;
	}
	if (!rr) {
		int st = dns_status(c);
		if (st == DNS_E_NXDOMAIN) {
			snprintf(why, sizeof(why), "%.80s: no such domain", lk->domain);
			finish(lk, DNS_PERM, why);
		} else if (st == DNS_E_NODATA) {
			/* No MX: the domain itself (implicit MX, RFC 5321 5.1). */
			lk->nmx = 1;
			memset(&lk->mx[0], 0, sizeof(lk->mx[0]));
			snprintf(lk->mx[0].name, sizeof(lk->mx[0].name), "%s",
				 lk->domain);
			submit_addrs(lk);
		} else {
			snprintf(why, sizeof(why), "%.60s: MX lookup failed for now (%.36s)",
				 lk->domain, dns_strerror(st));
			finish(lk, DNS_TEMP, why);
		}
		return;
	}
	if (is_null_mx(rr)) {
		snprintf(why, sizeof(why), "%.80s: domain does not accept mail "
			 "(null MX)", lk->domain);
		finish(lk, DNS_PERM, why);
	} else {
		take_mx(lk, rr);
		if (lk->nmx == 0) {
			snprintf(why, sizeof(why), "%.80s: no usable MX record",
				 lk->domain);
			finish(lk, DNS_PERM, why);
		} else {
			submit_addrs(lk);
		}
	}
	free(rr);
}

/* Reports finished lookups; a callback may start or cancel lookups. */
static void report(void)
{
	any_done = 0;
	for (int i = 0; i < DNS_MAX_QUERIES; i++) {
		struct lookup *lk = &pool[i];
		dns_fn fn;
		void *ctx;

		if (lk->state != LK_DONE)
			continue;
		if (lk->status < 0) {
			assemble(lk, &scratch);
		} else {
			memset(&scratch, 0, sizeof(scratch));
			scratch.status = lk->status;
			memcpy(scratch.why, lk->why, sizeof(scratch.why));
		}
		if (scratch.status != DNS_TEMP && !lk->no_server)
			last_answer_ms = now_ms();
		scratch.local = scratch.status == DNS_TEMP &&
				(lk->local || rx_count == lk->rx0 || !last_answer_ms ||
				 last_answer_ms < lk->started - DNS_HEALTH_MS);
		if (scratch.local && !lk->local && rx_count == lk->rx0)
			snprintf(scratch.why, sizeof(scratch.why), "%.80s: no "
				 "answer from the DNS server", lk->domain);
		else if (scratch.local && !lk->local)
			snprintf(scratch.why, sizeof(scratch.why), "%.50s: failed, "
				 "and no name resolved lately (no upstream DNS?)",
				 lk->domain);
		fn = lk->fn;
		ctx = lk->ctx;
		lk->state = LK_FREE;
		if (!lk->cancelled)
			fn(ctx, &scratch);
	}
}

static void on_io(struct watcher *wt, short revents)
{
	(void)wt;
	if (revents & POLLIN)
		rx_count++;
	dns_ioevent(&dns_defctx, udns_now());
	report();
	arm();
}

static void on_timeout(struct watcher *wt)
{
	(void)wt;
	if (dns_sock(&dns_defctx) >= 0)
		set_udns_deadline(dns_timeouts(&dns_defctx, -1, udns_now()));
	report();
	arm();
}

static int open_socket(void)
{
	int fd = dns_open(&dns_defctx);

	if (fd < 0) {
		log_msg(LOGL_WARN, "dns: cannot open a socket; lookups fail "
			"for now");
		return -1;
	}
	w.fd = fd;
	w.events = POLLIN;
	dns_set_tmcbck(&dns_defctx, on_udns_timer, NULL);
	return 0;
}

/* "ADDR", "ADDR:PORT", "V6", "[V6]" or "[V6]:PORT"; port 53 by default. */
static int parse_server(const char *s, struct net_addr *a)
{
	char buf[NET_ADDRSTR + 8];
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	size_t len = strlen(s);

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(53);
		a->len = sizeof(*sin);
		return 0;
	}
	if (CONFIG_IPV6 && inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(53);
		a->len = sizeof(*sin6);
		return 0;
	}
	if (len > 2 && len < NET_ADDRSTR && s[0] == '[' && s[len - 1] == ']') {
		snprintf(buf, sizeof(buf), "%s:53", s);
		return net_parse_hostport(buf, a) == 0 ? 0 : -1;
	}
	return net_parse_hostport(s, a) == 0 ? 0 : -1;
}

int dns_start(const char *server)
{
	struct net_addr a;

	if (started) {
		/* A reload (new dns_server or resolv.conf): lookups in flight
		 * end as temporary failures, reported from the loop. */
		for (int i = 0; i < DNS_MAX_QUERIES; i++) {
			struct lookup *lk = &pool[i];
			if (lk->state != LK_MX && lk->state != LK_ADDR)
				continue;
			lk->pending = 0;
			if (lk->cancelled)
				lk->state = LK_FREE;
			else
				finish(lk, DNS_TEMP, "DNS configuration reloaded");
			lk->local = 1;
		}
		loop_del(&w);
		dns_reset(&dns_defctx);         /* frees udns's queries */
		started = 0;
	} else {
		memset(pool, 0, sizeof(pool));
		any_done = 0;
	}
	udns_deadline = 0;
	can_open = 1;
	if (server && server[0]) {
		/* Only this server: no resolv.conf, no environment. */
		dns_reset(&dns_defctx);
		if (parse_server(server, &a) == 0) {
			dns_add_serv_s(&dns_defctx, (struct sockaddr *)&a.ss);
		} else {
			log_msg(LOGL_ERR, "dns: dns_server '%s' is not ADDR[:PORT]; "
				"lookups fail for now", server);
			can_open = 0;
		}
	} else {
		dns_init(&dns_defctx, 0);
	}
	dns_set_opt(&dns_defctx, DNS_OPT_FLAGS, DNS_NOSRCH);
	w.fd = -1;
	w.events = 0;
	w.deadline = 0;
	w.on_io = on_io;
	w.on_timeout = on_timeout;
	if (loop_add(&w) != 0) {
		log_msg(LOGL_ERR, "dns: no loop slot (LOOP_MAX_WATCHERS)");
		return -1;
	}
	started = 1;
	if (can_open)
		open_socket();
	arm();
	return 0;
}

void dns_stop(void)
{
	if (!started)
		return;
	loop_del(&w);
	/* Frees every udns query without calling back. */
	dns_reset(&dns_defctx);
	memset(pool, 0, sizeof(pool));
	w.fd = -1;
	any_done = 0;
	udns_deadline = 0;
	started = 0;
}

/* "1.2.3.4", "[1.2.3.4]", "::1", "[::1]", "[IPv6:::1]": no lookup. */
static int literal(struct lookup *lk, const char *s)
{
	char buf[NET_ADDRSTR];
	size_t len = strlen(s);
	struct mxhost *m = &lk->mx[0];

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
		if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0)
			s += 5, len -= 5;
	}
	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, m->a4[0]) == 1) {
		m->n4 = 1;
	} else if (inet_pton(AF_INET6, buf, m->a6[0]) == 1) {
		if (!CONFIG_IPV6) {
			finish(lk, DNS_PERM, "IPv6 is not in this build");
			return 1;
		}
		m->n6 = 1;
	} else {
		return 0;
	}
	snprintf(m->name, sizeof(m->name), "%s", buf);
	lk->nmx = 1;
	lk->state = LK_DONE;
	lk->status = -1;        /* assemble() makes the one target */
	any_done = 1;
	return 1;
}

static int start(const char *name, dns_fn fn, void *ctx, int is_host)
{
	struct lookup *lk = NULL;
	size_t len;

	if (!started || !fn || !name)
		return -1;
	for (int i = 0; i < DNS_MAX_QUERIES && !lk; i++)
		if (pool[i].state == LK_FREE)
			lk = &pool[i];
	if (!lk) {
		log_msg(LOGL_WARN, "dns: %d lookups in flight, none free",
			DNS_MAX_QUERIES);
		return -1;
	}
	memset(lk, 0, sizeof(*lk));
	lk->fn = fn;
	lk->ctx = ctx;
	lk->is_host = is_host;
	lk->rx0 = rx_count;
	lk->started = now_ms();
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;          /* names are always absolute here */
	str_copy(lk->domain, sizeof(lk->domain), name,
		 len > DNS_NAME_MAX ? DNS_NAME_MAX : len);
	if (literal(lk, lk->domain)) {
		/* reported from the loop like any answer */
		lk->no_server = 1;
	} else if (len > DNS_NAME_MAX || !valid_name(lk->domain)) {
		finish(lk, DNS_PERM, "not a valid domain name");
		lk->no_server = 1;
	} else if (dns_sock(&dns_defctx) < 0 && !can_open) {
		finish(lk, DNS_TEMP, "no usable dns_server");
		lk->local = 1;
	} else if (dns_sock(&dns_defctx) < 0 && open_socket() != 0) {
		finish(lk, DNS_TEMP, "cannot open a DNS socket");
		lk->local = 1;
	} else if (is_host) {
		lk->nmx = 1;
		str_copy(lk->mx[0].name, sizeof(lk->mx[0].name), lk->domain,
			 strlen(lk->domain));
		submit_addrs(lk);
	} else if (dns_submit_mx(&dns_defctx, lk->domain, DNS_NOSRCH, on_mx, lk)) {
		lk->state = LK_MX;
		lk->pending = 1;
	} else {
		finish(lk, DNS_TEMP, "cannot start the MX query");
		lk->local = 1;
	}
	arm();
	return 0;
}

int dns_query_mx(const char *domain, dns_fn fn, void *ctx)
{
	return start(domain, fn, ctx, 0);
}

int dns_query_host(const char *host, dns_fn fn, void *ctx)
{
	return start(host, fn, ctx, 1);
}

void dns_drop(void *ctx)
{
	for (int i = 0; i < DNS_MAX_QUERIES; i++) {
		struct lookup *lk = &pool[i];
		if (lk->state == LK_FREE || lk->ctx != ctx)
			continue;
		if (lk->state == LK_DONE)
			lk->state = LK_FREE;    /* not reported yet */
		else
			lk->cancelled = 1;      /* udns still owns its queries */
		lk->ctx = NULL;
	}
}
