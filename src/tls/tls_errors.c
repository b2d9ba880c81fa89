/* tls_errors — BearSSL's numeric errors in words, for the log and for the
 * reason the queue records (what `mailq` and a bounce show). Owns only
 * text: tls_strerror() is pure; tls_explain() adds what a client session
 * learnt of the server's certificate (its name). Every code a TLS client
 * can meet has a phrase; any other is printed as a number. */
#include "tls/tls.h"

#include <bearssl.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"

/* The texts are packed: a NUL after each, a code byte each in a parallel
 * array made from the same list, and the prefixes many texts share
 * stored once (a text starting with byte N, 1..5, has prefix N). */
#define HS "\1"                 /* handshake failure: */
#define PROTO "\2"              /* protocol error: */
#define CERT "\3"               /* bad certificate: */
#define UNTRUSTED "\4"          /* certificate not trusted: */
#define CERT_KEY "\5"           /* certificate key */

static const char *const prefixes[] = {
	"", "handshake failure: ", "protocol error: ", "bad certificate: ",
	"certificate not trusted: ", "certificate key ",
};

/* The errors a TLS client meets (tls_explain is the SMTP client's); a
 * code only a server raises (no client certificate, a bad SNI in a
 * ClientHello) is printed as its number. */
#define ERRORS(X) \
	X(BR_ERR_BAD_PARAM, "internal error (bad parameter)") \
	X(BR_ERR_BAD_STATE, "internal error (bad state)") \
	X(BR_ERR_UNSUPPORTED_VERSION, HS "no common TLS version (TLS 1.2 needed)") \
	X(BR_ERR_BAD_VERSION, HS "the server changed the TLS version") \
	X(BR_ERR_BAD_LENGTH, PROTO "bad record length") \
	X(BR_ERR_TOO_LARGE, PROTO "record too large") \
	X(BR_ERR_BAD_MAC, PROTO "bad record MAC (data corrupted)") \
	X(BR_ERR_NO_RANDOM, "internal error: no random source") \
	X(BR_ERR_UNKNOWN_TYPE, PROTO "unknown record type") \
	X(BR_ERR_UNEXPECTED, PROTO "unexpected message") \
	X(BR_ERR_BAD_CCS, PROTO "bad ChangeCipherSpec") \
	X(BR_ERR_BAD_ALERT, PROTO "bad alert") \
	X(BR_ERR_BAD_HANDSHAKE, HS "malformed handshake message") \
	X(BR_ERR_OVERSIZED_ID, HS "oversized session id") \
	X(BR_ERR_BAD_CIPHER_SUITE, HS "no common cipher suite (ECDHE with AES-GCM or ChaCha20 needed)") \
	X(BR_ERR_BAD_COMPRESSION, HS "the server chose compression") \
	X(BR_ERR_BAD_FRAGLEN, HS "bad maximum fragment length") \
	X(BR_ERR_BAD_SECRENEG, HS "bad secure renegotiation") \
	X(BR_ERR_EXTRA_EXTENSION, HS "unexpected extension") \
	X(BR_ERR_BAD_HELLO_DONE, HS "bad ServerHelloDone") \
	X(BR_ERR_LIMIT_EXCEEDED, HS "a limit was exceeded") \
	X(BR_ERR_BAD_FINISHED, HS "bad Finished message") \
	X(BR_ERR_RESUME_MISMATCH, HS "session resumption mismatch") \
	X(BR_ERR_INVALID_ALGORITHM, HS "unsupported algorithm") \
	X(BR_ERR_BAD_SIGNATURE, HS "bad key exchange signature") \
	X(BR_ERR_WRONG_KEY_USAGE, CERT_KEY "usage forbids this use") \
	X(BR_ERR_IO, "connection error during TLS") \
	X(BR_ERR_X509_INVALID_VALUE, CERT "invalid value") \
	X(BR_ERR_X509_TRUNCATED, CERT "truncated") \
	X(BR_ERR_X509_EMPTY_CHAIN, "the server sent no certificate") \
	X(BR_ERR_X509_INNER_TRUNC, CERT "inner element truncated") \
	X(BR_ERR_X509_BAD_TAG_CLASS, CERT "bad DER tag class") \
	X(BR_ERR_X509_BAD_TAG_VALUE, CERT "bad DER tag") \
	X(BR_ERR_X509_INDEFINITE_LENGTH, CERT "indefinite length") \
	X(BR_ERR_X509_EXTRA_ELEMENT, CERT "extra element") \
	X(BR_ERR_X509_UNEXPECTED, CERT "unexpected element") \
	X(BR_ERR_X509_NOT_CONSTRUCTED, CERT "element not constructed") \
	X(BR_ERR_X509_NOT_PRIMITIVE, CERT "element not primitive") \
	X(BR_ERR_X509_PARTIAL_BYTE, CERT "partial byte in a bit string") \
	X(BR_ERR_X509_BAD_BOOLEAN, CERT "bad boolean") \
	X(BR_ERR_X509_OVERFLOW, CERT "value overflow") \
	X(BR_ERR_X509_BAD_DN, CERT "bad distinguished name") \
	X(BR_ERR_X509_BAD_TIME, CERT "bad validity date") \
	X(BR_ERR_X509_UNSUPPORTED, "certificate uses an unsupported feature") \
	X(BR_ERR_X509_LIMIT_EXCEEDED, "certificate chain too long or too large") \
	X(BR_ERR_X509_WRONG_KEY_TYPE, CERT_KEY "type does not match") \
	X(BR_ERR_X509_BAD_SIGNATURE, UNTRUSTED "bad signature") \
	X(BR_ERR_X509_TIME_UNKNOWN, "certificate not checked: the clock is not set") \
	X(BR_ERR_X509_EXPIRED, "certificate expired (or not yet valid)") \
	X(BR_ERR_X509_DN_MISMATCH, "certificate chain broken: issuer name mismatch") \
	X(BR_ERR_X509_BAD_SERVER_NAME, "name mismatch") \
	X(BR_ERR_X509_CRITICAL_EXTENSION, "certificate has an unknown critical extension") \
	X(BR_ERR_X509_NOT_CA, UNTRUSTED "issued by a certificate that is not a CA") \
	X(BR_ERR_X509_FORBIDDEN_KEY_USAGE, CERT_KEY "usage forbids a server") \
	X(BR_ERR_X509_WEAK_PUBLIC_KEY, CERT_KEY "too weak") \
	X(BR_ERR_X509_NOT_TRUSTED, UNTRUSTED "unknown issuer")

