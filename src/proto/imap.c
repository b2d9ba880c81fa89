/* imap — IMAP4rev1 server sessions (RFC 3501) with LITERAL+ (RFC 7888),
 * SASL-IR (RFC 4959), ID (RFC 2971), ENABLE (RFC 5161), IDLE (RFC 2177),
 * NAMESPACE (RFC 2342), UNSELECT (RFC 3691); STARTTLS and imaps.
 *
 * One enum of states, written only by sess_enter() (the skeleton all
 * servers share, session.c, which also takes sessions from the pool,
 * pumps the input and gates logins), a command table of {verb, allowed
 * states, handler}. Handlers parse the whole command (imap_parse.c)
 * and answer BAD before acting. Anything whose answer can outgrow the
 * connection's output buffer (FETCH, SEARCH, STORE, EXPUNGE, LIST) runs
 * as a job that produces output as the socket takes it, then the tagged
 * answer.
 *
 * Mailboxes: INBOX is mail_dir/USER; other folders are mbox files in
 * mail_dir/.postie/folders/USER/ (flat names). Every mailbox is read
 * through its index (store/index.h): UIDs, flags (\Seen \Answered
 * \Flagged \Deleted \Draft) and UIDVALIDITY live there, the mbox stays a
 * plain mboxrd file for mutt and Dovecot. Messages stream from the file,
 * mboxrd quoting undone, CRLF line ends; their MIME structure is parsed
 * on the fly (mime.c). EXPUNGE rewrites the mbox crash-safely like POP3.
 * Sessions on one mailbox tell each other about flag changes and
 * expunges in memory; deliveries call the mbox_on_new_mail hook. An idle
 * session sets no timer but its autologout deadline; one in IDLE with a
 * mailbox selected also wakes every IMAP_IDLE_POLL s to stat the mbox
 * (another program's append or rewrite).
 *
 * Limits: IMAP_CMD_MAX octets per command (literals included),
 * IMAP_MAX_ERRORS, CONFIG_IMAP_TIMEOUT, the parser's limits.
 *
 * The server is split along its sections, with their shared types in
 * imap_int.h: this file has the session pool, states, the hooks the
 * skeleton calls, authentication and the commands of any state, the
 * command table and the command reader; imap_mailbox.c the mailboxes
 * and the commands on them, imap_selected.c the selected mailbox (other
 * sessions, synchronising, the selected-state commands), imap_fetch.c
 * the streams, FETCH and the jobs, imap_append.c APPEND, COPY and MOVE. */
#include "proto/imap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/auth.h"
#include "proto/imap_int.h"
#include "proto/imap_parse.h"
#include "proto/imap_search.h"
#include "proto/mime.h"
#include "proto/sasl.h"
#include "proto/session.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/users.h"
#include "tls/tls.h"

static const char *const state_names[] = {
	"noauth", "auth-wait", "sasl", "authed", "selected", "open", "busy",
	"rewrite", "append", "copy", "idle", "logout", "setup", "create",
};
_Static_assert(ARRAY_LEN(state_names) == IMAP_CREATE + 1, "a name per state");

struct imap_session imap_pool[CONFIG_MAX_CONNECTIONS];

/* Shared scratch, used within one call only (single-threaded). */
unsigned char imap_fbuf[8192];
char imap_obuf[2 * sizeof(imap_fbuf) + 64];
struct mime imap_mime;
uint16_t imap_kmp_tab[IMAP_CMD_MAX];  /* SEARCH needles' tables */

static void reader_reset(struct imap_session *s);

void imap_wait_command(struct conn *c, struct imap_session *s)
{
	/* The command (and any set a finished operation used) is done. */
	if (s->rd_taken)
		reader_reset(s);
	s->set = NULL;
	if (s->ss.state == IMAP_IDLE)
		imap_idle_deadline(c, s);
	else
		conn_deadline(c, s->ss.state == IMAP_NOAUTH ? 60 : CONFIG_IMAP_TIMEOUT);
}

/* IDLE waits until its autologout, waking every IMAP_IDLE_POLL s when a
 * mailbox is selected. conn_deadline keeps the wait evictable. */
void imap_idle_deadline(struct conn *c, struct imap_session *s)
{
	int64_t left = s->idle_until - now_ms();
	int secs = left <= 0 ? 1 : (int)((left + 999) / 1000);

	if (s->have_sel && secs > IMAP_IDLE_POLL)
		secs = IMAP_IDLE_POLL;
	conn_deadline(c, secs);
}

void imap_tagged(struct conn *c, struct imap_session *s, const char *st,
		 const char *fmt, ...)
{
	char pfx[IMAP_TAG_MAX + 16];
	va_list ap;

	snprintf(pfx, sizeof(pfx), "%s %s ", s->tag[0] ? s->tag : "*", st);
	va_start(ap, fmt);
	sess_vreply(c, pfx, 299, fmt, ap);
	va_end(ap);
	/* Only protocol errors count towards IMAP_MAX_ERRORS: a NO is an
	 * ordinary result (a folder that is gone, a limit). */
	if (st[0] == 'B')
		sess_count_error(c);
}

