/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the HTTP server on a real libev loop. Clients run on the same loop: the repo's async
 * client (libcurl multi) for ordinary requests, and a small raw-socket client for what a polite
 * client never sends (oversized bodies, garbage, a subscriber that stops reading). No test sleeps:
 * every wait is for an event, bounded by WAIT_MAX_S. */
#include <dirent.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "buf.h"
#include "http_client.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "macro.h"

/* A wait that takes longer than this fails the test instead of hanging it. */
#define WAIT_MAX_S 10.0
/* Wakes the loop now and then so a wait notices its deadline. */
#define SAFETY_TICK_S   0.1
#define STREAMS_MAX     128
#define IDLE_STREAMS    100
#define IDLE_CPU_MAX_US (50 * 1000)
#define IDLE_WINDOW_S   1.0
#define HUGE_BODY       (10u * 1024 * 1024)
#define SMALL_BODY_MAX  4096u
#define SLOW_STREAM_MAX (16u * 1024)
#define SLOW_WRITE      1024u
/* Less than the cap, so only a stalled client makes the queue overflow. */
#define SLOW_WRITES_PER_TICK 8u
#define RAW_IN_MAX           (32u * 1024 * 1024)
#define RAW_OUT_MAX          (1024u * 1024)
#define FILL_PIECE           (64u * 1024)
#define CHUNK_PIECE          4096u
#define SSE_EVENTS           3

typedef struct Fixture Fixture;

/* ---- a raw client on the loop ---- */

typedef struct Raw {
        Fixture *f;
        int fd;
        ev_io io;
        Buf out;
        size_t out_off;
        size_t fill_total, fill_queued; /* generated body bytes to send, and queued so far */
        bool fill_chunked, fill_ended;
        size_t sent;
        Buf in;
        bool reading, eof;
        int err;
} Raw;

struct Fixture {
        struct ev_loop *loop;
        ev_timer safety;
        HttpdServer *srv;
        HttpClient *client;
        char base[64];

        HttpdRequest *held;
        unsigned cancels;
        unsigned slow_pending_seen;
        ev_timer slow_timer;
        HttpdRequest *slow;

        HttpdStream *streams[STREAMS_MAX];
        unsigned stream_closes;
        size_t stream_buffer;

        unsigned auth_calls;
        int sse_written;
        ev_timer sse_timer;
        ev_timer fill_timer;
        bool enobufs;
        size_t slow_written;
};

static Fixture *F; /* the fixture of the running test, for handlers */

static void on_nothing(struct ev_loop *loop, ev_timer *w, int revents)
{
}

#define RUN_UNTIL(f, cond)                                         \
        do {                                                       \
                double t0_ = ev_time();                            \
                while (!(cond)) {                                  \
                        assert_true(ev_time() - t0_ < WAIT_MAX_S); \
                        ev_run((f)->loop, EVRUN_ONCE);             \
                }                                                  \
        } while (0)

/* Runs the loop for a while, to see that something does not happen. */
static void run_for(Fixture *f, double seconds)
{
        ev_timer t;

        ev_timer_init(&t, on_nothing, seconds, 0.);
        ev_timer_start(f->loop, &t);
        while (ev_is_active(&t))
                ev_run(f->loop, EVRUN_ONCE);
}

static HttpdStats stats(Fixture *f)
{
        HttpdStats st;

        httpd_get_stats(f->srv, &st);
        return st;
}

static unsigned thread_count(void)
{
        DIR *d = opendir("/proc/self/task");
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* ---- handlers ---- */

static int h_ping(HttpdRequest *r, void *userdata)
{
        return httpd_respond_text(r, 200, "pong");
}

/* Echoes what routing saw, so tests can check captures. */
static int h_describe(HttpdRequest *r, void *userdata)
{
        _cleanup_(json_decrefp) json_t *j = NULL;

        j = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?}", "pattern", httpd_request_route(r)->pattern,
                      "method", httpd_request_method(r), "id", httpd_request_param(r, "id"), "rest",
                      httpd_request_param(r, "*"), "principal", (const char *)httpd_request_context(r),
                      "path", httpd_request_path(r));
        assert_non_null(j);
        return httpd_respond_json(r, 200, j);
}

static int h_query(HttpdRequest *r, void *userdata)
{
        _cleanup_(json_decrefp) json_t *pairs = json_array();
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *k, *v;
        bool force = false;

        for (size_t i = 0; httpd_request_query_at(r, i, &k, &v) == 0; i++)
                json_array_append_new(pairs, json_pack("[s,s]", k, v));
        assert_int_equal(httpd_request_query_at(r, httpd_request_query_count(r), &k, &v), -ERANGE);
        if (httpd_request_query_bool(r, "force", &force) < 0)
                return httpd_respond_error(r, 400, "force: want true or false, got \"%s\"",
                                           httpd_request_query(r, "force"));
        j = json_pack("{s:O, s:b, s:s?}", "pairs", pairs, "force", force, "second_a",
                      httpd_request_query_nth(r, "a", 1));
        return httpd_respond_json(r, 200, j);
}

static int h_echo(HttpdRequest *r, void *userdata)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        PacerError err = {};
        size_t len;
        const char *body = httpd_request_body(r, &len);

        if (json_parse(body, len, NULL, &j, &err) < 0)
                return httpd_respond_error(r, 400, "invalid JSON: %s", err.msg);
        assert_int_equal(httpd_request_add_header(r, "Location", "/v2/apps/echo"), 0);
        assert_int_equal(httpd_request_add_header(r, "Bad Name", "x"), -EINVAL);
        assert_int_equal(httpd_request_add_header(r, "X-Split", "a\r\nInjected: yes"), -EINVAL);
        return httpd_respond_json(r, 201, j);
}

static void on_slow(struct ev_loop *loop, ev_timer *w, int revents)
{
        Fixture *f = w->data;
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:b}", "slow", true);

        f->slow_pending_seen = stats(f).requests_pending;
        assert_int_equal(httpd_respond_json(f->slow, 200, j), 0);
        assert_int_equal(httpd_respond_text(f->slow, 200, "twice"), -EALREADY);
        f->slow = httpd_request_unref(f->slow);
}

static int h_slow(HttpdRequest *r, void *userdata)
{
        F->slow = httpd_request_ref(r);
        ev_timer_set(&F->slow_timer, 0.03, 0.);
        ev_timer_start(F->loop, &F->slow_timer);
        return HTTPD_PENDING;
}

static void on_cancel(HttpdRequest *r, void *userdata)
{
        Fixture *f = userdata;

        assert_ptr_equal(r, f->held);
        assert_true(httpd_request_cancelled(r));
        f->cancels++;
}

static int h_hold(HttpdRequest *r, void *userdata)
{
        assert_null(F->held);
        F->held = httpd_request_ref(r);
        httpd_request_on_cancel(r, on_cancel, F);
        return HTTPD_PENDING;
}

/* Answers the held request from inside another request's handler (inside libmicrohttpd's run). */
static int h_release(HttpdRequest *r, void *userdata)
{
        assert_non_null(F->held);
        assert_int_equal(httpd_respond_text(F->held, 200, "released"), 0);
        F->held = httpd_request_unref(F->held);
        return httpd_respond_buf(r, 204, NULL, NULL, 0);
}

static int h_pending_without_ref(HttpdRequest *r, void *userdata)
{
        return HTTPD_PENDING;
}

