/* notice — postmaster notices (see notice.h).
 *
 * Owns spool_dir/notice.KIND: the day (days since the epoch, UTC) of the
 * last notice of that kind, so that a restart does not send it again.
 * The notice goes into the mbox of every local user that "postmaster"
 * names (the user itself, or what its alias expands to); an alias to a
 * remote address is skipped, because the way out may be what is broken.
 * With no local user to take it, the notice exists only as the log line.
 * Limits: NOTICE_MAX_USERS mailboxes, a message of at most 2 KiB. */
#include "store/notice.h"

#include <errno.h>
#include <fcntl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/fdio.h"
#include "core/log.h"
#include "core/util.h"
#include "store/aliases.h"
#include "store/delivery.h"
#include "store/spool.h"
#include "store/users.h"

#define NOTICE_MAX_USERS 8

struct rcpts {
	int user[NOTICE_MAX_USERS];
	int n;
	int remote;             /* alias targets left out */
};

static void on_target(void *ctx, int user, const char *remote)
{
	struct rcpts *r = ctx;

	(void)remote;
	if (user < 0) {
		r->remote++;
		return;
	}
	for (int i = 0; i < r->n; i++)
		if (r->user[i] == user)
			return;
	if (r->n < NOTICE_MAX_USERS)
		r->user[r->n++] = user;
}

static void stamp_path(char *buf, size_t n, const char *kind)
{
	snprintf(buf, n, "%s/notice.%s", conf->spool_dir, kind);
}

/* 1 when a notice of this kind went out today already. */
static int sent_today(const char *kind, long day)
{
	char path[CONF_PATH_MAX + 64], buf[32];
	long last = -1;

	stamp_path(path, sizeof(path), kind);
	if (fdio_read_head(path, buf, sizeof(buf)) > 0)
		last = strtol(buf, NULL, 10);
	return last == day;
}

static void stamp(const char *kind, long day)
{
	char path[CONF_PATH_MAX + 64], tmp[CONF_PATH_MAX + 72];
	int fd, bad;

	stamp_path(path, sizeof(path), kind);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return;
	bad = dprintf(fd, "%ld\n", day) < 0;
	if (close(fd) != 0 || bad || rename(tmp, path) != 0)
		unlink(tmp);
}

static void write_message(struct spool_file *f, const char *kind,
			  const char *subject, const char *text, time_t now)
{
	char buf[2048], date[64];
	int n;

	rfc5322_date(date, sizeof(date), now);
	n = snprintf(buf, sizeof(buf),
		"From: Mail system <MAILER-DAEMON@%s>\n"
		"To: postmaster@%s\n"
		"Subject: postie: %.200s\n"
		"Date: %s\n"
		"Message-ID: <notice.%s.%lld@%s>\n"
		"Auto-Submitted: auto-generated\n"
		"MIME-Version: 1.0\n"
		"Content-Type: text/plain; charset=utf-8\n"
		"\n"
		"postie on %s: %.200s.\n\n"
		"    %.600s\n\n"
		"Mail for the smarthost stays in the queue and is tried again;\n"
		"`mailq` lists it with this reason. Until the configuration or the\n"
		"smarthost is fixed it will not leave. This notice comes at most once\n"
		"a day for this problem (spool_dir/notice.%s holds the day).\n",
		conf->hostname, conf->hostname, subject, date, kind,
		(long long)now, conf->hostname, conf->hostname, subject, text, kind);
	if (n < 0)
		return;
	spool_write(f, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

int notice_postmaster(const char *kind, const char *subject, const char *text)
{
	time_t now = time(NULL);
	long day = (long)((uint64_t)now / 86400);   /* no __divdi3 */
	struct rcpts r = { .n = 0 };
	struct spool_file f;
	int sent = 0;

	if (sent_today(kind, day))
		return 0;
	if (CONFIG_MAILBOXES &&
	    aliases_expand(aliases, users, "postmaster", 10, on_target, &r) == 0) {
		int u = users_find(users, "postmaster", 10);
		if (u >= 0)
			r.user[r.n++] = u;
	}
	if (!CONFIG_MAILBOXES || r.n == 0) {
		log_msg(LOGL_WARN, "notice: no local mailbox for postmaster%s: "
			"'%s' only in this log", !CONFIG_MAILBOXES ? " (this build "
			"has none)" : r.remote ? " (its aliases are "
			"remote, and may be what is broken)" : "", subject);
		stamp(kind, day);
		return 0;
	}
	if (spool_create(&f) != 0) {
		log_msg(LOGL_ERR, "notice: cannot write: %s", strerror(errno));
		return -1;
	}
	write_message(&f, kind, subject, text, now);
	for (int i = 0; i < r.n && !f.failed; i++) {
		const char *name = users->v[r.user[i]].name;
		int rc = delivery_run(name, "", now, f.fd, 0, f.size);

		if (rc == MBOX_OK) {
			sent++;
			log_msg(LOGL_INFO, "notice: '%s' delivered to %s", subject, name);
		} else {
			log_msg(LOGL_ERR, "notice: cannot deliver to %s: %s", name,
				rc == MBOX_BUSY ? "mailbox busy" : strerror(errno));
		}
	}
	spool_discard(&f);
	if (sent)
		stamp(kind, day);
	return sent ? 1 : -1;
}
