/* index — the per-mailbox index: where each message of an mbox starts,
 * how long it is, its size as sent over POP3/IMAP (CRLF line ends, mboxrd
 * quoting undone), its UID and flags, plus UIDVALIDITY and UIDNEXT.
 *
 * Place: the index of mail_dir/NAME is mail_dir/.postie/NAME.idx (a hidden
 * directory that mutt, Dovecot and mail.local ignore; user names cannot
 * start with '.'). The mbox itself stays a plain mboxrd file.
 *
 * File format (all integers little-endian, whatever the CPU):
 *   header, IDX_HDR_SIZE (64) bytes:
 *     0  "postidx\n"  magic
 *     8  u32 version (1)      12 u32 record size (40)
 *    16  u32 uidvalidity      20 u32 uidnext
 *    24  u32 count            28 u32 FNV-1a of the header with this field 0
 *    32  u64 mbox bytes covered (scanned up to here)
 *    40  u64 mbox inode       48 u64 mbox device
 *    56  u64 mbox mtime (ns)   64  u64 highest mod-sequence
 *    72  u32 first UID no IMAP session has selected (\Recent)
 *    76  u32 0
 *   then count records of IDX_REC_SIZE (56) bytes:
 *     0  u64 offset of the "From " line
 *     8  u64 stored bytes of the message (after the From_ line, without
 *            the blank separator line)
 *    16  u64 octets as sent: CRLF line ends, one '>' removed from ">+From "
 *            lines, no dot-stuffing (POP3 LIST/STAT, IMAP RFC822.SIZE)
 *    24  u32 uid              28 u32 flags (IDX_F_*)
 *    32  u32 From_ line bytes (with its LF)
 *    36  u32 lines of the message
 *    40  u64 mod-sequence of its last change (RFC 7162)
 *    48  u64 keywords: bit k set when keyword k of NAME.kw is set
 *
 * The index is a cache: it is checked against the mbox (inode, device,
 * size, "From " at the recorded end) and brought up to date by scanning
 * only the bytes appended since; any other change rebuilds it, keeping the
 * UIDs when the old records are a prefix of the new ones, else with a new
 * UIDVALIDITY. Nothing here holds the whole index in memory: records are
 * read with pread through a small cache. */
#ifndef POSTIE_INDEX_H
#define POSTIE_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"

#define IDX_DIR ".postie"
#define IDX_HDR_SIZE 80
#define IDX_REC_SIZE 56
#define IDX_VERSION 3
#define IDX_CACHE 32            /* records per reader cache */
#define IDX_KW_MAX 64           /* keywords per mailbox (bits of idx_rec.kw) */
#define IDX_KW_NAME_MAX 100     /* octets of a keyword */
#define IDX_KW_BYTES 1024       /* names of a mailbox's keywords in all */

enum {
	IDX_F_SEEN = 1, IDX_F_ANSWERED = 2, IDX_F_FLAGGED = 4,
	IDX_F_DELETED = 8, IDX_F_DRAFT = 16,
};

struct idx_hdr {
	uint32_t uidvalidity, uidnext, count;
	uint64_t end, ino, dev, mtime_ns;
	uint64_t modseq;        /* highest mod-sequence */
	uint32_t recent_uid;    /* UIDs from here on are \Recent */
};

struct idx_rec {
	uint64_t off, data_len, size;
	uint32_t uid, flags, from_len, lines;
	uint64_t modseq;
	uint64_t kw;            /* keywords (bit numbers of the .kw table) */
};

/* Little-endian encodings; pure. hdr_decode returns -1 on a bad magic,
 * version, record size or checksum. */
void idx_hdr_encode(const struct idx_hdr *h, unsigned char out[IDX_HDR_SIZE]);
int idx_hdr_decode(const unsigned char in[IDX_HDR_SIZE], struct idx_hdr *h);
void idx_rec_encode(const struct idx_rec *r, unsigned char out[IDX_REC_SIZE]);
void idx_rec_decode(const unsigned char in[IDX_REC_SIZE], struct idx_rec *r);

/* ---- the scanner: pure, chunked ------------------------------------
 * Feed the mbox bytes from `pos` on in chunks of any size; each message
 * is reported once complete (at the next From_ line or at idx_scan_end).
 * A message is a line starting "From " (not quoted) up to the next one;
 * its last line, when empty, is the separator and is not part of it.
 * Bytes before the first From_ line belong to no message. With s->kw
 * set (a first indexing), the header's Status: (R: \Seen), X-Status:
 * (A \Answered, F \Flagged, T \Draft; D is ignored: a delivered
 * message could carry it) and X-Keywords: (names separated by blanks or
 * commas; names that are not IMAP atoms are skipped) give the flags. */
