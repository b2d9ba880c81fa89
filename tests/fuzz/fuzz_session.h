/* Shared by the whole-session fuzzers (fuzz_smtp_session, fuzz_pop3,
 * fuzz_imap_session): a scratch directory with a generated configuration,
 * and one client connection driven through the real loop over a
 * socketpair; also used by the file-parser fuzzers for their scratch
 * files. Header-only: each fuzzer is one translation unit. */
#ifndef FUZZ_SESSION_H
#define FUZZ_SESSION_H
#include <ftw.h>
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
#include "store/users.h"

static char fz_dir[128];

/* Writes fz_dir/name. */
static inline void fz_put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fz_dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

/* Writes len bytes to fz_dir/name; returns its path (static buffer). */
static inline const char *fz_write(const char *name, const void *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fz_dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	if (len && fwrite(data, 1, len, f) != len)
		abort();
	fclose(f);
	return path;
}

/* Makes /tmp/postie-fuzz-TAG-XXXXXX (and its mail/) as fz_dir. */
static inline void fz_mkdir(const char *tag)
{
	char path[256];

	snprintf(fz_dir, sizeof(fz_dir), "/tmp/postie-fuzz-%s-XXXXXX", tag);
	if (!mkdtemp(fz_dir))
		abort();
	snprintf(path, sizeof(path), "%s/mail", fz_dir);
	mkdir(path, 0700);
}

/* Writes postie.conf (conf_text), loads it and the users file it names,
 * and starts the loop and 4 connection slots. */
static inline void fz_start(const char *conf_text)
{
	char path[256], err[512];

	fz_put("postie.conf", conf_text);
	snprintf(path, sizeof(path), "%s/postie.conf", fz_dir);
	conf = conf_load(path, err, sizeof(err));
	if (!conf)
		abort();
	users = users_load(conf->users, err, sizeof(err));
	if (!users)
		abort();
	log_set_level(0);
	loop_init();
	conn_init(4);
}

static inline int fz_rm_one(const char *p, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(p);
	return 0;
}

/* Removes fz_dir/rel and everything under it. */
static inline void fz_rm_tree(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", fz_dir, rel);
	nftw(path, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* One connection of LISTEN kind from IPv4 address peer_ip: the input is
 * written as fast as the server takes it, then the write side is shut;
 * at most 2000 loop steps, then every connection is closed. */
static inline void fz_session(const unsigned char *data, size_t size, int kind,
		       const struct proto_ops *ops, uint32_t peer_ip)
{
	struct sockaddr_storage peer;
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
	char sink[4096];
	int sv[2];
	size_t off = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
		return;
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(peer_ip);
	if (!conn_open(sv[0], &peer, sizeof(*sin), kind, ops, 0)) {
		close(sv[1]);
		return;
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
}
#endif
