/* conn — connection slots: a fixed table of CONFIG_MAX_CONNECTIONS, each
 * with a bounded input buffer (line reader that refuses over-long lines)
 * and a bounded output buffer that is written without blocking. A slot
 * reads more only when its output is flushed (backpressure), and runs its
 * protocol through a small table of callbacks. */
#ifndef POSTIE_CONN_H
#define POSTIE_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "core/net.h"

/* Line reader over a caller-owned buffer; pure, unit-tested. */
struct linebuf {
	char *buf;
	size_t cap, len, off;
	int skipping;           /* inside an over-long line */
};

enum { LB_NEED = 0, LB_LINE = 1, LB_TOOLONG = 2 };

/* Next line of at most max bytes (terminator excluded). LB_LINE: *line is
 * NUL-terminated in place, *len excludes the CRLF or LF, *crlf says which.
 * LB_TOOLONG: a line over max was discarded up to its LF. */
int lb_next(struct linebuf *lb, size_t max, char **line, size_t *len, int *crlf);
/* Moves unread bytes to the front; returns free space at the end. */
size_t lb_compact(struct linebuf *lb);

struct conn;

struct proto_ops {
	const char *name;
	/* Allocate the session and write the greeting; -1 refuses the slot. */
	int (*open)(struct conn *c);
	/* Consume input; called when input arrived, and once each time the
	 * output buffer drains (to refill it when streaming). */
	void (*input)(struct conn *c);
	void (*timeout)(struct conn *c);
	void (*close)(struct conn *c);
	/* Writes the protocol's "go away" line (421, -ERR, * BYE) with why
	 * to a connection that is refused before open(); the slot closes
	 * once it is flushed. NULL, or a TLS listener: closed silently. */
	void (*refuse)(struct conn *c, const char *why);
};

enum {
	CONN_CLOSING = 1,       /* close once output is flushed */
	CONN_EOF = 2,           /* peer closed its side */
	CONN_SUSPENDED = 4,     /* protocol is busy: do not read */
	CONN_TLS_NEXT = 8,      /* switch to TLS once output is flushed */
	CONN_CONNECTING = 16,   /* outbound: connect() in progress */
	CONN_DRAIN = 32,        /* streaming: call input() whenever output
				 * can take more, even with nothing to read */
	CONN_LENT_END = 64,     /* give the lent buffer back once drained */
	CONN_IN_INPUT = 128,    /* inside ops->input: a resume does not
				 * call it again (the running loop reads on) */
	CONN_TLS_WAIT = 256,    /* implicit TLS: no TLS session taken until
				 * the client's first handshake bytes */
	CONN_AUTHED = 512,      /* the client logged in (SMTP AUTH, IMAP
				 * LOGIN/AUTHENTICATE, POP3 USER/PASS/AUTH):
				 * its TLS session is never taken back */
	CONN_AGAIN = 1024,      /* its turn ended with input left: goes on
				 * at the next loop pass */
};

struct tls_conn;

struct conn {
	struct watcher w;
	const struct proto_ops *ops;
	void *sess;
	unsigned flags;
	uint32_t id;
	int listen_kind;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peer_str[NET_ADDRSTR];
	struct tls_conn *tls;       /* TLS filter, from the TLS pool */
	struct tls_conn *tls_next;  /* reserved by STARTTLS, not yet on */
	const char *why;            /* reason given to conn_close */
	int64_t since;              /* ms: the current command wait began (0:
				     * not waiting for the client) */
	int64_t last_in;            /* ms: the client last sent something */
	int64_t opened;             /* ms: accepted */
	int64_t deadline;           /* ms: the protocol's deadline (0: none) */
	int64_t hs_deadline;        /* ms: the TLS handshake must be done by
				     * then (0: none or done) */
	int64_t tls_since;          /* ms: an inbound TLS session was taken */
	int64_t again_at;           /* ms: CONN_AGAIN was set */
	unsigned long turn_pass;    /* the loop pass of its turn */
	unsigned long turn_syncs;   /* util_syncs when that turn began */
	uint8_t key[16];            /* client key (net_client_key) */
	int key_family;
	struct linebuf in;
	size_t out_len, out_off;
	char *outp;                 /* outbuf, the TLS session's buffer or a
				     * lent stream buffer */
	size_t outcap;
	char inbuf[CONFIG_CONN_INBUF];
	char outbuf[CONFIG_CONN_OUTBUF];
};

void conn_init(int max_slots);
/* This run's stamp (the start time in milliseconds, hex), the first part of delivery
 * ids "RUN.CONN.N", so they stay unique across restarts. */
const char *conn_run_id(void);
/* Takes over fd (accepted, non-blocking), closing it on failure. NULL when
 * no slot is free: the caller stops accepting until a slot frees. NULL
 * too when the peer (net_client_key) holds max_connections_per_ip
 * inbound connections already: it gets ops->refuse's line, then EOF. */
