/* sendmail — the `sendmail` / `mailq` command (postie sendmail, or the
 * binary started under those names). Drops a message into
 * spool_dir/maildrop for the daemon to pick up; lists the queue; asks the
 * daemon to run the queue. Needs no credentials: it reads only the main
 * configuration file. Exit codes are those of sysexits.h. */
#ifndef POSTIE_SENDMAIL_H
#define POSTIE_SENDMAIL_H

#include <stdio.h>

#if CONFIG_SENDMAIL
/* argv[0] is the command name ("sendmail", "mailq"); options follow.
 * mailq_mode: list the queue whatever the options say. */
int sendmail_main(int argc, char **argv, int mailq_mode);
#else
static inline int sendmail_main(int argc, char **argv, int mailq_mode)
{
	(void)argc;
	(void)argv;
	(void)mailq_mode;
	dprintf(2, "postie: sendmail/mailq are not in this build "
		"(needs CONFIG_SENDMAIL)\n");
	return 69;      /* EX_UNAVAILABLE */
}
#endif

#endif
