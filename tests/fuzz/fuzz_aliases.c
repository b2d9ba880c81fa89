/* libFuzzer: the aliases file and its expansion. Input: the file, then
 * after the first NUL the names to expand, one per line. The users are
 * demo and bob. Expansion reports users in range and remote addresses
 * that are strings; loops were refused at load time, so every expansion
 * ends. */
#include "session.h"
#include "store/aliases.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct users *us;

static void on_target(void *ctx, int user, const char *remote)
{
	int *n = ctx;

	if (remote ? strlen(remote) > 4096 : (user < 0 || user >= us->n))
		abort();
	(*n)++;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char err[512], text[512];
	const unsigned char *names, *end = data + size;
	const char *path;
	struct aliases *a;

	if (!fz_dir[0]) {
		fz_mkdir("aliases");
		fz_put("users", "demo:\nbob:\n");
		snprintf(text, sizeof(text), "hostname fuzz.test\nlisten smtp 127.0.0.1:1\n"
			 "users %s/users\nmail_dir %s/mail\nspool_dir %s/spool\n"
			 "local_domains test.lan other.lan\n", fz_dir, fz_dir, fz_dir);
		fz_start(text);
		us = users;
	}
	if (size > 65536)
		return 0;
	names = memchr(data, '\0', size);
	path = fz_write("aliases", data, names ? (size_t)(names - data) : size);
	a = aliases_load(path, conf, us, err, sizeof(err));
	if (!a)
		return 0;
	for (const unsigned char *p = names ? names + 1 : end; p < end;) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int n = 0, r;

		r = aliases_expand(a, us, (const char *)p, len, on_target, &n);
		if (r != n)
			abort();
		p += len + 1;
	}
	aliases_free(a);
	return 0;
}