void imap_bad(struct conn *c, struct imap_session *s, const char *why)
{
	imap_tagged(c, s, "BAD", "%s", why);
}

/* ---- authentication --------------------------------------------------- */

static void capability_text(struct conn *c, struct imap_session *s, char *out,
			    size_t n)
{
	int pre = s->ss.state == IMAP_NOAUTH;

	snprintf(out, n, "IMAP4rev1%s SASL-IR%s%s%s%s UNSELECT CHILDREN%s%s%s%s%s%s%s",
		 CONFIG_IMAP_LITERALPLUS ? " LITERAL+" : "",
		 CONFIG_IMAP_ID ? " ID" : "", CONFIG_IMAP_ENABLE ? " ENABLE" : "",
		 CONFIG_IMAP_IDLE ? " IDLE" : "",
		 CONFIG_IMAP_NAMESPACE ? " NAMESPACE" : "",
		 CONFIG_IMAP_UIDPLUS ? " UIDPLUS" : "", CONFIG_IMAP_MOVE ? " MOVE" : "",
		 CONFIG_IMAP_SPECIAL_USE ? " SPECIAL-USE" : "",
		 CONFIG_IMAP_CONDSTORE ? " CONDSTORE" : "",
		 pre && sess_tls_offered(c) ? " STARTTLS" : "",
		 pre && !auth_allowed(c) ? " LOGINDISABLED" : "",
		 pre && auth_allowed(c) ? " AUTH=PLAIN" : "");
}

/* A first login makes the user's folders (store/folders.h) a step a
 * loop pass, each with at most one fsync, the others served in between;
 * the answer to LOGIN/AUTHENTICATE comes after the last. Bounded: a
 * setup that does not finish in IMAP_SETUP_STEPS is given up. */
#define IMAP_SETUP_STEPS 64

/* One step; 1 when another is due (at the next pass). */
static int setup_more(struct conn *c, struct imap_session *s)
{
	int rc = folder_setup_step(s->base, CONFIG_IMAP_SPECIAL_USE, &s->setup_pos);

	if (rc == FOLDER_SETUP_AGAIN && ++s->setup_steps < IMAP_SETUP_STEPS) {
		conn_next_pass(c);
		return 1;
	}
	if (rc != FOLDER_SETUP_DONE)
		log_msg(LOGL_WARN, "conn %u %s: imap %s: cannot set up the folders "
			"in %s: %s", c->id, c->peer_str, s->user, s->base,
			rc < 0 ? strerror(errno) : "too many steps");
	return 0;
}

static void logged_in(struct conn *c, struct imap_session *s)
{
	char cap[256];

	sess_enter(c, IMAP_AUTHED);
	capability_text(c, s, cap, sizeof(cap));
	imap_tagged(c, s, "OK", "[CAPABILITY %s] Logged in", cap);
}

static void setup_step(struct conn *c, struct imap_session *s)
{
	if (setup_more(c, s))
		return;
	logged_in(c, s);
	imap_wait_command(c, s);
	conn_resume(c);
}

static void login_ok(struct conn *c, struct imap_session *s, const char *canon)
{
	str_copy(s->user, sizeof(s->user), canon, strlen(canon));
	log_msg(LOGL_INFO, "conn %u %s: imap login %s", c->id, c->peer_str, s->user);
	c->flags |= CONN_AUTHED;
	if (folder_base(conf->mail_dir, s->user, s->base, sizeof(s->base)) != 0)
		s->base[0] = '\0';     /* the setup fails at once, logged */
	s->setup_pos = s->setup_steps = 0;
	if (setup_more(c, s)) {
		/* A first login: the folders take steps of their own. */
		sess_enter(c, IMAP_SETUP);
		conn_suspend(c);
		return;
	}
	logged_in(c, s);
}

static void auth_result(struct conn *c, struct imap_session *s, int good,
			const char *canon)
{
	if (good) {
		login_ok(c, s, canon);
		return;
	}
	sess_login_fail(c);
}

static int auth_gate(struct conn *c, struct imap_session *s)
{
	int rc = sess_login_gate(c);

	if (rc > 0)
		imap_tagged(c, s, "NO", "[PRIVACYREQUIRED] Login only after STARTTLS");
	return rc;
}

