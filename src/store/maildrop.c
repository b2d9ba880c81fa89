/* maildrop — the rules for what a maildrop file may claim (see
 * maildrop.h). Pure string checks plus getpwuid for the login name;
 * the caller's conf gives local domains, masquerade, sender_login_check. No
 * allocation; the Received field is at most MAILDROP_HEAD_MAX bytes. */
#include "store/maildrop.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/conf.h"
#include "store/spool.h"

void maildrop_login(uid_t uid, char *out, size_t n)
{
	struct passwd *pw = getpwuid(uid);
	size_t k = 0;

	if (n == 0)
		return;
	out[0] = '\0';
	if (!pw || !pw->pw_name)
		return;
	for (; pw->pw_name[k] && k + 1 < n; k++) {
		char c = pw->pw_name[k];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return;         /* out stays "" */
		out[k] = c;
	}
	out[pw->pw_name[k] ? 0 : k] = '\0';
}

/* "Received: (from LOGIN, uid N)\n\tby " */
static size_t received_start(char *out, size_t n, uid_t uid)
{
	char login[MAILDROP_LOGIN_MAX];
	int k;

	maildrop_login(uid, login, sizeof(login));
	k = snprintf(out, n, "Received: (from %s%suid %u)\n\tby ", login,
		     login[0] ? ", " : "", (unsigned)uid);
	return k < 0 || (size_t)k >= n ? 0 : (size_t)k;
}

size_t maildrop_received(char *out, size_t n, uid_t uid, const char *host,
			 const char *name, const char *date)
{
	struct buf b;

	buf_init_len(&b, out, n, received_start(out, n, uid));
	if (b.len == 0 ||
	    buf_printf(&b, "%s (postie sendmail) id %s;\n\t%s\n", host, name, date) != 0)
		return 0;
	return b.len;
}

int maildrop_check_received(const char *head, size_t len, uid_t uid,
			    const char *name)
{
	char want[160], mid[SPOOL_NAME_MAX + 32];
	size_t o = received_start(want, sizeof(want), uid), l;
	const char *p, *end = head + len, *nl;

	if (o == 0 || len < o || memcmp(head, want, o) != 0)
		return -1;
	p = head + o;
	/* HOST (postie sendmail) id NAME; on the rest of the line */
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		return -1;
	l = (size_t)snprintf(mid, sizeof(mid), " (postie sendmail) id %s;", name);
	if (l >= sizeof(mid) || (size_t)(nl - p) <= l ||
	    memcmp(nl - l, mid, l) != 0 || memchr(p, ' ', (size_t)(nl - l - p)))
		return -1;
	/* "\tDATE\n", then a new field or the end of the header */
	p = nl + 1;
	if (p >= end || *p != '\t')
		return -1;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl || nl == p + 1 || nl + 1 >= end || nl[1] == ' ' || nl[1] == '\t')
		return -1;
	return 0;
}

int maildrop_sender_ok(const struct conf *c, const char *sender, uid_t uid,
		       int privileged)
{
	struct passwd *pw;
	char login[64];
	const char *at;
	size_t ll;

	if (privileged || !c->sender_login_check)
		return 1;
	if (!sender[0])
		return 0;
	if (c->masquerade[0] && strcasecmp(sender, c->masquerade) == 0)
		return 1;
	pw = getpwuid(uid);
	if (pw && pw->pw_name && pw->pw_name[0])
		snprintf(login, sizeof(login), "%s", pw->pw_name);
	else
		snprintf(login, sizeof(login), "uid%u", (unsigned)uid);
	at = strrchr(sender, '@');
	ll = strlen(login);
	return at && (size_t)(at - sender) == ll && strncmp(sender, login, ll) == 0 &&
	       conf_is_local_domain(c, at + 1, strlen(at + 1));
}
