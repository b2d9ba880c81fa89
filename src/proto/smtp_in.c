/* smtp_in — SMTP server sessions (see smtp_in.h).
 *
 * One enum of states, written only by sess_enter() (the skeleton the
 * servers share, session.c: pool, pump, timeouts, login gate), a
 * command table of {verb, allowed states, handler}: handlers validate
 * and reply before they act. The transaction (spool file, counts) is
 * separate from the session. The message goes to a tmp spool file while
 * it arrives; at the end of DATA it is appended to each recipient's mbox
 * (fsync) and the tmp file is dropped, so a local message is written to
 * storage once. Limits: CONFIG_SMTP_* (line, path, recipients, commands,
 * errors, timeouts) and max_message_size. */
#include "proto/smtp_in.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/address.h"
#include "proto/auth.h"
#include "proto/sasl.h"
#include "proto/session.h"
#include "proto/smtp_data.h"
#include "store/aliases.h"
#include "store/delivery.h"
#include "store/queue.h"
#include "store/spool.h"
#include "store/users.h"
#include "tls/tls.h"

#define SMTP_HELO_MAX 64
#define SMTP_LOCK_RETRY_MS 200
#define SMTP_STEP ((size_t)CONFIG_LOOP_STEP_KB * 1024)
#define SMTP_MAX_MAILBOXES 256  /* distinct mailboxes per message */
#define SMTP_REPLY_ROOM 520     /* free output needed to take a command */
_Static_assert(SMTP_REPLY_ROOM <= CONFIG_CONN_OUTBUF,
	       "CONN_OUTBUF must hold SMTP_REPLY_ROOM, or no command is read");

enum smtp_state {
	SMTP_CONNECTED,         /* greeted, no HELO/EHLO yet */
	SMTP_READY,             /* HELO/EHLO done, no transaction */
	SMTP_MAIL,              /* MAIL accepted */
	SMTP_RCPT,              /* at least one RCPT accepted */
	SMTP_DATA,              /* receiving the message */
	SMTP_DELIVER,           /* waiting for a locked mbox */
	SMTP_AUTH,              /* AUTH exchange: waiting for a response
				 * (never without CONFIG_AUTH: the checks
				 * say so, and such builds drop the code) */
	SMTP_AUTH_WAIT,         /* failed login: delaying the answer */
	SMTP_QUIT,              /* closing */
};

static const char *const state_names[] = {
	"connected", "ready", "mail", "rcpt", "data", "deliver", "auth",
	"auth-wait", "quit",
};

enum { MECH_PLAIN = 1, MECH_LOGIN_USER, MECH_LOGIN_PASS };

struct smtp_tx {
	struct spool_file f;
	struct smtp_data data;
	struct smtp_hops hops;
	int nrcpt;
	int nremote;            /* recipients for other domains (relay) */
	int smtputf8;
	int too_big;
	time_t arrival;
	int64_t deliver_until;
	/* delivering (this session owns dv and dls): the mailbox being
	 * appended to */
	int dv_i;
};

struct smtp_session {
	struct session ss;      /* ss.state: enum smtp_state */
	int esmtp;
	unsigned nmsgs;
	char helo[SMTP_HELO_MAX + 1];
	char user[USER_NAME_MAX + 1];   /* authenticated user, or "" */
	char login[USER_NAME_MAX + 1];  /* AUTH LOGIN: name between steps */
	int mech;
	struct smtp_tx tx;
};

static struct smtp_session pool[CONFIG_MAX_CONNECTIONS];

/* Shared scratch for message bytes on their way to the spool file; the
 * loop is single-threaded and every use finishes before it returns. */
static char databuf[16384];

