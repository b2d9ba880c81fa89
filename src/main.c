/* main — argv dispatch (daemon; help, passwd and user in cli.c; sendmail
 * and mailq with their feature), start-up, privilege drop, signals, and
 * the loop.
 * Start-up errors are fatal with a message naming file, line and cause;
 * after start nothing here exits but a clean stop. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "status.h"
#include "core/conf.h"
#include "core/conn.h"
#include "core/fdio.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "core/util.h"
#include "proto/auth.h"
#include "proto/imap.h"
#include "proto/pop3.h"
#include "proto/smtp_in.h"
#include "store/aliases.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/spool.h"
#include "dns/dns.h"
#include "proto/smtp_out.h"
#include "sendmail.h"
#include "store/passwd.h"
#include "relay/runner.h"
#include "store/users.h"
#include "tls/tls.h"

#define POSTIE_VERSION "0.1.0"
#define DEFAULT_CONF CLI_DEFAULT_CONF

struct listener {
	struct watcher w;
	int kind;
	const struct proto_ops *ops;
};

static struct listener listeners[CONFIG_MAX_LISTENERS];
static int nlisteners;
static volatile sig_atomic_t got_term, got_hup, got_usr1;
static const char *conf_path = DEFAULT_CONF;

static const struct proto_ops *const kind_ops[LISTEN_KIND_COUNT] = {
	[LISTEN_SMTP] = CONFIG_SMTP_SERVER ? &smtpin_ops : NULL,
	[LISTEN_SMTPS] = CONFIG_SMTP_SERVER ? &smtpin_ops : NULL,
	[LISTEN_SUBMISSION] = CONFIG_SMTP_SERVER ? &smtpin_ops : NULL,
	[LISTEN_POP3] = CONFIG_POP3 ? &pop3_ops : NULL,
	[LISTEN_POP3S] = CONFIG_POP3 ? &pop3_ops : NULL,
	[LISTEN_IMAP] = CONFIG_IMAP ? &imap_ops : NULL,
	[LISTEN_IMAPS] = CONFIG_IMAP ? &imap_ops : NULL,
};
static const unsigned char kind_tls[LISTEN_KIND_COUNT] = {
	[LISTEN_SMTPS] = 1,
	[LISTEN_POP3S] = 1,
	[LISTEN_IMAPS] = 1,
};

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

static void listeners_pause(int paused)
{
	for (int i = 0; i < nlisteners; i++)
		listeners[i].w.events = paused ? 0 : POLLIN;
}

static void on_slot_free(void)
{
	listeners_pause(0);
}

static void on_accept(struct watcher *w, short revents)
{
	struct listener *l = (struct listener *)w;

	(void)revents;
	/* Bounded: a burst is taken in a few passes, not all at once. */
	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		if (conn_slots_free() <= 0) {
			/* Someone waits: make room (a slot frees soon and
			 * resumes us), or look again when one could be made. */
			int64_t when = conn_make_room();

			if (conn_slots_free() > 0)
				continue;       /* one was closed at once */
			listeners_pause(1);
			if (when > 0)
				listeners[0].w.deadline = when;
			return;
		}
		fd = accept4(w->fd, (struct sockaddr *)&ss, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_msg(LOGL_WARN, "accept: %s; pausing listeners until "
					"a connection ends", strerror(errno));
				listeners_pause(1);
			}
			return;
		}
		conn_open(fd, &ss, len, l->kind, l->ops, kind_tls[l->kind]);
	}
}

static void never(struct watcher *w)
{
	(void)w;
}

static void on_listen_retry(struct watcher *w)
{
	(void)w;
	listeners_pause(0);
}

static struct watcher logw;

static void on_log_writable(struct watcher *w, short revents)
{
	(void)w;
	(void)revents;
	log_flush();
}

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fatal(const char *fmt, ...)
{
	va_list ap;

	fdio_out(2, "postie: ");
	va_start(ap, fmt);
	vdprintf(2, fmt, ap);
	va_end(ap);
	fdio_out(2, "\n");
	exit(1);
}

