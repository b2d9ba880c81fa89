/* imap_selected — the IMAP server's selected mailbox: how sessions on one
 * mailbox see each other (each its view, one live index), the flag and
 * sequence-number helpers of answers, synchronising with the mailbox
 * (untagged EXPUNGE, EXISTS, FETCH FLAGS), the selected-state commands
 * (FETCH, STORE, SEARCH, UID, CHECK, UNSELECT, EXPUNGE, CLOSE, IDLE) and
 * the crash-safe rewrite of the mbox that EXPUNGE, CLOSE and MOVE run.
 *
 * Limits: IMAP_PEND pending messages, IMAP_PEND_SCAN records a pass. */
#include "proto/imap_int.h"

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
#include "proto/imap.h"
#include "proto/imap_parse.h"
#include "proto/imap_search.h"
#include "proto/mime.h"
#include "proto/sasl.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/users.h"
#include "tls/tls.h"

/* ---- other sessions --------------------------------------------------
 * How sessions on one mailbox see each other (RFC 3501 7.4.1, RFC 7162):
 * - Each session has a view: the index file it last synchronised with
 *   and the mbox file of that moment, both kept open. Its sequence
 *   numbers, UIDs and message bytes come from the view, so another
 *   session's EXPUNGE never renumbers it in the middle of a command and
 *   the bytes of an expunged message stay readable until it is told.
 * - Flags (and keywords, and mod-sequences) have one truth: the live
 *   index, the file now at the index path. Once another session's
 *   EXPUNGE has renamed a new index over the view's, the session opens
 *   the live one (live_check at each command) and reads and writes flags
 *   there by UID. A STORE on a message expunged elsewhere changes
 *   nothing and answers no FETCH for it; the command still answers OK.
 * - EXPUNGE, CLOSE, MOVE and UID EXPUNGE lock the mbox, bring the live
 *   index up to date under the lock and rewrite from it (never from a
 *   stale view), so they do not fail because another session changed
 *   the mailbox. Sequence-number sets still name the view's messages.
 *   Flags stored by others while the rewrite copies go into the new
 *   index before it is renamed (idx_rewrite).
 * - A session learns of expunges and new mail when EXPUNGE responses
 *   are allowed (NOOP, CHECK, IDLE, EXPUNGE, after other commands'
 *   tagged answers at the next sync), never during FETCH, STORE or
 *   SEARCH; flag changes by others come as FETCH FLAGS at the same
 *   points, as many as fit the output buffer (the rest at the next
 *   point; past IMAP_PEND of them by a scan of the view by modseq). A mod-sequence only grows: every change takes the next
 *   value of one counter, above the index's highest. */

int imap_same_mbx(const struct mbx *a, const struct mbx *b)
{
	return strcmp(a->dir, b->dir) == 0 && strcmp(a->name, b->name) == 0;
}

/* Flags of uid changed in session me (new mod-sequence modseq): the
 * others reread and tell. More than IMAP_PEND pending changes turn
 * into a scan of the view for records above pend_since. */
void imap_tell_flags(struct imap_session *me, uint32_t uid, uint64_t modseq)
{
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		struct imap_session *o = &imap_pool[i];
		if (!o->ss.conn || o == me || !o->have_sel || !imap_same_mbx(&o->sel, &me->sel))
			continue;
		o->sel.rd.ncached = 0;
		o->lrd.ncached = 0;
		if (!o->npend && !o->pend_all)
			o->pend_since = modseq ? modseq - 1 : 0;
		if (o->pend_all && !o->pend_scan) {
			;               /* the scan to come covers it */
		} else if (o->npend < IMAP_PEND) {
			o->pend[o->npend++] = uid;
		} else {
			/* (Re)start the scan: it covers the listed ones. */
			o->pend_all = 1;
			o->pend_scan = 0;
			o->npend = 0;
		}
		if (o->ss.state == IMAP_IDLE)
			imap_sync_and_push(o->ss.conn, o);
	}
}

/* The mbox changed (delivery, expunge): sessions on it look again. */
void imap_tell_changed(struct imap_session *me, const char *dir, const char *name)
{
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		struct imap_session *o = &imap_pool[i];
		/* o points into the pool, never NULL; me may be NULL. */
		// cppcheck-suppress nullPointerRedundantCheck
		if (!o->ss.conn || o == me || !o->have_sel ||
		    strcmp(o->sel.dir, dir) != 0 || strcmp(o->sel.name, name) != 0)
			continue;
		o->need_sync = 1;
		o->live_stale = 1;
		if (o->ss.state == IMAP_IDLE)
			imap_sync_and_push(o->ss.conn, o);
	}
}

void imap_notify_mailbox(const char *user)
{
	if (conf && user)
		imap_tell_changed(NULL, conf->mail_dir, user);
}

/* ---- output helpers -------------------------------------------------- */

#define F_RECENT 0x80000000u      /* in answers only, never stored */

char imap_flagbuf[FLAGS_TEXT_MAX];

/* "(\Seen ... kw ...)" into out (FLAGS_TEXT_MAX bytes): system flags f,
 * keywords kw named by table t (NULL: none). Returns its length. */
