/* sendmail — `sendmail` and `mailq` (see sendmail.h).
 *
 * A message is written to spool_dir/maildrop/.NAME (O_EXCL, O_NOFOLLOW,
 * 0644 so that the daemon's user can read it), in the spool format:
 *   F sender / R recipient... / U uid / D / the message, LF line ends
 * then fsynced, renamed to maildrop/NAME and the directory (or, for users
 * who may not open it, the file again) fsynced; only then does the
 * command exit 0. Any failure removes the temporary file and exits 75
 * (EX_TEMPFAIL), or 65 (EX_DATAERR) for a bad message. A spool the daemon
 * never made is made here when the caller may (spool_prepare).
 *
 * The message gets a Received: line naming the real uid, and bare names
 * in address headers get @hostname (a local domain) like the envelope.
 *
 * The header section is held in memory (at most SENDMAIL_HEADER_MAX
 * bytes) to find recipients (-t), drop Bcc and add From, Date and
 * Message-ID when missing; the body is streamed. Addresses from the
 * command line and the headers are checked with the SMTP path parser.
 *
 * Limits: CONFIG_SMTP_MAX_RCPT recipients, max_message_size bytes,
 * SENDMAIL_HEADER_MAX bytes of headers, -F names of SENDMAIL_NAME_MAX. */
#include "sendmail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/conf.h"
#include "core/fdio.h"
#include "core/util.h"
#include "proto/address.h"
#include "store/maildrop.h"
#include "store/qstate.h"
#include "store/spool.h"

/* sysexits.h values (musl does not ship the header). */
enum {
	EX_OK_ = 0, EX_USAGE_ = 64, EX_DATAERR_ = 65, EX_NOUSER_ = 67,
	EX_SOFTWARE_ = 70, EX_OSERR_ = 71, EX_CANTCREAT_ = 73, EX_IOERR_ = 74,
	EX_TEMPFAIL_ = 75, EX_NOPERM_ = 77, EX_CONFIG_ = 78,
};

#define DEFAULT_CONF CONFIG_DEFAULT_CONF
#define SENDMAIL_HEADER_MAX (64 * 1024)
#define SENDMAIL_NAME_MAX 128           /* -F full name, bytes */
#define SENDMAIL_LINE_CHUNK 4096        /* body read in pieces of this */
#define ADDR_MAX (CONFIG_SMTP_PATH_MAX + 1)

struct opts {
	const char *conf_path;
	int explicit_conf;
	int from_headers;       /* -t */
	int ignore_dots;        /* -i, -oi */
	const char *sender;     /* -f, -r; NULL: the caller */
	const char *fullname;   /* -F */
	int run_queue;          /* -q */
	int list_queue;         /* -bp, mailq */
};

static const char *prog = "sendmail";
static struct conf *cf;
static char rcpts[CONFIG_SMTP_MAX_RCPT][ADDR_MAX];
static int nrcpt;
static char hbuf[SENDMAIL_HEADER_MAX];
static size_t hlen;
static char sender[ADDR_MAX];
static int null_sender;
static int quiet;               /* a probe (from_is_local): address checks
				 * without messages, and no merging with the
				 * recipients already listed */
static long nul_line;           /* the first line with a NUL byte, or 0 */
static long in_line = 1;        /* the input line being read */

/* The temporary file, removed on any failure and on a signal. */
static int drop_dirfd = -1;
static char tmp_name[96];
static volatile sig_atomic_t tmp_live;

static int fail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
	va_list ap;

	dprintf(2, "%s: ", prog);
	va_start(ap, fmt);
	vdprintf(2, fmt, ap);
	va_end(ap);
	fdio_out(2, "\n");
	return code;
}

static void remove_tmp(void)
{
	if (tmp_live && drop_dirfd >= 0)
		unlinkat(drop_dirfd, tmp_name, 0);
	tmp_live = 0;
}

static void on_signal(int sig)
{
	(void)sig;
	remove_tmp();
	_exit(EX_TEMPFAIL_);
}

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return 1;
	return 0;
}

/* ---- options ---------------------------------------------------------- */

static int usage(const char *why)
{
	dprintf(2, "%s: %s\n"
		"usage: sendmail [-C FILE] [-t] [-i] [-f ADDR] [-F NAME] [RCPT...]\n"
		"       sendmail -q | -bp    (mailq)\n", prog, why);
	return EX_USAGE_;
}

/* sendmail's option syntax: clustered flags (-ti), values attached or in
 * the next argument (-fADDR, -f ADDR); -o, -b, -e, -q and -d take the
 * rest of their argument. Options that other programs pass out of habit
 * are accepted and ignored. Returns 0 or an exit code; *first_rcpt is
 * the index of the first recipient. */
static int parse_opts(int argc, char **argv, struct opts *o, int *first_rcpt)
{
	int i;

	for (i = 1; i < argc; i++) {
		char *a = argv[i];

		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		for (size_t k = 1; a[k]; k++) {
			char c = a[k], *val = a + k + 1;

			if (c == 't') {
				o->from_headers = 1;
				continue;
			}
			if (c == 'i') {
				o->ignore_dots = 1;
				continue;
			}
			if (strchr("vmnUG", c))
				continue;       /* verbose, ...: ignored */
			if (strchr("CfrFBNRVhLXO", c)) {
				/* Takes a value: the rest, or the next arg. */
				if (!*val) {
					if (i + 1 >= argc)
						return usage("option needs a value");
					val = argv[++i];
				}
				if (c == 'C') {
					o->conf_path = val;
					o->explicit_conf = 1;
				} else if (c == 'f' || c == 'r') {
					o->sender = val;
				} else if (c == 'F') {
					o->fullname = val;
				} else if (c == 'X') {
					return usage("-X (traffic log) is not supported");
				}       /* body type, DSN, hop count, tags: ignored */
				break;
			}
			/* The others take the rest of the argument. */
			if (c == 'o') {
				if (strcmp(val, "i") == 0 || strcmp(val, "itrue") == 0)
					o->ignore_dots = 1;
				else if (!*val)
					return usage("-o needs an option letter (-oi)");
				/* -odb, -odi, -oem, -oQ..., -oXvalue: ignored */
			} else if (c == 'q') {  /* -q, -q30m, -qf: run the queue now */
				o->run_queue = 1;
			} else if (c == 'b') {
				if (strcmp(val, "p") == 0)
					o->list_queue = 1;
				else if (strcmp(val, "m") != 0)
					return usage(*val ? "only -bm and -bp are "
						     "supported" : "-b needs a mode");
			} else if (c != 'e' && c != 'A') {
				/* -em, -ep, -eq: error mode; -Am, -Ac: which
				 * sendmail.cf; both ignored */
				char msg[48];
				snprintf(msg, sizeof(msg), "unknown option -%c", c);
				return usage(msg);
			}
			break;
		}
	}
	*first_rcpt = i;
	return 0;
}