/* An error about a file named by a directive: "CONF:LINE: " in front. */
static void where(const char *path, int line, char *err, size_t errlen)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s:%d: %s", path, line, err);
	snprintf(err, errlen, "%s", tmp);
}

/* The line of the directive that names the file an error is about (each
 * loader's message starts with the file's path). */
static int error_line(const struct conf *c, const char *err)
{
	const struct { const char *file; int line; } named[] = {
		{ c->tls_key, c->tls_key_line }, { c->tls_cert, c->tls_line },
		{ c->smarthost_secret, c->secret_line }, { c->ca_file, c->ca_file_line },
	};

	for (size_t i = 0; i < ARRAY_LEN(named); i++) {
		size_t l = strlen(named[i].file);
		if (l && strncmp(err, named[i].file, l) == 0 && err[l] == ':')
			return named[i].line;
	}
	return c->tls_line ? c->tls_line : c->smarthost_line;
}

/* The smarthost password (only the daemon reads it) and the CA bundle
 * that checks the smarthost's certificate. */
static int load_relay(const struct conf *c, char *err, size_t errlen)
{
	char *text;
	size_t len;

	if (!CONFIG_RELAY || !c->smarthost[0])
		return 0;
	if (c->smarthost_secret[0]) {
		text = file_slurp(c->smarthost_secret, 4096, &len, err, errlen);
		if (!text)
			return -1;
		text[strcspn(text, "\r\n")] = '\0';
		if (!text[0]) {
			free(text);
			snprintf(err, errlen, "%s: empty: the smarthost would be sent "
				 "an empty password (the password goes on its first "
				 "line)", c->smarthost_secret);
			return -1;
		}
		smtpout_set_secret(text);
		explicit_bzero(text, len);
		free(text);
	}
	if (CONFIG_TLS && c->smarthost_tls != SMARTHOST_PLAIN && c->smarthost_verify &&
	    tls_load_ca(c->ca_file, err, errlen) != 0)
		return -1;
	return 0;
}

/* Loads conf, users, certificates and aliases as one unit; on error the
 * ones in force are untouched. */
static int load_all(const char *path, struct conf **c, struct users **u,
		    struct aliases **a, char *err, size_t errlen)
{
	*c = conf_load(path, err, errlen);
	if (!*c)
		return -1;
	*u = users_load((*c)->users, err, errlen);
	if (!*u) {
		where(path, (*c)->users_line, err, errlen);
		conf_free(*c);
		return -1;
	}
	*a = NULL;
	if (CONFIG_ALIASES && (*c)->aliases[0]) {
		*a = aliases_load((*c)->aliases, *c, *u, err, errlen);
		if (!*a) {
			where(path, (*c)->aliases_line, err, errlen);
			users_free(*u);
			conf_free(*c);
			return -1;
		}
	}
	if ((CONFIG_TLS && (*c)->tls_cert[0] &&
	     tls_load((*c)->tls_cert, (*c)->tls_key, err, errlen) != 0) ||
	    load_relay(*c, err, errlen) != 0) {
		where(path, error_line(*c, err), err, errlen);
		aliases_free(*a);
		users_free(*u);
		conf_free(*c);
		return -1;
	}
	return 0;
}

static const char *plural(int n)
{
	return n == 1 ? "" : "s";
}

