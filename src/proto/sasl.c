/* sasl — the SASL PLAIN message (see sasl.h; base64 is core/b64). Limits:
 * PLAIN fields SASL_FIELD_MAX. */
#include "proto/sasl.h"

#include "core/buf.h"

#include <string.h>

int sasl_plain_parse(const unsigned char *buf, size_t len, struct sasl_plain *out)
{
	const unsigned char *nul1, *nul2, *end = buf + len;

	if (len == 0)
		return -1;
	nul1 = memchr(buf, '\0', len);
	if (!nul1)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
	if (!nul2 || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)))
		return -1;
	out->authzid = (const char *)buf;
	out->authzid_len = (size_t)(nul1 - buf);
	out->authcid = (const char *)nul1 + 1;
	out->authcid_len = (size_t)(nul2 - nul1 - 1);
	out->passwd = (const char *)nul2 + 1;
	out->passwd_len = (size_t)(end - nul2 - 1);
	if (out->authcid_len == 0 || out->passwd_len == 0 ||
	    out->authzid_len > SASL_FIELD_MAX || out->authcid_len > SASL_FIELD_MAX ||
	    out->passwd_len > SASL_FIELD_MAX)
		return -1;
	return 0;
}
