/* The mailbox index: encodings, the chunked scanner, the POP3 output
 * transform (sizes agree with the scanner), incremental update, rebuilds
 * and the crash-safe rewrite. Built only with CONFIG_POP3. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/index.h"
#include "unit.h"

static char dir[256];

static void mkdirs(void)
{
	char p[300];
	const char *t = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/postie-idx-XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(p, sizeof(p), "%s/mail", dir);
	mkdir(p, 0700);
}

/* ---- scanner ---- */

#define MAXM 8

struct got {
	int n;
	struct idx_rec r[MAXM];
};

static void collect(void *ctx, const struct idx_rec *r)
{
	struct got *g = ctx;

	if (g->n < MAXM)
		g->r[g->n] = *r;
	g->n++;
}

static void scan(const char *mb, size_t len, size_t chunk, struct got *g)
{
	struct idx_scan s;

	memset(g, 0, sizeof(*g));
	idx_scan_init(&s, 0, collect, g);
	for (size_t off = 0; off < len; off += chunk)
		idx_scan_feed(&s, (const unsigned char *)mb + off,
			      len - off < chunk ? len - off : chunk);
	idx_scan_end(&s);
}

/* What RETR sends (without the final dot), in chunks. */
static size_t out_all(const char *in, size_t len, size_t chunk, int stuff,
		      long top, char *out)
{
	struct idx_out o;
	size_t w = 0, off = 0;

	idx_out_init(&o, stuff, top);
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk, used;
		w += idx_out_feed(&o, (const unsigned char *)in + off, n, out + w, &used);
		off += used;
		if (used < n)
			break;
	}
	w += idx_out_end(&o, out + w);
	out[w] = '\0';
	return w;
}

struct scase {
	const char *mbox;
	int n;
	/* per message: data (as stored) and the CRLF form */
	const char *data[3];
	const char *crlf[3];
};

static const struct scase scases[] = {
	{ "", 0, { 0 }, { 0 } },
	{ "junk\n", 0, { 0 }, { 0 } },
	{ "From a Sat Jan  1 00:00:00 2000\nSubject: x\n\nbody\n\n", 1,
	  { "Subject: x\n\nbody\n" }, { "Subject: x\r\n\r\nbody\r\n" } },
	{ "From a\nA: 1\n\n>From me\n>>From you\n>Frog\n\nFrom b\nB: 2\n\n", 2,
	  { "A: 1\n\n>From me\n>>From you\n>Frog\n", "B: 2\n" },
	  { "A: 1\r\n\r\nFrom me\r\n>From you\r\n>Frog\r\n", "B: 2\r\n" } },
	/* no blank separator, CRLF in the file, last line without LF */
	{ "From a\r\nX: 1\r\nFrom b\nY\r\n\r\nbare\rcr\nlast", 2,
	  { "X: 1\r\n", "Y\r\n\r\nbare\rcr\nlast" },
	  { "X: 1\r\n", "Y\r\n\r\nbare\rcr\r\nlast\r\n" } },
	/* "From" without the space is content; empty message */
	{ "From a\nFrom\n\nFrom b\n\n", 2, { "From\n", "" }, { "From\r\n", "" } },
	{ "pre\nFrom a\n.dot\n..two\n\n", 1, { ".dot\n..two\n" }, { ".dot\r\n..two\r\n" } },
};

static void test_scanner(void)
{
	static const size_t chunks[] = { 1, 2, 3, 5, 7, 64, 100000 };
	char out[512];

	for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		const struct scase *c = &scases[i];
		size_t len = strlen(c->mbox);
		for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
			struct got g;
			scan(c->mbox, len, chunks[k], &g);
			CHECK(g.n == c->n, "case %zu chunk %zu: %d messages", i, chunks[k], g.n);
			for (int m = 0; m < c->n && m < g.n; m++) {
				const struct idx_rec *r = &g.r[m];
				const char *data = c->mbox + r->off + r->from_len;
				size_t w;
				CHECK(strncmp(c->mbox + r->off, "From ", 5) == 0,
				      "case %zu msg %d off %llu", i, m,
				      (unsigned long long)r->off);
				CHECK(r->data_len == strlen(c->data[m]) &&
				      memcmp(data, c->data[m], r->data_len) == 0,
				      "case %zu msg %d data %.*s", i, m, (int)r->data_len, data);
				w = out_all(data, (size_t)r->data_len, chunks[k], 0, -1, out);
				CHECK(strcmp(out, c->crlf[m]) == 0, "case %zu msg %d out %s",
				      i, m, out);
				CHECK(r->size == w, "case %zu msg %d size %llu != %zu", i, m,
				      (unsigned long long)r->size, w);
			}
		}
	}
}

