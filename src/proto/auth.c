/* auth — password checks, failed-login tracking, plaintext policy (see
 * auth.h). Limits: CONFIG_AUTH_FAIL_TRACK addresses (IPv6 per /64),
 * CONFIG_AUTH_FAIL_MAX failures, CONFIG_AUTH_FAIL_BAN seconds. An entry
 * is only reused once its failures are forgotten (a ban period old);
 * while every entry is live, an address's failures are counted in the
 * entry of its network (IPv4 /24, IPv6 /48) in a second table a quarter
 * the size, and only when that is full too in one overflow entry, which
 * bans every address no entry holds, except the trusted networks
 * (relay_networks, plaintext_auth_networks). So neither a flood of
 * failures from other addresses (lifting a ban) nor guessing from more
 * addresses than the table holds (each one's count pushed out before it
 * bans) gets past the limit, and locking everybody out takes failures
 * from more networks than both tables hold.
 * The first check of a password costs one SHA-crypt (5000 rounds: tens of
 * ms on x86, a few hundred on a MIPS router) and stalls the loop that
 * long; the cache makes the next ones free. */
#include "proto/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/sasl.h"
#include "store/passwd.h"
#include "store/users.h"
#include "tls/tls.h"

struct fail {
	unsigned char addr[16];
	int family;
	int count;
	int64_t last, until;
};

static struct fail fails[CONFIG_AUTH_FAIL_TRACK];
static struct fail nets[CONFIG_AUTH_FAIL_TRACK / 4 + 1];  /* by /24, /48 */
static struct fail overflow;    /* every address no entry holds */

/* "$6$" hash of a random string: never matches, costs what a real one does. */
static const char dummy_hash[] = "$6$postiedummy$96oO8HluOrIZzzLaquFGPPah7GSl3NNnV"
	"H9.TFOcaX1Lfq4xCk8t3fjItNOAkf1vkA4IS/95FM1ihkib.VKHn.";

/* The name the last check was for (sanitized), for the failed-login log
 * line that follows it; cleared once logged. */
static char last_user[USER_NAME_MAX + 8];

int auth_check(const char *user, size_t ulen, const char *pw, size_t pwlen,
	       const char **canon)
{
	int i = users_find(users, user, ulen);

	str_printable(last_user, sizeof(last_user), user, ulen);
	const char *name, *hash;
	int ok;

	if (i < 0 || !users->v[i].hash[0]) {
		/* Same work as a real check, so timing does not tell which
		 * names exist; a user without a hash cannot log in. */
		passwd_verify(pw, pwlen, dummy_hash);
		return 0;
	}
	name = users->v[i].name;
	hash = users->v[i].hash;
	if (passwd_cache_check(name, pw, pwlen, hash)) {
		*canon = name;
		return 1;
	}
	ok = passwd_verify(pw, pwlen, hash) == 1;
	if (ok) {
		passwd_cache_add(name, pw, pwlen, hash);
		*canon = name;
	}
	return ok;
}

static int banning(const struct fail *f, int64_t now)
{
	return f->until > now;
}

/* Failures a ban period old are forgotten; such an entry is free. */
static int stale(const struct fail *f, int64_t now)
{
	return !f->family ||
	       (!banning(f, now) && now - f->last > (int64_t)CONFIG_AUTH_FAIL_BAN * 1000);
}

/* The entry of peer's client key (IPv6 per /64). A new one takes a free
 * or stale entry, never a live one: an active ban or a count on its way
 * to one is never evicted. NULL when none is free (the caller counts the
 * failure in the overflow entry). */
