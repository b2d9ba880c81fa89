/* imap_mailbox — the IMAP server's mailboxes: their paths, opening one
 * through its index (lock, scan, update), SELECT, EXAMINE and STATUS,
 * LIST and LSUB (patterns, SPECIAL-USE), CREATE, DELETE, RENAME,
 * SUBSCRIBE and UNSUBSCRIBE. INBOX is mail_dir/USER; other folders are
 * mbox files in mail_dir/.postie/folders/USER/ (store/folders.c).
 *
 * Limits: FOLDER_NAME_MAX, IMAP_PATTERN_MAX, the folder store's. */
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

/* ---- mailboxes ------------------------------------------------------- */

int imap_mbx_paths(struct imap_session *s, struct mbx *m, const char *name,
		   size_t len)
{
	m->mfd = m->ifd = m->lfd = -1;
	m->live_gone = 0;
	if (str_ieq(name, len, "INBOX")) {
		snprintf(m->dir, sizeof(m->dir), "%s", conf->mail_dir);
		snprintf(m->name, sizeof(m->name), "%s", s->user);
		snprintf(m->full, sizeof(m->full), "INBOX");
		return 0;
	}
	if (folder_split(s->base, name, len, m->dir, sizeof(m->dir), m->name,
			 sizeof(m->name)) != 0)
		return -1;
	str_copy(m->full, sizeof(m->full), name, len);
	return 0;
}

int imap_is_inbox(const struct imap_session *s, const struct mbx *m)
{
	return strcmp(m->dir, conf->mail_dir) == 0 && strcmp(m->name, s->user) == 0;
}

void imap_mbx_close(struct mbx *m)
{
	if (m->mfd >= 0)
		close(m->mfd);
	if (m->ifd >= 0)
		close(m->ifd);
	if (m->lfd >= 0)
		close(m->lfd);
	m->mfd = m->ifd = m->lfd = -1;
}

void imap_unlock(struct imap_session *s)
{
	if (s->locked) {
		mbox_unlock(&s->lock);
		s->locked = 0;
	} else {
		mbox_lock_cancel(&s->lock);     /* it waits no more */
	}
}

/* Told busy: 1 to wait on (the retry deadline is set), 0 to give up.
 * Queued behind sessions of this process, it waits while the queue
 * moves; unqueued (a full queue), CONFIG_MBOX_LOCK_WAIT in all. */
static int lock_patience(struct conn *c, struct imap_session *s)
{
	int64_t stalled = mbox_lock_stalled_ms(&s->lock);

	if (stalled >= 0 ? stalled < CONFIG_MBOX_LOCK_WAIT * 1000 :
	    now_ms() < s->lock_until) {
		conn_deadline_ms(c, IMAP_LOCK_RETRY_MS);
		return 1;
	}
	mbox_lock_cancel(&s->lock);
	return 0;
}

int imap_lock_wait(struct conn *c, struct imap_session *s, const char *dir,
		   const char *name)
{
	int rc = mbox_lock_wait(dir, name, &s->lock);

	if (rc != MBOX_BUSY)
		return rc;
	return lock_patience(c, s) ? MBOX_AGAIN : MBOX_BUSY;
}

void imap_lock_free(const struct mbox_lock *next)
{
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		struct imap_session *s = &imap_pool[i];
		if (!s->ss.conn || &s->lock != next || s->locked)
			continue;
		/* These states' steps retry the lock (any zero deadline
		 * only runs the step early). */
		if (s->ss.state == IMAP_OPEN || s->ss.state == IMAP_REWRITE ||
		    s->ss.state == IMAP_APPEND || s->ss.state == IMAP_COPY)
			conn_deadline_ms(s->ss.conn, 0);
	}
}

void imap_upd_abort_keep_lock(struct imap_session *s)
{
	if (s->upd_live) {
		idx_update_abort(&s->u.upd);
		s->upd_live = 0;
	}
}

void imap_upd_abort(struct imap_session *s)
{
	imap_upd_abort_keep_lock(s);
	imap_unlock(s);
}

/* Opens the mbox read-only and starts its index update; INBOX is created
 * when missing, as a delivery would. 0 or -1 with errno. */
int imap_mbx_begin(struct imap_session *s, struct mbx *m)
{
	char path[sizeof(m->dir) + IMAP_NAME_MAX + 2], ipath[sizeof(m->dir) + 300];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", m->dir, m->name);
	m->mfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (m->mfd < 0 && errno == ENOENT && imap_is_inbox(s, m)) {
		if (mbox_lock(m->dir, m->name, &s->lock) == MBOX_OK)
			mbox_unlock(&s->lock);
		m->mfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	}
	if (m->mfd < 0 || fstat(m->mfd, &st) != 0)
		return -1;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
		errno = EPERM;
		return -1;
	}
	if (idx_path(m->dir, m->name, ".idx", ipath, sizeof(ipath), 1) != 0 ||
	    idx_update_begin(&s->u.upd, m->mfd, ipath) != 0)
		return -1;
	s->upd_live = 1;
	return 0;
}

