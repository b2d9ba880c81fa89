/* smtp_out — outgoing SMTP: a job is one message to one destination (the
 * smarthost, or one domain's MX hosts in preference order), up to
 * SMTPOUT_RCPT_MAX recipients. The queue fills a job, starts it, and gets
 * done() once with a result per recipient. Connections are kept for the
 * next job to the same destination, CONFIG_RELAY_MAX_PER_DEST at most per
 * destination. Remote replies are hostile input: codes checked, lines and
 * line counts capped. */
#ifndef POSTIE_SMTP_OUT_H
#define POSTIE_SMTP_OUT_H

#include <stddef.h>
#include <sys/types.h>

#define SMTPOUT_RCPT_MAX 16

/* Smarthost trouble no retry mends without a person (the mail waits):
 * it refused our login, or its certificate failed the check. */
enum { SMTPOUT_PROBLEM_NONE, SMTPOUT_PROBLEM_AUTH, SMTPOUT_PROBLEM_CERT };
#define SMTPOUT_DIAG 120

/* Multi-line reply parser; pure, fuzzed. */
struct smtp_reply {
	int code;               /* 0 until the first line */
	int lines;
	char text[SMTPOUT_DIAG];        /* first line's text, cut */
};

enum { REPLY_MORE = 0, REPLY_DONE = 1, REPLY_BAD = -1 };
#define SMTP_REPLY_MAX_LINES 100

void smtp_reply_init(struct smtp_reply *r);
/* One line without CRLF. REPLY_DONE when the last line arrived. */
int smtp_reply_line(struct smtp_reply *r, const char *line, size_t len);

struct smtpout;

struct smtpout_job {
	char domain[256];               /* "" when sent to the smarthost */
	char sender[CONFIG_SMTP_PATH_MAX + 1];
	int fd;                         /* spool file, read with pread */
	off_t data_off, data_len;
	int n;
	char rcpt[SMTPOUT_RCPT_MAX][CONFIG_SMTP_PATH_MAX + 1];
	int code[SMTPOUT_RCPT_MAX];     /* 250, 4xx or 5xx once done */
	char diag[SMTPOUT_RCPT_MAX][SMTPOUT_DIAG];
	char remote[64];                /* last host talked to */
	char remote_name[256];          /* its name (MX or smarthost) */
	int local;                      /* no server was reached, for a reason
					 * on this side (no resolver, DNS server
					 * silent, no route, no free slot): not a
					 * delivery attempt */
	int problem;                    /* SMTPOUT_PROBLEM_*: the smarthost's */
	void (*done)(struct smtpout_job *job);
	void *owner;
};

#if CONFIG_RELAY
/* Starts the session; done() is always called later from the loop.
 * -1: no session free right now (nothing started). */
int smtpout_start(struct smtpout_job *job);
int smtpout_active(const char *domain);
/* Closes the connections kept for a next message (after a reload: the
 * smarthost, its password or its CA may have changed). */
void smtpout_drop_idle(void);
void smtpout_init(void);
/* The smarthost password (read by the daemon from smarthost_auth FILE). */
void smtpout_set_secret(const char *s);
#else
static inline void smtpout_set_secret(const char *s) { (void)s; }
static inline int smtpout_start(struct smtpout_job *job) { (void)job; return -1; }
static inline int smtpout_active(const char *d) { (void)d; return 0; }
static inline void smtpout_init(void) { }
static inline void smtpout_drop_idle(void) { }
#endif

#endif
