/* users — the virtual users file, Dovecot passwd-file compatible:
 * "name:hash[:...]" per line, '#' comments. Names are local parts, valid in
 * every local domain, matched without regard to ASCII case. */
#ifndef POSTIE_USERS_H
#define POSTIE_USERS_H

#include <stddef.h>

#define USER_NAME_MAX 64

struct user {
	char *name;             /* lowercased */
	char *hash;             /* "$6$..." or "" */
};

struct users {
	struct user *v;
	int n;
	char *mem;
};

/* The table in force; replaced whole on reload. */
extern struct users *users;

/* NULL on error with "FILE:LINE: cause" in err. An empty path gives an
 * empty table. */
struct users *users_load(const char *path, char *err, size_t errlen);
void users_free(struct users *u);
/* Index of the user, or -1. */
int users_find(const struct users *u, const char *name, size_t len);
/* Names as stored: [a-z0-9] first, then [a-z0-9._+-]. */
int users_valid_name(const char *s, size_t len);
/* Reads a whole small file into a NUL-terminated heap buffer; refuses
 * files over max bytes. Shared by the users and aliases loaders. */
char *file_slurp(const char *path, size_t max, size_t *len, char *err,
		 size_t errlen);

#endif