static void reload(void)
{
	struct conf *c;
	struct users *u;
	struct aliases *a;
	char err[512];

	if (load_all(conf_path, &c, &u, &a, err, sizeof(err)) != 0) {
		/* run_as reads again what root read at start-up: -t (run as
		 * root) names the file and the chgrp/chmod a reload needs. */
		log_msg(LOGL_ERR, "reload failed, keeping the old configuration: %s "
			"(`postie -t -c %s` as root says what to change)", err,
			conf_path);
		return;
	}
	if (CONFIG_LISTEN && (c->nlisten != conf->nlisten ||
			      memcmp(c->listen, conf->listen, sizeof(c->listen)) != 0))
		log_msg(LOGL_WARN, "reload: listener changes need a restart");
	if (strcmp(c->run_as, conf->run_as) != 0)
		log_msg(LOGL_WARN, "reload: run_as changes need a restart");
	/* Listeners and privileges stay as started. */
	memcpy(c->listen, conf->listen, sizeof(c->listen));
	c->nlisten = conf->nlisten;
	conn_init(c->max_connections);
	tls_set_max(c->max_tls_sessions);
	if (conn_slots_free() > 0)
		listeners_pause(0);
	conf_free(conf);
	users_free(users);
	aliases_free(aliases);
	conf = c;
	users = u;
	aliases = a;
	auth_reload();
	smtpout_drop_idle();    /* the next message meets the new settings */
	log_msg(LOGL_INFO, "reloaded %s: %d user%s", conf_path, users->n,
		plural(users->n));
}

/* mail_dir, made as root: chowned through a descriptor opened
 * O_NOFOLLOW, so nothing put in its place between the mkdir and the
 * chown makes root change the owner of another file. */
/* A spool_dir that start-up cannot prepare, named with its line (or as
 * the default). */
static void spool_fatal(const char *what)
{
	int e = errno;

	if (conf->spool_dir_line > 0)
		fatal("%s:%d: spool_dir %s%s: %s", conf_path,
		      conf->spool_dir_line, conf->spool_dir, what, strerror(e));
	fatal("%s: spool_dir %s%s (the default): %s",
	      conf_path, conf->spool_dir, what, strerror(e));
}

static void make_dir(const char *path, uid_t uid, gid_t gid)
{
	int fd;

	if (mkdir(path, 0700) == 0) {
		if (uid == (uid_t)-1)
			return;
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchown(fd, uid, gid) != 0)
			fatal("%s: chown: %s", path, strerror(errno));
		close(fd);
	} else if (errno != EEXIST) {
		fatal("%s: %s", path, strerror(errno));
	}
}

static void drop_privileges(uid_t uid, gid_t gid, const char *name)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		fatal("run_as %s: cannot drop privileges: %s", name, strerror(errno));
	if (setuid(0) == 0)
		fatal("run_as %s: could regain root, refusing to run", name);
}

/* A zombie (killed, not yet reaped) is not alive. */
static int pid_alive(int pid)
{
	char path[32], buf[128];
	char *p;
	int alive = 1;

	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (fdio_read_head(path, buf, sizeof(buf)) < 0)
		return 1;
	if ((p = strrchr(buf, ')')) && p[1] == ' ' && p[2] == 'Z')
		alive = 0;
	return alive;
}

/* What a postie killed mid-operation leaves in mail_dir and the IMAP
 * folders below it: NAME.lock files holding its pid (they would block
 * those mailboxes for CONFIG_MBOX_DOTLOCK_STALE; the append they guarded
 * is undone by mbox_undo_crashed_append), NAME.lock.PID files of a lock
 * being made, and in .postie directories the NAME.new / NAME.idx.tmp of
 * a rewrite that never reached its rename (possibly a whole mailbox's
 * size on flash). Only locks with the previous daemon's pid, which is
 * gone, are removed: other programs' locks are theirs to clear. */