struct idx_scan {
	uint64_t pos;           /* file offset of the next byte fed */
	uint64_t line_off;      /* offset where the current line starts */
	int bol;                /* the next byte starts a line */
	int decided;            /* the current line's kind is known */
	int gt;                 /* '>' seen at the line start */
	int fm;                 /* bytes of "From " matched */
	int quoted;             /* line is ">+From ": one '>' goes on output */
	int is_from;            /* line is a From_ separator */
	int cr;                 /* last byte was CR */
	int in_msg;             /* inside a message */
	int in_from_line;       /* inside the From_ line */
	int last_blank;         /* last complete line of the message was empty */
	uint32_t last_len;      /* its bytes with the LF */
	struct idx_rec cur;
	void (*emit)(void *ctx, const struct idx_rec *r);
	void *ctx;
	/* Flags from the header (Status:, X-Status:, X-Keywords:, as mutt
	 * and Dovecot write them), only when kw is set: kw maps a keyword
	 * name to its bit (or -1). */
	int (*kw)(void *ctx, const char *name, size_t n);
	int in_hdr;             /* inside the current message's header */
	int hkind;              /* field of the last header line */
	size_t hlen;
	char hl[IDX_KW_BYTES + 32];     /* the header line being read */
};

/* Starts at file offset pos, which MUST be the start of a line. */
void idx_scan_init(struct idx_scan *s, uint64_t pos,
		   void (*emit)(void *ctx, const struct idx_rec *r), void *ctx);
void idx_scan_feed(struct idx_scan *s, const unsigned char *p, size_t n);
/* End of the bytes: reports the last message. */
void idx_scan_end(struct idx_scan *s);

/* ---- the way out: pure, chunked -------------------------------------
 * Turns stored message bytes into what POP3 sends: CRLF line ends (a CR
 * before LF is kept as the CR of the CRLF), one '>' removed from ">+From "
 * lines, a '.' doubled at the start of a line (when stuff is set), a CRLF
 * added to a last line without one. Output is at most 2 * n + 8 bytes for
 * n input bytes. body_lines >= 0 stops after the header, the blank line
 * and that many body lines (POP3 TOP). The size of the output without
 * dot-stuffing equals idx_rec.size. */
struct idx_out {
	int bol, gt, fm, cr, stuff;
	int in_body;
	long body_lines;        /* -1: all */
	int done;               /* TOP limit reached */
};

void idx_out_init(struct idx_out *o, int stuff, long body_lines);
/* Converts in[0..n) into out; returns bytes written. *used gets the bytes
 * consumed (less than n only when the TOP limit was reached). */
size_t idx_out_feed(struct idx_out *o, const unsigned char *in, size_t n,
		    char *out, size_t *used);
/* End of the message: flushes held bytes and ends the last line. */
size_t idx_out_end(struct idx_out *o, char *out);

/* ---- files ----------------------------------------------------------- */

/* mail_dir/.postie/NAME.idx (creating the directory when mk). 0 or -1. */
int idx_path(const char *mail_dir, const char *name, const char *suffix,
	     char *out, size_t n, int mk);

/* Reads records through a small cache. fd is the index file. */
struct idx_reader {
	int fd;
	uint32_t count;
	uint32_t first;         /* record number of cache[0] */
	uint32_t ncached;
	unsigned char cache[IDX_CACHE * IDX_REC_SIZE];
};

void idx_reader_init(struct idx_reader *r, int fd, uint32_t count);
/* Record i (0-based). 0 or -1 (I/O error or i out of range). */
int idx_get(struct idx_reader *r, uint32_t i, struct idx_rec *out);
/* The record of a UID (binary search: UIDs ascend). Its record number,
 * or -1 (not there, or an I/O error). */
int idx_find(struct idx_reader *r, uint32_t uid, struct idx_rec *out);
/* Rewrites record i in place (flags). 0 or -1. */
int idx_put(struct idx_reader *r, uint32_t i, const struct idx_rec *rec);
/* A flag change: record i gets a new mod-sequence (rec->modseq is set)
 * and the header's highest follows. 0 or -1. */
int idx_store(struct idx_reader *r, uint32_t i, struct idx_rec *rec);
/* \Recent: a SELECT takes the UIDs below upto for its session. Reads
 * the header's first unseen UID into *old and, when expect is 0 or equal
 * to it, raises it to upto. 1 taken, 0 not (someone else took them), -1. */
int idx_take_recent(int fd, uint32_t expect, uint32_t upto, uint32_t *old);
/* The next mod-sequence, above floor and above any issued before. */
uint64_t idx_modseq_next(uint64_t floor);

