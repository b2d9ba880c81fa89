/* AUTH building blocks: base64, SASL PLAIN, SHA-crypt, credential cache.
 * The SHA-crypt strings are the specification's test vectors, each checked
 * against both `openssl passwd -5/-6` and the system crypt(3). */
#include <string.h>

#include "core/util.h"
#include "proto/sasl.h"
#include "store/passwd.h"
#include "unit.h"

static void test_b64(void)
{
	static const struct {
		const char *in;
		size_t cap;
		int want;               /* decoded length or -1 */
		const char *out;
	} dec[] = {
		/* RFC 4648 §10 */
		{ "", 8, 0, "" }, { "Zg==", 8, 1, "f" }, { "Zm8=", 8, 2, "fo" },
		{ "Zm9v", 8, 3, "foo" }, { "Zm9vYg==", 8, 4, "foob" },
		{ "Zm9vYmE=", 8, 5, "fooba" }, { "Zm9vYmFy", 8, 6, "foobar" },
		{ "Zm9vYmFy", 6, 6, "foobar" },                 /* exact fit */
		{ "AP8+/w==", 8, 4, "\x00\xff\x3e\xff" },
		{ "Zm9vYmFy", 5, -1, NULL },                    /* outcap */
		{ "Zm9vYg==", 3, -1, NULL }, { "Zg==", 0, -1, NULL },
		{ "Zg", 8, -1, NULL }, { "Zg=", 8, -1, NULL },  /* padding missing */
		{ "Zm9", 8, -1, NULL }, { "Z", 8, -1, NULL },
		{ "Zg===", 8, -1, NULL }, { "Zm8==", 8, -1, NULL }, /* extra */
		{ "Zg====", 8, -1, NULL }, { "====", 8, -1, NULL },
		{ "Z===", 8, -1, NULL }, { "Zm9v====", 8, -1, NULL },
		{ "Zg==Zm9v", 8, -1, NULL }, { "Zm=v", 8, -1, NULL }, /* '=' inside */
		{ "Z=g=", 8, -1, NULL },
		{ "Zh==", 8, -1, NULL }, { "Zm9=", 8, -1, NULL }, /* trailing bits */
		{ "Zm8/", 8, 3, "fo?" }, { "Zm8_", 8, -1, NULL }, /* no base64url */
		{ "Zm8-", 8, -1, NULL }, { "Zm9v\r\n", 8, -1, NULL },
		{ "Zm 9", 8, -1, NULL }, { " Zm9", 8, -1, NULL }, { "Zm\x80v", 8, -1, NULL },
	};
	static const struct { const char *in; size_t cap; size_t want; const char *out; } enc[] = {
		{ "", 8, 0, "" }, { "f", 8, 4, "Zg==" }, { "fo", 8, 4, "Zm8=" },
		{ "foo", 8, 4, "Zm9v" }, { "foob", 9, 8, "Zm9vYg==" },
		{ "fooba", 9, 8, "Zm9vYmE=" }, { "foobar", 9, 8, "Zm9vYmFy" },
		{ "foobar", 8, 0, "" },                         /* no room for NUL */
		{ "f", 4, 0, "" },
		{ "Username:", 16, 12, SASL_LOGIN_USER_PROMPT },
		{ "Password:", 16, 12, SASL_LOGIN_PASS_PROMPT },
	};
	unsigned char out[16];
	char eout[16];

	for (size_t i = 0; i < ARRAY_LEN(dec); i++) {
		int n = b64_decode(dec[i].in, strlen(dec[i].in), out, dec[i].cap);
		CHECK(n == dec[i].want, "b64_decode case %zu '%s': got %d want %d", i,
		      dec[i].in, n, dec[i].want);
		if (n == dec[i].want && n > 0)
			CHECK(memcmp(out, dec[i].out, (size_t)n) == 0,
			      "b64_decode case %zu '%s': wrong bytes", i, dec[i].in);
	}
	/* The NUL in the middle of a length-given input is just a bad char. */
	CHECK(b64_decode("Zm\0v", 4, out, sizeof(out)) == -1, "b64_decode NUL");
	for (size_t i = 0; i < ARRAY_LEN(enc); i++) {
		memset(eout, 'x', sizeof(eout));
		size_t n = b64_encode((const unsigned char *)enc[i].in,
				      strlen(enc[i].in), eout, enc[i].cap);
		CHECK(n == enc[i].want && strcmp(eout, enc[i].out) == 0,
		      "b64_encode case %zu '%s': got %zu '%.16s'", i, enc[i].in, n,
		      eout);
	}
	CHECK(b64_encode((const unsigned char *)"f", 1, eout, 0) == 0, "encode cap 0");
	CHECK(B64_ENCODED_SIZE(6) == 9 && B64_DECODED_MAX(8) == 6, "b64 size macros");
}

