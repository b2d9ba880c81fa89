/* folders — a user's IMAP folders other than INBOX, as plain mbox files.
 *
 * Layout: INBOX is mail_dir/USER (what deliveries write). Every other
 * folder lives under the user's folder base, mail_dir/.postie/folders/USER/:
 * the folder "Sent" is the mbox file BASE/Sent, "Archive/2026" is
 * BASE/Archive/2026 (a parent that holds no mail is a directory, a
 * \Noselect name) or, when "Archive" holds mail, BASE/Archive.sbd/2026
 * (Thunderbird's layout: the children of the mbox NAME are in NAME.sbd;
 * a NAME.sbd without NAME is \Noselect: a deleted mailbox's children).
 * The index of BASE/DIR/NAME is BASE/DIR/.postie/NAME.idx, as for INBOX.
 * Subscriptions are the lines of BASE/.postie/subscriptions.
 * Dovecot reads this layout with mail_location =
 * mbox:mail_dir/.postie/folders/%u:INBOX=mail_dir/%u; mutt opens the files.
 *
 * Names are what the client sends (modified UTF-7 is ASCII): components
 * of printable ASCII separated by '/', none empty, none starting with
 * '.', none ending in ".lock" or ".sbd", no '\\', '*' or '%', at most
 * FOLDER_DEPTH levels and FOLDER_NAME_MAX octets. The name INBOX (any
 * case) is not a folder here. */
#ifndef POSTIE_FOLDERS_H
#define POSTIE_FOLDERS_H

#include <stddef.h>

#define FOLDER_NAME_MAX 200
#define FOLDER_DEPTH 8
#define FOLDER_MAX 250          /* folders and directories per user */
#define FOLDER_PATH_MAX 290     /* longest path of a folder file */
/* The subscriptions file holds INBOX and every folder FOLDER_MAX
 * allows at the longest name FOLDER_NAME_MAX allows, a line each. */
#define FOLDER_SUBS_MAX ((FOLDER_MAX + 1) * (FOLDER_NAME_MAX + 1))
#define FOLDER_SUBS_BUF (FOLDER_SUBS_MAX + FOLDER_NAME_MAX + 2)

enum { FOLDER_NONE, FOLDER_MBOX, FOLDER_DIR };

/* BASE for a user into out. 0, or -1 (ENAMETOOLONG). */
int folder_base(const char *mail_dir, const char *user, char *out, size_t n);
/* 1 when name[0..len) is a valid folder name (see above); pure.
 * A trailing '/' is not valid here (CREATE strips it first). */
int folder_name_ok(const char *name, size_t len);
/* The directory and file name of a folder: dir = BASE[/parents],
 * file = the last component. 0, or -1 with errno (EINVAL bad name,
 * ENAMETOOLONG). */
int folder_split(const char *base, const char *name, size_t len,
		 char *dir, size_t dn, char *file, size_t fn);
/* FOLDER_NONE, FOLDER_MBOX or FOLDER_DIR (lstat; symlinks are NONE). */
int folder_kind(const char *base, const char *name);

/* CREATE: an empty mbox (or, with dir_only, a directory), parents made
 * as needed (NAME.sbd under a parent that is an mbox). A directory of
 * that name becomes NAME.sbd and the mbox is made beside it. 0, or -1
 * with errno: EEXIST, EMLINK (FOLDER_MAX reached), EINVAL. */
int folder_create(const char *base, const char *name, int dir_only);
/* One step of CREATE before folder_create: makes the first missing
 * parent directory of name (one fsync). 1 when it made one (call again),
 * 0 when none is missing (or FOLDER_MAX is reached: folder_create
 * refuses), -1 with errno. */
int folder_parent_step(const char *base, const char *name);
/* DELETE: an mbox (under its lock, with its index; NAME.sbd stays
 * while it has children) or an empty directory. -1 with errno: ENOENT,
 * ENOTEMPTY (a directory with children), EBUSY (locked by another
 * program). */
int folder_delete(const char *base, const char *name);
/* RENAME of a folder or directory (with everything under it) to a new
 * name whose parents are made as needed. -1 with errno: ENOENT, EEXIST,
 * EINVAL (into itself), EBUSY. */
int folder_rename(const char *base, const char *from, const char *to);
/* Finishes a RENAME of a mailbox with children that a crash cut short
 * (its intent file, BASE/.rename); folder_rename and every login call
 * it. 0 when there was none or it is done, -1 with errno. */
int folder_replay(const char *base);
/* RENAME INBOX: the INBOX file and its index become the folder `to`;
 * the next delivery or SELECT creates a new empty INBOX. */
int folder_rename_inbox(const char *mail_dir, const char *user,
			const char *base, const char *to);

/* Every folder and directory, depth first, at most FOLDER_MAX entries:
 * fn(ctx, name, kind, has_children). Returns the number seen, -1 when
 * the base cannot be read (a missing base is 0). */
int folder_walk(const char *base,
		void (*fn)(void *ctx, const char *name, int kind, int children),
		void *ctx);

/* Subscriptions. folder_subscribe adds (on) or removes a name: 0 or -1
 * (EFBIG when the file would outgrow FOLDER_SUBS_MAX: names of folders
 * that do not exist may be subscribed too). folder_subs
 * reads the file into buf (names separated by '\n', NUL-terminated);
 * returns its length (0 when none). folder_is_subscribed looks in it.
 * folder_subs_buf is the one FOLDER_SUBS_BUF-octet buffer for them
 * (folder_subscribe's too): a caller keeps it only until it returns. */
int folder_subscribe(const char *base, const char *name, int on);
char *folder_subs_buf(void);
long folder_subs(const char *base, char *buf, size_t n);
int folder_is_subscribed(const char *subs, const char *name);

/* First login: makes BASE and, when specials, the folders Sent, Drafts,
 * Trash and Junk (subscribed, with INBOX), one thing a call with at most
 * one fsync, so that a daemon serving others makes one a loop pass.
 * Call with *pos 0 at first, then again (same pos) while it returns
 * FOLDER_SETUP_AGAIN; FOLDER_SETUP_DONE at once when BASE exists. BASE
 * appears whole (built under another name, then renamed): a daemon
 * killed at any step leaves no BASE, and the next login finishes what
 * is there. -1 with errno on failure. */
enum { FOLDER_SETUP_DONE = 0, FOLDER_SETUP_AGAIN = 1 };
int folder_setup_step(const char *base, int specials, int *pos);

#endif
