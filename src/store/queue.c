/* queue — the queue directory's files (see queue.h for the layout).
 *
 * Owns: creating queue/ and maildrop/, and committing a received tmp
 * file into queue/ durably. It decides nothing about delivery: the
 * runner (relay/runner.c) registers a hook and learns of each new file
 * through it, so the store never calls upward. */
#include "store/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"

/* New names tried when a queue file name is taken. */
#define QUEUE_NAME_TRIES 8

static char qdir[CONF_PATH_MAX + 8];
static void (*commit_hook)(const char *name);

int queue_open(const char *spool_dir)
{
	char drop[CONF_PATH_MAX + 12];

	snprintf(qdir, sizeof(qdir), "%s/queue", spool_dir);
	snprintf(drop, sizeof(drop), "%s/maildrop", spool_dir);
	if (mkdir(qdir, 0700) != 0 && errno != EEXIST)
		return -1;
	if (mkdir(drop, 01733) != 0 && errno != EEXIST)
		return -1;
	/* Anyone may drop (sticky, not listable); umask must not narrow it. */
	chmod(drop, 01733);
	return 0;
}

const char *queue_dir(void)
{
	return qdir;
}

void queue_on_commit(void (*fn)(const char *name))
{
	commit_hook = fn;
}

int queue_commit(struct spool_file *f)
{
	char from[CONF_PATH_MAX + SPOOL_NAME_MAX + 16];
	char to[CONF_PATH_MAX + SPOOL_NAME_MAX + 16];

	if (f->failed) {
		errno = f->err;
		return -1;
	}
	snprintf(from, sizeof(from), "%s/%s", spool_tmpdir(), f->name);
	if (file_sync(f->fd) != 0)
		return -1;
	/* Never over an accepted message: a name that is taken (a daemon
	 * of the same pid, restarted in the same microsecond) gets a new
	 * one. Bounded: each try is a new name. */
	for (int tries = 0;; tries++) {
		snprintf(to, sizeof(to), "%s/%s", qdir, f->name);
		if (rename_noreplace(AT_FDCWD, from, AT_FDCWD, to) == 0)
			break;
		if (errno != EEXIST || tries >= QUEUE_NAME_TRIES)
			return -1;
		log_msg(LOGL_WARN, "queue: %s is taken; a new name", f->name);
		spool_name(f->name, sizeof(f->name), "");
	}
	if (fsync_dir(qdir) != 0)
		return -1;
	close(f->fd);
	f->fd = -1;
	if (commit_hook)
		commit_hook(f->name);
	log_msg(LOGL_INFO, "queue: %s queued", f->name);
	return 0;
}