/* ---- keywords ----------------------------------------------------------
 * The names of a mailbox's keywords live beside its index in NAME.kw,
 * one per line; line k is bit k of idx_rec.kw. Names are only added
 * (bits stay valid for every record and across rewrites), compared
 * without regard to case, at most IDX_KW_MAX of them (the caller's cap
 * may be lower) and IDX_KW_BYTES in all. The file is replaced whole
 * (temporary file, rename), so a reader sees the old or the new list. */

struct idx_kw {
	unsigned n;
	uint16_t off[IDX_KW_MAX];
	uint8_t len[IDX_KW_MAX];
	size_t used;
	uint64_t ino, size;     /* of the file read, to notice a new one */
	char buf[IDX_KW_BYTES];
};

/* Reads the table at path (a missing file is an empty table). 0, or -1
 * (I/O error; the table is then empty). */
int idx_kw_load(const char *path, struct idx_kw *t);
/* 1 when the file at path is not the one t was read from. */
int idx_kw_changed(const char *path, const struct idx_kw *t);
/* Bit number of a name, or -1. */
int idx_kw_find(const struct idx_kw *t, const char *name, size_t n);
/* Bit number of a name, added when missing (the file is reread first,
 * another session may have added names). -1 with errno: ENOSPC when the
 * table holds cap names or IDX_KW_BYTES, ENAMETOOLONG, or an I/O error. */
int idx_kw_add(const char *path, struct idx_kw *t, const char *name, size_t n,
	       unsigned cap);
/* Adds every missing one of count names, or none of them: 0, or -1 with
 * errno as idx_kw_add's (the table as it was). */
int idx_kw_add_all(const char *path, struct idx_kw *t, const char *const *names,
		   const size_t *lens, int count, unsigned cap);

/* ---- structure cache ---------------------------------------------------
 * Texts a reader asks of a message again and again (IMAP keeps its
 * ENVELOPE, BODYSTRUCTURE and BODY there), beside the index in NAME.sc,
 * so that they are not parsed out of the mbox each time. Opaque bytes
 * here: IDX_SC_TEXTS texts a message.
 *
 * File format (little-endian): a header of IDX_SC_HDR (32) bytes,
 *     0  "postsc1\n"   8 u32 slots   12 u32 the caller's format of the
 *    texts   16 u32 FNV-1a of bytes 0..16   20 u32 0
 *    24  u64 dead bytes (texts no slot points to any more)
 * then `slots` entries of IDX_SC_ENT (32) bytes; the message with UID u
 * has entry u % slots:
 *     0  u32 UID (0: empty)      4 u32 UIDVALIDITY
 *     8  u32 size as sent      12 u32 stored bytes (low 32 bits each)
 *    16  u32 offset of its texts in the file
 *    20  u16 length of each of the IDX_SC_TEXTS texts, u16 0
 *    28  u32 FNV-1a of the entry's bytes 0..28 and its texts
 * then the texts, appended as messages are added.
 * An entry answers only for the same UID, UIDVALIDITY and sizes, so an
 * expunged message, a new UIDVALIDITY or a message rewritten by another
 * program (other sizes) is a miss, and a torn write fails the checksum.
 * A message takes an entry only when it is empty, of another UIDVALIDITY
 * or of a lower UID: two live messages sharing an entry never take it
 * in turn (the higher keeps it, the lower is parsed each time), so
 * reading writes nothing once the cache holds what it can. The texts
 * take at most `max` bytes: when that is reached, the file starts afresh
 * if at least half of it is dead (texts of entries taken over), else
 * nothing more is added but an entry of a lower UID is dropped (counted
 * dead), so a mailbox too big for the cache does not rewrite it at
 * every read.
 * Another slot count or format (another build, IMAP's renderer changed)
 * starts the file afresh at the first write. */
#define IDX_SC_HDR 32
#define IDX_SC_ENT 32
#define IDX_SC_TEXTS 3

struct idx_sc {
	int fd;
	int state;              /* IDX_SC_* */
	uint32_t slots;
	uint64_t max;
};

enum { IDX_SC_CLOSED, IDX_SC_OPEN, IDX_SC_NONE };

void idx_sc_init(struct idx_sc *c);
/* Opens the cache at path: slots entries, at most max bytes of texts of
 * format `format`. With create, a missing file or one of another
 * geometry is made afresh; without, it is then IDX_SC_NONE (no
 * entries). 0 or -1. */
int idx_sc_open(struct idx_sc *c, const char *path, uint32_t slots, uint64_t max,
		uint32_t format, int create);
void idx_sc_close(struct idx_sc *c);
/* The texts of message r of a mailbox of UIDVALIDITY uv: buf (n bytes)
 * gets them, text[]/len[] point into it. 1 found, 0 not (or longer than
 * n). */
