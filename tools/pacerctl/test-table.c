/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for table: columns aligned on the widest cell (in characters, not
 * bytes), NULL as "-" and "" as nothing, cells sanitized and capped, colours
 * only when asked and not counted as width. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "table.h"

static char *render(const Table *t, bool color)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        assert_non_null(f);
        table_print(t, f, color);
        assert_int_equal(fclose(f), 0);
        return text;
}

static void test_alignment(void **state)
{
        static const char *const headers[] = { "ID", "STATE", "HOST" };
        Table *t = table_new(3, headers);
        _cleanup_free_ char *text = NULL;

        assert_non_null(t);
        assert_int_equal(table_add_row(t, (const char *const[]){ "/web", "running", "a" }), 0);
        assert_int_equal(table_add_row(t, (const char *const[]){ "/caf\xc3\xa9-long", NULL, "" }), 0);
        assert_int_equal(table_rows(t), 2);
        text = render(t, false);
        assert_string_equal(text, "ID          STATE    HOST\n"
                                  "/web        running  a\n"
                                  "/caf\xc3\xa9-long  -        \n");
        table_free(t);
}

static void test_hostile_and_long_cells(void **state)
{
        static const char *const headers[] = { "A", "B" };
        char long_cell[TABLE_CELL_MAX * 2];
        _cleanup_free_ char *text = NULL;
        Table *t = table_new(2, headers);

        memset(long_cell, 'x', sizeof(long_cell) - 1);
        long_cell[sizeof(long_cell) - 1] = 0;
        assert_int_equal(table_add_row(t, (const char *const[]){ "\x1b[2J", long_cell }), 0);
        text = render(t, false);
        assert_null(strchr(text, '\x1b'));
        assert_non_null(strstr(text, "?[2J"));
        assert_non_null(strstr(text, "xxx...\n"));
        assert_true(strlen(text) < TABLE_CELL_MAX + 32);
        table_free(t);
}

static void test_color_does_not_count_as_width(void **state)
{
        static const char *const headers[] = { "STATE", "X" };
        _cleanup_free_ char *plain = NULL, *colored = NULL;
        Table *t = table_new(2, headers);

        assert_int_equal(table_add_row(t, (const char *const[]){ "failed", "1" }), 0);
        table_color_cell(t, 0, TERM_COLOR_RED);
        table_color_cell(t, 9, TERM_COLOR_RED); /* out of range: ignored */
        plain = render(t, false);
        colored = render(t, true);
        assert_string_equal(plain, "STATE   X\nfailed  1\n");
        assert_string_equal(colored, "STATE   X\n\033[31mfailed\033[0m  1\n");
        table_free(t);
}

static void test_free_null(void **state)
{
        assert_null(table_free(NULL));
        assert_null(table_new(0, NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_alignment),
                cmocka_unit_test(test_hostile_and_long_cells),
                cmocka_unit_test(test_color_does_not_count_as_width),
                cmocka_unit_test(test_free_null),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
