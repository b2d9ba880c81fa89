/* dns — asynchronous lookups for relaying, inside the one loop (udns).
 * postie asks DNS only for the next hop of outgoing mail: MX records in
 * preference order, then the A (and AAAA with CONFIG_IPV6) records of each
 * exchanger, or the domain itself when it has no MX (implicit MX). It
 * never looks up clients. Every failure to get an answer (no server,
 * timeout, SERVFAIL) is temporary; only NXDOMAIN, a null MX (RFC 7505) or
 * no address at all is permanent. When CONFIG_DNS is off these are stubs:
 * mail goes to the smarthost, which must then be an IP address. */
#ifndef POSTIE_DNS_H
#define POSTIE_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#define DNS_MAX_TARGETS 8       /* addresses handed to one delivery */
/* Lookups in flight at once (a fixed pool, about 3 KB each, paid when
 * touched); dns_query_* answers -1 when all are busy. */
#if CONFIG_RELAY
#define DNS_MAX_QUERIES (CONFIG_RELAY_MAX_DELIVERIES * 2 + 8)
#else
#define DNS_MAX_QUERIES 1
#endif

enum { DNS_OK = 0, DNS_TEMP = 1, DNS_PERM = 2 };

struct dns_target {
	char host[256];                 /* exchanger (or host) name */
	int pref;                       /* MX preference; 0 for hosts */
	struct sockaddr_storage addr;   /* port left 0: the caller sets it */
	socklen_t len;
};

struct dns_result {
	int status;                     /* DNS_OK, DNS_TEMP, DNS_PERM */
	char why[128];                  /* for logs and bounces */
	int local;                      /* DNS_TEMP because no DNS server
					 * answered at all (none usable, none
					 * reachable), or nothing at all has
					 * resolved for a minute: a problem on
					 * this side */
	int n;
	struct dns_target t[DNS_MAX_TARGETS];
};

/* Called once per query, from the loop; res is valid during the call. */
typedef void (*dns_fn)(void *ctx, const struct dns_result *res);

#if CONFIG_DNS
/* Opens the resolver: server "ADDR[:PORT]" or "[V6]:PORT" (may be NULL
 * or "": the nameservers of /etc/resolv.conf). Never fatal: with no
 * server the queries fail as temporary. Registers its own loop watcher;
 * -1 only when the loop has no slot for it. Called again (SIGHUP), it
 * rereads the configuration and ends the lookups in flight as DNS_TEMP.
 * dns_stop() (shutdown) drops them without calling back. */
int dns_start(const char *server);
void dns_stop(void);
/* MX lookup of domain, then addresses of the exchangers in order.
 * 0: fn SHALL be called exactly once, later, from the loop (never from
 * inside this call), unless dns_drop(ctx) or dns_stop() comes first.
 * -1: not started or no free lookup; fn will not be called. An address
 * literal ("1.2.3.4", "[::1]") is answered without DNS. */
int dns_query_mx(const char *domain, dns_fn fn, void *ctx);
/* Addresses of one host (the smarthost). */
int dns_query_host(const char *host, dns_fn fn, void *ctx);
/* Drops every query started with ctx (its owner went away): fn is never
 * called for ctx afterwards. (Not dns_cancel: udns has that name.) */
void dns_drop(void *ctx);
#else
static inline int dns_start(const char *server) { (void)server; return 0; }
static inline void dns_stop(void) { }
static inline int dns_query_mx(const char *d, dns_fn fn, void *ctx)
{ (void)d; (void)fn; (void)ctx; return -1; }
static inline int dns_query_host(const char *h, dns_fn fn, void *ctx)
{ (void)h; (void)fn; (void)ctx; return -1; }
static inline void dns_drop(void *ctx) { (void)ctx; }
#endif

#endif