/* TLS alert descriptions (RFC 5246 §7.2). */
#define ALERTS(X) \
	X(0, "close_notify") X(10, "unexpected_message") X(20, "bad_record_mac") \
	X(22, "record_overflow") X(40, "handshake_failure") X(42, "bad_certificate") \
	X(43, "unsupported_certificate") X(44, "certificate_revoked") \
	X(45, "certificate_expired") X(46, "certificate_unknown") \
	X(47, "illegal_parameter") X(48, "unknown_ca") X(49, "access_denied") \
	X(50, "decode_error") X(51, "decrypt_error") X(70, "protocol_version") \
	X(71, "insufficient_security") X(80, "internal_error") \
	X(90, "user_canceled") X(100, "no_renegotiation") \
	X(110, "unsupported_extension") X(112, "unrecognized_name")

#define CODE(code, text) code,
#define TEXT(code, text) text "\0"

static const unsigned char err_codes[] = { ERRORS(CODE) };
static const char err_texts[] = ERRORS(TEXT);
static const unsigned char alert_codes[] = { ALERTS(CODE) };
static const char alert_texts[] = ALERTS(TEXT);

/* The text of code in a packed list, or NULL. */
static const char *lookup(const unsigned char *codes, size_t n, const char *texts,
			  int code)
{
	for (size_t i = 0; i < n; i++, texts += strlen(texts) + 1)
		if (codes[i] == code)
			return texts;
	return NULL;
}

const char *tls_strerror(int err)
{
	static char buf[96];
	int alert = err - (err >= BR_ERR_SEND_FATAL_ALERT ? BR_ERR_SEND_FATAL_ALERT
							  : BR_ERR_RECV_FATAL_ALERT);
	const char *s;

	if (err == BR_ERR_OK)
		return "no error";
	if (err >= BR_ERR_RECV_FATAL_ALERT) {
		s = lookup(alert_codes, sizeof(alert_codes), alert_texts, alert);
		snprintf(buf, sizeof(buf), "%s%s alert %d (%s)", prefixes[1],
			 err >= BR_ERR_SEND_FATAL_ALERT ? "sent" : "the peer sent",
			 alert, s ? s : "unknown");
		return buf;
	}
	s = lookup(err_codes, sizeof(err_codes), err_texts, err);
	if (!s)
		snprintf(buf, sizeof(buf), "TLS error %d", err);
	else if ((unsigned char)s[0] < ARRAY_LEN(prefixes))
		snprintf(buf, sizeof(buf), "%s%s", prefixes[(unsigned char)s[0]], s + 1);
	else
		return s;
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
