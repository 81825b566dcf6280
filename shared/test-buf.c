/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for buf: the hard maximum (all-or-nothing, -EMSGSIZE exactly one byte
 * past it), NUL termination after every operation, growth and ownership transfer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "buf.h"

/* Every state a Buf can be in must read as a C string of exactly len bytes. */
static void assert_terminated(const Buf *b)
{
        const char *s = buf_str(b);

        assert_non_null(s);
        assert_int_equal(s[b->len], 0);
        if (b->data)
                assert_true(b->len <= b->cap);
        assert_true(b->len <= b->max);
}

static void test_empty(void **state)
{
        Buf b = BUF_INIT(16);

        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_string_equal(buf_str(&b), "");
        assert_terminated(&b);
        buf_done(&b);
        assert_null(b.data);
        assert_int_equal(b.max, 16);
}

static void test_append_puts_putc(void **state)
{
        Buf b;

        buf_init(&b, 1024);
        assert_int_equal(buf_append(&b, "abc", 3), 0);
        assert_terminated(&b);
        assert_int_equal(buf_puts(&b, "def"), 0);
        assert_int_equal(buf_putc(&b, 'g'), 0);
        assert_int_equal(buf_append(&b, NULL, 0), 0);
        assert_int_equal(b.len, 7);
        assert_string_equal(buf_str(&b), "abcdefg");
        assert_terminated(&b);

        /* binary content, including NUL bytes, is kept and counted */
        assert_int_equal(buf_append(&b, "\0\xff", 2), 0);
        assert_int_equal(b.len, 9);
        assert_memory_equal(b.data, "abcdefg\0\xff", 9);
        assert_terminated(&b);
        buf_done(&b);
}

static void test_printf(void **state)
{
        Buf b = BUF_INIT(1024);

        assert_int_equal(buf_printf(&b, "%s=%d", "x", 42), 0);
        assert_int_equal(buf_printf(&b, ",%05.1f", 2.25), 0);
        assert_int_equal(buf_printf(&b, "%s", ""), 0);
        assert_string_equal(buf_str(&b), "x=42,002.2");
        assert_int_equal(b.len, strlen("x=42,002.2"));
        assert_terminated(&b);
        buf_done(&b);
}

static void test_consume(void **state)
{
        Buf b = BUF_INIT(64);

        buf_consume(&b, 5); /* on a never-allocated buffer */
        assert_int_equal(b.len, 0);

        assert_int_equal(buf_puts(&b, "0123456789"), 0);
        buf_consume(&b, 0);
        assert_string_equal(buf_str(&b), "0123456789");
        buf_consume(&b, 3);
        assert_string_equal(buf_str(&b), "3456789");
        assert_int_equal(b.len, 7);
        assert_terminated(&b);
        buf_consume(&b, 7);
        assert_int_equal(b.len, 0);
        assert_string_equal(buf_str(&b), "");
        assert_int_equal(buf_puts(&b, "ab"), 0);
        buf_consume(&b, 1000); /* more than there is */
        assert_int_equal(b.len, 0);
        assert_terminated(&b);

        /* consuming frees room below the maximum again */
        assert_int_equal(
                buf_append(&b, "................................................................", 64), 0);
        assert_int_equal(buf_putc(&b, 'x'), -EMSGSIZE);
        buf_consume(&b, 1);
        assert_int_equal(buf_putc(&b, 'x'), 0);
        assert_int_equal(b.len, 64);
        assert_int_equal(b.data[63], 'x');
        assert_terminated(&b);
        buf_done(&b);
}

static void test_reset_keeps_allocation(void **state)
{
        Buf b = BUF_INIT(1024);
        char *before;

        buf_reset(&b); /* never allocated: no crash */
        assert_int_equal(buf_puts(&b, "hello"), 0);
        before = b.data;
        buf_reset(&b);
        assert_int_equal(b.len, 0);
        assert_string_equal(buf_str(&b), "");
        assert_ptr_equal(b.data, before);
        assert_int_equal(b.max, 1024);
        assert_int_equal(buf_puts(&b, "again"), 0);
        assert_string_equal(buf_str(&b), "again");
        buf_done(&b);
}

