/* runner — the relay queue's runner (store/queue.h has the layout).
 *
 * Owns: the in-memory table of queued messages (CONFIG_QUEUE_MAX; more
 * files wait on disk and are loaded when room frees), the delivery
 * attempts (CONFIG_RELAY_MAX_DELIVERIES at once, each walking its
 * message's targets: local mailboxes through store/delivery (the local
 * delivery SMTP receive uses too), QUEUE_LOCAL_STEP bytes a loop pass,
 * remote ones grouped
 * by domain, or all to the smarthost, and handed to smtp_out one group
 * at a time), the retry schedule (queue_retry MIN MAX, doubling per
 * delivery attempt; a run that failed only on this side — no resolver,
 * DNS server silent, no route — is not an attempt and is retried after
 * MIN, at most QUEUE_LOCAL_RETRY seconds), expiry after queue_lifetime
 * with a bounce, and the maildrop pickup (inotify, so an idle daemon
 * makes no wake-ups). The per-target state lives in queue/ID.st through
 * store/qstate. Nothing acknowledged is removed before its state says
 * every target is delivered or reported; each failed target is reported
 * in exactly one DSN. */
#include "relay/runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "proto/address.h"
#include "proto/smtp_out.h"
#include "store/aliases.h"
#include "relay/bounce.h"
#include "store/delivery.h"
#include "store/maildrop.h"
#include "store/qstate.h"
#include "store/queue.h"
#include "store/users.h"

#define QUEUE_TARGETS_MAX QSTATE_TARGETS_MAX
#define QUEUE_PATH (CONF_PATH_MAX + SPOOL_NAME_MAX + 16)
/* Seconds before a run that failed on this side is tried again (at most;
 * queue_retry MIN when that is shorter). */
#define QUEUE_LOCAL_RETRY 60
/* Milliseconds between looks at a busy mailbox (another delivery of
 * this process, or a mail client, holds it). */
#define QUEUE_LOCK_RETRY_MS 200
/* Seconds between queue runs asked for through the maildrop. */
#define QUEUE_RUNQ_GAP 10
/* Bytes appended to a local mailbox per loop pass (the work budget). */
#define QUEUE_LOCAL_STEP ((size_t)CONFIG_LOOP_STEP_KB * 1024)

struct qmsg {
	char id[SPOOL_NAME_MAX];
	time_t arrival, next;
	int attempts;           /* delivery attempts */
	int local_fails;        /* runs failed on this side since the last */
	int active;
	int warned;             /* a delay warning went out */
};

struct attempt {
	struct qmsg *q;
	struct spool_file f;
	char sender[CONFIG_SMTP_PATH_MAX + 1];
	char rcpts[QUEUE_TARGETS_MAX][CONFIG_SMTP_PATH_MAX + 1];
	int nrcpt;
	struct qstate st;                       /* the targets */
	char tried[QUEUE_TARGETS_MAX];          /* given to a session this run */
	char built[QUEUE_TARGETS_MAX];          /* still a target of the envelope */
	int overflow;
	int reached;            /* some outcome of this run was an attempt */
	int delivered;          /* a local mailbox took its copy */
	int local_i;            /* the next target to look at for local delivery */
	int appending;          /* dl holds a mailbox: go on at the next pass */
	int64_t lock_retry;     /* a busy mailbox: look again then (ms) */
	int64_t lock_until;     /* ... until then, before a 450 deferral */
	struct delivery dl;
	struct smtpout_job job;
	int job_targets[SMTPOUT_RCPT_MAX];
	int busy;
};

static struct qmsg qtab[CONFIG_QUEUE_MAX];
static int qcount, spilled;
static struct attempt attempts[CONFIG_RELAY_MAX_DELIVERIES];
static char qdir[CONF_PATH_MAX + 8], dropdir[CONF_PATH_MAX + 12];
static char baddir[CONF_PATH_MAX + 8];
static struct watcher timer, notify;
static struct qstate scratch;           /* load_queue() and rescans */

static void schedule(void);
static int pickup_all(void);

/* The runner looks at the queue on the next loop pass: a 250 goes out
 * before any delivery work, and an attempt that ends at once cannot
 * start the next one inside itself (no recursion through the queue). */
static void kick(void)
{
	timer.deadline = now_ms();
}

/* ---- files ------------------------------------------------------------ */

static void qpath(char *buf, size_t n, const char *id, const char *suffix)
{
	/* An id is shorter than SPOOL_NAME_MAX, so QUEUE_PATH holds it; a
	 * path cut short anyway is no path rather than another file's. */
	if (snprintf(buf, n, "%s/%s%s", qdir, id, suffix) >= (int)n)
		buf[0] = '\0';
}

static struct qmsg *qadd(const char *id, time_t arrival, time_t next, int tries)
{
	struct qmsg *q;

	if (qcount == CONFIG_QUEUE_MAX) {
		spilled = 1;
		return NULL;
	}
	q = &qtab[qcount++];
	memset(q, 0, sizeof(*q));
	str_copy(q->id, sizeof(q->id), id, strlen(id));
	q->arrival = arrival;
	q->next = next;
	q->attempts = tries;
	return q;
}

static void qremove(struct qmsg *q)
{
	*q = qtab[--qcount];
	/* An attempt pointing at the moved entry follows it. */
	for (size_t i = 0; i < ARRAY_LEN(attempts); i++)
		if (attempts[i].busy && attempts[i].q == &qtab[qcount])
			attempts[i].q = q;
}

