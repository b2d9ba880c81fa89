/* libFuzzer: the whole SMTP server state machine. Each input is what a
 * client sends on one connection (in memory, see memsock.h), driven
 * through the real loop, connection slot and mbox delivery into a
 * scratch directory. */
#include "session.h"
#include "proto/smtp_in.h"
#include "store/aliases.h"
#include "store/spool.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void setup(void)
{
	char err[512], text[1024];

	fz_mkdir("smtp");
	fz_put("users", "demo:\nbob:\n");
	fz_put("aliases", "postmaster: demo\nteam: demo, bob\n");
	snprintf(text, sizeof(text),
		 "hostname fuzz.test\nlisten smtp 127.0.0.1:1\nusers %s/users\n"
		 "%s%s/aliases\nmail_dir %s/mail\nspool_dir %s/spool\n"
		 "local_domains test.lan\nmax_message_size 64K\n", fz_dir,
		 CONFIG_ALIASES ? "aliases " : "# ", fz_dir, fz_dir, fz_dir);
	fz_start(text);
	if (CONFIG_ALIASES)
		aliases = aliases_load(conf->aliases, conf, users, err, sizeof(err));
	spool_init(conf->spool_dir);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size > 32768)
		return 0;
	ms_clock_on = 1;
	if (!fz_dir[0])
		setup();
	fz_session(LISTEN_SMTP, &smtpin_ops, "", data, size);
	fz_rm_tree("mail/demo");
	fz_rm_tree("mail/bob");
	ms_clock_on = 0;
	return 0;
}
