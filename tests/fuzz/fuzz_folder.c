/* libFuzzer: IMAP folder names (store/folders). A name folder_name_ok
 * accepts splits into a directory under the base and a file name with no
 * '/', neither with a component that is empty or starts with '.', and
 * base/dir/file spells the name again; a refused name never splits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/folders.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_components(const char *s)
{
	for (const char *p = s; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || p[0] == '.')
			abort();
		p += n + (e != NULL);
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char base[] = "/m/.postie/folders/u";
	char dir[FOLDER_PATH_MAX + 64], file[FOLDER_PATH_MAX + 64];
	char joined[2 * FOLDER_PATH_MAX + 130];
	const char *name = (const char *)data;
	int ok, r;

	if (size > 4 * FOLDER_NAME_MAX)
		return 0;
	ok = folder_name_ok(name, size);
	r = folder_split(base, name, size, dir, sizeof(dir), file, sizeof(file));
	if (!ok) {
		if (r == 0)
			abort();
		return 0;
	}
	if (memchr(name, '\0', size) || size > FOLDER_NAME_MAX)
		abort();
	if (r != 0)
		return 0;       /* ENAMETOOLONG is allowed */
	if (strncmp(dir, base, sizeof(base) - 1) != 0 || strchr(file, '/'))
		abort();
	check_components(dir + sizeof(base) - 1 + (dir[sizeof(base) - 1] == '/'));
	check_components(file);
	snprintf(joined, sizeof(joined), "%s/%s", dir, file);
	if (strlen(joined) != sizeof(base) + size ||
	    memcmp(joined + sizeof(base), name, size) != 0)
		abort();
	return 0;
}