static void reply(struct conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply(struct conn *c, int code, const char *fmt, ...)
{
	char pfx[8];
	va_list ap;

	snprintf(pfx, sizeof(pfx), "%d ", code);        /* three digits */
	va_start(ap, fmt);
	sess_vreply(c, pfx, 399, fmt, ap);
	va_end(ap);
	if (code >= 500)
		sess_count_error(c);
}

static void tx_reset(struct smtp_session *s)
{
	spool_discard(&s->tx.f);
	memset(&s->tx, 0, sizeof(s->tx));
	s->tx.f.fd = -1;
}

/* The whole of a command, or of the message after DATA. */
static void wait_command(struct conn *c)
{
	struct smtp_session *s = c->sess;

	conn_deadline(c, s->ss.state == SMTP_DATA ? CONFIG_SMTP_TIMEOUT_DATA :
		      CONFIG_SMTP_TIMEOUT_CMD);
}

/* ---- HELO / EHLO ---------------------------------------------------- */

static void set_helo(struct smtp_session *s, const char *arg, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < SMTP_HELO_MAX; i++) {
		char ch = arg[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			 (ch >= '0' && ch <= '9') || (ch && strchr(".-:[]_", ch));
		s->helo[i] = ok ? ch : '?';
	}
	s->helo[i] = '\0';
}

static int helo_arg(struct conn *c, struct smtp_session *s, const char *arg,
		    size_t len, const char *verb)
{
	if (len == 0) {
		reply(c, 501, "5.5.4 Syntax: %s hostname", verb);
		return -1;
	}
	tx_reset(s);
	set_helo(s, arg, len);
	return 0;
}

static void cmd_helo(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	if (helo_arg(c, s, arg, len, "HELO") != 0)
		return;
	s->esmtp = 0;
	sess_enter(c, SMTP_READY);
	reply(c, 250, "%s", conf->hostname);
}

static void cmd_ehlo(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	if (helo_arg(c, s, arg, len, "EHLO") != 0)
		return;
	s->esmtp = 1;
	sess_enter(c, SMTP_READY);
	/* At most 470 bytes: CONN_OUTBUF holds SMTP_REPLY_ROOM (520). */
	conn_printf(c, "250-%s greets [%s]\r\n"
		    "250-PIPELINING\r\n"
		    "250-SIZE %llu\r\n"
		    "250-8BITMIME\r\n"
		    "%s%s%s"
		    "250 ENHANCEDSTATUSCODES\r\n",
		    conf->hostname, c->peer_str,
		    (unsigned long long)conf->max_message_size,
		    CONFIG_FEATURE_SMTP_SMTPUTF8 ? "250-SMTPUTF8\r\n" : "",
		    CONFIG_TLS && sess_tls_offered(c) ? "250-STARTTLS\r\n" : "",
		    CONFIG_AUTH && !s->user[0] && auth_allowed(c) ?
		    "250-AUTH PLAIN LOGIN\r\n" : "");
}

/* ---- MAIL ----------------------------------------------------------- */

/* "FROM:" / "TO:" prefix, then optional blanks (lenient like Postfix). */
static const char *after_prefix(const char *arg, size_t len, const char *pfx,
				size_t *rest)
{
	size_t pl = strlen(pfx), i;

	if (len < pl || strncasecmp(arg, pfx, pl) != 0)
		return NULL;
	for (i = pl; i < len && arg[i] == ' '; i++)
		;
	*rest = len - i;
	return arg + i;
}

/* Walks "KEY[=VALUE]" parameters after a path; fn returns 0 to go on. */
typedef int (*param_fn)(struct conn *c, struct smtp_session *s,
			const char *key, size_t klen, const char *val, size_t vlen);

static int each_param(struct conn *c, struct smtp_session *s, const char *p,
		      size_t len, param_fn fn)
{
	size_t i = 0;

	while (i < len) {
		size_t start, klen;
		const char *eq;

		while (i < len && p[i] == ' ')
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && p[i] != ' ')
			i++;
		eq = memchr(p + start, '=', i - start);
		klen = eq ? (size_t)(eq - p - start) : i - start;
		if (fn(c, s, p + start, klen, eq ? eq + 1 : NULL,
		       eq ? (size_t)(p + i - eq - 1) : 0) != 0)
			return -1;
	}
	return 0;
}

static int mail_param(struct conn *c, struct smtp_session *s, const char *key,
		      size_t klen, const char *val, size_t vlen)
{
	char num[24];
	uint64_t size;

	if (str_ieq(key, klen, "SIZE") && val) {
		if (str_copy(num, sizeof(num), val, vlen) != 0 ||
		    parse_u64(num, UINT64_MAX, &size) != 0) {
			reply(c, 501, "5.5.4 Bad SIZE parameter");
			return -1;
		}
		if (size > conf->max_message_size) {
			reply(c, 552, "5.3.4 Message size exceeds fixed limit");
			return -1;
		}
		return 0;
	}
	if (str_ieq(key, klen, "BODY") && val) {
		if (str_ieq(val, vlen, "7BIT") || str_ieq(val, vlen, "8BITMIME"))
			return 0;
		reply(c, 501, "5.5.4 Unsupported BODY type");
		return -1;
	}
	if (CONFIG_FEATURE_SMTP_SMTPUTF8 && !val && str_ieq(key, klen, "SMTPUTF8")) {
		s->tx.smtputf8 = 1;
		return 0;
	}
	reply(c, 555, "5.5.4 Unsupported option: %.*s", (int)(klen > 32 ? 32 : klen), key);
	return -1;
}

/* Submission ports: a login comes before any mail. */
static int needs_auth(const struct conn *c)
{
	return CONFIG_AUTH && c->listen_kind != LISTEN_SMTP;
}

struct owned {
	const char *user;
	int hit;
};

static void owned_fn(void *ctx, int user, const char *remote)
{
	struct owned *o = ctx;

	(void)remote;
	if (user >= 0 && strcmp(users->v[user].name, o->user) == 0)
		o->hit = 1;
}

/* The sender is the user's own address in a local domain, or an alias
 * that delivers to the user. */
static int sender_owned(const struct smtp_session *s, const struct addr *a)
{
	char key[CONFIG_SMTP_LOCAL_MAX + 1];
	struct owned o = { .user = s->user };

	if (!a->domain || (a->flags & (ADDR_LITERAL | ADDR_ODD_LOCAL)) ||
	    !conf_is_local_domain(conf, a->domain, a->domain_len) ||
	    addr_local_key(a, key, sizeof(key)) != 0)
		return 0;
	if (strcmp(key, s->user) == 0)
		return 1;
	aliases_expand(aliases, users, key, strlen(key), owned_fn, &o);
	return o.hit;
}

