/* log — non-blocking logging to stderr or syslog (see log.h).
 * Limits: CONFIG_LOG_BUF bytes of backlog; a line is cut at 512 bytes. */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

#define LOG_LINE_MAX 512

static char ring[CONFIG_LOG_BUF];
static size_t ring_len;          /* bytes waiting, always whole lines */
static unsigned long dropped;
static int syslog_fd = -1;
static int stderr_nonblock;
static int max_level = LOGL_DEBUG;

void log_set_level(int level)
{
	max_level = level;
}

static void syslog_open(void)
{
	struct sockaddr_un sun;

	syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (syslog_fd < 0)
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/dev/log");
	if (connect(syslog_fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(syslog_fd);
		syslog_fd = -1;
	}
}

void log_init(int use_syslog)
{
	if (CONFIG_SYSLOG && use_syslog && syslog_fd < 0)
		syslog_open();
	if (!stderr_nonblock) {
		int fl = fcntl(2, F_GETFL);
		/* A terminal or pipe shared with the parent: non-blocking is what
		 * keeps a stuck reader from stopping the loop. */
		if (fl >= 0 && fcntl(2, F_SETFL, fl | O_NONBLOCK) == 0)
			stderr_nonblock = 1;
	}
}

void log_flush(void)
{
	ssize_t n;

	while (ring_len > 0) {
		n = write(2, ring, ring_len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN)
				ring_len = 0;   /* stderr is gone: drop */
			return;
		}
		memmove(ring, ring + n, ring_len - (size_t)n);
		ring_len -= (size_t)n;
	}
}

int log_pending_fd(void)
{
	return ring_len > 0 ? 2 : -1;
}

static void emit_stderr(const char *line, size_t len)
{
	struct buf b;

	buf_init_len(&b, ring, sizeof(ring), ring_len);
	if (dropped && buf_fits(&b, 64, 0) &&
	    buf_printf(&b, "postie: %lu log lines dropped\n", dropped) == 0)
		dropped = 0;
	if (buf_add(&b, line, len) != 0)
		dropped++;
	ring_len = b.len;
	if (!b.full)
		log_flush();
}

void log_msg(int level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX + 64];
	struct buf b;
	char *msg;
	int n;
	va_list ap;

	if (level > max_level || (level == LOGL_DEBUG && !CONFIG_DEBUG_PROTOCOL))
		return;
	buf_init(&b, line, sizeof(line));
	if (syslog_fd >= 0)
		buf_printf(&b, "<%d>postie[%d]: ", 2 * 8 + level,
			   (int)getpid());      /* facility mail (2), RFC 5424 */
	else
		buf_adds(&b, "postie: ");
	/* The message, cut to LOG_LINE_MAX - 1 bytes, and room for the LF. */
	msg = buf_reserve(&b, LOG_LINE_MAX);
	if (!msg)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, LOG_LINE_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_commit(&b, n >= LOG_LINE_MAX ? LOG_LINE_MAX - 1 : (size_t)n);
	if (syslog_fd >= 0) {
		if (send(syslog_fd, line, b.len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			dropped++;
		return;
	}
	buf_addc(&b, '\n');
	emit_stderr(line, b.len);
}