static size_t flags_text(const struct idx_kw *t, uint32_t f, uint64_t kw, char *out)
{
	struct buf b;

	buf_init(&b, out, FLAGS_TEXT_MAX);
	buf_printf(&b, "(%s%s%s%s%s%s", f & F_RECENT ? "\\Recent " : "",
		   f & IDX_F_SEEN ? "\\Seen " : "",
		   f & IDX_F_ANSWERED ? "\\Answered " : "",
		   f & IDX_F_FLAGGED ? "\\Flagged " : "",
		   f & IDX_F_DELETED ? "\\Deleted " : "",
		   f & IDX_F_DRAFT ? "\\Draft " : "");
	for (unsigned k = 0; t && k < t->n; k++)
		if (kw >> k & 1) {
			buf_add(&b, t->buf + t->off[k], t->len[k]);
			buf_add(&b, " ", 1);
		}
	if (b.len > 1 && out[b.len - 1] == ' ')
		buf_truncate(&b, b.len - 1);
	buf_addc(&b, ')');
	buf_nul(&b);
	return b.len;
}

int imap_get_rec(struct mbx *m, uint32_t i, struct idx_rec *r)
{
	return idx_get(&m->rd, i, r);
}

/* Finds the live index of the selected mailbox (see "other sessions"):
 * the view's own file unless another session replaced it. */
static void live_check(struct imap_session *s)
{
	struct mbx *m = &s->sel;
	char ipath[sizeof(m->dir) + 300];
	unsigned char b[IDX_HDR_SIZE];
	struct stat st, vs;
	struct idx_hdr h;

	s->live_stale = 0;
	if (s->have_sel && imap_kw_reload(m, &s->kw))
		s->kw_news = 1;
	if (!s->have_sel || idx_path(m->dir, m->name, ".idx", ipath, sizeof(ipath), 0) != 0 ||
	    stat(ipath, &st) != 0 || fstat(m->ifd, &vs) != 0)
		return;
	if (st.st_ino == vs.st_ino && st.st_dev == vs.st_dev) {
		if (m->lfd >= 0)
			close(m->lfd);
		m->lfd = -1;
		m->live_gone = 0;
		return;
	}
	if (m->lfd >= 0 && fstat(m->lfd, &vs) == 0 && st.st_ino == vs.st_ino &&
	    st.st_dev == vs.st_dev)
		goto header;
	if (m->lfd >= 0)
		close(m->lfd);
	m->lfd = open(ipath, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (m->lfd < 0)
		return;
header:
	if (pread(m->lfd, b, sizeof(b), 0) != (ssize_t)sizeof(b) ||
	    idx_hdr_decode(b, &h) != 0 || h.uidvalidity != m->hdr.uidvalidity) {
		/* Renumbered by a rebuild: no UID of the view means the
		 * same message there. The next sync says BYE. */
		close(m->lfd);
		m->lfd = -1;
		m->live_gone = 1;
		return;
	}
	m->live_gone = 0;
	idx_reader_init(&s->lrd, m->lfd, h.count);
}

/* Where the flags of view record r are kept: the reader and record
 * number; *live gets that record. -1: expunged elsewhere. */
int imap_live_rec(struct imap_session *s, uint32_t i, const struct idx_rec *r,
		  struct idx_reader **rd, struct idx_rec *live)
{
	int k;

	if (s->live_stale)
		live_check(s);
	if (s->sel.live_gone)
		return -1;
	if (s->sel.lfd < 0) {
		*rd = &s->sel.rd;
		*live = *r;
		return (int)i;
	}
	*rd = &s->lrd;
	k = idx_find(&s->lrd, r->uid, live);
	return k;
}

/* SEARCH KEYWORD: does the message being searched have it? */
int imap_kw_has(void *ctx, const char *name, size_t n)
{
	struct imap_session *s = ctx;
	int k = idx_kw_find(&s->kw, name, n);

	return k >= 0 && (s->job.rec.kw >> k & 1);
}

/* Record i of the view with the flags in force now. */
int imap_get_rec_live(struct imap_session *s, uint32_t i, struct idx_rec *r)
{
	struct idx_reader *rd;
	struct idx_rec l;

	if (imap_get_rec(&s->sel, i, r) != 0)
		return -1;
	if (imap_live_rec(s, i, r, &rd, &l) >= 0) {
		r->flags = l.flags;
		r->kw = l.kw;
		r->modseq = l.modseq;
	} else if (s->sel.lfd >= 0) {
		/* Expunged elsewhere, not yet announced: the view's record
		 * is older than what the client may have seen since, and a
		 * mod-sequence must never go back (RFC 7162 3.1). The live
		 * index's highest is at least the message's last. */
		unsigned char b[IDX_HDR_SIZE];
		struct idx_hdr h;
		if (pread(s->sel.lfd, b, sizeof(b), 0) == (ssize_t)sizeof(b) &&
		    idx_hdr_decode(b, &h) == 0 && h.modseq > r->modseq)
			r->modseq = h.modseq;
	}
	return 0;
}

int imap_is_recent(const struct imap_session *s, uint32_t uid)
{
	return uid >= s->recent_lo && uid < s->recent_hi;
}

/* The flags a client sees: the stored ones plus \Recent. */
static uint32_t view_flags(const struct imap_session *s, const struct idx_rec *r)
{
	return r->flags | (imap_is_recent(s, r->uid) ? F_RECENT : 0);
}

/* "* FLAGS (...)" and PERMANENTFLAGS of the selected mailbox into b:
 * its keywords, and \* while more may be made (RFC 3501 7.2.6). */
void imap_flags_line(const struct imap_session *s, struct buf *b)
{
	const struct idx_kw *t = &s->kw;
	uint64_t all = t->n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << t->n) - 1;
	size_t n = flags_text(t, IDX_F_SEEN | IDX_F_ANSWERED | IDX_F_FLAGGED |
			      IDX_F_DELETED | IDX_F_DRAFT, all, imap_flagbuf);

	buf_adds(b, "* FLAGS ");
	buf_add(b, imap_flagbuf, n);
	buf_adds(b, "\r\n* OK [PERMANENTFLAGS ");
	if (s->sel.readonly) {
		buf_adds(b, "()");
	} else {
		buf_add(b, imap_flagbuf, n - 1);
		/* Through a variable: with IMAP_KEYWORDS_MAX 0, a literal
		 * comparison is "always false" to -Wtype-limits. */
		const unsigned kw_max = CONFIG_IMAP_KEYWORDS_MAX;
		if (t->n < kw_max)
			buf_adds(b, n > 2 ? " \\*" : "\\*");
		buf_addc(b, ')');
	}
	buf_adds(b, "] Flags permitted\r\n");
}

