/* users — users file loader and editor (see users.h). Limits: 4 MiB
 * file, names of USER_NAME_MAX bytes. The table is sorted for binary
 * search; edits rewrite the file whole (temporary file, rename), one
 * at a time (an fcntl lock on FILE.lock). */
#include "store/users.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"
#include "store/passwd.h"

#define USERS_FILE_MAX (4u << 20)

struct users *users;
/* Defined here so builds without CONFIG_ALIASES still have the (NULL)
 * table the delivery code consults. */
struct aliases *aliases;

int users_valid_name(const char *s, size_t len)
{
	if (len == 0 || len > USER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr("._+-", c)))
			return 0;
	}
	/* mail_dir/NAME.lock is the dotlock of mail_dir/NAME. */
	if (len >= 5 && memcmp(s + len - 5, ".lock", 5) == 0)
		return 0;
	return 1;
}

/* Why users_valid_name refused a name, for the message that says so. */
_Static_assert(USER_NAME_MAX == 64, "name_rule says 64");
static const char *name_rule(const char *s, size_t len)
{
	if (len >= 5 && len <= USER_NAME_MAX && memcmp(s + len - 5, ".lock", 5) == 0)
		return "a name may not end in .lock: mail_dir/NAME.lock is the "
		       "dotlock of mailbox NAME";
	return "a-z 0-9 . _ + -, a letter or digit first, at most 64 characters";
}

/* Dovecot's passwd-file names the scheme in front: {SHA512-CRYPT}$6$...
 * Returns the hash without a prefix that matches what follows, else the
 * hash as it is (then refused below if it is not a plain $5$/$6$). */
static char *strip_scheme(char *h)
{
	static const struct { const char *prefix, *id; } known[] = {
		{ "{SHA512-CRYPT}", "$6$" }, { "{SHA256-CRYPT}", "$5$" },
		{ "{CRYPT}", "$6$" }, { "{CRYPT}", "$5$" },
	};

	for (size_t i = 0; i < ARRAY_LEN(known); i++) {
		size_t l = strlen(known[i].prefix);
		if (strncmp(h, known[i].prefix, l) == 0 &&
		    strncmp(h + l, known[i].id, 3) == 0)
			return h + l;
	}
	return h;
}

/* What an unusable hash looks like, without quoting it (it may be a
 * plaintext password). */
static const char *hash_kind(const char *h)
{
	if (strncmp(h, "$1$", 3) == 0)
		return "MD5-crypt ($1$)";
	if (strncmp(h, "$2", 2) == 0)
		return "bcrypt ($2...$)";
	if (strncmp(h, "$y$", 3) == 0 || strncmp(h, "$7$", 3) == 0)
		return "yescrypt or scrypt";
	if (strncmp(h, "$5$", 3) == 0 || strncmp(h, "$6$", 3) == 0)
		return "a damaged SHA-crypt hash, or one with more than 100000 rounds";
	if (h[0] == '{')
		return "a Dovecot scheme other than {SHA512-CRYPT}/{SHA256-CRYPT}";
	return "plaintext or an unknown scheme";
}

/* "" (no login), "*" and "!..." (locked) are fine; anything else must be
 * a hash the login code can check, or no login would ever succeed. */
static int hash_ok(const char *h)
{
	return !CONFIG_AUTH || h[0] == '\0' || strcmp(h, "*") == 0 || h[0] == '!' ||
	       passwd_hash_usable(h);
}

