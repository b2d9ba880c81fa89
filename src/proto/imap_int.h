/* imap_int — private to the IMAP server (src/proto/imap*.c): its limits,
 * the session and what it holds (mailbox views, jobs, the command
 * reader's state), and what one file of the server uses from another
 * (imap_ prefix). No other module includes it. */
#ifndef POSTIE_IMAP_INT_H
#define POSTIE_IMAP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/conn.h"
#include "proto/imap_parse.h"
#include "proto/imap_search.h"
#include "proto/mime.h"
#include "proto/session.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/users.h"

#define IMAP_CMD_MAX CONFIG_IMAP_CMD_MAX
#define IMAP_ITEM_MAX CONFIG_IMAP_ITEM_MAX
#define IMAP_NAME_MAX FOLDER_NAME_MAX
#define IMAP_MAX_ERRORS 30
#define IMAP_MAX_COMMANDS 10000000
#define IMAP_REPLY_ROOM 512
_Static_assert(IMAP_REPLY_ROOM <= CONFIG_CONN_OUTBUF,
	       "CONN_OUTBUF must hold IMAP_REPLY_ROOM, or no command is read");
#define IMAP_IDLE_TIMEOUT 1800          /* RFC 2177: at least 29 minutes */
#define IMAP_IDLE_POLL 5                /* s: IDLE stats the selected mbox */
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
	IMAP_SETUP,             /* first login: making the folders, a step a pass */
	IMAP_CREATE,            /* CREATE: a parent directory a pass */
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
enum { J_TEXT, J_FETCH, J_STORE, J_SEARCH, J_MERGE, J_LIST };
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
	int sc_want;            /* the structure cache could answer */
	int sc;                 /* it does: ENVELOPE... from its texts */
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
	/* J_LIST: reference and pattern (inside cmd until the answer), the
	 * LIST options, lines sent, all of them in the item buffer */
	const char *lref, *lpat;
	size_t lrl, lpl;
	const char *lverb;
	unsigned lopts;
	uint32_t lsent;
	int ldone;
};

