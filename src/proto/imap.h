/* imap — the IMAP4rev1 server state machine (RFC 3501 and extensions). */
#ifndef POSTIE_IMAP_H
#define POSTIE_IMAP_H

#include "core/conn.h"

extern const struct proto_ops imap_ops;

/* New mail in mail_dir/USER (INBOX): sessions that have it selected look
 * again, and IDLE ones tell their client now. main registers it as the
 * store's mbox_on_new_mail hook. Safe to call for any user. */
/* A mailbox lock was given back and `next` waits first for it: the
 * session that waits there retries now. main registers it as the
 * store's mbox_on_lock_free hook. */
struct mbox_lock;
#if CONFIG_IMAP
void imap_notify_mailbox(const char *user);
void imap_lock_free(const struct mbox_lock *next);
#else
static inline void imap_notify_mailbox(const char *user) { (void)user; }
static inline void imap_lock_free(const struct mbox_lock *next) { (void)next; }
#endif

#endif
