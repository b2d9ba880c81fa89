/* imap — the IMAP4rev1 server state machine (RFC 3501 and extensions). */
#ifndef POSTIE_IMAP_H
#define POSTIE_IMAP_H

#include "core/conn.h"

extern const struct proto_ops imap_ops;

#endif