/* Runs the update: IDX_DONE (m->hdr, m->ifd set), IDX_AGAIN (call again
 * later), IDX_AGAIN_LOCK (locked by another program: retry) or IDX_FAIL.
 * `all`: no byte budget (used for small catch-ups). */
int imap_mbx_step(struct imap_session *s, struct mbx *m, int all)
{
	for (int round = 0; round < 4; round++) {
		int rc = idx_update_step(&s->u.upd, all ? SIZE_MAX : IMAP_STEP,
					 s->locked);
		if (rc == IDX_AGAIN && !all)
			return IDX_AGAIN;
		if (rc == IDX_AGAIN)
			continue;
		if (rc == IDX_DONE) {
			int fd;
			idx_update_result(&s->u.upd, &m->hdr, &fd);
			idx_update_abort(&s->u.upd);
			s->upd_live = 0;
			imap_unlock(s);
			if (m->ifd >= 0)
				close(m->ifd);
			m->ifd = fd;
			idx_reader_init(&m->rd, m->ifd, m->hdr.count);
			return IDX_DONE;
		}
		if (rc == IDX_AGAIN_LOCK) {
			struct stat a, b;
			rc = all ? mbox_lock(m->dir, m->name, &s->lock) :
			     mbox_lock_wait(m->dir, m->name, &s->lock);
			if (rc == MBOX_BUSY)
				return IDX_AGAIN_LOCK;
			if (rc != MBOX_OK)
				return IDX_FAIL;
			s->locked = 1;
			if (fstat(s->lock.fd, &a) == 0 && fstat(m->mfd, &b) == 0 &&
			    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
				continue;
			/* Replaced (another session's EXPUNGE) while this one
			 * waited in line: start again on the file now locked,
			 * keeping the lock, rather than queue again behind the
			 * next rewrite. */
			idx_update_abort(&s->u.upd);
			s->upd_live = 0;
			close(m->mfd);
			m->mfd = -1;
			if (imap_mbx_begin(s, m) == 0)
				continue;
			errno = ESTALE;
		}
		return IDX_FAIL;
	}
	return IDX_AGAIN;
}

/* Reads the keyword names of m into t (empty when it has none). */
void imap_kw_load(const struct mbx *m, struct idx_kw *t)
{
	char path[FOLDER_PATH_MAX + 320];

	if (idx_path(m->dir, m->name, ".kw", path, sizeof(path), 0) != 0 ||
	    idx_kw_load(path, t) != 0)
		memset(t, 0, offsetof(struct idx_kw, buf));
}

/* Rereads them when another session added one: 1 when it did. */
int imap_kw_reload(const struct mbx *m, struct idx_kw *t)
{
	char path[FOLDER_PATH_MAX + 320];

	if (idx_path(m->dir, m->name, ".kw", path, sizeof(path), 0) != 0 ||
	    !idx_kw_changed(path, t))
		return 0;
	imap_kw_load(m, t);
	return 1;
}

/* ---- SELECT / EXAMINE / STATUS ---------------------------------------- */

static void open_finish(struct conn *c, struct imap_session *s);

void imap_open_fail(struct conn *c, struct imap_session *s, const char *why)
{
	int e = errno;

	if (s->open_kind == OPEN_APPEND || s->open_kind == OPEN_COPY) {
		/* The messages are in (fsynced); only their index failed. */
		imap_upd_abort(s);
		log_msg(LOGL_WARN, "conn %u %s: imap %s: mailbox %s: index: %s%s%s",
			c->id, c->peer_str, s->user, s->tmp.full, why, e ? ": " : "",
			e ? strerror(e) : "");
		imap_new_done(c, s, 0);
		return;
	}

	imap_upd_abort(s);
	imap_mbx_close(&s->tmp);
	log_msg(LOGL_WARN, "conn %u %s: imap %s: mailbox %s: %s%s%s", c->id,
		c->peer_str, s->user, s->tmp.full, why, e ? ": " : "",
		e ? strerror(e) : "");
	sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	imap_tagged(c, s, "NO", "%s", e == ENOENT ? "[NONEXISTENT] No such mailbox" : why);
	imap_wait_command(c, s);
	conn_resume(c);
}

void imap_open_step(struct conn *c, struct imap_session *s)
{
	int rc = imap_mbx_step(s, &s->tmp, 0);

	if (rc == IDX_AGAIN) {
		conn_deadline_ms(c, 0);
		return;
	}
	if (rc == IDX_AGAIN_LOCK) {
		if (lock_patience(c, s))
			return;
		errno = 0;
		imap_open_fail(c, s, "[INUSE] Mailbox is locked by another program");
		return;
	}
	if (rc == IDX_FAIL) {
		if (errno == ESTALE && ++s->restarts <= 3) {
			imap_upd_abort(s);
			imap_mbx_close(&s->tmp);
			if (imap_mbx_begin(s, &s->tmp) == 0) {
				conn_deadline_ms(c, 0);
				return;
			}
		}
		imap_open_fail(c, s, "[SERVERBUG] Cannot open the mailbox");
		return;
	}
	open_finish(c, s);
}

static void start_open(struct conn *c, struct imap_session *s, const char *name,
		       size_t len, int kind)
{
	if (imap_mbx_paths(s, &s->tmp, name, len) != 0) {
		imap_tagged(c, s, "NO", "[CANNOT] Bad mailbox name");
		return;
	}
	s->open_kind = kind;
	s->restarts = 0;
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	sess_enter(c, IMAP_OPEN);
	conn_suspend(c);
	if (imap_mbx_begin(s, &s->tmp) != 0) {
		imap_open_fail(c, s, "Cannot open the mailbox");
		return;
	}
	imap_open_step(c, s);
}

static void cmd_select(struct conn *c, struct imap_session *s, struct ip *ip,
		       int examine)
{
	char *name;
	size_t nl;

	if (ip_sp(ip) || ip_astring(ip, &name, &nl)) {
		imap_bad(c, s, "Syntax: SELECT mailbox");
		return;
	}
	if (ip_peek(ip) == ' ') {
		/* RFC 7162: (CONDSTORE) */
		const char *w;
		size_t wl;
		ip->p++;
		if (!CONFIG_IMAP_CONDSTORE || ip_char(ip, '(') || ip_atom(ip, &w, &wl, 0) ||
		    !str_ieq(w, wl, "CONDSTORE") || ip_char(ip, ')') || ip_end(ip)) {
			imap_bad(c, s, "Syntax: SELECT mailbox [(CONDSTORE)]");
			return;
		}
		s->condstore = 1;
	}
	/* RFC 3501: a failed SELECT leaves no mailbox selected. */
	imap_close_sel(s);
	sess_enter(c, IMAP_AUTHED);
	start_open(c, s, name, nl, examine ? OPEN_EXAMINE : OPEN_SELECT);
}

void imap_cmd_select_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_select(c, s, ip, 0);
}

