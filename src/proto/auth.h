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
/* A failed login from this peer: returns the delay (ms) to wait before
 * answering, or -1 when the peer is now refused for a while. */
int auth_failed(const struct sockaddr *peer);
int auth_banned(const struct sockaddr *peer);
/* Login is allowed on this connection: under TLS, or from a network in
 * plaintext_auth_networks. */
int auth_allowed(const struct conn *c);
void auth_reload(void);
#else
static inline int auth_check(const char *u, size_t ul, const char *p,
	size_t pl, const char **canon)
{ (void)u; (void)ul; (void)p; (void)pl; (void)canon; return 0; }
static inline int auth_failed(const struct sockaddr *peer) { (void)peer; return -1; }
static inline int auth_banned(const struct sockaddr *peer) { (void)peer; return 0; }
static inline int auth_allowed(const struct conn *c) { (void)c; return 0; }
static inline void auth_reload(void) { }
#endif

#endif