static void sweep_dir(const char *dir, int old, int depth)
{
	char tail[24], buf[64], sub[CONF_PATH_MAX + 320];
	struct dirent *e;
	size_t dl = strlen(dir), il = strlen("/" IDX_DIR);
	/* Every build sweeps: a build without POP3/IMAP makes no rewrite,
	 * but one that had them may have left a whole mailbox's copy. */
	int in_idx = dl >= il && strcmp(dir + dl - il, "/" IDX_DIR) == 0;
	DIR *d = opendir(dir);

	if (!d)
		return;
	snprintf(tail, sizeof(tail), ".lock.%d", old);
	for (int guard = 0; guard < 100000 && (e = readdir(d)) != NULL; guard++) {
		size_t l = strlen(e->d_name), tl = strlen(tail);
		struct stat st;
		ssize_t n;
		int fd;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth < 12 && (size_t)snprintf(sub, sizeof(sub), "%s/%s", dir,
							   e->d_name) < sizeof(sub))
				sweep_dir(sub, old, depth + 1);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (in_idx && ((l > 4 && strcmp(e->d_name + l - 4, ".new") == 0) ||
			       (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0) ||
			       strncmp(e->d_name, "append.", 7) == 0)) {
			unlinkat(dirfd(d), e->d_name, 0);
			log_msg(LOGL_WARN, "removed %s/%s left by postie pid %d", dir,
				e->d_name, old);
			continue;
		}
		/* NAME.lock.PID: a dotlock being made when the daemon died. */
		if (l > tl && strcmp(e->d_name + l - tl, tail) == 0) {
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (l < 6 || strcmp(e->d_name + l - 5, ".lock") != 0)
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (atoi(buf) == old) {
				mbox_undo_crashed_append(dir, e->d_name, buf);
				unlinkat(dirfd(d), e->d_name, 0);
				log_msg(LOGL_WARN, "removed %s/%s left by postie pid %d",
					dir, e->d_name, old);
			}
		}
	}
	closedir(d);
}

/* The previous daemon's pid is read through the descriptor holding the
 * spool's lock: closing any other descriptor of postie.pid would drop
 * that fcntl lock. */
static void drop_own_dotlocks(int lock_fd)
{
	char buf[64];
	ssize_t n = pread(lock_fd, buf, sizeof(buf) - 1, 0);
	int old;

	if (n <= 0)
		return;
	buf[n] = '\0';
	old = atoi(buf);
	if (old <= 0 || old == (int)getpid() || pid_alive(old))
		return;
	sweep_dir(conf->mail_dir, old, 0);
}

/* spool_dir/postie.pid lets `postie sendmail -q` find the daemon. It
 * is written through the descriptor that holds the spool's lock. */
static void write_pid(int fd)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		log_msg(LOGL_WARN, "%s/postie.pid: %s", conf->spool_dir,
			strerror(errno));
}

static void print_version(void)
{
	/* One literal of what this build has. */
	dprintf(1, "postie %s\nfeatures:" WITH(CONFIG_SMTP_SERVER, " smtp")
		WITH(CONFIG_MAILBOXES, " mbox") WITH(CONFIG_ALIASES, " aliases")
		WITH(CONFIG_IPV6, " ipv6") WITH(CONFIG_SYSLOG, " syslog")
		WITH(CONFIG_TLS, " tls") WITH(CONFIG_TLS_SMALL, " tls-small")
		WITH(CONFIG_AUTH, " auth")
		WITH(CONFIG_AUTH, WITH(CONFIG_SMTP_SERVER, " submission"))
		WITH(CONFIG_SMARTHOST_AUTH, " smarthost-auth")
		WITH(CONFIG_POP3, " pop3") WITH(CONFIG_IMAP, " imap")
		WITH(CONFIG_RELAY, " relay queue") WITH(CONFIG_DNS, " dns")
		WITH(CONFIG_SENDMAIL, " sendmail")
		WITH(CONFIG_FEATURE_SMTP_SMTPUTF8, " smtputf8")
		WITH(CONFIG_DEBUG_PROTOCOL, " debug-protocol"), POSTIE_VERSION);
	if (CONFIG_IMAP && CONFIG_IMAP_CACHE_SLOTS > 0)
		dprintf(1, " structure-cache");
	if (CONFIG_IMAP)
		dprintf(1, "\nimap:%s%s%s%s%s%s%s%s%s", CONFIG_IMAP_IDLE ? " IDLE" : "",
		       CONFIG_IMAP_UIDPLUS ? " UIDPLUS" : "", CONFIG_IMAP_MOVE ? " MOVE" : "",
		       CONFIG_IMAP_SPECIAL_USE ? " SPECIAL-USE" : "",
		       CONFIG_IMAP_CONDSTORE ? " CONDSTORE" : "",
		       CONFIG_IMAP_NAMESPACE ? " NAMESPACE" : "", CONFIG_IMAP_ID ? " ID" : "",
		       CONFIG_IMAP_ENABLE ? " ENABLE" : "",
		       CONFIG_IMAP_LITERALPLUS ? " LITERAL+" : "");
	fdio_out(1, "\nlimits: connections=" STR(CONFIG_MAX_CONNECTIONS)
		 " line=" STR(CONFIG_SMTP_LINE_MAX) " rcpt=" STR(CONFIG_SMTP_MAX_RCPT)
		 " inbuf=" STR(CONFIG_CONN_INBUF) " outbuf=" STR(CONFIG_CONN_OUTBUF)
		 " message=" STR(CONFIG_MAX_MESSAGE_SIZE_KB) "K\nconfig: " DEFAULT_CONF
		 "\n");
}

