/* tls_bearssl — TLS 1.2 server and client on BearSSL (see tls.h).
 *
 * Only what the build asks for is referenced, so only that is linked:
 * without CONFIG_TLS_SERVER no server engine, private key or signing
 * code; with CONFIG_TLS_SMALL one generic NIST-curve and one
 * big-integer implementation (i15) serve ECDHE and every signature,
 * and SHA-1 is left out.
 * Owns: the credentials (PEM chain + RSA or EC key, refcounted so a reload
 * never pulls them from under a handshake), the pool of engine contexts
 * with their record buffers (one for input, one for output), and the
 * LRU resumption cache.
 * Limits: CONFIG_MAX_TLS_SESSIONS contexts (run-time max_tls_sessions may
 * lower it), CONFIG_TLS_SESSION_CACHE cached sessions, PEM files of
 * 256 KiB, chains of 8 certificates. No allocation after load. */
#include "tls/tls.h"

#include <bearssl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"

#define TLS_PEM_MAX (256u << 10)
#define TLS_CHAIN_MAX 8

struct tls_creds {
	br_x509_certificate chain[TLS_CHAIN_MAX];
	size_t chain_len;
	int key_type;                   /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
	br_rsa_private_key rsa;
	br_ec_private_key ec;
	unsigned char *mem;             /* certificates and key bytes */
	int refs;
};

/* Accepts any certificate chain and hands out the first certificate's
 * key: opportunistic STARTTLS to MX hosts encrypts without authenticating
 * (what every MTA does). */
struct x509_any {
	const br_x509_class *vtable;
	br_x509_decoder_context dc;
	int first;
};

struct tls_names {
	br_name_element ne[2];          /* SAN dNSName, subject CN */
	char dns[TLS_NAME_MAX], cn[65];
};

struct tls_conn {
	union {
		br_ssl_server_context sc;
		br_ssl_client_context cc;
	} u;                            /* eng is the first member of both */
	union {
		br_x509_minimal_context minimal;
		struct x509_any any;
	} x;
	int client;
	struct tls_names names;         /* client: the server certificate's */
	struct tls_creds *creds;
	struct anchor_set *anchors;     /* client: the set its chain is checked on */
	int used;
	char desc[80];
	/* Separate input and output buffers (not BearSSL's half-duplex
	 * one): replies leave while a received record still holds unread
	 * commands, so a client that pipelines more than any buffer holds
	 * is answered as in the clear, its reading paused while replies
	 * wait for the socket. Input takes the largest record (16 KiB);
	 * output records are as large as CONFIG_TLS_OUTBUF allows. */
	unsigned char ibuf[BR_SSL_BUFSIZE_INPUT];
	unsigned char obuf[CONFIG_TLS_OUTBUF];
};

static struct tls_conn pool[CONFIG_MAX_TLS_SESSIONS];
static int pool_max = CONFIG_MAX_TLS_SESSIONS, pool_used;
static struct tls_creds *current;
static br_ssl_session_cache_lru lru;
static unsigned char lru_store[CONFIG_TLS_SESSION_CACHE * 100 + 1];
static int lru_ready;

/* TLS 1.2, forward secrecy, AEAD only; ChaCha20 first for CPUs without
 * AES instructions (every MIPS router). CONFIG_TLS_SMALL offers the
 * AES-GCM suites alone (SUITES_SMALL_FROM on): every TLS 1.2 server
 * has them (RFC 7525 makes AES-128-GCM the one to implement), not every
 * one has ChaCha20 (Windows' TLS 1.2), and one AEAD is 3 KB less code. */
#define SUITES_SMALL_FROM 2
static const uint16_t suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
};

/* The curves: BearSSL's default set (fast P-256 and X25519, generic
 * P-384/P-521), or with CONFIG_TLS_SMALL its generic NIST code
 * alone, which ECDSA chains need anyway: ECDHE then offers P-256
 * (first), P-384 and P-521 at no extra code. */
static const br_ec_impl *ec_impl(void)
{
	return CONFIG_TLS_FULL ? br_ec_get_default() : &br_ec_prime_i15;
}

/* Signature checks (ServerKeyExchange, certificate chains): with the
 * small profile the i15 code that the curves already link. */
