/* imap — the IMAP4rev1 server state machine (RFC 3501 and extensions). */
#ifndef POSTIE_IMAP_H
#define POSTIE_IMAP_H

#include "core/conn.h"

extern const struct proto_ops imap_ops;

/* New mail in mail_dir/USER (INBOX): sessions that have it selected look
 * again, and IDLE ones tell their client now. main registers it as the
 * store's mbox_on_new_mail hook. Safe to call for any user. */
#if CONFIG_IMAP
void imap_notify_mailbox(const char *user);
#else
static inline void imap_notify_mailbox(const char *user) { (void)user; }
#endif

#endif
