/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the libcurl-on-libev HTTP client against an in-process
 * libmicrohttpd server (which runs its own thread; the client must not). The
 * server holds "stalled" requests and gated streams with suspend/resume, so
 * no test sleeps: every wait is for an event, bounded by a safety timer. */
#include <dirent.h>
#include <ev.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "duration.h"
#include "http_client.h"
#include "macro.h"

/* A wait that takes longer than this fails the test instead of hanging it. */
#define WAIT_MAX_S            10.0
#define LONG_DEADLINE_NS      (10 * NSEC_PER_SEC)
#define SHORT_DEADLINE_NS     (200 * NSEC_PER_MSEC)
#define IDLE_NS               (150 * NSEC_PER_MSEC)
#define STREAM_TICK_S         0.04
#define STREAM_IDLE_NS        (200 * NSEC_PER_MSEC)
#define MANY_REQUESTS         200
#define SERVER_STALLED_MAX    16
#define SERVER_BODY_MAX       (4u * 1024 * 1024)
#define SERVER_ECHO_BODY_MAX  4096
#define SERVER_FILLER_HEADERS 40
#define SERVER_FILLER_LEN     500
#define TRUNCATED_SIZE        1000
#define TRUNCATED_SENT        100
#define TASKS_MAX             64
#define CALL_BODY_MAX         (8u * 1024 * 1024)

/* ---- the test server ---- */

typedef struct Stream Stream;

typedef struct Server {
        struct MHD_Daemon *daemon;
        uint16_t port;
        pthread_mutex_t lock;
        unsigned connections; /* accepted */
        unsigned requests;
        struct MHD_Connection *stalled[SERVER_STALLED_MAX];
        size_t n_stalled;
        Stream *stream; /* the gated stream being sent, if any */
        bool stopping;
        int notify[2]; /* a byte per stalled request, read by the test's loop */
        char unix_path[108];
} Server;

/* A chunked body whose chunks go out only as the test releases them: the
 * reader suspends the connection when it runs ahead. */
struct Stream {
        Server *srv;
        struct MHD_Connection *conn;
        unsigned total, sent, released;
        bool drop_at_end; /* close the connection instead of ending the body */
        bool suspended;
};

typedef struct ServerRequest {
        Buf body;
        bool stalled;
} ServerRequest;

static unsigned query_uint(struct MHD_Connection *conn, const char *key, unsigned def)
{
        const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
        return v ? (unsigned)strtoul(v, NULL, 10) : def;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status, struct MHD_Response *resp)
{
        enum MHD_Result r;

        if (!resp)
                return MHD_NO;
        r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static struct MHD_Response *text(const char *s, size_t len)
{
        return MHD_create_response_from_buffer(len, (void *)s, MHD_RESPMEM_MUST_COPY);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        Stream *st = cls;
        Server *srv = st->srv;
        ssize_t n;

        pthread_mutex_lock(&srv->lock);
        if (srv->stopping) {
                n = MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (st->sent == st->total) {
                n = st->drop_at_end ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
        } else if (st->sent < st->released) {
                n = snprintf(buf, max, "chunk-%u;", st->sent);
                st->sent++;
        } else {
                st->suspended = true;
                MHD_suspend_connection(st->conn);
                n = 0;
        }
        pthread_mutex_unlock(&srv->lock);
        return n;
}

static void stream_free(void *cls)
{
        Stream *st = cls;

        pthread_mutex_lock(&st->srv->lock);
        if (st->srv->stream == st)
                st->srv->stream = NULL;
        pthread_mutex_unlock(&st->srv->lock);
        free(st);
}

/* Promises a body of TRUNCATED_SIZE bytes and drops the connection midway. */
static ssize_t truncated_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        size_t n;

        if (pos >= TRUNCATED_SENT)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        n = MIN(max, TRUNCATED_SENT - (size_t)pos);
        memset(buf, 't', n);
        return (ssize_t)n;
}

static enum MHD_Result serve_echo(struct MHD_Connection *conn, const char *method, ServerRequest *sr)
{
        const char *xe = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Echo");
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
        _cleanup_(buf_done) Buf out = BUF_INIT(2 * SERVER_ECHO_BODY_MAX);

        if (buf_printf(&out, "method=%s x-echo=%s ct=%s expect=%s len=%zu\n", method, xe ? xe : "-",
                       ct ? ct : "-", expect ? expect : "-", sr->body.len) < 0)
                return MHD_NO;
        if (sr->body.len <= SERVER_ECHO_BODY_MAX && buf_append(&out, sr->body.data, sr->body.len) < 0)
                return MHD_NO;
        return queue(conn, 201, text(out.data, out.len));
}

static enum MHD_Result serve_stall(Server *srv, struct MHD_Connection *conn, ServerRequest *sr)
{
        bool ok;

        if (sr->stalled)
                return MHD_NO; /* resumed by server_stop() */
        sr->stalled = true;
        pthread_mutex_lock(&srv->lock);
        ok = srv->n_stalled < SERVER_STALLED_MAX;
        if (ok) {
                MHD_suspend_connection(conn);
                srv->stalled[srv->n_stalled++] = conn;
        }
        pthread_mutex_unlock(&srv->lock);
        if (!ok)
                return MHD_NO;
        (void)!write(srv->notify[1], "S", 1);
        return MHD_YES;
}

static enum MHD_Result serve_stream(Server *srv, struct MHD_Connection *conn)
{
        struct MHD_Response *resp;
        Stream *st = calloc(1, sizeof(*st));

        if (!st)
                return MHD_NO;
        *st = (Stream){
                .srv = srv,
                .conn = conn,
                .total = query_uint(conn, "chunks", 5),
                .released = query_uint(conn, "initial", 1),
                .drop_at_end = query_uint(conn, "drop", 0) != 0,
        };
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256, stream_read, st, stream_free);
        if (!resp) {
                free(st);
                return MHD_NO;
        }
        pthread_mutex_lock(&srv->lock);
        srv->stream = st;
        pthread_mutex_unlock(&srv->lock);
        return queue(conn, 200, resp);
}

