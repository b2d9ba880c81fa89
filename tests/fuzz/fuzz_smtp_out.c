/* libFuzzer: the outgoing SMTP session (smtp_out) against a hostile
 * server. The input is everything the server says; the fuzzer listens on
 * 127.0.0.1 (the smarthost, plain), accepts postie's connection, writes
 * the input as fast as postie reads, then closes. The session must end
 * by itself (done() exactly once), every recipient with a code in
 * 200..599 and a NUL-terminated diagnostic; 250 only when the server's
 * input holds a "250" at all. */
#include "session.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include "proto/smtp_out.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static int lfd = -1, done_calls;
static struct smtpout_job job;

static void on_done(struct smtpout_job *j)
{
	(void)j;
	done_calls++;
}

static void setup(void)
{
	char extra[64];
	int port;

	lfd = fz_loopback_socket(SOCK_STREAM, &port);
	snprintf(extra, sizeof(extra), "smarthost 127.0.0.1:%d plain\n", port);
	fz_setup_with("smtpout", "smtp 127.0.0.1:1", extra);
	smtpout_init();
	job.fd = memfd_create("msg", 0);
	static const char msg[] = "From: a@test.lan\nSubject: x\n\n.dot line\nbody \xc3\xa9\n";
	if (job.fd < 0 || write(job.fd, msg, sizeof(msg) - 1) != (ssize_t)sizeof(msg) - 1)
		abort();
	job.data_len = sizeof(msg) - 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char sink[4096];
	size_t off = 0;
	int sfd = -1, step;

	if (lfd < 0)
		setup();
	if (size > 16384)
		return 0;
	memset(job.rcpt, 0, sizeof(job.rcpt));
	job.domain[0] = '\0';
	strcpy(job.sender, "a@test.lan");
	job.n = 2;
	strcpy(job.rcpt[0], "x@remote.lan");
	strcpy(job.rcpt[1], "y@remote.lan");
	job.done = on_done;
	done_calls = 0;
	if (smtpout_start(&job) != 0)
		abort();        /* the pool is free again after every input */
	for (step = 0; step < 4000 && done_calls == 0; step++) {
		if (sfd < 0) {
			sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		} else {
			if (off < size) {
				ssize_t n = write(sfd, data + off, size - off);
				if (n > 0)
					off += (size_t)n;
			}
			while (read(sfd, sink, sizeof(sink)) > 0)
				;
			if (off == size || step > 2000) {
				close(sfd);     /* the server goes away */
				sfd = -2;
			}
		}
		loop_step(sfd == -2 ? 10 : 0);
	}
	if (sfd >= 0)
		close(sfd);
	if (done_calls != 1)
		abort();
	for (int i = 0; i < job.n; i++) {
		if (job.code[i] < 200 || job.code[i] > 599 ||
		    !memchr(job.diag[i], '\0', SMTPOUT_DIAG))
			abort();
		if (job.code[i] == 250 && !memmem(data, size, "250", 3))
			abort();
	}
	/* A connection kept for the next message goes too: every input
	 * starts from a free pool. */
	smtpout_drop_idle();
	/* let the closing connection go */
	for (int k = 0; k < 10; k++)
		loop_step(0);
	return 0;
}