void imap_cmd_examine(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_select(c, s, ip, 1);
}

/* HIGHESTMODSEQ is at least 1 (RFC 7162 §7; in STATUS 0 would mean "no
 * mod-sequences"): an index of an older build never changed since reads
 * 0, and every change from now on gets at least 2. */
static unsigned long long highest_modseq(const struct mbx *m)
{
	return m->hdr.modseq ? (unsigned long long)m->hdr.modseq : 1;
}

enum { ST_MESSAGES = 1, ST_RECENT = 2, ST_UIDNEXT = 4, ST_UIDVALIDITY = 8,
       ST_UNSEEN = 16, ST_HIGHESTMODSEQ = 32, ST_SIZE = 64 };

static void counts(struct mbx *m, uint32_t *unseen, uint32_t *first_unseen,
		   uint64_t *size)
{
	struct idx_rec r;

	*unseen = *first_unseen = 0;
	*size = 0;
	for (uint32_t i = 0; i < m->hdr.count; i++) {
		if (imap_get_rec(m, i, &r) != 0)
			break;
		if (!(r.flags & IDX_F_SEEN)) {
			(*unseen)++;
			if (!*first_unseen)
				*first_unseen = i + 1;
		}
		*size += r.size;
	}
}

static void open_finish(struct conn *c, struct imap_session *s)
{
	struct mbx *m = &s->tmp;
	uint32_t unseen, first;
	uint64_t size;
	char name[IMAP_NAME_MAX * 2 + 8];
	struct buf b;

	if (s->open_kind == OPEN_APPEND || s->open_kind == OPEN_COPY) {
		imap_new_done(c, s, 1);
		return;
	}
	counts(m, &unseen, &first, &size);
	if (s->open_kind == OPEN_STATUS) {
		char out[300];
		struct buf ob;
		unsigned it = s->status_items;
		buf_init(&ob, out, sizeof(out));
		if (it & ST_MESSAGES)
			buf_printf(&ob, " MESSAGES %u", m->hdr.count);
		if (it & ST_RECENT)
			buf_printf(&ob, " RECENT %u",
				   imap_uid_count(m, m->hdr.recent_uid, m->hdr.uidnext));
		if (it & ST_UIDNEXT)
			buf_printf(&ob, " UIDNEXT %u", m->hdr.uidnext);
		if (it & ST_UIDVALIDITY)
			buf_printf(&ob, " UIDVALIDITY %u", m->hdr.uidvalidity);
		if (it & ST_UNSEEN)
			buf_printf(&ob, " UNSEEN %u", unseen);
		if (it & ST_HIGHESTMODSEQ)
			buf_printf(&ob, " HIGHESTMODSEQ %llu", highest_modseq(m));
		if (it & ST_SIZE)
			buf_printf(&ob, " SIZE %llu", (unsigned long long)size);
		buf_nul(&ob);
		{
			struct mime_out o;
			mime_out_init(&o, name, sizeof(name));
			mime_out_nstring(&o, m->full, strlen(m->full));
			if (o.overflow || buf_nul(&o.b) != 0)
				name[0] = '\0';
		}
		conn_printf(c, "* STATUS %s (%s)\r\n", name, ob.len ? out + 1 : "");
		imap_mbx_close(m);
		sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
		imap_tagged(c, s, "OK", "Status completed");
		imap_wait_command(c, s);
		conn_resume(c);
		return;
	}
	idx_sc_close(&s->sc);  /* another mailbox's, if any */
	s->sc_tried = 0;
	s->sel = *m;
	idx_reader_init(&s->sel.rd, s->sel.ifd, s->sel.hdr.count);
	s->sel.lfd = -1;
	s->sel.live_gone = 0;
	s->sel.readonly = s->open_kind == OPEN_EXAMINE;
	m->mfd = m->ifd = -1;
	s->have_sel = 1;
	s->npend = s->pend_all = s->need_sync = 0;
	imap_kw_load(&s->sel, &s->kw);
	/* \Recent: what no session selected before; SELECT takes it. */
	s->recent_lo = s->sel.hdr.recent_uid;
	s->recent_hi = s->sel.hdr.uidnext;
	if (!s->sel.readonly &&
	    idx_take_recent(s->sel.ifd, 0, s->sel.hdr.uidnext, &s->recent_lo) < 0)
		s->recent_lo = s->recent_hi;
	/* With keywords the FLAGS lines can outgrow the output buffer: the
	 * answer goes through the item buffer as a J_TEXT job. */
	buf_init(&b, s->item, sizeof(s->item));
	buf_printf(&b, "* %u EXISTS\r\n* %u RECENT\r\n",
		   s->sel.hdr.count, imap_uid_count(&s->sel, s->recent_lo, s->recent_hi));
	imap_flags_line(s, &b);
	buf_printf(&b, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
		   "* OK [UIDNEXT %u] Predicted next UID\r\n",
		   s->sel.hdr.uidvalidity, s->sel.hdr.uidnext);
	if (first)
		buf_printf(&b, "* OK [UNSEEN %u] First unseen\r\n", first);
	if (CONFIG_IMAP_CONDSTORE)
		buf_printf(&b, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
			   highest_modseq(&s->sel));
	log_msg(LOGL_INFO, "conn %u %s: imap %s selected %s: %u messages", c->id,
		c->peer_str, s->user, s->sel.full,
		s->sel.hdr.count);
	sess_enter(c, IMAP_SELECTED);
	memset(&s->job, 0, sizeof(s->job));
	s->ib = b;
	snprintf(name, sizeof(name), "[%s] %s completed", s->sel.readonly ? "READ-ONLY" :
		 "READ-WRITE", s->open_kind == OPEN_EXAMINE ? "EXAMINE" : "SELECT");
	imap_job_start(c, s, J_TEXT, name);
	conn_resume(c);
}

