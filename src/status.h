/* status — the daemon's side of `postie status` (see status.c): a
 * root-only local socket in spool_dir that answers with a report. */
#ifndef POSTIE_STATUS_H
#define POSTIE_STATUS_H

/* Makes spool_dir/postie.ctl (mode 0600) and watches it. Call before the
 * privilege drop. 0, or -1 (logged; the daemon runs on without it). */
int status_open(const char *spool_dir, const char *version);
/* Removes the socket at a clean stop. */
void status_close(void);

#endif
