/* qstate — reads and writes queue/ID.st (see qstate.h for the format).
 *
 * Pure line parsing and formatting over fdio buffers, plus the load and
 * the atomic replace of one file. Everything read is hostile (the file
 * may be damaged or planted): lines longer than QSTATE_LINE, numbers out
 * of range, unknown states and extra targets are skipped, text fields
 * are cut to their arrays and lose control characters. No allocation. */
#include "store/qstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/util.h"
#include "store/spool.h"

#define QSTATE_FIELDS 11        /* "T" and the ten fields of a target */
#define QSTATE_PATH (CONF_PATH_MAX + SPOOL_NAME_MAX + 16)

/* Copies src[0..len) into dst, controls (TAB, CR, LF included) as blanks. */
static void clean_copy(char *dst, size_t n, const char *src, size_t len)
{
	str_clean(dst, n, src, src ? len : 0);
}

void qstate_init(struct qstate *s, time_t arrival)
{
	s->arrival = arrival;
	s->next = 0;
	s->attempts = 0;
	s->local_fails = 0;
	s->warned = 0;
	s->n = 0;
}

struct qstate_target *qstate_target(struct qstate *s, const char *addr, int rcpt)
{
	struct qstate_target *t;
	char a[QSTATE_ADDR];

	clean_copy(a, sizeof(a), addr, strlen(addr));
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->t[i].addr, a) == 0)
			return &s->t[i];
	if (s->n == QSTATE_TARGETS_MAX)
		return NULL;
	t = &s->t[s->n++];
	memset(t, 0, sizeof(*t));
	memcpy(t->addr, a, sizeof(a));
	t->rcpt = (short)(rcpt < 0 ? 0 : rcpt > QSTATE_TARGETS_MAX ?
			  QSTATE_TARGETS_MAX : rcpt);
	t->state = QS_PENDING;
	t->status[0] = '-';
	return t;
}

void qstate_set(struct qstate_target *t, int code, const char *status,
		const char *host, const char *text, int local, time_t when)
{
	if (code < 0 || code > 599)
		code = 0;
	if (!local && t->state == QS_PENDING && t->tries < QSTATE_MAX_TRIES)
		t->tries++;
	if (code / 100 == 2)
		t->state = QS_DONE;
	else if (code / 100 == 5 && t->state != QS_BOUNCED)
		t->state = QS_FAILED;
	t->code = code;
	t->local = local ? 1 : 0;
	t->when = when;
	clean_copy(t->status, sizeof(t->status), status && status[0] ? status : "-",
		   status && status[0] ? strlen(status) : 1);
	clean_copy(t->host, sizeof(t->host), host, host ? strlen(host) : 0);
	clean_copy(t->text, sizeof(t->text), text, text ? strlen(text) : 0);
}

/* ---- parsing -------------------------------------------------------------- */

/* A decimal number of at most 18 digits in [0, max]. */
static int num(const char *s, size_t len, long long max, long long *out)
{
	long long v = 0;

	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Splits line at sep into at most max fields; returns how many. */
static int split(const char *line, size_t len, char sep, const char **f,
		 size_t *fl, int max)
{
	int n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != sep)
			continue;
		if (n == max)
			return max + 1;
		f[n] = line + start;
		fl[n] = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

static int parse_target(struct qstate *s, const char *line, size_t len)
{
	const char *f[QSTATE_FIELDS];
	size_t fl[QSTATE_FIELDS];
	long long rcpt, tries, code, when, local;
	struct qstate_target *t;
	char st;

	if (split(line, len, '\t', f, fl, QSTATE_FIELDS) != QSTATE_FIELDS ||
	    fl[1] != 1 || num(f[2], fl[2], QSTATE_TARGETS_MAX, &rcpt) ||
	    num(f[3], fl[3], QSTATE_MAX_TRIES, &tries) ||
	    num(f[4], fl[4], 599, &code) || fl[5] == 0 || fl[5] > 7 ||
	    num(f[6], fl[6], INT64_MAX / 2, &when) || num(f[7], fl[7], 1, &local) ||
	    fl[8] == 0 || fl[8] >= QSTATE_ADDR)
		return -1;
	st = f[1][0];
	if (st != QS_PENDING && st != QS_DONE && st != QS_FAILED && st != QS_BOUNCED)
		return -1;
	if (s->n == QSTATE_TARGETS_MAX)
		return -1;
	t = &s->t[s->n];
	memset(t, 0, sizeof(*t));
	clean_copy(t->addr, sizeof(t->addr), f[8], fl[8]);
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->t[i].addr, t->addr) == 0)
			return -1;      /* a target appears once */
	s->n++;
	t->state = st;
	t->rcpt = (short)rcpt;
	t->tries = (int)tries;
	t->code = (int)code;
	clean_copy(t->status, sizeof(t->status), f[5], fl[5]);
	t->when = (time_t)when;
	t->local = (char)local;
	clean_copy(t->host, sizeof(t->host), f[9], fl[9]);
	clean_copy(t->text, sizeof(t->text), f[10], fl[10]);
	return 0;
}

