/* conf — configuration parser and the checks of `postie -t` (see conf.h).
 * Limits: lines of 1024 bytes, 16 values per directive, CONF_MAX_DOMAINS
 * local domains. */
#include "core/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fdio.h"
#include "core/util.h"

#define CONF_LINE_MAX 1024
#define CONF_MAX_ARGS 16
/* The one refusal of a directive or value of a feature not built. */
#define NOT_BUILT "not in this build (needs %s)"

struct conf *conf;

struct parse {
	struct conf *c;
	const char *file;
	int line;
	char *err;
	size_t errlen;
	uint64_t seen;          /* bit per directive index, for duplicates */
};

static int fail(struct parse *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The message quotes the file's bytes (an unknown directive, a bad
 * value): they reach a terminal or the log, so control and non-ASCII
 * bytes are written as \xNN like client data. */
static int fail(struct parse *p, const char *fmt, ...)
{
	char raw[CONF_LINE_MAX + 256];
	va_list ap;
	struct buf b;

	buf_init(&b, raw, sizeof(raw));
	if (buf_printf(&b, "%s:%d: ", p->file, p->line) == 0) {
		va_start(ap, fmt);
		if (buf_vprintf(&b, fmt, ap) != 0) {
			/* Cut: as much of it as fits, like snprintf. */
			char *r = buf_reserve(&b, 0);
			size_t room = buf_remaining(&b);
			va_end(ap);
			va_start(ap, fmt);
			if (r && room)
				vsnprintf(r, room, fmt, ap);
		}
		va_end(ap);
	}
	if (p->errlen > 0)
		str_printable(p->err, p->errlen, raw, strnlen(raw, sizeof(raw)));
	return -1;
}

/* A relative path is taken from the configuration file's directory, so
 * the daemon and `sendmail -C DIR/postie.conf` started elsewhere find
 * the same spool (a spool relative to each one's working directory
 * stranded sendmail's mail where no daemon looks). */
static int set_path(struct parse *p, char *dst, const char *v)
{
	const char *slash = strrchr(p->file, '/');
	struct buf b;

	if (v[0] != '/' && strncmp(v, "./", 2) != 0 && strncmp(v, "../", 3) != 0)
		return fail(p, "'%s' must be a path (absolute, or ./relative)", v);
	buf_init(&b, dst, CONF_PATH_MAX);
	if (v[0] != '/' && slash)
		buf_add(&b, p->file, (size_t)(slash - p->file) + 1);
	if (buf_adds(&b, v) != 0 || buf_nul(&b) != 0)
		return fail(p, "path longer than %d bytes", CONF_PATH_MAX - 1);
	return 0;
}

static int valid_domain(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 255)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = d[i];
		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

static int d_hostname(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (!valid_domain(argv[1]))
		return fail(p, "hostname '%s' is not a valid domain", argv[1]);
	str_copy(p->c->hostname, sizeof(p->c->hostname), argv[1], 255);
	return 0;
}

/* The option a kind needs is kept only where the build lacks it. */
#define KIND(name, on, option) { name, on, (on) ? NULL : option }

static const struct {
	const char *name;
	int built;
	const char *option;
} kinds[] = {
	[LISTEN_SMTP] = KIND("smtp", CONFIG_SMTP_SERVER, "CONFIG_SMTP_SERVER"),
	[LISTEN_SMTPS] = KIND("smtps", CONFIG_SMTP_SERVER && CONFIG_TLS,
			      "CONFIG_SMTP_SERVER and CONFIG_TLS"),
	[LISTEN_SUBMISSION] = KIND("submission", CONFIG_SMTP_SERVER && CONFIG_AUTH,
				   "CONFIG_SMTP_SERVER and CONFIG_AUTH"),
	[LISTEN_POP3] = KIND("pop3", CONFIG_POP3, "CONFIG_POP3"),
	[LISTEN_POP3S] = KIND("pop3s", CONFIG_POP3 && CONFIG_TLS,
			      "CONFIG_POP3 and CONFIG_TLS"),
	[LISTEN_IMAP] = KIND("imap", CONFIG_IMAP, "CONFIG_IMAP"),
	[LISTEN_IMAPS] = KIND("imaps", CONFIG_IMAP && CONFIG_TLS,
			      "CONFIG_IMAP and CONFIG_TLS"),
};

const char *conf_service_name(int kind)
{
	return kind >= 0 && (size_t)kind < ARRAY_LEN(kinds) ? kinds[kind].name : "?";
}

/* Would a and b take the same port (same address, or one a wildcard of
 * the same family; IPv6 listeners are IPv6-only)? */
static int same_socket(const struct net_addr *a, const struct net_addr *b)
{
	static const uint8_t any6[16];

	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin_port == y->sin_port &&
		       (x->sin_addr.s_addr == y->sin_addr.s_addr ||
			x->sin_addr.s_addr == INADDR_ANY || y->sin_addr.s_addr == INADDR_ANY);
	}
	const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;

	return x->sin6_port == y->sin6_port &&
	       (memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 ||
		memcmp(&x->sin6_addr, any6, 16) == 0 || memcmp(&y->sin6_addr, any6, 16) == 0);
}

