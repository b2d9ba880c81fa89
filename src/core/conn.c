/* conn — connection slots and buffers (see conn.h). Limits: slots,
 * CONFIG_CONN_INBUF and CONFIG_CONN_OUTBUF are fixed at compile time; the
 * slot table is static, so an untouched slot costs no resident memory.
 * Nobody can hold a pool: max_connections_per_ip inbound connections per
 * client key, at most half the TLS pool per client key, TLS sessions
 * taken only when a handshake starts and given back at
 * CONFIG_TLS_HANDSHAKE_TIMEOUT; when the pool is full the oldest
 * unfinished handshake yields its session, else the longest idle session
 * that has not logged in. */
#include "core/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "tls/tls.h"

#define CONN_CLOSE_LINGER_MS 10000
/* Under a flood of connections (all slots taken, more waiting), a session
 * silent this long, or this long into one command (a byte a second), gives
 * its slot to a newcomer. Postfix's stress mode cuts timeouts to 10 s. */
#define CONN_EVICT_IDLE_MS 2000
#define CONN_EVICT_SLOW_MS 3000
/* When the TLS pool is full, an established session that has not logged
 * in and has been silent this long gives its TLS session to a newcomer. */
#define CONN_TLS_YIELD_IDLE_MS 5000
/* A session that keeps talking but has not logged in this long after
 * its connect (or its TLS start) gives way too when a pool is full, the
 * oldest first, as Dovecot's login processes do: otherwise a few
 * addresses sending NOOPs hold every slot or TLS session for ever. A
 * client that logs in is never taken. */
#define CONN_PREAUTH_GRACE_MS 10000

static struct conn slots[CONFIG_MAX_CONNECTIONS];
static unsigned char used[CONFIG_MAX_CONNECTIONS];
static int max_slots = CONFIG_MAX_CONNECTIONS, in_use;

/* A listener's session; a build without servers has none, and the
 * checks below that only concern them drop out. */
static int inbound(const struct conn *c)
{
	return CONFIG_LISTEN && c->listen_kind >= 0;
}

/* Implicit TLS waiting for the client's first bytes (inbound only). */
static int tls_wait(const struct conn *c)
{
	return CONFIG_LISTEN && (c->flags & CONN_TLS_WAIT);
}

static uint32_t next_id = 1;
static char run_id[20];        /* start time in ms, hex: ids unique across runs */
void (*conn_on_slot_free)(void);

int lb_next(struct linebuf *lb, size_t max, char **line, size_t *len, int *crlf)
{
	for (;;) {
		char *start = lb->buf + lb->off;
		size_t avail = lb->len - lb->off;
		char *nl = memchr(start, '\n', avail);

		if (!nl) {
			if (lb->skipping || avail > max + 1) {
				/* Discard what we have but keep reading to the LF. */
				lb->skipping = 1;
				lb->off = lb->len = 0;
			}
			return LB_NEED;
		}
		size_t l = (size_t)(nl - start);
		lb->off += l + 1;
		if (lb->skipping) {
			lb->skipping = 0;
			return LB_TOOLONG;
		}
		*crlf = l > 0 && start[l - 1] == '\r';
		if (*crlf)
			l--;
		if (l > max)
			return LB_TOOLONG;
		start[l] = '\0';
		*line = start;
		*len = l;
		return LB_LINE;
	}
}

size_t lb_compact(struct linebuf *lb)
{
	if (lb->off > 0) {
		memmove(lb->buf, lb->buf + lb->off, lb->len - lb->off);
		lb->len -= lb->off;
		lb->off = 0;
	}
	return lb->cap - lb->len;
}

static int want_read(const struct conn *c)
{
	return !(c->flags & (CONN_CLOSING | CONN_SUSPENDED | CONN_EOF | CONN_TLS_NEXT))
	       && c->in.len - c->in.off < c->in.cap;
}

/* The watcher's deadline: the protocol's or the handshake's, whichever
 * comes first. */
static void arm(struct conn *c)
{
	int64_t d = c->deadline;

	if (c->hs_deadline && (!d || c->hs_deadline < d))
		d = c->hs_deadline;
	if ((c->flags & CONN_AGAIN) && (!d || c->again_at < d))
		d = c->again_at;
	c->w.deadline = d;
}