static enum MHD_Result serve_many_headers(struct MHD_Connection *conn)
{
        struct MHD_Response *resp = text("x", 1);
        char name[32], value[SERVER_FILLER_LEN + 1];

        if (!resp)
                return MHD_NO;
        memset(value, 'y', SERVER_FILLER_LEN);
        value[SERVER_FILLER_LEN] = 0;
        for (unsigned i = 0; i < SERVER_FILLER_HEADERS; i++) {
                snprintf(name, sizeof(name), "X-Filler-%02u", i);
                MHD_add_response_header(resp, name, value);
        }
        return queue(conn, 200, resp);
}

static enum MHD_Result serve_big(struct MHD_Connection *conn)
{
        size_t n = MIN(query_uint(conn, "n", 0), SERVER_BODY_MAX);
        _cleanup_free_ char *p = malloc(n + 1);

        if (!p)
                return MHD_NO;
        memset(p, 'x', n);
        return queue(conn, 200, text(p, n));
}

static enum MHD_Result server_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **con_cls)
{
        Server *srv = cls;
        ServerRequest *sr = *con_cls;
        struct MHD_Response *resp;
        char s[64];

        if (!sr) {
                sr = calloc(1, sizeof(*sr));
                if (!sr)
                        return MHD_NO;
                buf_init(&sr->body, SERVER_BODY_MAX);
                *con_cls = sr;
                pthread_mutex_lock(&srv->lock);
                srv->requests++;
                pthread_mutex_unlock(&srv->lock);
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (buf_append(&sr->body, upload_data, *upload_data_size) < 0)
                        return MHD_NO;
                *upload_data_size = 0;
                return MHD_YES;
        }

        if (streq(url, "/hello")) {
                resp = text("hello, world", STRLEN("hello, world"));
                if (resp)
                        MHD_add_response_header(resp, "X-Test-Header", "some value  ");
                return queue(conn, 200, resp);
        }
        if (streq(url, "/echo"))
                return serve_echo(conn, method, sr);
        if (strneq(url, "/status/", STRLEN("/status/"))) {
                unsigned code = (unsigned)strtoul(url + STRLEN("/status/"), NULL, 10);
                snprintf(s, sizeof(s), "status %u", code);
                return queue(conn, code, text(s, strlen(s)));
        }
        if (streq(url, "/big"))
                return serve_big(conn);
        if (streq(url, "/many-headers"))
                return serve_many_headers(conn);
        if (streq(url, "/stall"))
                return serve_stall(srv, conn, sr);
        if (streq(url, "/stream"))
                return serve_stream(srv, conn);
        if (streq(url, "/truncated"))
                return queue(
                        conn, 200,
                        MHD_create_response_from_callback(TRUNCATED_SIZE, 256, truncated_read, NULL, NULL));
        return queue(conn, 404, text("no such path", STRLEN("no such path")));
}

static void server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
        ServerRequest *sr = *con_cls;

        if (!sr)
                return;
        buf_done(&sr->body);
        free(sr);
        *con_cls = NULL;
}

static void server_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                     enum MHD_ConnectionNotificationCode toe)
{
        Server *srv = cls;

        if (toe != MHD_CONNECTION_NOTIFY_STARTED)
                return;
        pthread_mutex_lock(&srv->lock);
        srv->connections++;
        pthread_mutex_unlock(&srv->lock);
}

/* Listens on 127.0.0.1:0, or on a Unix socket when unix_path is given. */
static void server_start(Server *srv, const char *unix_path)
{
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        const union MHD_DaemonInfo *info;
        int fd = -1;

        *srv = (Server){ 0 };
        assert_int_equal(pthread_mutex_init(&srv->lock, NULL), 0);
        assert_int_equal(pipe2(srv->notify, O_NONBLOCK | O_CLOEXEC), 0);
        if (unix_path) {
                struct sockaddr_un un = { .sun_family = AF_UNIX };
                assert_true(strlen(unix_path) < sizeof(un.sun_path));
                strcpy(un.sun_path, unix_path);
                strcpy(srv->unix_path, unix_path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                assert_true(fd >= 0);
                assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
                assert_int_equal(listen(fd, 64), 0);
        }
        srv->daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                server_handler, srv, fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
                fd >= 0 ? (void *)(intptr_t)fd : (void *)&sa, MHD_OPTION_NOTIFY_COMPLETED, server_completed,
                srv, MHD_OPTION_NOTIFY_CONNECTION, server_notify_connection, srv,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_END);
        assert_non_null(srv->daemon);
        if (fd < 0) {
                info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
                assert_non_null(info);
                srv->port = info->port;
                assert_true(srv->port > 0);
        }
}

/* Lets n more chunks of the current stream go out. */
static void server_release(Server *srv, unsigned n)
{
        struct MHD_Connection *resume = NULL;

        pthread_mutex_lock(&srv->lock);
        if (srv->stream) {
                srv->stream->released += n;
                if (srv->stream->suspended) {
                        srv->stream->suspended = false;
                        resume = srv->stream->conn;
                }
        }
        pthread_mutex_unlock(&srv->lock);
        /* still suspended until this call, so the connection cannot be gone */
        if (resume)
                MHD_resume_connection(resume);
}

static unsigned server_connections(Server *srv)
{
        unsigned n;

        pthread_mutex_lock(&srv->lock);
        n = srv->connections;
        pthread_mutex_unlock(&srv->lock);
        return n;
}

static void server_stop(Server *srv)
{
        struct MHD_Connection *resume[SERVER_STALLED_MAX + 1];
        size_t n = 0;

        pthread_mutex_lock(&srv->lock);
        srv->stopping = true;
        for (size_t i = 0; i < srv->n_stalled; i++)
                resume[n++] = srv->stalled[i];
        srv->n_stalled = 0;
        if (srv->stream && srv->stream->suspended) {
                srv->stream->suspended = false;
                resume[n++] = srv->stream->conn;
        }
        pthread_mutex_unlock(&srv->lock);
        /* MHD refuses to stop with suspended connections */
        for (size_t i = 0; i < n; i++)
                MHD_resume_connection(resume[i]);
        MHD_stop_daemon(srv->daemon);
        close(srv->notify[0]);
        close(srv->notify[1]);
        pthread_mutex_destroy(&srv->lock);
        if (srv->unix_path[0])
                unlink(srv->unix_path);
}

