/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the SSE parser: events split anywhere between feeds, the three
 * line endings (CR LF split across feeds included), multi-line data, ids that
 * persist, the caps (an oversized event is reported, the next one is intact),
 * and a callback that stops the feed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "sse.h"

#define EVENTS_KEPT 16
#define FIELD_MAX   128

typedef struct Seen {
        size_t n;
        struct {
                char type[FIELD_MAX];
                char data[FIELD_MAX];
                char id[FIELD_MAX];
                bool oversized;
        } e[EVENTS_KEPT];
        int stop_after; /* return -ECANCELED from this event on; 0 = never */
} Seen;

static int on_event(const SseEvent *e, void *userdata)
{
        Seen *s = userdata;

        assert_true(s->n < EVENTS_KEPT);
        assert_int_equal(strlen(e->data), e->data_len);
        snprintf(s->e[s->n].type, FIELD_MAX, "%s", e->type);
        snprintf(s->e[s->n].data, FIELD_MAX, "%s", e->data);
        snprintf(s->e[s->n].id, FIELD_MAX, "%s", e->id);
        s->e[s->n].oversized = e->oversized;
        s->n++;
        if (s->stop_after > 0 && (int)s->n >= s->stop_after)
                return -ECANCELED;
        return 0;
}

static void feed_all(SseParser *p, const char *text, size_t len, Seen *seen)
{
        assert_int_equal(sse_parser_feed(p, text, len, on_event, seen), 0);
}

static const char stream[] = "id: 1\nevent: status_update_event\ndata: {\"a\":1}\n\n"
                             ": a comment\r\n"
                             "event: deployment_success\r\ndata: {\"id\":\"d1\"}\r\nid: 2\r\n\r\n"
                             "data: line one\rdata: line two\r\r"
                             "data\n\n";

static void check_stream(const Seen *s)
{
        assert_int_equal(s->n, 4);
        assert_string_equal(s->e[0].type, "status_update_event");
        assert_string_equal(s->e[0].data, "{\"a\":1}");
        assert_string_equal(s->e[0].id, "1");
        assert_string_equal(s->e[1].type, "deployment_success");
        assert_string_equal(s->e[1].data, "{\"id\":\"d1\"}");
        assert_string_equal(s->e[1].id, "2");
        /* no event: line → "message"; the id stays until another comes */
        assert_string_equal(s->e[2].type, "message");
        assert_string_equal(s->e[2].data, "line one\nline two");
        assert_string_equal(s->e[2].id, "2");
        /* "data" alone is a data line with an empty value */
        assert_string_equal(s->e[3].data, "");
        for (size_t i = 0; i < s->n; i++)
                assert_false(s->e[i].oversized);
}

static void test_whole(void **state)
{
        SseParser p;
        Seen s = {};

        sse_parser_init(&p, 1024);
        feed_all(&p, stream, (sizeof(stream) - 1), &s);
        check_stream(&s);
        assert_string_equal(sse_parser_last_id(&p), "2");
        sse_parser_done(&p);
}

static void test_split_anywhere(void **state)
{
        /* every split into two feeds, then one byte per feed */
        for (size_t cut = 0; cut <= (sizeof(stream) - 1); cut++) {
                SseParser p;
                Seen s = {};

                sse_parser_init(&p, 1024);
                feed_all(&p, stream, cut, &s);
                feed_all(&p, stream + cut, (sizeof(stream) - 1) - cut, &s);
                check_stream(&s);
                sse_parser_done(&p);
        }
        SseParser p;
        Seen s = {};
        sse_parser_init(&p, 1024);
        for (size_t i = 0; i < (sizeof(stream) - 1); i++)
                feed_all(&p, stream + i, 1, &s);
        check_stream(&s);
        sse_parser_done(&p);
}

static void test_crlf_split_is_one_line_end(void **state)
{
        SseParser p;
        Seen s = {};

        sse_parser_init(&p, 1024);
        /* CR at the end of one feed and LF at the start of the next: one line end, so
         * "data: x\r" + "\n" + "\r\n" dispatches once, with no empty event in between */
        feed_all(&p, "data: x\r", 8, &s);
        assert_int_equal(s.n, 0);
        feed_all(&p, "\n", 1, &s);
        assert_int_equal(s.n, 0);
        feed_all(&p, "\r\n", 2, &s);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.e[0].data, "x");
        sse_parser_done(&p);
}