static void update_events(struct conn *c)
{
	short ev = 0;

	if (c->flags & CONN_CONNECTING) {
		c->w.events = POLLOUT;
		return;
	}
	if (tls_wait(c)) {
		/* Nothing leaves in the clear; the first bytes start TLS. */
		c->w.events = POLLIN;
		return;
	}
	if (CONFIG_TLS && c->tls) {
		unsigned st = tls_state(c->tls);
		if (c->hs_deadline && tls_established(c->tls)) {
			c->hs_deadline = 0;
			arm(c);
		}
		/* Replies written outside run_input (a timer, a resume) are
		 * not in the engine yet: POLLOUT brings the pump. */
		if ((st & TLS_WANT_WRITE) || ((st & TLS_APP_OUT) &&
		    ((c->flags & CONN_DRAIN) || c->out_len > c->out_off)))
			ev |= POLLOUT;
		/* The handshake reads whatever the protocol's state. */
		if ((st & TLS_WANT_READ) && (want_read(c) || !tls_established(c->tls)))
			ev |= POLLIN;
	} else if (c->out_len > c->out_off || (c->flags & CONN_DRAIN)) {
		ev = POLLOUT;
	} else if (want_read(c)) {
		ev = POLLIN;
	}
	c->w.events = ev;
}

/* Moves plaintext both ways through the engine and sends what records
 * the socket takes. Bounded: each round moves something or stops. */
static int tls_pump(struct conn *c)
{
	struct tls_conn *t = c->tls;

	for (int round = 0; round < 16; round++) {
		int progress = 0, w;
		size_t room = lb_compact(&c->in), n;

		if (room) {
			n = tls_app_read(t, c->in.buf + c->in.len, room);
			c->in.len += n;
			progress |= n > 0;
		}
		if (c->out_off < c->out_len) {
			n = tls_app_write(t, c->outp + c->out_off, c->out_len - c->out_off);
			c->out_off += n;
			if (n && c->out_off == c->out_len)
				tls_app_flush(t);
			progress |= n > 0;
		}
		w = tls_sock_write(t, c->w.fd);
		if (w < 0)
			return -1;
		progress |= w;
		if (!progress)
			break;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (tls_state(t) & TLS_CLOSED) {
		if (tls_error(t))
			return -1;
		c->flags |= CONN_EOF;
	}
	return 0;
}

/* ---- lent stream buffers ------------------------------------------------ */

#define STREAM_BUFS (CONFIG_CONN_STREAM_BUFS ? CONFIG_CONN_STREAM_BUFS : 1)
static char stream_buf[STREAM_BUFS][CONFIG_CONN_STREAM_KB * 1024];
static struct conn *stream_owner[STREAM_BUFS];

/* Moves the pending output to buf (it fits: checked by the callers). */
static void move_out(struct conn *c, char *buf, size_t cap)
{
	size_t n = c->out_len - c->out_off;

	memmove(buf, c->outp + c->out_off, n);
	c->out_off = 0;
	c->out_len = n;
	c->outp = buf;
	c->outcap = cap;
}

int conn_stream_in_use(void)
{
	int n = 0;

	for (int i = 0; i < CONFIG_CONN_STREAM_BUFS; i++)
		n += stream_owner[i] != NULL;
	return n;
}

int conn_stream_begin(struct conn *c)
{
	c->flags &= ~(unsigned)CONN_LENT_END;
	if (!CONFIG_CONN_STREAM_BUFS)
		return 0;
	for (int i = 0; i < CONFIG_CONN_STREAM_BUFS; i++)
		if (stream_owner[i] == c)
			return 1;       /* still has one */
	if (c->outp != c->outbuf)
		return 0;
	for (int i = 0; i < CONFIG_CONN_STREAM_BUFS; i++)
		if (!stream_owner[i]) {
			stream_owner[i] = c;
			move_out(c, stream_buf[i], sizeof(stream_buf[i]));
			return 1;
		}
	return 0;
}

static void stream_give_back(struct conn *c, int force)
{
	for (int i = 0; i < CONFIG_CONN_STREAM_BUFS; i++) {
		if (stream_owner[i] != c)
			continue;
		/* Only once half the own buffer stays free: the session
		 * checked for room in the large one and may write its
		 * answer right after (a tagged OK after a FETCH). */
		if (!force && c->out_len - c->out_off > sizeof(c->outbuf) / 2)
			return;         /* still draining: later */
		if (force)
			c->out_len = c->out_off = 0;
		move_out(c, c->outbuf, sizeof(c->outbuf));
		stream_owner[i] = NULL;
		c->flags &= ~(unsigned)CONN_LENT_END;
	}
}

void conn_stream_end(struct conn *c)
{
	c->flags |= CONN_LENT_END;
	stream_give_back(c, 0);
}

static void switch_to_tls(struct conn *c)
{
	c->tls = c->tls_next;
	c->tls_next = NULL;
	c->flags &= ~(unsigned)CONN_TLS_NEXT;
	/* Anything that arrived in the clear with STARTTLS is dropped
	 * (CVE-2011-0411): the protocol starts over after the handshake. */
	c->in.off = c->in.len = 0;
	c->in.skipping = 0;
}

/* An inbound session still in its handshake (or about to start one). */
static int handshaking(const struct conn *c)
{
	return inbound(c) && (c->tls_next ||
				       (c->tls && !tls_established(c->tls)));
}

/* Both connections come from the same client key (net_client_key). */
static int same_key(const struct conn *a, const struct conn *b)
{
	return a->key_family == b->key_family &&
	       memcmp(a->key, b->key, sizeof(a->key)) == 0;
}

/* c's client key holds half of the TLS pool (at least 1) already. */
static int tls_key_full(const struct conn *c)
{
	int n = 0, max = tls_pool_size() / 2;

	if (max < 1)
		max = 1;
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		const struct conn *o = &slots[i];
		if (used[i] && o != c && inbound(o) &&
		    (o->tls || o->tls_next) && same_key(o, c))
			n++;
	}
	return n >= max;
}