static struct fail *find(struct fail *tab, size_t n, int fam,
			 const unsigned char key[16], int create)
{
	int64_t now = now_ms();
	struct fail *victim = NULL;

	for (size_t i = 0; i < n; i++) {
		struct fail *f = &tab[i];
		if (f->family == fam && memcmp(f->addr, key, 16) == 0)
			return f;
		if (stale(f, now) && (!victim || f->last < victim->last))
			victim = f;
	}
	if (!create || !victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->family = fam;
	memcpy(victim->addr, key, 16);
	return victim;
}

static struct fail *lookup(const struct sockaddr *sa, int create)
{
	unsigned char key[16];
	int fam = net_client_key(sa, key);

	return find(fails, ARRAY_LEN(fails), fam, key, create);
}

/* The entry of peer's network, IPv4 /24 or IPv6 /48. */
static struct fail *lookup_net(const struct sockaddr *sa, int create)
{
	unsigned char key[16];
	int fam = net_client_key(sa, key);

	if (fam == AF_INET)
		key[3] = 0;
	else
		key[6] = key[7] = 0;
	return find(nets, ARRAY_LEN(nets), fam, key, create);
}

static int trusted(const struct sockaddr *sa)
{
	for (int i = 0; i < conf->nplain_auth_nets; i++)
		if (net_cidr_match(&conf->plain_auth_nets[i], sa))
			return 1;
	for (int i = 0; i < conf->nrelay_nets; i++)
		if (net_cidr_match(&conf->relay_nets[i], sa))
			return 1;
	return 0;
}

int auth_banned(const struct sockaddr *peer)
{
	struct fail *f = lookup(peer, 0);
	int64_t now = now_ms();

	if (f)
		return banning(f, now);
	if ((f = lookup_net(peer, 0)) != NULL)
		return banning(f, now);
	return banning(&overflow, now) && !trusted(peer);
}

int auth_bans(void (*fn)(void *ctx, const char *addr, long seconds_left), void *ctx)
{
	int64_t now = now_ms();
	char text[INET6_ADDRSTRLEN + 4];
	int n = 0;

	for (size_t i = 0; i < ARRAY_LEN(fails); i++) {
		const struct fail *f = &fails[i];

		if (!f->family || f->until <= now ||
		    !inet_ntop(f->family, f->addr, text, sizeof(text)))
			continue;
		if (f->family == AF_INET6)
			strcat(text, "/64");
		fn(ctx, text, (long)((f->until - now + 999) / 1000));
		n++;
	}
	for (size_t i = 0; i < ARRAY_LEN(nets); i++) {
		const struct fail *f = &nets[i];

		if (!f->family || f->until <= now ||
		    !inet_ntop(f->family, f->addr, text, sizeof(text)))
			continue;
		strcat(text, f->family == AF_INET6 ? "/48" : "/24");
		fn(ctx, text, (long)((f->until - now + 999) / 1000));
		n++;
	}
	if (banning(&overflow, now)) {
		fn(ctx, "every-address-not-listed",
		   (long)((overflow.until - now + 999) / 1000));
		n++;
	}
	return n;
}

static int auth_failed(const struct sockaddr *peer)
{
	struct fail *f = lookup(peer, 1);
	int64_t now = now_ms();

	if (!f && (f = lookup_net(peer, 1)) != NULL &&
	    !banning(f, now) && f->count + 1 >= CONFIG_AUTH_FAIL_MAX)
		log_msg(LOGL_WARN, "auth: failed logins from more addresses "
			"than the table holds (%d): banning the addresses of "
			"this one's network it does not hold for %d s",
			CONFIG_AUTH_FAIL_TRACK, CONFIG_AUTH_FAIL_BAN);
	if (!f) {
		/* Both tables are live: count with all the others they
		 * cannot hold, rather than forget someone's count. */
		f = &overflow;
		if (!banning(f, now) && f->count + 1 >= CONFIG_AUTH_FAIL_MAX)
			log_msg(LOGL_WARN, "auth: failed logins from more networks "
				"than the tables hold: banning every address they "
				"do not hold, outside the trusted networks, for %d s",
				CONFIG_AUTH_FAIL_BAN);
	}
	/* Failures older than a ban period are forgotten. */
	if (f->last && now - f->last > (int64_t)CONFIG_AUTH_FAIL_BAN * 1000)
		f->count = 0;
	f->last = now;
	if (++f->count >= CONFIG_AUTH_FAIL_MAX) {
		f->until = now + (int64_t)CONFIG_AUTH_FAIL_BAN * 1000;
		f->count = 0;
		return -1;
	}
	return CONFIG_AUTH_FAIL_DELAY_MS * (f->count < 5 ? f->count : 5);
}

int auth_allowed(const struct conn *c)
{
	if (!users || users->n == 0)
		return 0;
	if (c->tls)
		return 1;
	for (int i = 0; i < conf->nplain_auth_nets; i++)
		if (net_cidr_match(&conf->plain_auth_nets[i],
				   (const struct sockaddr *)&c->peer))
			return 1;
	return 0;
}

void auth_reload(void)
{
	passwd_cache_flush();
}

int auth_plain_check(const unsigned char *buf, size_t len, const char **canon)
{
	struct sasl_plain p;

	if (sasl_plain_parse(buf, len, &p) != 0)
		return 0;
	if (p.authzid_len && (p.authzid_len != p.authcid_len ||
			      memcmp(p.authzid, p.authcid, p.authcid_len) != 0))
		return 0;
	return auth_check(p.authcid, p.authcid_len, p.passwd, p.passwd_len, canon);
}

int auth_plain_response(const char *b64, size_t len, const char **canon)
{
	unsigned char buf[768];
	int n, ok;

	if (len == 1 && b64[0] == '*')
		return AUTH_CANCEL;
	n = (len == 1 && b64[0] == '=') ? 0 : b64_decode(b64, len, buf, sizeof(buf));
	if (n < 0)
		return AUTH_BADB64;
	ok = auth_plain_check(buf, (size_t)n, canon);
	explicit_bzero(buf, sizeof(buf));
	return ok;
}

int auth_fail_wait(struct conn *c, const char *proto)
{
	int delay = auth_failed((const struct sockaddr *)&c->peer);

	log_msg(LOGL_WARN, "conn %u %s: %s failed login%s%s%s", c->id, c->peer_str,
		c->listen_kind >= 0 ? conf_service_name(c->listen_kind) : proto,
		last_user[0] ? " for '" : "",
		last_user, last_user[0] ? "'" : "");
	last_user[0] = '\0';
	if (delay < 0)
		return -1;
	/* The answer waits, the loop does not. */
	conn_suspend(c);
	conn_deadline_ms(c, delay > 0 ? delay : 1);
	return 0;
}
