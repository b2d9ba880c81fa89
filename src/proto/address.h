/* address — RFC 5321 path parsing for MAIL FROM / RCPT TO. Pure: no I/O,
 * no allocation; results point into the caller's line. */
#ifndef POSTIE_ADDRESS_H
#define POSTIE_ADDRESS_H

#include <stddef.h>

enum {
	ADDR_NULL = 1 << 0,       /* <> */
	ADDR_QUOTED = 1 << 1,     /* quoted local part */
	ADDR_ROUTE = 1 << 2,      /* had a source route (@a,@b:), ignored */
	ADDR_LITERAL = 1 << 3,    /* domain is [1.2.3.4] or [IPv6:...] */
	ADDR_UTF8 = 1 << 4,       /* 8-bit (UTF-8) bytes present */
	ADDR_NODOMAIN = 1 << 5,   /* bare "postmaster" (RFC 5321 4.1.1.3) */
	ADDR_NOBRACKETS = 1 << 6, /* client forgot the <> */
	ADDR_ODD_LOCAL = 1 << 7,  /* % ! or @ in the local part: never relay */
};

enum {
	ADDR_OK = 0,
	ADDR_ESYNTAX = -1,
	ADDR_ELOCAL = -2,         /* local part too long */
	ADDR_EDOMAIN = -3,        /* domain too long or bad label */
	ADDR_EPATH = -4,          /* path too long */
	ADDR_E8BIT = -5,          /* 8-bit without SMTPUTF8, or bad UTF-8 */
};

struct addr {
	const char *local;      /* as written, quotes included */
	size_t local_len;
	const char *domain;     /* brackets included for literals */
	size_t domain_len;
	unsigned flags;
};

/* Parses the path at s (after "FROM:" / "TO:" and optional blanks).
 * Returns the number of bytes consumed (>= 0) or an ADDR_E* code. */
int addr_parse_path(const char *s, size_t len, struct addr *a, int utf8_ok);
/* Local part without quoting, lowercased ASCII, into out; -1 if it does
 * not fit. */
int addr_local_key(const struct addr *a, char *out, size_t n);
/* Well-formed UTF-8 (no overlongs, no surrogates). */
int utf8_valid(const char *s, size_t len);

#endif
