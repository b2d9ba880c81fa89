/* libFuzzer: the outgoing side's multi-line reply parser (smtp_out).
 * Input lines (split at LF) are fed one by one until the parser says DONE
 * or BAD. A DONE reply has a code in 200..599 whose lines all carried it;
 * the parser never takes more than SMTP_REPLY_MAX_LINES lines and its
 * text stays NUL-terminated inside its buffer. */
#include <stdlib.h>
#include <string.h>
#include "proto/smtp_out.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct smtp_reply r;
	const char *p = (const char *)data, *end = p + size;
	int rc = REPLY_MORE, fed = 0;

	smtp_reply_init(&r);
	while (p < end && rc == REPLY_MORE) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		rc = smtp_reply_line(&r, p, len);
		fed++;
		if (rc == REPLY_DONE || rc == REPLY_MORE) {
			/* every accepted line starts with the reply's code */
			if (len < 3 || p[0] - '0' != r.code / 100 ||
			    p[1] - '0' != r.code / 10 % 10 || p[2] - '0' != r.code % 10)
				abort();
		}
		p += len + (nl != NULL);
	}
	if (rc == REPLY_DONE && (r.code < 200 || r.code > 599))
		abort();
	if ((rc != REPLY_BAD && r.lines > SMTP_REPLY_MAX_LINES) || r.lines > fed)
		abort();
	if (!memchr(r.text, '\0', sizeof(r.text)))
		abort();
	return 0;
}