void imap_cmd_status(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char *name;
	size_t nl;
	const char *w;
	size_t wl;
	unsigned items = 0;

	if (ip_sp(ip) || ip_astring(ip, &name, &nl) || ip_sp(ip) || ip_char(ip, '(')) {
		imap_bad(c, s, "Syntax: STATUS mailbox (items)");
		return;
	}
	for (int guard = 0; guard < 16; guard++) {
		if (ip_atom(ip, &w, &wl, 0)) {
			imap_bad(c, s, "Syntax: STATUS mailbox (items)");
			return;
		}
		if (str_ieq(w, wl, "MESSAGES")) items |= ST_MESSAGES;
		else if (str_ieq(w, wl, "RECENT")) items |= ST_RECENT;
		else if (str_ieq(w, wl, "UIDNEXT")) items |= ST_UIDNEXT;
		else if (str_ieq(w, wl, "UIDVALIDITY")) items |= ST_UIDVALIDITY;
		else if (str_ieq(w, wl, "UNSEEN")) items |= ST_UNSEEN;
		else if (CONFIG_IMAP_CONDSTORE && str_ieq(w, wl, "HIGHESTMODSEQ"))
			items |= ST_HIGHESTMODSEQ;
		else if (str_ieq(w, wl, "SIZE")) items |= ST_SIZE;
		else {
			imap_bad(c, s, "Unknown STATUS item");
			return;
		}
		if (ip_peek(ip) != ' ')
			break;
		ip->p++;
	}
	if (ip_char(ip, ')') || ip_end(ip)) {
		imap_bad(c, s, "Syntax: STATUS mailbox (items)");
		return;
	}
	s->status_items = items;
	start_open(c, s, name, nl, OPEN_STATUS);
}

/* ---- LIST / LSUB ------------------------------------------------------- */

#define IMAP_PATTERN_MAX 512

/* IMAP LIST wildcard match, '*' anything, '%' anything but '/': one pass
 * per pattern octet over a row of the name's prefixes (no backtracking;
 * O(pattern x name) with the name at most FOLDER_NAME_MAX). */
