/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for pipelined HTTP/1.1 calls against a scripted server in the test
 * itself: the test accepts the client's connections on a loopback socket,
 * reads what the client wrote and answers with exact bytes — whole, byte by
 * byte, malformed, or not at all — turning the client's loop in between.
 * Every wait is for an event, bounded by a safety deadline. */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "duration.h"
#include "http_pipeline.h"
#include "macro.h"

#define WAIT_MAX_S    10.0
#define TIMEOUT_LONG  (10 * NSEC_PER_SEC)
#define TIMEOUT_SHORT (50 * NSEC_PER_MSEC)
#define CALLS_MAX     512
#define SERVER_READ   (1u << 20)
#define BODY_MAX_TEST 1024
#define MANY          100

typedef struct Result {
        bool done;
        int result;
        long status;
        char body[BODY_MAX_TEST + 1];
        size_t body_len;
        int order; /* when it completed */
} Result;

static struct ev_loop *loop;
static Result results[CALLS_MAX];
static int completed;

typedef struct Test {
        int listen_fd;
        uint16_t port;
        HttpPipeline *p;
} Test;

static void on_done(int result, long status, const char *body, size_t len, void *userdata)
{
        Result *r = userdata;

        assert_false(r->done);
        r->done = true;
        r->result = result;
        r->status = status;
        assert_true(len <= BODY_MAX_TEST);
        memcpy(r->body, body, len);
        r->body[len] = 0;
        r->body_len = len;
        r->order = completed++;
}

static int listen_loopback(uint16_t *ret_port)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

static HttpPipeline *pipeline_to(uint16_t port, size_t connections, size_t depth, int64_t timeout_ns)
{
        HttpPipelineOptions o = {
                .addr_len = sizeof(struct sockaddr_in),
                .host = "master.test:5050",
                .path = "/api/v1/scheduler",
                .connections = connections,
                .depth = depth,
                .timeout_ns = timeout_ns,
                .max_body = BODY_MAX_TEST,
        };
        struct sockaddr_in *a = (struct sockaddr_in *)&o.addr;
        HttpPipeline *p;

        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(port);
        assert_int_equal(http_pipeline_new(loop, &o, &p), 0);
        return p;
}

static int setup(void **state)
{
        static Test t;

        loop = ev_loop_new(EVFLAG_AUTO);
        memset(results, 0, sizeof(results));
        completed = 0;
        t = (Test){ 0 };
        t.listen_fd = listen_loopback(&t.port);
        t.p = pipeline_to(t.port, 1, 2 * MANY, TIMEOUT_LONG);
        *state = &t;
        return 0;
}

static int teardown(void **state)
{
        Test *t = *state;

        t->p = http_pipeline_free(t->p);
        close(t->listen_fd);
        ev_loop_destroy(loop);
        return 0;
}

static void on_deadline(struct ev_loop *l, ev_timer *w, int revents)
{
        *(bool *)w->data = true;
}

/* Turns the loop until n calls have completed (in total), failing after WAIT_MAX_S. */
static void wait_completed(int n)
{
        bool expired = false;
        ev_timer t;

        ev_timer_init(&t, on_deadline, WAIT_MAX_S, 0.);
        t.data = &expired;
        ev_timer_start(loop, &t);
        while (completed < n && !expired)
                ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &t);
        assert_false(expired);
        assert_int_equal(completed, n);
}

/* Turns the loop until fd has at least one byte to read from the client. */
static void wait_readable(int fd)
{
        bool expired = false;
        ev_timer t;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };

        ev_timer_init(&t, on_deadline, WAIT_MAX_S, 0.);
        t.data = &expired;
        ev_timer_start(loop, &t);
        while (poll(&pfd, 1, 0) == 0 && !expired)
                ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        ev_timer_stop(loop, &t);
        assert_false(expired);
}

