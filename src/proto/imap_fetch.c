/* imap_fetch — the IMAP server's messages out: header-field filters and
 * streams of a message's bytes (mboxrd quoting undone, CRLF line ends),
 * the resumable MIME parse, FETCH items and the plan of a message's
 * answer, SEARCH's feed of message bytes, and the jobs (FETCH, STORE,
 * SEARCH, merge) that write as the socket takes it, then answer.
 *
 * Limits: IMAP_STEP bytes of mail read a pass, IMAP_SEND_BUDGET bytes
 * sent a pass, IMAP_ITEM_MAX octets of one message's FETCH text. */
#include "proto/imap_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"
#include "proto/auth.h"
#include "proto/imap_parse.h"
#include "proto/imap_search.h"
#include "proto/mime.h"
#include "proto/sasl.h"
#include "store/folders.h"
#include "store/index.h"
#include "store/mbox.h"
#include "store/users.h"
#include "tls/tls.h"

/* ---- header filter and streams --------------------------------------- */

static int name_in(const struct hfilter *f, const char *s, size_t n)
{
	for (int i = 0; i < f->n; i++)
		if (f->lens[i] == n) {
			size_t k;
			for (k = 0; k < n; k++) {
				int a = (unsigned char)s[k], b = (unsigned char)f->names[i][k];
				if ((a | (a >= 'A' && a <= 'Z' ? 0x20 : 0)) !=
				    (b | (b >= 'A' && b <= 'Z' ? 0x20 : 0)))
					break;
			}
			if (k == n)
				return 1;
		}
	return 0;
}

/* Emits one byte through the window of the stream (out NULL: counted
 * only). stream_step sizes its reads so that out never refuses. */
static void sink(struct stream *st, char ch, struct buf *out)
{
	if (st->fo >= st->r->wstart && st->fo < st->r->wstart + st->r->wlen && out)
		buf_addc(out, ch);
	st->fo++;
}

static void filter_byte(struct stream *st, char ch, struct buf *out)
{
	struct hfilter *f = &st->hf;

	if (!f->on) {
		sink(st, ch, out);
		return;
	}
	if (f->bol) {
		f->bol = 0;
		f->hlen = 0;
		if (ch == ' ' || ch == '\t') {
			f->decided = 1;         /* continuation: as before */
		} else if (ch == '\r' || ch == '\n') {
			f->decided = 1;         /* the blank line is always sent */
			f->include = 1;
		} else {
			f->decided = 0;
		}
	}
	if (!f->decided) {
		if (ch != ':' && ch != '\r' && ch != '\n' && f->hlen < sizeof(f->hold)) {
			struct buf h;   /* the field name so far */
			buf_init(&h, f->hold, sizeof(f->hold));
			buf_commit(&h, f->hlen);
			buf_addc(&h, ch);
			f->hlen = h.len;
			return;
		}
		size_t nl = f->hlen;
		while (nl > 0 && (f->hold[nl - 1] == ' ' || f->hold[nl - 1] == '\t'))
			nl--;
		f->include = name_in(f, f->hold, nl) != f->not;
		f->decided = 1;
		if (f->include)
			for (size_t i = 0; i < f->hlen; i++)
				sink(st, f->hold[i], out);
	}
	if (f->include)
		sink(st, ch, out);
	if (ch == '\n')
		f->bol = 1;
}

static void stream_init(struct stream *st, const struct idx_rec *r,
			const struct secrange *sr, const struct fetch_req *fr,
			const struct fetch_sec *sec)
{
	memset(st, 0, sizeof(*st));
	st->fpos = r->off + r->from_len;
	st->fend = st->fpos + r->data_len;
	st->r = sr;
	idx_out_init(&st->cv, 0, -1);
	if (sec && (sec->kind == SEC_FIELDS || sec->kind == SEC_FIELDS_NOT)) {
		st->hf.on = 1;
		st->hf.not = sec->kind == SEC_FIELDS_NOT;
		st->hf.bol = 1;
		st->hf.names = fr->fields + sec->field0;
		st->hf.lens = fr->field_len + sec->field0;
		st->hf.n = sec->nfields;
	}
}

/* Converted bytes in[0..n) at offset st->cpos through range and filter. */
static void stream_take(struct stream *st, const char *in, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++, st->cpos++)
		if (st->cpos >= st->r->a && st->cpos < st->r->b)
			filter_byte(st, in[i], out);
}

/* One step: at most `room` output bytes into out. Returns bytes written;
 * *fin set when the window is complete (or the message ended). -1 on a
 * read error. */
static long stream_step(int mfd, struct stream *st, char *out, size_t room, int *fin)
{
	struct buf ob, *o;
	size_t used, k;
	ssize_t n;
	size_t want = room > 200 ? (room - 160) / 2 : 0;
	uint64_t wend = st->r->wstart + st->r->wlen;

	*fin = 0;
	buf_init(&ob, out, out ? room : 0);
	o = out ? &ob : NULL;
	if (st->fo >= wend || st->cpos >= st->r->b) {
		*fin = 1;
		return 0;
	}
	if (st->fpos >= st->fend) {
		if (!st->ended) {
			k = idx_out_end(&st->cv, imap_obuf);
			stream_take(st, imap_obuf, k, o);
			st->ended = 1;
		}
		*fin = 1;
		return (long)ob.len;
	}
	if (!out || st->cpos + 4 * sizeof(imap_fbuf) < st->r->a)
		want = sizeof(imap_fbuf);
	if (want == 0)
		return 0;
	if (want > sizeof(imap_fbuf))
		want = sizeof(imap_fbuf);
	if (want > st->fend - st->fpos)
		want = (size_t)(st->fend - st->fpos);
	n = pread(mfd, imap_fbuf, want, (off_t)st->fpos);
	if (n <= 0)
		return -1;
	k = idx_out_feed(&st->cv, imap_fbuf, (size_t)n, imap_obuf, &used);
	st->fpos += used;
	stream_take(st, imap_obuf, k, o);
	return (long)ob.len;
}

