/* runner — delivers what waits in the relay queue: retry schedule,
 * attempts through smtp_out, local targets, bounces and delay warnings,
 * and the maildrop pickup. The files themselves are store/queue.h's. */
#ifndef POSTIE_RUNNER_H
#define POSTIE_RUNNER_H

#include <time.h>

#if CONFIG_RELAY
/* Creates queue/ and maildrop/, loads what is waiting, starts the runner
 * and the maildrop watch. */
int relay_init(const char *spool_dir);
/* Every waiting message is due now (SIGUSR1, sendmail -q). */
void relay_run_now(void);
int relay_size(void);
/* For `postie status`: the arrival time of the oldest message in the
 * table (0 when empty), and the last deferral's reason ("" when none
 * since start) with its time. */
time_t relay_oldest(void);
const char *relay_last_error(time_t *when);
#else
static inline int relay_init(const char *d) { (void)d; return 0; }
static inline void relay_run_now(void) { }
static inline int relay_size(void) { return 0; }
static inline time_t relay_oldest(void) { return 0; }
static inline const char *relay_last_error(time_t *w) { *w = 0; return ""; }
#endif

#endif