/* The server side of the client's next connection. */
static int server_accept(Test *t)
{
        wait_readable(t->listen_fd);
        int fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

/* Reads from fd until it holds n requests (by their "POST " lines); returns the bytes. */
static char *server_read_requests(int fd, int n, Buf *b)
{
        for (;;) {
                int seen = 0;
                for (const char *p = buf_str(b); (p = strstr(p, "POST /api/v1/scheduler HTTP/1.1\r\n")); p++)
                        seen++;
                if (seen >= n)
                        return (char *)buf_str(b);
                wait_readable(fd);
                assert_int_equal(buf_reserve(b, 65536), 0);
                ssize_t k = recv(fd, b->data + b->len, b->cap - b->len, 0);
                assert_true(k > 0);
                b->len += (size_t)k;
                b->data[b->len] = 0;
        }
}

static void server_send(int fd, const char *bytes)
{
        assert_int_equal(send(fd, bytes, strlen(bytes), MSG_NOSIGNAL), (ssize_t)strlen(bytes));
}

static void post(Test *t, int i, const char *body)
{
        static const char *const headers[] = { "Content-Type: application/x-protobuf",
                                               "Mesos-Stream-Id: 1a2b", NULL };
        assert_int_equal(http_pipeline_post(t->p, headers, body, strlen(body), on_done, &results[i]), 0);
}

/* ---- tests ---- */

static void test_pipelined_calls_answered_in_order(void **state)
{
        Test *t = *state;
        Buf in = BUF_INIT(SERVER_READ), out = BUF_INIT(SERVER_READ);
        char body[32];

        for (int i = 0; i < MANY; i++) {
                snprintf(body, sizeof(body), "call-%d", i);
                post(t, i, body);
        }
        assert_int_equal(http_pipeline_in_flight(t->p), MANY);
        int fd = server_accept(t);
        const char *req = server_read_requests(fd, MANY, &in);
        /* all of them on one connection, each whole, in order, without waiting for an answer */
        const char *p = req;
        for (int i = 0; i < MANY; i++) {
                char want[256];
                snprintf(body, sizeof(body), "call-%d", i);
                snprintf(want, sizeof(want),
                         "POST /api/v1/scheduler HTTP/1.1\r\nHost: master.test:5050\r\nContent-Type: "
                         "application/x-protobuf\r\nMesos-Stream-Id: 1a2b\r\nContent-Length: %zu\r\n\r\n%s",
                         strlen(body), body);
                assert_memory_equal(p, want, strlen(want));
                p += strlen(want);
        }
        assert_int_equal(p - req, (ptrdiff_t)in.len);
        assert_int_equal(http_pipeline_connects(t->p), 1);

        /* every answer in one write: statuses and bodies go to the right calls */
        for (int i = 0; i < MANY; i++) {
                if (i % 10 == 3)
                        buf_printf(&out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 9\r\n\r\nbad-%05d", i);
                else
                        buf_printf(&out, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        }
        server_send(fd, buf_str(&out));
        wait_completed(MANY);
        for (int i = 0; i < MANY; i++) {
                assert_int_equal(results[i].result, 0);
                assert_int_equal(results[i].order, i);
                assert_int_equal(results[i].status, i % 10 == 3 ? 400 : 202);
                if (i % 10 == 3) {
                        snprintf(body, sizeof(body), "bad-%05d", i);
                        assert_string_equal(results[i].body, body);
                } else
                        assert_int_equal(results[i].body_len, 0);
        }
        assert_int_equal(http_pipeline_in_flight(t->p), 0);
        close(fd);
        buf_done(&in);
        buf_done(&out);
}

static void test_answers_split_anywhere(void **state)
{
        Test *t = *state;
        Buf in = BUF_INIT(SERVER_READ);
        /* an interim 100, a chunked body with an extension and a trailer, a body by length,
         * a 204 without a body: sent one byte at a time */
        const char *answers = "HTTP/1.1 100 Continue\r\n\r\n"
                              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
                              "HTTP/1.1 307 Temporary Redirect\r\nLocation: //other:5050/\r\n"
                              "content-length:  4 \r\n\r\nmove"
                              "HTTP/1.1 204 No Content\r\n\r\n";

        for (int i = 0; i < 3; i++)
                post(t, i, "x");
        int fd = server_accept(t);
        server_read_requests(fd, 3, &in);
        for (const char *c = answers; *c; c++) {
                assert_int_equal(send(fd, c, 1, MSG_NOSIGNAL), 1);
                ev_run(loop, EVRUN_NOWAIT);
        }
        wait_completed(3);
        assert_int_equal(results[0].status, 200);
        assert_string_equal(results[0].body, "hello, world");
        assert_int_equal(results[1].status, 307);
        assert_string_equal(results[1].body, "move");
        assert_int_equal(results[2].status, 204);
        assert_int_equal(results[2].body_len, 0);
        close(fd);
        buf_done(&in);
}

static void test_connection_close_fails_the_rest_and_reconnects(void **state)
{
        Test *t = *state;
        Buf in = BUF_INIT(SERVER_READ);

        for (int i = 0; i < 3; i++)
                post(t, i, "x");
        int fd = server_accept(t);
        server_read_requests(fd, 3, &in);
        server_send(fd, "HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        close(fd);
        wait_completed(3);
        assert_int_equal(results[0].result, 0);
        assert_int_equal(results[0].status, 202);
        assert_int_equal(results[1].result, -ECONNRESET);
        assert_int_equal(results[2].result, -ECONNRESET);
        assert_int_equal(http_pipeline_in_flight(t->p), 0);

        /* the next call opens a new connection */
        post(t, 3, "again");
        fd = server_accept(t);
        buf_reset(&in);
        server_read_requests(fd, 1, &in);
        server_send(fd, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        wait_completed(4);
        assert_int_equal(results[3].status, 202);
        assert_int_equal(http_pipeline_connects(t->p), 2);
        close(fd);
        buf_done(&in);
}

static void test_body_until_the_end_of_the_connection(void **state)
{
        Test *t = *state;
        Buf in = BUF_INIT(SERVER_READ);

        post(t, 0, "x");
        post(t, 1, "y");
        int fd = server_accept(t);
        server_read_requests(fd, 2, &in);
        server_send(fd, "HTTP/1.0 500 Internal Server Error\r\n\r\nno length here");
        close(fd);
        wait_completed(2);
        assert_int_equal(results[0].result, 0);
        assert_int_equal(results[0].status, 500);
        assert_string_equal(results[0].body, "no length here");
        assert_int_equal(results[1].result, -ECONNRESET);
        buf_done(&in);
}

static void test_broken_mid_answer(void **state)
{
        Test *t = *state;
        Buf in = BUF_INIT(SERVER_READ);

        post(t, 0, "x");
        int fd = server_accept(t);
        server_read_requests(fd, 1, &in);
        server_send(fd, "HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc");
        close(fd);
        wait_completed(1);
        assert_int_equal(results[0].result, -ECONNRESET);
        assert_int_equal(results[0].status, 0);
        buf_done(&in);
}

static void test_no_answer_times_out(void **state)
{
        Test *t = *state;
        HttpPipeline *p = pipeline_to(t->port, 1, 8, TIMEOUT_SHORT);
        Buf in = BUF_INIT(SERVER_READ);

        assert_int_equal(http_pipeline_post(p, NULL, "x", 1, on_done, &results[0]), 0);
        assert_int_equal(http_pipeline_post(p, NULL, "y", 1, on_done, &results[1]), 0);
        int fd = server_accept(t);
        server_read_requests(fd, 2, &in);
        wait_completed(2);
        assert_int_equal(results[0].result, -ETIMEDOUT);
        assert_int_equal(results[1].result, -ETIMEDOUT);
        http_pipeline_free(p);
        close(fd);
        buf_done(&in);
}

static void test_refused(void **state)
{
        uint16_t port;
        int fd = listen_loopback(&port);
        close(fd); /* nobody listens there now */
        HttpPipeline *p = pipeline_to(port, 2, 8, TIMEOUT_LONG);

        assert_int_equal(http_pipeline_post(p, NULL, "x", 1, on_done, &results[0]), 0);
        wait_completed(1);
        assert_int_equal(results[0].result, -ECONNREFUSED);
        http_pipeline_free(p);
}

static void expect_bad_answer(Test *t, const char *answer, int error)
{
        Buf in = BUF_INIT(SERVER_READ);
        int before = completed;

        post(t, before, "x");
        int fd = server_accept(t);
        server_read_requests(fd, 1, &in);
        server_send(fd, answer);
        wait_completed(before + 1);
        assert_int_equal(results[before].result, error);
        /* the connection is given up: the server sees its end */
        char c;
        wait_readable(fd);
        assert_int_equal(recv(fd, &c, 1, 0), 0);
        close(fd);
        buf_done(&in);
}

static void test_bad_answers(void **state)
{
        Test *t = *state;
        Buf big = BUF_INIT(HTTP_PIPELINE_HEAD_MAX * 2);

        expect_bad_answer(t, "SPDY/3 200 OK\r\n\r\n", -EBADMSG);
        expect_bad_answer(t, "HTTP/1.1 2x2 Accepted\r\n\r\n", -EBADMSG);
        expect_bad_answer(t, "HTTP/1.1 202 Accepted\r\nContent-Length: -1\r\n\r\n", -EBADMSG);
        expect_bad_answer(t, "HTTP/1.1 202 Accepted\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                          -EMSGSIZE);
        expect_bad_answer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", -EMSGSIZE);
        expect_bad_answer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", -EBADMSG);
        expect_bad_answer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -EBADMSG);
        expect_bad_answer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", -EBADMSG);
        expect_bad_answer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n", -EMSGSIZE);
        /* headers that never end */
        buf_puts(&big, "HTTP/1.1 200 OK\r\n");
        while (big.len < HTTP_PIPELINE_HEAD_MAX + 10)
                buf_puts(&big,
                         "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        expect_bad_answer(t, buf_str(&big), -EMSGSIZE);
        buf_done(&big);
}

static void test_answer_to_nothing_closes_the_connection(void **state)
{
        Test *t = *state;
        Buf in = BUF_INIT(SERVER_READ);
        char c;

        post(t, 0, "x");
        int fd = server_accept(t);
        server_read_requests(fd, 1, &in);
        server_send(fd, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
                        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        wait_completed(1);
        assert_int_equal(results[0].status, 202);
        wait_readable(fd);
        assert_int_equal(recv(fd, &c, 1, 0), 0);
        close(fd);
        buf_done(&in);
}

static void test_capacity_and_bad_headers(void **state)
{
        Test *t = *state;
        HttpPipeline *p = pipeline_to(t->port, 1, 4, TIMEOUT_LONG);
        static const char *const crlf[] = { "X-Evil: a\r\nX-Injected: b", NULL };
        static const char *const no_colon[] = { "NoColon", NULL };

        for (int i = 0; i < 4; i++) {
                assert_true(http_pipeline_can_post(p));
                assert_int_equal(http_pipeline_post(p, NULL, "x", 1, on_done, &results[i]), 0);
        }
        assert_false(http_pipeline_can_post(p));
        assert_int_equal(http_pipeline_post(p, NULL, "x", 1, on_done, &results[4]), -EAGAIN);
        assert_int_equal(http_pipeline_post(t->p, crlf, "x", 1, on_done, &results[5]), -EINVAL);
        assert_int_equal(http_pipeline_post(t->p, no_colon, "x", 1, on_done, &results[5]), -EINVAL);
        /* freeing fails what is in flight, once each */
        http_pipeline_free(p);
        assert_int_equal(completed, 4);
        for (int i = 0; i < 4; i++)
                assert_int_equal(results[i].result, -ECANCELED);
        assert_false(results[4].done || results[5].done);
}

static Test *reentrant_test;

static void on_done_post_again(int result, long status, const char *body, size_t len, void *userdata)
{
        on_done(result, status, body, len, userdata);
        if (userdata == &results[0])
                post(reentrant_test, 1, "from the callback");
}

static void test_post_from_a_callback(void **state)
{
        Test *t = *state;
        Buf in = BUF_INIT(SERVER_READ);

        reentrant_test = t;
        assert_int_equal(http_pipeline_post(t->p, NULL, "first", 5, on_done_post_again, &results[0]), 0);
        int fd = server_accept(t);
        server_read_requests(fd, 1, &in);
        server_send(fd, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        wait_completed(1);
        buf_reset(&in);
        const char *req = server_read_requests(fd, 1, &in);
        assert_non_null(strstr(req, "\r\n\r\nfrom the callback"));
        server_send(fd, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        wait_completed(2);
        assert_int_equal(http_pipeline_connects(t->p), 1);
        close(fd);
        buf_done(&in);
}

static void test_options_refused(void **state)
{
        HttpPipelineOptions o = { .addr_len = sizeof(struct sockaddr_in),
                                  .host = "h:1",
                                  .path = "/p",
                                  .connections = 1,
                                  .depth = 1,
                                  .timeout_ns = TIMEOUT_LONG };
        HttpPipeline *p;

        o.addr.ss_family = AF_UNIX;
        assert_int_equal(http_pipeline_new(loop, &o, &p), -EINVAL);
        o.addr.ss_family = AF_INET;
        o.path = "/with space";
        assert_int_equal(http_pipeline_new(loop, &o, &p), -EINVAL);
        o.path = "/p";
        o.host = "h\r\nX: y";
        assert_int_equal(http_pipeline_new(loop, &o, &p), -EINVAL);
        o.host = "h:1";
        o.depth = 0;
        assert_int_equal(http_pipeline_new(loop, &o, &p), -EINVAL);
        o.depth = 1;
        o.timeout_ns = 0;
        assert_int_equal(http_pipeline_new(loop, &o, &p), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_pipelined_calls_answered_in_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_answers_split_anywhere, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_close_fails_the_rest_and_reconnects, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_body_until_the_end_of_the_connection, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broken_mid_answer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_answer_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_answer_to_nothing_closes_the_connection, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_capacity_and_bad_headers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_post_from_a_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_options_refused, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
