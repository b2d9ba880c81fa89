/* smtp_out — outgoing SMTP sessions (see smtp_out.h).
 *
 * One enum of states, so_enter() its only writer. A session resolves its
 * destination (udns, in the loop), connects to each address in turn until
 * one takes the message or says something final, speaks ESMTP with
 * PIPELINING, SIZE and 8BITMIME when offered, STARTTLS (required and
 * verified for the smarthost unless configured otherwise, opportunistic
 * and unverified towards MX hosts), AUTH PLAIN/LOGIN to the smarthost, and
 * streams the message from the spool file with CRLF line ends only (a
 * stray CR becomes a space, RFC 5321 §2.3.8) and dot-stuffing.
 *
 * Destinations: the smarthost, or one domain's MX hosts. At most
 * CONFIG_RELAY_MAX_PER_DEST sessions talk to one destination; a job for
 * a destination at its limit waits (SO_WAIT) and takes over the first of
 * its connections that finishes a message. A connection that delivered a
 * message stays open CONFIG_RELAY_IDLE_SECS (SO_IDLE) for the next one
 * (RSET, MAIL...), at most CONFIG_RELAY_REUSE_MAX messages; a reused
 * connection that fails before the new MAIL is replaced by a fresh one.
 * Timeouts follow RFC 5321 §4.5.3.2. Limits: CONFIG_RELAY_MAX_DELIVERIES
 * sessions, SMTPOUT_RCPT_MAX recipients each, reply lines of at most the
 * input buffer, SMTP_REPLY_MAX_LINES lines per reply. */
#include "proto/smtp_out.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/util.h"
#include "dns/dns.h"
#include "proto/mime7.h"
#include "proto/sasl.h"
#include "store/notice.h"
#include "tls/tls.h"

#define T_CONNECT 30            /* seconds; not in the RFC, a LAN choice */
#define T_GREETING 300
#define T_COMMAND 300
#define T_DATA_INIT 120
#define T_DATA_BLOCK 180
#define T_DATA_END 600

enum so_state {
	SO_FREE, SO_RESOLVE, SO_CONNECT, SO_GREETING, SO_EHLO, SO_HELO,
	SO_STARTTLS, SO_AUTH, SO_AUTH_USER, SO_AUTH_PASS, SO_MAIL, SO_RCPT,
	SO_DATA, SO_BODY, SO_DOT, SO_QUIT, SO_WAIT, SO_IDLE, SO_RSET,
};

/* Can a job ever wait (SO_WAIT)? A job starts on a free (or freed)
 * slot, so at most RELAY_MAX_DELIVERIES - 1 other sessions exist; when
 * that is below RELAY_MAX_PER_DEST (the alerts board: one session of
 * each), no destination is ever at its limit and the waiting code goes. */
#define SO_CAN_WAIT (CONFIG_RELAY_MAX_DELIVERIES > CONFIG_RELAY_MAX_PER_DEST)

static const char *const so_names[] = {
	"free", "resolve", "connect", "greeting", "ehlo", "helo", "starttls",
	"auth", "auth-user", "auth-pass", "mail", "rcpt", "data", "body", "dot",
	"quit", "wait", "idle", "rset",
};

enum {
	EXT_PIPELINING = 1, EXT_8BITMIME = 2, EXT_STARTTLS = 4, EXT_SIZE = 8,
	EXT_AUTH_PLAIN = 16, EXT_AUTH_LOGIN = 32, EXT_SMTPUTF8 = 64,
};

struct smtpout {
	enum so_state state;
	struct smtpout_job *job;        /* NULL while idle */
	char key[256];                  /* job->domain: "" is the smarthost */
	char remote[64];                /* host of the open connection */
	int msgs;                       /* messages over this connection */
	int reused;                     /* this job came to an open connection */
	int rset_pending;               /* RSET pipelined before MAIL */
	struct conn *c;
	struct dns_result dest;
	int ti;                         /* address being tried */
	struct smtp_reply reply;
	unsigned ext;
	unsigned long long size_limit;
	int tls_on;
	int pipe;                       /* this transaction is pipelined */
	int mail_ok, mail_done;         /* MAIL accepted; MAIL answered */
	int rcpt_sent, rcpt_replied, n_ok;
	int eightbit, utf8;
	off_t body_pos;
	int body_bol;
	int body_cr;                    /* a CR waits: line end or stray */
	int convert;                    /* 8-bit body, server lacks 8BITMIME */
	struct mime7 m7;
	char last[SMTPOUT_DIAG + 64];   /* last host-level failure */
	int last_perm;                  /* that failure was a 5xx */
	int last_local;                 /* it was on this side (job->local) */
	int remote_seen;                /* some failure came from outside */
};

static struct smtpout pool[CONFIG_RELAY_MAX_DELIVERIES];
static char secret[256];                /* smarthost password */
static const struct proto_ops smtpout_ops;

/* ---- reply parser (pure) -------------------------------------------- */

void smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->lines = 0;
	r->text[0] = '\0';
}

