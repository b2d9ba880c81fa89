/* bounce — RFC 3464 delivery status notifications. Pure text building:
 * the caller gives the failed message (a spool file) and the per-recipient
 * results, and gets a new spool-format message (null sender, to the
 * original sender) written to an open file. Never called for a message
 * whose sender is empty (a bounce is never bounced). */
#ifndef POSTIE_BOUNCE_H
#define POSTIE_BOUNCE_H

#include <stddef.h>
#include <time.h>

#define BOUNCE_HEADERS_MAX (16 * 1024)  /* original headers quoted at most */

struct bounce_rcpt {
	const char *rcpt;               /* as in the R line */
	const char *status;             /* "5.1.1", or "4.4.7" for expiry */
	const char *diag;               /* the server's reply ("550 5.1.1
					 * ...") or a local reason in that
					 * shape (Diagnostic-Code: smtp) */
	const char *remote;             /* host that replied (Remote-MTA:
					 * dns), or NULL */
	int delayed;                    /* 1: a delay warning, not a failure */
};

struct bounce_msg {
	const char *hostname;           /* reporting MTA */
	const char *sender;             /* original envelope sender (not "") */
	const char *orig_id;            /* queue id of the original */
	time_t arrival;
	const struct bounce_rcpt *r;
	int n;
	int src_fd;                     /* original spool file */
	long long data_off, data_len;   /* its message bytes */
};

/* Writes "F \n", "R <sender>\n", "D\n" and the DSN message to out_fd.
 * 0, or -1 on a write/read error. */
int bounce_write(int out_fd, const struct bounce_msg *m);

#endif
