/* status — `postie status`: the daemon answers on a local socket,
 * spool_dir/postie.ctl, made before the privilege drop with mode 0600, so
 * only the user that started the daemon (root on a router) may ask. A
 * connection gets one report (at most STATUS_MAX bytes, one non-blocking
 * write: a reader that does not take it gets it cut) and is closed; it
 * reads nothing from the client, so there is nothing to parse. */
#include "status.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "proto/auth.h"
#include "relay/runner.h"
#include "tls/tls.h"

#define STATUS_MAX 4096

static struct watcher ctl = { .fd = -1 };
static char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static time_t started;
static const char *version;

static void put_age(struct buf *b, long s)
{
	if (s >= 86400)
		buf_printf(b, "%ldd %ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		buf_printf(b, "%ldh %02ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		buf_printf(b, "%ldm %02lds", s / 60, s % 60);
	else
		buf_printf(b, "%lds", s);
}

static void put_ban(void *ctx, const char *addr, long left)
{
	struct buf *b = ctx;

	buf_printf(b, "  %s (", addr);
	put_age(b, left);
	buf_adds(b, " left)\n");
}

static void report(struct buf *b)
{
	time_t now = time(NULL), oldest = relay_oldest(), when;
	const char *err = relay_last_error(&when);
	int seen[LISTEN_KIND_COUNT] = { 0 };
	struct tm tm;
	char date[40];

	buf_printf(b, "postie %s, pid %d, up ", version, (int)getpid());
	put_age(b, (long)(now - started));
	buf_printf(b, "\nsessions: %d of %d slots in use\n", conn_count(),
		   conn_count() + conn_slots_free());
	for (int i = 0; i < conf->nlisten; i++) {
		int k = conf->listen[i].kind;

		if (seen[k]++)
			continue;
		buf_printf(b, "  %-11s %d\n", conf_service_name(k), conn_count_kind(k));
	}
	if (CONFIG_RELAY)
		buf_printf(b, "  %-11s %d\n", "relay out", conn_count_kind(-1));
	buf_printf(b, "loop: longest pass %ld.%03ld ms, most fsyncs in one pass %lu\n",
		   loop_longest_stall_us() / 1000, loop_longest_stall_us() % 1000,
		   loop_most_syncs());
	if (CONFIG_TLS)
		buf_printf(b, "tls: %d of %d sessions in use\n", tls_in_use(),
			   conf->max_tls_sessions);
	if (CONFIG_CONN_STREAM_BUFS && (CONFIG_POP3 || CONFIG_IMAP))  /* lent to them */
		buf_printf(b, "stream buffers: %d of %d lent\n", conn_stream_in_use(),
			   CONFIG_CONN_STREAM_BUFS);
	if (CONFIG_RELAY) {
		buf_printf(b, "queue: %d message(s)", relay_size());
		if (oldest) {
			gmtime_r(&oldest, &tm);
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
			buf_adds(b, ", oldest ");
			put_age(b, (long)(now - oldest));
			buf_printf(b, " (since %s)", date);
		}
		buf_adds(b, "\nlast relay error: ");
		if (err[0]) {
			put_age(b, (long)(now - when));
			buf_printf(b, " ago: %s\n", err);
		} else {
			buf_adds(b, "none since start\n");
		}
	}
	if (CONFIG_AUTH) {
		struct buf list;
		char mem[2048];

		buf_init(&list, mem, sizeof(mem));
		buf_printf(b, "bans: %d active\n", auth_bans(put_ban, &list));
		buf_add(b, list.p, list.len);
		if (list.full)
			buf_adds(b, "  ... (more)\n");
	}
	if (b->full)
		buf_adds(b, "...\n");
}

static void on_ctl(struct watcher *w, short revents)
{
	char mem[STATUS_MAX];
	struct buf b;

	(void)revents;
	/* A few per pass: nobody can make the loop write reports forever. */
	for (int i = 0; i < 4; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		ssize_t n;

		if (fd < 0)
			return;
		buf_init(&b, mem, sizeof(mem));
		report(&b);
		n = send(fd, b.p, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		(void)n;        /* a reader that does not take it gets it cut */
		close(fd);
	}
}

static void never(struct watcher *w)
{
	(void)w;
}

int status_open(const char *spool_dir, const char *ver)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd;

	started = time(NULL);
	version = ver;
	if ((size_t)snprintf(ctl_path, sizeof(ctl_path), "%s/postie.ctl", spool_dir) >=
	    sizeof(ctl_path)) {
		log_msg(LOGL_WARN, "status: spool_dir path too long for a socket; "
			"`postie status` will not answer");
		ctl_path[0] = '\0';
		return -1;
	}
	str_copy(sun.sun_path, sizeof(sun.sun_path), ctl_path, strlen(ctl_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	unlink(ctl_path);       /* one left by a daemon that was killed */
	old = umask(0177);      /* 0600 from the start: never open to others */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, 8) != 0) {
		umask(old);
		log_msg(LOGL_WARN, "status: %s: %s", ctl_path, strerror(errno));
		close(fd);
		ctl_path[0] = '\0';
		return -1;
	}
	umask(old);
	ctl.fd = fd;
	ctl.events = POLLIN;
	ctl.deadline = 0;
	ctl.on_io = on_ctl;
	ctl.on_timeout = never;
	if (loop_add(&ctl) != 0) {
		log_msg(LOGL_WARN, "status: no room in the loop; `postie status` "
			"will not answer");
		close(fd);
		unlink(ctl_path);
		ctl_path[0] = '\0';
		return -1;
	}
	return 0;
}

void status_close(void)
{
	if (ctl_path[0])
		unlink(ctl_path);
}