int smtp_reply_line(struct smtp_reply *r, const char *line, size_t len)
{
	int code;
	char sep;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9')
		return REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	sep = len > 3 ? line[3] : ' ';
	if (sep != ' ' && sep != '-')
		return REPLY_BAD;
	if (r->lines > 0 && code != r->code)
		return REPLY_BAD;
	if (++r->lines > SMTP_REPLY_MAX_LINES)
		return REPLY_BAD;
	if (r->lines == 1) {
		r->code = code;
		/* Kept as the server wrote it (controls as blanks): the
		 * log, the queue state and a bounce show it once, unescaped. */
		str_clean(r->text, sizeof(r->text), line, len);
	}
	return sep == ' ' ? REPLY_DONE : REPLY_MORE;
}

/* ---- session bookkeeping -------------------------------------------- */

/* A string into one of the fixed fields, cut to fit (str_copy stops at
 * the NUL: no strlen needed). */
static void set_text(char *dst, size_t n, const char *src)
{
	str_copy(dst, n, src, SIZE_MAX);
}

static void so_enter(struct smtpout *so, enum so_state st)
{
	if (so->state != st)
		log_msg(LOGL_DEBUG, "smtp_out %d: %s -> %s", (int)(so - pool),
			so_names[so->state], so_names[st]);
	so->state = st;
}

void smtpout_init(void)
{
	memset(pool, 0, sizeof(pool));
}

void smtpout_set_secret(const char *s)
{
	set_text(secret, sizeof(secret), s);
}

/* Sessions with a connection (or on their way to one) to dest. */
int smtpout_active(const char *dest)
{
	int n = 0;

	for (size_t i = 0; i < ARRAY_LEN(pool); i++)
		if (pool[i].state != SO_FREE && pool[i].state != SO_WAIT &&
		    strcmp(pool[i].key, dest) == 0)
			n++;
	return n;
}

/* The job hears which host it talks to (queue state, bounces). */
static void job_peer(struct smtpout *so, const char *name)
{
	set_text(so->job->remote, sizeof(so->job->remote), so->remote);
	set_text(so->job->remote_name, sizeof(so->job->remote_name), name);
}

static struct smtpout *find_state(enum so_state st, const char *dest)
{
	for (size_t i = 0; i < ARRAY_LEN(pool); i++)
		if (pool[i].state == st && (!dest || strcmp(pool[i].key, dest) == 0))
			return &pool[i];
	return NULL;
}

/* The session goes to the smarthost (key ""). A build without DNS has
 * no other destination: a job for a domain can only come when no
 * smarthost is set, and begin() then fails it at once on either path
 * ("5.4.4 no smarthost set, and this build has no DNS..."), so the code
 * for MX hosts compiles away there. */
static int is_smarthost(const struct smtpout *so)
{
	return !CONFIG_DNS || so->key[0] == '\0';
}

/* The name TLS asks for and checks: for the smarthost, smarthost_name
 * when it is given by address (builds without DNS), else the smarthost
 * itself; for an MX host, its name. Not inlined: one copy for all
 * its callers. */
static __attribute__((noinline)) const char *tls_name(const struct smtpout *so)
{
	if (!is_smarthost(so))
		return so->dest.t[so->ti].host;
	return conf->smarthost_name[0] ? conf->smarthost_name : conf->smarthost;
}

/* TLS on c from its first byte on: verified towards the smarthost when
 * configured so, never towards MX hosts. 0, or -1 with no session free. */
static int tls_begin(struct smtpout *so, struct conn *c)
{
	struct tls_conn *t = tls_client_new(tls_name(so), is_smarthost(so) &&
					    conf->smarthost_verify);

	if (!t)
		return -1;
	conn_set_tls(c, t);
	so->tls_on = 1;
	return 0;
}

static const char *dest_name(const struct smtpout *so)
{
	return so->key[0] ? so->key : "smarthost";
}

/* Recipients without a final answer get the last failure (temporary
 * unless a host said 5xx to everything); the job leaves the session. */
static struct smtpout_job *job_detach(struct smtpout *so)
{
	struct smtpout_job *j = so->job;

	for (int i = 0; j && i < j->n; i++) {
		if (j->code[i] != 0)
			continue;
		j->code[i] = so->last_perm ? 550 : 451;
		set_text(j->diag[i], SMTPOUT_DIAG, so->last);
	}
	if (j)
		j->local = so->last_local && !so->remote_seen && !so->mail_ok;
	so->job = NULL;
	return j;
}

static void begin(struct smtpout *so);

/* A session to dest ended: a job waiting for a connection there starts
 * one of its own. */
static void wake_waiter(const char *dest)
{
	struct smtpout *w = SO_CAN_WAIT ? find_state(SO_WAIT, dest) : NULL;

	if (w && smtpout_active(dest) < CONFIG_RELAY_MAX_PER_DEST)
		begin(w);
}

/* Ends the session: the connection goes (QUIT already queued, if any),
 * the job gets its results. done() may start new jobs, in this slot too. */
static void finish(struct smtpout *so)
{
	struct smtpout_job *j = job_detach(so);
	char dest[sizeof(so->key)];

	set_text(dest, sizeof(dest), so->key);
	dns_drop(so);
	if (so->c) {
		struct conn *c = so->c;
		so->c = NULL;
		c->sess = NULL;
		conn_close_after_flush(c);
	}
	so_enter(so, SO_FREE);
	if (j)
		j->done(j);
	wake_waiter(dest);
}

