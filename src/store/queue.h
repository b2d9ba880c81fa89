/* queue — the durable relay queue in spool_dir (see spool.h for the file
 * format, shared with tmp/ and maildrop/).
 *
 * Layout of spool_dir:
 *   tmp/NAME        a message being received; never acknowledged yet
 *   queue/NAME      an acknowledged message waiting for delivery
 *   queue/NAME.st   its delivery state (absent: nothing tried yet)
 *   maildrop/NAME   dropped by `postie sendmail` (mode 1733 directory);
 *                   names starting with '.' are still being written
 *
 * A queue file is the spool format: "F sender", "R recipient" lines (other
 * capital-letter lines are ignored by readers), "D", then the message with
 * LF line ends, not quoted. It enters queue/ by rename after fsync of the
 * file, and the directory is fsynced before the 250 is sent.
 *
 * State file (text, replaced whole by write tmp + fsync + rename):
 *   A <arrival unix time>
 *   N <attempts> <next attempt unix time>
 *   S <recipient index> <d|f> <status> <diagnostic>
 *        d = delivered, f = failed for good (bounced); others pending.
 *        status is an enhanced code ("5.1.1"), diagnostic one line. */
#ifndef POSTIE_QUEUE_H
#define POSTIE_QUEUE_H

#include <stddef.h>

#include "store/spool.h"

#if CONFIG_RELAY
/* Creates queue/ and maildrop/ under spool_dir (maildrop mode 1733).
 * 0, or -1 with errno. */
int queue_open(const char *spool_dir);
/* The queue directory ("" before queue_open). */
const char *queue_dir(void);
/* Moves a complete tmp file into the queue (fsync file, rename, fsync
 * directory) and closes it, then tells the hook (the relay runner) the
 * new file's name. 0, or -1 with errno (the caller answers 4xx). */
int queue_commit(struct spool_file *f);
/* The hook told of each committed file (one; NULL for none). */
void queue_on_commit(void (*fn)(const char *name));
#else
static inline int queue_commit(struct spool_file *f) { (void)f; return -1; }
#endif

#endif
