/* mbox — locked, durable, rollback-on-failure mbox appends (see mbox.h).
 * Limits: paths of 300 bytes; copies through one static 16 KiB buffer
 * (single-threaded), so memory does not grow with the message. */
#include "store/mbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"

#define MBOX_CHUNK 4096

static uint64_t path_key(const char *dir, const char *name);

static char inbuf[MBOX_CHUNK];
static char outbuf[MBOX_CHUNK * 6 + 64];

void mbox_quote_init(struct mbox_quote *q)
{
	q->bol = 1;
	q->gt = 0;
	q->from = 0;
}

size_t mbox_quote(struct mbox_quote *q, const char *in, size_t n, char *out)
{
	static const char from[] = "From ";
	struct buf b;

	/* The room mbox.h promises: 6 * n + 6. */
	buf_init(&b, out, n > (SIZE_MAX - 6) / 6 ? SIZE_MAX : 6 * n + 6);
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (q->bol || q->gt) {
			if (q->from == 0 && c == '>') {
				q->bol = 0;
				q->gt = 1;
				buf_addc(&b, c);
				continue;
			}
			if (c == from[q->from]) {
				if (++q->from == 5) {
					/* One more '>' in front: any place in the run
					 * of '>' gives the same bytes. */
					buf_add(&b, ">From ", 6);
					q->from = 0;
					q->bol = q->gt = 0;
				}
				continue;
			}
			buf_add(&b, from, (size_t)q->from);
			q->from = 0;
			q->bol = q->gt = 0;
		}
		buf_addc(&b, c);
		if (c == '\n')
			q->bol = 1;
	}
	return b.len;
}

size_t mbox_quote_end(struct mbox_quote *q, char *out)
{
	struct buf b;

	buf_init(&b, out, 6);
	buf_add(&b, "From ", (size_t)q->from);
	mbox_quote_init(q);
	return b.len;
}

size_t mbox_from_line(char *out, size_t n, const char *sender, time_t t)
{
	char date[32];
	struct tm tm;
	size_t o;
	int k;

	if (!sender || !*sender)
		sender = "MAILER-DAEMON";
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	k = snprintf(out, n, "From %s %s\n", sender, date);
	if (k < 0 || (size_t)k >= n)
		return 0;
	o = (size_t)k;
	for (size_t i = 5, end = 5 + strlen(sender); i < end; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c <= ' ' || c == 127)
			out[i] = '_';
	}
	return o;
}

/* NAME.lock is made by link() from NAME.lock.PID holding our pid, so the
 * lock never exists without its content (a crash between create and
 * write would leave an anonymous lock nobody may clear). */
static int dotlock(struct mbox_lock *l)
{
	char tmp[sizeof(l->lockpath) + 16], pid[16];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid()), fd, rc = MBOX_BUSY;

	snprintf(tmp, sizeof(tmp), "%s.%d", l->lockpath, (int)getpid());
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return MBOX_ERR;
	if (write(fd, pid, (size_t)n) != n) {
		close(fd);
		unlink(tmp);
		return MBOX_ERR;
	}
	close(fd);
	for (int tries = 0; tries < 2; tries++) {
		struct stat st;

		if (link(tmp, l->lockpath) == 0) {
			rc = MBOX_OK;
			break;
		}
		if (errno != EEXIST) {
			rc = MBOX_ERR;
			break;
		}
		if (lstat(l->lockpath, &st) != 0)
			continue;
		if (time(NULL) - st.st_mtime < CONFIG_MBOX_DOTLOCK_STALE)
			break;
		log_msg(LOGL_WARN, "removing stale dotlock %s", l->lockpath);
		unlink(l->lockpath);
	}
	unlink(tmp);
	return rc;
}

/* Once both locks are held, NAME.lock also records the mailbox's size and
 * inode ("PID SIZE INODE", still a pid for programs that read one), so an
 * append cut short by a crash can be undone at the next start: the bytes
 * past that size were never acknowledged (replies come after the unlock).
 * No fsync: this covers a killed daemon, not a power cut. */
static void lock_note(const struct mbox_lock *l, const struct stat *st)
{
	char note[64];
	int n = snprintf(note, sizeof(note), "%d %lld %llu\n", (int)getpid(),
			 (long long)st->st_size, (unsigned long long)st->st_ino);
	int fd = open(l->lockpath, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, note, (size_t)n) != n)
		log_msg(LOGL_WARN, "%s: %s", l->lockpath, strerror(errno));
	close(fd);
}

