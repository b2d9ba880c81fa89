/* libFuzzer: the RFC 5321 path parser and the local-part key. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a;
	char key[CONFIG_SMTP_LOCAL_MAX + 1];

	for (int utf8 = 0; utf8 < 2; utf8++) {
		int n = addr_parse_path((const char *)data, size, &a, utf8);
		if (n < 0)
			continue;
		if ((size_t)n > size)
			__builtin_trap();
		if (!(a.flags & ADDR_NULL) && a.local_len > CONFIG_SMTP_LOCAL_MAX)
			__builtin_trap();
		if (a.domain_len > CONFIG_SMTP_DOMAIN_MAX)
			__builtin_trap();
		if (!(a.flags & ADDR_NULL))
			addr_local_key(&a, key, sizeof(key));
	}
	return 0;
}
