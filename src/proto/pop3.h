/* pop3 — the POP3 server state machine (RFC 1939, 2449, 2595, 5034). */
#ifndef POSTIE_POP3_H
#define POSTIE_POP3_H

#include "core/conn.h"

extern const struct proto_ops pop3_ops;

#endif