/* Flags from Status:, X-Status: and X-Keywords: (first indexing). */
static char kwnames[8][32];
static int nkw;

static int kw_bit(void *ctx, const char *name, size_t n)
{
	(void)ctx;
	for (int k = 0; k < nkw; k++)
		if (strlen(kwnames[k]) == n && memcmp(kwnames[k], name, n) == 0)
			return k;
	if (nkw == 8 || n >= sizeof(kwnames[0]))
		return -1;
	memcpy(kwnames[nkw], name, n);
	kwnames[nkw][n] = '\0';
	return nkw++;
}

struct hcase {
	const char *mbox;
	uint32_t flags[2];
	uint64_t kw[2];         /* bits in order of first appearance */
};

static const struct hcase hcases[] = {
	{ "From a\nStatus: RO\nX-Status: AFT\n\nbody\n", { 1 | 2 | 4 | 16 }, { 0 } },
	/* D is not taken; case of the name does not matter; CRLF */
	{ "From a\r\nx-status: D\r\nSTATUS: R\r\n\r\n", { 1 }, { 0 } },
	/* keywords: blanks, commas, a continuation line, a non-atom */
	{ "From a\nX-Keywords: $Junk, w(x) \tb\n  c\nSubject: s\n  d\n\n"
	  "From b\nX-Keywords: b\n\n", { 0, 0 }, { 1 | 2 | 4, 2 } },
	/* only the header: the same fields in the body are content */
	{ "From a\nSubject: s\n\nStatus: RO\nX-Keywords: q\n", { 0 }, { 0 } },
	/* a header that never ends (no blank line) still counts */
	{ "From a\nX-Status: F\nFrom b\nStatus: R", { 4, 0 }, { 0 } },
};

static void test_header_flags(void)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 100000 };

	for (size_t i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++) {
		const struct hcase *c = &hcases[i];
		size_t len = strlen(c->mbox);
		for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
			struct idx_scan sc;
			struct got g;
			memset(&g, 0, sizeof(g));
			nkw = 0;
			idx_scan_init(&sc, 0, collect, &g);
			sc.kw = kw_bit;
			for (size_t off = 0; off < len; off += chunks[k])
				idx_scan_feed(&sc, (const unsigned char *)c->mbox + off,
					      len - off < chunks[k] ? len - off : chunks[k]);
			idx_scan_end(&sc);
			for (int m = 0; m < g.n && m < 2; m++)
				CHECK(g.r[m].flags == c->flags[m] && g.r[m].kw == c->kw[m],
				      "header case %zu chunk %zu msg %d: flags %u kw %llu",
				      i, chunks[k], m, g.r[m].flags,
				      (unsigned long long)g.r[m].kw);
		}
	}
	/* without the callback the header is not looked at */
	{
		struct got g;
		scan(hcases[0].mbox, strlen(hcases[0].mbox), 3, &g);
		CHECK(g.n == 1 && g.r[0].flags == 0, "no import without kw");
	}
}

struct ocase {
	const char *in;
	int stuff;
	long top;
	const char *want;
};

