/* loop — the one poll() loop. Owners register watchers (fd, wanted events,
 * monotonic deadline); each pass rebuilds the pollfd array from them, sleeps
 * until the earliest deadline (forever when there is none: an idle daemon
 * makes no wake-ups), then dispatches I/O and expired deadlines. */
#ifndef POSTIE_LOOP_H
#define POSTIE_LOOP_H

#include <stdint.h>

struct watcher {
	int fd;                 /* -1: not polled */
	short events;           /* POLLIN / POLLOUT wanted; 0: none */
	int64_t deadline;       /* now_ms() value; 0: none */
	void (*on_io)(struct watcher *w, short revents);
	void (*on_timeout)(struct watcher *w);
	int slot;               /* owned by the loop */
	unsigned long not_in;   /* the deadline does not fire in this pass */
};

#define LOOP_MAX_WATCHERS (CONFIG_MAX_CONNECTIONS + CONFIG_MAX_LISTENERS + 8)

void loop_init(void);
int loop_add(struct watcher *w);        /* -1 when the table is full */
void loop_del(struct watcher *w);
/* One pass: waits at most max_wait_ms (-1: until an event or deadline).
 * Signals unblocked during the wait are those not in the mask the caller
 * blocked. Returns the number of watchers served, -1 on poll error. */
int loop_step(int max_wait_ms);
/* The stall meter: the longest time one pass spent dispatching (I/O and
 * deadlines), in microseconds since start. Passes of at least
 * conf->log_stall_ms are logged as they happen. */
long loop_longest_stall_us(void);
/* The work meter: the most fsyncs (util's file_sync) one pass made since
 * start; a count, so tests can check the work budget without a clock. */
unsigned long loop_most_syncs(void);
/* The number of the pass running now (it counts up from 1). */
unsigned long loop_pass(void);
/* Runs w's timeout at the next pass, not in this one: a session that
 * had its turn goes on after the others had theirs. */
void loop_next_pass(struct watcher *w);
/* The earliest deadline of any watcher (a now_ms() value), -1 if none. */
int64_t loop_next_deadline(void);

#endif