/* ---- addresses ---------------------------------------------------------- */

static int is_local_domain(const char *d, size_t len)
{
	return str_ieq(d, len, cf->hostname) || conf_is_local_domain(cf, d, len);
}

/* Checks one address (without <>), qualifies a bare local part with
 * @hostname, and writes "local@domain" into out. 0, or -1 when it is not
 * an address. */
static int normalize(const char *s, size_t len, char *out, size_t n)
{
	char buf[ADDR_MAX + 2 + 256];
	struct addr a;
	int r;
	size_t used;

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len > CONFIG_SMTP_PATH_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	if (memchr(s, '@', len))
		r = snprintf(buf, sizeof(buf), "<%.*s>", (int)len, s);
	else
		r = snprintf(buf, sizeof(buf), "<%.*s@%s>", (int)len, s,
			     cf->hostname);
	if (r < 0 || (size_t)r >= sizeof(buf))
		return -1;
	used = (size_t)r;
	r = addr_parse_path(buf, used, &a, 1);
	if (r != (int)used || (a.flags & (ADDR_NULL | ADDR_NODOMAIN)))
		return -1;
	used = (size_t)(a.domain + a.domain_len - a.local);
	if (used >= n)
		return -1;
	memcpy(out, a.local, used);
	out[used] = '\0';
	return 0;
}

static int add_rcpt(const char *s, size_t len)
{
	char a[ADDR_MAX];

	if (normalize(s, len, a, sizeof(a)) != 0)
		return quiet ? -1 : fail(EX_DATAERR_, "bad recipient address "
					 "'%.*s'", (int)(len > 100 ? 100 : len), s);
	for (int i = 0; i < nrcpt && !quiet; i++)
		if (strcmp(rcpts[i], a) == 0)
			return 0;
	if (nrcpt >= CONFIG_SMTP_MAX_RCPT)
		return fail(EX_DATAERR_, "more than %d recipients",
			    CONFIG_SMTP_MAX_RCPT);
	memcpy(rcpts[nrcpt], a, sizeof(a));     /* nrcpt < the table's size */
	nrcpt++;
	return 0;
}

/* Quoted strings and comments of an RFC 5322 address list, one character
 * s[*i] at a time: 1 when it belongs to (opens, ends) one of them, which
 * the caller then skips; a backslash pair is consumed whole. */
struct lex {
	int quote;
	int comment;            /* nesting depth */
};

static int lex_skip(struct lex *lx, const char *s, size_t len, size_t *i)
{
	char c = s[*i];

	if (lx->quote || lx->comment) {
		if (c == '\\' && *i + 1 < len)
			++*i;
		else if (lx->quote && c == '"')
			lx->quote = 0;
		else if (lx->comment && c == '(')
			lx->comment++;
		else if (lx->comment && c == ')')
			lx->comment--;
		return 1;
	}
	if (c == '"')
		lx->quote = 1;
	else if (c == '(')
		lx->comment = 1;
	return c == '"' || c == '(';
}

/* An RFC 5322 address list ("A <a@b>, c@d (C), group: e@f;"): calls
 * add_rcpt for each address. Commas, colons and semicolons count only
 * outside quotes, comments and angle brackets. */
static int address_list(const char *s, size_t len)
{
	struct lex lx = { 0, 0 };
	size_t start = 0;
	int angle = 0;
	long lt = -1, gt = -1;

	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : ',';

		if (i == len ? lx.quote || lx.comment : lex_skip(&lx, s, len, &i))
			continue;
		if (c == '<') {
			angle = 1;
			lt = (long)i;
		} else if (c == '>' && angle) {
			angle = 0;
			gt = (long)i;
		} else if (c == ':' && !angle) {
			start = i + 1;  /* a group's name */
			lt = gt = -1;
		} else if ((c == ',' || c == ';') && !angle) {
			int rc;
			if (lt >= 0 && gt > lt) {
				rc = lt + 1 == gt ? 0 :
					add_rcpt(s + lt + 1, (size_t)(gt - lt - 1));
			} else {
				/* addr-spec, maybe with comments: drop them */
				char tmp[ADDR_MAX + 64] = "";
				struct buf t;
				size_t n;
				int depth = 0;
				buf_init(&t, tmp, sizeof(tmp));
				for (size_t k = start; k < i; k++) {
					if (s[k] == '(')
						depth++;
					else if (s[k] == ')' && depth)
						depth--;
					else if (!depth && s[k] != '\n' && buf_addc(&t, s[k]) != 0)
						break;
				}
				/* A full tmp: the address as it is (below). */
				n = t.full ? sizeof(tmp) : t.len;
				rc = 0;
				while (n > 0 && (tmp[n - 1] == ' ' || tmp[n - 1] == '\t'))
					n--;
				size_t b = 0;
				while (b < n && (tmp[b] == ' ' || tmp[b] == '\t'))
					b++;
				if (n > b)
					rc = n >= sizeof(tmp) ? add_rcpt(s + start, i - start)
						: add_rcpt(tmp + b, n - b);
			}
			if (rc)
				return rc;
			start = i + 1;
			lt = gt = -1;
		}
	}
	return 0;
}

/* ---- the header section -------------------------------------------------- */

struct field {
	const char *name;
	size_t name_len;
	const char *val;        /* after the colon, folded lines included */
	size_t val_len;
	const char *start;      /* the whole field, final LF included */
	size_t len;
};

/* Next field of hbuf from *pos; 0 at the end. */
static int next_field(size_t *pos, struct field *f)
{
	size_t p = *pos, e;
	const char *colon;

	if (p >= hlen)
		return 0;
	e = p;
	do {
		const char *nl = memchr(hbuf + e, '\n', hlen - e);
		e = nl ? (size_t)(nl - hbuf) + 1 : hlen;
	} while (e < hlen && (hbuf[e] == ' ' || hbuf[e] == '\t'));
	f->start = hbuf + p;
	f->len = e - p;
	colon = memchr(f->start, ':', f->len);
	f->name = f->start;
	f->name_len = colon ? (size_t)(colon - f->start) : 0;
	while (f->name_len > 0 && (f->name[f->name_len - 1] == ' ' ||
				   f->name[f->name_len - 1] == '\t'))
		f->name_len--;
	f->val = colon ? colon + 1 : f->start + f->len;
	f->val_len = (size_t)(f->start + f->len - f->val);
	*pos = e;
	return 1;
}