/* The session that gives its TLS context to c when the pool is full: the
 * oldest unfinished handshake, else the established session that has not
 * logged in and has been silent longest (at least CONN_TLS_YIELD_IDLE_MS),
 * else the one of those that took its context longest ago (at least
 * CONN_PREAUTH_GRACE_MS). Sessions that logged in are never taken. */
static struct conn *tls_victim(const struct conn *c, int *handshake,
			       const char **why)
{
	struct conn *old = NULL, *idle = NULL, *longest = NULL;
	int64_t now = now_ms();

	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		struct conn *o = &slots[i];
		if (!used[i] || o == c || !inbound(o))
			continue;
		if (handshaking(o)) {
			if (!old || o->tls_since < old->tls_since)
				old = o;
			continue;
		}
		if (!o->tls || (o->flags & CONN_AUTHED))
			continue;
		if (now - o->last_in >= CONN_TLS_YIELD_IDLE_MS &&
		    (!idle || o->last_in < idle->last_in))
			idle = o;
		if (now - o->tls_since >= CONN_PREAUTH_GRACE_MS &&
		    (!longest || o->tls_since < longest->tls_since))
			longest = o;
	}
	*handshake = old != NULL;
	*why = old ? "the oldest unfinished handshake" :
	       idle ? "the longest idle session that has not logged in" :
	       "the oldest session that has not logged in";
	return old ? old : idle ? idle : longest;
}

/* o gives its TLS session up: its protocol's goodbye line goes into the
 * session as far as it fits, then close_notify, and the slot closes. */
static void tls_yield(struct conn *o)
{
	if (o->ops && o->ops->refuse && conn_out_free(o) >= 128 &&
	    !(o->flags & CONN_CLOSING)) {
		o->ops->refuse(o, "TLS session needed by another client");
		if (tls_state(o->tls) & TLS_APP_OUT) {
			o->out_off += tls_app_write(o->tls, o->outp + o->out_off,
						    o->out_len - o->out_off);
			tls_app_flush(o->tls);
			tls_sock_write(o->tls, o->w.fd);
		}
	}
	conn_close(o, "TLS session given to another client");
}

/* A server TLS session for c, unless c's client key holds half the pool;
 * when the pool is full, tls_victim's session yields (a flood of slow or
 * silent handshakes, or of idle sessions that never log in, cannot keep
 * TLS from everyone else). */
static struct tls_conn *tls_take(struct conn *c)
{
	struct tls_conn *t = NULL;
	struct conn *old;
	const char *why;
	int hs;

	if (CONFIG_LISTEN && tls_key_full(c)) {
		log_msg(LOGL_WARN, "conn %u %s: this address holds half of the "
			"TLS pool already", c->id, c->peer_str);
		return NULL;
	}
	t = tls_conn_new();
	if (CONFIG_LISTEN && !t && tls_ready() && (old = tls_victim(c, &hs, &why)) != NULL) {
		log_msg(LOGL_INFO, "conn %u %s: TLS pool full: %s gives way to "
			"conn %u", old->id, old->peer_str, why, c->id);
		if (hs)
			conn_close(old, "TLS handshake pre-empted");
		else
			tls_yield(old);
		t = tls_conn_new();
	}
	if (t)
		c->tls_since = now_ms();
	return t;
}

