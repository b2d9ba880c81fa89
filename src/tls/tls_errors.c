/* tls_errors — BearSSL's numeric errors in words, for the log and for the
 * reason the queue records (what `mailq` and a bounce show). Owns only
 * text: tls_strerror() is pure; tls_explain() adds what a client session
 * learnt of the server's certificate (its name). Every code BearSSL
 * defines has a phrase; an unknown one is printed as a number. */
#include "tls/tls.h"

#include <bearssl.h>
#include <stdio.h>
#include <string.h>

struct err_text {
	int code;
	const char *text;
};

static const struct err_text errs[] = {
	{ BR_ERR_BAD_PARAM, "internal error (bad parameter)" },
	{ BR_ERR_BAD_STATE, "internal error (bad state)" },
	{ BR_ERR_UNSUPPORTED_VERSION, "handshake failure: no common TLS version (TLS 1.2 needed)" },
	{ BR_ERR_BAD_VERSION, "handshake failure: the server changed the TLS version" },
	{ BR_ERR_BAD_LENGTH, "protocol error: bad record length" },
	{ BR_ERR_TOO_LARGE, "protocol error: record too large" },
	{ BR_ERR_BAD_MAC, "protocol error: bad record MAC (data corrupted)" },
	{ BR_ERR_NO_RANDOM, "internal error: no random source" },
	{ BR_ERR_UNKNOWN_TYPE, "protocol error: unknown record type" },
	{ BR_ERR_UNEXPECTED, "protocol error: unexpected message" },
	{ BR_ERR_BAD_CCS, "protocol error: bad ChangeCipherSpec" },
	{ BR_ERR_BAD_ALERT, "protocol error: bad alert" },
	{ BR_ERR_BAD_HANDSHAKE, "handshake failure: malformed handshake message" },
	{ BR_ERR_OVERSIZED_ID, "handshake failure: oversized session id" },
	{ BR_ERR_BAD_CIPHER_SUITE, "handshake failure: no common cipher suite (ECDHE with AES-GCM or ChaCha20 needed)" },
	{ BR_ERR_BAD_COMPRESSION, "handshake failure: the server chose compression" },
	{ BR_ERR_BAD_FRAGLEN, "handshake failure: bad maximum fragment length" },
	{ BR_ERR_BAD_SECRENEG, "handshake failure: bad secure renegotiation" },
	{ BR_ERR_EXTRA_EXTENSION, "handshake failure: unexpected extension" },
	{ BR_ERR_BAD_SNI, "handshake failure: bad server name indication" },
	{ BR_ERR_BAD_HELLO_DONE, "handshake failure: bad ServerHelloDone" },
	{ BR_ERR_LIMIT_EXCEEDED, "handshake failure: a limit was exceeded" },
	{ BR_ERR_BAD_FINISHED, "handshake failure: bad Finished message" },
	{ BR_ERR_RESUME_MISMATCH, "handshake failure: session resumption mismatch" },
	{ BR_ERR_INVALID_ALGORITHM, "handshake failure: unsupported algorithm" },
	{ BR_ERR_BAD_SIGNATURE, "handshake failure: bad key exchange signature" },
	{ BR_ERR_WRONG_KEY_USAGE, "certificate key usage forbids this use" },
	{ BR_ERR_NO_CLIENT_AUTH, "handshake failure: client certificate required" },
	{ BR_ERR_IO, "connection error during TLS" },
	{ BR_ERR_X509_INVALID_VALUE, "bad certificate: invalid value" },
	{ BR_ERR_X509_TRUNCATED, "bad certificate: truncated" },
	{ BR_ERR_X509_EMPTY_CHAIN, "the server sent no certificate" },
	{ BR_ERR_X509_INNER_TRUNC, "bad certificate: inner element truncated" },
	{ BR_ERR_X509_BAD_TAG_CLASS, "bad certificate: bad DER tag class" },
	{ BR_ERR_X509_BAD_TAG_VALUE, "bad certificate: bad DER tag" },
	{ BR_ERR_X509_INDEFINITE_LENGTH, "bad certificate: indefinite length" },
	{ BR_ERR_X509_EXTRA_ELEMENT, "bad certificate: extra element" },
	{ BR_ERR_X509_UNEXPECTED, "bad certificate: unexpected element" },
	{ BR_ERR_X509_NOT_CONSTRUCTED, "bad certificate: element not constructed" },
	{ BR_ERR_X509_NOT_PRIMITIVE, "bad certificate: element not primitive" },
	{ BR_ERR_X509_PARTIAL_BYTE, "bad certificate: partial byte in a bit string" },
	{ BR_ERR_X509_BAD_BOOLEAN, "bad certificate: bad boolean" },
	{ BR_ERR_X509_OVERFLOW, "bad certificate: value overflow" },
	{ BR_ERR_X509_BAD_DN, "bad certificate: bad distinguished name" },
	{ BR_ERR_X509_BAD_TIME, "bad certificate: bad validity date" },
	{ BR_ERR_X509_UNSUPPORTED, "certificate uses an unsupported feature" },
	{ BR_ERR_X509_LIMIT_EXCEEDED, "certificate chain too long or too large" },
	{ BR_ERR_X509_WRONG_KEY_TYPE, "certificate key type does not match" },
	{ BR_ERR_X509_BAD_SIGNATURE, "certificate not trusted: bad signature" },
	{ BR_ERR_X509_TIME_UNKNOWN, "certificate not checked: the clock is not set" },
	{ BR_ERR_X509_EXPIRED, "certificate expired (or not yet valid)" },
	{ BR_ERR_X509_DN_MISMATCH, "certificate chain broken: issuer name mismatch" },
	{ BR_ERR_X509_BAD_SERVER_NAME, "name mismatch" },
	{ BR_ERR_X509_CRITICAL_EXTENSION, "certificate has an unknown critical extension" },
	{ BR_ERR_X509_NOT_CA, "certificate not trusted: issued by a certificate that is not a CA" },
	{ BR_ERR_X509_FORBIDDEN_KEY_USAGE, "certificate key usage forbids a server" },
	{ BR_ERR_X509_WEAK_PUBLIC_KEY, "certificate key too weak" },
	{ BR_ERR_X509_NOT_TRUSTED, "certificate not trusted: unknown issuer" },
};