static br_ecdsa_vrfy ecdsa_vrfy(void)
{
	return CONFIG_TLS_SMALL ? &br_ecdsa_i15_vrfy_asn1 :
		br_ecdsa_vrfy_asn1_get_default();
}

static br_rsa_pkcs1_vrfy rsa_vrfy(void)
{
	return CONFIG_TLS_SMALL ? &br_rsa_i15_pkcs1_vrfy :
		br_rsa_pkcs1_vrfy_get_default();
}

/* ---- loading -------------------------------------------------------- */

struct load {
	struct tls_creds *c;
	size_t used;                    /* bytes of c->mem in use */
	size_t cap;
	br_skey_decoder_context skey;
	int keys;
	const char *why;
};

static unsigned char *keep(struct load *l, const void *p, size_t n)
{
	unsigned char *dst;

	if (l->used + n > l->cap)
		return NULL;
	dst = l->c->mem + l->used;
	memcpy(dst, p, n);
	l->used += n;
	return dst;
}

static int on_cert(void *ctx, const char *name, const unsigned char *der,
		   size_t len)
{
	struct load *l = ctx;
	br_x509_certificate *x;

	if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
		return 0;
	if (!der) {
		l->why = "a CERTIFICATE that is damaged or cut short (its body "
			 "is not base64, or no END line)";
		return -1;
	}
	if (l->c->chain_len == TLS_CHAIN_MAX) {
		l->why = "more than 8 certificates in the chain";
		return -1;
	}
	x = &l->c->chain[l->c->chain_len];
	x->data = keep(l, der, len);
	x->data_len = len;
	if (!x->data)
		return -1;
	l->c->chain_len++;
	return 0;
}

static int on_key(void *ctx, const char *name, const unsigned char *der,
		  size_t len)
{
	struct load *l = ctx;

	if (!strstr(name, "PRIVATE KEY"))
		return 0;
	/* PKCS#8's label says so; PKCS#1's encrypted form has Proc-Type
	 * headers in its body, which then is not base64. */
	if (strstr(name, "ENCRYPTED") || !der) {
		l->why = "the private key is encrypted or damaged (its body is "
			 "not plain base64): postie needs it unencrypted, e.g. "
			 "openssl pkey -in KEY -out NEW.pem";
		return -1;
	}
	br_skey_decoder_init(&l->skey);
	br_skey_decoder_push(&l->skey, der, len);
	if (br_skey_decoder_last_error(&l->skey) != 0) {
		l->why = "cannot decode the private key (RSA or EC, PKCS#1, "
			 "SEC 1 or PKCS#8, unencrypted)";
		return -1;
	}
	l->keys++;
	return 0;
}

/* Copies the decoded key into the credentials' own memory. */
static int copy_key(struct load *l)
{
	struct tls_creds *c = l->c;
	const br_rsa_private_key *rk;
	const br_ec_private_key *ek;

	c->key_type = (int)br_skey_decoder_key_type(&l->skey);
	if (c->key_type == BR_KEYTYPE_RSA) {
		rk = br_skey_decoder_get_rsa(&l->skey);
		c->rsa = *rk;
		c->rsa.p = keep(l, rk->p, rk->plen);
		c->rsa.q = keep(l, rk->q, rk->qlen);
		c->rsa.dp = keep(l, rk->dp, rk->dplen);
		c->rsa.dq = keep(l, rk->dq, rk->dqlen);
		c->rsa.iq = keep(l, rk->iq, rk->iqlen);
		return c->rsa.p && c->rsa.q && c->rsa.dp && c->rsa.dq && c->rsa.iq ? 0 : -1;
	}
	ek = br_skey_decoder_get_ec(&l->skey);
	c->ec = *ek;
	c->ec.x = keep(l, ek->x, ek->xlen);
	return c->ec.x ? 0 : -1;
}

/* The first certificate's public key must be the private key's. RSA: a
 * signature made with the key must verify with the certificate's key
 * (BearSSL's modulus computation gives up on 4096-bit keys, which sign
 * and verify fine). EC: the key's public point is the certificate's. */
