/* imap — IMAP4rev1 server sessions (RFC 3501) with LITERAL+ (RFC 7888),
 * SASL-IR (RFC 4959), ID (RFC 2971), ENABLE (RFC 5161), IDLE (RFC 2177),
 * NAMESPACE (RFC 2342), UNSELECT (RFC 3691); STARTTLS and imaps.
 *
 * One enum of states, one imap_enter() that is the only writer of the
 * state, a command table of {verb, allowed states, handler}. Handlers
 * parse the whole command (imap_parse.c) and answer BAD before acting.
 * Anything whose answer can outgrow the connection's output buffer
 * (FETCH, SEARCH, STORE, EXPUNGE, LIST) runs as a job that produces
 * output as the socket takes it, then the tagged answer.
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
 * session (IDLE included) sets no timer but its autologout deadline.
 *
 * Limits: IMAP_CMD_MAX octets per command (literals included),
 * IMAP_MAX_ERRORS, CONFIG_IMAP_TIMEOUT, the parser's limits. */
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
#include "proto/imap_parse.h"
#include "proto/imap_search.h"
#include "proto/mime.h"
#include "proto/sasl.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/users.h"
#include "tls/tls.h"

#define IMAP_CMD_MAX CONFIG_IMAP_CMD_MAX
#define IMAP_ITEM_MAX CONFIG_IMAP_ITEM_MAX
#define IMAP_NAME_MAX FOLDER_NAME_MAX
#define IMAP_MAX_ERRORS 30
#define IMAP_MAX_COMMANDS 10000000
#define IMAP_REPLY_ROOM 512
_Static_assert(IMAP_REPLY_ROOM <= CONFIG_CONN_OUTBUF,
	       "CONN_OUTBUF must hold IMAP_REPLY_ROOM, or no command is read");
#define IMAP_IDLE_TIMEOUT 1800          /* RFC 2177: at least 29 minutes */
#define IMAP_LOCK_RETRY_MS 200
#define IMAP_STEP ((size_t)CONFIG_LOOP_STEP_KB * 1024)
#define IMAP_SEND_BUDGET (256 * 1024)
#define IMAP_PEND 16
#define IMAP_PEND_SCAN 4096 /* records a flag push looks at per pass */

enum imap_state {
	IMAP_NOAUTH,
	IMAP_AUTH_WAIT,         /* failed login: delaying the answer */
	IMAP_SASL,              /* AUTHENTICATE PLAIN: waiting for the response */
	IMAP_AUTHED,
	IMAP_SELECTED,
	IMAP_OPEN,              /* opening a mailbox (index scan, lock) */
	IMAP_BUSY,              /* a job streams its answer */
	IMAP_REWRITE,           /* EXPUNGE/CLOSE/MOVE: rewriting the mbox */
	IMAP_APPEND,            /* APPEND: waiting for the target's lock */
	IMAP_COPY,              /* COPY/MOVE: copying into the target */
	IMAP_IDLE,
	IMAP_LOGOUT,
};

static const char *const state_names[] = {
	"noauth", "auth-wait", "sasl", "authed", "selected", "open", "busy",
	"rewrite", "append", "copy", "idle", "logout",
};

struct mbx {
	char dir[FOLDER_PATH_MAX + 16];
	char name[IMAP_NAME_MAX + 1];
	char full[IMAP_NAME_MAX + 1];   /* as the client names it */
	int mfd, ifd;
	struct idx_hdr hdr;
	struct idx_reader rd;
	int readonly;
	/* The live index when another session replaced the file of this
	 * view (EXPUNGE elsewhere): flags are read and written there. */
	int lfd;
	int live_gone;          /* the live index has another UIDVALIDITY */
	/* (its reader is the session's lrd: only the selected one has it) */
};

/* Keywords named in a command's flag list (pointing into the command). */
struct kwargs {
	int n;
	const char *p[IDX_KW_MAX];
	size_t len[IDX_KW_MAX];
};

enum { OPEN_SELECT, OPEN_EXAMINE, OPEN_STATUS, OPEN_APPEND, OPEN_COPY };
enum { APP_NONE, APP_STORE, APP_DISCARD };
enum { RW_DELETED, RW_UID_EXPUNGE, RW_MOVE };
enum { J_TEXT, J_FETCH, J_STORE, J_SEARCH, J_MERGE };
enum { SEG_TEXT, SEG_SEC };

struct seg {
	uint8_t kind, sec;
	uint32_t off, len;
};

struct secrange {
	uint64_t a, b;          /* converted offsets */
	uint64_t total;         /* bytes after the header filter */
	uint64_t wstart, wlen;  /* the part sent */
};

/* A header-field filter (HEADER.FIELDS and .NOT) over converted bytes. */
struct hfilter {
	int on, not, bol, decided, include;
	char hold[80];
	size_t hlen;
	const char *const *names;
	const size_t *lens;
	int n;
};

struct stream {
	uint64_t fpos, fend;    /* mbox bytes left */
	uint64_t cpos;          /* converted offset of the next byte */
	uint64_t fo;            /* filtered bytes so far */
	int ended;
	struct idx_out cv;
	struct hfilter hf;
	const struct secrange *r;
};

struct job {
	int kind;
	int uid;                /* UID command: UIDs in and out */
	struct seq_iter it;
	uint32_t cur, hi;       /* sequence numbers left of this range */
	int in_msg;             /* J_FETCH: segments of a message going out */
	int seg, nseg;
	uint32_t seg_off;
	struct seg segs[2 * IMAP_FETCH_ITEMS + 4];
	struct secrange sr[IMAP_FETCH_SECS];
	struct stream st;
	int st_live;
	struct idx_rec rec;
	/* J_FETCH: reading what the plan of a message needs (PREP_*) */
	int prep, prep_k, need_mime, need_full;
	uint64_t mp_pos, mp_end;        /* the MIME parse, resumable */
	int mp_header_only;
	struct idx_out mp_cv;
	/* STORE */
	int mode;               /* '+', '-' or 0 (replace) */
	int silent;
	uint32_t flags;
	uint64_t kw;            /* keywords of the flag list */
	int unchanged;          /* UNCHANGEDSINCE given */
	uint64_t since;
	char modified[200];     /* messages that failed it, as a set */
	size_t modlen;
	/* J_MERGE */
	struct idx_reader *oldrd;
	uint32_t old_next;      /* UIDNEXT before: new messages from here */
	uint32_t oi, nj, removed;
	uint32_t newcount;
	/* J_SEARCH: MODSEQ asked, the highest of the matches */
	int with_modseq;
	uint64_t maxmod;
	unsigned need;          /* SRCH_NEED_* */
	struct srch_msg sm;     /* the message being searched (in_msg) */
	struct srch_scan sx;
	uint64_t spos, send;    /* its mbox bytes not yet fed */
	struct idx_out scv;
	/* bytes of mail this pass may still read (IMAP_STEP a pass) */
	size_t budget;
	/* J_TEXT */
	uint32_t text_off;
	int matched;
};

struct imap_session {
	enum imap_state state;
	int ncmds, nerrors;
	char user[USER_NAME_MAX + 1];
	char base[FOLDER_PATH_MAX + 16];        /* the user's folders */
	char tag[IMAP_TAG_MAX + 1];
	char done_text[300];    /* tagged answer after a job */
	/* the selected mailbox and the one being opened */
	struct mbx sel, tmp;
	int have_sel;
	uint32_t recent_lo, recent_hi;  /* UIDs \Recent in this session */
	int open_kind;
	unsigned status_items;
	struct mbox_lock lock;
	int locked;
	int64_t lock_until;
	int restarts;
	union {
		struct idx_update upd;
		struct idx_rewrite rw;
	} u;
	int upd_live, rw_live;
	int rw_ifd;             /* the live index the rewrite starts from */
	struct idx_reader rw_rd;
	struct idx_hdr rw_hdr;
	int rw_close;           /* CLOSE: no EXPUNGE answers */
	int rw_mode;            /* RW_*: which messages go */
	char rw_done[32];
	/* APPEND: the literal goes to a temporary file (LF line ends) */
	int app_mode;           /* APP_* */
	struct mbox_append app_ap;      /* into the target, IMAP_STEP a pass */
	int app_fd, app_cr, app_rest;
	uint32_t app_flags;
	char app_kw[IDX_KW_BYTES];      /* APPEND's keywords, '\n' after each */
	size_t app_kwlen;
	struct idx_reader lrd;  /* the selected mailbox's live index */
	struct idx_kw kw;       /* its keyword names (bits of idx_rec.kw) */
	int64_t app_time;
	uint64_t app_size;
	const char *app_st, *app_err;   /* the answer of a refused APPEND */
	uint64_t new_off;       /* APPEND/COPY: where the new messages start */
	/* COPY, MOVE, UID EXPUNGE: the set, inside cmd until the answer */
	const char *set;
	size_t set_len;
	int set_uid, copy_move;
	uint32_t set_star, copy_i;
	off_t copy_done;        /* bytes of message copy_i in the target */
	/* other sessions' news */
	uint32_t pend[IMAP_PEND];
	int npend, pend_all, need_sync;
	uint64_t pend_since;    /* every pending change has a higher modseq */
	uint32_t pend_scan;     /* pend_all: next view record to look at */
	int live_stale;         /* another session replaced the index */
	int merge_idle;         /* J_MERGE runs for an IDLE session */
	int kw_news;            /* keywords defined elsewhere: send FLAGS */
	int condstore;
	/* the old index while J_MERGE runs */
	int old_ifd;
	struct idx_reader oldrd;
	struct job job;
	union {
		struct fetch_req fr;
		struct search_prog sp;
	} q;
	/* command reader (read_step): cb is over cmd; the fields up to cmd
	 * are zeroed when a session starts */
	int rd, rd_taken;       /* RD_*; a command was handed out */
	int refused;            /* this command ends in ref_st/ref_text */
	const char *ref_st, *ref_text;
	size_t line0;           /* start of the current line in cmd */
	uint64_t lit_left;
	struct buf tailb;       /* over tail: the end of a dropped line */
	char tail[32];
	struct buf cb;
	char cmd[IMAP_CMD_MAX + 1];
	struct buf ib;          /* over item: one message's FETCH text, or
				 * a LIST answer */
	char item[IMAP_ITEM_MAX];
};

static struct imap_session pool[CONFIG_MAX_CONNECTIONS];
static unsigned char pool_used[CONFIG_MAX_CONNECTIONS];
static struct conn *pool_conn[CONFIG_MAX_CONNECTIONS];

/* Shared scratch, used within one call only (single-threaded). */
static unsigned char fbuf[8192];
static char obuf[2 * sizeof(fbuf) + 64];
static struct mime mime;
static uint16_t kmp_tab[IMAP_CMD_MAX];  /* SEARCH needles' tables */

static int in_set(const struct imap_session *s, uint32_t i, const struct idx_rec *r);
static int reading_state(const struct imap_session *s);
static void reader_reset(struct imap_session *s);
static void cmd_copy(struct conn *c, struct imap_session *s, struct ip *ip, int uid,
		     int move);
static void cmd_uid_expunge(struct conn *c, struct imap_session *s, struct ip *ip);

static void imap_enter(struct conn *c, struct imap_session *s, enum imap_state st)
{
	if (s->state != st)
		log_msg(LOGL_DEBUG, "conn %u: imap %s -> %s", c->id,
			state_names[s->state], state_names[st]);
	s->state = st;
}

static void wait_command(struct conn *c, struct imap_session *s)
{
	/* The command (and any set a finished operation used) is done. */
	if (s->rd_taken)
		reader_reset(s);
	s->set = NULL;
	conn_deadline(c, s->state == IMAP_IDLE ? IMAP_IDLE_TIMEOUT :
		      s->state == IMAP_NOAUTH ? 60 : CONFIG_IMAP_TIMEOUT);
}

static void logout_now(struct conn *c, struct imap_session *s)
{
	imap_enter(c, s, IMAP_LOGOUT);
	conn_close_after_flush(c);
}