static int h_no_response(HttpdRequest *r, void *userdata)
{
        return HTTPD_DONE;
}

static int h_failing(HttpdRequest *r, void *userdata)
{
        return -EIO;
}

static void on_stream_close(HttpdStream *st, void *userdata)
{
        Fixture *f = userdata;

        f->stream_closes++;
        for (size_t i = 0; i < STREAMS_MAX; i++)
                if (f->streams[i] == st) {
                        assert_int_equal(httpd_stream_write(st, "x", 1), -EPIPE);
                        f->streams[i] = httpd_stream_close(st);
                        return;
                }
        fail_msg("close callback for an unknown stream");
}

static int h_events(HttpdRequest *r, void *userdata)
{
        HttpdStreamOptions o = {
                .content_type = "text/event-stream",
                .buffer_max = F->stream_buffer,
                .on_close = on_stream_close,
                .userdata = F,
        };
        HttpdStream *st;
        size_t i;
        int k;

        for (i = 0; i < STREAMS_MAX && F->streams[i]; i++)
                ;
        assert_true(i < STREAMS_MAX);
        assert_int_equal(httpd_request_add_header(r, "Cache-Control", "no-cache"), 0);
        k = httpd_stream_start(r, 200, &o, &st);
        if (k == -EBUSY)
                return HTTPD_DONE;
        assert_int_equal(k, 0);
        assert_ptr_equal(httpd_stream_request(st), r);
        assert_int_equal(httpd_respond_text(r, 200, "no"), -EALREADY);
        F->streams[i] = st;
        return HTTPD_DONE;
}

static int auth(HttpdRequest *r, const HttpdRoute *route, void *userdata)
{
        const char *a = httpd_request_header(r, "Authorization");

        F->auth_calls++;
        if (route->action != 1)
                return 0;
        if (!a)
                return 401;
        if (!streq(a, "Bearer good"))
                return 403;
        httpd_request_set_context(r, strdup("alice"), free);
        return 0;
}

static const HttpdRoute routes[] = {
        HTTPD_ROUTE("GET", "/ping", h_ping),
        HTTPD_ROUTE("GET", "/v2/apps", h_describe),
        HTTPD_ROUTE("POST", "/v2/apps", h_echo),
        HTTPD_ROUTE("GET", "/v2/apps/{id*}", h_describe),
        HTTPD_ROUTE("PUT", "/v2/apps/{id*}", h_describe),
        HTTPD_ROUTE("POST", "/v2/apps/{id*}/restart", h_describe),
        HTTPD_ROUTE("GET", "/v2/deployments/{id}", h_describe),
        HTTPD_ROUTE("DELETE", "/v2/deployments/{id}/apps/*", h_describe),
        HTTPD_ROUTE("GET", "/q", h_query),
        HTTPD_ROUTE("POST", "/small", h_echo, .body_max = SMALL_BODY_MAX),
        HTTPD_ROUTE("GET", "/slow", h_slow),
        HTTPD_ROUTE("GET", "/hold", h_hold),
        HTTPD_ROUTE("POST", "/release", h_release),
        HTTPD_ROUTE("GET", "/events", h_events),
        HTTPD_ROUTE("GET", "/secret", h_describe, .action = 1),
        HTTPD_ROUTE("GET", "/bad/pending", h_pending_without_ref),
        HTTPD_ROUTE("GET", "/bad/silent", h_no_response),
        HTTPD_ROUTE("GET", "/bad/failing", h_failing),
};

/* ---- fixture ---- */

static void server_start(Fixture *f, HttpdOptions o)
{
        PacerError err = {};

        f->srv = httpd_free(f->srv);
        o.routes = routes;
        o.n_routes = ELEMENTSOF(routes);
        o.auth = auth;
        assert_int_equal(httpd_new(f->loop, &o, &f->srv, &err), 0);
        assert_true(httpd_port(f->srv) > 0);
        snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", httpd_port(f->srv));
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        F = f;
        f->loop = ev_loop_new(EVFLAG_AUTO);
        assert_non_null(f->loop);
        ev_timer_init(&f->safety, on_nothing, SAFETY_TICK_S, SAFETY_TICK_S);
        ev_timer_start(f->loop, &f->safety);
        ev_init(&f->slow_timer, on_slow);
        f->slow_timer.data = f;
        f->client = http_client_new(f->loop);
        assert_non_null(f->client);
        server_start(f, (HttpdOptions){});
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        for (size_t i = 0; i < STREAMS_MAX; i++)
                f->streams[i] = httpd_stream_close(f->streams[i]);
        f->held = httpd_request_unref(f->held);
        f->srv = httpd_free(f->srv);
        f->client = http_client_free(f->client);
        ev_timer_stop(f->loop, &f->safety);
        ev_timer_stop(f->loop, &f->slow_timer);
        ev_timer_stop(f->loop, &f->sse_timer);
        ev_timer_stop(f->loop, &f->fill_timer);
        f->slow = httpd_request_unref(f->slow);
        ev_loop_destroy(f->loop);
        free(f);
        F = NULL;
        return 0;
}

/* ---- the libcurl client ---- */

typedef struct Call {
        bool done;
        int result;
        long status;
        char *body;
        char content_type[128], allow[128], location[128], connection[64];
        Buf stream; /* streamed body */
        void (*on_chunk)(struct Call *c);
} Call;

static void call_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        Call *c = userdata;

        c->done = true;
        c->result = result;
        c->status = resp ? resp->status : 0;
        c->body = strdup(resp ? buf_str(&resp->body) : "");
        if (resp) {
                http_response_header(resp, "Content-Type", c->content_type, sizeof(c->content_type));
                http_response_header(resp, "Allow", c->allow, sizeof(c->allow));
                http_response_header(resp, "Location", c->location, sizeof(c->location));
                http_response_header(resp, "Connection", c->connection, sizeof(c->connection));
        }
}

static int call_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        Call *c = userdata;

        assert_int_equal(buf_append(&c->stream, data, len), 0);
        if (c->on_chunk)
                c->on_chunk(c);
        return 0;
}

static void call_start(Fixture *f, Call *c, const char *method, const char *path, const char *const *headers,
                       const char *body, bool streamed)
{
        char url[512];

        snprintf(url, sizeof(url), "%s%s", f->base, path);
        buf_init(&c->stream, RAW_IN_MAX);
        HttpRequestOptions o = {
                .method = method,
                .url = url,
                .headers = headers,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .timeout_ns = (int64_t)(WAIT_MAX_S * 1e9),
                .on_data = streamed ? call_data : NULL,
                .on_done = call_done,
                .userdata = c,
        };
        assert_int_equal(http_request_start(f->client, &o, NULL), 0);
}

static void call(Fixture *f, Call *c, const char *method, const char *path, const char *const *headers,
                 const char *body)
{
        call_start(f, c, method, path, headers, body, false);
        RUN_UNTIL(f, c->done);
        assert_int_equal(c->result, 0);
}

static void call_reset(Call *c)
{
        free(c->body);
        buf_done(&c->stream);
        *c = (Call){};
}

static json_t *call_json(const Call *c)
{
        json_t *j = json_loads(c->body, 0, NULL);

        assert_non_null(j);
        return j;
}

static void assert_message(const Call *c, const char *needle)
{
        _cleanup_(json_decrefp) json_t *j = call_json(c);
        const char *msg = json_string_value(json_object_get(j, "message"));

        assert_non_null(msg);
        if (!strstr(msg, needle))
                fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
        assert_string_equal(c->content_type, "application/json");
}

