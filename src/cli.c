/* cli — the operator's commands besides the daemon: help, passwd, user,
 * status (the client; the daemon's side is status.c).
 * Each reads the main configuration only to find its files; none needs
 * the daemon to run. Exit codes are those of sysexits.h. Passwords come
 * from the terminal (asked twice when they set one, echo off) or one line
 * of stdin, at most PASSWD_MAX_LEN bytes (longer ones could never log in). */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/fdio.h"
#include "core/util.h"
#include "store/passwd.h"
#include "store/users.h"

#define EX_USAGE_ 64
#define EX_DATAERR_ 65
#define EX_UNAVAILABLE_ 69
#define EX_SOFTWARE_ 70
#define EX_NOPERM_ 77
#define EX_CONFIG_ 78

/* A command's help holds only what this build has (WITH, WITHOUT:
 * core/util.h); a command not built keeps only its name and the option
 * it needs. */

struct help {
	const char *name, *synopsis;    /* synopsis NULL: not built, */
	const char *text;               /* and text the option it needs */
};

#define HELP(name, on, needs, synopsis, text) \
	{ name, (on) ? synopsis : NULL, (on) ? text : needs }

static const struct help helps[] = {
	HELP("daemon", 1, NULL, "postie [-c FILE] [-t] [-V]",
	     "Runs the mail server in the foreground (procd and systemd want that).\n"
	     "  -c FILE  configuration (default " CLI_DEFAULT_CONF ")\n"
	     "  -t       check the configuration as start-up would, then exit:\n"
	     "           0, or 1 with FILE:LINE: cause\n"
	     "  -V       version, compiled-in features and limits\n"
	     "Signals: HUP reloads configuration" WITH(CONFIG_MAILBOXES, ", users")
	     WITH(CONFIG_ALIASES, ", aliases") WITH(CONFIG_TLS, ", certificates")
	     WITH(CONFIG_RELAY, ";\nUSR1 runs the queue") "; TERM and INT stop.\n"),
	HELP("passwd", CONFIG_AUTH, "CONFIG_AUTH", "postie passwd",
	     "Reads a password (twice on a terminal, else one line of stdin) and\n"
	     "prints its SHA-512-crypt ($6$) hash for the users file.\n"),
	HELP("user", CONFIG_MAILBOXES, "CONFIG_MAILBOXES",
	     "postie user [-c FILE] add|del|" WITH(CONFIG_AUTH, "passwd|") "list"
	     WITH(CONFIG_AUTH, "|test") " [NAME]",
	     "Manages the users file named by the configuration's `users` line.\n"
	     WITH(CONFIG_AUTH,
	     "  add NAME [--no-login]  a new user; asks for the password (a user\n"
	     "                         with --no-login receives mail, never logs in)\n")
	     WITHOUT(CONFIG_AUTH,
	     "  add NAME --no-login    a new user, who receives mail (this build\n"
	     "                         has no logins: CONFIG_AUTH)\n")
	     "  del NAME               removes the user's line\n"
	     WITH(CONFIG_AUTH,
	     "  passwd NAME            sets a new password, keeping the line's other fields\n")
	     "  list                   the users, one per line, in file order\n"
	     WITH(CONFIG_AUTH,
	     "  test NAME              checks a password as a login would (exit 0 if right)\n")
	     "Edits keep comments and order, and replace the file in one rename;\n"
	     "they wait for each other (a lock on FILE.lock beside it).\n"
	     "The daemon reads the new file on SIGHUP. Exit 0; 65 for a bad name\n"
	     "or file; 77 when the file or its folder is not writable for you.\n"),
	HELP("status", 1, NULL, "postie status [-c FILE]",
	     "What the running daemon is doing: uptime, sessions per service,\n"
	     "connection slots" WITH(CONFIG_TLS, " and TLS sessions") " in use"
	     WITH(CONFIG_RELAY, ", the queue (size, oldest\n"
		  "message), the last relay error")
	     WITH(CONFIG_AUTH, ", the addresses banned for failed\n"
		  "logins") ". It asks over spool_dir/postie.ctl, which only the user that\n"
	     "started the daemon (root) may open. Exit 0; 69 with no daemon; 77\n"
	     "for any other user.\n"),
	HELP("sendmail", CONFIG_SENDMAIL, "CONFIG_SENDMAIL",
	     "postie sendmail [-C FILE] [-t] [-i] [-f ADDR] [-F NAME] [-q] [-bp] [RCPT...]",
	     "Queues a message read from stdin (also when started as `sendmail`);\n"
	     "works whether or not the daemon runs. -q asks the daemon to run the\n"
	     "queue now; -bp lists it.\n"),
	HELP("mailq", CONFIG_SENDMAIL, "CONFIG_SENDMAIL", "postie mailq [-C FILE]",
	     "Lists the queue: id, size, arrival, sender, recipients and why each\n"
	     "waits (also when started as `mailq`).\n"),
	HELP("help", 1, NULL, "postie help [COMMAND]   (or: postie --help)",
	     "This list, or the help of one command.\n"),
};