/* ---- fixture ---- */

typedef struct Fixture {
        Server srv;
        struct ev_loop *loop;
        HttpClient *client;
        ev_io notify_io;
        unsigned stalls;        /* stalled requests the server has reported */
        unsigned done_total;    /* on_done calls of all requests */
        pid_t tasks[TASKS_MAX]; /* threads with the server up, before the client existed */
        size_t n_tasks;
        bool check_threads; /* look for new threads in every on_done */
        unsigned new_threads;
        char url[64];
} Fixture;

static size_t list_tasks(pid_t *tids, size_t max)
{
        DIR *d = opendir("/proc/self/task");
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && n < max)
                        tids[n++] = (pid_t)strtol(de->d_name, NULL, 10);
        closedir(d);
        return n;
}

/* Threads that did not exist when the fixture was set up. Compared by id, not
 * counted: a thread of the previous test's server may still be exiting. */
static unsigned new_threads(const Fixture *f)
{
        pid_t now[TASKS_MAX];
        size_t n = list_tasks(now, TASKS_MAX);
        unsigned fresh = 0;

        for (size_t i = 0; i < n; i++) {
                bool known = false;
                for (size_t j = 0; j < f->n_tasks && !known; j++)
                        known = now[i] == f->tasks[j];
                fresh += !known;
        }
        return fresh;
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_notify(struct ev_loop *loop, ev_io *w, int revents)
{
        Fixture *f = w->data;
        char b[64];
        ssize_t n = read(w->fd, b, sizeof(b));

        if (n > 0)
                f->stalls += (unsigned)n;
}

static int fixture_setup(Fixture *f, const char *unix_path)
{
        server_start(&f->srv, unix_path);
        f->loop = ev_loop_new(EVFLAG_AUTO);
        assert_non_null(f->loop);
        ev_io_init(&f->notify_io, on_notify, f->srv.notify[0], EV_READ);
        f->notify_io.data = f;
        ev_io_start(f->loop, &f->notify_io);
        f->n_tasks = list_tasks(f->tasks, TASKS_MAX);
        f->client = http_client_new(f->loop);
        assert_non_null(f->client);
        snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u", f->srv.port);
        return 0;
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        *state = f;
        return fixture_setup(f, NULL);
}

static int teardown(void **state)
{
        Fixture *f = *state;
        size_t pending = http_client_pending(f->client);
        /* the client must never have started a thread, whatever the test did */
        unsigned fresh = new_threads(f);

        /* requests left by a failed test point at its dead stack: leak them instead */
        if (pending == 0)
                f->client = http_client_free(f->client);
        ev_io_stop(f->loop, &f->notify_io);
        if (!f->client)
                ev_loop_destroy(f->loop);
        server_stop(&f->srv);
        free(f);
        assert_int_equal(fresh, 0);
        assert_int_equal(pending, 0);
        return 0;
}

static void on_safety(struct ev_loop *loop, ev_timer *w, int revents)
{
        *(bool *)w->data = true;
}

/* Runs the loop until *counter reaches want; fails after WAIT_MAX_S. */
static void wait_for(Fixture *f, const unsigned *counter, unsigned want)
{
        bool expired = false;
        ev_timer safety;

        ev_now_update(f->loop); /* the loop may have been idle for a while */
        ev_timer_init(&safety, on_safety, WAIT_MAX_S, 0.);
        safety.data = &expired;
        ev_timer_start(f->loop, &safety);
        while (*counter < want && !expired)
                ev_run(f->loop, EVRUN_ONCE);
        ev_timer_stop(f->loop, &safety);
        assert_false(expired);
}

/* ---- one request's view of its callbacks ---- */

typedef struct Call Call;
struct Call {
        Fixture *f;
        HttpRequest *req;
        unsigned done, headers, data; /* callback counts */
        unsigned order_errors;        /* on_data before on_headers, or anything after on_done */
        int result;
        long status;
        long status_at_headers;
        Buf body;     /* resp->body as on_done saw it */
        Buf streamed; /* what on_data got */
        char error[512];
        char header[128]; /* X-Test-Header as found in on_done */
        double last_data_at;

        /* behaviour */
        unsigned release_per_data; /* chunks of the gated stream released by each on_data */
        unsigned fail_at;          /* on_data returns fail_value on this call */
        int fail_value;
        unsigned cancel_at; /* on_data cancels its own request on this call */
        bool cancel_in_headers;
        unsigned done_seen_after_cancel;
        /* actions run at on_done, or at the first on_data when act_in_data */
        bool act_in_data, act_in_done;
        Call *start_call;
        const char *start_path;
        int start_rc;
        Call *cancel_call;
        unsigned cancel_call_done_seen;
        bool cancel_self_in_done;
};

static Call call_new(Fixture *f)
{
        return (Call){ .f = f, .body = BUF_INIT(CALL_BODY_MAX), .streamed = BUF_INIT(CALL_BODY_MAX) };
}

static void call_done(Call *c)
{
        buf_done(&c->body);
        buf_done(&c->streamed);
}

static int start_path(Fixture *f, Call *c, const char *path, HttpRequestOptions *o);

static void call_act(Call *c)
{
        if (c->start_call)
                c->start_rc = start_path(c->f, c->start_call, c->start_path,
                                         &(HttpRequestOptions){ .timeout_ns = LONG_DEADLINE_NS });
        if (c->cancel_call) {
                http_request_cancel(c->cancel_call->req);
                c->cancel_call_done_seen = c->cancel_call->done;
        }
}

static void call_on_headers(HttpRequest *req, const HttpResponse *resp, void *userdata)
{
        Call *c = userdata;

        c->headers++;
        c->status_at_headers = resp->status;
        if (c->done || resp->body.len > 0 || req != c->req)
                c->order_errors++;
        if (c->cancel_in_headers) {
                http_request_cancel(req);
                c->done_seen_after_cancel = c->done;
        }
}

static int call_on_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        Call *c = userdata;

        c->data++;
        c->last_data_at = now_s();
        if (c->headers != 1 || c->done || req != c->req)
                c->order_errors++;
        (void)buf_append(&c->streamed, data, len);
        if (c->release_per_data)
                server_release(&c->f->srv, c->release_per_data);
        if (c->act_in_data && c->data == 1)
                call_act(c);
        if (c->cancel_at == c->data) {
                http_request_cancel(req);
                c->done_seen_after_cancel = c->done;
        }
        return c->fail_at == c->data ? c->fail_value : 0;
}

