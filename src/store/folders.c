/* folders — IMAP folders as mbox files under mail_dir/.postie/folders/USER
 * (layout and name rules in folders.h). */
#include "store/folders.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"
#include "store/index.h"
#include "store/mbox.h"

#define FOLDERS_DIR ".postie/folders"
#define SBD ".sbd"
#define SUBS_FILE ".postie/subscriptions"

static const char *const specials[] = { "Sent", "Drafts", "Trash", "Junk" };

int folder_base(const char *mail_dir, const char *user, char *out, size_t n)
{
	int k = snprintf(out, n, "%s/%s/%s", mail_dir, FOLDERS_DIR, user);

	if (k < 0 || (size_t)k >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int component_ok(const char *p, size_t n)
{
	if (n == 0 || p[0] == '.')
		return 0;
	if (n >= 5 && memcmp(p + n - 5, ".lock", 5) == 0)
		return 0;
	if (n >= 4 && memcmp(p + n - 4, SBD, 4) == 0)
		return 0;       /* the children of a mailbox live there */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 0x20 || ch >= 0x7f || ch == '\\' || ch == '*' || ch == '%')
			return 0;
	}
	return 1;
}

int folder_name_ok(const char *name, size_t len)
{
	size_t start = 0;
	int depth = 0;

	if (len == 0 || len > FOLDER_NAME_MAX)
		return 0;
	/* INBOX is not a folder; neither is anything under it. */
	if (str_ieq(name, len < 5 ? len : 5, "INBOX") && (len == 5 || name[5] == '/'))
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '/')
			continue;
		if (++depth > FOLDER_DEPTH || !component_ok(name + start, i - start))
			return 0;
		start = i + 1;
	}
	return 1;
}

static int kind_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return FOLDER_NONE;
	if (S_ISREG(st.st_mode))
		return FOLDER_MBOX;
	if (S_ISDIR(st.st_mode))
		return FOLDER_DIR;
	return FOLDER_NONE;
}