/* The queue_commit hook: a new file in queue/ (a 250 or a DSN). */
static void on_commit(const char *name)
{
	qadd(name, time(NULL), 0, 0);
	kick();
}

/* ---- state file ------------------------------------------------------- */

static int state_save(struct attempt *a)
{
	struct qmsg *q = a->q;

	a->st.arrival = q->arrival;
	a->st.next = q->next;
	a->st.attempts = q->attempts;
	a->st.local_fails = q->local_fails;
	a->st.warned = q->warned;
	return qstate_save(qdir, q->id, &a->st);
}

/* Arrival, attempts and the warning flag of a queue file from its state
 * (a message without one has not been tried: its file time is its
 * arrival). */
static void state_restore(struct qmsg *q, int dfd)
{
	if (qstate_load(dfd, q->id, &scratch) != 0)
		return;
	if (scratch.arrival)
		q->arrival = scratch.arrival;
	q->attempts = scratch.attempts;
	q->local_fails = scratch.local_fails;
	q->warned = scratch.warned;
}

/* ---- targets ---------------------------------------------------------- */

static void add_target(struct attempt *a, const char *addr, int rcpt)
{
	struct qstate_target *t = qstate_target(&a->st, addr, rcpt);

	if (!t) {
		a->overflow = 1;
		return;
	}
	a->built[t - a->st.t] = 1;
}

struct expand {
	struct attempt *a;
	int rcpt;
};

static void on_alias_target(void *ctx, int user, const char *remote)
{
	struct expand *e = ctx;
	char buf[CONFIG_SMTP_PATH_MAX + 1];

	if (user >= 0)
		snprintf(buf, sizeof(buf), "local:%s", users->v[user].name);
	else
		str_copy(buf, sizeof(buf), remote, strlen(remote));
	add_target(e->a, buf, e->rcpt);
}

static int on_envelope(void *ctx, char kind, const char *val, size_t len)
{
	struct attempt *a = ctx;

	if (kind == 'F') {
		str_copy(a->sender, sizeof(a->sender), val, len);
		return 0;
	}
	if (a->nrcpt == QUEUE_TARGETS_MAX) {
		a->overflow = 1;
		return 0;
	}
	str_copy(a->rcpts[a->nrcpt++], sizeof(a->rcpts[0]), val, len);
	return 0;
}

/* Every R line becomes targets through store/delivery's expansion (the
 * one SMTP receive uses): local users (aliases may also name remote
 * addresses) or the remote address itself; a local part nobody has
 * stays a local target, which fails with 5.1.1. */
static void build_targets(struct attempt *a)
{
	for (int i = 0; i < a->nrcpt; i++) {
		const char *r = a->rcpts[i], *at = strrchr(r, '@');
		char buf[CONFIG_SMTP_PATH_MAX + 1];
		struct expand e = { a, i };

		if (delivery_expand(r, strlen(r), on_alias_target, &e) > 0)
			continue;
		snprintf(buf, sizeof(buf), "local:%.*s", (int)(at ? at - r : (long)strlen(r)), r);
		str_lower(buf);
		add_target(a, buf, i);
	}
}

/* An outcome of this run for one target. */
static void set_target(struct attempt *a, struct qstate_target *t, int code,
		       const char *status, const char *host, const char *text,
		       int local)
{
	qstate_set(t, code, status, host, text, local, time(NULL));
	a->reached |= !local;
}

static void next_group(struct attempt *a);

static int is_local_target(const struct qstate_target *t)
{
	return strncmp(t->addr, "local:", 6) == 0;
}

/* One outcome of store/delivery for a local target. */
static void local_outcome(struct attempt *a, struct qstate_target *t, int rc,
			  int err)
{
	char status[8], text[96];
	int code = delivery_reason(rc, err, status, text, sizeof(text));

	/* A copy in a mailbox here is not an attempt at the other
	 * targets: a remote one whose run failed on this side keeps the
	 * short retry (1 minute) of a remote-only message. */
	/* A mailbox still locked after CONFIG_MBOX_LOCK_WAIT (a mail client
	 * busy with it, or another program) is a problem on this side, not
	 * an attempt: tried again within QUEUE_LOCAL_RETRY, not after the
	 * backoff. */
	int busy = rc == MBOX_BUSY;

	qstate_set(t, code, status, NULL, text, busy, time(NULL));
	if (code / 100 == 2)
		a->delivered = 1;
	else if (!busy)
		a->reached = 1;
}

/* Appends the message to the mailbox in a->dl, QUEUE_LOCAL_STEP bytes a
 * pass; 1 while bytes are left (the timer brings it back), else 0 with
 * the outcome recorded. */
static int local_step(struct attempt *a)
{
	int rc = delivery_step(&a->dl, QUEUE_LOCAL_STEP), e = errno;

	a->appending = rc == MBOX_AGAIN;
	if (a->appending) {
		kick();
		return 1;
	}
	delivery_end(&a->dl, rc == MBOX_OK);
	local_outcome(a, &a->st.t[a->local_i], rc, e);
	return 0;
}

/* Delivers the pending local targets one after the other through
 * store/delivery (the same as SMTP receive), then goes on with the
 * remote ones. */