static int key_matches(struct tls_creds *c)
{
	br_x509_decoder_context dc;
	const br_x509_pkey *pk;
	unsigned char buf[BR_EC_KBUF_PUB_MAX_SIZE > 512 ? BR_EC_KBUF_PUB_MAX_SIZE : 512];

	br_x509_decoder_init(&dc, NULL, NULL);
	br_x509_decoder_push(&dc, c->chain[0].data, c->chain[0].data_len);
	pk = br_x509_decoder_get_pkey(&dc);
	if (!pk || pk->key_type != c->key_type)
		return 0;
	if (c->key_type == BR_KEYTYPE_RSA) {
		static const unsigned char hash[32] = "postie: does the key match?";
		unsigned char out[sizeof(hash)];
		size_t n = (c->rsa.n_bitlen + 7) / 8;
		br_rsa_public_key pub = { pk->key.rsa.n, pk->key.rsa.nlen,
					  pk->key.rsa.e, pk->key.rsa.elen };

		return n <= sizeof(buf) &&
		       br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, hash,
						       sizeof(hash), &c->rsa, buf) &&
		       rsa_vrfy()(buf, n, BR_HASH_OID_SHA256, sizeof(hash), &pub, out) &&
		       memcmp(out, hash, sizeof(hash)) == 0;
	}
	size_t q = br_ec_compute_pub(ec_impl(), NULL, buf, &c->ec);
	return q != 0 && pk->key.ec.curve == c->ec.curve && q == pk->key.ec.qlen &&
	       memcmp(buf, pk->key.ec.q, q) == 0;
}

static void creds_put(struct tls_creds *c)
{
	if (c && --c->refs == 0) {
		free(c->mem);
		free(c);
	}
}

int tls_load(const char *cert, const char *key, char *err, size_t errlen)
{
	struct load *l;
	char *ctext = NULL, *ktext = NULL;
	unsigned char *scratch = NULL;
	size_t clen, klen;
	int rc = -1;

	if (!CONFIG_TLS_SERVER) {
		snprintf(err, errlen, "%s: no TLS server in this build", cert);
		return -1;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		goto oom;
	ctext = file_slurp(cert, TLS_PEM_MAX, &clen, err, errlen);
	if (!ctext)
		goto out;
	ktext = file_slurp(key, TLS_PEM_MAX, &klen, err, errlen);
	if (!ktext)
		goto out;
	l->c = calloc(1, sizeof(*l->c));
	l->cap = clen + klen;
	scratch = malloc(l->cap + 1);
	if (!l->c || !scratch || !(l->c->mem = malloc(l->cap + 1)))
		goto oom;
	if (pem_each(ctext, clen, scratch, l->cap, on_cert, l) < 0 ||
	    l->c->chain_len == 0) {
		snprintf(err, errlen, "%s: %s", cert, l->why ? l->why :
			 "no PEM CERTIFICATE found");
		goto out;
	}
	if (pem_each(ktext, klen, scratch, l->cap, on_key, l) < 0 || l->keys != 1) {
		snprintf(err, errlen, "%s: %s", key, l->why ? l->why :
			 "want exactly one PEM PRIVATE KEY");
		goto out;
	}
	if (copy_key(l) != 0)
		goto oom;
	if (!key_matches(l->c)) {
		snprintf(err, errlen, "%s: the key does not match the first "
			 "certificate of %s", key, cert);
		goto out;
	}
	l->c->refs = 1;
	creds_put(current);
	current = l->c;
	l->c = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "%s: out of memory", cert);
out:
	if (l && l->c) {
		free(l->c->mem);
		free(l->c);
	}
	/* The decoder held key material: wipe before freeing. */
	if (l)
		memset(l, 0, sizeof(*l));
	if (ktext)
		memset(ktext, 0, klen);
	free(l);
	free(ctext);
	free(ktext);
	free(scratch);
	return rc;
}

int tls_ready(void)
{
	return current != NULL;
}

int tls_in_use(void)
{
	return pool_used;
}

int tls_pool_size(void)
{
	return pool_max;
}

void tls_set_max(int max)
{
	pool_max = max < CONFIG_MAX_TLS_SESSIONS ? max : CONFIG_MAX_TLS_SESSIONS;
}

/* ---- sessions ------------------------------------------------------- */

/* What server and client share: TLS 1.2, the AEAD suites, curves,
 * hashes and PRFs. */
