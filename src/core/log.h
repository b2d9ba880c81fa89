/* log — never blocks. Lines go to a ring buffer that is written to stderr
 * (non-blocking) or sent to syslog (/dev/log, MSG_DONTWAIT); when the
 * reader is slow, whole lines are dropped and counted, never waited for. */
#ifndef POSTIE_LOG_H
#define POSTIE_LOG_H

enum { LOGL_ERR = 3, LOGL_WARN = 4, LOGL_INFO = 6, LOGL_DEBUG = 7 };

void log_init(int use_syslog);
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* fd to poll for POLLOUT while lines are waiting, else -1. */
int log_pending_fd(void);
void log_flush(void);
/* Drops messages less severe than level (tests and fuzzers). */
void log_set_level(int level);

#endif
