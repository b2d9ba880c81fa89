/* Runs every unit test group and prints "unit: N passed, N failed". */
#include "unit.h"

int unit_pass, unit_fail;

int main(void)
{
	test_util();
	test_buf();
	test_fdio();
	test_linebuf();
	test_pem();
	test_address();
	test_smtp_data();
	test_smtp_hops();
	test_mbox();
	test_conf();
	test_net();
	test_aliases();
	if (CONFIG_AUTH)
		test_auth();
	if (CONFIG_POP3)
		test_index();
	if (CONFIG_RELAY)
		test_relay_parts();
	if (CONFIG_RELAY)
		test_mime7();
	if (CONFIG_IMAP)
		test_imap();
	if (CONFIG_IMAP)
		test_search();
	if (CONFIG_TLS)
		test_tls_errors();
	if (test_libc_small)
		test_libc_small();
	printf("unit: %d passed, %d failed\n", unit_pass, unit_fail);
	return unit_fail ? 1 : 0;
}