static const struct ocase ocases[] = {
	{ "a\n.b\n..c\n", 1, -1, "a\r\n..b\r\n...c\r\n" },
	{ ">From x\n>>From y\n>From\n.\n", 1, -1,
	  "From x\r\n>From y\r\n>From\r\n..\r\n" },
	{ ">.x\n>>>x\n", 1, -1, ">.x\r\n>>>x\r\n" },
	{ "H: 1\nH: 2\n\nb1\nb2\nb3\n", 1, 0, "H: 1\r\nH: 2\r\n\r\n" },
	{ "H: 1\n\nb1\nb2\nb3\n", 1, 2, "H: 1\r\n\r\nb1\r\nb2\r\n" },
	{ "H: 1\n\nb1\n", 1, 10, "H: 1\r\n\r\nb1\r\n" },
	{ "H: 1\r\n\r\n.b1\r\n", 1, 1, "H: 1\r\n\r\n..b1\r\n" },
	{ "x\r", 1, -1, "x\r\n" },
	{ "x\r\ry", 1, -1, "x\r\ry\r\n" },
	{ ">Fr", 1, -1, ">Fr\r\n" },
	{ "", 1, -1, "" },
};

static void test_out(void)
{
	char out[512];

	for (size_t i = 0; i < sizeof(ocases) / sizeof(ocases[0]); i++) {
		const struct ocase *c = &ocases[i];
		for (size_t chunk = 1; chunk < 9; chunk++) {
			out_all(c->in, strlen(c->in), chunk, c->stuff, c->top, out);
			CHECK(strcmp(out, c->want) == 0, "out case %zu chunk %zu: %s", i,
			      chunk, out);
		}
	}
}

static void test_encoding(void)
{
	struct idx_hdr h = { .uidvalidity = 0x01020304, .uidnext = 7, .count = 6,
			     .end = 0x1122334455667788ull, .ino = 9, .dev = 10,
			     .mtime_ns = 11 }, h2;
	struct idx_rec r = { .off = 0x0102030405060708ull, .data_len = 3, .size = 4,
			     .uid = 5, .flags = IDX_F_SEEN | IDX_F_DELETED,
			     .from_len = 6, .lines = 7 }, r2;
	unsigned char b[IDX_HDR_SIZE], rb[IDX_REC_SIZE];

	idx_hdr_encode(&h, b);
	CHECK(b[16] == 4 && b[19] == 1 && b[32] == 0x88, "little-endian header");
	CHECK(idx_hdr_decode(b, &h2) == 0 && h2.uidvalidity == h.uidvalidity &&
	      h2.end == h.end && h2.count == 6 && h2.mtime_ns == 11, "header roundtrip");
	b[40] ^= 1;
	CHECK(idx_hdr_decode(b, &h2) != 0, "checksum catches a flipped bit");
	idx_rec_encode(&r, rb);
	CHECK(rb[0] == 8 && rb[7] == 1, "little-endian record");
	idx_rec_decode(rb, &r2);
	CHECK(memcmp(&r, &r2, sizeof(r)) == 0, "record roundtrip");
}

/* ---- files ---- */