/* "S d|f ADDR STATUS DIAG", written by postie before the V 1 format:
 * delivered, or failed and already bounced. */
static int parse_old(struct qstate *s, const char *line, size_t len)
{
	const char *f[5];
	size_t fl[5];
	struct qstate_target *t;
	char addr[QSTATE_ADDR];
	int n = split(line, len, ' ', f, fl, 4);

	if (n < 4 || fl[1] != 1 || (f[1][0] != 'd' && f[1][0] != 'f') ||
	    fl[2] == 0 || fl[2] >= QSTATE_ADDR || fl[3] == 0 || fl[3] > 7)
		return -1;
	clean_copy(addr, sizeof(addr), f[2], fl[2]);
	t = qstate_target(s, addr, 0);
	if (!t)
		return -1;
	t->state = f[1][0] == 'd' ? QS_DONE : QS_BOUNCED;
	t->code = f[1][0] == 'd' ? 250 : 550;
	t->tries = 1;
	clean_copy(t->status, sizeof(t->status), f[3], fl[3]);
	if (n > 4)      /* the reason: everything after the status */
		clean_copy(t->text, sizeof(t->text), f[3] + fl[3] + 1,
			   len - (size_t)(f[3] + fl[3] + 1 - line));
	return 0;
}

int qstate_parse_line(struct qstate *s, const char *line, size_t len)
{
	const char *f[5];
	size_t fl[5];
	long long a, b, c;
	int n;

	if (len >= 2 && line[0] == 'T' && line[1] == '\t')
		return parse_target(s, line, len);
	if (len >= 2 && line[0] == 'S' && line[1] == ' ')
		return parse_old(s, line, len);
	n = split(line, len, ' ', f, fl, 4);
	if (n < 1 || fl[0] != 1)
		return -1;
	switch (f[0][0]) {
	case 'V':
		return n == 2 && num(f[1], fl[1], 1000, &a) == 0 ? 0 : -1;
	case 'A':
		if (n != 2 || num(f[1], fl[1], INT64_MAX / 2, &a) != 0)
			return -1;
		s->arrival = (time_t)a;
		return 0;
	case 'N':
		/* "N attempts next" (older) or "N attempts next local". */
		if (n < 3 || n > 4 || num(f[1], fl[1], QSTATE_MAX_TRIES, &a) != 0 ||
		    num(f[2], fl[2], INT64_MAX / 2, &b) != 0)
			return -1;
		c = 0;
		if (n == 4 && num(f[3], fl[3], QSTATE_MAX_TRIES, &c) != 0)
			return -1;
		s->attempts = (int)a;
		s->next = (time_t)b;
		s->local_fails = (int)c;
		return 0;
	case 'W':
		s->warned = 1;
		return 0;
	default:
		return -1;
	}
}

