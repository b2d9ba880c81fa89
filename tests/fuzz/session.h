/* session.h — shared by the libFuzzer targets that drive a whole server
 * session (POP3, IMAP, SMTP): a scratch directory with a users file
 * (alice and bob, password "pw") and a config, and one connection
 * through the real loop and connection slot over an in-memory socket
 * with a virtual clock (memsock.h); also the scratch files of the
 * file-parser targets (fz_mkdir, fz_write). Header-only: each fuzz
 * target is its own program. */
#ifndef POSTIE_FUZZ_SESSION_H
#define POSTIE_FUZZ_SESSION_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "memsock.h"
#include "store/passwd.h"
#include "store/users.h"

static char fz_dir[128];
static uint32_t fz_peer_no;
/* fz_session writes at most this many bytes per loop pass, so the server
 * sees the input split at every such boundary (a target may set it from
 * its input). */
static size_t fz_chunk = SIZE_MAX;
/* The bytes the server may send in one loop pass before its send would
 * block (the client reads them all between passes); SIZE_MAX: no limit.
 * A target may set it from its input, so replies that do not go out at
 * once (partial sends, output waiting for room) are reached too. */
static size_t fz_room = SIZE_MAX;

/* Writes len bytes to fz_dir/name; returns its path (static buffer).
 * open/write, not stdio: no buffer to allocate for every input (under
 * ASan each allocation costs fresh, filled pages). */
static inline const char *fz_write(const char *name, const void *data, size_t len)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fz_dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
		abort();
	close(fd);
	return path;
}

static inline void fz_put(const char *name, const char *text)
{
	fz_write(name, text, strlen(text));
}

/* Where scratch directories go: a tmpfs (/dev/shm) when there is one, so
 * the store's fsyncs cost nothing and a session target runs thousands of
 * inputs a second; FUZZ_TMPDIR overrides. */
static inline const char *fz_tmp_base(void)
{
	const char *d = getenv("FUZZ_TMPDIR");
	struct stat st;

	if (d && *d)
		return d;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		return "/dev/shm";
	return "/tmp";
}

static inline void fz_rm_tree(const char *rel);

/* At exit the scratch directory goes (a tmpfs holds it in RAM); after a
 * crash it stays, for a look. */
static inline void fz_cleanup(void)
{
	if (fz_dir[0])
		fz_rm_tree("");
}

/* Makes BASE/postie-fuzz-TAG-XXXXXX (and its mail/) as fz_dir. */
static inline void fz_mkdir(const char *tag)
{
	char path[256];

	/* The harness writes to sockets the server may have closed (after
	 * LOGOUT, QUIT, a protocol error): EPIPE, not a SIGPIPE that ends
	 * the run (the daemon ignores it the same way). */
	signal(SIGPIPE, SIG_IGN);
	snprintf(fz_dir, sizeof(fz_dir), "%s/postie-fuzz-%s-XXXXXX", fz_tmp_base(), tag);
	if (!mkdtemp(fz_dir))
		abort();
	atexit(fz_cleanup);
	snprintf(path, sizeof(path), "%s/mail", fz_dir);
	mkdir(path, 0700);
}

/* Writes postie.conf (conf_text), loads it and the users file it names,
 * and starts the loop and 4 connection slots. The store's fsyncs are
 * switched off (util_sync_off: nobody needs the scratch files after a
 * power cut), so an input costs only its work. */
static inline void fz_start(const char *conf_text)
{
	char path[256], err[512];

	util_sync_off = 1;
	fz_put("postie.conf", conf_text);
	snprintf(path, sizeof(path), "%s/postie.conf", fz_dir);
	conf = conf_load(path, err, sizeof(err));
	if (!conf)
		abort();
	users = users_load(conf->users, err, sizeof(err));
	if (!users)
		abort();
	passwd_cache_init();
	log_set_level(0);
	loop_init();
	conn_init(4);
}

/* listen: the config's listen line, e.g. "pop3 127.0.0.1:1"; extra: more
 * configuration lines ("" for none). */