/* GETs path and checks the status; returns the JSON body. */
static json_t *get_json(Fixture *f, const char *method, const char *path, long status)
{
        Call c = {};
        json_t *j;

        call(f, &c, method, path, NULL, NULL);
        if (c.status != status)
                fail_msg("%s %s: status %ld, want %ld (%s)", method, path, c.status, status, c.body);
        j = call_json(&c);
        call_reset(&c);
        return j;
}

static void assert_field(json_t *j, const char *key, const char *want)
{
        const char *v = json_string_value(json_object_get(j, key));

        if (!want) {
                assert_null(v);
                return;
        }
        assert_non_null(v);
        assert_string_equal(v, want);
}

/* ---- the raw client ---- */

static void raw_update(Raw *r)
{
        int events = 0;

        if (r->reading && !r->eof)
                events |= EV_READ;
        if (!r->err && (r->out_off < r->out.len || r->fill_queued < r->fill_total ||
                        (r->fill_chunked && !r->fill_ended)))
                events |= EV_WRITE;
        ev_io_stop(r->f->loop, &r->io);
        if (events) {
                ev_io_set(&r->io, r->fd, events);
                ev_io_start(r->f->loop, &r->io);
        }
}

/* Queues the next piece of the generated body once the previous one is out. */
static bool raw_next_piece(Raw *r)
{
        static const char filler[FILL_PIECE] = { [0 ... FILL_PIECE - 1] = 'x' };
        size_t n;

        buf_reset(&r->out);
        r->out_off = 0;
        if (r->fill_queued >= r->fill_total) {
                if (!r->fill_chunked || r->fill_ended)
                        return false;
                r->fill_ended = true;
                assert_int_equal(buf_puts(&r->out, "0\r\n\r\n"), 0);
                return true;
        }
        n = MIN(r->fill_total - r->fill_queued, r->fill_chunked ? CHUNK_PIECE : FILL_PIECE);
        if (r->fill_chunked)
                assert_int_equal(buf_printf(&r->out, "%zx\r\n", n), 0);
        assert_int_equal(buf_append(&r->out, filler, n), 0);
        if (r->fill_chunked)
                assert_int_equal(buf_puts(&r->out, "\r\n"), 0);
        r->fill_queued += n;
        return true;
}

static void raw_flush(Raw *r)
{
        while (!r->err) {
                ssize_t k;

                if (r->out_off >= r->out.len && !raw_next_piece(r))
                        break;
                k = send(r->fd, r->out.data + r->out_off, r->out.len - r->out_off, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno != EAGAIN && errno != ENOTCONN)
                                r->err = errno;
                        break;
                }
                r->out_off += (size_t)k;
                r->sent += (size_t)k;
        }
}

static void raw_read(Raw *r)
{
        char tmp[16384];

        for (;;) {
                ssize_t k = recv(r->fd, tmp, sizeof(tmp), 0);

                if (k == 0) {
                        r->eof = true;
                        return;
                }
                if (k < 0) {
                        if (errno != EAGAIN) {
                                r->err = r->err ?: errno;
                                r->eof = true;
                        }
                        return;
                }
                assert_int_equal(buf_append(&r->in, tmp, (size_t)k), 0);
        }
}

static void on_raw(struct ev_loop *loop, ev_io *w, int revents)
{
        Raw *r = w->data;

        if (revents & EV_WRITE)
                raw_flush(r);
        if (revents & EV_READ)
                raw_read(r);
        raw_update(r);
}

static void raw_open(Fixture *f, Raw *r, int rcvbuf)
{
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(httpd_port(f->srv)),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };

        *r = (Raw){ .f = f, .reading = true };
        buf_init(&r->in, RAW_IN_MAX);
        buf_init(&r->out, RAW_OUT_MAX);
        r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(r->fd >= 0);
        if (rcvbuf > 0)
                assert_int_equal(setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
        assert_true(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
        ev_init(&r->io, on_raw);
        r->io.data = r;
        raw_update(r);
}

static void raw_send(Raw *r, const char *s)
{
        assert_int_equal(buf_puts(&r->out, s), 0);
        raw_update(r);
}

static void raw_fill(Raw *r, size_t total, bool chunked)
{
        r->fill_total = total;
        r->fill_chunked = chunked;
        raw_update(r);
}

static void raw_close(Raw *r)
{
        ev_io_stop(r->f->loop, &r->io);
        r->fd = safe_close(r->fd);
        buf_done(&r->in);
        buf_done(&r->out);
}

/* The status of the first response received, or 0. */
static int raw_status(const Raw *r)
{
        int status = 0;

        if (r->in.len < 12 || sscanf(buf_str(&r->in), "HTTP/1.%*c %d", &status) != 1)
                return 0;
        return status;
}

/* True once a whole response with a Content-Length body is in. */
static bool raw_complete(const Raw *r)
{
        const char *s = buf_str(&r->in), *end = strstr(s, "\r\n\r\n"),
                   *cl = strcasestr(s, "\r\nContent-Length:");

        if (!end || !cl || cl > end)
                return false;
        return r->in.len >= (size_t)(end + 4 - s) + strtoul(cl + STRLEN("\r\nContent-Length:"), NULL, 10);
}

/* Decodes a chunked response body into out: 1 once the last chunk is in, 0 before. */
static int dechunk(const Raw *r, Buf *out)
{
        const char *s = buf_str(&r->in), *end = s + r->in.len, *p = strstr(s, "\r\n\r\n");

        buf_reset(out);
        if (!p)
                return 0;
        for (p += 4;;) {
                char *line_end;
                unsigned long n = strtoul(p, &line_end, 16);

                if (line_end == p || end - line_end < 2 || !strneq(line_end, "\r\n", 2))
                        return 0;
                p = line_end + 2;
                if (n == 0)
                        return end - p >= 2 && strneq(p, "\r\n", 2);
                if ((size_t)(end - p) < n + 2)
                        return 0;
                assert_int_equal(buf_append(out, p, n), 0);
                p += n + 2;
        }
}

static void raw_request(Fixture *f, const char *request, int want_status)
{
        Raw r;

        raw_open(f, &r, 0);
        raw_send(&r, request);
        RUN_UNTIL(f, raw_complete(&r) || r.eof);
        if (raw_status(&r) != want_status)
                fail_msg("status %d, want %d for %.60s...: %.200s", raw_status(&r), want_status, request,
                         buf_str(&r.in));
        raw_close(&r);
}

/* ---- tests ---- */

static void assert_bad_route(const HttpdRoute *rt, const char *needle)
{
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        HttpdServer *s = NULL;
        PacerError err = {};

        assert_int_equal(httpd_new(loop, &(HttpdOptions){ .routes = rt, .n_routes = 1 }, &s, &err), -EINVAL);
        assert_null(s);
        if (!strstr(err.msg, needle))
                fail_msg("error \"%s\" lacks \"%s\"", err.msg, needle);
        ev_loop_destroy(loop);
}

static void test_bad_options(void **state)
{
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        HttpdServer *s = NULL;
        PacerError err = {};

        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "v2/apps", h_ping), "must start with '/'");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2//apps", h_ping), "empty segment");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2/apps/", h_ping), "trailing '/'");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2/{id", h_ping), "bad capture");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2/{}", h_ping), "bad capture");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2/{a-b}", h_ping), "bad capture");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/{a}/{a}", h_ping), "appears twice");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2/*/x/{r*}", h_ping), "more than one");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2/a*b", h_ping), "'*' at byte 5");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/v2/a%20", h_ping), "'%'");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("G ET", "/", h_ping), "not an HTTP method");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE(NULL, "/", h_ping), "not an HTTP method");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/", NULL), "no handler");
        assert_bad_route(&(HttpdRoute)HTTPD_ROUTE("GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_ping),
                         "more than 8");

        assert_int_equal(httpd_new(loop, &(HttpdOptions){ .listen = "localhost:80" }, &s, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "not an IPv4 address"));
        assert_int_equal(httpd_new(loop, &(HttpdOptions){ .listen = "127.0.0.1:65536" }, &s, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "bad port"));
        assert_int_equal(httpd_new(loop, &(HttpdOptions){ .listen = "127.0.0.1" }, &s, &err), -EINVAL);
        assert_int_equal(httpd_new(loop, &(HttpdOptions){ .listen = "[::1:80" }, &s, &err), -EINVAL);
        assert_int_equal(httpd_new(loop, &(HttpdOptions){ .header_max = 100 }, &s, &err), -EINVAL);
        assert_null(s);

        /* A port in use: the error says where. */
        {
                HttpdServer *a = NULL;
                char listen[64];

                assert_int_equal(httpd_new(loop, &(HttpdOptions){}, &a, &err), 0);
                snprintf(listen, sizeof(listen), "127.0.0.1:%u", httpd_port(a));
                assert_true(httpd_new(loop, &(HttpdOptions){ .listen = listen }, &s, &err) < 0);
                assert_null(s);
                assert_non_null(strstr(err.msg, listen));
                httpd_free(a);
        }
        assert_null(httpd_free(NULL));
        assert_string_equal(httpd_limit_to_string(HTTPD_LIMIT_BODY), "body");
        assert_null(httpd_limit_to_string(_HTTPD_LIMIT_MAX));
        ev_loop_destroy(loop);
}