static void engine_common(br_ssl_engine_context *eng)
{
	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	br_ssl_engine_set_suites(eng, suites + (CONFIG_TLS_SMALL ? SUITES_SMALL_FROM : 0),
		ARRAY_LEN(suites) - (CONFIG_TLS_SMALL ? SUITES_SMALL_FROM : 0));
	br_ssl_engine_set_ec(eng, ec_impl());
	if (!CONFIG_TLS_SMALL)
		br_ssl_engine_set_hash(eng, br_sha1_ID, &br_sha1_vtable);
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_hash(eng, br_sha512_ID, &br_sha512_vtable);
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(eng);
	if (!CONFIG_TLS_SMALL)
		br_ssl_engine_set_default_chapol(eng);
}

static void engine_setup(struct tls_conn *t)
{
	br_ssl_server_context *sc = &t->u.sc;
	br_ssl_engine_context *eng = &sc->eng;
	struct tls_creds *c = t->creds;

	br_ssl_server_zero(sc);
	engine_common(eng);
	if (c->key_type == BR_KEYTYPE_RSA)
		br_ssl_server_set_single_rsa(sc, c->chain, c->chain_len, &c->rsa,
			BR_KEYTYPE_SIGN, br_rsa_private_get_default(),
			br_rsa_pkcs1_sign_get_default());
	else
		br_ssl_server_set_single_ec(sc, c->chain, c->chain_len, &c->ec,
			BR_KEYTYPE_SIGN, BR_KEYTYPE_EC, ec_impl(),
			br_ecdsa_sign_asn1_get_default());
	br_ssl_engine_set_buffers_bidi(eng, t->ibuf, sizeof(t->ibuf), t->obuf,
				       sizeof(t->obuf));
	br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION |
		BR_OPT_ENFORCE_SERVER_PREFERENCES);
	if (CONFIG_TLS_SESSION_CACHE > 0) {
		if (!lru_ready) {
			br_ssl_session_cache_lru_init(&lru, lru_store,
				CONFIG_TLS_SESSION_CACHE * 100);
			lru_ready = 1;
		}
		br_ssl_server_set_cache(sc, &lru.vtable);
	}
}

struct tls_conn *tls_conn_new(void)
{
	if (!CONFIG_TLS_SERVER || !current || pool_used >= pool_max)
		return NULL;
	for (int i = 0; i < CONFIG_MAX_TLS_SESSIONS; i++) {
		struct tls_conn *t = &pool[i];
		if (t->used)
			continue;
		t->used = 1;
		t->client = 0;
		t->creds = current;
		current->refs++;
		t->desc[0] = '\0';
		engine_setup(t);
		if (!br_ssl_server_reset(&t->u.sc)) {
			log_msg(LOGL_ERR, "tls: engine reset failed: %d",
				br_ssl_engine_last_error(&t->u.sc.eng));
			tls_conn_free(t);
			return NULL;
		}
		pool_used++;
		return t;
	}
	return NULL;
}

/* The trust anchors of ca_file, refcounted like the server's
 * credentials: each verifying client session holds the set it started
 * with, so a reload never frees it under a handshake, and a reload that
 * fails keeps the set that worked. */
struct anchor_set {
	int refs;
	size_t n;
	br_x509_trust_anchor *ta;
	unsigned char *mem;             /* their DNs and keys */
};
static struct anchor_set *ca_current;

static void anchors_put(struct anchor_set *a)
{
	if (a && --a->refs == 0) {
		free(a->ta);
		free(a->mem);
		free(a);
	}
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t || !t->used)
		return;
	if (t->creds)
		creds_put(t->creds);
	t->creds = NULL;
	anchors_put(t->anchors);
	t->anchors = NULL;
	t->used = 0;
	pool_used--;
}

unsigned tls_state(struct tls_conn *t)
{
	unsigned st = br_ssl_engine_current_state(&t->u.sc.eng), r = 0;

	if (st & BR_SSL_CLOSED)
		return TLS_CLOSED;
	if (st & BR_SSL_RECVREC)
		r |= TLS_WANT_READ;
	if (st & BR_SSL_SENDREC)
		r |= TLS_WANT_WRITE;
	if (st & BR_SSL_RECVAPP)
		r |= TLS_APP_IN;
	if (st & BR_SSL_SENDAPP)
		r |= TLS_APP_OUT;
	/* Application data flows only once the handshake is done. */
	if ((r & (TLS_APP_IN | TLS_APP_OUT)) && !t->desc[0])
		tls_describe(t);
	return r;
}

