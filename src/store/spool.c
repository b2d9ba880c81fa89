/* spool — the spool directory's shape and permissions, and temporary
 * message files (see spool.h). Limits: envelope lines of at most 1 KiB
 * while reading back; spool_dir paths of CONF_PATH_MAX. */
#include "store/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/log.h"
#include "core/util.h"

static char tmpdir[CONF_PATH_MAX + 8];
static unsigned long counter;

/* Makes `name` below the directory dfd with exactly `mode` (umask
 * aside), or brings an existing one to it; owned by uid:gid unless uid
 * is (uid_t)-1. `path` names it in messages. The directory is opened
 * O_NOFOLLOW and changed through that descriptor (fchown, fchmod): this
 * runs as root before the privilege drop, in a directory the run_as user
 * owns, so a symlink put in its place would make root change the owner
 * of whatever it points at. A symlink, or anything else that is not a
 * directory, is refused (ELOOP, ENOTDIR) with a log line naming it. An
 * existing directory that is not ours to change (a daemon started
 * without root) is used as it is, with a warning. The descriptor is
 * returned (or -1 with errno set). */
static int shape_dir(int dfd, const char *name, const char *path, mode_t mode,
		     uid_t uid, gid_t gid)
{
	struct stat st;
	int made = mkdirat(dfd, name, mode) == 0, fd, e;

	if (!made && errno != EEXIST)
		return -1;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		e = errno;
		if (fd < 0 && (e == ELOOP || e == ENOTDIR) &&
		    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			log_msg(LOGL_ERR, "spool: %s is %s, not a directory: "
				"refused (move it away; the daemon makes it)",
				path, S_ISLNK(st.st_mode) ? "a symlink" :
				"something else");
			e = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
		}
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	if ((uid != (uid_t)-1 && (st.st_uid != uid || st.st_gid != gid) &&
	     fchown(fd, uid, gid) != 0) ||
	    ((st.st_mode & 07777) != mode && fchmod(fd, mode) != 0)) {
		if (made || errno != EPERM) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		log_msg(LOGL_WARN, "spool: %s: cannot give it mode %04o and its "
			"owner (%s): sendmail may fail for other users", path,
			(unsigned)mode, strerror(errno));
	}
	return fd;
}

/* spool_dir itself may be a symlink (to a USB disk) only if root made
 * it: one owned by anybody else (the run_as user, when spool_dir's
 * parent is theirs) is refused like the subdirectories' symlinks. */
