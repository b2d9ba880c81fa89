/* libFuzzer: the checks the daemon runs on a maildrop file any local
 * user may write (store/maildrop): the first bytes of the message
 * against sendmail's Received field for uid 0 and the name in the
 * input's first line, and the sender rules. Hostile bytes anywhere;
 * nothing may read outside the input, and a head that passes must
 * start with the exact field maildrop_received makes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "store/maildrop.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct conf c;
	char name[64], want[256], *copy;
	const unsigned char *nl = memchr(data, '\n', size < 63 ? size : 63);
	size_t nlen = nl ? (size_t)(nl - data) : 0, rest;
	size_t wl;

	if (size > 4096)
		return 0;
	memcpy(name, data, nlen);
	name[nlen] = '\0';
	rest = nl ? size - nlen - 1 : size;
	/* An exact-size copy, so ASan sees any read past the end. */
	copy = malloc(rest ? rest : 1);
	if (!copy)
		abort();
	memcpy(copy, nl ? nl + 1 : data, rest);
	if (maildrop_check_received(copy, rest, 0, name) == 0) {
		wl = maildrop_received(want, sizeof(want), 0, "", name, "");
		/* The prefix up to "by " is fixed by uid 0 and its login. */
		const char *by = strstr(want, "\tby ");
		if (!by || memcmp(copy, want, (size_t)(by - want) + 4) != 0 || wl == 0)
			abort();
	}
	memset(&c, 0, sizeof(c));
	c.sender_login_check = 1;
	c.nlocal_domains = 1;
	snprintf(c.local_domains[0], sizeof(c.local_domains[0]), "test");
	if (rest < 300) {
		char sender[300];
		memcpy(sender, copy, rest);
		sender[rest] = '\0';
		(void)maildrop_sender_ok(&c, sender, 0, 0);
		(void)maildrop_sender_ok(&c, sender, 1000, 0);
	}
	free(copy);
	return 0;
}