/* The flags of record r as this session shows them, in flagbuf. */
size_t imap_rec_flags(const struct imap_session *s, const struct idx_rec *r)
{
	return flags_text(&s->kw, view_flags(s, r), r->kw, imap_flagbuf);
}

/* A keyword new to this session (defined by it or by another session):
 * "* FLAGS" and PERMANENTFLAGS again, before any FETCH shows it (RFC
 * 3501 7.2.6; clients drop keywords they were not told of). */
static void kw_news_out(struct conn *c, struct imap_session *s)
{
	static char fl[2 * FLAGS_TEXT_MAX + 100];
	struct buf b;

	if (!s->kw_news)
		return;
	buf_init(&b, fl, sizeof(fl));
	imap_flags_line(s, &b);
	if (conn_out_free(c) < b.len + IMAP_REPLY_ROOM)
		conn_flush(c);
	if (c->w.fd >= 0 && conn_out_free(c) >= b.len + IMAP_REPLY_ROOM) {
		conn_write(c, fl, b.len);
		s->kw_news = 0;
	} else if (c->w.fd >= 0 && !conn_out_pending(c)) {
		s->kw_news = 0;     /* longer than the buffer: SELECT tells */
	}
}

/* Sequence number (1-based) of a UID, or 0. */
static uint32_t uid_seq(struct mbx *m, uint32_t uid)
{
	struct idx_rec r;
	int k = idx_find(&m->rd, uid, &r);

	return k < 0 ? 0 : (uint32_t)k + 1;
}