static void local_next(struct attempt *a)
{
	if (CONFIG_MAILBOXES && a->appending) {
		if (local_step(a))
			return;
		/* That mailbox's fsync was this pass's work: the next one at
		 * the next pass (the timer looks at lock_retry). */
		if (++a->local_i < a->st.n) {
			a->lock_retry = now_ms();
			return;
		}
	}
	a->lock_retry = 0;
	for (; a->local_i < a->st.n; a->local_i++) {
		struct qstate_target *t = &a->st.t[a->local_i];
		const char *user = t->addr + 6;
		int rc;

		if (t->state != QS_PENDING || !a->built[a->local_i] ||
		    !is_local_target(t))
			continue;
		if (!CONFIG_MAILBOXES || users_find(users, user, strlen(user)) < 0) {
			set_target(a, t, 550, "5.1.1", NULL, CONFIG_MAILBOXES ?
				   "no such mailbox here" : "no such alias here, and "
				   "this build has no local mailboxes", 0);
			continue;
		}
		rc = delivery_begin(&a->dl, user, a->sender, a->q->arrival, a->f.fd,
				    a->f.data_off, a->f.size - a->f.data_off);
		if (rc == MBOX_BUSY) {
			/* Held by another delivery (appends span loop passes)
			 * or a mail client: wait CONFIG_MBOX_LOCK_WAIT, as SMTP
			 * receive does, before it counts as a deferral. */
			int64_t now = now_ms();
			if (!a->lock_until)
				a->lock_until = now + CONFIG_MBOX_LOCK_WAIT * 1000;
			if (now < a->lock_until) {
				a->lock_retry = now + QUEUE_LOCK_RETRY_MS;
				return;
			}
		}
		a->lock_until = 0;
		if (rc != MBOX_OK) {
			local_outcome(a, t, rc, errno);
			continue;
		}
		if (local_step(a))
			return;
	}
	next_group(a);
}

/* ---- bounces ------------------------------------------------------------ */

/* A DSN to the sender: the failed targets not reported yet (a bounce),
 * or with delayed the pending ones (a warning that mail is still being
 * retried). 0 when it is queued, or nothing had to go (then the failed
 * targets count as reported), 1 when the sender is <> (a bounce is
 * never bounced), -1 when it could not be written (the targets stay
 * due). */
static int dsn(struct attempt *a, int delayed)
{
	struct bounce_rcpt br[QUEUE_TARGETS_MAX];
	char diag[QUEUE_TARGETS_MAX][QSTATE_TEXT + 24];
	struct bounce_msg m;
	struct spool_file out;
	struct stat st;
	int n = 0;

	for (int i = 0; i < a->st.n; i++) {
		struct qstate_target *t = &a->st.t[i];
		if (t->state != (delayed ? QS_PENDING : QS_FAILED))
			continue;
		br[n].rcpt = is_local_target(t) && t->rcpt < a->nrcpt ?
			     a->rcpts[t->rcpt] : t->addr;
		br[n].status = delayed && t->status[0] != '4' ? "4.0.0" : t->status;
		/* A server's reply is quoted as it came; a reason of ours
		 * gets the code and status it was given. */
		if (t->host[0] || !t->code)
			snprintf(diag[n], sizeof(diag[n]), "%s", t->text);
		else
			snprintf(diag[n], sizeof(diag[n]), "%d %s %s", t->code,
				 t->status, t->text);
		br[n].diag = diag[n];
		br[n].remote = t->host[0] ? t->host : NULL;
		br[n].delayed = delayed;
		n++;
	}
	if (n == 0)
		return 0;
	/* Each recipient and why, before the summary: what an operator greps. */
	for (int i = 0; i < n && !delayed; i++)
		log_msg(LOGL_INFO, "queue: %s: <%.100s> failed: %s%s%s%.120s", a->q->id,
			br[i].rcpt, br[i].remote ? "host " : "",
			br[i].remote ? br[i].remote : "", br[i].remote ? " said: " : "",
			br[i].diag);
	if (!a->sender[0])      /* never bounced: kept (attempt_end) */
		return delayed ? 0 : 1;
	memset(&m, 0, sizeof(m));
	m.hostname = conf->hostname;
	/* A delay warning goes where a bounce would: to the envelope
	 * sender (the masquerade address for sendmail's mail), the
	 * mailbox its owner reads; a sender in a local domain gets it in
	 * the local mailbox, never through the smarthost. */
	m.sender = a->sender;
	m.orig_id = a->q->id;
	m.arrival = a->q->arrival;
	m.r = br;
	m.n = n;
	m.src_fd = a->f.fd;
	m.data_off = a->f.data_off;
	m.data_len = a->f.size - a->f.data_off;
	if (spool_create(&out) != 0 || bounce_write(out.fd, &m) != 0) {
		log_msg(LOGL_ERR, "queue: %s: cannot write the %s: %s; keeping "
			"the message", a->q->id, delayed ? "delay warning" : "bounce",
			strerror(errno));
		spool_discard(&out);
		return -1;
	}
	if (fstat(out.fd, &st) == 0)
		out.size = st.st_size;
	if (queue_commit(&out) != 0) {
		log_msg(LOGL_ERR, "queue: cannot queue a DSN: %s", strerror(errno));
		spool_discard(&out);
		return -1;
	}
	log_msg(LOGL_INFO, "queue: %s: %s %d recipient(s) to <%s>", a->q->id,
		delayed ? "delay warning for" : "bounced", n, m.sender);
	return 0;
}

/* ---- attempts ----------------------------------------------------------- */

static char last_error[240];            /* the last deferral, for status */
static time_t last_error_at;