int conn_start_tls(struct conn *c)
{
	if (c->tls || c->tls_next)
		return -1;
	c->tls_next = tls_take(c);
	if (!c->tls_next)
		return -1;
	c->flags |= CONN_TLS_NEXT;
	c->in.off = c->in.len = 0;
	c->hs_deadline = now_ms() + TLS_HANDSHAKE_MS;
	arm(c);
	return 0;
}

void conn_flush(struct conn *c)
{
	if (tls_wait(c)) {
		update_events(c);
		return;
	}
	if (CONFIG_TLS && c->tls) {
		if (tls_pump(c) != 0) {
			conn_close(c, "TLS error");
			return;
		}
		if (c->flags & CONN_LENT_END)
			stream_give_back(c, 0);
		update_events(c);
		return;
	}
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->w.fd, c->outp + c->out_off,
				 c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(c, strerror(errno));
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (CONFIG_TLS && (c->flags & CONN_TLS_NEXT))
			switch_to_tls(c);
	}
	if (c->flags & CONN_LENT_END)
		stream_give_back(c, 0);
	update_events(c);
}

size_t conn_out_free(const struct conn *c)
{
	return c->outcap - c->out_len;
}

int conn_out_pending(const struct conn *c)
{
	if (CONFIG_TLS && c->tls && (tls_state(c->tls) & TLS_WANT_WRITE))
		return 1;
	return c->out_len > c->out_off;
}

int conn_write(struct conn *c, const char *data, size_t len)
{
	if (c->w.fd < 0)
		return -1;
	struct buf b;

	buf_init_len(&b, c->outp, c->outcap, c->out_len);
	if (buf_add(&b, data, len) != 0) {
		log_msg(LOGL_ERR, "conn %u: reply of %zu bytes does not fit",
			c->id, len);
		conn_close(c, "output overflow");
		return -1;
	}
	c->out_len = b.len;
	return 0;
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	char tmp[CONFIG_CONN_OUTBUF];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		n = (int)sizeof(tmp) - 1;
	return conn_write(c, tmp, (size_t)n);
}

void conn_close(struct conn *c, const char *why)
{
	int idx = (int)(c - slots);

	if (c->w.fd < 0)
		return;
	c->why = why;
	if (c->ops && c->ops->close)
		c->ops->close(c);
	c->why = why;
	log_msg(LOGL_INFO, "conn %u %s: closed (%s)", c->id, c->peer_str, why);
	if (CONFIG_TLS && c->tls) {
		if (tls_error(c->tls))
			log_msg(LOGL_INFO, "conn %u: TLS error %d", c->id,
				tls_error(c->tls));
		tls_close_notify(c->tls);
		tls_sock_write(c->tls, c->w.fd);
	}
	tls_conn_free(c->tls);
	tls_conn_free(c->tls_next);
	c->tls = c->tls_next = NULL;
	stream_give_back(c, 1);
	c->outp = c->outbuf;
	c->outcap = sizeof(c->outbuf);
	loop_del(&c->w);
	close(c->w.fd);
	c->w.fd = -1;
	used[idx] = 0;
	in_use--;
	if (conn_on_slot_free)
		conn_on_slot_free();
}

void conn_close_after_flush(struct conn *c)
{
	c->flags |= CONN_CLOSING;
	conn_deadline_ms(c, CONN_CLOSE_LINGER_MS);
	conn_flush(c);
	if (c->w.fd >= 0 && !conn_out_pending(c))
		conn_close(c, "done");
}

void conn_deadline(struct conn *c, int seconds)
{
	c->since = seconds > 0 ? now_ms() : 0;
	c->deadline = seconds > 0 ? c->since + (int64_t)seconds * 1000 : 0;
	arm(c);
}

void conn_deadline_ms(struct conn *c, int ms)
{
	c->since = 0;
	c->deadline = now_ms() + ms;
	arm(c);
}

static int evictable(const struct conn *c)
{
	return c->since && inbound(c) &&
	       !(c->flags & (CONN_CLOSING | CONN_SUSPENDED | CONN_CONNECTING));
}

/* An implicit-TLS connection whose client has sent no byte yet (none
 * waiting in the socket either). */