static void cmd_login(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char *u, *p;
	size_t ul, pl;
	const char *canon = NULL;

	if (ip_sp(ip) || ip_astring(ip, &u, &ul) || ip_sp(ip) ||
	    ip_astring(ip, &p, &pl) || ip_end(ip)) {
		imap_bad(c, s, "Syntax: LOGIN user password");
		return;
	}
	if (auth_gate(c, s) != 0)
		return;
	/* Two statements: canon is only set once auth_check has run. */
	int good = auth_check(u, ul, p, pl, &canon);
	explicit_bzero(p, pl);
	auth_result(c, s, good, canon);
}

static void sasl_plain(struct conn *c, struct imap_session *s, const char *b64,
		       size_t len)
{
	const char *canon = NULL;
	int rc = auth_plain_response(b64, len, &canon);

	sess_enter(c, IMAP_NOAUTH);
	if (rc == AUTH_CANCEL || rc == AUTH_BADB64) {
		imap_bad(c, s, rc == AUTH_CANCEL ? "Authentication cancelled" :
			 "Cannot decode the response");
		return;
	}
	auth_result(c, s, rc, canon);
}

static void cmd_authenticate(struct conn *c, struct imap_session *s, struct ip *ip)
{
	const char *mech;
	size_t ml;
	char *ir;
	size_t il;

	if (ip_sp(ip) || ip_atom(ip, &mech, &ml, 0)) {
		imap_bad(c, s, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!str_ieq(mech, ml, "PLAIN")) {
		imap_tagged(c, s, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (auth_gate(c, s) != 0)
		return;
	if (ip_peek(ip) == ' ') {
		ip->p++;
		ir = ip->p;
		il = (size_t)(ip->end - ip->p);
		sasl_plain(c, s, ir, il);
		return;
	}
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	sess_enter(c, IMAP_SASL);
	conn_printf(c, "+ \r\n");
}

static void cmd_starttls(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: STARTTLS");
		return;
	}
	int rc = sess_start_tls(c);

	if (rc != 0) {
		imap_tagged(c, s, "NO", "%s", rc > 0 ? "STARTTLS not available" :
			    "[UNAVAILABLE] TLS not available, try later");
		return;
	}
	/* Whatever came after the command in the clear is dropped. */
	reader_reset(s);
	imap_tagged(c, s, "OK", "Begin TLS negotiation now");
}

static void cmd_capability(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char cap[256];

	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: CAPABILITY");
		return;
	}
	capability_text(c, s, cap, sizeof(cap));
	conn_printf(c, "* CAPABILITY %s\r\n", cap);
	imap_tagged(c, s, "OK", "Capability completed");
}

static void cmd_noop(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: NOOP");
		return;
	}
	imap_sync_then_ok(c, s, "NOOP completed");
}

void imap_close_sel(struct imap_session *s)
{
	if (s->have_sel)
		imap_mbx_close(&s->sel);
	s->have_sel = 0;
	idx_sc_close(&s->sc);
	s->sc_tried = 0;
	s->npend = s->pend_all = s->need_sync = 0;
}

static void cmd_logout(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: LOGOUT");
		return;
	}
	conn_printf(c, "* BYE Logging out\r\n");
	imap_tagged(c, s, "OK", "Logout completed");
	imap_close_sel(s);
	sess_quit(c);
}

static void id_answer(struct conn *c)
{
	conn_printf(c, "* ID (\"name\" \"postie\")\r\n");
}

static void cmd_id(struct conn *c, struct imap_session *s, struct ip *ip)
{
	(void)ip;
	id_answer(c);
	imap_tagged(c, s, "OK", "ID completed");
}

static void cmd_namespace(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: NAMESPACE");
		return;
	}
	conn_printf(c, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_tagged(c, s, "OK", "Namespace completed");
}

static void cmd_enable(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_sp(ip)) {
		imap_bad(c, s, "Syntax: ENABLE capability...");
		return;
	}
	const char *w;
	size_t wl;
	int cs = 0;

	for (int guard = 0; guard < 32 && !ip_done(ip); guard++) {
		if (ip_atom(ip, &w, &wl, 0)) {
			imap_bad(c, s, "Syntax: ENABLE capability...");
			return;
		}
		if (CONFIG_IMAP_CONDSTORE && str_ieq(w, wl, "CONDSTORE"))
			cs = 1;
		if (ip_peek(ip) == ' ')
			ip->p++;
	}
	/* CONDSTORE is the one this server changes behaviour for. */
	if (cs && !s->condstore) {
		s->condstore = 1;
		conn_printf(c, "* ENABLED CONDSTORE\r\n");
	} else {
		conn_printf(c, "* ENABLED\r\n");
	}
	imap_tagged(c, s, "OK", "Enable completed");
}

/* ---- commands --------------------------------------------------------- */

#define ST(x) (1u << (x))
#define ANY (ST(IMAP_NOAUTH) | ST(IMAP_AUTHED) | ST(IMAP_SELECTED))
#define AUTHED (ST(IMAP_AUTHED) | ST(IMAP_SELECTED))