static void on_alias_target(void *ctx, int user, const char *remote)
{
	(void)user;
	(void)remote;
	++*(int *)ctx;
}

/* -t: root (cron, alerts, sendmail's own senders) and postmaster (RFC
 * 5321) must reach somebody, or their mail and its bounces fail here;
 * a bounce that fails too is kept in spool_dir/bad/, seen by nobody.
 * A warning, not a problem: the daemon runs. */
static void check_postmaster(const char *cpath)
{
	static const char *const names[] = { "root", "postmaster" };
	static const char *const why[] = { "cron, alerts, bounces",
					   "notices, other servers' reports" };

	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		size_t len = strlen(names[i]);
		int n = 0;

		if (users_find(users, names[i], len) >= 0 ||
		    aliases_expand(aliases, users, names[i], len,
				   on_alias_target, &n) > 0)
			continue;
		dprintf(2, "postie: %s: warning: no %s %s: mail to %s (%s) fails",
			cpath, CONFIG_MAILBOXES ? "user or alias" : "alias", names[i],
			names[i], why[i]);
		if (CONFIG_RELAY)       /* bounces are the relay's */
			dprintf(2, ", and a bounce nobody takes is kept in %s/bad",
				conf->spool_dir);
		fdio_out(2, "; ");
		if (!CONFIG_ALIASES && !CONFIG_MAILBOXES)
			fdio_out(2, "this build has neither users nor aliases: "
				 "send to full addresses\n");
		else if (!CONFIG_ALIASES)
			dprintf(2, "add the user %s (postie user add %s)\n",
				names[i], names[i]);
		else if (i == 0)
			dprintf(2, "add 'root: %s' (%s) to %s\n",
				users->n ? users->v[0].name : "you@example.com",
				CONFIG_MAILBOXES ? "a user or an address" :
				"an address: this build has no local mailboxes",
				conf->aliases[0] ? conf->aliases : "an aliases file");
		else
			dprintf(2, "add 'postmaster: root' to %s\n",
				conf->aliases[0] ? conf->aliases : "an aliases file");
	}
}

