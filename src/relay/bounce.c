/* bounce — RFC 3464 delivery status notifications (see bounce.h).
 *
 * Streams the report into out_fd through one small buffer: a text part
 * for people, a message/delivery-status part for programs and the
 * original headers (text/rfc822-headers, at most BOUNCE_HEADERS_MAX
 * bytes, read with pread in chunks). No allocation.
 *
 * Everything that comes from outside (addresses, remote replies, host
 * names, the original headers) is hostile: values put in fields lose
 * CR, LF, NUL and other controls and are capped; quoted header lines
 * that could pass for a MIME boundary ("--...") are indented. */
#include "relay/bounce.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"

#define ADDR_CAP 256            /* RFC 5321 path */
#define HOST_CAP 255
#define DIAG_CAP 400            /* remote replies are cut here */
#define LINE_CAP 998            /* RFC 5322 line limit */

struct out {
	int fd;
	int err;
	size_t n;
	char buf[2048];
};

static void flush(struct out *o)
{
	size_t off = 0;

	while (off < o->n && !o->err) {
		ssize_t w = write(o->fd, o->buf + off, o->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = 1;
		else
			off += (size_t)w;
	}
	o->n = 0;
}

static void put(struct out *o, const char *p, size_t len)
{
	struct buf b;

	while (len > 0 && !o->err) {
		buf_init_len(&b, o->buf, sizeof(o->buf), o->n);
		size_t k = len < buf_remaining(&b) ? len : buf_remaining(&b);
		buf_add(&b, p, k);
		o->n = b.len;
		p += k;
		len -= k;
		if (!buf_remaining(&b))
			flush(o);
	}
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Printable ASCII (and UTF-8 bytes) only, controls as spaces, blanks
 * squeezed, at most cap bytes. */
static const char *clean(char *dst, size_t n, const char *src, size_t cap)
{
	struct buf b;

	if (!src)
		src = "";
	/* At most cap bytes, and one more of dst for the NUL. */
	buf_init(&b, dst, sat_sub(n, 1) < cap ? sat_sub(n, 1) : cap);
	for (size_t i = 0; src[i] && buf_remaining(&b) > 0; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (b.len == 0 || dst[b.len - 1] == ' '))
			continue;
		buf_addc(&b, (char)c);
	}
	while (b.len > 0 && dst[b.len - 1] == ' ')
		buf_truncate(&b, b.len - 1);
	if (n > 0)
		dst[b.len] = '\0';
	return dst;
}

/* An address for a field: clean and without the characters that would
 * end it (<, >, blanks). */
static const char *clean_addr(char *dst, size_t n, const char *src)
{
	struct buf b;

	clean(dst, n, src, ADDR_CAP);
	/* In place: the kept characters only move down. */
	buf_init(&b, dst, n);
	for (size_t i = 0; dst[i]; i++)
		if (dst[i] != '<' && dst[i] != '>' && dst[i] != ' ')
			buf_addc(&b, dst[i]);
	buf_nul(&b);
	return dst;
}

/* "X.Y.Z" with X 2, 4 or 5 and Y, Z of 1-3 digits; else a default that
 * matches the action. Not inlined, nor is token(): bounce_write with
 * them inside spills more on MIPS16 than the calls cost. */
static __attribute__((noinline)) const char *status_of(
	const struct bounce_rcpt *r)
{
	const char *s = r->status;
	int part = 0, digits = 0;

	if (!s || !(s[0] == '2' || s[0] == '4' || s[0] == '5') || s[1] != '.')
		return r->delayed ? "4.0.0" : "5.0.0";
	for (size_t i = 2; ; i++) {
		if (s[i] >= '0' && s[i] <= '9' && digits < 3) {
			digits++;
		} else if (s[i] == '.' && digits > 0 && part == 0) {
			part = 1;
			digits = 0;
		} else if (s[i] == '\0' && digits > 0 && part == 1) {
			return s;
		} else {
			return r->delayed ? "4.0.0" : "5.0.0";
		}
	}
}

/* Letters, digits, '.', '-' and '_' of an id, for Message-ID and the
 * boundary. */
static __attribute__((noinline)) void token(char *dst, size_t n,
					    const char *src)
{
	struct buf b;

	if (n == 0)
		return;
	/* At most 64 characters, and the NUL. */
	buf_init(&b, dst, n - 1 < 64 ? n - 1 : 64);
	for (size_t i = 0; src && src[i] && buf_remaining(&b) > 0; i++) {
		char c = src[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')
			buf_addc(&b, c);
	}
	dst[b.len] = '\0';
}

/* Copies the header section of the original: up to the first empty line,
 * at most BOUNCE_HEADERS_MAX bytes and only whole lines; CR and NUL
 * dropped, lines over LINE_CAP cut. */
static int copy_headers(struct out *o, const struct bounce_msg *m)
{
	char chunk[1024];
	long long off = m->data_off, end = m->data_off + m->data_len;
	size_t budget = BOUNCE_HEADERS_MAX;
	char mem[LINE_CAP + 2];
	struct buf line;

	if (m->src_fd < 0 || m->data_len <= 0)
		return 0;
	buf_init(&line, mem, sizeof(mem));
	while (budget > 0) {
		size_t want = sizeof(chunk);
		ssize_t got;

		if (off >= end) {
			/* A last header line without LF (a message of
			 * headers only) ends here. */
			if (line.len == 0)
				break;
			chunk[0] = '\n';
			got = 1;
		} else {
			if ((long long)want > end - off)
				want = (size_t)(end - off);
			got = pread(m->src_fd, chunk, want, (off_t)off);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -1;
			if (got == 0)
				break;
			off += got;
		}
		for (ssize_t i = 0; i < got; i++) {
			char c = chunk[i];
			if (c == '\r' || c == '\0')
				continue;
			if (c != '\n') {
				if (line.len < LINE_CAP)
					buf_addc(&line, c);     /* longer: cut */
				continue;
			}
			if (line.len == 0)
				return 0;       /* end of the headers */
			if (line.len + 2 > budget)
				return 0;
			if (mem[0] == '-' && line.len > 1 && mem[1] == '-')
				put(o, " ", 1);
			buf_addc(&line, '\n');
			put(o, mem, line.len);
			budget -= line.len + 1;
			buf_reset(&line);
		}
	}
	return 0;
}

/* A recipient's fields, cleaned, for both parts. */
struct rcpt_text {
	char rcpt[ADDR_CAP + 1], diag[DIAG_CAP + 1], remote[HOST_CAP + 1];
};

static void rcpt_text(struct rcpt_text *t, const struct bounce_rcpt *r)
{
	clean_addr(t->rcpt, sizeof(t->rcpt), r->rcpt);
	clean(t->diag, sizeof(t->diag), r->diag, DIAG_CAP);
	clean(t->remote, sizeof(t->remote), r->remote, HOST_CAP);
}

/* Each putf below stays well under putf's 1200 bytes with every value
 * at its cap. */
int bounce_write(int out_fd, const struct bounce_msg *m)
{
	static unsigned long seq;
	struct out o = { .fd = out_fd };
	char host[HOST_CAP + 1], sender[ADDR_CAP + 1], id[65], date[64];
	char boundary[160], arrival[64];
	int failed = 0, delayed = 0;
	time_t now = time(NULL);
	struct rcpt_text t;

	clean(host, sizeof(host), m->hostname, HOST_CAP);
	for (size_t i = 0; host[i]; i++)
		if (host[i] == ' ' || host[i] == '<' || host[i] == '>')
			host[i] = '-';
	if (!host[0])
		strcpy(host, "localhost");
	clean_addr(sender, sizeof(sender), m->sender);
	token(id, sizeof(id), m->orig_id);
	rfc5322_date(date, sizeof(date), now);
	rfc5322_date(arrival, sizeof(arrival), m->arrival ? m->arrival : now);
	snprintf(boundary, sizeof(boundary), "=_postie_%s_%lld_%d_%lu",
		 id, (long long)now, (int)getpid(), ++seq);
	for (int i = 0; i < m->n; i++) {
		if (m->r[i].delayed)
			delayed++;
		else
			failed++;
	}

	/* Envelope: null sender, to the original sender; then the header. */
	putf(&o, "F \nR %s\nD\n"
	     "From: Mail Delivery System <MAILER-DAEMON@%s>\n"
	     "To: <%s>\n"
	     "Subject: %s\n"
	     "Date: %s\n", sender, host, sender,
	     failed ? "Undelivered Mail Returned to Sender" :
	     "Delayed Mail (still being retried)", date);
	putf(&o, "Message-ID: <%lld.%s.%lu.bounce@%s>\n"
	     "MIME-Version: 1.0\n"
	     "Content-Type: multipart/report; report-type=delivery-status;\n"
	     "\tboundary=\"%s\"\n"
	     "Auto-Submitted: auto-replied\n\n"
	     "This is a MIME-encapsulated message.\n\n", (long long)now,
	     id[0] ? id : "x", seq, host, boundary);

	/* Part 1: for people. */
	putf(&o, "--%s\n"
	     "Content-Type: text/plain; charset=us-ascii\n"
	     "Content-Description: Notification\n\n"
	     "This is the mail system at host %s.\n\n", boundary, host);
	if (failed)
		puts_(&o, "I'm sorry to have to inform you that your message "
		      "could not\nbe delivered to one or more recipients. "
		      "It's attached below.\n\n");
	if (delayed)
		puts_(&o, "Your message could not be delivered yet to one or "
		      "more recipients.\nThe mail system will keep trying; "
		      "you do not need to send it again.\n\n");
	for (int i = 0; i < m->n; i++) {
		rcpt_text(&t, &m->r[i]);
		putf(&o, "<%s>%s: %s%s%s%s\n", t.rcpt,
		     m->r[i].delayed ? " (delayed)" : "",
		     t.remote[0] ? "host " : "", t.remote,
		     t.remote[0] ? " said: " : "",
		     t.diag[0] ? t.diag : "(no reason given)");
	}

	/* Part 2: for programs (RFC 3464 section 2). */
	putf(&o, "\n--%s\n"
	     "Content-Type: message/delivery-status\n"
	     "Content-Description: Delivery report\n\n"
	     "Reporting-MTA: dns; %s\n", boundary, host);
	if (id[0])
		putf(&o, "X-Postie-Queue-ID: %s\n", id);
	putf(&o, "Arrival-Date: %s\n", arrival);
	for (int i = 0; i < m->n; i++) {
		const struct bounce_rcpt *r = &m->r[i];

		rcpt_text(&t, r);
		for (size_t k = 0; t.remote[k]; k++)
			if (t.remote[k] == ' ' || t.remote[k] == ';')
				t.remote[k] = '-';
		putf(&o, "\nFinal-Recipient: rfc822; %s\n"
		     "Action: %s\n"
		     "Status: %s\n", t.rcpt, r->delayed ? "delayed" : "failed",
		     status_of(r));
		if (t.remote[0])
			putf(&o, "Remote-MTA: dns; %s\n", t.remote);
		/* The caller gives a reply ("550 5.1.1 ...") as the server
		 * sent it, and its own reasons in the same shape. */
		if (t.diag[0])
			putf(&o, "Diagnostic-Code: smtp; %s\n", t.diag);
		putf(&o, "Last-Attempt-Date: %s\n", date);
	}

	/* Part 3: what the sender wrote, headers only. */
	putf(&o, "\n--%s\n"
	     "Content-Type: text/rfc822-headers\n"
	     "Content-Description: Undelivered Message Headers\n\n", boundary);
	if (copy_headers(&o, m) != 0)
		o.err = 1;
	putf(&o, "\n--%s--\n", boundary);
	flush(&o);
	return o.err ? -1 : 0;
}