/* Postfix-like words for the log: "host mx.example.net said: 450 ...". */
static void log_deferred(const struct attempt *a, int pending, uint64_t delay)
{
	for (int i = 0; i < a->st.n; i++) {
		const struct qstate_target *t = &a->st.t[i];
		if (t->state != QS_PENDING)
			continue;
		snprintf(last_error, sizeof(last_error), "%s: %s: %s%s%s%.100s", a->q->id,
			 t->addr, t->host[0] ? "host " : "", t->host,
			 t->host[0] ? " said: " : "", t->text);
		last_error_at = time(NULL);
		log_msg(LOGL_INFO, "queue: %s: %d target(s) deferred (%s: %s%s%s"
			"%.100s), %s, next try in %llu s", a->q->id, pending, t->addr,
			t->host[0] ? "host " : "", t->host, t->host[0] ? " said: " : "",
			t->text, t->local ? "local problem, not counted as an attempt" :
			"attempt counted", (unsigned long long)delay);
		return;
	}
}

/* Seconds until the next try: queue_retry MIN doubling per attempt up to
 * MAX; after a run that failed only on this side, MIN but at most
 * QUEUE_LOCAL_RETRY. */
static uint64_t retry_delay(const struct qmsg *q, int counted)
{
	uint64_t delay = conf->retry_min;

	if (!counted)
		return delay < QUEUE_LOCAL_RETRY ? delay : QUEUE_LOCAL_RETRY;
	for (int i = 1; i < q->attempts && delay < conf->retry_max; i++)
		delay *= 2;
	return delay > conf->retry_max ? conf->retry_max : delay;
}

static void rescan(void);
static void scan_queue(void);
static int keep_in_bad(const struct qmsg *q, const char *suffix,
		       const char *why, const char *advice);

static void attempt_end(struct attempt *a)
{
	struct qmsg *q = a->q;
	time_t now = time(NULL);
	int pending = 0, failed = 0;
	char path[QUEUE_PATH];

	/* Targets no longer in the envelope (aliases changed) that were
	 * never finished are dropped; finished ones stay on record. */
	for (int i = 0; i < a->st.n; i++) {
		struct qstate_target *t = &a->st.t[i];
		if (!a->built[i] && t->state == QS_PENDING && !a->overflow) {
			a->st.t[i] = a->st.t[--a->st.n];
			a->built[i] = a->built[a->st.n];
			i--;
			continue;
		}
		pending += t->state == QS_PENDING;
		failed += t->state == QS_FAILED;
	}
	if (a->reached || (a->delivered && !pending)) {
		q->attempts++;
		q->local_fails = 0;
	} else if (pending) {
		q->local_fails++;
	}
	if (pending && now - q->arrival >= (time_t)conf->queue_lifetime) {
		for (int i = 0; i < a->st.n; i++) {
			struct qstate_target *t = &a->st.t[i];
			if (t->state != QS_PENDING)
				continue;
			t->state = QS_FAILED;
			snprintf(t->status, sizeof(t->status), "4.4.7");
			if (!t->text[0])
				snprintf(t->text, sizeof(t->text), "not delivered "
					 "within queue_lifetime");
			if (!t->code)
				t->code = 451;
			failed++;
		}
		log_msg(LOGL_INFO, "queue: %s: expired after %d attempt(s)", q->id,
			q->attempts);
		pending = 0;
	}
	if (failed) {
		int r = dsn(a, 0);

		if (r == 0) {
			for (int i = 0; i < a->st.n; i++)
				if (a->st.t[i].state == QS_FAILED)
					a->st.t[i].state = QS_BOUNCED;
			failed = 0;
		}
		/* From <>: kept once nothing is pending (the failed
		 * targets are reported again by each run until then). */
		if (r == 1 && !pending &&
		    keep_in_bad(q, SPOOL_UNDELIVERABLE, "from <> and undeliverable, "
				"nobody to report it to", CONFIG_MAILBOXES ?
				"give root and postmaster a mailbox in aliases; postie -t checks" :
				"its recipients failed: see the lines above") == 0) {
			qpath(path, sizeof(path), q->id, ".st");
			unlink(path);
			fsync_dir(qdir);
			qremove(q);
			goto out;
		}
	}
	if (pending && conf->delay_warning && !q->warned &&
	    now - q->arrival >= (time_t)conf->delay_warning && dsn(a, 1) == 0)
		q->warned = 1;
	/* Targets beyond the table were never recorded, so never tried:
	 * the message is kept rather than called done (if it cannot be
	 * moved, it stays queued and the next run tries again). */
	if (!pending && !failed && a->overflow) {
		if (keep_in_bad(q, ".overflow", "more targets after alias expansion "
				"than a message holds (CONFIG_SMTP_MAX_RCPT), the rest "
				"never sent", "send it again to the rest") == 0) {
			qpath(path, sizeof(path), q->id, ".st");
			unlink(path);
			fsync_dir(qdir);
			qremove(q);
			goto out;
		}
		pending = 1;
	}
	if (!pending && !failed) {
		qpath(path, sizeof(path), q->id, "");
		unlink(path);
		qpath(path, sizeof(path), q->id, ".st");
		unlink(path);
		fsync_dir(qdir);
		log_msg(LOGL_INFO, "queue: %s: done after %d attempt(s)", q->id,
			q->attempts);
		qremove(q);
	} else {
		/* A bounce that could not be written is retried like mail. */
		uint64_t delay = retry_delay(q, a->reached || !pending);
		q->next = now + (time_t)delay;
		q->active = 0;
		if (state_save(a) != 0)
			log_msg(LOGL_ERR, "queue: %s: cannot save state: %s (targets "
				"may be tried again)", q->id, strerror(errno));
		if (pending)
			log_deferred(a, pending, delay);
	}
out:
	close(a->f.fd);
	a->f.fd = -1;
	a->busy = 0;
	if (spilled)
		rescan();
	kick();
}