/* A header line: a field name of printable ASCII other than ':' and
 * blanks, then ':'. */
static int is_header_line(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && s[i] > ' ' && s[i] < 0x7f && s[i] != ':')
		i++;
	return i > 0 && i < len && s[i] == ':';
}

/* ---- writing -------------------------------------------------------------- */

struct msgfile {
	struct fdio_out *f;
	uint64_t size;          /* message bytes, after "D" */
	uint64_t max;
	int too_big;
};

static void emit(struct msgfile *m, const char *p, size_t n)
{
	m->size += n;
	if (m->size > m->max) {
		m->too_big = 1;
		return;
	}
	fdio_write(m->f, p, n);
}

static void emitf(struct msgfile *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void emitf(struct msgfile *m, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		emit(m, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* The display name for From: as a quoted string, or RFC 2047 encoded
 * words when it has 8-bit bytes (whole UTF-8 characters per word). */
static void format_name(const char *name, char *out, size_t n)
{
	size_t len = strlen(name);
	struct buf b;
	int eight = 0;

	if (n == 0)
		return;
	buf_init(&b, out, n - 1);       /* the last byte for the NUL */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] >= 0x80)
			eight = 1;
	if (!eight) {
		buf_addc(&b, '"');
		/* An escaped character, and room left for the closing quote. */
		for (size_t i = 0; i < len && buf_fits(&b, 2, 1); i++) {
			if (name[i] == '"' || name[i] == '\\')
				buf_addc(&b, '\\');
			buf_addc(&b, name[i]);
		}
		buf_addc(&b, '"');
		out[b.len] = '\0';
		return;
	}
	/* A whole word (at most 80 characters) or none. */
	for (size_t i = 0; i < len && buf_fits(&b, 80, 0);) {
		size_t k = i;
		char word[B64_ENCODED_SIZE(45)];
		/* 45 bytes make 60 base64 characters: a 72-char word. */
		while (k < len && k - i < 45) {
			size_t cl = 1;
			unsigned char c = (unsigned char)name[k];
			if (c >= 0xf0) cl = 4;
			else if (c >= 0xe0) cl = 3;
			else if (c >= 0xc0) cl = 2;
			if (k + cl - i > 45)
				break;
			k += cl;
		}
		if (k == i)
			k = i + 1;
		if (k > len)
			k = len;
		b64_encode((const unsigned char *)name + i, k - i, word,
			   sizeof(word));
		buf_printf(&b, "%s=?UTF-8?B?%s?=", b.len ? " " : "", word);
		i = k;
	}
	out[b.len] = '\0';
}

static int sender_is_local(const char *a)
{
	const char *at = strrchr(a, '@');

	return !at || is_local_domain(at + 1, strlen(at + 1));
}

/* From: of a local address, rewritten to the masquerade address; the
 * display name is kept. */
static void emit_from_masqueraded(struct msgfile *m, const struct field *f)
{
	const char *lt = NULL;
	int quote = 0;
	size_t plen;

	for (size_t i = 0; i < f->val_len; i++) {
		char c = f->val[i];
		if (c == '"' )
			quote = !quote;
		else if (c == '<' && !quote)
			lt = f->val + i;
	}
	plen = lt ? (size_t)(lt - f->val) : 0;
	while (plen > 0 && (f->val[plen - 1] == ' ' || f->val[plen - 1] == '\t' ||
			    f->val[plen - 1] == '\n'))
		plen--;
	if (plen > 0)
		emitf(m, "From:%.*s <%s>\n", (int)plen, f->val, cf->masquerade);
	else
		emitf(m, "From: %s\n", cf->masquerade);
}

/* From: holds exactly one address, and a local one. */
static int from_is_local(const struct field *f)
{
	int saved = nrcpt, local, rc;
	char a[ADDR_MAX];

	if (nrcpt >= CONFIG_SMTP_MAX_RCPT)
		return 0;
	quiet = 1;
	rc = address_list(f->val, f->val_len);
	quiet = 0;
	if (rc != 0 || nrcpt != saved + 1) {
		nrcpt = saved;
		return 0;
	}
	memcpy(a, rcpts[saved], sizeof(a));
	nrcpt = saved;
	local = sender_is_local(a);
	return local;
}

/* What sendmail does with a field of the header. */
enum {
	FK_ADDR = 1,            /* holds addresses a bare name may appear in */
	FK_RCPT = 2,            /* -t takes recipients from it */
	FK_DROP = 4,            /* never written (Bcc) */
	FK_FROM = 8, FK_DATE = 16, FK_MSGID = 32,       /* added when missing */
};

static unsigned field_kind(const struct field *f)
{
	static const struct {
		char name[14];
		unsigned char kind;
	} kinds[] = {
		{ "From", FK_ADDR | FK_FROM }, { "To", FK_ADDR | FK_RCPT },
		{ "Cc", FK_ADDR | FK_RCPT }, { "Bcc", FK_RCPT | FK_DROP },
		{ "Reply-To", FK_ADDR }, { "Sender", FK_ADDR },
		{ "Resent-From", FK_ADDR }, { "Resent-To", FK_ADDR },
		{ "Resent-Cc", FK_ADDR }, { "Resent-Sender", FK_ADDR },
		{ "Date", FK_DATE }, { "Message-ID", FK_MSGID },
	};

	for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
		if (str_ieq(f->name, f->name_len, kinds[i].name))
			return kinds[i].kind;
	return 0;
}

/* Emits the span [*done, upto) and then "@hostname"; *done = upto.
 * Not inlined: one copy for its two calls. */
static __attribute__((noinline)) void emit_qualifier(struct msgfile *m,
						     const char **done,
						     const char *upto)
{
	emit(m, *done, (size_t)(upto - *done));
	emitf(m, "@%s", cf->hostname);
	*done = upto;
}

/* Emits an address field with "@hostname" (always a local domain) added
 * to every address without a domain, as sendmail always did: a bare
 * "To: root" would otherwise be completed by the next server with its
 * own domain (the smarthost's: root@provider.net) and point nowhere.
 * Commas, colons and semicolons count only outside quotes, comments and
 * angle brackets; a group's name is not an address. */
static void emit_qualified(struct msgfile *m, const struct field *f)
{
	const char *v = f->val, *done = f->start, *word_end = NULL, *lt = NULL;
	struct lex lx = { 0, 0 };
	int at = 0, angled = 0;

	for (size_t i = 0; i <= f->val_len; i++) {
		char c = i < f->val_len ? v[i] : ',';

		if (i < f->val_len ? lex_skip(&lx, v, f->val_len, &i) :
		    lx.quote || lx.comment) {
			if (c == '"' && !lx.quote && !lx.comment)
				word_end = v + i + 1;   /* a quoted local part ended */
			continue;
		}
		if (c == '<' && !lt) {
			lt = v + i;
			at = 0;
		} else if (c == '>' && lt) {
			if (!at && v + i > lt + 1)
				emit_qualifier(m, &done, v + i);
			lt = NULL;
			angled = 1;
		} else if (c == '@') {
			at = 1;
		} else if (lt) {
			continue;
		} else if (c == ':' || c == ',' || c == ';') {
			if (c != ':' && !angled && !at && word_end)
				emit_qualifier(m, &done, word_end);
			word_end = NULL;
			at = angled = 0;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			word_end = v + i + 1;
		}
	}
	emit(m, done, (size_t)(f->start + f->len - done));
}

/* Received: for a local submission, first in the header: who (the real
 * uid and its login name; no network was involved), where, when. The
 * daemon checks it against the file's owner (store/maildrop). */
static void emit_received(struct msgfile *m, const char *date)
{
	char line[MAILDROP_LOGIN_MAX + 400];
	size_t n = maildrop_received(line, sizeof(line), getuid(), cf->hostname,
				     tmp_name + 1, date);

	emit(m, line, n);
}

/* Not inlined into submit(), nor is make_name: submit's frame holds
 * over 8 KB of buffers, and on MIPS16 every access to a local variable
 * that far up the stack takes a 4-byte instruction instead of 2. */
static __attribute__((noinline)) void emit_headers(struct msgfile *m,
						   const struct opts *o)
{
	size_t pos = 0;
	struct field f;
	unsigned kind, seen = 0;
	char date[64], name[SENDMAIL_NAME_MAX * 3];

	rfc5322_date(date, sizeof(date), time(NULL));
	emit_received(m, date);
	while (next_field(&pos, &f)) {
		kind = field_kind(&f);
		seen |= kind;
		if (kind & FK_DROP)
			continue;
		if ((kind & FK_FROM) && cf->masquerade[0] && from_is_local(&f)) {
			emit_from_masqueraded(m, &f);
			continue;
		}
		if (kind & FK_ADDR)
			emit_qualified(m, &f);
		else
			emit(m, f.start, f.len);
		if (f.len == 0 || f.start[f.len - 1] != '\n')
			emit(m, "\n", 1);
	}
	if (!(seen & FK_FROM)) {
		const char *addr = null_sender ? NULL : sender;
		char mailer[300];
		if (!addr) {
			snprintf(mailer, sizeof(mailer), "MAILER-DAEMON@%s",
				 cf->hostname);
			addr = mailer;
		}
		name[0] = '\0';
		if (o->fullname && o->fullname[0]) {
			format_name(o->fullname, name, sizeof(name));
		} else if (!o->sender) {
			struct passwd *pw = getpwuid(getuid());
			char gecos[SENDMAIL_NAME_MAX + 1];
			size_t k = 0;
			for (; pw && pw->pw_gecos && pw->pw_gecos[k] &&
			     pw->pw_gecos[k] != ',' && k < SENDMAIL_NAME_MAX; k++)
				gecos[k] = (unsigned char)pw->pw_gecos[k] < 0x20 ?
					' ' : pw->pw_gecos[k];
			gecos[k] = '\0';
			if (k)
				format_name(gecos, name, sizeof(name));
		}
		if (name[0])
			emitf(m, "From: %s <%s>\n", name, addr);
		else
			emitf(m, "From: %s\n", addr);
	}
	if (!(seen & FK_DATE))
		emitf(m, "Date: %s\n", date);
	if (!(seen & FK_MSGID))
		emitf(m, "Message-ID: <%s@%s>\n", tmp_name + 1, cf->hostname);
}

/* ---- input ------------------------------------------------------------- */

/* The message on standard input. */
static struct fdio_in msg_in;

/* Reads one line or a piece of it into buf (at most cap bytes, line end
 * not stored). *eol: the line ended here (LF, CRLF or EOF). Returns the
 * length, or -1 at EOF with nothing read. CRLF becomes LF; a lone CR is
 * content. */
static long read_piece(char *mem, size_t cap, int *eol)
{
	struct buf b;
	int c;

	*eol = 0;
	buf_init(&b, mem, cap);
	while (buf_remaining(&b) > 0) {
		c = fdio_getc(&msg_in);
		if (c < 0) {
			if (b.len == 0)
				return -1;
			*eol = 1;
			return (long)b.len;
		}
		if (c == '\n') {
			*eol = 1;
			in_line++;
			return (long)b.len;
		}
		if (c == '\r') {
			if (fdio_peek(&msg_in) == '\n') {
				fdio_getc(&msg_in);
				*eol = 1;
				in_line++;
				return (long)b.len;
			}
		}
		if (c == '\0' && !nul_line)
			nul_line = in_line;
		buf_addc(&b, (char)c);
	}
	return (long)b.len;
}

/* Reads the header section into hbuf. Returns 1 when input ended inside
 * it, 0 otherwise; *first holds the first body line (when the headers
 * ended with a line that is not a header, without an empty line) or is
 * empty. -1: the header section is too big. */
static int read_headers(const struct opts *o, char *first, size_t cap,
			long *first_len, int *first_eol)
{
	char line[SENDMAIL_LINE_CHUNK];
	struct buf h;
	int eol, line_start = 1, in_field = 0, first_line = 1;
	long n;

	*first_len = -1;
	for (;;) {
		n = read_piece(line, sizeof(line), &eol);
		if (n < 0)
			return 1;
		if (line_start) {
			if (!o->ignore_dots && eol && n == 1 && line[0] == '.')
				return 1;
			if (eol && n == 0)
				return 0;       /* the empty line */
			if (first_line && n >= 5 && memcmp(line, "From ", 5) == 0) {
				/* an mbox separator line: dropped */
				while (!eol && read_piece(line, sizeof(line), &eol) >= 0)
					;
				first_line = 0;
				continue;
			}
			first_line = 0;
			if ((line[0] == ' ' || line[0] == '\t') ? !in_field :
			    !is_header_line(line, (size_t)n)) {
				/* Body without headers: keep this line. */
				memcpy(first, line, (size_t)n < cap ? (size_t)n : cap);
				*first_len = n;
				*first_eol = eol;
				return 0;
			}
			in_field = 1;
		}
		buf_init_len(&h, hbuf, sizeof(hbuf), hlen);
		if (!buf_fits(&h, (size_t)n, 1))
			return -1;
		buf_add(&h, line, (size_t)n);
		if (eol)
			buf_addc(&h, '\n');
		hlen = h.len;
		line_start = eol;
	}
}

/* ---- the maildrop ---------------------------------------------------------- */

/* The spool as the daemon makes it, when it never ran: possible for root
 * (owned by run_as, so the daemon can pick the mail up later) or for a
 * user who may create spool_dir. */
static int make_spool(void)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (geteuid() == 0 && cf->run_as[0]) {
		struct passwd *pw = getpwnam(cf->run_as);
		if (pw) {
			uid = pw->pw_uid;
			gid = pw->pw_gid;
		}
	}
	return spool_prepare(cf->spool_dir, uid, gid);
}