static void test_plain(void)
{
	/* Long fields: 255 and 256 bytes. */
	static char f255[255], f256[256];
	static unsigned char buf[600];
	static const struct {
		const char *in;
		size_t len;
		int want;
		const char *authzid, *authcid, *passwd;
	} t[] = {
		{ "\0tim\0tanstaaftanstaaf", 21, 0, "", "tim", "tanstaaftanstaaf" },
		{ "Ursel\0Kurt\0xipj3plmq", 20, 0, "Ursel", "Kurt", "xipj3plmq" },
		{ "\0u\0p", 4, 0, "", "u", "p" },
		{ "\0u\0p w\xc3\xa4rd", 10, 0, "", "u", "p w\xc3\xa4rd" },
		{ "", 0, -1, NULL, NULL, NULL },
		{ "\0", 1, -1, NULL, NULL, NULL },
		{ "\0\0", 2, -1, NULL, NULL, NULL },
		{ "u\0p", 3, -1, NULL, NULL, NULL },            /* one NUL */
		{ "tim tanstaaf", 12, -1, NULL, NULL, NULL },   /* none */
		{ "\0u\0p\0", 5, -1, NULL, NULL, NULL },        /* three */
		{ "\0u\0p\0x", 6, -1, NULL, NULL, NULL },
		{ "a\0\0u\0p", 6, -1, NULL, NULL, NULL },
		{ "\0\0p", 3, -1, NULL, NULL, NULL },           /* empty user */
		{ "a\0u\0", 4, -1, NULL, NULL, NULL },          /* empty pass */
		{ "\0u\0", 3, -1, NULL, NULL, NULL },
	};
	struct sasl_plain p;

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		memset(&p, 0, sizeof(p));
		int rc = sasl_plain_parse((const unsigned char *)t[i].in, t[i].len, &p);
		CHECK(rc == t[i].want, "plain case %zu: got %d", i, rc);
		if (rc != 0 || t[i].want != 0)
			continue;
		CHECK(p.authzid_len == strlen(t[i].authzid) &&
		      memcmp(p.authzid, t[i].authzid, p.authzid_len) == 0 &&
		      p.authcid_len == strlen(t[i].authcid) &&
		      memcmp(p.authcid, t[i].authcid, p.authcid_len) == 0 &&
		      p.passwd_len == strlen(t[i].passwd) &&
		      memcmp(p.passwd, t[i].passwd, p.passwd_len) == 0,
		      "plain case %zu: fields", i);
	}

	memset(f255, 'a', sizeof(f255));
	memset(f256, 'b', sizeof(f256));
	/* Builds "z NUL c NUL w" into buf from the three field lengths. */
	for (int field = 0; field < 3; field++) {
		for (int big = 0; big < 2; big++) {
			size_t lens[3] = { 1, 1, 1 }, o = 0;

			lens[field] = big ? sizeof(f256) : sizeof(f255);
			for (int k = 0; k < 3; k++) {
				memcpy(buf + o, big ? f256 : f255, lens[k]);
				o += lens[k];
				if (k < 2)
					buf[o++] = '\0';
			}
			int rc = sasl_plain_parse(buf, o, &p);
			CHECK(rc == (big ? -1 : 0), "plain field %d of %zu bytes: %d",
			      field, lens[field], rc);
		}
	}
}

