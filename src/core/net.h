/* net — socket addresses: "ADDR:PORT" / "[V6]:PORT" parsing, printing,
 * IPv4-mapped IPv6 folded to IPv4, CIDR networks, listening sockets. */
#ifndef POSTIE_NET_H
#define POSTIE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_ADDRSTR 64

struct net_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct net_cidr {
	int family;             /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int bits;
};

int net_parse_hostport(const char *s, struct net_addr *out);
/* "1.2.3.4" or "::1" into the address part of a net_cidr with all bits. */
int net_parse_cidr(const char *s, struct net_cidr *out);
int net_cidr_match(const struct net_cidr *c, const struct sockaddr *sa);
/* IPv4-mapped IPv6 becomes AF_INET in place. */
void net_unmap(struct sockaddr_storage *ss, socklen_t *len);
/* The key that per-client limits count by (connections per address,
 * failed logins): an IPv4 address, or an IPv6 /64 (hosts get whole
 * prefixes), IPv4-mapped IPv6 as IPv4. Returns the family (0: other). */
int net_client_key(const struct sockaddr *sa, uint8_t key[16]);
/* "1.2.3.4" or "IPv6:..." style left to the caller; this prints the bare
 * address ("1.2.3.4", "::1"). With port: "1.2.3.4:25", "[::1]:25". */
char *net_ntop(const struct sockaddr *sa, char *buf, size_t n, int with_port);
/* Non-blocking, close-on-exec listening socket; -1 with errno. */
int net_listen(const struct net_addr *a);

#endif