int mbox_undo_crashed_append(const char *dir, const char *lockname,
			     const char *note)
{
	char path[sizeof(((struct mbox_lock *)0)->path)], *end;
	size_t l = strlen(lockname);
	long long size;
	unsigned long long ino;
	struct stat st;
	int fd, rc = 0;

	strtol(note, &end, 10);
	size = strtoll(end, &end, 10);
	ino = strtoull(end, &end, 10);
	if (*end != '\n' || size < 0 || l <= 5 ||
	    (size_t)snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(l - 5),
			     lockname) >= sizeof(path))
		return 0;       /* a plain "PID" lock: nothing recorded */
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	/* Another inode: a rewrite was committed (rename) before the crash. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_ino == ino &&
	    st.st_size > size) {
		rc = ftruncate(fd, size) == 0 && file_sync(fd) == 0 ? 1 : -1;
		log_msg(rc > 0 ? LOGL_WARN : LOGL_ERR, "%s: %s %lld bytes of an "
			"append cut short by a crash%s%s", path,
			rc > 0 ? "removed" : "cannot remove",
			(long long)(st.st_size - size), rc > 0 ? "" : ": ",
			rc > 0 ? "" : strerror(errno));
	}
	close(fd);
	return rc;
}

/* LFs missing at the end of a file of `size` bytes before a From_ line
 * may follow: none for an empty file or one ending in a blank line
 * ("\n\n"), one after a line end, two after a cut line. -1 on error. */
static int end_pad(int fd, off_t size)
{
	char b[2];
	off_t at = size >= 2 ? size - 2 : 0;
	size_t n = size >= 2 ? 2 : (size_t)size;
	ssize_t got;

	if (size == 0)
		return 0;
	do
		got = pread(fd, b, n, at);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)n) {
		if (got >= 0)
			errno = EIO;
		return -1;
	}
	if (b[n - 1] != '\n')
		return 2;
	return n == 1 || b[0] == '\n' ? 0 : 1;
}

/* Writes the LFs end_pad found missing, once per lock. */
static int write_pad(struct mbox_lock *l)
{
	if (l->pad == 0)
		return 0;
	if (write_all_fd(l->fd, "\n\n", (size_t)l->pad) != 0)
		return -1;
	l->pad = 0;
	return 0;
}

