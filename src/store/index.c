/* index — mailbox index: encoding, the chunked mbox scanner, the POP3
 * output transform, incremental update and crash-safe rewrite of an mbox
 * with its index (see index.h for the file format and rules).
 *
 * Limits: bounded steps (the caller's byte budget); the only buffers are
 * one static read buffer and one static record-write buffer shared by all
 * sessions (single-threaded, flushed before a step returns), and the
 * reader's cache of IDX_CACHE records per user. Paths are bounded by
 * CONF_PATH_MAX-sized buffers. */
#include "store/index.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"

static const char magic[8] = { 'p', 'o', 's', 't', 'i', 'd', 'x', '\n' };

static unsigned char rbuf[65536];       /* mbox bytes on their way */
static unsigned char wbuf[IDX_REC_SIZE * 128];   /* records to write */

/* ---- encoding ---------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

void idx_hdr_encode(const struct idx_hdr *h, unsigned char out[IDX_HDR_SIZE])
{
	memset(out, 0, IDX_HDR_SIZE);
	memcpy(out, magic, 8);
	put32(out + 8, IDX_VERSION);
	put32(out + 12, IDX_REC_SIZE);
	put32(out + 16, h->uidvalidity);
	put32(out + 20, h->uidnext);
	put32(out + 24, h->count);
	put64(out + 32, h->end);
	put64(out + 40, h->ino);
	put64(out + 48, h->dev);
	put64(out + 56, h->mtime_ns);
	put64(out + 64, h->modseq);
	put32(out + 72, h->recent_uid);
	put32(out + 28, fnv1a(out, IDX_HDR_SIZE));
}

/* The header of an index of the given version and record size. */
static int hdr_decode_as(const unsigned char in[IDX_HDR_SIZE], struct idx_hdr *h,
			 uint32_t version, uint32_t rec_size)
{
	unsigned char tmp[IDX_HDR_SIZE];

	memcpy(tmp, in, IDX_HDR_SIZE);
	put32(tmp + 28, 0);
	if (memcmp(in, magic, 8) != 0 || get32(in + 8) != version ||
	    get32(in + 12) != rec_size || get32(in + 28) != fnv1a(tmp, IDX_HDR_SIZE))
		return -1;
	h->uidvalidity = get32(in + 16);
	h->uidnext = get32(in + 20);
	h->count = get32(in + 24);
	h->end = get64(in + 32);
	h->ino = get64(in + 40);
	h->dev = get64(in + 48);
	h->mtime_ns = get64(in + 56);
	h->modseq = get64(in + 64);
	h->recent_uid = get32(in + 72);
	if (h->uidvalidity == 0 || h->uidnext <= h->count)
		return -1;
	return 0;
}

int idx_hdr_decode(const unsigned char in[IDX_HDR_SIZE], struct idx_hdr *h)
{
	return hdr_decode_as(in, h, IDX_VERSION, IDX_REC_SIZE);
}

void idx_rec_encode(const struct idx_rec *r, unsigned char out[IDX_REC_SIZE])
{
	put64(out, r->off);
	put64(out + 8, r->data_len);
	put64(out + 16, r->size);
	put32(out + 24, r->uid);
	put32(out + 28, r->flags);
	put32(out + 32, r->from_len);
	put32(out + 36, r->lines);
	put64(out + 40, r->modseq);
	put64(out + 48, r->kw);
}

void idx_rec_decode(const unsigned char in[IDX_REC_SIZE], struct idx_rec *r)
{
	r->off = get64(in);
	r->data_len = get64(in + 8);
	r->size = get64(in + 16);
	r->uid = get32(in + 24);
	r->flags = get32(in + 28);
	r->from_len = get32(in + 32);
	r->lines = get32(in + 36);
	r->modseq = get64(in + 40);
	r->kw = get64(in + 48);
}

/* ---- mod-sequences (RFC 7162) --------------------------------------------
 * One counter for the process: every change it makes to any index gets a
 * value above everything it issued before and above the index's own
 * highest, so values never repeat in a mailbox even when an update and a
 * flag change interleave. It starts at 1: a mod-sequence is at least 1
 * (RFC 7162 §7), so an index made before any change has HIGHESTMODSEQ 1
 * and the first change gets 2. */
static uint64_t modseq_last = 1;

uint64_t idx_modseq_next(uint64_t floor)
{
	if (modseq_last < floor)
		modseq_last = floor;
	return ++modseq_last;
}

static uint64_t modseq_floor(uint64_t v)
{
	return v > modseq_last ? v : modseq_last;
}

/* ---- scanner ------------------------------------------------------------ */

static const char from5[] = "From ";

void idx_scan_init(struct idx_scan *s, uint64_t pos,
		   void (*emit)(void *ctx, const struct idx_rec *r), void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->pos = s->line_off = pos;
	s->bol = 1;
	s->emit = emit;
	s->ctx = ctx;
}

static void finish_msg(struct idx_scan *s, uint64_t end)
{
	struct idx_rec *r = &s->cur;

	if (!s->in_msg)
		return;
	if (s->in_from_line) {
		/* A From_ line cut short at the end: an empty message. */
		r->from_len = (uint32_t)(end - r->off);
	} else {
		r->data_len = end - r->off - r->from_len;
		if (s->last_blank && r->lines > 0) {
			r->data_len -= s->last_len;
			r->size -= 2;
			r->lines--;
		}
	}
	s->in_msg = 0;
	if (s->emit)
		s->emit(s->ctx, r);
}

static void start_msg(struct idx_scan *s, uint64_t off)
{
	finish_msg(s, off);
	memset(&s->cur, 0, sizeof(s->cur));
	s->cur.off = off;
	s->in_msg = 1;
	s->in_from_line = 1;
	s->last_blank = 0;
	s->in_hdr = 0;
	s->hlen = 0;
}

enum { HK_OTHER, HK_STATUS, HK_XSTATUS, HK_KEYWORDS };

static int field_is(const char *l, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n >= k && str_ieq(l, k, name);
}

/* An IMAP atom that is not a system flag (no specials, no controls). */
static int kw_atom_ok(const char *p, size_t n)
{
	if (n == 0 || n > IDX_KW_NAME_MAX || p[0] == '\\')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
			return 0;
	}
	return 1;
}

/* A complete header line of the current message (in s->hl). */
static void hdr_line(struct idx_scan *s)
{
	const char *l = s->hl;
	size_t n = s->hlen, i = 0;

	if (n && l[n - 1] == '\r')
		n--;
	if (n && (l[0] == ' ' || l[0] == '\t')) {
		if (s->hkind != HK_KEYWORDS)
			return;         /* continuation of another field */
	} else if (field_is(l, n, "Status:")) {
		s->hkind = HK_STATUS;
		i = 7;
	} else if (field_is(l, n, "X-Status:")) {
		s->hkind = HK_XSTATUS;
		i = 9;
	} else if (field_is(l, n, "X-Keywords:")) {
		s->hkind = HK_KEYWORDS;
		i = 11;
	} else {
		s->hkind = HK_OTHER;
		return;
	}
	for (; s->hkind != HK_KEYWORDS && i < n; i++) {
		char c = l[i];
		if (s->hkind == HK_STATUS && c == 'R')
			s->cur.flags |= IDX_F_SEEN;
		else if (s->hkind == HK_XSTATUS && c == 'A')
			s->cur.flags |= IDX_F_ANSWERED;
		else if (s->hkind == HK_XSTATUS && c == 'F')
			s->cur.flags |= IDX_F_FLAGGED;
		else if (s->hkind == HK_XSTATUS && c == 'T')
			s->cur.flags |= IDX_F_DRAFT;
	}
	while (s->hkind == HK_KEYWORDS && i < n) {
		size_t a;
		while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == ','))
			i++;
		a = i;
		while (i < n && l[i] != ' ' && l[i] != '\t' && l[i] != ',')
			i++;
		if (kw_atom_ok(l + a, i - a)) {
			int k = s->kw(s->ctx, l + a, i - a);
			if (k >= 0 && k < 64)
				s->cur.kw |= (uint64_t)1 << k;
		}
	}
}

