/* mbox quoting, From_ line, locked append with rollback; config parser;
 * network helpers; aliases. Files go to a fresh directory under TMPDIR. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/net.h"
#include "core/util.h"
#include "store/aliases.h"
#include "store/mbox.h"
#include "store/qstate.h"
#include "store/users.h"
#include "unit.h"

/* `postie passwd` of "demo" (the demo user's password). */
#define DEMO_HASH "$6$postiedemo$aTkRwSdT0noqDF8KyJcMkKran4tk.iz9uaHyqARkdG7KsyDaSADWvi9anN/uaaAwsYwWc2t5dn6NDCM4sndYx0"

static char dir[256];

static const char *tmpdir(void)
{
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/postie-unit-XXXXXX", t ? t : "/tmp");
		if (!mkdtemp(dir))
			abort();
	}
	return dir;
}

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir(), name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static size_t read_file(const char *name, char *buf, size_t n)
{
	char path[512];
	FILE *f;
	size_t got;

	snprintf(path, sizeof(path), "%s/%s", tmpdir(), name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	fclose(f);
	return got;
}

/* Quotes in chunks of `chunk` bytes to prove state carries across. */
static void quote_run(const char *in, size_t chunk, char *out)
{
	struct mbox_quote q;
	size_t o = 0, len = strlen(in);

	mbox_quote_init(&q);
	for (size_t i = 0; i < len; i += chunk) {
		size_t n = len - i < chunk ? len - i : chunk;
		o += mbox_quote(&q, in + i, n, out + o);
	}
	o += mbox_quote_end(&q, out + o);
	out[o] = '\0';
}

static const struct mbox_lock *woken;

static void woken_by(const struct mbox_lock *next)
{
	woken = next;
}

void test_mbox(void)
{
	static const struct { const char *in, *want; } t[] = {
		{ "From me\n", ">From me\n" },
		{ ">From me\n", ">>From me\n" },
		{ ">>>From x\n", ">>>>From x\n" },
		{ "a\nFrom b\nFrom\n", "a\n>From b\nFrom\n" },
		{ "From: header\n", "From: header\n" },
		{ " From x\n", " From x\n" },
		{ "x From y\n", "x From y\n" },
		{ ">>x\n>From", ">>x\n>From" },
		{ "Fro", "Fro" },
		{ "FromFrom \n", "FromFrom \n" },
		{ "\nFrom \n", "\n>From \n" },
	};
	char out[256], buf[4096];
	struct mbox_lock l;
	int src, rc;

	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		for (size_t chunk = 1; chunk <= 8; chunk++) {
			quote_run(t[i].in, chunk, out);
			CHECK(strcmp(out, t[i].want) == 0, "case %zu chunk %zu: %s", i,
			      chunk, out);
		}
	mbox_from_line(out, sizeof(out), "a b@x", 0);
	CHECK(strcmp(out, "From a_b@x Thu Jan  1 00:00:00 1970\n") == 0, "from: %s", out);
	mbox_from_line(out, sizeof(out), "", 0);
	CHECK(strncmp(out, "From MAILER-DAEMON ", 19) == 0, "null sender: %s", out);

	/* Append twice, with quoting, into a new mbox. */
	write_file("src", "Subject: t\n\nFrom here\nbody");
	snprintf(buf, sizeof(buf), "%s/src", tmpdir());
	src = open(buf, O_RDONLY);
	rc = mbox_lock(tmpdir(), "box", &l);
	CHECK(rc == MBOX_OK, "lock new mbox: %d", rc);
	CHECK(mbox_append_fd(&l, "s@x", 0, src, 0, 26) == MBOX_OK, "append");
	mbox_unlock(&l);
	rc = mbox_lock(tmpdir(), "box", &l);
	CHECK(rc == MBOX_OK && mbox_append_fd(&l, "", 0, src, 12, 14) == MBOX_OK,
	      "append 2");
	mbox_unlock(&l);
	read_file("box", buf, sizeof(buf));
	CHECK(strcmp(buf, "From s@x Thu Jan  1 00:00:00 1970\nSubject: t\n\n>From here\n"
		     "body\n\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 1970\n>From here\n"
		     "body\n\n") == 0, "mbox content:\n%s", buf);

	/* A quoted append in steps of any size gives the same bytes as one
	 * in a single call ("From here" quoted across step boundaries); the
	 * fsync is a call of its own after the last bytes. */
	for (size_t step = 1; step <= 7; step += 3) {
		struct mbox_append a;
		int calls = 0;
		snprintf(buf, sizeof(buf), "%s/box3", tmpdir());
		unlink(buf);
		rc = mbox_lock(tmpdir(), "box3", &l);
		mbox_append_begin(&a);
		while (rc == MBOX_OK || rc == MBOX_AGAIN) {
			rc = mbox_append_step(&l, &a, "s@x", 0, src, 0, 26, step);
			if (rc == MBOX_OK || ++calls > 100)
				break;
		}
		mbox_unlock(&l);
		read_file("box3", out, sizeof(out));
		CHECK(rc == MBOX_OK && calls == (int)((26 + step - 1) / step) &&
		      strcmp(out, "From s@x Thu Jan  1 00:00:00 1970\nSubject: t\n\n"
			     ">From here\nbody\n\n") == 0, "step %zu: rc %d, %d calls:\n%s",
		      step, rc, calls, out);
	}

	/* Raw copies in steps of any size give the same bytes: the first
	 * message (From_ line through ">From here") into box2, 1..9 bytes a call,
	 * each followed by the separator. */
	for (size_t step = 1; step <= 9; step += 4) {
		int bfd, calls = 0;
		off_t done = 0;
		snprintf(buf, sizeof(buf), "%s/box", tmpdir());
		bfd = open(buf, O_RDONLY);
		snprintf(buf, sizeof(buf), "%s/box2", tmpdir());
		unlink(buf);
		rc = mbox_lock(tmpdir(), "box2", &l);
		while (rc == MBOX_OK || rc == MBOX_AGAIN) {
			rc = mbox_append_raw(&l, bfd, 0, 57, &done, step);
			if (++calls > 100)
				break;
			if (rc == MBOX_OK && done == 57)
				break;
		}
		CHECK(rc == MBOX_OK && calls == (int)((57 + step - 1) / step),
		      "step %zu: rc %d after %d calls", step, rc, calls);
		done = 0;
		CHECK(mbox_append_raw(&l, bfd, 0, 0, &done, 10) == MBOX_OK, "empty");
		mbox_unlock(&l);
		close(bfd);
		read_file("box2", buf, sizeof(buf));
		CHECK(strcmp(buf, "From s@x Thu Jan  1 00:00:00 1970\nSubject: t\n\n"
			     ">From here\n\n\n") == 0, "step %zu:\n%s", step, buf);
	}

	/* Waiters queue: first come, first served, and the head hears when
	 * the holder gives the lock back. */
	{
		struct mbox_lock h, w1, w2, w3;
		mbox_on_lock_free(woken_by);
		CHECK(mbox_lock(tmpdir(), "box", &h) == MBOX_OK, "holder");
		CHECK(mbox_lock_wait(tmpdir(), "box", &w1) == MBOX_BUSY, "w1 waits");
		CHECK(mbox_lock_wait(tmpdir(), "box", &w2) == MBOX_BUSY, "w2 waits");
		CHECK(mbox_lock_stalled_ms(&w2) >= 0 && mbox_lock_stalled_ms(&h) == -1,
		      "only waiters stall");
		woken = NULL;
		mbox_unlock(&h);
		CHECK(woken == &w1, "the head is woken");
		CHECK(mbox_lock_wait(tmpdir(), "box", &w2) == MBOX_BUSY,
		      "w2 does not jump w1");
		CHECK(mbox_lock_wait(tmpdir(), "box2", &w3) == MBOX_OK,
		      "another mailbox is its own queue");
		mbox_unlock(&w3);
		CHECK(mbox_lock_wait(tmpdir(), "box", &w1) == MBOX_OK, "w1 takes it");
		CHECK(mbox_lock_stalled_ms(&w1) == -1, "w1 left the queue");
		CHECK(mbox_lock_wait(tmpdir(), "box", &w3) == MBOX_BUSY, "w3 waits");
		woken = NULL;
		mbox_unlock(&w1);
		CHECK(woken == &w2, "then w2");
		mbox_lock_cancel(&w2);
		CHECK(woken == &w3, "w2 gave up: w3 is next");
		CHECK(mbox_lock_wait(tmpdir(), "box", &w3) == MBOX_OK, "w3 takes it");
		mbox_unlock(&w3);
		mbox_on_lock_free(NULL);
	}

	/* Busy: a dotlock held by someone else. */
	write_file("box.lock", "1\n");
	CHECK(mbox_lock(tmpdir(), "box", &l) == MBOX_BUSY, "dotlock busy");
	snprintf(buf, sizeof(buf), "%s/box.lock", tmpdir());
	unlink(buf);
	/* Refused: a symlink, and a file with two links. */
	snprintf(buf, sizeof(buf), "%s/box", tmpdir());
	snprintf(out, sizeof(out), "%s/link", tmpdir());
	CHECK(symlink(buf, out) == 0, "symlink");
	CHECK(mbox_lock(tmpdir(), "link", &l) == MBOX_ERR, "symlink refused");
	snprintf(out, sizeof(out), "%s/hard", tmpdir());
	CHECK(link(buf, out) == 0, "link");
	CHECK(mbox_lock(tmpdir(), "hard", &l) == MBOX_ERR, "hard link refused");
	CHECK(mbox_lock(tmpdir(), "box", &l) == MBOX_ERR, "original, now 2 links, refused");
	unlink(out);
	/* Failure rolls back: a source range past its end fails the copy. */
	struct stat before, after;
	stat(buf, &before);
	rc = mbox_lock(tmpdir(), "box", &l);
	CHECK(rc == MBOX_OK && mbox_append_fd(&l, "s@x", 0, src, 0, 5000) == MBOX_ERR,
	      "short source fails");
	mbox_unlock(&l);
	stat(buf, &after);
	CHECK(before.st_size == after.st_size, "rolled back to %lld, is %lld",
	      (long long)before.st_size, (long long)after.st_size);
	close(src);
}

void test_conf(void)
{
	static const struct { const char *text, *err; } t[] = {
		{ "hostname a.b\nlisten smtp 127.0.0.1:25\n", CONFIG_SMTP_SERVER ? NULL :
		  ":2: listen smtp: not in this build (needs CONFIG_SMTP_SERVER)" },
		{ "bogus 1\n", ":1: unknown directive 'bogus'" },
		{ "\n# c\nlisten smtp 127.0.0.1\n", CONFIG_SMTP_SERVER ?
		  ":3: listen: '127.0.0.1' is not" : ":3: listen smtp: not in this build" },
		{ "listen smtp 1.2.3.4:0\n", ":1: listen" },
		{ "listen smtp 1.2.3.4:65536\n", ":1: listen" },
		{ "listen pop9 1.2.3.4:1\n", ":1: listen: unknown service" },
		{ "max_message_size 10Q\n", ":1: max_message_size '10Q'" },
		{ "max_message_size 10\n", ":1: max_message_size" },
		{ "tls_cert /x\n", CONFIG_TLS_SERVER ? ":1: tls_cert and tls_key go together" :
		  ":1: tls_cert: not in this build (needs CONFIG_TLS" },
		{ "relay_networks 10.0.0.0/8\n", CONFIG_RELAY ? NULL : "needs CONFIG_RELAY" },
		{ "relay_networks 10.0.0.0/33\n", CONFIG_RELAY ? ":1: '10.0.0.0/33' is not" :
		  "needs CONFIG_RELAY" },
		{ "smarthost mail.example.net\n", CONFIG_RELAY ? ":1: smarthost: want HOST:PORT" :
		  "needs CONFIG_RELAY" },
		{ "queue_retry 1h 5m\n", CONFIG_RELAY ? ":1: queue_retry" : "needs CONFIG_RELAY" },
		/* A missing feature is named before its values are counted. */
		{ "smarthost_name\n", CONFIG_RELAY ? ":1: smarthost_name takes 1 value" :
		  ":1: smarthost_name: not in this build (needs CONFIG_RELAY)" },
		{ "hostname a..b\n", ":1: hostname 'a..b'" },
		{ "hostname a.b\nhostname c.d\n", ":2: hostname given twice" },
		{ "mail_dir relative\n", CONFIG_MAILBOXES ? ":1: 'relative' must be a path" :
		  ":1: mail_dir: not in this build (needs CONFIG_MAILBOXES)" },
		{ "users\n", CONFIG_MAILBOXES ? ":1: users takes 1 value" :
		  ":1: users: not in this build (needs CONFIG_MAILBOXES)" },
		{ "local_domains a.b c.d # comment\n", NULL },
		{ "max_connections 0\n", ":1: max_connections" },
		{ "log_stall_ms 0\nlog_stall_ms 5\n", ":2: log_stall_ms given twice" },
		{ "log_stall_ms 60001\n", ":1: log_stall_ms '60001': want 0..60000" },
		{ "log_stall_ms 20\n", NULL },
		{ "log syslog\n", CONFIG_SYSLOG ? NULL : "needs CONFIG_SYSLOG" },
	};
	char err[512], path[512];
	struct conf *c;

	snprintf(path, sizeof(path), "%s/postie.conf", tmpdir());
	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		write_file("postie.conf", t[i].text);
		err[0] = '\0';
		c = conf_load(path, err, sizeof(err));
		if (!t[i].err)
			CHECK(c != NULL, "case %zu: unexpected error %s", i, err);
		else
			CHECK(c == NULL && strstr(err, t[i].err) != NULL &&
			      strncmp(err, path, strlen(path)) == 0,
			      "case %zu: got '%s' want '%s'", i, err, t[i].err);
		if (c && strncmp(t[i].text, "local_domains", 13) == 0)
			CHECK(c->nlocal_domains == 3 && conf_is_local_domain(c, "C.D", 3) &&
			      conf_is_local_domain(c, "LocalHost", 9) &&
			      !conf_is_local_domain(c, "localhost.example", 17),
			      "local domains");
		conf_free(c);
	}
	c = conf_load("/nonexistent/postie.conf", err, sizeof(err));
	CHECK(c == NULL && strstr(err, "/nonexistent/postie.conf: ") == err, "%s", err);
}

