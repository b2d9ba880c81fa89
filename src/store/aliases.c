/* aliases — aliases file loader and expander (see aliases.h). Limits:
 * 4 MiB file, ALIAS_DEPTH_MAX levels, USER_NAME_MAX names. */
#include "store/aliases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "store/qstate.h"

#define ALIASES_FILE_MAX (4u << 20)

struct alias {
	char *name;
	char **targets;         /* local part (lowercased) or remote address */
	unsigned char *remote;  /* per target: 1 if remote */
	int ntargets;
	int line;
};

struct aliases {
	struct alias *v;
	int n;
	char *mem;
};

/* By name, then by line: a duplicate is reported at its later line
 * whatever the sort does with equal keys. */
static int cmp_alias(const void *a, const void *b)
{
	const struct alias *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : x->line - y->line;
}

static const struct alias *find(const struct aliases *a, const char *name, size_t len)
{
	char key[USER_NAME_MAX + 1];
	int lo = 0, hi = a->n - 1;

	if (len > USER_NAME_MAX)
		return NULL;
	memcpy(key, name, len);
	key[len] = '\0';
	str_lower(key);
	while (lo <= hi) {
		int mid = (lo + hi) / 2, c = strcmp(key, a->v[mid].name);
		if (c == 0)
			return &a->v[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

struct walk {
	const struct aliases *a;
	const struct users *u;
	const struct alias *stack[ALIAS_DEPTH_MAX];
	int depth;
	alias_fn fn;
	void *ctx;
	int count;
	const char *bad;        /* first target that resolves to nothing */
	int loop;               /* ... because it is an alias on the stack */
};

static int on_stack(const struct walk *w, const struct alias *al)
{
	for (int i = 0; i < w->depth; i++)
		if (w->stack[i] == al)
			return 1;
	return 0;
}

static int walk(struct walk *w, const struct alias *al)
{
	if (w->depth >= ALIAS_DEPTH_MAX)
		return -1;
	w->stack[w->depth++] = al;
	for (int i = 0; i < al->ntargets; i++) {
		const char *t = al->targets[i];
		const struct alias *sub;
		int ui;

		if (al->remote[i]) {
			w->fn(w->ctx, -1, t);
			w->count++;
			continue;
		}
		sub = find(w->a, t, strlen(t));
		if (sub && !on_stack(w, sub)) {
			if (walk(w, sub) != 0)
				return -1;
			continue;
		}
		/* "name: name, other" keeps a copy for the user itself. */
		ui = users_find(w->u, t, strlen(t));
		if (ui < 0) {
			w->bad = t;
			w->loop = sub != NULL;
			return -1;
		}
		w->fn(w->ctx, ui, NULL);
		w->count++;
	}
	w->depth--;
	return 0;
}

/* Names the line of the alias whose target failed (not the alias the
 * walk started from) and, for a loop, the way round it. */
static void walk_error(const struct walk *w, const char *path, char *err,
		       size_t errlen)
{
	const struct alias *at = w->stack[w->depth - 1];
	char chain[256];
	struct buf b;

	if (!w->loop) {
		snprintf(err, errlen, "%s:%d: alias '%s': target '%s' is neither "
			 "a user nor an alias%s", path, at->line, at->name, w->bad,
			 CONFIG_MAILBOXES ? "" : " (this build has no local "
			 "mailboxes: a name without a domain, or in a local domain "
			 "(hostname, localhost, local_domains), must be an alias; "
			 "give an address elsewhere)");
		return;
	}
	buf_init(&b, chain, sizeof(chain));
	int from = w->depth - 1;
	while (from > 0 && strcmp(w->stack[from]->name, w->bad) != 0)
		from--;
	for (int i = from; i < w->depth; i++)
		buf_printf(&b, "%s -> ", w->stack[i]->name);
	buf_printf(&b, "%s", w->bad);
	buf_nul(&b);
	snprintf(err, errlen, "%s:%d: alias '%s': target '%s' leads back to "
		 "itself (%s) and is no user: aliases may not loop", path,
		 at->line, at->name, w->bad, chain);
}

int aliases_expand(const struct aliases *a, const struct users *u,
		   const char *name, size_t len, alias_fn fn, void *ctx)
{
	struct walk w = { .a = a, .u = u, .fn = fn, .ctx = ctx };
	const struct alias *al;

	if (!a)
		return 0;
	al = find(a, name, len);
	if (!al)
		return 0;
	if (walk(&w, al) != 0)
		return 0;
	return w.count;
}

static void count_only(void *ctx, int user, const char *remote)
{
	(void)ctx; (void)user; (void)remote;
}

/* Splits "a, b c" into targets; validates each. */
static int add_targets(struct alias *al, char *list,
		       const struct conf *c, size_t *tcap, const char *path,
		       char *err, size_t errlen)
{
	char *s = list;

	for (;;) {
		char *t, *at;
		while (*s == ' ' || *s == '\t' || *s == ',' || *s == '\n' || *s == '\r')
			s++;
		if (*s == '\0')
			return 0;
		t = s;
		while (*s && *s != ',' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			s++;
		if (*s)
			*s++ = '\0';
		if (t[0] == '|' || t[0] == '/' || t[0] == '"' ||
		    strncmp(t, ":include:", 9) == 0) {
			snprintf(err, errlen, "%s:%d: alias '%s': target '%.64s' "
				 "refused (programs, files and :include: are not "
				 "supported)", path, al->line, al->name, t);
			return -1;
		}
		if ((size_t)al->ntargets >= *tcap) {
			size_t ncap = *tcap ? *tcap * 2 : 4;
			char **nt = realloc(al->targets, ncap * sizeof(*nt));
			unsigned char *nr;
			if (!nt)
				goto oom;
			al->targets = nt;
			nr = realloc(al->remote, ncap);
			if (!nr)
				goto oom;
			al->remote = nr;
			*tcap = ncap;
		}
		at = strrchr(t, '@');
		if (at && !conf_is_local_domain(c, at + 1, strlen(at + 1))) {
			al->remote[al->ntargets] = 1;
		} else {
			if (at)
				*at = '\0';
			str_lower(t);
			if (!users_valid_name(t, strlen(t))) {
				snprintf(err, errlen, "%s:%d: alias '%s': bad target "
					 "'%.64s'", path, al->line, al->name, t);
				return -1;
			}
			al->remote[al->ntargets] = 0;
		}
		al->targets[al->ntargets++] = t;
	}
oom:
	snprintf(err, errlen, "%s: out of memory", path);
	return -1;
}

struct aliases *aliases_load(const char *path, const struct conf *c,
			     const struct users *u, char *err, size_t errlen)
{
	struct aliases *a = calloc(1, sizeof(*a));
	size_t len, cap = 0;
	char *p, *next;
	int lineno = 0;

	if (!a) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	if (!path || !path[0])
		return a;
	a->mem = file_slurp(path, ALIASES_FILE_MAX, &len, err, errlen);
	if (!a->mem) {
		free(a);
		return NULL;
	}
	/* Join continuation lines into their entry by turning the newline
	 * before a blank-led line into a space. */
	for (p = a->mem; *p; p++)
		if (*p == '\n' && (p[1] == ' ' || p[1] == '\t'))
			*p = ' ';
	for (p = a->mem; p && *p; p = next) {
		char *colon, *name;
		size_t tcap = 0;
		struct alias *al;

		lineno++;
		next = strchr(p, '\n');
		if (next)
			*next++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#' || *p == '\r')
			continue;
		char *hash = strchr(p, '#');
		if (hash)
			*hash = '\0';
		colon = strchr(p, ':');
		if (!colon) {
			snprintf(err, errlen, "%s:%d: want 'name: target, ...'",
				 path, lineno);
			goto fail;
		}
		*colon = '\0';
		name = p;
		for (char *e = colon; e > name && (e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = '\0';
		str_lower(name);
		if (!users_valid_name(name, strlen(name))) {
			snprintf(err, errlen, "%s:%d: bad alias name '%.64s'", path,
				 lineno, name);
			goto fail;
		}
		if ((size_t)a->n == cap) {
			cap = cap ? cap * 2 : 16;
			struct alias *nv = realloc(a->v, cap * sizeof(*nv));
			if (!nv) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			a->v = nv;
		}
		al = &a->v[a->n++];
		memset(al, 0, sizeof(*al));
		al->name = name;
		al->line = lineno;
		if (add_targets(al, colon + 1, c, &tcap, path, err, errlen) != 0)
			goto fail;
		if (al->ntargets == 0) {
			snprintf(err, errlen, "%s:%d: alias '%s' has no target", path,
				 lineno, name);
			goto fail;
		}
	}
	if (a->n > 1)
		qsort(a->v, (size_t)a->n, sizeof(*a->v), cmp_alias);
	for (int i = 0; i < a->n; i++) {
		struct walk w = { .a = a, .u = u, .fn = count_only };
		if (i > 0 && strcmp(a->v[i].name, a->v[i - 1].name) == 0) {
			snprintf(err, errlen, "%s:%d: alias '%s' defined twice", path,
				 a->v[i].line, a->v[i].name);
			goto fail;
		}
		if (walk(&w, &a->v[i]) != 0) {
			if (w.bad)
				walk_error(&w, path, err, errlen);
			else
				snprintf(err, errlen, "%s:%d: alias '%s' nests deeper "
					 "than %d levels", path, a->v[i].line,
					 a->v[i].name, ALIAS_DEPTH_MAX);
			goto fail;
		}
		/* The queue records each target of a message: more than
		 * that many could never all be tried. */
		if (w.count > QSTATE_TARGETS_MAX) {
			snprintf(err, errlen, "%s:%d: alias '%s' expands to %d targets, "
				 "more than the %d of one message (CONFIG_SMTP_MAX_RCPT): "
				 "split it", path, a->v[i].line, a->v[i].name, w.count,
				 QSTATE_TARGETS_MAX);
			goto fail;
		}
	}
	return a;
fail:
	aliases_free(a);
	return NULL;
}

void aliases_free(struct aliases *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->n; i++) {
		free(a->v[i].targets);
		free(a->v[i].remote);
	}
	free(a->v);
	free(a->mem);
	free(a);
}
