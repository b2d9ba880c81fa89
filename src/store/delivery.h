/* delivery — local delivery: the one way a message reaches a local
 * user's mailbox. SMTP receive (proto/smtp_in), the queue runner
 * (relay/runner: mail from sendmail, from a busy mailbox's fallback, and
 * DSNs) and postmaster's notices (store/notice) all go through it, so a
 * message gets the same mbox framing whichever way it came: a
 * "From SENDER DATE" line (the envelope sender, MAILER-DAEMON for <>,
 * the message's arrival time), the message as it was spooled (its
 * Received: line was written when it arrived: by smtp_in for SMTP, by
 * sendmail for a local submission), mboxrd quoting, a blank line, fsync
 * of the file (and of the directory for a new mailbox), rollback to the
 * old size on any failure, and the new-mail hook after the unlock.
 *
 * In steps, so a big message never holds the loop: delivery_begin locks
 * the mailbox, delivery_step appends at most `budget` bytes a call,
 * delivery_end unlocks. The outcome in SMTP terms (what a client is
 * answered, what the queue records): delivery_reason. */
#ifndef POSTIE_DELIVERY_H
#define POSTIE_DELIVERY_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "store/aliases.h"
#include "store/mbox.h"

struct delivery {
	struct mbox_lock lock;
	struct mbox_append app;
	const char *sender;     /* the caller keeps it until delivery_end */
	time_t arrival;
	int src;
	off_t off, len;
	int locked;
	int complete;           /* the last step wrote and synced it all */
};

/* Locks mail_dir/USER for the message src[off..off+len) from sender
 * (NULL or "" for <>) that arrived at `arrival`. MBOX_OK (locked),
 * MBOX_BUSY (another program holds the mailbox), MBOX_ERR (errno). */
int delivery_begin(struct delivery *d, const char *user, const char *sender,
		   time_t arrival, int src, off_t off, off_t len);
/* Appends at most budget bytes: MBOX_AGAIN (call again), MBOX_OK
 * (written and fsynced), MBOX_ERR (truncated back; errno). */
int delivery_step(struct delivery *d, size_t budget);
/* Unlocks (a no-op when not locked); with delivered, tells the new-mail
 * hook (IMAP) after the unlock. Without, an append cut short between
 * steps is truncated back first (the message was never there). */
void delivery_end(struct delivery *d, int delivered);
/* The user of a begun delivery (from the mailbox's path). */
const char *delivery_user(const struct delivery *d);
/* All at once (small messages: notices): begin, steps, end. */
int delivery_run(const char *user, const char *sender, time_t arrival,
		 int src, off_t off, off_t len);

/* Recipient expansion, the one both SMTP receive and the queue use:
 * rcpt[0..len) in a domain that is not local goes to fn as it is (a
 * remote address); a local part is looked up in aliases (any case),
 * whose targets go to fn (users index, or a remote address), else in
 * the users table (fn with its index). Returns the number of targets
 * reported, 0 for a local part nobody has. */
int delivery_expand(const char *rcpt, size_t len, alias_fn fn, void *ctx);

/* An outcome (rc of delivery_begin or delivery_step, errno of it) in
 * SMTP terms: the reply code (250 delivered, 450 busy, 451 failed), its
 * enhanced status into status (8 bytes) and words into text. */
int delivery_reason(int rc, int err, char *status, char *text, size_t n);

#endif
