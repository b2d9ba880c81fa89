/* loop — poll loop with deadlines (see loop.h), and the stall meter: how
 * long each pass spends dispatching, the longest kept, passes over
 * conf->log_stall_ms logged. Limits: LOOP_MAX_WATCHERS watchers, fixed at
 * compile time; nothing here allocates. */
#include "core/loop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"

static struct watcher *table[LOOP_MAX_WATCHERS];
static struct pollfd pfd[LOOP_MAX_WATCHERS];
static struct watcher *pfd_owner[LOOP_MAX_WATCHERS];
static long longest_stall_us;
static unsigned long most_syncs;
static unsigned long pass = 1;

unsigned long loop_pass(void)
{
	return pass;
}

void loop_next_pass(struct watcher *w)
{
	w->deadline = now_ms();
	w->not_in = pass;
}

void loop_init(void)
{
	for (size_t i = 0; i < LOOP_MAX_WATCHERS; i++)
		table[i] = NULL;
}

int loop_add(struct watcher *w)
{
	for (int i = 0; i < LOOP_MAX_WATCHERS; i++) {
		if (!table[i]) {
			table[i] = w;
			w->slot = i;
			return 0;
		}
	}
	return -1;
}

void loop_del(struct watcher *w)
{
	if (w->slot >= 0 && w->slot < LOOP_MAX_WATCHERS && table[w->slot] == w)
		table[w->slot] = NULL;
	w->slot = -1;
	/* A watcher removed during dispatch must not be called again. */
	for (int i = 0; i < LOOP_MAX_WATCHERS; i++)
		if (pfd_owner[i] == w)
			pfd_owner[i] = NULL;
}

unsigned long loop_most_syncs(void)
{
	return most_syncs;
}

long loop_longest_stall_us(void)
{
	return longest_stall_us;
}

int64_t loop_next_deadline(void)
{
	int64_t next = -1;

	for (int i = 0; i < LOOP_MAX_WATCHERS; i++) {
		struct watcher *w = table[i];
		if (w && w->deadline && (next < 0 || w->deadline < next))
			next = w->deadline;
	}
	return next;
}

/* Microseconds on a clock (no 64-bit division: see below). */
static int64_t clock_us(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* One pass took us microseconds (cpu of them on our CPU time: the rest
 * is waiting, for the disk or for a busy machine): the meter, and a log
 * line when it is over the configured threshold. */
static void stall_meter(long us, long cpu, int served, unsigned long syncs)
{
	long limit = conf && conf->log_stall_ms > 0 ? (long)conf->log_stall_ms * 1000 : 0;

	if (us > longest_stall_us)
		longest_stall_us = us;
	if (syncs > most_syncs)
		most_syncs = syncs;
	if (limit && us >= limit)
		log_msg(LOGL_WARN, "loop: one pass took %ld.%03ld ms, cpu %ld.%03ld ms "
			"(%d served, %lu fsyncs); longest %ld.%03ld ms", us / 1000,
			us % 1000, cpu / 1000, cpu % 1000, served, syncs,
			longest_stall_us / 1000, longest_stall_us % 1000);
}

int loop_step(int max_wait_ms)
{
	int64_t now = now_ms(), next = -1, start, cpu0;
	long took;
	unsigned long syncs0;
	int n = 0, served = 0, rc;
	struct timespec ts, *tsp = NULL;
	sigset_t none;

	for (int i = 0; i < LOOP_MAX_WATCHERS; i++) {
		struct watcher *w = table[i];
		if (!w)
			continue;
		if (w->deadline && (next < 0 || w->deadline < next))
			next = w->deadline;
		if (w->fd >= 0 && w->events) {
			pfd[n].fd = w->fd;
			pfd[n].events = w->events;
			pfd[n].revents = 0;
			pfd_owner[n] = w;       /* n < i + 1: in the table */
			n++;
		}
	}
	if (next >= 0) {
		/* int arithmetic: 64-bit division costs 4.6 KB of helpers on
		 * MIPS, and a day of sleep is plenty before looking again. */
		int wait = next - now > 86400000 ? 86400000 :
			   next > now ? (int)(next - now) : 0;
		if (max_wait_ms >= 0 && wait > max_wait_ms)
			wait = max_wait_ms;
		ts.tv_sec = wait / 1000;
		ts.tv_nsec = (long)(wait % 1000) * 1000000;
		tsp = &ts;
	} else if (max_wait_ms >= 0) {
		ts.tv_sec = max_wait_ms / 1000;
		ts.tv_nsec = (long)(max_wait_ms % 1000) * 1000000;
		tsp = &ts;
	}
	sigemptyset(&none);
	rc = ppoll(pfd, (nfds_t)n, tsp, &none);
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	start = clock_us(CLOCK_MONOTONIC);
	syncs0 = util_syncs;
	cpu0 = clock_us(CLOCK_PROCESS_CPUTIME_ID);
	for (int i = 0; i < n && rc > 0; i++) {
		struct watcher *w = pfd_owner[i];
		if (!pfd[i].revents)
			continue;
		rc--;
		if (!w)
			continue;
		served++;
		w->on_io(w, pfd[i].revents);
	}
	for (int i = 0; i < n; i++)
		pfd_owner[i] = NULL;
	now = now_ms();
	for (int i = 0; i < LOOP_MAX_WATCHERS; i++) {
		struct watcher *w = table[i];
		if (w && w->deadline && w->deadline <= now && w->not_in != pass) {
			w->deadline = 0;
			served++;
			w->on_timeout(w);
		}
	}
	took = (long)(clock_us(CLOCK_MONOTONIC) - start);
	pass++;
	if (served)
		stall_meter(took, (long)(clock_us(CLOCK_PROCESS_CPUTIME_ID) - cpu0), served,
			    util_syncs - syncs0);
	return served;
}