static void call_on_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        Call *c = userdata;

        c->done++;
        c->f->done_total++;
        if (req != c->req)
                c->order_errors++;
        c->result = result;
        c->status = resp->status;
        buf_reset(&c->body);
        (void)buf_append(&c->body, resp->body.data, resp->body.len);
        snprintf(c->error, sizeof(c->error), "%s", http_request_error(req));
        if (!http_response_header(resp, "x-test-header", c->header, sizeof(c->header)))
                c->header[0] = 0;
        if (c->f->check_threads)
                c->f->new_threads += new_threads(c->f);
        if (c->act_in_done)
                call_act(c);
        if (c->cancel_self_in_done)
                http_request_cancel(req); /* a no-op: it is already done */
}

static int start_path(Fixture *f, Call *c, const char *path, HttpRequestOptions *o)
{
        char url[256];

        snprintf(url, sizeof(url), "%s%s", f->url, path);
        o->url = url;
        o->on_done = call_on_done;
        o->on_headers = call_on_headers;
        o->userdata = c;
        return http_request_start(f->client, o, &c->req);
}

static void start_ok(Fixture *f, Call *c, const char *path, HttpRequestOptions o)
{
        if (o.timeout_ns == 0 && o.idle_timeout_ns == 0)
                o.timeout_ns = LONG_DEADLINE_NS;
        assert_int_equal(start_path(f, c, path, &o), 0);
}

/* Completes one more request, so that the loop and libcurl have moved on
 * past whatever the test did: late or duplicate callbacks would show now. */
static void flush(Fixture *f)
{
        _cleanup_(call_done) Call c = call_new(f);

        start_ok(f, &c, "/hello", (HttpRequestOptions){ 0 });
        wait_for(f, &c.done, 1);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.done, 1);
}

#define assert_contains(haystack, needle)                                                 \
        do {                                                                              \
                if (!strstr((haystack), (needle)))                                        \
                        fail_msg("\"%s\" does not contain \"%s\"", (haystack), (needle)); \
        } while (0)

/* ---- tests ---- */

static void test_get_collects_body(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);

        start_ok(f, &c, "/hello", (HttpRequestOptions){ 0 });
        assert_int_equal(http_client_pending(f->client), 1);
        wait_for(f, &c.done, 1);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.headers, 1);
        assert_int_equal(c.order_errors, 0);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.status, 200);
        assert_int_equal(c.status_at_headers, 200);
        assert_string_equal(buf_str(&c.body), "hello, world");
        assert_string_equal(c.header, "some value");
        assert_string_equal(c.error, "");
        assert_int_equal(http_client_pending(f->client), 0);
}

static void test_post_echoes_body_and_headers(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        const char *headers[] = { "X-Echo: abc", "Content-Type: application/json", NULL };
        const char *body = "{\"k\":1}";

        start_ok(f, &c, "/echo",
                 (HttpRequestOptions){ .method = "POST", .headers = headers, .body = body, .body_len = 7 });
        wait_for(f, &c.done, 1);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.status, 201);
        assert_string_equal(buf_str(&c.body),
                            "method=POST x-echo=abc ct=application/json expect=- len=7\n{\"k\":1}");
}

static void test_other_methods(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call put = call_new(f);
        _cleanup_(call_done) Call del = call_new(f);
        _cleanup_(call_done) Call post = call_new(f);
        _cleanup_(call_done) Call head = call_new(f);
        const char nul_body[] = { 'a', 0, 'b' };

        /* no Content-Type given: none is sent rather than libcurl's form type */
        start_ok(f, &put, "/echo", (HttpRequestOptions){ .method = "PUT", .body = nul_body, .body_len = 3 });
        start_ok(f, &del, "/echo", (HttpRequestOptions){ .method = "DELETE" });
        start_ok(f, &post, "/echo", (HttpRequestOptions){ .method = "POST" });
        start_ok(f, &head, "/hello", (HttpRequestOptions){ .method = "HEAD" });
        wait_for(f, &f->done_total, 4);

        assert_int_equal(put.done, 1);
        assert_int_equal(put.result, 0);
        assert_int_equal(put.body.len, STRLEN("method=PUT x-echo=- ct=- expect=- len=3\n") + 3);
        assert_memory_equal(put.body.data, "method=PUT x-echo=- ct=- expect=- len=3\na\0b", put.body.len);
        assert_int_equal(del.done, 1);
        assert_string_equal(buf_str(&del.body), "method=DELETE x-echo=- ct=- expect=- len=0\n");
        assert_int_equal(post.done, 1);
        assert_string_equal(buf_str(&post.body), "method=POST x-echo=- ct=- expect=- len=0\n");
        assert_int_equal(head.done, 1);
        assert_int_equal(head.result, 0);
        assert_int_equal(head.status, 200);
        assert_int_equal(head.body.len, 0);
        assert_string_equal(head.header, "some value");
}