static int open_spool_parent(const char *spool_dir, char *base, size_t n)
{
	char parent[CONF_PATH_MAX + 1];
	size_t len = strlen(spool_dir);
	const char *slash;
	struct stat st;

	while (len > 1 && spool_dir[len - 1] == '/')
		len--;
	if (len == 0 || len >= sizeof(parent) || len >= n) {
		errno = len ? ENAMETOOLONG : EINVAL;
		return -1;
	}
	memcpy(parent, spool_dir, len);
	parent[len] = '\0';
	if (lstat(parent, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == 0) {
		/* Root's link: resolved by open, then shaped as ".". */
		snprintf(base, n, ".");
		return open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	slash = strrchr(parent, '/');
	if (!slash) {
		snprintf(base, n, "%s", parent);
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	snprintf(base, n, "%s", slash[1] ? slash + 1 : ".");
	parent[slash == parent ? 1 : slash - parent] = '\0';
	return open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int spool_prepare(const char *spool_dir, uid_t uid, gid_t gid)
{
	char drop[CONF_PATH_MAX + 16], base[CONF_PATH_MAX + 1];
	int pfd, sfd, dfd, e;

	if (mkdir_parents(spool_dir) != 0)
		return -1;
	pfd = open_spool_parent(spool_dir, base, sizeof(base));
	if (pfd < 0)
		return -1;
	sfd = shape_dir(pfd, base, spool_dir, SPOOL_DIR_MODE, uid, gid);
	e = errno;
	close(pfd);
	if (sfd < 0 || !CONFIG_SENDMAIL) {
		if (sfd >= 0)
			close(sfd);
		errno = e;
		return sfd < 0 ? -1 : 0;
	}
	snprintf(drop, sizeof(drop), "%s/maildrop", spool_dir);
	dfd = shape_dir(sfd, "maildrop", drop, SPOOL_MAILDROP_MODE, uid, gid);
	e = errno;
	close(sfd);
	if (dfd < 0) {
		errno = e;
		return -1;
	}
	close(dfd);
	return 0;
}

int spool_lock(const char *spool_dir, uid_t uid, gid_t gid, int *holder)
{
	char path[CONF_PATH_MAX + 16];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int fd, e;

	*holder = 0;
	snprintf(path, sizeof(path), "%s/postie.pid", spool_dir);
	/* As root in the run_as user's directory: never through a symlink,
	 * never a file with other names (a hard link to a system file). */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		  0644);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		e = EPERM;
		close(fd);
		errno = e;
		return -1;
	}
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		e = errno;
		fl.l_type = F_WRLCK;
		if ((e == EAGAIN || e == EACCES) && fcntl(fd, F_GETLK, &fl) == 0 &&
		    fl.l_type != F_UNLCK)
			*holder = (int)fl.l_pid;
		close(fd);
		errno = e;
		return -1;
	}
	if (uid != (uid_t)-1 && (st.st_uid != uid || st.st_gid != gid) &&
	    fchown(fd, uid, gid) != 0 && errno != EPERM) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int spool_init(const char *spool_dir)
{
	DIR *d;
	struct dirent *e;
	int removed = 0;

	if (mkdir(spool_dir, 0700) != 0 && errno != EEXIST)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", spool_dir);
	if (mkdir(tmpdir, 0700) != 0 && errno != EEXIST)
		return -1;
	d = opendir(tmpdir);
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	if (removed)
		log_msg(LOGL_INFO, "spool: removed %d unacknowledged tmp files",
			removed);
	return 0;
}

const char *spool_tmpdir(void)
{
	return tmpdir;
}

void spool_name(char *dst, size_t n, const char *tag)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(dst, n, "%lld.%06ld.%d.%s%lu", (long long)ts.tv_sec,
		 ts.tv_nsec / 1000, (int)getpid(), tag, ++counter);
}

int spool_create(struct spool_file *f)
{
	char path[sizeof(tmpdir) + SPOOL_NAME_MAX + 2];

	spool_name(f->name, sizeof(f->name), "");
	snprintf(path, sizeof(path), "%s/%s", tmpdir, f->name);
	f->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	f->data_off = 0;
	f->size = 0;
	f->failed = 0;
	f->err = 0;
	return f->fd < 0 ? -1 : 0;
}

void spool_write(struct spool_file *f, const char *p, size_t n)
{
	while (n > 0 && !f->failed) {
		ssize_t w = write(f->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			f->failed = 1;
			f->err = w < 0 ? errno : ENOSPC;
			return;
		}
		p += w;
		n -= (size_t)w;
		f->size += w;
	}
}

void spool_mark_data(struct spool_file *f)
{
	spool_write(f, "D\n", 2);
	f->data_off = f->size;
}

void spool_discard(struct spool_file *f)
{
	char path[sizeof(tmpdir) + SPOOL_NAME_MAX + 2];

	if (f->fd < 0)
		return;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, f->name);
	unlink(path);
	close(f->fd);
	f->fd = -1;
}

static int read_envelope(struct spool_file *f, spool_env_fn fn, void *ctx,
			 int all);

int spool_read_envelope(struct spool_file *f, spool_env_fn fn, void *ctx)
{
	return read_envelope(f, fn, ctx, 0);
}

int spool_read_envelope_all(struct spool_file *f, spool_env_fn fn, void *ctx)
{
	return read_envelope(f, fn, ctx, 1);
}

static int read_envelope(struct spool_file *f, spool_env_fn fn, void *ctx,
			 int all)
{
	char buf[1024 + 4] = "";
	size_t have = 0;
	off_t off = 0, line_off = 0;

	for (;;) {
		char *nl;
		ssize_t n;

		while ((nl = memchr(buf, '\n', have)) != NULL) {
			size_t l = (size_t)(nl - buf);
			line_off += (off_t)l + 1;
			if (l == 1 && buf[0] == 'D') {
				f->data_off = line_off;
				return 0;
			}
			if (l < 2 || buf[1] != ' ' || buf[0] < 'A' || buf[0] > 'Z')
				return -1;
			if ((all || buf[0] == 'F' || buf[0] == 'R') &&
			    fn(ctx, buf[0], buf + 2, l - 2) != 0)
				return -1;
			memmove(buf, nl + 1, have - l - 1);
			have -= l + 1;
		}
		if (have == sizeof(buf))
			return -1;
		n = pread(f->fd, buf + have, sizeof(buf) - have, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		have += (size_t)n;
		off += n;
	}
}