static void test_routing(void **state)
{
        Fixture *f = *state;
        json_t *j;
        Call c = {};

        call(f, &c, "GET", "/ping", NULL, NULL);
        assert_int_equal(c.status, 200);
        assert_string_equal(c.body, "pong");
        assert_string_equal(c.content_type, "text/plain; charset=utf-8");
        call_reset(&c);

        j = get_json(f, "GET", "/v2/apps", 200);
        assert_field(j, "pattern", "/v2/apps");
        json_decref(j);
        j = get_json(f, "GET", "/v2/apps/", 200);
        assert_field(j, "pattern", "/v2/apps");
        json_decref(j);

        /* App ids keep their slashes; segments are decoded (%2F too). */
        j = get_json(f, "GET", "/v2/apps/prod/web/api", 200);
        assert_field(j, "pattern", "/v2/apps/{id*}");
        assert_field(j, "id", "prod/web/api");
        assert_field(j, "path", "/v2/apps/prod/web/api");
        json_decref(j);
        j = get_json(f, "GET", "/v2/apps/prod%2Fweb/caf%C3%A9%20x", 200);
        assert_field(j, "id", "prod/web/café x");
        assert_field(j, "path", "/v2/apps/prod%2Fweb/caf%C3%A9%20x");
        json_decref(j);

        /* A more literal pattern wins for its method; other methods fall to the app route. */
        j = get_json(f, "POST", "/v2/apps/prod/web/restart", 200);
        assert_field(j, "pattern", "/v2/apps/{id*}/restart");
        assert_field(j, "id", "prod/web");
        json_decref(j);
        j = get_json(f, "GET", "/v2/apps/prod/web/restart", 200);
        assert_field(j, "pattern", "/v2/apps/{id*}");
        assert_field(j, "id", "prod/web/restart");
        json_decref(j);
        j = get_json(f, "PUT", "/v2/apps/x", 200);
        assert_field(j, "method", "PUT");
        json_decref(j);
        /* restart needs an id before it */
        j = get_json(f, "POST", "/v2/apps/restart", 405);
        json_decref(j);

        j = get_json(f, "GET", "/v2/deployments/d-1", 200);
        assert_field(j, "id", "d-1");
        assert_field(j, "rest", NULL);
        json_decref(j);
        j = get_json(f, "DELETE", "/v2/deployments/d-1/apps/prod/web", 200);
        assert_field(j, "pattern", "/v2/deployments/{id}/apps/*");
        assert_field(j, "id", "d-1");
        assert_field(j, "rest", "prod/web");
        json_decref(j);

        /* {id} is one segment: a second one is no match. */
        call(f, &c, "GET", "/v2/deployments/d-1/extra", NULL, NULL);
        assert_int_equal(c.status, 404);
        assert_message(&c, "no route for GET /v2/deployments/d-1/extra");
        call_reset(&c);
        call(f, &c, "GET", "/nowhere", NULL, NULL);
        assert_int_equal(c.status, 404);
        call_reset(&c);
        call(f, &c, "GET", "/v2/apps//", NULL, NULL);
        assert_int_equal(c.status, 404);
        call_reset(&c);

        call(f, &c, "DELETE", "/v2/apps", NULL, NULL);
        assert_int_equal(c.status, 405);
        assert_string_equal(c.allow, "GET, POST, HEAD");
        assert_message(&c, "method DELETE not allowed");
        call_reset(&c);
        call(f, &c, "PATCH", "/v2/deployments/d-1", NULL, NULL);
        assert_int_equal(c.status, 405);
        assert_string_equal(c.allow, "GET, HEAD");
        call_reset(&c);

        /* HEAD is served by the GET route, without a body. */
        call(f, &c, "HEAD", "/ping", NULL, NULL);
        assert_int_equal(c.status, 200);
        assert_string_equal(c.body, "");
        call_reset(&c);

        /* Bad encodings are the client's fault, said precisely. */
        call(f, &c, "GET", "/v2/apps/%zz", NULL, NULL);
        assert_int_equal(c.status, 400);
        assert_message(&c, "invalid percent-encoding in the path at byte 9");
        call_reset(&c);
        call(f, &c, "GET", "/v2/apps/a%0", NULL, NULL);
        assert_int_equal(c.status, 400);
        call_reset(&c);
        call(f, &c, "GET", "/v2/apps/a%00b", NULL, NULL);
        assert_int_equal(c.status, 400);
        call_reset(&c);
        call(f, &c, "GET", "/v2/apps/%ff%fe", NULL, NULL);
        assert_int_equal(c.status, 400);
        assert_message(&c, "path segment 3 is not valid UTF-8");
        call_reset(&c);
        assert_int_equal(stats(f).limit_hits[HTTPD_LIMIT_PATH], 0);
}

static void test_path_limits(void **state)
{
        Fixture *f = *state;
        Buf path = BUF_INIT(SIZE_MAX);
        Call c = {};

        assert_int_equal(buf_puts(&path, "/v2/apps"), 0);
        for (unsigned i = 0; i < HTTPD_PATH_SEGMENTS_MAX; i++)
                assert_int_equal(buf_puts(&path, "/s"), 0);
        call(f, &c, "GET", buf_str(&path), NULL, NULL);
        assert_int_equal(c.status, 414);
        assert_message(&c, "more than 64 segments");
        call_reset(&c);

        buf_reset(&path);
        assert_int_equal(buf_puts(&path, "/q?"), 0);
        for (unsigned i = 0; i <= HTTPD_QUERY_PARAMS_MAX; i++)
                assert_int_equal(buf_printf(&path, "k%u=v&", i), 0);
        call(f, &c, "GET", buf_str(&path), NULL, NULL);
        assert_int_equal(c.status, 400);
        assert_message(&c, "more than 64 query parameters");
        call_reset(&c);
        assert_int_equal(stats(f).limit_hits[HTTPD_LIMIT_PATH], 2);
        assert_int_equal(stats(f).handler_calls, 0);
        buf_done(&path);
}