static int d_listen(struct parse *p, int argc, char **argv)
{
	struct conf_listen *l;
	int kind = -1, rc;

	(void)argc;
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		if (strcmp(argv[1], kinds[i].name) == 0)
			kind = (int)i;
	if (kind < 0)
		return fail(p, "listen: unknown service '%s' (smtp, smtps, submission, pop3, pop3s, imap, imaps)", argv[1]);
	/* A build without a server refuses every kind: no listener code. */
	if (!CONFIG_LISTEN || !kinds[kind].built)
		return fail(p, "listen %s: " NOT_BUILT, argv[1], kinds[kind].option);
	if (p->c->nlisten >= CONFIG_MAX_LISTENERS)
		return fail(p, "more than %d listeners (CONFIG_MAX_LISTENERS)",
			    CONFIG_MAX_LISTENERS);
	l = &p->c->listen[p->c->nlisten];
	rc = net_parse_hostport(argv[2], &l->addr);
	if (rc == -2)
		return fail(p, "listen %s: IPv6 is not in this build "
			    "(needs CONFIG_IPV6)", argv[2]);
	if (rc != 0)
		return fail(p, "listen: '%s' is not ADDRESS:PORT or [V6]:PORT",
			    argv[2]);
	for (int i = 0; i < p->c->nlisten; i++)
		if (same_socket(&p->c->listen[i].addr, &l->addr))
			return fail(p, "listen %s: the port of line %d (listen %s): "
				    "start-up would fail with \"Address in use\"; "
				    "one listener per address and port", argv[2],
				    p->c->listen_line[i], p->c->listen[i].text);
	l->kind = (enum listen_kind)kind;
	p->c->listen_line[p->c->nlisten] = p->line;
	str_copy(l->text, sizeof(l->text), argv[2], strlen(argv[2]));
	p->c->nlisten++;
	return 0;
}

static int d_tls_cert(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->tls_line = p->line;
	return set_path(p, p->c->tls_cert, argv[1]);
}

static int d_tls_key(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->tls_key_line = p->line;
	return set_path(p, p->c->tls_key, argv[1]);
}

static int d_max_tls_sessions(struct parse *p, int argc, char **argv)
{
	uint64_t v;

	(void)argc;
	if (parse_u64(argv[1], CONFIG_MAX_TLS_SESSIONS, &v) != 0 ||
	    v < 1)
		return fail(p, "max_tls_sessions '%s': want 1..%d "
			    "(CONFIG_MAX_TLS_SESSIONS)", argv[1],
			    CONFIG_MAX_TLS_SESSIONS);
	p->c->max_tls_sessions = (int)v;
	return 0;
}

static int d_users(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->users_line = p->line;
	return set_path(p, p->c->users, argv[1]);
}

static int d_aliases(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->aliases_line = p->line;
	return set_path(p, p->c->aliases, argv[1]);
}

static int d_mail_dir(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->mail_dir_line = p->line;
	return set_path(p, p->c->mail_dir, argv[1]);
}

static int d_spool_dir(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->spool_dir_line = p->line;
	return set_path(p, p->c->spool_dir, argv[1]);
}

static int d_local_domains(struct parse *p, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (p->c->nlocal_domains >= CONF_MAX_DOMAINS)
			return fail(p, "more than %d local domains", CONF_MAX_DOMAINS);
		if (!valid_domain(argv[i]))
			return fail(p, "'%s' is not a valid domain", argv[i]);
		char *d = p->c->local_domains[p->c->nlocal_domains++];
		str_copy(d, 256, argv[i], 255);
		str_lower(d);
	}
	return 0;
}

static int d_max_message_size(struct parse *p, int argc, char **argv)
{
	uint64_t v;

	(void)argc;
	if (parse_size(argv[1], &v) != 0 || v < 1024 || v > (1ull << 32))
		return fail(p, "max_message_size '%s': want 1K..4G (e.g. 10M)",
			    argv[1]);
	p->c->max_message_size = v;
	return 0;
}

/* A count of connection slots: 1..CONFIG_MAX_CONNECTIONS. */
static int slot_count(struct parse *p, const char *name, const char *arg,
		      int *dst)
{
	uint64_t v;

	if (parse_u64(arg, CONFIG_MAX_CONNECTIONS, &v) != 0 || v < 1)
		return fail(p, "%s '%s': want 1..%d (CONFIG_MAX_CONNECTIONS)",
			    name, arg, CONFIG_MAX_CONNECTIONS);
	*dst = (int)v;
	return 0;
}

static int d_log_stall_ms(struct parse *p, int argc, char **argv)
{
	uint64_t v;

	(void)argc;
	if (parse_u64(argv[1], 60000, &v) != 0)
		return fail(p, "log_stall_ms '%s': want 0..60000 (0: off)", argv[1]);
	p->c->log_stall_ms = (int)v;
	return 0;
}

static int d_max_connections(struct parse *p, int argc, char **argv)
{
	(void)argc;
	return slot_count(p, argv[0], argv[1], &p->c->max_connections);
}

static int d_max_connections_per_ip(struct parse *p, int argc, char **argv)
{
	(void)argc;
	return slot_count(p, argv[0], argv[1], &p->c->max_connections_per_ip);
}

static int d_run_as(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->run_as_line = p->line;
	if (str_copy(p->c->run_as, sizeof(p->c->run_as), argv[1],
		     strlen(argv[1])) != 0)
		return fail(p, "run_as: user name too long");
	return 0;
}