static void cmd_mail(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	struct addr a;
	size_t rest;
	const char *p = after_prefix(arg, len, "FROM:", &rest);
	int n;

	if (!p) {
		reply(c, 501, "5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (needs_auth(c) && !s->user[0]) {
		if (!c->tls && !auth_allowed(c))
			reply(c, 530, "5.7.0 Must issue a STARTTLS command first");
		else
			reply(c, 530, "5.7.0 Authentication required");
		return;
	}
	n = addr_parse_path(p, rest, &a, CONFIG_FEATURE_SMTP_SMTPUTF8);
	if (n < 0) {
		reply(c, 501, "5.1.7 Bad sender address syntax");
		return;
	}
	tx_reset(s);
	if (each_param(c, s, p + n, rest - (size_t)n, mail_param) != 0) {
		s->tx.smtputf8 = 0;
		return;
	}
	if ((a.flags & ADDR_UTF8) && !s->tx.smtputf8) {
		reply(c, 553, "5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	/* Wherever a session logged in (port 25 offers AUTH after STARTTLS
	 * too): a login is what lets it relay, so it speaks for its user. */
	if (CONFIG_AUTH && s->user[0] && conf->sender_login_check &&
	    !(a.flags & ADDR_NULL) && !sender_owned(s, &a)) {
		reply(c, 553, "5.7.1 Sender address rejected: not owned by "
		      "user %s", s->user);
		return;
	}
	if (spool_create(&s->tx.f) != 0) {
		log_msg(LOGL_ERR, "spool: cannot create a message file: %s",
			strerror(errno));
		reply(c, 452, "4.3.1 Insufficient system storage");
		return;
	}
	s->tx.arrival = time(NULL);
	spool_write(&s->tx.f, "F ", 2);
	if (!(a.flags & ADDR_NULL))
		spool_write(&s->tx.f, a.local, (size_t)(a.domain ?
			a.domain + a.domain_len - a.local : (long)a.local_len));
	spool_write(&s->tx.f, "\n", 1);
	sess_enter(c, SMTP_MAIL);
	reply(c, 250, "2.1.0 Ok");
}

/* ---- RCPT ----------------------------------------------------------- */

static void count_local(void *ctx, int user, const char *remote)
{
	(void)remote;
	if (user >= 0)
		++*(int *)ctx;
}

/* Local recipient check: >0 deliverable, 0 unknown, -1 only remote. */
static int local_rcpt(const char *key)
{
	int nlocal = 0, n;

	n = aliases_expand(aliases, users, key, strlen(key), count_local, &nlocal);
	if (n > 0)
		return nlocal > 0 || CONFIG_RELAY ? 1 : -1;
	return users_find(users, key, strlen(key)) >= 0;
}

/* Who may send to other domains: authenticated users and relay_networks.
 * Address literals, source routes and local parts holding % ! or @ never
 * relay, whoever asks. */
static int relay_allowed(const struct conn *c, const struct smtp_session *s,
			 const struct addr *a)
{
	if (!CONFIG_RELAY || (a->flags & (ADDR_LITERAL | ADDR_ROUTE | ADDR_ODD_LOCAL)))
		return 0;
	if (CONFIG_AUTH && s->user[0])
		return 1;
	for (int i = 0; i < conf->nrelay_nets; i++)
		if (net_cidr_match(&conf->relay_nets[i], (const struct sockaddr *)&c->peer))
			return 1;
	return 0;
}

static void cmd_rcpt(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	char key[CONFIG_SMTP_LOCAL_MAX + 1], shown[80];
	const char *dom;
	size_t rest, dlen;
	struct addr a;
	const char *p = after_prefix(arg, len, "TO:", &rest);
	int n, ok;

	if (!p) {
		reply(c, 501, "5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (s->tx.nrcpt >= CONFIG_SMTP_MAX_RCPT) {
		reply(c, 452, "4.5.3 Too many recipients");
		return;
	}
	n = addr_parse_path(p, rest, &a, s->tx.smtputf8);
	if (n == ADDR_E8BIT) {
		reply(c, 553, "5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (n < 0 || (a.flags & ADDR_NULL)) {
		reply(c, 501, "5.1.3 Bad recipient address syntax");
		return;
	}
	if (n < (int)rest) {
		reply(c, 555, "5.5.4 Unsupported option");
		return;
	}
	dom = a.domain;
	dlen = a.domain_len;
	if (a.flags & ADDR_NODOMAIN) {
		dom = conf->local_domains[0];
		dlen = strlen(dom);
	}
	str_printable(shown, sizeof(shown), a.local, (size_t)(a.domain ?
		a.domain + a.domain_len - a.local : (long)a.local_len));
	if ((a.flags & ADDR_LITERAL) || !conf_is_local_domain(conf, dom, dlen)) {
		if (!relay_allowed(c, s, &a)) {
			log_msg(LOGL_INFO, "conn %u %s: relay denied to <%s>", c->id,
				c->peer_str, shown);
			reply(c, 550, "5.7.1 Relaying denied");
			return;
		}
		spool_write(&s->tx.f, "R ", 2);
		spool_write(&s->tx.f, a.local, (size_t)(a.domain + a.domain_len - a.local));
		spool_write(&s->tx.f, "\n", 1);
		s->tx.nrcpt++;
		s->tx.nremote++;
		sess_enter(c, SMTP_RCPT);
		reply(c, 250, "2.1.5 Ok");
		return;
	}
	ok = 0;
	if (!(a.flags & ADDR_ODD_LOCAL) && addr_local_key(&a, key, sizeof(key)) == 0)
		ok = local_rcpt(key);
	if (ok < 0) {
		reply(c, 550, "5.7.1 <%s>: alias has only remote targets and "
		      "this build does not relay", shown);
		return;
	}
	if (ok == 0) {
		reply(c, 550, "5.1.1 <%s>: Recipient address rejected: "
		      "User unknown", shown);
		return;
	}
	spool_write(&s->tx.f, "R ", 2);
	spool_write(&s->tx.f, key, strlen(key));
	spool_write(&s->tx.f, "@", 1);
	spool_write(&s->tx.f, dom, dlen);
	spool_write(&s->tx.f, "\n", 1);
	s->tx.nrcpt++;
	sess_enter(c, SMTP_RCPT);
	reply(c, 250, "2.1.5 Ok");
}

/* ---- DATA and delivery ---------------------------------------------- */

struct env_first {
	char rcpt[CONFIG_SMTP_PATH_MAX + 1];
	int n;
};

static int env_first_rcpt(void *ctx, char kind, const char *val, size_t len)
{
	struct env_first *e = ctx;

	if (kind == 'R' && e->n++ == 0)
		str_copy(e->rcpt, sizeof(e->rcpt), val, len);
	return 0;
}

static void write_received(struct conn *c, struct smtp_session *s)
{
	char buf[1024], date[64], forpart[CONFIG_SMTP_PATH_MAX + 16];
	struct env_first e = { .n = 0 };
	int n, tls, authed;

	rfc5322_date(date, sizeof(date), s->tx.arrival);
	forpart[0] = '\0';
	if (spool_read_envelope(&s->tx.f, env_first_rcpt, &e) == 0 && e.n == 1)
		snprintf(forpart, sizeof(forpart), "\n\tfor <%s>", e.rcpt);
	/* Neither without TLS, nor AUTH, in the build. */
	tls = CONFIG_TLS && c->tls;
	authed = CONFIG_AUTH && s->user[0];
	n = snprintf(buf, sizeof(buf),
		     "Received: from %s ([%s])\n\tby %s (postie) with %s%s%s%s id %s.%x.%x%s;"
		     "\n\t%s\n", s->helo, c->peer_str, conf->hostname,
		     s->tx.smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP",
		     tls ? (authed ? "SA (" : "S (") : authed ? "A" : "",
		     tls ? tls_describe(c->tls) : "",
		     tls ? ")" : "", conn_run_id(), c->id, s->nmsgs, forpart, date);
	if (n > 0)
		spool_write(&s->tx.f, buf, (size_t)n < sizeof(buf) ? (size_t)n :
			    sizeof(buf) - 1);
}

static void cmd_data(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	(void)arg;
	if (len > 0) {
		reply(c, 501, "5.5.4 Syntax: DATA");
		return;
	}
	spool_mark_data(&s->tx.f);
	write_received(c, s);
	smtp_data_init(&s->tx.data);
	smtp_hops_init(&s->tx.hops);
	sess_enter(c, SMTP_DATA);
	conn_deadline(c, CONFIG_SMTP_TIMEOUT_DATA);
	reply(c, 354, "End data with <CR><LF>.<CR><LF>");
}

/* Delivery: resolve the envelope again (tables may have been reloaded),
 * lock every mailbox, then append to each. */
struct deliver {
	int user[SMTP_MAX_MAILBOXES];
	int n;
	int overflow;
	int vanished;           /* a recipient no longer resolves */
	int remote;             /* an alias points elsewhere: queue it */
	char sender[CONFIG_SMTP_PATH_MAX + 1];
};

static struct deliver dv;
static struct delivery dls[SMTP_MAX_MAILBOXES];  /* one per mailbox */
/* The session whose delivery (dv, dls) spans loop passes: a message
 * is appended SMTP_STEP bytes a pass; others wait their turn. */
static struct smtp_session *dv_owner;

static void add_mailbox(void *ctx, int user, const char *remote)
{
	struct deliver *d = ctx;

	if (user < 0) {
		if (CONFIG_RELAY)
			d->remote = 1;
		else
			log_msg(LOGL_WARN, "alias target %s skipped: this build does "
				"not relay", remote);
		return;
	}
	for (int i = 0; i < d->n; i++)
		if (d->user[i] == user)
			return;
	if (d->n == SMTP_MAX_MAILBOXES) {
		d->overflow = 1;
		return;
	}
	d->user[d->n++] = user;
}

static int env_collect(void *ctx, char kind, const char *val, size_t len)
{
	struct deliver *d = ctx;

	if (kind == 'F') {
		str_copy(d->sender, sizeof(d->sender), val, len);
		return 0;
	}
	if (delivery_expand(val, len, add_mailbox, d) == 0) {
		/* Accepted at RCPT, gone after a reload: a temporary failure
		 * makes the client retry, and RCPT then says 550. */
		log_msg(LOGL_WARN, "recipient %.*s vanished from users/aliases "
			"before delivery", (int)(len > 80 ? 80 : len), val);
		d->vanished = 1;
	}
	return 0;
}

/* Unlocks mailboxes [from, to); with delivered, each hears of it. */
static void unlock_range(int from, int to, int delivered)
{
	for (int i = from; i < to; i++)
		delivery_end(&dls[i], delivered);
}

/* The message goes to the relay queue as it is; the 250 means it is on
 * disk there. 0, or -1 (4xx sent). */
static int to_queue(struct conn *c, struct smtp_session *s, const char *why)
{
	const char *name = s->tx.f.name;

	if (queue_commit(&s->tx.f) != 0) {
		log_msg(LOGL_ERR, "conn %u: cannot queue %s: %s", c->id, name,
			strerror(errno));
		reply(c, 451, "4.3.0 Queueing failed, try again later");
		return -1;
	}
	log_msg(LOGL_INFO, "conn %u %s: queued %s (%s) rcpt=%d", c->id,
		c->peer_str, name, why, s->tx.nrcpt);
	reply(c, 250, "2.0.0 Ok: queued as %s", name);
	return 0;
}

static int append_step(struct conn *c, struct smtp_session *s);

/* 0 delivered (reply sent), 1 retry later, 2 go on at the next pass
 * (appending, or another session's delivery has dv), -1 failed (reply
 * sent). Not inlined into deliver_step: smaller on MIPS16 apart. */
static __attribute__((noinline)) int try_deliver(struct conn *c,
						 struct smtp_session *s)
{
	int i, rc = MBOX_OK;

	if (dv_owner == s)
		return append_step(c, s);
	if (dv_owner)
		return 2;
	memset(&dv, 0, sizeof(dv));
	if (spool_read_envelope(&s->tx.f, env_collect, &dv) != 0 || dv.overflow ||
	    dv.vanished) {
		log_msg(LOGL_ERR, "conn %u: cannot deliver: %s", c->id,
			dv.overflow ? "too many mailboxes" : dv.vanished ?
			"a recipient vanished" : "envelope unreadable");
		reply(c, 451, "4.3.0 Local delivery failed, try again later");
		return -1;
	}
	if (CONFIG_RELAY && dv.remote)
		return to_queue(c, s, "alias with remote targets");
	for (i = 0; i < dv.n; i++) {
		rc = delivery_begin(&dls[i], users->v[dv.user[i]].name, dv.sender,
				    s->tx.arrival, s->tx.f.fd, s->tx.f.data_off,
				    s->tx.f.size - s->tx.f.data_off);
		if (rc != MBOX_OK)
			break;
	}
	if (rc != MBOX_OK) {
		int e = errno;
		unlock_range(0, i, 0);
		/* With a queue, a busy mailbox costs the client nothing. */
		if (CONFIG_RELAY && rc == MBOX_BUSY)
			return to_queue(c, s, "mailbox busy");
		if (rc == MBOX_BUSY && now_ms() < s->tx.deliver_until)
			return 1;
		if (rc == MBOX_BUSY) {
			log_msg(LOGL_WARN, "conn %u: mailbox %s stayed locked", c->id,
				users->v[dv.user[i]].name);
			reply(c, 451, "4.2.0 Mailbox busy, try again later");
		} else {
			log_msg(LOGL_ERR, "conn %u: mailbox %s: %s", c->id,
				users->v[dv.user[i]].name, strerror(e));
			reply(c, 451, "4.3.0 Local delivery failed, try again later");
		}
		return -1;
	}
	dv_owner = s;
	s->tx.dv_i = 0;
	return append_step(c, s);
}

/* Appends to each locked mailbox in turn, SMTP_STEP bytes a pass: 0
 * delivered (reply sent), 2 go on at the next pass, -1 failed (reply
 * sent). */
static int append_step(struct conn *c, struct smtp_session *s)
{
	struct smtp_tx *t = &s->tx;
	int i, rc;

	for (; t->dv_i < dv.n; t->dv_i++) {
		i = t->dv_i;
		rc = delivery_step(&dls[i], SMTP_STEP);
		if (rc == MBOX_AGAIN)
			return 2;
		if (rc != MBOX_OK) {
			log_msg(LOGL_ERR, "conn %u: append to %s failed after %d of %d "
				"mailboxes: %s", c->id, delivery_user(&dls[i]), i,
				dv.n, strerror(errno));
			/* The ones done have it (a retry may duplicate it there,
			 * never lose it); the rest never saw it. */
			unlock_range(0, i, 1);
			unlock_range(i, dv.n, 0);
			dv_owner = NULL;
			reply(c, 451, "4.3.0 Local delivery failed, try again later");
			return -1;
		}
		if (i + 1 < dv.n) {
			t->dv_i++;
			return 2;       /* one mailbox's fsync a pass */
		}
	}
	unlock_range(0, dv.n, 1);
	dv_owner = NULL;
	log_msg(LOGL_INFO, "conn %u %s: delivered %s.%x.%x from=<%.80s> size=%lld "
		"rcpt=%d mailboxes=%d", c->id, c->peer_str, conn_run_id(), c->id, s->nmsgs,
		dv.sender, (long long)(s->tx.f.size - s->tx.f.data_off),
		s->tx.nrcpt, dv.n);
	reply(c, 250, "2.0.0 Ok: delivered as %s.%x.%x", conn_run_id(), c->id,
	      s->nmsgs);
	return 0;
}

static void end_transaction(struct conn *c, struct smtp_session *s)
{
	tx_reset(s);
	s->nmsgs++;
	sess_enter(c, SMTP_READY);
	wait_command(c);
}

static void deliver_step(struct conn *c, struct smtp_session *s)
{
	int rc = try_deliver(c, s);

	if (rc == 1 || rc == 2) {
		if (s->ss.state != SMTP_DELIVER) {
			sess_enter(c, SMTP_DELIVER);
			conn_suspend(c);
		}
		conn_deadline_ms(c, rc == 1 ? SMTP_LOCK_RETRY_MS : 0);
		return;
	}
	end_transaction(c, s);
	if (c->flags & CONN_SUSPENDED)
		conn_resume(c);
}

static void data_done(struct conn *c, struct smtp_session *s)
{
	struct smtp_tx *t = &s->tx;

	if (t->f.failed) {
		log_msg(LOGL_ERR, "conn %u: spool write failed: %s", c->id,
			strerror(t->f.err));
		reply(c, 452, "4.3.1 Insufficient system storage");
	} else if (t->too_big) {
		reply(c, 552, "5.3.4 Message size exceeds fixed limit");
	} else if (t->data.flags & DATA_NUL) {
		reply(c, 554, "5.6.0 Message contains NUL characters");
	} else if (t->hops.hops >= CONFIG_SMTP_MAX_HOPS) {
		log_msg(LOGL_WARN, "conn %u %s: refused a message with %u "
			"Received: fields (a mail loop?)", c->id, c->peer_str,
			t->hops.hops);
		reply(c, 554, "5.4.6 Too many hops: a mail loop?");
	} else if (CONFIG_RELAY && t->nremote > 0) {
		to_queue(c, s, "relay");
	} else {
		t->deliver_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
		deliver_step(c, s);
		return;
	}
	/* A 5xx that was the session's last allowed error has ended it
	 * (421, closed, cleaned up): nothing is left to reset. */
	if (c->sess)
		end_transaction(c, s);
}

static void data_input(struct conn *c, struct smtp_session *s)
{
	struct smtp_tx *t = &s->tx;

	while (c->in.off < c->in.len && !t->data.done) {
		size_t out, used = smtp_data_feed(&t->data, c->in.buf + c->in.off,
						  c->in.len - c->in.off, databuf,
						  sizeof(databuf), &out);
		c->in.off += used;
		if (t->data.size > conf->max_message_size)
			t->too_big = 1;
		if (!t->too_big)
			spool_write(&t->f, databuf, out);
		smtp_hops_feed(&t->hops, databuf, out);
	}
	if (t->data.done)
		data_done(c, s);
}

/* ---- AUTH (RFC 4954) ----------------------------------------------- */

#define SASL_BUF 768

static void auth_done(struct conn *c, struct smtp_session *s, int ok,
		      const char *canon)
{
	s->mech = 0;
	explicit_bzero(s->login, sizeof(s->login));
	if (ok) {
		str_copy(s->user, sizeof(s->user), canon, strlen(canon));
		log_msg(LOGL_INFO, "conn %u %s: authenticated as %s", c->id,
			c->peer_str, s->user);
		c->flags |= CONN_AUTHED;
		sess_enter(c, SMTP_READY);
		reply(c, 235, "2.7.0 Authentication successful");
		return;
	}
	sess_login_fail(c);
}

/* Checks decoded PLAIN credentials. */
static void auth_plain(struct conn *c, struct smtp_session *s,
		       const unsigned char *buf, size_t len)
{
	const char *canon = NULL;
	int ok = auth_plain_check(buf, len, &canon);

	auth_done(c, s, ok, canon);
}

/* One base64 response of the exchange (initial response or a line). */
static void auth_step(struct conn *c, struct smtp_session *s, const char *b64,
		      size_t len)
{
	unsigned char buf[SASL_BUF];
	const char *canon = NULL;
	int n;

	if (!CONFIG_AUTH)
		return;
	if (len == 1 && b64[0] == '*') {
		s->mech = 0;
		sess_enter(c, SMTP_READY);
		reply(c, 501, "5.0.0 Authentication cancelled");
		return;
	}
	n = (len == 1 && b64[0] == '=') ? 0 :
	    b64_decode(b64, len, buf, sizeof(buf) - 1);
	if (n < 0) {
		s->mech = 0;
		sess_enter(c, SMTP_READY);
		reply(c, 501, "5.5.2 Cannot decode response");
		return;
	}
	buf[n] = '\0';
	switch (s->mech) {
	case MECH_PLAIN:
		auth_plain(c, s, buf, (size_t)n);
		break;
	case MECH_LOGIN_USER:
		if (n == 0 || (size_t)n >= sizeof(s->login) || memchr(buf, 0, (size_t)n)) {
			auth_done(c, s, 0, NULL);
			break;
		}
		str_copy(s->login, sizeof(s->login), (const char *)buf, (size_t)n);
		s->mech = MECH_LOGIN_PASS;
		sess_enter(c, SMTP_AUTH);
		reply(c, 334, SASL_LOGIN_PASS_PROMPT);
		break;
	default:
		/* ok first: canon is set by auth_check. */
		n = auth_check(s->login, strlen(s->login), (char *)buf, (size_t)n,
			       &canon);
		auth_done(c, s, n, canon);
		break;
	}
	explicit_bzero(buf, sizeof(buf));
}

static void cmd_auth(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	size_t mlen = 0;
	const char *ir;
	int n;

	if (!CONFIG_AUTH) {
		reply(c, 502, "5.5.1 Command not implemented");
		return;
	}
	if (s->user[0]) {
		reply(c, 503, "5.5.1 Already authenticated");
		return;
	}
	n = sess_login_gate(c);
	if (n < 0)
		return;
	if (n > 0) {
		if (!c->tls && users && users->n > 0)
			reply(c, 538, "5.7.11 Encryption required for requested "
			      "authentication mechanism");
		else
			reply(c, 503, "5.5.1 AUTH not available");
		return;
	}
	while (mlen < len && arg[mlen] != ' ')
		mlen++;
	ir = mlen < len ? arg + mlen + 1 : NULL;
	if (str_ieq(arg, mlen, "PLAIN")) {
		s->mech = MECH_PLAIN;
	} else if (str_ieq(arg, mlen, "LOGIN")) {
		s->mech = MECH_LOGIN_USER;
	} else {
		reply(c, 504, "5.5.4 Unrecognized authentication type");
		return;
	}
	if (ir) {
		auth_step(c, s, ir, len - mlen - 1);
		return;
	}
	sess_enter(c, SMTP_AUTH);
	reply(c, 334, "%s", s->mech == MECH_PLAIN ? "" : SASL_LOGIN_USER_PROMPT);
}

/* ---- the rest ------------------------------------------------------- */

static void cmd_rset(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	(void)arg; (void)len;
	tx_reset(s);
	if (s->ss.state != SMTP_CONNECTED)
		sess_enter(c, SMTP_READY);
	reply(c, 250, "2.0.0 Ok");
}

static void cmd_noop(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	(void)s; (void)arg; (void)len;
	reply(c, 250, "2.0.0 Ok");
}

static void cmd_quit(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	(void)s; (void)arg; (void)len;
	reply(c, 221, "2.0.0 Bye");
	sess_quit(c);
}

static void cmd_help(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	(void)s; (void)arg; (void)len;
	if (CONFIG_FEATURE_SMTP_HELP)
		reply(c, 214, "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
		      "NOOP QUIT HELP VRFY; see RFC 5321");
	else
		reply(c, 214, "2.0.0 See RFC 5321");
}

static void cmd_vrfy(struct conn *c, struct smtp_session *s, const char *arg,
		     size_t len)
{
	(void)s; (void)arg;
	if (len == 0)
		reply(c, 501, "5.5.4 Syntax: VRFY address");
	else
		reply(c, 252, "2.5.2 Cannot VRFY user, but will accept message");
}

static void cmd_starttls(struct conn *c, struct smtp_session *s,
			 const char *arg, size_t len)
{
	int rc;

	(void)arg;
	if (len > 0) {
		reply(c, 501, "5.5.4 Syntax: STARTTLS");
		return;
	}
	if (CONFIG_TLS && c->tls) {
		reply(c, 503, "5.5.1 Error: TLS already active");
		return;
	}
	/* Without TLS in the build it is never offered (1, as the session
	 * skeleton answers), and the rest goes from such builds. */
	rc = CONFIG_TLS ? sess_start_tls(c) : 1;
	if (rc != 0) {
		reply(c, 454, rc > 0 ? "4.7.0 TLS not available" :
		      "4.7.0 TLS not available due to temporary reason");
		return;
	}
	/* RFC 3207: forget everything the client said before the handshake. */
	tx_reset(s);
	s->esmtp = 0;
	s->user[0] = '\0';
	strcpy(s->helo, "unknown");
	sess_enter(c, SMTP_CONNECTED);
	reply(c, 220, "2.0.0 Ready to start TLS");
}

static void cmd_unimpl(struct conn *c, struct smtp_session *s, const char *arg,
		       size_t len)
{
	(void)s; (void)arg; (void)len;
	reply(c, 502, "5.5.1 Command not implemented");
}

#define ST(x) (1u << (x))
#define ANY (ST(SMTP_CONNECTED) | ST(SMTP_READY) | ST(SMTP_MAIL) | ST(SMTP_RCPT))

struct smtp_cmd {
	const char *verb;
	unsigned states;
	const char *seq_error;  /* 503 text when the state does not allow it */
	void (*fn)(struct conn *c, struct smtp_session *s, const char *arg,
		   size_t len);
};

static const struct smtp_cmd commands[] = {
	{ "EHLO", ANY, NULL, cmd_ehlo },
	{ "HELO", ANY, NULL, cmd_helo },
	{ "MAIL", ST(SMTP_READY), "5.5.1 Error: send HELO/EHLO first, or "
	  "nested MAIL command", cmd_mail },
	{ "RCPT", ST(SMTP_MAIL) | ST(SMTP_RCPT), "5.5.1 Error: need MAIL command",
	  cmd_rcpt },
	{ "DATA", ST(SMTP_RCPT), "5.5.1 Error: need RCPT command", cmd_data },
	{ "RSET", ANY, NULL, cmd_rset },
	{ "NOOP", ANY, NULL, cmd_noop },
	{ "QUIT", ANY, NULL, cmd_quit },
	{ "HELP", ANY, NULL, cmd_help },
	{ "VRFY", ANY, NULL, cmd_vrfy },
	{ "STARTTLS", ANY, NULL, cmd_starttls },
	{ "EXPN", ANY, NULL, cmd_unimpl },
	{ "AUTH", ST(SMTP_READY), "5.5.1 Error: AUTH needs EHLO and no mail "
	  "transaction", cmd_auth },
	{ "BDAT", ANY, NULL, cmd_unimpl },
	{ "TURN", ANY, NULL, cmd_unimpl },
};

/* Commands a web browser or proxy sends: not a mail client, hang up. */
static const char http_verbs[][8] = { "GET", "POST", "CONNECT", "HEAD", "PUT" };

static void command(struct conn *c, struct smtp_session *s, char *line,
		    size_t len)
{
	size_t vlen, alen;
	const char *arg, *sp;

	if (sess_count_command(c) != 0)
		return;
	if (memchr(line, '\0', len)) {
		reply(c, 500, "5.5.2 Error: NUL character in command");
		return;
	}
	arg = sess_split(line, len, &vlen, &alen);
	while (alen > 0 && arg[alen - 1] == ' ')
		alen--;
	if (CONFIG_DEBUG_PROTOCOL) {
		/* AUTH's initial response is a credential: verb and mechanism */
		sp = str_ieq(line, vlen, "AUTH") ? memchr(arg, ' ', alen) : NULL;
		sess_log_command(c, line, sp ? (size_t)(sp - line) : len);
	}
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const struct smtp_cmd *cmd = &commands[i];
		if (!str_ieq(line, vlen, cmd->verb))
			continue;
		if (!(cmd->states & ST(s->ss.state))) {
			if (s->ss.state == SMTP_MAIL && cmd->fn == cmd_data)
				reply(c, 554, "5.5.1 Error: no valid recipients");
			else
				reply(c, 503, "%s", cmd->seq_error);
			return;
		}
		cmd->fn(c, s, arg, alen);
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(http_verbs); i++) {
		if (str_ieq(line, vlen, http_verbs[i])) {
			log_msg(LOGL_WARN, "conn %u %s: %s command, not SMTP: hang up",
				c->id, c->peer_str, http_verbs[i]);
			sess_enter(c, SMTP_QUIT);
			conn_close(c, "non-SMTP command");
			return;
		}
	}
	reply(c, 500, "5.5.2 Error: command not recognized");
}

static int smtpin_read(struct conn *c)
{
	struct smtp_session *s = c->sess;

	if (s->ss.state == SMTP_DATA) {
		data_input(c, s);
		return s->ss.state == SMTP_DATA ? SESS_NEED : SESS_MORE;
	}
	return sess_line(c, CONFIG_AUTH && s->ss.state == SMTP_AUTH ?
			 SASL_BUF : CONFIG_SMTP_LINE_MAX - 2);
}

static void smtpin_line(struct conn *c, char *line, size_t len)
{
	struct smtp_session *s = c->sess;

	if (CONFIG_AUTH && s->ss.state == SMTP_AUTH)
		auth_step(c, s, line, len);
	else
		command(c, s, line, len);
}

static int smtpin_too_long(struct conn *c)
{
	struct smtp_session *s = c->sess;

	if (CONFIG_AUTH && s->ss.state == SMTP_AUTH) {
		s->mech = 0;
		sess_enter(c, SMTP_READY);
	}
	reply(c, 500, "5.5.2 Error: line too long");
	return SESS_MORE;
}

static int smtpin_timeout(struct conn *c)
{
	struct smtp_session *s = c->sess;

	if (s->ss.state != SMTP_DELIVER)
		return 0;
	deliver_step(c, s);
	return 1;
}

static void smtpin_login_failed(struct conn *c)
{
	sess_enter(c, SMTP_READY);
	reply(c, 535, "5.7.8 Authentication credentials invalid");
}

/* why begins with the enhanced status code ("4.7.0 ..."). */
static void smtpin_bye(struct conn *c, const char *why)
{
	conn_printf(c, "421 %.5s %s%s\r\n", why, conf->hostname, why + 5);
}

static void smtpin_cleanup(struct conn *c)
{
	struct smtp_session *s = c->sess;

	if (dv_owner == s) {
		/* Cut short: the mailbox being written loses this message's
		 * bytes; no 250 was given, so the client sends it again. */
		unlock_range(0, s->tx.dv_i, 1);
		unlock_range(s->tx.dv_i, dv.n, 0);
		dv_owner = NULL;
	}
	tx_reset(s);
}

static const struct sess_ops smtp_sess = {
	.name = "smtp",
	.states = state_names,
	.pool = pool,
	.size = sizeof(pool[0]),
	.first = SMTP_CONNECTED,
	.quit = SMTP_QUIT,
	.auth_wait = SMTP_AUTH_WAIT,
	.tls_kind = LISTEN_SMTPS,
	.reading = SESS_ST(SMTP_CONNECTED) | SESS_ST(SMTP_READY) | SESS_ST(SMTP_MAIL) |
		   SESS_ST(SMTP_RCPT) | SESS_ST(SMTP_DATA) | SESS_ST(SMTP_AUTH),
	.max_commands = CONFIG_SMTP_MAX_COMMANDS,
	.max_errors = CONFIG_SMTP_MAX_ERRORS,
	.reply_room = SMTP_REPLY_ROOM,
	.texts = {
		[SESS_T_BANNED] = "4.7.0 Too many failed logins, try later",
		[SESS_T_COMMANDS] = "4.7.0 Error: too many commands",
		[SESS_T_ERRORS] = "4.7.0 Error: too many errors",
		[SESS_T_TIMEOUT] = "4.4.2 Error: timeout exceeded",
	},
	.bye = smtpin_bye,
	.wait = wait_command,
	.read = smtpin_read,
	.line = smtpin_line,
	.too_long = smtpin_too_long,
	.timeout = smtpin_timeout,
	.login_failed = smtpin_login_failed,
	.cleanup = smtpin_cleanup,
};

static int smtpin_open(struct conn *c)
{
	struct smtp_session *s = sess_open(c, &smtp_sess, sizeof(*s));

	if (!s)
		return -1;
	s->tx.f.fd = -1;
	strcpy(s->helo, "unknown");
	if (needs_auth(c) && auth_banned((const struct sockaddr *)&c->peer)) {
		sess_bye(c, smtp_sess.texts[SESS_T_BANNED]);
		return 0;
	}
	conn_printf(c, "220 %s ESMTP postie\r\n", conf->hostname);
	wait_command(c);
	return 0;
}

static void smtpin_refuse(struct conn *c, const char *why)
{
	conn_printf(c, "421 4.7.0 %s %s\r\n", conf->hostname, why);
}

const struct proto_ops smtpin_ops = {
	.name = "smtp",
	.open = smtpin_open,
	.input = sess_input,
	.timeout = sess_timeout,
	.close = sess_close,
	.refuse = smtpin_refuse,
};
