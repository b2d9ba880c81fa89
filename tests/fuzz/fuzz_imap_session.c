/* libFuzzer: the whole IMAP server state machine. Each input is what a
 * client sends on one connection (socketpair), driven through the real
 * loop, connection slot, index, folders and mbox rewrites in a scratch
 * directory. User alice has password "pw"; her INBOX (three messages, one
 * multipart) is reset and her index and folders removed for every input. */
#include "fuzz_session.h"
#include "proto/imap.h"
#include "store/passwd.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static uint32_t peer_no;

static void setup(void)
{
	char text[1024], hash[160];

	fz_mkdir("imap");
	if (passwd_make("pw", 2, hash, sizeof(hash)) != 0)
		abort();
	snprintf(text, sizeof(text), "alice:%s\nbob:%s\n", hash, hash);
	fz_put("users", text);
	snprintf(text, sizeof(text),
		 "hostname fuzz.test\nlisten imap 127.0.0.1:1\nusers %s/users\n"
		 "mail_dir %s/mail\nspool_dir %s/spool\nlocal_domains test.lan\n"
		 "max_message_size 64K\nplaintext_auth_networks 10.0.0.0/8\n",
		 fz_dir, fz_dir, fz_dir);
	passwd_cache_init();
	fz_start(text);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (!fz_dir[0])
		setup();
	if (size > 16384)
		return 0;
	fz_rm_tree("mail/.postie");
	fz_put("mail/alice",
	       "From a Sat Jan  1 00:00:00 2000\nFrom: A <a@test.lan>\n"
	       "To: alice@test.lan\nSubject: one\nDate: Sat, 1 Jan 2000 00:00:00 +0000\n"
	       "Message-ID: <1@test.lan>\n\n>From x\nhello world\n\n"
	       "From b Sat Jan  1 00:00:01 2000\nSubject: =?utf-8?q?two?=\n"
	       "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
	       "pre\n--b\nContent-Type: text/plain; charset=us-ascii\n\npart one\n"
	       "--b\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n"
	       "--b--\nepilogue\n\n"
	       "From c Sat Jan  1 00:00:02 2000\nSubject: three\n\nbody\n\n");
	/* A new address each time: failed logins do not pile up into a ban. */
	fz_session(data, size, LISTEN_IMAP, &imap_ops,
		   0x0a000000 | (++peer_no & 0xffffff));
	return 0;
}