/* Per-client limits count IPv4 addresses, IPv6 /64s, and IPv4-mapped
 * IPv6 as the IPv4 address. */
static int client_key_of(const char *text, uint8_t key[16])
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	return net_client_key((struct sockaddr *)&ss, key);
}

static void test_client_key(void)
{
	static const struct { const char *a, *b; int same; } cases[] = {
		{ "10.1.2.3", "10.1.2.3", 1 },
		{ "10.1.2.3", "10.1.2.4", 0 },
		{ "10.1.2.3", "::ffff:10.1.2.3", 1 },
		{ "::ffff:10.1.2.3", "::ffff:10.1.2.4", 0 },
		{ "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 1 },
		{ "2001:db8:1:2::1", "2001:db8:1:3::1", 0 },
		{ "2001:db8:1:2::1", "2001:db8:1:102::1", 0 },
		{ "::1", "::2", 1 },
		{ "0.0.0.1", "::1", 0 },
		{ "10.1.2.3", "a01:203::", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t ka[16], kb[16];
		int fa = client_key_of(cases[i].a, ka), fb = client_key_of(cases[i].b, kb);
		int same = fa == fb && memcmp(ka, kb, 16) == 0;
		CHECK(fa != 0 && fb != 0, "%s / %s: family", cases[i].a, cases[i].b);
		CHECK(same == cases[i].same, "%s / %s: same %d, want %d",
		      cases[i].a, cases[i].b, same, cases[i].same);
	}
}

void test_net(void)
{
	struct net_addr a;
	struct net_cidr c;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char buf[64];

	CHECK(net_parse_hostport("127.0.0.1:2525", &a) == 0, "v4");
	net_ntop((struct sockaddr *)&a.ss, buf, sizeof(buf), 1);
	CHECK(strcmp(buf, "127.0.0.1:2525") == 0, "%s", buf);
	CHECK(net_parse_hostport("[::1]:25", &a) == (CONFIG_IPV6 ? 0 : -2), "v6");
	CHECK(net_parse_hostport("::1:25", &a) != 0, "v6 without brackets");
	CHECK(net_parse_hostport("host.name:25", &a) != 0, "names are not addresses");
	CHECK(net_parse_cidr("192.168.1.0/24", &c) == 0, "cidr");
	inet_pton(AF_INET, "192.168.1.77", &sin.sin_addr);
	CHECK(net_cidr_match(&c, (struct sockaddr *)&sin), "in net");
	inet_pton(AF_INET, "192.168.2.1", &sin.sin_addr);
	CHECK(!net_cidr_match(&c, (struct sockaddr *)&sin), "not in net");
	CHECK(net_parse_cidr("10.0.0.0/33", &c) != 0, "bits > 32");
	CHECK(net_parse_cidr("10.0.0.0/8", &c) == 0, "cidr /8");
	/* IPv4-mapped IPv6 is matched as IPv4 after net_unmap. */
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof(*s6);
	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6->sin6_addr);
	CHECK(!net_cidr_match(&c, (struct sockaddr *)&ss), "mapped before unmap");
	net_unmap(&ss, &len);
	CHECK(ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in) &&
	      net_cidr_match(&c, (struct sockaddr *)&ss), "mapped after unmap");
	test_client_key();
}

