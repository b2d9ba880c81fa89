/* imap_append — APPEND, COPY and MOVE: new messages in a target mailbox
 * (locked, appended and fsynced, then its index brought up to date with
 * the lock still held), with their flags and keywords; UID EXPUNGE.
 *
 * Limits: IDX_KW_MAX keywords a mailbox, IMAP_STEP bytes a pass. */
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
#include "proto/imap_parse.h"
#include "proto/imap_search.h"
#include "proto/mime.h"
#include "proto/sasl.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/users.h"
#include "tls/tls.h"

/* APPEND: its keyword names copied out of the command (which the
 * literal replaces), each followed by '\n'. Always 0. */
static struct kwargs app_kwa;

static int kw_keep(struct imap_session *s)
{
	struct buf b;

	buf_init(&b, s->app_kw, sizeof(s->app_kw));
	for (int i = 0; i < app_kwa.n; i++) {
		size_t at = b.len;
		if (buf_add(&b, app_kwa.p[i], app_kwa.len[i]) != 0 ||
		    buf_addc(&b, '\n') != 0) {
			buf_truncate(&b, at);   /* beyond the table's size anyway */
			break;
		}
	}
	s->app_kwlen = b.len;
	return 0;
}

/* ---- APPEND, COPY, MOVE: new messages in a target mailbox ---------------
 * The target is s->tmp. Its lock is taken (retried while another program
 * holds it), the messages appended and fsynced, then its index brought up
 * to date with the lock still held (OPEN_APPEND/OPEN_COPY); imap_new_done()
 * sets the flags of the new records, which start at s->new_off. */

static void index_new(struct conn *c, struct imap_session *s, int kind);
static int kw_room(struct mbx *to, const char *const *p, const size_t *len, int n);

/* Is message i (record r) of the selected mailbox in the command's set? */
static int in_set(const struct imap_session *s, uint32_t i, const struct idx_rec *r)
{
	if (!s->set)
		return 0;
	return seq_has(s->set, s->set_len, s->set_star, s->set_uid ? r->uid : i + 1);
}

/* Answers an operation on the target that ends here (failed or not). */
static void target_end(struct conn *c, struct imap_session *s, const char *st,
		       const char *text)
{
	if (s->app_fd >= 0)
		close(s->app_fd);
	s->app_fd = -1;
	s->app_mode = APP_NONE;
	imap_unlock(s);
	imap_mbx_close(&s->tmp);
	sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	imap_tagged(c, s, st, "%s", text);
	imap_wait_command(c, s);
	conn_resume(c);
}

static const char *write_error(int e)
{
	return e == ENOSPC || e == EDQUOT ? "[OVERQUOTA] No space left for the message" :
	       "[SERVERBUG] Cannot write the message";
}

/* Locks the target: 1 locked, 0 retry later (deadline set), -1 answered. */
static int target_lock(struct conn *c, struct imap_session *s)
{
	int rc;

	if (s->locked)
		return 1;
	rc = imap_lock_wait(c, s, s->tmp.dir, s->tmp.name);
	if (rc == MBOX_AGAIN)
		return 0;
	if (rc != MBOX_OK) {
		if (rc == MBOX_ERR)
			log_msg(LOGL_WARN, "conn %u %s: imap %s: lock %s: %s", c->id,
				c->peer_str, s->user, s->tmp.full, strerror(errno));
		target_end(c, s, "NO", rc == MBOX_BUSY ?
			   "[INUSE] Mailbox is locked by another program" :
			   "[SERVERBUG] Cannot open the mailbox");
		return -1;
	}
	s->locked = 1;
	s->new_off = (uint64_t)s->lock.old_size;
	return 1;
}

/* The target named by the command: 0, or -1 when answered (no such
 * mailbox: TRYCREATE, as clients then CREATE and retry). */
static int target_set(struct conn *c, struct imap_session *s, const char *name,
		      size_t nl, const char **st, const char **err)
{
	(void)c;
	*st = "NO";
	if (memchr(name, '\0', nl) || imap_mbx_paths(s, &s->tmp, name, nl) != 0) {
		*err = "[CANNOT] Bad mailbox name";
		return -1;
	}
	if (imap_is_inbox(s, &s->tmp))
		return 0;
	switch (folder_kind(s->base, s->tmp.full)) {
	case FOLDER_MBOX:
		return 0;
	case FOLDER_DIR:
		*err = "[CANNOT] Not a mailbox (\\Noselect)";
		return -1;
	default:
		*err = "[TRYCREATE] No such mailbox";
		return -1;
	}
}

