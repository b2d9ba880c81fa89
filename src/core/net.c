/* net — address parsing and listening sockets (see net.h). */
#include "core/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

int net_parse_hostport(const char *s, struct net_addr *out)
{
	char host[NET_ADDRSTR];
	const char *colon;
	uint64_t port;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (parse_u64(colon + 1, 65535, &port) != 0 || port == 0)
		return -1;
	if (s[0] != '[') {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
		return 0;
	}
	if (!CONFIG_IPV6)
		return -2;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return -1;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	out->len = sizeof(*sin6);
	return 0;
}

int net_parse_cidr(const char *s, struct net_cidr *out)
{
	char host[NET_ADDRSTR];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t bits;

	if (hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		out->bits = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		out->bits = 128;
	} else {
		return -1;
	}
	if (slash) {
		if (parse_u64(slash + 1, (uint64_t)out->bits, &bits) != 0)
			return -1;
		out->bits = (int)bits;
	}
	return 0;
}

static int prefix_eq(const uint8_t *a, const uint8_t *b, int bits)
{
	int full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int net_cidr_match(const struct net_cidr *c, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET && c->family == AF_INET)
		return prefix_eq(c->addr,
			(const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
			c->bits);
	if (sa->sa_family == AF_INET6 && c->family == AF_INET6)
		return prefix_eq(c->addr,
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr,
			c->bits);
	return 0;
}

void net_unmap(struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in sin;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = s6->sin6_port;
	memcpy(&sin.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
	*len = sizeof(sin);
}

int net_client_key(const struct sockaddr *sa, uint8_t key[16])
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(key, s6->sin6_addr.s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(key, s6->sin6_addr.s6_addr, 8);
	return AF_INET6;
}

char *net_ntop(const struct sockaddr *sa, char *buf, size_t n, int with_port)
{
	char a[INET6_ADDRSTRLEN];
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		port = ntohs(s->sin_port);
		if (with_port)
			snprintf(buf, n, "%s:%u", a, port);
		else
			snprintf(buf, n, "%s", a);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		port = ntohs(s->sin6_port);
		if (with_port)
			snprintf(buf, n, "[%s]:%u", a, port);
		else
			snprintf(buf, n, "%s", a);
	} else {
		snprintf(buf, n, "local");
	}
	return buf;
}

int net_listen(const struct net_addr *a)
{
	int one = 1, fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
	    listen(fd, 128) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}
