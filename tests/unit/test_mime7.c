/* 8-bit → quoted-printable conversion cases. */
#include <string.h>

#include "core/util.h"
#include "proto/mime7.h"
#include "unit.h"

static void run(const char *in, size_t chunk, char *out)
{
	struct mime7 m;
	size_t o = 0, n = strlen(in);

	mime7_init(&m);
	for (size_t i = 0; i < n; i += chunk)
		o += mime7_feed(&m, in + i, n - i < chunk ? n - i : chunk, out + o);
	o += mime7_end(&m, out + o);
	out[o] = '\0';
}

void test_mime7(void)
{
	static const struct { const char *in, *want; } t[] = {
		{ "Subject: x\n\nh\xc3\xa9 = a\n",
		  "Subject: x\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n"
		  "\nh=C3=A9 =3D a\n" },
		{ "MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n\tcont\nX: y\n\ntrail \n",
		  "MIME-Version: 1.0\nX: y\nContent-Transfer-Encoding: quoted-printable\n\ntrail=20\n" },
		{ "Content-Type: multipart/mixed; boundary=b\n\n\xff raw\n",
		  "Content-Type: multipart/mixed; boundary=b\n\n\xff raw\n" },
		{ "S: 1\n\ntab\t\n.dot\n", "S: 1\nMIME-Version: 1.0\n"
		  "Content-Transfer-Encoding: quoted-printable\n\ntab=09\n.dot\n" },
	};
	char out[4096], want[512];

	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		for (size_t chunk = 1; chunk <= 7; chunk += 3) {
			run(t[i].in, chunk, out);
			CHECK(strcmp(out, t[i].want) == 0, "case %zu chunk %zu: %s", i,
			      chunk, out);
		}
	/* Lines stay within 76 characters: soft breaks. */
	char longl[400];
	memset(longl, 0, sizeof(longl));
	strcpy(longl, "S: 1\n\n");
	for (int k = 0; k < 100; k++)
		strcat(longl, "\xc3\xa9");
	strcat(longl, "\n");
	run(longl, 5, out);
	size_t col = 0, maxcol = 0;
	for (char *p = strstr(out, "\n\n") + 2; *p; p++) {
		col = *p == '\n' ? 0 : col + 1;
		if (col > maxcol)
			maxcol = col;
	}
	CHECK(maxcol <= 76, "longest qp line %zu", maxcol);
	(void)want;
}
