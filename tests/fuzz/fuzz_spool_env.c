/* libFuzzer: the envelope reader of spool and queue files ("F sender",
 * "R recipient", other capital-letter lines, "D", then the message).
 * Every value reported lies inside the file, on one line; data_off, when
 * found, is just past a "D" line. */
#include "session.h"
#include <fcntl.h>
#include "store/spool.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const unsigned char *in;
static size_t in_len;

static int on_env(void *ctx, char kind, const char *val, size_t len)
{
	(void)ctx;
	if ((kind != 'F' && kind != 'R') || memchr(val, '\n', len) ||
	    len > in_len || !memmem(in, in_len, val, len))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct spool_file f;
	const char *path;

	if (!fz_dir[0])
		fz_mkdir("spool");
	if (size > 65536)
		return 0;
	in = data;
	in_len = size;
	path = fz_write("msg", data, size);
	memset(&f, 0, sizeof(f));
	f.fd = open(path, O_RDONLY);
	if (f.fd < 0)
		abort();
	f.data_off = -1;
	if (spool_read_envelope(&f, on_env, NULL) == 0) {
		if (f.data_off < 2 || (size_t)f.data_off > size ||
		    data[f.data_off - 1] != '\n' || data[f.data_off - 2] != 'D')
			abort();
	}
	close(f.fd);
	return 0;
}