/* Bytes of a header line, kept when flags are read from the header. */
static void hdr_take(struct idx_scan *s, const unsigned char *p, size_t n)
{
	struct buf b;

	if (!s->kw || !s->in_hdr)
		return;
	buf_init_len(&b, s->hl, sizeof(s->hl), s->hlen);
	if (n > buf_remaining(&b))
		n = buf_remaining(&b);          /* a longer line is cut */
	buf_add(&b, p, n);
	s->hlen = b.len;
}

/* The LF at file offset lf ends the current line. */
static void line_end(struct idx_scan *s, uint64_t lf)
{
	uint64_t len = lf - s->line_off, content;

	if (!s->in_msg)
		return;
	if (s->in_from_line) {
		uint64_t fl = lf + 1 - s->cur.off;
		s->cur.from_len = fl > UINT32_MAX ? UINT32_MAX : (uint32_t)fl;
		s->in_from_line = 0;
		s->last_blank = 0;
		s->in_hdr = 1;
		s->hkind = HK_OTHER;
		s->hlen = 0;
		return;
	}
	if (s->in_hdr) {
		if (len - (s->cr ? 1 : 0) == 0)
			s->in_hdr = 0;
		else if (s->kw)
			hdr_line(s);
		s->hlen = 0;
	}
	content = len - (s->cr ? 1 : 0);
	s->cur.size += content + 2 - (uint64_t)s->quoted;
	s->cur.lines++;
	s->last_blank = content == 0;
	s->last_len = (uint32_t)(len + 1);
}

void idx_scan_feed(struct idx_scan *s, const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c;

		if (!s->bol && s->decided) {
			/* Inside a line: only its end matters. */
			const unsigned char *nl = memchr(p + i, '\n', n - i);
			size_t j;
			if (!nl) {
				s->cr = p[n - 1] == '\r';
				hdr_take(s, p + i, n - i);
				i = n;
				break;
			}
			j = (size_t)(nl - p);
			if (j > i)
				s->cr = p[j - 1] == '\r';
			hdr_take(s, p + i, j - i);
			line_end(s, s->pos + j);
			s->bol = 1;
			s->cr = 0;
			i = j + 1;
			continue;
		}
		c = p[i];
		if (s->bol) {
			s->bol = 0;
			s->line_off = s->pos + i;
			s->decided = s->gt = s->fm = s->quoted = s->is_from = 0;
		}
		if (!s->decided) {
			if (c == '>' && s->fm == 0) {
				s->gt = 1;
			} else if (c == (unsigned char)from5[s->fm]) {
				if (++s->fm == 5) {
					s->decided = 1;
					if (s->gt)
						s->quoted = 1;
					else {
						s->is_from = 1;
						start_msg(s, s->line_off);
					}
				}
			} else {
				s->decided = 1;
			}
		}
		if (c == '\n') {
			line_end(s, s->pos + i);
			s->bol = 1;
			s->cr = 0;
		} else {
			hdr_take(s, &c, 1);
			s->cr = c == '\r';
		}
		i++;
	}
	s->pos += n;
}

void idx_scan_end(struct idx_scan *s)
{
	if (!s->bol && s->in_msg && !s->in_from_line) {
		uint64_t len = s->pos - s->line_off;
		s->cur.size += len - (s->cr ? 1 : 0) + 2 - (uint64_t)s->quoted;
		s->cur.lines++;
		s->last_blank = 0;
	}
	finish_msg(s, s->pos);
	s->bol = 1;
	s->cr = 0;
	s->line_off = s->pos;
}

/* ---- output transform ---------------------------------------------------- */

void idx_out_init(struct idx_out *o, int stuff, long body_lines)
{
	memset(o, 0, sizeof(*o));
	o->bol = 1;
	o->stuff = stuff;
	o->body_lines = body_lines;
}

/* One line went out; blank is 1 for an empty line. */
static void out_line_done(struct idx_out *o, int blank)
{
	o->bol = 1;
	if (o->body_lines < 0)
		return;
	if (!o->in_body) {
		if (blank) {
			o->in_body = 1;
			if (o->body_lines == 0)
				o->done = 1;
		}
	} else if (--o->body_lines <= 0) {
		o->done = 1;
	}
}

/* Held prefix bytes ('>' and part of "From ") go out as they were. */
static void out_flush_prefix(struct idx_out *o, struct buf *b)
{
	if (o->gt)
		buf_addc(b, '>');
	buf_add(b, from5, (size_t)o->fm);
	if (o->gt || o->fm)
		o->bol = 0;
	o->gt = o->fm = 0;
}

/* The output of n input bytes: at most 2 * n + 8 (index.h). */
static size_t out_room(size_t n)
{
	return sat_add(sat_add(n, n), 8);
}

size_t idx_out_feed(struct idx_out *o, const unsigned char *in, size_t n,
		    char *out, size_t *used)
{
	struct buf b;
	size_t i;

	buf_init(&b, out, out_room(n));
	for (i = 0; i < n && !o->done; i++) {
		unsigned char c = in[i];

		if (o->cr) {
			o->cr = 0;
			if (c == '\n') {
				int blank = o->bol;
				buf_add(&b, "\r\n", 2);
				out_line_done(o, blank);
				continue;
			}
			buf_addc(&b, '\r');
			o->bol = 0;
		}
		if (o->bol || o->gt || o->fm) {
			/* Line start: a run of '>' then "From " loses one '>'. */
			if (c == '>' && o->fm == 0) {
				if (o->gt)
					buf_addc(&b, '>');
				o->gt = 1;
				o->bol = 0;
				continue;
			}
			if (c == (unsigned char)from5[o->fm]) {
				o->bol = 0;
				if (++o->fm == 5) {
					buf_add(&b, from5, 5);
					o->fm = o->gt = 0;
				}
				continue;
			}
			if (o->gt || o->fm) {
				out_flush_prefix(o, &b);
			} else if (c == '.' && o->stuff) {
				buf_addc(&b, '.');
			}
		}
		if (c == '\r') {
			o->cr = 1;
			continue;
		}
		if (c == '\n') {
			int blank = o->bol;
			buf_add(&b, "\r\n", 2);
			out_line_done(o, blank);
			continue;
		}
		buf_addc(&b, (char)c);
		o->bol = 0;
	}
	*used = i;
	return b.len;
}

size_t idx_out_end(struct idx_out *o, char *out)
{
	struct buf b;

	if (o->done)
		return 0;
	buf_init(&b, out, out_room(0));
	out_flush_prefix(o, &b);
	if (o->cr || !o->bol)
		buf_add(&b, "\r\n", 2);
	o->cr = 0;
	o->bol = 1;
	return b.len;
}

/* ---- files ------------------------------------------------------------- */

