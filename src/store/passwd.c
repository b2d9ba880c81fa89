/* passwd — SHA-crypt (see passwd.h), written from Ulrich Drepper's "Unix
 * crypt using SHA-256 and SHA-512" specification, on BearSSL's hashes, and
 * the verified-credential cache. Limits: passwords of PASSWD_MAX_LEN bytes,
 * PASSWD_ROUNDS_LIMIT rounds, salts of 16 printable chars (longer ones are
 * cut as the spec says). Where the spec leaves glibc's strtoul() to parse
 * "rounds=", we take digits only: "rounds=-1$" or "rounds=x$" is refused
 * rather than guessed at. Nothing is allocated; the work buffers are on the
 * stack (under 1 KB) and are not wiped, as the password itself sits in
 * the caller's connection buffer anyway. */
#include "store/passwd.h"

#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/buf.h"

#define SALT_MAX 16

/* The crypt base64 alphabet, which is not RFC 4648's. */
static const char crypt64[] =
	"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* The order in which the spec feeds the final digest's bytes, three at a
 * time (first byte most significant), to the output encoding. */
static const unsigned char order256[32] = {
	0, 10, 20, 21, 1, 11, 12, 22, 2, 3, 13, 23, 24, 4, 14, 15,
	25, 5, 6, 16, 26, 27, 7, 17, 18, 28, 8, 9, 19, 29, 31, 30,
};
static const unsigned char order512[64] = {
	0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47,
	5, 26, 6, 27, 48, 28, 49, 7, 50, 8, 29, 9, 30, 51, 31, 52,
	10, 53, 11, 32, 12, 33, 54, 34, 55, 13, 56, 14, 35, 15, 36, 57,
	37, 58, 16, 59, 17, 38, 18, 39, 60, 40, 61, 19, 62, 20, 41, 63,
};

struct scheme {
	char id;                        /* the digit in "$5$" */
	size_t hlen;                    /* digest bytes */
	size_t enclen;                  /* digest chars in the hash */
	const br_hash_class *hash;
	const unsigned char *order;
};

static const struct scheme schemes[] = {
	{ '5', 32, 43, &br_sha256_vtable, order256 },
	{ '6', 64, 86, &br_sha512_vtable, order512 },
};

struct setting {
	const struct scheme *sc;
	unsigned long rounds;
	int custom;                     /* "rounds=" given: echo it back */
	const char *salt;
	size_t salt_len;                /* as used: at most SALT_MAX */
	const char *end;                /* '$' or NUL after the whole salt */
};

/* "rounds=N$": digits only, clamped as the spec says. Returns the rest or
 * NULL. Saturates just above the maximum, so a long digit string cannot
 * wrap a 32-bit long into a small count. */
static const char *parse_rounds(const char *p, unsigned long *rounds)
{
	unsigned long v = 0;
	const char *start = p;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > PASSWD_ROUNDS_MAX / 10)
			v = PASSWD_ROUNDS_MAX + 1ul;
		else
			v = v * 10 + (unsigned long)(*p - '0');
	}
	if (p == start || *p != '$')
		return NULL;
	if (v < PASSWD_ROUNDS_MIN)
		v = PASSWD_ROUNDS_MIN;
	if (v > PASSWD_ROUNDS_MAX)
		v = PASSWD_ROUNDS_MAX;
	*rounds = v;
	return p + 1;
}

/* Salt chars are anything printable but '$' (the end) and ':' (the users
 * file separator); a control char or space means a damaged file. */
static int salt_char_ok(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != ':';
}

static int parse_setting(const char *s, struct setting *st)
{
	const char *p;

	st->sc = NULL;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (s[0] == '$' && s[1] == schemes[i].id && s[2] == '$')
			st->sc = &schemes[i];
	}
	if (!st->sc)
		return -1;
	p = s + 3;
	st->rounds = PASSWD_ROUNDS_DEFAULT;
	st->custom = 0;
	if (strncmp(p, "rounds=", 7) == 0) {
		p = parse_rounds(p + 7, &st->rounds);
		if (!p)
			return -1;
		st->custom = 1;
	}
	if (st->rounds > PASSWD_ROUNDS_LIMIT)
		return -1;
	st->salt = p;
	for (; *p != '$' && *p != '\0'; p++) {
		if (!salt_char_ok((unsigned char)*p))
			return -1;
	}
	st->end = p;
	st->salt_len = (size_t)(p - st->salt);
	if (st->salt_len > SALT_MAX)
		st->salt_len = SALT_MAX;
	return 0;
}

static void add(br_hash_compat_context *c, const void *data, size_t len)
{
	c->vtable->update(&c->vtable, data, len);
}