static void test_fields(void **state)
{
        static const char text[] = "\xef\xbb\xbf" /* a BOM, skipped */
                                   "retry: 1500\n"
                                   "data:no space\n"
                                   "data:  two spaces\n"
                                   "unknown: ignored\n"
                                   "event\n" /* no colon: an empty type → "message" */
                                   "\n"
                                   "event: lonely\n\n" /* no data: not an event */
                                   "id: a\0b\n"        /* a NUL: the id is ignored */
                                   "data: next\n\n"
                                   "retry: soon\n"; /* not a number: ignored */
        SseParser p;
        Seen s = {};

        sse_parser_init(&p, 1024);
        feed_all(&p, text, sizeof(text) - 1, &s);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.e[0].type, "message");
        assert_string_equal(s.e[0].data, "no space\n two spaces");
        assert_string_equal(s.e[0].id, "");
        /* "lonely" had no data: the type does not carry over */
        assert_string_equal(s.e[1].type, "message");
        assert_string_equal(s.e[1].data, "next");
        assert_string_equal(s.e[1].id, "");
        assert_int_equal(p.retry_ms, 1500);
        sse_parser_done(&p);
}

static void test_oversized_event_is_reported_and_the_next_is_intact(void **state)
{
        char big[200];
        SseParser p;
        Seen s = {};

        memset(big, 'x', sizeof(big));
        sse_parser_init(&p, 64);
        /* data over the cap spread over several lines */
        feed_all(&p, "id: 7\nevent: big\n", 17, &s);
        for (int i = 0; i < 4; i++) {
                feed_all(&p, "data: ", 6, &s);
                feed_all(&p, big, 30, &s);
                feed_all(&p, "\n", 1, &s);
        }
        feed_all(&p, "\n", 1, &s);
        /* one line over the cap */
        feed_all(&p, "data: ", 6, &s);
        feed_all(&p, big, sizeof(big), &s);
        feed_all(&p, "\n\n", 2, &s);
        /* a long event type */
        feed_all(&p, "event: ", 7, &s);
        feed_all(&p, big, SSE_TYPE_MAX + 1, &s);
        feed_all(&p, "\ndata: 1\n\n", 10, &s);
        feed_all(&p, "event: ok\ndata: fine\n\n", 22, &s);

        assert_int_equal(s.n, 4);
        assert_true(s.e[0].oversized);
        assert_string_equal(s.e[0].type, "big");
        assert_string_equal(s.e[0].id, "7");
        assert_string_equal(s.e[0].data, "");
        assert_true(s.e[1].oversized);
        assert_true(s.e[2].oversized);
        assert_false(s.e[3].oversized);
        assert_string_equal(s.e[3].type, "ok");
        assert_string_equal(s.e[3].data, "fine");
        /* memory stayed bounded by the cap */
        assert_true(p.line.cap <= 64 && p.data.cap <= 64);
        sse_parser_done(&p);
}

static void test_long_id_is_ignored(void **state)
{
        char text[SSE_ID_MAX + 64];
        SseParser p;
        Seen s = {};
        int n;

        sse_parser_init(&p, 4096);
        feed_all(&p, "id: 5\n", 6, &s);
        n = snprintf(text, sizeof(text), "id: %0*d\ndata: x\n\n", SSE_ID_MAX + 1, 1);
        feed_all(&p, text, (size_t)n, &s);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.e[0].id, "5");
        sse_parser_done(&p);
}

static void test_callback_stops_the_feed(void **state)
{
        static const char text[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
        SseParser p;
        Seen s = { .stop_after = 2 };

        sse_parser_init(&p, 1024);
        assert_int_equal(sse_parser_feed(&p, text, (sizeof(text) - 1), on_event, &s), -ECANCELED);
        assert_int_equal(s.n, 2);
        sse_parser_done(&p);
}

static void test_reset_drops_the_partial_event_keeps_the_id(void **state)
{
        SseParser p;
        Seen s = {};

        sse_parser_init(&p, 1024);
        feed_all(&p, "id: 9\ndata: 1\n\nevent: half\ndata: cut off", 40, &s);
        assert_int_equal(s.n, 1);
        sse_parser_reset(&p);
        feed_all(&p, "data: 2\n\n", 9, &s);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.e[1].type, "message");
        assert_string_equal(s.e[1].data, "2");
        assert_string_equal(s.e[1].id, "9");
        sse_parser_done(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_whole),
                cmocka_unit_test(test_split_anywhere),
                cmocka_unit_test(test_crlf_split_is_one_line_end),
                cmocka_unit_test(test_fields),
                cmocka_unit_test(test_oversized_event_is_reported_and_the_next_is_intact),
                cmocka_unit_test(test_long_id_is_ignored),
                cmocka_unit_test(test_callback_stops_the_feed),
                cmocka_unit_test(test_reset_drops_the_partial_event_keeps_the_id),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