static int d_log(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (strcmp(argv[1], "stderr") == 0)
		p->c->log_syslog = 0;
	else if (strcmp(argv[1], "syslog") == 0 && CONFIG_SYSLOG)
		p->c->log_syslog = 1;
	else if (strcmp(argv[1], "syslog") == 0)
		return fail(p, "log syslog: " NOT_BUILT, "CONFIG_SYSLOG");
	else
		return fail(p, "log: want stderr or syslog, not '%s'", argv[1]);
	return 0;
}

static int d_plaintext_auth_networks(struct parse *p, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (p->c->nplain_auth_nets >= CONF_MAX_NETS)
			return fail(p, "more than %d networks", CONF_MAX_NETS);
		if (net_parse_cidr(argv[i],
				   &p->c->plain_auth_nets[p->c->nplain_auth_nets]) != 0)
			return fail(p, "'%s' is not ADDRESS or ADDRESS/BITS", argv[i]);
		p->c->nplain_auth_nets++;
	}
	return 0;
}

static int d_sender_login_check(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (strcmp(argv[1], "yes") == 0)
		p->c->sender_login_check = 1;
	else if (strcmp(argv[1], "no") == 0)
		p->c->sender_login_check = 0;
	else
		return fail(p, "sender_login_check: want yes or no");
	return 0;
}

static int d_relay_networks(struct parse *p, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (p->c->nrelay_nets >= CONF_MAX_NETS)
			return fail(p, "more than %d networks", CONF_MAX_NETS);
		if (net_parse_cidr(argv[i], &p->c->relay_nets[p->c->nrelay_nets]) != 0)
			return fail(p, "'%s' is not ADDRESS or ADDRESS/BITS", argv[i]);
		p->c->nrelay_nets++;
	}
	return 0;
}

static int d_smarthost(struct parse *p, int argc, char **argv)
{
	static const char *const modes[] = { "plain", "starttls", "tls" };
	const char *colon;
	uint64_t port;
	size_t hl;

	colon = strrchr(argv[1], ':');
	if (!colon || (argv[1][0] == '[' && colon[-1] != ']'))
		return fail(p, "smarthost: want HOST:PORT, not '%s'", argv[1]);
	if (parse_u64(colon + 1, 65535, &port) != 0 || port == 0)
		return fail(p, "smarthost: bad port in '%s'", argv[1]);
	hl = (size_t)(colon - argv[1]);
	if (argv[1][0] == '[') {
		argv[1]++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(p->c->smarthost))
		return fail(p, "smarthost: bad host in '%s'", argv[1]);
	memcpy(p->c->smarthost, argv[1], hl);
	p->c->smarthost[hl] = '\0';
	p->c->smarthost_port = (int)port;
	p->c->smarthost_tls = port == 465 ? SMARTHOST_TLS : SMARTHOST_STARTTLS;
	if (argc > 2) {
		size_t i;
		for (i = 0; i < ARRAY_LEN(modes); i++)
			if (strcmp(argv[2], modes[i]) == 0)
				break;
		if (i == ARRAY_LEN(modes))
			return fail(p, "smarthost: mode '%s': want tls, starttls or "
				    "plain", argv[2]);
		p->c->smarthost_tls = (int)i;
	}
	if (p->c->smarthost_tls != SMARTHOST_PLAIN && !CONFIG_TLS)
		return fail(p, "smarthost %s: TLS is not in this build (needs "
			    "CONFIG_TLS); say 'plain' to send in the clear", argv[2] ?
			    argv[2] : "");
	if (!CONFIG_DNS) {
		struct net_cidr tmp;
		if (net_parse_cidr(p->c->smarthost, &tmp) != 0)
			return fail(p, "smarthost: '%s' must be an IP address in a "
				    "build without DNS (CONFIG_DNS); give the address, and "
				    "the name in smarthost_name", p->c->smarthost);
	}
	p->c->smarthost_line = p->line;
	return 0;
}

static int d_smarthost_auth(struct parse *p, int argc, char **argv)
{
	if (str_copy(p->c->smarthost_user, sizeof(p->c->smarthost_user), argv[1],
		     strlen(argv[1])) != 0)
		return fail(p, "smarthost_auth: user name too long");
	if (argc == 4 && strcmp(argv[3], "cleartext") != 0)
		return fail(p, "smarthost_auth: '%s': want USER FILE, or USER FILE "
			    "cleartext", argv[3]);
	p->c->smarthost_cleartext_ok = argc == 4;
	p->c->secret_line = p->line;
	return set_path(p, p->c->smarthost_secret, argv[2]);
}

static int d_smarthost_name(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (!valid_domain(argv[1]))
		return fail(p, "smarthost_name '%s' is not a valid host name", argv[1]);
	str_copy(p->c->smarthost_name, sizeof(p->c->smarthost_name), argv[1],
		 strlen(argv[1]));
	return 0;
}

static int d_smarthost_verify(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (strcmp(argv[1], "none") == 0)
		p->c->smarthost_verify = 0;
	else if (strcmp(argv[1], "ca") == 0)
		p->c->smarthost_verify = 1;
	else
		return fail(p, "smarthost_verify: want ca or none");
	return 0;
}

static int d_ca_file(struct parse *p, int argc, char **argv)
{
	(void)argc;
	p->c->ca_file_line = p->line;
	return set_path(p, p->c->ca_file, argv[1]);
}