/* "250 2.1.5 Ok" (a server's reply) or "4.4.1 connect to ...: refused"
 * (smtp_out's own reason) into status and words. */
static void job_result(struct attempt *a, struct qstate_target *t, int code,
		       const char *d)
{
	const struct smtpout_job *j = &a->job;
	char status[8];
	size_t sl;
	int reply = d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' &&
		    d[2] >= '0' && d[2] <= '9' && (d[3] == ' ' || d[3] == '-' ||
						    d[3] == '\0');
	const char *st = reply ? (d[3] ? d + 4 : d + 3) : d;

	sl = strcspn(st, " ");
	if (sl >= 5 && sl < sizeof(status) && st[0] >= '2' && st[0] <= '5' &&
	    st[1] == '.' && st[0] - '0' == code / 100) {
		memcpy(status, st, sl);
		status[sl] = '\0';
	} else {
		snprintf(status, sizeof(status), "%d.0.0", code / 100 % 10);
		sl = 0;
	}
	if (reply) {
		const char *host = j->remote_name[0] ? j->remote_name : j->remote;
		set_target(a, t, code, status, host, d, 0);
	} else {
		st += sl;
		while (*st == ' ')
			st++;
		set_target(a, t, code, status, NULL, st, j->local);
	}
}

static void job_done(struct smtpout_job *job)
{
	struct attempt *a = job->owner;

	for (int i = 0; i < job->n; i++)
		job_result(a, &a->st.t[a->job_targets[i]], job->code[i],
			   job->diag[i]);
	next_group(a);
}

/* Starts an SMTP session for the next domain with pending remote targets,
 * or ends the attempt. */
static void next_group(struct attempt *a)
{
	struct smtpout_job *j = &a->job;
	const char *dom = NULL;

	memset(j, 0, sizeof(*j));
	for (int i = 0; i < a->st.n; i++) {
		struct qstate_target *t = &a->st.t[i];
		const char *at;

		if (t->state != QS_PENDING || is_local_target(t) || a->tried[i] ||
		    !a->built[i])
			continue;
		at = strrchr(t->addr, '@');
		if (!dom) {
			dom = conf->smarthost[0] ? "" : at ? at + 1 : "";
			str_copy(j->domain, sizeof(j->domain), dom, strlen(dom));
		} else if (!conf->smarthost[0] && strcasecmp(at ? at + 1 : "", dom) != 0) {
			continue;
		}
		if (j->n == SMTPOUT_RCPT_MAX)
			break;
		a->tried[i] = 1;
		a->job_targets[j->n] = i;
		str_copy(j->rcpt[j->n], sizeof(j->rcpt[0]), t->addr, strlen(t->addr));
		j->n++;
	}
	if (j->n == 0) {
		attempt_end(a);
		return;
	}
	str_copy(j->sender, sizeof(j->sender), a->sender, strlen(a->sender));
	j->fd = a->f.fd;
	j->data_off = a->f.data_off;
	j->data_len = a->f.size - a->f.data_off;
	j->done = job_done;
	j->owner = a;
	if (smtpout_start(j) != 0) {
		for (int i = 0; i < j->n; i++)
			set_target(a, &a->st.t[a->job_targets[i]], 451, "4.4.5", NULL,
				   "no outgoing session free", 1);
		next_group(a);
	}
}

static void attempt_start(struct qmsg *q)
{
	struct attempt *a = NULL;
	char path[QUEUE_PATH];
	struct stat st;

	for (size_t i = 0; i < ARRAY_LEN(attempts) && !a; i++)
		if (!attempts[i].busy)
			a = &attempts[i];
	if (!a)
		return;
	a->q = q;
	a->nrcpt = 0;
	a->overflow = 0;
	a->reached = a->delivered = 0;
	a->sender[0] = '\0';
	memset(a->tried, 0, sizeof(a->tried));
	memset(a->built, 0, sizeof(a->built));
	qpath(path, sizeof(path), q->id, "");
	a->f.fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (a->f.fd < 0 || fstat(a->f.fd, &st) != 0 ||
	    spool_read_envelope(&a->f, on_envelope, a) != 0 || a->nrcpt == 0) {
		log_msg(LOGL_ERR, "queue: %s: unreadable (%s); moving it aside",
			q->id, a->f.fd < 0 ? strerror(errno) : "bad format");
		if (a->f.fd >= 0)
			close(a->f.fd);
		char bad[QUEUE_PATH + 8];
		snprintf(bad, sizeof(bad), "%s/.bad-%s", qdir, q->id);
		rename(path, bad);
		qremove(q);
		return;
	}
	a->f.size = st.st_size;
	a->busy = 1;
	q->active = 1;
	/* What earlier runs found (a missing or unreadable state: none). */
	int dfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || qstate_load(dfd, q->id, &a->st) < 0)
		qstate_init(&a->st, q->arrival);
	if (dfd >= 0)
		close(dfd);
	build_targets(a);
	if (a->overflow)
		log_msg(LOGL_WARN, "queue: %s: more than %d targets after alias "
			"expansion; the rest are not sent", q->id, QUEUE_TARGETS_MAX);
	a->local_i = 0;
	a->appending = 0;
	a->lock_retry = a->lock_until = 0;
	local_next(a);
}

/* ---- the runner --------------------------------------------------------- */