struct conn *conn_open(int fd, const struct sockaddr_storage *peer,
		       socklen_t peerlen, int kind, const struct proto_ops *ops,
		       int implicit_tls);
/* Outbound: fd is non-blocking with connect() in progress to peer. The
 * session sess is the caller's; ops->open runs once connected, and
 * ops->close always runs (c->why says why), also when connect fails. */
struct conn *conn_connect(int fd, const struct sockaddr_storage *peer,
			  socklen_t peerlen, const struct proto_ops *ops,
			  void *sess);
/* Outbound TLS (implicit, or after the server's 220 to STARTTLS): the
 * filter goes on now; nothing may be waiting in either buffer. */
void conn_set_tls(struct conn *c, struct tls_conn *t);
/* STARTTLS: reserves a TLS context (-1: none free, answer 4xx), throws
 * away input that came in the clear, and switches once the reply that the
 * caller writes next has been flushed. One client key holds at most
 * half of the pool (at least 1); over that, -1. When the pool is full,
 * the inbound session whose handshake began longest ago and is still
 * unfinished gives its context up (it is closed); failing that, the
 * established inbound session that has not logged in (CONN_AUTHED) and
 * has been silent longest, at least CONN_TLS_YIELD_IDLE_MS, else the one
 * that has held its context longest, at least CONN_PREAUTH_GRACE_MS, is
 * closed with its protocol's goodbye line. The handshake must be done within
 * CONFIG_TLS_HANDSHAKE_TIMEOUT seconds, or the connection is closed and
 * the context goes back to the pool. Implicit TLS (conn_open) takes its
 * context the same way, once the client's first bytes arrive, with the
 * deadline counted from the connect. */
int conn_start_tls(struct conn *c);
int conn_slots_free(void);
int conn_count(void);
/* Sessions open now that came in on a listener of this kind (-1: the
 * outgoing ones), for `postie status`. */
int conn_count_kind(int kind);
/* Lent stream buffers in use now (of CONFIG_CONN_STREAM_BUFS). */
int conn_stream_in_use(void);
/* Called when a slot frees, so listeners can resume. */
extern void (*conn_on_slot_free)(void);

/* Appends to the output buffer; -1 (and the session is closed) when the
 * reply does not fit, which is a bug in the caller's sizing. */
int conn_write(struct conn *c, const char *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t conn_out_free(const struct conn *c);
/* A long answer (POP3 RETR, IMAP FETCH of bodies) borrows one of
 * CONFIG_CONN_STREAM_BUFS large output buffers, so that it goes out in
 * few big writes instead of one per CONN_OUTBUF (under TLS, few passes:
 * the engine takes CONFIG_TLS_OUTBUF-sized records from it while the
 * socket takes them). 1 lent, 0 none free (the answer still goes,
 * through the small buffer). conn_stream_end gives it back as soon as
 * what is pending fits the connection's own buffer again. */
int conn_stream_begin(struct conn *c);
void conn_stream_end(struct conn *c);
int conn_out_pending(const struct conn *c);
void conn_flush(struct conn *c);
void conn_close(struct conn *c, const char *why);
void conn_close_after_flush(struct conn *c);
/* Deadline in seconds from now for the whole current command (0: none). */
void conn_deadline(struct conn *c, int seconds);
void conn_deadline_ms(struct conn *c, int ms);
/* Stop reading while the protocol works; resume calls input again (at
 * once, or, when called from inside input, by the loop that runs it:
 * input is never entered twice, so a protocol's reader keeps its place). */
void conn_suspend(struct conn *c);
void conn_resume(struct conn *c);
/* The protocol's timeout runs at the next loop pass, never in this one
 * (called from input or from a timeout alike): work in steps, one a pass,
 * e.g. a step that fsyncs, with the other sessions served in between. */
void conn_next_pass(struct conn *c);
/* The work budget between commands: a session's turn in a loop pass
 * ends once it did durable I/O (an fsync through util's file_sync) in
 * that pass; the commands it pipelined after that wait for the next pass,
 * after the other sessions had theirs. A protocol's reader asks before it
 * starts another command (it keeps its place: framing, literals and DATA
 * go on where they stopped); conn runs the reader again at the next pass. */
int conn_turn_over(struct conn *c);
/* All slots taken and a client waiting: closes the oldest implicit-TLS
 * connection that has sent no byte yet (it holds no TLS session and can
 * be told nothing), else times out (through its protocol)
 * the inbound session that has sent nothing for the longest, at least
 * CONN_EVICT_IDLE_MS, or else the one whose current command started
 * longest ago, at least CONN_EVICT_SLOW_MS. 0: one was closed (its slot
 * is free now) or told to go (its slot frees shortly); otherwise the
 * time (ms) when one could be, or -1. */
int64_t conn_make_room(void);
/* Every slot in use, for shutdown. */
void conn_close_all(const char *why);

#endif