struct imap_cmd {
	const char *verb;
	unsigned states;
	void (*fn)(struct conn *c, struct imap_session *s, struct ip *ip);
};

static const struct imap_cmd commands[] = {
	{ "CAPABILITY", ANY, cmd_capability },
	{ "NOOP", ANY, cmd_noop },
	{ "LOGOUT", ANY, cmd_logout },
	{ "ID", ANY, CONFIG_IMAP_ID ? cmd_id : NULL },
	{ "STARTTLS", ST(IMAP_NOAUTH), cmd_starttls },
	{ "LOGIN", ST(IMAP_NOAUTH), cmd_login },
	{ "AUTHENTICATE", ST(IMAP_NOAUTH), cmd_authenticate },
	{ "SELECT", AUTHED, imap_cmd_select_ },
	{ "EXAMINE", AUTHED, imap_cmd_examine },
	{ "LIST", AUTHED, imap_cmd_list_ },
	{ "LSUB", AUTHED, imap_cmd_lsub },
	{ "STATUS", AUTHED, imap_cmd_status },
	{ "SUBSCRIBE", AUTHED, imap_cmd_subscribe },
	{ "UNSUBSCRIBE", AUTHED, imap_cmd_unsubscribe },
	{ "NAMESPACE", AUTHED, CONFIG_IMAP_NAMESPACE ? cmd_namespace : NULL },
	{ "ENABLE", AUTHED, CONFIG_IMAP_ENABLE ? cmd_enable : NULL },
	{ "IDLE", AUTHED, CONFIG_IMAP_IDLE ? imap_cmd_idle : NULL },
	{ "CREATE", AUTHED, imap_cmd_create },
	{ "DELETE", AUTHED, imap_cmd_delete },
	{ "RENAME", AUTHED, imap_cmd_rename },
	{ "APPEND", AUTHED, imap_cmd_append },
	{ "CHECK", ST(IMAP_SELECTED), imap_cmd_check },
	{ "CLOSE", ST(IMAP_SELECTED), imap_cmd_close },
	{ "UNSELECT", ST(IMAP_SELECTED), imap_cmd_unselect },
	{ "EXPUNGE", ST(IMAP_SELECTED), imap_cmd_expunge },
	{ "FETCH", ST(IMAP_SELECTED), imap_cmd_fetch_ },
	{ "STORE", ST(IMAP_SELECTED), imap_cmd_store_ },
	{ "SEARCH", ST(IMAP_SELECTED), imap_cmd_search_ },
	{ "UID", ST(IMAP_SELECTED), imap_cmd_uid },
	{ "COPY", ST(IMAP_SELECTED), imap_cmd_copy_ },
	{ "MOVE", ST(IMAP_SELECTED), CONFIG_IMAP_MOVE ? imap_cmd_move : NULL },
};

/* Everything one command parses or carries out starts clean, here for
 * every command: a modifier of one command (CHANGEDSINCE, UNCHANGEDSINCE,
 * a MODSEQ search key) or its set never reaches a later one. No job runs
 * between commands, so the job is free to clear. */
static void command_reset(struct imap_session *s)
{
	memset(&s->q, 0, sizeof(s->q));
	memset(&s->job, 0, sizeof(s->job));
	s->set = NULL;
	s->set_len = 0;
	s->set_uid = s->copy_move = 0;
	s->set_star = 0;
}

static void command(struct conn *c, struct imap_session *s)
{
	struct ip ip;
	const char *tag, *verb;
	size_t tl, vl;

	s->tag[0] = '\0';
	command_reset(s);
	if (sess_count_command(c) != 0)
		return;
	ip_init(&ip, s->cmd, s->cb.len);
	if (ip_tag(&ip, &tag, &tl)) {
		imap_bad(c, s, "Missing or bad tag");
		return;
	}
	str_copy(s->tag, sizeof(s->tag), tag, tl);
	if (ip_sp(&ip) || ip_atom(&ip, &verb, &vl, 0)) {
		imap_bad(c, s, "Missing command");
		return;
	}
	if (CONFIG_DEBUG_PROTOCOL)
		sess_log_command(c, s->cmd, (str_ieq(verb, vl, "LOGIN") ||
				 str_ieq(verb, vl, "AUTHENTICATE")) ?
				 (size_t)(ip.p - s->cmd) : s->cb.len);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const struct imap_cmd *cmd = &commands[i];
		if (!cmd->fn || !str_ieq(verb, vl, cmd->verb))
			continue;
		if (!(cmd->states & ST(s->ss.state))) {
			imap_bad(c, s, s->ss.state == IMAP_NOAUTH ? "Log in first" :
				 "Command not valid in this state");
			return;
		}
		cmd->fn(c, s, &ip);
		return;
	}
	imap_bad(c, s, "Unknown command");
}