/* path + ".sbd" into out. 0 or -1. */
static int sbd_of(const char *path, char *out, size_t n)
{
	int k = snprintf(out, n, "%s" SBD, path);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* Where the mailbox name[0..len) lives: BASE, then for each parent its
 * plain directory (a \Noselect parent) or, when the parent holds mail
 * (or did and was deleted), PARENT.sbd beside its mbox (Thunderbird's
 * layout); a parent that does not exist yet is a plain directory. */
static int map_path(const char *base, const char *name, size_t len, char *out,
		    size_t n)
{
	char sbd[FOLDER_PATH_MAX + 24];
	struct buf b;
	size_t start = 0;

	if (!folder_name_ok(name, len)) {
		errno = EINVAL;
		return -1;
	}
	buf_init(&b, out, n);
	buf_adds(&b, base);
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '/')
			continue;
		buf_addc(&b, '/');
		buf_add(&b, name + start, i - start);
		start = i + 1;
		if (i == len || buf_nul(&b) != 0)
			continue;
		int k = kind_of(out);
		if (k == FOLDER_MBOX ||
		    (k == FOLDER_NONE && sbd_of(out, sbd, sizeof(sbd)) == 0 &&
		     kind_of(sbd) == FOLDER_DIR))
			buf_adds(&b, SBD);
	}
	if (b.full || buf_nul(&b) != 0 || b.len > FOLDER_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int folder_split(const char *base, const char *name, size_t len,
		 char *dir, size_t dn, char *file, size_t fn)
{
	char path[FOLDER_PATH_MAX + 24];
	const char *slash;

	if (map_path(base, name, len, path, sizeof(path)) != 0)
		return -1;
	slash = strrchr(path, '/');
	if (!slash || str_copy(dir, dn, path, (size_t)(slash - path)) != 0 ||
	    str_copy(file, fn, slash + 1, strlen(slash + 1)) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int full_path(const char *base, const char *name, char *out, size_t n)
{
	return map_path(base, name, strlen(name), out, n);
}

/* The kind of the mailbox at path: an mbox, a directory, or a deleted
 * mailbox whose children remain in path.sbd (a directory then). */
static int kind_at(const char *path)
{
	char sbd[FOLDER_PATH_MAX + 24];
	int k = kind_of(path);

	if (k == FOLDER_NONE && sbd_of(path, sbd, sizeof(sbd)) == 0 &&
	    kind_of(sbd) == FOLDER_DIR)
		return FOLDER_DIR;
	return k;
}

int folder_kind(const char *base, const char *name)
{
	char path[FOLDER_PATH_MAX + 16];

	if (full_path(base, name, path, sizeof(path)) != 0)
		return FOLDER_NONE;
	return kind_at(path);
}

static int mkdir_ok(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return fsync_dir(path);
	return errno == EEXIST && kind_of(path) == FOLDER_DIR ? 0 : -1;
}

/* Makes every directory of path up to (not including) its last component,
 * starting below `from` octets (the part that must already exist). */
static int make_parents(char *path, size_t from)
{
	for (size_t i = from + 1; path[i]; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		int rc = mkdir_ok(path);
		path[i] = '/';
		if (rc != 0) {
			if (errno == EEXIST)
				errno = ENOTDIR;
			return -1;
		}
	}
	return 0;
}

/* mail_dir/.postie/folders/USER, made when missing. */
static int make_base(const char *base)
{
	char tmp[FOLDER_PATH_MAX + 16];
	size_t n = strlen(base);
	const char *p = strstr(base, "/" FOLDERS_DIR "/");

	if (!p || n + 2 > sizeof(tmp)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(tmp, base, n);
	tmp[n] = '/';
	tmp[n + 1] = '\0';
	return make_parents(tmp, (size_t)(p - base));
}

static void count_fn(void *ctx, const char *name, int kind, int children)
{
	(void)name; (void)kind; (void)children;
	(*(int *)ctx)++;
}

int folder_parent_step(const char *base, const char *name)
{
	char path[FOLDER_PATH_MAX + 16];
	size_t from = strlen(base);
	int n = 0;

	if (full_path(base, name, path, sizeof(path)) != 0 || make_base(base) != 0)
		return -1;
	folder_walk(base, count_fn, &n);
	if (n >= FOLDER_MAX)
		return 0;       /* folder_create says EMLINK, nothing made */
	for (size_t i = from + 1; path[i]; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		int kind = kind_of(path), rc = kind == FOLDER_DIR ? 0 : mkdir_ok(path);
		path[i] = '/';
		if (rc != 0) {
			if (errno == EEXIST)
				errno = ENOTDIR;
			return -1;
		}
		if (kind != FOLDER_DIR)
			return 1;
	}
	return 0;
}

int folder_create(const char *base, const char *name, int dir_only)
{
	char path[FOLDER_PATH_MAX + 16];
	int n = 0, fd;

	if (full_path(base, name, path, sizeof(path)) != 0)
		return -1;
	if (make_base(base) != 0)
		return -1;
	folder_walk(base, count_fn, &n);
	if (n >= FOLDER_MAX) {
		errno = EMLINK;
		return -1;
	}
	if (kind_of(path) == FOLDER_DIR && !dir_only) {
		/* A \Noselect parent becomes a mailbox: its children move to
		 * NAME.sbd (the layout of a parent that holds mail). */
		char sbd[FOLDER_PATH_MAX + 24];
		if (sbd_of(path, sbd, sizeof(sbd)) != 0 || kind_of(sbd) != FOLDER_NONE ||
		    rename(path, sbd) != 0 || fsync_parent_of(path) != 0)
			return -1;
	} else if (kind_of(path) != FOLDER_NONE ||
		   (dir_only && kind_at(path) != FOLDER_NONE)) {
		errno = EEXIST;
		return -1;
	}
	if (make_parents(path, strlen(base)) != 0)
		return -1;
	if (dir_only)
		return mkdir(path, 0700) == 0 ? fsync_parent_of(path) : -1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	return fsync_parent_of(path);
}

/* dir/.postie/file + suffix (.idx, .kw, .sc) for the mbox dir/file. */
static int index_of(const char *path, const char *suffix, char *out, size_t n,
		    int mk)
{
	char dir[FOLDER_PATH_MAX + 16];
	const char *slash = strrchr(path, '/');

	if (!slash || (size_t)(slash - path) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return idx_path(dir, slash + 1, suffix, out, n, mk);
}

/* A directory is empty when it holds nothing but dot entries. */
static int dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	for (int guard = 0; guard < 100000 && (e = readdir(d)); guard++)
		if (e->d_name[0] != '.') {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Removes dir/.postie and what it holds (indexes of removed folders). */
static void drop_index_dir(const char *dir)
{
	char p[FOLDER_PATH_MAX + 300];
	DIR *d;
	struct dirent *e;

	snprintf(p, sizeof(p), "%s/%s", dir, IDX_DIR);
	d = opendir(p);
	if (!d)
		return;
	for (int guard = 0; guard < 100000 && (e = readdir(d)); guard++) {
		char f[sizeof(p) + 260];
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
		unlink(f);
	}
	closedir(d);
	rmdir(p);
}

static int lock_folder(const char *path, struct mbox_lock *l)
{
	char dir[FOLDER_PATH_MAX + 16];
	const char *slash = strrchr(path, '/');
	int rc;

	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	rc = mbox_lock(dir, slash + 1, l);
	if (rc == MBOX_BUSY)
		errno = EBUSY;
	return rc == MBOX_OK ? 0 : -1;
}

/* Removes an empty folder directory (a \Noselect name). */
static int drop_dir(const char *path)
{
	if (!dir_empty(path)) {
		errno = ENOTEMPTY;
		return -1;
	}
	drop_index_dir(path);
	return rmdir(path) == 0 ? fsync_parent_of(path) : -1;
}

/* DELETE of a mailbox with children (RFC 3501 6.3.4): its mail goes,
 * NAME.sbd stays and the name is \Noselect; with no children left the
 * directory goes too. */
int folder_delete(const char *base, const char *name)
{
	char path[FOLDER_PATH_MAX + 16], ipath[FOLDER_PATH_MAX + 320];
	char sbd[FOLDER_PATH_MAX + 24];
	struct mbox_lock l;

	if (full_path(base, name, path, sizeof(path)) != 0 ||
	    sbd_of(path, sbd, sizeof(sbd)) != 0)
		return -1;
	switch (kind_of(path)) {
	case FOLDER_DIR:
		return drop_dir(path);
	case FOLDER_MBOX:
		break;
	default:
		if (kind_of(sbd) == FOLDER_DIR)
			return drop_dir(sbd);   /* a deleted mailbox's children */
		errno = ENOENT;
		return -1;
	}
	if (lock_folder(path, &l) != 0)
		return -1;
	if (unlink(path) != 0) {
		int e = errno;
		mbox_unlock(&l);
		errno = e;
		return -1;
	}
	if (index_of(path, ".idx", ipath, sizeof(ipath), 0) == 0)
		unlink(ipath);
	if (index_of(path, ".kw", ipath, sizeof(ipath), 0) == 0)
		unlink(ipath);
	if (index_of(path, ".sc", ipath, sizeof(ipath), 0) == 0)
		unlink(ipath);
	mbox_unlock(&l);
	if (kind_of(sbd) == FOLDER_DIR && dir_empty(sbd))
		drop_dir(sbd);
	return fsync_parent_of(path);
}

/* The index, keywords and structure cache of the mbox from go to `to`
 * when from has them (over stale ones of `to`); the caller fsyncs. */
static void move_indexes(const char *from, const char *to)
{
	static const char *const sfx[] = { ".idx", ".kw", ".sc" };
	char ifrom[FOLDER_PATH_MAX + 320], ito[FOLDER_PATH_MAX + 320];

	for (size_t i = 0; i < ARRAY_LEN(sfx); i++) {
		if (index_of(from, sfx[i], ifrom, sizeof(ifrom), 0) != 0 ||
		    index_of(to, sfx[i], ito, sizeof(ito), i == 0) != 0 ||
		    access(ifrom, F_OK) != 0)
			continue;
		/* A missing index is rebuilt with a new UIDVALIDITY, missing
		 * keyword names are dropped, the cache is only a cache. */
		if (rename(ifrom, ito) != 0)
			unlink(ifrom);
	}
}

/* Moves the mbox at from (locked by the caller) and its index to `to`,
 * whose parents exist. */
static int move_mbox(const char *from, const char *to)
{
	char ito[FOLDER_PATH_MAX + 320];

	if (index_of(to, ".idx", ito, sizeof(ito), 1) != 0 || rename(from, to) != 0)
		return -1;
	move_indexes(from, to);
	if (fsync_parent_of(to) != 0 || fsync_parent_of(from) != 0)
		return -1;
	return 0;
}

/* The path of folder `to` into tpath, its parents made. */
static int prepare_parents(const char *base, const char *to, char *tpath, size_t n)
{
	if (full_path(base, to, tpath, n) != 0 || make_base(base) != 0)
		return -1;
	return make_parents(tpath, strlen(base));
}

static int prepare_target(const char *base, const char *to, char *tpath, size_t n)
{
	if (full_path(base, to, tpath, n) != 0)
		return -1;
	if (kind_at(tpath) != FOLDER_NONE) {
		errno = EEXIST;
		return -1;
	}
	return prepare_parents(base, to, tpath, n);
}

static int write_file(const char *path, const char *data, size_t n);

/* RENAME of a mailbox with children moves the mbox, its index files and
 * NAME.sbd one after the other; so that a crash never leaves the tree
 * split, the intent "FROM\nTO\n" is written (synced) to BASE/.rename
 * first and removed last, and folder_replay() finishes an intent it
 * finds. Each step is done only when its source is there and its target
 * is not, so doing it again is harmless. */
#define RENAME_INTENT ".rename"

static int intent_path(const char *base, char *out, size_t n)
{
	int k = snprintf(out, n, "%s/" RENAME_INTENT, base);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

static int finish_rename(const char *fpath, const char *tpath)
{
	char fsbd[FOLDER_PATH_MAX + 24], tsbd[FOLDER_PATH_MAX + 24];
	struct mbox_lock l;
	int rc = 0;

	if (sbd_of(fpath, fsbd, sizeof(fsbd)) != 0 ||
	    sbd_of(tpath, tsbd, sizeof(tsbd)) != 0)
		return -1;
	if (kind_of(fpath) == FOLDER_MBOX && kind_of(tpath) == FOLDER_NONE) {
		if (lock_folder(fpath, &l) != 0)
			return -1;
		rc = move_mbox(fpath, tpath);
		mbox_unlock(&l);
	} else if (kind_of(tpath) == FOLDER_MBOX && kind_of(fpath) == FOLDER_NONE) {
		move_indexes(fpath, tpath);     /* died between the two */
		rc = fsync_parent_of(tpath);
	}
	if (rc == 0 && kind_of(fsbd) == FOLDER_DIR && kind_of(tsbd) == FOLDER_NONE &&
	    (rename(fsbd, tsbd) != 0 || fsync_parent_of(tsbd) != 0 ||
	     fsync_parent_of(fsbd) != 0))
		rc = -1;
	return rc;
}

static int intent_done(const char *ipath)
{
	return unlink(ipath) == 0 ? fsync_parent_of(ipath) : -1;
}

int folder_replay(const char *base)
{
	char ipath[FOLDER_PATH_MAX + 16], buf[2 * FOLDER_NAME_MAX + 8];
	char fpath[FOLDER_PATH_MAX + 16], tpath[FOLDER_PATH_MAX + 16];
	char *nl1, *nl2;
	ssize_t n;
	int fd;

	if (intent_path(base, ipath, sizeof(ipath)) != 0)
		return -1;
	fd = open(ipath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	nl1 = strchr(buf, '\n');
	nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
	if (nl2) {
		*nl1 = *nl2 = '\0';
		if (!folder_name_ok(buf, strlen(buf)) ||
		    !folder_name_ok(nl1 + 1, strlen(nl1 + 1)) ||
		    prepare_parents(base, nl1 + 1, tpath, sizeof(tpath)) != 0 ||
		    full_path(base, buf, fpath, sizeof(fpath)) != 0 ||
		    finish_rename(fpath, tpath) != 0)
			return -1;
	}
	/* Finished, or never whole (died while writing it: nothing moved). */
	return intent_done(ipath);
}

int folder_rename(const char *base, const char *from, const char *to)
{
	char fpath[FOLDER_PATH_MAX + 16], tpath[FOLDER_PATH_MAX + 16];
	char fsbd[FOLDER_PATH_MAX + 24], ipath[FOLDER_PATH_MAX + 16];
	char intent[2 * FOLDER_NAME_MAX + 8];
	size_t fl = strlen(from);
	struct buf ib;
	int kind;

	if (folder_replay(base) != 0 ||
	    full_path(base, from, fpath, sizeof(fpath)) != 0 ||
	    sbd_of(fpath, fsbd, sizeof(fsbd)) != 0)
		return -1;
	kind = kind_at(fpath);
	if (kind == FOLDER_NONE) {
		errno = ENOENT;
		return -1;
	}
	if (strncmp(to, from, fl) == 0 && (to[fl] == '/' || to[fl] == '\0')) {
		errno = EINVAL;
		return -1;
	}
	if (prepare_target(base, to, tpath, sizeof(tpath)) != 0)
		return -1;
	if (kind == FOLDER_DIR) {
		/* A plain directory, or the children of a deleted mailbox. */
		const char *src = kind_of(fpath) == FOLDER_DIR ? fpath : fsbd;
		if (rename(src, tpath) != 0)
			return -1;
		return fsync_parent_of(tpath) == 0 && fsync_parent_of(fpath) == 0 ? 0 : -1;
	}
	if (kind_of(fsbd) != FOLDER_DIR) {
		struct mbox_lock l;
		int rc;
		if (lock_folder(fpath, &l) != 0)
			return -1;
		rc = move_mbox(fpath, tpath);
		mbox_unlock(&l);
		return rc;
	}
	/* With children: under an intent. */
	buf_init(&ib, intent, sizeof(intent));
	buf_printf(&ib, "%s\n%s\n", from, to);
	if (ib.full || intent_path(base, ipath, sizeof(ipath)) != 0 ||
	    write_file(ipath, intent, ib.len) != 0)
		return -1;
	if (finish_rename(fpath, tpath) != 0)
		return -1;      /* the intent stays: the next login finishes */
	return intent_done(ipath);
}

int folder_rename_inbox(const char *mail_dir, const char *user,
			const char *base, const char *to)
{
	char tpath[FOLDER_PATH_MAX + 16];
	struct mbox_lock l;
	int rc;

	if (prepare_target(base, to, tpath, sizeof(tpath)) != 0)
		return -1;
	rc = mbox_lock(mail_dir, user, &l);
	if (rc != MBOX_OK) {
		if (rc == MBOX_BUSY)
			errno = EBUSY;
		return -1;
	}
	rc = move_mbox(l.path, tpath);
	mbox_unlock(&l);
	return rc;
}

/* ---- walking ----------------------------------------------------------- */

struct walk {
	void (*fn)(void *ctx, const char *name, int kind, int children);
	void *ctx;
	int n;
	char name[FOLDER_NAME_MAX + 2];
	char path[FOLDER_PATH_MAX + 16];
};

static int skip_entry(const char *n)
{
	size_t l = strlen(n);

	return n[0] == '.' || (l >= 5 && strcmp(n + l - 5, ".lock") == 0) ||
	       !folder_name_ok(n, l);
}

/* One entry: name[0..nlen) + "/" + its name, at path[0..plen) + "/" +
 * the entry (el octets, sl of them the name: el - 4 for NAME.sbd). */
static void walk_dir(struct walk *w, size_t nlen, size_t plen, int depth);

static void walk_entry(struct walk *w, const char *e, size_t el, size_t sl,
		       size_t nlen, size_t plen, int depth)
{
	char sbd[FOLDER_PATH_MAX + 24];
	int kind, has_sbd, children;
	struct buf p, n;

	buf_init_len(&p, w->path, sizeof(w->path), plen);
	buf_init_len(&n, w->name, sizeof(w->name), nlen);
	if (buf_addc(&p, '/') != 0 || buf_add(&p, e, el) != 0 || buf_nul(&p) != 0 ||
	    (nlen && buf_addc(&n, '/') != 0) || buf_add(&n, e, sl) != 0 ||
	    buf_nul(&n) != 0)
		goto out;
	kind = kind_of(w->path);
	if (kind == FOLDER_NONE)
		goto out;
	/* An mbox with NAME.sbd beside it has children (a mailbox that
	 * holds mail); NAME.sbd alone is a \Noselect parent. */
	has_sbd = kind == FOLDER_MBOX && sbd_of(w->path, sbd, sizeof(sbd)) == 0 &&
		  kind_of(sbd) == FOLDER_DIR;
	children = kind == FOLDER_DIR ? !dir_empty(w->path) : has_sbd && !dir_empty(sbd);
	w->n++;
	w->fn(w->ctx, w->name, kind, children);
	if (has_sbd && sat_add(p.len, 4) <= FOLDER_PATH_MAX && buf_adds(&p, SBD) == 0 &&
	    buf_nul(&p) == 0)
		kind = FOLDER_DIR;
	if (kind == FOLDER_DIR && depth + 1 < FOLDER_DEPTH)
		walk_dir(w, n.len, p.len, depth + 1);
out:
	w->path[plen] = '\0';
	w->name[nlen] = '\0';
}

static void walk_dir(struct walk *w, size_t nlen, size_t plen, int depth)
{
	DIR *d = opendir(w->path);
	struct dirent *e;

	if (!d)
		return;
	for (int guard = 0; guard < 10000 && w->n < FOLDER_MAX && (e = readdir(d));
	     guard++) {
		size_t el = strlen(e->d_name), sl = el;

		if (el > 4 && strcmp(e->d_name + el - 4, SBD) == 0) {
			/* NAME.sbd: walked with the mbox NAME, or alone when
			 * NAME's mail was deleted. */
			char f[FOLDER_PATH_MAX + 24];
			sl = el - 4;
			if (plen + 1 + el > FOLDER_PATH_MAX ||
			    snprintf(f, sizeof(f), "%s/%.*s", w->path, (int)sl,
				     e->d_name) >= (int)sizeof(f) ||
			    kind_of(f) != FOLDER_NONE || e->d_name[0] == '.' ||
			    !folder_name_ok(e->d_name, sl))
				continue;
		} else if (skip_entry(e->d_name)) {
			continue;
		}
		if (nlen + sl + 1 > FOLDER_NAME_MAX || plen + el + 1 > FOLDER_PATH_MAX)
			continue;
		walk_entry(w, e->d_name, el, sl, nlen, plen, depth);
	}
	closedir(d);
}

int folder_walk(const char *base,
		void (*fn)(void *ctx, const char *name, int kind, int children),
		void *ctx)
{
	static struct walk w;   /* single-threaded; keeps the stack small */
	size_t bl = strlen(base);

	if (bl >= sizeof(w.path))
		return -1;
	w.fn = fn;
	w.ctx = ctx;
	w.n = 0;
	w.name[0] = '\0';
	memcpy(w.path, base, bl + 1);
	if (kind_of(base) != FOLDER_DIR)
		return 0;
	walk_dir(&w, 0, bl, 0);
	return w.n;
}

/* ---- subscriptions ------------------------------------------------------ */

static int subs_path(const char *base, char *out, size_t n)
{
	int k = snprintf(out, n, "%s/%s", base, SUBS_FILE);

	return k < 0 || (size_t)k >= n ? -1 : 0;
}

long folder_subs(const char *base, char *buf, size_t n)
{
	char path[FOLDER_PATH_MAX + 32];
	int fd;
	long len = 0;

	buf[0] = '\0';
	if (subs_path(base, path, sizeof(path)) != 0)
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while ((size_t)len < n - 1) {
		ssize_t r = read(fd, buf + len, n - 1 - (size_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += r;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

int folder_is_subscribed(const char *subs, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = subs; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == nl && memcmp(p, name, nl) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

static int write_file(const char *path, const char *data, size_t n)
{
	char tmp[FOLDER_PATH_MAX + 48];
	int fd, rc = -1;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, data, n) == (ssize_t)n && file_sync(fd) == 0)
		rc = 0;
	close(fd);
	if (rc == 0 && rename(tmp, path) == 0)
		return fsync_parent_of(path);
	unlink(tmp);
	return -1;
}

char *folder_subs_buf(void)
{
	static char buf[FOLDER_SUBS_BUF];

	return buf;
}

int folder_subscribe(const char *base, const char *name, int on)
{
	char *buf = folder_subs_buf();
	char path[FOLDER_PATH_MAX + 32];
	struct buf out;
	long len;
	size_t nl = strlen(name);

	char idir[FOLDER_PATH_MAX + 16];

	if (subs_path(base, path, sizeof(path)) != 0 || make_base(base) != 0 ||
	    (size_t)snprintf(idir, sizeof(idir), "%s/%s", base, IDX_DIR) >= sizeof(idir) ||
	    mkdir_ok(idir) != 0)
		return -1;
	len = folder_subs(base, buf, FOLDER_SUBS_MAX + 1);
	if (folder_is_subscribed(buf, name) == on)
		return 0;
	/* Rewrite without the name (in place: the kept lines only move
	 * down), then add it when subscribing. */
	buf_init(&out, buf, FOLDER_SUBS_MAX);
	for (long i = 0; i < len;) {
		char *e = memchr(buf + i, '\n', (size_t)(len - i));
		size_t l = e ? (size_t)(e - (buf + i)) : (size_t)(len - i);
		if (l && !(l == nl && memcmp(buf + i, name, nl) == 0)) {
			buf_add(&out, buf + i, l);
			buf_addc(&out, '\n');
		}
		i += (long)l + 1;
	}
	if (on) {
		buf_add(&out, name, nl);
		buf_addc(&out, '\n');
	}
	if (out.full) {
		errno = EFBIG;
		return -1;
	}
	return write_file(path, buf, out.len);
}

/* ---- first login, a step a loop pass --------------------------------- */

/* Where a first login builds BASE: its sibling .setup.USER (no user name
 * starts with '.'), renamed to BASE once whole. So BASE exists only
 * complete, whatever instant the daemon died at, and the next login
 * finds what a dead one left and goes on from there. */
#define SETUP_PREFIX ".setup."

static int setup_dir(const char *base, char *out, size_t n)
{
	const char *slash = strrchr(base, '/');
	int k;

	if (!slash) {
		errno = EINVAL;
		return -1;
	}
	k = snprintf(out, n, "%.*s/" SETUP_PREFIX "%s", (int)(slash - base), base,
		     slash + 1);
	if (k < 0 || (size_t)k >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Makes the first missing directory of path (its parents after the
 * first `from` octets, then path itself), the new entry synced: 1 (one
 * fsync), 0 when every one exists, -1 on error. */
static int make_next_dir(char *path, size_t from)
{
	size_t n = strlen(path);

	for (size_t i = from + 1; i <= n; i++) {
		char keep = path[i];
		int rc = 0, k;

		if (keep != '/' && keep != '\0')
			continue;
		path[i] = '\0';
		k = kind_of(path);
		if (k == FOLDER_NONE)
			rc = mkdir(path, 0700) == 0 && fsync_parent_of(path) == 0 ? 1 : -1;
		else if (k != FOLDER_DIR) {
			errno = ENOTDIR;
			rc = -1;
		}
		path[i] = keep;
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The subscriptions of a first login: INBOX and the special folders. */
static size_t setup_subs(char *out, size_t n)
{
	struct buf b;

	buf_init(&b, out, n);
	buf_add(&b, "INBOX\n", 6);
	for (size_t i = 0; i < ARRAY_LEN(specials); i++) {
		buf_add(&b, specials[i], strlen(specials[i]));
		buf_addc(&b, '\n');
	}
	return b.full ? 0 : b.len;
}

/* path holds data[0..n), synced (one fsync). Inside the setup directory
 * nobody reads it before the rename that publishes the whole. */
static int write_synced(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		      0600), rc = -1;

	if (fd < 0)
		return -1;
	if (write_all_fd(fd, data, n) == 0 && file_sync(fd) == 0)
		rc = 0;
	close(fd);
	return rc;
}

enum {
	SETUP_DIRS,             /* mail_dir/.postie/folders/.setup.USER */
	SETUP_IDX,              /* its .postie */
	SETUP_FOLDERS,          /* the special folders, one a step */
	SETUP_SUBS = SETUP_FOLDERS + ARRAY_LEN(specials),
	SETUP_SYNC_IDX,         /* the subscriptions' entry */
	SETUP_SYNC_DIR,         /* the folders' and .postie's entries */
	SETUP_COMMIT,
};

int folder_setup_step(const char *base, int with_specials, int *pos)
{
	char tmp[FOLDER_PATH_MAX + 32], path[FOLDER_PATH_MAX + 64], subs[64];
	const char *p = strstr(base, "/" FOLDERS_DIR "/");
	size_t sl;

	if (kind_of(base) == FOLDER_DIR)
		return folder_replay(base) == 0 ? FOLDER_SETUP_DONE : -1;
	if (!p || strlen(base) >= sizeof(tmp)) {
		errno = EINVAL;
		return -1;
	}
	if (!with_specials) {
		/* Nothing inside: BASE made last is whole. */
		memcpy(tmp, base, strlen(base) + 1);
		return make_next_dir(tmp, (size_t)(p - base)) < 0 ? -1 :
		       FOLDER_SETUP_AGAIN;
	}
	if (setup_dir(base, tmp, sizeof(tmp)) != 0)
		return -1;
	/* Each case does at most one fsync, then returns; what is there
	 * already (left by a login that died) is passed over. */
	for (int guard = 0; guard <= SETUP_COMMIT; guard++) {
		int rc;

		switch (*pos) {
		case SETUP_DIRS:
			rc = make_next_dir(tmp, (size_t)(p - base));
			if (rc != 0)
				return rc < 0 ? -1 : FOLDER_SETUP_AGAIN;
			break;
		case SETUP_IDX:
			snprintf(path, sizeof(path), "%s/" IDX_DIR, tmp);
			if (kind_of(path) == FOLDER_DIR)
				break;
			(*pos)++;
			return mkdir(path, 0700) == 0 && fsync_dir(tmp) == 0 ?
			       FOLDER_SETUP_AGAIN : -1;
		case SETUP_SUBS:
			sl = setup_subs(subs, sizeof(subs));
			(*pos)++;
			return subs_path(tmp, path, sizeof(path)) == 0 &&
			       write_synced(path, subs, sl) == 0 ?
			       FOLDER_SETUP_AGAIN : -1;
		case SETUP_SYNC_IDX:
			snprintf(path, sizeof(path), "%s/" IDX_DIR, tmp);
			(*pos)++;
			return fsync_dir(path) == 0 ? FOLDER_SETUP_AGAIN : -1;
		case SETUP_SYNC_DIR:
			(*pos)++;
			return fsync_dir(tmp) == 0 ? FOLDER_SETUP_AGAIN : -1;
		case SETUP_COMMIT:
			return rename(tmp, base) == 0 && fsync_parent_of(base) == 0 ?
			       FOLDER_SETUP_DONE : -1;
		default:        /* a special folder */
			if (*pos < SETUP_FOLDERS || *pos >= SETUP_SUBS) {
				errno = EINVAL;
				return -1;
			}
			if (folder_kind(tmp, specials[*pos - SETUP_FOLDERS]) != FOLDER_NONE)
				break;
			rc = folder_create(tmp, specials[*pos - SETUP_FOLDERS], 0);
			(*pos)++;
			return rc == 0 ? FOLDER_SETUP_AGAIN : -1;
		}
		(*pos)++;
	}
	errno = EINVAL;
	return -1;
}