static int free_slots(void)
{
	int n = 0;

	for (size_t i = 0; i < ARRAY_LEN(attempts); i++)
		n += !attempts[i].busy;
	return n;
}

/* Starts every due message a slot is free for and sets the timer to the
 * earliest one not due yet: no deadline when the queue is empty or
 * everything due waits on a slot (an attempt's end kicks the runner).
 * An attempt may end inside attempt_start (local targets only, every
 * target already done, an unreadable file): its slot is free again, so
 * the slots are counted afresh, never by subtracting per start; the
 * kick() of such an end is overwritten below, so the loop itself must
 * go on while a slot is free. */
static void schedule(void)
{
	time_t now = time(NULL), first = 0;

	for (int i = 0; i < qcount && free_slots() > 0; i++) {
		struct qmsg *q = &qtab[i];
		if (q->active)
			continue;
		if (q->next <= now) {
			attempt_start(q);
			i = -1;         /* the table may have changed */
			now = time(NULL);
			first = 0;
			continue;
		}
		if (!first || q->next < first)
			first = q->next;
	}
	timer.deadline = first ? now_ms() + (int64_t)(first - now) * 1000 : 0;
	for (size_t i = 0; i < ARRAY_LEN(attempts); i++) {
		const struct attempt *a = &attempts[i];
		int64_t at = a->appending ? now_ms() : a->lock_retry;
		if (a->busy && at && (!timer.deadline || at < timer.deadline))
			timer.deadline = at;    /* a mailbox to go on with */
	}
}

static void on_timer(struct watcher *w)
{
	(void)w;
	/* Mailboxes being appended to go on, one step each; busy ones are
	 * looked at again when their time comes. */
	for (size_t i = 0; i < ARRAY_LEN(attempts); i++)
		if (attempts[i].busy && (attempts[i].appending ||
		    (attempts[i].lock_retry && now_ms() >= attempts[i].lock_retry)))
			local_next(&attempts[i]);
	schedule();
}

void relay_run_now(void)
{
	if (spilled)
		scan_queue();
	for (int i = 0; i < qcount; i++)
		qtab[i].next = 0;
	pickup_all();
	schedule();
}

int relay_size(void)
{
	return qcount;
}

time_t relay_oldest(void)
{
	time_t oldest = 0;

	for (int i = 0; i < qcount; i++)
		if (!oldest || qtab[i].arrival < oldest)
			oldest = qtab[i].arrival;
	return oldest;
}

const char *relay_last_error(time_t *when)
{
	*when = last_error_at;
	return last_error;
}

/* ---- maildrop ----------------------------------------------------------- */

struct pick {
	int n_rcpt;
	int has_sender, has_uid;
	long long uid;
	char sender[CONFIG_SMTP_PATH_MAX + 1];
	const char *why;        /* what is wrong, for the log */
};

static int on_pick(void *ctx, char kind, const char *val, size_t len)
{
	struct pick *p = ctx;
	char tmp[CONFIG_SMTP_PATH_MAX + 3];
	struct addr a;

	if (len > CONFIG_SMTP_PATH_MAX || memchr(val, '\0', len)) {
		p->why = "an envelope line too long or with a NUL byte";
		return -1;
	}
	switch (kind) {
	case 'F':
		if (p->has_sender++) {
			p->why = "two F (sender) lines";
			return -1;
		}
		str_copy(p->sender, sizeof(p->sender), val, len);
		return 0;
	case 'U':
		if (p->has_uid++ || len == 0 || len > 10 ||
		    strspn(val, "0123456789") < len) {
			p->why = "a bad or second U (uid) line";
			return -1;
		}
		p->uid = strtoll(val, NULL, 10);
		return 0;
	case 'R':
		snprintf(tmp, sizeof(tmp), "<%.*s>", (int)len, val);
		if (addr_parse_path(tmp, strlen(tmp), &a, 1) < 0) {
			p->why = "a recipient that is not an address";
			return -1;
		}
		p->n_rcpt++;
		return 0;
	default:
		p->why = "an envelope line sendmail does not write";
		return -1;
	}
}

/* What is wrong with maildrop file f (st its fstat), or NULL when the
 * daemon may take it: the envelope sendmail writes (F, R..., U, D), U
 * the owner's uid, the message starting with sendmail's Received field
 * for that uid and this file name, a sender the owner may use
 * (store/maildrop has the rules). */
static const char *pick_check(struct spool_file *f, const struct stat *st,
			      const char *name, struct pick *p)
{
	static char why[200];
	char head[MAILDROP_HEAD_MAX];
	ssize_t n;

	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_nlink != 1)
		return "a file with more than one link";
	if ((uint64_t)st->st_size > conf->max_message_size + 65536)
		return "bigger than max_message_size";
	if (spool_read_envelope_all(f, on_pick, p) != 0)
		return p->why ? p->why : "no envelope (F, R and U lines, then D)";
	if (!p->has_sender || p->n_rcpt == 0 || !p->has_uid)
		return !p->has_sender ? "no F (sender) line" : p->n_rcpt == 0 ?
		       "no recipients" : "no U (uid) line";
	if (p->uid != (long long)st->st_uid) {
		snprintf(why, sizeof(why), "the U line says uid %lld, the file "
			 "belongs to uid %u", p->uid, (unsigned)st->st_uid);
		return why;
	}
	n = pread(f->fd, head, sizeof(head), f->data_off);
	if (n < 0 || maildrop_check_received(head, (size_t)n, st->st_uid, name) != 0)
		return "the message does not start with the Received: line "
		       "sendmail writes for its owner and this file";
	if (!maildrop_sender_ok(conf, p->sender, st->st_uid,
				st->st_uid == 0 || st->st_uid == geteuid())) {
		char shown[3 * 80 + 8];
		snprintf(why, sizeof(why), "sender <%s> is not the owner's own "
			 "address (sender_login_check)",
			 str_printable(shown, sizeof(shown), p->sender,
				       strnlen(p->sender, 80)));
		return why;
	}
	return NULL;
}

