/* spool — message files in spool_dir. An incoming message is written to
 * spool_dir/tmp/NAME (envelope lines, then "D", then the message with LF
 * line ends); the queue issue renames such files into the queue after
 * fsync. Files left in tmp/ by a crash were never acknowledged and are
 * removed at start.
 *
 * File format (text, one item per line):
 *   F <sender>        envelope sender, empty for <>
 *   R <recipient>     one per accepted RCPT, as the client wrote it
 *   D                 the message follows, to the end of the file */
#ifndef POSTIE_SPOOL_H
#define POSTIE_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#define SPOOL_NAME_MAX 64

struct spool_file {
	int fd;
	char name[SPOOL_NAME_MAX];
	off_t data_off;         /* where the message starts */
	off_t size;             /* bytes written so far */
	int failed;             /* a write failed (errno kept in err) */
	int err;
};

/* Creates spool_dir and spool_dir/tmp if missing, removes stale tmp files. */
int spool_init(const char *spool_dir);
/* spool_dir/tmp, for renames into the queue. */
const char *spool_tmpdir(void);
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

#endif