/* ---- the command reader ------------------------------------------------
 * One small state machine moves bytes from the connection into s->cmd
 * (through the checked buffer s->cb) until a whole command is there, its
 * literals inline:
 *   RD_LINE   a line; at its LF (bare LF too) a trailing {n} / {n+} asks
 *             for a literal, otherwise the command is complete
 *   RD_LIT    n literal octets into cmd, then the rest of the line
 *   RD_MSG    an APPEND message literal, to its temporary file
 *   RD_SKIP   a refused command: its line is dropped up to its LF, a
 *             {n+} at the end of a dropped line drops n more octets
 *   RD_SKIPLIT those n octets
 * Every command ends in exactly one of: a command to run, the rest of an
 * APPEND line, or a refusal (s->refused, answered tagged by the caller);
 * the reader never answers a command itself and never reads past the end
 * of one. Each call consumes input or returns, so nothing buffered is left
 * unread while the session waits for the client. */
enum { RD_LINE, RD_LIT, RD_MSG, RD_SKIP, RD_SKIPLIT };
enum { RD_NEED, RD_CMD, RD_MORE };

static void reader_reset(struct imap_session *s)
{
	explicit_bzero(s->cmd, s->cb.len);
	buf_reset(&s->cb);
	buf_reset(&s->tailb);
	s->line0 = 0;
	s->lit_left = 0;
	s->rd = RD_LINE;
	s->rd_taken = 0;
	s->refused = 0;
	s->ref_id = 0;
	s->app_rest = 0;
}

/* The command's tag, from what it holds (or, when nothing is held yet,
 * from the bytes that overflowed): "*" when there is no whole tag. */
static void grab_tag(struct imap_session *s, char *p, size_t n)
{
	struct ip ip;
	const char *tag;
	size_t tl;

	s->tag[0] = '\0';
	if (s->cb.len)
		ip_init(&ip, s->cmd, s->cb.len);
	else
		ip_init(&ip, p, n);
	if (ip_tag(&ip, &tag, &tl) == 0 && ip_peek(&ip) == ' ')
		str_copy(s->tag, sizeof(s->tag), tag, tl);
}

/* Is the command that overflowed cmd an ID? Its parameters are only
 * informational (RFC 2971 allows 30 pairs of 1024-octet values, more
 * than IMAP_CMD_MAX): such an ID is answered as if they were NIL. */
static int overlong_id(struct imap_session *s, char *p, size_t n)
{
	struct ip ip;
	const char *w;
	size_t wl;

	if (!CONFIG_IMAP_ID)
		return 0;
	if (s->cb.len)
		ip_init(&ip, s->cmd, s->cb.len);
	else
		ip_init(&ip, p, n);
	return ip_tag(&ip, &w, &wl) == 0 && ip_sp(&ip) == 0 &&
	       ip_atom(&ip, &w, &wl, 0) == 0 && str_ieq(w, wl, "ID") &&
	       ip_peek(&ip) == ' ';
}

/* The client broke framing beyond repair (a literal that cannot be
 * dropped or measured): one BYE, the tagged answer, the end. */
static int give_up(struct conn *c, struct imap_session *s, const char *why)
{
	conn_printf(c, "* BYE %s\r\n", why);
	sess_enter(c, IMAP_LOGOUT);
	imap_tagged(c, s, "BAD", "%s", why);
	conn_close_after_flush(c);
	return RD_NEED;
}

/* A literal octet count the session will drop unread: up to the message
 * size limit (an APPEND the client did not wait for), more is abuse. */
static int skippable(uint64_t lit)
{
	return lit <= conf->max_message_size || lit <= IMAP_CMD_MAX;
}

/* Keeps the last bytes of a line being dropped, to see a {n+} at its end. */
static void tail_keep(struct imap_session *s, const char *p, size_t n)
{
	size_t cap = s->tailb.cap;

	if (n >= cap) {
		buf_reset(&s->tailb);
		buf_add(&s->tailb, p + (n - cap), cap);
		return;
	}
	if (!buf_fits(&s->tailb, n, 0))
		buf_consume(&s->tailb, n - buf_remaining(&s->tailb));
	buf_add(&s->tailb, p, n);
}

/* Drops the command held so far; the reader skips to the end of its line
 * (the line's start stays in tail, in case it ends in a literal). */
static void drop_line(struct imap_session *s)
{
	buf_reset(&s->tailb);
	tail_keep(s, s->cmd + s->line0, s->cb.len - s->line0);
	explicit_bzero(s->cmd, s->cb.len);
	buf_reset(&s->cb);
	s->line0 = 0;
	s->rd = RD_SKIP;
}

/* The command cannot run: drop the rest of it, answer st/text at its end. */
static void refuse(struct imap_session *s, const char *st, const char *text)
{
	if (!s->refused) {
		s->refused = 1;
		s->ref_st = st;
		s->ref_text = text;
	}
	drop_line(s);
}

