/* The checked buffer API: every operation fits whole or refuses whole,
 * and size arithmetic saturates instead of wrapping. */
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "unit.h"

void test_buf(void)
{
	char mem[8];
	struct buf b;

	CHECK(sat_add(SIZE_MAX - 1, 5) == SIZE_MAX && sat_add(2, 3) == 5, "sat_add");
	CHECK(sat_sub(3, 5) == 0 && sat_sub(5, 3) == 2, "sat_sub");

	buf_init(&b, mem, sizeof(mem));
	CHECK(buf_add(&b, "abcde", 5) == 0 && b.len == 5 && !b.full, "add fits");
	CHECK(buf_add(&b, "xyzw", 4) == -1 && b.len == 5 && b.full, "add refuses whole");
	CHECK(memcmp(mem, "abcde", 5) == 0, "refused add wrote nothing");
	CHECK(buf_add(&b, "xyz", 3) == 0 && b.len == 8 && buf_remaining(&b) == 0, "add to the brim");
	CHECK(buf_addc(&b, 'q') == -1 && buf_nul(&b) == -1, "full refuses a byte and a NUL");
	CHECK(buf_add(&b, "", 0) == 0, "empty add into a full buffer");
	/* a huge length must refuse, not wrap */
	buf_truncate(&b, 2);
	CHECK(b.len == 2 && buf_add(&b, "x", SIZE_MAX) == -1 && b.len == 2, "SIZE_MAX refuses");
	CHECK(buf_reserve(&b, SIZE_MAX - 1) == NULL, "reserve SIZE_MAX-1 refuses");
	CHECK(!buf_fits(&b, 3, SIZE_MAX) && buf_fits(&b, 3, 3) && !buf_fits(&b, 3, 4), "fits");

	buf_reset(&b);
	CHECK(buf_printf(&b, "%d-%s", 12, "ab") == 0 && b.len == 5 && !memcmp(mem, "12-ab", 5),
	      "printf fits");
	/* needs 3 bytes with 3 free: vsnprintf also wants its NUL -> refused */
	CHECK(buf_printf(&b, "%s", "xyz") == -1 && b.len == 5 && b.full, "printf refuses whole");
	CHECK(buf_printf(&b, "%s", "xy") == 0 && b.len == 7, "printf with room for NUL");
	CHECK(buf_nul(&b) == 0 && strcmp(mem, "12-abxy") == 0, "nul");

	buf_reset(&b);
	char *r = buf_reserve(&b, 4);
	CHECK(r == mem && b.len == 0, "reserve counts nothing");
	memcpy(r, "wxyz", 4);
	buf_commit(&b, 3);
	CHECK(b.len == 3 && !memcmp(mem, "wxy", 3), "commit part");
	buf_commit(&b, SIZE_MAX);
	CHECK(b.len == sizeof(mem), "commit past the end clamps");
	buf_truncate(&b, 100);
	CHECK(b.len == sizeof(mem), "truncate never grows");

	buf_reset(&b);
	buf_adds(&b, "hello");
	buf_consume(&b, 2);
	CHECK(b.len == 3 && !memcmp(mem, "llo", 3), "consume moves the rest down");
	buf_consume(&b, 99);
	CHECK(b.len == 0, "consume all");

	/* In place: data from inside the buffer, moved down (a compaction). */
	memcpy(mem, "ab-cd-ef", 8);
	buf_init_len(&b, mem, sizeof(mem), 0);
	CHECK(buf_add(&b, mem, 2) == 0 && buf_add(&b, mem + 3, 2) == 0 &&
	      buf_add(&b, mem + 5, 3) == 0 && b.len == 7 && !memcmp(mem, "abcd-ef", 7),
	      "overlapping add moves");
	buf_init_len(&b, mem, sizeof(mem), 99);
	CHECK(b.len == sizeof(mem) && buf_addc(&b, 'x') == -1 && b.full,
	      "init_len clamps to cap");
	buf_init_len(&b, mem, 3, 1);
	CHECK(buf_addc(&b, 'y') == 0 && buf_addc(&b, 'z') == 0 && buf_addc(&b, 'w') == -1 &&
	      !memcmp(mem, "ayz", 3), "inline addc to the brim");
}