static void tagged(struct conn *c, struct imap_session *s, const char *st,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void tagged(struct conn *c, struct imap_session *s, const char *st,
		   const char *fmt, ...)
{
	char text[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conn_printf(c, "%s %s %s\r\n", s->tag[0] ? s->tag : "*", st, text);
	if (st[0] != 'O' && ++s->nerrors >= IMAP_MAX_ERRORS &&
	    s->state != IMAP_LOGOUT) {
		conn_printf(c, "* BYE Too many errors\r\n");
		log_msg(LOGL_WARN, "conn %u %s: imap: too many errors", c->id,
			c->peer_str);
		logout_now(c, s);
	}
}

static void bad(struct conn *c, struct imap_session *s, const char *why)
{
	tagged(c, s, "BAD", "%s", why);
}

/* ---- mailboxes ------------------------------------------------------- */

static int mbx_paths(struct imap_session *s, struct mbx *m, const char *name,
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

static int is_inbox(const struct imap_session *s, const struct mbx *m)
{
	return strcmp(m->dir, conf->mail_dir) == 0 && strcmp(m->name, s->user) == 0;
}

static void mbx_close(struct mbx *m)
{
	if (m->mfd >= 0)
		close(m->mfd);
	if (m->ifd >= 0)
		close(m->ifd);
	if (m->lfd >= 0)
		close(m->lfd);
	m->mfd = m->ifd = m->lfd = -1;
}

static void unlock(struct imap_session *s)
{
	if (s->locked) {
		mbox_unlock(&s->lock);
		s->locked = 0;
	}
}

static void upd_abort_keep_lock(struct imap_session *s)
{
	if (s->upd_live) {
		idx_update_abort(&s->u.upd);
		s->upd_live = 0;
	}
}

static void upd_abort(struct imap_session *s)
{
	upd_abort_keep_lock(s);
	unlock(s);
}

/* Opens the mbox read-only and starts its index update; INBOX is created
 * when missing, as a delivery would. 0 or -1 with errno. */
static int mbx_begin(struct imap_session *s, struct mbx *m)
{
	char path[sizeof(m->dir) + IMAP_NAME_MAX + 2], ipath[sizeof(m->dir) + 300];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", m->dir, m->name);
	m->mfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (m->mfd < 0 && errno == ENOENT && is_inbox(s, m)) {
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
static int mbx_step(struct imap_session *s, struct mbx *m, int all)
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
			unlock(s);
			if (m->ifd >= 0)
				close(m->ifd);
			m->ifd = fd;
			idx_reader_init(&m->rd, m->ifd, m->hdr.count);
			return IDX_DONE;
		}
		if (rc == IDX_AGAIN_LOCK) {
			struct stat a, b;
			rc = mbox_lock(m->dir, m->name, &s->lock);
			if (rc == MBOX_BUSY)
				return IDX_AGAIN_LOCK;
			if (rc != MBOX_OK)
				return IDX_FAIL;
			s->locked = 1;
			if (fstat(s->lock.fd, &a) == 0 && fstat(m->mfd, &b) == 0 &&
			    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
				continue;
			errno = ESTALE;
		}
		return IDX_FAIL;
	}
	return IDX_AGAIN;
}

/* Reads the keyword names of m into t (empty when it has none). */
static void kw_load(const struct mbx *m, struct idx_kw *t)
{
	char path[FOLDER_PATH_MAX + 320];

	if (idx_path(m->dir, m->name, ".kw", path, sizeof(path), 0) != 0 ||
	    idx_kw_load(path, t) != 0)
		memset(t, 0, offsetof(struct idx_kw, buf));
}

/* Rereads them when another session added one: 1 when it did. */
static int kw_reload(const struct mbx *m, struct idx_kw *t)
{
	char path[FOLDER_PATH_MAX + 320];

	if (idx_path(m->dir, m->name, ".kw", path, sizeof(path), 0) != 0 ||
	    !idx_kw_changed(path, t))
		return 0;
	kw_load(m, t);
	return 1;
}

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

static int same_mbx(const struct mbx *a, const struct mbx *b)
{
	return strcmp(a->dir, b->dir) == 0 && strcmp(a->name, b->name) == 0;
}

static void sync_and_push(struct conn *c, struct imap_session *s);

/* Flags of uid changed in session me (new mod-sequence modseq): the
 * others reread and tell. More than IMAP_PEND pending changes turn
 * into a scan of the view for records above pend_since. */
static void tell_flags(struct imap_session *me, uint32_t uid, uint64_t modseq)
{
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		struct imap_session *o = &pool[i];
		if (!pool_used[i] || o == me || !o->have_sel || !same_mbx(&o->sel, &me->sel))
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
		if (o->state == IMAP_IDLE)
			sync_and_push(pool_conn[i], o);
	}
}

/* The mbox changed (delivery, expunge): sessions on it look again. */
static void tell_changed(struct imap_session *me, const char *dir, const char *name)
{
	for (int i = 0; i < CONFIG_MAX_CONNECTIONS; i++) {
		struct imap_session *o = &pool[i];
		if (!pool_used[i] || o == me || !o->have_sel ||
		    strcmp(o->sel.dir, dir) != 0 || strcmp(o->sel.name, name) != 0)
			continue;
		o->need_sync = 1;
		o->live_stale = 1;
		if (o->state == IMAP_IDLE)
			sync_and_push(pool_conn[i], o);
	}
}

void imap_notify_mailbox(const char *user)
{
	if (conf && user)
		tell_changed(NULL, conf->mail_dir, user);
}

/* ---- output helpers -------------------------------------------------- */

#define F_RECENT 0x80000000u      /* in answers only, never stored */

/* A flag list with every keyword fits FLAGS_TEXT_MAX. */
#define FLAGS_TEXT_MAX (IDX_KW_BYTES + 128)
static char flagbuf[FLAGS_TEXT_MAX];

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


static int get_rec(struct mbx *m, uint32_t i, struct idx_rec *r)
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
	if (s->have_sel && kw_reload(m, &s->kw))
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
static int live_rec(struct imap_session *s, uint32_t i, const struct idx_rec *r,
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
static int kw_has(void *ctx, const char *name, size_t n)
{
	struct imap_session *s = ctx;
	int k = idx_kw_find(&s->kw, name, n);

	return k >= 0 && (s->job.rec.kw >> k & 1);
}

/* Record i of the view with the flags in force now. */
static int get_rec_live(struct imap_session *s, uint32_t i, struct idx_rec *r)
{
	struct idx_reader *rd;
	struct idx_rec l;

	if (get_rec(&s->sel, i, r) != 0)
		return -1;
	if (live_rec(s, i, r, &rd, &l) >= 0) {
		r->flags = l.flags;
		r->kw = l.kw;
		r->modseq = l.modseq;
	}
	return 0;
}

static int is_recent(const struct imap_session *s, uint32_t uid)
{
	return uid >= s->recent_lo && uid < s->recent_hi;
}

/* The flags a client sees: the stored ones plus \Recent. */
static uint32_t view_flags(const struct imap_session *s, const struct idx_rec *r)
{
	return r->flags | (is_recent(s, r->uid) ? F_RECENT : 0);
}

/* "* FLAGS (...)" and PERMANENTFLAGS of the selected mailbox into b:
 * its keywords, and \* while more may be made (RFC 3501 7.2.6). */
static void flags_line(const struct imap_session *s, struct buf *b)
{
	const struct idx_kw *t = &s->kw;
	uint64_t all = t->n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << t->n) - 1;
	size_t n = flags_text(t, IDX_F_SEEN | IDX_F_ANSWERED | IDX_F_FLAGGED |
			      IDX_F_DELETED | IDX_F_DRAFT, all, flagbuf);

	buf_adds(b, "* FLAGS ");
	buf_add(b, flagbuf, n);
	buf_adds(b, "\r\n* OK [PERMANENTFLAGS ");
	if (s->sel.readonly) {
		buf_adds(b, "()");
	} else {
		buf_add(b, flagbuf, n - 1);
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
static size_t rec_flags(const struct imap_session *s, const struct idx_rec *r)
{
	return flags_text(&s->kw, view_flags(s, r), r->kw, flagbuf);
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
		if (get_rec(m, mid, &r) != 0)
			return m->hdr.count + 1;
		if (r.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1;
}

/* Messages whose UID is in [lo, hi). */
static uint32_t uid_count(struct mbx *m, uint32_t lo, uint32_t hi)
{
	uint32_t a = uid_lower(m, lo), b = uid_lower(m, hi);

	return hi > lo && b > a ? b - a : 0;
}

/* New messages (UIDs from `from`) seen by a session that selected the
 * mailbox read-write: it takes them as \Recent unless another session
 * already did. Then "* n RECENT". */
static void recent_update(struct conn *c, struct imap_session *s, uint32_t from)
{
	uint32_t old;

	if (!s->sel.readonly && s->recent_hi == from &&
	    idx_take_recent(s->sel.ifd, from, s->sel.hdr.uidnext, &old) == 1)
		s->recent_hi = s->sel.hdr.uidnext;
	conn_printf(c, "* %u RECENT\r\n", uid_count(&s->sel, s->recent_lo, s->recent_hi));
}

/* The next range of sequence numbers of the job's set: 1 or 0 at end. */
static int next_range(struct imap_session *s, struct job *j)
{
	struct mbx *m = &s->sel;
	uint32_t lo, hi, n = m->hdr.count;

	for (int guard = 0; guard < 100000; guard++) {
		if (j->uid) {
			struct idx_rec r;
			uint32_t maxuid = 0;
			if (n && get_rec(m, n - 1, &r) == 0)
				maxuid = r.uid;
			if (!seq_next(&j->it, maxuid ? maxuid : 1, &lo, &hi))
				return 0;
			/* "N:*" with N above every UID still means the last. */
			if (lo > maxuid && hi >= maxuid && n && lo != hi)
				lo = maxuid;
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

/* ---- header filter and streams --------------------------------------- */

static int name_in(const struct hfilter *f, const char *s, size_t n)
{
	for (int i = 0; i < f->n; i++)
		if (f->lens[i] == n) {
			size_t k;
			for (k = 0; k < n; k++) {
				int a = (unsigned char)s[k], b = (unsigned char)f->names[i][k];
				if ((a | (a >= 'A' && a <= 'Z' ? 0x20 : 0)) !=
				    (b | (b >= 'A' && b <= 'Z' ? 0x20 : 0)))
					break;
			}
			if (k == n)
				return 1;
		}
	return 0;
}

/* Emits one byte through the window of the stream (out NULL: counted
 * only). stream_step sizes its reads so that out never refuses. */
static void sink(struct stream *st, char ch, struct buf *out)
{
	if (st->fo >= st->r->wstart && st->fo < st->r->wstart + st->r->wlen && out)
		buf_addc(out, ch);
	st->fo++;
}

static void filter_byte(struct stream *st, char ch, struct buf *out)
{
	struct hfilter *f = &st->hf;

	if (!f->on) {
		sink(st, ch, out);
		return;
	}
	if (f->bol) {
		f->bol = 0;
		f->hlen = 0;
		if (ch == ' ' || ch == '\t') {
			f->decided = 1;         /* continuation: as before */
		} else if (ch == '\r' || ch == '\n') {
			f->decided = 1;         /* the blank line is always sent */
			f->include = 1;
		} else {
			f->decided = 0;
		}
	}
	if (!f->decided) {
		if (ch != ':' && ch != '\r' && ch != '\n' && f->hlen < sizeof(f->hold)) {
			struct buf h;   /* the field name so far */
			buf_init(&h, f->hold, sizeof(f->hold));
			buf_commit(&h, f->hlen);
			buf_addc(&h, ch);
			f->hlen = h.len;
			return;
		}
		size_t nl = f->hlen;
		while (nl > 0 && (f->hold[nl - 1] == ' ' || f->hold[nl - 1] == '\t'))
			nl--;
		f->include = name_in(f, f->hold, nl) != f->not;
		f->decided = 1;
		if (f->include)
			for (size_t i = 0; i < f->hlen; i++)
				sink(st, f->hold[i], out);
	}
	if (f->include)
		sink(st, ch, out);
	if (ch == '\n')
		f->bol = 1;
}

static void stream_init(struct stream *st, const struct idx_rec *r,
			const struct secrange *sr, const struct fetch_req *fr,
			const struct fetch_sec *sec)
{
	memset(st, 0, sizeof(*st));
	st->fpos = r->off + r->from_len;
	st->fend = st->fpos + r->data_len;
	st->r = sr;
	idx_out_init(&st->cv, 0, -1);
	if (sec && (sec->kind == SEC_FIELDS || sec->kind == SEC_FIELDS_NOT)) {
		st->hf.on = 1;
		st->hf.not = sec->kind == SEC_FIELDS_NOT;
		st->hf.bol = 1;
		st->hf.names = fr->fields + sec->field0;
		st->hf.lens = fr->field_len + sec->field0;
		st->hf.n = sec->nfields;
	}
}

/* Converted bytes in[0..n) at offset st->cpos through range and filter. */
static void stream_take(struct stream *st, const char *in, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++, st->cpos++)
		if (st->cpos >= st->r->a && st->cpos < st->r->b)
			filter_byte(st, in[i], out);
}

/* One step: at most `room` output bytes into out. Returns bytes written;
 * *fin set when the window is complete (or the message ended). -1 on a
 * read error. */
static long stream_step(int mfd, struct stream *st, char *out, size_t room, int *fin)
{
	struct buf ob, *o;
	size_t used, k;
	ssize_t n;
	size_t want = room > 200 ? (room - 160) / 2 : 0;
	uint64_t wend = st->r->wstart + st->r->wlen;

	*fin = 0;
	buf_init(&ob, out, out ? room : 0);
	o = out ? &ob : NULL;
	if (st->fo >= wend || st->cpos >= st->r->b) {
		*fin = 1;
		return 0;
	}
	if (st->fpos >= st->fend) {
		if (!st->ended) {
			k = idx_out_end(&st->cv, obuf);
			stream_take(st, obuf, k, o);
			st->ended = 1;
		}
		*fin = 1;
		return (long)ob.len;
	}
	if (!out || st->cpos + 4 * sizeof(fbuf) < st->r->a)
		want = sizeof(fbuf);
	if (want == 0)
		return 0;
	if (want > sizeof(fbuf))
		want = sizeof(fbuf);
	if (want > st->fend - st->fpos)
		want = (size_t)(st->fend - st->fpos);
	n = pread(mfd, fbuf, want, (off_t)st->fpos);
	if (n <= 0)
		return -1;
	k = idx_out_feed(&st->cv, fbuf, (size_t)n, obuf, &used);
	st->fpos += used;
	stream_take(st, obuf, k, o);
	return (long)ob.len;
}

/* The shared MIME parser: a session whose parse of a big message spans
 * loop passes keeps it until its FETCH line is planned; others wait. */
static struct imap_session *mime_owner;

/* Reads at most the pass's budget of a stream with no output (the
 * filtered size of HEADER.FIELDS): 1 at the end, 0 budget spent, -1. */
static int stream_count_step(struct imap_session *s, struct stream *st)
{
	struct job *j = &s->job;
	int fin = 0;

	while (!fin) {
		uint64_t before = st->fpos;
		if (j->budget == 0)
			return 0;
		if (stream_step(s->sel.mfd, st, NULL, sizeof(obuf), &fin) < 0)
			return -1;
		j->budget -= j->budget < st->fpos - before ? j->budget :
			     (size_t)(st->fpos - before);
	}
	return 1;
}

/* Feeds the converted message to the MIME parser within the pass's
 * budget: all of it, or only the top header (j->mp_header_only). 1 when
 * parsed, 0 budget spent (call again), -1 on a read error. */
static int parse_mime_step(struct imap_session *s)
{
	struct job *j = &s->job;
	size_t used, k;

	while (j->mp_pos < j->mp_end) {
		size_t want = j->mp_end - j->mp_pos < sizeof(fbuf) ?
			      (size_t)(j->mp_end - j->mp_pos) : sizeof(fbuf);
		if (j->budget == 0)
			return 0;
		if (want > j->budget)
			want = j->budget;
		ssize_t n = pread(s->sel.mfd, fbuf, want, (off_t)j->mp_pos);
		if (n <= 0)
			return -1;
		j->budget -= (size_t)n;
		k = idx_out_feed(&j->mp_cv, fbuf, (size_t)n, obuf, &used);
		j->mp_pos += used;
		mime_feed(&mime, obuf, k);
		if (j->mp_header_only && !mime.part[0].in_header)
			return 1;
	}
	k = idx_out_end(&j->mp_cv, obuf);
	mime_feed(&mime, obuf, k);
	mime_end(&mime);
	return 1;
}

static void parse_mime_begin(struct imap_session *s, int header_only)
{
	struct job *j = &s->job;

	mime_init(&mime);
	idx_out_init(&j->mp_cv, 0, -1);
	j->mp_pos = j->rec.off + j->rec.from_len;
	j->mp_end = j->mp_pos + j->rec.data_len;
	j->mp_header_only = header_only;
}

/* Digits at *p (at most max), advancing; -1 when none. */
static int num_at(const char **p, const char *end, int max)
{
	int v = 0, k = 0;

	while (*p < end && **p == ' ')
		(*p)++;
	while (*p < end && k < max && **p >= '0' && **p <= '9') {
		v = v * 10 + (**p - '0');
		(*p)++;
		k++;
	}
	return k ? v : -1;
}

/* INTERNALDATE from the From_ line ("From sender Sat Jan  3 01:05:34 2026"):
 * the last "Mmm dd hh:mm:ss yyyy" on the line (no scanf: see libc_small). */
static int64_t internal_time(int mfd, const struct idx_rec *r)
{
	char line[256];
	size_t n = r->from_len < sizeof(line) - 1 ? r->from_len : sizeof(line) - 1;
	ssize_t got = pread(mfd, line, n, (off_t)r->off);

	if (got <= 5)
		return 0;
	for (ssize_t i = got - 4; i >= 5; i--) {
		const char *p = line + i + 4, *end = line + got;
		int m, d, hh, mm, ss, y;
		if (line[i - 1] != ' ' || line[i + 3] != ' ' || !(m = ip_month(line + i)))
			continue;
		d = num_at(&p, end, 2);
		hh = num_at(&p, end, 2);
		if (p >= end || *p++ != ':')
			continue;
		mm = num_at(&p, end, 2);
		if (p >= end || *p++ != ':')
			continue;
		ss = num_at(&p, end, 2);
		y = num_at(&p, end, 4);
		if (d < 1 || hh < 0 || mm < 0 || ss < 0 || y < 1970)
			continue;
		return (int64_t)ip_days(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
	}
	return 0;
}

static void internaldate_text(int64_t t, char *out, size_t n)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, n, "\"%02d-%.3s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		 mon + tm.tm_mon * 3, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* ---- FETCH ------------------------------------------------------------ */

/* Bytes kept free in the item buffer for the ")\r\n" that ends a
 * message's answer. */
#define ITEM_END_ROOM 3
#define FETCH_TOO_BIG (-2)
/* An ENVELOPE or BODYSTRUCTURE that overflows an item buffer holding at
 * most this much before it is too big on its own: a stand-in goes. */
#define ITEM_STANDIN_AT 512

/* Counts the text just added to the item buffer (from offset at) as a
 * segment of the message's answer. */
static void item_seg(struct imap_session *s, struct job *j, size_t at)
{
	size_t n = s->ib.len - at;

	if (n == 0)
		return;
	if (j->nseg > 0 && j->segs[j->nseg - 1].kind == SEG_TEXT &&
	    j->segs[j->nseg - 1].off + j->segs[j->nseg - 1].len == (uint32_t)at) {
		j->segs[j->nseg - 1].len += (uint32_t)n;
	} else if (j->nseg < (int)ARRAY_LEN(j->segs)) {
		j->segs[j->nseg].kind = SEG_TEXT;
		j->segs[j->nseg].off = (uint32_t)at;
		j->segs[j->nseg].len = (uint32_t)n;
		j->nseg++;
	} else {
		s->ib.full = 1;         /* no segment left to send it */
	}
}

/* Text of the message's answer; when it does not fit (with the room for
 * its end), nothing is added and s->ib.full says so. */
static void item_add(struct imap_session *s, struct job *j, const char *text, size_t n)
{
	size_t at = s->ib.len;

	if (!buf_fits(&s->ib, n, ITEM_END_ROOM)) {
		s->ib.full = 1;
		return;
	}
	buf_add(&s->ib, text, n);
	item_seg(s, j, at);
}

static void item_printf(struct imap_session *s, struct job *j, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void item_printf(struct imap_session *s, struct job *j, const char *fmt, ...)
{
	char b[512];
	struct buf t;
	va_list ap;

	buf_init(&t, b, sizeof(b));
	va_start(ap, fmt);
	buf_vprintf(&t, fmt, ap);
	va_end(ap);
	if (t.full)
		s->ib.full = 1;
	else
		item_add(s, j, b, t.len);
}

/* A MIME-rendered item (ENVELOPE, BODYSTRUCTURE) straight into the free
 * part of the item buffer (reserve, render, commit). When it does not
 * fit, a short stand-in does (a NIL envelope, a text/plain structure);
 * when not even that fits, s->ib.full says so. */
static void item_mime(struct imap_session *s, struct job *j, int what)
{
	size_t at = s->ib.len;
	size_t room = sat_sub(buf_remaining(&s->ib), ITEM_END_ROOM);
	char *p = buf_reserve(&s->ib, room);
	struct mime_out o;

	mime_out_init(&o, p, room);
	if (what == FA_ENVELOPE)
		mime_envelope(&mime, 0, &o);
	else
		mime_bodystructure(&mime, 0, what == FA_BODYSTRUCTURE, &o);
	if (o.overflow && at <= ITEM_STANDIN_AT) {
		/* Too big on its own (or nearly): the stand-in. Behind other
		 * items, the answer as a whole is too big (FETCH_TOO_BIG). */
		const struct mime_part *mp = &mime.part[0];
		mime_out_init(&o, p, room);
		if (what == FA_ENVELOPE) {
			mime_out_str(&o, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", 41);
		} else {
			char b[96];
			struct buf t;
			buf_init(&t, b, sizeof(b));
			buf_printf(&t, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" %llu %llu)",
				   (unsigned long long)(mp->end_off - mp->body_off),
				   (unsigned long long)mp->lines);
			mime_out_str(&o, b, t.len);
		}
	}
	if (o.overflow) {
		s->ib.full = 1;
		return;
	}
	buf_commit(&s->ib, o.b.len);
	item_seg(s, j, at);
}

/* Range of a section in the converted message, from the MIME parse. */
static void sec_range(const struct fetch_sec *sec, const struct idx_rec *r,
		      struct secrange *sr)
{
	int text = sec->kind == SEC_HEADER || sec->kind == SEC_FIELDS ||
		   sec->kind == SEC_FIELDS_NOT || sec->kind == SEC_TEXT;
	int k;

	sr->a = sr->b = 0;
	if (sec->nparts == 0 && sec->kind == SEC_ALL) {
		sr->b = r->size;
		return;
	}
	k = mime_find(&mime, sec->part, sec->nparts, text);
	if (k < 0)
		return;
	const struct mime_part *p = &mime.part[k];
	switch (sec->kind) {
	case SEC_ALL:
		sr->a = p->body_off;
		sr->b = p->end_off;
		break;
	case SEC_HEADER:
	case SEC_FIELDS:
	case SEC_FIELDS_NOT:
	case SEC_MIME:
		sr->a = p->hdr_off;
		sr->b = p->body_off;
		break;
	case SEC_TEXT:
		sr->a = p->body_off;
		sr->b = p->end_off;
		break;
	}
}

/* Stores flags nf on message i of the view (r: its record with live
 * flags, updated). 1 changed, 0 nothing to do, -1 the message was
 * expunged by another session (nothing stored). */
static int set_flags(struct imap_session *s, uint32_t i, struct idx_rec *r,
		     uint32_t nf, uint64_t nkw)
{
	struct idx_reader *rd;
	struct idx_rec l;
	int k;

	if (s->sel.readonly)
		return 0;
	k = live_rec(s, i, r, &rd, &l);
	if (k < 0)
		return -1;
	if (l.flags == nf && l.kw == nkw)
		return 0;
	l.flags = nf;
	l.kw = nkw;
	if (idx_store(rd, (uint32_t)k, &l) != 0)
		return 0;
	r->flags = l.flags;
	r->kw = l.kw;
	r->modseq = l.modseq;
	tell_flags(s, r->uid, r->modseq);
	return 1;
}

enum { PREP_START, PREP_PARSE, PREP_COUNT, PREP_READY };

/* Reads what the plan of message seq needs, within the pass's budget:
 * its MIME structure (all of it, or the top header when that is enough)
 * and the sizes of HEADER.FIELDS sections. 1 ready (the MIME parser is
 * then ours until fetch_plan), 0 budget spent or the parser busy (call
 * again), -1 on error. */
static int fetch_prepare(struct imap_session *s, uint32_t seq)
{
	struct job *j = &s->job;
	struct fetch_req *fr = &s->q.fr;
	int rc;

	switch (j->prep) {
	case PREP_START:
		j->need_mime = j->need_full = 0;
		if (fr->attrs & (FA_BODYSTRUCTURE | FA_BODY | FA_ENVELOPE))
			j->need_mime = 1;
		for (int k = 0; k < fr->nsecs; k++) {
			const struct fetch_sec *sec = &fr->secs[k];
			if (sec->nparts || sec->kind != SEC_ALL)
				j->need_mime = 1;
			if (sec->nparts || sec->kind == SEC_TEXT)
				j->need_full = 1;
		}
		if (j->need_mime && mime_owner && mime_owner != s)
			return 0;
		if (get_rec_live(s, seq - 1, &j->rec) != 0)
			return -1;
		j->prep_k = 0;
		j->prep = PREP_COUNT;
		if (!j->need_mime)
			return fetch_prepare(s, seq);
		mime_owner = s;
		parse_mime_begin(s, !j->need_full);
		j->prep = PREP_PARSE;
		/* fall through */
	case PREP_PARSE:
		rc = parse_mime_step(s);
		if (rc <= 0)
			return rc;
		if (j->mp_header_only) {
			/* Only the top header was read. A single-part message is
			 * then known whole: it ends at the message's end and its
			 * body lines are the index's count less the header's.
			 * BODYSTRUCTURE of a multipart or message/rfc822 (or of
			 * a header that never ended) needs the whole message. */
			struct mime_part *p0 = &mime.part[0];
			if ((fr->attrs & (FA_BODYSTRUCTURE | FA_BODY)) &&
			    (p0->multipart || p0->message || p0->in_header)) {
				parse_mime_begin(s, 0);
				return fetch_prepare(s, seq);
			}
			mime.n = 1;
			p0->end_off = j->rec.size;
			p0->lines = j->rec.lines > p0->body_line ?
				    j->rec.lines - p0->body_line : 0;
		}
		j->prep = PREP_COUNT;
		/* fall through */
	case PREP_COUNT:
		for (; j->prep_k < fr->nsecs; j->prep_k++) {
			const struct fetch_sec *sec = &fr->secs[j->prep_k];
			struct secrange *sr = &j->sr[j->prep_k];
			if (sec->kind != SEC_FIELDS && sec->kind != SEC_FIELDS_NOT)
				continue;
			if (!j->st_live) {
				sec_range(sec, &j->rec, sr);
				sr->total = 0;
				if (sr->b <= sr->a)
					continue;
				sr->wstart = 0;
				sr->wlen = UINT64_MAX / 2;
				stream_init(&j->st, &j->rec, sr, fr, sec);
				j->st_live = 1;
			}
			rc = stream_count_step(s, &j->st);
			if (rc <= 0)
				return rc;
			j->st_live = 0;
			sr->total = j->st.fo;
		}
		j->prep = PREP_READY;
		/* fall through */
	default:
		return 1;
	}
}

/* Plans the answer for message seq (fetch_prepare done): text segments
 * and section streams. 0, -1 on a read error, FETCH_TOO_BIG when the
 * answer's text does not fit the item buffer (nothing of it was sent). */
static int fetch_plan(struct conn *c, struct imap_session *s, uint32_t seq)
{
	struct job *j = &s->job;
	struct fetch_req *fr = &s->q.fr;
	struct idx_rec *r = &j->rec;
	int first = 1;
	uint32_t oldflags;
	char b[96];

	(void)c;
	oldflags = r->flags;
	if (fr->sets_seen && !(r->flags & IDX_F_SEEN))
		set_flags(s, seq - 1, r, r->flags | IDX_F_SEEN, r->kw);
	buf_reset(&s->ib);
	j->nseg = 0;
	j->seg = 0;
	j->seg_off = 0;
	item_printf(s, j, "* %u FETCH (", seq);
	if (j->uid && !(fr->attrs & FA_UID)) {
		item_printf(s, j, "UID %u", r->uid);
		first = 0;
	}
	if (fr->sets_seen && oldflags != r->flags && !(fr->attrs & FA_FLAGS)) {
		size_t fl = rec_flags(s, r);
		item_printf(s, j, "%sFLAGS ", first ? "" : " ");
		item_add(s, j, flagbuf, fl);
		first = 0;
	}
	if (fr->sets_seen && oldflags != r->flags && s->condstore &&
	    !(fr->attrs & FA_MODSEQ)) {
		item_printf(s, j, "%sMODSEQ (%llu)", first ? "" : " ",
			    (unsigned long long)r->modseq);
		first = 0;
	}
	for (int i = 0; i < fr->nitems; i++) {
		const struct fetch_item *it = &fr->items[i];
		const char *sp = first ? "" : " ";
		first = 0;
		switch (it->attr) {
		case FA_UID:
			item_printf(s, j, "%sUID %u", sp, r->uid);
			break;
		case FA_FLAGS: {
			size_t fl = rec_flags(s, r);
			item_printf(s, j, "%sFLAGS ", sp);
			item_add(s, j, flagbuf, fl);
			break;
		}
		case FA_SIZE:
			item_printf(s, j, "%sRFC822.SIZE %llu", sp,
				    (unsigned long long)r->size);
			break;
		case FA_MODSEQ:
			item_printf(s, j, "%sMODSEQ (%llu)", sp,
				    (unsigned long long)r->modseq);
			break;
		case FA_INTERNALDATE:
			internaldate_text(internal_time(s->sel.mfd, r), b, sizeof(b));
			item_printf(s, j, "%sINTERNALDATE %s", sp, b);
			break;
		case FA_ENVELOPE:
			item_printf(s, j, "%sENVELOPE ", sp);
			item_mime(s, j, FA_ENVELOPE);
			break;
		case FA_BODYSTRUCTURE:
			item_printf(s, j, "%sBODYSTRUCTURE ", sp);
			item_mime(s, j, FA_BODYSTRUCTURE);
			break;
		case FA_BODY:
			item_printf(s, j, "%sBODY ", sp);
			item_mime(s, j, FA_BODY);
			break;
		case 0: {
			const struct fetch_sec *sec = &fr->secs[it->sec];
			struct secrange *sr = &j->sr[it->sec];
			static const char *const names[] = { "", "RFC822",
				"RFC822.HEADER", "RFC822.TEXT" };
			uint64_t counted = sr->total;   /* HEADER.FIELDS: fetch_prepare */
			sec_range(sec, r, sr);
			sr->total = sr->b - sr->a;
			if (sec->kind == SEC_FIELDS || sec->kind == SEC_FIELDS_NOT)
				sr->total = sr->b > sr->a ? counted : 0;
			sr->wstart = 0;
			sr->wlen = sr->total;
			if (sec->partial) {
				sr->wstart = sec->pstart < sr->total ? sec->pstart : sr->total;
				sr->wlen = sr->total - sr->wstart;
				if (sr->wlen > sec->plen)
					sr->wlen = sec->plen;
			}
			if (sec->rfc822)
				item_printf(s, j, "%s%s {%llu}\r\n", sp, names[sec->rfc822],
					    (unsigned long long)sr->wlen);
			else if (sec->partial)
				item_printf(s, j, "%sBODY[%.*s]<%u> {%llu}\r\n", sp,
					    (int)sec->spec_len, sec->spec, sec->pstart,
					    (unsigned long long)sr->wlen);
			else
				item_printf(s, j, "%sBODY[%.*s] {%llu}\r\n", sp,
					    (int)sec->spec_len, sec->spec,
					    (unsigned long long)sr->wlen);
			if (j->nseg < (int)ARRAY_LEN(j->segs)) {
				j->segs[j->nseg].kind = SEG_SEC;
				j->segs[j->nseg].sec = it->sec;
				j->nseg++;
			}
			break;
		}
		}
	}
	if (!s->ib.full) {
		/* The end, in the room kept for it. */
		size_t at = s->ib.len;
		buf_add(&s->ib, ")\r\n", ITEM_END_ROOM);
		item_seg(s, j, at);
	}
	return s->ib.full ? FETCH_TOO_BIG : 0;
}

/* Sends planned segments; 1 when the message is out, 0 when the output
 * is full, 2 when the pass's budget of mail is spent, -1 on error. */
static int fetch_send(struct conn *c, struct imap_session *s)
{
	struct job *j = &s->job;

	while (j->seg < j->nseg) {
		struct seg *g = &j->segs[j->seg];
		size_t room = conn_out_free(c);

		if (g->kind == SEG_TEXT) {
			size_t left = g->len - j->seg_off;
			size_t n = left < room ? left : room;
			if (n == 0)
				return 0;
			conn_write(c, s->item + g->off + j->seg_off, n);
			j->seg_off += (uint32_t)n;
			if (j->seg_off < g->len)
				return 0;
		} else {
			const struct fetch_req *fr = &s->q.fr;
			int fin = 0;
			long w;
			if (!j->st_live) {
				stream_init(&j->st, &j->rec, &j->sr[g->sec], fr,
					    &fr->secs[g->sec]);
				j->st_live = 1;
			}
			if (room < 400)
				return 0;
			if (j->budget == 0)
				return 2;       /* skipping to a part or <partial> */
			uint64_t before = j->st.fpos;
			w = stream_step(s->sel.mfd, &j->st, obuf + sizeof(obuf) / 2,
					room < sizeof(obuf) / 2 ? room : sizeof(obuf) / 2, &fin);
			if (w < 0)
				return -1;
			j->budget -= j->budget < j->st.fpos - before ? j->budget :
				     (size_t)(j->st.fpos - before);
			if (w > 0)
				conn_write(c, obuf + sizeof(obuf) / 2, (size_t)w);
			if (!fin)
				continue;
			/* Short (the file changed under us): pad to the promise. */
			uint64_t sent = j->st.fo > j->sr[g->sec].wstart ?
				j->st.fo - j->sr[g->sec].wstart : 0;
			if (sent < j->sr[g->sec].wlen) {
				size_t pad = (size_t)(j->sr[g->sec].wlen - sent);
				if (pad > sat_sub(room, (size_t)w))
					pad = sat_sub(room, (size_t)w);
				if (pad > sizeof(obuf))
					pad = sizeof(obuf);
				memset(obuf, ' ', pad);
				conn_write(c, obuf, pad);
				j->st.fo += pad;
				if (sent + pad < j->sr[g->sec].wlen)
					continue;
			}
			j->st_live = 0;
		}
		j->seg++;
		j->seg_off = 0;
	}
	return 1;
}

/* ---- SEARCH ---------------------------------------------------------- */

/* The facts of message j->cur for the search program. */
static int search_msg(struct imap_session *s, struct job *j)
{
	struct srch_msg *m = &j->sm;
	struct idx_rec last;

	if (get_rec_live(s, j->cur - 1, &j->rec) != 0)
		return -1;
	memset(m, 0, sizeof(*m));
	m->seq = j->cur;
	m->count = s->sel.hdr.count;
	if (s->sel.hdr.count && get_rec(&s->sel, s->sel.hdr.count - 1, &last) == 0)
		m->star_uid = last.uid;
	m->uid = j->rec.uid;
	m->flags = j->rec.flags;
	m->recent = is_recent(s, j->rec.uid);
	m->size = j->rec.size;
	m->modseq = j->rec.modseq;
	m->has_keyword = kw_has;
	m->kw_ctx = s;
	if (j->need & SRCH_NEED_IDATE)
		m->internal_day = internal_time(s->sel.mfd, &j->rec) / 86400;
	srch_begin(&j->sx, &s->q.sp);
	j->spos = j->rec.off + j->rec.from_len;
	j->send = j->spos + j->rec.data_len;
	idx_out_init(&j->scv, 0, -1);
	return 0;
}

/* Feeds message bytes to the search within the pass's budget, until the
 * answer is known: SRCH_YES/NO, SRCH_UNKNOWN when the budget ran out,
 * -1 on a read error. */
static int search_feed(struct imap_session *s, struct job *j)
{
	const struct search_prog *p = &s->q.sp;
	int r;

	while ((r = srch_eval(&j->sx, p, &j->sm)) == SRCH_UNKNOWN) {
		size_t want = sizeof(fbuf), used, k;
		ssize_t n;
		if (j->spos >= j->send) {
			k = idx_out_end(&j->scv, obuf);
			srch_feed(&j->sx, p, kmp_tab, obuf, k);
			srch_end(&j->sx, p);
			continue;
		}
		if (j->budget == 0)
			return SRCH_UNKNOWN;
		if (want > j->send - j->spos)
			want = (size_t)(j->send - j->spos);
		if (want > j->budget)
			want = j->budget;
		n = pread(s->sel.mfd, fbuf, want, (off_t)j->spos);
		if (n <= 0) {
			/* Cut short (the file changed under us): what we saw. */
			j->send = j->spos;
			continue;
		}
		j->budget -= (size_t)n;
		k = idx_out_feed(&j->scv, fbuf, (size_t)n, obuf, &used);
		j->spos += used;
		srch_feed(&j->sx, p, kmp_tab, obuf, k);
	}
	return r;
}

/* ---- jobs ------------------------------------------------------------ */

static void job_done(struct conn *c, struct imap_session *s, const char *st)
{
	if (s->job.kind == J_FETCH)
		conn_stream_end(c);
	imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	tagged(c, s, st, "%s", s->done_text);
	wait_command(c, s);
}

/* One pass of the job; returns 1 when finished (tagged answer written),
 * 2 when this pass's budget of mail is spent, 0 to go on, -1 on error. */
static int job_produce(struct conn *c, struct imap_session *s)
{
	struct job *j = &s->job;
	char line[128];
	int k;

	switch (j->kind) {
	case J_TEXT: {
		size_t left = sat_sub(s->ib.len, j->text_off), room = conn_out_free(c);
		size_t n = left < room ? left : room;
		conn_write(c, s->item + j->text_off, n);
		j->text_off += (uint32_t)n;
		if (j->text_off < s->ib.len)
			return 0;
		if (conn_out_free(c) < 200)
			return 0;
		job_done(c, s, "OK");
		return 1;
	}
	case J_FETCH:
		for (int guard = 0; guard < 64; guard++) {
			if (j->in_msg) {
				int rc = fetch_send(c, s);
				if (rc < 0)
					return -1;
				if (rc == 0 || rc == 2)
					return rc;
				j->in_msg = 0;
				j->cur++;
			}
			if (j->cur > j->hi && !next_range(s, j)) {
				if (conn_out_free(c) < 200)
					return 0;
				job_done(c, s, "OK");
				return 1;
			}
			if (s->q.fr.changedsince) {
				struct idx_rec r;
				if (get_rec_live(s, j->cur - 1, &r) != 0)
					return -1;
				if (r.modseq <= s->q.fr.since) {
					j->cur++;
					continue;
				}
			}
			int rc = fetch_prepare(s, j->cur);
			if (rc <= 0)
				return rc < 0 ? -1 : 2;
			rc = fetch_plan(c, s, j->cur);
			if (mime_owner == s)
				mime_owner = NULL;
			j->prep = PREP_START;
			if (rc == FETCH_TOO_BIG) {
				if (conn_out_free(c) < 200)
					return 0;       /* prepared again next time */
				snprintf(s->done_text, sizeof(s->done_text),
					 "[LIMIT] FETCH answer for message %u over %d "
					 "bytes, fetch fewer items", j->cur, IMAP_ITEM_MAX);
				job_done(c, s, "NO");
				return 1;
			}
			if (rc != 0)
				return -1;
			j->in_msg = 1;
		}
		return 0;
	case J_STORE:
		for (int guard = 0; guard < 256; guard++) {
			struct idx_rec r;
			uint32_t nf;
			uint64_t nkw;
			if (j->text_off < s->ib.len) {
				/* The last FETCH line, as the socket takes it. */
				size_t left = s->ib.len - j->text_off;
				size_t room = conn_out_free(c);
				size_t n = left < room ? left : room;
				conn_write(c, s->item + j->text_off, n);
				j->text_off += (uint32_t)n;
				if (j->text_off < s->ib.len)
					return 0;
			}
			if (conn_out_free(c) < 200)
				return 0;
			if (j->cur > j->hi && !next_range(s, j)) {
				if (j->modlen) {
					/* done_text is "[UID ]STORE completed" */
					int uidc = j->uid;
					snprintf(s->done_text, sizeof(s->done_text),
						 "[MODIFIED %.*s] Conditional %sSTORE completed",
						 (int)j->modlen, j->modified, uidc ? "UID " : "");
				}
				job_done(c, s, "OK");
				return 1;
			}
			if (get_rec_live(s, j->cur - 1, &r) != 0)
				return -1;
			nf = j->mode == '+' ? r.flags | j->flags :
			     j->mode == '-' ? r.flags & ~j->flags : j->flags;
			nkw = j->mode == '+' ? r.kw | j->kw :
			      j->mode == '-' ? r.kw & ~j->kw : j->kw;
			if (j->unchanged && r.modseq > j->since) {
				/* Changed since the client looked: not touched. */
				struct buf mb;  /* a number that does not fit is left out */
				buf_init(&mb, j->modified, sizeof(j->modified));
				buf_commit(&mb, j->modlen);
				buf_printf(&mb, "%s%u", j->modlen ? "," : "",
					   j->uid ? r.uid : j->cur);
				j->modlen = mb.len;
				j->cur++;
				continue;
			}
			uint32_t was = r.flags;
			uint64_t waskw = r.kw;
			if (set_flags(s, j->cur - 1, &r, nf, nkw) < 0) {
				/* Expunged by another session: no FETCH. */
				j->cur++;
				continue;
			}
			/* .SILENT still tells MODSEQ of a change under CONDSTORE. */
			int show_flags = !j->silent || r.flags != nf || r.kw != nkw;
			int show_mod = s->condstore && (r.flags != was || r.kw != waskw);
			if (show_flags || show_mod) {
				/* Through the item buffer: with keywords a line
				 * can be longer than the output buffer. */
				struct buf b;
				buf_init(&b, s->item, sizeof(s->item));
				buf_printf(&b, "* %u FETCH (", j->cur);
				if (j->uid)
					buf_printf(&b, "UID %u ", r.uid);
				if (show_flags || s->condstore) {
					buf_adds(&b, "FLAGS ");
					buf_add(&b, flagbuf, rec_flags(s, &r));
					buf_addc(&b, ' ');
				}
				if (s->condstore)
					buf_printf(&b, "MODSEQ (%llu) ",
						   (unsigned long long)r.modseq);
				buf_truncate(&b, b.len - 1);
				buf_adds(&b, ")\r\n");
				s->ib = b;
				j->text_off = 0;
			}
			j->cur++;
		}
		return 0;
	case J_SEARCH:
		/* The needles' tables are shared: made again each pass. */
		srch_tables(&s->q.sp, kmp_tab, ARRAY_LEN(kmp_tab));
		for (int guard = 0; guard < 4096; guard++) {
			if (conn_out_free(c) < 200)
				return 0;
			if (!j->in_msg) {
				if (j->cur > s->sel.hdr.count) {
					if (j->with_modseq && j->maxmod) {
						k = snprintf(line, sizeof(line), " (MODSEQ %llu)",
							     (unsigned long long)j->maxmod);
						conn_write(c, line, (size_t)k);
					}
					conn_write(c, "\r\n", 2);
					job_done(c, s, "OK");
					return 1;
				}
				/* An index record (and a From_ line) costs too. */
				if (j->budget < 256)
					return 2;
				j->budget -= 256;
				if (search_msg(s, j) != 0)
					return -1;
				j->in_msg = 1;
			}
			int r = search_feed(s, j);
			if (r < 0)
				return -1;
			if (r == SRCH_UNKNOWN)
				return 2;
			j->in_msg = 0;
			if (r == SRCH_YES) {
				k = snprintf(line, sizeof(line), " %u", j->uid ? j->rec.uid : j->cur);
				conn_write(c, line, (size_t)k);
				if (j->rec.modseq > j->maxmod)
					j->maxmod = j->rec.modseq;
			}
			j->cur++;
		}
		return 0;
	case J_MERGE:
		/* Old records vs new: UIDs gone are EXPUNGEd (in order, each
		 * one shifting the numbers after it). */
		for (int guard = 0; guard < 512; guard++) {
			struct idx_rec o, n;
			if (conn_out_free(c) < 200)
				return 0;
			if (j->oi >= j->oldrd->count) {
				if (j->newcount != j->oldrd->count - j->removed) {
					conn_printf(c, "* %u EXISTS\r\n", j->newcount);
					recent_update(c, s, j->old_next);
				}
				close(s->old_ifd);
				s->old_ifd = -1;
				if (s->merge_idle) {
					/* Announced in IDLE: idle on, no answer. */
					s->merge_idle = 0;
					imap_enter(c, s, IMAP_IDLE);
					conn_deadline(c, IMAP_IDLE_TIMEOUT);
					return 1;
				}
				if (!s->tag[0]) {
					imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
					return 1;
				}
				job_done(c, s, "OK");
				return 1;
			}
			if (idx_get(j->oldrd, j->oi, &o) != 0)
				return -1;
			while (j->nj < j->newcount && get_rec(&s->sel, j->nj, &n) == 0 &&
			       n.uid < o.uid)
				j->nj++;
			if (j->nj < j->newcount && get_rec(&s->sel, j->nj, &n) == 0 &&
			    n.uid == o.uid) {
				j->nj++;
			} else {
				conn_printf(c, "* %u EXPUNGE\r\n", j->oi + 1 - j->removed);
				j->removed++;
			}
			j->oi++;
		}
		return 0;
	}
	return -1;
}

/* One loop pass of the job: output as the socket takes it, at most
 * IMAP_SEND_BUDGET bytes of it and IMAP_STEP bytes of mail read; then
 * the job yields (a zero deadline: the next pass goes on). */
static void job_step(struct conn *c, struct imap_session *s)
{
	size_t sent = 0;

	s->job.budget = IMAP_STEP;
	while (c->w.fd >= 0 && s->state == IMAP_BUSY) {
		size_t before = conn_out_free(c);
		int rc = job_produce(c, s);

		if (rc < 0) {
			log_msg(LOGL_ERR, "conn %u: imap %s: reading the mailbox: %s",
				c->id, s->user, strerror(errno));
			conn_printf(c, "* BYE Cannot read the mailbox\r\n");
			logout_now(c, s);
			return;
		}
		if (rc == 1)
			return;
		sent += before > conn_out_free(c) ? before - conn_out_free(c) : 0;
		conn_flush(c);
		if (c->w.fd < 0)
			return;
		if (conn_out_pending(c)) {
			conn_deadline(c, CONFIG_IMAP_TIMEOUT);
			return;
		}
		if (sent >= IMAP_SEND_BUDGET || rc == 2) {
			conn_deadline_ms(c, 0);
			return;
		}
	}
}

static void job_start(struct conn *c, struct imap_session *s, int kind,
		      const char *done)
{
	s->job.kind = kind;
	if (kind == J_FETCH)
		conn_stream_begin(c);   /* answers of many messages: big writes */
	if (kind == J_FETCH || kind == J_STORE) {
		s->job.cur = 1;         /* past hi: the first range comes next */
		s->job.hi = 0;
	}
	snprintf(s->done_text, sizeof(s->done_text), "%s", done);
	imap_enter(c, s, IMAP_BUSY);
	job_step(c, s);
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

	rec_flags(s, r);
	if (s->condstore)
		k = snprintf(line, sizeof(line), "* %u FETCH (UID %u FLAGS %s MODSEQ (%llu))\r\n",
			     seq, r->uid, flagbuf, (unsigned long long)r->modseq);
	else
		k = snprintf(line, sizeof(line), "* %u FETCH (UID %u FLAGS %s)\r\n",
			     seq, r->uid, flagbuf);
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
			if (get_rec_live(s, s->pend_scan, &r) != 0 ||
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
		if (!seq || get_rec(&s->sel, seq - 1, &r) != 0 ||
		    live_rec(s, seq - 1, &r, &rd, &l) < 0)
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
	if (s->npend || s->pend_all)
		push_flags(c, s);
	if (s->kw_news) {
		/* Another session defined a keyword (RFC 3501 7.2.6). */
		static char fl[2 * FLAGS_TEXT_MAX + 100];
		struct buf b;
		buf_init(&b, fl, sizeof(fl));
		flags_line(s, &b);
		if (conn_out_free(c) < b.len + IMAP_REPLY_ROOM)
			conn_flush(c);
		if (c->w.fd >= 0 && conn_out_free(c) >= b.len + IMAP_REPLY_ROOM) {
			conn_write(c, fl, b.len);
			s->kw_news = 0;
		} else if (c->w.fd >= 0 && !conn_out_pending(c)) {
			s->kw_news = 0;     /* longer than the buffer: SELECT tells */
		}
	}
	snprintf(path, sizeof(path), "%s/%s", m->dir, m->name);
	if (stat(path, &st) != 0 ||
	    ((uint64_t)st.st_ino == m->hdr.ino && (uint64_t)st.st_size == m->hdr.end &&
	     !s->need_sync))
		return 0;
	s->need_sync = 0;
	nm = *m;
	nm.mfd = nm.ifd = nm.lfd = -1;
	nm.live_gone = 0;
	if (mbx_begin(s, &nm) != 0) {
		upd_abort(s);
		mbx_close(&nm);
		return 0;
	}
	rc = mbx_step(s, &nm, 1);
	if (rc != IDX_DONE) {
		upd_abort(s);
		mbx_close(&nm);
		if (rc == IDX_AGAIN_LOCK)
			s->need_sync = 1;
		return 0;
	}
	if (nm.hdr.uidvalidity != m->hdr.uidvalidity) {
		mbx_close(&nm);
		conn_printf(c, "* BYE The mailbox was replaced by another program\r\n");
		logout_now(c, s);
		return -1;
	}
	if (fstat(m->ifd, &ist_old) == 0 && fstat(nm.ifd, &ist_new) == 0 &&
	    ist_old.st_ino == ist_new.st_ino && ist_old.st_dev == ist_new.st_dev &&
	    nm.hdr.count >= oldcount) {
		/* Appended in place: only new messages. */
		mbx_close(m);
		*m = nm;
		idx_reader_init(&m->rd, m->ifd, m->hdr.count);
		if (m->hdr.count != oldcount) {
			conn_printf(c, "* %u EXISTS\r\n", m->hdr.count);
			recent_update(c, s, old_next);
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

static void sync_and_push(struct conn *c, struct imap_session *s)
{
	int rc = sync_sel(c, s);

	if (rc == 1) {
		/* In IDLE: announce without a tagged answer, then idle on
		 * (also when the client reads slowly and the job outlives
		 * this call). */
		s->job.kind = J_MERGE;
		s->merge_idle = 1;
		imap_enter(c, s, IMAP_BUSY);
		job_step(c, s);
	}
	if (c->w.fd >= 0 && s->need_sync && s->state == IMAP_IDLE)
		conn_deadline_ms(c, IMAP_LOCK_RETRY_MS);
	if (c->w.fd >= 0)
		conn_flush(c);
}

/* NOOP, CHECK and the like: sync, then the tagged OK. */
static void sync_then_ok(struct conn *c, struct imap_session *s, const char *done)
{
	int rc = 0;

	if (s->have_sel)
		rc = sync_sel(c, s);
	if (rc < 0)
		return;
	if (rc == 1) {
		s->job.kind = J_MERGE;
		snprintf(s->done_text, sizeof(s->done_text), "%s", done);
		imap_enter(c, s, IMAP_BUSY);
		job_step(c, s);
		return;
	}
	tagged(c, s, "OK", "%s", done);
}

/* ---- authentication --------------------------------------------------- */

static int starttls_offered(const struct conn *c)
{
	return CONFIG_TLS && !c->tls && c->listen_kind != LISTEN_IMAPS && tls_ready();
}

static void capability_text(struct conn *c, struct imap_session *s, char *out,
			    size_t n)
{
	int pre = s->state == IMAP_NOAUTH;

	snprintf(out, n, "IMAP4rev1%s SASL-IR%s%s%s%s UNSELECT CHILDREN%s%s%s%s%s%s%s",
		 CONFIG_IMAP_LITERALPLUS ? " LITERAL+" : "",
		 CONFIG_IMAP_ID ? " ID" : "", CONFIG_IMAP_ENABLE ? " ENABLE" : "",
		 CONFIG_IMAP_IDLE ? " IDLE" : "",
		 CONFIG_IMAP_NAMESPACE ? " NAMESPACE" : "",
		 CONFIG_IMAP_UIDPLUS ? " UIDPLUS" : "", CONFIG_IMAP_MOVE ? " MOVE" : "",
		 CONFIG_IMAP_SPECIAL_USE ? " SPECIAL-USE" : "",
		 CONFIG_IMAP_CONDSTORE ? " CONDSTORE" : "",
		 pre && starttls_offered(c) ? " STARTTLS" : "",
		 pre && !auth_allowed(c) ? " LOGINDISABLED" : "",
		 pre && auth_allowed(c) ? " AUTH=PLAIN" : "");
}

static void login_ok(struct conn *c, struct imap_session *s, const char *canon)
{
	char cap[256];

	str_copy(s->user, sizeof(s->user), canon, strlen(canon));
	log_msg(LOGL_INFO, "conn %u %s: imap login %s", c->id, c->peer_str, s->user);
	c->flags |= CONN_AUTHED;
	if (folder_base(conf->mail_dir, s->user, s->base, sizeof(s->base)) != 0 ||
	    folder_setup(s->base, CONFIG_IMAP_SPECIAL_USE) != 0)
		log_msg(LOGL_WARN, "conn %u %s: imap %s: cannot set up the folders "
			"in %s: %s", c->id, c->peer_str, s->user, s->base, strerror(errno));
	imap_enter(c, s, IMAP_AUTHED);
	capability_text(c, s, cap, sizeof(cap));
	tagged(c, s, "OK", "[CAPABILITY %s] Logged in", cap);
}

static void auth_result(struct conn *c, struct imap_session *s, int good,
			const char *canon)
{
	if (good) {
		login_ok(c, s, canon);
		return;
	}
	if (auth_fail_wait(c, "imap") != 0) {
		conn_printf(c, "* BYE Too many failed logins, try later\r\n");
		logout_now(c, s);
		return;
	}
	imap_enter(c, s, IMAP_AUTH_WAIT);
}

static int auth_gate(struct conn *c, struct imap_session *s)
{
	if (auth_banned((const struct sockaddr *)&c->peer)) {
		conn_printf(c, "* BYE Too many failed logins, try later\r\n");
		logout_now(c, s);
		return -1;
	}
	if (!auth_allowed(c)) {
		tagged(c, s, "NO", "[PRIVACYREQUIRED] Login only after STARTTLS");
		return -1;
	}
	return 0;
}

static void cmd_login(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char *u, *p;
	size_t ul, pl;
	const char *canon = NULL;

	if (ip_sp(ip) || ip_astring(ip, &u, &ul) || ip_sp(ip) ||
	    ip_astring(ip, &p, &pl) || ip_end(ip)) {
		bad(c, s, "Syntax: LOGIN user password");
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

	imap_enter(c, s, IMAP_NOAUTH);
	if (rc == AUTH_CANCEL || rc == AUTH_BADB64) {
		bad(c, s, rc == AUTH_CANCEL ? "Authentication cancelled" :
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
		bad(c, s, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!str_ieq(mech, ml, "PLAIN")) {
		tagged(c, s, "NO", "Unsupported authentication mechanism");
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
		bad(c, s, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	imap_enter(c, s, IMAP_SASL);
	conn_printf(c, "+ \r\n");
}

static void cmd_starttls(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: STARTTLS");
		return;
	}
	if (!starttls_offered(c)) {
		tagged(c, s, "NO", "STARTTLS not available");
		return;
	}
	if (conn_start_tls(c) != 0) {
		tagged(c, s, "NO", "[UNAVAILABLE] TLS not available, try later");
		return;
	}
	/* Whatever came after the command in the clear is dropped. */
	reader_reset(s);
	tagged(c, s, "OK", "Begin TLS negotiation now");
}

static void cmd_capability(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char cap[256];

	if (ip_end(ip)) {
		bad(c, s, "Syntax: CAPABILITY");
		return;
	}
	capability_text(c, s, cap, sizeof(cap));
	conn_printf(c, "* CAPABILITY %s\r\n", cap);
	tagged(c, s, "OK", "Capability completed");
}

static void cmd_noop(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: NOOP");
		return;
	}
	sync_then_ok(c, s, "NOOP completed");
}

static void close_sel(struct imap_session *s)
{
	if (s->have_sel)
		mbx_close(&s->sel);
	s->have_sel = 0;
	s->npend = s->pend_all = s->need_sync = 0;
}

static void cmd_logout(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: LOGOUT");
		return;
	}
	conn_printf(c, "* BYE Logging out\r\n");
	tagged(c, s, "OK", "Logout completed");
	close_sel(s);
	logout_now(c, s);
}

static void cmd_id(struct conn *c, struct imap_session *s, struct ip *ip)
{
	(void)ip;
	conn_printf(c, "* ID (\"name\" \"postie\")\r\n");
	tagged(c, s, "OK", "ID completed");
}

static void cmd_namespace(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: NAMESPACE");
		return;
	}
	conn_printf(c, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	tagged(c, s, "OK", "Namespace completed");
}

static void cmd_enable(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_sp(ip)) {
		bad(c, s, "Syntax: ENABLE capability...");
		return;
	}
	const char *w;
	size_t wl;
	int cs = 0;

	for (int guard = 0; guard < 32 && !ip_done(ip); guard++) {
		if (ip_atom(ip, &w, &wl, 0)) {
			bad(c, s, "Syntax: ENABLE capability...");
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
	tagged(c, s, "OK", "Enable completed");
}

/* ---- SELECT / EXAMINE / STATUS ---------------------------------------- */

static void open_finish(struct conn *c, struct imap_session *s);
static void new_done(struct conn *c, struct imap_session *s, int indexed);

static void open_fail(struct conn *c, struct imap_session *s, const char *why)
{
	int e = errno;

	if (s->open_kind == OPEN_APPEND || s->open_kind == OPEN_COPY) {
		/* The messages are in (fsynced); only their index failed. */
		upd_abort(s);
		log_msg(LOGL_WARN, "conn %u %s: imap %s: mailbox %s: index: %s%s%s",
			c->id, c->peer_str, s->user, s->tmp.full, why, e ? ": " : "",
			e ? strerror(e) : "");
		new_done(c, s, 0);
		return;
	}

	upd_abort(s);
	mbx_close(&s->tmp);
	log_msg(LOGL_WARN, "conn %u %s: imap %s: mailbox %s: %s%s%s", c->id,
		c->peer_str, s->user, s->tmp.full, why, e ? ": " : "",
		e ? strerror(e) : "");
	imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	tagged(c, s, "NO", "%s", e == ENOENT ? "[NONEXISTENT] No such mailbox" : why);
	wait_command(c, s);
	conn_resume(c);
}

static void open_step(struct conn *c, struct imap_session *s)
{
	int rc = mbx_step(s, &s->tmp, 0);

	if (rc == IDX_AGAIN) {
		conn_deadline_ms(c, 0);
		return;
	}
	if (rc == IDX_AGAIN_LOCK) {
		if (now_ms() < s->lock_until) {
			conn_deadline_ms(c, IMAP_LOCK_RETRY_MS);
			return;
		}
		errno = 0;
		open_fail(c, s, "[INUSE] Mailbox is locked by another program");
		return;
	}
	if (rc == IDX_FAIL) {
		if (errno == ESTALE && ++s->restarts <= 3) {
			upd_abort(s);
			mbx_close(&s->tmp);
			if (mbx_begin(s, &s->tmp) == 0) {
				conn_deadline_ms(c, 0);
				return;
			}
		}
		open_fail(c, s, "[SERVERBUG] Cannot open the mailbox");
		return;
	}
	open_finish(c, s);
}

static void start_open(struct conn *c, struct imap_session *s, const char *name,
		       size_t len, int kind)
{
	if (mbx_paths(s, &s->tmp, name, len) != 0) {
		tagged(c, s, "NO", "[CANNOT] Bad mailbox name");
		return;
	}
	s->open_kind = kind;
	s->restarts = 0;
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	imap_enter(c, s, IMAP_OPEN);
	conn_suspend(c);
	if (mbx_begin(s, &s->tmp) != 0) {
		open_fail(c, s, "Cannot open the mailbox");
		return;
	}
	open_step(c, s);
}

static void cmd_select(struct conn *c, struct imap_session *s, struct ip *ip,
		       int examine)
{
	char *name;
	size_t nl;

	if (ip_sp(ip) || ip_astring(ip, &name, &nl)) {
		bad(c, s, "Syntax: SELECT mailbox");
		return;
	}
	if (ip_peek(ip) == ' ') {
		/* RFC 7162: (CONDSTORE) */
		const char *w;
		size_t wl;
		ip->p++;
		if (!CONFIG_IMAP_CONDSTORE || ip_char(ip, '(') || ip_atom(ip, &w, &wl, 0) ||
		    !str_ieq(w, wl, "CONDSTORE") || ip_char(ip, ')') || ip_end(ip)) {
			bad(c, s, "Syntax: SELECT mailbox [(CONDSTORE)]");
			return;
		}
		s->condstore = 1;
	}
	/* RFC 3501: a failed SELECT leaves no mailbox selected. */
	close_sel(s);
	imap_enter(c, s, IMAP_AUTHED);
	start_open(c, s, name, nl, examine ? OPEN_EXAMINE : OPEN_SELECT);
}

static void cmd_select_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_select(c, s, ip, 0);
}

static void cmd_examine(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_select(c, s, ip, 1);
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
		if (get_rec(m, i, &r) != 0)
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
		new_done(c, s, 1);
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
				   uid_count(m, m->hdr.recent_uid, m->hdr.uidnext));
		if (it & ST_UIDNEXT)
			buf_printf(&ob, " UIDNEXT %u", m->hdr.uidnext);
		if (it & ST_UIDVALIDITY)
			buf_printf(&ob, " UIDVALIDITY %u", m->hdr.uidvalidity);
		if (it & ST_UNSEEN)
			buf_printf(&ob, " UNSEEN %u", unseen);
		if (it & ST_HIGHESTMODSEQ)
			buf_printf(&ob, " HIGHESTMODSEQ %llu",
				   (unsigned long long)m->hdr.modseq);
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
		mbx_close(m);
		imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
		tagged(c, s, "OK", "Status completed");
		wait_command(c, s);
		conn_resume(c);
		return;
	}
	s->sel = *m;
	idx_reader_init(&s->sel.rd, s->sel.ifd, s->sel.hdr.count);
	s->sel.lfd = -1;
	s->sel.live_gone = 0;
	s->sel.readonly = s->open_kind == OPEN_EXAMINE;
	m->mfd = m->ifd = -1;
	s->have_sel = 1;
	s->npend = s->pend_all = s->need_sync = 0;
	kw_load(&s->sel, &s->kw);
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
		   s->sel.hdr.count, uid_count(&s->sel, s->recent_lo, s->recent_hi));
	flags_line(s, &b);
	buf_printf(&b, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
		   "* OK [UIDNEXT %u] Predicted next UID\r\n",
		   s->sel.hdr.uidvalidity, s->sel.hdr.uidnext);
	if (first)
		buf_printf(&b, "* OK [UNSEEN %u] First unseen\r\n", first);
	if (CONFIG_IMAP_CONDSTORE)
		buf_printf(&b, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
			   (unsigned long long)s->sel.hdr.modseq);
	log_msg(LOGL_INFO, "conn %u %s: imap %s selected %s: %u messages", c->id,
		c->peer_str, s->user, s->sel.full,
		s->sel.hdr.count);
	imap_enter(c, s, IMAP_SELECTED);
	memset(&s->job, 0, sizeof(s->job));
	s->ib = b;
	snprintf(name, sizeof(name), "[%s] %s completed", s->sel.readonly ? "READ-ONLY" :
		 "READ-WRITE", s->open_kind == OPEN_EXAMINE ? "EXAMINE" : "SELECT");
	job_start(c, s, J_TEXT, name);
	conn_resume(c);
}

static void cmd_status(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char *name;
	size_t nl;
	const char *w;
	size_t wl;
	unsigned items = 0;

	if (ip_sp(ip) || ip_astring(ip, &name, &nl) || ip_sp(ip) || ip_char(ip, '(')) {
		bad(c, s, "Syntax: STATUS mailbox (items)");
		return;
	}
	for (int guard = 0; guard < 16; guard++) {
		if (ip_atom(ip, &w, &wl, 0)) {
			bad(c, s, "Syntax: STATUS mailbox (items)");
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
			bad(c, s, "Unknown STATUS item");
			return;
		}
		if (ip_peek(ip) != ' ')
			break;
		ip->p++;
	}
	if (ip_char(ip, ')') || ip_end(ip)) {
		bad(c, s, "Syntax: STATUS mailbox (items)");
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
};

static void list_line(struct list_ctx *x, const char *attrs, const char *name)
{
	struct imap_session *s = x->s;
	struct mime_out o;
	size_t al = strlen(attrs);

	mime_out_init(&o, buf_reserve(&s->ib, buf_remaining(&s->ib)),
		      buf_remaining(&s->ib));
	mime_out_str(&o, "* ", 2);
	mime_out_str(&o, x->verb, strlen(x->verb));
	mime_out_str(&o, " (", 2);
	mime_out_str(&o, attrs + (al && attrs[0] == ' '), al - (al && attrs[0] == ' '));
	mime_out_str(&o, ") \"/\" ", 6);
	mime_out_nstring(&o, name, strlen(name));
	mime_out_str(&o, "\r\n", 2);
	if (!o.overflow)
		buf_commit(&s->ib, o.b.len);
	else
		log_msg(LOGL_WARN, "imap %s: LIST answer over %d bytes, truncated",
			s->user, IMAP_ITEM_MAX);
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
	static char pat[IMAP_PATTERN_MAX + 1], subs[FOLDER_SUBS_MAX + 1];
	struct list_ctx x = { .s = s, .verb = verb, .pat = pat, .subs = subs };
	char *ref, *p;
	size_t rl, pl;

	if (ip_sp(ip)) {
		bad(c, s, "Syntax: LIST reference pattern");
		return;
	}
	if (ip_peek(ip) == '(' && strcmp(verb, "LIST") == 0 &&
	    (list_opts(ip, &x.opts, 0) || ip_sp(ip))) {
		bad(c, s, "Syntax: LIST (options) reference pattern");
		return;
	}
	if (ip_astring(ip, &ref, &rl) || ip_sp(ip) || ip_list_mailbox(ip, &p, &pl)) {
		bad(c, s, "Syntax: LIST reference pattern");
		return;
	}
	if (ip_peek(ip) == ' ' && strcmp(verb, "LIST") == 0) {
		const char *w;
		size_t wl;
		ip->p++;
		if (ip_atom(ip, &w, &wl, 0) || !str_ieq(w, wl, "RETURN") || ip_sp(ip) ||
		    list_opts(ip, &x.opts, 1)) {
			bad(c, s, "Syntax: LIST reference pattern RETURN (options)");
			return;
		}
	}
	if (ip_end(ip)) {
		bad(c, s, "Syntax: LIST reference pattern");
		return;
	}
	buf_reset(&s->ib);
	memset(&s->job, 0, sizeof(s->job));
	if (pl == 0 && !(x.opts & (LO_SUBSCRIBED | LO_SPECIAL))) {
		/* The hierarchy delimiter and root. */
		buf_printf(&s->ib, "* %s (\\Noselect) \"/\" \"\"\r\n", verb);
		job_start(c, s, J_TEXT, "LIST completed");
		return;
	}
	if (rl + pl > IMAP_PATTERN_MAX) {
		bad(c, s, "Reference and pattern too long");
		return;
	}
	/* The reference is a prefix of the pattern. */
	struct buf pb;
	buf_init(&pb, pat, sizeof(pat));
	buf_add(&pb, ref, rl);
	buf_add(&pb, p, pl);
	buf_nul(&pb);
	x.pl = pb.len;
	if (strcmp(verb, "LSUB") == 0)
		x.opts |= LO_LSUB | LO_SUBSCRIBED;
	if (x.opts & (LO_SUBSCRIBED | LO_RET_SUBSCRIBED))
		folder_subs(s->base, subs, sizeof(subs));
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
	job_start(c, s, J_TEXT, strcmp(verb, "LSUB") ? "LIST completed" :
		  "LSUB completed");
}

static void cmd_list_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_list(c, s, ip, "LIST");
}

static void cmd_lsub(struct conn *c, struct imap_session *s, struct ip *ip)
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
		bad(c, s, "Syntax: mailbox name expected");
		return -1;
	}
	if (nl >= n || memchr(name, '\0', nl)) {
		tagged(c, s, "NO", "[CANNOT] Bad mailbox name");
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
		const struct imap_session *o = &pool[i];
		if (!pool_used[i] || !o->have_sel)
			continue;
		/* the mailbox, or one under it (its directory or NAME.sbd) */
		if (same_mbx(&o->sel, m) ||
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
	tagged(c, s, "NO", "%s", text);
}

static void cmd_create(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char name[IMAP_NAME_MAX + 2];
	size_t nl;
	int dir_only = 0;

	if (name_arg(c, s, ip, name, sizeof(name)))
		return;
	if (ip_end(ip)) {
		bad(c, s, "Syntax: CREATE mailbox");
		return;
	}
	nl = strlen(name);
	if (nl > 1 && name[nl - 1] == '/') {
		/* "A/": a name under which mailboxes will be made. */
		name[--nl] = '\0';
		dir_only = 1;
	}
	if (strcmp(name, "INBOX") == 0) {
		tagged(c, s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (folder_create(s->base, name, dir_only) != 0) {
		folder_error(c, s, "create");
		return;
	}
	tagged(c, s, "OK", "CREATE completed");
}

/* DELETE and RENAME: the name must be a valid one that no session has
 * selected. 0, or -1 when answered. */
static int folder_free(struct conn *c, struct imap_session *s, const char *name,
		       const char *what)
{
	struct mbx m;

	if (mbx_paths(s, &m, name, strlen(name)) != 0) {
		folder_error(c, s, what);
		return -1;
	}
	if (in_use(&m)) {
		tagged(c, s, "NO", "[INUSE] Mailbox is selected in a session");
		return -1;
	}
	return 0;
}

static void cmd_delete(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char name[IMAP_NAME_MAX + 2];

	if (name_arg(c, s, ip, name, sizeof(name)))
		return;
	if (ip_end(ip)) {
		bad(c, s, "Syntax: DELETE mailbox");
		return;
	}
	if (strcmp(name, "INBOX") == 0) {
		tagged(c, s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (folder_free(c, s, name, "delete") != 0)
		return;
	if (folder_delete(s->base, name) != 0) {
		folder_error(c, s, "delete");
		return;
	}
	tagged(c, s, "OK", "DELETE completed");
}

static void cmd_rename(struct conn *c, struct imap_session *s, struct ip *ip)
{
	char from[IMAP_NAME_MAX + 2], to[IMAP_NAME_MAX + 2];
	int rc;

	if (name_arg(c, s, ip, from, sizeof(from)) ||
	    name_arg(c, s, ip, to, sizeof(to)))
		return;
	if (ip_end(ip)) {
		bad(c, s, "Syntax: RENAME from to");
		return;
	}
	if (strcmp(to, "INBOX") == 0) {
		tagged(c, s, "NO", "[ALREADYEXISTS] INBOX always exists");
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
	tagged(c, s, "OK", "RENAME completed");
}

static void subscribe(struct conn *c, struct imap_session *s, struct ip *ip,
		      int on)
{
	char name[IMAP_NAME_MAX + 2];

	if (name_arg(c, s, ip, name, sizeof(name)))
		return;
	if (ip_end(ip)) {
		bad(c, s, "Syntax: SUBSCRIBE mailbox");
		return;
	}
	if (strcmp(name, "INBOX") != 0 && !folder_name_ok(name, strlen(name))) {
		tagged(c, s, "NO", "[CANNOT] Bad mailbox name");
		return;
	}
	if (folder_subscribe(s->base, name, on) != 0) {
		folder_error(c, s, "subscribe");
		return;
	}
	tagged(c, s, "OK", "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

static void cmd_subscribe(struct conn *c, struct imap_session *s, struct ip *ip)
{
	subscribe(c, s, ip, 1);
}

static void cmd_unsubscribe(struct conn *c, struct imap_session *s, struct ip *ip)
{
	subscribe(c, s, ip, 0);
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

	*bits = 0;
	if (a->n == 0 || CONFIG_IMAP_KEYWORDS_MAX == 0)
		return 0;
	if (kw_path(&s->sel, path, sizeof(path)) != 0) {
		tagged(c, s, "NO", "[SERVERBUG] Cannot keep keywords");
		return -1;
	}
	if (idx_kw_changed(path, &s->kw))
		idx_kw_load(path, &s->kw);
	for (int i = 0; i < a->n; i++) {
		int k = add ? idx_kw_add(path, &s->kw, a->p[i], a->len[i],
					 CONFIG_IMAP_KEYWORDS_MAX) :
			      idx_kw_find(&s->kw, a->p[i], a->len[i]);
		if (k >= 0) {
			*bits |= (uint64_t)1 << k;
			continue;
		}
		if (!add)
			continue;       /* removing what nobody set */
		if (errno == ENOSPC || errno == ENAMETOOLONG)
			tagged(c, s, "NO", "[LIMIT] %s (at most %d keywords in a "
			       "mailbox, %d octets each)", errno == ENOSPC ?
			       "Too many keywords in this mailbox" : "Keyword too long",
			       CONFIG_IMAP_KEYWORDS_MAX, IDX_KW_NAME_MAX);
		else
			tagged(c, s, "NO", "[SERVERBUG] Cannot keep keywords");
		return -1;
	}
	return 0;
}


static void cmd_fetch(struct conn *c, struct imap_session *s, struct ip *ip, int uid)
{
	const char *set;
	size_t sl;

	if (ip_sp(ip) || ip_seqset(ip, &set, &sl) || ip_sp(ip) ||
	    ip_fetch_atts(ip, &s->q.fr)) {
		tagged(c, s, "BAD", "Syntax: FETCH set items (%s)",
		       ip->err ? ip->err : "?");
		return;
	}
	if (s->q.fr.changedsince || (s->q.fr.attrs & FA_MODSEQ)) {
		struct fetch_req *fr = &s->q.fr;
		if (!CONFIG_IMAP_CONDSTORE) {
			bad(c, s, "MODSEQ and CHANGEDSINCE need CONDSTORE");
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
	memset(&s->job, 0, sizeof(s->job));
	s->job.uid = uid;
	seq_iter_init(&s->job.it, set, sl);
	if (!uid) {
		/* Sequence numbers must exist (RFC 3501 §6.4.5). */
		struct seq_iter it;
		uint32_t lo, hi;
		seq_iter_init(&it, set, sl);
		while (seq_next(&it, s->sel.hdr.count, &lo, &hi))
			if (hi > s->sel.hdr.count || lo == 0) {
				bad(c, s, "Invalid message sequence number");
				return;
			}
	}
	job_start(c, s, J_FETCH, uid ? "UID FETCH completed" : "FETCH completed");
}

/* A flag list: "(...)", "()", a single flag, or NIL (no flags). System
 * flags into *flags; keywords into kw (NULL: accepted and dropped). */
static int flag_list(struct ip *ip, uint32_t *flags, struct kwargs *kw)
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
		if (!paren && !sys && str_ieq(w, n, "NIL"))
			return 0;       /* STORE +FLAGS NIL: no flags */
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
		bad(c, s, "Syntax: STORE set item flags");
		return;
	}
	if (ip_peek(ip) == '(') {
		/* RFC 7162: (UNCHANGEDSINCE n) */
		ip->p++;
		if (!CONFIG_IMAP_CONDSTORE || ip_atom(ip, &w, &wl, 0) ||
		    !str_ieq(w, wl, "UNCHANGEDSINCE") || ip_sp(ip) ||
		    ip_number64(ip, &j->since) || ip_char(ip, ')') || ip_sp(ip)) {
			bad(c, s, "Syntax: STORE set (UNCHANGEDSINCE n) item flags");
			return;
		}
		j->unchanged = 1;
		s->condstore = 1;
	}
	if (ip_peek(ip) == '+' || ip_peek(ip) == '-')
		j->mode = *ip->p++;
	if (ip_atom(ip, &w, &wl, 0) || ip_sp(ip) || flag_list(ip, &j->flags, &kwa) || ip_end(ip) ||
	    !(str_ieq(w, wl, "FLAGS") || str_ieq(w, wl, "FLAGS.SILENT"))) {
		bad(c, s, "Syntax: STORE set [+-]FLAGS[.SILENT] (flags)");
		return;
	}
	j->silent = wl == 12;
	if (s->sel.readonly) {
		tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	if (kw_bits(c, s, &kwa, j->mode != '-', &j->kw) != 0)
		return;
	j->uid = uid;
	live_check(s);
	seq_iter_init(&j->it, set, sl);
	if (!uid) {
		struct seq_iter it;
		uint32_t lo, hi;
		seq_iter_init(&it, set, sl);
		while (seq_next(&it, s->sel.hdr.count, &lo, &hi))
			if (hi > s->sel.hdr.count || lo == 0) {
				bad(c, s, "Invalid message sequence number");
				return;
			}
	}
	j->kind = J_STORE;
	buf_reset(&s->ib);
	job_start(c, s, J_STORE, uid ? "UID STORE completed" : "STORE completed");
}

static void cmd_search(struct conn *c, struct imap_session *s, struct ip *ip, int uid)
{
	if (ip_sp(ip) || ip_search(ip, &s->q.sp)) {
		if (ip->err && strcmp(ip->err, "BADCHARSET") == 0)
			tagged(c, s, "NO", "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
		else
			tagged(c, s, "BAD", "Syntax: SEARCH keys (%s)", ip->err ? ip->err : "?");
		return;
	}
	if (srch_tables(&s->q.sp, kmp_tab, ARRAY_LEN(kmp_tab)) != 0) {
		tagged(c, s, "NO", "[LIMIT] Search keys too long");
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
			bad(c, s, "MODSEQ needs CONDSTORE");
			return;
		}
		s->condstore = 1;
	}
	conn_printf(c, "* SEARCH");
	job_start(c, s, J_SEARCH, uid ? "UID SEARCH completed" : "SEARCH completed");
}

static void cmd_uid(struct conn *c, struct imap_session *s, struct ip *ip)
{
	const char *w;
	size_t n;

	if (ip_sp(ip) || ip_atom(ip, &w, &n, 0)) {
		bad(c, s, "Syntax: UID command ...");
		return;
	}
	if (str_ieq(w, n, "FETCH"))
		cmd_fetch(c, s, ip, 1);
	else if (str_ieq(w, n, "STORE"))
		cmd_store(c, s, ip, 1);
	else if (str_ieq(w, n, "SEARCH"))
		cmd_search(c, s, ip, 1);
	else if (str_ieq(w, n, "COPY"))
		cmd_copy(c, s, ip, 1, 0);
	else if (CONFIG_IMAP_MOVE && str_ieq(w, n, "MOVE"))
		cmd_copy(c, s, ip, 1, 1);
	else if (CONFIG_IMAP_UIDPLUS && str_ieq(w, n, "EXPUNGE"))
		cmd_uid_expunge(c, s, ip);
	else
		bad(c, s, "Unknown UID command");
}

static void cmd_fetch_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_fetch(c, s, ip, 0);
}

static void cmd_store_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_store(c, s, ip, 0);
}

static void cmd_search_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_search(c, s, ip, 0);
}

static void cmd_check(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: CHECK");
		return;
	}
	sync_then_ok(c, s, "CHECK completed");
}

static void cmd_unselect(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: UNSELECT");
		return;
	}
	close_sel(s);
	imap_enter(c, s, IMAP_AUTHED);
	tagged(c, s, "OK", "Unselect completed");
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

static void rw_close_snapshot(struct imap_session *s)
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
	rw_close_snapshot(s);
	if (mbx_begin(s, &nm) != 0) {
		upd_abort_keep_lock(s);
		mbx_close(&nm);
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
	upd_abort_keep_lock(s);
	mbx_close(&nm);
	if (rc == IDX_DONE && s->rw_hdr.uidvalidity != s->sel.hdr.uidvalidity) {
		rw_close_snapshot(s);
		errno = ESTALE;
		return -1;
	}
	return rc == IDX_DONE ? 0 : -1;
}

static void rewrite_end(struct conn *c, struct imap_session *s, int good)
{
	int e = errno;

	unlock(s);
	rw_close_snapshot(s);
	if (!good) {
		log_msg(LOGL_ERR, "conn %u %s: imap %s: expunge failed: %s", c->id,
			c->peer_str, s->user, strerror(e));
		imap_enter(c, s, IMAP_SELECTED);
		tagged(c, s, "NO", "%s", e == ESTALE ?
		       "The mailbox was changed by another program; try again" :
		       "[SERVERBUG] Cannot rewrite the mailbox");
		if (s->rw_close) {
			close_sel(s);
			imap_enter(c, s, IMAP_AUTHED);
		}
		wait_command(c, s);
		conn_resume(c);
		return;
	}
	tell_changed(s, s->sel.dir, s->sel.name);
	imap_enter(c, s, IMAP_SELECTED);
	if (s->rw_close) {
		close_sel(s);
		imap_enter(c, s, IMAP_AUTHED);
		tagged(c, s, "OK", "CLOSE completed");
		wait_command(c, s);
		conn_resume(c);
		return;
	}
	s->need_sync = 1;
	sync_then_ok(c, s, s->rw_done);
	if (reading_state(s))
		wait_command(c, s);
	conn_resume(c);         /* last: it may run the next command */
}

static void rewrite_step(struct conn *c, struct imap_session *s, int all)
{
	struct idx_hdr h;
	int rc;

	if (!s->locked) {
		rc = mbox_lock(s->sel.dir, s->sel.name, &s->lock);
		if (rc == MBOX_BUSY && now_ms() < s->lock_until && !all) {
			conn_deadline_ms(c, IMAP_LOCK_RETRY_MS);
			return;
		}
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

static void start_rewrite(struct conn *c, struct imap_session *s, int close_after,
			  int mode, const char *done)
{
	int any = 0;

	s->rw_mode = mode;
	snprintf(s->rw_done, sizeof(s->rw_done), "%s", done);
	live_check(s);
	for (uint32_t i = 0; i < s->sel.hdr.count && !any; i++) {
		struct idx_rec r;
		any = get_rec_live(s, i, &r) == 0 && goes(s, &r);
	}
	if (!any || s->sel.readonly) {
		if (close_after) {
			close_sel(s);
			imap_enter(c, s, IMAP_AUTHED);
			tagged(c, s, "OK", "CLOSE completed");
		} else {
			sync_then_ok(c, s, done);
		}
		return;
	}
	s->rw_close = close_after;
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	imap_enter(c, s, IMAP_REWRITE);
	conn_suspend(c);
	rewrite_step(c, s, 0);
}

static void cmd_expunge(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: EXPUNGE");
		return;
	}
	if (s->sel.readonly) {
		tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	start_rewrite(c, s, 0, RW_DELETED, "EXPUNGE completed");
}

static void cmd_close(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: CLOSE");
		return;
	}
	start_rewrite(c, s, 1, RW_DELETED, "CLOSE completed");
}

static void cmd_idle(struct conn *c, struct imap_session *s, struct ip *ip)
{
	if (ip_end(ip)) {
		bad(c, s, "Syntax: IDLE");
		return;
	}
	imap_enter(c, s, IMAP_IDLE);
	conn_printf(c, "+ idling\r\n");
	if (s->have_sel)
		sync_and_push(c, s);
	wait_command(c, s);
}

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
 * to date with the lock still held (OPEN_APPEND/OPEN_COPY); new_done()
 * sets the flags of the new records, which start at s->new_off. */

static void index_new(struct conn *c, struct imap_session *s, int kind);

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
	unlock(s);
	mbx_close(&s->tmp);
	imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	tagged(c, s, st, "%s", text);
	wait_command(c, s);
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
	rc = mbox_lock(s->tmp.dir, s->tmp.name, &s->lock);
	if (rc == MBOX_BUSY && now_ms() < s->lock_until) {
		conn_deadline_ms(c, IMAP_LOCK_RETRY_MS);
		return 0;
	}
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
	if (memchr(name, '\0', nl) || mbx_paths(s, &s->tmp, name, nl) != 0) {
		*err = "[CANNOT] Bad mailbox name";
		return -1;
	}
	if (is_inbox(s, &s->tmp))
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
static int append_begin(struct conn *c, struct imap_session *s, uint64_t lit)
{
	struct ip ip;
	const char *tag, *w, *st = "BAD", *err = NULL;
	char *name;
	size_t tl, wl, nl, open_brace = s->cb.len;

	while (open_brace > s->line0 && s->cmd[open_brace - 1] != '{')
		open_brace--;
	if (open_brace == s->line0 || s->state == IMAP_NOAUTH)
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
	    (ip_peek(&ip) == '(' && (flag_list(&ip, &s->app_flags, &app_kwa) ||
				     kw_keep(s) || ip_sp(&ip))) ||
	    (ip_peek(&ip) == '"' && (ip_datetime(&ip, &s->app_time) || ip_sp(&ip))) ||
	    !ip_done(&ip))
		err = "Syntax: APPEND mailbox [(flags)] [date-time] {size}";
	else if (s->state != IMAP_AUTHED && s->state != IMAP_SELECTED)
		err = "Command not valid in this state";
	else if (target_set(c, s, name, nl, &st, &err) == 0) {
		if (lit == 0)
			err = "Empty message";
		else if (lit > conf->max_message_size)
			err = "[TOOBIG] Message larger than the size limit";
		else if ((s->app_fd = tmp_file()) < 0)
			err = write_error(errno);
	}
	s->app_st = st;
	s->app_err = err;
	if (err) {
		s->app_mode = APP_NONE;
		mbx_close(&s->tmp);
		return 2;
	}
	explicit_bzero(s->cmd, s->cb.len);
	buf_reset(&s->cb);
	s->line0 = 0;
	s->app_mode = APP_STORE;
	return 1;
}

/* Literal octets of the message: CRLF becomes LF on the way to the file. */
static void append_feed(struct imap_session *s, const char *p, size_t n)
{
	struct buf w;

	if (s->app_mode != APP_STORE)
		return;
	buf_init(&w, obuf, sizeof(obuf));
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

static void append_step(struct conn *c, struct imap_session *s)
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
static void append_end(struct conn *c, struct imap_session *s)
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
		imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
		conn_suspend(c);
		target_end(c, s, s->app_st, s->app_err);
		return;
	}
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	mbox_append_begin(&s->app_ap);
	imap_enter(c, s, IMAP_APPEND);
	conn_suspend(c);
	append_step(c, s);
}

/* Copies IMAP_STEP bytes a pass, also inside one message (copy_done:
 * its bytes already in the target), then syncs and indexes the target. */
static void copy_step(struct conn *c, struct imap_session *s)
{
	struct idx_rec r;
	size_t budget = IMAP_STEP;
	int rc = target_lock(c, s);

	if (rc <= 0)
		return;
	for (; s->copy_i < s->sel.hdr.count && budget > 0; s->copy_i++) {
		off_t before = s->copy_done;
		if (get_rec(&s->sel, s->copy_i, &r) != 0) {
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
	if (s->copy_i < s->sel.hdr.count) {
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
	imap_enter(c, s, IMAP_OPEN);
	if (mbx_begin(s, &s->tmp) != 0) {
		open_fail(c, s, "Cannot open the mailbox");
		return;
	}
	open_step(c, s);
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

static void start_rewrite(struct conn *c, struct imap_session *s, int close_after,
			  int mode, const char *done);

/* The target's keyword names while new_done runs (one call). */
static struct idx_kw target_kw;

/* Keyword names as bits of the target's table (added there as needed;
 * beyond its cap they are dropped: the messages are already in). */
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

/* Keywords kw of the selected mailbox in the target's table. */
static uint64_t kw_map(struct imap_session *s, struct mbx *to, uint64_t kw)
{
	static struct kwargs a;

	a.n = 0;
	for (unsigned k = 0; k < s->kw.n; k++)
		if (kw >> k & 1) {
			a.p[a.n] = s->kw.buf + s->kw.off[k];
			a.len[a.n++] = s->kw.len[k];
		}
	return kw_names(to, a.p, a.len, a.n);
}


/* The target's index is up to date (indexed = 1) or could not be read:
 * flags of the new messages, the UIDPLUS answer, then MOVE's expunge. */
static void new_done(struct conn *c, struct imap_session *s, int indexed)
{
	static struct uid_set src, dst;
	struct mbx *m = &s->tmp;
	struct idx_rec r, sr;
	uint32_t k = m->hdr.count, i = 0;
	char text[300];
	int kind = s->open_kind, same = s->have_sel && same_mbx(m, &s->sel);

	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	kw_load(m, &target_kw);
	/* The first new record: the first at or after new_off. */
	for (uint32_t lo = 0, hi = indexed ? m->hdr.count : 0; lo < hi;) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (get_rec(m, mid, &r) != 0) {
			indexed = 0;
			break;
		}
		if (r.off < s->new_off)
			lo = mid + 1;
		else
			hi = k = mid;
	}
	for (; indexed && k < m->hdr.count; k++) {
		if (get_rec(m, k, &r) != 0)
			break;
		if (kind == OPEN_APPEND) {
			r.flags = s->app_flags;
			r.kw = kw_appended(s, m);
		} else {
			for (; i < s->sel.hdr.count; i++)
				if (get_rec_live(s, i, &sr) == 0 && in_set(s, i, &sr))
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
	tell_changed(s, m->dir, m->name);
	mbx_close(m);
	imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	/* Answer first: resuming runs the next pipelined command at once. */
	if (kind == OPEN_COPY && s->copy_move) {
		if (text[0] == '[')
			conn_printf(c, "* OK %.*s\r\n", (int)(strchr(text, ']') + 1 - text), text);
		start_rewrite(c, s, 0, RW_MOVE, s->set_uid ? "UID MOVE completed" :
			      "MOVE completed");
		if (s->state == IMAP_REWRITE)
			return;         /* rewrite_end resumes */
	} else {
		if (same)
			s->need_sync = 1;
		if (s->have_sel)
			sync_then_ok(c, s, text);
		else
			tagged(c, s, "OK", "%s", text);
	}
	if (reading_state(s))
		wait_command(c, s);
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
		if (s->sel.hdr.count && get_rec(&s->sel, s->sel.hdr.count - 1, &r) == 0)
			s->set_star = r.uid;
		return 0;
	}
	struct seq_iter it;
	uint32_t lo, hi;
	seq_iter_init(&it, set, sl);
	while (seq_next(&it, s->sel.hdr.count, &lo, &hi))
		if (hi > s->sel.hdr.count || lo == 0) {
			bad(c, s, "Invalid message sequence number");
			return -1;
		}
	return 0;
}

static void cmd_copy(struct conn *c, struct imap_session *s, struct ip *ip, int uid,
		     int move)
{
	const char *set, *st, *err;
	char *name;
	size_t sl, nl;
	struct idx_rec r;
	uint32_t n = 0;

	if (ip_sp(ip) || ip_seqset(ip, &set, &sl) || ip_sp(ip) ||
	    ip_astring(ip, &name, &nl) || ip_end(ip)) {
		bad(c, s, move ? "Syntax: MOVE set mailbox" : "Syntax: COPY set mailbox");
		return;
	}
	if (set_check(c, s, set, sl, uid) != 0)
		return;
	if (move && s->sel.readonly) {
		tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	if (target_set(c, s, name, nl, &st, &err) != 0) {
		tagged(c, s, st, "%s", err);
		return;
	}
	for (uint32_t i = 0; i < s->sel.hdr.count; i++)
		if (get_rec(&s->sel, i, &r) == 0 && in_set(s, i, &r))
			n++;
	s->copy_move = move;
	if (n == 0) {
		/* UID sets may name nothing that exists. */
		mbx_close(&s->tmp);
		tagged(c, s, "OK", "No messages");
		return;
	}
	s->copy_i = 0;
	s->copy_done = 0;
	s->lock_until = now_ms() + CONFIG_MBOX_LOCK_WAIT * 1000;
	imap_enter(c, s, IMAP_COPY);
	conn_suspend(c);
	copy_step(c, s);
}

static void cmd_copy_(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_copy(c, s, ip, 0, 0);
}

static void cmd_move(struct conn *c, struct imap_session *s, struct ip *ip)
{
	cmd_copy(c, s, ip, 0, 1);
}

static void cmd_uid_expunge(struct conn *c, struct imap_session *s, struct ip *ip)
{
	const char *set;
	size_t sl;

	if (ip_sp(ip) || ip_seqset(ip, &set, &sl) || ip_end(ip)) {
		bad(c, s, "Syntax: UID EXPUNGE set");
		return;
	}
	if (s->sel.readonly) {
		tagged(c, s, "NO", "Mailbox is read-only");
		return;
	}
	set_check(c, s, set, sl, 1);
	start_rewrite(c, s, 0, RW_UID_EXPUNGE, "UID EXPUNGE completed");
}

/* APPEND whose message is not a literal (append_begin takes those). */
static void cmd_append(struct conn *c, struct imap_session *s, struct ip *ip)
{
	(void)ip;
	bad(c, s, "Syntax: APPEND mailbox [(flags)] [date-time] {size}");
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
	{ "SELECT", AUTHED, cmd_select_ },
	{ "EXAMINE", AUTHED, cmd_examine },
	{ "LIST", AUTHED, cmd_list_ },
	{ "LSUB", AUTHED, cmd_lsub },
	{ "STATUS", AUTHED, cmd_status },
	{ "SUBSCRIBE", AUTHED, cmd_subscribe },
	{ "UNSUBSCRIBE", AUTHED, cmd_unsubscribe },
	{ "NAMESPACE", AUTHED, CONFIG_IMAP_NAMESPACE ? cmd_namespace : NULL },
	{ "ENABLE", AUTHED, CONFIG_IMAP_ENABLE ? cmd_enable : NULL },
	{ "IDLE", AUTHED, CONFIG_IMAP_IDLE ? cmd_idle : NULL },
	{ "CREATE", AUTHED, cmd_create },
	{ "DELETE", AUTHED, cmd_delete },
	{ "RENAME", AUTHED, cmd_rename },
	{ "APPEND", AUTHED, cmd_append },
	{ "CHECK", ST(IMAP_SELECTED), cmd_check },
	{ "CLOSE", ST(IMAP_SELECTED), cmd_close },
	{ "UNSELECT", ST(IMAP_SELECTED), cmd_unselect },
	{ "EXPUNGE", ST(IMAP_SELECTED), cmd_expunge },
	{ "FETCH", ST(IMAP_SELECTED), cmd_fetch_ },
	{ "STORE", ST(IMAP_SELECTED), cmd_store_ },
	{ "SEARCH", ST(IMAP_SELECTED), cmd_search_ },
	{ "UID", ST(IMAP_SELECTED), cmd_uid },
	{ "COPY", ST(IMAP_SELECTED), cmd_copy_ },
	{ "MOVE", ST(IMAP_SELECTED), CONFIG_IMAP_MOVE ? cmd_move : NULL },
};

static void command(struct conn *c, struct imap_session *s)
{
	struct ip ip;
	const char *tag, *verb;
	size_t tl, vl;
	char shown[80];

	s->tag[0] = '\0';
	if (++s->ncmds > IMAP_MAX_COMMANDS) {
		conn_printf(c, "* BYE Too many commands\r\n");
		logout_now(c, s);
		return;
	}
	ip_init(&ip, s->cmd, s->cb.len);
	if (ip_tag(&ip, &tag, &tl)) {
		bad(c, s, "Missing or bad tag");
		return;
	}
	str_copy(s->tag, sizeof(s->tag), tag, tl);
	if (ip_sp(&ip) || ip_atom(&ip, &verb, &vl, 0)) {
		bad(c, s, "Missing command");
		return;
	}
	if (CONFIG_DEBUG_PROTOCOL)
		log_msg(LOGL_DEBUG, "conn %u <- %s", c->id, str_printable(shown,
			sizeof(shown), s->cmd, (str_ieq(verb, vl, "LOGIN") ||
			str_ieq(verb, vl, "AUTHENTICATE")) ? (size_t)(ip.p - s->cmd) : s->cb.len));
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const struct imap_cmd *cmd = &commands[i];
		if (!cmd->fn || !str_ieq(verb, vl, cmd->verb))
			continue;
		if (!(cmd->states & ST(s->state))) {
			bad(c, s, s->state == IMAP_NOAUTH ? "Log in first" :
			    "Command not valid in this state");
			return;
		}
		cmd->fn(c, s, &ip);
		return;
	}
	bad(c, s, "Unknown command");
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

/* The client broke framing beyond repair (a literal that cannot be
 * dropped or measured): one BYE, the tagged answer, the end. */
static int give_up(struct conn *c, struct imap_session *s, const char *why)
{
	conn_printf(c, "* BYE %s\r\n", why);
	imap_enter(c, s, IMAP_LOGOUT);
	tagged(c, s, "BAD", "%s", why);
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
	switch (append_begin(c, s, lit)) {
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
		append_feed(s, p, n);
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

static int reading_state(const struct imap_session *s)
{
	return s->state == IMAP_NOAUTH || s->state == IMAP_AUTHED ||
	       s->state == IMAP_SELECTED || s->state == IMAP_SASL ||
	       s->state == IMAP_IDLE;
}

static void imap_input(struct conn *c)
{
	struct imap_session *s = c->sess;

	if (s->state == IMAP_BUSY) {
		job_step(c, s);
		if (s->state == IMAP_BUSY)
			return;
	}
	while (c->w.fd >= 0 && reading_state(s) && conn_out_free(c) >= IMAP_REPLY_ROOM) {
		if (s->state == IMAP_SASL || s->state == IMAP_IDLE) {
			char *line;
			size_t len;
			int crlf, rc = lb_next(&c->in, 1000, &line, &len, &crlf);
			if (rc == LB_NEED)
				return;
			if (s->state == IMAP_IDLE) {
				if (rc == LB_LINE && str_ieq(line, len, "DONE")) {
					imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
					tagged(c, s, "OK", "IDLE terminated");
				} else {
					imap_enter(c, s, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
					bad(c, s, "Expected DONE");
				}
			} else if (rc == LB_TOOLONG) {
				imap_enter(c, s, IMAP_NOAUTH);
				bad(c, s, "Response too long");
			} else {
				sasl_plain(c, s, line, len);
				explicit_bzero(line, len);
			}
			wait_command(c, s);
			continue;
		}
		int rc = read_step(c, s);
		if (rc == RD_NEED)
			return;
		if (rc == RD_MORE)
			continue;
		if (s->refused) {
			tagged(c, s, s->ref_st, "%s", s->ref_text);
		} else if (s->app_rest) {
			append_end(c, s);
		} else {
			command(c, s);
		}
		if (c->w.fd >= 0 && reading_state(s))
			wait_command(c, s);
	}
}

static void imap_timeout(struct conn *c)
{
	struct imap_session *s = c->sess;

	switch (s->state) {
	case IMAP_AUTH_WAIT:
		imap_enter(c, s, IMAP_NOAUTH);
		tagged(c, s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		wait_command(c, s);
		conn_resume(c);
		return;
	case IMAP_OPEN:
		open_step(c, s);
		return;
	case IMAP_REWRITE:
		rewrite_step(c, s, 0);
		return;
	case IMAP_APPEND:
		append_step(c, s);
		return;
	case IMAP_COPY:
		copy_step(c, s);
		return;
	case IMAP_BUSY:
		if (!conn_out_pending(c)) {
			job_step(c, s);
			/* The pipelined commands after it run as input does
			 * (CONN_IN_INPUT): a command finishing inside one of
			 * them resumes without running the next one nested. */
			if (s->state != IMAP_BUSY && c->w.fd >= 0)
				conn_resume(c);
			return;
		}
		break;
	case IMAP_IDLE:
		if (s->need_sync) {
			sync_and_push(c, s);
			if (!s->need_sync)
				wait_command(c, s);
			return;
		}
		break;
	default:
		break;
	}
	log_msg(LOGL_INFO, "conn %u %s: imap timeout in state %s", c->id,
		c->peer_str, state_names[s->state]);
	conn_printf(c, "* BYE Autologout; idle for too long\r\n");
	logout_now(c, s);
}

static int imap_open(struct conn *c)
{
	struct imap_session *s;
	char cap[256];
	int i;

	for (i = 0; i < CONFIG_MAX_CONNECTIONS && pool_used[i]; i++)
		;
	if (i == CONFIG_MAX_CONNECTIONS)
		return -1;
	pool_used[i] = 1;
	pool_conn[i] = c;
	s = &pool[i];
	memset(s, 0, offsetof(struct imap_session, cb));
	s->sel.mfd = s->sel.ifd = s->tmp.mfd = s->tmp.ifd = -1;
	s->sel.lfd = s->tmp.lfd = -1;
	s->old_ifd = -1;
	s->rw_ifd = -1;
	s->app_fd = -1;
	s->lock.fd = -1;
	s->state = IMAP_NOAUTH;
	buf_init(&s->cb, s->cmd, IMAP_CMD_MAX);
	buf_init(&s->ib, s->item, sizeof(s->item));
	buf_init(&s->tailb, s->tail, sizeof(s->tail));
	reader_reset(s);
	c->sess = s;
	capability_text(c, s, cap, sizeof(cap));
	conn_printf(c, "* OK [CAPABILITY %s] postie IMAP4rev1 ready\r\n", cap);
	wait_command(c, s);
	return 0;
}

static void imap_close(struct conn *c)
{
	struct imap_session *s = c->sess;

	if (!s)
		return;
	if (mime_owner == s)
		mime_owner = NULL;
	if (s->state == IMAP_REWRITE && s->locked && s->rw_live) {
		/* EXPUNGE came: finish it, even without a reader. */
		struct idx_hdr h;
		int rc;
		do {
			rc = idx_rewrite_step(&s->u.rw, SIZE_MAX, &h);
		} while (rc == IDX_AGAIN);
		s->rw_live = 0;
		if (rc == IDX_DONE)
			tell_changed(s, s->sel.dir, s->sel.name);
	}
	if (s->rw_live) {
		idx_rewrite_abort(&s->u.rw);
		s->rw_live = 0;
	}
	if ((s->state == IMAP_COPY || s->state == IMAP_APPEND) && s->locked)
		mbox_rollback(&s->lock);        /* a copy cut short: none of it */
	if (s->app_fd >= 0)
		close(s->app_fd);
	s->app_fd = -1;
	explicit_bzero(s->cmd, s->cb.len);
	upd_abort(s);
	mbx_close(&s->tmp);
	close_sel(s);
	if (s->old_ifd >= 0)
		close(s->old_ifd);
	s->old_ifd = -1;
	rw_close_snapshot(s);
	pool_used[s - pool] = 0;
	pool_conn[s - pool] = NULL;
	c->sess = NULL;
}

static void imap_refuse(struct conn *c, const char *why)
{
	conn_printf(c, "* BYE [UNAVAILABLE] %s\r\n", why);  /* RFC 5530 */
}

const struct proto_ops imap_ops = {
	.name = "imap",
	.open = imap_open,
	.input = imap_input,
	.timeout = imap_timeout,
	.close = imap_close,
	.refuse = imap_refuse,
};