/* First sequence number whose UID >= uid (count + 1 when none). */
static uint32_t uid_lower(struct mbx *m, uint32_t uid)
{
	uint32_t lo = 0, hi = m->hdr.count;
	struct idx_rec r;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (imap_get_rec(m, mid, &r) != 0)
			return m->hdr.count + 1;
		if (r.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1;
}

/* Messages whose UID is in [lo, hi). */
uint32_t imap_uid_count(struct mbx *m, uint32_t lo, uint32_t hi)
{
	uint32_t a = uid_lower(m, lo), b = uid_lower(m, hi);

	return hi > lo && b > a ? b - a : 0;
}

/* New messages (UIDs from `from`) seen by a session that selected the
 * mailbox read-write: it takes them as \Recent unless another session
 * already did. Then "* n RECENT". */
void imap_recent_update(struct conn *c, struct imap_session *s, uint32_t from)
{
	uint32_t old;

	if (!s->sel.readonly && s->recent_hi == from &&
	    idx_take_recent(s->sel.ifd, from, s->sel.hdr.uidnext, &old) == 1)
		s->recent_hi = s->sel.hdr.uidnext;
	conn_printf(c, "* %u RECENT\r\n", imap_uid_count(&s->sel, s->recent_lo, s->recent_hi));
}

/* The next range of sequence numbers of the job's set: 1 or 0 at end. */
int imap_next_range(struct imap_session *s, struct job *j)
{
	struct mbx *m = &s->sel;
	uint32_t lo, hi, n = m->hdr.count;

	for (int guard = 0; guard < 100000; guard++) {
		if (j->uid) {
			struct idx_rec r;
			uint32_t maxuid = 0;
			if (n && imap_get_rec(m, n - 1, &r) == 0)
				maxuid = r.uid;
			/* '*' is the highest UID, so "N:*" with N above every
			 * UID still means the last message; a range without
			 * '*' holds only the UIDs it names (RFC 3501 §6.4.8). */
			if (!seq_next(&j->it, maxuid ? maxuid : 1, &lo, &hi))
				return 0;
			j->cur = uid_lower(m, lo);
			j->hi = uid_lower(m, hi == UINT32_MAX ? hi : hi + 1) - 1;
		} else {
			if (!seq_next(&j->it, n, &lo, &hi))
				return 0;
			j->cur = lo;
			j->hi = hi > n ? n : hi;
		}
		if (j->cur >= 1 && j->cur <= j->hi)
			return 1;
	}
	return 0;
}

/* ---- synchronising with the mailbox --------------------------------- */

/* One FETCH FLAGS line for view record seq - 1 with live flags r.
 * 1 written, 0 no room now (try later), -1 never fits or the
 * connection is gone (skip). */
static int push_one(struct conn *c, struct imap_session *s, uint32_t seq,
		    struct idx_rec *r)
{
	char line[FLAGS_TEXT_MAX + 100];
	int k;

	imap_rec_flags(s, r);
	if (s->condstore)
		k = snprintf(line, sizeof(line), "* %u FETCH (UID %u FLAGS %s MODSEQ (%llu))\r\n",
			     seq, r->uid, imap_flagbuf, (unsigned long long)r->modseq);
	else
		k = snprintf(line, sizeof(line), "* %u FETCH (UID %u FLAGS %s)\r\n",
			     seq, r->uid, imap_flagbuf);
	if (k < 0 || (size_t)k >= sizeof(line))
		return -1;
	if (conn_out_free(c) < (size_t)k + IMAP_REPLY_ROOM)
		conn_flush(c);
	if (c->w.fd < 0)
		return 0;
	if (conn_out_free(c) < (size_t)k + IMAP_REPLY_ROOM)
		return conn_out_pending(c) ? 0 : -1;  /* -1: FETCH tells */
	conn_write(c, line, (size_t)k);
	return 1;
}

/* Pending flag changes by other sessions, as FETCH FLAGS: as many as
 * fit the output buffer with room left for the answer that follows;
 * the rest wait for the next chance (never an overflow, whatever
 * CONN_OUTBUF and however slowly the client reads). Too many to list
 * (pend_all): every view record changed above pend_since, at most
 * IMAP_PEND_SCAN records looked at per call. */
static void push_flags(struct conn *c, struct imap_session *s)
{
	struct idx_rec r;
	int i;

	if (s->pend_all) {
		uint32_t n = 0;
		while (s->pend_scan < s->sel.hdr.count && n++ < IMAP_PEND_SCAN) {
			if (imap_get_rec_live(s, s->pend_scan, &r) != 0 ||
			    r.modseq <= s->pend_since) {
				s->pend_scan++;
				continue;
			}
			if (push_one(c, s, s->pend_scan + 1, &r) == 0)
				return;
			s->pend_scan++;
		}
		if (s->pend_scan < s->sel.hdr.count)
			return;
		s->pend_all = 0;
		s->pend_scan = 0;
		if (!s->npend)
			return;
	}
	for (i = 0; i < s->npend; i++) {
		uint32_t seq = uid_seq(&s->sel, s->pend[i]);
		struct idx_reader *rd;
		struct idx_rec l;
		if (!seq || imap_get_rec(&s->sel, seq - 1, &r) != 0 ||
		    imap_live_rec(s, seq - 1, &r, &rd, &l) < 0)
			continue;       /* expunged: EXPUNGE tells */
		r.flags = l.flags;
		r.kw = l.kw;
		r.modseq = l.modseq;
		if (push_one(c, s, seq, &r) == 0)
			break;
	}
	memmove(s->pend, s->pend + i, (size_t)(s->npend - i) * sizeof(s->pend[0]));
	s->npend -= i;
}

/* Brings the selected mailbox up to date. Starts J_MERGE (the caller
 * must then return) and returns 1 when expunges must be announced; 0
 * when done (EXISTS written if it grew); -1 when the mailbox is gone
 * (BYE written). The mbox lock is only tried: when busy, need_sync stays. */
static int sync_sel(struct conn *c, struct imap_session *s)
{
	struct mbx *m = &s->sel;
	char path[sizeof(m->dir) + IMAP_NAME_MAX + 2];
	struct stat st, ist_old, ist_new;
	struct mbx nm;
	uint32_t oldcount = m->hdr.count, old_next = m->hdr.uidnext;
	int rc;

	live_check(s);
	kw_news_out(c, s);      /* before any FETCH that shows the new ones */
	if (s->npend || s->pend_all)
		push_flags(c, s);
	snprintf(path, sizeof(path), "%s/%s", m->dir, m->name);
	if (stat(path, &st) != 0 ||
	    ((uint64_t)st.st_ino == m->hdr.ino && (uint64_t)st.st_size == m->hdr.end &&
	     !s->need_sync))
		return 0;
	s->need_sync = 0;
	nm = *m;
	nm.mfd = nm.ifd = nm.lfd = -1;
	nm.live_gone = 0;
	if (imap_mbx_begin(s, &nm) != 0) {
		imap_upd_abort(s);
		imap_mbx_close(&nm);
		return 0;
	}
	rc = imap_mbx_step(s, &nm, 1);
	if (rc != IDX_DONE) {
		imap_upd_abort(s);
		imap_mbx_close(&nm);
		if (rc == IDX_AGAIN_LOCK)
			s->need_sync = 1;
		return 0;
	}
	if (nm.hdr.uidvalidity != m->hdr.uidvalidity) {
		imap_mbx_close(&nm);
		conn_printf(c, "* BYE The mailbox was replaced by another program\r\n");
		sess_quit(c);
		return -1;
	}
	if (fstat(m->ifd, &ist_old) == 0 && fstat(nm.ifd, &ist_new) == 0 &&
	    ist_old.st_ino == ist_new.st_ino && ist_old.st_dev == ist_new.st_dev &&
	    nm.hdr.count >= oldcount) {
		/* Appended in place: only new messages. */
		imap_mbx_close(m);
		*m = nm;
		idx_reader_init(&m->rd, m->ifd, m->hdr.count);
		if (m->hdr.count != oldcount) {
			conn_printf(c, "* %u EXISTS\r\n", m->hdr.count);
			imap_recent_update(c, s, old_next);
		}
		return 0;
	}
	/* Rewritten: compare the old records with the new ones. */
	s->old_ifd = m->ifd;
	idx_reader_init(&s->oldrd, s->old_ifd, oldcount);
	close(m->mfd);
	if (m->lfd >= 0)
		close(m->lfd);
	*m = nm;
	idx_reader_init(&m->rd, m->ifd, m->hdr.count);
	memset(&s->job, 0, sizeof(s->job));
	s->job.old_next = old_next;
	s->job.oldrd = &s->oldrd;
	s->job.newcount = m->hdr.count;
	return 1;
}

void imap_sync_and_push(struct conn *c, struct imap_session *s)
{
	int rc = sync_sel(c, s);

	if (rc == 1) {
		/* In IDLE: announce without a tagged answer, then idle on
		 * (also when the client reads slowly and the job outlives
		 * this call). */
		s->job.kind = J_MERGE;
		s->merge_idle = 1;
		sess_enter(c, IMAP_BUSY);
		imap_job_step(c, s);
	}
	if (c->w.fd >= 0 && s->need_sync && s->ss.state == IMAP_IDLE)
		conn_deadline_ms(c, IMAP_LOCK_RETRY_MS);
	if (c->w.fd >= 0)
		conn_flush(c);
}

/* IDLE's timer: another program changed the mbox (inode, size or
 * mtime not the view's) when no hook told us; one stat when not. A
 * missing mbox is left to the next command. */
void imap_idle_poll(struct conn *c, struct imap_session *s)
{
	const struct mbx *m = &s->sel;
	char path[sizeof(m->dir) + IMAP_NAME_MAX + 2];
	struct stat st;

	if (s->have_sel && !s->need_sync) {
		snprintf(path, sizeof(path), "%s/%s", m->dir, m->name);
		if (stat(path, &st) == 0 && ((uint64_t)st.st_ino != m->hdr.ino ||
		    (uint64_t)st.st_dev != m->hdr.dev ||
		    (uint64_t)st.st_size != m->hdr.end ||
		    (uint64_t)st.st_mtim.tv_sec * 1000000000u +
		    (uint64_t)st.st_mtim.tv_nsec != m->hdr.mtime_ns))
			s->need_sync = 1;
	}
	if (s->need_sync)
		imap_sync_and_push(c, s);
}

/* NOOP, CHECK and the like: sync, then the tagged OK. */
void imap_sync_then_ok(struct conn *c, struct imap_session *s, const char *done)
{
	int rc = 0;

	if (s->have_sel)
		rc = sync_sel(c, s);
	if (rc < 0)
		return;
	if (rc == 1) {
		s->job.kind = J_MERGE;
		snprintf(s->done_text, sizeof(s->done_text), "%s", done);
		sess_enter(c, IMAP_BUSY);
		imap_job_step(c, s);
		return;
	}
	imap_tagged(c, s, "OK", "%s", done);
}

/* ---- selected state --------------------------------------------------- */

static int kw_path(const struct mbx *m, char *out, size_t n)
{
	return idx_path(m->dir, m->name, ".kw", out, n, 0);
}

/* The keyword bits of a flag list; with add, names new to the mailbox
 * are added (up to CONFIG_IMAP_KEYWORDS_MAX). 0, or -1 with the NO sent. */
static int kw_bits(struct conn *c, struct imap_session *s, const struct kwargs *a,
		   int add, uint64_t *bits)
{
	char path[FOLDER_PATH_MAX + 320];
	unsigned known;

	*bits = 0;
	if (a->n == 0 || CONFIG_IMAP_KEYWORDS_MAX == 0)
		return 0;
	if (kw_path(&s->sel, path, sizeof(path)) != 0) {
		imap_tagged(c, s, "NO", "[SERVERBUG] Cannot keep keywords");
		return -1;
	}
	if (idx_kw_changed(path, &s->kw)) {
		idx_kw_load(path, &s->kw);
		s->kw_news = 1;
	}
	known = s->kw.n;
	/* All the new names fit, or none is added (a refused STORE leaves
	 * the table as it was). */
	if (add && idx_kw_add_all(path, &s->kw, a->p, a->len, a->n,
				  CONFIG_IMAP_KEYWORDS_MAX) != 0) {
		imap_kw_refused(c, s, errno);
		return -1;
	}
	if (s->kw.n != known)
		s->kw_news = 1;         /* this STORE made them */
	for (int i = 0; i < a->n; i++) {
		int k = idx_kw_find(&s->kw, a->p[i], a->len[i]);
		if (k >= 0)
			*bits |= (uint64_t)1 << k;
	}
	return 0;
}

/* The NO of keywords that cannot be added (errno e of idx_kw_add_all). */
void imap_kw_refused(struct conn *c, struct imap_session *s, int e)
{
	if (e == ENOSPC || e == ENAMETOOLONG)
		imap_tagged(c, s, "NO", "[LIMIT] %s (at most %d keywords in a "
			    "mailbox, %d octets each)", e == ENOSPC ?
			    "Too many keywords in this mailbox" : "Keyword too long",
			    CONFIG_IMAP_KEYWORDS_MAX, IDX_KW_NAME_MAX);
	else
		imap_tagged(c, s, "NO", "[SERVERBUG] Cannot keep keywords");
}

static void cmd_fetch(struct conn *c, struct imap_session *s, struct ip *ip, int uid)
{
	const char *set;
	size_t sl;

	if (ip_sp(ip) || ip_seqset(ip, &set, &sl) || ip_sp(ip) ||
	    ip_fetch_atts(ip, &s->q.fr)) {
		imap_tagged(c, s, "BAD", "Syntax: FETCH set items (%s)",
			    ip->err ? ip->err : "?");
		return;
	}
	if (s->q.fr.changedsince || (s->q.fr.attrs & FA_MODSEQ)) {
		struct fetch_req *fr = &s->q.fr;
		if (!CONFIG_IMAP_CONDSTORE) {
			imap_bad(c, s, "MODSEQ and CHANGEDSINCE need CONDSTORE");
			return;
		}
		s->condstore = 1;
		if (!(fr->attrs & FA_MODSEQ) && fr->nitems < IMAP_FETCH_ITEMS) {
			fr->items[fr->nitems].attr = FA_MODSEQ;
			fr->items[fr->nitems++].sec = 0;
			fr->attrs |= FA_MODSEQ;
		}
	}
	if (s->sel.readonly)
		s->q.fr.sets_seen = 0;
	live_check(s);
	kw_news_out(c, s);
	memset(&s->job, 0, sizeof(s->job));
	s->job.uid = uid;
	seq_iter_init(&s->job.it, set, sl);
	if (!uid && imap_seqs_exist(c, s, set, sl) != 0)
		return;
	imap_job_start(c, s, J_FETCH, uid ? "UID FETCH completed" : "FETCH completed");
}

/* A flag list: "(...)", "()" or flags without parentheses. System
 * flags into *flags; keywords into kw (NULL: accepted and dropped). */
int imap_flag_list(struct ip *ip, uint32_t *flags, struct kwargs *kw)
{
	int paren = ip_peek(ip) == '(';
	const char *w;
	size_t n;

	*flags = 0;
	if (kw)
		kw->n = 0;
	if (paren)
		ip->p++;
	if (paren && ip_peek(ip) == ')') {
		ip->p++;
		return 0;
	}
	for (int guard = 0; guard < 64; guard++) {
		int sys = ip_peek(ip) == '\\';
		if (sys)
			ip->p++;
		if (ip_atom(ip, &w, &n, 0))
			return -1;
		if (sys) {
			if (str_ieq(w, n, "Seen")) *flags |= IDX_F_SEEN;
			else if (str_ieq(w, n, "Answered")) *flags |= IDX_F_ANSWERED;
			else if (str_ieq(w, n, "Flagged")) *flags |= IDX_F_FLAGGED;
			else if (str_ieq(w, n, "Deleted")) *flags |= IDX_F_DELETED;
			else if (str_ieq(w, n, "Draft")) *flags |= IDX_F_DRAFT;
			else if (!str_ieq(w, n, "Recent"))
				return -1;
		}
		/* A bare NIL is the keyword "NIL" (RFC 3501: flag-keyword
		 * is an atom; Dovecot does the same). */
		if (!sys && kw) {
			int k;
			for (k = 0; k < kw->n; k++)
				if (kw->len[k] == n && strncasecmp(kw->p[k], w, n) == 0)
					break;
			if (k == kw->n) {
				if (kw->n == IDX_KW_MAX)
					return -1;
				kw->p[kw->n] = w;
				kw->len[kw->n++] = n;
			}
		}
		if (ip_peek(ip) != ' ')
			break;
		ip->p++;
	}
	if (paren)
		return ip_char(ip, ')');
	return 0;
}

static void cmd_store(struct conn *c, struct imap_session *s, struct ip *ip, int uid)
{
	const char *set, *w;
	size_t sl, wl;
	struct job *j = &s->job;
	static struct kwargs kwa;

	memset(j, 0, sizeof(*j));
	if (ip_sp(ip) || ip_seqset(ip, &set, &sl) || ip_sp(ip)) {
		imap_bad(c, s, "Syntax: STORE set item flags");
		return;
	}
	if (ip_peek(ip) == '(') {
		/* RFC 7162: (UNCHANGEDSINCE n) */
		ip->p++;
		if (!CONFIG_IMAP_CONDSTORE || ip_atom(ip, &w, &wl, 0) ||
		    !str_ieq(w, wl, "UNCHANGEDSINCE") || ip_sp(ip) ||
		    ip_number64(ip, &j->since) || ip_char(ip, ')') || ip_sp(ip)) {
			imap_bad(c, s, "Syntax: STORE set (UNCHANGEDSINCE n) item flags");
			return;
		}
		j->unchanged = 1;
		s->condstore = 1;
	}
	if (ip_peek(ip) == '+' || ip_peek(ip) == '-')
		j->mode = *ip->p++;
	if (ip_atom(ip, &w, &wl, 0) || ip_sp(ip) || imap_flag_list(ip, &j->flags, &kwa) || ip_end(ip) ||
	    !(str_ieq(w, wl, "FLAGS") || str_ieq(w, wl, "FLAGS.SILENT"))) {
		imap_bad(c, s, "Syntax: STORE set [+-]FLAGS[.SILENT] (flags)");
		return;
	}
	j->silent = wl == 12;
	if (s->sel.readonly) {
		imap_tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	if (kw_bits(c, s, &kwa, j->mode != '-', &j->kw) != 0)
		return;
	j->uid = uid;
	live_check(s);
	kw_news_out(c, s);
	seq_iter_init(&j->it, set, sl);
	if (!uid && imap_seqs_exist(c, s, set, sl) != 0)
		return;
	j->kind = J_STORE;
	buf_reset(&s->ib);
	imap_job_start(c, s, J_STORE, uid ? "UID STORE completed" : "STORE completed");
}

static void cmd_search(struct conn *c, struct imap_session *s, struct ip *ip, int uid)
{
	if (ip_sp(ip) || ip_search(ip, &s->q.sp)) {
		if (ip->err && strcmp(ip->err, "BADCHARSET") == 0)
			imap_tagged(c, s, "NO", "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
		else
			imap_tagged(c, s, "BAD", "Syntax: SEARCH keys (%s)", ip->err ? ip->err : "?");
		return;
	}
	if (srch_tables(&s->q.sp, imap_kmp_tab, ARRAY_LEN(imap_kmp_tab)) != 0) {
		imap_tagged(c, s, "NO", "[LIMIT] Search keys too long");
		return;
	}
	live_check(s);
	memset(&s->job, 0, sizeof(s->job));
	s->job.uid = uid;
	s->job.cur = 1;
	s->job.need = srch_needs(&s->q.sp);
	for (int k = 0; k < s->q.sp.n; k++)
		if (s->q.sp.node[k].op == SK_MODSEQ)
			s->job.with_modseq = 1;
	if (s->job.with_modseq) {
		if (!CONFIG_IMAP_CONDSTORE) {
			imap_bad(c, s, "MODSEQ needs CONDSTORE");
			return;
		}
		s->condstore = 1;
	}
	conn_printf(c, "* SEARCH");
	imap_job_start(c, s, J_SEARCH, uid ? "UID SEARCH completed" : "SEARCH completed");
}

void imap_cmd_uid(struct conn *c, struct imap_session *s, struct ip *ip)
{
	const char *w;
	size_t n;

	if (ip_sp(ip) || ip_atom(ip, &w, &n, 0)) {
		imap_bad(c, s, "Syntax: UID command ...");
		return;
	}
	if (str_ieq(w, n, "FETCH"))
		cmd_fetch(c, s, ip, 1);
	else if (str_ieq(w, n, "STORE"))
		cmd_store(c, s, ip, 1);
	else if (str_ieq(w, n, "SEARCH"))
		cmd_search(c, s, ip, 1);
	else if (str_ieq(w, n, "COPY"))
		imap_cmd_copy(c, s, ip, 1, 0);
	else if (CONFIG_IMAP_MOVE && str_ieq(w, n, "MOVE"))
		imap_cmd_copy(c, s, ip, 1, 1);
	else if (CONFIG_IMAP_UIDPLUS && str_ieq(w, n, "EXPUNGE"))
		imap_cmd_uid_expunge(c, s, ip);
	else
		imap_bad(c, s, "Unknown UID command");
}

void imap_cmd_fetch_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_fetch(c, s, ip, 0);
}

void imap_cmd_store_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_store(c, s, ip, 0);
}

void imap_cmd_search_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_search(c, s, ip, 0);
}

