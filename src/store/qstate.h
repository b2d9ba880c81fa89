/* qstate — the delivery state of one queued message, the file
 * spool_dir/queue/ID.st. This module is the only reader and writer of
 * that format: the daemon's runner, `mailq` and the tests' tools all go
 * through it.
 *
 * Format (text, one item per line, replaced whole: write ID.st.new,
 * fsync, rename; unknown lines are skipped, so newer writers may add
 * lines):
 *   V 1                          format version
 *   A <unix time>                arrival
 *   N <attempts> <next> <local>  delivery attempts so far, next try
 *                                (unix time, 0: at once), runs that ended
 *                                on a local problem since the last attempt
 *   W                            the delay warning went out
 *   T <TAB-separated fields>     one per target (a recipient after alias
 *                                expansion, "local:USER" for a mailbox):
 *       state   p pending, d delivered, f failed (DSN not sent yet),
 *               b failed and reported (DSN sent, or the sender was <>)
 *       rcpt    index of the R line of the queue file it came from
 *       tries   delivery attempts that reached the destination
 *       code    last SMTP reply code (or one made for a local reason),
 *               0 when nothing happened yet
 *       status  enhanced status code of that outcome ("4.4.1", or "-")
 *       when    unix time of that outcome (0: none)
 *       local   1: that outcome was a problem on this side (no resolver,
 *               no route, DNS server not answering): not an attempt
 *       addr, host (who answered, may be empty), text (the reason in
 *               words, without code and status)
 * Text fields never hold a TAB, CR, LF or other control character (they
 * are replaced by blanks on the way in and on the way out). */
#ifndef POSTIE_QSTATE_H
#define POSTIE_QSTATE_H

#include <time.h>

#include "core/fdio.h"

#define QSTATE_TARGETS_MAX CONFIG_SMTP_MAX_RCPT
#define QSTATE_ADDR (CONFIG_SMTP_PATH_MAX + 1)
#define QSTATE_HOST 96          /* remote host name, cut */
#define QSTATE_TEXT 160         /* reason in words, cut */
#define QSTATE_LINE (QSTATE_ADDR + QSTATE_HOST + QSTATE_TEXT + 96)
#define QSTATE_MAX_TRIES 1000000

enum {
	QS_PENDING = 'p',
	QS_DONE = 'd',
	QS_FAILED = 'f',        /* failed for good; its DSN is still due */
	QS_BOUNCED = 'b',       /* failed for good and reported */
};

struct qstate_target {
	char addr[QSTATE_ADDR];
	short rcpt;
	char state;
	char local;
	int tries;
	int code;
	char status[8];
	time_t when;
	char host[QSTATE_HOST];
	char text[QSTATE_TEXT];
};

struct qstate {
	time_t arrival;
	time_t next;
	int attempts;
	int local_fails;
	int warned;
	int n;
	struct qstate_target t[QSTATE_TARGETS_MAX];
};

/* Empty state (no targets, nothing tried) for a message that arrived at
 * arrival. */
void qstate_init(struct qstate *s, time_t arrival);
/* The target for addr, added (pending, from R line rcpt) when missing.
 * NULL when the table is full. */
struct qstate_target *qstate_target(struct qstate *s, const char *addr, int rcpt);
/* Records an outcome: code 2xx delivered, 5xx failed, else pending with
 * this reason. status may be NULL or "" (then "-"), host and text may be
 * NULL. A non-local outcome of a pending target counts as one try. */
void qstate_set(struct qstate_target *t, int code, const char *status,
		const char *host, const char *text, int local, time_t when);

/* One line of the file (without its LF). 0, or -1 for a line that is not
 * understood (skipped by qstate_read). Hostile input: any bytes. */
int qstate_parse_line(struct qstate *s, const char *line, size_t len);
/* Reads a whole file. 0, or -1 on a read error (errno; what was read
 * stays). */
int qstate_read(struct fdio_in *f, struct qstate *s);
/* Writes the whole state and flushes f. 0, or -1 on a write error. */
int qstate_write(struct fdio_out *f, const struct qstate *s);

/* dir/name.st: 0 loaded, 1 no such file (s initialised with arrival 0),
 * -1 unreadable (errno). The file is opened with O_NOFOLLOW. */
int qstate_load(int dirfd, const char *name, struct qstate *s);
/* Replaces dir/name.st (dir/name.st.new, fsync, rename). 0 or -1 (errno). */
int qstate_save(const char *dir, const char *name, const struct qstate *s);

/* A text field (reason, host) for a person's terminal, escaped once:
 * the stored text is kept as the server sent it (controls already
 * blanks), so printable ASCII, backslashes and quotes included, shows as
 * it is and only bytes above 0x7e become \xNN. dst holds n bytes; 4 *
 * strlen(text) + 1 is always enough. Returns dst. */
char *qstate_shown(char *dst, size_t n, const char *text);

/* Words for a state letter: "waiting", "deferred", "delivered", ... */
const char *qstate_word(const struct qstate_target *t);

#endif