int tls_sock_read(struct tls_conn *t, int fd)
{
	br_ssl_engine_context *eng = &t->u.sc.eng;
	unsigned char *buf;
	size_t len;
	ssize_t n;

	if (!(br_ssl_engine_current_state(eng) & BR_SSL_RECVREC))
		return 0;
	buf = br_ssl_engine_recvrec_buf(eng, &len);
	n = recv(fd, buf, len, 0);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	br_ssl_engine_recvrec_ack(eng, (size_t)n);
	return 1;
}

int tls_sock_write(struct tls_conn *t, int fd)
{
	br_ssl_engine_context *eng = &t->u.sc.eng;
	unsigned char *buf;
	size_t len;
	ssize_t n;

	if (!(br_ssl_engine_current_state(eng) & BR_SSL_SENDREC))
		return 0;
	buf = br_ssl_engine_sendrec_buf(eng, &len);
	n = send(fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	br_ssl_engine_sendrec_ack(eng, (size_t)n);
	return 1;
}

size_t tls_app_read(struct tls_conn *t, char *dst, size_t cap)
{
	br_ssl_engine_context *eng = &t->u.sc.eng;
	unsigned char *buf;
	size_t len;

	if (cap == 0 || !(br_ssl_engine_current_state(eng) & BR_SSL_RECVAPP))
		return 0;
	buf = br_ssl_engine_recvapp_buf(eng, &len);
	if (len > cap)
		len = cap;
	memcpy(dst, buf, len);
	br_ssl_engine_recvapp_ack(eng, len);
	return len;
}

size_t tls_app_write(struct tls_conn *t, const char *src, size_t n)
{
	br_ssl_engine_context *eng = &t->u.sc.eng;
	unsigned char *buf;
	size_t len;

	if (n == 0 || !(br_ssl_engine_current_state(eng) & BR_SSL_SENDAPP))
		return 0;
	buf = br_ssl_engine_sendapp_buf(eng, &len);
	if (len > n)
		len = n;
	memcpy(buf, src, len);
	br_ssl_engine_sendapp_ack(eng, len);
	return len;
}

void tls_app_flush(struct tls_conn *t)
{
	br_ssl_engine_flush(&t->u.sc.eng, 0);
}

void tls_close_notify(struct tls_conn *t)
{
	br_ssl_engine_close(&t->u.sc.eng);
}

int tls_error(struct tls_conn *t)
{
	return br_ssl_engine_last_error(&t->u.sc.eng);
}

int tls_established(struct tls_conn *t)
{
	return t->desc[0] != '\0';
}

const char *tls_describe(struct tls_conn *t)
{
	br_ssl_session_parameters sp;
	const char *kx, *cipher;

	if (t->desc[0])
		return t->desc;
	br_ssl_engine_get_session_parameters(&t->u.sc.eng, &sp);
	switch (sp.cipher_suite) {
	case BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		kx = "ECDHE-ECDSA", cipher = "CHACHA20-POLY1305"; break;
	case BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		kx = "ECDHE-RSA", cipher = "CHACHA20-POLY1305"; break;
	case BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:
		kx = "ECDHE-ECDSA", cipher = "AES128-GCM-SHA256"; break;
	case BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		kx = "ECDHE-RSA", cipher = "AES128-GCM-SHA256"; break;
	case BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:
		kx = "ECDHE-ECDSA", cipher = "AES256-GCM-SHA384"; break;
	default:
		kx = "ECDHE-RSA", cipher = "AES256-GCM-SHA384"; break;
	}
	snprintf(t->desc, sizeof(t->desc), "TLSv1.2 %s-%s", kx, cipher);
	return t->desc;
}

/* ---- client side (relay) ------------------------------------------- */

/* The names in the server's certificate, kept by the verifier while it
 * decodes the end-entity certificate, so that a failure can say which
 * name the certificate carries (tls_errors.c puts it in words). */
static const unsigned char oid_cn[] = { 3, 0x55, 0x04, 0x03 };
static const unsigned char oid_san_dns[] = { 0, 2 };

static void names_watch(struct tls_conn *t, br_x509_minimal_context *xc)
{
	br_name_element *ne = t->names.ne;

	memset(&t->names, 0, sizeof(t->names));
	ne[0].oid = oid_san_dns;
	ne[0].buf = t->names.dns;
	ne[0].len = sizeof(t->names.dns);
	ne[1].oid = oid_cn;
	ne[1].buf = t->names.cn;
	ne[1].len = sizeof(t->names.cn);
	br_x509_minimal_set_name_elements(xc, ne, 2);
}

const char *tls_peer_name(struct tls_conn *t)
{
	if (!t->client)
		return "";
	if (t->names.ne[0].status == 1 && t->names.dns[0])
		return t->names.dns;
	if (t->names.ne[1].status == 1 && t->names.cn[0])
		return t->names.cn;
	return "";
}


static void x509_any_start_chain(const br_x509_class **ctx, const char *name)
{
	struct x509_any *a = (struct x509_any *)ctx;

	(void)name;
	a->first = 1;
}

static void x509_any_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct x509_any *a = (struct x509_any *)ctx;

	(void)length;
	if (a->first)
		br_x509_decoder_init(&a->dc, NULL, NULL);
}