static void test_crypt(void)
{
	static const char long_pw[] =
		"a very much longer text to encrypt.  This one even stretches "
		"over morethan one line.";
	static const char short_salt_pw[] =
		"we have a short salt string but not a short password";
	static const struct {
		const char *setting, *pw, *want;
		const char *over;       /* over PASSWD_ROUNDS_LIMIT: refused */
	} t[] = {
		{ "$5$saltstring", "Hello world!",
		  "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", NULL },
		{ "$5$rounds=10000$saltstringsaltstring", "Hello world!",
		  "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA", NULL },
		{ "$5$rounds=5000$toolongsaltstring", "This is just a test",
		  "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5", NULL },
		{ "$5$rounds=1400$anotherlongsaltstring", long_pw,
		  "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1", NULL },
		{ "$5$rounds=77777$short", short_salt_pw,
		  "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/", NULL },
		{ "$5$rounds=123456$asaltof16chars..", "a short string", NULL,
		  "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD" },
		{ "$5$rounds=10$roundstoolow", "the minimum number is still observed",
		  "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC", NULL },
		{ "$6$saltstring", "Hello world!",
		  "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", NULL },
		{ "$6$rounds=10000$saltstringsaltstring", "Hello world!",
		  "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.", NULL },
		{ "$6$rounds=5000$toolongsaltstring", "This is just a test",
		  "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0", NULL },
		{ "$6$rounds=1400$anotherlongsaltstring", long_pw,
		  "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1", NULL },
		{ "$6$rounds=77777$short", short_salt_pw,
		  "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0", NULL },
		{ "$6$rounds=123456$asaltof16chars..", "a short string", NULL,
		  "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1" },
		{ "$6$rounds=10$roundstoolow", "the minimum number is still observed",
		  "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.", NULL },
		/* Password lengths around the digest size, empty password and
		 * salt (the spec allows both; crypt(3) agrees). */
		{ "$5$abc", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		  "$5$abc$PGqnZP4y3M8fsLo10BMyAmieWlMdZPF1a3FTd9GG2ZD", NULL },
		{ "$5$abc", "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
		  "$5$abc$Wo.jy0Zz7pdXu4pZj8L4jJ28IFP4LlSdVQmdNyBgo6B", NULL },
		{ "$6$ab/.9Z", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
		  "$6$ab/.9Z$qg96bSbXOstdVNc5XvhWDzj331i3PzpXoVdmQl2yeAKzvEgNRBJHLTyfO8ugSKQMlgy1kUats.qPTaX5RPqQa.", NULL },
		{ "$6$ab/.9Z", "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww",
		  "$6$ab/.9Z$LX/L.FLyroQ3vucF1q9fqF7W4WFJFJQZR5dTMES4UxEeGgVQuW8B0sWLPsg3VKzSEOL3sG5hQAUg1LlHYY.p7/", NULL },
		{ "$6$emptypw", "",
		  "$6$emptypw$TWmzQ8/uLn1BFSZ5Lkfum8lAba5vixF9Nl3Aiof.Praatq9nh0kkPuTdoVrIL6du0L6LAoadbPq.q.D7keveg/", NULL },
		{ "$5$emptypw", "",
		  "$5$emptypw$j9q8SS0S/38BPIfLsJXsxKvW/sehZJL1AxFdvBj6YQ2", NULL },
		{ "$6$", "pass word",
		  "$6$$mcd8qJiAXpf5ErbYnrmCSXLrpkZkzOahXIyBF2.LIgKqVLVlVLMIPm39ymmS245v8q930S7rXOnXeObuO31xk.", NULL },
	};
	static const char *const bad_settings[] = {
		"", "*", "!", "!$6$saltstring", "$1$saltstring", "$2y$10$abcdefghijklmnopqrstuv",
		"$7$saltstring", "$5", "5$salt", "$$salt", "$5$rounds=$salt",
		"$5$rounds=x$salt", "$5$rounds=-1$salt", "$5$rounds=+5000$salt",
		"$5$rounds= 5000$salt", "$5$rounds=5000", "$6$rounds=100001$salt",
		"$6$rounds=99999999999999999999999$salt", "$6$sa:lt", "$6$sa lt",
		"$6$sa\nlt",
	};
	char out[PASSWD_HASH_MAX];

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		const char *want = t[i].want ? t[i].want : t[i].over;
		int rc = passwd_crypt(t[i].pw, strlen(t[i].pw), t[i].setting, out,
				      sizeof(out));
		if (!t[i].want) {
			CHECK(rc == -1, "crypt case %zu over the rounds limit: %d", i, rc);
			CHECK(passwd_verify(t[i].pw, strlen(t[i].pw), want) == -1,
			      "verify case %zu over the rounds limit", i);
			continue;
		}
		CHECK(rc == 0 && strcmp(out, want) == 0, "crypt case %zu: got %d %s",
		      i, rc, rc == 0 ? out : "");
		/* verify() also runs the whole hash as the setting. The
		 * wrong-password check only where it is cheap: the 77777-round
		 * vectors are slow under QEMU. */
		CHECK(passwd_verify(t[i].pw, strlen(t[i].pw), want) == 1,
		      "verify case %zu", i);
		if (!strstr(want, "rounds="))
			CHECK(passwd_verify("Hello world?", 12, want) == 0,
			      "verify case %zu wrong pw", i);
		CHECK(passwd_crypt(t[i].pw, strlen(t[i].pw), want, out, strlen(want)) == -1,
		      "crypt case %zu without room for the NUL", i);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad_settings); i++) {
		CHECK(passwd_crypt("pw", 2, bad_settings[i], out, sizeof(out)) == -1,
		      "crypt bad setting %zu '%s'", i, bad_settings[i]);
		CHECK(passwd_verify("pw", 2, bad_settings[i]) == -1,
		      "verify bad hash %zu '%s'", i, bad_settings[i]);
	}
	/* Saturating rounds clamp to the spec's maximum, which is refused. */
	CHECK(passwd_crypt("pw", 2, "$5$rounds=4294967297$s", out, sizeof(out)) == -1,
	      "rounds wrap");
	CHECK(passwd_crypt("pw", 2, "$5$rounds=0001000$s", out, sizeof(out)) == 0 &&
	      strncmp(out, "$5$rounds=1000$s$", 17) == 0, "rounds leading zeros: %s", out);
}

