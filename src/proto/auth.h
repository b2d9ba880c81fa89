/* auth — what every protocol's login shares: the password check against
 * the users file (with the credential cache, so a slow crypt runs once per
 * password change), the per-address failed-login table (growing delay,
 * then a ban), and the plaintext policy. Stubs when CONFIG_AUTH is off. */
#ifndef POSTIE_AUTH_H
#define POSTIE_AUTH_H

#include <stddef.h>
#include <sys/socket.h>

#include "core/conn.h"

#if CONFIG_AUTH
/* 1 when user/password are right; *canon gets the user's name as stored. */
int auth_check(const char *user, size_t ulen, const char *pw, size_t pwlen,
	       const char **canon);
/* A failed login on c (proto names it in the log): counts it for the
 * peer and suspends c until the delayed answer is due (its deadline), or
 * returns -1 when the peer is now refused for a while (the caller says
 * goodbye and closes). Every protocol's login answers this way. */
int auth_fail_wait(struct conn *c, const char *proto);
int auth_banned(const struct sockaddr *peer);
/* For `postie status`: calls fn once per address (IPv6: its /64) banned
 * now, with the seconds left; returns how many. */
int auth_bans(void (*fn)(void *ctx, const char *addr, long seconds_left), void *ctx);
/* Login is allowed on this connection: under TLS, or from a network in
 * plaintext_auth_networks. */
int auth_allowed(const struct conn *c);
void auth_reload(void);
/* Checks decoded SASL PLAIN credentials ([authzid] NUL user NUL pass; an
 * authorization identity must equal the user): 1 good, 0 not. */
int auth_plain_check(const unsigned char *buf, size_t len, const char **canon);
/* One base64 PLAIN response: AUTH_CANCEL for "*", AUTH_BADB64 when it does
 * not decode, else auth_plain_check's answer. */
enum { AUTH_CANCEL = -1, AUTH_BADB64 = -2 };
int auth_plain_response(const char *b64, size_t len, const char **canon);
#else
static inline int auth_plain_check(const unsigned char *b, size_t l,
	const char **canon)
{ (void)b; (void)l; (void)canon; return 0; }
static inline int auth_plain_response(const char *b, size_t l, const char **c)
{ (void)b; (void)l; (void)c; return 0; }
static inline int auth_check(const char *u, size_t ul, const char *p,
	size_t pl, const char **canon)
{ (void)u; (void)ul; (void)p; (void)pl; (void)canon; return 0; }
static inline int auth_fail_wait(struct conn *c, const char *proto)
{ (void)c; (void)proto; return -1; }
static inline int auth_banned(const struct sockaddr *peer) { (void)peer; return 0; }
static inline int auth_bans(void (*fn)(void *, const char *, long), void *ctx)
{
	(void)fn;
	(void)ctx;
	return 0;
}
static inline int auth_allowed(const struct conn *c) { (void)c; return 0; }
static inline void auth_reload(void) { }
#endif

#endif