/* The shared MIME parser: a session whose parse of a big message spans
 * loop passes keeps it until its FETCH line is planned; others wait. */
struct imap_session *imap_mime_owner;

/* Reads at most the pass's budget of a stream with no output (the
 * filtered size of HEADER.FIELDS): 1 at the end, 0 budget spent, -1. */
static int stream_count_step(struct imap_session *s, struct stream *st)
{
	struct job *j = &s->job;
	int fin = 0;

	while (!fin) {
		uint64_t before = st->fpos;
		if (j->budget == 0)
			return 0;
		if (stream_step(s->sel.mfd, st, NULL, sizeof(imap_obuf), &fin) < 0)
			return -1;
		j->budget -= j->budget < st->fpos - before ? j->budget :
			     (size_t)(st->fpos - before);
	}
	return 1;
}

/* Feeds the converted message to the MIME parser within the pass's
 * budget: all of it, or only the top header (j->mp_header_only). 1 when
 * parsed, 0 budget spent (call again), -1 on a read error. */
static int parse_mime_step(struct imap_session *s)
{
	struct job *j = &s->job;
	size_t used, k;

	while (j->mp_pos < j->mp_end) {
		size_t want = j->mp_end - j->mp_pos < sizeof(imap_fbuf) ?
			      (size_t)(j->mp_end - j->mp_pos) : sizeof(imap_fbuf);
		if (j->budget == 0)
			return 0;
		if (want > j->budget)
			want = j->budget;
		ssize_t n = pread(s->sel.mfd, imap_fbuf, want, (off_t)j->mp_pos);
		if (n <= 0)
			return -1;
		j->budget -= (size_t)n;
		k = idx_out_feed(&j->mp_cv, imap_fbuf, (size_t)n, imap_obuf, &used);
		j->mp_pos += used;
		mime_feed(&imap_mime, imap_obuf, k);
		if (j->mp_header_only && !imap_mime.part[0].in_header)
			return 1;
	}
	k = idx_out_end(&j->mp_cv, imap_obuf);
	mime_feed(&imap_mime, imap_obuf, k);
	mime_end(&imap_mime);
	return 1;
}

static void parse_mime_begin(struct imap_session *s, int header_only)
{
	struct job *j = &s->job;

	mime_init(&imap_mime);
	idx_out_init(&j->mp_cv, 0, -1);
	j->mp_pos = j->rec.off + j->rec.from_len;
	j->mp_end = j->mp_pos + j->rec.data_len;
	j->mp_header_only = header_only;
}

/* Digits at *p (at most max), advancing; -1 when none. */
static int num_at(const char **p, const char *end, int max)
{
	int v = 0, k = 0;

	while (*p < end && **p == ' ')
		(*p)++;
	while (*p < end && k < max && **p >= '0' && **p <= '9') {
		v = v * 10 + (**p - '0');
		(*p)++;
		k++;
	}
	return k ? v : -1;
}

/* INTERNALDATE from the From_ line ("From sender Sat Jan  3 01:05:34 2026"):
 * the last "Mmm dd hh:mm:ss yyyy" on the line (no scanf: see libc_small). */