static inline void fz_setup_with(const char *tag, const char *listen, const char *extra)
{
	char text[1024], hash[160];

	fz_mkdir(tag);
	/* The fewest rounds SHA-crypt allows: a failed login (no cache)
	 * costs a fifth of the default. */
	if (passwd_crypt("pw", 2, "$6$rounds=1000$fuzzfuzzfuzzfuzz", hash,
			 sizeof(hash)) != 0)
		abort();
	snprintf(text, sizeof(text), "alice:%s\nbob:%s\n", hash, hash);
	fz_put("users", text);
	snprintf(text, sizeof(text),
		 "hostname fuzz.test\nlisten %s\nusers %s/users\n"
		 "mail_dir %s/mail\nspool_dir %s/spool\nlocal_domains test.lan\n"
		 "plaintext_auth_networks 10.0.0.0/8\n%s", listen, fz_dir, fz_dir,
		 fz_dir, extra);
	fz_start(text);
}

static inline void fz_setup(const char *tag, const char *listen)
{
	fz_setup_with(tag, listen, "");
}

/* A non-blocking socket of type (SOCK_STREAM: listening) bound to
 * 127.0.0.1 on a free port, which *port gets. */
static inline int fz_loopback_socket(int type, int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 8) != 0) ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) != 0)
		abort();
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Removes what is in the directory dfd and then, when name is not NULL,
 * the directory itself from pfd; with getdents64 into a stack buffer,
 * not opendir (which allocates 32 KB for every directory). */
static inline void fz_rm_at(int pfd, const char *name, int dfd, int depth)
{
	char b[4096];
	long n;

	while (depth < 16 && (n = syscall(SYS_getdents64, dfd, b, sizeof(b))) > 0) {
		for (long off = 0; off < n;) {
			unsigned short reclen;
			unsigned char type;
			const char *d = b + off;
			memcpy(&reclen, d + 16, sizeof(reclen));
			type = (unsigned char)d[18];
			off += reclen;
			d += 19;
			if (!strcmp(d, ".") || !strcmp(d, ".."))
				continue;
			if (type == DT_DIR) {
				int c = openat(dfd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (c >= 0)
					fz_rm_at(dfd, d, c, depth + 1);
			} else {
				unlinkat(dfd, d, 0);
			}
		}
	}
	close(dfd);
	if (name)
		unlinkat(pfd, name, AT_REMOVEDIR);
}

/* Removes fz_dir/rel and everything under it. */
static inline void fz_rm_tree(const char *rel)
{
	char path[256];

	int fd;

	snprintf(path, sizeof(path), "%s/%s", fz_dir, rel);
	if (unlink(path) == 0)
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	fz_rm_at(-1, NULL, fd, 0);
	rmdir(path);
}

/* A snapshot of a small scratch tree (directories and files of at most
 * 2 KB), taken once and put back before every input: cheaper than the
 * dozens of mkdir, walks and fsyncs that made it (an IMAP first login
 * creating the special folders and the subscriptions). */
#define FZ_SNAP_MAX 48
static struct fz_snap_entry {
	char rel[160];
	int dir;
	size_t len;
	char data[2048];
} fz_snap[FZ_SNAP_MAX];
static int fz_snap_n;
static size_t fz_snap_base;     /* strlen(fz_dir) + 1 */
static char fz_snap_root[160];  /* what fz_snap_restore removes first */

static inline int fz_snap_one(const char *p, const struct stat *st, int flag,
			      struct FTW *ftw)
{
	struct fz_snap_entry *e;
	FILE *f;

	(void)st; (void)ftw;
	if (fz_snap_n >= FZ_SNAP_MAX || strlen(p) - fz_snap_base >= sizeof(e->rel))
		abort();
	e = &fz_snap[fz_snap_n++];
	snprintf(e->rel, sizeof(e->rel), "%s", p + fz_snap_base);
	e->dir = flag == FTW_D;
	e->len = 0;
	if (e->dir)
		return 0;
	f = fopen(p, "r");
	if (!f)
		abort();
	e->len = fread(e->data, 1, sizeof(e->data), f);
	if (!feof(f))
		abort();        /* too big for a snapshot */
	fclose(f);
	return 0;
}

/* Takes fz_dir/rel (a directory) and everything under it. */
static inline void fz_snap_take(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", fz_dir, rel);
	snprintf(fz_snap_root, sizeof(fz_snap_root), "%s", rel);
	fz_snap_base = strlen(fz_dir) + 1;
	fz_snap_n = 0;
	if (access(path, F_OK) == 0 && nftw(path, fz_snap_one, 16, FTW_PHYS) != 0)
		abort();
}

/* Puts the snapshot back (what is there is removed first). */
static inline void fz_snap_restore(void)
{
	char path[256];

	if (!fz_snap_root[0])
		abort();
	fz_rm_tree(fz_snap_root);
	for (int i = 0; i < fz_snap_n; i++) {
		snprintf(path, sizeof(path), "%s/%s", fz_dir, fz_snap[i].rel);
		if (fz_snap[i].dir) {
			if (mkdir(path, 0700) != 0)
				abort();
		} else {
			fz_write(fz_snap[i].rel, fz_snap[i].data, fz_snap[i].len);
		}
	}
}

/* 1 when data[0..size) holds word (lower case), in any case: whether an
 * input can log in at all, so the targets reset the store only before
 * an input that can reach it (nothing before login touches it). */
static inline int fz_has_word(const unsigned char *data, size_t size, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= size; i++) {
		size_t k = 0;
		while (k < n && (data[i + k] | 0x20) == word[k])
			k++;
		if (k == n)
			return 1;
	}
	return 0;
}

