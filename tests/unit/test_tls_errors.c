/* tls_strerror: BearSSL's codes in words (numbers as bearssl_ssl.h and
 * bearssl_x509.h define them, so that this file builds without TLS). */
#include <string.h>

#include "tls/tls.h"
#include "unit.h"

void test_tls_errors(void)
{
	static const struct { int err; const char *want; } cases[] = {
		{ 0, "no error" },
		{ 62, "certificate not trusted: unknown issuer" },
		{ 56, "name mismatch" },
		{ 54, "certificate expired (or not yet valid)" },
		{ 58, "certificate not trusted: issued by a certificate that is not a CA" },
		{ 53, "certificate not checked: the clock is not set" },
		{ 35, "the server sent no certificate" },
		{ 16, "handshake failure: no common cipher suite" },
		{ 3, "handshake failure: no common TLS version" },
		{ 256 + 40, "handshake failure: the peer sent alert 40 (handshake_failure)" },
		{ 256 + 48, "handshake failure: the peer sent alert 48 (unknown_ca)" },
		{ 256 + 99, "handshake failure: the peer sent alert 99 (unknown)" },
		{ 512 + 42, "handshake failure: sent alert 42 (bad_certificate)" },
		{ 61, "TLS error 61" },
		/* shared prefixes stored once, whole texts out */
		{ 1, "internal error (bad parameter)" },
		{ 5, "protocol error: bad record length" },
		{ 37, "bad certificate: bad DER tag class" },
		{ 60, "certificate key too weak" },
		{ 256 + 0, "handshake failure: the peer sent alert 0 (close_notify)" },
		{ 512 + 112, "handshake failure: sent alert 112 (unrecognized_name)" },
		/* only a server raises these (no client certificate, bad SNI) */
		{ 29, "TLS error 29" },
		{ 21, "TLS error 21" },
		{ 512 + 487, "handshake failure: sent alert 487 (unknown)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = tls_strerror(cases[i].err);
		CHECK(strncmp(got, cases[i].want, strlen(cases[i].want)) == 0,
		      "%d: got '%s', want '%s...'", cases[i].err, got, cases[i].want);
	}
}