static int tls_silent(const struct conn *c)
{
	char b;

	return tls_wait(c) && !(c->flags & CONN_CLOSING) &&
	       recv(c->w.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	       (errno == EAGAIN || errno == EWOULDBLOCK);
}

int64_t conn_make_room(void)
{
	struct conn *idle = NULL, *slow = NULL, *silent = NULL, *oldest = NULL, *c;
	const char *rule;
	int64_t now = now_ms(), when = -1;

	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		c = &slots[i];
		if (used[i] && inbound(c) && tls_silent(c) &&
		    (!silent || c->last_in < silent->last_in))
			silent = c;
	}
	if (silent) {
		log_msg(LOGL_INFO, "conn %u %s: all slots taken and a client "
			"waiting: closing this silent TLS connection (%lld ms)",
			silent->id, silent->peer_str,
			(long long)(now - silent->last_in));
		conn_close(silent, "silent TLS connection evicted");
		return 0;
	}
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		c = &slots[i];
		if (!used[i] || !evictable(c))
			continue;
		if (!idle || c->last_in < idle->last_in)
			idle = c;
		if (!slow || c->since < slow->since)
			slow = c;
		if (!(c->flags & CONN_AUTHED) &&
		    (!oldest || c->opened < oldest->opened))
			oldest = c;
	}
	if (idle && now - idle->last_in >= CONN_EVICT_IDLE_MS)
		c = idle, rule = "idle";
	else if (slow && now - slow->since >= CONN_EVICT_SLOW_MS)
		c = slow, rule = "slow";
	else if (oldest && now - oldest->opened >= CONN_PREAUTH_GRACE_MS)
		c = oldest, rule = "oldest not logged in";
	else {
		if (idle)
			when = idle->last_in + CONN_EVICT_IDLE_MS;
		if (slow && (when < 0 || slow->since + CONN_EVICT_SLOW_MS < when))
			when = slow->since + CONN_EVICT_SLOW_MS;
		if (oldest && (when < 0 ||
			       oldest->opened + CONN_PREAUTH_GRACE_MS < when))
			when = oldest->opened + CONN_PREAUTH_GRACE_MS;
		return when;
	}
	log_msg(LOGL_INFO, "conn %u %s: all slots taken and a client waiting: "
		"ending this session (%s, silent %lld ms)", c->id, c->peer_str,
		rule, (long long)(now - c->last_in));
	c->since = 0;
	c->deadline = now;      /* its protocol's timeout runs this pass */
	arm(c);
	return 0;
}

void conn_suspend(struct conn *c)
{
	c->flags |= CONN_SUSPENDED;
	update_events(c);
}

/* Runs the protocol on buffered input until it stops making progress or
 * its output backs up. The input buffer is bounded and every round
 * consumes something, so the work per call is bounded too; input left over
 * must be handled now, since the client may be waiting for our replies and
 * send nothing more. */
#define CONN_MAX_ROUNDS (CONFIG_CONN_INBUF / 2 + 8)

/* The session's turn in this pass begins (once a pass: a session
 * served by I/O and again by its deadline has one turn). */
static void turn_begin(struct conn *c)
{
	if (c->turn_pass != loop_pass()) {
		c->turn_pass = loop_pass();
		c->turn_syncs = util_syncs;
	}
}

int conn_turn_over(struct conn *c)
{
	turn_begin(c);
	return c->turn_syncs != util_syncs;
}

/* Its turn is over with input left: the reader goes on next pass. */
static void turn_defer(struct conn *c)
{
	c->flags |= CONN_AGAIN;
	c->again_at = now_ms();
	arm(c);
	loop_next_pass(&c->w);
}

static void call_input(struct conn *c)
{
	c->flags |= CONN_IN_INPUT;
	c->ops->input(c);
	c->flags &= ~(unsigned)CONN_IN_INPUT;
}

/* Input is waiting that no socket event would bring back: unread bytes
 * in the buffer, or decrypted ones still in the TLS engine. */
static int input_left(struct conn *c)
{
	return c->in.off < c->in.len ||
	       (CONFIG_TLS && c->tls && (tls_state(c->tls) & TLS_APP_IN));
}