/* The maildrop is opened O_PATH: others may enter it but not read it
 * (it is not listable), which openat and renameat do not need. */
static int open_maildrop(char *path, size_t n)
{
	struct stat st;
	int e;

	snprintf(path, n, "%s/maildrop", cf->spool_dir);
	drop_dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (drop_dirfd < 0 && errno == ENOENT) {
		if (make_spool() != 0) {
			e = errno;
			return fail(EX_TEMPFAIL_, "%s does not exist and cannot be "
				    "made (%s): start the daemon once (it makes "
				    "spool_dir %s), or run sendmail once as root",
				    path, strerror(e), cf->spool_dir);
		}
		drop_dirfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	if (drop_dirfd < 0 || fstat(drop_dirfd, &st) != 0) {
		e = errno;
		if (e == EACCES)
			return fail(EX_TEMPFAIL_, "cannot reach %s: %s (spool_dir "
				    "%s must be mode 711 for users other than the "
				    "daemon's: restarting the daemon sets it, or "
				    "chmod 711 %s)", path, strerror(e),
				    cf->spool_dir, cf->spool_dir);
		return fail(EX_TEMPFAIL_, "cannot open %s: %s (spool_dir %s)",
			    path, strerror(e), cf->spool_dir);
	}
	if (faccessat(drop_dirfd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
		e = errno;
		return fail(EX_TEMPFAIL_, "cannot write to %s: %s (it should be "
			    "mode 1733; restarting the daemon sets it)", path,
			    strerror(e));
	}
	return 0;
}

/* Not inlined: see emit_headers. */
static __attribute__((noinline)) void make_name(void)
{
	struct timespec ts;
	unsigned char r[6] = { 0 };

	clock_gettime(CLOCK_REALTIME, &ts);
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		unsigned v = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16);
		memcpy(r, &v, sizeof(v));
	}
	/* Unguessable: the directory is not listable (1733). */
	snprintf(tmp_name, sizeof(tmp_name),
		 ".%lld.%06ld.%d.%02x%02x%02x%02x%02x%02x",
		 (long long)ts.tv_sec, ts.tv_nsec / 1000, (int)getpid(),
		 r[0], r[1], r[2], r[3], r[4], r[5]);
}

