/* tls_bench — times full TLS client handshakes of postie's own TLS layer
 * (src/tls/tls_bearssl.c, as the relay uses it: certificate chain and
 * name checked) against a TLS server, for tests/bench/handshake.sh:
 *
 *   tls_bench ADDR:PORT CAFILE NAME COUNT
 *
 * Connects COUNT times (blocking sockets, one after the other), runs
 * each handshake to its end and closes. Prints one line:
 *   handshakes N ms_total T ms_each E suite S
 * Exits 1 on the first failed handshake (with BearSSL's reason). A
 * benchmark, not a test: the figures depend on the machine. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls/tls.h"

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One handshake on a fresh connection; 0 when established. */
static int handshake(const struct sockaddr_in *sa, const char *name, char *desc,
		     size_t desclen)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;
	struct tls_conn *t;

	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		perror("tls_bench: connect");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	t = tls_client_new(name, 1);
	if (!t) {
		fprintf(stderr, "tls_bench: no TLS session\n");
		close(fd);
		return -1;
	}
	/* Bounded: a handshake is a few dozen records. */
	for (int i = 0; i < 1000; i++) {
		unsigned st = tls_state(t);

		if (st & TLS_CLOSED)
			break;
		if (st & TLS_APP_OUT) {
			snprintf(desc, desclen, "%s", tls_describe(t));
			rc = 0;
			break;
		}
		if ((st & TLS_WANT_WRITE) && tls_sock_write(t, fd) < 0)
			break;
		else if (!(st & TLS_WANT_WRITE) && (st & TLS_WANT_READ) &&
			 tls_sock_read(t, fd) < 0)
			break;
	}
	if (rc != 0)
		fprintf(stderr, "tls_bench: handshake failed: %s\n",
			tls_strerror(tls_error(t)));
	tls_conn_free(t);
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	char err[256], desc[80] = "", host[64];
	const char *colon;
	long long t0;
	int n;

	if (argc != 5 || !(colon = strrchr(argv[1], ':')) ||
	    (size_t)(colon - argv[1]) >= sizeof(host)) {
		fprintf(stderr, "usage: tls_bench ADDR:PORT CAFILE NAME COUNT\n");
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = '\0';
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	n = atoi(argv[4]);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || n < 1 || n > 10000) {
		fprintf(stderr, "tls_bench: bad address or count\n");
		return 2;
	}
	if (tls_load_ca(argv[2], err, sizeof(err)) != 0) {
		fprintf(stderr, "tls_bench: %s\n", err);
		return 1;
	}
	t0 = now_us();
	for (int i = 0; i < n; i++)
		if (handshake(&sa, argv[3], desc, sizeof(desc)) != 0)
			return 1;
	t0 = now_us() - t0;
	printf("handshakes %d ms_total %lld ms_each %lld suite %s\n", n, t0 / 1000,
	       t0 / 1000 / n, desc);
	return 0;
}
