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
	int line;               /* in the users file, for messages */
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
/* Edits of the users file by `postie user`: the only writer of the file. */
enum users_op {
	USERS_ADD,              /* NAME:HASH appended; NAME must be new */
	USERS_DEL,              /* NAME's line removed */
	USERS_PASSWD,           /* NAME's hash replaced, its other fields kept */
};
/* Applies op to the file at path (ADD creates it, mode 0600, when
 * missing). Comments, blank lines, the order and every other line stay
 * byte for byte. The new file is written beside the old one with its mode
 * and owner, fsynced and renamed over it, so a reader sees the old file or
 * the new one, never a mix. Edits wait for each other (an fcntl lock on
 * PATH.lock, a file left beside it), so none is lost to another made at
 * the same time. 0, or -1 with the cause in err and errno that of the
 * failed call (EACCES, EROFS...), 0 for a refused name or file. */
int users_edit(const char *path, enum users_op op, const char *name,
	       const char *hash, char *err, size_t errlen);

#endif
