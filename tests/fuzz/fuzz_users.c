/* libFuzzer: the users file (passwd-file syntax). Whatever loads holds
 * only valid, lowercased names that users_find finds again, in any case;
 * a refusal names the file and line. */
#include <ctype.h>
#include "session.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char err[512], up[USER_NAME_MAX + 1];
	const char *path;
	struct users *u;

	if (!fz_dir[0])
		fz_mkdir("users");
	if (size > 65536)
		return 0;
	path = fz_write("users", data, size);
	u = users_load(path, err, sizeof(err));
	if (!u) {
		if (strncmp(err, path, strlen(path)) != 0)
			abort();
		return 0;
	}
	for (int i = 0; i < u->n; i++) {
		const char *n = u->v[i].name;
		size_t len = strlen(n);

		if (!users_valid_name(n, len) || len > USER_NAME_MAX || !u->v[i].hash)
			abort();
		for (size_t k = 0; k < len; k++) {
			if (isupper((unsigned char)n[k]))
				abort();
			up[k] = (char)toupper((unsigned char)n[k]);
		}
		if (users_find(u, n, len) < 0 || users_find(u, up, len) < 0)
			abort();
	}
	users_free(u);
	return 0;
}