static void test_query(void **state)
{
        Fixture *f = *state;
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_(json_decrefp) json_t *want = NULL;
        Call c = {};

        j = get_json(f, "GET",
                     "/q?a=1&b=x%20y&a=2&flag&plus=a+b&&check=%E2%9C%93&empty=&force=true&k%3D=v%26", 200);
        want = json_pack("[[s,s],[s,s],[s,s],[s,s],[s,s],[s,s],[s,s],[s,s],[s,s]]", "a", "1", "b", "x y",
                         "a", "2", "flag", "", "plus", "a b", "check", "✓", "empty", "", "force", "true",
                         "k=", "v&");
        assert_true(json_equal(json_object_get(j, "pairs"), want));
        assert_true(json_is_true(json_object_get(j, "force")));
        assert_field(j, "second_a", "2");
        json_decref(TAKE_PTR(j));

        j = get_json(f, "GET", "/q?force", 200);
        assert_true(json_is_true(json_object_get(j, "force")));
        json_decref(TAKE_PTR(j));
        j = get_json(f, "GET", "/q?force=false", 200);
        assert_true(json_is_false(json_object_get(j, "force")));
        json_decref(TAKE_PTR(j));
        j = get_json(f, "GET", "/q", 200);
        assert_int_equal(json_array_size(json_object_get(j, "pairs")), 0);

        call(f, &c, "GET", "/q?force=maybe", NULL, NULL);
        assert_int_equal(c.status, 400);
        assert_message(&c, "force: want true or false, got \"maybe\"");
        call_reset(&c);
        call(f, &c, "GET", "/q?ok=1&bad=%zz", NULL, NULL);
        assert_int_equal(c.status, 400);
        assert_message(&c, "query parameter 2: invalid percent-encoding");
        call_reset(&c);
        call(f, &c, "GET", "/q?bad=%C3", NULL, NULL);
        assert_int_equal(c.status, 400);
        assert_message(&c, "query parameter 1 is not valid UTF-8");
        call_reset(&c);
}

