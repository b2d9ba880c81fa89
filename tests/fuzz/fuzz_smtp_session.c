/* libFuzzer: the whole SMTP server state machine. Each input is what a
 * client sends on one connection (socketpair), driven through the real
 * loop, connection slot and mbox delivery into a scratch directory. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"
#include "proto/smtp_in.h"
#include "store/aliases.h"
#include "store/spool.h"
#include "store/users.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static char dir[128];

static void put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	char path[256], err[512], text[1024];

	snprintf(dir, sizeof(dir), "/tmp/postie-fuzz-smtp-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	put("users", "demo:\nbob:\n");
	put("aliases", "postmaster: demo\nteam: demo, bob\n");
	snprintf(text, sizeof(text),
		 "hostname fuzz.test\nlisten smtp 127.0.0.1:1\nusers %s/users\n"
		 "%s%s/aliases\nmail_dir %s/mail\nspool_dir %s/spool\n"
		 "local_domains test.lan\nmax_message_size 64K\n", dir,
		 CONFIG_ALIASES ? "aliases " : "# ", dir, dir, dir);
	put("postie.conf", text);
	snprintf(path, sizeof(path), "%s/postie.conf", dir);
	conf = conf_load(path, err, sizeof(err));
	if (!conf)
		abort();
	users = users_load(conf->users, err, sizeof(err));
	if (CONFIG_ALIASES)
		aliases = aliases_load(conf->aliases, conf, users, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/mail", dir);
	mkdir(path, 0700);
	spool_init(conf->spool_dir);
	log_set_level(0);
	loop_init();
	conn_init(4);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct sockaddr_storage peer;
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
	char sink[4096], path[256];
	int sv[2];
	size_t off = 0;

	if (!dir[0])
		setup();
	if (size > 32768)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return 0;
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0x7f000001);
	if (!conn_open(sv[0], &peer, sizeof(*sin), LISTEN_SMTP, &smtpin_ops, 0)) {
		close(sv[1]);
		return 0;
	}
	for (int step = 0; step < 2000 && conn_count() > 0; step++) {
		if (off < size) {
			ssize_t n = write(sv[1], data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				shutdown(sv[1], SHUT_WR);
		} else if (size == 0 && step == 0) {
			shutdown(sv[1], SHUT_WR);
		}
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
		loop_step(0);
	}
	conn_close_all("fuzz done");
	close(sv[1]);
	snprintf(path, sizeof(path), "%s/mail/demo", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mail/bob", dir);
	unlink(path);
	return 0;
}