static void test_large_upload_skips_expect(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        size_t n = 3 * 1024 * 1024 / 2;
        _cleanup_free_ char *body = malloc(n);
        const char *headers[] = { "Content-Type: application/octet-stream", NULL };

        assert_non_null(body);
        memset(body, 'b', n);
        start_ok(f, &c, "/echo",
                 (HttpRequestOptions){ .method = "POST", .headers = headers, .body = body, .body_len = n });
        /* the body was copied: changing it now must not change what is sent */
        memset(body, 'z', n);
        wait_for(f, &c.done, 1);
        assert_int_equal(c.result, 0);
        assert_string_equal(buf_str(&c.body),
                            "method=POST x-echo=- ct=application/octet-stream expect=- len=1572864\n");
}

static void test_interim_response_skipped(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        const char *headers[] = { "Expect: 100-continue", "Content-Type: text/plain", NULL };

        /* asked for explicitly, the server answers "100 Continue" first: on_headers
         * and resp->status belong to the final response only */
        start_ok(f, &c, "/echo",
                 (HttpRequestOptions){ .method = "POST", .headers = headers, .body = "abc", .body_len = 3 });
        wait_for(f, &c.done, 1);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.headers, 1);
        assert_int_equal(c.status_at_headers, 201);
        assert_int_equal(c.status, 201);
        assert_string_equal(buf_str(&c.body),
                            "method=POST x-echo=- ct=text/plain expect=100-continue len=3\nabc");
}

static void test_non_2xx_body_collected(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        _cleanup_(call_done) Call d = call_new(f);

        /* on_data is set but never called for an error status */
        start_ok(f, &c, "/status/404", (HttpRequestOptions){ .on_data = call_on_data });
        start_ok(f, &d, "/status/503", (HttpRequestOptions){ 0 });
        wait_for(f, &f->done_total, 2);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.status, 404);
        assert_int_equal(c.headers, 1);
        assert_int_equal(c.data, 0);
        assert_string_equal(buf_str(&c.body), "status 404");
        assert_string_equal(c.error, "");
        assert_int_equal(d.done, 1);
        assert_int_equal(d.status, 503);
        assert_string_equal(buf_str(&d.body), "status 503");
}

static void test_header_lookup(void **state)
{
        HttpResponse resp = { .headers = BUF_INIT(HTTP_HEADERS_MAX) };
        char buf[16], tiny[4];

        assert_int_equal(buf_puts(&resp.headers, "Content-Type: text/plain\r\n"
                                                 "X-Empty:\r\n"
                                                 "X-Spaces: \t padded value \t\r\n"
                                                 "X-Long-Name: v1\r\n"
                                                 "x-twice: first\r\n"
                                                 "X-Twice: second\r\n"
                                                 "Bare-LF: yes\n"
                                                 "Last: no-newline"),
                         0);
        assert_string_equal(http_response_header(&resp, "content-type", buf, sizeof(buf)), "text/plain");
        assert_string_equal(http_response_header(&resp, "CONTENT-TYPE", buf, sizeof(buf)), "text/plain");
        assert_string_equal(http_response_header(&resp, "x-empty", buf, sizeof(buf)), "");
        assert_string_equal(http_response_header(&resp, "X-Spaces", buf, sizeof(buf)), "padded value");
        assert_string_equal(http_response_header(&resp, "X-TWICE", buf, sizeof(buf)), "first");
        assert_string_equal(http_response_header(&resp, "bare-lf", buf, sizeof(buf)), "yes");
        assert_string_equal(http_response_header(&resp, "last", buf, sizeof(buf)), "no-newline");
        /* a prefix of a name is not the name */
        assert_null(http_response_header(&resp, "X-Long", buf, sizeof(buf)));
        assert_null(http_response_header(&resp, "Content", buf, sizeof(buf)));
        assert_null(http_response_header(&resp, "Missing", buf, sizeof(buf)));
        assert_null(http_response_header(&resp, "", buf, sizeof(buf)));
        assert_null(http_response_header(&resp, "Content-Type", buf, 0));
        /* too long for the buffer: cut, still terminated */
        assert_string_equal(http_response_header(&resp, "Content-Type", tiny, sizeof(tiny)), "tex");
        buf_done(&resp.headers);
        assert_null(http_response_header(&resp, "Content-Type", buf, sizeof(buf)));
}

static void test_stream_delivered_in_pieces(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);

        /* every chunk waits until on_data has seen the previous one */
        c.release_per_data = 1;
        start_ok(f, &c, "/stream?chunks=5", (HttpRequestOptions){ .on_data = call_on_data });
        wait_for(f, &c.done, 1);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.status, 200);
        assert_int_equal(c.headers, 1);
        assert_int_equal(c.data, 5);
        assert_int_equal(c.order_errors, 0);
        assert_string_equal(buf_str(&c.streamed), "chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;");
        assert_int_equal(c.body.len, 0); /* streamed, not collected */
}

static void test_on_data_error_aborts(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);

        c.release_per_data = 1;
        c.fail_at = 2;
        c.fail_value = -EPROTO;
        start_ok(f, &c, "/stream?chunks=5", (HttpRequestOptions){ .on_data = call_on_data });
        wait_for(f, &c.done, 1);
        flush(f);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, -EPROTO);
        assert_int_equal(c.data, 2);
        assert_int_equal(c.status, 200);
        assert_string_equal(buf_str(&c.streamed), "chunk-0;chunk-1;");
        assert_contains(c.error, "data callback");
        assert_contains(c.error, "/stream?chunks=5");
}

static void test_deadline(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        double t0 = now_s(), elapsed;

        start_ok(f, &c, "/stall", (HttpRequestOptions){ .timeout_ns = SHORT_DEADLINE_NS });
        wait_for(f, &c.done, 1);
        elapsed = now_s() - t0;
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, -ETIMEDOUT);
        assert_int_equal(c.status, 0);
        assert_int_equal(c.headers, 0);
        assert_true(elapsed >= 0.19);
        assert_true(elapsed < 5.0);
        assert_contains(c.error, "GET http://127.0.0.1");
        assert_contains(c.error, "timed out");
}

