/* spool — message files in spool_dir. An incoming message is written to
 * spool_dir/tmp/NAME (envelope lines, then "D", then the message with LF
 * line ends); the queue issue renames such files into the queue after
 * fsync. Files left in tmp/ by a crash were never acknowledged and are
 * removed at start.
 *
 * File format (text, one item per line):
 *   F <sender>        envelope sender, empty for <>
 *   R <recipient>     one per accepted RCPT, as the client wrote it
 *   U <uid>           (maildrop files) the uid that ran sendmail
 *   D                 the message follows, to the end of the file */
#ifndef POSTIE_SPOOL_H
#define POSTIE_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "core/conf.h"

#define SPOOL_NAME_MAX 64

struct spool_file {
	int fd;
	char name[SPOOL_NAME_MAX];
	off_t data_off;         /* where the message starts */
	off_t size;             /* bytes written so far */
	int failed;             /* a write failed (errno kept in err) */
	int err;
};

/* spool_dir is 0711: any local user may reach maildrop/ (for sendmail),
 * nobody but the daemon may list or read the rest (queue/ and tmp/ are
 * 0700). maildrop/ is sticky, writable by all and not listable, so a
 * file's name is the secret that protects it until the pickup. */
#define SPOOL_DIR_MODE CONF_SPOOL_DIR_MODE
#define SPOOL_MAILDROP_MODE 01733
/* The suffix in spool_dir/bad/ of a message from <> that could be
 * neither delivered nor reported (relay/runner.c keeps it there). */
#define SPOOL_UNDELIVERABLE ".undeliverable"

/* Makes spool_dir (and its missing parents, 0755) and, with sendmail in
 * the build, spool_dir/maildrop, or brings existing ones to the modes
 * above; owned by uid:gid unless uid is (uid_t)-1. Used by the daemon
 * (as root, before it drops privileges) and by sendmail when the daemon
 * never ran. -1 with errno set. */
int spool_prepare(const char *spool_dir, uid_t uid, gid_t gid);
/* Opens (creating) spool_dir/postie.pid and takes an fcntl write lock on
 * it, kept as long as the descriptor is open: one daemon per spool. The
 * descriptor, or -1 with errno set; when another process holds the lock,
 * its pid goes to *holder (else 0). A symlink or a file with more than
 * one link is refused (ELOOP, EPERM). Owned by uid:gid unless uid is
 * (uid_t)-1. */
int spool_lock(const char *spool_dir, uid_t uid, gid_t gid, int *holder);
/* Creates spool_dir/tmp if missing, removes stale tmp files. */
int spool_init(const char *spool_dir);
/* spool_dir/tmp, for renames into the queue. */
const char *spool_tmpdir(void);
/* A new file name: "SECONDS.MICROSECONDS.PID.TAGCOUNTER". Unique within
 * one daemon; across restarts (a pid namespace reuses pid 1) the
 * queue's renames never replace a file, a taken name gets a new one. */
void spool_name(char *dst, size_t n, const char *tag);
int spool_create(struct spool_file *f);
/* Appends; on failure sets f->failed and keeps going (the caller answers
 * 4xx at the end of the transaction instead of mid-stream). */
void spool_write(struct spool_file *f, const char *p, size_t n);
void spool_mark_data(struct spool_file *f);
void spool_discard(struct spool_file *f);

/* Envelope reader for a spool file: calls fn for each F and R line
 * (other capital-letter lines are skipped) and sets f->data_off. */
typedef int (*spool_env_fn)(void *ctx, char kind, const char *val, size_t len);
int spool_read_envelope(struct spool_file *f, spool_env_fn fn, void *ctx);
/* The same for every envelope line (F, R, U from sendmail, ...). */
int spool_read_envelope_all(struct spool_file *f, spool_env_fn fn, void *ctx);

#endif