static void fail_host(struct smtpout *so, int perm, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The smarthost refused our login or its certificate: retries will not
 * mend that, a person must. The mail waits; postmaster hears of it
 * locally, once a day per problem. */
static void smarthost_problem(struct smtpout *so, int problem, const char *why)
{
	so->job->problem = problem;
	if (problem == SMTPOUT_PROBLEM_AUTH)
		notice_postmaster("smarthost-auth", "the smarthost refused the "
				  "login; mail is waiting", why);
	else
		notice_postmaster("smarthost-cert", "the smarthost's certificate "
				  "failed the check; mail is waiting", why);
}

static void send_line(struct smtpout *so, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void next_target(struct smtpout *so);
static void send_mail(struct smtpout *so);

/* Something went wrong with this host. Before MAIL was accepted the next
 * address gets its chance; after, the recipients wait for a retry. */
static void fail_host(struct smtpout *so, int perm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(so->last, sizeof(so->last), fmt, ap);
	va_end(ap);
	so->last_perm = perm;
	so->last_local = 0;
	so->remote_seen = 1;
	log_msg(LOGL_INFO, "smtp_out %s (%s): %s", dest_name(so),
		so->remote[0] ? so->remote : "-", so->last);
	if (so->c) {
		struct conn *c = so->c;
		so->c = NULL;
		c->sess = NULL;
		conn_close(c, "delivery failed");
	}
	if (so->reused && !so->mail_done && !perm) {
		/* The kept connection died while idle: not the job's fault. */
		log_msg(LOGL_INFO, "smtp_out %s: opening a new connection",
			dest_name(so));
		begin(so);
		return;
	}
	if (so->mail_ok || perm) {
		finish(so);
		return;
	}
	so->ti++;
	next_target(so);
}

/* ---- connecting ------------------------------------------------------ */

/* A connect that failed for want of a route or an address here (the
 * network is down on this side, not at the destination): by errno, or by
 * the words the connection layer closed with. */
static int no_route(int e, const char *why)
{
	static const int local[] = { ENETUNREACH, ENETDOWN, EHOSTUNREACH,
				     EADDRNOTAVAIL, EAFNOSUPPORT };

	for (size_t i = 0; i < ARRAY_LEN(local); i++)
		if (why ? strcmp(why, strerror(local[i])) == 0 : e == local[i])
			return 1;
	return 0;
}

static void next_target(struct smtpout *so)
{
	while (so->ti < so->dest.n) {
		struct dns_target *t = &so->dest.t[so->ti];
		int port = is_smarthost(so) ? conf->smarthost_port : conf->relay_port;
		int fd;

		if (t->addr.ss_family == AF_INET)
			((struct sockaddr_in *)&t->addr)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&t->addr)->sin6_port = htons((uint16_t)port);
		net_ntop((struct sockaddr *)&t->addr, so->remote,
			 sizeof(so->remote), 1);
		job_peer(so, t->host);
		fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && (connect(fd, (struct sockaddr *)&t->addr, t->len) == 0 ||
				errno == EINPROGRESS)) {
			so->c = conn_connect(fd, &t->addr, t->len, &smtpout_ops, so);
			if (!so->c) {
				snprintf(so->last, sizeof(so->last), "4.4.5 no connection "
					 "slot free");
				so->last_perm = 0;
				so->last_local = 1;
				finish(so);
				return;
			}
			so_enter(so, SO_CONNECT);
			so->tls_on = 0;
			so->ext = 0;
			conn_deadline(so->c, T_CONNECT);
			return;
		}
		snprintf(so->last, sizeof(so->last), "4.4.1 connect to %s: %s",
			 so->job->remote, strerror(errno));
		so->last_local = no_route(errno, NULL);
		so->remote_seen |= !so->last_local;
		if (fd >= 0)
			close(fd);
		so->ti++;
	}
	if (!so->last[0])
		snprintf(so->last, sizeof(so->last), "4.4.4 no address to deliver to");
	finish(so);
}

static void on_dns(void *ctx, const struct dns_result *res)
{
	struct smtpout *so = ctx;

	if (so->state != SO_RESOLVE)
		return;
	if (res->status != DNS_OK) {
		so->last_perm = res->status == DNS_PERM;
		so->last_local = res->local;
		snprintf(so->last, sizeof(so->last), "%s DNS: %s",
			 so->last_perm ? "5.1.2" : "4.4.3", res->why);
		finish(so);
		return;
	}
	so->dest = *res;
	so->ti = 0;
	next_target(so);
}

/* A fresh connection for so's job: resolve (or take the smarthost's
 * address as it is), then connect to each address in turn. */