static void test_idle_timeout(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        double idle;

        /* one chunk, then silence: only the idle timeout can end it */
        start_ok(f, &c, "/stream?chunks=5",
                 (HttpRequestOptions){ .idle_timeout_ns = IDLE_NS, .on_data = call_on_data });
        wait_for(f, &c.done, 1);
        idle = now_s() - c.last_data_at;
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, -ETIMEDOUT);
        assert_int_equal(c.data, 1);
        assert_int_equal(c.status, 200);
        assert_true(idle >= 0.14);
        assert_true(idle < 5.0);
        assert_contains(c.error, "no data received for 150 ms");
}

static void on_release_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
        server_release(w->data, 1);
}

static void test_idle_timer_restarts_on_data(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        ev_timer tick;
        double t0 = now_s();

        /* eight chunks 40 ms apart outlast a 200 ms idle timeout */
        ev_timer_init(&tick, on_release_tick, STREAM_TICK_S, STREAM_TICK_S);
        tick.data = &f->srv;
        ev_timer_start(f->loop, &tick);
        start_ok(f, &c, "/stream?chunks=8",
                 (HttpRequestOptions){ .idle_timeout_ns = STREAM_IDLE_NS, .on_data = call_on_data });
        wait_for(f, &c.done, 1);
        ev_timer_stop(f->loop, &tick);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, 0);
        assert_int_equal(c.data, 8);
        assert_true(now_s() - t0 > duration_to_seconds(STREAM_IDLE_NS));
}

static uint16_t closed_port(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

static void test_connection_refused(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        _cleanup_(call_done) Call d = call_new(f);
        uint16_t port = closed_port();
        char url[128], want[128];

        snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", port);
        assert_int_equal(http_request_start(f->client,
                                            &(HttpRequestOptions){ .url = url,
                                                                   .timeout_ns = LONG_DEADLINE_NS,
                                                                   .on_done = call_on_done,
                                                                   .userdata = &c },
                                            &c.req),
                         0);
        /* credentials in a URL stay out of the error text */
        snprintf(url, sizeof(url), "http://user:secret@127.0.0.1:%u/y", port);
        assert_int_equal(http_request_start(f->client,
                                            &(HttpRequestOptions){
                                                    .url = url, .on_done = call_on_done, .userdata = &d },
                                            &d.req),
                         0);
        wait_for(f, &f->done_total, 2);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, -ECONNREFUSED);
        assert_int_equal(c.status, 0);
        snprintf(want, sizeof(want), "GET http://127.0.0.1:%u/x: ", port);
        assert_contains(c.error, want);
        assert_contains(c.error, "Connection refused");
        assert_int_equal(d.done, 1);
        assert_int_equal(d.result, -ECONNREFUSED);
        snprintf(want, sizeof(want), "GET http://127.0.0.1:%u/y: ", port);
        assert_contains(d.error, want);
        assert_null(strstr(d.error, "secret"));
}

static void test_connection_dropped_mid_body(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call chunked = call_new(f);
        _cleanup_(call_done) Call sized = call_new(f);
        _cleanup_(call_done) Call streamed = call_new(f);

        start_ok(f, &chunked, "/stream?chunks=3&initial=3&drop=1", (HttpRequestOptions){ 0 });
        wait_for(f, &chunked.done, 1);
        start_ok(f, &sized, "/truncated", (HttpRequestOptions){ 0 });
        wait_for(f, &sized.done, 1);
        start_ok(f, &streamed, "/stream?chunks=2&initial=2&drop=1",
                 (HttpRequestOptions){ .on_data = call_on_data });
        wait_for(f, &streamed.done, 1);

        assert_int_equal(chunked.done, 1);
        assert_int_equal(chunked.result, -ECONNRESET);
        assert_int_equal(chunked.status, 200);
        assert_true(chunked.error[0] != 0);
        assert_int_equal(sized.done, 1);
        assert_int_equal(sized.result, -ECONNRESET);
        assert_contains(sized.error, "/truncated");
        assert_int_equal(streamed.done, 1);
        assert_int_equal(streamed.result, -ECONNRESET);
        assert_string_equal(buf_str(&streamed.streamed), "chunk-0;chunk-1;");
}

static void test_body_cap(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call exact = call_new(f);
        _cleanup_(call_done) Call over = call_new(f);
        _cleanup_(call_done) Call dflt = call_new(f);
        char path[64];

        start_ok(f, &exact, "/big?n=1000", (HttpRequestOptions){ .max_body = 1000 });
        start_ok(f, &over, "/big?n=1000", (HttpRequestOptions){ .max_body = 999 });
        snprintf(path, sizeof(path), "/big?n=%u", HTTP_BODY_MAX_DEFAULT + 1);
        start_ok(f, &dflt, path, (HttpRequestOptions){ 0 });
        wait_for(f, &f->done_total, 3);
        assert_int_equal(exact.done, 1);
        assert_int_equal(exact.result, 0);
        assert_int_equal(exact.body.len, 1000);
        assert_int_equal(over.done, 1);
        assert_int_equal(over.result, -EMSGSIZE);
        assert_int_equal(over.status, 200);
        assert_contains(over.error, "body over 999 bytes");
        assert_int_equal(dflt.done, 1);
        assert_int_equal(dflt.result, -EMSGSIZE);
}

static void test_headers_cap(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        char want[64];

        start_ok(f, &c, "/many-headers", (HttpRequestOptions){ 0 });
        wait_for(f, &c.done, 1);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, -EMSGSIZE);
        assert_int_equal(c.headers, 0); /* the header block never completed */
        snprintf(want, sizeof(want), "headers over %u bytes", HTTP_HEADERS_MAX);
        assert_contains(c.error, want);
        flush(f);
}