static void run_input(struct conn *c)
{
	int rounds;

	for (rounds = 0; rounds < CONN_MAX_ROUNDS && c->w.fd >= 0; rounds++) {
		size_t off0, len0;
		size_t out0, room0;
		unsigned flags0;
		int progress;

		/* TLS: move decrypted bytes in first (this may compact the
		 * buffer, so progress is measured around input() only). */
		if (CONFIG_TLS && c->tls && tls_pump(c) != 0) {
			conn_close(c, "TLS error");
			return;
		}
		if (c->flags & (CONN_SUSPENDED | CONN_CLOSING))
			break;
		if (c->in.off == c->in.len && !(c->flags & CONN_EOF))
			break;
		if (conn_turn_over(c)) {
			turn_defer(c);
			break;
		}
		off0 = c->in.off;
		len0 = c->in.len;
		out0 = c->out_len;
		flags0 = c->flags;
		call_input(c);
		if (c->w.fd < 0)
			return;
		/* An over-long line is thrown away (off and len go to 0):
		 * that is progress too; under TLS the rest of it is still in
		 * the engine, and no socket event would bring it. */
		progress = c->in.off != off0 || c->in.len != len0 ||
			   c->out_len != out0 || c->flags != flags0;
		room0 = conn_out_free(c);
		conn_flush(c);
		if (c->w.fd < 0)
			return;
		/* The reader stopped between commands: the rest next pass. */
		if (conn_turn_over(c) && c->in.off < c->in.len &&
		    !(c->flags & (CONN_SUSPENDED | CONN_CLOSING))) {
			turn_defer(c);
			break;
		}
		/* A protocol that stopped for want of output room (replies
		 * written before this call, e.g. by a timer) goes on once the
		 * flush made room: no socket event would come for it. */
		if (!progress && conn_out_free(c) <= room0)
			break;
		/* Backpressure: pending replies wait for the socket, and
		 * reading waits for them (under TLS too: the engine sends
		 * while a record still holds commands, which stay there). */
		if (conn_out_pending(c))
			break;
	}
	/* Out of rounds with commands left (a client that pipelined more
	 * than a pass serves): the rest at the next pass. */
	if (rounds == CONN_MAX_ROUNDS && c->w.fd >= 0 && input_left(c) &&
	    !conn_out_pending(c) &&
	    !(c->flags & (CONN_SUSPENDED | CONN_CLOSING | CONN_AGAIN)))
		turn_defer(c);
	if (c->w.fd >= 0 && (c->flags & CONN_EOF) &&
	    !(c->flags & (CONN_SUSPENDED | CONN_AGAIN)) && !conn_out_pending(c))
		conn_close(c, "client closed");
}

void conn_next_pass(struct conn *c)
{
	conn_deadline_ms(c, 0);
	loop_next_pass(&c->w);
}

void conn_resume(struct conn *c)
{
	c->flags &= ~(unsigned)CONN_SUSPENDED;
	if (c->flags & CONN_IN_INPUT)
		return;
	run_input(c);
	if (c->w.fd >= 0)
		update_events(c);
}

/* Implicit TLS: the client's first bytes are here; take a TLS session
 * for the handshake. -1: c was closed (the client left, or no session). */
static int tls_begin(struct conn *c)
{
	char b;
	ssize_t n = recv(c->w.fd, &b, 1, MSG_PEEK);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0) {
		/* Gone before a handshake: nothing to pre-empt anyone for. */
		conn_close(c, n == 0 ? "client closed" : strerror(errno));
		return -1;
	}
	c->tls = tls_take(c);
	if (!c->tls) {
		log_msg(LOGL_WARN, "conn %u %s: no TLS session free; closing",
			c->id, c->peer_str);
		conn_close(c, "no TLS session free");
		return -1;
	}
	c->flags &= ~(unsigned)CONN_TLS_WAIT;
	return 0;
}