static void begin(struct smtpout *so)
{
	struct smtpout_job *job = so->job;
	struct net_cidr lit;

	so->reused = so->msgs = so->rset_pending = 0;
	so->tls_on = 0;
	so->ext = 0;
	so->ti = 0;
	so->mail_ok = so->mail_done = 0;
	so->last[0] = so->remote[0] = job->remote[0] = '\0';
	so->last_perm = 0;
	so->last_local = so->remote_seen = 0;
	so_enter(so, SO_RESOLVE);
	if (is_smarthost(so) && net_parse_cidr(conf->smarthost, &lit) == 0) {
		/* An address needs no lookup. */
		struct dns_result r = { .status = DNS_OK, .n = 1 };
		struct dns_target *t = &r.t[0];
		set_text(t->host, sizeof(t->host), conf->smarthost);
		if (lit.family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, lit.addr, 4);
			t->len = sizeof(*sin);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, lit.addr, 16);
			t->len = sizeof(*s6);
		}
		so->dest = r;
		next_target(so);
		return;
	}
	if ((is_smarthost(so) ? dns_query_host(conf->smarthost, on_dns, so) :
	     dns_query_mx(job->domain, on_dns, so)) != 0) {
		/* Without DNS in the build, no later try can do better. */
		if (!CONFIG_DNS)
			snprintf(so->last, sizeof(so->last), "5.4.4 no smarthost set, "
				 "and this build has no DNS to find the mail servers");
		else
			snprintf(so->last, sizeof(so->last), "4.4.3 DNS lookup could not start");
		so->last_perm = !CONFIG_DNS;
		so->last_local = 1;
		finish(so);
	}
}

/* The next message over a connection kept open: RSET, then MAIL. */
static void reuse(struct smtpout *so)
{
	so->reused = 1;
	so->mail_ok = so->mail_done = 0;
	so->last[0] = '\0';
	so->last_perm = 0;
	job_peer(so, so->dest.t[so->ti].host);
	smtp_reply_init(&so->reply);
	send_line(so, "RSET");
	if (so->ext & EXT_PIPELINING) {
		/* RSET may lead a pipelined group (RFC 2920 §3.1): one round
		 * trip less per message. */
		so->rset_pending = 1;
		send_mail(so);
	} else {
		so_enter(so, SO_RSET);
		conn_deadline(so->c, T_COMMAND);
	}
	/* Called from the queue runner too, outside this connection's own
	 * input: nothing else would send what was written. */
	if (so->c)
		conn_flush(so->c);
}

/* Ends an idle connection politely and frees its slot. */
static void close_idle(struct smtpout *so)
{
	struct conn *c = so->c;

	so->c = NULL;
	if (c) {
		c->sess = NULL;
		if (c->w.fd >= 0) {
			conn_write(c, "QUIT\r\n", 6);
			conn_close_after_flush(c);
		}
	}
	so_enter(so, SO_FREE);
}

void smtpout_drop_idle(void)
{
	for (size_t i = 0; i < ARRAY_LEN(pool); i++)
		if (pool[i].state == SO_IDLE)
			close_idle(&pool[i]);
}

int smtpout_start(struct smtpout_job *job)
{
	struct smtpout *so;

	for (int i = 0; i < job->n; i++) {
		job->code[i] = 0;
		job->diag[i][0] = '\0';
	}
	job->remote[0] = '\0';
	job->remote_name[0] = '\0';
	job->local = 0;
	job->problem = SMTPOUT_PROBLEM_NONE;
	so = find_state(SO_IDLE, job->domain);
	if (so) {
		so->job = job;
		reuse(so);
		return 0;
	}
	so = find_state(SO_FREE, NULL);
	if (!so) {
		/* Every slot busy or idle: an idle one elsewhere gives way. */
		so = find_state(SO_IDLE, NULL);
		if (!so)
			return -1;
		close_idle(so);
	}
	memset(so, 0, sizeof(*so));
	so->job = job;
	set_text(so->key, sizeof(so->key), job->domain);
	if (SO_CAN_WAIT &&
	    smtpout_active(so->key) >= CONFIG_RELAY_MAX_PER_DEST) {
		/* Taken over by the first of its connections that is done. */
		so_enter(so, SO_WAIT);
		return 0;
	}
	begin(so);
	return 0;
}

/* ---- sending --------------------------------------------------------- */

/* One command line. Room for the longest: AUTH PLAIN of the largest
 * credentials send_auth accepts, or a path of SMTP_PATH_MAX with its
 * parameters. A line that does not fit is never sent cut short: it is
 * not sent at all, and the connection ends (a caller sizing bug). */
static void send_line(struct smtpout *so, const char *fmt, ...)
{
	char mem[CONFIG_SMTP_PATH_MAX + 900];
	struct buf b;
	va_list ap;

	buf_init(&b, mem, sizeof(mem));
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_add(&b, "\r\n", 2);
	if (b.full) {
		conn_close(so->c, "command line too long to send");
		return;
	}
	conn_write(so->c, mem, b.len);
}

static void send_ehlo(struct smtpout *so)
{
	so->ext = 0;
	so->size_limit = 0;
	smtp_reply_init(&so->reply);
	send_line(so, "EHLO %s", conf->hostname);
	so_enter(so, SO_EHLO);
	conn_deadline(so->c, T_COMMAND);
}