void imap_cmd_check(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: CHECK");
		return;
	}
	imap_sync_then_ok(c, s, "CHECK completed");
}

void imap_cmd_unselect(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: UNSELECT");
		return;
	}
	imap_close_sel(s);
	sess_enter(c, IMAP_AUTHED);
	imap_tagged(c, s, "OK", "Unselect completed");
}

/* EXPUNGE and CLOSE: the mbox is rewritten without \Deleted messages.
 * Does record r (live flags) go? Sequence numbers are the view's. */
static int goes(struct imap_session *s, const struct idx_rec *r)
{
	uint32_t seq;

	switch (s->rw_mode) {
	case RW_MOVE:
	case RW_UID_EXPUNGE:
		if (s->rw_mode == RW_UID_EXPUNGE && !(r->flags & IDX_F_DELETED))
			return 0;
		if (!s->set)
			return 0;
		if (s->set_uid)
			return seq_has(s->set, s->set_len, s->set_star, r->uid);
		seq = uid_seq(&s->sel, r->uid);
		return seq && seq_has(s->set, s->set_len, s->set_star, seq);
	default:
		return (r->flags & IDX_F_DELETED) != 0;
	}
}

/* The rewrite's callback: record i of the live snapshot. */
static int keep_msg(void *ctx, uint32_t i)
{
	struct imap_session *s = ctx;
	struct idx_rec r;

	if (idx_get(&s->rw_rd, i, &r) != 0)
		return 1;
	return !goes(s, &r);
}