static void on_io(struct watcher *w, short revents)
{
	struct conn *c = (struct conn *)w;

	turn_begin(c);
	if (c->flags & CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->w.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			conn_close(c, strerror(err));
			return;
		}
		c->flags &= ~(unsigned)CONN_CONNECTING;
		if (c->ops->open(c) != 0) {
			conn_close(c, "session refused");
			return;
		}
		conn_flush(c);
		if (c->w.fd >= 0)
			update_events(c);
		return;
	}
	if (revents & POLLOUT) {
		conn_flush(c);
		if (c->w.fd < 0)
			return;
		if (!conn_out_pending(c) && (c->flags & CONN_CLOSING)) {
			conn_close(c, "done");
			return;
		}
		/* Output drained: a protocol streaming a message (RETR, DATA
		 * to a peer) refills the buffer from input(). */
		if (!conn_out_pending(c) && !(c->flags & (CONN_SUSPENDED | CONN_CLOSING))) {
			call_input(c);
			if (c->w.fd < 0)
				return;
			conn_flush(c);
			if (c->w.fd < 0)
				return;
		}
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		c->last_in = now_ms();
		if (!(revents & POLLIN) && (revents & POLLERR)) {
			conn_close(c, "socket error");
			return;
		}
		if (tls_wait(c)) {
			if (tls_begin(c) != 0)
				return;
			if (c->flags & CONN_TLS_WAIT) {
				update_events(c);       /* nothing yet after all */
				return;
			}
		}
		size_t room = lb_compact(&c->in);
		if (CONFIG_TLS && c->tls) {
			if (tls_sock_read(c->tls, c->w.fd) < 0) {
				if (!tls_established(c->tls) || tls_error(c->tls)) {
					conn_close(c, tls_established(c->tls) ?
						   "TLS error" : "TLS handshake failed");
					return;
				}
				c->flags |= CONN_EOF;
			}
			if (tls_pump(c) != 0) {
				conn_close(c, "TLS error");
				return;
			}
		} else if (room > 0) {
			ssize_t n = recv(c->w.fd, c->in.buf + c->in.len, room, 0);
			if (n > 0)
				c->in.len += (size_t)n;
			else if (n == 0)
				c->flags |= CONN_EOF;
			else if (errno != EAGAIN && errno != EINTR) {
				conn_close(c, strerror(errno));
				return;
			}
		}
	}
	if (!conn_out_pending(c))
		run_input(c);
	if (c->w.fd >= 0)
		update_events(c);
}

static void on_timeout(struct watcher *w)
{
	struct conn *c = (struct conn *)w;
	int64_t now = now_ms();

	turn_begin(c);
	if (c->flags & CONN_AGAIN) {
		/* Its next turn: the commands it pipelined go on. */
		c->flags &= ~(unsigned)CONN_AGAIN;
		if (!(c->flags & CONN_SUSPENDED) &&
		    !conn_out_pending(c))
			run_input(c);
		if (c->w.fd < 0)
			return;
		update_events(c);
		if (!(c->flags & CONN_AGAIN))
			arm(c);
		return;
	}
	if (c->hs_deadline && now >= c->hs_deadline) {
		log_msg(LOGL_INFO, "conn %u %s: TLS handshake not done in %d s",
			c->id, c->peer_str, (int)(TLS_HANDSHAKE_MS / 1000));
		conn_close(c, "TLS handshake timeout");
		return;
	}
	if (!c->deadline || now < c->deadline) {
		arm(c);         /* the handshake's deadline went away */
		return;
	}
	c->deadline = 0;
	if (c->flags & CONN_CLOSING) {
		conn_close(c, "flush timeout");
		return;
	}
	c->ops->timeout(c);
	if (c->w.fd >= 0)
		update_events(c);
}

void conn_init(int max)
{
	max_slots = max < CONFIG_MAX_CONNECTIONS ? max : CONFIG_MAX_CONNECTIONS;
	if (!run_id[0]) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(run_id, sizeof(run_id), "%llx", (unsigned long long)ts.tv_sec *
			 1000ull + (unsigned long long)(ts.tv_nsec / 1000000));
	}
}

const char *conn_run_id(void)
{
	return run_id;
}

int conn_slots_free(void)
{
	return max_slots - in_use;
}

int conn_count(void)
{
	return in_use;
}

int conn_count_kind(int kind)
{
	int n = 0;

	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++)
		n += used[i] && slots[i].listen_kind == kind;
	return n;
}

/* Takes a free slot for fd and fills it; NULL (fd closed) when none. */
static struct conn *slot_take(int fd, const struct sockaddr_storage *peer,
			      socklen_t peerlen, int kind,
			      const struct proto_ops *ops)
{
	struct conn *c = NULL;

	for (int i = 0; i < CONFIG_MAX_CONNECTIONS && in_use < max_slots; i++) {
		if (!used[i]) {
			c = &slots[i];
			used[i] = 1;
			break;
		}
	}
	if (!c) {
		close(fd);
		return NULL;
	}
	in_use++;
	/* Replies are whole lines or TLS records written at once: waiting
	 * for more to send only adds a delayed-ACK round trip (≈40 ms per
	 * TLS handshake). */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->w.fd = fd;
	c->w.events = 0;
	c->w.deadline = 0;
	c->deadline = c->hs_deadline = c->tls_since = 0;
	c->w.on_io = on_io;
	c->w.on_timeout = on_timeout;
	c->ops = ops;
	c->sess = NULL;
	c->flags = 0;
	c->why = NULL;
	c->since = 0;
	c->last_in = c->opened = now_ms();
	c->id = next_id++;
	c->listen_kind = kind;
	memcpy(&c->peer, peer, sizeof(c->peer));
	c->peerlen = peerlen;
	net_unmap(&c->peer, &c->peerlen);
	net_ntop((struct sockaddr *)&c->peer, c->peer_str, sizeof(c->peer_str), 0);
	if (CONFIG_LISTEN)      /* only inbound limits use the key */
		c->key_family = net_client_key((struct sockaddr *)&c->peer, c->key);
	c->in.buf = c->inbuf;
	c->in.cap = sizeof(c->inbuf);
	c->in.len = c->in.off = 0;
	c->in.skipping = 0;
	c->out_len = c->out_off = 0;
	c->outp = c->outbuf;
	c->outcap = sizeof(c->outbuf);
	c->tls = c->tls_next = NULL;
	return c;
}

