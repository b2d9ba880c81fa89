/* maildrop — who made a file in spool_dir/maildrop/, and what it may
 * say about that. `sendmail` (any local user) writes such files; the
 * daemon trusts none of it but the file's owner (the kernel's word):
 *
 *   U <uid>   must be the owner's uid;
 *   the first header field must be the Received: line sendmail writes
 *             for that uid and that file name:
 *               Received: (from LOGIN, uid N)
 *                       by HOST (postie sendmail) id NAME;
 *                       DATE
 *             so no user can put a line there that claims another
 *             origin (a forged one below it is the user's own text,
 *             like any header a client sends);
 *   F <addr>  for a user other than root and the daemon's own, with
 *             sender_login_check on: LOGIN@ a local domain (what
 *             sendmail makes) or the masquerade address, never <> or
 *             somebody else's address.
 * sendmail writes and checks with these functions, the daemon checks
 * with them again when it picks the file up. */
#ifndef POSTIE_MAILDROP_H
#define POSTIE_MAILDROP_H

#include <stddef.h>
#include <sys/types.h>

#define MAILDROP_LOGIN_MAX 40
#define MAILDROP_HEAD_MAX 1024  /* bytes of the message the check reads */

/* uid's login name as it goes into the Received line: only
 * [A-Za-z0-9._-], else "" (then the line says "(from uid N)"). */
void maildrop_login(uid_t uid, char *out, size_t n);
/* The Received field for uid, HOST, file NAME and DATE (with its LF).
 * Bytes written (0 if it does not fit). */
size_t maildrop_received(char *out, size_t n, uid_t uid, const char *host,
			 const char *name, const char *date);
/* head[0..len): the message's first bytes. 0 when its first field is
 * the Received field maildrop_received makes for uid and name (any host
 * and date, one line each), -1 otherwise. */
int maildrop_check_received(const char *head, size_t len, uid_t uid,
			    const char *name);
/* May uid send as sender ("" for <>)? privileged: root or the daemon's
 * user (any sender, like Postfix's sendmail -f). 1 yes, 0 no. */
struct conf;
int maildrop_sender_ok(const struct conf *c, const char *sender, uid_t uid,
		       int privileged);

#endif