static int wild(const char *p, size_t pn, const char *s, size_t sn)
{
	unsigned char row[FOLDER_NAME_MAX + 2];

	if (sn > FOLDER_NAME_MAX)
		return 0;
	memset(row, 0, sn + 1);
	row[0] = 1;
	for (size_t i = 0; i < pn; i++) {
		if (p[i] == '*' || p[i] == '%') {
			int on = 0;
			for (size_t j = 0; j <= sn; j++) {
				if (p[i] == '%' && j > 0 && s[j - 1] == '/')
					on = 0;
				on |= row[j];
				row[j] = (unsigned char)on;
			}
		} else {
			for (size_t j = sn; j > 0; j--)
				row[j] = row[j - 1] && s[j - 1] == p[i];
			row[0] = 0;
		}
	}
	return row[sn];
}

static int inbox_match(const char *p, size_t pn)
{
	char up[16];

	if (pn >= 5 && pn < sizeof(up)) {
		for (size_t i = 0; i < pn; i++)
			up[i] = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i]);
		if (wild(up, pn, "INBOX", 5))
			return 1;
	}
	return wild(p, pn, "INBOX", 5);
}

static const char *special_use(const char *name)
{
	static const char *const map[][2] = {
		{ "Sent", "\\Sent" }, { "Drafts", "\\Drafts" }, { "Trash", "\\Trash" },
		{ "Junk", "\\Junk" }, { "Archive", "\\Archive" },
	};

	if (!CONFIG_IMAP_SPECIAL_USE)
		return NULL;
	for (size_t i = 0; i < ARRAY_LEN(map); i++)
		if (strcmp(name, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

enum { LO_SUBSCRIBED = 1, LO_SPECIAL = 2, LO_RET_SUBSCRIBED = 4, LO_LSUB = 8 };

struct list_ctx {
	struct imap_session *s;
	const char *verb;
	const char *pat;
	size_t pl;
	unsigned opts;
	const char *subs;
	uint32_t skip;          /* lines sent in earlier fills */
	uint32_t added;         /* lines in the item buffer */
	int full;               /* a line did not fit: the rest next fill */
};

static void list_line(struct list_ctx *x, const char *attrs, const char *name)
{
	struct imap_session *s = x->s;
	struct mime_out o;
	size_t al = strlen(attrs);

	if (x->full)
		return;
	if (x->skip) {
		x->skip--;
		return;
	}
	mime_out_init(&o, buf_reserve(&s->ib, buf_remaining(&s->ib)),
		      buf_remaining(&s->ib));
	mime_out_str(&o, "* ", 2);
	mime_out_str(&o, x->verb, strlen(x->verb));
	mime_out_str(&o, " (", 2);
	mime_out_str(&o, attrs + (al && attrs[0] == ' '), al - (al && attrs[0] == ' '));
	mime_out_str(&o, ") \"/\" ", 6);
	mime_out_nstring(&o, name, strlen(name));
	mime_out_str(&o, "\r\n", 2);
	if (!o.overflow) {
		buf_commit(&s->ib, o.b.len);
		x->added++;
	} else {
		x->full = 1;
	}
}

/* One existing name (kind FOLDER_*, or 0 for INBOX) for LIST. */
static void list_fn(void *ctx, const char *name, int kind, int children)
{
	struct list_ctx *x = ctx;
	char attrs[96];
	const char *su = kind == FOLDER_MBOX ? special_use(name) : NULL;
	int sub = (x->opts & (LO_SUBSCRIBED | LO_RET_SUBSCRIBED)) &&
		  folder_is_subscribed(x->subs, name);

	if (!wild(x->pat, x->pl, name, strlen(name)) ||
	    ((x->opts & LO_SPECIAL) && !su) || ((x->opts & LO_SUBSCRIBED) && !sub))
		return;
	/* A mailbox may have children (NAME.sbd): no \NoInferiors. */
	snprintf(attrs, sizeof(attrs), "%s%s%s%s%s",
		 kind == FOLDER_DIR ? "\\Noselect " : "",
		 children ? "\\HasChildren" : "\\HasNoChildren",
		 sub ? " \\Subscribed" : "", su ? " " : "", su ? su : "");
	list_line(x, attrs, name);
}

/* Whether the subscription `entry` (l bytes) lies below the name pfx (n
 * bytes) and the pattern does not match it. */
static int lsub_hidden_child(const struct list_ctx *x, const char *entry,
			     size_t l, const char *pfx, size_t n)
{
	return l > n && entry[n] == '/' && memcmp(entry, pfx, n) == 0 &&
	       !wild(x->pat, x->pl, entry, l);
}

/* LSUB of name (a subscription at entry in x->subs): the parents that
 * the pattern matches while it does not match the name, and that are not
 * subscribed themselves, are listed \Noselect (RFC 3501 §6.3.9: "LSUB
 * \"\" a/%" with only a/b/c subscribed gives a/b), once each: for the
 * first subscription below them. */
static void lsub_parents(struct list_ctx *x, const char *entry,
			 const char *name, size_t l)
{
	char pfx[IMAP_NAME_MAX + 1];

	if (wild(x->pat, x->pl, name, l))
		return;
	for (size_t j = 1; j < l; j++) {
		int seen = 0;
		if (name[j] != '/' || !wild(x->pat, x->pl, name, j))
			continue;
		str_copy(pfx, sizeof(pfx), name, j);
		if (folder_is_subscribed(x->subs, pfx))
			continue;
		for (const char *q = x->subs; q < entry && !seen;) {
			const char *e = strchr(q, '\n');
			size_t ql = e ? (size_t)(e - q) : strlen(q);
			seen = lsub_hidden_child(x, q, ql, pfx, j);
			if (!e)
				break;
			q = e + 1;
		}
		if (!seen)
			list_line(x, "\\Noselect", pfx);
	}
}

/* LSUB and LIST (SUBSCRIBED): the subscribed names, existing or not. */
static void list_subscribed(struct list_ctx *x)
{
	char name[IMAP_NAME_MAX + 1];

	for (const char *p = x->subs; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		int kind;
		if (l && l <= IMAP_NAME_MAX) {
			str_copy(name, sizeof(name), p, l);
			kind = strcmp(name, "INBOX") == 0 ? FOLDER_MBOX :
			       folder_kind(x->s->base, name);
			if (x->opts & LO_LSUB)
				lsub_parents(x, p, name, l);
			if (kind == FOLDER_NONE && wild(x->pat, x->pl, name, l))
				list_line(x, x->opts & LO_LSUB ? "\\Noselect" :
					  "\\NonExistent \\Subscribed", name);
			else if (x->opts & LO_LSUB) {
				if (wild(x->pat, x->pl, name, l))
					list_line(x, kind == FOLDER_DIR ? "\\Noselect" : "", name);
			} else if (strcmp(name, "INBOX") == 0) {
				if (inbox_match(x->pat, x->pl))
					list_line(x, "\\NoInferiors \\Subscribed", "INBOX");
			} else {
				list_fn(x, name, kind, kind == FOLDER_DIR);
			}
		}
		if (!e)
			break;
		p = e + 1;
	}
}

/* "(" options ")" of LIST-EXTENDED selection or RETURN; unknown ones are
 * ignored. */
static int list_opts(struct ip *ip, unsigned *opts, int ret)
{
	const char *w;
	size_t wl;

	if (ip_char(ip, '('))
		return -1;
	for (int guard = 0; guard < 16 && ip_peek(ip) != ')'; guard++) {
		if (ip_atom(ip, &w, &wl, 0))
			return -1;
		if (str_ieq(w, wl, "SUBSCRIBED"))
			*opts |= ret ? LO_RET_SUBSCRIBED : LO_SUBSCRIBED;
		else if (str_ieq(w, wl, "SPECIAL-USE") && !ret)
			*opts |= LO_SPECIAL;
		if (ip_peek(ip) == ' ')
			ip->p++;
	}
	return ip_char(ip, ')');
}

static void cmd_list(struct conn *c, struct imap_session *s, struct ip *ip,
		     const char *verb)
{
	struct list_ctx x = { .s = s, .verb = verb };
	char *ref, *p;
	size_t rl, pl;

	if (ip_sp(ip)) {
		imap_bad(c, s, "Syntax: LIST reference pattern");
		return;
	}
	if (ip_peek(ip) == '(' && strcmp(verb, "LIST") == 0 &&
	    (list_opts(ip, &x.opts, 0) || ip_sp(ip))) {
		imap_bad(c, s, "Syntax: LIST (options) reference pattern");
		return;
	}
	if (ip_astring(ip, &ref, &rl) || ip_sp(ip) || ip_list_mailbox(ip, &p, &pl)) {
		imap_bad(c, s, "Syntax: LIST reference pattern");
		return;
	}
	if (ip_peek(ip) == ' ' && strcmp(verb, "LIST") == 0) {
		const char *w;
		size_t wl;
		ip->p++;
		if (ip_atom(ip, &w, &wl, 0) || !str_ieq(w, wl, "RETURN") || ip_sp(ip) ||
		    list_opts(ip, &x.opts, 1)) {
			imap_bad(c, s, "Syntax: LIST reference pattern RETURN (options)");
			return;
		}
	}
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: LIST reference pattern");
		return;
	}
	buf_reset(&s->ib);
	memset(&s->job, 0, sizeof(s->job));
	if (pl == 0 && !(x.opts & (LO_SUBSCRIBED | LO_SPECIAL))) {
		/* The hierarchy delimiter and root. */
		buf_printf(&s->ib, "* %s (\\Noselect) \"/\" \"\"\r\n", verb);
		imap_job_start(c, s, J_TEXT, "LIST completed");
		return;
	}
	if (rl + pl > IMAP_PATTERN_MAX) {
		imap_bad(c, s, "Reference and pattern too long");
		return;
	}
	s->job.lref = ref;
	s->job.lrl = rl;
	s->job.lpat = p;
	s->job.lpl = pl;
	s->job.lverb = verb;
	s->job.lopts = x.opts | (strcmp(verb, "LSUB") == 0 ? LO_LSUB | LO_SUBSCRIBED : 0);
	imap_job_start(c, s, J_LIST, strcmp(verb, "LSUB") ? "LIST completed" :
		       "LSUB completed");
}

int imap_list_fill(struct imap_session *s)
{
	static char pat[IMAP_PATTERN_MAX + 1];
	char *subs = folder_subs_buf();
	struct job *j = &s->job;
	struct list_ctx x = { .s = s, .verb = j->lverb, .pat = pat, .subs = subs,
			      .opts = j->lopts, .skip = j->lsent };
	struct buf pb;

	/* The listing again from the start, the lines sent skipped: a
	 * folder tree of FOLDER_MAX entries is walked once a fill. */
	buf_reset(&s->ib);
	buf_init(&pb, pat, sizeof(pat));
	buf_add(&pb, j->lref, j->lrl);  /* the reference is a prefix */
	buf_add(&pb, j->lpat, j->lpl);
	buf_nul(&pb);
	x.pl = pb.len;
	if (x.opts & (LO_SUBSCRIBED | LO_RET_SUBSCRIBED))
		folder_subs(s->base, subs, FOLDER_SUBS_MAX + 1);
	else
		subs[0] = '\0';
	if (x.opts & LO_SUBSCRIBED) {
		list_subscribed(&x);
	} else {
		if (inbox_match(pat, x.pl) && !(x.opts & LO_SPECIAL))
			list_line(&x, (x.opts & LO_RET_SUBSCRIBED) &&
				  folder_is_subscribed(subs, "INBOX") ?
				  "\\NoInferiors \\Subscribed" : "\\NoInferiors", "INBOX");
		folder_walk(s->base, list_fn, &x);
	}
	j->lsent += x.added;
	if (x.full && x.added == 0)
		return -1;
	return !x.full;
}

void imap_cmd_list_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_list(c, s, ip, "LIST");
}

void imap_cmd_lsub(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_list(c, s, ip, "LSUB");
}

/* ---- CREATE / DELETE / RENAME / SUBSCRIBE ------------------------------ */

/* One mailbox-name argument, NUL-terminated into out; INBOX in any case
 * becomes "INBOX". 0, or -1 after answering BAD/NO. */
static int name_arg(struct conn *c, struct imap_session *s, struct ip *ip,
		    char *out, size_t n)
{
	char *name;
	size_t nl;

	if (ip_sp(ip) || ip_astring(ip, &name, &nl)) {
		imap_bad(c, s, "Syntax: mailbox name expected");
		return -1;
	}
	if (nl >= n || memchr(name, '\0', nl)) {
		imap_tagged(c, s, "NO", "[CANNOT] Bad mailbox name");
		return -1;
	}
	str_copy(out, n, str_ieq(name, nl, "INBOX") ? "INBOX" : name,
		 str_ieq(name, nl, "INBOX") ? 5 : nl);
	return 0;
}

/* Some session has this mailbox, or one under this directory, selected. */
static int in_use(const struct mbx *m)
{
	char path[sizeof(m->dir) + IMAP_NAME_MAX + 2];
	size_t pl = (size_t)snprintf(path, sizeof(path), "%s/%s", m->dir, m->name);

	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		const struct imap_session *o = &imap_pool[i];
		if (!o->ss.conn || !o->have_sel)
			continue;
		/* the mailbox, or one under it (its directory or NAME.sbd) */
		if (imap_same_mbx(&o->sel, m) ||
		    (strncmp(o->sel.dir, path, pl) == 0 &&
		     (o->sel.dir[pl] == '/' || o->sel.dir[pl] == '\0' ||
		      strncmp(o->sel.dir + pl, ".sbd", 4) == 0)))
			return 1;
	}
	return 0;
}