static void test_cancel(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call early = call_new(f);
        _cleanup_(call_done) Call stalled = call_new(f);

        /* before the loop ever ran */
        start_ok(f, &early, "/hello", (HttpRequestOptions){ 0 });
        http_request_cancel(early.req);
        assert_int_equal(early.done, 1);
        assert_int_equal(early.result, -ECANCELED);
        assert_contains(early.error, "cancelled");

        /* while the server holds the request */
        start_ok(f, &stalled, "/stall", (HttpRequestOptions){ 0 });
        wait_for(f, &f->stalls, 1);
        assert_int_equal(stalled.done, 0);
        assert_int_equal(http_client_pending(f->client), 1);
        http_request_cancel(stalled.req);
        assert_int_equal(stalled.done, 1);
        assert_int_equal(stalled.result, -ECANCELED);
        assert_int_equal(stalled.status, 0);
        assert_int_equal(http_client_pending(f->client), 0);

        flush(f);
        assert_int_equal(early.done, 1);
        assert_int_equal(stalled.done, 1);
}

static void test_cancel_inside_on_data(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);

        c.release_per_data = 1;
        c.cancel_at = 1;
        start_ok(f, &c, "/stream?chunks=5", (HttpRequestOptions){ .on_data = call_on_data });
        wait_for(f, &c.done, 1);
        flush(f);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.done_seen_after_cancel, 1); /* fired before cancel returned */
        assert_int_equal(c.result, -ECANCELED);
        assert_int_equal(c.data, 1);
        assert_int_equal(c.order_errors, 0);
        assert_int_equal(http_client_pending(f->client), 0);
}

static void test_cancel_inside_on_headers(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);

        c.cancel_in_headers = true;
        start_ok(f, &c, "/hello", (HttpRequestOptions){ .on_data = call_on_data });
        wait_for(f, &c.done, 1);
        flush(f);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.done_seen_after_cancel, 1);
        assert_int_equal(c.result, -ECANCELED);
        assert_int_equal(c.headers, 1);
        assert_int_equal(c.data, 0);
        assert_int_equal(c.status, 200);
}

static void test_on_done_starts_and_cancels(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call a = call_new(f);
        _cleanup_(call_done) Call b = call_new(f);
        _cleanup_(call_done) Call stalled = call_new(f);

        start_ok(f, &stalled, "/stall", (HttpRequestOptions){ 0 });
        wait_for(f, &f->stalls, 1);
        a.act_in_done = true;
        a.start_call = &b;
        a.start_path = "/hello";
        a.cancel_call = &stalled;
        a.cancel_self_in_done = true;
        start_ok(f, &a, "/hello", (HttpRequestOptions){ 0 });
        wait_for(f, &b.done, 1);
        flush(f);
        assert_int_equal(a.done, 1);
        assert_int_equal(a.result, 0);
        assert_int_equal(a.start_rc, 0);
        assert_int_equal(a.cancel_call_done_seen, 1);
        assert_int_equal(stalled.done, 1);
        assert_int_equal(stalled.result, -ECANCELED);
        assert_int_equal(b.done, 1);
        assert_int_equal(b.result, 0);
        assert_string_equal(buf_str(&b.body), "hello, world");
}

static void test_on_data_starts_and_cancels(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call a = call_new(f);
        _cleanup_(call_done) Call b = call_new(f);
        _cleanup_(call_done) Call stalled = call_new(f);

        start_ok(f, &stalled, "/stall", (HttpRequestOptions){ 0 });
        wait_for(f, &f->stalls, 1);
        /* inside a libcurl callback: the new request waits until libcurl returns */
        a.release_per_data = 1;
        a.act_in_data = true;
        a.start_call = &b;
        a.start_path = "/hello";
        a.cancel_call = &stalled;
        start_ok(f, &a, "/stream?chunks=3", (HttpRequestOptions){ .on_data = call_on_data });
        wait_for(f, &a.done, 1);
        wait_for(f, &b.done, 1);
        flush(f);
        assert_int_equal(a.done, 1);
        assert_int_equal(a.result, 0);
        assert_int_equal(a.data, 3);
        assert_int_equal(a.start_rc, 0);
        assert_int_equal(a.cancel_call_done_seen, 1);
        assert_int_equal(stalled.done, 1);
        assert_int_equal(stalled.result, -ECANCELED);
        assert_int_equal(b.done, 1);
        assert_int_equal(b.result, 0);
}

static void call_array_done(Call (*a)[3])
{
        for (size_t i = 0; i < ELEMENTSOF(*a); i++)
                call_done(&(*a)[i]);
}

static void test_free_with_pending(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_array_done) Call s[3] = { call_new(f), call_new(f), call_new(f) };
        _cleanup_(call_done) Call fresh = call_new(f);
        _cleanup_(call_done) Call late = call_new(f);

        for (size_t i = 0; i < ELEMENTSOF(s); i++)
                start_ok(f, &s[i], "/stall", (HttpRequestOptions){ 0 });
        wait_for(f, &f->stalls, 3);
        /* one more that never reached the server */
        start_ok(f, &fresh, "/hello", (HttpRequestOptions){ 0 });
        /* a new request from on_done while the client goes away is refused */
        s[0].act_in_done = true;
        s[0].start_call = &late;
        s[0].start_path = "/hello";
        assert_int_equal(http_client_pending(f->client), 4);

        f->client = http_client_free(f->client);
        assert_null(f->client);
        for (size_t i = 0; i < ELEMENTSOF(s); i++) {
                assert_int_equal(s[i].done, 1);
                assert_int_equal(s[i].result, -ECANCELED);
        }
        assert_int_equal(fresh.done, 1);
        assert_int_equal(fresh.result, -ECANCELED);
        assert_int_equal(s[0].start_rc, -ECANCELED);
        assert_int_equal(late.done, 0);
        assert_int_equal(f->done_total, 4);
        /* freeing NULL is fine */
        assert_null(http_client_free(NULL));
}