static void slot_give_back(struct conn *c)
{
	tls_conn_free(c->tls);
	c->tls = NULL;
	stream_give_back(c, 1);
	c->outp = c->outbuf;
	c->outcap = sizeof(c->outbuf);
	used[c - slots] = 0;
	in_use--;
	close(c->w.fd);
	c->w.fd = -1;
}

/* The peer holds max_connections_per_ip inbound connections already. */
static int over_per_ip(const struct conn *c)
{
	int n = 0, max = conf ? conf->max_connections_per_ip :
		CONFIG_MAX_CONNECTIONS_PER_IP;

	for (int i = 0; i < CONFIG_MAX_CONNECTIONS && n < max; i++) {
		const struct conn *o = &slots[i];
		if (used[i] && o != c && inbound(o) &&
		    same_key(o, c))
			n++;
	}
	return n >= max;
}

struct conn *conn_open(int fd, const struct sockaddr_storage *peer,
		       socklen_t peerlen, int kind, const struct proto_ops *ops,
		       int implicit_tls)
{
	struct conn *c = slot_take(fd, peer, peerlen, kind, ops);

	if (!c)
		return NULL;
	if (implicit_tls && !tls_ready()) {
		log_msg(LOGL_WARN, "%s: no TLS certificate loaded; closing",
			c->peer_str);
		slot_give_back(c);
		return NULL;
	}
	if (loop_add(&c->w) != 0) {
		slot_give_back(c);
		return NULL;
	}
	if (over_per_ip(c)) {
		log_msg(LOGL_WARN, "conn %u %s: %s refused: max_connections_per_ip "
			"(%d) reached", c->id, c->peer_str, conf_service_name(kind),
			conf->max_connections_per_ip);
		if (implicit_tls || !ops->refuse) {
			conn_close(c, "too many connections from this address");
			return NULL;
		}
		ops->refuse(c, "Too many connections from your address");
		conn_close_after_flush(c);
		return NULL;
	}
	if (implicit_tls) {
		c->flags |= CONN_TLS_WAIT;
		c->hs_deadline = now_ms() + TLS_HANDSHAKE_MS;
		arm(c);
	}
	log_msg(LOGL_INFO, "conn %u %s: %s connect", c->id, c->peer_str,
		kind >= 0 ? conf_service_name(kind) : ops->name);
	if (ops->open(c) != 0) {
		c->ops = NULL;
		conn_close(c, "no session available");
		return NULL;
	}
	conn_flush(c);
	if (c->w.fd >= 0)
		update_events(c);
	return c;
}

struct conn *conn_connect(int fd, const struct sockaddr_storage *peer,
			  socklen_t peerlen, const struct proto_ops *ops,
			  void *sess)
{
	struct conn *c = slot_take(fd, peer, peerlen, -1, ops);

	if (!c)
		return NULL;
	if (loop_add(&c->w) != 0) {
		slot_give_back(c);
		return NULL;
	}
	c->sess = sess;
	c->flags = CONN_CONNECTING;
	update_events(c);
	log_msg(LOGL_INFO, "conn %u %s: %s connecting", c->id, c->peer_str,
		ops->name);
	return c;
}

void conn_set_tls(struct conn *c, struct tls_conn *t)
{
	c->tls = t;
	c->in.off = c->in.len = 0;
	c->in.skipping = 0;
	conn_flush(c);
}

void conn_close_all(const char *why)
{
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++)
		if (used[i])
			conn_close(&slots[i], why);
}