int mbox_lock(const char *dir, const char *name, struct mbox_lock *l)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int rc;

	l->fd = -1;
	l->dirfd_new = 0;
	l->pad = l->pad0 = 0;
	l->key = path_key(dir, name);
	if ((size_t)snprintf(l->path, sizeof(l->path), "%s/%s", dir, name) >=
	    sizeof(l->path) ||
	    (size_t)snprintf(l->lockpath, sizeof(l->lockpath), "%s.lock",
			     l->path) >= sizeof(l->lockpath)) {
		errno = ENAMETOOLONG;
		return MBOX_ERR;
	}
	rc = dotlock(l);
	if (rc != MBOX_OK)
		return rc;
	l->fd = open(l->path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (l->fd < 0 && errno == ENOENT) {
		l->fd = open(l->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL |
			     O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		l->dirfd_new = 1;
	}
	if (l->fd < 0)
		goto fail;
	if (fstat(l->fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
		log_msg(LOGL_ERR, "%s: refusing: not a regular file with one link "
			"owned by uid %d", l->path, (int)geteuid());
		errno = EPERM;
		goto fail;
	}
	if (fcntl(l->fd, F_SETLK, &fl) != 0) {
		if (errno == EAGAIN || errno == EACCES) {
			close(l->fd);
			l->fd = -1;
			unlink(l->lockpath);
			return MBOX_BUSY;
		}
		goto fail;
	}
	l->old_size = st.st_size;
	l->pad = l->pad0 = end_pad(l->fd, st.st_size);
	if (l->pad < 0)
		goto fail;
	wb_init(&l->wb, (int64_t)st.st_size);
	lock_note(l, &st);
	return MBOX_OK;
fail:
	rc = errno;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	unlink(l->lockpath);
	errno = rc;
	return MBOX_ERR;
}

/* ---- the queue of waiters in this process --------------------------- */

/* Waiters are named by their lock struct and their mailbox by a 64-bit
 * hash of its path (a collision only orders two mailboxes' waiters
 * together). Tickets give the order. */
static struct lock_waiter {
	const struct mbox_lock *who;    /* NULL: free */
	uint64_t key;
	uint32_t ticket;
	int64_t seen_ms;                /* its last try */
	int64_t moved_ms;               /* queued, or its queue last moved */
} waiters[CONFIG_MAX_CONNECTIONS];
static uint32_t ticket_next;
static void (*lock_free_hook)(const struct mbox_lock *next);

static uint64_t path_key(const char *dir, const char *name)
{
	uint64_t h = 1469598103934665603ull;    /* FNV-1a */

	for (const char *p = dir; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static struct lock_waiter *waiter_of(const struct mbox_lock *l)
{
	for (size_t i = 0; i < ARRAY_LEN(waiters); i++)
		if (waiters[i].who == l)
			return &waiters[i];
	return NULL;
}

/* The oldest live waiter for key; stale ones are dropped on the way. */
static struct lock_waiter *queue_head(uint64_t key, int64_t now)
{
	struct lock_waiter *head = NULL;

	for (size_t i = 0; i < ARRAY_LEN(waiters); i++) {
		struct lock_waiter *w = &waiters[i];
		if (!w->who || w->key != key)
			continue;
		if (now - w->seen_ms > MBOX_WAIT_STALE_MS) {
			w->who = NULL;
			continue;
		}
		if (!head || (int32_t)(w->ticket - head->ticket) < 0)
			head = w;
	}
	return head;
}

/* The queue for key moved: its waiters' patience starts again, and the
 * head hears it may try now (wake: the lock was given back). */
static void queue_moved(uint64_t key, int wake)
{
	int64_t now = now_ms();
	struct lock_waiter *head;

	for (size_t i = 0; i < ARRAY_LEN(waiters); i++)
		if (waiters[i].who && waiters[i].key == key)
			waiters[i].moved_ms = now;
	head = queue_head(key, now);
	if (wake && head && lock_free_hook)
		lock_free_hook(head->who);
}

void mbox_lock_cancel(const struct mbox_lock *l)
{
	struct lock_waiter *w = waiter_of(l);
	uint64_t key;

	if (!w)
		return;
	key = w->key;
	w->who = NULL;
	queue_moved(key, 1);
}

int mbox_lock_wait(const char *dir, const char *name, struct mbox_lock *l)
{
	uint64_t key = path_key(dir, name);
	int64_t now = now_ms();
	struct lock_waiter *head = queue_head(key, now), *w = waiter_of(l);
	int rc;

	if (w && w->key != key) {
		w->who = NULL;          /* it waits for another mailbox now */
		w = NULL;
	}
	if (!head || head == w) {
		rc = mbox_lock(dir, name, l);
		if (rc != MBOX_BUSY) {
			if (w)
				w->who = NULL;
			if (rc == MBOX_OK)
				queue_moved(key, 0);
			return rc;
		}
	}
	if (!w) {
		for (size_t i = 0; i < ARRAY_LEN(waiters) && !w; i++)
			if (!waiters[i].who)
				w = &waiters[i];
		if (!w)
			return MBOX_BUSY;       /* full: it retries unqueued */
		w->who = l;
		w->key = key;
		w->ticket = ticket_next++;
		w->moved_ms = now;
	}
	w->seen_ms = now;
	return MBOX_BUSY;
}

int64_t mbox_lock_stalled_ms(const struct mbox_lock *l)
{
	const struct lock_waiter *w = waiter_of(l);

	return w ? now_ms() - w->moved_ms : -1;
}

void mbox_on_lock_free(void (*fn)(const struct mbox_lock *next))
{
	lock_free_hook = fn;
}

void mbox_rollback(struct mbox_lock *l)
{
	if (ftruncate(l->fd, l->old_size) != 0 || file_sync(l->fd) != 0)
		log_msg(LOGL_ERR, "%s: rollback to %lld bytes failed: %s", l->path,
			(long long)l->old_size, strerror(errno));
	l->pad = l->pad0;
}

/* A failed append: truncated back, MBOX_ERR with the failure's errno. */
static int rollback_err(struct mbox_lock *l)
{
	int e = errno;

	mbox_rollback(l);
	errno = e;
	return MBOX_ERR;
}

/* The end of a step: bounded write-back of what was appended (core/util's
 * wb_step), so the fsync at the end is short. */
void mbox_step_end(struct mbox_lock *l)
{
	off_t end = lseek(l->fd, 0, SEEK_CUR);

	if (end > 0)
		wb_step(l->fd, &l->wb, (int64_t)end);
}

void mbox_append_begin(struct mbox_append *a)
{
	mbox_quote_init(&a->q);
	a->done = 0;
	a->started = 0;
	a->written = 0;
	a->last = '\n';
}

int mbox_append_step(struct mbox_lock *l, struct mbox_append *a,
		     const char *sender, time_t t, int src, off_t off, off_t len,
		     size_t budget)
{
	struct buf tail;
	size_t o;

	if (a->written) {
		/* A step of its own: the bytes are out, most written back. */
		if (file_sync(l->fd) != 0 ||
		    (l->dirfd_new && fsync_parent_of(l->path) != 0))
			goto fail;
		return MBOX_OK;
	}
	if (!a->started) {
		o = mbox_from_line(outbuf, sizeof(outbuf), sender, t);
		if (o == 0 || write_pad(l) != 0 || write_all_fd(l->fd, outbuf, o) != 0)
			goto fail;
		a->started = 1;
	}
	while (a->done < len) {
		off_t left = len - a->done;
		size_t want = left < MBOX_CHUNK ? (size_t)left : MBOX_CHUNK;
		if (budget == 0) {
			mbox_step_end(l);
			return MBOX_AGAIN;
		}
		if (want > budget)
			want = budget;
		ssize_t n = pread(src, inbuf, want, off + a->done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto fail;
		}
		o = mbox_quote(&a->q, inbuf, (size_t)n, outbuf);
		if (write_all_fd(l->fd, outbuf, o) != 0)
			goto fail;
		a->last = inbuf[n - 1];
		a->done += n;
		budget -= budget < (size_t)n ? budget : (size_t)n;
	}
	o = mbox_quote_end(&a->q, outbuf);
	if (o)
		a->last = outbuf[o - 1];
	buf_init_len(&tail, outbuf, sizeof(outbuf), o);
	if (a->last != '\n')
		buf_addc(&tail, '\n');
	buf_addc(&tail, '\n');
	if (write_all_fd(l->fd, outbuf, tail.len) != 0)
		goto fail;
	a->written = 1;
	mbox_step_end(l);
	return MBOX_AGAIN;
fail:
	return rollback_err(l);
}

int mbox_append_fd(struct mbox_lock *l, const char *sender, time_t t,
		   int src, off_t off, off_t len)
{
	struct mbox_append a;

	int rc;

	mbox_append_begin(&a);
	do
		rc = mbox_append_step(l, &a, sender, t, src, off, len, SIZE_MAX);
	while (rc == MBOX_AGAIN);
	return rc;
}

int mbox_append_raw(struct mbox_lock *l, int src, off_t off, off_t len,
		    off_t *done, size_t budget)
{
	if (*done == 0 && write_pad(l) != 0)
		return rollback_err(l);
	while (*done < len && budget > 0) {
		off_t left = len - *done;
		size_t want = left < (off_t)sizeof(outbuf) ? (size_t)left : sizeof(outbuf);
		if (want > budget)
			want = budget;
		ssize_t n = pread(src, outbuf, want, off + *done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto fail;
		}
		if (write_all_fd(l->fd, outbuf, (size_t)n) != 0)
			goto fail;
		*done += n;
		budget -= (size_t)n;
		if (*done == len) {
			/* The separator: one LF more, two when the message
			 * does not end with one. */
			int nl = outbuf[n - 1] == '\n';
			if (write_all_fd(l->fd, "\n\n", nl ? 1 : 2) != 0)
				goto fail;
			return MBOX_OK;
		}
	}
	if (*done < len) {
		mbox_step_end(l);
		return MBOX_AGAIN;
	}
	return write_all_fd(l->fd, "\n", 1) == 0 ? MBOX_OK : rollback_err(l);
fail:
	return rollback_err(l);
}

int mbox_sync(struct mbox_lock *l)
{

	if (file_sync(l->fd) == 0 && (!l->dirfd_new || fsync_parent_of(l->path) == 0))
		return MBOX_OK;
	return rollback_err(l);
}

void mbox_unlock(struct mbox_lock *l)
{
	if (l->fd >= 0) {
		/* Closing drops the fcntl lock; the dotlock goes after. */
		close(l->fd);
		l->fd = -1;
		unlink(l->lockpath);
		queue_moved(l->key, 1);
	}
}

static void (*new_mail_hook)(const char *user);

void mbox_on_new_mail(void (*fn)(const char *user))
{
	new_mail_hook = fn;
}

void mbox_new_mail(const char *user)
{
	if (new_mail_hook && user)
		new_mail_hook(user);
}
