/* memsock — in-memory client connections and a virtual clock for the
 * fuzz targets (see memsock.h). Linked into every fuzz target with
 * -Wl,--wrap=recv,--wrap=send,--wrap=ppoll,--wrap=close,
 * --wrap=clock_gettime: a call on anything but a memsock descriptor (or
 * the monotonic clock while ms_clock_on is off) goes to the real one.
 * Limits: MS_MAX connections at once, MS_QUEUE client bytes queued each;
 * the server's bytes are counted, not kept. */
#include "memsock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS_MAX 8
#define MS_QUEUE 65536

ssize_t __real_recv(int fd, void *buf, size_t n, int flags);
ssize_t __real_send(int fd, const void *buf, size_t n, int flags);
int __real_ppoll(struct pollfd *p, nfds_t n, const struct timespec *ts,
		 const sigset_t *mask);
int __real_close(int fd);
int __real_clock_gettime(clockid_t id, struct timespec *ts);
ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags);
int __wrap_ppoll(struct pollfd *p, nfds_t n, const struct timespec *ts,
		 const sigset_t *mask);
int __wrap_close(int fd);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);

int64_t ms_now_ms = 1000000000;
int ms_clock_on;

static struct memsock {
	int fd;                 /* -1: free */
	int shut;               /* the client sent its end of input */
	int gone;               /* the client closed */
	size_t off, len;        /* queued client bytes: q[off..len) */
	size_t room;            /* what the server may still send */
	unsigned char q[MS_QUEUE];
} socks[MS_MAX];
static int nsocks;              /* entries in use, for a quick "none" */
static int devnull = -1;

static struct memsock *find(int fd)
{
	if (nsocks == 0 || fd < 0)
		return NULL;
	for (int i = 0; i < MS_MAX; i++)
		if (socks[i].fd == fd)
			return &socks[i];
	return NULL;
}

int ms_open(void)
{
	struct memsock *m = NULL;

	if (nsocks == 0)
		for (int i = 0; i < MS_MAX; i++)
			socks[i].fd = -1;
	for (int i = 0; i < MS_MAX && !m; i++)
		if (socks[i].fd < 0)
			m = &socks[i];
	if (!m)
		return -1;
	if (devnull < 0)
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	m->fd = devnull < 0 ? -1 : fcntl(devnull, F_DUPFD_CLOEXEC, 0);
	if (m->fd < 0)
		return -1;
	m->shut = m->gone = 0;
	m->off = m->len = 0;
	m->room = SIZE_MAX;
	nsocks++;
	return m->fd;
}

long ms_put(int fd, const void *data, size_t len)
{
	struct memsock *m = find(fd);

	if (!m)
		return -1;
	if (m->shut || m->gone)
		return 0;
	if (m->off > 0) {
		memmove(m->q, m->q + m->off, m->len - m->off);
		m->len -= m->off;
		m->off = 0;
	}
	if (len > sizeof(m->q) - m->len)
		len = sizeof(m->q) - m->len;
	memcpy(m->q + m->len, data, len);
	m->len += len;
	return (long)len;
}

void ms_shut(int fd)
{
	struct memsock *m = find(fd);

	if (m)
		m->shut = 1;
}

void ms_drain(int fd, size_t room)
{
	struct memsock *m = find(fd);

	if (m)
		m->room = room;
}

void ms_hangup(int fd)
{
	struct memsock *m = find(fd);

	if (m)
		m->gone = m->shut = 1;
}

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags)
{
	struct memsock *m = find(fd);
	size_t have;

	if (!m)
		return __real_recv(fd, buf, n, flags);
	have = m->len - m->off;
	if (have == 0) {
		if (m->shut)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	if (n > have)
		n = have;
	memcpy(buf, m->q + m->off, n);
	if (!(flags & MSG_PEEK))
		m->off += n;
	return (ssize_t)n;
}

ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags)
{
	struct memsock *m = find(fd);

	if (!m)
		return __real_send(fd, buf, n, flags);
	if (m->gone) {
		errno = EPIPE;
		return -1;
	}
	if (m->room == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (n > m->room)
		n = m->room;
	if (m->room != SIZE_MAX)
		m->room -= n;
	return (ssize_t)n;
}

/* What poll would say of m for events. */
static short ready(const struct memsock *m, short events)
{
	short r = 0;

	if ((events & POLLIN) && (m->len > m->off || m->shut))
		r |= POLLIN;
	if ((events & POLLOUT) && m->room > 0 && !m->gone)
		r |= POLLOUT;
	if (m->gone)
		r |= POLLHUP;
	return r;
}

int __wrap_ppoll(struct pollfd *p, nfds_t n, const struct timespec *ts,
		 const sigset_t *mask)
{
	static const struct timespec zero;
	short keep[64];
	int fds[64], got = 0, real = 0, rc;

	if (nsocks == 0 || n > 64)
		return __real_ppoll(p, n, ts, mask);
	for (nfds_t i = 0; i < n; i++) {
		struct memsock *m = find(p[i].fd);
		fds[i] = p[i].fd;
		keep[i] = 0;
		if (!m) {
			real += p[i].fd >= 0;
			continue;
		}
		keep[i] = ready(m, p[i].events);
		got += keep[i] != 0;
	}
	if (real == 0) {
		for (nfds_t i = 0; i < n; i++)
			p[i].revents = keep[i];
		return got;
	}
	/* Real descriptors too: poll those (the memsocks hidden), at once
	 * when a memsock is ready. */
	for (nfds_t i = 0; i < n; i++)
		if (find(fds[i]))
			p[i].fd = -1;
	rc = __real_ppoll(p, n, got ? &zero : ts, mask);
	for (nfds_t i = 0; i < n; i++) {
		if (p[i].fd != fds[i]) {
			p[i].fd = fds[i];
			p[i].revents = keep[i];
		}
	}
	return rc < 0 ? rc : rc + got;
}

int __wrap_close(int fd)
{
	struct memsock *m = find(fd);

	if (m) {
		m->fd = -1;
		nsocks--;
	}
	return __real_close(fd);
}

int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
	if (ms_clock_on && (id == CLOCK_MONOTONIC || id == CLOCK_PROCESS_CPUTIME_ID)) {
		ts->tv_sec = (time_t)(ms_now_ms / 1000);
		ts->tv_nsec = (long)(ms_now_ms % 1000) * 1000000;
		return 0;
	}
	return __real_clock_gettime(id, ts);
}