/* Fills seq with len bytes of the repeated digest d (steps 16 and 20). */
static void repeat_digest(unsigned char *seq, size_t len, const unsigned char *d,
			  size_t hlen)
{
	for (; len > hlen; len -= hlen, seq += hlen)
		memcpy(seq, d, hlen);
	memcpy(seq, d, len);
}

/* The spec's steps 1-21: leaves the final digest in a[0..hlen). */
static void sha_crypt(const struct scheme *sc, const unsigned char *pw,
		      size_t pwlen, const unsigned char *salt, size_t slen,
		      unsigned long rounds, unsigned char *a)
{
	const br_hash_class *h = sc->hash;
	size_t hl = sc->hlen, n;
	br_hash_compat_context c;
	unsigned char b[64], pseq[PASSWD_MAX_LEN], sseq[SALT_MAX];

	/* Digest B = H(pw salt pw). */
	h->init(&c.vtable);
	add(&c, pw, pwlen);
	add(&c, salt, slen);
	add(&c, pw, pwlen);
	h->out(&c.vtable, b);

	/* Digest A = H(pw salt, pwlen bytes of B repeated, then for each bit
	 * of pwlen from the lowest: B if set, pw if clear). */
	h->init(&c.vtable);
	add(&c, pw, pwlen);
	add(&c, salt, slen);
	for (n = pwlen; n > hl; n -= hl)
		add(&c, b, hl);
	add(&c, b, n);
	for (n = pwlen; n > 0; n >>= 1) {
		if (n & 1)
			add(&c, b, hl);
		else
			add(&c, pw, pwlen);
	}
	h->out(&c.vtable, a);

	/* P sequence: pwlen bytes of H(pw repeated pwlen times). */
	h->init(&c.vtable);
	for (n = 0; n < pwlen; n++)
		add(&c, pw, pwlen);
	h->out(&c.vtable, b);
	repeat_digest(pseq, pwlen, b, hl);

	/* S sequence: slen bytes of H(salt repeated 16 + A[0] times). */
	h->init(&c.vtable);
	for (n = 0; n < 16u + a[0]; n++)
		add(&c, salt, slen);
	h->out(&c.vtable, b);
	memcpy(sseq, b, slen);

	for (unsigned long r = 0; r < rounds; r++) {
		h->init(&c.vtable);
		if (r & 1)
			add(&c, pseq, pwlen);
		else
			add(&c, a, hl);
		if (r % 3 != 0)
			add(&c, sseq, slen);
		if (r % 7 != 0)
			add(&c, pseq, pwlen);
		if (r & 1)
			add(&c, a, hl);
		else
			add(&c, pseq, pwlen);
		h->out(&c.vtable, a);
	}
}

/* The final digest in crypt base64, 6 bits at a time from the low end of
 * each 3-byte group; a short last group gives one char more than bytes. */
static void encode_digest(const struct scheme *sc, const unsigned char *d,
			  struct buf *out)
{
	size_t i, k;

	for (i = 0; i < sc->hlen; i += 3) {
		size_t n = sc->hlen - i < 3 ? sc->hlen - i : 3;
		unsigned long w = 0;

		for (k = 0; k < n; k++)
			w = w << 8 | d[sc->order[i + k]];
		for (k = 0; k <= n; k++, w >>= 6)
			buf_addc(out, crypt64[w & 63]);
	}
}

int passwd_crypt(const char *pw, size_t pwlen, const char *setting, char *out,
		 size_t outlen)
{
	struct setting st;
	unsigned char a[64];
	struct buf b;

	if (pwlen > PASSWD_MAX_LEN || parse_setting(setting, &st) != 0)
		return -1;
	buf_init(&b, out, outlen);
	if (st.custom)
		buf_printf(&b, "$%c$rounds=%lu$", st.sc->id, st.rounds);
	else
		buf_printf(&b, "$%c$", st.sc->id);
	/* Room for the salt, '$', the digest and the NUL, checked before
	 * the slow part. */
	if (b.full || !buf_fits(&b, sat_add(st.salt_len, 1), sat_add(st.sc->enclen, 1)))
		return -1;
	sha_crypt(st.sc, (const unsigned char *)pw, pwlen,
		  (const unsigned char *)st.salt, st.salt_len, st.rounds, a);
	buf_add(&b, st.salt, st.salt_len);
	buf_addc(&b, '$');
	encode_digest(st.sc, a, &b);
	return b.full || buf_nul(&b) != 0 ? -1 : 0;
}

