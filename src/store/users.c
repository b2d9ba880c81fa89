/* users — users file loader (see users.h). Limits: 4 MiB file, names of
 * USER_NAME_MAX bytes. The table is sorted for binary search. */
#include "store/users.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

#define USERS_FILE_MAX (4u << 20)

struct users *users;
/* Defined here so builds without CONFIG_ALIASES still have the (NULL)
 * table the delivery code consults. */
struct aliases *aliases;

char *file_slurp(const char *path, size_t max, size_t *len, char *err,
		 size_t errlen)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max) {
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes",
			 path, max);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (memchr(buf, '\0', got)) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(buf);
		return NULL;
	}
	*len = got;
	return buf;
}

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
	return 1;
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
	if (!path || !path[0])
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
			snprintf(err, errlen, "%s:%d: bad user name '%.64s' "
				 "(a-z 0-9 . _ + -, at most %d)", path, lineno,
				 line, USER_NAME_MAX);
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
		u->v[u->n].hash = "";
		if (colon) {
			char *h = colon + 1, *c2 = strchr(h, ':');
			if (c2)
				*c2 = '\0';
			u->v[u->n].hash = h;
		}
		u->n++;
	}
	if (u->n > 1)
		qsort(u->v, (size_t)u->n, sizeof(*u->v), cmp_user);
	for (int i = 1; i < u->n; i++) {
		if (strcmp(u->v[i].name, u->v[i - 1].name) == 0) {
			snprintf(err, errlen, "%s: user '%s' listed twice", path,
				 u->v[i].name);
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