static void folder_error(struct conn *c, struct imap_session *s, const char *what)
{
	int e = errno;
	const char *text;

	switch (e) {
	case EEXIST: text = "[ALREADYEXISTS] Mailbox already exists"; break;
	case ENOENT: text = "[NONEXISTENT] No such mailbox"; break;
	case ENOTDIR: text = "[CANNOT] A parent name is a mailbox, not a directory"; break;
	case ENOTEMPTY: text = "[HASCHILDREN] Mailbox has children"; break;
	case EBUSY: text = "[INUSE] Mailbox is in use"; break;
	case EMLINK: text = "[LIMIT] Too many mailboxes"; break;
	case EINVAL: text = "[CANNOT] Bad mailbox name"; break;
	case ENAMETOOLONG: text = "[LIMIT] Mailbox name too long"; break;
	case ENOSPC: case EDQUOT: text = "[OVERQUOTA] No space left"; break;
	default: text = "[SERVERBUG] Operation failed"; break;
	}
	if (e != EEXIST && e != ENOENT && e != EINVAL && e != ENOTEMPTY)
		log_msg(LOGL_WARN, "conn %u %s: imap %s: %s: %s", c->id, c->peer_str,
			s->user, what, strerror(e));
	imap_tagged(c, s, "NO", "%s", text);
}

