/* libFuzzer: the whole POP3 server state machine. Each input is what a
 * client sends on one connection (socketpair), driven through the real
 * loop, connection slot, index and mbox rewrite in a scratch directory.
 * User alice has password "pw"; her mailbox is reset for every input. */
#include "fuzz_session.h"
#include "proto/pop3.h"
#include "store/passwd.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static uint32_t peer_no;

static void setup(void)
{
	char text[1024], hash[160];

	fz_mkdir("pop3");
	if (passwd_make("pw", 2, hash, sizeof(hash)) != 0)
		abort();
	snprintf(text, sizeof(text), "alice:%s\nbob:%s\n", hash, hash);
	fz_put("users", text);
	snprintf(text, sizeof(text),
		 "hostname fuzz.test\nlisten pop3 127.0.0.1:1\nusers %s/users\n"
		 "mail_dir %s/mail\nspool_dir %s/spool\nlocal_domains test.lan\n"
		 "plaintext_auth_networks 10.0.0.0/8\n", fz_dir, fz_dir, fz_dir);
	passwd_cache_init();
	fz_start(text);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (!fz_dir[0])
		setup();
	if (size > 16384)
		return 0;
	fz_put("mail/alice", "From a Sat Jan  1 00:00:00 2000\nSubject: one\n\n"
	       ">From x\n.dot\n\nFrom b Sat Jan  1 00:00:00 2000\nSubject: two\n\n"
	       "body\n\n");
	/* A new address each time: failed logins do not pile up into a ban. */
	fz_session(data, size, LISTEN_POP3, &pop3_ops,
		   0x0a000000 | (++peer_no & 0xffffff));
	return 0;
}
