/* mbox — append to an mbox file the way mutt, Dovecot and mail.local
 * expect: "From " separator line, mboxrd quoting (">*From " gets one more
 * '>'), a blank line after each message, fcntl lock plus NAME.lock
 * dotlock, O_NOFOLLOW, owner and link-count checks, fsync before success,
 * ftruncate back to the old size on any failure. */
#ifndef POSTIE_MBOX_H
#define POSTIE_MBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/util.h"

enum { MBOX_OK = 0, MBOX_BUSY = 1, MBOX_AGAIN = 2, MBOX_ERR = -1 };

/* A queued waiter that has not retried for this long has left. */
#define MBOX_WAIT_STALE_MS 2000

struct mbox_lock {
	int fd;
	int dirfd_new;          /* the file was created: fsync the directory */
	off_t old_size;
	int pad;                /* LFs the next append writes first */
	int pad0;               /* the same at lock time (after rollback) */
	uint64_t key;           /* names the mailbox in the waiters' queue */
	struct wb wb;           /* write-back of what was appended so far */
	char path[300];
	char lockpath[306];
};

/* mboxrd quoting across chunk boundaries; pure. */
struct mbox_quote {
	int bol;                /* at the start of a line */
	int gt;                 /* inside a run of '>' at line start */
	int from;               /* bytes of "From " matched so far */
};

void mbox_quote_init(struct mbox_quote *q);
/* Quotes in[0..n) into out (room for 6*n+6 bytes); returns bytes written.
 * Call mbox_quote_end at the end of a message to emit held-back bytes. */
size_t mbox_quote(struct mbox_quote *q, const char *in, size_t n, char *out);
size_t mbox_quote_end(struct mbox_quote *q, char *out);

/* "From sender Sat Nov 22 04:03:00 2026\n" into out; spaces and controls
 * in the sender become '_'; an empty sender is MAILER-DAEMON. */
size_t mbox_from_line(char *out, size_t n, const char *sender, time_t t);

/* Opens (creating 0600 when missing) and locks dir/name. MBOX_BUSY when
 * another program holds a lock; MBOX_ERR with errno otherwise. When
 * another program left the file not ending in a blank line (a foreign
 * append, a cut file), the first append of this lock writes the missing
 * one or two LFs before its From_ line, so that it cannot be glued into
 * the last message; a rollback takes them away again. */
int mbox_lock(const char *dir, const char *name, struct mbox_lock *l);
/* mbox_lock for callers that retry while a mailbox is busy (IMAP, POP3
 * and SMTP sessions of this process): first come, first served. A
 * caller told MBOX_BUSY is queued under l (the struct's address is its
 * identity); while anyone queues for a mailbox, a caller behind them is
 * told MBOX_BUSY without trying, so a steady stream of short appends
 * cannot starve a rewrite. The caller retries (at the latest every
 * MBOX_WAIT_STALE_MS / 4, else it drops out of the queue) and, when it
 * gives up, calls mbox_lock_cancel. When a holder in this process
 * unlocks, the head of the queue is named to the hook registered with
 * mbox_on_lock_free, so it can retry at once. */
int mbox_lock_wait(const char *dir, const char *name, struct mbox_lock *l);
void mbox_lock_cancel(const struct mbox_lock *l);
/* Milliseconds since the queue l waits in last moved (a lock taken or
 * given back in this process for its mailbox), or since l queued; -1
 * when l is not queued. A caller gives up only when this exceeds its
 * patience: a long queue that moves is not a stuck one. */
int64_t mbox_lock_stalled_ms(const struct mbox_lock *l);
void mbox_on_lock_free(void (*fn)(const struct mbox_lock *next));
/* Appends From_ line, the quoted bytes of src[off..off+len) and a blank
 * line, then fsyncs. On failure truncates back and returns MBOX_ERR. */
int mbox_append_fd(struct mbox_lock *l, const char *sender, time_t t,
		   int src, off_t off, off_t len);
/* The same in steps, so that a big message does not hold the loop: call
 * mbox_append_step with the same arguments until it returns MBOX_OK
 * (written and fsynced) or MBOX_ERR (truncated back to the size at lock
 * time); each call quotes and writes at most `budget` bytes of src and
 * returns MBOX_AGAIN while some are left. The fsync is a call of its own
 * (the one after the last bytes went out), so it never adds to a step
 * that already wrote its budget; the write-back of each step is waited
 * for at the next (struct wb), so that fsync is short. */
struct mbox_append {
	struct mbox_quote q;
	off_t done;             /* bytes of src written so far */
	int started;            /* the From_ line is out */
	int written;            /* all is out: the fsync at the next call */
	char last;              /* the last byte written */
};
void mbox_append_begin(struct mbox_append *a);
int mbox_append_step(struct mbox_lock *l, struct mbox_append *a,
		     const char *sender, time_t t, int src, off_t off, off_t len,
		     size_t budget);
/* Appends src[off..off+len) as it is (a From_ line and its message,
 * already mboxrd, taken from another mbox) and the blank separator line,
 * in steps: each call copies at most `budget` bytes from *done on (start
 * with *done = 0) and advances *done. MBOX_OK once the message and its
 * separator are written, MBOX_AGAIN while bytes are left (call again);
 * no fsync: mbox_sync after the last message. On failure the file is
 * truncated back to its size at lock time (MBOX_ERR). */
int mbox_append_raw(struct mbox_lock *l, int src, off_t off, off_t len,
		    off_t *done, size_t budget);
/* The end of a loop step of appends or copies (mbox_append_raw calls it
 * itself when it returns MBOX_AGAIN): waits for the write-back started
 * at the step before and starts that of this step's bytes (core/util's
 * wb_step), so the mbox_sync at the end is short. */
void mbox_step_end(struct mbox_lock *l);
/* fsync (and the directory's for a new file); rolls back on failure.
 * Call it at a step of its own, not after a step's worth of copying. */
int mbox_sync(struct mbox_lock *l);
/* Truncates back to the size at lock time (a copy abandoned). */
void mbox_rollback(struct mbox_lock *l);
void mbox_unlock(struct mbox_lock *l);
/* New mail in mail_dir/USER: a delivery calls mbox_new_mail() after its
 * append is synced and unlocked (and POP3 after its deletions are
 * committed: any change other sessions must look at), and the store
 * passes it on to the one
 * hook a higher layer registered (IMAP, so its sessions look again and
 * IDLE ones tell their client). The store never calls upward itself. */
void mbox_on_new_mail(void (*fn)(const char *user));
void mbox_new_mail(const char *user);
/* At start, for dir/lockname left by our own dead process with content
 * note: truncates the mailbox back to the size recorded at lock time if
 * it is still the same file and has grown (an unfinished, never
 * acknowledged append). 1 truncated, 0 nothing to do, -1 error (logged).
 * The caller removes the lock. */
int mbox_undo_crashed_append(const char *dir, const char *lockname,
			     const char *note);

#endif