void imap_rw_close_snapshot(struct imap_session *s)
{
	if (s->rw_ifd >= 0)
		close(s->rw_ifd);
	s->rw_ifd = -1;
}

/* Under the mbox lock: the live index brought up to date (mail
 * delivered since included) becomes the rewrite's snapshot. 0 or -1. */
static int rw_snapshot(struct imap_session *s)
{
	struct mbx nm = s->sel;
	int rc = IDX_FAIL;

	nm.mfd = nm.ifd = nm.lfd = -1;
	imap_rw_close_snapshot(s);
	if (imap_mbx_begin(s, &nm) != 0) {
		imap_upd_abort_keep_lock(s);
		imap_mbx_close(&nm);
		return -1;
	}
	for (int guard = 0; guard < 64; guard++) {
		rc = idx_update_step(&s->u.upd, SIZE_MAX, 1);
		if (rc != IDX_AGAIN)
			break;
	}
	if (rc == IDX_DONE) {
		idx_update_result(&s->u.upd, &s->rw_hdr, &s->rw_ifd);
		idx_reader_init(&s->rw_rd, s->rw_ifd, s->rw_hdr.count);
	}
	imap_upd_abort_keep_lock(s);
	imap_mbx_close(&nm);
	if (rc == IDX_DONE && s->rw_hdr.uidvalidity != s->sel.hdr.uidvalidity) {
		imap_rw_close_snapshot(s);
		errno = ESTALE;
		return -1;
	}
	return rc == IDX_DONE ? 0 : -1;
}

