/* unit — a tiny table-driven test harness: CHECK records a failure with
 * file, line and the case, and the run goes on. */
#ifndef POSTIE_UNIT_H
#define POSTIE_UNIT_H

#include <stdio.h>

extern int unit_pass, unit_fail;

#define CHECK(cond, ...) do { \
	if (cond) { \
		unit_pass++; \
	} else { \
		unit_fail++; \
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
	} \
} while (0)

void test_util(void);
void test_buf(void);
void test_fdio(void);
void test_linebuf(void);
void test_pem(void);
void test_address(void);
void test_smtp_data(void);
void test_smtp_hops(void);
void test_mbox(void);
void test_conf(void);
void test_net(void);
void test_aliases(void);
void test_auth(void);
void test_index(void);
void test_relay_parts(void);
void test_mime7(void);
void test_imap(void);
void test_search(void);
void test_tls_errors(void);
/* Weak: linked only where src/core/libc_small.c is (LIBC_SMALL = y). */
void test_libc_small(void) __attribute__((weak));

#endif
