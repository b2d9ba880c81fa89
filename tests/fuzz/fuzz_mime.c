/* libFuzzer: the MIME structure parser and the ENVELOPE/BODYSTRUCTURE
 * renderers. The input is a message, fed in chunks whose size comes from
 * the first byte; every part and section path found is rendered. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mime.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct mime m;
	static char out[65536];
	struct mime_out o;
	size_t chunk;

	if (size < 1 || size > 200000)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	mime_init(&m);
	for (size_t off = 0; off < size; off += chunk)
		mime_feed(&m, (const char *)data + off, size - off < chunk ? size - off : chunk);
	mime_end(&m);
	if (m.n < 1 || m.n > MIME_MAX_PARTS)
		abort();
	for (int k = 0; k < m.n; k++) {
		const struct mime_part *p = &m.part[k];
		if (p->hdr_off > p->body_off || p->body_off > p->end_off || p->end_off > size)
			abort();
		mime_out_init(&o, out, sizeof(out));
		mime_bodystructure(&m, k, 1, &o);
		mime_envelope(&m, k, &o);
		if (o.b.len > sizeof(out))
			abort();
	}
	for (uint32_t a = 1; a <= 4; a++)
		for (uint32_t b = 1; b <= 4; b++) {
			uint32_t path[2] = { a, b };
			mime_find(&m, path, 2, 0);
			mime_find(&m, path, 2, 1);
			mime_find(&m, path, 1, 1);
		}
	return 0;
}
