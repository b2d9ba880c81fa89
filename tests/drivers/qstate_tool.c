/* qstate_tool — the queue state of a message, through store/qstate (the
 * module the daemon and mailq use), for the protocol tests:
 *
 *   qstate_tool QUEUE_DIR ID show        one "key value" line per field,
 *                                        then per target:
 *       target STATE RCPT TRIES CODE STATUS LOCAL WHEN ADDR\tHOST\tTEXT
 *   qstate_tool QUEUE_DIR ID age SECONDS arrival moved SECONDS back, next
 *                                        try now (plays time forward for
 *                                        expiry and delay warnings)
 *
 * Exit 0, 1 when there is no state file, 2 on errors. Run only while
 * the daemon is stopped for `age`. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/qstate.h"

static struct qstate st;

int main(int argc, char **argv)
{
	int dfd, rc;

	if (argc < 4) {
		fputs("usage: qstate_tool QUEUE_DIR ID show|age SECONDS\n", stderr);
		return 2;
	}
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd < 0) {
		perror(argv[1]);
		return 2;
	}
	rc = qstate_load(dfd, argv[2], &st);
	close(dfd);
	if (rc != 0)
		return rc == 1 ? 1 : 2;
	if (strcmp(argv[3], "show") == 0) {
		printf("arrival %lld\nnext %lld\nattempts %d\nlocal_fails %d\n"
		       "warned %d\n", (long long)st.arrival, (long long)st.next,
		       st.attempts, st.local_fails, st.warned);
		for (int i = 0; i < st.n; i++) {
			const struct qstate_target *t = &st.t[i];
			printf("target %c %d %d %d %s %d %lld %s\t%s\t%s\n",
			       t->state, t->rcpt, t->tries, t->code, t->status,
			       t->local, (long long)t->when, t->addr, t->host,
			       t->text);
		}
		return 0;
	}
	if (strcmp(argv[3], "age") == 0 && argc == 5) {
		st.arrival -= atoll(argv[4]);
		st.next = 0;
		return qstate_save(argv[1], argv[2], &st) == 0 ? 0 : 2;
	}
	fputs("qstate_tool: unknown command\n", stderr);
	return 2;
}