static void test_verify(void)
{
	static const char h5[] = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";
	static const struct { const char *pw, *hash; int want; } t[] = {
		{ "Hello world!", h5, 1 },
		{ "Hello world", h5, 0 },
		{ "Hello world!!", h5, 0 },
		{ "hello world!", h5, 0 },
		{ "", h5, 0 },
		/* Malformed stored hashes. */
		{ "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc", -1 },
		{ "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5x", -1 },
		{ "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5$", -1 },
		{ "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWE=5", -1 },
		{ "Hello world!", "$5$saltstring", -1 },
		{ "Hello world!", "$5$saltstring$", -1 },
		{ "Hello world!", "$6$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", -1 },
		/* A salt over 16 chars is never what crypt writes. */
		{ "This is just a test", "$5$rounds=5000$toolongsaltstring$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5", -1 },
		{ "x", "$1$abc$def", -1 }, { "x", "$2y$05$abcdefghijklmnopqrstuuzLOKmWlGHkXDd7.6J0lSMdJZf0iJ2Ga", -1 },
		{ "x", "*", -1 }, { "x", "!", -1 }, { "x", "", -1 },
		/* Same digest, non-canonical rounds: crypt never wrote it. */
		{ "the minimum number is still observed",
		  "$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC", 0 },
	};
	char big[PASSWD_MAX_LEN + 1];

	for (size_t i = 0; i < ARRAY_LEN(t); i++) {
		int rc = passwd_verify(t[i].pw, strlen(t[i].pw), t[i].hash);
		CHECK(rc == t[i].want, "verify case %zu: got %d want %d", i, rc, t[i].want);
	}
	CHECK(passwd_verify("Hello world!\0x", 14, h5) == 0, "verify: pw with NUL");
	memset(big, 'a', sizeof(big));
	CHECK(passwd_verify(big, sizeof(big), h5) == 0, "verify: pw too long");
	CHECK(passwd_crypt(big, sizeof(big), "$5$s", big, 0) == -1, "crypt: pw too long");
}