static int tmp_file(void)
{
	char dir[CONF_PATH_MAX + 16];
	int fd;

	snprintf(dir, sizeof(dir), "%s/%s", conf->mail_dir, IDX_DIR);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -1;
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	/* No O_TMPFILE here: a named file, unlinked at once. */
	for (int i = 0; i < 100; i++) {
		char p[sizeof(dir) + 40];
		snprintf(p, sizeof(p), "%s/append.%d.%d", dir, (int)getpid(), i);
		fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			unlink(p);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* "tag APPEND mailbox [(flags)] [date] {n}": the line so far ends with the
 * message literal. Returns 0 when the command is not APPEND (the usual
 * reader goes on), 1 when this takes the literal (to a temporary file),
 * 2 when it is refused (the answer in app_st/app_err; the reader drops
 * the literal if the client sends it without waiting). */
int imap_append_begin(struct conn *c, struct imap_session *s, uint64_t lit)
{
	struct ip ip;
	const char *tag, *w, *st = "BAD", *err = NULL;
	char *name;
	size_t tl, wl, nl, open_brace = s->cb.len;

	while (open_brace > s->line0 && s->cmd[open_brace - 1] != '{')
		open_brace--;
	if (open_brace == s->line0 || s->ss.state == IMAP_NOAUTH)
		return 0;
	ip_init(&ip, s->cmd, open_brace - 1);
	if (ip_tag(&ip, &tag, &tl) || ip_sp(&ip) || ip_atom(&ip, &w, &wl, 0) ||
	    !str_ieq(w, wl, "APPEND") || ip_sp(&ip) || ip_done(&ip))
		return 0;       /* not APPEND, or the literal is the mailbox name */
	str_copy(s->tag, sizeof(s->tag), tag, tl);
	s->app_flags = 0;
	s->app_kwlen = 0;
	app_kwa.n = 0;
	s->app_time = (int64_t)time(NULL);
	s->app_size = 0;
	s->app_cr = 0;
	if (ip_astring(&ip, &name, &nl) || ip_sp(&ip) ||
	    (ip_peek(&ip) == '(' && (imap_flag_list(&ip, &s->app_flags, &app_kwa) ||
				     kw_keep(s) || ip_sp(&ip))) ||
	    (ip_peek(&ip) == '"' && (ip_datetime(&ip, &s->app_time) || ip_sp(&ip))) ||
	    !ip_done(&ip))
		err = "Syntax: APPEND mailbox [(flags)] [date-time] {size}";
	else if (s->ss.state != IMAP_AUTHED && s->ss.state != IMAP_SELECTED)
		err = "Command not valid in this state";
	else if (target_set(c, s, name, nl, &st, &err) == 0) {
		if (lit == 0)
			err = "Empty message";
		else if (lit > conf->max_message_size)
			err = "[TOOBIG] Message larger than the size limit";
		else if (kw_room(&s->tmp, app_kwa.p, app_kwa.len, app_kwa.n) != 0)
			err = errno == ENOSPC ? "[LIMIT] Too many keywords in this mailbox" :
			      errno == ENAMETOOLONG ? "[LIMIT] Keyword too long" :
			      "[SERVERBUG] Cannot keep keywords";
		else if ((s->app_fd = tmp_file()) < 0)
			err = write_error(errno);
	}
	s->app_st = st;
	s->app_err = err;
	if (err) {
		s->app_mode = APP_NONE;
		imap_mbx_close(&s->tmp);
		return 2;
	}
	explicit_bzero(s->cmd, s->cb.len);
	buf_reset(&s->cb);
	s->line0 = 0;
	s->app_mode = APP_STORE;
	return 1;
}

/* Literal octets of the message: CRLF becomes LF on the way to the file.
 * A NUL byte refuses the message (a literal is CHAR8, RFC 3501 §9; SMTP
 * refuses it too): the rest of the literal is read and dropped. */
void imap_append_feed(struct imap_session *s, const char *p, size_t n)
{
	struct buf w;

	if (s->app_mode != APP_STORE)
		return;
	if (memchr(p, '\0', n)) {
		s->app_mode = APP_DISCARD;
		s->app_st = "NO";
		s->app_err = "Message has a NUL byte";
		return;
	}
	buf_init(&w, imap_obuf, sizeof(imap_obuf));
	for (size_t i = 0; i < n; i++) {
		if (s->app_cr) {
			s->app_cr = 0;
			if (p[i] != '\n')
				buf_addc(&w, '\r');
		}
		if (p[i] == '\r')
			s->app_cr = 1;
		else
			buf_addc(&w, p[i]);
		/* Two bytes can come of one: written out before they could
		 * be refused. */
		if (!buf_fits(&w, 2, 0) || i + 1 == n) {
			if (write_all_fd(s->app_fd, w.p, w.len) != 0) {
				s->app_mode = APP_DISCARD;
				s->app_st = "NO";
				s->app_err = write_error(errno);
				return;
			}
			s->app_size += w.len;
			buf_reset(&w);
		}
	}
}

void imap_append_step(struct conn *c, struct imap_session *s)
{
	int rc = target_lock(c, s);

	if (rc <= 0)
		return;
	rc = mbox_append_step(&s->lock, &s->app_ap, "", (time_t)s->app_time,
			      s->app_fd, 0, (off_t)s->app_size, IMAP_STEP);
	if (rc == MBOX_AGAIN) {
		conn_deadline_ms(c, 0);         /* IMAP_STEP a pass */
		return;
	}
	if (rc != MBOX_OK) {
		log_msg(LOGL_WARN, "conn %u %s: imap %s: append to %s: %s", c->id,
			c->peer_str, s->user, s->tmp.full, strerror(errno));
		target_end(c, s, "NO", write_error(errno));
		return;
	}
	close(s->app_fd);
	s->app_fd = -1;
	s->app_mode = APP_NONE;
	index_new(c, s, OPEN_APPEND);
}

/* The rest of the APPEND line after the message literal is in s->cmd. */
void imap_append_end(struct conn *c, struct imap_session *s)
{
	s->app_rest = 0;
	if (s->app_mode == APP_STORE && s->app_cr) {
		/* A CR at the very end is part of the message. */
		s->app_cr = 0;
		if (write_all_fd(s->app_fd, "\r", 1) == 0) {
			s->app_size++;
		} else {
			s->app_mode = APP_DISCARD;
			s->app_st = "NO";
			s->app_err = write_error(errno);
		}
	}
	if (s->cb.len != 0 && s->app_mode == APP_STORE) {
		s->app_mode = APP_DISCARD;
		s->app_st = "BAD";
		s->app_err = "One message per APPEND (no MULTIAPPEND)";
	}
	if (s->app_mode != APP_STORE) {
		sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
		conn_suspend(c);
		target_end(c, s, s->app_st, s->app_err);
		return;
	}
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	mbox_append_begin(&s->app_ap);
	sess_enter(c, IMAP_APPEND);
	conn_suspend(c);
	imap_append_step(c, s);
}

/* Copies IMAP_STEP bytes a pass, also inside one message (copy_done:
 * its bytes already in the target), then syncs and indexes the target. */
void imap_copy_step(struct conn *c, struct imap_session *s)
{
	struct idx_rec r;
	size_t budget = IMAP_STEP;
	int rc = target_lock(c, s);

	if (rc <= 0)
		return;
	for (; s->copy_i < s->sel.hdr.count && budget > 0; s->copy_i++) {
		off_t before = s->copy_done;
		if (imap_get_rec(&s->sel, s->copy_i, &r) != 0) {
			mbox_rollback(&s->lock);
			target_end(c, s, "NO", "[SERVERBUG] Cannot read the mailbox index");
			return;
		}
		/* An index record costs too: a set over many messages. */
		budget -= budget < IDX_REC_SIZE ? budget : IDX_REC_SIZE;
		if (!in_set(s, s->copy_i, &r))
			continue;
		rc = mbox_append_raw(&s->lock, s->sel.mfd, (off_t)r.off,
				     (off_t)(r.from_len + r.data_len), &s->copy_done,
				     budget);
		if (rc == MBOX_ERR) {
			log_msg(LOGL_WARN, "conn %u %s: imap %s: copy to %s: %s", c->id,
				c->peer_str, s->user, s->tmp.full, strerror(errno));
			target_end(c, s, "NO", write_error(errno));
			return;
		}
		budget -= budget < (size_t)(s->copy_done - before) ? budget :
			  (size_t)(s->copy_done - before);
		if (rc == MBOX_AGAIN)
			break;          /* inside this message: on at the next pass */
		s->copy_done = 0;
	}
	if (s->copy_i < s->sel.hdr.count || budget < IMAP_STEP) {
		/* More to copy, or all copied: the fsync at a step of its own. */
		mbox_step_end(&s->lock);
		conn_deadline_ms(c, 0);
		return;
	}
	if (mbox_sync(&s->lock) != MBOX_OK) {
		target_end(c, s, "NO", write_error(errno));
		return;
	}
	index_new(c, s, OPEN_COPY);
}

static void index_new(struct conn *c, struct imap_session *s, int kind)
{
	s->open_kind = kind;
	s->restarts = 0;
	sess_enter(c, IMAP_OPEN);
	if (imap_mbx_begin(s, &s->tmp) != 0) {
		imap_open_fail(c, s, "Cannot open the mailbox");
		return;
	}
	imap_open_step(c, s);
}

/* Appends "a" or "a:b" of a run of UIDs to a set text. */
static void uid_run(char *out, size_t n, size_t *len, uint32_t a, uint32_t b)
{
	struct buf t;
	int rc;

	if (*len >= n)
		return;
	buf_init(&t, out, n);
	buf_commit(&t, *len);
	rc = a == b ? buf_printf(&t, "%s%u", t.len ? "," : "", a) :
		      buf_printf(&t, "%s%u:%u", t.len ? "," : "", a, b);
	*len = rc != 0 ? n : t.len;     /* n: full, the set is cut */
}

/* Runs of consecutive UIDs, fed one at a time. */
struct uid_set {
	char text[120];
	size_t len;
	uint32_t a, b;
	int any;
};

static void uid_add(struct uid_set *u, uint32_t uid)
{
	if (u->any && uid == u->b + 1) {
		u->b = uid;
		return;
	}
	if (u->any)
		uid_run(u->text, sizeof(u->text), &u->len, u->a, u->b);
	u->a = u->b = uid;
	u->any = 1;
}

static int uid_done(struct uid_set *u)
{
	if (u->any)
		uid_run(u->text, sizeof(u->text), &u->len, u->a, u->b);
	return u->len < sizeof(u->text);
}

/* The target's keyword names while new_done runs (one call). */
static struct idx_kw target_kw;

/* Keyword names as bits of the target's table (kw_room added them
 * before the messages went in; what another session's names crowded out
 * meanwhile is dropped: the messages are already in). */
static uint64_t kw_names(struct mbx *to, const char *const *p, const size_t *len,
			 int n)
{
	char path[FOLDER_PATH_MAX + 320];
	uint64_t out = 0;

	if (n == 0 || CONFIG_IMAP_KEYWORDS_MAX == 0 ||
	    idx_path(to->dir, to->name, ".kw", path, sizeof(path), 0) != 0)
		return 0;
	for (int i = 0; i < n; i++) {
		int t = idx_kw_add(path, &target_kw, p[i], len[i], CONFIG_IMAP_KEYWORDS_MAX);
		if (t >= 0)
			out |= (uint64_t)1 << t;
	}
	return out;
}

/* Before APPEND, COPY or MOVE: every keyword name the new messages carry
 * is put into the target's table, or none (then nothing goes in: the
 * command is refused rather than the keywords lost). 0, or -1 with errno
 * as idx_kw_add_all's. */
static int kw_room(struct mbx *to, const char *const *p, const size_t *len, int n)
{
	char path[FOLDER_PATH_MAX + 320];

	if (n == 0 || CONFIG_IMAP_KEYWORDS_MAX == 0)
		return 0;
	/* The target's index folder may not exist yet (a folder created
	 * but never selected): made here, as indexing would. */
	if (idx_path(to->dir, to->name, ".kw", path, sizeof(path), 1) != 0)
		return -1;
	imap_kw_load(to, &target_kw);
	return idx_kw_add_all(path, &target_kw, p, len, n, CONFIG_IMAP_KEYWORDS_MAX);
}

/* APPEND's keywords (kept by kw_keep) in the target's table. */
static uint64_t kw_appended(struct imap_session *s, struct mbx *to)
{
	size_t at = 0;

	app_kwa.n = 0;
	for (size_t i = 0; i < s->app_kwlen && app_kwa.n < IDX_KW_MAX; i++)
		if (s->app_kw[i] == '\n') {
			app_kwa.p[app_kwa.n] = s->app_kw + at;
			app_kwa.len[app_kwa.n++] = i - at;
			at = i + 1;
		}
	return kw_names(to, app_kwa.p, app_kwa.len, app_kwa.n);
}

/* The names of keywords kw of the selected mailbox. */
static const struct kwargs *kw_list(struct imap_session *s, uint64_t kw)
{
	static struct kwargs a;

	a.n = 0;
	for (unsigned k = 0; k < s->kw.n; k++)
		if (kw >> k & 1) {
			a.p[a.n] = s->kw.buf + s->kw.off[k];
			a.len[a.n++] = s->kw.len[k];
		}
	return &a;
}

/* Keywords kw of the selected mailbox in the target's table. */
static uint64_t kw_map(struct imap_session *s, struct mbx *to, uint64_t kw)
{
	const struct kwargs *a = kw_list(s, kw);

	return kw_names(to, a->p, a->len, a->n);
}

/* The target's index is up to date (indexed = 1) or could not be read:
 * flags of the new messages, the UIDPLUS answer, then MOVE's expunge. */
void imap_new_done(struct conn *c, struct imap_session *s, int indexed)
{
	static struct uid_set src, dst;
	struct mbx *m = &s->tmp;
	struct idx_rec r, sr;
	uint32_t k = m->hdr.count, i = 0;
	char text[300];
	int kind = s->open_kind, same = s->have_sel && imap_same_mbx(m, &s->sel);

	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	imap_kw_load(m, &target_kw);
	/* The first new record: the first at or after new_off. */
	for (uint32_t lo = 0, hi = indexed ? m->hdr.count : 0; lo < hi;) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (imap_get_rec(m, mid, &r) != 0) {
			indexed = 0;
			break;
		}
		if (r.off < s->new_off)
			lo = mid + 1;
		else
			hi = k = mid;
	}
	for (; indexed && k < m->hdr.count; k++) {
		if (imap_get_rec(m, k, &r) != 0)
			break;
		if (kind == OPEN_APPEND) {
			r.flags = s->app_flags;
			r.kw = kw_appended(s, m);
		} else {
			for (; i < s->sel.hdr.count; i++)
				if (imap_get_rec_live(s, i, &sr) == 0 && in_set(s, i, &sr))
					break;
			if (i == s->sel.hdr.count)
				break;
			r.flags = sr.flags;
			r.kw = same ? sr.kw : kw_map(s, m, sr.kw);
			uid_add(&src, sr.uid);
			i++;
		}
		if ((r.flags || r.kw) && idx_store(&m->rd, k, &r) != 0)
			break;
		uid_add(&dst, r.uid);
		if (kind == OPEN_APPEND)
			break;
	}
	if (kind == OPEN_APPEND && CONFIG_IMAP_UIDPLUS && dst.any && uid_done(&dst))
		snprintf(text, sizeof(text), "[APPENDUID %u %s] APPEND completed",
			 m->hdr.uidvalidity, dst.text);
	else if (kind == OPEN_COPY && CONFIG_IMAP_UIDPLUS && dst.any &&
		 uid_done(&src) && uid_done(&dst))
		snprintf(text, sizeof(text), "[COPYUID %u %s %s] %s completed",
			 m->hdr.uidvalidity, src.text, dst.text,
			 s->copy_move ? "MOVE" : "COPY");
	else
		snprintf(text, sizeof(text), "%s completed", kind == OPEN_APPEND ?
			 "APPEND" : s->copy_move ? "MOVE" : "COPY");
	imap_tell_changed(s, m->dir, m->name);
	imap_mbx_close(m);
	sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	/* Answer first: resuming runs the next pipelined command at once. */
	if (kind == OPEN_COPY && s->copy_move) {
		if (text[0] == '[')
			conn_printf(c, "* OK %.*s Moved UIDs.\r\n",
				    (int)(strchr(text, ']') + 1 - text), text);
		imap_start_rewrite(c, s, 0, RW_MOVE, s->set_uid ? "UID MOVE completed" :
				   "MOVE completed");
		if (s->ss.state == IMAP_REWRITE)
			return;         /* rewrite_end resumes */
	} else {
		if (same)
			s->need_sync = 1;
		if (s->have_sel)
			imap_sync_then_ok(c, s, text);
		else
			imap_tagged(c, s, "OK", "%s", text);
	}
	if (imap_reading_state(s))
		imap_wait_command(c, s);
	conn_resume(c);
}

/* Checks a sequence set against the selected mailbox; the set's "*". */
static int set_check(struct conn *c, struct imap_session *s, const char *set,
		     size_t sl, int uid)
{
	struct idx_rec r;

	s->set = set;
	s->set_len = sl;
	s->set_uid = uid;
	s->set_star = s->sel.hdr.count;
	if (uid) {
		s->set_star = 0;
		if (s->sel.hdr.count && imap_get_rec(&s->sel, s->sel.hdr.count - 1, &r) == 0)
			s->set_star = r.uid;
		return 0;
	}
	return imap_seqs_exist(c, s, set, sl);
}

void imap_cmd_copy(struct conn *c, struct imap_session *s, struct ip *ip, int uid,
		   int move)
{
	const char *set, *st, *err;
	char *name;
	size_t sl, nl;
	struct idx_rec r;
	uint32_t n = 0;
	uint64_t kw = 0;

	if (ip_sp(ip) || ip_seqset(ip, &set, &sl) || ip_sp(ip) ||
	    ip_astring(ip, &name, &nl) || ip_end(ip)) {
		imap_bad(c, s, move ? "Syntax: MOVE set mailbox" : "Syntax: COPY set mailbox");
		return;
	}
	if (set_check(c, s, set, sl, uid) != 0)
		return;
	if (move && s->sel.readonly) {
		imap_tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	if (target_set(c, s, name, nl, &st, &err) != 0) {
		imap_tagged(c, s, st, "%s", err);
		return;
	}
	for (uint32_t i = 0; i < s->sel.hdr.count; i++)
		if (imap_get_rec_live(s, i, &r) == 0 && in_set(s, i, &r)) {
			n++;
			kw |= r.kw;
		}
	s->copy_move = move;
	if (n == 0) {
		/* UID sets may name nothing that exists. */
		imap_mbx_close(&s->tmp);
		imap_tagged(c, s, "OK", "No messages");
		return;
	}
	if (kw && !imap_same_mbx(&s->tmp, &s->sel)) {
		const struct kwargs *a = kw_list(s, kw);
		if (kw_room(&s->tmp, a->p, a->len, a->n) != 0) {
			int e = errno;
			imap_mbx_close(&s->tmp);
			imap_kw_refused(c, s, e);
			return;
		}
	}
	s->copy_i = 0;
	s->copy_done = 0;
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	sess_enter(c, IMAP_COPY);
	conn_suspend(c);
	imap_copy_step(c, s);
}

void imap_cmd_copy_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	imap_cmd_copy(c, s, ip, 0, 0);
}

void imap_cmd_move(struct conn *c, struct imap_session *s, struct ip *ip)
{
	imap_cmd_copy(c, s, ip, 0, 1);
}

void imap_cmd_uid_expunge(struct conn *c, struct imap_session *s, struct ip *ip)
{
	const char *set;
	size_t sl;

	if (ip_sp(ip) || ip_seqset(ip, &set, &sl) || ip_end(ip)) {
		imap_bad(c, s, "Syntax: UID EXPUNGE set");
		return;
	}
	if (s->sel.readonly) {
		imap_tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	set_check(c, s, set, sl, 1);
	imap_start_rewrite(c, s, 0, RW_UID_EXPUNGE, "UID EXPUNGE completed");
}

/* APPEND whose message is not a literal (append_begin takes those). */
void imap_cmd_append(struct conn *c, struct imap_session *s, struct ip *ip)
{
	(void)ip;
	imap_bad(c, s, "Syntax: APPEND mailbox [(flags)] [date-time] {size}");
}