static void test_reset_shrink_frees_a_large_allocation(void **state)
{
        Buf b = BUF_INIT(1u << 20);
        char big[4096] = { 0 };
        char *before;

        buf_reset_shrink(&b, 64); /* never allocated: no crash */
        assert_int_equal(buf_puts(&b, "small"), 0);
        before = b.data;
        buf_reset_shrink(&b, 64); /* within keep: kept */
        assert_ptr_equal(b.data, before);
        assert_int_equal(b.len, 0);
        assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
        assert_true(b.cap >= sizeof(big));
        buf_reset_shrink(&b, 64);
        assert_null(b.data);
        assert_int_equal(b.cap, 0);
        assert_int_equal(b.len, 0);
        assert_string_equal(buf_str(&b), "");
        assert_int_equal(b.max, 1u << 20); /* still usable, same limit */
        assert_int_equal(buf_puts(&b, "again"), 0);
        assert_string_equal(buf_str(&b), "again");
        buf_done(&b);
}

static void test_steal(void **state)
{
        Buf b = BUF_INIT(100);
        size_t len = 99;
        char *s;

        /* never allocated: still a string the caller can free */
        s = buf_steal(&b, &len);
        assert_non_null(s);
        assert_string_equal(s, "");
        assert_int_equal(len, 0);
        free(s);

        assert_int_equal(buf_append(&b, "a\0b", 3), 0);
        s = buf_steal(&b, &len);
        assert_int_equal(len, 3);
        assert_memory_equal(s, "a\0b", 4);
        free(s);

        /* b is empty and reusable, with its maximum */
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
        assert_int_equal(b.max, 100);
        assert_int_equal(buf_puts(&b, "x"), 0);
        s = buf_steal(&b, NULL);
        assert_string_equal(s, "x");
        free(s);
}

static void test_max_exact(void **state)
{
        char big[101];
        Buf b = BUF_INIT(100);

        memset(big, 'a', sizeof(big));
        /* exactly at the maximum in one go: fine; one more byte: refused */
        assert_int_equal(buf_append(&b, big, 100), 0);
        assert_int_equal(b.len, 100);
        assert_true(b.cap >= 100);
        assert_int_equal(buf_putc(&b, 'z'), -EMSGSIZE);
        assert_int_equal(buf_append(&b, "", 0), 0); /* zero bytes still fit */
        assert_int_equal(buf_printf(&b, "%s", ""), 0);
        assert_int_equal(buf_printf(&b, "z"), -EMSGSIZE);
        assert_int_equal(b.len, 100);
        assert_memory_equal(b.data, big, 100);
        assert_terminated(&b);
        buf_done(&b);

        /* max+1 in one go on an empty buffer: refused, and nothing allocated */
        assert_int_equal(buf_append(&b, big, 101), -EMSGSIZE);
        assert_int_equal(b.len, 0);
        assert_null(b.data);
        assert_int_equal(buf_reserve(&b, 101), -EMSGSIZE);
        assert_int_equal(buf_reserve(&b, 100), 0);
        assert_int_equal(b.len, 0);
        assert_terminated(&b);

        /* the cap on allocation follows the maximum, not the doubling */
        assert_int_equal(buf_append(&b, big, 70), 0);
        assert_int_equal(buf_append(&b, big, 30), 0);
        assert_true(b.cap <= 100);
        buf_done(&b);

        /* sizes that would overflow len + n */
        assert_int_equal(buf_reserve(&b, SIZE_MAX), -EMSGSIZE);
        assert_int_equal(buf_puts(&b, "abc"), 0);
        assert_int_equal(buf_reserve(&b, SIZE_MAX - 1), -EMSGSIZE);
        assert_int_equal(b.len, 3);
        buf_done(&b);
}