static int finish_file(struct fdio_out *f, int fd)
{
	int dfd, rc;

	if (fdio_flush(f) != 0) {
		errno = f->err;
		return -1;
	}
	if (fsync(fd) != 0)
		return -1;
	/* Never over another message (the name is random: EEXIST is an
	 * error, not a retry). */
	if (rename_noreplace(drop_dirfd, tmp_name, drop_dirfd, tmp_name + 1) != 0)
		return -1;
	tmp_live = 0;
	/* The rename must reach the disk too. Root and the daemon's user
	 * fsync the directory; others cannot open it (not listable), so the
	 * file is fsynced again: the rename changed its inode (ctime) in the
	 * same journal transaction as the directory entries, which that
	 * commits on journaling file systems (ext4, XFS, btrfs, UBIFS). */
	dfd = openat(drop_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		rc = fsync(dfd);
		close(dfd);
	} else {
		rc = fsync(fd);
	}
	/* Renamed but maybe not durable: report, the daemon may still send
	 * it (a duplicate is better than a loss). */
	return rc != 0 ? -2 : 0;
}

/* A NUL byte in the message: refused like the SMTP side does (554
 * 5.6.0), nothing queued. Mail readers, IMAP clients and the next
 * server all take NUL for the end of a string (Postfix refuses it only
 * with message_reject_characters = \0; RFC 5322 forbids it). */
static int nul_refused(void)
{
	return fail(EX_DATAERR_, "the message has a NUL byte (line %ld of the "
		    "input); nothing was queued: remove NUL bytes (tr -d '\\000') "
		    "or send binary data as a MIME attachment", nul_line);
}