static void test_json_echo(void **state)
{
        Fixture *f = *state;
        static const char *const json_header[] = { "Content-Type: application/json", NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        Call c = {};

        call(f, &c, "POST", "/v2/apps", json_header,
             "{\"id\":\"/web\",\"instances\":3,\"env\":{\"A\":\"ü\"}}");
        assert_int_equal(c.status, 201);
        assert_string_equal(c.location, "/v2/apps/echo");
        assert_string_equal(c.content_type, "application/json");
        j = call_json(&c);
        assert_field(j, "id", "/web");
        assert_int_equal(json_integer_value(json_object_get(j, "instances")), 3);
        call_reset(&c);

        call(f, &c, "POST", "/v2/apps", json_header, "{\"id\": ");
        assert_int_equal(c.status, 400);
        assert_message(&c, "invalid JSON");
        call_reset(&c);

        /* Under the route's own cap: fine. */
        call(f, &c, "POST", "/small", json_header, "[1,2,3]");
        assert_int_equal(c.status, 201);
        assert_string_equal(c.body, "[1,2,3]");
        call_reset(&c);
}

/* The body's declared size is over the cap: 413 before a byte of it is read, and the connection
 * is dropped rather than drained. */
static void test_body_too_large_by_length(void **state)
{
        Fixture *f = *state;
        _cleanup_(json_decrefp) json_t *j = NULL;
        char request[256];
        Raw r;

        snprintf(request, sizeof(request),
                 "POST /v2/apps HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 "Content-Length: %u\r\n\r\n",
                 HUGE_BODY);
        raw_open(f, &r, 0);
        raw_send(&r, request);
        RUN_UNTIL(f, raw_complete(&r) || r.eof);
        assert_int_equal(raw_status(&r), 413);
        j = json_loads(strstr(buf_str(&r.in), "\r\n\r\n") + 4, 0, NULL);
        assert_non_null(j);
        assert_non_null(strstr(json_string_value(json_object_get(j, "message")),
                               "request body of 10485760 bytes is over the limit of 1048576 bytes"));
        assert_non_null(strcasestr(buf_str(&r.in), "Connection: close"));

        /* Now push the body: the server neither reads it nor keeps the connection. */
        raw_fill(&r, HUGE_BODY, false);
        RUN_UNTIL(f, r.err || r.eof || r.fill_queued >= HUGE_BODY);
        RUN_UNTIL(f, r.err || r.eof);
        assert_true(r.sent < HUGE_BODY / 2);
        assert_int_equal(stats(f).handler_calls, 0);
        assert_int_equal(stats(f).body_bytes, 0);
        assert_int_equal(stats(f).limit_hits[HTTPD_LIMIT_BODY], 1);
        raw_close(&r);
        RUN_UNTIL(f, stats(f).connections_open == 0);

        /* The route's own cap applies before the server's. */
        snprintf(request, sizeof(request), "POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n",
                 SMALL_BODY_MAX + 1);
        raw_request(f, request, 413);
        assert_int_equal(stats(f).handler_calls, 0);
        assert_int_equal(stats(f).body_bytes, 0);
}

/* A chunked body has no declared size: 413 as soon as it passes the cap. */
static void test_body_too_large_chunked(void **state)
{
        Fixture *f = *state;
        Raw r;

        raw_open(f, &r, 0);
        raw_send(&r, "POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        raw_fill(&r, HUGE_BODY, true);
        RUN_UNTIL(f, r.eof);
        assert_int_equal(raw_status(&r), 413);
        assert_non_null(strstr(buf_str(&r.in), "over the limit of 4096 bytes"));
        assert_true(r.sent < HUGE_BODY / 2);
        assert_int_equal(stats(f).handler_calls, 0);
        assert_true(stats(f).body_bytes <= SMALL_BODY_MAX + CHUNK_PIECE);
        raw_close(&r);

        /* A chunked body under the cap arrives whole. */
        raw_open(f, &r, 0);
        raw_send(&r, "POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\n{\"a\"\r\n3\r\n:[1\r\n2\r\n]}\r\n0\r\n\r\n");
        RUN_UNTIL(f, raw_complete(&r) || r.eof);
        assert_int_equal(raw_status(&r), 201);
        assert_non_null(strstr(buf_str(&r.in), "\r\n\r\n{\"a\":[1]}"));
        assert_int_equal(stats(f).handler_calls, 1);
        raw_close(&r);
}

static void test_async_after_timer(void **state)
{
        Fixture *f = *state;
        Call c = {};

        call(f, &c, "GET", "/slow", NULL, NULL);
        assert_int_equal(c.status, 200);
        assert_string_equal(c.body, "{\"slow\":true}");
        assert_int_equal(f->slow_pending_seen, 1);
        assert_int_equal(stats(f).requests_pending, 0);
        call_reset(&c);
}

static void test_async_from_another_handler(void **state)
{
        Fixture *f = *state;
        Call held = {}, release = {};

        call_start(f, &held, "GET", "/hold", NULL, NULL, false);
        RUN_UNTIL(f, f->held);
        assert_int_equal(stats(f).requests_pending, 1);
        call(f, &release, "POST", "/release", NULL, NULL);
        assert_int_equal(release.status, 204);
        RUN_UNTIL(f, held.done);
        assert_int_equal(held.status, 200);
        assert_string_equal(held.body, "released");
        assert_int_equal(f->cancels, 0);
        assert_int_equal(stats(f).requests_pending, 0);
        call_reset(&held);
        call_reset(&release);
}

/* A parked request answered later with a stream. */
static void test_stream_started_later(void **state)
{
        Fixture *f = *state;
        HttpdStreamOptions o = { .content_type = "text/event-stream",
                                 .on_close = on_stream_close,
                                 .userdata = f };
        Call c = {};

        call_start(f, &c, "GET", "/hold", NULL, NULL, true);
        RUN_UNTIL(f, f->held);
        assert_int_equal(httpd_stream_start(f->held, 200, &o, &f->streams[0]), 0);
        f->held = httpd_request_unref(f->held);
        assert_int_equal(httpd_stream_write(f->streams[0], "data: late\n\n", 12), 0);
        RUN_UNTIL(f, c.stream.len == 12);
        assert_false(c.done);
        f->streams[0] = httpd_stream_close_with(f->streams[0], "data: bye\n\n", 11);
        RUN_UNTIL(f, c.done);
        assert_int_equal(c.status, 200);
        assert_string_equal(buf_str(&c.stream), "data: late\n\ndata: bye\n\n");
        assert_int_equal(f->cancels, 0);
        assert_int_equal(f->stream_closes, 0);
        call_reset(&c);
}

static void test_disconnect_cancels(void **state)
{
        Fixture *f = *state;
        HttpdRequest *r;
        Raw raw;

        raw_open(f, &raw, 0);
        raw_send(&raw, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
        RUN_UNTIL(f, f->held);
        raw_close(&raw);
        RUN_UNTIL(f, f->cancels > 0);
        r = TAKE_PTR(f->held);
        /* A late answer goes nowhere, safely. */
        assert_int_equal(httpd_respond_text(r, 200, "late"), -ECANCELED);
        assert_int_equal(httpd_respond_error(r, 500, "late"), -ECANCELED);
        assert_null(httpd_request_header(r, "Host"));
        assert_string_equal(httpd_request_path(r), "/hold");
        RUN_UNTIL(f, stats(f).connections_open == 0);
        assert_int_equal(f->cancels, 1);
        assert_int_equal(stats(f).requests_pending, 0);
        assert_int_equal(httpd_respond_text(r, 200, "later"), -ECANCELED);
        httpd_request_unref(r);
        assert_int_equal(f->cancels, 1);

        /* The server still serves. */
        raw_request(f, "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n", 200);
}

static void sse_write_next(Fixture *f)
{
        char ev[64];

        f->sse_written++;
        snprintf(ev, sizeof(ev), "id: %d\ndata: {\"n\":%d}\n\n", f->sse_written, f->sse_written);
        assert_int_equal(httpd_stream_write(f->streams[0], ev, strlen(ev)), 0);
        if (f->sse_written == SSE_EVENTS)
                f->streams[0] = httpd_stream_close(f->streams[0]);
}

static void on_sse_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        sse_write_next(w->data);
}

/* The next event goes out only after the client saw the previous one: the stream delivers as it
 * goes rather than at the end. */
static void sse_chunk(Call *c)
{
        char want[32];

        snprintf(want, sizeof(want), "data: {\"n\":%d}\n\n", F->sse_written);
        if (F->sse_written < SSE_EVENTS && strstr(buf_str(&c->stream), want)) {
                ev_timer_set(&F->sse_timer, 0.01, 0.);
                ev_timer_start(F->loop, &F->sse_timer);
        }
}

static void test_sse_stream(void **state)
{
        Fixture *f = *state;
        Call c = { .on_chunk = sse_chunk };

        ev_init(&f->sse_timer, on_sse_timer);
        f->sse_timer.data = f;
        call_start(f, &c, "GET", "/events", NULL, NULL, true);
        RUN_UNTIL(f, f->streams[0]);
        assert_int_equal(stats(f).streams_open, 1);
        sse_write_next(f);
        RUN_UNTIL(f, c.done);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.status, 200);
        assert_string_equal(c.content_type, "text/event-stream");
        assert_string_equal(buf_str(&c.stream), "id: 1\ndata: {\"n\":1}\n\nid: 2\ndata: {\"n\":2}\n\n"
                                                "id: 3\ndata: {\"n\":3}\n\n");
        assert_int_equal(f->sse_written, SSE_EVENTS);
        assert_int_equal(f->stream_closes, 0);
        RUN_UNTIL(f, stats(f).streams_open == 0);
        call_reset(&c);
}

static void on_fill_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Fixture *f = w->data;
        char data[SLOW_WRITE];
        int k;

        memset(data, 'e', sizeof(data));
        memcpy(data, "data: ", 6);
        data[sizeof(data) - 2] = data[sizeof(data) - 1] = '\n';
        for (unsigned i = 0; i < SLOW_WRITES_PER_TICK; i++) {
                k = httpd_stream_write(f->streams[0], data, sizeof(data));
                if (k == -ENOBUFS) {
                        f->enobufs = true;
                        ev_timer_stop(loop, w);
                        return;
                }
                assert_int_equal(k, 0);
                f->slow_written += sizeof(data);
        }
}

/* A subscriber that stops reading fills the stream's queue: the writer hears -ENOBUFS, can cut it
 * with a last event past the cap, and the client gets that event once it reads again. */
