/* delivery — one local delivery for every path (see delivery.h).
 * Limits: those of store/mbox (paths, one static copy buffer); no
 * allocation; the caller bounds the work of each step. */
#include "store/delivery.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "core/util.h"
#include "store/users.h"

int delivery_begin(struct delivery *d, const char *user, const char *sender,
		   time_t arrival, int src, off_t off, off_t len)
{
	int rc;

	memset(d, 0, sizeof(*d));
	d->lock.fd = -1;
	d->sender = sender ? sender : "";
	d->arrival = arrival;
	d->src = src;
	d->off = off;
	d->len = len;
	mbox_append_begin(&d->app);
	rc = mbox_lock(conf->mail_dir, user, &d->lock);
	d->locked = rc == MBOX_OK;
	return rc;
}

int delivery_step(struct delivery *d, size_t budget)
{
	int rc = mbox_append_step(&d->lock, &d->app, d->sender, d->arrival,
				  d->src, d->off, d->len, budget);

	d->complete = rc == MBOX_OK;
	return rc;
}

const char *delivery_user(const struct delivery *d)
{
	const char *slash = strrchr(d->lock.path, '/');

	return slash ? slash + 1 : d->lock.path;
}

void delivery_end(struct delivery *d, int delivered)
{
	if (!d->locked)
		return;
	if (!delivered && d->app.started && !d->complete)
		mbox_rollback(&d->lock);        /* cut short: never there */
	mbox_unlock(&d->lock);
	d->locked = 0;
	if (delivered)
		mbox_new_mail(delivery_user(d));
}

int delivery_run(const char *user, const char *sender, time_t arrival,
		 int src, off_t off, off_t len)
{
	struct delivery d;
	int rc = delivery_begin(&d, user, sender, arrival, src, off, len);

	/* All bytes in one step; the fsync is a step of its own. */
	if (rc == MBOX_OK)
		do
			rc = delivery_step(&d, SIZE_MAX);
		while (rc == MBOX_AGAIN);
	delivery_end(&d, rc == MBOX_OK);
	return rc;
}

int delivery_expand(const char *rcpt, size_t len, alias_fn fn, void *ctx)
{
	char key[CONFIG_SMTP_LOCAL_MAX + 1], addr[CONFIG_SMTP_PATH_MAX + 1];
	const char *at = NULL;
	size_t kl;
	int n, u;

	for (size_t i = 0; i < len; i++)
		if (rcpt[i] == '@')
			at = rcpt + i;
	if (at && !conf_is_local_domain(conf, at + 1, len - (size_t)(at + 1 - rcpt))) {
		str_copy(addr, sizeof(addr), rcpt, len);
		fn(ctx, -1, addr);
		return 1;
	}
	kl = at ? (size_t)(at - rcpt) : len;
	if (kl >= sizeof(key))
		return 0;
	memcpy(key, rcpt, kl);
	key[kl] = '\0';
	str_lower(key);
	n = aliases_expand(aliases, users, key, kl, fn, ctx);
	if (n > 0)
		return n;
	u = users_find(users, key, kl);
	if (u < 0)
		return 0;
	fn(ctx, u, NULL);
	return 1;
}

int delivery_reason(int rc, int err, char *status, char *text, size_t n)
{
	switch (rc) {
	case MBOX_OK:
		snprintf(status, 8, "2.0.0");
		snprintf(text, n, "delivered to mailbox");
		return 250;
	case MBOX_BUSY:
		snprintf(status, 8, "4.2.0");
		snprintf(text, n, "mailbox busy: a mail client or another program holds its lock");
		return 450;
	default:
		snprintf(status, 8, "4.3.0");
		snprintf(text, n, "mailbox: %s", strerror(err));
		return 451;
	}
}