static int d_dns_server(struct parse *p, int argc, char **argv)
{
	struct net_addr a;
	char buf[NET_ADDRSTR + 8];

	(void)argc;
	/* ADDR or ADDR:PORT or [V6]:PORT; checked by parsing with a port. */
	if (strchr(argv[1], ':') && (argv[1][0] == '[' || strchr(argv[1], '.')))
		snprintf(buf, sizeof(buf), "%s", argv[1]);
	else if (strchr(argv[1], ':'))
		snprintf(buf, sizeof(buf), "[%s]:53", argv[1]);
	else
		snprintf(buf, sizeof(buf), "%s:53", argv[1]);
	if (net_parse_hostport(buf, &a) != 0)
		return fail(p, "dns_server: '%s' is not ADDR or ADDR:PORT", argv[1]);
	str_copy(p->c->dns_server, sizeof(p->c->dns_server), argv[1], strlen(argv[1]));
	return 0;
}

static int d_relay_port(struct parse *p, int argc, char **argv)
{
	uint64_t v;

	(void)argc;
	if (parse_u64(argv[1], 65535, &v) != 0 || v == 0)
		return fail(p, "relay_port: want 1..65535");
	p->c->relay_port = (int)v;
	return 0;
}

static int d_queue_lifetime(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (parse_duration(argv[1], &p->c->queue_lifetime) != 0 ||
	    p->c->queue_lifetime < 60)
		return fail(p, "queue_lifetime '%s': want a duration like 5d, 12h "
			    "(at least 1m, at most 3650d)", argv[1]);
	return 0;
}

static int d_queue_retry(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (parse_duration(argv[1], &p->c->retry_min) != 0 ||
	    parse_duration(argv[2], &p->c->retry_max) != 0 || p->c->retry_min < 1 ||
	    p->c->retry_max < p->c->retry_min)
		return fail(p, "queue_retry: want MIN MAX durations, MIN <= MAX "
			    "<= 3650d (e.g. 5m 1h)");
	return 0;
}

static int d_delay_warning(struct parse *p, int argc, char **argv)
{
	(void)argc;
	if (parse_duration(argv[1], &p->c->delay_warning) != 0)
		return fail(p, "delay_warning '%s': want a duration like 4h (0: off, "
			    "at most 3650d)",
			    argv[1]);
	return 0;
}

static int d_masquerade(struct parse *p, int argc, char **argv)
{
	const char *at = strchr(argv[1], '@');

	(void)argc;
	if (!at || at == argv[1] || !valid_domain(at + 1) ||
	    strcspn(argv[1], "<>\"() ,;:") != strlen(argv[1]))
		return fail(p, "masquerade: want user@domain, not '%s'", argv[1]);
	str_copy(p->c->masquerade, sizeof(p->c->masquerade), argv[1], strlen(argv[1]));
	return 0;
}

/* A directive of a feature not built keeps only its name and what it
 * needs: its parser and messages are left out of the binary. */
struct directive {
	const char *name;
	unsigned char min_args, max_args, repeat;  /* repeat: may recur */
	int (*fn)(struct parse *p, int argc, char **argv);
	const char *needs;      /* the missing option(s), when fn is NULL */
};

/* The parser where the option is on, else the option it needs. */
#define ONLY(on, fn, needs) (on) ? fn : NULL, (on) ? NULL : needs
#define ALWAYS(fn) fn, NULL
#define RELAY(fn) ONLY(CONFIG_RELAY, fn, "CONFIG_RELAY")
#define MAILBOXES(fn) ONLY(CONFIG_MAILBOXES, fn, "CONFIG_MAILBOXES")
#define TLS_SERVER_NEEDS \
	"CONFIG_TLS and a server: CONFIG_SMTP_SERVER, CONFIG_POP3 or CONFIG_IMAP"

