/* libFuzzer: the mbox scanner and the POP3 output transform (store/index).
 * The input is scanned whole and again in chunks whose sizes come from the
 * first byte; both must report the same messages, and for each message the
 * transform's output (without dot-stuffing) must be exactly the size the
 * scanner recorded, in one piece or in chunks. */
#include <stdlib.h>
#include <string.h>

#include "store/index.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define MAXM 512

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

static struct got a, b;
static char out[2 * 65536 + 64];

static size_t transform(const unsigned char *p, size_t n, size_t chunk, int stuff)
{
	struct idx_out o;
	size_t w = 0, off = 0, total = 0;

	idx_out_init(&o, stuff, -1);
	while (off < n) {
		size_t k = n - off < chunk ? n - off : chunk, used;
		w = idx_out_feed(&o, p + off, k, out, &used);
		if (w > 2 * k + 8 || used != k)
			abort();
		total += w;
		off += used;
	}
	w = idx_out_end(&o, out);
	if (w > 8)
		abort();
	return total + w;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct idx_scan s;
	size_t chunk, off;

	if (size < 1 || size > 65536)
		return 0;
	chunk = (size_t)(data[0] % 17) + 1;
	data++;
	size--;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	idx_scan_init(&s, 0, collect, &a);
	idx_scan_feed(&s, data, size);
	idx_scan_end(&s);
	idx_scan_init(&s, 0, collect, &b);
	for (off = 0; off < size; off += chunk)
		idx_scan_feed(&s, data + off, size - off < chunk ? size - off : chunk);
	idx_scan_end(&s);
	if (a.n != b.n || memcmp(a.r, b.r, sizeof(a.r)) != 0)
		abort();
	for (int i = 0; i < a.n && i < MAXM; i++) {
		const struct idx_rec *r = &a.r[i];
		uint64_t start = r->off + r->from_len;
		if (start + r->data_len > size || memcmp(data + r->off, "From ", 5) != 0)
			abort();
		if (transform(data + start, (size_t)r->data_len, size, 0) != r->size ||
		    transform(data + start, (size_t)r->data_len, chunk, 0) != r->size)
			abort();
		transform(data + start, (size_t)r->data_len, chunk, 1);
	}
	return 0;
}