/* TLS alert descriptions (RFC 5246 §7.2). */
static const struct err_text alerts[] = {
	{ 0, "close_notify" }, { 10, "unexpected_message" }, { 20, "bad_record_mac" },
	{ 22, "record_overflow" }, { 40, "handshake_failure" }, { 42, "bad_certificate" },
	{ 43, "unsupported_certificate" }, { 44, "certificate_revoked" },
	{ 45, "certificate_expired" }, { 46, "certificate_unknown" },
	{ 47, "illegal_parameter" }, { 48, "unknown_ca" }, { 49, "access_denied" },
	{ 50, "decode_error" }, { 51, "decrypt_error" }, { 70, "protocol_version" },
	{ 71, "insufficient_security" }, { 80, "internal_error" },
	{ 90, "user_canceled" }, { 100, "no_renegotiation" },
	{ 110, "unsupported_extension" }, { 112, "unrecognized_name" },
};

static const char *lookup(const struct err_text *t, size_t n, int code)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return t[i].text;
	return NULL;
}

const char *tls_strerror(int err)
{
	static char buf[96];
	const char *s;

	if (err == BR_ERR_OK)
		return "no error";
	if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT) {
		s = lookup(alerts, sizeof(alerts) / sizeof(alerts[0]),
			   err - BR_ERR_RECV_FATAL_ALERT);
		snprintf(buf, sizeof(buf), "handshake failure: the peer sent alert "
			 "%d (%s)", err - BR_ERR_RECV_FATAL_ALERT, s ? s : "unknown");
		return buf;
	}
	if (err >= BR_ERR_SEND_FATAL_ALERT) {
		s = lookup(alerts, sizeof(alerts) / sizeof(alerts[0]),
			   err - BR_ERR_SEND_FATAL_ALERT);
		snprintf(buf, sizeof(buf), "handshake failure: sent alert %d (%s)",
			 err - BR_ERR_SEND_FATAL_ALERT, s ? s : "unknown");
		return buf;
	}
	s = lookup(errs, sizeof(errs) / sizeof(errs[0]), err);
	if (s)
		return s;
	snprintf(buf, sizeof(buf), "TLS error %d", err);
	return buf;
}

void tls_explain(struct tls_conn *t, const char *want, char *buf, size_t n)
{
	int err = t ? tls_error(t) : 0;
	const char *name = t ? tls_peer_name(t) : "";

	if (n == 0)
		return;
	if (!t || (err == BR_ERR_OK && !tls_established(t))) {
		snprintf(buf, n, "handshake failure: the connection closed during "
			 "the TLS handshake");
		return;
	}
	if (err == BR_ERR_X509_BAD_SERVER_NAME) {
		snprintf(buf, n, "name mismatch: certificate is for %s, not %s",
			 name[0] ? name : "another name", want && want[0] ? want : "?");
		return;
	}
	if (name[0] && err >= BR_ERR_X509_OK && err < BR_ERR_RECV_FATAL_ALERT) {
		snprintf(buf, n, "%s (certificate for %s)", tls_strerror(err), name);
		return;
	}
	snprintf(buf, n, "%s", tls_strerror(err));
}

int tls_cert_error(struct tls_conn *t)
{
	int err = tls_error(t);

	return err == BR_ERR_WRONG_KEY_USAGE ||
	       (err > BR_ERR_X509_OK && err <= BR_ERR_X509_NOT_TRUSTED);
}