static const struct directive directives[] = {
	{ "hostname", 1, 1, 0, ALWAYS(d_hostname) },
	{ "listen", 2, 2, 1, ALWAYS(d_listen) },
	{ "users", 1, 1, 0, MAILBOXES(d_users) },
	{ "aliases", 1, 1, 0, ONLY(CONFIG_ALIASES, d_aliases, "CONFIG_ALIASES") },
	{ "mail_dir", 1, 1, 0, MAILBOXES(d_mail_dir) },
	{ "spool_dir", 1, 1, 0, ALWAYS(d_spool_dir) },
	{ "local_domains", 1, CONF_MAX_ARGS - 1, 1, ALWAYS(d_local_domains) },
	{ "max_message_size", 1, 1, 0, ALWAYS(d_max_message_size) },
	{ "max_connections", 1, 1, 0, ALWAYS(d_max_connections) },
	{ "log_stall_ms", 1, 1, 0, ALWAYS(d_log_stall_ms) },
	{ "max_connections_per_ip", 1, 1, 0, ALWAYS(d_max_connections_per_ip) },
	{ "run_as", 1, 1, 0, ALWAYS(d_run_as) },
	{ "log", 1, 1, 0, ALWAYS(d_log) },
	{ "tls_cert", 1, 1, 0, ONLY(CONFIG_TLS_SERVER, d_tls_cert, TLS_SERVER_NEEDS) },
	{ "tls_key", 1, 1, 0, ONLY(CONFIG_TLS_SERVER, d_tls_key, TLS_SERVER_NEEDS) },
	{ "max_tls_sessions", 1, 1, 0, ONLY(CONFIG_TLS, d_max_tls_sessions, "CONFIG_TLS") },
	{ "plaintext_auth_networks", 1, CONF_MAX_ARGS - 1, 1,
	  ONLY(CONFIG_AUTH, d_plaintext_auth_networks, "CONFIG_AUTH") },
	{ "sender_login_check", 1, 1, 0, ONLY(CONFIG_AUTH || CONFIG_SENDMAIL,
		d_sender_login_check, "CONFIG_AUTH or CONFIG_SENDMAIL") },
	{ "relay_networks", 1, CONF_MAX_ARGS - 1, 1, RELAY(d_relay_networks) },
	{ "smarthost", 1, 2, 0, RELAY(d_smarthost) },
	{ "smarthost_auth", 2, 3, 0, ONLY(CONFIG_SMARTHOST_AUTH, d_smarthost_auth,
		CONFIG_RELAY ? "CONFIG_SMARTHOST_AUTH" : "CONFIG_RELAY") },
	{ "smarthost_verify", 1, 1, 0, RELAY(d_smarthost_verify) },
	{ "smarthost_name", 1, 1, 0, RELAY(d_smarthost_name) },
	{ "ca_file", 1, 1, 0, ONLY(CONFIG_RELAY && CONFIG_TLS, d_ca_file,
		CONFIG_RELAY ? "CONFIG_TLS" : "CONFIG_RELAY") },
	{ "dns_server", 1, 1, 0, ONLY(CONFIG_DNS, d_dns_server, "CONFIG_DNS") },
	{ "relay_port", 1, 1, 0, RELAY(d_relay_port) },
	{ "queue_lifetime", 1, 1, 0, RELAY(d_queue_lifetime) },
	{ "queue_retry", 2, 2, 0, RELAY(d_queue_retry) },
	{ "masquerade", 1, 1, 0, RELAY(d_masquerade) },
	{ "delay_warning", 1, 1, 0, RELAY(d_delay_warning) },
};


static int split(char *line, char **argv)
{
	int argc = 0;
	char *s = line;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			break;
		if (argc == CONF_MAX_ARGS)
			return -1;
		argv[argc++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '#')
			s++;
		if (*s == '#') {
			*s = '\0';
			break;
		}
		if (*s)
			*s++ = '\0';
	}
	return argc;
}

static int parse_line(struct parse *p, char *line)
{
	char *argv[CONF_MAX_ARGS];
	int argc = split(line, argv);

	if (argc < 0)
		return fail(p, "too many values (at most %d)", CONF_MAX_ARGS - 1);
	if (argc == 0)
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(directives); i++) {
		const struct directive *d = &directives[i];
		if (strcmp(argv[0], d->name) != 0)
			continue;
		if (!d->fn)
			return fail(p, "%s: " NOT_BUILT, d->name, d->needs);
		if (argc - 1 < d->min_args || argc - 1 > d->max_args)
			return fail(p, "%s takes %d%s value%s", d->name, d->min_args,
				    d->max_args > d->min_args ? " or more" : "",
				    d->max_args > 1 ? "s" : "");
		if (!d->repeat && (p->seen & (1ull << i)))
			return fail(p, "%s given twice", d->name);
		p->seen |= 1ull << i;
		return d->fn(p, argc, argv);
	}
	return fail(p, "unknown directive '%s'", argv[0]);
}

static void defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0 ||
	    !valid_domain(c->hostname))
		strcpy(c->hostname, "localhost");
	strcpy(c->mail_dir, "/var/mail");
	strcpy(c->spool_dir, "/var/spool/postie");
	c->max_message_size = (uint64_t)CONFIG_MAX_MESSAGE_SIZE_KB * 1024;
	c->max_connections = CONFIG_MAX_CONNECTIONS;
	c->log_stall_ms = 50;
	c->max_connections_per_ip = CONFIG_MAX_CONNECTIONS_PER_IP;
	c->max_tls_sessions = CONFIG_MAX_TLS_SESSIONS;
	c->sender_login_check = 1;
	if (!CONFIG_RELAY)
		return;
	c->smarthost_verify = 1;
	c->relay_port = 25;
	c->queue_lifetime = 5 * 86400;
	c->retry_min = 300;
	c->retry_max = 3600;
	if (CONFIG_TLS)
		strcpy(c->ca_file, "/etc/ssl/certs/ca-certificates.crt");
}

/* a is b or inside it, as written (a trailing '/' aside); the inode
 * check below catches the same directory under two spellings. */
static int dir_within(const char *a, const char *b)
{
	size_t lb = strlen(b);

	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	if (strncmp(a, b, lb) == 0 && (a[lb] == '\0' || a[lb] == '/'))
		return 1;
	return 0;
}