static int daemon_main(int argc, char **argv)
{
	int opt, test_only = 0, lock_fd, holder;
	struct users *u;
	struct aliases *a;
	struct conf *c;
	char err[512];
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	sigset_t block;
	struct sigaction sa;

	opterr = 0;
	while ((opt = getopt(argc, argv, "c:tV")) != -1) {
		switch (opt) {
		case 'c': conf_path = optarg; break;
		case 't': test_only = 1; break;
		case 'V': print_version(); return 0;
		default:
			if (optopt == 'c')
				dprintf(2, "postie: -c needs a file\n\n");
			else
				dprintf(2, "postie: unknown option '-%c'\n\n", optopt);
			cli_usage();
		}
	}
	if (optind != argc) {
		dprintf(2, "postie: unknown command '%s'\n\n", argv[optind]);
		cli_usage();
	}
	if (load_all(conf_path, &c, &u, &a, err, sizeof(err)) != 0)
		fatal("%s", err);
	conf = c;
	users = u;
	aliases = a;
	if (test_only) {
		int n = conf_check(conf, conf_path);

		if (n > 0) {
			dprintf(2, "postie: %s: %d problem(s) start-up or a reload "
				"would hit\n", conf_path, n);
			return 1;
		}
		check_postmaster(conf_path);
		dprintf(1, "postie: %s: configuration OK (%d listener%s, %d user%s)\n",
		       conf_path, conf->nlisten, plural(conf->nlisten), users->n,
		       plural(users->n));
		return 0;
	}
	if (conf->nlisten == 0 && !CONFIG_SENDMAIL)
		fatal("%s: no 'listen' directive", conf_path);
	if (conf->run_as[0]) {
		struct passwd *pw = getpwnam(conf->run_as);
		if (!pw)
			fatal("run_as %s: no such user", conf->run_as);
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		if (geteuid() != 0 && geteuid() != uid)
			fatal("run_as %s: must start as root or as that user",
			      conf->run_as);
		if (geteuid() != 0)
			uid = gid = (uid_t)-1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Signals are taken only inside ppoll(), so a flag is never missed
	 * between a check and the wait; installed before anything can learn
	 * our pid (listeners, postie.pid), so none arrives to a default
	 * action that would kill the daemon. */
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);

	if (spool_prepare(conf->spool_dir, uid, gid) != 0)
		spool_fatal("");
	/* One daemon per spool: two would deliver the queue twice. Held
	 * (never closed) for the daemon's life; taken before anything in
	 * the spool (postie.ctl, dotlocks of the previous pid) is touched. */
	lock_fd = spool_lock(conf->spool_dir, uid, gid, &holder);
	if (lock_fd < 0 && holder > 0)
		fatal("another postie (pid %d) runs on spool_dir %s", holder,
		      conf->spool_dir);
	if (lock_fd < 0)
		spool_fatal("/postie.pid");
	if (CONFIG_MAILBOXES) {
		if (mkdir_parents(conf->mail_dir) != 0)
			fatal("%s:%d: mail_dir %s: %s", conf_path, conf->mail_dir_line,
			      conf->mail_dir, strerror(errno));
		make_dir(conf->mail_dir, uid, gid);
	}

	log_init(conf->log_syslog);
	/* Undo what a killed daemon left half done before any client can
	 * connect: a listener that is up must never serve a torn mbox tail
	 * or be blocked by a dead daemon's dotlock. */
	if (CONFIG_MAILBOXES)
		drop_own_dotlocks(lock_fd);
	if (CONFIG_AUTH)
		passwd_cache_init();
	loop_init();
	conn_init(conf->max_connections);
	tls_set_max(conf->max_tls_sessions);
	conn_on_slot_free = on_slot_free;
	/* A build with no server has no listener code (conf refuses
	 * every listen line). */
	for (int i = 0; CONFIG_LISTEN && i < conf->nlisten; i++) {
		struct listener *l = &listeners[nlisteners];
		int fd = net_listen(&conf->listen[i].addr);
		if (fd < 0)
			fatal("%s:%d: listen %s: %s", conf_path, conf->listen_line[i],
			      conf->listen[i].text, strerror(errno));
		l->w.fd = fd;
		l->w.events = POLLIN;
		l->w.deadline = 0;
		l->w.on_io = on_accept;
		l->w.on_timeout = on_listen_retry;
		l->kind = conf->listen[i].kind;
		l->ops = kind_ops[l->kind];
		loop_add(&l->w);
		nlisteners++;
	}
	status_open(conf->spool_dir, POSTIE_VERSION);
	if (uid != (uid_t)-1)
		drop_privileges(uid, gid, conf->run_as);
	if (spool_init(conf->spool_dir) != 0)
		spool_fatal("");
	/* Deliveries (SMTP and the relay queue) tell IMAP of new mail. */
	if (CONFIG_IMAP) {
		mbox_on_new_mail(imap_notify_mailbox);
		mbox_on_lock_free(imap_lock_free);
	}
	if (CONFIG_RELAY) {
		/* The resolver first: the queue's first run looks things up. */
		if (CONFIG_DNS && dns_start(conf->dns_server) != 0)
			log_msg(LOGL_WARN, "dns: resolver not available yet; relayed "
				"mail waits in the queue");
		if (relay_init(conf->spool_dir) != 0)
			fatal("%s: queue: %s", conf->spool_dir, strerror(errno));
	}
	write_pid(lock_fd);

	log_msg(LOGL_INFO, "postie %s started: %d listener%s, %d user%s, pid %d",
		POSTIE_VERSION, nlisteners, plural(nlisteners), users->n,
		plural(users->n), (int)getpid());
	for (int i = 0; CONFIG_LISTEN && i < conf->nlisten; i++)
		log_msg(LOGL_INFO, "listening for %s on %s",
			conf_service_name(conf->listen[i].kind), conf->listen[i].text);
	logw.fd = 2;
	logw.deadline = 0;
	logw.on_io = on_log_writable;
	logw.on_timeout = never;
	loop_add(&logw);
	while (!got_term) {
		/* A slow stderr reader gets POLLOUT, never a blocking write. */
		logw.events = log_pending_fd() >= 0 ? POLLOUT : 0;
		loop_step(-1);
		if (got_hup) {
			got_hup = 0;
			reload();
		}
		if (got_usr1) {
			got_usr1 = 0;
			if (CONFIG_RELAY) {
				log_msg(LOGL_INFO, "queue run requested");
				relay_run_now();
			}
		}
	}
	log_msg(LOGL_INFO, "stopping (signal); longest loop stall %ld.%03ld ms; "
		"most fsyncs in one pass %lu", loop_longest_stall_us() / 1000,
		loop_longest_stall_us() % 1000, loop_most_syncs());
	conn_close_all("shutdown");
	status_close();
	log_flush();
	return 0;
}