static void rewrite_end(struct conn *c, struct imap_session *s, int good)
{
	int e = errno;

	imap_unlock(s);
	imap_rw_close_snapshot(s);
	if (!good) {
		log_msg(LOGL_ERR, "conn %u %s: imap %s: expunge failed: %s", c->id,
			c->peer_str, s->user, strerror(e));
		sess_enter(c, IMAP_SELECTED);
		imap_tagged(c, s, "NO", "%s", e == ESTALE ?
			    "The mailbox was changed by another program; try again" :
			    "[SERVERBUG] Cannot rewrite the mailbox");
		if (s->rw_close) {
			imap_close_sel(s);
			sess_enter(c, IMAP_AUTHED);
		}
		imap_wait_command(c, s);
		conn_resume(c);
		return;
	}
	imap_tell_changed(s, s->sel.dir, s->sel.name);
	sess_enter(c, IMAP_SELECTED);
	if (s->rw_close) {
		imap_close_sel(s);
		sess_enter(c, IMAP_AUTHED);
		imap_tagged(c, s, "OK", "CLOSE completed");
		imap_wait_command(c, s);
		conn_resume(c);
		return;
	}
	s->need_sync = 1;
	imap_sync_then_ok(c, s, s->rw_done);
	if (imap_reading_state(s))
		imap_wait_command(c, s);
	conn_resume(c);         /* last: it may run the next command */
}

