/* conf — the configuration file: one directive per line, '#' comments,
 * blank-separated values. Errors name file, line and cause. A directive of
 * a feature this build lacks is an error naming the missing option. */
#ifndef POSTIE_CONF_H
#define POSTIE_CONF_H

#include <stdint.h>

#include "core/net.h"

#define CONF_MAX_DOMAINS 16
#define CONF_MAX_NETS 16
#define CONF_PATH_MAX 256
/* The mode start-up gives spool_dir (store/spool.h says why). */
#define CONF_SPOOL_DIR_MODE 0711

enum { SMARTHOST_PLAIN, SMARTHOST_STARTTLS, SMARTHOST_TLS };

enum listen_kind {
	LISTEN_SMTP, LISTEN_SMTPS, LISTEN_SUBMISSION, LISTEN_POP3, LISTEN_POP3S,
	LISTEN_IMAP, LISTEN_IMAPS, LISTEN_KIND_COUNT
};

struct conf_listen {
	enum listen_kind kind;
	struct net_addr addr;
	char text[NET_ADDRSTR];
};

struct conf {
	char hostname[256];
	struct conf_listen listen[CONFIG_MAX_LISTENERS];
	int nlisten;
	char users[CONF_PATH_MAX];
	char aliases[CONF_PATH_MAX];
	char mail_dir[CONF_PATH_MAX];
	char spool_dir[CONF_PATH_MAX];
	char local_domains[CONF_MAX_DOMAINS][256];
	int nlocal_domains;
	uint64_t max_message_size;
	int max_connections;
	int log_stall_ms;               /* log loop passes this long; 0: none */
	int max_connections_per_ip;     /* inbound, per IPv4 address or IPv6 /64 */
	char run_as[64];
	char tls_cert[CONF_PATH_MAX];
	char tls_key[CONF_PATH_MAX];
	int max_tls_sessions;
	struct net_cidr plain_auth_nets[CONF_MAX_NETS];
	int nplain_auth_nets;
	int sender_login_check;
	struct net_cidr relay_nets[CONF_MAX_NETS];
	int nrelay_nets;
	char smarthost[256];            /* host name or address; "" = MX */
	int smarthost_port;
	int smarthost_tls;              /* SMARTHOST_PLAIN / _STARTTLS / _TLS */
	char smarthost_name[256];       /* TLS name (SNI, certificate) */
	char smarthost_user[256];
	char smarthost_secret[CONF_PATH_MAX];
	int smarthost_cleartext_ok;     /* smarthost_auth ... cleartext */
	int smarthost_verify;           /* check certificate and name */
	char ca_file[CONF_PATH_MAX];
	char dns_server[NET_ADDRSTR];
	int relay_port;
	uint64_t queue_lifetime;        /* seconds */
	uint64_t retry_min, retry_max;  /* seconds, doubled per attempt */
	uint64_t delay_warning;         /* seconds; 0: no delay warnings */
	char masquerade[256];           /* user@domain for local senders */
	int smarthost_line;
	/* Where file directives were given, for errors about their files. */
	int users_line, aliases_line, tls_line, tls_key_line;
	int mail_dir_line, spool_dir_line, run_as_line, ca_file_line, secret_line;
	int listen_line[CONFIG_MAX_LISTENERS];
	int log_syslog;
};

/* The configuration in force. Replaced whole on reload; never hold
 * pointers into it across loop passes. */
extern struct conf *conf;

/* Parses path into a new conf. On error returns NULL and writes
 * "FILE:LINE: cause" into err. */
struct conf *conf_load(const char *path, char *err, size_t errlen);
void conf_free(struct conf *c);
/* What start-up and later reloads would run into beyond the syntax
 * (`postie -t`): mail_dir and spool_dir usable (or creatable) by the
 * run_as user, the files reloads read (users, aliases, certificate, key,
 * smarthost secret, CA file) readable by that user, listen addresses that
 * can be bound. Each finding goes to stderr as "PATH:LINE: cause; what to
 * do"; returns how many there were. */
int conf_check(const struct conf *c, const char *path);
/* The `listen` name of a kind ("smtp", "submission", "imaps"...): what
 * logs call the service, as the operator configured it. */
const char *conf_service_name(int kind);
/* Domain (any case) is one of local_domains. */
int conf_is_local_domain(const struct conf *c, const char *d, size_t len);

#endif