static void x509_any_append(const br_x509_class **ctx, const unsigned char *buf,
			    size_t len)
{
	struct x509_any *a = (struct x509_any *)ctx;

	if (a->first)
		br_x509_decoder_push(&a->dc, buf, len);
}

static void x509_any_end_cert(const br_x509_class **ctx)
{
	((struct x509_any *)ctx)->first = 0;
}

static unsigned x509_any_end_chain(const br_x509_class **ctx)
{
	struct x509_any *a = (struct x509_any *)ctx;

	return br_x509_decoder_get_pkey(&a->dc) ? 0 : BR_ERR_X509_BAD_SERVER_NAME;
}

static const br_x509_pkey *x509_any_get_pkey(const br_x509_class *const *ctx,
					     unsigned *usages)
{
	struct x509_any *a = (struct x509_any *)(uintptr_t)ctx;

	if (usages)
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	return br_x509_decoder_get_pkey(&a->dc);
}

static const br_x509_class x509_any_class = {
	sizeof(struct x509_any),
	x509_any_start_chain, x509_any_start_cert, x509_any_append,
	x509_any_end_cert, x509_any_end_chain, x509_any_get_pkey,
};

/* The subject DN of a CA, into the anchor memory; b.full when it did not
 * fit. */
static void dn_append(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
}

/* n bytes of p appended to the anchor memory; where they went, or NULL. */
static unsigned char *anchor_put(struct buf *b, const void *p, size_t n)
{
	size_t at = b->len;

	return buf_add(b, p, n) == 0 ? (unsigned char *)b->p + at : NULL;
}

struct ca_load {
	struct anchor_set *a;           /* being filled */
	size_t cap, used, n;
	int bad;
};

static int on_ca(void *ctx, const char *name, const unsigned char *der,
		 size_t len)
{
	struct ca_load *l = ctx;
	br_x509_decoder_context dc;
	struct buf dn, mem;
	const br_x509_pkey *pk;
	br_x509_trust_anchor *ta;

	if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0)
		return 0;
	if (!der) {                     /* damaged: the others still count */
		l->bad++;
		return 0;
	}
	buf_init_len(&mem, l->a->mem, l->cap, l->used);
	buf_init(&dn, buf_reserve(&mem, 0), buf_remaining(&mem));
	br_x509_decoder_init(&dc, dn_append, &dn);
	br_x509_decoder_push(&dc, der, len);
	pk = br_x509_decoder_get_pkey(&dc);
	if (!pk || dn.full) {
		l->bad++;
		return 0;
	}
	ta = &l->a->ta[l->n];
	ta->dn.data = (unsigned char *)dn.p;
	ta->dn.len = dn.len;
	buf_commit(&mem, dn.len);       /* the DN is written there */
	ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
	ta->pkey = *pk;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta->pkey.key.rsa.n = anchor_put(&mem, pk->key.rsa.n, pk->key.rsa.nlen);
		ta->pkey.key.rsa.e = anchor_put(&mem, pk->key.rsa.e, pk->key.rsa.elen);
		if (!ta->pkey.key.rsa.n || !ta->pkey.key.rsa.e)
			return -1;
	} else {
		ta->pkey.key.ec.q = anchor_put(&mem, pk->key.ec.q, pk->key.ec.qlen);
		if (!ta->pkey.key.ec.q)
			return -1;
	}
	l->used = mem.len;
	l->n++;
	return 0;
}