static int submit(const struct opts *o, int argc, char **argv, int first_rcpt)
{
	char path[CONF_PATH_MAX + 32], line[SENDMAIL_LINE_CHUNK];
	char first[SENDMAIL_LINE_CHUNK];
	long first_len, n;
	int first_eol = 0, ended, eol, line_start, fd, rc, e;
	struct msgfile m = { 0 };
	struct sigaction sa;
	struct fdio_out f;

	for (int i = first_rcpt; i < argc; i++) {
		if (has_ctl(argv[i]))
			return fail(EX_DATAERR_, "CR or LF in a recipient");
		rc = address_list(argv[i], strlen(argv[i]));
		if (rc)
			return rc;
	}
	if (!o->from_headers && nrcpt == 0)
		return usage("no recipients");
	if (open_maildrop(path, sizeof(path)) != 0)
		return EX_TEMPFAIL_;

	fdio_in_init(&msg_in, 0);
	ended = read_headers(o, first, sizeof(first), &first_len, &first_eol);
	if (ended < 0)
		return fail(EX_DATAERR_, "header section over %d bytes",
			    SENDMAIL_HEADER_MAX);
	if (nul_line)
		return nul_refused();
	if (o->from_headers) {
		size_t pos = 0;
		struct field fl;
		while (next_field(&pos, &fl)) {
			if (!(field_kind(&fl) & FK_RCPT))
				continue;
			rc = address_list(fl.val, fl.val_len);
			if (rc)
				return rc;
		}
		if (nrcpt == 0)
			return usage("no recipients (none given and none in "
				     "To, Cc or Bcc)");
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	make_name();
	fd = openat(drop_dirfd, tmp_name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(EX_TEMPFAIL_, "cannot create a file in %s: %s", path,
			    strerror(errno));
	tmp_live = 1;
	/* Readable by the daemon whatever the caller's umask. */
	fchmod(fd, 0644);
	fdio_out_init(&f, fd);
	m.f = &f;
	m.max = cf->max_message_size;

	fdio_printf(&f, "F %s\n", null_sender ? "" : sender);
	for (int i = 0; i < nrcpt; i++)
		fdio_printf(&f, "R %s\n", rcpts[i]);
	fdio_printf(&f, "U %u\nD\n", (unsigned)getuid());

	emit_headers(&m, o);
	emit(&m, "\n", 1);
	if (first_len >= 0) {
		emit(&m, first, (size_t)first_len);
		if (first_eol)
			emit(&m, "\n", 1);
	}
	line_start = first_len < 0 || first_eol;
	while (!ended && !m.too_big) {
		n = read_piece(line, sizeof(line), &eol);
		if (n < 0 || nul_line)
			break;
		if (line_start && eol && n == 1 && line[0] == '.' &&
		    !o->ignore_dots)
			break;
		emit(&m, line, (size_t)n);
		if (eol)
			emit(&m, "\n", 1);
		line_start = eol;
	}
	if (nul_line || msg_in.err || m.too_big) {
		close(fd);
		remove_tmp();
		if (nul_line)
			return nul_refused();
		if (msg_in.err)
			return fail(EX_IOERR_, "error reading the message: %s",
				    strerror(msg_in.err));
		return fail(EX_DATAERR_, "message too big (max_message_size is "
			    "%llu bytes)", (unsigned long long)m.max);
	}
	rc = finish_file(&f, fd);
	e = errno;
	close(fd);
	if (rc == -1) {
		remove_tmp();
		return fail(EX_TEMPFAIL_, "cannot write the message to %s: %s",
			    path, strerror(e));
	}
	if (rc == -2)
		return fail(EX_TEMPFAIL_, "cannot fsync %s: %s", path,
			    strerror(e));
	return EX_OK_;
}

/* ---- sender ------------------------------------------------------------ */

/* root and the daemon's own user may send as anybody. */
static int privileged(void)
{
	struct passwd *pw;

	if (getuid() == 0)
		return 1;
	pw = cf->run_as[0] ? getpwnam(cf->run_as) : NULL;
	return pw && pw->pw_uid == getuid();
}

static int set_sender(const struct opts *o)
{
	const char *s = o->sender;
	char login[ADDR_MAX];
	size_t len;

	if (s) {
		if (has_ctl(s))
			return fail(EX_DATAERR_, "CR or LF in the sender address");
		len = strlen(s);
		if (len >= 2 && s[0] == '<' && s[len - 1] == '>')
			s++, len -= 2;
		if (len == 0)
			null_sender = 1;
		else if (normalize(s, len, sender, sizeof(sender)) != 0)
			return fail(EX_DATAERR_, "bad sender address '%.100s'", o->sender);
	} else {
		struct passwd *pw = getpwuid(getuid());
		if (pw && pw->pw_name && pw->pw_name[0])
			snprintf(login, sizeof(login), "%s", pw->pw_name);
		else
			snprintf(login, sizeof(login), "uid%u", (unsigned)getuid());
		if (normalize(login, strlen(login), sender, sizeof(sender)) != 0)
			return fail(EX_NOUSER_, "login name '%.64s' is not usable in "
				    "an address; use -f", login);
	}
	if (cf->masquerade[0] && !null_sender && sender_is_local(sender))
		snprintf(sender, sizeof(sender), "%s", cf->masquerade);
	if (!maildrop_sender_ok(cf, null_sender ? "" : sender, getuid(),
				privileged())) {
		char me[MAILDROP_LOGIN_MAX];
		maildrop_login(getuid(), me, sizeof(me));
		return fail(EX_NOPERM_, "uid %u may not send as <%s>: only as "
			    "itself, %s@ a local domain%s%s (sender_login_check; "
			    "root and the daemon's user may use any -f)",
			    (unsigned)getuid(), null_sender ? "" : sender,
			    me[0] ? me : "LOGIN",
			    cf->masquerade[0] ? ", or as " : "",
			    cf->masquerade[0] ? cf->masquerade : "");
	}
	return 0;
}

/* ---- -q ------------------------------------------------------------------- */

static int base_is_postie(const char *arg)
{
	const char *slash = strrchr(arg, '/');

	return strcmp(slash ? slash + 1 : arg, "postie") == 0;
}

static int is_postie(long pid)
{
	char path[48], cmd[512];
	long n;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	n = fdio_read_head(path, cmd, sizeof(cmd));
	if (n < 0)
		return kill((pid_t)pid, 0) == 0;
	return n > 0 && (base_is_postie(cmd) ||
			 ((long)strlen(cmd) + 1 < n && base_is_postie(cmd + strlen(cmd) + 1)));
}

/* A user who may not signal the daemon (it runs as another user) asks
 * through the maildrop: an empty ".runq-UID-PID" file, which the daemon
 * removes and answers with a queue run (at most one per
 * QUEUE_RUNQ_GAP seconds). EX_OK_ (the caller says so), or an error. */
static int run_queue_request(long pid)
{
	char path[CONF_PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/maildrop/.runq-%ld-%ld", cf->spool_dir,
		 (long)getuid(), (long)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(EX_NOPERM_, "cannot signal the daemon (pid %ld, another "
			    "user) nor leave it a request in %s/maildrop: %s", pid,
			    cf->spool_dir, strerror(errno));
	close(fd);
	return EX_OK_;
}

static int run_queue(void)
{
	char path[CONF_PATH_MAX + 32], buf[64];
	const char *via = "";
	int rc;
	long pid;
	char *end;

	snprintf(path, sizeof(path), "%s/postie.pid", cf->spool_dir);
	if (fdio_read_head(path, buf, sizeof(buf)) < 0) {
		dprintf(1, "%s: no daemon running (no %s); the queue runs when it "
		       "starts\n", prog, path);
		return EX_OK_;
	}
	pid = strtol(buf, &end, 10);
	if (pid <= 1 || (*end != '\n' && *end != '\0')) {
		dprintf(1, "%s: no daemon running (bad %s)\n", prog, path);
		return EX_OK_;
	}
	/* A stale pid file may name some other process: only postie (its
	 * program name, or the first argument under an emulator such as
	 * qemu-user, which runs cross builds in the tests). */
	if (!is_postie(pid)) {
		dprintf(1, "%s: no daemon running; the queue runs when it starts\n",
		       prog);
		return EX_OK_;
	}
	if (kill((pid_t)pid, SIGUSR1) != 0) {
		if (errno != EPERM)
			return fail(EX_OSERR_, "cannot signal the daemon (pid %ld): "
				    "%s", pid, strerror(errno));
		rc = run_queue_request(pid);
		if (rc != EX_OK_)
			return rc;
		via = ", through the maildrop";
	}
	dprintf(1, "%s: asked the daemon (pid %ld) to run the queue%s\n", prog,
		pid, via);
	return EX_OK_;
}

/* ---- mailq ------------------------------------------------------------------ */

/* The shape of Postfix's mailq: one line per message (id, size, arrival,
 * sender), then per recipient its state and reason in parentheses over
 * the address; the state comes from store/qstate, as the daemon wrote it. */
#define MAILQ_INDENT 55          /* recipients, under the sender column */

static struct qstate mq_state;
static char mq_rcpt[CONFIG_SMTP_MAX_RCPT][ADDR_MAX];

/* "45s", "12m", "2h05m", "3d04h". */
/* Unsigned, one 64-bit division (the days) and the rest of a day in 32
 * bits: signed 64-bit division and modulo are libgcc's __divdi3/__moddi3
 * on 32-bit targets (2.3 KB on MIPS), and __udivdi3 is linked anyway. */
static void mq_duration(char *buf, size_t n, long long secs)
{
	unsigned long long s = secs < 0 ? 0 : (unsigned long long)secs;
	unsigned long long d = s / 86400;
	unsigned r = (unsigned)(s - d * 86400), h = r / 3600, m = r / 60;

	if (d)
		snprintf(buf, n, "%llud%02uh", d, h);
	else if (h)
		snprintf(buf, n, "%uh%02um", h, m - h * 60);
	else if (m)
		snprintf(buf, n, "%um", m);
	else
		snprintf(buf, n, "%us", r);
}

static void mq_printable(char *dst, size_t n, const char *src)
{
	str_printable(dst, n, src, strlen(src));
}

/* "(deferred, 2 attempts: host mx.example.net said: 450 4.2.1 ...)". */
static void mq_reason(const struct qstate_target *t)
{
	char text[QSTATE_TEXT * 4], host[QSTATE_HOST * 4];

	/* Escaped once, here: the state keeps the reply as it came. */
	qstate_shown(text, sizeof(text), t->text);
	qstate_shown(host, sizeof(host), t->host);
	dprintf(1, "%8s(%s", "", qstate_word(t));
	if (t->tries > 0 && t->state == QS_PENDING)
		dprintf(1, " after %d attempt%s", t->tries, t->tries == 1 ? "" : "s");
	if (t->state == QS_PENDING && t->code == 0) {
		fdio_out(1, ": not tried yet)\n");
		return;
	}
	if (t->local)
		dprintf(1, ": a problem on this side, not counted as an attempt");
	if (host[0])
		dprintf(1, ": host %s said: %s)\n", host, text);
	else if (t->state == QS_DONE && !text[0])
		fdio_out(1, ")\n");
	else
		dprintf(1, ": %s%s%s)\n", t->status[0] != '-' ? t->status : "",
		       t->status[0] != '-' ? " " : "", text);
}

static void mq_target(const struct qstate_target *t, int nr)
{
	char shown[ADDR_MAX * 4], orig[ADDR_MAX * 4];
	const char *r = t->rcpt < nr ? mq_rcpt[t->rcpt] : "";

	mq_reason(t);
	mq_printable(orig, sizeof(orig), r);
	if (strncmp(t->addr, "local:", 6) == 0) {
		mq_printable(shown, sizeof(shown), t->addr + 6);
		dprintf(1, "%*s%s (mailbox %s)\n", MAILQ_INDENT, "", orig, shown);
		return;
	}
	mq_printable(shown, sizeof(shown), t->addr);
	if (r[0] && strcasecmp(r, t->addr) != 0)
		dprintf(1, "%*s%s (for %s)\n", MAILQ_INDENT, "", shown, orig);
	else
		dprintf(1, "%*s%s\n", MAILQ_INDENT, "", shown);
}

/* The envelope as the queue file has it (read by spool's reader, as
 * the daemon does): the first sender, the recipients in mq_rcpt. */
struct mq_env {
	char from[ADDR_MAX * 4];
	int nr;
};

static int mq_env_line(void *ctx, char kind, const char *val, size_t len)
{
	struct mq_env *e = ctx;

	if (kind == 'F' && !e->from[0])
		str_printable(e->from, sizeof(e->from), val, len);
	else if (kind == 'R' && e->nr < CONFIG_SMTP_MAX_RCPT)
		str_copy(mq_rcpt[e->nr++], ADDR_MAX, val, len);
	return 0;
}

static int list_one(int dirfd, const char *name, uint64_t *total)
{
	struct qstate *q = &mq_state;
	char when[32], *from;
	struct stat st;
	struct spool_file sf;
	struct mq_env env;
	int nr, has_state;
	long long size;
	time_t now = time(NULL);
	struct tm tm;

	sf.fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (sf.fd < 0 || fstat(sf.fd, &st) != 0) {
		if (sf.fd >= 0)
			close(sf.fd);
		return 0;       /* delivered meanwhile */
	}
	env.from[0] = '\0';
	env.nr = 0;
	/* A damaged envelope: what was read, and the whole file as size. */
	if (spool_read_envelope(&sf, mq_env_line, &env) != 0)
		sf.data_off = 0;
	close(sf.fd);
	from = env.from;
	nr = env.nr;
	has_state = qstate_load(dirfd, name, q) == 0;
	if (!q->arrival)
		q->arrival = st.st_mtime;
	size = (long long)st.st_size - (long long)sf.data_off;
	*total += (uint64_t)(size > 0 ? size : 0);
	localtime_r(&q->arrival, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	dprintf(1, "%-24s %8lld %s  %s\n", name, size, when,
	       from[0] ? from : "MAILER-DAEMON");

	/* The message: age, attempts, next try. */
	char age[32], in[32], at[16] = "";
	mq_duration(age, sizeof(age), (long long)(now - q->arrival));
	dprintf(1, "%8s(age %s; %d delivery attempt%s", "", age, q->attempts,
	       q->attempts == 1 ? "" : "s");
	if (q->local_fails)
		dprintf(1, "; %d run%s failed on this side, not counted",
		       q->local_fails, q->local_fails == 1 ? "" : "s");
	if (!has_state || q->next <= now) {
		fdio_out(1, "; next try now)\n");
	} else {
		mq_duration(in, sizeof(in), (long long)(q->next - now));
		localtime_r(&q->next, &tm);
		strftime(at, sizeof(at), "%H:%M:%S", &tm);
		dprintf(1, "; next try in %s, at %s)\n", in, at);
	}
	if (q->n == 0) {
		dprintf(1, "%8s(waiting for the first delivery attempt)\n", "");
		for (int i = 0; i < nr; i++) {
			char shown[ADDR_MAX * 4];
			mq_printable(shown, sizeof(shown), mq_rcpt[i]);
			dprintf(1, "%*s%s\n", MAILQ_INDENT, "", shown);
		}
	}
	for (int i = 0; i < q->n; i++)
		mq_target(&q->t[i], nr);
	fdio_out(1, "\n");
	return 1;
}

/* Files (not dotfiles) in spool_dir/SUB; 0 when it cannot be read. */
/* Files in spool_dir/sub; with *kept, those of them that are kept
 * undeliverable messages (NAME.undeliverable[.N]) are counted there. */
static int mq_count(const char *sub, int *kept)
{
	char path[CONF_PATH_MAX + 16];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", cf->spool_dir, sub);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (kept && strstr(e->d_name, SPOOL_UNDELIVERABLE))
			++*kept;
		else
			n++;
	}
	closedir(d);
	return n;
}

static int name_filter(const struct dirent *e)
{
	size_t l = strlen(e->d_name);

	return e->d_name[0] != '.' &&
	       !(l > 3 && strcmp(e->d_name + l - 3, ".st") == 0) &&
	       !(l > 4 && strcmp(e->d_name + l - 4, ".new") == 0);
}

/* Why a user cannot see the queue: it belongs to the daemon's user. */
static int mailq_denied(const char *path)
{
	struct stat st;
	struct passwd *pw;
	char owner[64] = "";

	if (stat(cf->spool_dir, &st) == 0) {
		pw = getpwuid(st.st_uid);
		if (pw)
			snprintf(owner, sizeof(owner), " (%s)", pw->pw_name);
	}
	return fail(EX_NOPERM_, "the queue in %s holds other users' mail and is "
		    "readable only by root and the daemon's user%s; run mailq "
		    "as one of them (e.g. sudo mailq). Your own messages were "
		    "accepted when sendmail exited 0", path, owner);
}

static int list_queue(void)
{
	char path[CONF_PATH_MAX + 32];
	struct dirent **names = NULL;
	uint64_t total = 0;
	int n, shown = 0, dirfd, waiting, refused, kept = 0;

	snprintf(path, sizeof(path), "%s/queue", cf->spool_dir);
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 && errno == EACCES)
		return mailq_denied(path);
	if (dirfd < 0 && errno != ENOENT)
		return fail(EX_TEMPFAIL_, "cannot read %s: %s", path,
			    strerror(errno));
	n = dirfd < 0 ? 0 : scandir(path, &names, name_filter, alphasort);
	if (n < 0) {
		close(dirfd);
		return fail(errno == EACCES ? EX_NOPERM_ : EX_TEMPFAIL_,
			    "cannot list %s: %s", path, strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		if (shown == 0)         /* columns as list_one prints them */
			fdio_out(1, "-Queue ID-               --Size-- "
				 "----Arrival Time---  -Sender/Recipient-------\n");
		shown += list_one(dirfd, names[i]->d_name, &total);
		free(names[i]);
	}
	free(names);
	if (dirfd >= 0)
		close(dirfd);

	waiting = mq_count("maildrop", NULL);
	refused = mq_count("bad", &kept);
	if (shown == 0)
		dprintf(1, "Mail queue is empty\n");
	else
		dprintf(1, "-- %llu Kbytes in %d Request%s.\n",
		       (unsigned long long)((total + 1023) / 1024), shown,
		       shown == 1 ? "" : "s");
	if (waiting > 0)
		dprintf(1, "-- %d message%s in maildrop, not yet picked up "
		       "(is the daemon running?)\n", waiting,
		       waiting == 1 ? "" : "s");
	if (refused > 0)
		dprintf(1, "-- %d maildrop file%s refused, kept in %s/bad (the log "
		       "says why)\n", refused, refused == 1 ? "" : "s", cf->spool_dir);
	if (kept > 0)
		dprintf(1, "-- %d undeliverable message%s from <> (bounces nobody "
		       "could take) kept in %s/bad (the log says why)\n", kept,
		       kept == 1 ? "" : "s", cf->spool_dir);
	return EX_OK_;
}

/* ---- main ---------------------------------------------------------------------- */

static int load_conf(const struct opts *o)
{
	char err[512];

	/* No configuration file at the default place: the defaults
	 * (spool_dir /var/spool/postie). */
	if (!o->explicit_conf && access(o->conf_path, F_OK) != 0 &&
	    errno == ENOENT)
		cf = conf_load("/dev/null", err, sizeof(err));
	else
		cf = conf_load(o->conf_path, err, sizeof(err));
	if (!cf)
		return fail(EX_CONFIG_, "%s", err);
	return 0;
}

int sendmail_main(int argc, char **argv, int mailq_mode)
{
	struct opts o = { .conf_path = DEFAULT_CONF };
	int rc, first_rcpt = 1;

	if (argc > 0 && argv[0]) {
		const char *slash = strrchr(argv[0], '/');
		prog = slash ? slash + 1 : argv[0];
	}
	rc = parse_opts(argc, argv, &o, &first_rcpt);
	if (rc)
		return rc;
	if (o.conf_path && has_ctl(o.conf_path))
		return usage("bad -C path");
	rc = load_conf(&o);
	if (rc)
		return rc;
	if (mailq_mode || o.list_queue)
		return list_queue();
	if (o.run_queue) {
		if (first_rcpt < argc)
			return usage("-q takes no recipients");
		return run_queue();
	}
	if (o.fullname) {
		if (has_ctl(o.fullname))
			return fail(EX_DATAERR_, "CR or LF in the full name (-F)");
		for (const char *p = o.fullname; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return fail(EX_DATAERR_, "control character in the "
					    "full name (-F)");
		if (strlen(o.fullname) > SENDMAIL_NAME_MAX ||
		    !utf8_valid(o.fullname, strlen(o.fullname)))
			return fail(EX_DATAERR_, "full name (-F) over %d bytes or "
				    "not UTF-8", SENDMAIL_NAME_MAX);
	}
	rc = set_sender(&o);
	if (rc)
		return rc;
	rc = submit(&o, argc, argv, first_rcpt);
	if (drop_dirfd >= 0)
		close(drop_dirfd);
	return rc;
}