static int ct_equal(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* A stored hash must be exactly what crypt writes: a salt that needed no
 * cutting, then '$' and the digest in the crypt alphabet. */
static int hash_wellformed(const char *hash, const struct setting *st)
{
	const char *d = st->end + 1;
	size_t i;

	if (*st->end != '$' || (size_t)(st->end - st->salt) > SALT_MAX)
		return 0;
	for (i = 0; i < st->sc->enclen; i++) {
		if (d[i] == '\0' || !strchr(crypt64, d[i]))
			return 0;
	}
	return d[i] == '\0' && (size_t)(d + i - hash) < PASSWD_HASH_MAX;
}

int passwd_hash_usable(const char *hash)
{
	struct setting st;

	return parse_setting(hash, &st) == 0 && hash_wellformed(hash, &st);
}

int passwd_verify(const char *pw, size_t pwlen, const char *hash)
{
	struct setting st;
	char out[PASSWD_HASH_MAX];
	size_t n;

	if (parse_setting(hash, &st) != 0 || !hash_wellformed(hash, &st))
		return -1;
	/* Too long to be anyone's password: a wrong one, not a bad file. */
	if (pwlen > PASSWD_MAX_LEN)
		return 0;
	if (passwd_crypt(pw, pwlen, hash, out, sizeof(out)) != 0)
		return -1;
	/* Lengths differ only for a non-canonical "rounds=0500": public. */
	n = strlen(out);
	if (strlen(hash) != n)
		return 0;
	return ct_equal(out, hash, n);
}

/* Urandom first: it never blocks and exists on every kernel; getrandom()
 * covers a chroot without /dev (it needs Linux 3.17). */
static int rand_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	while (fd >= 0 && got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	while (got < len) {
		ssize_t n = getrandom(p + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

int passwd_make(const char *pw, size_t pwlen, char *out, size_t outlen)
{
	unsigned char r[SALT_MAX];
	char setting[3 + SALT_MAX + 1] = "$6$";

	if (rand_bytes(r, sizeof(r)) != 0)
		return -1;
	/* 64 divides 256, so the low 6 bits of a random byte are uniform. */
	for (size_t i = 0; i < SALT_MAX; i++)
		setting[3 + i] = crypt64[r[i] & 63];
	setting[3 + SALT_MAX] = '\0';
	return passwd_crypt(pw, pwlen, setting, out, outlen);
}

/* --- verified-credential cache ----------------------------------------- */

struct cache_entry {
	unsigned char mac[32];
	unsigned long long used;        /* LRU stamp; 0 = empty */
};

static struct cache_entry cache[PASSWD_CACHE_SIZE];
static unsigned long long cache_clock;
static br_hmac_key_context cache_key;
static int cache_ready;

void passwd_cache_init(void)
{
	unsigned char secret[32];

	passwd_cache_flush();
	cache_ready = rand_bytes(secret, sizeof(secret)) == 0;
	if (cache_ready)
		br_hmac_key_init(&cache_key, &br_sha256_vtable, secret, sizeof(secret));
	memset(secret, 0, sizeof(secret));
}

void passwd_cache_flush(void)
{
	memset(cache, 0, sizeof(cache));
	cache_clock = 0;
}

/* The user name has no NUL and the hash no NUL, so "user NUL pw NUL hash"
 * splits one way only even when pw holds a NUL. */
static int cache_mac(const char *user, const char *pw, size_t pwlen,
		     const char *hash, unsigned char *mac)
{
	br_hmac_context hc;

	if (!cache_ready || pwlen > PASSWD_MAX_LEN)
		return -1;
	br_hmac_init(&hc, &cache_key, 0);
	br_hmac_update(&hc, user, strlen(user) + 1);
	br_hmac_update(&hc, pw, pwlen);
	br_hmac_update(&hc, "", 1);
	br_hmac_update(&hc, hash, strlen(hash));
	br_hmac_out(&hc, mac);
	return 0;
}

static int cache_find(const unsigned char *mac)
{
	for (int i = 0; i < PASSWD_CACHE_SIZE; i++) {
		if (cache[i].used &&
		    ct_equal(cache[i].mac, mac, sizeof(cache[i].mac)))
			return i;
	}
	return -1;
}

int passwd_cache_check(const char *user, const char *pw, size_t pwlen,
		       const char *hash)
{
	unsigned char mac[32];
	int i;

	if (cache_mac(user, pw, pwlen, hash, mac) != 0)
		return 0;
	i = cache_find(mac);
	if (i < 0)
		return 0;
	cache[i].used = ++cache_clock;
	return 1;
}

void passwd_cache_add(const char *user, const char *pw, size_t pwlen,
		      const char *hash)
{
	unsigned char mac[32];
	int i, victim = 0;

	if (cache_mac(user, pw, pwlen, hash, mac) != 0)
		return;
	i = cache_find(mac);
	if (i < 0) {
		for (i = 1; i < PASSWD_CACHE_SIZE; i++) {
			if (cache[i].used < cache[victim].used)
				victim = i;
		}
		i = victim;
		memcpy(cache[i].mac, mac, sizeof(mac));
	}
	cache[i].used = ++cache_clock;
}