/* The literal of a refused command, which the client sends without
 * waiting: dropped, then the rest of its line. */
static int skip_literal(struct conn *c, struct imap_session *s, uint64_t lit)
{
	if (!skippable(lit))
		return give_up(c, s, "[TOOBIG] Literal too large");
	buf_reset(&s->tailb);
	s->lit_left = lit;
	s->rd = RD_SKIPLIT;
	return RD_MORE;
}

/* A dropped line is over: its command ends here, unless the line ends in
 * a literal the client sends without waiting ({n+}: dropped too). */
static int skip_line_end(struct conn *c, struct imap_session *s)
{
	uint64_t lit;
	int plus = 0;
	int rc = ip_literal_tail(s->tail, s->tailb.len, &lit, &plus);

	buf_reset(&s->tailb);
	if (rc < 0 && plus)     /* its size unknown: no framing */
		return give_up(c, s, "Bad literal");
	if (rc > 0 && plus)
		return skip_literal(c, s, lit);
	s->rd_taken = 1;
	return RD_CMD;
}

/* The line after an APPEND message ended in another literal: one message
 * per APPEND; the octets are dropped, append_end answers at the end. */
static int append_more(struct conn *c, struct imap_session *s, uint64_t lit,
		       int plus)
{
	if (s->app_mode == APP_STORE) {
		s->app_mode = APP_DISCARD;
		s->app_st = "BAD";
		s->app_err = "One message per APPEND (no MULTIAPPEND)";
	}
	explicit_bzero(s->cmd, s->cb.len);
	buf_reset(&s->cb);
	s->line0 = 0;
	if (!plus) {
		s->rd_taken = 1;
		return RD_CMD;
	}
	return skip_literal(c, s, lit);
}

/* A whole line is in cmd from s->line0 (its end stripped). */
static int line_end(struct conn *c, struct imap_session *s)
{
	uint64_t lit;
	int plus = 0;
	int rc = ip_literal_tail(s->cmd + s->line0, s->cb.len - s->line0, &lit, &plus);

	if (rc == 0) {
		s->rd_taken = 1;
		return RD_CMD;
	}
	if (rc > 0 && plus && !CONFIG_IMAP_LITERALPLUS)
		rc = -1;
	if (rc > 0 && s->app_rest)
		return append_more(c, s, lit, plus);
	if (!s->app_rest)
		grab_tag(s, NULL, 0);
	if (rc < 0) {
		refuse(s, "BAD", plus && !CONFIG_IMAP_LITERALPLUS ?
		       "LITERAL+ is not supported" : "Bad literal");
		return skip_line_end(c, s);
	}
	switch (imap_append_begin(c, s, lit)) {
	case 1:
		s->rd = RD_MSG;
		s->lit_left = lit;
		if (!plus)
			conn_printf(c, "+ Ready for the message\r\n");
		return RD_MORE;
	case 2:
		refuse(s, s->app_st, s->app_err);
		if (plus)
			return skip_literal(c, s, lit);
		s->rd_taken = 1;
		return RD_CMD;
	default:
		break;
	}
	if (lit > IMAP_CMD_MAX || !buf_fits(&s->cb, 2, (size_t)lit)) {
		/* The literal and the CRLF before it do not fit in cmd. */
		refuse(s, plus ? "BAD" : "NO", "[TOOBIG] Literal too large");
		if (plus)
			return skip_literal(c, s, lit);
		s->rd_taken = 1;
		return RD_CMD;
	}
	buf_add(&s->cb, "\r\n", 2);
	s->line0 = s->cb.len;
	s->lit_left = lit;
	s->rd = lit ? RD_LIT : RD_LINE;
	if (!plus)
		conn_printf(c, "+ Ready for literal data\r\n");
	return RD_MORE;
}

/* Literal octets: into cmd, the APPEND file, or dropped. */
static int literal_step(struct imap_session *s, char *p, size_t avail)
{
	size_t n = avail < s->lit_left ? avail : (size_t)s->lit_left;

	if (s->rd == RD_LIT)
		buf_add(&s->cb, p, n);  /* room checked in line_end */
	else if (s->rd == RD_MSG)
		imap_append_feed(s, p, n);
	s->lit_left -= n;
	if (s->lit_left > 0)
		return (int)n;
	if (s->rd == RD_MSG) {
		/* The message is in; the rest of its line comes. */
		s->app_rest = 1;
		buf_reset(&s->cb);
	}
	s->line0 = s->cb.len;
	s->rd = s->rd == RD_SKIPLIT ? RD_SKIP : RD_LINE;
	return (int)n;
}

/* One step over the input: RD_CMD with a command (or a refusal, or the
 * rest of an APPEND line), RD_MORE after consuming input or writing a
 * continuation (call again when there is room), RD_NEED for more input. */