/* One loop pass. When nothing was ready, the virtual clock (ms_now_ms)
 * jumps to the next deadline if it is at most max_jump ms away (-1: any),
 * so login delays, lock retries and timeouts cost no real time. Returns
 * the watchers served, or -1 when nothing was ready and no deadline is
 * set within reach: nothing more happens without new input. */
static inline int fz_pass(int64_t max_jump)
{
	int64_t next, now;
	int served = loop_step(0);

	if (served > 0)
		return served;
	next = loop_next_deadline();
	now = now_ms();
	if (next < 0 || (max_jump >= 0 && next - now > max_jump))
		return -1;
	if (next > now)
		ms_now_ms += next - now;
	return 0;
}

/* A new connection from a new address (failed logins do not pile up
 * into a ban) over a memsock; its descriptor, or -1 when it was refused. */
static inline int fz_connect(int kind, const struct proto_ops *ops)
{
	struct sockaddr_storage peer;
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
	int fd = ms_open();

	if (fd < 0)
		abort();
	memset(&peer, 0, sizeof(peer));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0x0a000000 | (++fz_peer_no & 0xffffff));
	return conn_open(fd, &peer, sizeof(*sin), kind, ops, 0) ? fd : -1;
}

/* One connection: `pre` then data[0..size) as the client's bytes, at most
 * fz_chunk a loop pass, the answers thrown away (fz_room a pass), a
 * bounded number of loop passes; it ends early once all is sent and
 * nothing is left to happen. */
static inline void fz_session(int kind, const struct proto_ops *ops, const char *pre,
		       const unsigned char *data, size_t size)
{
	size_t off = 0, plen = strlen(pre);
	int idle = 0, fd = fz_connect(kind, ops);

	if (fd < 0) {
		conn_close_all("fuzz refused");
		return;
	}
	if (plen && ms_put(fd, pre, plen) != (long)plen)
		abort();
	for (int step = 0; step < 2000 && conn_count() > 0; step++) {
		if (off < size) {
			size_t want = size - off < fz_chunk ? size - off : fz_chunk;
			long n = ms_put(fd, data + off, want);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				ms_shut(fd);
		} else if (off == size && step == 0) {
			ms_shut(fd);
		}
		ms_drain(fd, fz_room);
		if (fz_pass(-1) >= 0)
			idle = 0;
		else if (off == size && ++idle > 2)
			break;
	}
	conn_close_all("fuzz done");
}

#endif