static void collect(void *ctx, int user, const char *remote)
{
	char *s = ctx;
	char item[80];

	snprintf(item, sizeof(item), "%s%d%s", s[0] ? "," : "", user,
		 remote ? remote : "");
	strcat(s, item);
}

/* An alias may expand to at most QSTATE_TARGETS_MAX targets, the most
 * one queued message records: one more is refused at load. */
static void test_alias_too_big(const char *path, const struct conf *c,
			       const struct users *u)
{
	size_t size = 24 * (QSTATE_TARGETS_MAX + 2) + 64;
	char *text = malloc(size), err[512];
	struct buf b;
	struct aliases *a;

	CHECK(text != NULL, "malloc");
	for (int n = QSTATE_TARGETS_MAX; text && n <= QSTATE_TARGETS_MAX + 1; n++) {
		buf_init(&b, text, size);
		buf_printf(&b, "half: ");
		for (int i = 0; i < n / 2; i++)
			buf_printf(&b, "%sa%d@far.example", i ? ", " : "", i);
		buf_printf(&b, "\nbig: half");
		for (int i = n / 2; i < n; i++)
			buf_printf(&b, ", a%d@far.example", i);
		buf_printf(&b, "\n");
		buf_nul(&b);
		write_file("aliases", text);
		err[0] = '\0';
		a = aliases_load(path, c, u, err, sizeof(err));
		if (n == QSTATE_TARGETS_MAX)
			CHECK(a != NULL, "%d targets: %s", n, err);
		else
			CHECK(!a && strstr(err, ":2: alias 'big' expands to ") &&
			      strstr(err, "split it"), "%d targets: %s", n, err);
		aliases_free(a);
	}
	free(text);
}