static void usage_all(int fd)
{
	static const struct { int on; const char *name; } parts[] = {
		{ CONFIG_SMTP_SERVER, "SMTP" },
		{ CONFIG_SMTP_SERVER && CONFIG_AUTH, "submission" },
		{ CONFIG_POP3, "POP3" }, { CONFIG_IMAP, "IMAP" },
		{ CONFIG_SENDMAIL, "sendmail" }, { CONFIG_RELAY, "relay" },
	};
	int n = 0;

	/* What this build serves and which commands it has. */
	fdio_out(fd, "postie — a small mail server");
	for (size_t i = 0; i < ARRAY_LEN(parts); i++)
		if (parts[i].on)
			dprintf(fd, "%s%s", n++ ? ", " : " (", parts[i].name);
	fdio_out(fd, n ? ")\n\nusage:\n" : "\n\nusage:\n");
	for (size_t i = 0; i < ARRAY_LEN(helps); i++)
		if (helps[i].synopsis)
			dprintf(fd, "  %s\n", helps[i].synopsis);
	fdio_out(fd, "\n`postie help COMMAND` explains one.\n");
}

void cli_usage(void)
{
	usage_all(2);
	exit(EX_USAGE_);
}

/* The help of command name on fd; -1 if there is no such command, -2
 * (and why on stderr) if this build does not have it. */
static int help_of(int fd, const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(helps); i++) {
		const struct help *h = &helps[i];

		if (strcmp(name, h->name) != 0)
			continue;
		/* (a build with every command has no refusal) */
		if ((!CONFIG_AUTH || !CONFIG_SENDMAIL) && !h->synopsis) {
			dprintf(2, "postie help: %s is not in this build (needs %s)\n",
				name, h->text);
			return -2;
		}
		dprintf(fd, "usage: %s\n\n%s", h->synopsis, h->text);
		return 0;
	}
	return -1;
}

int cli_help(int argc, char **argv)
{
	if (argc < 2) {
		usage_all(1);
		return 0;
	}
	switch (help_of(1, argv[1])) {
	case 0: return 0;
	case -2: return EX_UNAVAILABLE_;
	}
	dprintf(2, "postie help: no command '%s'\n\n", argv[1]);
	usage_all(2);
	return EX_USAGE_;
}

/* Up to n - 1 bytes of one line of fd 0, a byte at a time so that nothing
 * after the line is taken; NUL-terminated. 0, or -1 when nothing was read. */
static int read_fd0_line(char *pw, size_t n)
{
	struct buf b;
	char c;

	if (n == 0)
		return -1;
	buf_init(&b, pw, n - 1);        /* and the NUL */
	while (buf_remaining(&b) > 0) {
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		buf_addc(&b, c);
		if (c == '\n')
			break;
	}
	pw[b.len] = '\0';
	return b.len ? 0 : -1;
}

/* One line without echo from the terminal, or one line of stdin. The
 * length, or -1 (nothing read). */
static long read_line(const char *prompt, char *pw, size_t n, int tty)
{
	struct termios old, quiet;
	int got;

	if (tty && tcgetattr(0, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSAFLUSH, &quiet);
		fdio_out(2, prompt);
		got = read_fd0_line(pw, n);
		tcsetattr(0, TCSAFLUSH, &old);
		fdio_out(2, "\n");
	} else {
		got = read_fd0_line(pw, n);
	}
	if (got != 0)
		return -1;
	pw[strcspn(pw, "\r\n")] = '\0';
	return (long)strlen(pw);
}

/* A password into pw (PASSWD_MAX_LEN + 2 bytes); twice on a terminal
 * when setting one (confirm). Its length, or -1 with a message. */
static long read_password(const char *who, char *pw, size_t n, int confirm)
{
	char again[PASSWD_MAX_LEN + 2];
	int tty = isatty(0);
	long len = read_line("password: ", pw, n, tty);

	if (len < 0) {
		dprintf(2, "%s: no password on stdin\n", who);
		return -1;
	}
	if (len == 0 || len > PASSWD_MAX_LEN) {
		dprintf(2, "%s: password must be 1..%d bytes\n", who, PASSWD_MAX_LEN);
		return -1;
	}
	if (tty && confirm) {
		long l2 = read_line("again: ", again, sizeof(again), tty);
		int same = l2 == len && memcmp(again, pw, (size_t)len) == 0;

		explicit_bzero(again, sizeof(again));
		if (!same) {
			dprintf(2, "%s: the passwords differ; nothing changed\n", who);
			return -1;
		}
	}
	return len;
}

