/* notice — a short local message to postmaster about trouble that only a
 * person can mend (the smarthost refused our login, its certificate
 * failed the check), at most once per kind of trouble and day. */
#ifndef POSTIE_NOTICE_H
#define POSTIE_NOTICE_H

#if CONFIG_RELAY
/* kind: a short word naming the trouble ("smarthost-auth"); subject and
 * text: one line each (text is the reason, as logged). Appended straight
 * to the mailboxes of the local users postmaster names (itself, or its
 * aliases); never queued. 1 sent, 0 already sent today or nobody local
 * to send it to (logged), -1 failed (logged). */
int notice_postmaster(const char *kind, const char *subject, const char *text);
#else
static inline int notice_postmaster(const char *k, const char *s, const char *t)
{ (void)k; (void)s; (void)t; return 0; }
#endif

#endif
