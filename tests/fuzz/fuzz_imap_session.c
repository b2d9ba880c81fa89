/* libFuzzer: the whole IMAP server state machine, search evaluator
 * included. Each input is what a client sends on one connection (an
 * in-memory socket, see memsock.h), driven through the real loop,
 * connection slot, index, folders and mbox rewrites in a scratch
 * directory. When the first byte is odd the session starts logged in
 * with INBOX selected (the rest of the input follows), so the
 * selected-state commands are reached at once. Bits 1-6 of the first
 * byte choose how the input is split into writes (one a loop pass: 1 to
 * 63 bytes, or all at once for 0), so literals, line ends and pipelined
 * commands fall at every boundary; with bit 7 set the client reads only
 * 61 bytes of answers a loop pass, so replies go out in partial sends
 * and wait for room.
 * alice's mailbox and folders are reset for every input that can log in
 * (in a tmpfs when there is one: see session.h). */
#include "proto/imap.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	int pre, login;

	if (size > 16384)
		return 0;
	ms_clock_on = 1;
	if (!fz_dir[0]) {
		fz_setup("imap", "imap 127.0.0.1:1");
		/* A first login makes alice's special folders: taken once,
		 * put back for every input (see fz_snap_take). */
		fz_session(LISTEN_IMAP, &imap_ops, "a LOGIN alice pw\r\nb LOGOUT\r\n",
			   NULL, 0);
		fz_snap_take("mail/.postie");
	}
	pre = size > 0 && (data[0] & 1);
	login = pre || fz_has_word(data, size, "login") ||
		fz_has_word(data, size, "authenticate");
	/* Nothing before a login reaches the store: it is reset only for
	 * an input that can log in (the others find it as it was left). */
	if (login) {
		fz_snap_restore();
		fz_put("mail/alice",
		       "From a Sat Jan  1 00:00:00 2000\nSubject: one\nFrom: A <a@x.y>\n"
		       "Date: Sat, 1 Jan 2000 00:00:00 +0000\n\n>From x\nbody text\n\n"
		       "From b Sat Jan  1 00:00:00 2000\nSubject: two\n"
		       "Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n"
		       "Content-Type: text/plain\n\npart one\n--b\n"
		       "Content-Type: message/rfc822\n\nSubject: inner\n\ninner body\n"
		       "--b--\n\n");
	}
	fz_chunk = size > 0 && (data[0] & 0x7e) ? (size_t)((data[0] >> 1) & 63) : SIZE_MAX;
	fz_room = size > 0 && (data[0] & 0x80) ? 61 : SIZE_MAX;
	fz_session(LISTEN_IMAP, &imap_ops,
		   pre ? "p LOGIN alice pw\r\nq SELECT INBOX\r\n" : "",
		   data + (size > 0), size - (size > 0));
	ms_clock_on = 0;
	return 0;
}
