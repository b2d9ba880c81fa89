/* pop3 — POP3 server sessions: RFC 1939 (USER/PASS, STAT, LIST, RETR,
 * DELE, NOOP, RSET, QUIT, TOP, UIDL), RFC 2449 CAPA and RESP-CODES,
 * RFC 2595 STLS (and pop3s), RFC 5034 AUTH PLAIN.
 *
 * One enum of states, written only by sess_enter() (the skeleton the
 * servers share, session.c: pool, pump, timeouts, login gate), a
 * command table of {verb, allowed states, handler}; handlers validate
 * and reply before they act. The maildrop is the user's mbox, read
 * through its index (store/index.h); one POP3 session per mailbox
 * ([IN-USE]). Opening it scans what is new in bounded steps, then takes
 * the mbox lock only to scan the last bytes. Messages stream from the file
 * through the connection's output buffer. DELE marks a bit; QUIT rewrites
 * the mbox under its lock in bounded steps, copying mail delivered during
 * the session too. A dropped connection applies nothing.
 *
 * UIDL is "<uidvalidity>.<uid>": the IMAP UID of the message with its
 * UIDVALIDITY, so it never repeats for different mail when an index is
 * rebuilt. Limits: CONFIG_POP3_MAX_MESSAGES per session, CONFIG_POP3_TIMEOUT,
 * POP3_LINE_MAX (RFC 2449: 255 octets with CRLF), POP3_MAX_ERRORS. */
#include "proto/pop3.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/auth.h"
#include "proto/sasl.h"
#include "proto/session.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/users.h"
#include "tls/tls.h"

#define POP3_LINE_MAX 253               /* 255 with the CRLF */
#define POP3_SASL_MAX 768
#define POP3_MAX_ERRORS 20
#define POP3_MAX_COMMANDS 1000000
#define POP3_REPLY_ROOM 600             /* free output needed to take a command */
_Static_assert(POP3_REPLY_ROOM <= CONFIG_CONN_OUTBUF,
	       "CONN_OUTBUF must hold POP3_REPLY_ROOM, or no command is read");
#define POP3_LOCK_RETRY_MS 200
#define POP3_STEP ((size_t)CONFIG_LOOP_STEP_KB * 1024)
#define POP3_SEND_BUDGET (256 * 1024)   /* bytes streamed per loop pass */
#define POP3_OPEN_RESTARTS 3

enum pop3_state {
	POP3_AUTH,              /* AUTHORIZATION, no user named */
	POP3_USER,              /* USER accepted, waiting for PASS */
	POP3_SASL,              /* AUTH PLAIN: waiting for the response */
	POP3_AUTH_WAIT,         /* failed login: delaying the answer */
	POP3_OPEN,              /* opening the maildrop (index scan, lock) */
	POP3_TRANS,             /* TRANSACTION */
	POP3_SEND,              /* streaming a multi-line answer */
	POP3_UPDATE,            /* QUIT: rewriting the mbox */
	POP3_QUIT,              /* closing */
};

static const char *const state_names[] = {
	"auth", "user", "sasl", "auth-wait", "open", "trans", "send",
	"update", "quit",
};

enum { SEND_RETR, SEND_LIST, SEND_UIDL };

struct pop3_send {
	int kind;
	uint32_t i;             /* LIST/UIDL: next message */
	uint64_t pos, end;      /* RETR/TOP: bytes of the file left */
	struct idx_out out;
};

struct pop3_session {
	struct session ss;              /* ss.state: enum pop3_state */
	char user[USER_NAME_MAX + 1];   /* USER name, then the mailbox owner */
	/* the maildrop */
	int mfd, ifd;                   /* mbox (read-only), index */
	struct idx_hdr hdr;             /* snapshot at login */
	struct idx_reader rd;
	uint32_t n;                     /* messages visible */
	uint32_t ndele;
	uint64_t total, dele_bytes;
	struct mbox_lock lock;
	int locked;
	int64_t lock_until;
	int restarts;
	union {
		struct idx_update upd;  /* POP3_OPEN */
		struct pop3_send snd;   /* POP3_SEND */
		struct idx_rewrite rw;  /* POP3_UPDATE */
	} u;
	int upd_live, rw_live;
	unsigned char dele[CONFIG_POP3_MAX_MESSAGES / 8];
};

static struct pop3_session pool[CONFIG_MAX_CONNECTIONS];

/* Message bytes on their way out; single-threaded, used within a call. */
static unsigned char fbuf[8192];
static char obuf[2 * sizeof(fbuf) + 32];