int idx_sc_get(struct idx_sc *c, uint32_t uv, const struct idx_rec *r,
	       char *buf, size_t n, const char *text[IDX_SC_TEXTS],
	       size_t len[IDX_SC_TEXTS]);
/* Keeps the texts of message r (see idx_sc_get), back to back at texts.
 * 1 written; 0 nothing written (the entry belongs to a higher UID, or
 * the cache is full); -1 on an I/O error. */
int idx_sc_put(struct idx_sc *c, uint32_t uv, const struct idx_rec *r,
	       const char *texts, const size_t len[IDX_SC_TEXTS]);

/* Bringing an index up to date, in bounded steps. The caller opens the
 * mbox (mfd, read-only is enough) and calls idx_update_step until it
 * returns IDX_DONE or IDX_FAIL; each step reads at most `budget` bytes of
 * the mbox. The caller MUST hold the mbox lock for the step that returns
 * IDX_DONE: steps before it may run unlocked (mbox appends do not change
 * scanned bytes), the final step verifies and scans what was appended.
 * Give `locked` = 1 when the lock is held; while unlocked the step stops
 * at IDX_AGAIN_LOCK once it has caught up with the file. */
enum { IDX_DONE = 0, IDX_AGAIN = 1, IDX_AGAIN_LOCK = 2, IDX_FAIL = -1 };

struct idx_update {
	int mfd, ifd, ofd;      /* mbox, current index, index being written */
	int rebuild;            /* writing a new index file */
	int renumber;           /* old UIDs do not carry over */
	int redo;               /* the old last message is scanned again */
	int restarts;
	struct idx_hdr old, h;  /* old valid header (old.count 0 if none) */
	int have_old;
	uint64_t ino, dev;
	struct idx_scan scan;
	uint32_t n;             /* records written */
	int werr;
	char path[320], tmppath[340];
	struct idx_reader oldr;
};

/* Starts an update of the index at ipath for the mbox open at mfd. */
int idx_update_begin(struct idx_update *u, int mfd, const char *ipath);
int idx_update_step(struct idx_update *u, size_t budget, int locked);
/* Abandons an update (temporary file removed). */
void idx_update_abort(struct idx_update *u);
/* After IDX_DONE: the header in force. The index file stays open in
 * *fd (the caller closes it). */
void idx_update_result(struct idx_update *u, struct idx_hdr *h, int *fd);

/* Writes the header of an index file (and fsyncs when sync). 0 or -1. */
int idx_write_hdr(int fd, const struct idx_hdr *h, int sync);

/* Rewriting an mbox without some of its messages (POP3 deletions, IMAP
 * EXPUNGE later), crash safe: the kept messages, then everything appended
 * since the snapshot, are copied raw to mail_dir/.postie/NAME.new, which
 * is fsynced and renamed over mail_dir/NAME (the directory fsynced); the
 * new index is written the same way after it. A crash leaves the old or
 * the new mbox; an index that does not match its mbox is rebuilt.
 * The caller MUST hold the mbox lock (dotlock + fcntl) from begin to the
 * end, and passes its fd; deliveries wait on the lock meanwhile. */
struct idx_rewrite {
	int src, dst;
	int phase;
	struct idx_reader r;    /* snapshot records (the index file) */
	uint32_t count, i;      /* snapshot messages, next one */
	uint64_t snap_end, size;
	uint64_t snap_modseq;   /* the old index's highest at the start */
	uint64_t from, to;      /* byte range being copied */
	uint64_t dpos;          /* bytes in the new mbox */
	int scanning;           /* the range is the tail: scan it too */
	int (*keep)(void *ctx, uint32_t i);
	void *ctx;
	uint32_t kept;
	uint64_t mode;
	struct idx_update u;    /* writes the new index */
	struct wb wb;           /* write-back of the new mbox, a step behind */
	char mpath[300], mtmp[330], dir[300], idir[330];
};

/* snapshot: the header the session listed from; ifd: its index file
 * (records 0..snapshot->count are read from it). 0, or -1 with errno
 * (ESTALE: the mbox was changed by another program; nothing done). */
int idx_rewrite_begin(struct idx_rewrite *w, const char *mail_dir,
		      const char *name, int locked_fd, int ifd,
		      const struct idx_hdr *snapshot,
		      int (*keep)(void *ctx, uint32_t i), void *ctx);
/* Copies at most budget bytes: IDX_AGAIN, IDX_DONE (renamed into place;
 * *h gets the new header) or IDX_FAIL (old mbox untouched). */
int idx_rewrite_step(struct idx_rewrite *w, size_t budget, struct idx_hdr *h);
void idx_rewrite_abort(struct idx_rewrite *w);

#endif
