/* libFuzzer: the whole POP3 server state machine. Each input is what a
 * client sends on one connection (socketpair), driven through the real
 * loop, connection slot, index and mbox rewrite in a scratch directory.
 * User alice has password "pw"; her mailbox is reset for every input. */
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
#include "proto/pop3.h"
#include "store/passwd.h"
#include "store/users.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static char dir[128];
static uint32_t peer_no;

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
	char path[256], err[512], text[1024], hash[160];

	snprintf(dir, sizeof(dir), "/tmp/postie-fuzz-pop3-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	if (passwd_make("pw", 2, hash, sizeof(hash)) != 0)
		abort();
	snprintf(text, sizeof(text), "alice:%s\nbob:%s\n", hash, hash);
	put("users", text);
	snprintf(text, sizeof(text),
		 "hostname fuzz.test\nlisten pop3 127.0.0.1:1\nusers %s/users\n"
		 "mail_dir %s/mail\nspool_dir %s/spool\nlocal_domains test.lan\n"
		 "plaintext_auth_networks 10.0.0.0/8\n", dir, dir, dir);
	put("postie.conf", text);
	snprintf(path, sizeof(path), "%s/postie.conf", dir);
	conf = conf_load(path, err, sizeof(err));
	if (!conf)
		abort();
	users = users_load(conf->users, err, sizeof(err));
	if (!users)
		abort();
	snprintf(path, sizeof(path), "%s/mail", dir);
	mkdir(path, 0700);
	passwd_cache_init();
	log_set_level(0);
	loop_init();
	conn_init(4);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct sockaddr_storage peer;
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
	char sink[4096];
	int sv[2];
	size_t off = 0;

	if (!dir[0])
		setup();
	if (size > 16384)
		return 0;
	put("mail/alice", "From a Sat Jan  1 00:00:00 2000\nSubject: one\n\n"
	    ">From x\n.dot\n\nFrom b Sat Jan  1 00:00:00 2000\nSubject: two\n\n"
	    "body\n\n");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return 0;
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	/* A new address each time: failed logins do not pile up into a ban. */
	sin->sin_addr.s_addr = htonl(0x0a000000 | (++peer_no & 0xffffff));
	if (!conn_open(sv[0], &peer, sizeof(*sin), LISTEN_POP3, &pop3_ops, 0)) {
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
	return 0;
}