static int read_step(struct conn *c, struct imap_session *s)
{
	struct linebuf *in = &c->in;
	size_t avail = in->len - in->off;
	char *p = in->buf + in->off;

	if (s->rd_taken)
		reader_reset(s);
	if (avail == 0 && !(s->lit_left == 0 && (s->rd == RD_LIT ||
						  s->rd == RD_SKIPLIT)))
		return RD_NEED;
	if (s->rd == RD_LIT || s->rd == RD_MSG || s->rd == RD_SKIPLIT) {
		in->off += (size_t)literal_step(s, p, avail);
		return RD_MORE;
	}
	char *nl = memchr(p, '\n', avail);
	size_t n = nl ? (size_t)(nl - p) + 1 : avail;
	if (s->rd == RD_SKIP) {
		tail_keep(s, p, nl ? n - 1 : n);
		in->off += n;
		if (!nl)
			return RD_MORE;
		if (s->tailb.len && s->tail[s->tailb.len - 1] == '\r')
			buf_truncate(&s->tailb, s->tailb.len - 1);
		return skip_line_end(c, s);
	}
	if (buf_add(&s->cb, p, n) != 0) {
		/* Too long: the rest is dropped, answered once it is over;
		 * the same bytes are read again, as dropped ones. */
		if (!s->app_rest) {
			grab_tag(s, p, n);
			s->ref_id = !s->refused && overlong_id(s, p, n);
			if (s->ref_id)
				refuse(s, "OK", "ID completed");
			else
				refuse(s, "BAD", "Command line too long");
			return RD_MORE;
		}
		if (s->app_mode == APP_STORE) {
			s->app_mode = APP_DISCARD;
			s->app_st = "BAD";
			s->app_err = "Command line too long";
		}
		drop_line(s);
		return RD_MORE;
	}
	in->off += n;
	if (!nl)
		return RD_MORE;
	/* A line is complete: strip its end, look for a literal. */
	buf_truncate(&s->cb, s->cb.len - 1);
	if (s->cb.len > s->line0 && s->cmd[s->cb.len - 1] == '\r')
		buf_truncate(&s->cb, s->cb.len - 1);
	return line_end(c, s);
}

/* SASL responses and IDLE's DONE are plain lines. */
static void imap_line(struct conn *c, char *line, size_t len)
{
	struct imap_session *s = c->sess;

	if (s->ss.state == IMAP_SASL) {
		sasl_plain(c, s, line, len);
		return;
	}
	sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	if (str_ieq(line, len, "DONE"))
		imap_tagged(c, s, "OK", "IDLE terminated");
	else
		imap_bad(c, s, "Expected DONE");
}

static int imap_too_long(struct conn *c)
{
	struct imap_session *s = c->sess;

	if (s->ss.state == IMAP_SASL) {
		sess_enter(c, IMAP_NOAUTH);
		imap_bad(c, s, "Response too long");
	} else {
		sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
		imap_bad(c, s, "Expected DONE");
	}
	return SESS_DONE;
}

static int imap_read(struct conn *c)
{
	struct imap_session *s = c->sess;
	int rc;

	if (s->ss.state == IMAP_SASL || s->ss.state == IMAP_IDLE)
		return sess_line(c, 1000);
	rc = read_step(c, s);
	if (rc != RD_CMD)
		return rc == RD_NEED ? SESS_NEED : SESS_MORE;
	if (s->refused) {
		if (s->ref_id)
			id_answer(c);
		imap_tagged(c, s, s->ref_st, "%s", s->ref_text);
	} else if (s->app_rest) {
		imap_append_end(c, s);
	} else {
		command(c, s);
	}
	return SESS_DONE;
}

static void imap_stream(struct conn *c)
{
	imap_job_step(c, c->sess);
}

static int imap_timeout(struct conn *c)
{
	struct imap_session *s = c->sess;

	switch (s->ss.state) {
	case IMAP_OPEN:
		imap_open_step(c, s);
		return 1;
	case IMAP_SETUP:
		setup_step(c, s);
		return 1;
	case IMAP_CREATE:
		imap_create_step(c, s);
		return 1;
	case IMAP_REWRITE:
		imap_rewrite_step(c, s, 0);
		return 1;
	case IMAP_APPEND:
		imap_append_step(c, s);
		return 1;
	case IMAP_COPY:
		imap_copy_step(c, s);
		return 1;
	case IMAP_IDLE:
		/* Evicted (no wait time left) or at the IDLE limit: out. */
		if (!s->need_sync && (!c->since || now_ms() >= s->idle_until))
			return 0;
		imap_idle_poll(c, s);
		if (c->w.fd >= 0 && s->ss.state == IMAP_IDLE && !s->need_sync)
			imap_wait_command(c, s);
		return 1;
	default:
		return 0;
	}
}