static void ehlo_keyword(struct smtpout *so, const char *text)
{
	const char *kw = text + 4;       /* after "250-" / "250 " */

	if (strlen(text) < 4)
		return;
	if (str_ieq(kw, 10, "PIPELINING") && (kw[10] == '\0' || kw[10] == ' '))
		so->ext |= EXT_PIPELINING;
	else if (strncasecmp(kw, "8BITMIME", 8) == 0)
		so->ext |= EXT_8BITMIME;
	else if (strncasecmp(kw, "STARTTLS", 8) == 0)
		so->ext |= EXT_STARTTLS;
	else if (strncasecmp(kw, "SMTPUTF8", 8) == 0)
		so->ext |= EXT_SMTPUTF8;
	else if (strncasecmp(kw, "SIZE", 4) == 0) {
		so->ext |= EXT_SIZE;
		so->size_limit = strtoull(kw + 4, NULL, 10);
	} else if (strncasecmp(kw, "AUTH", 4) == 0 && (kw[4] == ' ' || kw[4] == '=')) {
		char mem[256];
		struct buf up;
		/* " AUTH PLAIN LOGIN ": each mechanism between blanks; a line
		 * longer than the buffer is looked at as far as it fits. */
		buf_init(&up, mem, sizeof(mem) - 2);
		for (size_t i = 0; kw[i] && !up.full; i++)
			buf_addc(&up, (kw[i] >= 'a' && kw[i] <= 'z') ? (char)(kw[i] - 32) : kw[i]);
		up.cap = sizeof(mem);
		buf_addc(&up, ' ');
		buf_nul(&up);
		if (strstr(mem, " PLAIN "))
			so->ext |= EXT_AUTH_PLAIN;
		if (strstr(mem, " LOGIN "))
			so->ext |= EXT_AUTH_LOGIN;
	}
}

/* Scans the message once: 8-bit bytes decide BODY=8BITMIME. */
static int message_is_8bit(const struct smtpout_job *j)
{
	unsigned char buf[4096];
	off_t pos = 0;

	while (pos < j->data_len) {
		size_t want = j->data_len - pos < (off_t)sizeof(buf) ?
			      (size_t)(j->data_len - pos) : sizeof(buf);
		ssize_t n = pread(j->fd, buf, want, j->data_off + pos);
		if (n <= 0)
			return 0;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] & 0x80)
				return 1;
		pos += n;
	}
	return 0;
}

static int non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s & 0x80)
			return 1;
	return 0;
}

static void send_rcpt(struct smtpout *so)
{
	send_line(so, "RCPT TO:<%s>", so->job->rcpt[so->rcpt_sent++]);
}

static void send_mail(struct smtpout *so)
{
	struct smtpout_job *j = so->job;
	char params[80] = "";

	so->eightbit = message_is_8bit(j);
	so->utf8 = non_ascii(j->sender);
	for (int i = 0; i < j->n; i++)
		so->utf8 |= non_ascii(j->rcpt[i]);
	if (so->size_limit && (unsigned long long)j->data_len > so->size_limit) {
		fail_host(so, 1, "5.3.4 message is larger than %s accepts (%llu)",
			  j->remote, so->size_limit);
		return;
	}
	if (so->utf8 && !(so->ext & EXT_SMTPUTF8)) {
		fail_host(so, 1, "5.6.7 non-ASCII address and %s has no SMTPUTF8",
			  j->remote);
		return;
	}
	if (so->ext & EXT_SIZE)
		snprintf(params, sizeof(params), " SIZE=%lld", (long long)j->data_len);
	/* 8-bit content goes as it is, declared when the server can take
	 * it (see the README on 8BITMIME). */
	if (so->eightbit && (so->ext & EXT_8BITMIME))
		strcat(params, " BODY=8BITMIME");
	if (so->utf8)
		strcat(params, " SMTPUTF8");
	so->mail_ok = so->mail_done = 0;
	so->rcpt_sent = so->rcpt_replied = so->n_ok = 0;
	/* Pipeline only a batch that fits the output buffer at once. */
	size_t batch = strlen(j->sender) + sizeof(params) + 32;
	for (int i = 0; i < j->n; i++)
		batch += strlen(j->rcpt[i]) + 14;
	so->pipe = (so->ext & EXT_PIPELINING) && batch + 8 < conn_out_free(so->c);
	send_line(so, "MAIL FROM:<%s>%s", j->sender, params);
	so_enter(so, SO_MAIL);
	if (so->pipe) {
		while (so->rcpt_sent < j->n)
			send_rcpt(so);
		send_line(so, "DATA");
	}
	conn_deadline(so->c, T_COMMAND);
}

static void send_auth(struct smtpout *so)
{
	char mem[600], b64[820];
	struct buf raw;

	if (so->ext & EXT_AUTH_PLAIN) {
		/* authzid (empty) NUL authcid NUL password */
		buf_init(&raw, mem, sizeof(mem));
		buf_addc(&raw, '\0');
		buf_adds(&raw, conf->smarthost_user);
		buf_addc(&raw, '\0');
		buf_adds(&raw, secret);
		if (raw.full) {
			explicit_bzero(mem, sizeof(mem));
			fail_host(so, 0, "4.7.0 smarthost credentials too long");
			return;
		}
		b64_encode((unsigned char *)mem, raw.len, b64, sizeof(b64));
		send_line(so, "AUTH PLAIN %s", b64);
		explicit_bzero(mem, sizeof(mem));
		explicit_bzero(b64, sizeof(b64));
		so_enter(so, SO_AUTH);
	} else if (so->ext & EXT_AUTH_LOGIN) {
		send_line(so, "AUTH LOGIN");
		so_enter(so, SO_AUTH_USER);
	} else {
		fail_host(so, 0, "4.7.0 %s offers no AUTH PLAIN or LOGIN",
			  so->job->remote);
		return;
	}
	conn_deadline(so->c, T_COMMAND);
}

