/* libFuzzer: the configuration parser, through a real file (it reads with
 * stdio like the daemon does). Errors must name the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static char path[64];
	char err[512];
	struct conf *c;
	FILE *f;

	if (!path[0]) {
		snprintf(path, sizeof(path), "/tmp/postie-fuzz-conf.%d", (int)getpid());
	}
	f = fopen(path, "w");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	err[0] = '\0';
	c = conf_load(path, err, sizeof(err));
	if (!c && strncmp(err, path, strlen(path)) != 0)
		__builtin_trap();
	conf_free(c);
	return 0;
}
