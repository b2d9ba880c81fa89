/* aliases — /etc/aliases syntax: "name: target, target", continuation
 * lines start with blanks. Targets are local users, other aliases, or
 * remote addresses (used by the relay). Programs (|cmd), files (/path) and
 * :include: are refused at load time, and so are loops. */
#ifndef POSTIE_ALIASES_H
#define POSTIE_ALIASES_H

#include <stddef.h>

#include "core/conf.h"
#include "store/users.h"

#define ALIAS_DEPTH_MAX 8

/* fn gets a users index (remote == NULL) or a remote address. */
typedef void (*alias_fn)(void *ctx, int user, const char *remote);

struct aliases;
extern struct aliases *aliases;

#if CONFIG_ALIASES
struct aliases *aliases_load(const char *path, const struct conf *c,
			     const struct users *u, char *err, size_t errlen);
void aliases_free(struct aliases *a);
/* Expands a local part. Returns the number of targets reported, or 0 when
 * name is not an alias. */
int aliases_expand(const struct aliases *a, const struct users *u,
		   const char *name, size_t len, alias_fn fn, void *ctx);
#else
static inline struct aliases *aliases_load(const char *path,
	const struct conf *c, const struct users *u, char *err, size_t errlen)
{
	(void)path; (void)c; (void)u; (void)err; (void)errlen;
	return NULL;
}
static inline void aliases_free(struct aliases *a) { (void)a; }
static inline int aliases_expand(const struct aliases *a,
	const struct users *u, const char *name, size_t len, alias_fn fn,
	void *ctx)
{
	(void)a; (void)u; (void)name; (void)len; (void)fn; (void)ctx;
	return 0;
}
#endif

#endif
