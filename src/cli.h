/* cli — `postie help`, `postie passwd`, `postie user`: the commands an
 * operator types besides the daemon and sendmail (see cli.c). */
#ifndef POSTIE_CLI_H
#define POSTIE_CLI_H

#define CLI_DEFAULT_CONF CONFIG_DEFAULT_CONF      /* Kconfig, per board */

/* The usage of every command on stderr; exits 64 (EX_USAGE). */
void cli_usage(void) __attribute__((noreturn));
/* argv[0] is "help"; argv[1], when given, a command name. */
int cli_help(int argc, char **argv);
int cli_passwd(void);
/* argv[0] is "user". */
int cli_user(int argc, char **argv);
/* argv[0] is "status": asks the running daemon over spool_dir/postie.ctl. */
int cli_status(int argc, char **argv);

#endif