void imap_cmd_create(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char name[IMAP_NAME_MAX + 2];
	size_t nl;
	int dir_only = 0;

	if (name_arg(c, s, ip, name, sizeof(name)))
		return;
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: CREATE mailbox");
		return;
	}
	nl = strlen(name);
	if (nl > 1 && name[nl - 1] == '/') {
		/* "A/": a name under which mailboxes will be made. */
		name[--nl] = '\0';
		dir_only = 1;
	}
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(c, s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (nl >= sizeof(s->tmp.full)) {
		errno = ENAMETOOLONG;
		folder_error(c, s, "create");
		return;
	}
	/* The missing parents a directory (and an fsync) a loop pass, the
	 * others served in between; then the folder. */
	str_copy(s->tmp.full, sizeof(s->tmp.full), name, nl);
	s->create_dir = dir_only;
	s->setup_steps = 0;
	sess_enter(c, IMAP_CREATE);
	conn_suspend(c);
	imap_create_step(c, s);
}

void imap_create_step(struct conn *c, struct imap_session *s)
{
	int rc = folder_parent_step(s->base, s->tmp.full);

	if (rc > 0 && ++s->setup_steps < FOLDER_NAME_MAX) {
		conn_next_pass(c);
		return;
	}
	if (rc >= 0)
		rc = folder_create(s->base, s->tmp.full, s->create_dir);
	int e = errno;
	sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	errno = e;
	if (rc != 0)
		folder_error(c, s, "create");
	else
		imap_tagged(c, s, "OK", "CREATE completed");
	imap_wait_command(c, s);
	conn_resume(c);
}