static void wait_command(struct conn *c)
{
	conn_deadline(c, CONFIG_POP3_TIMEOUT);
}

static void ok(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ok(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sess_vreply(c, "+OK ", 399, fmt, ap);
	va_end(ap);
}

/* A refusal: err() for an ordinary result (no such message, in use),
 * perr() for a protocol error (syntax, unknown command, wrong state),
 * which alone counts towards POP3_MAX_ERRORS. */
static void err(struct conn *c, struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void perr(struct conn *c, struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err(struct conn *c, struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	(void)s;
	va_start(ap, fmt);
	sess_vreply(c, "-ERR ", 399, fmt, ap);
	va_end(ap);
}

static void perr(struct conn *c, struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	(void)s;
	va_start(ap, fmt);
	sess_vreply(c, "-ERR ", 399, fmt, ap);
	va_end(ap);
	sess_count_error(c);
}

/* ---- the maildrop ---------------------------------------------------- */

static int is_dele(const struct pop3_session *s, uint32_t i)
{
	return (s->dele[i / 8] >> (i % 8)) & 1;
}

static int keep_msg(void *ctx, uint32_t i)
{
	struct pop3_session *s = ctx;

	return i >= s->n || !is_dele(s, i);
}

static void unlock(struct pop3_session *s)
{
	if (s->locked) {
		mbox_unlock(&s->lock);
		s->locked = 0;
	}
}

static void drop_maildrop(struct pop3_session *s)
{
	if (s->upd_live) {
		idx_update_abort(&s->u.upd);
		s->upd_live = 0;
	}
	unlock(s);
	if (s->mfd >= 0)
		close(s->mfd);
	if (s->ifd >= 0)
		close(s->ifd);
	s->mfd = s->ifd = -1;
}

/* Another session has this mailbox open. */
static int in_use(const struct pop3_session *me, const char *user)
{
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		const struct pop3_session *o = &pool[i];
		if (o->ss.conn && o != me && o->ss.state >= POP3_OPEN &&
		    o->ss.state != POP3_QUIT && strcmp(o->user, user) == 0)
			return 1;
	}
	return 0;
}

static void open_fail(struct conn *c, struct pop3_session *s, const char *code,
		      const char *why)
{
	int e = errno;

	drop_maildrop(s);
	log_msg(LOGL_ERR, "conn %u %s: mailbox %s: %s%s%s", c->id, c->peer_str,
		s->user, why, e ? ": " : "", e ? strerror(e) : "");
	s->user[0] = '\0';
	sess_enter(c, POP3_AUTH);
	err(c, s, "[%s] %s", code, why);
	wait_command(c);
	conn_resume(c);
}

/* Opens the mbox read-only and starts bringing its index up to date. */
static int open_begin(struct conn *c, struct pop3_session *s)
{
	char path[CONF_PATH_MAX + USER_NAME_MAX + 2], ipath[CONF_PATH_MAX + 96];
	struct stat st;
	int rc;

	(void)c;
	snprintf(path, sizeof(path), "%s/%s", conf->mail_dir, s->user);
	s->mfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (s->mfd < 0 && errno == ENOENT) {
		/* No mail yet: create it the way a delivery would. */
		rc = mbox_lock(conf->mail_dir, s->user, &s->lock);
		if (rc == MBOX_OK)
			mbox_unlock(&s->lock);
		s->mfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	}
	if (s->mfd < 0 || fstat(s->mfd, &st) != 0)
		return -1;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
		errno = EPERM;
		return -1;
	}
	if (idx_path(conf->mail_dir, s->user, ".idx", ipath, sizeof(ipath), 1) != 0 ||
	    idx_update_begin(&s->u.upd, s->mfd, ipath) != 0)
		return -1;
	s->upd_live = 1;
	return 0;
}

static void open_done(struct conn *c, struct pop3_session *s)
{
	struct idx_rec r;

	idx_update_result(&s->u.upd, &s->hdr, &s->ifd);
	idx_update_abort(&s->u.upd);
	s->upd_live = 0;
	unlock(s);
	s->n = s->hdr.count < CONFIG_POP3_MAX_MESSAGES ? s->hdr.count :
	       CONFIG_POP3_MAX_MESSAGES;
	idx_reader_init(&s->rd, s->ifd, s->hdr.count);
	s->total = 0;
	for (uint32_t i = 0; i < s->n; i++) {
		if (idx_get(&s->rd, i, &r) != 0) {
			open_fail(c, s, "SYS/TEMP", "cannot read the mailbox index");
			return;
		}
		s->total += r.size;
	}
	memset(s->dele, 0, sizeof(s->dele));
	s->ndele = 0;
	s->dele_bytes = 0;
	log_msg(LOGL_INFO, "conn %u %s: pop3 mailbox %s: %u messages, %llu octets",
		c->id, c->peer_str, s->user, s->n, (unsigned long long)s->total);
	sess_enter(c, POP3_TRANS);
	ok(c, "Logged in, %u messages (%llu octets)", s->n,
	   (unsigned long long)s->total);
	wait_command(c);
	conn_resume(c);
}

static void open_step(struct conn *c, struct pop3_session *s)
{
	for (int round = 0; round < 4; round++) {
		int rc = idx_update_step(&s->u.upd, POP3_STEP, s->locked);

		if (rc == IDX_AGAIN) {
			conn_deadline_ms(c, 0);
			return;
		}
		if (rc == IDX_DONE) {
			open_done(c, s);
			return;
		}
		if (rc == IDX_AGAIN_LOCK) {
			struct stat a, b;
			rc = mbox_lock(conf->mail_dir, s->user, &s->lock);
			if (rc == MBOX_BUSY) {
				if (now_ms() < s->lock_until) {
					conn_deadline_ms(c, POP3_LOCK_RETRY_MS);
					return;
				}
				errno = 0;
				open_fail(c, s, "IN-USE", "Mailbox is locked by another "
					  "program, try again later");
				return;
			}
			if (rc != MBOX_OK) {
				open_fail(c, s, "SYS/TEMP", "Cannot lock the mailbox");
				return;
			}
			s->locked = 1;
			if (fstat(s->lock.fd, &a) == 0 && fstat(s->mfd, &b) == 0 &&
			    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
				continue;
			errno = ESTALE;
		}
		/* Replaced or truncated by another program: start again. */
		if (errno == ESTALE && ++s->restarts <= POP3_OPEN_RESTARTS) {
			drop_maildrop(s);
			if (open_begin(c, s) == 0) {
				conn_deadline_ms(c, 0);
				return;
			}
		}
		open_fail(c, s, "SYS/TEMP", "Cannot open the mailbox");
		return;
	}
	conn_deadline_ms(c, 0);
}

/* A good login: the mailbox is opened in steps while the client waits. */
static void login(struct conn *c, struct pop3_session *s, const char *canon)
{
	str_copy(s->user, sizeof(s->user), canon, strlen(canon));
	log_msg(LOGL_INFO, "conn %u %s: pop3 login %s", c->id, c->peer_str, s->user);
	if (in_use(s, s->user)) {
		s->user[0] = '\0';
		sess_enter(c, POP3_AUTH);
		err(c, s, "[IN-USE] Mailbox is open in another POP3 session");
		return;
	}
	c->flags |= CONN_AUTHED;
	s->restarts = 0;
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	sess_enter(c, POP3_OPEN);
	conn_suspend(c);
	if (open_begin(c, s) != 0) {
		open_fail(c, s, errno == EPERM ? "SYS/PERM" : "SYS/TEMP",
			  "Cannot open the mailbox");
		return;
	}
	open_step(c, s);
}

/* ---- authentication ---------------------------------------------------- */

static void auth_result(struct conn *c, struct pop3_session *s, int good,
			const char *canon)
{
	if (good) {
		login(c, s, canon);
		return;
	}
	s->user[0] = '\0';
	sess_login_fail(c);
}

/* Login commands are refused before TLS unless the network is allowed. */
static int auth_gate(struct conn *c, struct pop3_session *s)
{
	int rc = sess_login_gate(c);

	if (rc > 0)
		err(c, s, "[AUTH] Plaintext authentication disallowed on "
		    "non-secure connections; use STLS");
	return rc;
}

static void cmd_user(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	if (auth_gate(c, s) != 0)
		return;
	if (len == 0 || len > USER_NAME_MAX || memchr(arg, ' ', len)) {
		perr(c, s, "Syntax: USER name");
		return;
	}
	str_copy(s->user, sizeof(s->user), arg, len);
	sess_enter(c, POP3_USER);
	/* Same answer for every name: it does not tell which exist. */
	ok(c, "Send your password");
}

static void cmd_pass(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	const char *canon = NULL;
	int good = auth_gate(c, s);

	if (good != 0) {
		/* (not out of QUIT: a ban's goodbye ends the session) */
		if (s->ss.state == POP3_USER)
			sess_enter(c, POP3_AUTH);
		return;
	}
	if (len == 0) {
		perr(c, s, "Syntax: PASS password");
		return;
	}
	good = auth_check(s->user, strlen(s->user), arg, len, &canon);
	auth_result(c, s, good, canon);
}

static void sasl_plain(struct conn *c, struct pop3_session *s, const char *b64,
		       size_t len)
{
	const char *canon = NULL;
	int rc = auth_plain_response(b64, len, &canon);

	if (rc == AUTH_CANCEL || rc == AUTH_BADB64) {
		sess_enter(c, POP3_AUTH);
		err(c, s, rc == AUTH_CANCEL ? "Authentication cancelled" :
		    "Cannot decode the response");
		return;
	}
	auth_result(c, s, rc, canon);
}

static void cmd_auth(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	size_t mlen = 0;

	if (len == 0) {
		/* The pre-RFC 5034 mechanism list some clients ask for. */
		conn_printf(c, "+OK\r\n%s.\r\n", auth_allowed(c) ? "PLAIN\r\n" : "");
		return;
	}
	if (auth_gate(c, s) != 0)
		return;
	while (mlen < len && arg[mlen] != ' ')
		mlen++;
	if (!str_ieq(arg, mlen, "PLAIN")) {
		perr(c, s, "Unsupported authentication mechanism");
		return;
	}
	if (mlen < len) {
		sasl_plain(c, s, arg + mlen + 1, len - mlen - 1);
		return;
	}
	sess_enter(c, POP3_SASL);
	conn_printf(c, "+ \r\n");
}

static void cmd_stls(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	int rc;

	(void)arg;
	if (len > 0) {
		perr(c, s, "Syntax: STLS");
		return;
	}
	if (c->tls) {
		perr(c, s, "TLS is already active");
		return;
	}
	rc = sess_start_tls(c);
	if (rc != 0) {
		err(c, s, "%s", rc > 0 ? "STLS not available" :
		    "[SYS/TEMP] TLS not available, try later");
		return;
	}
	/* RFC 2595: the client starts over after the handshake. */
	s->user[0] = '\0';
	sess_enter(c, POP3_AUTH);
	ok(c, "Begin TLS negotiation");
}

static void cmd_capa(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	int pre = s->ss.state == POP3_AUTH || s->ss.state == POP3_USER;
	int login_ok = pre && auth_allowed(c);

	(void)arg; (void)len;
	conn_printf(c, "+OK Capability list follows\r\n"
		    "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
		    "%s%s%sIMPLEMENTATION postie\r\n.\r\n",
		    login_ok ? "USER\r\n" : "",
		    login_ok ? "SASL PLAIN\r\n" : "",
		    pre && sess_tls_offered(c) ? "STLS\r\n" : "");
}

/* ---- transaction ------------------------------------------------------- */

/* "N" in 1..n of a message not deleted; replies and returns -1 otherwise. */
static int msg_arg(struct conn *c, struct pop3_session *s, const char *arg,
		   size_t len, uint32_t *idx)
{
	char num[24];
	uint64_t v;

	if (len == 0 || str_copy(num, sizeof(num), arg, len) != 0 ||
	    parse_u64(num, UINT32_MAX, &v) != 0) {
		perr(c, s, "Invalid message number");
		return -1;
	}
	if (v == 0 || v > s->n) {
		err(c, s, "No such message");
		return -1;
	}
	if (is_dele(s, (uint32_t)(v - 1))) {
		err(c, s, "Message %u is deleted", (unsigned)v);
		return -1;
	}
	*idx = (uint32_t)(v - 1);
	return 0;
}

/* Splits "A B" into two words; -1 when the count is not `want`. */
static int words(const char *arg, size_t len, int want, size_t *l1,
		 const char **a2, size_t *l2)
{
	const char *sp = memchr(arg, ' ', len);

	*l1 = sp ? (size_t)(sp - arg) : len;
	*a2 = NULL;
	*l2 = 0;
	if (sp) {
		*a2 = sp + 1;
		*l2 = len - *l1 - 1;
		if (memchr(*a2, ' ', *l2) || *l2 == 0)
			return -1;
	}
	return (len == 0 ? 0 : sp ? 2 : 1) == want ? 0 : -1;
}

static int get_rec(struct conn *c, struct pop3_session *s, uint32_t i,
		   struct idx_rec *r)
{
	if (idx_get(&s->rd, i, r) == 0)
		return 0;
	log_msg(LOGL_ERR, "conn %u: index of %s unreadable: %s", c->id, s->user,
		strerror(errno));
	err(c, s, "[SYS/TEMP] Cannot read the mailbox index");
	return -1;
}

static void cmd_stat(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	(void)arg;
	if (len) {
		perr(c, s, "Syntax: STAT");
		return;
	}
	ok(c, "%u %llu", s->n - s->ndele, (unsigned long long)(s->total - s->dele_bytes));
}

static void send_step(struct conn *c, struct pop3_session *s);

static void start_send(struct conn *c, struct pop3_session *s, int kind)
{
	s->u.snd.kind = kind;
	s->u.snd.i = 0;
	sess_enter(c, POP3_SEND);
	conn_stream_begin(c);
	send_step(c, s);
}

static void cmd_list(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	struct idx_rec r;
	uint32_t i;

	if (len == 0) {
		ok(c, "%u messages (%llu octets)", s->n - s->ndele,
		   (unsigned long long)(s->total - s->dele_bytes));
		start_send(c, s, SEND_LIST);
		return;
	}
	if (memchr(arg, ' ', len)) {
		perr(c, s, "Syntax: LIST [message]");
		return;
	}
	if (msg_arg(c, s, arg, len, &i) != 0 || get_rec(c, s, i, &r) != 0)
		return;
	ok(c, "%u %llu", i + 1, (unsigned long long)r.size);
}

static void cmd_uidl(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	struct idx_rec r;
	uint32_t i;

	if (len == 0) {
		ok(c, "Unique-ID listing follows");
		start_send(c, s, SEND_UIDL);
		return;
	}
	if (memchr(arg, ' ', len)) {
		perr(c, s, "Syntax: UIDL [message]");
		return;
	}
	if (msg_arg(c, s, arg, len, &i) != 0 || get_rec(c, s, i, &r) != 0)
		return;
	ok(c, "%u %u.%u", i + 1, s->hdr.uidvalidity, r.uid);
}

/* RETR and TOP: the message streams from the mbox file. */
static void send_message(struct conn *c, struct pop3_session *s, uint32_t i,
			 long top)
{
	struct idx_rec r;
	char from[5];

	if (get_rec(c, s, i, &r) != 0)
		return;
	if (pread(s->mfd, from, 5, (off_t)r.off) != 5 || memcmp(from, "From ", 5) != 0) {
		log_msg(LOGL_ERR, "conn %u: mailbox %s changed under the session",
			c->id, s->user);
		err(c, s, "[SYS/TEMP] The mailbox was changed by another program");
		return;
	}
	if (top < 0)
		ok(c, "%llu octets", (unsigned long long)r.size);
	else
		ok(c, "Top of message follows");
	s->u.snd.pos = r.off + r.from_len;
	s->u.snd.end = s->u.snd.pos + r.data_len;
	idx_out_init(&s->u.snd.out, 1, top);
	start_send(c, s, SEND_RETR);
}

static void cmd_retr(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	uint32_t i;

	if (memchr(arg, ' ', len)) {
		perr(c, s, "Syntax: RETR message");
		return;
	}
	if (msg_arg(c, s, arg, len, &i) == 0)
		send_message(c, s, i, -1);
}

static void cmd_top(struct conn *c, struct pop3_session *s, const char *arg,
		    size_t len)
{
	const char *a2;
	size_t l1, l2;
	char num[24];
	uint64_t lines;
	uint32_t i;

	if (words(arg, len, 2, &l1, &a2, &l2) != 0) {
		perr(c, s, "Syntax: TOP message lines");
		return;
	}
	if (str_copy(num, sizeof(num), a2, l2) != 0 ||
	    parse_u64(num, UINT64_MAX, &lines) != 0) {
		perr(c, s, "Invalid number of lines");
		return;
	}
	if (lines > 0x7fffffff)
		lines = 0x7fffffff;
	if (msg_arg(c, s, arg, l1, &i) == 0)
		send_message(c, s, i, (long)lines);
}

static void cmd_dele(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	struct idx_rec r;
	uint32_t i;

	if (memchr(arg, ' ', len)) {
		perr(c, s, "Syntax: DELE message");
		return;
	}
	if (msg_arg(c, s, arg, len, &i) != 0 || get_rec(c, s, i, &r) != 0)
		return;
	s->dele[i / 8] |= (unsigned char)(1u << (i % 8));
	s->ndele++;
	s->dele_bytes += r.size;
	ok(c, "Message %u deleted", i + 1);
}

static void cmd_rset(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	(void)arg; (void)len;
	memset(s->dele, 0, (s->n + 7) / 8);
	s->ndele = 0;
	s->dele_bytes = 0;
	ok(c, "%u messages (%llu octets)", s->n, (unsigned long long)s->total);
}

static void cmd_noop(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	(void)s; (void)arg; (void)len;
	ok(c, "%s", "");
}

/* ---- streaming --------------------------------------------------------- */

/* Writes more of the answer into the output buffer; 1 when complete. */
static int produce(struct conn *c, struct pop3_session *s)
{
	struct pop3_send *p = &s->u.snd;
	size_t room = conn_out_free(c);
	struct idx_rec r;
	char line[64];

	if (p->kind != SEND_RETR) {
		while (p->i < s->n && room >= sizeof(line)) {
			uint32_t i = p->i++;
			int k;
			if (is_dele(s, i))
				continue;
			if (idx_get(&s->rd, i, &r) != 0)
				return -1;
			k = p->kind == SEND_LIST ?
			    snprintf(line, sizeof(line), "%u %llu\r\n", i + 1,
				     (unsigned long long)r.size) :
			    snprintf(line, sizeof(line), "%u %u.%u\r\n", i + 1,
				     s->hdr.uidvalidity, r.uid);
			conn_write(c, line, (size_t)k);
			room -= (size_t)k;
		}
		if (p->i < s->n || room < 3)
			return 0;
		conn_write(c, ".\r\n", 3);
		return 1;
	}
	if (p->pos < p->end && !p->out.done && room > 64) {
		size_t want = (room - 32) / 2, used, w;
		ssize_t n;
		if (want > sizeof(fbuf))
			want = sizeof(fbuf);
		if (want > p->end - p->pos)
			want = (size_t)(p->end - p->pos);
		n = pread(s->mfd, fbuf, want, (off_t)p->pos);
		if (n <= 0)
			return -1;
		w = idx_out_feed(&p->out, fbuf, (size_t)n, obuf, &used);
		conn_write(c, obuf, w);
		p->pos += used;
		return 0;
	}
	if (room < 16)
		return 0;
	conn_write(c, obuf, idx_out_end(&p->out, obuf));
	conn_write(c, ".\r\n", 3);
	return 1;
}

static void send_step(struct conn *c, struct pop3_session *s)
{
	size_t sent = 0;

	while (c->w.fd >= 0) {
		size_t before = conn_out_free(c);
		int rc = produce(c, s);

		if (rc < 0) {
			log_msg(LOGL_ERR, "conn %u: reading mailbox %s: %s", c->id,
				s->user, strerror(errno));
			sess_quit(c);
			return;
		}
		if (rc == 1) {
			conn_stream_end(c);
			sess_enter(c, POP3_TRANS);
			wait_command(c);
			return;
		}
		sent += before - conn_out_free(c);
		conn_flush(c);
		if (c->w.fd < 0)
			return;
		if (conn_out_pending(c)) {
			/* The conn calls input() again once this is written. */
			wait_command(c);
			return;
		}
		if (sent >= POP3_SEND_BUDGET) {
			/* Let other sessions run; the deadline brings us back. */
			conn_deadline_ms(c, 0);
			return;
		}
	}
}

/* ---- QUIT and the update ------------------------------------------------- */

static void update_end(struct conn *c, struct pop3_session *s, int good,
		       const char *code, const char *why)
{
	int e = errno;

	unlock(s);
	if (good) {
		/* IMAP sessions on the mailbox look again (IDLE ones are
		 * told of the expunges now), as after a delivery. */
		mbox_new_mail(s->user);
		log_msg(LOGL_INFO, "conn %u %s: pop3 %s: %u messages deleted", c->id,
			c->peer_str, s->user, s->ndele);
		ok(c, "Bye, %u messages deleted", s->ndele);
	} else {
		log_msg(LOGL_ERR, "conn %u %s: pop3 %s: deletions not applied: %s%s%s",
			c->id, c->peer_str, s->user, why, e ? ": " : "",
			e ? strerror(e) : "");
		conn_printf(c, "-ERR [%s] %s; no message deleted\r\n", code, why);
	}
	sess_quit(c);
	if (c->w.fd >= 0)
		conn_resume(c);
}

/* One step of the update; `all` finishes it now (connection gone). */
static void update_step(struct conn *c, struct pop3_session *s, int all)
{
	struct idx_hdr h;
	int rc;

	if (!s->locked) {
		rc = mbox_lock(conf->mail_dir, s->user, &s->lock);
		if (rc == MBOX_BUSY && now_ms() < s->lock_until && !all) {
			conn_deadline_ms(c, POP3_LOCK_RETRY_MS);
			return;
		}
		if (rc != MBOX_OK) {
			if (rc == MBOX_BUSY)
				errno = 0;
			update_end(c, s, 0, rc == MBOX_BUSY ? "IN-USE" : "SYS/TEMP",
				   rc == MBOX_BUSY ? "Mailbox is locked" :
				   "Cannot lock the mailbox");
			return;
		}
		s->locked = 1;
		if (idx_rewrite_begin(&s->u.rw, conf->mail_dir, s->user, s->lock.fd,
				      s->ifd, &s->hdr, keep_msg, s) != 0) {
			update_end(c, s, 0, "SYS/TEMP", errno == ESTALE ?
				   "The mailbox was changed by another program" :
				   "Cannot rewrite the mailbox");
			return;
		}
		s->rw_live = 1;
	}
	do {
		rc = idx_rewrite_step(&s->u.rw, all ? SIZE_MAX : POP3_STEP, &h);
	} while (all && rc == IDX_AGAIN);
	if (rc == IDX_AGAIN) {
		conn_deadline_ms(c, 0);
		return;
	}
	s->rw_live = 0;
	update_end(c, s, rc == IDX_DONE, "SYS/TEMP", errno == ESTALE ?
		   "The mailbox was changed by another program" :
		   "Cannot rewrite the mailbox");
}

static void cmd_quit(struct conn *c, struct pop3_session *s, const char *arg,
		     size_t len)
{
	(void)arg; (void)len;
	if (s->ss.state != POP3_TRANS || s->ndele == 0) {
		ok(c, "Bye");
		sess_quit(c);
		return;
	}
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	sess_enter(c, POP3_UPDATE);
	conn_suspend(c);
	update_step(c, s, 0);
}

/* ---- commands ---------------------------------------------------------- */

#define ST(x) (1u << (x))
#define PRE (ST(POP3_AUTH) | ST(POP3_USER))

struct pop3_cmd {
	const char *verb;
	unsigned states;
	void (*fn)(struct conn *c, struct pop3_session *s, const char *arg,
		   size_t len);
};

static const struct pop3_cmd commands[] = {
	{ "CAPA", PRE | ST(POP3_TRANS), cmd_capa },
	{ "USER", PRE, cmd_user },
	{ "PASS", ST(POP3_USER), cmd_pass },
	{ "AUTH", PRE, cmd_auth },
	{ "STLS", PRE, cmd_stls },
	{ "QUIT", PRE | ST(POP3_TRANS), cmd_quit },
	{ "STAT", ST(POP3_TRANS), cmd_stat },
	{ "LIST", ST(POP3_TRANS), cmd_list },
	{ "UIDL", ST(POP3_TRANS), cmd_uidl },
	{ "RETR", ST(POP3_TRANS), cmd_retr },
	{ "TOP", ST(POP3_TRANS), cmd_top },
	{ "DELE", ST(POP3_TRANS), cmd_dele },
	{ "RSET", ST(POP3_TRANS), cmd_rset },
	{ "NOOP", ST(POP3_TRANS), cmd_noop },
};

static void command(struct conn *c, struct pop3_session *s, char *line,
		    size_t len)
{
	size_t vlen, alen;
	const char *arg;

	if (sess_count_command(c) != 0)
		return;
	if (memchr(line, '\0', len)) {
		perr(c, s, "NUL character in command");
		return;
	}
	arg = sess_split(line, len, &vlen, &alen);
	if (CONFIG_DEBUG_PROTOCOL)
		sess_log_command(c, line, str_ieq(line, vlen, "PASS") ? vlen : len);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const struct pop3_cmd *cmd = &commands[i];
		if (!str_ieq(line, vlen, cmd->verb))
			continue;
		if (!(cmd->states & ST(s->ss.state))) {
			perr(c, s, "Command not valid in this state");
			return;
		}
		/* Passwords may end in blanks; other arguments may not. */
		if (cmd->fn != cmd_pass)
			while (alen > 0 && arg[alen - 1] == ' ')
				alen--;
		cmd->fn(c, s, arg, alen);
		return;
	}
	if (s->ss.state == POP3_USER)
		sess_enter(c, POP3_AUTH);
	perr(c, s, "Unknown command");
}

static int pop3_read(struct conn *c)
{
	struct pop3_session *s = c->sess;

	return sess_line(c, s->ss.state == POP3_SASL ? POP3_SASL_MAX : POP3_LINE_MAX);
}

static void pop3_line(struct conn *c, char *line, size_t len)
{
	struct pop3_session *s = c->sess;

	if (s->ss.state == POP3_SASL)
		sasl_plain(c, s, line, len);
	else
		command(c, s, line, len);
}

static int pop3_too_long(struct conn *c)
{
	struct pop3_session *s = c->sess;

	if (s->ss.state == POP3_SASL || s->ss.state == POP3_USER)
		sess_enter(c, POP3_AUTH);
	perr(c, s, "Line too long");
	return SESS_MORE;
}

static void pop3_stream(struct conn *c)
{
	send_step(c, c->sess);
}

static int pop3_timeout(struct conn *c)
{
	struct pop3_session *s = c->sess;

	if (s->ss.state == POP3_OPEN)
		open_step(c, s);
	else if (s->ss.state == POP3_UPDATE)
		update_step(c, s, 0);
	else
		return 0;
	return 1;
}

static void pop3_login_failed(struct conn *c)
{
	sess_enter(c, POP3_AUTH);
	err(c, c->sess, "[AUTH] Authentication failed");
}

static void pop3_bye(struct conn *c, const char *why)
{
	conn_printf(c, "-ERR %s\r\n", why);
}

static void pop3_cleanup(struct conn *c)
{
	struct pop3_session *s = c->sess;

	if (s->ss.state == POP3_UPDATE) {
		/* QUIT came: finish what it started, even without a reader. */
		s->lock_until = 0;
		if (s->locked && s->rw_live) {
			struct idx_hdr h;
			int rc;
			do {
				rc = idx_rewrite_step(&s->u.rw, SIZE_MAX, &h);
			} while (rc == IDX_AGAIN);
			s->rw_live = 0;
			log_msg(LOGL_INFO, "conn %u: pop3 %s: update %s after the "
				"client left", c->id, s->user,
				rc == IDX_DONE ? "finished" : "failed");
		}
	}
	if (s->rw_live) {
		idx_rewrite_abort(&s->u.rw);
		s->rw_live = 0;
	}
	drop_maildrop(s);
}

static const struct sess_ops pop3_sess = {
	.name = "pop3",
	.states = state_names,
	.pool = pool,
	.size = sizeof(pool[0]),
	.first = POP3_AUTH,
	.quit = POP3_QUIT,
	.auth_wait = POP3_AUTH_WAIT,
	.tls_kind = LISTEN_POP3S,
	.reading = SESS_ST(POP3_AUTH) | SESS_ST(POP3_USER) | SESS_ST(POP3_SASL) |
		   SESS_ST(POP3_TRANS),
	.streaming = SESS_ST(POP3_SEND),
	.max_commands = POP3_MAX_COMMANDS,
	.max_errors = POP3_MAX_ERRORS,
	.reply_room = POP3_REPLY_ROOM,
	.texts = {
		[SESS_T_BANNED] = "[AUTH] Too many failed logins, try later",
		[SESS_T_COMMANDS] = "Too many commands",
		[SESS_T_ERRORS] = "Too many errors, closing",
		/* RFC 1939 autologout: no UPDATE state, nothing deleted. */
		[SESS_T_TIMEOUT] = "Autologout; idle for too long",
	},
	.bye = pop3_bye,
	.wait = wait_command,
	.read = pop3_read,
	.line = pop3_line,
	.too_long = pop3_too_long,
	.stream = pop3_stream,
	.timeout = pop3_timeout,
	.login_failed = pop3_login_failed,
	.cleanup = pop3_cleanup,
};

static int pop3_open(struct conn *c)
{
	/* The bitmap is cleared at login; the rest starts zeroed. */
	struct pop3_session *s = sess_open(c, &pop3_sess,
					   offsetof(struct pop3_session, dele));
	int one = 1;

	if (!s)
		return -1;
	s->mfd = s->ifd = -1;
	s->lock.fd = -1;
	/* Messages leave in output-buffer-sized pieces: without this, Nagle
	 * holds each small tail until the client's delayed ACK (40 ms). */
	setsockopt(c->w.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_printf(c, "+OK postie POP3 server ready\r\n");
	wait_command(c);
	return 0;
}

static void pop3_refuse(struct conn *c, const char *why)
{
	conn_printf(c, "-ERR [SYS/TEMP] %s\r\n", why);  /* RFC 3206 */
}

const struct proto_ops pop3_ops = {
	.name = "pop3",
	.open = pop3_open,
	.input = sess_input,
	.timeout = sess_timeout,
	.close = sess_close,
	.refuse = pop3_refuse,
};