static int64_t internal_time(int mfd, const struct idx_rec *r)
{
	char line[256];
	size_t n = r->from_len < sizeof(line) - 1 ? r->from_len : sizeof(line) - 1;
	ssize_t got = pread(mfd, line, n, (off_t)r->off);

	if (got <= 5)
		return 0;
	for (ssize_t i = got - 4; i >= 5; i--) {
		const char *p = line + i + 4, *end = line + got;
		int m, d, hh, mm, ss, y;
		if (line[i - 1] != ' ' || line[i + 3] != ' ' || !(m = ip_month(line + i)))
			continue;
		d = num_at(&p, end, 2);
		hh = num_at(&p, end, 2);
		if (p >= end || *p++ != ':')
			continue;
		mm = num_at(&p, end, 2);
		if (p >= end || *p++ != ':')
			continue;
		ss = num_at(&p, end, 2);
		y = num_at(&p, end, 4);
		if (d < 1 || hh < 0 || mm < 0 || ss < 0 || y < 1970)
			continue;
		return (int64_t)ip_days(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
	}
	return 0;
}

static void internaldate_text(int64_t t, char *out, size_t n)
{
	static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, n, "\"%02d-%.3s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
		 mon + tm.tm_mon * 3, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* ---- FETCH ------------------------------------------------------------ */

/* Bytes kept free in the item buffer for the ")\r\n" that ends a
 * message's answer. */
#define ITEM_END_ROOM 3
#define FETCH_TOO_BIG (-2)
/* An ENVELOPE or BODYSTRUCTURE that overflows an item buffer holding at
 * most this much before it is too big on its own: a stand-in goes. */
#define ITEM_STANDIN_AT 512

/* The structure cache: ENVELOPE, BODYSTRUCTURE and BODY of a message, as the MIME parse
 * renders them, kept in the mailbox's NAME.sc (store/index.h): a FETCH
 * that asks only for them (and for what needs no parse: flags, sizes,
 * whole bodies) answers from there without reading the message. A miss
 * parses as before and, in a mailbox opened by SELECT (not EXAMINE),
 * keeps the three texts (up to IMAP_CACHE_ENTRY bytes); a hit writes
 * nothing. The texts live in static buffers from
 * fetch_prepare to fetch_plan of one message (one call: nothing runs in
 * between). */

static char sc_read[CONFIG_IMAP_CACHE_ENTRY];  /* the texts of a hit */
static char sc_made[CONFIG_IMAP_CACHE_ENTRY];  /* the texts a parse rendered */
static const char *sc_text[IDX_SC_TEXTS];
static size_t sc_len[IDX_SC_TEXTS];

/* What the texts depend on: the renderer and the longest field shown. */
#define SC_FORMAT ((uint32_t)MIME_OUT_FORMAT << 16 | (uint32_t)CONFIG_IMAP_FIELD_MAX)

static int sc_item(int what)
{
	return what == FA_ENVELOPE ? 0 : what == FA_BODYSTRUCTURE ? 1 : 2;
}

/* The texts fit the item buffer wherever item_mime would otherwise
 * send a stand-in (at most ITEM_STANDIN_AT already in it), so answers
 * from the cache are the same as from a parse. */
static int sc_fits(const struct imap_session *s)
{
	return sc_len[0] + sc_len[1] + sc_len[2] + ITEM_STANDIN_AT + ITEM_END_ROOM <=
	       sizeof(s->item);
}

/* The selected mailbox's cache is open (made with create). */
static int sc_ready(struct imap_session *s, int create)
{
	char path[FOLDER_PATH_MAX + 320];

	if (s->sc.state == IDX_SC_OPEN)
		return 1;
	if ((s->sc.state == IDX_SC_NONE && !create) || s->sc_tried)
		return 0;
	if (idx_path(s->sel.dir, s->sel.name, ".sc", path, sizeof(path), 0) != 0 ||
	    idx_sc_open(&s->sc, path, CONFIG_IMAP_CACHE_SLOTS,
			(uint64_t)CONFIG_IMAP_CACHE_KB * 1024, SC_FORMAT, create) != 0) {
		s->sc_tried = 1;
		return 0;
	}
	if (create && s->sc.state != IDX_SC_OPEN)
		s->sc_tried = 1;
	return s->sc.state == IDX_SC_OPEN;
}

/* Message r's texts from the cache into sc_text: 1, or 0 (a miss). */
static int sc_lookup(struct imap_session *s, const struct idx_rec *r)
{
	return sc_ready(s, 0) &&
	       idx_sc_get(&s->sc, s->sel.hdr.uidvalidity, r, sc_read, sizeof(sc_read),
			  sc_text, sc_len) == 1 &&
	       sc_fits(s);
}

/* After a parse of the whole structure: the three texts rendered into
 * sc_made (1, then kept in the cache), or 0 when they are too long. */
static int sc_render(struct imap_session *s, const struct idx_rec *r)
{
	struct buf b;
	struct mime_out o;

	buf_init(&b, sc_made, sizeof(sc_made));
	for (int i = 0; i < IDX_SC_TEXTS; i++) {
		size_t room = buf_remaining(&b);
		char *p = buf_reserve(&b, room);
		if (!p)
			return 0;
		mime_out_init(&o, p, room);
		if (i == 0)
			mime_envelope(&imap_mime, 0, &o);
		else
			mime_bodystructure(&imap_mime, 0, i == 1, &o);
		if (o.overflow)
			return 0;
		sc_text[i] = p;
		sc_len[i] = o.b.len;
		buf_commit(&b, o.b.len);
	}
	if (!sc_fits(s))
		return 0;
	/* EXAMINE writes nothing: only SELECT fills the cache. */
	if (!s->sel.readonly && sc_ready(s, 1) &&
	    idx_sc_put(&s->sc, s->sel.hdr.uidvalidity, r, sc_made, sc_len) < 0) {
		/* Once per selection: the answer goes on without it. */
		log_msg(LOGL_WARN, "imap: %s/%s: structure cache: %s", s->sel.dir,
			s->sel.name, strerror(errno));
		idx_sc_close(&s->sc);
		s->sc_tried = 1;
	}
	return 1;
}

/* Counts the text just added to the item buffer (from offset at) as a
 * segment of the message's answer. */
static void item_seg(struct imap_session *s, struct job *j, size_t at)
{
	size_t n = s->ib.len - at;

	if (n == 0)
		return;
	if (j->nseg > 0 && j->segs[j->nseg - 1].kind == SEG_TEXT &&
	    j->segs[j->nseg - 1].off + j->segs[j->nseg - 1].len == (uint32_t)at) {
		j->segs[j->nseg - 1].len += (uint32_t)n;
	} else if (j->nseg < (int)ARRAY_LEN(j->segs)) {
		j->segs[j->nseg].kind = SEG_TEXT;
		j->segs[j->nseg].off = (uint32_t)at;
		j->segs[j->nseg].len = (uint32_t)n;
		j->nseg++;
	} else {
		s->ib.full = 1;         /* no segment left to send it */
	}
}

/* Text of the message's answer; when it does not fit (with the room for
 * its end), nothing is added and s->ib.full says so. */
static void item_add(struct imap_session *s, struct job *j, const char *text, size_t n)
{
	size_t at = s->ib.len;

	if (!buf_fits(&s->ib, n, ITEM_END_ROOM)) {
		s->ib.full = 1;
		return;
	}
	buf_add(&s->ib, text, n);
	item_seg(s, j, at);
}

static void item_printf(struct imap_session *s, struct job *j, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void item_printf(struct imap_session *s, struct job *j, const char *fmt, ...)
{
	char b[512];
	struct buf t;
	va_list ap;

	buf_init(&t, b, sizeof(b));
	va_start(ap, fmt);
	buf_vprintf(&t, fmt, ap);
	va_end(ap);
	if (t.full)
		s->ib.full = 1;
	else
		item_add(s, j, b, t.len);
}

/* A MIME-rendered item (ENVELOPE, BODYSTRUCTURE) straight into the free
 * part of the item buffer (reserve, render, commit). When it does not
 * fit, a short stand-in does (a NIL envelope, a text/plain structure);
 * when not even that fits, s->ib.full says so. */
static void item_mime(struct imap_session *s, struct job *j, int what)
{
	size_t at = s->ib.len;
	size_t room = sat_sub(buf_remaining(&s->ib), ITEM_END_ROOM);
	char *p;
	struct mime_out o;

	if (j->sc) {
		/* From the structure cache: it fits wherever a stand-in
		 * would be sent instead (sc_fits). */
		int k = sc_item(what);
		item_add(s, j, sc_text[k], sc_len[k]);
		return;
	}
	p = buf_reserve(&s->ib, room);
	mime_out_init(&o, p, room);
	if (what == FA_ENVELOPE)
		mime_envelope(&imap_mime, 0, &o);
	else
		mime_bodystructure(&imap_mime, 0, what == FA_BODYSTRUCTURE, &o);
	if (o.overflow && at <= ITEM_STANDIN_AT) {
		/* Too big on its own (or nearly): the stand-in. Behind other
		 * items, the answer as a whole is too big (FETCH_TOO_BIG). */
		const struct mime_part *mp = &imap_mime.part[0];
		mime_out_init(&o, p, room);
		if (what == FA_ENVELOPE) {
			mime_out_str(&o, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)", 41);
		} else {
			char b[96];
			struct buf t;
			buf_init(&t, b, sizeof(b));
			buf_printf(&t, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" %llu %llu)",
				   (unsigned long long)(mp->end_off - mp->body_off),
				   (unsigned long long)mp->lines);
			mime_out_str(&o, b, t.len);
		}
	}
	if (o.overflow) {
		s->ib.full = 1;
		return;
	}
	buf_commit(&s->ib, o.b.len);
	item_seg(s, j, at);
}

/* Range of a section in the converted message, from the MIME parse. */
static void sec_range(const struct fetch_sec *sec, const struct idx_rec *r,
		      struct secrange *sr)
{
	int text = sec->kind == SEC_HEADER || sec->kind == SEC_FIELDS ||
		   sec->kind == SEC_FIELDS_NOT || sec->kind == SEC_TEXT;
	int k;

	sr->a = sr->b = 0;
	if (sec->nparts == 0 && sec->kind == SEC_ALL) {
		sr->b = r->size;
		return;
	}
	k = mime_find(&imap_mime, sec->part, sec->nparts, text);
	if (k < 0)
		return;
	const struct mime_part *p = &imap_mime.part[k];
	switch (sec->kind) {
	case SEC_ALL:
		sr->a = p->body_off;
		sr->b = p->end_off;
		break;
	case SEC_HEADER:
	case SEC_FIELDS:
	case SEC_FIELDS_NOT:
	case SEC_MIME:
		sr->a = p->hdr_off;
		sr->b = p->body_off;
		break;
	case SEC_TEXT:
		sr->a = p->body_off;
		sr->b = p->end_off;
		break;
	}
}

/* Stores flags nf on message i of the view (r: its record with live
 * flags, updated). 1 changed, 0 nothing to do, -1 the message was
 * expunged by another session (nothing stored). */
static int set_flags(struct imap_session *s, uint32_t i, struct idx_rec *r,
		     uint32_t nf, uint64_t nkw)
{
	struct idx_reader *rd;
	struct idx_rec l;
	int k;

	if (s->sel.readonly)
		return 0;
	k = imap_live_rec(s, i, r, &rd, &l);
	if (k < 0)
		return -1;
	if (l.flags == nf && l.kw == nkw)
		return 0;
	l.flags = nf;
	l.kw = nkw;
	if (idx_store(rd, (uint32_t)k, &l) != 0)
		return 0;
	r->flags = l.flags;
	r->kw = l.kw;
	r->modseq = l.modseq;
	imap_tell_flags(s, r->uid, r->modseq);
	return 1;
}

enum { PREP_START, PREP_PARSE, PREP_COUNT, PREP_READY };

/* Reads what the plan of message seq needs, within the pass's budget:
 * its MIME structure (all of it, or the top header when that is enough)
 * and the sizes of HEADER.FIELDS sections. 1 ready (the MIME parser is
 * then ours until fetch_plan), 0 budget spent or the parser busy (call
 * again), -1 on error. */
static int fetch_prepare(struct imap_session *s, uint32_t seq)
{
	struct job *j = &s->job;
	struct fetch_req *fr = &s->q.fr;
	int rc;

	switch (j->prep) {
	case PREP_START:
		j->need_mime = j->need_full = j->sc = 0;
		for (int k = 0; k < fr->nsecs; k++) {
			const struct fetch_sec *sec = &fr->secs[k];
			if (sec->nparts || sec->kind != SEC_ALL)
				j->need_mime = 1;
			if (sec->nparts || sec->kind == SEC_TEXT)
				j->need_full = 1;
		}
		/* Only the structure items need the parse: the cache may
		 * answer them. */
		j->sc_want = CONFIG_IMAP_CACHE_SLOTS > 0 && !j->need_mime &&
			     (fr->attrs & (FA_BODYSTRUCTURE | FA_BODY | FA_ENVELOPE));
		if (fr->attrs & (FA_BODYSTRUCTURE | FA_BODY | FA_ENVELOPE))
			j->need_mime = 1;
		if (imap_get_rec_live(s, seq - 1, &j->rec) != 0)
			return -1;
		if (j->sc_want && sc_lookup(s, &j->rec)) {
			j->sc = 1;
			j->need_mime = 0;
		}
		if (j->need_mime && imap_mime_owner && imap_mime_owner != s)
			return 0;
		j->prep_k = 0;
		j->prep = PREP_COUNT;
		if (!j->need_mime)
			return fetch_prepare(s, seq);
		imap_mime_owner = s;
		parse_mime_begin(s, !j->need_full);
		j->prep = PREP_PARSE;
		/* fall through */
	case PREP_PARSE:
		rc = parse_mime_step(s);
		if (rc <= 0)
			return rc;
		if (j->mp_header_only) {
			/* Only the top header was read. A single-part message is
			 * then known whole: it ends at the message's end and its
			 * body lines are the index's count less the header's.
			 * BODYSTRUCTURE of a multipart or message/rfc822 (or of
			 * a header that never ended) needs the whole message. */
			struct mime_part *p0 = &imap_mime.part[0];
			if (p0->multipart || p0->message || p0->in_header) {
				if (fr->attrs & (FA_BODYSTRUCTURE | FA_BODY)) {
					parse_mime_begin(s, 0);
					return fetch_prepare(s, seq);
				}
				j->sc_want = 0;   /* only the envelope is known */
			}
			imap_mime.n = 1;
			p0->end_off = j->rec.size;
			p0->lines = j->rec.lines > p0->body_line ?
				    j->rec.lines - p0->body_line : 0;
		}
		if (j->sc_want)
			j->sc = sc_render(s, &j->rec);
		j->prep = PREP_COUNT;
		/* fall through */
	case PREP_COUNT:
		for (; j->prep_k < fr->nsecs; j->prep_k++) {
			const struct fetch_sec *sec = &fr->secs[j->prep_k];
			struct secrange *sr = &j->sr[j->prep_k];
			if (sec->kind != SEC_FIELDS && sec->kind != SEC_FIELDS_NOT)
				continue;
			if (!j->st_live) {
				sec_range(sec, &j->rec, sr);
				sr->total = 0;
				if (sr->b <= sr->a)
					continue;
				sr->wstart = 0;
				sr->wlen = UINT64_MAX / 2;
				stream_init(&j->st, &j->rec, sr, fr, sec);
				j->st_live = 1;
			}
			rc = stream_count_step(s, &j->st);
			if (rc <= 0)
				return rc;
			j->st_live = 0;
			sr->total = j->st.fo;
		}
		j->prep = PREP_READY;
		/* fall through */
	default:
		return 1;
	}
}

/* Plans the answer for message seq (fetch_prepare done): text segments
 * and section streams. 0, -1 on a read error, FETCH_TOO_BIG when the
 * answer's text does not fit the item buffer (nothing of it was sent). */
static int fetch_plan(struct conn *c, struct imap_session *s, uint32_t seq)
{
	struct job *j = &s->job;
	struct fetch_req *fr = &s->q.fr;
	struct idx_rec *r = &j->rec;
	int first = 1;
	uint32_t oldflags;
	char b[96];

	(void)c;
	oldflags = r->flags;
	if (fr->sets_seen && !(r->flags & IDX_F_SEEN))
		set_flags(s, seq - 1, r, r->flags | IDX_F_SEEN, r->kw);
	buf_reset(&s->ib);
	j->nseg = 0;
	j->seg = 0;
	j->seg_off = 0;
	item_printf(s, j, "* %u FETCH (", seq);
	if (j->uid && !(fr->attrs & FA_UID)) {
		item_printf(s, j, "UID %u", r->uid);
		first = 0;
	}
	if (fr->sets_seen && oldflags != r->flags && !(fr->attrs & FA_FLAGS)) {
		size_t fl = imap_rec_flags(s, r);
		item_printf(s, j, "%sFLAGS ", first ? "" : " ");
		item_add(s, j, imap_flagbuf, fl);
		first = 0;
	}
	if (fr->sets_seen && oldflags != r->flags && s->condstore &&
	    !(fr->attrs & FA_MODSEQ)) {
		item_printf(s, j, "%sMODSEQ (%llu)", first ? "" : " ",
			    (unsigned long long)r->modseq);
		first = 0;
	}
	for (int i = 0; i < fr->nitems; i++) {
		const struct fetch_item *it = &fr->items[i];
		const char *sp = first ? "" : " ";
		first = 0;
		switch (it->attr) {
		case FA_UID:
			item_printf(s, j, "%sUID %u", sp, r->uid);
			break;
		case FA_FLAGS: {
			size_t fl = imap_rec_flags(s, r);
			item_printf(s, j, "%sFLAGS ", sp);
			item_add(s, j, imap_flagbuf, fl);
			break;
		}
		case FA_SIZE:
			item_printf(s, j, "%sRFC822.SIZE %llu", sp,
				    (unsigned long long)r->size);
			break;
		case FA_MODSEQ:
			item_printf(s, j, "%sMODSEQ (%llu)", sp,
				    (unsigned long long)r->modseq);
			break;
		case FA_INTERNALDATE:
			internaldate_text(internal_time(s->sel.mfd, r), b, sizeof(b));
			item_printf(s, j, "%sINTERNALDATE %s", sp, b);
			break;
		case FA_ENVELOPE:
			item_printf(s, j, "%sENVELOPE ", sp);
			item_mime(s, j, FA_ENVELOPE);
			break;
		case FA_BODYSTRUCTURE:
			item_printf(s, j, "%sBODYSTRUCTURE ", sp);
			item_mime(s, j, FA_BODYSTRUCTURE);
			break;
		case FA_BODY:
			item_printf(s, j, "%sBODY ", sp);
			item_mime(s, j, FA_BODY);
			break;
		case 0: {
			const struct fetch_sec *sec = &fr->secs[it->sec];
			struct secrange *sr = &j->sr[it->sec];
			static const char *const names[] = { "", "RFC822",
				"RFC822.HEADER", "RFC822.TEXT" };
			uint64_t counted = sr->total;   /* HEADER.FIELDS: fetch_prepare */
			sec_range(sec, r, sr);
			sr->total = sr->b - sr->a;
			if (sec->kind == SEC_FIELDS || sec->kind == SEC_FIELDS_NOT)
				sr->total = sr->b > sr->a ? counted : 0;
			sr->wstart = 0;
			sr->wlen = sr->total;
			if (sec->partial) {
				sr->wstart = sec->pstart < sr->total ? sec->pstart : sr->total;
				sr->wlen = sr->total - sr->wstart;
				if (sr->wlen > sec->plen)
					sr->wlen = sec->plen;
			}
			if (sec->rfc822)
				item_printf(s, j, "%s%s {%llu}\r\n", sp, names[sec->rfc822],
					    (unsigned long long)sr->wlen);
			else if (sec->partial)
				item_printf(s, j, "%sBODY[%.*s]<%u> {%llu}\r\n", sp,
					    (int)sec->spec_len, sec->spec, sec->pstart,
					    (unsigned long long)sr->wlen);
			else
				item_printf(s, j, "%sBODY[%.*s] {%llu}\r\n", sp,
					    (int)sec->spec_len, sec->spec,
					    (unsigned long long)sr->wlen);
			if (j->nseg < (int)ARRAY_LEN(j->segs)) {
				j->segs[j->nseg].kind = SEG_SEC;
				j->segs[j->nseg].sec = it->sec;
				j->nseg++;
			}
			break;
		}
		}
	}
	if (!s->ib.full) {
		/* The end, in the room kept for it. */
		size_t at = s->ib.len;
		buf_add(&s->ib, ")\r\n", ITEM_END_ROOM);
		item_seg(s, j, at);
	}
	return s->ib.full ? FETCH_TOO_BIG : 0;
}

/* Sends planned segments; 1 when the message is out, 0 when the output
 * is full, 2 when the pass's budget of mail is spent, -1 on error. */
static int fetch_send(struct conn *c, struct imap_session *s)
{
	struct job *j = &s->job;

	while (j->seg < j->nseg) {
		struct seg *g = &j->segs[j->seg];
		size_t room = conn_out_free(c);

		if (g->kind == SEG_TEXT) {
			size_t left = g->len - j->seg_off;
			size_t n = left < room ? left : room;
			if (n == 0)
				return 0;
			conn_write(c, s->item + g->off + j->seg_off, n);
			j->seg_off += (uint32_t)n;
			if (j->seg_off < g->len)
				return 0;
		} else {
			const struct fetch_req *fr = &s->q.fr;
			int fin = 0;
			long w;
			if (!j->st_live) {
				stream_init(&j->st, &j->rec, &j->sr[g->sec], fr,
					    &fr->secs[g->sec]);
				j->st_live = 1;
			}
			if (room < 400)
				return 0;
			if (j->budget == 0)
				return 2;       /* skipping to a part or <partial> */
			uint64_t before = j->st.fpos;
			w = stream_step(s->sel.mfd, &j->st, imap_obuf + sizeof(imap_obuf) / 2,
					room < sizeof(imap_obuf) / 2 ? room : sizeof(imap_obuf) / 2, &fin);
			if (w < 0)
				return -1;
			j->budget -= j->budget < j->st.fpos - before ? j->budget :
				     (size_t)(j->st.fpos - before);
			if (w > 0)
				conn_write(c, imap_obuf + sizeof(imap_obuf) / 2, (size_t)w);
			if (!fin)
				continue;
			/* Short (the file changed under us): pad to the promise. */
			uint64_t sent = j->st.fo > j->sr[g->sec].wstart ?
				j->st.fo - j->sr[g->sec].wstart : 0;
			if (sent < j->sr[g->sec].wlen) {
				size_t pad = (size_t)(j->sr[g->sec].wlen - sent);
				if (pad > sat_sub(room, (size_t)w))
					pad = sat_sub(room, (size_t)w);
				if (pad > sizeof(imap_obuf))
					pad = sizeof(imap_obuf);
				memset(imap_obuf, ' ', pad);
				conn_write(c, imap_obuf, pad);
				j->st.fo += pad;
				if (sent + pad < j->sr[g->sec].wlen)
					continue;
			}
			j->st_live = 0;
		}
		j->seg++;
		j->seg_off = 0;
	}
	return 1;
}

/* ---- SEARCH ---------------------------------------------------------- */

/* The facts of message j->cur for the search program. */
static int search_msg(struct imap_session *s, struct job *j)
{
	struct srch_msg *m = &j->sm;
	struct idx_rec last;

	if (imap_get_rec_live(s, j->cur - 1, &j->rec) != 0)
		return -1;
	memset(m, 0, sizeof(*m));
	m->seq = j->cur;
	m->count = s->sel.hdr.count;
	if (s->sel.hdr.count && imap_get_rec(&s->sel, s->sel.hdr.count - 1, &last) == 0)
		m->star_uid = last.uid;
	m->uid = j->rec.uid;
	m->flags = j->rec.flags;
	m->recent = imap_is_recent(s, j->rec.uid);
	m->size = j->rec.size;
	m->modseq = j->rec.modseq;
	m->has_keyword = imap_kw_has;
	m->kw_ctx = s;
	if (j->need & SRCH_NEED_IDATE)
		m->internal_day = internal_time(s->sel.mfd, &j->rec) / 86400;
	srch_begin(&j->sx, &s->q.sp);
	j->spos = j->rec.off + j->rec.from_len;
	j->send = j->spos + j->rec.data_len;
	idx_out_init(&j->scv, 0, -1);
	return 0;
}

/* Feeds message bytes to the search within the pass's budget, until the
 * answer is known: SRCH_YES/NO, SRCH_UNKNOWN when the budget ran out,
 * -1 on a read error. */
static int search_feed(struct imap_session *s, struct job *j)
{
	const struct search_prog *p = &s->q.sp;
	int r;

	while ((r = srch_eval(&j->sx, p, &j->sm)) == SRCH_UNKNOWN) {
		size_t want = sizeof(imap_fbuf), used, k;
		ssize_t n;
		if (j->spos >= j->send) {
			k = idx_out_end(&j->scv, imap_obuf);
			srch_feed(&j->sx, p, imap_kmp_tab, imap_obuf, k);
			srch_end(&j->sx, p, imap_kmp_tab);
			continue;
		}
		if (j->budget == 0)
			return SRCH_UNKNOWN;
		if (want > j->send - j->spos)
			want = (size_t)(j->send - j->spos);
		if (want > j->budget)
			want = j->budget;
		n = pread(s->sel.mfd, imap_fbuf, want, (off_t)j->spos);
		if (n <= 0) {
			/* Cut short (the file changed under us): what we saw. */
			j->send = j->spos;
			continue;
		}
		j->budget -= (size_t)n;
		k = idx_out_feed(&j->scv, imap_fbuf, (size_t)n, imap_obuf, &used);
		j->spos += used;
		srch_feed(&j->sx, p, imap_kmp_tab, imap_obuf, k);
	}
	return r;
}

/* ---- jobs ------------------------------------------------------------ */

static void job_done(struct conn *c, struct imap_session *s, const char *st)
{
	if (s->job.kind == J_FETCH)
		conn_stream_end(c);
	sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
	imap_tagged(c, s, st, "%s", s->done_text);
	imap_wait_command(c, s);
}

/* The item buffer's bytes not sent yet, as the socket takes them: 1 when
 * all are out. */
static int item_send(struct conn *c, struct imap_session *s, struct job *j)
{
	size_t left = sat_sub(s->ib.len, j->text_off), room = conn_out_free(c);
	size_t n = left < room ? left : room;

	conn_write(c, s->item + j->text_off, n);
	j->text_off += (uint32_t)n;
	return j->text_off >= s->ib.len;
}

/* One pass of the job; returns 1 when finished (tagged answer written),
 * 2 when this pass's budget of mail is spent, 0 to go on, -1 on error. */
static int job_produce(struct conn *c, struct imap_session *s)
{
	struct job *j = &s->job;
	char line[128];
	int k;

	switch (j->kind) {
	case J_TEXT:
		if (!item_send(c, s, j) || conn_out_free(c) < 200)
			return 0;
		job_done(c, s, "OK");
		return 1;
	case J_LIST:
		/* The lines go out as the socket takes them; a drained item
		 * buffer is refilled with the next ones. */
		for (int guard = 0; guard < 4; guard++) {
			if (!item_send(c, s, j))
				return 0;
			if (j->ldone) {
				if (conn_out_free(c) < 200)
					return 0;
				job_done(c, s, "OK");
				return 1;
			}
			k = imap_list_fill(s);
			j->text_off = 0;
			if (k < 0) {
				snprintf(s->done_text, sizeof(s->done_text),
					 "[LIMIT] A LIST line over %d bytes", IMAP_ITEM_MAX);
				job_done(c, s, "NO");
				return 1;
			}
			j->ldone = k;
		}
		return 0;
	case J_FETCH:
		for (int guard = 0; guard < 64; guard++) {
			if (j->in_msg) {
				int rc = fetch_send(c, s);
				if (rc < 0)
					return -1;
				if (rc == 0 || rc == 2)
					return rc;
				j->in_msg = 0;
				j->cur++;
			}
			if (j->cur > j->hi && !imap_next_range(s, j)) {
				if (conn_out_free(c) < 200)
					return 0;
				job_done(c, s, "OK");
				return 1;
			}
			if (s->q.fr.changedsince) {
				struct idx_rec r;
				if (imap_get_rec_live(s, j->cur - 1, &r) != 0)
					return -1;
				if (r.modseq <= s->q.fr.since) {
					j->cur++;
					continue;
				}
			}
			int rc = fetch_prepare(s, j->cur);
			if (rc <= 0)
				return rc < 0 ? -1 : 2;
			rc = fetch_plan(c, s, j->cur);
			if (imap_mime_owner == s)
				imap_mime_owner = NULL;
			j->prep = PREP_START;
			if (rc == FETCH_TOO_BIG) {
				if (conn_out_free(c) < 200)
					return 0;       /* prepared again next time */
				snprintf(s->done_text, sizeof(s->done_text),
					 "[LIMIT] FETCH answer for message %u over %d "
					 "bytes, fetch fewer items", j->cur, IMAP_ITEM_MAX);
				job_done(c, s, "NO");
				return 1;
			}
			if (rc != 0)
				return -1;
			j->in_msg = 1;
		}
		return 0;
	case J_STORE:
		for (int guard = 0; guard < 256; guard++) {
			struct idx_rec r;
			uint32_t nf;
			uint64_t nkw;
			/* The last FETCH line, as the socket takes it. */
			if (!item_send(c, s, j))
				return 0;
			if (conn_out_free(c) < 200)
				return 0;
			if (j->cur > j->hi && !imap_next_range(s, j)) {
				if (j->modlen) {
					/* done_text is "[UID ]STORE completed" */
					int uidc = j->uid;
					snprintf(s->done_text, sizeof(s->done_text),
						 "[MODIFIED %.*s] Conditional %sSTORE completed",
						 (int)j->modlen, j->modified, uidc ? "UID " : "");
				}
				job_done(c, s, "OK");
				return 1;
			}
			if (imap_get_rec_live(s, j->cur - 1, &r) != 0)
				return -1;
			nf = j->mode == '+' ? r.flags | j->flags :
			     j->mode == '-' ? r.flags & ~j->flags : j->flags;
			nkw = j->mode == '+' ? r.kw | j->kw :
			      j->mode == '-' ? r.kw & ~j->kw : j->kw;
			if (j->unchanged && r.modseq > j->since) {
				/* Changed since the client looked: not touched. */
				struct buf mb;  /* a number that does not fit is left out */
				buf_init(&mb, j->modified, sizeof(j->modified));
				buf_commit(&mb, j->modlen);
				buf_printf(&mb, "%s%u", j->modlen ? "," : "",
					   j->uid ? r.uid : j->cur);
				j->modlen = mb.len;
				j->cur++;
				continue;
			}
			uint32_t was = r.flags;
			uint64_t waskw = r.kw;
			if (set_flags(s, j->cur - 1, &r, nf, nkw) < 0) {
				/* Expunged by another session: no FETCH. */
				j->cur++;
				continue;
			}
			/* .SILENT still tells MODSEQ of a change under CONDSTORE. */
			int show_flags = !j->silent || r.flags != nf || r.kw != nkw;
			int show_mod = s->condstore && (r.flags != was || r.kw != waskw);
			if (show_flags || show_mod) {
				/* Through the item buffer: with keywords a line
				 * can be longer than the output buffer. */
				struct buf b;
				buf_init(&b, s->item, sizeof(s->item));
				buf_printf(&b, "* %u FETCH (", j->cur);
				if (j->uid)
					buf_printf(&b, "UID %u ", r.uid);
				if (show_flags || s->condstore) {
					buf_adds(&b, "FLAGS ");
					buf_add(&b, imap_flagbuf, imap_rec_flags(s, &r));
					buf_addc(&b, ' ');
				}
				if (s->condstore)
					buf_printf(&b, "MODSEQ (%llu) ",
						   (unsigned long long)r.modseq);
				buf_truncate(&b, b.len - 1);
				buf_adds(&b, ")\r\n");
				s->ib = b;
				j->text_off = 0;
			}
			j->cur++;
		}
		return 0;
	case J_SEARCH:
		/* The needles' tables are shared: made again each pass. */
		srch_tables(&s->q.sp, imap_kmp_tab, ARRAY_LEN(imap_kmp_tab));
		for (int guard = 0; guard < 4096; guard++) {
			if (conn_out_free(c) < 200)
				return 0;
			if (!j->in_msg) {
				if (j->cur > s->sel.hdr.count) {
					if (j->with_modseq && j->maxmod) {
						k = snprintf(line, sizeof(line), " (MODSEQ %llu)",
							     (unsigned long long)j->maxmod);
						conn_write(c, line, (size_t)k);
					}
					conn_write(c, "\r\n", 2);
					job_done(c, s, "OK");
					return 1;
				}
				/* An index record (and a From_ line) costs too. */
				if (j->budget < 256)
					return 2;
				j->budget -= 256;
				if (search_msg(s, j) != 0)
					return -1;
				j->in_msg = 1;
			}
			int r = search_feed(s, j);
			if (r < 0)
				return -1;
			if (r == SRCH_UNKNOWN)
				return 2;
			j->in_msg = 0;
			if (r == SRCH_YES) {
				k = snprintf(line, sizeof(line), " %u", j->uid ? j->rec.uid : j->cur);
				conn_write(c, line, (size_t)k);
				if (j->rec.modseq > j->maxmod)
					j->maxmod = j->rec.modseq;
			}
			j->cur++;
		}
		return 0;
	case J_MERGE:
		/* Old records vs new: UIDs gone are EXPUNGEd (in order, each
		 * one shifting the numbers after it). */
		for (int guard = 0; guard < 512; guard++) {
			struct idx_rec o, n;
			if (conn_out_free(c) < 200)
				return 0;
			if (j->oi >= j->oldrd->count) {
				if (j->newcount != j->oldrd->count - j->removed) {
					conn_printf(c, "* %u EXISTS\r\n", j->newcount);
					imap_recent_update(c, s, j->old_next);
				}
				close(s->old_ifd);
				s->old_ifd = -1;
				if (s->merge_idle) {
					/* Announced in IDLE: idle on, no answer. */
					s->merge_idle = 0;
					sess_enter(c, IMAP_IDLE);
					imap_idle_deadline(c, s);
					return 1;
				}
				if (!s->tag[0]) {
					sess_enter(c, s->have_sel ? IMAP_SELECTED : IMAP_AUTHED);
					return 1;
				}
				job_done(c, s, "OK");
				return 1;
			}
			if (idx_get(j->oldrd, j->oi, &o) != 0)
				return -1;
			while (j->nj < j->newcount && imap_get_rec(&s->sel, j->nj, &n) == 0 &&
			       n.uid < o.uid)
				j->nj++;
			if (j->nj < j->newcount && imap_get_rec(&s->sel, j->nj, &n) == 0 &&
			    n.uid == o.uid) {
				j->nj++;
			} else {
				conn_printf(c, "* %u EXPUNGE\r\n", j->oi + 1 - j->removed);
				j->removed++;
			}
			j->oi++;
		}
		return 0;
	}
	return -1;
}

/* One loop pass of the job: output as the socket takes it, at most
 * IMAP_SEND_BUDGET bytes of it and IMAP_STEP bytes of mail read; then
 * the job yields (a zero deadline: the next pass goes on). */
void imap_job_step(struct conn *c, struct imap_session *s)
{
	size_t sent = 0;

	s->job.budget = IMAP_STEP;
	while (c->w.fd >= 0 && s->ss.state == IMAP_BUSY) {
		size_t before = conn_out_free(c);
		int rc = job_produce(c, s);

		if (rc < 0) {
			log_msg(LOGL_ERR, "conn %u: imap %s: reading the mailbox: %s",
				c->id, s->user, strerror(errno));
			conn_printf(c, "* BYE Cannot read the mailbox\r\n");
			sess_quit(c);
			return;
		}
		if (rc == 1)
			return;
		sent += before > conn_out_free(c) ? before - conn_out_free(c) : 0;
		conn_flush(c);
		if (c->w.fd < 0)
			return;
		if (conn_out_pending(c)) {
			conn_deadline(c, CONFIG_IMAP_TIMEOUT);
			return;
		}
		if (sent >= IMAP_SEND_BUDGET || rc == 2) {
			conn_deadline_ms(c, 0);
			return;
		}
	}
}

void imap_job_start(struct conn *c, struct imap_session *s, int kind,
		    const char *done)
{
	s->job.kind = kind;
	if (kind == J_FETCH)
		conn_stream_begin(c);   /* answers of many messages: big writes */
	if (kind == J_FETCH || kind == J_STORE) {
		s->job.cur = 1;         /* past hi: the first range comes next */
		s->job.hi = 0;
	}
	snprintf(s->done_text, sizeof(s->done_text), "%s", done);
	sess_enter(c, IMAP_BUSY);
	imap_job_step(c, s);
}