struct imap_session {
	struct session ss;      /* ss.state: enum imap_state */
	char user[USER_NAME_MAX + 1];
	char base[FOLDER_PATH_MAX + 16];        /* the user's folders */
	int setup_pos, setup_steps;     /* folder_setup_step's place, steps */
	int create_dir;         /* IMAP_CREATE: the name (in tmp.full) ends in '/' */
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
	int64_t idle_until;     /* ms: IDLE's autologout */
	int kw_news;            /* keywords defined elsewhere: send FLAGS */
	int condstore;
	struct idx_sc sc;       /* the selected mailbox's structure cache */
	int sc_tried;           /* making it failed: not again */
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
	int ref_id;             /* ... after "* ID" (an ID too long to read) */
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

/* A flag list with every keyword fits FLAGS_TEXT_MAX. */
#define FLAGS_TEXT_MAX (IDX_KW_BYTES + 128)

/* imap.c: the session pool, shared scratch, answers, the reader */
void imap_bad(struct conn *c, struct imap_session *s, const char *why);
void imap_close_sel(struct imap_session *s);
extern unsigned char imap_fbuf[8192];
extern uint16_t imap_kmp_tab[IMAP_CMD_MAX];
extern struct mime imap_mime;
extern char imap_obuf[2 * sizeof(imap_fbuf) + 64];
/* the sessions; one is in use while its ss.conn is set */
extern struct imap_session imap_pool[CONFIG_MAX_CONNECTIONS];
int imap_reading_state(const struct imap_session *s);
void imap_tagged(struct conn *c, struct imap_session *s, const char *st,
		 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void imap_wait_command(struct conn *c, struct imap_session *s);

/* imap_mailbox.c: mailboxes */
void imap_create_step(struct conn *c, struct imap_session *s);
void imap_cmd_create(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_delete(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_examine(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_list_(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_lsub(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_rename(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_select_(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_status(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_subscribe(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_unsubscribe(struct conn *c, struct imap_session *s, struct ip *ip);
int imap_is_inbox(const struct imap_session *s, const struct mbx *m);
void imap_kw_load(const struct mbx *m, struct idx_kw *t);
int imap_kw_reload(const struct mbx *m, struct idx_kw *t);
void imap_kw_refused(struct conn *c, struct imap_session *s, int e);
int imap_mbx_begin(struct imap_session *s, struct mbx *m);
void imap_mbx_close(struct mbx *m);
int imap_mbx_paths(struct imap_session *s, struct mbx *m, const char *name,
		   size_t len);
int imap_mbx_step(struct imap_session *s, struct mbx *m, int all);
void imap_open_fail(struct conn *c, struct imap_session *s, const char *why);
void imap_open_step(struct conn *c, struct imap_session *s);
void imap_unlock(struct imap_session *s);
/* The mbox lock of dir/name for a command that can wait: MBOX_OK (the
 * caller sets s->locked), MBOX_AGAIN (queued: the deadline is set, try
 * again from the state's step), MBOX_BUSY (the queue stood still for
 * CONFIG_MBOX_LOCK_WAIT seconds: give up) or MBOX_ERR. */
int imap_lock_wait(struct conn *c, struct imap_session *s, const char *dir,
		   const char *name);
void imap_upd_abort(struct imap_session *s);
void imap_upd_abort_keep_lock(struct imap_session *s);

/* imap_selected.c: the selected mailbox */
void imap_cmd_check(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_close(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_expunge(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_fetch_(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_idle(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_search_(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_store_(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_uid(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_unselect(struct conn *c, struct imap_session *s, struct ip *ip);
int imap_flag_list(struct ip *ip, uint32_t *flags, struct kwargs *kw);
extern char imap_flagbuf[FLAGS_TEXT_MAX];
void imap_flags_line(const struct imap_session *s, struct buf *b);
int imap_get_rec(struct mbx *m, uint32_t i, struct idx_rec *r);
int imap_get_rec_live(struct imap_session *s, uint32_t i, struct idx_rec *r);
int imap_is_recent(const struct imap_session *s, uint32_t uid);
int imap_kw_has(void *ctx, const char *name, size_t n);
int imap_live_rec(struct imap_session *s, uint32_t i, const struct idx_rec *r,
		  struct idx_reader **rd, struct idx_rec *live);
int imap_next_range(struct imap_session *s, struct job *j);
size_t imap_rec_flags(const struct imap_session *s, const struct idx_rec *r);
void imap_recent_update(struct conn *c, struct imap_session *s, uint32_t from);
void imap_rewrite_step(struct conn *c, struct imap_session *s, int all);
void imap_rw_close_snapshot(struct imap_session *s);
int imap_same_mbx(const struct mbx *a, const struct mbx *b);
void imap_start_rewrite(struct conn *c, struct imap_session *s, int close_after,
			int mode, const char *done);
void imap_sync_and_push(struct conn *c, struct imap_session *s);
void imap_idle_poll(struct conn *c, struct imap_session *s);
void imap_idle_deadline(struct conn *c, struct imap_session *s);
void imap_sync_then_ok(struct conn *c, struct imap_session *s, const char *done);
void imap_tell_changed(struct imap_session *me, const char *dir, const char *name);
void imap_tell_flags(struct imap_session *me, uint32_t uid, uint64_t modseq);
uint32_t imap_uid_count(struct mbx *m, uint32_t lo, uint32_t hi);

/* imap_fetch.c: streams, FETCH, jobs */
/* J_LIST: refills the item buffer with the LIST/LSUB lines after the
 * job.lsent sent: 1 when they are the last, 0 when more follow, -1 when
 * one line alone does not fit. */
int imap_list_fill(struct imap_session *s);
void imap_job_start(struct conn *c, struct imap_session *s, int kind,
		    const char *done);
void imap_job_step(struct conn *c, struct imap_session *s);
extern struct imap_session *imap_mime_owner;

/* imap_append.c: APPEND, COPY, MOVE */
int imap_append_begin(struct conn *c, struct imap_session *s, uint64_t lit);
void imap_append_end(struct conn *c, struct imap_session *s);
void imap_append_feed(struct imap_session *s, const char *p, size_t n);
void imap_append_step(struct conn *c, struct imap_session *s);
void imap_cmd_append(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_copy(struct conn *c, struct imap_session *s, struct ip *ip, int uid,
		   int move);
void imap_cmd_copy_(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_move(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_cmd_uid_expunge(struct conn *c, struct imap_session *s, struct ip *ip);
void imap_copy_step(struct conn *c, struct imap_session *s);
void imap_new_done(struct conn *c, struct imap_session *s, int indexed);

/* imap_selected.c: a sequence set's numbers all exist, else BAD. */
int imap_seqs_exist(struct conn *c, struct imap_session *s, const char *set,
		    size_t sl);

#endif