static void imap_login_failed(struct conn *c)
{
	sess_enter(c, IMAP_NOAUTH);
	imap_tagged(c, c->sess, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
}

static void imap_wait(struct conn *c)
{
	imap_wait_command(c, c->sess);
}

static void imap_bye(struct conn *c, const char *why)
{
	conn_printf(c, "* BYE %s\r\n", why);
}

static void imap_cleanup(struct conn *c)
{
	struct imap_session *s = c->sess;

	if (imap_mime_owner == s)
		imap_mime_owner = NULL;
	if (s->ss.state == IMAP_REWRITE && s->locked && s->rw_live) {
		/* EXPUNGE came: finish it, even without a reader. */
		struct idx_hdr h;
		int rc;
		do {
			rc = idx_rewrite_step(&s->u.rw, SIZE_MAX, &h);
		} while (rc == IDX_AGAIN);
		s->rw_live = 0;
		if (rc == IDX_DONE)
			imap_tell_changed(s, s->sel.dir, s->sel.name);
	}
	if (s->rw_live) {
		idx_rewrite_abort(&s->u.rw);
		s->rw_live = 0;
	}
	if ((s->ss.state == IMAP_COPY || s->ss.state == IMAP_APPEND) && s->locked)
		mbox_rollback(&s->lock);        /* a copy cut short: none of it */
	if (s->app_fd >= 0)
		close(s->app_fd);
	s->app_fd = -1;
	explicit_bzero(s->cmd, s->cb.len);
	imap_upd_abort(s);
	imap_mbx_close(&s->tmp);
	imap_close_sel(s);
	if (s->old_ifd >= 0)
		close(s->old_ifd);
	s->old_ifd = -1;
	imap_rw_close_snapshot(s);
}

static const struct sess_ops imap_sess = {
	.name = "imap",
	.states = state_names,
	.pool = imap_pool,
	.size = sizeof(imap_pool[0]),
	.first = IMAP_NOAUTH,
	.quit = IMAP_LOGOUT,
	.auth_wait = IMAP_AUTH_WAIT,
	.tls_kind = LISTEN_IMAPS,
	.reading = SESS_ST(IMAP_NOAUTH) | SESS_ST(IMAP_AUTHED) | SESS_ST(IMAP_SELECTED) |
		   SESS_ST(IMAP_SASL) | SESS_ST(IMAP_IDLE),
	.streaming = SESS_ST(IMAP_BUSY),
	.max_commands = IMAP_MAX_COMMANDS,
	.max_errors = IMAP_MAX_ERRORS,
	.reply_room = IMAP_REPLY_ROOM,
	.texts = {
		[SESS_T_BANNED] = "Too many failed logins, try later",
		[SESS_T_COMMANDS] = "Too many commands",
		[SESS_T_ERRORS] = "Too many errors",
		[SESS_T_TIMEOUT] = "Autologout; idle for too long",
	},
	.bye = imap_bye,
	.wait = imap_wait,
	.read = imap_read,
	.line = imap_line,
	.too_long = imap_too_long,
	.stream = imap_stream,
	.timeout = imap_timeout,
	.login_failed = imap_login_failed,
	.cleanup = imap_cleanup,
};

int imap_reading_state(const struct imap_session *s)
{
	return (imap_sess.reading & SESS_ST(s->ss.state)) != 0;
}

static int imap_open(struct conn *c)
{
	struct imap_session *s = sess_open(c, &imap_sess,
					   offsetof(struct imap_session, cb));
	char cap[256];

	if (!s)
		return -1;
	s->sel.mfd = s->sel.ifd = s->tmp.mfd = s->tmp.ifd = -1;
	s->sel.lfd = s->tmp.lfd = -1;
	s->old_ifd = -1;
	s->rw_ifd = -1;
	s->app_fd = -1;
	idx_sc_init(&s->sc);
	s->lock.fd = -1;
	buf_init(&s->cb, s->cmd, IMAP_CMD_MAX);
	buf_init(&s->ib, s->item, sizeof(s->item));
	buf_init(&s->tailb, s->tail, sizeof(s->tail));
	reader_reset(s);
	capability_text(c, s, cap, sizeof(cap));
	conn_printf(c, "* OK [CAPABILITY %s] postie IMAP4rev1 ready\r\n", cap);
	imap_wait_command(c, s);
	return 0;
}

static void imap_refuse(struct conn *c, const char *why)
{
	conn_printf(c, "* BYE [UNAVAILABLE] %s\r\n", why);  /* RFC 5530 */
}

const struct proto_ops imap_ops = {
	.name = "imap",
	.open = imap_open,
	.input = sess_input,
	.timeout = sess_timeout,
	.close = sess_close,
	.refuse = imap_refuse,
};