void imap_rewrite_step(struct conn *c, struct imap_session *s, int all)
{
	struct idx_hdr h;
	int rc;

	if (!s->locked) {
		rc = all ? mbox_lock(s->sel.dir, s->sel.name, &s->lock) :
		     imap_lock_wait(c, s, s->sel.dir, s->sel.name);
		if (rc == MBOX_AGAIN)
			return;
		if (rc != MBOX_OK) {
			errno = rc == MBOX_BUSY ? EBUSY : errno;
			rewrite_end(c, s, 0);
			return;
		}
		s->locked = 1;
		if (rw_snapshot(s) != 0 ||
		    idx_rewrite_begin(&s->u.rw, s->sel.dir, s->sel.name, s->lock.fd,
				      s->rw_ifd, &s->rw_hdr, keep_msg, s) != 0) {
			rewrite_end(c, s, 0);
			return;
		}
		s->rw_live = 1;
	}
	do {
		rc = idx_rewrite_step(&s->u.rw, all ? SIZE_MAX : IMAP_STEP, &h);
	} while (all && rc == IDX_AGAIN);
	if (rc == IDX_AGAIN) {
		conn_deadline_ms(c, 0);
		return;
	}
	s->rw_live = 0;
	rewrite_end(c, s, rc == IDX_DONE);
}

void imap_start_rewrite(struct conn *c, struct imap_session *s, int close_after,
			int mode, const char *done)
{
	int any = 0;

	s->rw_mode = mode;
	snprintf(s->rw_done, sizeof(s->rw_done), "%s", done);
	live_check(s);
	for (uint32_t i = 0; i < s->sel.hdr.count && !any; i++) {
		struct idx_rec r;
		any = imap_get_rec_live(s, i, &r) == 0 && goes(s, &r);
	}
	if (!any || s->sel.readonly) {
		if (close_after) {
			imap_close_sel(s);
			sess_enter(c, IMAP_AUTHED);
			imap_tagged(c, s, "OK", "CLOSE completed");
		} else {
			imap_sync_then_ok(c, s, done);
		}
		return;
	}
	s->rw_close = close_after;
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	sess_enter(c, IMAP_REWRITE);
	conn_suspend(c);
	imap_rewrite_step(c, s, 0);
}

void imap_cmd_expunge(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: EXPUNGE");
		return;
	}
	if (s->sel.readonly) {
		imap_tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	imap_start_rewrite(c, s, 0, RW_DELETED, "EXPUNGE completed");
}

void imap_cmd_close(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: CLOSE");
		return;
	}
	imap_start_rewrite(c, s, 1, RW_DELETED, "CLOSE completed");
}

void imap_cmd_idle(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: IDLE");
		return;
	}
	sess_enter(c, IMAP_IDLE);
	s->idle_until = now_ms() + (int64_t)IMAP_IDLE_TIMEOUT * 1000;
	conn_printf(c, "+ idling\r\n");
	if (s->have_sel)
		imap_sync_and_push(c, s);
	imap_wait_command(c, s);
}

/* Sequence numbers must exist (RFC 3501 6.4.5): 0, or BAD answered and -1. */
int imap_seqs_exist(struct conn *c, struct imap_session *s, const char *set,
		    size_t sl)
{
	struct seq_iter it;
	uint32_t lo, hi;

	seq_iter_init(&it, set, sl);
	while (seq_next(&it, s->sel.hdr.count, &lo, &hi))
		if (hi > s->sel.hdr.count || lo == 0) {
			imap_bad(c, s, "Invalid message sequence number");
			return -1;
		}
	return 0;
}
