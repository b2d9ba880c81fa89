/* libFuzzer: the queue state reader (store/qstate). Any bytes read as a
 * state file give a state that is within its limits, and writing that
 * state and reading it back gives the same state (what the daemon
 * writes, mailq and the daemon read alike). */
#include <sys/mman.h>

#include "session.h"
#include "core/util.h"
#include "store/qstate.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct qstate a, b;

static void check_limits(const struct qstate *s)
{
	if (s->n < 0 || s->n > QSTATE_TARGETS_MAX || s->attempts < 0 ||
	    s->local_fails < 0)
		abort();
	for (int i = 0; i < s->n; i++) {
		const struct qstate_target *t = &s->t[i];
		if (!t->addr[0] || strchr(t->addr, '\t') || strchr(t->text, '\n') ||
		    strchr(t->host, '\t') || t->code < 0 || t->code > 599 ||
		    t->rcpt < 0 || t->rcpt > QSTATE_TARGETS_MAX || t->tries < 0)
			abort();
		for (int j = 0; j < i; j++)
			if (strcmp(s->t[j].addr, t->addr) == 0)
				abort();
	}
}

/* data[0..n) in a memory file at offset 0, or -1. */
static int mem_fd(const void *data, size_t n)
{
	int fd = memfd_create("fuzz_qstate", MFD_CLOEXEC);

	if (fd >= 0 && (write_all_fd(fd, data, n) != 0 || lseek(fd, 0, SEEK_SET) != 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct fdio_in r;
	struct fdio_out w;
	int fd;

	if (size > 65536 || size == 0)
		return 0;
	fd = mem_fd(data, size);
	if (fd < 0)
		return 0;
	fdio_in_init(&r, fd);
	qstate_init(&a, 0);
	qstate_read(&r, &a);
	close(fd);
	check_limits(&a);
	fd = mem_fd("", 0);
	if (fd < 0)
		abort();
	fdio_out_init(&w, fd);
	if (qstate_write(&w, &a) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	fdio_in_init(&r, fd);
	qstate_init(&b, 0);
	qstate_read(&r, &b);
	close(fd);
	if (a.arrival != b.arrival || a.next != b.next || a.n != b.n ||
	    a.attempts != b.attempts || a.local_fails != b.local_fails ||
	    a.warned != b.warned)
		abort();
	for (int i = 0; i < a.n; i++) {
		const struct qstate_target *x = &a.t[i], *y = &b.t[i];
		if (strcmp(x->addr, y->addr) || x->rcpt != y->rcpt ||
		    x->state != y->state || x->local != y->local ||
		    x->tries != y->tries || x->code != y->code ||
		    strcmp(x->status, y->status) || x->when != y->when ||
		    strcmp(x->host, y->host) || strcmp(x->text, y->text))
			abort();
	}
	return 0;
}