int qstate_read(struct fdio_in *f, struct qstate *s)
{
	char line[QSTATE_LINE];
	struct buf b;
	int c;

	/* By bytes: a NUL or an over-long line spoils only that line
	 * (the byte after the line is for its NUL). */
	buf_init(&b, line, sizeof(line) - 1);
	while ((c = fdio_getc(f)) >= 0) {
		if (c == '\n') {
			line[b.len] = '\0';
			if (!b.full)
				qstate_parse_line(s, line, b.len);
			buf_reset(&b);
		} else if (c == '\0') {
			b.full = 1;
		} else {
			buf_addc(&b, (char)c);
		}
	}
	if (b.len > 0 && !b.full) {
		line[b.len] = '\0';
		qstate_parse_line(s, line, b.len);
	}
	if (f->err) {
		errno = f->err;
		return -1;
	}
	return 0;
}

/* ---- writing -------------------------------------------------------------- */

int qstate_write(struct fdio_out *f, const struct qstate *s)
{
	fdio_printf(f, "V 1\nA %lld\nN %d %lld %d\n", (long long)s->arrival,
		s->attempts, (long long)s->next, s->local_fails);
	if (s->warned)
		fdio_puts(f, "W\n");
	for (int i = 0; i < s->n; i++) {
		const struct qstate_target *t = &s->t[i];
		char addr[QSTATE_ADDR], host[QSTATE_HOST], text[QSTATE_TEXT], st[8];

		clean_copy(addr, sizeof(addr), t->addr, sizeof(t->addr));
		clean_copy(host, sizeof(host), t->host, sizeof(t->host));
		clean_copy(text, sizeof(text), t->text, sizeof(t->text));
		clean_copy(st, sizeof(st), t->status[0] ? t->status : "-", sizeof(st));
		if (!addr[0])
			continue;
		fdio_printf(f, "T\t%c\t%d\t%d\t%d\t%s\t%lld\t%d\t%s\t%s\t%s\n",
			t->state, t->rcpt, t->tries, t->code, st, (long long)t->when,
			t->local ? 1 : 0, addr, host, text);
	}
	return fdio_flush(f);
}

int qstate_load(int dirfd, const char *name, struct qstate *s)
{
	char path[SPOOL_NAME_MAX + 8];
	struct fdio_in f;
	int fd, rc, e;

	qstate_init(s, 0);
	if (str_copy(path, sizeof(path) - 3, name, strlen(name)) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcat(path, ".st");
	fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	fdio_in_init(&f, fd);
	rc = qstate_read(&f, s);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

int qstate_save(const char *dir, const char *name, const struct qstate *s)
{
	char path[QSTATE_PATH], tmp[QSTATE_PATH + 4];
	struct fdio_out f;
	int fd, ok, e;

	if (snprintf(path, sizeof(path), "%s/%s.st", dir, name) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	fdio_out_init(&f, fd);
	ok = qstate_write(&f, s) == 0 && file_sync(fd) == 0;
	e = f.err ? f.err : errno;
	ok &= close(fd) == 0;
	if (!ok || rename(tmp, path) != 0) {
		e = ok ? errno : e;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

char *qstate_shown(char *dst, size_t n, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	struct buf b;

	if (n == 0)
		return dst;
	buf_init(&b, dst, n - 1);       /* and the NUL */
	/* A character goes only with room for the longest (4 bytes). */
	for (size_t i = 0; text[i] && buf_fits(&b, 4, 0); i++) {
		unsigned char c = (unsigned char)text[i];
		if (c >= 0x20 && c < 0x7f) {
			buf_addc(&b, (char)c);
		} else if (c >= 0x80) {
			char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			buf_add(&b, esc, sizeof(esc));
		} else {
			buf_addc(&b, ' ');
		}
	}
	dst[b.len] = '\0';
	return dst;
}

const char *qstate_word(const struct qstate_target *t)
{
	switch (t->state) {
	case QS_DONE:
		return "delivered";
	case QS_FAILED:
		return "failed";
	case QS_BOUNCED:
		return "failed, returned to sender";
	default:
		return t->code ? "deferred" : "waiting";
	}
}