/* DELETE and RENAME: the name must be a valid one that no session has
 * selected. 0, or -1 when answered. */
static int folder_free(struct conn *c, struct imap_session *s, const char *name,
		       const char *what)
{
	struct mbx m;

	if (imap_mbx_paths(s, &m, name, strlen(name)) != 0) {
		folder_error(c, s, what);
		return -1;
	}
	if (in_use(&m)) {
		imap_tagged(c, s, "NO", "[INUSE] Mailbox is selected in a session");
		return -1;
	}
	return 0;
}

void imap_cmd_delete(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char name[IMAP_NAME_MAX + 2];

	if (name_arg(c, s, ip, name, sizeof(name)))
		return;
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: DELETE mailbox");
		return;
	}
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(c, s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (folder_free(c, s, name, "delete") != 0)
		return;
	if (folder_delete(s->base, name) != 0) {
		folder_error(c, s, "delete");
		return;
	}
	imap_tagged(c, s, "OK", "DELETE completed");
}

void imap_cmd_rename(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char from[IMAP_NAME_MAX + 2], to[IMAP_NAME_MAX + 2];
	int rc;

	if (name_arg(c, s, ip, from, sizeof(from)) ||
	    name_arg(c, s, ip, to, sizeof(to)))
		return;
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: RENAME from to");
		return;
	}
	if (strcmp(to, "INBOX") == 0) {
		imap_tagged(c, s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (folder_free(c, s, from, "rename") != 0)
		return;
	if (strcmp(from, "INBOX") == 0)
		rc = folder_rename_inbox(conf->mail_dir, s->user, s->base, to);
	else
		rc = folder_rename(s->base, from, to);
	if (rc != 0) {
		folder_error(c, s, "rename");
		return;
	}
	imap_tagged(c, s, "OK", "RENAME completed");
}

static void subscribe(struct conn *c, struct imap_session *s, struct ip *ip,
		      int on)
{
	char name[IMAP_NAME_MAX + 2];

	if (name_arg(c, s, ip, name, sizeof(name)))
		return;
	if (ip_end(ip)) {
		imap_bad(c, s, "Syntax: SUBSCRIBE mailbox");
		return;
	}
	if (strcmp(name, "INBOX") != 0 && !folder_name_ok(name, strlen(name))) {
		imap_tagged(c, s, "NO", "[CANNOT] Bad mailbox name");
		return;
	}
	if (folder_subscribe(s->base, name, on) != 0) {
		if (errno != EFBIG) {
			folder_error(c, s, "subscribe");
			return;
		}
		log_msg(LOGL_WARN, "conn %u %s: imap %s: subscribe: subscriptions "
			"full (%d octets)", c->id, c->peer_str, s->user, FOLDER_SUBS_MAX);
		imap_tagged(c, s, "NO", "[LIMIT] Too many subscriptions (%d octets "
			    "of names at most)", FOLDER_SUBS_MAX);
		return;
	}
	imap_tagged(c, s, "OK", "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

void imap_cmd_subscribe(struct conn *c, struct imap_session *s, struct ip *ip)
{
	subscribe(c, s, ip, 1);
}

void imap_cmd_unsubscribe(struct conn *c, struct imap_session *s, struct ip *ip)
{
	subscribe(c, s, ip, 0);
}
