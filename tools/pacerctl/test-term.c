/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for term: what the server sends cannot reach the terminal as control
 * sequences (C0, DEL, C1 and invalid UTF-8 become one '?' each), valid UTF-8
 * is kept, the cap cuts at a character boundary, widths count characters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "term.h"

static void check(const char *in, size_t max, const char *want)
{
        Buf b = BUF_INIT(1024);

        assert_int_equal(term_sanitize(&b, in, max), 0);
        assert_string_equal(buf_str(&b), want);
        buf_done(&b);
}

static void test_sanitize(void **state)
{
        check("plain /web-1.x", 0, "plain /web-1.x");
        check("caf\xc3\xa9 \xe2\x9c\x93", 0, "caf\xc3\xa9 \xe2\x9c\x93");
        check("a\x1b[31mred\x1b[0m", 0, "a?[31mred?[0m");
        check("\x1b]0;title\x07", 0, "?]0;title?");
        check("tab\tnew\nline\rdel\x7f", 0, "tab?new?line?del?");
        /* C1 CSI (U+009B) is one character: one '?' */
        check("x\xc2\x9b"
              "31m",
              0, "x?31m");
        /* U+00A0 is printable */
        check("\xc2\xa0", 0, "\xc2\xa0");
        /* invalid UTF-8: one '?' per byte */
        check("\xff\xfe", 0, "??");
        check("\xc3", 0, "?");
        check("\xed\xa0\x80", 0, "???"); /* a surrogate */
        check("\xc0\xaf", 0, "??");      /* an overlong '/' */
}

static void test_cap(void **state)
{
        check("abcdef", 3, "abc...");
        check("abc", 3, "abc");
        /* never half a character */
        check("ab\xc3\xa9", 3, "ab...");
        check("ab\xc3\xa9", 4, "ab\xc3\xa9");
}

static void test_buffer_full(void **state)
{
        Buf b = BUF_INIT(4);

        assert_int_equal(term_sanitize(&b, "abcdefgh", 0), -EMSGSIZE);
        assert_true(b.len <= 4);
        buf_done(&b);
}

static void test_width(void **state)
{
        assert_int_equal(term_text_width(""), 0);
        assert_int_equal(term_text_width("abc"), 3);
        assert_int_equal(term_text_width("caf\xc3\xa9"), 4);
        assert_int_equal(term_text_width("\xe2\x9c\x93\xe2\x9c\x93"), 2);
}

static void test_color_needs_a_tty(void **state)
{
        FILE *f = tmpfile();

        assert_non_null(f);
        unsetenv("NO_COLOR");
        assert_false(term_is_tty(f));
        assert_false(term_can_redraw(f));
        assert_false(term_color_allowed(f));
        assert_int_equal(term_width(f), TERM_WIDTH_DEFAULT);
        assert_string_equal(term_color_on(TERM_COLOR_NONE), "");
        assert_string_equal(term_color_on(_TERM_COLOR_MAX), "");
        fclose(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sanitize),          cmocka_unit_test(test_cap),
                cmocka_unit_test(test_buffer_full),       cmocka_unit_test(test_width),
                cmocka_unit_test(test_color_needs_a_tty),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