static int dirs_overlap(const char *a, const char *b)
{
	struct stat sa, sb;

	if (dir_within(a, b) || dir_within(b, a))
		return 1;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int finish(struct parse *p)
{
	struct conf *c = p->c;

	if (CONFIG_SMARTHOST_AUTH && c->smarthost_user[0] && !c->smarthost[0])
		return fail(p, "smarthost_auth without smarthost");
	if (CONFIG_SMARTHOST_AUTH && c->smarthost_user[0] &&
	    c->smarthost_tls == SMARTHOST_PLAIN &&
	    !c->smarthost_cleartext_ok) {
		p->line = c->secret_line;
		return fail(p, "smarthost_auth: the smarthost (line %d) is plain, "
			    "so the password would cross the network in the clear; "
			    "use tls or starttls, or accept that with "
			    "'smarthost_auth %s FILE cleartext'", c->smarthost_line,
			    c->smarthost_user);
	}
	if (CONFIG_TLS_SERVER && !c->tls_cert[0] != !c->tls_key[0])
		return fail(p, "tls_cert and tls_key go together");
	if (CONFIG_MAILBOXES && dirs_overlap(c->mail_dir, c->spool_dir)) {
		/* A user named postie.pid or queue would be a spool file. */
		p->line = c->mail_dir_line > c->spool_dir_line ? c->mail_dir_line
							       : c->spool_dir_line;
		return fail(p, "mail_dir %s and spool_dir %s overlap: give each "
			    "its own directory, neither inside the other",
			    c->mail_dir, c->spool_dir);
	}
	for (int i = 0; CONFIG_TLS_SERVER && i < c->nlisten; i++)
		if ((c->listen[i].kind == LISTEN_SMTPS ||
		     c->listen[i].kind == LISTEN_SUBMISSION ||
		     c->listen[i].kind == LISTEN_POP3S ||
		     c->listen[i].kind == LISTEN_IMAPS) && !c->tls_cert[0])
			return fail(p, "listen %s needs tls_cert and tls_key",
				    c->listen[i].text);
	/* The host itself is always local (sendmail's bare names become
	 * name@hostname), and it is the only local domain by default. */
	if (!conf_is_local_domain(c, c->hostname, strlen(c->hostname))) {
		if (c->nlocal_domains == CONF_MAX_DOMAINS)
			return fail(p, "local_domains: no room for the hostname "
				    "(%d domains at most)", CONF_MAX_DOMAINS);
		str_copy(c->local_domains[c->nlocal_domains], 256, c->hostname, 255);
		str_lower(c->local_domains[c->nlocal_domains]);
		c->nlocal_domains++;
	}
	return 0;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
	struct parse p = { .file = path, .err = err, .errlen = errlen };
	char line[CONF_LINE_MAX + 2];
	struct fdio_in f;
	struct stat st;
	int rc = 0, fd;

	p.c = calloc(1, sizeof(*p.c));
	if (!p.c) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	defaults(p.c);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(p.c);
		return NULL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: a directory, not a configuration file "
			 "(-c names the file, e.g. %s/postie.conf)", path, path);
		close(fd);
		free(p.c);
		return NULL;
	}
	fdio_in_init(&f, fd);
	while (rc == 0 && fdio_gets(&f, line, sizeof(line))) {
		size_t len = strlen(line);
		p.line++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (fdio_peek(&f) >= 0)
			rc = fail(&p, "line longer than %d bytes", CONF_LINE_MAX);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (rc == 0)
			rc = parse_line(&p, line);
	}
	if (rc == 0 && f.err)
		rc = fail(&p, "read error: %s", strerror(f.err));
	close(fd);
	if (rc == 0)
		rc = finish(&p);
	if (rc != 0) {
		free(p.c);
		return NULL;
	}
	return p.c;
}

void conf_free(struct conf *c)
{
	free(c);
}

int conf_is_local_domain(const struct conf *c, const char *d, size_t len)
{
	/* As in other MTAs: root@localhost is this host's root, never a
	 * name for the smarthost (a provider's own root would get it). */
	if (str_ieq(d, len, "localhost"))
		return 1;
	for (int i = 0; i < c->nlocal_domains; i++)
		if (str_ieq(d, len, c->local_domains[i]))
			return 1;
	return 0;
}

/* ---- postie -t: what start-up and reloads would run into ------------- */

struct who {
	uid_t uid;
	gid_t gid;
	const char *name;       /* run_as, or NULL: the user running -t */
};

