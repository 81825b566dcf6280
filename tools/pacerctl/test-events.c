/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the one-line rendering of events: members in the server's order,
 * eventType/timestamp/nulls/empty strings left out, values quoted when they would
 * read ambiguously, control characters neutralised, epoch timestamps as UTC,
 * long lines cut within their cap; and the --type name rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "events.h"
#include "json.h"

static json_t *parse(const char *text)
{
        json_t *j = NULL;

        assert_int_equal(json_parse(text, strlen(text), NULL, &j, NULL), 0);
        return j;
}

static void check(const char *type, const char *data, bool with_time, const char *want)
{
        json_t *j = parse(data);
        Buf b = BUF_INIT(EVENTS_LINE_MAX);

        assert_int_equal(events_format(type, j, with_time, &b), 0);
        assert_string_equal(buf_str(&b), want);
        buf_done(&b);
        json_decref(j);
}

static void test_format(void **state)
{
        check("status_update_event",
              "{\"taskId\":\"web.1\",\"appId\":\"/web\",\"taskStatus\":\"TASK_RUNNING\",\"eventType\":\"x\","
              "\"timestamp\":\"1\",\"reason\":\"\"}",
              false, "status_update_event taskId=web.1 appId=/web taskStatus=TASK_RUNNING");
        check("e", "{\"message\":\"exit 1\",\"eq\":\"a=b\",\"q\":\"say \\\"hi\\\"\",\"esc\":\"\\u001b[2J\"}",
              false, "e message=\"exit 1\" eq=\"a=b\" q=\"say \\\"hi\\\"\" esc=\"\\u001B[2J\"");
        check("e", "{\"n\":3,\"ok\":true,\"none\":null,\"ports\":[31000,31001],\"o\":{\"a\":1}}", false,
              "e n=3 ok=true ports=[31000,31001] o={\"a\":1}");
}

static void test_timestamps(void **state)
{
        check("e", "{\"timestamp\":\"1700000000.250\",\"a\":1}", true, "2023-11-14T22:13:20.250Z e a=1");
        check("e", "{\"timestamp\":\"2024-01-02T03:04:05.678Z\"}", true, "2024-01-02T03:04:05.678Z e");
        check("e", "{\"timestamp\":\"\\u001b\"}", true, "? e");
}

static void test_long_line_is_cut(void **state)
{
        json_t *j = json_object();
        Buf b = BUF_INIT(256);
        char key[16];

        for (int i = 0; i < 100; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                json_object_set_new(j, key, json_string("0123456789"));
        }
        assert_int_equal(events_format("e", j, false, &b), 0);
        assert_true(b.len <= 256);
        assert_string_equal(b.data + b.len - 3, "...");
        buf_done(&b);
        json_decref(j);
}

static void test_type_names(void **state)
{
        assert_true(events_type_valid("deployment_success"));
        assert_true(events_type_known("deployment_success"));
        assert_true(events_type_valid("future_event_2"));
        assert_false(events_type_known("future_event_2"));
        assert_false(events_type_valid(""));
        assert_false(events_type_valid("Deployment"));
        assert_false(events_type_valid("a&b=c"));
        assert_false(events_type_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_timestamps),
                cmocka_unit_test(test_long_line_is_cut),
                cmocka_unit_test(test_type_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