static void test_stream_slow_subscriber(void **state)
{
        Fixture *f = *state;
        static const char cut[] = "event: cut\ndata: too slow\n\n";
        Buf payload = BUF_INIT(RAW_IN_MAX);
        Raw r;

        f->stream_buffer = SLOW_STREAM_MAX;
        raw_open(f, &r, 4096);
        r.reading = false;
        raw_send(&r, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
        RUN_UNTIL(f, f->streams[0]);

        ev_init(&f->fill_timer, on_fill_timer);
        f->fill_timer.data = f;
        ev_timer_set(&f->fill_timer, 0.001, 0.001);
        ev_timer_start(f->loop, &f->fill_timer);
        RUN_UNTIL(f, f->enobufs);
        assert_true(httpd_stream_queued(f->streams[0]) <= SLOW_STREAM_MAX);
        assert_true(httpd_stream_queued(f->streams[0]) > SLOW_STREAM_MAX - SLOW_WRITE);
        assert_int_equal(httpd_stream_write(f->streams[0], "x", 1) == -ENOBUFS ||
                                 httpd_stream_queued(f->streams[0]) < SLOW_STREAM_MAX,
                         true);
        assert_true(stats(f).limit_hits[HTTPD_LIMIT_STREAM_BUFFER] >= 1);

        f->streams[0] = httpd_stream_close_with(f->streams[0], cut, strlen(cut));
        r.reading = true;
        raw_update(&r);
        RUN_UNTIL(f, r.eof || dechunk(&r, &payload) > 0);
        assert_int_equal(r.err, 0);
        assert_int_equal(raw_status(&r), 200);
        /* Everything written arrived, in order, then the last event. */
        assert_int_equal(payload.len, f->slow_written + strlen(cut));
        assert_string_equal(payload.data + f->slow_written, cut);
        assert_int_equal(f->stream_closes, 0);
        buf_done(&payload);
        raw_close(&r);
}

static void test_idle_streams_cost_nothing(void **state)
{
        Fixture *f = *state;
        static Raw raws[IDLE_STREAMS];
        struct rusage before, after;
        int64_t used_us;
        unsigned answered;

        for (size_t i = 0; i < IDLE_STREAMS; i++) {
                raw_open(f, &raws[i], 0);
                raw_send(&raws[i], "GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        RUN_UNTIL(f, stats(f).streams_open == IDLE_STREAMS);
        /* Say something on each stream so every client has its headers and a first event. */
        for (size_t i = 0; i < IDLE_STREAMS; i++)
                assert_int_equal(httpd_stream_write(f->streams[i], ": hello\n\n", 9), 0);
        do {
                answered = 0;
                for (size_t i = 0; i < IDLE_STREAMS; i++)
                        answered +=
                                raw_status(&raws[i]) == 200 && strstr(buf_str(&raws[i].in), ": hello\n\n");
                if (answered < IDLE_STREAMS)
                        ev_run(f->loop, EVRUN_ONCE);
        } while (answered < IDLE_STREAMS);
        assert_int_equal(thread_count(), 1);

        assert_int_equal(getrusage(RUSAGE_SELF, &before), 0);
        run_for(f, IDLE_WINDOW_S);
        assert_int_equal(getrusage(RUSAGE_SELF, &after), 0);
        used_us = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1000000LL +
                  (after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
                  (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000000LL +
                  (after.ru_stime.tv_usec - before.ru_stime.tv_usec);
        print_message("%d idle streams used %" PRId64 " us of CPU in %.1f s\n", IDLE_STREAMS, used_us,
                      IDLE_WINDOW_S);
        assert_true(used_us < IDLE_CPU_MAX_US);
        assert_int_equal(stats(f).streams_open, IDLE_STREAMS);

        /* Clients leaving are noticed although their streams are parked. */
        for (size_t i = 0; i < IDLE_STREAMS; i++)
                raw_close(&raws[i]);
        RUN_UNTIL(f, f->stream_closes == IDLE_STREAMS);
        RUN_UNTIL(f, stats(f).streams_open == 0 && stats(f).connections_open == 0);
        for (size_t i = 0; i < STREAMS_MAX; i++)
                assert_null(f->streams[i]);
}

static void test_max_streams(void **state)
{
        Fixture *f = *state;
        Raw a, b, c;

        server_start(f, (HttpdOptions){ .max_streams = 2 });
        raw_open(f, &a, 0);
        raw_open(f, &b, 0);
        raw_send(&a, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
        raw_send(&b, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
        RUN_UNTIL(f, stats(f).streams_open == 2);
        raw_open(f, &c, 0);
        raw_send(&c, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
        RUN_UNTIL(f, raw_complete(&c) || c.eof);
        assert_int_equal(raw_status(&c), 503);
        assert_non_null(strstr(buf_str(&c.in), "too many open streams (limit 2)"));
        assert_int_equal(stats(f).limit_hits[HTTPD_LIMIT_STREAMS], 1);
        raw_close(&a);
        raw_close(&b);
        raw_close(&c);
        RUN_UNTIL(f, stats(f).streams_open == 0);
}

static void test_keepalive_reuse(void **state)
{
        Fixture *f = *state;
        Call c = {};

        for (int i = 0; i < 3; i++) {
                call(f, &c, "GET", "/ping", NULL, NULL);
                assert_int_equal(c.status, 200);
                call_reset(&c);
        }
        /* An error answer after a small body keeps the connection too. */
        call(f, &c, "POST", "/nowhere", NULL, "{\"x\":1}");
        assert_int_equal(c.status, 404);
        call_reset(&c);
        call(f, &c, "GET", "/ping", NULL, NULL);
        call_reset(&c);
        assert_int_equal(stats(f).connections_accepted, 1);
        RUN_UNTIL(f, stats(f).requests == 5);

        /* Two pipelined requests on a raw connection: two answers. */
        {
                Raw r;

                raw_open(f, &r, 0);
                raw_send(&r, "GET /ping HTTP/1.1\r\nHost: t\r\n\r\nGET /q?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
                RUN_UNTIL(f, strstr(buf_str(&r.in), "[\"x\",\"1\"]"));
                assert_non_null(strstr(buf_str(&r.in), "pong"));
                raw_close(&r);
        }
}

static void test_max_connections(void **state)
{
        Fixture *f = *state;
        static Raw flood[HTTPD_CONNECTIONS_GRACE + 2];
        Raw idle[3], extra;
        uint64_t accepted;

        server_start(f, (HttpdOptions){ .max_connections = 3 });
        for (size_t i = 0; i < ELEMENTSOF(idle); i++)
                raw_open(f, &idle[i], 0);
        RUN_UNTIL(f, stats(f).connections_open == 3);

        raw_open(f, &extra, 0);
        raw_send(&extra, "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n");
        RUN_UNTIL(f, extra.eof);
        assert_int_equal(raw_status(&extra), 503);
        assert_non_null(strstr(buf_str(&extra.in), "too many connections (limit 3)"));
        assert_non_null(strcasestr(buf_str(&extra.in), "Connection: close"));
        assert_int_equal(stats(f).limit_hits[HTTPD_LIMIT_CONNECTIONS], 1);
        assert_int_equal(stats(f).handler_calls, 0);
        raw_close(&extra);

        /* Once a slot frees up, requests are served again. */
        raw_close(&idle[0]);
        RUN_UNTIL(f, stats(f).connections_open == 2);
        raw_request(f, "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n", 200);

        /* Past the grace, libmicrohttpd stops accepting: the last one waits in the listen backlog,
         * unanswered, until a connection closes. */
        for (size_t i = 0; i < ELEMENTSOF(flood); i++)
                raw_open(f, &flood[i], 0);
        RUN_UNTIL(f, stats(f).connections_open == 3 + HTTPD_CONNECTIONS_GRACE);
        accepted = stats(f).connections_accepted;
        raw_send(&flood[ELEMENTSOF(flood) - 1], "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n");
        run_for(f, 0.2);
        assert_int_equal(stats(f).connections_accepted, accepted);
        assert_int_equal(flood[ELEMENTSOF(flood) - 1].in.len, 0);
        raw_close(&flood[0]);
        RUN_UNTIL(f, raw_complete(&flood[ELEMENTSOF(flood) - 1]));
        assert_int_equal(raw_status(&flood[ELEMENTSOF(flood) - 1]), 503);
        assert_int_equal(stats(f).connections_accepted, accepted + 1);
        for (size_t i = 1; i < ELEMENTSOF(flood); i++)
                raw_close(&flood[i]);
        for (size_t i = 1; i < ELEMENTSOF(idle); i++)
                raw_close(&idle[i]);
}

/* Idle connections are closed after the timeout; a parked request is not. */
static void test_idle_timeout(void **state)
{
        Fixture *f = *state;
        Call held = {};
        double t0;
        Raw r;

        server_start(f, (HttpdOptions){ .idle_timeout_s = 1 });
        call_start(f, &held, "GET", "/hold", NULL, NULL, false);
        RUN_UNTIL(f, f->held);
        t0 = ev_time();
        raw_open(f, &r, 0);
        RUN_UNTIL(f, r.eof);
        assert_true(ev_time() - t0 >= 0.5);
        raw_close(&r);
        assert_false(held.done);
        assert_int_equal(f->cancels, 0);

        /* A client that leaves mid-request is dropped by the timeout at the latest (libmicrohttpd
         * 0.9.75 can miss a FIN that arrives with the data). */
        raw_open(f, &r, 0);
        raw_send(&r, "POST /v2/apps HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"id\":");
        RUN_UNTIL(f, stats(f).body_bytes == 6);
        raw_close(&r);
        RUN_UNTIL(f, stats(f).requests == 1);
        assert_int_equal(stats(f).handler_calls, 1); /* /hold only */
        assert_false(held.done);

        assert_int_equal(httpd_respond_text(f->held, 200, "still here"), 0);
        f->held = httpd_request_unref(f->held);
        RUN_UNTIL(f, held.done);
        assert_int_equal(held.status, 200);
        call_reset(&held);
}

static void test_malformed_requests(void **state)
{
        Fixture *f = *state;
        Buf big = BUF_INIT(SIZE_MAX);
        Raw r;

        raw_open(f, &r, 0);
        raw_send(&r, "GARBAGE\r\n\r\n");
        RUN_UNTIL(f, r.eof);
        raw_close(&r);

        raw_request(f, "GET /ping HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n", 400);
        raw_request(f, "GET /v2/apps/\xff\xfe HTTP/1.1\r\nHost: t\r\n\r\n", 400);
        raw_request(f, "GET http://elsewhere/ping HTTP/1.1\r\nHost: t\r\n\r\n", 400);

        /* A header block over the limit. */
        assert_int_equal(buf_puts(&big, "GET /ping HTTP/1.1\r\nHost: t\r\nX-Big: "), 0);
        for (unsigned i = 0; i < HTTPD_HEADER_MAX_DEFAULT + 1024; i++)
                assert_int_equal(buf_putc(&big, 'z'), 0);
        assert_int_equal(buf_puts(&big, "\r\n\r\n"), 0);
        raw_request(f, buf_str(&big), 431);

        /* A request line over the limit. */
        buf_reset(&big);
        assert_int_equal(buf_puts(&big, "GET /"), 0);
        for (unsigned i = 0; i < HTTPD_HEADER_MAX_DEFAULT + 1024; i++)
                assert_int_equal(buf_putc(&big, 'a'), 0);
        assert_int_equal(buf_puts(&big, " HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        raw_request(f, buf_str(&big), 414);
        buf_done(&big);
        assert_int_equal(stats(f).limit_hits[HTTPD_LIMIT_HEADER], 2);

        assert_int_equal(stats(f).handler_calls, 0);
        raw_request(f, "GET /ping HTTP/1.1\r\nHost: t\r\n\r\n", 200);
}

static void test_auth(void **state)
{
        Fixture *f = *state;
        static const char *const good[] = { "Authorization: Bearer good", NULL };
        static const char *const bad[] = { "Authorization: Bearer bad", NULL };
        _cleanup_(json_decrefp) json_t *j = NULL;
        Call c = {};

        call(f, &c, "GET", "/secret", NULL, NULL);
        assert_int_equal(c.status, 401);
        assert_message(&c, "authentication required");
        call_reset(&c);
        call(f, &c, "GET", "/secret", bad, NULL);
        assert_int_equal(c.status, 403);
        assert_message(&c, "not authorized");
        call_reset(&c);
        assert_int_equal(stats(f).handler_calls, 0);

        call(f, &c, "GET", "/secret", good, NULL);
        assert_int_equal(c.status, 200);
        j = call_json(&c);
        assert_field(j, "principal", "alice");
        call_reset(&c);
        assert_int_equal(f->auth_calls, 3);

        /* Not for unrouted requests. */
        call(f, &c, "GET", "/nowhere", good, NULL);
        assert_int_equal(c.status, 404);
        call_reset(&c);
        assert_int_equal(f->auth_calls, 3);
}

static void test_handler_mistakes(void **state)
{
        Fixture *f = *state;
        Call c = {};

        call(f, &c, "GET", "/bad/pending", NULL, NULL);
        assert_int_equal(c.status, 500);
        call_reset(&c);
        call(f, &c, "GET", "/bad/silent", NULL, NULL);
        assert_int_equal(c.status, 500);
        call_reset(&c);
        call(f, &c, "GET", "/bad/failing", NULL, NULL);
        assert_int_equal(c.status, 500);
        assert_message(&c, "internal server error: Input/output error");
        call_reset(&c);
        assert_int_equal(stats(f).requests_pending, 0);
}

/* Freeing the server with a parked request and an open stream: each owner hears once, and what
 * they still hold stays safe to use and release. */
static void test_free_with_pending(void **state)
{
        Fixture *f = *state;
        HttpdRequest *held;
        Raw a, b;

        raw_open(f, &a, 0);
        raw_send(&a, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
        raw_open(f, &b, 0);
        raw_send(&b, "GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
        RUN_UNTIL(f, f->held && f->streams[0]);

        f->srv = httpd_free(f->srv);
        assert_int_equal(f->cancels, 1);
        assert_int_equal(f->stream_closes, 1);
        assert_null(f->streams[0]); /* released by its close callback */
        held = TAKE_PTR(f->held);
        assert_true(httpd_request_cancelled(held));
        assert_int_equal(httpd_respond_text(held, 200, "late"), -ECANCELED);
        assert_string_equal(httpd_request_path(held), "/hold");
        httpd_request_unref(held);

        RUN_UNTIL(f, a.eof && b.eof);
        raw_close(&a);
        raw_close(&b);
}

static void test_access_log(void **state)
{
        Fixture *f = *state;
        int fd = memfd_create("log", MFD_CLOEXEC);
        char line[4096] = {};
        LogLevel old = log_get_level();
        Call c = {};

        assert_true(fd >= 0);
        log_set_fd(fd);
        log_set_level(LOG_LEVEL_DEBUG);
        call(f, &c, "GET", "/ping?x=1", NULL, NULL);
        call_reset(&c);
        call(f, &c, "GET", "/nowhere", NULL, NULL);
        call_reset(&c);
        log_set_fd(2);
        log_set_level(old);

        assert_true(pread(fd, line, sizeof(line) - 1, 0) > 0);
        close(fd);
        assert_non_null(strstr(line, "GET /ping status=200 bytes=4 us="));
        assert_non_null(strstr(line, "GET /nowhere status=404 bytes="));
        assert_non_null(strstr(line, "remote=127.0.0.1:"));
}

static void test_single_thread(void **state)
{
        Fixture *f = *state;
        Call calls[20] = {};

        for (size_t i = 0; i < ELEMENTSOF(calls); i++)
                call_start(f, &calls[i], "GET", i % 2 ? "/ping" : "/v2/apps/a/b", NULL, NULL, false);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                RUN_UNTIL(f, calls[i].done);
                assert_int_equal(thread_count(), 1);
        }
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                assert_int_equal(calls[i].status, 200);
                call_reset(&calls[i]);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bad_options),
                cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_path_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_query, setup, teardown),
                cmocka_unit_test_setup_teardown(test_json_echo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_too_large_by_length, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_too_large_chunked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_async_after_timer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_async_from_another_handler, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream_started_later, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disconnect_cancels, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sse_stream, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stream_slow_subscriber, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_streams_cost_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_streams, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_handler_mistakes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_access_log, setup, teardown),
                cmocka_unit_test_setup_teardown(test_single_thread, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
