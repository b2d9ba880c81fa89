/* Relay parts without sockets: the RFC 3464 bounce writer (structure,
 * fields, sanitizing of hostile values, the quoted header cap) and the
 * queue state file (store/qstate: round trip, hostile lines, the older
 * format, save and load). Files go to a fresh directory under TMPDIR. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/util.h"
#include "relay/bounce.h"
#include "store/maildrop.h"
#include "store/qstate.h"
#include "unit.h"

static char dir[256];

static int tmpfile_fd(const char *name)
{
	char path[512];

	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/postie-relay-XXXXXX", t ? t : "/tmp");
		if (!mkdtemp(dir))
			abort();
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
}

/* The original: spool envelope, then the message. */
static int make_src(const char *name, const char *msg, long long *off,
		    long long *len)
{
	static const char env[] = "F alice@example.org\nR bob@example.net\nD\n";
	int fd = tmpfile_fd(name);

	if (write(fd, env, strlen(env)) != (ssize_t)strlen(env) ||
	    write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg))
		abort();
	*off = (long long)strlen(env);
	*len = (long long)strlen(msg);
	return fd;
}

static char out[96 * 1024];

static size_t run(const char *name, struct bounce_msg *m, int *rc)
{
	int fd = tmpfile_fd(name);
	ssize_t n;

	*rc = bounce_write(fd, m);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	if (n < 0)
		n = 0;
	out[n] = '\0';
	return (size_t)n;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* The boundary from the Content-Type field, into b. */
static int boundary(char *b, size_t n)
{
	const char *p = strstr(out, "boundary=\"");
	const char *e;

	if (!p)
		return -1;
	p += 10;
	e = strchr(p, '"');
	if (!e || (size_t)(e - p) >= n)
		return -1;
	memcpy(b, p, (size_t)(e - p));
	b[e - p] = '\0';
	return 0;
}

static void test_bounce_structure(void)
{
	const char *msg = "From: Alice <alice@example.org>\nTo: bob@example.net\n"
		"Subject: report\n\nSECRET BODY\n";
	struct bounce_rcpt r[] = {
		{ "bob@example.net", "5.1.1", "550 5.1.1 <bob@example.net>: "
		  "User unknown", "mx.example.net", 0 },
		{ "carol@example.net", "4.4.7", "451 4.4.7 message expired "
		  "after 5 days", NULL, 0 },
	};
	struct bounce_msg m = {
		.hostname = "mail.test.lan", .sender = "alice@example.org",
		.orig_id = "1700000000.1.2.3", .arrival = 1700000000, .r = r,
		.n = 2,
	};
	char b[128], line[256];
	int rc;

	m.src_fd = make_src("src1", msg, &m.data_off, &m.data_len);
	run("out1", &m, &rc);
	CHECK(rc == 0, "bounce_write failed");
	CHECK(strncmp(out, "F \nR alice@example.org\nD\n", 25) == 0,
	      "envelope: %.40s", out);
	CHECK(strstr(out, "\nFrom: Mail Delivery System <MAILER-DAEMON@mail.test.lan>\n"),
	      "From");
	CHECK(strstr(out, "\nTo: <alice@example.org>\n"), "To");
	CHECK(strstr(out, "\nSubject: Undelivered Mail Returned to Sender\n"),
	      "Subject");
	CHECK(strstr(out, "\nAuto-Submitted: auto-replied\n"), "Auto-Submitted");
	CHECK(strstr(out, "\nMIME-Version: 1.0\n"), "MIME-Version");
	CHECK(strstr(out, "\nDate: "), "Date");
	CHECK(strstr(out, "\nMessage-ID: <") && strstr(out, "@mail.test.lan>\n"),
	      "Message-ID");
	CHECK(strstr(out, "multipart/report; report-type=delivery-status;"),
	      "Content-Type");
	CHECK(boundary(b, sizeof(b)) == 0, "no boundary");
	snprintf(line, sizeof(line), "\n--%s\n", b);
	CHECK(count(out, line) == 3, "three parts, got %d", count(out, line));
	snprintf(line, sizeof(line), "\n--%s--\n", b);
	CHECK(count(out, line) == 1, "closing boundary");
	CHECK(strstr(out, "Content-Type: message/delivery-status\n"), "dsn part");
	CHECK(strstr(out, "Content-Type: text/rfc822-headers\n"), "headers part");
	CHECK(strstr(out, "\nReporting-MTA: dns; mail.test.lan\n"), "Reporting-MTA");
	CHECK(strstr(out, "\nArrival-Date: "), "Arrival-Date");
	CHECK(strstr(out, "\nFinal-Recipient: rfc822; bob@example.net\n"
		      "Action: failed\nStatus: 5.1.1\n"
		      "Remote-MTA: dns; mx.example.net\n"
		      "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: "
		      "User unknown\n"), "bob's fields: %s", out);
	CHECK(strstr(out, "\nFinal-Recipient: rfc822; carol@example.net\n"
		      "Action: failed\nStatus: 4.4.7\n"
		      "Diagnostic-Code: smtp; 451 4.4.7 message expired after 5 "
		      "days\n"), "carol's fields: %s", out);
	CHECK(!strstr(out, "X-Postie;"), "only smtp diagnostics");
	CHECK(count(out, "Remote-MTA:") == 1, "Remote-MTA only for bob"
	      "carol's fields");
	CHECK(strstr(out, "<bob@example.net>: host mx.example.net said: 550"),
	      "text part names the remote host");
	CHECK(strstr(out, "\nSubject: report\n\n--"), "original headers quoted");
	CHECK(!strstr(out, "SECRET BODY"), "the body is not returned");
	CHECK(!strchr(out, '\r'), "LF only");
	close(m.src_fd);
}

static void test_bounce_delayed(void)
{
	struct bounce_rcpt r[] = {
		{ "bob@example.net", "4.4.1", "connect: timed out", NULL, 1 },
	};
	struct bounce_msg m = {
		.hostname = "mail.test.lan", .sender = "alice@example.org",
		.orig_id = "x", .r = r, .n = 1, .src_fd = -1,
	};
	int rc;

	run("out2", &m, &rc);
	CHECK(rc == 0, "rc");
	CHECK(strstr(out, "\nSubject: Delayed Mail (still being retried)\n"),
	      "delay subject");
	CHECK(strstr(out, "\nAction: delayed\nStatus: 4.4.1\n"), "delayed action");
}

static void test_bounce_hostile(void)
{
	/* Headers that try to end the report early, and fields with CR/LF. */
	const char *msg = "Subject: x\r\n--=_postie_evil\n--\nX-Nul: a\0b\n\nbody\n";
	struct bounce_rcpt r[] = {
		{ "bob@example.net\r\nBcc: evil@example.org", "9.9",
		  "550 bad\r\nX-Injected: yes\n\ttab", "mx.example.net\nX-Evil: 1",
		  0 },
	};
	struct bounce_msg m = {
		.hostname = "mail.test.lan\nX-Evil: 2",
		.sender = "alice@example.org>\r\nBcc: evil@example.org",
		.orig_id = "../../etc/passwd\n", .r = r, .n = 1,
	};
	int rc;

	m.src_fd = make_src("src3", msg, &m.data_off, &m.data_len);
	run("out3", &m, &rc);
	CHECK(rc == 0, "rc");
	CHECK(!strstr(out, "\nX-Injected"), "diag injected a line");
	CHECK(!strstr(out, "\nX-Evil"), "host injected a line");
	CHECK(!strstr(out, "\nBcc:"), "address injected a line");
	CHECK(strstr(out, "\nStatus: 5.0.0\n"), "bad status replaced");
	CHECK(!strstr(out, "\n--=_postie_evil"), "fake boundary indented");
	CHECK(strstr(out, "\n --=_postie_evil\n"), "kept, indented");
	CHECK(!strchr(out, '\r'), "CR dropped");
	CHECK(!strstr(out, "../"), "id sanitized");
	close(m.src_fd);
}

static void test_bounce_header_cap(void)
{
	static char msg[BOUNCE_HEADERS_MAX * 2 + 100];
	struct bounce_rcpt r[] = { { "bob@example.net", "5.0.0", "x", NULL, 0 } };
	struct bounce_msg m = {
		.hostname = "h.test", .sender = "a@example.org", .orig_id = "1",
		.r = r, .n = 1,
	};
	size_t n = 0, len;
	int rc, lines;

	while (n + 40 < sizeof(msg) - 1) {
		n += (size_t)snprintf(msg + n, sizeof(msg) - n,
				      "X-Filler-%06zu: %020zu\n", n, n);
	}
	msg[n] = '\0';
	m.src_fd = make_src("src4", msg, &m.data_off, &m.data_len);
	len = run("out4", &m, &rc);
	CHECK(rc == 0, "rc");
	lines = count(out, "\nX-Filler-");
	CHECK(lines > 0 && (size_t)lines * 38 <= BOUNCE_HEADERS_MAX,
	      "capped at BOUNCE_HEADERS_MAX: %d lines", lines);
	CHECK(len < BOUNCE_HEADERS_MAX + 4096, "report size %zu", len);
	CHECK(strstr(out, "--\n") && out[len - 1] == '\n', "closed");
	close(m.src_fd);
}

/* ---- qstate ---------------------------------------------------------- */

static struct qstate qs_a, qs_b;

static int qs_equal(const struct qstate *a, const struct qstate *b)
{
	if (a->arrival != b->arrival || a->next != b->next ||
	    a->attempts != b->attempts || a->local_fails != b->local_fails ||
	    a->warned != b->warned || a->n != b->n)
		return 0;
	for (int i = 0; i < a->n; i++) {
		const struct qstate_target *x = &a->t[i], *y = &b->t[i];
		if (strcmp(x->addr, y->addr) || x->rcpt != y->rcpt ||
		    x->state != y->state || x->local != y->local ||
		    x->tries != y->tries || x->code != y->code ||
		    strcmp(x->status, y->status) || x->when != y->when ||
		    strcmp(x->host, y->host) || strcmp(x->text, y->text))
			return 0;
	}
	return 1;
}

/* A memory file holding data[0..n), at offset 0; -1 on failure. */
static int mem_fd(const void *data, size_t n)
{
	int fd = memfd_create("qstate", MFD_CLOEXEC);

	if (fd >= 0 && (write_all_fd(fd, data, n) != 0 || lseek(fd, 0, SEEK_SET) != 0)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Writes a to a memory file (its text also into buf, NUL-terminated) and
 * reads it back into b. */
static int qs_roundtrip(const struct qstate *a, struct qstate *b, char *buf,
			size_t n)
{
	struct fdio_out w;
	struct fdio_in r;
	int fd = mem_fd("", 0), rc;
	ssize_t got;

	if (fd < 0)
		return -1;
	fdio_out_init(&w, fd);
	rc = qstate_write(&w, a);
	got = pread(fd, buf, n - 1, 0);
	buf[got > 0 ? got : 0] = '\0';
	if (rc != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	fdio_in_init(&r, fd);
	qstate_init(b, 0);
	rc = qstate_read(&r, b);
	close(fd);
	return rc;
}

static void test_qstate_roundtrip(void)
{
	static char buf[QSTATE_TARGETS_MAX * QSTATE_LINE + 256];
	struct qstate_target *t;

	qstate_init(&qs_a, 1700000000);
	qs_a.next = 1700000300;
	qs_a.attempts = 3;
	qs_a.local_fails = 2;
	qs_a.warned = 1;
	t = qstate_target(&qs_a, "good@flaky.test", 0);
	qstate_set(t, 250, "2.0.0", "flaky.test", "250 2.0.0 queued", 0, 1700000100);
	t = qstate_target(&qs_a, "bad@flaky.test", 1);
	qstate_set(t, 550, "5.1.1", "flaky.test", "550 5.1.1 <bad>: no such user",
		   0, 1700000100);
	CHECK(t->state == QS_FAILED && t->tries == 1, "550 fails: %c", t->state);
	t->state = QS_BOUNCED;
	t = qstate_target(&qs_a, "later@flaky.test", 2);
	qstate_set(t, 450, "4.2.1", "flaky.test", "450 4.2.1 greylisted", 0, 1700000100);
	qstate_set(t, 451, "4.4.3", NULL, "DNS: no answer from the DNS server", 1,
		   1700000200);
	CHECK(t->state == QS_PENDING && t->tries == 1 && t->local == 1,
	      "a local failure is not a try: %d", t->tries);
	t = qstate_target(&qs_a, "local:demo", 3);
	CHECK(t && t->state == QS_PENDING && t->code == 0, "new target waits");
	CHECK(qstate_target(&qs_a, "bad@flaky.test", 9) == &qs_a.t[1],
	      "a target is found, not added twice");
	/* Hostile text is cleaned on the way in. */
	t = qstate_target(&qs_a, "tab\tin@addr.test", 4);
	qstate_set(t, 451, "4.\n4", "h\tost", "line1\r\nT\tx\tline2", 1, 5);
	CHECK(!strchr(t->addr, '\t') && !strchr(t->text, '\n') &&
	      !strchr(t->host, '\t') && !strchr(t->status, '\n'), "cleaned");
	CHECK(qs_roundtrip(&qs_a, &qs_b, buf, sizeof(buf)) == 0, "roundtrip io");
	CHECK(qs_equal(&qs_a, &qs_b), "roundtrip equal:\n%s", buf);
	CHECK(strncmp(buf, "V 1\nA 1700000000\nN 3 1700000300 2\nW\n", 34) == 0,
	      "header lines: %.60s", buf);

	/* A full table and the longest fields survive too. */
	qstate_init(&qs_a, 1);
	for (int i = 0; i < QSTATE_TARGETS_MAX; i++) {
		char addr[QSTATE_ADDR], text[QSTATE_TEXT * 2];
		memset(addr, 'a', sizeof(addr) - 1);
		addr[sizeof(addr) - 1] = '\0';
		snprintf(addr, 16, "%05d", i);
		addr[5] = 'x';
		memset(text, 'z', sizeof(text) - 1);
		text[sizeof(text) - 1] = '\0';
		t = qstate_target(&qs_a, addr, i);
		CHECK(t != NULL, "target %d", i);
		if (t)
			qstate_set(t, 452, "4.3.1", text, text, 0, 99);
	}
	CHECK(qstate_target(&qs_a, "one@too.many", 0) == NULL, "table full");
	CHECK(qs_roundtrip(&qs_a, &qs_b, buf, sizeof(buf)) == 0, "full io");
	CHECK(qs_equal(&qs_a, &qs_b), "full table equal");
}

static void test_qstate_hostile(void)
{
	static const struct {
		const char *line;
		int ok;
	} cases[] = {
		{ "V 1", 0 },
		{ "A 1700000000", 0 },
		{ "A -5", -1 },
		{ "A 99999999999999999999", -1 },
		{ "N 3 1700000300", 0 },        /* the older two-field form */
		{ "N 3 1700000300 1", 0 },
		{ "N x 1", -1 },
		{ "N 3 4 5 6", -1 },
		{ "T\tp\t0\t0\t0\t-\t0\t0\tx@y.test\t\t", 0 },
		{ "T\tp\t0\t0\t0\t-\t0\t0\tx@y.test\t\t", -1 },  /* twice */
		{ "T\tz\t0\t0\t0\t-\t0\t0\tz@y.test\t\t", -1 },  /* state */
		{ "T\tp\t0\t0\t600\t-\t0\t0\tc@y.test\t\t", -1 }, /* code */
		{ "T\tp\t0\t0\t0\t-\t0\t2\tl@y.test\t\t", -1 },   /* local */
		{ "T\tp\t0\t0\t0\t-\t0\t0\t\t\t", -1 },          /* no addr */
		{ "T\tp\t0\t0\t0\t-\t0\t0\tf@y.test\t\t\textra", -1 },
		{ "T\tp\t0\t0\t0", -1 },
		{ "T\tp\t99999\t0\t0\t-\t0\t0\tr@y.test\t\t", -1 },
		{ "S d old@y.test 2.0.0 delivered fine", 0 },
		{ "S f gone@y.test 5.1.1 no such user", 0 },
		{ "S q what@y.test 5.1.1 x", -1 },
		{ "", -1 },
		{ "Q something", -1 },
	};

	qstate_init(&qs_a, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = qstate_parse_line(&qs_a, cases[i].line, strlen(cases[i].line));
		CHECK(rc == cases[i].ok, "line %zu '%s': %d", i, cases[i].line, rc);
	}
	CHECK(qs_a.n == 3, "three targets: %d", qs_a.n);
	CHECK(qs_a.attempts == 3 && qs_a.local_fails == 1, "N");
	CHECK(qs_a.t[1].state == QS_DONE && qs_a.t[2].state == QS_BOUNCED,
	      "older S lines: %c %c", qs_a.t[1].state, qs_a.t[2].state);
	CHECK(strcmp(qs_a.t[2].text, "no such user") == 0, "old text '%s'",
	      qs_a.t[2].text);

	/* A NUL or an over-long line spoils that line only. */
	static char big[QSTATE_LINE * 3];
	size_t n = 0;
	n += (size_t)snprintf(big + n, sizeof(big) - n, "A 7\nT\tp\t0\t0\t0\t-\t0\t0\t");
	memset(big + n, 'q', QSTATE_LINE + 10);
	n += QSTATE_LINE + 10;
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\t\t\nN 1 2 0\nA 8");
	memcpy(big + n, "\0\nW\n", 4);
	n += 4;
	int fd = mem_fd(big, n);
	CHECK(fd >= 0, "memfd");
	if (fd >= 0) {
		struct fdio_in r;
		fdio_in_init(&r, fd);
		qstate_init(&qs_a, 0);
		CHECK(qstate_read(&r, &qs_a) == 0, "read");
		close(fd);
		CHECK(qs_a.arrival == 7 && qs_a.n == 0 && qs_a.attempts == 1 &&
		      qs_a.warned == 1, "arrival %lld n %d", (long long)qs_a.arrival,
		      qs_a.n);
	}
}

static void test_qstate_files(void)
{
	struct qstate_target *t;
	int dfd;

	tmpfile_fd("prime");    /* makes dir */
	qstate_init(&qs_a, 1234);
	qs_a.attempts = 1;
	t = qstate_target(&qs_a, "x@y.test", 0);
	qstate_set(t, 450, "4.2.0", "mx.y.test", "450 4.2.0 later", 0, 1300);
	CHECK(qstate_save(dir, "msg1", &qs_a) == 0, "save");
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(qstate_load(dfd, "msg1", &qs_b) == 0, "load");
	CHECK(qs_equal(&qs_a, &qs_b), "loaded equal");
	CHECK(qstate_load(dfd, "nothere", &qs_b) == 1 && qs_b.n == 0 &&
	      qs_b.arrival == 0, "missing file");
	/* A symlink is never followed. */
	CHECK(symlinkat("msg1.st", dfd, "link.st") == 0, "symlink");
	CHECK(qstate_load(dfd, "link", &qs_b) == -1, "symlink refused");
	close(dfd);
}

/* What a maildrop file may claim: sendmail's Received field for the
 * file's owner and name, and the sender rules (store/maildrop). */
static void test_maildrop_rules(void)
{
	static const struct {
		const char *before, *after;     /* around sendmail's line */
		int ok;
	} cases[] = {
		{ "", "Subject: x\n\nbody\n", 1 },
		{ "", "\nbody\n", 1 },
		{ "Received: from forged.example by x; date\n", "Subject: x\n", 0 },
		{ "X-Before: 1\n", "", 0 },
	};
	char line[512], head[1024];
	static struct conf c;
	size_t n = maildrop_received(line, sizeof(line), 0, "box.test", "1.2.3.ab",
				     "Sat, 5 Dec 2026 10:00:00 +0000");

	CHECK(n > 0 && strncmp(line, "Received: (from root, uid 0)\n\tby box.test "
			       "(postie sendmail) id 1.2.3.ab;\n\tSat, 5 Dec", 66) == 0,
	      "received: %s", line);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int l = snprintf(head, sizeof(head), "%s%s%s", cases[i].before, line,
				 cases[i].after);
		CHECK((maildrop_check_received(head, (size_t)l, 0, "1.2.3.ab") == 0) ==
		      cases[i].ok, "received case %zu", i);
	}
	snprintf(head, sizeof(head), "%sSubject: x\n", line);
	CHECK(maildrop_check_received(head, strlen(head), 0, "1.2.3.ac") != 0,
	      "another file's line");
	CHECK(maildrop_check_received(head, strlen(head), 12345, "1.2.3.ab") != 0,
	      "another uid's line");
	CHECK(maildrop_check_received(head, n - 3, 0, "1.2.3.ab") != 0, "cut short");
	/* A continuation after the date would hang more onto the field. */
	snprintf(head, sizeof(head), "%s\tmore\nSubject: x\n", line);
	CHECK(maildrop_check_received(head, strlen(head), 0, "1.2.3.ab") != 0,
	      "continued");

	memset(&c, 0, sizeof(c));
	c.sender_login_check = 1;
	snprintf(c.hostname, sizeof(c.hostname), "box.test");
	snprintf(c.local_domains[0], sizeof(c.local_domains[0]), "test");
	c.nlocal_domains = 1;
	CHECK(maildrop_sender_ok(&c, "anybody@example.org", 0, 1), "privileged");
	CHECK(maildrop_sender_ok(&c, "root@test", 0, 0), "own login");
	CHECK(!maildrop_sender_ok(&c, "root@example.org", 0, 0), "not a local domain");
	CHECK(!maildrop_sender_ok(&c, "admin@test", 0, 0), "another login");
	CHECK(!maildrop_sender_ok(&c, "", 0, 0), "<> refused");
	snprintf(c.masquerade, sizeof(c.masquerade), "alerts@provider.example");
	CHECK(maildrop_sender_ok(&c, "Alerts@Provider.example", 0, 0), "masquerade");
	c.sender_login_check = 0;
	CHECK(maildrop_sender_ok(&c, "ceo@bank.example", 0, 0), "check off");
}

void test_relay_parts(void)
{
	test_maildrop_rules();
	test_qstate_roundtrip();
	test_qstate_hostile();
	test_qstate_files();
	test_bounce_structure();
	test_bounce_delayed();
	test_bounce_hostile();
	test_bounce_header_cap();
}