int idx_path(const char *mail_dir, const char *name, const char *suffix,
	     char *out, size_t n, int mk)
{
	int k = snprintf(out, n, "%s/%s", mail_dir, IDX_DIR);

	if (k < 0 || (size_t)k >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mk && mkdir(out, 0700) != 0 && errno != EEXIST)
		return -1;
	k = snprintf(out, n, "%s/%s/%s%s", mail_dir, IDX_DIR, name, suffix);
	if (k < 0 || (size_t)k >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = pwrite(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

void idx_reader_init(struct idx_reader *r, int fd, uint32_t count)
{
	r->fd = fd;
	r->count = count;
	r->first = 0;
	r->ncached = 0;
}

int idx_get(struct idx_reader *r, uint32_t i, struct idx_rec *out)
{
	if (i >= r->count)
		return -1;
	if (i < r->first || i >= r->first + r->ncached) {
		uint32_t n = r->count - i < IDX_CACHE ? r->count - i : IDX_CACHE;
		r->ncached = 0;
		if (pread_all(r->fd, r->cache, (size_t)n * IDX_REC_SIZE,
			      IDX_HDR_SIZE + (uint64_t)i * IDX_REC_SIZE) != 0)
			return -1;
		r->first = i;
		r->ncached = n;
	}
	idx_rec_decode(r->cache + (size_t)(i - r->first) * IDX_REC_SIZE, out);
	return 0;
}

int idx_put(struct idx_reader *r, uint32_t i, const struct idx_rec *rec)
{
	unsigned char b[IDX_REC_SIZE];

	if (i >= r->count)
		return -1;
	idx_rec_encode(rec, b);
	if (pwrite_all(r->fd, b, sizeof(b), IDX_HDR_SIZE + (uint64_t)i * IDX_REC_SIZE) != 0)
		return -1;
	if (i >= r->first && i < r->first + r->ncached) {
		/* The cached copy: record slot i - first of the cache. */
		struct buf c;
		buf_init_len(&c, r->cache, sizeof(r->cache),
			     (size_t)(i - r->first) * IDX_REC_SIZE);
		buf_add(&c, b, sizeof(b));
	}
	return 0;
}

int idx_find(struct idx_reader *r, uint32_t uid, struct idx_rec *out)
{
	uint32_t lo = 0, hi = r->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (idx_get(r, mid, out) != 0)
			return -1;
		if (out->uid == uid)
			return (int64_t)mid <= INT32_MAX ? (int)mid : -1;
		if (out->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int idx_store(struct idx_reader *r, uint32_t i, struct idx_rec *rec)
{
	unsigned char b[IDX_HDR_SIZE];
	struct idx_hdr h;

	if (pread_all(r->fd, b, sizeof(b), 0) != 0 || idx_hdr_decode(b, &h) != 0)
		return -1;
	rec->modseq = idx_modseq_next(h.modseq > rec->modseq ? h.modseq : rec->modseq);
	h.modseq = rec->modseq;
	if (idx_put(r, i, rec) != 0)
		return -1;
	return idx_write_hdr(r->fd, &h, 0);
}

int idx_take_recent(int fd, uint32_t expect, uint32_t upto, uint32_t *old)
{
	unsigned char b[IDX_HDR_SIZE];
	struct idx_hdr h;

	if (pread_all(fd, b, sizeof(b), 0) != 0 || idx_hdr_decode(b, &h) != 0)
		return -1;
	*old = h.recent_uid;
	if ((expect && h.recent_uid != expect) || h.recent_uid >= upto)
		return 0;
	h.recent_uid = upto;
	return idx_write_hdr(fd, &h, 0) == 0 ? 1 : -1;
}

/* What sessions changed in the header of the index at fd while an update
 * or rewrite ran from an older copy: the highest mod-sequence and the
 * first UID no session has seen never go back. */
static void keep_live(int fd, struct idx_hdr *h)
{
	unsigned char b[IDX_HDR_SIZE];
	struct idx_hdr cur;

	if (fd < 0 || pread_all(fd, b, sizeof(b), 0) != 0 || idx_hdr_decode(b, &cur) != 0 ||
	    cur.uidvalidity != h->uidvalidity)
		return;
	if (cur.modseq > h->modseq)
		h->modseq = cur.modseq;
	if (cur.recent_uid > h->recent_uid)
		h->recent_uid = cur.recent_uid;
}

int idx_write_hdr(int fd, const struct idx_hdr *h, int sync)
{
	unsigned char b[IDX_HDR_SIZE];

	idx_hdr_encode(h, b);
	if (pwrite_all(fd, b, sizeof(b), 0) != 0)
		return -1;
	return sync ? file_sync(fd) : 0;
}

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

/* A fresh UIDVALIDITY: the time, but always above the one it replaces,
 * above any this process issued and above the last one issued in the
 * same index directory (IDX_DIR/.uidvalidity, a hint kept across
 * restarts): a folder deleted and created again within one second must
 * not get its old UIDVALIDITY back with UID 1 for another message
 * (RFC 3501 2.3.1.1). Index names never start with '.', so the hint
 * cannot clash with a mailbox. */
static uint32_t uidv_last;

static uint32_t new_uidvalidity(const char *ipath, uint32_t old)
{
	uint32_t v = (uint32_t)time(NULL), seen = 0;
	char hint[360], b[16];
	const char *slash = strrchr(ipath, '/');
	int fd = -1, k;

	if (slash && (k = snprintf(hint, sizeof(hint), "%.*s/.uidvalidity",
				    (int)(slash - ipath), ipath)) > 0 &&
	    (size_t)k < sizeof(hint))
		fd = open(hint, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		ssize_t n = pread(fd, b, sizeof(b) - 1, 0);
		b[n > 0 ? n : 0] = '\0';
		seen = (uint32_t)strtoul(b, NULL, 10);
	}
	if (v <= old)
		v = old + 1;
	if (v <= uidv_last)
		v = uidv_last + 1;
	if (v <= seen)
		v = seen + 1;
	if (!v)
		v = 1;
	uidv_last = v;
	if (fd >= 0) {
		k = snprintf(b, sizeof(b), "%u\n", v);
		if (pwrite_all(fd, b, (size_t)k, 0) != 0 || ftruncate(fd, k) != 0)
			log_msg(LOGL_WARN, "%s: %s", hint, strerror(errno));
		close(fd);
	}
	return v;
}

/* ---- keywords ------------------------------------------------------------ */

static int kw_eq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return 0;
	}
	return 1;
}

int idx_kw_find(const struct idx_kw *t, const char *name, size_t n)
{
	for (unsigned k = 0; k < t->n; k++)
		if (kw_eq(t->buf + t->off[k], t->len[k], name, n))
			return (int)k;
	return -1;
}

/* Appends a name to the table in memory (no file). 0 or -1. */
static int kw_put(struct idx_kw *t, const char *name, size_t n)
{
	if (n == 0 || n > IDX_KW_NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	struct buf b;

	buf_init_len(&b, t->buf, sizeof(t->buf), t->used);
	if (t->n >= IDX_KW_MAX || !buf_fits(&b, n, 1)) {
		errno = ENOSPC;
		return -1;
	}
	t->off[t->n] = (uint16_t)t->used;
	t->len[t->n] = (uint8_t)n;
	buf_add(&b, name, n);
	buf_addc(&b, '\n');
	t->used = b.len;
	t->n++;
	return 0;
}

int idx_kw_load(const char *path, struct idx_kw *t)
{
	char b[IDX_KW_BYTES + 1];
	struct stat st;
	ssize_t got;
	size_t start = 0;
	int fd;

	memset(t, 0, offsetof(struct idx_kw, buf));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) != 0 || (got = pread(fd, b, sizeof(b), 0)) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	t->ino = (uint64_t)st.st_ino;
	t->size = (uint64_t)st.st_size;
	/* Whole lines only; a name that does not fit ends the table. */
	for (size_t i = 0; i < (size_t)got; i++) {
		if (b[i] != '\n')
			continue;
		if (i > start && kw_put(t, b + start, i - start) != 0)
			break;
		start = i + 1;
	}
	return 0;
}

int idx_kw_changed(const char *path, const struct idx_kw *t)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return t->ino != 0;
	return (uint64_t)st.st_ino != t->ino || (uint64_t)st.st_size != t->size;
}

int idx_kw_add_all(const char *path, struct idx_kw *t, const char *const *names,
		   const size_t *lens, int count, unsigned cap)
{
	char tmp[400];
	struct stat st;
	unsigned n0;
	size_t used0;
	int k, fd, e;

	if (idx_kw_changed(path, t) && idx_kw_load(path, t) != 0)
		return -1;
	n0 = t->n;
	used0 = t->used;
	/* All new names into the table in memory first: one that does not
	 * fit leaves the table (file and memory) as it was. */
	for (int i = 0; i < count; i++) {
		if (idx_kw_find(t, names[i], lens[i]) >= 0)
			continue;
		if (t->n >= cap) {
			errno = ENOSPC;
			goto undo;
		}
		if (kw_put(t, names[i], lens[i]) != 0)
			goto undo;
	}
	if (t->n == n0)
		return 0;
	k = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (k < 0 || (size_t)k >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto undo;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto undo;
	if (pwrite_all(fd, t->buf, t->used, 0) != 0 || fstat(fd, &st) != 0 ||
	    rename(tmp, path) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		goto undo;
	}
	close(fd);
	t->ino = (uint64_t)st.st_ino;
	t->size = (uint64_t)st.st_size;
	return 0;
undo:
	t->n = n0;
	t->used = used0;
	return -1;
}

int idx_kw_add(const char *path, struct idx_kw *t, const char *name, size_t n,
	       unsigned cap)
{
	if (idx_kw_add_all(path, t, &name, &n, 1, cap) != 0)
		return -1;
	return idx_kw_find(t, name, n);
}

/* ---- update ------------------------------------------------------------ */

/* Each update writes its own temporary index (NAME.idx.N.tmp): sessions
 * that rebuild the same index at once, or a rewrite and an update, never
 * share one. The last rename wins; every candidate describes the mbox. */
static unsigned tmp_seq;

/* Records are gathered in wbuf and written at the record number of the
 * first one; the buffer is flushed before every step returns. */
static uint32_t wbuf_first, wbuf_n;
static struct idx_update *wbuf_owner;

static void wflush(struct idx_update *u)
{
	if (wbuf_n && wbuf_owner == u &&
	    pwrite_all(u->ofd, wbuf, (size_t)wbuf_n * IDX_REC_SIZE,
		       IDX_HDR_SIZE + (uint64_t)wbuf_first * IDX_REC_SIZE) != 0)
		u->werr = errno ? errno : EIO;
	wbuf_n = 0;
	wbuf_owner = NULL;
}

static void wrec(struct idx_update *u, const struct idx_rec *r)
{
	if (wbuf_owner != u || wbuf_n == sizeof(wbuf) / IDX_REC_SIZE ||
	    wbuf_first + wbuf_n != u->n) {
		if (wbuf_owner)
			wflush(wbuf_owner);
		wbuf_owner = u;
		wbuf_first = u->n;
		wbuf_n = 0;
	}
	idx_rec_encode(r, wbuf + (size_t)wbuf_n * IDX_REC_SIZE);
	wbuf_n++;
	u->n++;
}

static void update_emit(void *ctx, const struct idx_rec *r0)
{
	struct idx_update *u = ctx;
	struct idx_rec r = *r0, old;

	if (u->n == UINT32_MAX - 1)
		return;
	if (u->redo) {
		/* The old last message again, perhaps with its line end. */
		u->redo = 0;
		if (idx_get(&u->oldr, u->n, &old) == 0 && old.off == r.off) {
			if (old.from_len == r.from_len && old.data_len == r.data_len &&
			    old.size == r.size && old.lines == r.lines) {
				u->n++;         /* unchanged: nothing to write */
				return;
			}
			r.uid = old.uid;
			r.flags = old.flags;
			r.kw = old.kw;
			r.modseq = old.modseq;
		}
	}
	if (!u->renumber && u->rebuild && u->n < u->old.count) {
		if (idx_get(&u->oldr, u->n, &old) == 0 && old.off == r.off &&
		    old.data_len == r.data_len && old.from_len == r.from_len) {
			r.uid = old.uid;
			r.flags = old.flags;
			r.kw = old.kw;
			r.modseq = old.modseq;
		} else {
			u->renumber = 1;
		}
	}
	if (!u->renumber && u->have_old && u->n >= u->old.count) {
		r.flags = 0;    /* appended since: header flags not trusted */
		r.kw = 0;
	}
	if (u->renumber)
		r.uid = u->n + 1;
	else if (!r.uid)
		r.uid = u->h.uidnext++;
	if (!r.modseq)
		r.modseq = u->h.modseq = idx_modseq_next(u->h.modseq);
	wrec(u, &r);
}

/* Keywords met in X-Keywords: while a mailbox is indexed the first time
 * go into its NAME.kw (at most IDX_KW_MAX; the rest are not kept). One
 * table serves every update: it is reread whenever the path changes. */
static struct idx_kw import_tab;
static char import_path[sizeof(((struct idx_update *)0)->path)];

static int import_kw(void *ctx, const char *name, size_t n)
{
	struct idx_update *u = ctx;
	char path[sizeof(u->path)];
	size_t pl = strlen(u->path);

	if (pl < 4 || strcmp(u->path + pl - 4, ".idx") != 0 ||
	    snprintf(path, sizeof(path), "%.*s.kw", (int)(pl - 4), u->path) >=
	    (int)sizeof(path))
		return -1;
	if (strcmp(path, import_path) != 0) {
		if (idx_kw_load(path, &import_tab) != 0)
			return -1;
		snprintf(import_path, sizeof(import_path), "%s", path);
	}
	return idx_kw_add(path, &import_tab, name, n, IDX_KW_MAX);
}

static int check_from(int fd, uint64_t off)
{
	char b[5];

	return pread_all(fd, b, 5, off) == 0 && memcmp(b, from5, 5) == 0;
}

static int check_lf(int fd, uint64_t off)
{
	char b;

	return off == 0 || (pread_all(fd, &b, 1, off - 1) == 0 && b == '\n');
}

/* The old index still describes a prefix of the mbox: 1, or 2 when it
 * does up to its last message, which ended without a line end (another
 * program's append; an append of ours adds the line end first, see
 * store/mbox) and is scanned again, keeping its UID and flags; 0 not. */
static int old_valid(struct idx_update *u, const struct stat *st)
{
	struct idx_rec last;
	uint64_t size = (uint64_t)st->st_size;
	int cut;

	if (!u->have_old || u->old.ino != (uint64_t)st->st_ino ||
	    u->old.dev != (uint64_t)st->st_dev || size < u->old.end)
		return 0;
	if (size == u->old.end && u->old.mtime_ns != mtime_ns(st))
		return 0;
	cut = !check_lf(u->mfd, u->old.end);
	if (size > u->old.end && !cut && !check_from(u->mfd, u->old.end))
		return 0;
	if (u->old.count > 0) {
		if (idx_get(&u->oldr, u->old.count - 1, &last) != 0 ||
		    !check_from(u->mfd, last.off) ||
		    last.off + last.from_len + last.data_len > u->old.end)
			return 0;
		if (cut && last.off + last.from_len + last.data_len == u->old.end)
			return 2;
	}
	return cut ? 0 : 1;
}

static int start(struct idx_update *u)
{
	struct stat st;

	if (fstat(u->mfd, &st) != 0)
		return -1;
	u->ino = (uint64_t)st.st_ino;
	u->dev = (uint64_t)st.st_dev;
	u->h = u->old;
	u->werr = 0;
	if (u->ofd >= 0 && u->ofd != u->ifd)
		close(u->ofd);
	u->ofd = -1;
	switch (old_valid(u, &st)) {
	case 1:
		u->rebuild = 0;
		u->renumber = 0;
		u->redo = 0;
		u->ofd = u->ifd;
		u->n = u->old.count;
		idx_scan_init(&u->scan, u->old.end, update_emit, u);
		return 0;
	case 2: {
		struct idx_rec last;
		if (idx_get(&u->oldr, u->old.count - 1, &last) != 0)
			return -1;
		u->rebuild = 0;
		u->renumber = 0;
		u->redo = 1;
		u->ofd = u->ifd;
		u->n = u->old.count - 1;
		idx_scan_init(&u->scan, last.off, update_emit, u);
		return 0;
	}
	default:
		break;
	}
	u->redo = 0;
	u->rebuild = 1;
	u->renumber = !u->have_old;
	u->n = 0;
	if (!u->have_old) {
		u->h.uidvalidity = 0;
		u->h.uidnext = 1;
	}
	u->ofd = open(u->tmppath, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW |
		      O_CLOEXEC, 0600);
	if (u->ofd < 0)
		return -1;
	idx_scan_init(&u->scan, 0, update_emit, u);
	/* Flags in Status:, X-Status: and X-Keywords: are read when a
	 * mailbox is indexed the first time and when it is rebuilt: a
	 * message whose UID cannot be kept takes the flags another
	 * program (mutt) wrote there; update_emit ignores them for
	 * messages the old index knew and for those appended since. */
	u->scan.kw = import_kw;
	return 0;
}

/* Version 2 (48-byte records, no keywords) becomes version 3 in place
 * of the old file, UIDs, flags and UIDVALIDITY kept, so an upgrade does
 * not make every client download the mailbox again. Once per index; its
 * cost is one read and one write of the index. 1 converted, 0 not
 * version 2, -1 error (the caller then rebuilds). */
#define IDX_V2_REC 48

static int migrate_v2(const char *ipath, const char *tmppath)
{
	unsigned char b[IDX_HDR_SIZE], in[IDX_V2_REC * 64];
	unsigned char out[IDX_REC_SIZE * 64];
	struct idx_hdr h;
	struct stat st;
	int fd, ofd, rc = -1;

	fd = open(ipath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || pread_all(fd, b, sizeof(b), 0) != 0 ||
	    hdr_decode_as(b, &h, 2, IDX_V2_REC) != 0 ||
	    (uint64_t)st.st_size < IDX_HDR_SIZE + (uint64_t)h.count * IDX_V2_REC) {
		close(fd);
		return 0;       /* not version 2: the usual checks decide */
	}
	ofd = open(tmppath, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (ofd < 0)
		goto out;
	for (uint32_t i = 0; i < h.count;) {
		uint32_t n = h.count - i < 64 ? h.count - i : 64;
		if (pread_all(fd, in, (size_t)n * IDX_V2_REC,
			      IDX_HDR_SIZE + (uint64_t)i * IDX_V2_REC) != 0)
			goto out;
		struct buf ob;
		memset(out, 0, sizeof(out));
		buf_init(&ob, out, sizeof(out));
		for (uint32_t k = 0; k < n; k++) {
			/* A version 2 record, then the keyword mask (0). */
			buf_add(&ob, in + (size_t)k * IDX_V2_REC, IDX_V2_REC);
			if (buf_reserve(&ob, IDX_REC_SIZE - IDX_V2_REC))
				buf_commit(&ob, IDX_REC_SIZE - IDX_V2_REC);
		}
		if (pwrite_all(ofd, out, (size_t)n * IDX_REC_SIZE,
			       IDX_HDR_SIZE + (uint64_t)i * IDX_REC_SIZE) != 0)
			goto out;
		i += n;
	}
	if (idx_write_hdr(ofd, &h, 1) != 0 || rename(tmppath, ipath) != 0)
		goto out;
	log_msg(LOGL_INFO, "index %s: format 2 converted to %d (%u messages, "
		"uidvalidity %u kept)", ipath, IDX_VERSION, h.count, h.uidvalidity);
	rc = 1;
out:
	if (ofd >= 0) {
		close(ofd);
		if (rc != 0)
			unlink(tmppath);
	}
	close(fd);
	return rc;
}

int idx_update_begin(struct idx_update *u, int mfd, const char *ipath)
{
	unsigned char b[IDX_HDR_SIZE];
	struct stat st;

	memset(u, 0, sizeof(*u));
	u->mfd = mfd;
	u->ifd = u->ofd = -1;
	if (snprintf(u->path, sizeof(u->path), "%s", ipath) >= (int)sizeof(u->path) ||
	    snprintf(u->tmppath, sizeof(u->tmppath), "%s.%u.tmp", ipath, ++tmp_seq) >=
	    (int)sizeof(u->tmppath)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int tries = 0; tries < 2; tries++) {
		if (u->ifd >= 0)
			close(u->ifd);
		u->ifd = open(ipath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (u->ifd < 0)
			return -1;
		if (fstat(u->ifd, &st) == 0 && st.st_size >= IDX_HDR_SIZE &&
		    pread_all(u->ifd, b, sizeof(b), 0) == 0 &&
		    idx_hdr_decode(b, &u->old) == 0 &&
		    (uint64_t)st.st_size >= IDX_HDR_SIZE + (uint64_t)u->old.count * IDX_REC_SIZE) {
			u->have_old = 1;
			break;
		}
		memset(&u->old, 0, sizeof(u->old));
		if (tries > 0)
			break;
		int rc = migrate_v2(ipath, u->tmppath);
		if (rc < 0)
			log_msg(LOGL_WARN, "index %s: cannot convert format 2 (%s); rebuilt",
				ipath, strerror(errno));
		if (rc <= 0)
			break;
	}
	idx_reader_init(&u->oldr, u->ifd, u->old.count);
	if (start(u) != 0) {
		int e = errno;
		idx_update_abort(u);
		errno = e;
		return -1;
	}
	return 0;
}

/* Gives UIDs 1..n when the old ones could not be kept. */
static int renumber_all(struct idx_update *u)
{
	struct idx_reader r;
	struct idx_rec rec;

	idx_reader_init(&r, u->ofd, u->n);
	for (uint32_t i = 0; i < u->n; i++) {
		if (idx_get(&r, i, &rec) != 0)
			return -1;
		/* The flags stay: those of old records matched at the same
		 * offset and length (the same message), the others read
		 * from the headers (see start). */
		int keep = u->scan.kw != NULL;
		if (rec.uid == i + 1 && (keep || (rec.flags == 0 && rec.kw == 0)))
			continue;
		rec.uid = i + 1;
		if (!keep) {
			rec.flags = 0;
			rec.kw = 0;
		}
		if (idx_put(&r, i, &rec) != 0)
			return -1;
	}
	u->h.uidvalidity = new_uidvalidity(u->path, u->old.uidvalidity);
	u->h.uidnext = u->n + 1;
	u->h.recent_uid = 0;
	return 0;
}

static int finish(struct idx_update *u, const struct stat *st)
{
	idx_scan_end(&u->scan);
	wflush(u);
	if (u->werr) {
		errno = u->werr;
		return -1;
	}
	if (u->rebuild && u->n < u->old.count)
		u->renumber = 1;
	if (u->renumber && renumber_all(u) != 0)
		return -1;
	if (u->h.uidvalidity == 0)
		u->h.uidvalidity = new_uidvalidity(u->path, 0);
	if (u->h.uidnext <= u->n)
		u->h.uidnext = u->n + 1;
	u->h.count = u->n;
	keep_live(u->ifd, &u->h);
	u->h.modseq = modseq_floor(u->h.modseq);
	u->h.end = u->scan.pos;
	u->h.ino = (uint64_t)st->st_ino;
	u->h.dev = (uint64_t)st->st_dev;
	u->h.mtime_ns = mtime_ns(st);
	if (ftruncate(u->ofd, (off_t)(IDX_HDR_SIZE + (uint64_t)u->n * IDX_REC_SIZE)) != 0 ||
	    idx_write_hdr(u->ofd, &u->h, 0) != 0)
		return -1;
	if (u->rebuild) {
		if (rename(u->tmppath, u->path) != 0)
			return -1;
		close(u->ifd);
		u->ifd = u->ofd;
		if (u->have_old || u->renumber)
			log_msg(LOGL_INFO, "index %s rebuilt: %u messages, uidvalidity %u%s",
				u->path, u->n, u->h.uidvalidity,
				u->renumber ? " (new)" : "");
	}
	u->ofd = -1;
	return 0;
}

int idx_update_step(struct idx_update *u, size_t budget, int locked)
{
	struct stat st;
	size_t done = 0;

	if (fstat(u->mfd, &st) != 0)
		return IDX_FAIL;
	if ((uint64_t)st.st_ino != u->ino || (uint64_t)st.st_dev != u->dev) {
		errno = ESTALE;
		return IDX_FAIL;
	}
	if ((uint64_t)st.st_size < u->scan.pos) {
		/* Truncated under us: start over, once or twice. */
		wflush(u);
		if (++u->restarts > 3 || (u->have_old = 0, start(u) != 0)) {
			errno = ESTALE;
			return IDX_FAIL;
		}
		return IDX_AGAIN;
	}
	while (u->scan.pos < (uint64_t)st.st_size && done < budget) {
		uint64_t left = (uint64_t)st.st_size - u->scan.pos;
		size_t want = left < sizeof(rbuf) ? (size_t)left : sizeof(rbuf);
		ssize_t n = pread(u->mfd, rbuf, want, (off_t)u->scan.pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			wflush(u);
			if (n == 0)
				errno = EIO;
			return IDX_FAIL;
		}
		idx_scan_feed(&u->scan, rbuf, (size_t)n);
		done += (size_t)n;
	}
	wflush(u);
	if (u->werr) {
		errno = u->werr;
		return IDX_FAIL;
	}
	if (u->scan.pos < (uint64_t)st.st_size)
		return IDX_AGAIN;
	if (!u->rebuild && u->n + (u->redo ? 1 : 0) == u->old.count &&
	    u->scan.pos == u->old.end) {
		/* Nothing appended: the index already describes the mbox.
		 * Nothing is written and no lock is needed, so EXAMINE,
		 * STATUS and the like cost no write (flash wear). */
		u->h = u->old;
		keep_live(u->ifd, &u->h);
		u->ofd = -1;
		return IDX_DONE;
	}
	if (!locked)
		return IDX_AGAIN_LOCK;
	return finish(u, &st) == 0 ? IDX_DONE : IDX_FAIL;
}

void idx_update_abort(struct idx_update *u)
{
	if (wbuf_owner == u) {
		wbuf_n = 0;
		wbuf_owner = NULL;
	}
	if (u->ofd >= 0 && u->ofd != u->ifd) {
		close(u->ofd);
		unlink(u->tmppath);
	}
	if (u->ifd >= 0)
		close(u->ifd);
	u->ofd = u->ifd = -1;
}

void idx_update_result(struct idx_update *u, struct idx_hdr *h, int *fd)
{
	*h = u->h;
	*fd = u->ifd;
	u->ifd = -1;
}

/* ---- rewrite ------------------------------------------------------------ */

/* The phases; from RW_SYNC on, each is one step of its own (one fsync, or
 * the commit), never added to a step that copied its budget. */
enum {
	RW_PREAMBLE, RW_MSGS, RW_TAIL,
	RW_SYNC,                /* fsync of the new mbox */
	RW_SYNC_IDX,            /* the new index: header, fsync */
	RW_COMMIT,              /* late flags, both renames */
	RW_DIRSYNC,             /* fsync of mail_dir (the mbox rename) */
	RW_IDIRSYNC,            /* fsync of the index directory */
};

int idx_rewrite_begin(struct idx_rewrite *w, const char *mail_dir,
		      const char *name, int locked_fd, int ifd,
		      const struct idx_hdr *snap,
		      int (*keep)(void *ctx, uint32_t i), void *ctx)
{
	struct stat st;
	struct idx_update *u = &w->u;
	char ipath[330];

	memset(w, 0, sizeof(*w));
	w->src = locked_fd;
	w->dst = -1;
	u->mfd = locked_fd;
	u->ifd = u->ofd = -1;
	w->keep = keep;
	w->ctx = ctx;
	w->count = snap->count;
	w->snap_end = snap->end;
	idx_reader_init(&w->r, ifd, snap->count);
	w->snap_modseq = snap->modseq;
	{
		struct idx_hdr cur = *snap;
		keep_live(ifd, &cur);
		w->snap_modseq = cur.modseq;
	}
	if (fstat(locked_fd, &st) != 0)
		return -1;
	w->size = (uint64_t)st.st_size;
	w->mode = st.st_mode & 0777;
	if ((uint64_t)st.st_ino != snap->ino || (uint64_t)st.st_dev != snap->dev ||
	    w->size < snap->end || !check_lf(locked_fd, snap->end) ||
	    (w->size > snap->end && !check_from(locked_fd, snap->end))) {
		errno = ESTALE;
		return -1;
	}
	if (snprintf(w->mpath, sizeof(w->mpath), "%s/%s", mail_dir, name) >=
	    (int)sizeof(w->mpath) ||
	    snprintf(w->dir, sizeof(w->dir), "%s", mail_dir) >= (int)sizeof(w->dir) ||
	    snprintf(w->idir, sizeof(w->idir), "%s/%s", mail_dir, IDX_DIR) >=
	    (int)sizeof(w->idir) ||
	    idx_path(mail_dir, name, ".new", w->mtmp, sizeof(w->mtmp), 1) != 0 ||
	    idx_path(mail_dir, name, ".idx", ipath, sizeof(ipath), 0) != 0 ||
	    snprintf(u->path, sizeof(u->path), "%s", ipath) >= (int)sizeof(u->path) ||
	    snprintf(u->tmppath, sizeof(u->tmppath), "%s.%u.tmp", ipath, ++tmp_seq) >=
	    (int)sizeof(u->tmppath)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* We hold the mailbox lock: a leftover .new is from a crash. */
	unlink(w->mtmp);
	w->dst = open(w->mtmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0600);
	if (w->dst < 0)
		return -1;
	u->ofd = open(u->tmppath, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW |
		      O_CLOEXEC, 0600);
	if (u->ofd < 0) {
		idx_rewrite_abort(w);
		return -1;
	}
	u->h = *snap;
	u->rebuild = 0;         /* records come with their UIDs */
	wb_init(&w->wb, 0);
	w->phase = RW_PREAMBLE;
	w->from = 0;
	w->to = snap->end;
	if (snap->count > 0) {
		struct idx_rec r;
		if (idx_get(&w->r, 0, &r) != 0) {
			idx_rewrite_abort(w);
			return -1;
		}
		w->to = r.off;
	}
	return 0;
}

/* Copies from..to (at most budget bytes); feeds the scanner on the tail. */
static int copy_range(struct idx_rewrite *w, size_t *budget)
{
	while (w->from < w->to && *budget > 0) {
		uint64_t left = w->to - w->from;
		size_t want = left < sizeof(rbuf) ? (size_t)left : sizeof(rbuf);
		if (want > *budget)
			want = *budget;
		if (pread_all(w->src, rbuf, want, w->from) != 0 ||
		    pwrite_all(w->dst, rbuf, want, w->dpos) != 0)
			return -1;
		if (w->scanning)
			idx_scan_feed(&w->u.scan, rbuf, want);
		w->from += want;
		w->dpos += want;
		*budget -= want;
	}
	return 0;
}

/* Picks the next kept message as the range to copy: 1, 0 when none is
 * left, 2 when the step's budget went on records (each one read costs
 * IDX_REC_SIZE of it, so an EXPUNGE of 100,000 messages that keeps none
 * still yields). */
static int next_kept(struct idx_rewrite *w, size_t *budget)
{
	struct idx_rec r, nx;

	while (w->i < w->count) {
		uint32_t i;
		if (*budget == 0)
			return 2;
		*budget = sat_sub(*budget, IDX_REC_SIZE);
		i = w->i++;
		if (idx_get(&w->r, i, &r) != 0)
			return -1;
		if (!w->keep(w->ctx, i))
			continue;
		if (!check_from(w->src, r.off)) {
			errno = ESTALE;
			return -1;
		}
		w->from = r.off;
		w->to = w->snap_end;
		if (i + 1 < w->count) {
			if (idx_get(&w->r, i + 1, &nx) != 0)
				return -1;
			w->to = nx.off;
		}
		if (w->to < w->from) {
			errno = EIO;
			return -1;
		}
		r.off = w->dpos;
		wrec(&w->u, &r);
		w->kept++;
		return 1;
	}
	return 0;
}

/* Flags other sessions changed in the old index while the messages were
 * copied (they write it in place and need no lock) go into the new one,
 * so no change is lost to the rename. Only when something changed: the
 * old header's mod-sequence moved past the one at the start. */
static int merge_late_flags(struct idx_rewrite *w)
{
	struct idx_hdr cur;
	struct idx_reader nr;
	struct idx_rec o, n;

	cur.modseq = w->snap_modseq;
	cur.uidvalidity = w->u.h.uidvalidity;
	keep_live(w->r.fd, &cur);
	if (cur.modseq <= w->snap_modseq)
		return 0;
	w->r.ncached = 0;       /* the copy's cached records may be stale */
	idx_reader_init(&nr, w->u.ofd, w->u.n);
	for (uint32_t i = 0; i < w->count; i++) {
		int k;
		if (idx_get(&w->r, i, &o) != 0)
			return -1;
		if (o.modseq <= w->snap_modseq)
			continue;
		k = idx_find(&nr, o.uid, &n);
		if (k < 0 || (n.flags == o.flags && n.kw == o.kw && n.modseq == o.modseq))
			continue;
		n.flags = o.flags;
		n.kw = o.kw;
		n.modseq = o.modseq;
		if (idx_put(&nr, (uint32_t)k, &n) != 0)
			return -1;
	}
	return 0;
}

/* Everything is copied: the new mbox goes to storage. A step of its own;
 * the write-back of the copy steps was waited for along the way
 * (wb_step), so the fsync finds little left to write. */
static int rewrite_sync(struct idx_rewrite *w)
{
	struct idx_update *u = &w->u;

	idx_scan_end(&u->scan);
	wflush(u);
	if (u->werr) {
		errno = u->werr;
		return -1;
	}
	return fchmod(w->dst, (mode_t)w->mode) != 0 || file_sync(w->dst) != 0 ? -1 : 0;
}

/* The new index's header from the new mbox (count, end, inode, times). */
static int rewrite_hdr(struct idx_rewrite *w)
{
	struct idx_update *u = &w->u;
	struct stat st;

	if (fstat(w->dst, &st) != 0)
		return -1;
	u->h.count = u->n;
	keep_live(w->r.fd, &u->h);
	u->h.modseq = idx_modseq_next(u->h.modseq);     /* expunges count */
	u->h.end = w->dpos;
	u->h.ino = (uint64_t)st.st_ino;
	u->h.dev = (uint64_t)st.st_dev;
	u->h.mtime_ns = mtime_ns(&st);
	if (u->h.uidnext <= u->n)
		u->h.uidnext = u->n + 1;
	return 0;
}

/* The new index to storage (a step of its own): records and header. */
static int rewrite_sync_idx(struct idx_rewrite *w)
{
	struct idx_update *u = &w->u;

	if (rewrite_hdr(w) != 0 ||
	    ftruncate(u->ofd, (off_t)(IDX_HDR_SIZE + (uint64_t)u->n * IDX_REC_SIZE)) != 0)
		return -1;
	return idx_write_hdr(u->ofd, &u->h, 1);
}

/* The commit, in one step so that no other session of this process sees
 * one file renamed and not the other: flags other sessions changed since
 * the index was synced go into it (not synced again: a crash loses at
 * most those, as it would in the old index, which is not synced after a
 * flag change either), then both renames. The directories are synced at
 * the next steps, before the caller answers. */
static int rewrite_commit(struct idx_rewrite *w)
{
	struct idx_update *u = &w->u;

	if (merge_late_flags(w) != 0 || rewrite_hdr(w) != 0 ||
	    idx_write_hdr(u->ofd, &u->h, 0) != 0)
		return -1;
	/* The commit point: after this rename the new mbox is the mailbox. */
	if (rename(w->mtmp, w->mpath) != 0)
		return -1;
	close(w->dst);
	w->dst = -1;
	/* An index left behind by a crash before its rename (or one whose
	 * rename reached the disk without the mbox's) does not match the
	 * mbox's inode and is rebuilt: the UIDs change, the mail does not. */
	if (rename(u->tmppath, u->path) != 0) {
		log_msg(LOGL_WARN, "%s: %s (index rebuilt next time)", u->path,
			strerror(errno));
		unlink(u->tmppath);
	}
	close(u->ofd);
	u->ofd = -1;
	return 0;
}

static void dir_sync(const char *dir)
{
	if (fsync_dir(dir) != 0)
		log_msg(LOGL_WARN, "%s: fsync: %s", dir, strerror(errno));
}

int idx_rewrite_step(struct idx_rewrite *w, size_t budget, struct idx_hdr *h)
{
	int rc;

	switch (w->phase) {
	case RW_SYNC:
		if (rewrite_sync(w) != 0)
			goto fail;
		w->phase = RW_SYNC_IDX;
		return IDX_AGAIN;
	case RW_SYNC_IDX:
		if (rewrite_sync_idx(w) != 0)
			goto fail;
		w->phase = RW_COMMIT;
		return IDX_AGAIN;
	case RW_COMMIT:
		if (rewrite_commit(w) != 0)
			goto fail;
		w->phase = RW_DIRSYNC;
		return IDX_AGAIN;
	case RW_DIRSYNC:
		dir_sync(w->dir);
		w->phase = RW_IDIRSYNC;
		return IDX_AGAIN;
	case RW_IDIRSYNC:
		dir_sync(w->idir);
		*h = w->u.h;
		return IDX_DONE;
	default:
		break;
	}
	for (;;) {
		if (copy_range(w, &budget) != 0)
			goto fail;
		if (w->from < w->to)
			break;
		if (w->phase == RW_PREAMBLE)
			w->phase = RW_MSGS;
		if (w->phase == RW_MSGS) {
			rc = next_kept(w, &budget);
			if (rc < 0)
				goto fail;
			if (rc == 2)
				break;          /* on at the next step */
			if (rc > 0)
				continue;
			/* Mail delivered since the snapshot: copied and indexed. */
			w->phase = RW_TAIL;
			w->from = w->snap_end;
			w->to = w->size;
			w->scanning = 1;
			idx_scan_init(&w->u.scan, w->dpos, update_emit, &w->u);
			continue;
		}
		/* All copied: the fsync at the next step. */
		w->phase = RW_SYNC;
		break;
	}
	wflush(&w->u);
	if (w->u.werr) {
		errno = w->u.werr;
		goto fail;
	}
	wb_step(w->dst, &w->wb, (int64_t)w->dpos);
	return IDX_AGAIN;
fail:
	rc = errno;
	wflush(&w->u);
	idx_rewrite_abort(w);
	errno = rc;
	return IDX_FAIL;
}

void idx_rewrite_abort(struct idx_rewrite *w)
{
	if (wbuf_owner == &w->u) {
		wbuf_n = 0;
		wbuf_owner = NULL;
	}
	if (w->dst >= 0) {
		close(w->dst);
		unlink(w->mtmp);
		w->dst = -1;
	}
	if (w->u.ofd >= 0) {
		close(w->u.ofd);
		unlink(w->u.tmppath);
		w->u.ofd = -1;
	}
}

/* ---- structure cache -------------------------------------------------- */

static const char sc_magic[8] = "postsc1\n";

/* Read-ahead for lookups: a FETCH 1:* reads the entries and the texts of
 * consecutive UIDs, each lying one after the other: one window on the
 * entries, one on the texts, for the process (single-threaded). Any
 * open, close or write of any cache makes them stale (sc_gen). */
struct sc_window {
	int fd;
	uint64_t gen, off;
	size_t n;
};
static struct sc_window sc_win[2] = { { .fd = -1 }, { .fd = -1 } };
static unsigned char sc_ents[4096], sc_texts[8192];
static uint64_t sc_gen;

/* Reads n bytes at off through window w (0 entries, 1 texts). 0 or -1. */
static int sc_read(const struct idx_sc *c, int w, void *buf, size_t n, uint64_t off)
{
	struct sc_window *v = &sc_win[w];
	unsigned char *b = w ? sc_texts : sc_ents;
	size_t cap = w ? sizeof(sc_texts) : sizeof(sc_ents);

	if (v->fd != c->fd || v->gen != sc_gen || off < v->off || off - v->off > v->n ||
	    n > v->n - (off - v->off)) {
		ssize_t k;
		if (n > cap / 2)
			return pread_all(c->fd, buf, n, off);
		k = pread(c->fd, b, cap, (off_t)off);
		if (k < 0 || (size_t)k < n) {
			v->fd = -1;
			return -1;
		}
		v->fd = c->fd;
		v->gen = sc_gen;
		v->off = off;
		v->n = (size_t)k;
	}
	memcpy(buf, b + (off - v->off), n);
	return 0;
}

void idx_sc_init(struct idx_sc *c)
{
	c->fd = -1;
	c->state = IDX_SC_CLOSED;
	c->slots = 0;
	c->max = 0;
}

void idx_sc_close(struct idx_sc *c)
{
	sc_gen++;
	if (c->fd >= 0)
		close(c->fd);
	idx_sc_init(c);
}

static void sc_hdr(unsigned char h[IDX_SC_HDR], uint32_t slots, uint32_t format)
{
	memset(h, 0, IDX_SC_HDR);
	memcpy(h, sc_magic, sizeof(sc_magic));
	put32(h + 8, slots);
	put32(h + 12, format);
	put32(h + 16, fnv1a(h, 16));
}

/* Everything dropped: the header alone (the entries read as zeros). */
static int sc_afresh(struct idx_sc *c, const unsigned char want[IDX_SC_HDR])
{
	return ftruncate(c->fd, 0) == 0 && pwrite_all(c->fd, want, IDX_SC_HDR, 0) == 0 ?
	       0 : -1;
}

int idx_sc_open(struct idx_sc *c, const char *path, uint32_t slots, uint64_t max,
		uint32_t format, int create)
{
	unsigned char want[IDX_SC_HDR], have[IDX_SC_HDR];

	idx_sc_close(c);
	c->state = IDX_SC_NONE;
	if (slots == 0)
		return 0;
	sc_hdr(want, slots, format);
	c->fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (c->fd < 0)
		return errno == ENOENT && !create ? 0 : -1;
	c->slots = slots;
	c->max = max;
	if (pread_all(c->fd, have, IDX_SC_HDR, 0) == 0 && memcmp(have, want, 24) == 0) {
		c->state = IDX_SC_OPEN;
		return 0;
	}
	if (!create) {
		idx_sc_close(c);
		c->state = IDX_SC_NONE;
		return 0;
	}
	/* Missing, torn, of another geometry or format: afresh. */
	if (sc_afresh(c, want) != 0) {
		idx_sc_close(c);
		c->state = IDX_SC_NONE;
		return -1;
	}
	c->state = IDX_SC_OPEN;
	return 0;
}

static uint64_t sc_ent_off(const struct idx_sc *c, uint32_t uid)
{
	return IDX_SC_HDR + (uint64_t)(uid % c->slots) * IDX_SC_ENT;
}

static uint32_t sc_sum(const unsigned char ent[IDX_SC_ENT], const char *text, size_t n)
{
	uint32_t h = fnv1a(ent, 28);

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)text[i];
		h *= 16777619u;
	}
	return h;
}

static size_t sc_total(const unsigned char ent[IDX_SC_ENT])
{
	size_t t = 0;

	for (int i = 0; i < IDX_SC_TEXTS; i++)
		t += (size_t)ent[20 + 2 * i] | (size_t)ent[21 + 2 * i] << 8;
	return t;
}

int idx_sc_get(struct idx_sc *c, uint32_t uv, const struct idx_rec *r,
	       char *buf, size_t n, const char *text[IDX_SC_TEXTS],
	       size_t len[IDX_SC_TEXTS])
{
	unsigned char e[IDX_SC_ENT];
	size_t total = 0;

	if (c->state != IDX_SC_OPEN || r->uid == 0 ||
	    sc_read(c, 0, e, IDX_SC_ENT, sc_ent_off(c, r->uid)) != 0)
		return 0;
	if (get32(e) != r->uid || get32(e + 4) != uv || get32(e + 8) != (uint32_t)r->size ||
	    get32(e + 12) != (uint32_t)r->data_len)
		return 0;
	for (int i = 0; i < IDX_SC_TEXTS; i++) {
		len[i] = (size_t)e[20 + 2 * i] | (size_t)e[21 + 2 * i] << 8;
		text[i] = buf + total;
		total += len[i];
	}
	if (total > n || sc_read(c, 1, buf, total, get32(e + 16)) != 0 ||
	    get32(e + 28) != sc_sum(e, buf, total))
		return 0;
	return 1;
}

int idx_sc_put(struct idx_sc *c, uint32_t uv, const struct idx_rec *r,
	       const char *texts, const size_t len[IDX_SC_TEXTS])
{
	unsigned char e[IDX_SC_ENT], h[IDX_SC_HDR];
	uint64_t eoff, base, end, was = 0;
	size_t total = 0;
	struct stat st;

	if (c->state != IDX_SC_OPEN || r->uid == 0)
		return 0;
	sc_gen++;
	for (int i = 0; i < IDX_SC_TEXTS; i++) {
		if (len[i] > 0xffff)
			return 0;
		total += len[i];
	}
	eoff = sc_ent_off(c, r->uid);
	base = IDX_SC_HDR + (uint64_t)c->slots * IDX_SC_ENT;
	if (fstat(c->fd, &st) != 0)
		return -1;
	if (pread_all(c->fd, e, IDX_SC_ENT, eoff) == 0 && get32(e) != 0) {
		if (get32(e) > r->uid && get32(e + 4) == uv)
			return 0;       /* a later message has it */
		was = sc_total(e);
	}
	end = (uint64_t)st.st_size > base ? (uint64_t)st.st_size : base;
	if (was || end - base + total > c->max) {
		if (pread_all(c->fd, h, IDX_SC_HDR, 0) != 0)
			return -1;
	}
	if (end - base + total > c->max) {
		if (get64(h + 24) + was < (end - base) / 2 || total > c->max) {
			/* Full of live texts: no more. An entry of a lower UID
			 * (an expunged or older message) is dropped, counting
			 * its texts dead, so the file starts afresh once half
			 * of it is. Either way each entry is written once. */
			if (!was)
				return 0;
			memset(e, 0, sizeof(e));
			put64(h + 24, get64(h + 24) + was);
			return pwrite_all(c->fd, e, IDX_SC_ENT, eoff) == 0 &&
			       pwrite_all(c->fd, h + 24, 8, 24) == 0 ? 0 : -1;
		}
		memset(h + 24, 0, 8);
		if (sc_afresh(c, h) != 0)
			return -1;
		end = base;
		was = 0;
	}
	memset(e, 0, sizeof(e));
	put32(e, r->uid);
	put32(e + 4, uv);
	put32(e + 8, (uint32_t)r->size);
	put32(e + 12, (uint32_t)r->data_len);
	put32(e + 16, (uint32_t)end);
	for (int i = 0; i < IDX_SC_TEXTS; i++) {
		e[20 + 2 * i] = (unsigned char)len[i];
		e[21 + 2 * i] = (unsigned char)(len[i] >> 8);
	}
	put32(e + 28, sc_sum(e, texts, total));
	/* The texts before the entry that points to them. */
	if (pwrite_all(c->fd, texts, total, end) != 0 ||
	    pwrite_all(c->fd, e, IDX_SC_ENT, eoff) != 0)
		return -1;
	if (was) {
		put64(h + 24, get64(h + 24) + was);
		if (pwrite_all(c->fd, h + 24, 8, 24) != 0)
			return -1;
	}
	return 1;
}