static void test_failed_append_changes_nothing(void **state)
{
        Buf b = BUF_INIT(10);

        assert_int_equal(buf_puts(&b, "12345678"), 0);
        /* 3 bytes do not fit in the 2 left: none of them may be written */
        assert_int_equal(buf_append(&b, "abc", 3), -EMSGSIZE);
        assert_int_equal(b.len, 8);
        assert_string_equal(buf_str(&b), "12345678");
        assert_int_equal(buf_puts(&b, "xyz"), -EMSGSIZE);
        assert_int_equal(buf_printf(&b, "%d", 123), -EMSGSIZE);
        assert_int_equal(buf_printf(&b, "%s", "longer than the whole buffer"), -EMSGSIZE);
        assert_string_equal(buf_str(&b), "12345678");
        assert_int_equal(b.len, 8);
        assert_terminated(&b);

        /* and what fits still goes in */
        assert_int_equal(buf_printf(&b, "%d", 90), 0);
        assert_string_equal(buf_str(&b), "1234567890");
        assert_int_equal(buf_putc(&b, '!'), -EMSGSIZE);
        assert_string_equal(buf_str(&b), "1234567890");
        buf_done(&b);
}

static void test_max_zero(void **state)
{
        Buf b = BUF_INIT(0);
        char *s;
        size_t len = 1;

        assert_int_equal(buf_putc(&b, 'a'), -EMSGSIZE);
        assert_int_equal(buf_puts(&b, "a"), -EMSGSIZE);
        assert_int_equal(buf_printf(&b, "%c", 'a'), -EMSGSIZE);
        assert_int_equal(b.len, 0);
        assert_string_equal(buf_str(&b), "");
        /* an empty append is allowed and yields a valid empty string */
        assert_int_equal(buf_append(&b, "", 0), 0);
        assert_int_equal(buf_printf(&b, "%s", ""), 0);
        assert_int_equal(b.len, 0);
        assert_terminated(&b);
        s = buf_steal(&b, &len);
        assert_string_equal(s, "");
        assert_int_equal(len, 0);
        free(s);
}

static void test_growth_many_small_appends(void **state)
{
        enum {
                N = 100000
        };
        Buf b = BUF_INIT(N);
        size_t reallocs = 0, last_cap = 0;

        for (size_t i = 0; i < N; i++) {
                assert_int_equal(buf_putc(&b, (char)('a' + i % 26)), 0);
                if (b.cap != last_cap) {
                        reallocs++;
                        last_cap = b.cap;
                }
                assert_int_equal(b.data[b.len], 0);
        }
        assert_int_equal(b.len, N);
        assert_int_equal(buf_putc(&b, 'x'), -EMSGSIZE);
        /* geometric growth: a handful of reallocations, not one per byte */
        assert_true(reallocs <= 20);
        for (size_t i = 0; i < N; i++)
                assert_int_equal(b.data[i], (char)('a' + i % 26));
        assert_int_equal(strlen(buf_str(&b)), N);
        buf_done(&b);

        /* the same with printf, which sizes its output first */
        b = BUF_INIT(SIZE_MAX);
        for (int i = 0; i < 10000; i++)
                assert_int_equal(buf_printf(&b, "%d,", i % 10), 0);
        assert_int_equal(b.len, 20000);
        assert_memory_equal(b.data, "0,1,2,3,4,5,6,7,8,9,0,", 22);
        assert_terminated(&b);
        buf_done(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_append_puts_putc),
                cmocka_unit_test(test_printf),
                cmocka_unit_test(test_consume),
                cmocka_unit_test(test_reset_keeps_allocation),
                cmocka_unit_test(test_reset_shrink_frees_a_large_allocation),
                cmocka_unit_test(test_steal),
                cmocka_unit_test(test_max_exact),
                cmocka_unit_test(test_failed_append_changes_nothing),
                cmocka_unit_test(test_max_zero),
                cmocka_unit_test(test_growth_many_small_appends),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