static const char *base_name(const char *s)
{
	const char *slash = strrchr(s, '/');
	return slash ? slash + 1 : s;
}

int main(int argc, char **argv)
{
	const char *name = base_name(argv[0]);

	/* Multi-call: "sendmail"/"mailq" by name (symlinks), or as the
	 * first argument of postie. */
	if (strcmp(name, "sendmail") == 0)
		return sendmail_main(argc, argv, 0);
	if (strcmp(name, "mailq") == 0)
		return sendmail_main(argc, argv, 1);
	if (argc > 1 && strcmp(argv[1], "sendmail") == 0)
		return sendmail_main(argc - 1, argv + 1, 0);
	if (argc > 1 && strcmp(argv[1], "mailq") == 0)
		return sendmail_main(argc - 1, argv + 1, 1);
	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return cli_passwd();
	if (argc > 1 && strcmp(argv[1], "user") == 0)
		return cli_user(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return cli_status(argc - 1, argv + 1);
	if (argc > 1 && strncmp(argv[1], "--", 2) == 0 && argv[1][2] &&
	    strcmp(argv[1], "--help") != 0) {
		dprintf(2, "postie: unknown option '%s'\n\n", argv[1]);
		cli_usage();
	}
	if (argc > 1 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
			 strcmp(argv[1], "-h") == 0))
		return cli_help(argc - 1, argv + 1);
	return daemon_main(argc, argv);
}
