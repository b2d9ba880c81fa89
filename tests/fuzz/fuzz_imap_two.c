/* libFuzzer: two IMAP sessions on one mailbox. Both log in as alice and
 * select INBOX; session B then idles (when the first input byte is odd)
 * or waits. The rest of the input is split at LFs: a line starting with
 * 0x01 goes to B (without it), every other line to A, one line a loop
 * pass, so one session's EXPUNGE, MOVE, STORE, APPEND and COPY run while
 * the other is selected or idling, and each then sees the other's news.
 * Bits 1-6 of the first byte split A's lines into writes of that many
 * bytes (0: whole). Found by the sanitizers: memory errors, undefined
 * behaviour, and (a final session SELECTs and FETCHes what the two left)
 * an index or mbox the next reader trips over. Scratch files in a tmpfs
 * (see session.h). */
#include "proto/imap.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Client bytes for the session on fd (gone: they are dropped). */
static void put(int fd, const void *p, size_t n)
{
	if (fd >= 0 && n)
		ms_put(fd, p, n);
}

/* passes loop passes at most, fewer once nothing is left to happen;
 * the clock jumps over deadlines up to max_jump ms away (see fz_pass):
 * short ones (lock retries, login delays) while the input is fed, so
 * B's IDLE is not timed out under A's commands, any at the end. */
static void pump(int a, int b, int passes, int64_t max_jump)
{
	int idle = 0;

	for (int i = 0; i < passes && conn_count() > 0 && idle < 2; i++) {
		ms_drain(a, SIZE_MAX);
		ms_drain(b, SIZE_MAX);
		idle = fz_pass(max_jump) < 0 ? idle + 1 : 0;
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char login[] = "p LOGIN alice pw\r\nq SELECT INBOX\r\n";
	static const unsigned char last[] = "p LOGIN alice pw\r\nq SELECT INBOX\r\n"
		"r FETCH 1:* (FLAGS ENVELOPE BODY.PEEK[])\r\ns LOGOUT\r\n";
	int a = -1, b = -1, idle;
	size_t chunk, off = 1;

	if (size < 1 || size > 8192)
		return 0;
	ms_clock_on = 1;
	if (!fz_dir[0]) {
		fz_setup("imap2", "imap 127.0.0.1:1");
		/* alice's special folders, made once (see fz_snap_take). */
		fz_session(LISTEN_IMAP, &imap_ops, "a LOGIN alice pw\r\nb LOGOUT\r\n",
			   NULL, 0);
		fz_snap_take("mail/.postie");
	}
	fz_snap_restore();
	fz_put("mail/alice",
	       "From a Sat Jan  1 00:00:00 2000\nSubject: one\n\nbody one\n\n"
	       "From b Sat Jan  1 00:00:00 2000\nSubject: two\n\nbody two\n\n"
	       "From c Sat Jan  1 00:00:00 2000\nSubject: three\n\nbody three\n\n");
	idle = data[0] & 1;
	chunk = (data[0] >> 1) & 63;
	a = fz_connect(LISTEN_IMAP, &imap_ops);
	b = fz_connect(LISTEN_IMAP, &imap_ops);
	if (a < 0 || b < 0)
		goto out;
	put(a, login, sizeof(login) - 1);
	put(b, login, sizeof(login) - 1);
	if (idle)
		put(b, "i IDLE\r\n", 8);
	pump(a, b, 50, 5000);
	while (off < size) {
		const unsigned char *nl = memchr(data + off, '\n', size - off);
		size_t end = nl ? (size_t)(nl - data) + 1 : size;
		int to_b = data[off] == 1;
		const unsigned char *p = data + off + to_b;
		size_t n = end - off - (size_t)to_b;

		for (size_t k = 0; k < n;) {
			size_t w = chunk && chunk < n - k ? chunk : n - k;
			put(to_b ? b : a, p + k, w);
			k += w;
			pump(a, b, 2, 5000);
		}
		pump(a, b, 4, 5000);
		off = end;
	}
	if (idle)
		put(b, "DONE\r\n", 6);
	put(a, "z NOOP\r\nzz LOGOUT\r\n", 19);
	put(b, "z NOOP\r\nzz LOGOUT\r\n", 19);
	pump(a, b, 200, -1);
out:
	conn_close_all("fuzz done");
	/* What they left must still be a mailbox a new session can read. */
	fz_session(LISTEN_IMAP, &imap_ops, "", last, sizeof(last) - 1);
	ms_clock_on = 0;
	return 0;
}
