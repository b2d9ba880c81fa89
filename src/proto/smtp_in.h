/* smtp_in — the SMTP server state machine (RFC 5321 + PIPELINING, SIZE,
 * 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8) with local mbox delivery. */
#ifndef POSTIE_SMTP_IN_H
#define POSTIE_SMTP_IN_H

#include "core/conn.h"

extern const struct proto_ops smtpin_ops;

#endif