int tls_load_ca(const char *file, char *err, size_t errlen)
{
	struct ca_load l = { 0 };
	unsigned char *scratch;
	size_t len;
	char *text = file_slurp(file, 4u << 20, &len, err, errlen);
	int rc;

	if (!text)
		return -1;
	/* Every certificate is under 64 KiB of DER and costs at most its
	 * own size in DN and key, so the PEM size bounds both arrays. */
	l.a = calloc(1, sizeof(*l.a));
	scratch = malloc(len + 1);
	l.cap = len;
	rc = -1;
	if (l.a) {
		l.a->refs = 1;
		l.a->ta = calloc(len / 64 + 1, sizeof(*l.a->ta));
		l.a->mem = malloc(len + 1);
		if (l.a->ta && l.a->mem && scratch)
			rc = pem_each(text, len, scratch, len, on_ca, &l);
	}
	free(text);
	free(scratch);
	if (rc < 0 || l.n == 0) {
		anchors_put(l.a);       /* the set before stays */
		snprintf(err, errlen, "%s: no usable CA certificates", file);
		return -1;
	}
	if (l.bad)
		log_msg(LOGL_WARN, "%s: %d damaged or unreadable certificate%s "
			"skipped, %d in use", file, l.bad, l.bad == 1 ? "" : "s",
			(int)l.n);
	l.a->n = l.n;
	anchors_put(ca_current);
	ca_current = l.a;
	return 0;
}

struct tls_conn *tls_client_new(const char *server_name, int verify)
{
	struct tls_conn *t = NULL;
	br_ssl_engine_context *eng;

	if (pool_used >= pool_max || (verify && !ca_current))
		return NULL;
	for (int i = 0; i < CONFIG_MAX_TLS_SESSIONS && !t; i++)
		if (!pool[i].used)
			t = &pool[i];
	if (!t)
		return NULL;
	t->used = 1;
	t->client = 1;
	t->creds = NULL;
	t->desc[0] = '\0';
	eng = &t->u.cc.eng;
	br_ssl_client_zero(&t->u.cc);
	engine_common(eng);
	/* ECDHE suites only: no RSA key exchange (rsapub). */
	br_ssl_engine_set_rsavrfy(eng, rsa_vrfy());
	br_ssl_engine_set_ecdsa(eng, ecdsa_vrfy());
	if (verify) {
		br_x509_minimal_context *xc = &t->x.minimal;
		br_x509_minimal_init(xc, &br_sha256_vtable, ca_current->ta, ca_current->n);
		if (!CONFIG_TLS_SMALL)
			br_x509_minimal_set_hash(xc, br_sha1_ID, &br_sha1_vtable);
		br_x509_minimal_set_hash(xc, br_sha256_ID, &br_sha256_vtable);
		br_x509_minimal_set_hash(xc, br_sha384_ID, &br_sha384_vtable);
		br_x509_minimal_set_hash(xc, br_sha512_ID, &br_sha512_vtable);
		br_x509_minimal_set_rsa(xc, rsa_vrfy());
		br_x509_minimal_set_ecdsa(xc, ec_impl(), ecdsa_vrfy());
		names_watch(t, xc);
		br_ssl_engine_set_x509(eng, &xc->vtable);
	} else {
		memset(&t->names, 0, sizeof(t->names));
		t->x.any.vtable = &x509_any_class;
		br_ssl_engine_set_x509(eng, &t->x.any.vtable);
	}
	br_ssl_engine_set_buffers_bidi(eng, t->ibuf, sizeof(t->ibuf), t->obuf,
				       sizeof(t->obuf));
	br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
	if (!br_ssl_client_reset(&t->u.cc, server_name, 0)) {
		t->used = 0;
		return NULL;
	}
	if (verify) {
		t->anchors = ca_current;
		ca_current->refs++;
	}
	pool_used++;
	return t;
}