static int finding(const char *path, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int finding(const char *path, int line, const char *fmt, ...)
{
	va_list ap;

	if (line > 0)
		dprintf(2, "postie: %s:%d: ", path, line);
	else                    /* about the file itself */
		dprintf(2, "postie: %s: ", path);
	va_start(ap, fmt);
	vdprintf(2, fmt, ap);
	va_end(ap);
	fdio_out(2, "\n");
	return 1;
}

/* May w do `want` (R_OK/W_OK/X_OK bits) to st by its mode bits? The
 * daemon keeps only run_as's primary group (setgroups(0)). */
static int mode_allows(const struct stat *st, const struct who *w, int want)
{
	unsigned bits;

	if (w->uid == 0)
		return 1;
	if (st->st_uid == w->uid)
		bits = (st->st_mode >> 6) & 7;
	else if (st->st_gid == w->gid)
		bits = (st->st_mode >> 3) & 7;
	else
		bits = st->st_mode & 7;
	return ((unsigned)want & ~bits) == 0;
}

/* Can w reach path (every directory above it searchable) and do want to
 * it? For the user running -t, access() answers (all its groups). When
 * not, *at is the path that stops it (a directory above, or path) and st
 * its status. */
static int can(const char *path, const struct who *w, int want, char *at,
	       struct stat *st)
{
	str_copy(at, CONF_PATH_MAX, path, strlen(path));
	if (!w->name)
		return stat(path, st) == 0 &&
		       faccessat(AT_FDCWD, path, want, AT_EACCESS) == 0;
	for (char *slash = strchr(at + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (stat(at, st) != 0 || !mode_allows(st, w, X_OK))
			return 0;
		*slash = '/';
	}
	return stat(path, st) == 0 && mode_allows(st, w, want);
}

static const char *who_name(const struct who *w)
{
	return w->name ? w->name : "this user";
}

/* mail_dir and spool_dir: a directory w can write, or one start-up can
 * create (start-up makes both with their missing parents, so some
 * ancestor must be a directory), or, when shaped (the mode start-up
 * gives it, 0 for none), one start-up as root chowns to run_as. */
static int check_dir(const char *cpath, int line, const char *what, const char *dir,
		     unsigned shaped, const struct who *w)
{
	struct stat st;
	char parent[CONF_PATH_MAX], at[CONF_PATH_MAX];
	char *slash;

	if (stat(dir, &st) != 0) {
		if (errno != ENOENT)
			return finding(cpath, line, "%s %s: %s", what, dir, strerror(errno));
		str_copy(parent, sizeof(parent), dir, strlen(dir));
		do {
			slash = strrchr(parent, '/');
			if (slash && slash != parent)
				*slash = '\0';
			else if (slash)
				slash[1] = '\0';
		} while (slash && slash != parent &&
			 stat(parent, &st) != 0 && errno == ENOENT);
		if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
			return finding(cpath, line, "%s %s: missing, and start-up cannot "
				       "create it: %s does not exist (mkdir -p %s)",
				       what, dir, parent, dir);
		/* start-up creates it, owned by run_as, who must reach it */
		if (w->name && !can(parent, w, X_OK, at, &st))
			return finding(cpath, line, "%s %s: missing; start-up would "
				       "create it, but %s could not reach it (%s: owner "
				       "uid %u, mode %04o): chmod o+x %s", what, dir,
				       w->name, at, (unsigned)st.st_uid,
				       (unsigned)(st.st_mode & 07777), at);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return finding(cpath, line, "%s %s: not a directory", what, dir);
	if (can(dir, w, W_OK | X_OK, at, &st))
		return 0;
	/* Start-up as root gives spool_dir to run_as (spool_prepare):
	 * only the directories above it are then in the way. */
	if (shaped && w->name && geteuid() == 0 && strcmp(at, dir) == 0 &&
	    lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
		dprintf(2, "postie: %s:%d: note: %s %s: owner uid %u, mode %04o: "
			"start-up gives it to %s (mode %04o)\n", cpath, line, what,
			dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
			w->name, shaped);
		return 0;
	}
	/* A shared directory its group may write (Debian's root:mail 2775
	 * /var/mail) is for run_as to join, not to take over. */
	if (w->name && st.st_gid != w->gid && (st.st_mode & 0030) == 0030)
		return finding(cpath, line, "%s %s: not writable by %s (%s: owner uid "
			       "%u, group %u, mode %04o): every message would fail; "
			       "make gid %u %s's primary group (usermod -g %u %s: "
			       "the daemon keeps no other group)", what, dir,
			       w->name, at, (unsigned)st.st_uid, (unsigned)st.st_gid,
			       (unsigned)(st.st_mode & 07777), (unsigned)st.st_gid,
			       w->name, (unsigned)st.st_gid, w->name);
	return finding(cpath, line, "%s %s: not writable by %s (%s: owner uid "
		       "%u, mode %04o): every message would fail; chown %s %s",
		       what, dir, who_name(w), at, (unsigned)st.st_uid,
		       (unsigned)(st.st_mode & 07777), w->name ? w->name : "USER", at);
}

/* A file the daemon reads again on SIGHUP, after dropping to run_as. */
static int check_readable(const char *cpath, int line, const char *what,
			  const char *file, const struct who *w)
{
	char at[CONF_PATH_MAX];
	struct stat st;

	if (!file[0])
		return 0;
	if (stat(file, &st) != 0)
		return finding(cpath, line, "%s %s: %s", what, file, strerror(errno));
	if (!can(file, w, R_OK, at, &st))
		return finding(cpath, line, "%s %s: not readable by %s (%s: owner uid "
			       "%u, mode %04o): start-up reads it as root, but every "
			       "reload (SIGHUP) would fail; chgrp %s %s and chmod g+%s %s",
			       what, file, who_name(w), at, (unsigned)st.st_uid,
			       (unsigned)(st.st_mode & 07777), w->name ? w->name : "GROUP",
			       at, strcmp(at, file) == 0 ? "r" : "x", at);
	return 0;
}

/* A password file every local user can read: a warning, not a finding
 * (it works, but the password is not a secret). */
/* A secret (the smarthost password, the users' hashes, which a local
 * user could crack offline) readable by everybody: a warning. */
static void check_private(const char *cpath, int line, const char *what,
			  const char *file)
{
	struct stat st;

	if (file[0] && stat(file, &st) == 0 && (st.st_mode & 0004))
		dprintf(2, "postie: %s:%d: warning: %s %s: readable "
			"by every local user (mode %04o): chmod o-rwx %s\n", cpath,
			line, what, file, (unsigned)(st.st_mode & 07777), file);
}

/* The spool's own directories: start-up refuses a symlink or anything
 * else in their place (the run_as user owns the spool and could put one
 * there to make root chown what it points at). */
static int check_spool_parts(const char *cpath, int line, const char *spool)
{
	static const char *const parts[] = { "maildrop", "queue", "tmp", "bad" };
	char p[CONF_PATH_MAX + 16];
	struct stat st;
	int n = 0;

	for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
		snprintf(p, sizeof(p), "%s/%s", spool, parts[i]);
		if (lstat(p, &st) != 0 || S_ISDIR(st.st_mode))
			continue;
		n += finding(cpath, line, "spool_dir: %s is %s, not a directory: "
			     "start-up refuses it (move it away; the daemon makes "
			     "it)", p, S_ISLNK(st.st_mode) ? "a symlink" :
			     "something else");
	}
	return n;
}

/* Is the postie named by spool_dir/postie.pid alive? Its pid, or 0. */
static long running_daemon(const char *spool)
{
	char path[CONF_PATH_MAX + 16], buf[32];
	long pid = 0;

	snprintf(path, sizeof(path), "%s/postie.pid", spool);
	if (fdio_read_head(path, buf, sizeof(buf)) > 0)
		pid = strtol(buf, NULL, 10);
	return pid > 1 && pid != (long)getpid() && kill((pid_t)pid, 0) == 0 ? pid : 0;
}

/* An address in use is a note, not a finding: -t runs beside the daemon
 * it checks (before a reload or a restart), which holds its ports. */
static int check_listen(const struct conf *c, const char *cpath, int i)
{
	int fd = net_listen(&c->listen[i].addr), e = errno;
	long pid;

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (e == EADDRINUSE) {
		pid = running_daemon(c->spool_dir);
		dprintf(2, "postie: %s:%d: note: listen %s: in use now", cpath,
			c->listen_line[i], c->listen[i].text);
		if (pid)
			dprintf(2, " (by the running postie, pid %ld)\n", pid);
		else
			dprintf(2, ": start-up fails unless it is free by then\n");
		return 0;
	}
	return finding(cpath, c->listen_line[i], "listen %s: cannot bind: %s%s",
		       c->listen[i].text, strerror(e),
		       e == EACCES ? " (ports below 1024 need root)" :
		       e == EADDRNOTAVAIL ? " (no such address on this machine)" : "");
}

int conf_check(const struct conf *c, const char *path)
{
	struct who w = { geteuid(), getegid(), NULL };
	char sys[65] = "";
	int n = 0;

	if (c->run_as[0]) {
		struct passwd *pw = getpwnam(c->run_as);

		if (!pw)
			return finding(path, c->run_as_line, "run_as %s: no such user "
				       "(adduser --system %s)", c->run_as, c->run_as);
		w.uid = pw->pw_uid;
		w.gid = pw->pw_gid;
		w.name = c->run_as;
	}
	n += check_readable(path, 0, "configuration", path, &w);
	n += check_dir(path, c->spool_dir_line, "spool_dir", c->spool_dir,
			CONF_SPOOL_DIR_MODE, &w);
	n += check_spool_parts(path, c->spool_dir_line, c->spool_dir);
	if (CONFIG_MAILBOXES) {
		n += check_dir(path, c->mail_dir_line, "mail_dir", c->mail_dir, 0, &w);
		n += check_readable(path, c->users_line, "users", c->users, &w);
	}
	if (CONFIG_AUTH)                /* hashes only where logins are */
		check_private(path, c->users_line, "users", c->users);
	if (CONFIG_ALIASES)
		n += check_readable(path, c->aliases_line, "aliases", c->aliases, &w);
	if (CONFIG_TLS_SERVER) {
		n += check_readable(path, c->tls_line, "tls_cert", c->tls_cert, &w);
		n += check_readable(path, c->tls_key_line, "tls_key", c->tls_key, &w);
	}
	if (CONFIG_RELAY && c->smarthost[0]) {
		n += check_readable(path, c->secret_line, "smarthost_auth",
				    c->smarthost_secret, &w);
		check_private(path, c->secret_line, "smarthost_auth",
			      c->smarthost_secret);
		if (CONFIG_TLS && c->smarthost_tls != SMARTHOST_PLAIN && c->smarthost_verify)
			n += check_readable(path, c->ca_file_line, "ca_file", c->ca_file, &w);
	}
	/* localhost in place of a system host name that is no domain. */
	if (strcmp(c->hostname, "localhost") == 0 &&
	    (gethostname(sys, sizeof(sys) - 1) != 0 || !valid_domain(sys)))
		dprintf(2, "postie: %s: warning: the system's host name '%s' is no "
			"valid domain name, so postie uses localhost (mail leaves as "
			"root@localhost); add 'hostname NAME'\n", path, sys);
	if (CONFIG_RELAY && !CONFIG_DNS && !c->smarthost[0])
		dprintf(2, "postie: %s: warning: no smarthost, and this build has no "
			"DNS (CONFIG_DNS) to find other domains' mail servers: mail "
			"to them bounces; add 'smarthost HOST:PORT tls'\n", path);
	for (int i = 0; CONFIG_LISTEN && i < c->nlisten; i++) {
		n += check_listen(c, path, i);
		/* Every port but smtp wants a login first (a build without
		 * TLS has only smtp). */
		if (CONFIG_TLS && c->listen[i].kind != LISTEN_SMTP && !c->users[0])
			dprintf(2, "postie: %s:%d: warning: listen %s %s: no 'users' "
				"file, so nobody can log in: no mail is sent or read on "
				"this port; add 'users FILE' and `postie user add NAME`\n",
				path, c->listen_line[i], conf_service_name(c->listen[i].kind),
				c->listen[i].text);
	}
	return n;
}
