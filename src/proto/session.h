/* session — the skeleton the SMTP, POP3 and IMAP servers share: the
 * session pool (one slot a connection), the entry points the connection
 * layer calls (proto_ops input, timeout, close), the one writer of the
 * state, the caps on commands and errors, the line pump that hands the
 * protocol one command at a time, and the login gate (ban, plaintext
 * policy, failed-login delay). A protocol describes itself in a const
 * struct sess_ops and keeps what is its own: greeting, commands, replies,
 * and the states that stream, lock or wait for a mailbox. */
#ifndef POSTIE_SESSION_H
#define POSTIE_SESSION_H

#include <stdarg.h>
#include <stddef.h>

#include "core/conn.h"

/* What every protocol session begins with (its first member, `ss`). */
struct session {
	const struct sess_ops *ops;
	struct conn *conn;      /* NULL: this slot of the pool is free */
	int state;              /* the protocol's enum; sess_enter writes it */
	int ncmds, nerrors;
};

/* Bit of a state in the masks of struct sess_ops. */
#define SESS_ST(x) (1u << (x))

/* What one step of the pump did (sess_ops.read). */
enum {
	SESS_NEED,              /* wants more input: the pump stops */
	SESS_MORE,              /* consumed input; no command finished */
	SESS_DONE,              /* a command was answered (or began) */
};

/* The goodbye lines every protocol has (sess_ops.texts). */
enum { SESS_T_BANNED, SESS_T_COMMANDS, SESS_T_ERRORS, SESS_T_TIMEOUT, SESS_T_N };

struct sess_ops {
	const char *name;               /* for the log: "smtp", "pop3", "imap" */
	const char *const *states;      /* state names, for the log */
	void *pool;                     /* CONFIG_MAX_CONNECTIONS sessions ... */
	size_t size;                    /* ... of this size, each starting with
					 * its struct session */
	int first, quit, auth_wait;     /* states: the greeting's, closing,
					 * a failed login's delay */
	int tls_kind;                   /* its implicit-TLS listener (LISTEN_*) */
	unsigned reading;               /* SESS_ST mask: the states that read
					 * the next command */
	unsigned streaming;             /* SESS_ST mask: a long answer goes out
					 * as the socket takes it (stream) */
	int max_commands, max_errors;
	size_t reply_room;              /* free output a command needs */
	const char *texts[SESS_T_N];    /* why, for bye() */
	/* Writes the goodbye line with why (421, -ERR, * BYE). */
	void (*bye)(struct conn *c, const char *why);
	/* Sets the deadline of what the session waits for now. */
	void (*wait)(struct conn *c);
	/* One step of the pump over c->in (sess_line for line protocols). */
	int (*read)(struct conn *c);
	/* sess_line: a whole line (wiped afterwards), and an over-long one
	 * (dropped; SESS_MORE, or SESS_DONE to reset the deadline). */
	void (*line)(struct conn *c, char *line, size_t len);
	int (*too_long)(struct conn *c);
	/* More of a streaming answer (in a streaming state). */
	void (*stream)(struct conn *c);
	/* A deadline in a state of the protocol's own (a lock, a step of
	 * work): 1 handled, 0 the session timed out. May be NULL. */
	int (*timeout)(struct conn *c);
	/* The delayed answer to a failed login: back to the pre-login
	 * state, the refusal. */
	void (*login_failed)(struct conn *c);
	/* Gives back what the session holds (files, locks); may be NULL. */
	void (*cleanup)(struct conn *c);
};

/* A free session of ops's pool for c, its first `clear` bytes zeroed
 * (at least the struct session), in state ops->first; NULL when none is
 * free (the caller's open() refuses the slot). */
void *sess_open(struct conn *c, const struct sess_ops *ops, size_t clear);
/* proto_ops entries of every protocol using the skeleton. */
void sess_input(struct conn *c);
void sess_timeout(struct conn *c);
void sess_close(struct conn *c);

/* The only writer of the state; logs the change. */
void sess_enter(struct conn *c, int st);
/* The closing state, and the connection closes once output is flushed. */
void sess_quit(struct conn *c);
/* ops->bye(why), then sess_quit. */
void sess_bye(struct conn *c, const char *why);
/* A command begins: -1 (goodbye said) past ops->max_commands. */
int sess_count_command(struct conn *c);
/* An error answer was written: at ops->max_errors the session says
 * goodbye and closes. */
void sess_count_error(struct conn *c);

/* One answer line: prefix, the text of fmt cut to max octets (< 400),
 * CRLF. */
void sess_vreply(struct conn *c, const char *prefix, size_t max,
		 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
/* A command line "VERB[ ARG]": the verb's length in *vlen; returns the
 * argument (after one blank; may be empty) and its length in *alen. */
const char *sess_split(const char *line, size_t len, size_t *vlen, size_t *alen);
/* Logs the first n octets of a command (a caller stops before a
 * credential), for CONFIG_DEBUG_PROTOCOL: callers test it, so the
 * arguments cost nothing in a build without it. */
void sess_log_command(const struct conn *c, const char *line, size_t n);

/* STARTTLS (STLS) can be offered: TLS built with certificates loaded,
 * not on yet, not an implicit-TLS listener. */
int sess_tls_offered(const struct conn *c);
/* STARTTLS once its syntax was checked: 0 the switch is set up (the
 * caller forgets what the client said and answers "go ahead"); 1 not
 * offered here; -1 no TLS session free now (logged). */
int sess_start_tls(struct conn *c);

/* The line pump's step for line protocols: the next line of at most max
 * octets goes to ops->line, an over-long one to ops->too_long. */
int sess_line(struct conn *c, size_t max);

/* Before a login command: 0 go on; -1 the peer is banned (goodbye said,
 * closing); 1 no login in the clear here (the caller answers). */
int sess_login_gate(struct conn *c);
/* A login failed: the failure is counted for the peer and the answer
 * delayed (state auth_wait; ops->login_failed answers when due), or the
 * peer is banned from now on (goodbye said, closing). */
void sess_login_fail(struct conn *c);

#endif