static void put(const char *name, const char *text, int append)
{
	char p[400];
	FILE *f;

	snprintf(p, sizeof(p), "%s/mail/%s", dir, name);
	f = fopen(p, append ? "a" : "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static size_t slurp(const char *name, char *buf, size_t n)
{
	char p[400];
	FILE *f;
	size_t got;

	snprintf(p, sizeof(p), "%s/mail/%s", dir, name);
	f = fopen(p, "r");
	if (!f)
		return 0;
	got = fread(buf, 1, n - 1, f);
	buf[got] = 0;
	fclose(f);
	return got;
}

/* Updates the index of mail/NAME in small steps; returns its header. */
static int update(const char *name, struct idx_hdr *h, int *ifd)
{
	char mp[400], md[400], ip[400];
	struct idx_update u;
	int mfd, rc = IDX_AGAIN, steps = 0;

	snprintf(mp, sizeof(mp), "%s/mail/%s", dir, name);
	snprintf(md, sizeof(md), "%s/mail", dir);
	if (idx_path(md, name, ".idx", ip, sizeof(ip), 1) != 0)
		return -1;
	mfd = open(mp, O_RDONLY);
	if (mfd < 0 || idx_update_begin(&u, mfd, ip) != 0)
		return -1;
	while (steps++ < 100000) {
		rc = idx_update_step(&u, 7, rc == IDX_AGAIN_LOCK);
		if (rc != IDX_AGAIN && rc != IDX_AGAIN_LOCK)
			break;
	}
	if (rc == IDX_DONE)
		idx_update_result(&u, h, ifd);
	idx_update_abort(&u);
	close(mfd);
	return rc == IDX_DONE ? 0 : -1;
}

static int keep_odd(void *ctx, uint32_t i)
{
	(void)ctx;
	return i % 2 == 1;
}

static uint32_t fnv(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* An index the daemon made, turned back into format 2 (48-byte records,
 * no keyword mask): the next update converts it keeping UIDVALIDITY, UIDs
 * and flags. */
static void test_migrate_v2(void)
{
	char ip[400], md[400];
	unsigned char b[IDX_HDR_SIZE], rb[IDX_REC_SIZE];
	struct idx_hdr h, h2;
	struct idx_reader r;
	struct idx_rec rec;
	int fd, out;

	put("v2", "From a\nS: 1\n\nx\n\nFrom b\nS: 2\n\ny\n\n", 0);
	CHECK(update("v2", &h, &fd) == 0 && h.count == 2, "v2: first index");
	idx_reader_init(&r, fd, h.count);
	CHECK(idx_get(&r, 1, &rec) == 0, "v2: record");
	rec.flags = IDX_F_SEEN | IDX_F_FLAGGED;
	CHECK(idx_store(&r, 1, &rec) == 0, "v2: store");
	snprintf(md, sizeof(md), "%s/mail", dir);
	idx_path(md, "v2", ".idx", ip, sizeof(ip), 0);
	out = open(ip, O_RDWR);
	CHECK(pread(fd, b, sizeof(b), 0) == (ssize_t)sizeof(b), "v2: header");
	b[8] = 2;               /* version */
	b[12] = 48;             /* record size */
	memset(b + 28, 0, 4);
	{
		uint32_t c = fnv(b, sizeof(b));
		b[28] = (unsigned char)c;
		b[29] = (unsigned char)(c >> 8);
		b[30] = (unsigned char)(c >> 16);
		b[31] = (unsigned char)(c >> 24);
	}
	CHECK(pwrite(out, b, sizeof(b), 0) == (ssize_t)sizeof(b), "v2: write header");
	for (uint32_t i = 0; i < h.count; i++) {
		CHECK(pread(fd, rb, sizeof(rb), IDX_HDR_SIZE + i * IDX_REC_SIZE) ==
		      (ssize_t)sizeof(rb), "v2: read record");
		CHECK(pwrite(out, rb, 48, IDX_HDR_SIZE + i * 48) == 48, "v2: write record");
	}
	CHECK(ftruncate(out, IDX_HDR_SIZE + h.count * 48) == 0, "v2: truncate");
	close(out);
	close(fd);
	CHECK(update("v2", &h2, &fd) == 0, "v2: converted");
	CHECK(h2.uidvalidity == h.uidvalidity && h2.count == 2 && h2.uidnext == 3,
	      "v2: kept uidvalidity %u/%u count %u", h2.uidvalidity, h.uidvalidity,
	      h2.count);
	idx_reader_init(&r, fd, h2.count);
	CHECK(idx_get(&r, 1, &rec) == 0 && rec.uid == 2 && rec.kw == 0 &&
	      rec.flags == (IDX_F_SEEN | IDX_F_FLAGGED), "v2: flags %u", rec.flags);
	close(fd);
}

static int keep_all(void *ctx, uint32_t i)
{
	(void)ctx;
	(void)i;
	return 1;
}

/* Flags another session stores in the old index while a rewrite copies
 * (after the record was copied) reach the new index. */
static void test_rewrite_late_flags(void)
{
	struct idx_hdr h, h2;
	struct idx_reader r;
	struct idx_rec rec;
	struct idx_rewrite w;
	char md[400], mp[400];
	int fd, lfd, rc, steps;

	put("lf", "From a\nS: 1\n\nx\n\nFrom b\nS: 2\n\ny\n\nFrom c\n\nz\n\n", 0);
	CHECK(update("lf", &h, &fd) == 0 && h.count == 3, "late: index");
	snprintf(md, sizeof(md), "%s/mail", dir);
	snprintf(mp, sizeof(mp), "%s/mail/lf", dir);
	lfd = open(mp, O_RDWR);
	CHECK(idx_rewrite_begin(&w, md, "lf", lfd, fd, &h, keep_all, NULL) == 0,
	      "late: begin");
	rc = idx_rewrite_step(&w, 40, &h2);     /* the first message copied */
	CHECK(rc == IDX_AGAIN, "late: first step");
	idx_reader_init(&r, fd, h.count);
	CHECK(idx_get(&r, 0, &rec) == 0, "late: record");
	rec.flags = IDX_F_ANSWERED;
	rec.kw = 5;
	CHECK(idx_store(&r, 0, &rec) == 0, "late: store");
	for (steps = 0; rc == IDX_AGAIN && steps < 10000; steps++)
		rc = idx_rewrite_step(&w, 40, &h2);
	CHECK(rc == IDX_DONE, "late: done");
	close(lfd);
	close(fd);
	CHECK(update("lf", &h, &fd) == 0 && h.count == 3, "late: reindex");
	idx_reader_init(&r, fd, h.count);
	CHECK(idx_get(&r, 0, &rec) == 0 && rec.flags == IDX_F_ANSWERED && rec.kw == 5,
	      "late: flags %u kw %llu kept", rec.flags, (unsigned long long)rec.kw);
	CHECK(h.modseq >= rec.modseq, "late: highest modseq covers it");
	close(fd);
}

static void test_update(void)
{
	struct idx_hdr h, h2, h3;
	struct idx_reader r;
	struct idx_rec rec;
	struct idx_rewrite w;
	char buf[2048], mp[400];
	int fd, lfd, rc, steps;
	uint32_t uv;

	put("u", "From a\nS: 1\n\nx\n\nFrom b\nS: 2\n\n>From y\n\n", 0);
	CHECK(update("u", &h, &fd) == 0, "first scan");
	CHECK(h.count == 2 && h.uidnext == 3, "count %u uidnext %u", h.count, h.uidnext);
	uv = h.uidvalidity;
	close(fd);
	/* Append: incremental, same UIDVALIDITY, next UID. */
	put("u", "From c\nS: 3\n\nz\n\n", 1);
	CHECK(update("u", &h, &fd) == 0, "append");
	CHECK(h.count == 3 && h.uidvalidity == uv && h.uidnext == 4,
	      "after append: %u %u %u", h.count, h.uidvalidity, h.uidnext);
	idx_reader_init(&r, fd, h.count);
	CHECK(idx_get(&r, 2, &rec) == 0 && rec.uid == 3 && rec.size == 11,
	      "third: uid %u size %llu", rec.uid, (unsigned long long)rec.size);
	CHECK(idx_get(&r, 3, &rec) != 0, "out of range");
	close(fd);
	/* Unchanged: same header. */
	CHECK(update("u", &h2, &fd) == 0 && h2.count == 3 && h2.uidvalidity == uv,
	      "unchanged");
	close(fd);

	/* Rewrite keeping messages 1 (uid 2) plus mail appended meanwhile. */
	snprintf(mp, sizeof(mp), "%s/mail/u", dir);
	CHECK(update("u", &h, &fd) == 0, "snapshot");
	put("u", "From d\nS: 4\n\n", 1);
	lfd = open(mp, O_RDWR);
	snprintf(buf, sizeof(buf), "%s/mail", dir);
	rc = idx_rewrite_begin(&w, buf, "u", lfd, fd, &h, keep_odd, NULL);
	CHECK(rc == 0, "rewrite begin");
	for (steps = 0, rc = IDX_AGAIN; rc == IDX_AGAIN && steps < 10000; steps++)
		rc = idx_rewrite_step(&w, 5, &h3);
	CHECK(rc == IDX_DONE, "rewrite done");
	close(lfd);
	close(fd);
	slurp("u", buf, sizeof(buf));
	CHECK(strcmp(buf, "From b\nS: 2\n\n>From y\n\nFrom d\nS: 4\n\n") == 0,
	      "rewritten: %s", buf);
	CHECK(h3.count == 2 && h3.uidvalidity == uv && h3.uidnext == 5,
	      "after rewrite %u %u %u", h3.count, h3.uidvalidity, h3.uidnext);
	CHECK(update("u", &h, &fd) == 0 && h.count == 2 && h.uidvalidity == uv,
	      "index matches the rewritten mbox: %u", h.count);
	idx_reader_init(&r, fd, h.count);
	CHECK(idx_get(&r, 0, &rec) == 0 && rec.uid == 2 && rec.off == 0, "kept uid 2");
	CHECK(idx_get(&r, 1, &rec) == 0 && rec.uid == 4, "new mail uid 4: %u", rec.uid);
	close(fd);

	/* Rewritten by another program (not an append): new UIDVALIDITY. */
	sleep(1);
	put("u", "From b\nS: 2\n\n>From y\n\n", 0);
	CHECK(update("u", &h, &fd) == 0, "rebuild");
	CHECK(h.count == 1 && h.uidvalidity > uv && h.uidnext == 2,
	      "rebuilt: %u %u %u", h.count, h.uidvalidity, h.uidnext);
	close(fd);
	/* Same bytes rewritten: UIDs kept (records match). */
	uv = h.uidvalidity;
	put("u", "From b\nS: 2\n\n>From y\n\n", 0);
	CHECK(update("u", &h, &fd) == 0 && h.uidvalidity == uv && h.count == 1,
	      "same content keeps uidvalidity");
	close(fd);
	/* Garbage index: rebuilt. */
	snprintf(buf, sizeof(buf), "%s/mail/.postie/u.idx", dir);
	fd = open(buf, O_WRONLY | O_TRUNC);
	CHECK(write(fd, "garbage", 7) == 7, "write");
	close(fd);
	CHECK(update("u", &h, &fd) == 0 && h.count == 1, "garbage index rebuilt");
	close(fd);
	/* Empty and missing-final-newline mailboxes. */
	put("e", "", 0);
	CHECK(update("e", &h, &fd) == 0 && h.count == 0 && h.uidnext == 1, "empty");
	close(fd);
	put("e", "From x\nA: 1", 0);
	CHECK(update("e", &h, &fd) == 0 && h.count == 1, "no final LF");
	close(fd);
	put("e", "\nFrom y\nB: 2\n", 1);
	CHECK(update("e", &h, &fd) == 0 && h.count == 2, "appended after: %u", h.count);
	close(fd);
}

/* ---- structure cache ---- */

static int sc_has(struct idx_sc *c, uint32_t uv, const struct idx_rec *r, const char *want)
{
	char buf[64];
	const char *t[IDX_SC_TEXTS];
	size_t l[IDX_SC_TEXTS];

	if (idx_sc_get(c, uv, r, buf, sizeof(buf), t, l) != 1)
		return 0;
	return l[0] + l[1] + l[2] == strlen(want) && memcmp(t[0], want, l[0]) == 0 &&
	       memcmp(t[1], want + l[0], l[1]) == 0 &&
	       memcmp(t[2], want + l[0] + l[1], l[2]) == 0;
}

static void test_scache(void)
{
	char path[300];
	struct idx_sc c;
	struct idx_rec r = { .size = 100, .data_len = 90, .uid = 3 }, r2;
	size_t l[IDX_SC_TEXTS] = { 2, 3, 1 }, big[IDX_SC_TEXTS] = { 20, 0, 0 };
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/mail/.postie/c.sc", dir);
	mkdir(dir, 0700);
	idx_sc_init(&c);
	CHECK(idx_sc_open(&c, path, 4, 64, 1, 0) == 0 && c.state == IDX_SC_NONE,
	      "sc: missing file, no entries");
	CHECK(idx_sc_get(&c, 7, &r, path, 1, NULL, NULL) == 0, "sc: nothing to get");
	CHECK(idx_sc_open(&c, path, 4, 64, 1, 1) == 0 && c.state == IDX_SC_OPEN, "sc: made");
	CHECK(idx_sc_put(&c, 7, &r, "abcdef", l) == 1 && sc_has(&c, 7, &r, "abcdef"),
	      "sc: put, get");
	CHECK(!sc_has(&c, 8, &r, "abcdef"), "sc: another UIDVALIDITY misses");
	r2 = r;
	r2.size++;
	CHECK(!sc_has(&c, 7, &r2, "abcdef"), "sc: other sizes miss");
	r2 = r;
	r2.uid = 7;                     /* the same entry (7 % 4 == 3) */
	CHECK(!sc_has(&c, 7, &r2, "abcdef"), "sc: other UID misses");
	CHECK(idx_sc_put(&c, 7, &r2, "ghijkl", l) == 1 && sc_has(&c, 7, &r2, "ghijkl"),
	      "sc: a higher UID takes the entry");
	CHECK(idx_sc_put(&c, 7, &r, "abcdef", l) == 0 && sc_has(&c, 7, &r2, "ghijkl") &&
	      !sc_has(&c, 7, &r, "abcdef"), "sc: a lower one does not");
	/* Reopened (a restart): still there; another format starts afresh. */
	CHECK(idx_sc_open(&c, path, 4, 64, 1, 0) == 0 && sc_has(&c, 7, &r2, "ghijkl"),
	      "sc: kept");
	CHECK(idx_sc_open(&c, path, 4, 64, 2, 0) == 0 && c.state == IDX_SC_NONE &&
	      idx_sc_open(&c, path, 4, 64, 2, 1) == 0 && !sc_has(&c, 7, &r2, "ghijkl"),
	      "sc: another format is no cache");
	/* A torn text fails the checksum. */
	CHECK(idx_sc_put(&c, 7, &r2, "ghijkl", l) == 1 && stat(path, &st) == 0, "sc: again");
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "X", 1, st.st_size - 2) == 1, "sc: tear");
	close(fd);
	CHECK(!sc_has(&c, 7, &r2, "ghijkl"), "sc: torn text misses");
	/* Bounded: 64 bytes of texts. Full of live texts: nothing more. */
	CHECK(idx_sc_open(&c, path, 4, 64, 3, 1) == 0, "sc: afresh");
	for (uint32_t u = 1; u <= 3; u++) {
		r2.uid = u;
		CHECK(idx_sc_put(&c, 7, &r2, "0123456789abcdefghij", big) == 1, "sc: fill %u", u);
	}
	r2.uid = 4;
	CHECK(idx_sc_put(&c, 7, &r2, "0123456789abcdefghij", big) == 0, "sc: full");
	/* Entries wanted by higher UIDs: dropped (dead) while full, then
	 * mostly dead: afresh, and the texts kept. */
	r2.uid = 5;                     /* entry 1 */
	CHECK(idx_sc_put(&c, 7, &r2, "0123456789abcdefghij", big) == 0, "sc: still full");
	r2.uid = 1;
	CHECK(!sc_has(&c, 7, &r2, "0123456789abcdefghij") &&
	      idx_sc_put(&c, 7, &r2, "0123456789abcdefghij", big) == 0, "sc: 1 dropped");
	r2.uid = 6;                     /* entry 2: 40 of 60 bytes dead */
	CHECK(idx_sc_put(&c, 7, &r2, "0123456789abcdefghij", big) == 1, "sc: afresh");
	r2.uid = 5;
	CHECK(idx_sc_put(&c, 7, &r2, "0123456789abcdefghij", big) == 1, "sc: room again");
	r2.uid = 3;
	CHECK(!sc_has(&c, 7, &r2, "0123456789abcdefghij"), "sc: afresh dropped the rest");
	CHECK(stat(path, &st) == 0 && st.st_size <= IDX_SC_HDR + 4 * IDX_SC_ENT + 64,
	      "sc: never beyond its bound (%lld)", (long long)st.st_size);
	r2.uid = 5;
	CHECK(sc_has(&c, 7, &r2, "0123456789abcdefghij"), "sc: kept after starting afresh");
	idx_sc_close(&c);
}

void test_index(void)
{
	mkdirs();
	test_encoding();
	test_scanner();
	test_header_flags();
	test_out();
	test_update();
	test_migrate_v2();
	test_rewrite_late_flags();
	test_scache();
}
