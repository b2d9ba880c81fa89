/* libFuzzer: bringing a mailbox index up to date from whatever index file
 * is on disk (store/index). Input: byte 0 picks the step budget (bits
 * 4-6) and the mode (bits 0-1); bytes 1-2 (LE) the length L of the next
 * part; then L bytes; the rest R.
 *   mode 0: the L bytes are an earlier version of the mbox: the old index
 *     is what postie would have written for it (its scan, UIDs from byte
 *     values, a valid header), and the mbox now holds R: another program
 *     replaced it (a new inode: an in-place rewrite that grows the file
 *     and keeps "From " at the old end and at the last message's offset
 *     is taken for an append, by design: the index is a cache checked by
 *     inode, size and those two places, not by content);
 *   mode 2: the same, and the mbox now holds L + R (mail was appended):
 *     the incremental path;
 *   mode 1, 3: the L bytes are the index file as they are, the mbox R.
 * After IDX_DONE the index must describe exactly the messages an
 * independent scan of the mbox finds (offset, length, size), with UIDs
 * strictly rising below UIDNEXT, and the update must end within the bound;
 * in mode 2 the old UIDs are kept. */
#include "session.h"
#include <fcntl.h>
#include "store/index.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define MAXMSG 4096
static struct idx_rec want[MAXMSG];
static uint32_t nwant;

static void collect(void *ctx, const struct idx_rec *r)
{
	(void)ctx;
	if (nwant < MAXMSG)
		want[nwant] = *r;
	nwant++;
}

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void scan(const unsigned char *p, size_t n)
{
	struct idx_scan sc;

	nwant = 0;
	idx_scan_init(&sc, 0, collect, NULL);
	idx_scan_feed(&sc, p, n);
	idx_scan_end(&sc);
}

static uint32_t old_uid[MAXMSG];

/* The index postie writes for mbox version old[0..olen), naming the file
 * st: returns its bytes in buf (static), *len. */
static unsigned char *old_index(const unsigned char *old, size_t olen,
				const struct stat *st, int replaced, size_t *len,
				struct idx_hdr *h)
{
	static unsigned char buf[IDX_HDR_SIZE + MAXMSG * IDX_REC_SIZE];
	uint32_t uid = 0;

	scan(old, olen);
	memset(h, 0, sizeof(*h));
	h->uidvalidity = 1000 + (olen ? old[0] : 0);
	h->count = nwant < MAXMSG ? nwant : MAXMSG;
	for (uint32_t i = 0; i < h->count; i++) {
		struct idx_rec r = want[i];
		/* UIDs rise by 1..4, from the message's first bytes */
		uid += 1 + old[r.off + (r.off + 5 < olen ? 5 : 0)] % 4;
		r.uid = old_uid[i] = uid;
		r.flags = old[r.off] & 31;
		r.modseq = 1 + i;
		idx_rec_encode(&r, buf + IDX_HDR_SIZE + (size_t)i * IDX_REC_SIZE);
	}
	h->uidnext = uid + 1;
	h->end = olen;
	h->modseq = h->count + 1;
	h->ino = (uint64_t)st->st_ino + (replaced != 0);
	h->dev = (uint64_t)st->st_dev;
	h->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u +
		      (uint64_t)st->st_mtim.tv_nsec;
	idx_hdr_encode(h, buf);
	*len = IDX_HDR_SIZE + (size_t)h->count * IDX_REC_SIZE;
	return buf;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static unsigned char mbuf[65536];
	char ipath[300], mdir[200], mpath[256];
	const unsigned char *old, *rest, *idx;
	size_t olen, rlen, mlen, ilen, budget;
	struct idx_update u;
	struct idx_hdr h, oh;
	struct stat st;
	int mfd, ifd = -1, rc = IDX_FAIL, mode;

	if (!fz_dir[0])
		fz_mkdir("index");
	if (size < 3 || size > sizeof(mbuf))
		return 0;
	mode = data[0] & 3;
	budget = (size_t)64 << (data[0] >> 4 & 7);      /* 64 B .. 8 KiB */
	olen = (size_t)le(data + 1, 2);
	if (olen > size - 3)
		olen = size - 3;
	old = data + 3;
	rest = old + olen;
	rlen = size - 3 - olen;
	mlen = 0;
	if (mode == 2) {
		memcpy(mbuf, old, olen);
		mlen = olen;
	}
	memcpy(mbuf + mlen, rest, rlen);
	mlen += rlen;
	snprintf(mdir, sizeof(mdir), "%s/mail", fz_dir);
	snprintf(mpath, sizeof(mpath), "%s/box", mdir);
	fz_write("mail/box", mbuf, mlen);
	if (idx_path(mdir, "box", ".idx", ipath, sizeof(ipath), 1) != 0)
		abort();
	mfd = open(mpath, O_RDONLY);
	if (mfd < 0 || fstat(mfd, &st) != 0)
		abort();
	if (mode & 1) {
		idx = old;
		ilen = olen;
	} else {
		idx = old_index(old, olen, &st, mode == 0, &ilen, &oh);
		if (idx_hdr_decode(idx, &h) != 0 && oh.uidnext > oh.count)
			abort();        /* what encode writes must decode */
	}
	fz_write("mail/.postie/box.idx", idx, ilen);
	scan(mbuf, mlen);

	if (idx_update_begin(&u, mfd, ipath) == 0) {
		for (int step = 0; step < 100000; step++) {
			rc = idx_update_step(&u, budget, 1);
			if (rc == IDX_DONE || rc == IDX_FAIL)
				break;
		}
		if (rc == IDX_DONE) {
			idx_update_result(&u, &h, &ifd);
		} else {
			if (rc != IDX_FAIL)
				abort();        /* did not end */
			idx_update_abort(&u);
		}
	}
	if (rc == IDX_DONE) {
		struct idx_reader r;
		struct idx_rec rec;
		uint32_t prev = 0;

		if (h.count != nwant || h.uidvalidity == 0)
			abort();
		idx_reader_init(&r, ifd, h.count);
		for (uint32_t i = 0; i < h.count && i < MAXMSG; i++) {
			if (idx_get(&r, i, &rec) != 0 || rec.off != want[i].off ||
			    rec.data_len != want[i].data_len ||
			    rec.size != want[i].size || rec.uid <= prev ||
			    rec.uid >= h.uidnext)
				abort();
			/* appended mail keeps the old UIDs (the old version
			 * ended at a message boundary: its last message is
			 * unchanged in the new mbox) */
			if (mode == 2 && i + 1 < oh.count && h.uidvalidity == oh.uidvalidity &&
			    rec.uid != old_uid[i])
				abort();
			prev = rec.uid;
		}
		close(ifd);
	}
	close(mfd);
	return 0;
}