static void test_keepalive_reuses_connection(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call a = call_new(f);
        _cleanup_(call_done) Call b = call_new(f);
        _cleanup_(call_done) Call fresh = call_new(f);
        unsigned requests;

        a.act_in_done = true;
        a.start_call = &b;
        a.start_path = "/hello";
        start_ok(f, &a, "/hello", (HttpRequestOptions){ 0 });
        wait_for(f, &b.done, 1);
        assert_int_equal(a.result, 0);
        assert_int_equal(b.result, 0);
        assert_int_equal(server_connections(&f->srv), 1);

        start_ok(f, &fresh, "/hello",
                 (HttpRequestOptions){ .fresh_connection = true, .tcp_keepalive = true });
        wait_for(f, &fresh.done, 1);
        assert_int_equal(fresh.result, 0);
        assert_int_equal(server_connections(&f->srv), 2);
        pthread_mutex_lock(&f->srv.lock);
        requests = f->srv.requests;
        pthread_mutex_unlock(&f->srv.lock);
        assert_int_equal(requests, 3);
}

static void test_many_concurrent(void **state)
{
        Fixture *f = *state;
        Call *calls = calloc(MANY_REQUESTS, sizeof(Call));
        char path[64];

        assert_non_null(calls);
        f->check_threads = true;
        for (size_t i = 0; i < MANY_REQUESTS; i++) {
                calls[i] = call_new(f);
                snprintf(path, sizeof(path), "/hello?i=%zu", i);
                start_ok(f, &calls[i], path, (HttpRequestOptions){ 0 });
        }
        assert_int_equal(http_client_pending(f->client), MANY_REQUESTS);
        wait_for(f, &f->done_total, MANY_REQUESTS);
        assert_int_equal(f->new_threads, 0);
        assert_int_equal(http_client_pending(f->client), 0);
        for (size_t i = 0; i < MANY_REQUESTS; i++) {
                assert_int_equal(calls[i].done, 1);
                assert_int_equal(calls[i].result, 0);
                assert_string_equal(buf_str(&calls[i].body), "hello, world");
                call_done(&calls[i]);
        }
        free(calls);
        assert_true(server_connections(&f->srv) <= MANY_REQUESTS);
}

static void test_bad_options(void **state)
{
        Fixture *f = *state;
        _cleanup_(call_done) Call c = call_new(f);
        const char *crlf[] = { "X-Evil: a\r\nInjected: yes", NULL };
        const char *nocolon[] = { "NoColonHere", NULL };
        const char *noname[] = { ": value", NULL };
        const char *badname[] = { "Bad Name: value", NULL };
        char url[128];
        HttpRequest *req = (HttpRequest *)0x1;
        struct {
                HttpRequestOptions o;
                const char *what;
        } bad[] = {
                { { .url = NULL }, "no url" },
                { { .url = url, .on_done = NULL }, "no on_done" },
                { { .url = "ftp://127.0.0.1/" }, "ftp" },
                { { .url = "file:///etc/passwd" }, "file" },
                { { .url = "127.0.0.1:80/x" }, "no scheme" },
                { { .url = url, .method = "GE T" }, "space in method" },
                { { .url = url, .method = "" }, "empty method" },
                { { .url = url, .method = "AVERYLONGMETHODNAME" }, "long method" },
                { { .url = url, .method = "GET\r\n" }, "CRLF in method" },
                { { .url = url, .headers = crlf }, "CRLF in header" },
                { { .url = url, .headers = nocolon }, "header without colon" },
                { { .url = url, .headers = noname }, "header without name" },
                { { .url = url, .headers = badname }, "space in header name" },
                { { .url = url, .body_len = 3 }, "length without body" },
                { { .url = url, .timeout_ns = -1 }, "negative timeout" },
                { { .url = url, .idle_timeout_ns = -1 }, "negative idle" },
        };

        snprintf(url, sizeof(url), "%s/hello", f->url);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                HttpRequestOptions o = bad[i].o;
                if (i != 1)
                        o.on_done = call_on_done;
                o.userdata = &c;
                if (http_request_start(f->client, &o, &req) != -EINVAL)
                        fail_msg("%s: not refused", bad[i].what);
        }
        assert_int_equal(
                http_request_start(NULL, &(HttpRequestOptions){ .url = url, .on_done = call_on_done }, NULL),
                -EINVAL);
        assert_int_equal(http_request_start(f->client, NULL, NULL), -EINVAL);
        assert_ptr_equal(req, (HttpRequest *)0x1); /* untouched on failure */
        assert_int_equal(http_client_pending(f->client), 0);
        flush(f);
        assert_int_equal(c.done, 0);
        assert_null(http_client_new(NULL));
        http_request_cancel(NULL);
        assert_string_equal(http_request_error(NULL), "");
}

static void test_unix_socket(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));
        _cleanup_(call_done) Call c = call_new(f);
        char path[108];

        assert_non_null(f);
        snprintf(path, sizeof(path), "/tmp/test-http-client-%d.sock", (int)getpid());
        unlink(path);
        *state = f;
        fixture_setup(f, path);
        /* the host part is only for the Host header */
        snprintf(f->url, sizeof(f->url), "http://localhost");
        start_ok(f, &c, "/hello", (HttpRequestOptions){ .unix_socket = path });
        wait_for(f, &c.done, 1);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.result, 0);
        assert_string_equal(buf_str(&c.body), "hello, world");
}

static int setup_none(void **state)
{
        *state = NULL;
        return 0;
}

static int teardown_unix(void **state)
{
        return *state ? teardown(state) : 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_get_collects_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_post_echoes_body_and_headers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_methods, setup, teardown),
                cmocka_unit_test_setup_teardown(test_large_upload_skips_expect, setup, teardown),
                cmocka_unit_test_setup_teardown(test_interim_response_skipped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_non_2xx_body_collected, setup, teardown),
                cmocka_unit_test(test_header_lookup),
                cmocka_unit_test_setup_teardown(test_stream_delivered_in_pieces, setup, teardown),
                cmocka_unit_test_setup_teardown(test_on_data_error_aborts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idle_timer_restarts_on_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_dropped_mid_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_headers_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_inside_on_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_inside_on_headers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_on_done_starts_and_cancels, setup, teardown),
                cmocka_unit_test_setup_teardown(test_on_data_starts_and_cancels, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keepalive_reuses_connection, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unix_socket, setup_none, teardown_unix),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
