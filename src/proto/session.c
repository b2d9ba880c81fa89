/* session — the skeleton of the SMTP, POP3 and IMAP servers (see
 * session.h): pool, entry points, state, caps, line pump, login gate.
 * It holds no state of its own; each protocol's pool is its own array
 * of CONFIG_MAX_CONNECTIONS sessions, named in its struct sess_ops. */
#include "proto/session.h"

#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/auth.h"
#include "tls/tls.h"

void *sess_open(struct conn *c, const struct sess_ops *o, size_t clear)
{
	char *p = o->pool;

	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++, p += o->size) {
		struct session *s = (struct session *)(void *)p;
		if (s->conn)
			continue;
		memset(s, 0, clear > sizeof(*s) ? clear : sizeof(*s));
		s->ops = o;
		s->conn = c;
		s->state = o->first;
		c->sess = s;
		return s;
	}
	return NULL;
}

void sess_close(struct conn *c)
{
	struct session *s = c->sess;

	if (!s)
		return;
	if (s->ops->cleanup)
		s->ops->cleanup(c);
	s->conn = NULL;
	c->sess = NULL;
}

void sess_enter(struct conn *c, int st)
{
	struct session *s = c->sess;

	if (s->state != st)
		log_msg(LOGL_DEBUG, "conn %u: %s %s -> %s", c->id, s->ops->name,
			s->ops->states[s->state], s->ops->states[st]);
	s->state = st;
}

void sess_quit(struct conn *c)
{
	struct session *s = c->sess;

	sess_enter(c, s->ops->quit);
	conn_close_after_flush(c);
}

void sess_bye(struct conn *c, const char *why)
{
	struct session *s = c->sess;

	s->ops->bye(c, why);
	sess_quit(c);
}

int sess_count_command(struct conn *c)
{
	struct session *s = c->sess;

	if (++s->ncmds <= s->ops->max_commands)
		return 0;
	sess_bye(c, s->ops->texts[SESS_T_COMMANDS]);
	return -1;
}

void sess_count_error(struct conn *c)
{
	struct session *s = c->sess;

	if (++s->nerrors < s->ops->max_errors || s->state == s->ops->quit)
		return;
	log_msg(LOGL_WARN, "conn %u %s: %s: too many errors", c->id, c->peer_str,
		s->ops->name);
	sess_bye(c, s->ops->texts[SESS_T_ERRORS]);
}

/* The session reads its next command only when its state does, its last
 * answer left room for the next one (backpressure) and its turn of the
 * loop pass is not over (the work budget: after an fsync the commands it
 * pipelined wait for the next pass). */
void sess_input(struct conn *c)
{
	struct session *s = c->sess;
	const struct sess_ops *o = s->ops;

	if (o->streaming & SESS_ST(s->state)) {
		o->stream(c);
		if (o->streaming & SESS_ST(s->state))
			return;
	}
	while (c->w.fd >= 0 && (o->reading & SESS_ST(s->state)) &&
	       conn_out_free(c) >= o->reply_room && !conn_turn_over(c)) {
		int rc = o->read(c);
		if (rc == SESS_NEED)
			return;
		if (rc == SESS_DONE && c->w.fd >= 0 && (o->reading & SESS_ST(s->state)))
			o->wait(c);
	}
}

int sess_line(struct conn *c, size_t max)
{
	struct session *s = c->sess;
	char *line;
	size_t len;
	int crlf, rc = lb_next(&c->in, max, &line, &len, &crlf);

	if (rc == LB_NEED)
		return SESS_NEED;
	if (rc == LB_TOOLONG)
		return s->ops->too_long(c);
	s->ops->line(c, line, len);
	explicit_bzero(line, len);
	return SESS_DONE;
}

void sess_timeout(struct conn *c)
{
	struct session *s = c->sess;
	const struct sess_ops *o = s->ops;

	if (s->state == o->auth_wait) {
		o->login_failed(c);
		o->wait(c);
		conn_resume(c);
		return;
	}
	if ((o->streaming & SESS_ST(s->state)) && !conn_out_pending(c)) {
		/* Its output budget of a pass was spent: more now. The
		 * commands pipelined after it run as input does
		 * (CONN_IN_INPUT), never nested in this call. */
		o->stream(c);
		if (!(o->streaming & SESS_ST(s->state)) && c->w.fd >= 0)
			conn_resume(c);
		return;
	}
	if (o->timeout && o->timeout(c))
		return;
	log_msg(LOGL_INFO, "conn %u %s: %s timeout in state %s", c->id,
		c->peer_str, o->name, o->states[s->state]);
	sess_bye(c, o->texts[SESS_T_TIMEOUT]);
}

int sess_login_gate(struct conn *c)
{
	struct session *s = c->sess;

	if (auth_banned((const struct sockaddr *)&c->peer)) {
		sess_bye(c, s->ops->texts[SESS_T_BANNED]);
		return -1;
	}
	return auth_allowed(c) ? 0 : 1;
}

void sess_login_fail(struct conn *c)
{
	struct session *s = c->sess;

	if (auth_fail_wait(c, s->ops->name) != 0)
		sess_bye(c, s->ops->texts[SESS_T_BANNED]);
	else
		sess_enter(c, s->ops->auth_wait);
}

void sess_vreply(struct conn *c, const char *prefix, size_t max,
		 const char *fmt, va_list ap)
{
	char text[400];

	vsnprintf(text, max < sizeof(text) ? max + 1 : sizeof(text), fmt, ap);
	conn_printf(c, "%s%s\r\n", prefix, text);
}

const char *sess_split(const char *line, size_t len, size_t *vlen, size_t *alen)
{
	size_t v = 0;

	while (v < len && line[v] != ' ')
		v++;
	*vlen = v;
	*alen = v < len ? len - v - 1 : 0;
	return v < len ? line + v + 1 : line + v;
}

void sess_log_command(const struct conn *c, const char *line, size_t n)
{
	char shown[80];

	log_msg(LOGL_DEBUG, "conn %u <- %s", c->id,
		str_printable(shown, sizeof(shown), line, n));
}

int sess_tls_offered(const struct conn *c)
{
	const struct session *s = c->sess;

	return CONFIG_TLS && !c->tls && c->listen_kind != s->ops->tls_kind &&
	       tls_ready();
}

int sess_start_tls(struct conn *c)
{
	if (!sess_tls_offered(c))
		return 1;
	if (conn_start_tls(c) == 0)
		return 0;
	log_msg(LOGL_WARN, "conn %u %s: TLS pool exhausted", c->id, c->peer_str);
	return -1;
}
