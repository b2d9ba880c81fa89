/* libFuzzer: the whole POP3 server state machine. Each input is what a
 * client sends on one connection (in memory, see memsock.h), driven
 * through the real loop, connection slot, index and mbox rewrite in a
 * scratch directory.
 * User alice has password "pw"; her mailbox is reset for every input
 * that can log in. */
#include "proto/pop3.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size > 16384)
		return 0;
	ms_clock_on = 1;
	if (!fz_dir[0])
		fz_setup("pop3", "pop3 127.0.0.1:1");
	/* Only a logged-in session reaches the mailbox (PASS, APOP, AUTH):
	 * it is reset for such an input only. */
	if (fz_has_word(data, size, "pass") || fz_has_word(data, size, "apop") ||
	    fz_has_word(data, size, "auth"))
		fz_put("mail/alice", "From a Sat Jan  1 00:00:00 2000\nSubject: one\n\n"
		       ">From x\n.dot\n\nFrom b Sat Jan  1 00:00:00 2000\nSubject: two\n\n"
		       "body\n\n");
	fz_session(LISTEN_POP3, &pop3_ops, "", data, size);
	ms_clock_on = 0;
	return 0;
}