/* A new "$6$" hash of a password read as above. 0, or an exit code. */
static int new_hash(const char *who, char *hash, size_t n)
{
	char pw[PASSWD_MAX_LEN + 2];
	long len = read_password(who, pw, sizeof(pw), 1);
	int rc = 0;

	if (len < 0)
		return EX_DATAERR_;
	if (passwd_make(pw, (size_t)len, hash, n) != 0) {
		dprintf(2, "%s: cannot make a hash (no randomness?)\n", who);
		rc = EX_SOFTWARE_;
	}
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

int cli_passwd(void)
{
	char hash[PASSWD_HASH_MAX];
	int rc;

	if (!CONFIG_AUTH) {
		fdio_out(2, "postie: passwd is not in this build (needs CONFIG_AUTH)\n");
		return EX_UNAVAILABLE_;
	}
	rc = new_hash("postie passwd", hash, sizeof(hash));
	if (rc == 0)
		dprintf(1, "%s\n", hash);
	return rc;
}

/* ---- postie user ----------------------------------------------------- */

static void user_list(const char *path, const struct users *u)
{
	/* In file order (the table is sorted): read the file's names back. */
	char err[512];
	size_t len;
	char *text = file_slurp(path, 4u << 20, &len, err, sizeof(err));

	for (char *line = text, *next; line && *line; line = next) {
		size_t ll = strcspn(line, "\n"), nl;
		int i;

		next = line[ll] ? line + ll + 1 : line + ll;
		line += strspn(line, " \t");
		nl = strcspn(line, ":\r\n");
		if (nl == 0 || line[0] == '#' || (i = users_find(u, line, nl)) < 0)
			continue;
		dprintf(1, "%s%s\n", u->v[i].name,
		       CONFIG_AUTH && !passwd_hash_usable(u->v[i].hash) ? "  (no login)" : "");
	}
	free(text);
}

static int user_test(const char *who, const struct users *u, const char *name)
{
	char pw[PASSWD_MAX_LEN + 2];
	long len;
	int i = users_find(u, name, strlen(name)), ok;

	if (!CONFIG_AUTH) {
		dprintf(2, "%s: logins are not in this build (needs CONFIG_AUTH)\n", who);
		return EX_UNAVAILABLE_;
	}
	len = read_password(who, pw, sizeof(pw), 0);
	if (len < 0)
		return EX_DATAERR_;
	/* The same check a login makes (an unknown user is a wrong password). */
	ok = i >= 0 && passwd_verify(pw, (size_t)len, u->v[i].hash) == 1;
	explicit_bzero(pw, sizeof(pw));
	if (i < 0)
		dprintf(1, "%s: no user '%s'\n", who, name);
	else if (!passwd_hash_usable(u->v[i].hash))
		dprintf(1, "%s: user '%s' cannot log in (no password set)\n", who, name);
	else
		dprintf(1, "%s: %s\n", who, ok ? "password right: the login would succeed"
					    : "wrong password");
	return ok ? 0 : 1;
}

/* A users file another program writes (OpenWrt's init script rewrites
 * its own at every start and reload) starts with "# generated by": an
 * edit there would be lost. 1 (and the reason printed) for such a file. */
static int user_file_generated(const char *who, const char *path)
{
	char line[512], shown[2048];
	int gen = 0;

	if (fdio_read_head(path, line, sizeof(line)) > 0 && strncmp(line, "# generated by ", 15) == 0) {
		line[strcspn(line, "\n")] = '\0';
		dprintf(2, "%s: %s is rewritten by another program, an edit "
			"here would be lost; its first line says:\n%s\n", who, path,
			str_printable(shown, sizeof(shown), line, strlen(line)));
		gen = 1;
	}
	return gen;
}

int cli_user(int argc, char **argv)
{
	const char *who = "postie user", *conf_path = CLI_DEFAULT_CONF, *cmd, *name;
	char err[512], hash[PASSWD_HASH_MAX] = "";
	struct conf *c;
	struct users *u;
	int opt, rc, no_login = 0;
	enum users_op op;

	if (!CONFIG_MAILBOXES) {
		fdio_out(2, "postie: user is not in this build (needs CONFIG_MAILBOXES)\n");
		return EX_UNAVAILABLE_;
	}
	optind = 1;
	while ((opt = getopt(argc, argv, "+c:")) != -1) {
		if (opt != 'c') {
			help_of(2, "user");
			return EX_USAGE_;
		}
		conf_path = optarg;
	}
	if (optind >= argc) {
		help_of(2, "user");
		return EX_USAGE_;
	}
	cmd = argv[optind++];
	name = optind < argc ? argv[optind++] : NULL;
	if (optind < argc && strcmp(cmd, "add") == 0 &&
	    strcmp(argv[optind], "--no-login") == 0) {
		no_login = 1;
		optind++;
	}
	if (optind < argc || (!name) != (strcmp(cmd, "list") == 0)) {
		dprintf(2, "%s: usage: postie user [-c FILE] add|del|passwd|test NAME, "
			"or list\n", who);
		return EX_USAGE_;
	}
	c = conf_load(conf_path, err, sizeof(err));
	if (!c) {
		dprintf(2, "postie: %s\n", err);
		return EX_CONFIG_;
	}
	if (!c->users[0]) {
		dprintf(2, "%s: %s has no 'users' line\n", who, conf_path);
		conf_free(c);
		return EX_CONFIG_;
	}
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "test") == 0) {
		u = users_load(c->users, err, sizeof(err));
		if (!u) {
			dprintf(2, "postie: %s\n", err);
			conf_free(c);
			return EX_CONFIG_;
		}
		rc = 0;
		if (name)
			rc = user_test(who, u, name);
		else
			user_list(c->users, u);
		users_free(u);
		conf_free(c);
		return rc;
	}
	if (strcmp(cmd, "add") == 0)
		op = USERS_ADD;
	else if (strcmp(cmd, "del") == 0)
		op = USERS_DEL;
	else if (strcmp(cmd, "passwd") == 0)
		op = USERS_PASSWD;
	else {
		dprintf(2, "%s: no command '%s' (add, del, passwd, list, test)\n",
			who, cmd);
		conf_free(c);
		return EX_USAGE_;
	}
	if (user_file_generated(who, c->users)) {
		conf_free(c);
		return EX_CONFIG_;
	}
	rc = 0;
	if (op != USERS_DEL && !no_login) {
		if (!CONFIG_AUTH) {
			dprintf(2, "%s: passwords are not in this build (needs "
				"CONFIG_AUTH); use add NAME --no-login\n", who);
			rc = EX_UNAVAILABLE_;
		} else {
			rc = new_hash(who, hash, sizeof(hash));
		}
	}
	if (rc == 0 && users_edit(c->users, op, name, hash, err, sizeof(err)) != 0) {
		int perm = errno == EACCES || errno == EPERM || errno == EROFS;

		dprintf(2, "%s: %s\n", who, err);
		if (perm)
			dprintf(2, "%s: run it as root or as the owner of %s (it "
				"is replaced in its folder, beside %s.lock)\n", who,
				c->users, c->users);
		rc = perm ? EX_NOPERM_ : EX_DATAERR_;
	}
	if (rc == 0)
		dprintf(1, "%s: %s %s in %s; a running daemon reads it on SIGHUP "
		       "(kill -HUP $(cat %s/postie.pid))\n", who,
		       op == USERS_ADD ? "added" : op == USERS_DEL ? "removed" : "new password for",
		       name, c->users, c->spool_dir);
	explicit_bzero(hash, sizeof(hash));
	conf_free(c);
	return rc;
}