static void test_make(void)
{
	char a[PASSWD_HASH_MAX], b[PASSWD_HASH_MAX];

	CHECK(passwd_make("secret", 6, a, sizeof(a)) == 0, "make a");
	CHECK(passwd_make("secret", 6, b, sizeof(b)) == 0, "make b");
	CHECK(strncmp(a, "$6$", 3) == 0 && strlen(a) == 3 + 16 + 1 + 86 &&
	      a[19] == '$', "make format: %s", a);
	CHECK(strcmp(a, b) != 0 && memcmp(a, b, 19) != 0, "make salts differ: %s %s", a, b);
	CHECK(passwd_verify("secret", 6, a) == 1 && passwd_verify("secret", 6, b) == 1,
	      "make verifies");
	CHECK(passwd_verify("Secret", 6, a) == 0, "make wrong pw");
	CHECK(passwd_make("secret", 6, a, 106) == -1, "make without room");
}

static void test_cache(void)
{
	static const char h1[] = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";
	static const char h2[] = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
	char user[16];

	passwd_cache_init();
	CHECK(passwd_cache_check("bob", "pw", 2, h1) == 0, "cache empty");
	passwd_cache_add("bob", "pw", 2, h1);
	CHECK(passwd_cache_check("bob", "pw", 2, h1) == 1, "cache hit");
	CHECK(passwd_cache_check("bob", "pW", 2, h1) == 0, "cache other pw");
	CHECK(passwd_cache_check("bob", "pw\0", 3, h1) == 0, "cache pw with NUL");
	CHECK(passwd_cache_check("bo", "bpw", 3, h1) == 0, "cache split moved");
	CHECK(passwd_cache_check("alice", "pw", 2, h1) == 0, "cache other user");
	CHECK(passwd_cache_check("bob", "pw", 2, h2) == 0, "cache hash changed");
	passwd_cache_add("bob", "pw", 2, h1);           /* again: no duplicate */

	/* Fill the rest; bob stays because he is used, user0 goes first. */
	for (int i = 0; i < PASSWD_CACHE_SIZE; i++) {
		snprintf(user, sizeof(user), "user%d", i);
		passwd_cache_add(user, "pw", 2, h1);
		CHECK(passwd_cache_check("bob", "pw", 2, h1) == 1, "cache keeps bob %d", i);
	}
	CHECK(passwd_cache_check("user0", "pw", 2, h1) == 0, "cache evicted LRU");
	snprintf(user, sizeof(user), "user%d", PASSWD_CACHE_SIZE - 1);
	CHECK(passwd_cache_check(user, "pw", 2, h1) == 1, "cache kept newest");
	passwd_cache_add("carol", "pw", 2, h1);         /* evicts user1 */
	CHECK(passwd_cache_check("user1", "pw", 2, h1) == 0, "cache evicted next");
	CHECK(passwd_cache_check("user2", "pw", 2, h1) == 1 &&
	      passwd_cache_check("carol", "pw", 2, h1) == 1, "cache kept user2, carol");

	passwd_cache_flush();
	CHECK(passwd_cache_check("bob", "pw", 2, h1) == 0, "cache flushed");
	passwd_cache_add("bob", "pw", 2, h1);
	passwd_cache_init();                            /* new key: old MACs die */
	CHECK(passwd_cache_check("bob", "pw", 2, h1) == 0, "cache reinit");
	passwd_cache_flush();
}

void test_auth(void)
{
	test_b64();
	test_plain();
	test_crypt();
	test_verify();
	test_make();
	test_cache();
}