/* After EHLO: TLS first, then login, then the transaction. */
static void after_ehlo(struct smtpout *so)
{
	int sh = is_smarthost(so);

	if (!so->tls_on && CONFIG_TLS && (so->ext & EXT_STARTTLS) &&
	    (!sh || conf->smarthost_tls == SMARTHOST_STARTTLS)) {
		send_line(so, "STARTTLS");
		so_enter(so, SO_STARTTLS);
		conn_deadline(so->c, T_COMMAND);
		return;
	}
	if (sh && !so->tls_on && conf->smarthost_tls == SMARTHOST_STARTTLS) {
		fail_host(so, 0, "4.7.0 %s does not offer STARTTLS; not sending in "
			  "the clear", so->job->remote);
		return;
	}
	if (sh && conf->smarthost_user[0] && CONFIG_SMARTHOST_AUTH &&
	    (so->tls_on || conf->smarthost_tls == SMARTHOST_PLAIN)) {
		send_auth(so);
		return;
	}
	send_mail(so);
}

static void start_tls(struct smtpout *so)
{
	if (tls_begin(so, so->c) != 0) {
		fail_host(so, 0, "4.7.0 no TLS session free%s", is_smarthost(so) &&
			  conf->smarthost_verify ? " (or no CA certificates)" : "");
		return;
	}
	send_ehlo(so);
}

/* ---- the message body ----------------------------------------------- */

/* LF becomes CRLF, a leading dot is doubled. CR LF in the spool is one
 * line end; any other CR is a stray and goes as a space (what Postfix's
 * cleanup_replace_stray_cr_lf does): only CRLF ever leaves, RFC 5321
 * §2.3.8. At most 2 bytes out per byte in, plus 1 for a CR held over. */
static size_t smtp_encode(struct smtpout *so, const char *in, size_t n, char *out)
{
	struct buf b;

	buf_init(&b, out, sat_add(sat_add(n, n), 1));
	for (size_t i = 0; i < n; i++) {
		if (so->body_cr) {
			so->body_cr = 0;
			if (in[i] != '\n') {
				buf_addc(&b, ' ');
				so->body_bol = 0;
			}
		}
		if (in[i] == '\r') {
			so->body_cr = 1;
			continue;
		}
		if (so->body_bol && in[i] == '.')
			buf_addc(&b, '.');
		if (in[i] == '\n')
			buf_addc(&b, '\r');
		buf_addc(&b, in[i]);
		so->body_bol = in[i] == '\n';
	}
	return b.len;
}

/* Fills the output buffer from the spool file, through the 8-bit
 * conversion when the server needs it. */
static void body_fill(struct smtpout *so)
{
	static char in[512], mid[4 * 512 + MIME7_HDR_MAX + 96];
	static char out[2 * sizeof(mid) + 8];
	struct smtpout_job *j = so->job;

	while (so->body_pos < j->data_len) {
		size_t room = conn_out_free(so->c), want, m;
		ssize_t n;

		/* Worst case: mime7 ×4 plus a held header line, then CRLF ×2. */
		want = so->convert ? (room > 2 * (MIME7_HDR_MAX + 96) + 64 ?
			(room - 2 * (MIME7_HDR_MAX + 96) - 64) / 8 : 0) :
			(room > 64 ? (room - 8) / 2 : 0);
		if (want == 0)
			return;
		if (want > sizeof(in))
			want = sizeof(in);
		if ((off_t)want > j->data_len - so->body_pos)
			want = (size_t)(j->data_len - so->body_pos);
		n = pread(j->fd, in, want, j->data_off + so->body_pos);
		if (n <= 0) {
			fail_host(so, 0, "4.3.0 cannot read the queued message");
			return;
		}
		so->body_pos += n;
		if (so->convert) {
			m = mime7_feed(&so->m7, in, (size_t)n, mid);
			if (so->body_pos == j->data_len)
				m += mime7_end(&so->m7, mid + m);
			conn_write(so->c, out, smtp_encode(so, mid, m, out));
		} else {
			conn_write(so->c, out, smtp_encode(so, in, (size_t)n, out));
		}
		conn_deadline(so->c, T_DATA_BLOCK);
	}
	if (conn_out_free(so->c) < 8)
		return;
	if (so->body_cr) {              /* a stray CR at the very end */
		so->body_cr = 0;
		so->body_bol = 0;
		conn_write(so->c, " ", 1);
	}
	conn_write(so->c, so->body_bol ? ".\r\n" : "\r\n.\r\n",
		   so->body_bol ? 3 : 5);
	so->c->flags &= ~(unsigned)CONN_DRAIN;
	so_enter(so, SO_DOT);
	conn_deadline(so->c, T_DATA_END);
}

/* ---- replies ---------------------------------------------------------- */

static void set_result(struct smtpout *so, int i, const struct smtp_reply *r)
{
	so->job->code[i] = r->code;
	set_text(so->job->diag[i], SMTPOUT_DIAG, r->text);
}

static void quit(struct smtpout *so)
{
	send_line(so, "QUIT");
	so_enter(so, SO_QUIT);
	finish(so);
}

/* A message is done and the connection is fine: it waits for the next
 * message to the same destination (a job waiting for it, or one that
 * done() starts), or until CONFIG_RELAY_IDLE_SECS pass. */
