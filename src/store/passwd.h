/* passwd — SHA-crypt password hashes ("$5$" SHA-256, "$6$" SHA-512, as
 * made by glibc crypt(3), `openssl passwd -5/-6`, `mkpasswd -m sha-512`)
 * and a small cache of recently verified credentials, so a client that
 * logs in every minute does not cost 5000 hash rounds each time. */
#ifndef POSTIE_PASSWD_H
#define POSTIE_PASSWD_H

#include <stddef.h>

/* Longest password accepted. The spec hashes the password about twice per
 * round, so its length multiplies the cost a client can make us pay;
 * SASL PLAIN stops at 255 anyway. */
#define PASSWD_MAX_LEN 256

/* Room for the longest hash: "$6$rounds=999999999$" + 16 salt + "$" + 86. */
#define PASSWD_HASH_MAX 128

/* Rounds without "rounds=", and the spec's clamp for an explicit value. */
#define PASSWD_ROUNDS_DEFAULT 5000
#define PASSWD_ROUNDS_MIN 1000
#define PASSWD_ROUNDS_MAX 999999999

/* Our own ceiling: hashes asking for more are refused (-1), not run, as
 * a check blocks the whole single-threaded daemon. A round costs one or
 * two hash compressions for passwords up to ~40 bytes. Estimated for a
 * 580 MHz MIPS 24Kc router (roughly 40k SHA-512 compressions/s): 5000
 * rounds ~0.15 s, this limit ~3 s, the spec's 999999999 about 7 hours.
 * An x86-64 core does 5000 rounds of $6$ in ~2 ms. passlib's (Ansible's)
 * default of 656000 rounds is refused: rehash with `postie passwd`. */
#define PASSWD_ROUNDS_LIMIT 100000

/* Hashes pw with setting "$5$salt", "$6$rounds=N$salt" or a whole hash
 * (the salt ends at the next '$', at most 16 chars are used). Writes the
 * full NUL-terminated hash to out. 0, or -1 for an unsupported scheme, a
 * malformed setting, pwlen > PASSWD_MAX_LEN, rounds over
 * PASSWD_ROUNDS_LIMIT or no room in out. */
int passwd_crypt(const char *pw, size_t pwlen, const char *setting, char *out,
		 size_t outlen);

/* 1 if pw matches hash, 0 if not, -1 if hash is not a well-formed $5$/$6$
 * hash we accept ("", "*", "!...", "$1$", "$2y$", too many rounds...). The
 * comparison takes the same time wherever the strings differ. */
int passwd_verify(const char *pw, size_t pwlen, const char *hash);

/* 1 if passwd_verify() can check hash (a well-formed $5$/$6$ hash within
 * PASSWD_ROUNDS_LIMIT), else 0. */
int passwd_hash_usable(const char *hash);

/* A new "$6$" hash of pw with a random 16-char salt and default rounds.
 * 0, or -1 (no randomness, pw too long, no room). */
int passwd_make(const char *pw, size_t pwlen, char *out, size_t outlen);

/* Credential cache: PASSWD_CACHE_SIZE entries, least recently used
 * replaced. An entry is HMAC-SHA256(secret, user NUL pw NUL hash) under a
 * random per-process key: never the password, and a changed hash in the
 * users file no longer matches. Only add after passwd_verify() said 1.
 * Until passwd_cache_init() got randomness, the cache stays empty. */
#define PASSWD_CACHE_SIZE 16

void passwd_cache_init(void);
/* 1 if this exact (user, pw, hash) was added and not evicted, else 0. */
int passwd_cache_check(const char *user, const char *pw, size_t pwlen,
		       const char *hash);
void passwd_cache_add(const char *user, const char *pw, size_t pwlen,
		      const char *hash);
void passwd_cache_flush(void);

#endif