void test_aliases(void)
{
	char err[512], path[512], upath[512], got[256];
	struct conf *c;
	struct users *u;
	struct aliases *a;

	if (!CONFIG_ALIASES)
		return;
	write_file("c.conf", "local_domains home.lan\n");
	snprintf(path, sizeof(path), "%s/c.conf", tmpdir());
	c = conf_load(path, err, sizeof(err));
	CHECK(c != NULL, "conf %s", err);
	if (!CONFIG_MAILBOXES) {
		/* A null client: no users, so an alias names addresses. */
		u = users_load("", err, sizeof(err));
		CHECK(u && u->n == 0, "no users");
		snprintf(path, sizeof(path), "%s/aliases", tmpdir());
		write_file("aliases", "root: admin@elsewhere.org\npostmaster: root\n");
		a = aliases_load(path, c, u, err, sizeof(err));
		got[0] = '\0';
		CHECK(a && aliases_expand(a, u, "postmaster", 10, collect, got) == 1 &&
		      strcmp(got, "-1admin@elsewhere.org") == 0, "null client: %s %s", err, got);
		aliases_free(a);
		write_file("aliases", "root: alice\n");
		a = aliases_load(path, c, u, err, sizeof(err));
		CHECK(!a && strstr(err, ":1: alias 'root': target 'alice' is neither a user "
				   "nor an alias (this build has no local mailboxes"), "%s", err);
		write_file("aliases", "root: me@localhost\n");
		a = aliases_load(path, c, u, err, sizeof(err));
		CHECK(!a && strstr(err, "target 'me' is neither") &&
		      strstr(err, "in a local domain (hostname, localhost, local_domains)"),
		      "%s", err);
		aliases_free(a);
		test_alias_too_big(path, c, u);
		users_free(u);
		conf_free(c);
		return;
	}
	write_file("users", "# users\nalice:" DEMO_HASH "\nBob:\n"
		   "carol:{SHA512-CRYPT}" DEMO_HASH ":1:1::/:/bin/sh\n");
	snprintf(upath, sizeof(upath), "%s/users", tmpdir());
	u = users_load(upath, err, sizeof(err));
	CHECK(u && u->n == 3, "users: %s", err);
	CHECK(users_find(u, "BOB", 3) >= 0 && users_find(u, "dave", 4) < 0, "find");
	write_file("aliases", "postmaster: alice\nteam: alice, bob,\n  carol\n"
		   "all: team, alice, root@elsewhere.org\nalice: alice, bob@home.lan\n");
	snprintf(path, sizeof(path), "%s/aliases", tmpdir());
	a = aliases_load(path, c, u, err, sizeof(err));
	CHECK(a != NULL, "aliases: %s", err);
	if (a) {
		got[0] = '\0';
		/* team's alice is itself an alias: alice, bob */
		CHECK(aliases_expand(a, u, "TEAM", 4, collect, got) == 4 &&
		      strcmp(got, "0,1,1,2") == 0, "team -> %s", got);
		got[0] = '\0';
		/* alice is an alias keeping a copy for the user alice */
		aliases_expand(a, u, "all", 3, collect, got);
		CHECK(strcmp(got, "0,1,1,2,0,1,-1root@elsewhere.org") == 0, "all -> %s", got);
		CHECK(aliases_expand(a, u, "nobody", 6, collect, got) == 0, "not an alias");
	}
	aliases_free(a);
	test_alias_too_big(path, c, u);
	static const struct { const char *text, *err; } bad[] = {
		{ "x: |/bin/sh\n", ":1: alias 'x': target '|/bin/sh' refused" },
		{ "x: /etc/passwd\n", "refused" },
		{ "x: :include:/etc/list\n", "refused" },
		{ "a: b\nb: a\n", ":2: alias 'b': target 'a' leads back to itself (a -> b -> a)" },
		{ "a: nosuch\n", ":1: alias 'a': target 'nosuch'" },
		{ "novalue\n", ":1: want 'name: target" },
		{ "a:\n", "has no target" },
		{ "a: alice\na: bob\n", "defined twice" },
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		write_file("aliases", bad[i].text);
		err[0] = '\0';
		a = aliases_load(path, c, u, err, sizeof(err));
		CHECK(a == NULL && strstr(err, bad[i].err), "bad %zu: %s", i, err);
		aliases_free(a);
	}
	/* fuzz_users/fuzz_aliases: an empty or comment-only file is an
	 * empty table (qsort was called on a NULL array, UB under UBSan). */
	static const char *const empty[] = { "", "# nothing\n\n" };
	for (size_t i = 0; i < ARRAY_LEN(empty); i++) {
		struct users *eu;

		write_file("aliases", empty[i]);
		a = aliases_load(path, c, u, err, sizeof(err));
		CHECK(a != NULL && aliases_expand(a, u, "x", 1, collect, got) == 0,
		      "empty aliases %zu: %s", i, err);
		aliases_free(a);
		write_file("users", empty[i]);
		eu = users_load(upath, err, sizeof(err));
		CHECK(eu != NULL && eu->n == 0 && users_find(eu, "a", 1) < 0,
		      "empty users %zu: %s", i, err);
		users_free(eu);
	}
	/* Hashes no login could match are refused at load, with the line. */
	static const struct { const char *file, *want; } badhash[] = {
		{ "a:\nb:$1$salt$qJH7.N4xYta3aEG/dfqo/0\n", "users:2: user 'b'" },
		{ "a:secret\n", "plaintext" },
		{ "a:{PLAIN}secret\n", "Dovecot scheme" },
		{ "a:{SHA256-CRYPT}" DEMO_HASH "\n", "users:1" },
		{ "a:$6$rounds=200000$s$x\n", "more than 100000" },
	};
	for (size_t i = 0; CONFIG_AUTH && i < ARRAY_LEN(badhash); i++) {
		struct users *bu;

		write_file("users", badhash[i].file);
		bu = users_load(upath, err, sizeof(err));
		CHECK(bu == NULL && strstr(err, badhash[i].want) &&
		      !strstr(err, "secret"), "bad hash %zu: %s", i, err);
		users_free(bu);
	}
	users_free(u);
	conf_free(c);
}