static void transaction_end(struct smtpout *so, int code)
{
	struct smtpout_job *j;
	struct smtpout *w;

	so->msgs++;
	/* Only a connection that just delivered is kept: after a refusal
	 * the retry meets a fresh one (Postfix caches only clean ends too). */
	if (!CONFIG_RELAY_IDLE_SECS || so->msgs >= CONFIG_RELAY_REUSE_MAX ||
	    code / 100 != 2) {
		quit(so);
		return;
	}
	j = job_detach(so);
	so_enter(so, SO_IDLE);
	conn_deadline(so->c, CONFIG_RELAY_IDLE_SECS);
	j->done(j);
	if (so->state != SO_IDLE)
		return;                 /* done() gave it the next message */
	w = SO_CAN_WAIT ? find_state(SO_WAIT, so->key) : NULL;
	if (w) {
		so->job = w->job;
		w->job = NULL;
		so_enter(w, SO_FREE);
		reuse(so);
	}
}

/* Where the transaction goes once RCPT answers are in. */
static void rcpts_done(struct smtpout *so)
{
	if (so->pipe) {
		so_enter(so, SO_DATA);  /* DATA was sent with them */
		return;
	}
	if (!so->mail_ok || so->n_ok == 0) {
		quit(so);
		return;
	}
	send_line(so, "DATA");
	so_enter(so, SO_DATA);
	conn_deadline(so->c, T_DATA_INIT);
}

/* Not inlined into so_input: the two in one function came out larger
 * on MIPS16 (eight registers: more spills) than the two apart. */
static __attribute__((noinline)) void on_reply(struct smtpout *so,
					       const struct smtp_reply *r)
{
	struct smtpout_job *j = so->job;
	int ok = r->code / 100 == 2;

	switch (so->state) {
	case SO_RSET:
		if (r->code != 250) {
			fail_host(so, 0, "4.4.2 %s refused RSET: %s", j->remote, r->text);
			return;
		}
		send_mail(so);
		return;
	case SO_GREETING:
		if (r->code != 220) {
			fail_host(so, 0, "4.4.2 %s greeted with: %s", j->remote, r->text);
			return;
		}
		send_ehlo(so);
		return;
	case SO_EHLO:
		if (ok) {
			after_ehlo(so);
			return;
		}
		if (so->tls_on) {
			fail_host(so, 0, "4.5.0 EHLO after STARTTLS: %s", r->text);
			return;
		}
		send_line(so, "HELO %s", conf->hostname);
		so_enter(so, SO_HELO);
		return;
	case SO_HELO:
		if (!ok) {
			fail_host(so, 0, "4.5.0 HELO refused: %s", r->text);
			return;
		}
		after_ehlo(so);
		return;
	case SO_STARTTLS:
		if (r->code != 220) {
			fail_host(so, 0, "4.7.0 STARTTLS refused: %s", r->text);
			return;
		}
		start_tls(so);
		return;
	case SO_AUTH_USER:
	case SO_AUTH_PASS:
		if (r->code == 334) {
			char b64[400];
			const char *v = so->state == SO_AUTH_USER ? conf->smarthost_user : secret;
			b64[0] = '\0';
			if (CONFIG_SMARTHOST_AUTH)
				b64_encode((const unsigned char *)v, strlen(v), b64,
					   sizeof(b64));
			send_line(so, "%s", b64);
			explicit_bzero(b64, sizeof(b64));
			so_enter(so, so->state == SO_AUTH_USER ? SO_AUTH_PASS : SO_AUTH);
			return;
		}
		/* anything else ends the login, as below */
		/* fall through */
	case SO_AUTH:
		if (r->code != 235) {
			/* A refused login is our configuration's fault: keep the
			 * mail and retry, never bounce it. */
			char why[SMTPOUT_DIAG + 168];
			snprintf(why, sizeof(why), "smarthost %.63s refused the login "
				 "as %.64s: %s", j->remote, conf->smarthost_user, r->text);
			log_msg(LOGL_ERR, "%s", why);
			smarthost_problem(so, SMTPOUT_PROBLEM_AUTH, why);
			/* The reason kept per recipient: short, the host is
			 * in the log line fail_host writes. */
			fail_host(so, 0, "4.7.0 login as %.64s refused: %s",
				  conf->smarthost_user, r->text);
			return;
		}
		send_mail(so);
		return;
	case SO_MAIL:
		if (so->rset_pending) {
			so->rset_pending = 0;
			if (r->code != 250)
				fail_host(so, 0, "4.4.2 %s refused RSET: %s",
					  j->remote, r->text);
			return;         /* MAIL's reply comes next */
		}
		so->mail_done = 1;
		if (ok) {
			so->mail_ok = 1;
		} else {
			for (int i = 0; i < j->n; i++)
				set_result(so, i, r);
		}
		if (!so->pipe) {
			if (!so->mail_ok) {
				quit(so);
				return;
			}
			send_rcpt(so);
		}
		so_enter(so, SO_RCPT);
		return;
	case SO_RCPT:
		if (so->mail_ok) {
			if (ok)
				so->n_ok++;
			else
				set_result(so, so->rcpt_replied, r);
		}
		if (++so->rcpt_replied < j->n) {
			if (!so->pipe)
				send_rcpt(so);
			return;
		}
		rcpts_done(so);
		return;
	case SO_DATA:
		if (r->code == 354 && so->mail_ok && so->n_ok > 0) {
			so->body_pos = 0;
			so->body_bol = 1;
			so->body_cr = 0;
			so->convert = so->eightbit && !(so->ext & EXT_8BITMIME);
			if (so->convert)
				mime7_init(&so->m7);
			so_enter(so, SO_BODY);
			/* Refilled each time the socket can take more. */
			so->c->flags |= CONN_DRAIN;
			body_fill(so);
			return;
		}
		if (r->code == 354) {
			/* Pipelined DATA accepted with no recipient: end it empty. */
			conn_write(so->c, ".\r\n", 3);
			so_enter(so, SO_DOT);
			so->n_ok = 0;
			return;
		}
		for (int i = 0; i < j->n; i++)
			if (so->mail_ok && j->code[i] == 0)
				set_result(so, i, r);
		quit(so);
		return;
	case SO_DOT:
		for (int i = 0; i < j->n; i++)
			if (j->code[i] == 0)
				set_result(so, i, r);
		if (ok)
			log_msg(LOGL_INFO, "smtp_out: %s accepted %d recipient(s): %s",
				j->remote, so->n_ok, r->text);
		transaction_end(so, r->code);
		return;
	default:
		return;
	}
}