/* Moves the file `from` into spool_dir/bad/ (0700, made when first
 * needed) as NAME (NAME.1 ... when taken): the number of the suffix,
 * or -1 with errno set. */
static int move_to_bad(const char *from, const char *name)
{
	char to[QUEUE_PATH + 8];
	int i;

	if (mkdir(baddir, 0700) != 0 && errno != EEXIST)
		return -1;
	for (i = 0; i < 10; i++) {
		if (i)
			snprintf(to, sizeof(to), "%s/%s.%d", baddir, name, i);
		else
			snprintf(to, sizeof(to), "%s/%s", baddir, name);
		if (rename_noreplace(AT_FDCWD, from, AT_FDCWD, to) == 0) {
			fsync_dir(baddir);
			return i;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* A maildrop file the daemon will not take: moved out of the users'
 * reach into bad/ under its own name, never deleted, with one log line
 * that says why. */
static void set_aside(const char *name, const char *shown, long long uid,
		      const char *why)
{
	char from[QUEUE_PATH], to[16] = "";
	int i;

	snprintf(from, sizeof(from), "%s/%s", dropdir, name);
	i = move_to_bad(from, name);
	if (i < 0) {
		log_msg(LOGL_ERR, "maildrop: %s from uid %lld refused: %s; cannot "
			"move it to %s: %s (left in the maildrop)", shown, uid,
			why, baddir, strerror(errno));
		return;
	}
	/* The name as shown (escaped), never the raw one. */
	if (i)
		snprintf(to, sizeof(to), ".%d", i);
	log_msg(LOGL_WARN, "maildrop: %s from uid %lld refused: %s; moved to "
		"%s/%s%s", shown, uid, why, baddir, shown, to);
}

/* A message the queue cannot finish, kept in bad/ as ID + suffix rather
 * than dropped, its state file removed by the caller: a message from <>
 * (a bounce, a delay warning, another server's DSN) whose recipients
 * failed has nobody to be reported to (ID.undeliverable, which mailq
 * counts); one whose alias expansion overflowed the table
 * (ID.overflow). 0, or -1 when it stays queued. */
static int keep_in_bad(const struct qmsg *q, const char *suffix,
		       const char *why, const char *advice)
{
	char from[QUEUE_PATH], name[SPOOL_NAME_MAX + 16], n[16] = "";
	int i;

	qpath(from, sizeof(from), q->id, "");
	snprintf(name, sizeof(name), "%s%s", q->id, suffix);
	i = move_to_bad(from, name);
	if (i < 0) {
		log_msg(LOGL_ERR, "queue: %s: %s; cannot move it to %s: %s (kept "
			"in the queue)", q->id, why, baddir, strerror(errno));
		return -1;
	}
	if (i)
		snprintf(n, sizeof(n), ".%d", i);
	log_msg(LOGL_WARN, "queue: %s: %s: kept as %s/%s%s (%s)", q->id, why,
		baddir, name, n, advice);
	return 0;
}

/* Moves one maildrop file into the queue; bad files go to bad/. */
static void pickup(const char *name)
{
	char from[QUEUE_PATH], to[QUEUE_PATH], id[SPOOL_NAME_MAX];
	struct spool_file f = { .fd = -1 };
	struct pick p = { 0 };
	struct stat st;
	const char *why;
	/* Any local user names maildrop files: escaped for the log. */
	char shown[3 * SPOOL_NAME_MAX + 16];

	str_printable(shown, sizeof(shown), name, strlen(name));
	snprintf(from, sizeof(from), "%s/%s", dropdir, name);
	f.fd = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (f.fd < 0) {
		int e = errno;
		if (e == ENOENT || lstat(from, &st) != 0)
			return;         /* gone meanwhile */
		set_aside(name, shown, (long long)st.st_uid, e == ELOOP ?
			  "a symbolic link" : strerror(e));
		return;
	}
	if (fstat(f.fd, &st) != 0) {
		close(f.fd);
		return;
	}
	why = pick_check(&f, &st, name, &p);
	close(f.fd);
	if (why) {
		set_aside(name, shown, (long long)st.st_uid, why);
		return;
	}
	/* Never over a queued message (see queue_commit): a taken id gets
	 * a new one, a bounded number of times. */
	for (int tries = 0;; tries++) {
		spool_name(id, sizeof(id), "m");
		qpath(to, sizeof(to), id, "");
		if (rename_noreplace(AT_FDCWD, from, AT_FDCWD, to) == 0)
			break;
		if (errno != EEXIST || tries >= 8) {
			log_msg(LOGL_ERR, "maildrop: %s: cannot move into the "
				"queue: %s", shown, strerror(errno));
			return;
		}
	}
	if (fsync_dir(qdir) != 0) {
		log_msg(LOGL_ERR, "maildrop: %s: cannot move into the queue: %s",
			shown, strerror(errno));
		return;
	}
	log_msg(LOGL_INFO, "maildrop: %s from uid %d queued as %s", shown,
		(int)st.st_uid, id);
	qadd(id, time(NULL), 0, 0);
}

/* ".runq-UID-PID" from `sendmail -q` run by a user who may not signal
 * the daemon: removed, and the queue runs now unless a request was
 * honoured less than QUEUE_RUNQ_GAP seconds ago (any user may ask). */
static int runq_request(int dfd, const char *name)
{
	static int64_t last;
	char shown[3 * SPOOL_NAME_MAX + 16];

	if (strncmp(name, ".runq-", 6) != 0)
		return 0;
	unlinkat(dfd, name, 0);
	if (last && now_ms() - last < QUEUE_RUNQ_GAP * 1000)
		return 0;
	last = now_ms();
	log_msg(LOGL_INFO, "queue run requested (%s)",
		str_printable(shown, sizeof(shown), name + 1, strlen(name + 1)));
	return 1;
}

/* A ".NAME" sendmail never finished (killed with -9) is junk after a day. */
static void stale_dotfile(int dfd, const char *name)
{
	struct stat st;

	if (strncmp(name, ".bad-", 5) == 0 || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    time(NULL) - st.st_mtime > 86400)
		unlinkat(dfd, name, 0);
}

/* 1 when a user asked for a queue run (see runq_request). */
static int pickup_all(void)
{
	DIR *d = opendir(dropdir);
	struct dirent *e;
	int n = 0, run_now = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL && n < 1000) {
		if (e->d_name[0] == '.') {
			run_now |= runq_request(dirfd(d), e->d_name);
			stale_dotfile(dirfd(d), e->d_name);
			continue;
		}
		pickup(e->d_name);
		n++;
	}
	closedir(d);
	return run_now;
}

static void on_notify(struct watcher *w, short revents)
{
	char buf[4096];

	(void)revents;
	/* The events only say "look": the directory is the truth. */
	while (read(w->fd, buf, sizeof(buf)) > 0)
		;
	if (pickup_all()) {
		relay_run_now();
		return;
	}
	schedule();
}

/* ---- start ---------------------------------------------------------------- */

/* A state file being written (ID.st.new) or one whose message is gone
 * (a crash between the two unlinks at the end) is never a commit point:
 * removed at start so the queue holds nothing stale. True for any state
 * name, which the caller skips. */
static int leftover(int dfd, const char *name, size_t l)
{
	char id[SPOOL_NAME_MAX];
	struct stat st;

	if (l > 4 && strcmp(name + l - 4, ".new") == 0) {
		log_msg(LOGL_INFO, "queue: removing %s left by a crash", name);
		unlinkat(dfd, name, 0);
		return 1;
	}
	if (l <= 3 || strcmp(name + l - 3, ".st") != 0)
		return 0;
	memcpy(id, name, l - 3);
	id[l - 3] = '\0';
	if (fstatat(dfd, id, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
		log_msg(LOGL_INFO, "queue: removing %s left by a crash", name);
		unlinkat(dfd, name, 0);
	}
	return 1;
}

/* Adds the queue files not in the table yet (at start, and when the
 * table had no room for all of them and has some now); their arrival and
 * attempts come back from their state files. */
static void scan_queue(void)
{
	DIR *d = opendir(qdir);
	struct dirent *e;

	if (!d)
		return;
	spilled = 0;
	while ((e = readdir(d)) != NULL) {
		char path[QUEUE_PATH];
		struct stat st;
		struct qmsg *q;
		size_t l = strlen(e->d_name);
		int known = 0;

		if (e->d_name[0] == '.' || l >= SPOOL_NAME_MAX)
			continue;
		if (leftover(dirfd(d), e->d_name, l))
			continue;
		for (int i = 0; i < qcount && !known; i++)
			known = strcmp(qtab[i].id, e->d_name) == 0;
		if (known)
			continue;
		qpath(path, sizeof(path), e->d_name, "");
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		q = qadd(e->d_name, st.st_mtime, 0, 0);
		if (!q)
			break;
		state_restore(q, dirfd(d));
	}
	closedir(d);
}

/* Room again after the table overflowed: the files left on disk join
 * once a quarter of the table is free (not on every removal). */
static void rescan(void)
{
	if (qcount <= CONFIG_QUEUE_MAX - CONFIG_QUEUE_MAX / 4)
		scan_queue();
}

int relay_init(const char *spool_dir)
{
	if (queue_open(spool_dir) != 0)
		return -1;
	snprintf(qdir, sizeof(qdir), "%s/queue", spool_dir);
	snprintf(dropdir, sizeof(dropdir), "%s/maildrop", spool_dir);
	snprintf(baddir, sizeof(baddir), "%s/bad", spool_dir);
	queue_on_commit(on_commit);
	smtpout_init();
	timer.fd = -1;
	timer.on_timeout = on_timer;
	loop_add(&timer);
	notify.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (notify.fd >= 0 &&
	    inotify_add_watch(notify.fd, dropdir, IN_MOVED_TO | IN_CLOSE_WRITE) >= 0) {
		notify.events = POLLIN;
		notify.on_io = on_notify;
		notify.on_timeout = on_timer;
		loop_add(&notify);
	} else {
		log_msg(LOGL_WARN, "maildrop: no inotify (%s); `postie sendmail -q` "
			"or SIGUSR1 picks up new mail", strerror(errno));
	}
	scan_queue();
	pickup_all();
	log_msg(LOGL_INFO, "queue: %d message(s) waiting", qcount);
	schedule();
	return 0;
}
