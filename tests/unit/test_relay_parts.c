/* Relay parts without sockets: the RFC 3464 bounce writer (structure,
 * fields, sanitizing of hostile values, the quoted header cap). Files go
 * to a fresh directory under TMPDIR. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/bounce.h"
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
		{ "carol@example.net", "4.4.7", "message expired after 5 days",
		  NULL, 0 },
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
		      "Diagnostic-Code: X-Postie; message expired after 5 days\n"),
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

void test_relay_parts(void)
{
	test_bounce_structure();
	test_bounce_delayed();
	test_bounce_hostile();
	test_bounce_header_cap();
}