/* ---- conn callbacks -------------------------------------------------- */

static int so_open(struct conn *c)
{
	struct smtpout *so = c->sess;

	if (!so)
		return -1;
	so_enter(so, SO_GREETING);
	smtp_reply_init(&so->reply);
	conn_deadline(c, T_GREETING);
	if (is_smarthost(so) && conf->smarthost_tls == SMARTHOST_TLS)
		return tls_begin(so, c);
	return 0;
}

static void so_input(struct conn *c)
{
	struct smtpout *so = c->sess;

	while (so && so->c == c && c->w.fd >= 0) {
		char *line;
		size_t len;
		int crlf, rc;

		if (so->state == SO_IDLE) {
			/* Unasked words from an idle server (421 and gone)
			 * end it; no words: it waits for the next message. */
			if (c->in.off < c->in.len)
				close_idle(so);
			return;
		}
		if (so->state == SO_BODY) {
			body_fill(so);
			if (so->state == SO_BODY)
				return;
			continue;
		}
		rc = lb_next(&c->in, CONFIG_CONN_INBUF - 2, &line, &len, &crlf);
		/* A reply line past the limit is the end of this peer, at
		 * once: no waiting for a line end that may never come. */
		if (rc == LB_NEED && !c->in.skipping)
			return;
		if (rc == LB_TOOLONG || rc == LB_NEED) {
			fail_host(so, 0, "4.5.0 over-long reply line from %s",
				  so->remote);
			return;
		}
		if (memchr(line, '\0', len))
			rc = REPLY_BAD;
		else
			rc = smtp_reply_line(&so->reply, line, len);
		if (rc == REPLY_BAD) {
			fail_host(so, 0, "4.5.0 malformed reply from %s",
				  so->remote);
			return;
		}
		if (so->state == SO_EHLO && so->reply.code == 250)
			ehlo_keyword(so, line);
		if (rc == REPLY_DONE) {
			struct smtp_reply r = so->reply;
			smtp_reply_init(&so->reply);
			on_reply(so, &r);
			so = c->sess;
		}
	}
}

static void so_timeout(struct conn *c)
{
	struct smtpout *so = c->sess;

	if (!so) {
		conn_close(c, "done");
		return;
	}
	if (so->state == SO_IDLE) {
		close_idle(so);
		return;
	}
	fail_host(so, 0, "4.4.2 timeout in state %s talking to %s",
		  so_names[so->state], so->remote);
}

static void so_close(struct conn *c)
{
	struct smtpout *so = c->sess;

	if (!so || so->c != c)
		return;
	so->c = NULL;
	c->sess = NULL;
	if (so->state == SO_IDLE) {
		so_enter(so, SO_FREE);
		return;
	}
	if (CONFIG_TLS && c->tls && (tls_error(c->tls) || !tls_established(c->tls))) {
		char why[SMTPOUT_DIAG], line[SMTPOUT_DIAG + 80];
		tls_explain(c->tls, tls_name(so), why, sizeof(why));
		snprintf(line, sizeof(line), "TLS with %.63s: %s", so->remote, why);
		if (is_smarthost(so) && tls_cert_error(c->tls))
			smarthost_problem(so, SMTPOUT_PROBLEM_CERT, line);
		fail_host(so, 0, "4.7.5 TLS: %s", why);
		return;
	}
	if (so->state == SO_CONNECT && c->why && no_route(0, c->why)) {
		snprintf(so->last, sizeof(so->last), "4.4.1 connect to %s: %s",
			 so->remote, c->why);
		so->last_perm = 0;
		so->last_local = 1;
		so->ti++;
		next_target(so);
		return;
	}
	fail_host(so, 0, "4.4.2 connection to %s lost in state %s: %s",
		  so->remote, so_names[so->state], c->why ? c->why : "?");
}

static const struct proto_ops smtpout_ops = {
	.name = "smtp_out",
	.open = so_open,
	.input = so_input,
	.timeout = so_timeout,
	.close = so_close,
};