/* ---- postie status ---------------------------------------------------- */

int cli_status(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *conf_path = CLI_DEFAULT_CONF;
	char err[512], out[8192];
	size_t got = 0;
	struct conf *c;
	int opt, fd, rc;

	optind = 1;
	while ((opt = getopt(argc, argv, "+c:")) != -1) {
		if (opt != 'c') {
			help_of(2, "status");
			return EX_USAGE_;
		}
		conf_path = optarg;
	}
	if (optind != argc) {
		help_of(2, "status");
		return EX_USAGE_;
	}
	c = conf_load(conf_path, err, sizeof(err));
	if (!c) {
		dprintf(2, "postie: %s\n", err);
		return EX_CONFIG_;
	}
	rc = (size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/postie.ctl",
			      c->spool_dir) >= sizeof(sun.sun_path);
	conf_free(c);
	fd = rc ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		if (e == EACCES || e == EPERM) {
			dprintf(2, "postie status: %s: only the user that started "
				"the daemon (root) may ask\n", sun.sun_path);
			return EX_NOPERM_;
		}
		dprintf(2, "postie status: no daemon answers on %s (%s)\n",
			sun.sun_path, rc ? "path too long" : strerror(e));
		return EX_UNAVAILABLE_;
	}
	/* Bounded: the daemon writes one report and closes; 10 s at most. */
	for (int i = 0; i < 100 && got < sizeof(out); i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) == 0)
			continue;
		n = read(fd, out + got, sizeof(out) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got == 0) {
		dprintf(2, "postie status: the daemon sent nothing\n");
		return EX_UNAVAILABLE_;
	}
	write_all_fd(1, out, got);
	return 0;
}
