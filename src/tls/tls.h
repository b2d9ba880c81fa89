/* tls — the TLS filter a connection slot can switch on (STARTTLS, smtps).
 * The slot owns one tls_conn from a fixed pool while TLS is on; the
 * engine works in caller-owned input and output buffers. When CONFIG_TLS is
 * off these are inline stubs: no BearSSL is linked, tls_conn_new() gives
 * NULL and STARTTLS answers 454 through the normal path. */
#ifndef POSTIE_TLS_H
#define POSTIE_TLS_H

#include <stddef.h>

struct tls_conn;

/* Longest certificate DNS name kept for error messages (a longer one is
 * not kept); the subject CN gets 64 bytes (its X.520 upper bound). */
#define TLS_NAME_MAX 128

enum {
	TLS_WANT_READ = 1,      /* the engine wants records from the socket */
	TLS_WANT_WRITE = 2,     /* the engine has records for the socket */
	TLS_APP_IN = 4,         /* decrypted bytes are waiting */
	TLS_APP_OUT = 8,        /* the engine takes plaintext now */
	TLS_CLOSED = 16,
};

#if CONFIG_TLS
#define TLS_HANDSHAKE_MS ((int64_t)CONFIG_TLS_HANDSHAKE_TIMEOUT * 1000)
/* Loads (or on reload replaces) the certificate chain and key, checking
 * that they match. Sessions in progress keep the old pair. */
int tls_load(const char *cert, const char *key, char *err, size_t errlen);
int tls_ready(void);
/* TLS pool: sessions in use now (for `postie status`). */
int tls_in_use(void);
/* The pool's size now (max_tls_sessions, at most CONFIG_MAX_TLS_SESSIONS). */
int tls_pool_size(void);
void tls_set_max(int max);
struct tls_conn *tls_conn_new(void);
/* Client side (relay): the CA bundle for verified connections, and a
 * session to server_name (SNI, and the name checked when verify). */
int tls_load_ca(const char *file, char *err, size_t errlen);
struct tls_conn *tls_client_new(const char *server_name, int verify);
void tls_conn_free(struct tls_conn *t);
unsigned tls_state(struct tls_conn *t);
/* Socket side: 1 progress, 0 would block, -1 closed or failed. */
int tls_sock_read(struct tls_conn *t, int fd);
int tls_sock_write(struct tls_conn *t, int fd);
/* Application side. */
size_t tls_app_read(struct tls_conn *t, char *dst, size_t cap);
size_t tls_app_write(struct tls_conn *t, const char *src, size_t len);
void tls_app_flush(struct tls_conn *t);
void tls_close_notify(struct tls_conn *t);
/* Last BearSSL error (0: none) and a short description of the session
 * ("TLSv1.2 ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256") once established. */
int tls_error(struct tls_conn *t);
int tls_established(struct tls_conn *t);
const char *tls_describe(struct tls_conn *t);
/* Client side: the server certificate's first DNS name (else its CN), as
 * far as the verifier decoded it; "" when unknown or not verifying. */
const char *tls_peer_name(struct tls_conn *t);
/* tls_errors.c: a BearSSL error code in words ("certificate not trusted:
 * unknown issuer"), and the reason a client handshake to want failed, with
 * the certificate's name where it helps ("name mismatch: certificate is
 * for other.test, not smart.test"). */
const char *tls_strerror(int err);
void tls_explain(struct tls_conn *t, const char *want, char *buf, size_t n);
/* 1 when the session failed on the peer's certificate (untrusted, wrong
 * name, expired...): a retry will not mend it. */
int tls_cert_error(struct tls_conn *t);
#else
#define TLS_HANDSHAKE_MS ((int64_t)0)
static inline int tls_load(const char *c, const char *k, char *e, size_t n)
{ (void)c; (void)k; (void)e; (void)n; return -1; }
static inline int tls_ready(void) { return 0; }
static inline int tls_in_use(void) { return 0; }
static inline int tls_pool_size(void) { return 0; }
static inline void tls_set_max(int max) { (void)max; }
static inline struct tls_conn *tls_conn_new(void) { return NULL; }
static inline int tls_load_ca(const char *f, char *e, size_t n)
{ (void)f; (void)e; (void)n; return -1; }
static inline struct tls_conn *tls_client_new(const char *n, int v)
{ (void)n; (void)v; return NULL; }
static inline void tls_conn_free(struct tls_conn *t) { (void)t; }
static inline unsigned tls_state(struct tls_conn *t) { (void)t; return TLS_CLOSED; }
static inline int tls_sock_read(struct tls_conn *t, int fd) { (void)t; (void)fd; return -1; }
static inline int tls_sock_write(struct tls_conn *t, int fd) { (void)t; (void)fd; return -1; }
static inline size_t tls_app_read(struct tls_conn *t, char *d, size_t c)
{ (void)t; (void)d; (void)c; return 0; }
static inline size_t tls_app_write(struct tls_conn *t, const char *s, size_t l)
{ (void)t; (void)s; (void)l; return 0; }
static inline void tls_app_flush(struct tls_conn *t) { (void)t; }
static inline void tls_close_notify(struct tls_conn *t) { (void)t; }
static inline int tls_error(struct tls_conn *t) { (void)t; return 0; }
static inline int tls_established(struct tls_conn *t) { (void)t; return 0; }
static inline const char *tls_describe(struct tls_conn *t) { (void)t; return ""; }
static inline const char *tls_peer_name(struct tls_conn *t) { (void)t; return ""; }
static inline const char *tls_strerror(int err) { (void)err; return "no TLS in this build"; }
static inline int tls_cert_error(struct tls_conn *t) { (void)t; return 0; }
static inline void tls_explain(struct tls_conn *t, const char *w, char *b, size_t n)
{ (void)t; (void)w; if (n) b[0] = '\0'; }
#endif

#endif
