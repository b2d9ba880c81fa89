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
#include <time.h>

#include "store/spool.h"

#if CONFIG_RELAY
/* Creates queue/ and maildrop/, loads what is waiting, starts the runner
 * and the maildrop watch. */
int queue_init(const char *spool_dir);
/* Moves a complete tmp file into the queue (fsync file, rename, fsync
 * directory) and closes it. 0, or -1 with errno (the caller answers 4xx). */
int queue_commit(struct spool_file *f);
/* Every waiting message is due now (SIGUSR1, sendmail -q). */
void queue_run_now(void);
int queue_size(void);
/* For `postie status`: the arrival time of the oldest message in the
 * table (0 when empty), and the last deferral's reason ("" when none
 * since start) with its time. */
time_t queue_oldest(void);
const char *queue_last_error(time_t *when);
#else
static inline int queue_init(const char *d) { (void)d; return 0; }
static inline int queue_commit(struct spool_file *f) { (void)f; return -1; }
static inline void queue_run_now(void) { }
static inline int queue_size(void) { return 0; }
static inline time_t queue_oldest(void) { return 0; }
static inline const char *queue_last_error(time_t *w) { *w = 0; return ""; }
#endif

#endif