static int cmp_user(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

struct users *users_load(const char *path, char *err, size_t errlen)
{
	struct users *u = calloc(1, sizeof(*u));
	size_t len = 0, cap = 0;
	char *line, *next;
	int lineno = 0;

	if (!u)
		goto oom;
	/* A build without local mailboxes has no users: the empty table. */
	if (!CONFIG_MAILBOXES || !path || !path[0])
		return u;
	u->mem = file_slurp(path, USERS_FILE_MAX, &len, err, errlen);
	if (!u->mem) {
		free(u);
		return NULL;
	}
	for (line = u->mem; line && *line; line = next) {
		char *colon, *end;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		end = line + strlen(line);
		if (end > line && end[-1] == '\r')
			*--end = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0' || *line == '#')
			continue;
		colon = strchr(line, ':');
		if (colon)
			*colon = '\0';
		str_lower(line);
		if (!users_valid_name(line, strlen(line))) {
			snprintf(err, errlen, "%s:%d: bad user name '%.64s' (%s)",
				 path, lineno, line, name_rule(line, strlen(line)));
			goto fail;
		}
		if ((size_t)u->n == cap) {
			cap = cap ? cap * 2 : 16;
			struct user *nv = realloc(u->v, cap * sizeof(*nv));
			if (!nv)
				goto oom;
			u->v = nv;
		}
		u->v[u->n].name = line;
		u->v[u->n].line = lineno;
		u->v[u->n].hash = "";
		if (colon) {
			char *h = colon + 1, *c2 = strchr(h, ':');
			if (c2)
				*c2 = '\0';
			u->v[u->n].hash = strip_scheme(h);
		}
		if (!hash_ok(u->v[u->n].hash)) {
			snprintf(err, errlen, "%s:%d: user '%s': postie cannot check "
				 "this hash (%s); make a SHA-512 one with `postie user "
				 "passwd %s` (or `postie passwd`, `openssl passwd -6`)",
				 path, lineno, line, hash_kind(u->v[u->n].hash), line);
			goto fail;
		}
		u->n++;
	}
	if (u->n > 1)
		qsort(u->v, (size_t)u->n, sizeof(*u->v), cmp_user);
	for (int i = 1; i < u->n; i++) {
		if (strcmp(u->v[i].name, u->v[i - 1].name) == 0) {
			int a = u->v[i - 1].line, b = u->v[i].line;

			snprintf(err, errlen, "%s:%d: user '%s' listed twice (first "
				 "on line %d); keep one line", path, a > b ? a : b,
				 u->v[i].name, a < b ? a : b);
			goto fail;
		}
	}
	return u;
oom:
	snprintf(err, errlen, "%s: out of memory", path ? path : "users");
fail:
	users_free(u);
	return NULL;
}

void users_free(struct users *u)
{
	if (!u)
		return;
	free(u->v);
	free(u->mem);
	free(u);
}

int users_find(const struct users *u, const char *name, size_t len)
{
	char key[USER_NAME_MAX + 1];
	int lo = 0, hi;

	if (!u || len > USER_NAME_MAX)
		return -1;
	memcpy(key, name, len);
	key[len] = '\0';
	str_lower(key);
	hi = u->n - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2, c = strcmp(key, u->v[mid].name);
		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

/* The user name a line defines (lowercased into name), or "" for blank
 * and comment lines. */
static void line_user(const char *line, size_t len, char *name, size_t n)
{
	size_t i = 0, k;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	name[0] = '\0';
	if (i == len || line[i] == '#' || line[i] == '\r')
		return;
	for (k = i; k < len && line[k] != ':' && line[k] != '\r'; k++)
		;
	if (k - i < n && str_copy(name, n, line + i, k - i) == 0)
		str_lower(name);
}

/* Writes the new contents to a temporary file beside path with the old
 * file's mode and owner, fsyncs it and renames it over path. */
static int replace_file(const char *path, const struct buf *b, const struct stat *old,
			char *err, size_t errlen)
{
	char tmp[4096 + 32];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if ((old && (fchmod(fd, old->st_mode & 07777) != 0 ||
		     (fchown(fd, old->st_uid, old->st_gid) != 0 && errno != EPERM))) ||
	    write_all_fd(fd, b->p, b->len) != 0 || file_sync(fd) != 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	fsync_parent_of(path);
	return 0;
}

/* The edit itself, under the lock users_edit holds. */
static int edit_locked(const char *path, enum users_op op, const char *name,
		       const char *hash, char *err, size_t errlen)
{
	char want[USER_NAME_MAX + 1], have[USER_NAME_MAX + 1], *text, *mem;
	size_t len = 0, nl = strlen(name), cap;
	struct stat st;
	struct buf b;
	int found = 0, rc, ok, exists = stat(path, &st) == 0;

	ok = str_copy(want, sizeof(want), name, nl) == 0;
	if (ok) {
		str_lower(want);
		ok = users_valid_name(want, nl);
	}
	if (!ok) {
		snprintf(err, errlen, "bad user name '%.64s' (%s)", name,
			 name_rule(name, nl));
		errno = 0;
		return -1;
	}
	if (hash && strpbrk(hash, ":\r\n")) {
		snprintf(err, errlen, "a hash cannot hold ':' or a line end");
		return -1;
	}
	if (exists) {
		text = file_slurp(path, USERS_FILE_MAX, &len, err, errlen);
		if (!text)
			return -1;
	} else if (op == USERS_ADD && errno == ENOENT) {
		text = strdup("");
	} else {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	cap = sat_add(sat_add(len, strlen(hash ? hash : "")), USER_NAME_MAX + 4);
	mem = malloc(cap);
	if (!text || !mem) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(text);
		free(mem);
		return -1;
	}
	buf_init(&b, mem, cap);
	for (char *line = text, *next; *line; line = next) {
		char *end = strchr(line, '\n');
		size_t ll = end ? (size_t)(end - line) : strlen(line);

		next = end ? end + 1 : line + ll;
		line_user(line, ll, have, sizeof(have));
		if (!have[0] || strcmp(have, want) != 0) {
			buf_add(&b, line, ll);
			buf_addc(&b, '\n');
			continue;
		}
		found = 1;
		if (op == USERS_PASSWD) {
			/* name, the new hash, then whatever followed the old one */
			char *c1 = memchr(line, ':', ll), *rest = NULL;

			if (c1)
				rest = memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line));
			buf_add(&b, line, c1 ? (size_t)(c1 - line) : ll);
			buf_addc(&b, ':');
			buf_adds(&b, hash);
			if (rest)
				buf_add(&b, rest, ll - (size_t)(rest - line));
			buf_addc(&b, '\n');
		} else if (op == USERS_ADD) {
			break;
		}
	}
	if (op == USERS_ADD && !found)
		buf_printf(&b, "%s:%s\n", want, hash ? hash : "");
	free(text);
	if (found != (op != USERS_ADD)) {
		snprintf(err, errlen, found ? "%s: user '%s' exists already"
			 : "%s: no user '%s'", path, want);
		free(mem);
		return -1;
	}
	if (b.full) {
		snprintf(err, errlen, "%s: out of room", path);
		free(mem);
		return -1;
	}
	rc = replace_file(path, &b, exists ? &st : NULL, err, errlen);
	free(mem);
	return rc;
}

/* Edits run one at a time: each holds an fcntl write lock on PATH.lock
 * from before it reads the file until after its rename, so two editors
 * at once never both start from the same old file (the later rename
 * would drop the other's change). The lock file stays; the wait ends
 * when the holder, a short command, exits. */
int users_edit(const char *path, enum users_op op, const char *name,
	       const char *hash, char *err, size_t errlen)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char lock[4096 + 8];
	int fd, rc, e, tries = 0;

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >= sizeof(lock)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", lock, strerror(e));
		errno = e;
		return -1;
	}
	while ((rc = fcntl(fd, F_SETLKW, &fl)) != 0 && errno == EINTR && ++tries < 100)
		;
	if (rc != 0) {
		snprintf(err, errlen, "%s: lock: %s", lock, strerror(errno));
		close(fd);
		return -1;
	}
	errno = 0;
	rc = edit_locked(path, op, name, hash, err, errlen);
	e = errno;
	close(fd);          /* and the lock with it */
	errno = e;
	return rc;
}
