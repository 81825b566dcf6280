/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the Consul agent client against an in-process fake agent built on
 * libmicrohttpd (in its own thread), answering from a script: each request
 * takes the next answer, the last one repeats. The client runs on a real libev
 * loop; every wait is for an event, bounded by a safety timer. */
#include <ev.h>
#include <fcntl.h>
#include <jansson.h>
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
#include "consul.h"
#include "duration.h"
#include "http_client.h"
#include "macro.h"

/* A wait that takes longer than this fails the test instead of hanging it. */
#define WAIT_MAX_S 10.0
/* After a callback, the loop runs this long more to catch a second one. */
#define SETTLE_S          0.02
#define SHORT_DEADLINE_NS (100 * NSEC_PER_MSEC)
#define FAST_BACKOFF_NS   (1 * NSEC_PER_MSEC)
#define SLOW_BACKOFF_NS   (5 * NSEC_PER_SEC)
#define SCRIPT_MAX        16
#define RECORDED_MAX      16
#define RECORDED_BODY_MAX (256u * 1024)
#define STALLED_MAX       16
#define HUGE_BODY         (20u * 1024 * 1024)
#define IDS_MAX           8
#define TEST_TOKEN        "3f5a4b6c-1d2e-4f00-8a9b-0c1d2e3f4a5b"

/* ---- the fake Consul agent ---- */

typedef enum AnswerKind {
        ANSWER_TEXT, /* status + body */
        ANSWER_HANG, /* never answer (until the server stops) */
        ANSWER_DROP, /* close the connection without an answer */
        ANSWER_HUGE, /* 200 with a HUGE_BODY body */
} AnswerKind;

typedef struct Answer {
        AnswerKind kind;
        unsigned status;
        const char *body;
} Answer;

typedef struct Recorded {
        char method[16];
        char uri[1024];  /* the request target as sent, percent-encoding included */
        char path[1024]; /* decoded, without the query */
        char token[CONSUL_TOKEN_MAX + 1];
        bool has_token;
        char content_type[128];
        char filter[512]; /* decoded ?filter= */
        bool has_filter;
        char *body;
} Recorded;

typedef struct Server {
        struct MHD_Daemon *daemon;
        uint16_t port;
        pthread_mutex_t lock;
        Answer script[SCRIPT_MAX];
        size_t n_script, next;
        unsigned requests; /* answered, dropped or stalled */
        Recorded rec[RECORDED_MAX];
        struct MHD_Connection *stalled[STALLED_MAX];
        size_t n_stalled;
        int notify[2]; /* a byte per request handled, read by the test's loop */
        char unix_path[108];
} Server;

typedef struct ServerRequest {
        char uri[1024];
        Buf body;
        bool started;
        bool stalled;
} ServerRequest;

static void *server_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
        ServerRequest *sr = calloc(1, sizeof(*sr));

        if (!sr)
                return NULL;
        snprintf(sr->uri, sizeof(sr->uri), "%s", uri);
        buf_init(&sr->body, RECORDED_BODY_MAX);
        return sr;
}

static void copy_value(struct MHD_Connection *conn, enum MHD_ValueKind kind, const char *key, char *out,
                       size_t size, bool *ret_present)
{
        const char *v = MHD_lookup_connection_value(conn, kind, key);

        snprintf(out, size, "%s", v ? v : "");
        if (ret_present)
                *ret_present = v != NULL;
}

static void server_record(Server *srv, struct MHD_Connection *conn, const char *url, const char *method,
                          ServerRequest *sr, unsigned index)
{
        Recorded *r;

        if (index >= RECORDED_MAX)
                return;
        r = &srv->rec[index];
        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->uri, sizeof(r->uri), "%s", sr->uri);
        snprintf(r->path, sizeof(r->path), "%s", url);
        copy_value(conn, MHD_HEADER_KIND, "X-Consul-Token", r->token, sizeof(r->token), &r->has_token);
        copy_value(conn, MHD_HEADER_KIND, "Content-Type", r->content_type, sizeof(r->content_type), NULL);
        copy_value(conn, MHD_GET_ARGUMENT_KIND, "filter", r->filter, sizeof(r->filter), &r->has_filter);
        r->body = strndup(buf_str(&sr->body), sr->body.len);
}

static ssize_t huge_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        size_t n = MIN(max, HUGE_BODY - (size_t)pos);

        if (pos >= HUGE_BODY)
                return MHD_CONTENT_READER_END_OF_STREAM;
        memset(buf, ' ', n);
        if (pos == 0 && n > 0)
                buf[0] = '[';
        return (ssize_t)n;
}

static enum MHD_Result server_answer(struct MHD_Connection *conn, const Answer *a)
{
        struct MHD_Response *resp;
        enum MHD_Result r;
        const char *body = a->body ? a->body : "";

        if (a->kind == ANSWER_HUGE)
                resp = MHD_create_response_from_callback(HUGE_BODY, 64 * 1024, huge_read, NULL, NULL);
        else
                resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        /* as Consul: JSON for data, plain text for errors */
        MHD_add_response_header(resp, "Content-Type",
                                body[0] == '{' || body[0] == '[' ? "application/json"
                                                                 : "text/plain; charset=utf-8");
        r = MHD_queue_response(conn, a->kind == ANSWER_HUGE ? 200 : a->status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result server_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **con_cls)
{
        Server *srv = cls;
        ServerRequest *sr = *con_cls;
        Answer a = { .kind = ANSWER_TEXT, .status = 500, .body = "no answer scripted" };
        unsigned index;

        if (!sr)
                return MHD_NO;
        if (sr->stalled)
                return MHD_NO; /* resumed by server_stop() */
        if (!sr->started) {
                sr->started = true; /* headers only: the body follows */
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (buf_append(&sr->body, upload_data, *upload_data_size) < 0)
                        return MHD_NO;
                *upload_data_size = 0;
                return MHD_YES;
        }

        pthread_mutex_lock(&srv->lock);
        index = srv->requests++;
        if (srv->n_script > 0)
                a = srv->script[MIN(srv->next, srv->n_script - 1)];
        srv->next++;
        server_record(srv, conn, url, method, sr, index);
        if (a.kind == ANSWER_HANG) {
                if (srv->n_stalled < STALLED_MAX) {
                        sr->stalled = true;
                        MHD_suspend_connection(conn);
                        srv->stalled[srv->n_stalled++] = conn;
                } else {
                        a.kind = ANSWER_DROP;
                }
        }
        pthread_mutex_unlock(&srv->lock);
        (void)!write(srv->notify[1], "R", 1);
        if (a.kind == ANSWER_HANG)
                return MHD_YES;
        if (a.kind == ANSWER_DROP)
                return MHD_NO;
        return server_answer(conn, &a);
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

/* Listens on 127.0.0.1:0, or on a Unix socket when unix_path is given. */
static void server_start(Server *srv, const char *unix_path)
{
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int fd = -1;

        *srv = (Server){ 0 };
        assert_int_equal(pthread_mutex_init(&srv->lock, NULL), 0);
        assert_int_equal(pipe2(srv->notify, O_NONBLOCK | O_CLOEXEC), 0);
        if (unix_path) {
                struct sockaddr_un un = { .sun_family = AF_UNIX };
                assert_true(strlen(unix_path) < sizeof(un.sun_path));
                strcpy(un.sun_path, unix_path);
                strcpy(srv->unix_path, unix_path);
                unlink(unix_path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                assert_true(fd >= 0);
                assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
                assert_int_equal(listen(fd, 64), 0);
        }
        srv->daemon = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL,
                server_handler, srv, fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_SOCK_ADDR,
                fd >= 0 ? (void *)(intptr_t)fd : (void *)&sa, MHD_OPTION_URI_LOG_CALLBACK, server_uri_log,
                srv, MHD_OPTION_NOTIFY_COMPLETED, server_completed, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                (size_t)(64 * 1024), MHD_OPTION_END);
        assert_non_null(srv->daemon);
        if (fd < 0) {
                const union MHD_DaemonInfo *info =
                        MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
                assert_non_null(info);
                srv->port = info->port;
                assert_true(srv->port > 0);
        }
}

static void server_stop(Server *srv)
{
        struct MHD_Connection *resume[STALLED_MAX];
        size_t n;

        pthread_mutex_lock(&srv->lock);
        n = srv->n_stalled;
        memcpy(resume, srv->stalled, n * sizeof(resume[0]));
        srv->n_stalled = 0;
        pthread_mutex_unlock(&srv->lock);
        /* MHD refuses to stop with suspended connections */
        for (size_t i = 0; i < n; i++)
                MHD_resume_connection(resume[i]);
        MHD_stop_daemon(srv->daemon);
        for (size_t i = 0; i < RECORDED_MAX; i++)
                free(srv->rec[i].body);
        close(srv->notify[0]);
        close(srv->notify[1]);
        pthread_mutex_destroy(&srv->lock);
        if (srv->unix_path[0])
                unlink(srv->unix_path);
}

static void server_script(Server *srv, size_t n, const Answer *answers)
{
        assert_true(n <= SCRIPT_MAX);
        pthread_mutex_lock(&srv->lock);
        memcpy(srv->script, answers, n * sizeof(answers[0]));
        srv->n_script = n;
        srv->next = 0;
        pthread_mutex_unlock(&srv->lock);
}

#define SCRIPT(srv, ...)                                  \
        do {                                              \
                const Answer _a[] = { __VA_ARGS__ };      \
                server_script((srv), ELEMENTSOF(_a), _a); \
        } while (0)
#define TEXT(st, b)                                              \
        {                                                        \
                .kind = ANSWER_TEXT, .status = (st), .body = (b) \
        }
#define HANG                        \
        {                           \
                .kind = ANSWER_HANG \
        }
#define DROP                        \
        {                           \
                .kind = ANSWER_DROP \
        }
#define HUGE                        \
        {                           \
                .kind = ANSWER_HUGE \
        }

static unsigned server_requests(Server *srv)
{
        unsigned n;

        pthread_mutex_lock(&srv->lock);
        n = srv->requests;
        pthread_mutex_unlock(&srv->lock);
        return n;
}

/* ---- fixture ---- */

typedef struct Fixture {
        Server srv;
        struct ev_loop *loop;
        HttpClient *http;
        ConsulClient *consul;
        ev_io notify_io;
        unsigned handled; /* requests the server has reported */
        char addr[160];
} Fixture;

static void on_notify(struct ev_loop *loop, ev_io *w, int revents)
{
        Fixture *f = w->data;
        char b[64];
        ssize_t n = read(w->fd, b, sizeof(b));

        if (n > 0)
                f->handled += (unsigned)n;
}

static ConsulConfig test_config(const Fixture *f)
{
        return (ConsulConfig){
                .address = f->addr,
                .token = TEST_TOKEN,
                .attempts = 3,
                .backoff_initial_ns = FAST_BACKOFF_NS,
                .backoff_max_ns = 4 * FAST_BACKOFF_NS,
        };
}

/* Replaces the fixture's Consul client with one built from cfg. */
static void consul_reset(Fixture *f, const ConsulConfig *cfg)
{
        PacerError err = {};

        f->consul = consul_client_free(f->consul);
        assert_int_equal(consul_client_new(f->loop, f->http, cfg, &f->consul, &err), 0);
}

static void fixture_setup(Fixture *f, const char *unix_path)
{
        ConsulConfig cfg;

        server_start(&f->srv, unix_path);
        f->loop = ev_loop_new(EVFLAG_AUTO);
        assert_non_null(f->loop);
        ev_io_init(&f->notify_io, on_notify, f->srv.notify[0], EV_READ);
        f->notify_io.data = f;
        ev_io_start(f->loop, &f->notify_io);
        f->http = http_client_new(f->loop);
        assert_non_null(f->http);
        if (unix_path)
                snprintf(f->addr, sizeof(f->addr), "unix://%s", unix_path);
        else
                snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", f->srv.port);
        cfg = test_config(f);
        consul_reset(f, &cfg);
}

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        *state = f;
        fixture_setup(f, NULL);
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;
        size_t pending;

        if (!f)
                return 0;
        pending = consul_client_pending(f->consul);
        /* ops left by a failed test point at its dead stack: leak them instead */
        if (pending == 0) {
                f->consul = consul_client_free(f->consul);
                f->http = http_client_free(f->http);
                ev_io_stop(f->loop, &f->notify_io);
                ev_loop_destroy(f->loop);
        }
        server_stop(&f->srv);
        free(f);
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

        ev_now_update(f->loop);
        ev_timer_init(&safety, on_safety, WAIT_MAX_S, 0.);
        safety.data = &expired;
        ev_timer_start(f->loop, &safety);
        while (*counter < want && !expired)
                ev_run(f->loop, EVRUN_ONCE);
        ev_timer_stop(f->loop, &safety);
        assert_false(expired);
}

/* Runs the loop for SETTLE_S, so a callback that would fire twice gets its chance. */
static void settle(Fixture *f)
{
        bool expired = false;
        ev_timer t;

        ev_now_update(f->loop);
        ev_timer_init(&t, on_safety, SETTLE_S, 0.);
        t.data = &expired;
        ev_timer_start(f->loop, &t);
        while (!expired)
                ev_run(f->loop, EVRUN_ONCE);
}

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- one operation's view of its callback ---- */

typedef struct Result {
        unsigned calls;
        int r;
        char msg[CONSUL_MESSAGE_MAX];
        char ids[IDS_MAX][64];
        size_t n;
        /* actions run inside the callback */
        Fixture *free_client_of;
        ConsulOp *cancel_op;
} Result;

static void result_note(Result *x, int r, const char *message)
{
        x->calls++;
        x->r = r;
        assert_non_null(message);
        assert_null(strchr(message, '\n'));
        assert_true(strlen(message) < CONSUL_MESSAGE_MAX);
        snprintf(x->msg, sizeof(x->msg), "%s", message);
        if (x->cancel_op)
                consul_op_cancel(x->cancel_op);
        if (x->free_client_of)
                x->free_client_of->consul = consul_client_free(x->free_client_of->consul);
}

static void on_done(int r, const char *message, void *userdata)
{
        result_note(userdata, r, message);
}

static void on_list(int r, const char *message, char **ids, size_t n, void *userdata)
{
        Result *x = userdata;

        assert_true(n <= IDS_MAX);
        assert_true(r == 0 || n == 0);
        for (size_t i = 0; i < n; i++)
                snprintf(x->ids[i], sizeof(x->ids[i]), "%s", ids[i]);
        x->n = n;
        result_note(x, r, message);
}

/* Waits for the callback, then checks it does not fire again. */
static void expect_once(Fixture *f, Result *x)
{
        wait_for(f, &x->calls, 1);
        settle(f);
        assert_int_equal(x->calls, 1);
}

static const Recorded *recorded(Fixture *f, unsigned i)
{
        assert_true(i < server_requests(&f->srv));
        return &f->srv.rec[i];
}

/* ---- a full service definition ---- */

static const char *const web_tags[] = { "pacer", "v1" };
static const char *const web_meta_keys[] = { "pacer_task_id", "app-version" };
static const char *const web_meta_values[] = { "T1", "2" };

static ConsulServiceDef web_service(void)
{
        return (ConsulServiceDef){
                .id = "web-T1",
                .name = "web",
                .address = "10.0.0.5",
                .port = 31001,
                .tags = web_tags,
                .n_tags = ELEMENTSOF(web_tags),
                .meta_keys = web_meta_keys,
                .meta_values = web_meta_values,
                .n_meta = ELEMENTSOF(web_meta_keys),
                .check_id = "web-T1-ttl",
                .check_name = "pacer ttl",
                .ttl_ns = 15 * NSEC_PER_SEC,
                .deregister_critical_after_ns = 90 * NSEC_PER_SEC,
                .initial_status = "passing",
                .check_notes = "fed by pacer",
        };
}

static void start_verify(Fixture *f, const char *id, Result *x, ConsulOp **ret_op)
{
        PacerError err = {};
        assert_int_equal(consul_verify(f->consul, id, on_done, x, ret_op, &err), 0);
}

/* ---- register ---- */

static void test_register_sends_exact_json(void **state)
{
        Fixture *f = *state;
        ConsulServiceDef s = web_service();
        PacerError err = {};
        Result x = {};
        const Recorded *r;
        ConsulOp *op = NULL;

        SCRIPT(&f->srv, TEXT(200, ""));
        assert_int_equal(consul_register(f->consul, &s, on_done, &x, &op, &err), 0);
        assert_non_null(op);
        assert_int_equal(consul_client_pending(f->consul), 1);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_string_equal(x.msg, "register web-T1: registered");
        assert_int_equal(consul_client_pending(f->consul), 0);

        assert_int_equal(server_requests(&f->srv), 1);
        r = recorded(f, 0);
        assert_string_equal(r->method, "PUT");
        assert_string_equal(r->path, "/v1/agent/service/register");
        assert_string_equal(r->uri, "/v1/agent/service/register?replace-existing-checks");
        assert_true(r->has_token);
        assert_string_equal(r->token, TEST_TOKEN);
        assert_string_equal(r->content_type, "application/json");
        assert_string_equal(r->body,
                            "{\"ID\":\"web-T1\",\"Name\":\"web\",\"Tags\":[\"pacer\",\"v1\"],"
                            "\"Address\":\"10.0.0.5\",\"Port\":31001,"
                            "\"Meta\":{\"pacer_task_id\":\"T1\",\"app-version\":\"2\"},"
                            "\"Check\":{\"CheckID\":\"web-T1-ttl\",\"Name\":\"pacer ttl\",\"TTL\":\"15s\","
                            "\"Status\":\"passing\",\"Notes\":\"fed by pacer\","
                            "\"DeregisterCriticalServiceAfter\":\"1m30s\"}}");
}

static void test_register_minimal_without_token(void **state)
{
        Fixture *f = *state;
        ConsulConfig cfg = test_config(f);
        ConsulServiceDef with_check = {
                .id = "a-1",
                .name = "a",
                .check_id = "a-1-ttl",
                .ttl_ns = 1500 * NSEC_PER_MSEC,
        };
        ConsulServiceDef bare = { .id = "b-1", .name = "b" };
        PacerError err = {};
        Result x = {}, y = {};

        cfg.token = NULL;
        consul_reset(f, &cfg);
        SCRIPT(&f->srv, TEXT(200, ""));
        assert_int_equal(consul_register(f->consul, &with_check, on_done, &x, NULL, &err), 0);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_int_equal(consul_register(f->consul, &bare, on_done, &y, NULL, &err), 0);
        expect_once(f, &y);
        assert_int_equal(y.r, 0);

        assert_int_equal(server_requests(&f->srv), 2);
        /* no token: no header at all, and the default status is critical */
        assert_false(recorded(f, 0)->has_token);
        assert_string_equal(recorded(f, 0)->body,
                            "{\"ID\":\"a-1\",\"Name\":\"a\",\"Check\":{\"CheckID\":\"a-1-ttl\","
                            "\"TTL\":\"1.5s\",\"Status\":\"critical\"}}");
        assert_string_equal(recorded(f, 1)->body, "{\"ID\":\"b-1\",\"Name\":\"b\"}");
}

/* Each bad definition fails at once with -EINVAL and a message naming the field; nothing is sent. */
static void test_register_rejects_bad_definitions(void **state)
{
        Fixture *f = *state;
        _cleanup_free_ char *big = malloc(100 * 1024 + 1), *long_key = malloc(CONSUL_META_KEY_MAX + 2);
        const char *many_keys[CONSUL_META_PAIRS_MAX + 1], *many_values[CONSUL_META_PAIRS_MAX + 1];
        const char *many_tags[CONSUL_TAGS_MAX + 1];
        char key_names[CONSUL_META_PAIRS_MAX + 1][16];
        const char *tag_ctrl[] = { "ok", "bad\x01tag" };
        const char *k1[] = { "pacer_task_id" }, *v_newline[] = { "line1\nline2" }, *v_big[] = { big };
        const char *k_reserved[] = { "consul-version" }, *k_dot[] = { "a.b" }, *k_empty[] = { "" };
        const char *k_long[] = { long_key }, *k_dup[] = { "x", "x" }, *v_two[] = { "1", "2" };
        const char *v_one[] = { "1" };
        struct {
                ConsulServiceDef s;
                const char *expect; /* in the message */
        } cases[] = {
                { { .id = "w", .name = "w", .tags = tag_ctrl, .n_tags = 2 },
                  "Tags[1] contains a control character" },
                { { .id = "w", .name = "w", .meta_keys = k1, .meta_values = v_newline, .n_meta = 1 },
                  "Meta[\"pacer_task_id\"] contains a control character (0x0a)" },
                { { .id = "w", .name = "w", .meta_keys = k1, .meta_values = v_big, .n_meta = 1 },
                  "Meta[\"pacer_task_id\"] is 102400 bytes long, more than 512" },
                { { .id = "w", .name = "" }, "Name is required" },
                { { .id = "w", .name = NULL }, "Name is required" },
                { { .id = "", .name = "w" }, "register : ID is required" },
                { { .id = "w\r\nX-Evil: 1", .name = "w" },
                  "register w\\x0d\\x0aX-Evil: 1: ID contains a control" },
                { { .id = "w", .name = "bad\xff" }, "Name is not valid UTF-8" },
                { { .id = "w", .name = "w", .meta_keys = k_reserved, .meta_values = v_one, .n_meta = 1 },
                  "prefix \"consul-\" reserved" },
                { { .id = "w", .name = "w", .meta_keys = k_dot, .meta_values = v_one, .n_meta = 1 },
                  "Meta key \"a.b\" may contain only" },
                { { .id = "w", .name = "w", .meta_keys = k_empty, .meta_values = v_one, .n_meta = 1 },
                  "Meta key is empty" },
                { { .id = "w", .name = "w", .meta_keys = k_long, .meta_values = v_one, .n_meta = 1 },
                  "longer than 128 characters" },
                { { .id = "w", .name = "w", .meta_keys = k_dup, .meta_values = v_two, .n_meta = 2 },
                  "Meta key \"x\" given twice" },
                { { .id = "w",
                    .name = "w",
                    .meta_keys = many_keys,
                    .meta_values = many_values,
                    .n_meta = CONSUL_META_PAIRS_MAX + 1 },
                  "65 Meta pairs, more than 64" },
                { { .id = "w", .name = "w", .tags = many_tags, .n_tags = CONSUL_TAGS_MAX + 1 }, "65 Tags" },
                { { .id = "w", .name = "w", .port = 70000 }, "Port 70000 is out of range" },
                { { .id = "w", .name = "w", .check_id = "c" }, "a check needs a TTL" },
                { { .id = "w", .name = "w", .ttl_ns = NSEC_PER_SEC }, "Check.CheckID is required" },
                { { .id = "w",
                    .name = "w",
                    .check_id = "c",
                    .ttl_ns = NSEC_PER_SEC,
                    .initial_status = "ok" },
                  "Check.Status \"ok\" is not one of" },
                { { .id = "w", .name = "w", .check_id = "c", .ttl_ns = NSEC_PER_SEC, .check_notes = "a\tb" },
                  "Check.Notes contains a control character (0x09)" },
                { { .id = "w", .name = "w", .check_id = "c", .ttl_ns = -1 }, "negative check TTL" },
        };
        Result x = {};

        assert_non_null(big);
        assert_non_null(long_key);
        memset(big, 'v', 100 * 1024);
        big[100 * 1024] = 0;
        memset(long_key, 'k', CONSUL_META_KEY_MAX + 1);
        long_key[CONSUL_META_KEY_MAX + 1] = 0;
        for (size_t i = 0; i <= CONSUL_META_PAIRS_MAX; i++) {
                snprintf(key_names[i], sizeof(key_names[i]), "k%zu", i);
                many_keys[i] = key_names[i];
                many_values[i] = "v";
        }
        for (size_t i = 0; i <= CONSUL_TAGS_MAX; i++)
                many_tags[i] = "t";

        SCRIPT(&f->srv, TEXT(200, ""));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PacerError err = {};
                ConsulOp *op = NULL;
                int r = consul_register(f->consul, &cases[i].s, on_done, &x, &op, &err);

                if (r != -EINVAL || !strstr(err.msg, cases[i].expect))
                        fail_msg("case %zu: r=%d message \"%s\", expected -EINVAL and \"%s\"", i, r, err.msg,
                                 cases[i].expect);
                assert_null(op);
                assert_null(strchr(err.msg, '\n'));
        }
        /* the same limits hold at exactly the maximum */
        {
                ConsulServiceDef ok = { .id = "w",
                                        .name = "w",
                                        .meta_keys = many_keys,
                                        .meta_values = many_values,
                                        .n_meta = CONSUL_META_PAIRS_MAX };
                PacerError err = {};
                big[CONSUL_META_VALUE_MAX] = 0;
                long_key[CONSUL_META_KEY_MAX] = 0;
                many_values[0] = big;
                many_keys[1] = long_key;
                assert_int_equal(consul_register(f->consul, &ok, on_done, &x, NULL, &err), 0);
                expect_once(f, &x);
                assert_int_equal(x.r, 0);
        }
        assert_int_equal(server_requests(&f->srv), 1);
        assert_int_equal(http_client_pending(f->http), 0);
}

/* ---- verify, confirm gone, deregister ---- */

static void test_verify_present_and_absent(void **state)
{
        Fixture *f = *state;
        Result present = {}, absent = {};

        SCRIPT(&f->srv,
               TEXT(200, "{\"ID\":\"web-T1\",\"Service\":\"web\",\"Tags\":[\"pacer\"],\"Port\":31001}"),
               TEXT(404, "unknown service ID: web-T1"));
        start_verify(f, "web-T1", &present, NULL);
        expect_once(f, &present);
        assert_int_equal(present.r, 0);
        assert_string_equal(present.msg, "verify web-T1: registered in the local Consul agent");
        assert_string_equal(recorded(f, 0)->method, "GET");
        assert_string_equal(recorded(f, 0)->uri, "/v1/agent/service/web-T1");
        assert_string_equal(recorded(f, 0)->token, TEST_TOKEN);

        start_verify(f, "web-T1", &absent, NULL);
        expect_once(f, &absent);
        assert_int_equal(absent.r, -ENOENT);
        assert_non_null(strstr(absent.msg, "verify web-T1: not registered"));
        assert_non_null(strstr(absent.msg, "404: unknown service ID: web-T1"));
        /* 404 is an answer, not a failure to retry */
        assert_int_equal(server_requests(&f->srv), 2);
}

static void test_verify_wrong_shape(void **state)
{
        Fixture *f = *state;
        Result other = {}, not_object = {}, no_id = {}, not_json = {}, empty = {};

        SCRIPT(&f->srv, TEXT(200, "{\"ID\":\"web-T2\"}"), TEXT(200, "[\"web-T1\"]"),
               TEXT(200, "{\"Service\":\"web\"}"), TEXT(200, "<html>hello</html>"), TEXT(200, ""));
        start_verify(f, "web-T1", &other, NULL);
        expect_once(f, &other);
        assert_int_equal(other.r, -EBADMSG);
        assert_non_null(strstr(other.msg, "service \"web-T2\""));
        start_verify(f, "web-T1", &not_object, NULL);
        expect_once(f, &not_object);
        assert_int_equal(not_object.r, -EBADMSG);
        assert_non_null(strstr(not_object.msg, "JSON array"));
        start_verify(f, "web-T1", &no_id, NULL);
        expect_once(f, &no_id);
        assert_int_equal(no_id.r, -EBADMSG);
        start_verify(f, "web-T1", &not_json, NULL);
        expect_once(f, &not_json);
        assert_int_equal(not_json.r, -EBADMSG);
        assert_non_null(strstr(not_json.msg, "not JSON"));
        start_verify(f, "web-T1", &empty, NULL);
        expect_once(f, &empty);
        assert_int_equal(empty.r, -EBADMSG);
        /* a malformed answer is not retried */
        assert_int_equal(server_requests(&f->srv), 5);
}

static void test_confirm_gone(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result gone = {}, there = {};

        SCRIPT(&f->srv, TEXT(404, "unknown service ID: web-T1"), TEXT(200, "{\"ID\":\"web-T1\"}"));
        assert_int_equal(consul_confirm_gone(f->consul, "web-T1", on_done, &gone, NULL, &err), 0);
        expect_once(f, &gone);
        assert_int_equal(gone.r, 0);
        assert_string_equal(gone.msg, "confirm deregistration of web-T1: gone from the local Consul agent");
        assert_int_equal(consul_confirm_gone(f->consul, "web-T1", on_done, &there, NULL, &err), 0);
        expect_once(f, &there);
        assert_int_equal(there.r, -EEXIST);
        assert_non_null(strstr(there.msg, "still registered"));
        assert_string_equal(recorded(f, 1)->method, "GET");
        assert_string_equal(recorded(f, 1)->uri, "/v1/agent/service/web-T1");
}

static void test_deregister(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result done = {}, gone = {};

        /* 1.10 answers 200 for an unknown ID, later versions 404: both mean "not there now" */
        SCRIPT(&f->srv, TEXT(200, ""),
               TEXT(404,
                    "Unknown service ID \"web-T1\". Ensure that the service ID is passed, not the service name."));
        assert_int_equal(consul_deregister(f->consul, "web-T1", on_done, &done, NULL, &err), 0);
        expect_once(f, &done);
        assert_int_equal(done.r, 0);
        assert_string_equal(done.msg, "deregister web-T1: deregistered");
        assert_string_equal(recorded(f, 0)->method, "PUT");
        assert_string_equal(recorded(f, 0)->uri, "/v1/agent/service/deregister/web-T1");
        assert_string_equal(recorded(f, 0)->token, TEST_TOKEN);

        assert_int_equal(consul_deregister(f->consul, "web-T1", on_done, &gone, NULL, &err), 0);
        expect_once(f, &gone);
        assert_int_equal(gone.r, 0);
        assert_non_null(strstr(gone.msg, "already gone"));
        assert_int_equal(server_requests(&f->srv), 2);
}

/* With ACLs enabled, Consul 1.10 answers an unknown service or check with a 500 naming it: a final
 * answer, not a failure to retry. Other 500s still are. */
static void test_acl_unknown_answers_not_retried(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result dereg = {}, update = {}, other = {};

        SCRIPT(&f->srv, TEXT(500, "Unknown service \"web-T1\""), TEXT(500, "Unknown check \"web-T1-ttl\""),
               TEXT(500, "rpc error: Unknown service \"x\""));
        assert_int_equal(consul_deregister(f->consul, "web-T1", on_done, &dereg, NULL, &err), 0);
        expect_once(f, &dereg);
        assert_int_equal(dereg.r, 0);
        assert_string_equal(dereg.msg,
                            "deregister web-T1: already gone (Consul answered 500: Unknown service "
                            "\"web-T1\")");
        assert_int_equal(
                consul_check_update(f->consul, "web-T1-ttl", "passing", "ok", on_done, &update, NULL, &err),
                0);
        expect_once(f, &update);
        assert_int_equal(update.r, -ENOENT);
        assert_int_equal(server_requests(&f->srv), 2);
        /* the phrase must open the answer: anything else is a server error, retried */
        assert_int_equal(consul_deregister(f->consul, "web-T1", on_done, &other, NULL, &err), 0);
        expect_once(f, &other);
        assert_int_equal(other.r, -EIO);
        assert_int_equal(server_requests(&f->srv), 5);
}

/* Service and check ids are percent-encoded as one path segment. */
static void test_ids_percent_encoded(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result v = {}, u = {};

        SCRIPT(&f->srv, TEXT(200, "{\"ID\":\"web T1/\xc3\xbc?x\"}"), TEXT(200, ""));
        start_verify(f, "web T1/\xc3\xbc?x", &v, NULL);
        expect_once(f, &v);
        assert_int_equal(v.r, 0);
        assert_string_equal(recorded(f, 0)->uri, "/v1/agent/service/web%20T1%2F%C3%BC%3Fx");
        assert_int_equal(consul_check_update(f->consul, "c#1%", "passing", NULL, on_done, &u, NULL, &err),
                         0);
        expect_once(f, &u);
        assert_string_equal(recorded(f, 1)->uri, "/v1/agent/check/update/c%231%25");
}

/* ---- check update ---- */

static void test_check_update(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result x = {};
        const Recorded *r;

        SCRIPT(&f->srv, TEXT(200, ""));
        assert_int_equal(consul_check_update(f->consul, "web-T1-ttl", "warning",
                                             "HTTP 503\r\nbody: \"slow\"\x01\xff end", on_done, &x, NULL,
                                             &err),
                         0);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_string_equal(x.msg, "update check web-T1-ttl: updated");
        r = recorded(f, 0);
        assert_string_equal(r->method, "PUT");
        assert_string_equal(r->uri, "/v1/agent/check/update/web-T1-ttl");
        assert_string_equal(r->content_type, "application/json");
        assert_string_equal(r->token, TEST_TOKEN);
        /* CRLF → LF, other control characters → a space, invalid UTF-8 → '?' */
        assert_string_equal(r->body,
                            "{\"Status\":\"warning\",\"Output\":\"HTTP 503\\nbody: \\\"slow\\\" ? end\"}");
}

static void test_check_update_output_capped(void **state)
{
        Fixture *f = *state;
        _cleanup_free_ char *out = malloc(3 * CONSUL_CHECK_OUTPUT_MAX + 1);
        json_error_t jerr;
        json_t *j;
        const char *o;
        PacerError err = {};
        Result x = {};

        assert_non_null(out);
        /* multi-byte characters, so the cut must respect their boundaries */
        for (size_t i = 0; i < CONSUL_CHECK_OUTPUT_MAX; i++)
                memcpy(out + 3 * i, "\xe2\x82\xac", 3);
        out[3 * CONSUL_CHECK_OUTPUT_MAX] = 0;
        SCRIPT(&f->srv, TEXT(200, ""));
        assert_int_equal(consul_check_update(f->consul, "c", "critical", out, on_done, &x, NULL, &err), 0);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        j = json_loads(recorded(f, 0)->body, 0, &jerr);
        assert_non_null(j);
        o = json_string_value(json_object_get(j, "Output"));
        assert_non_null(o);
        assert_true(strlen(o) <= CONSUL_CHECK_OUTPUT_MAX);
        assert_true(strlen(o) > CONSUL_CHECK_OUTPUT_MAX - 8);
        assert_int_equal(strcmp(o + strlen(o) - 3, "..."), 0);
        assert_int_equal(strncmp(o, "\xe2\x82\xac\xe2\x82\xac", 6), 0);
        json_decref(j);
}

static void test_check_update_unknown_check(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result a = {}, b = {};

        /* later Consul versions: 404; 1.10: 500 "... does not have associated TTL" — neither retried */
        SCRIPT(&f->srv, TEXT(404, "Unknown check ID \"c\""),
               TEXT(500, "CheckID \"c\" does not have associated TTL"));
        assert_int_equal(consul_check_update(f->consul, "c", "passing", "ok", on_done, &a, NULL, &err), 0);
        expect_once(f, &a);
        assert_int_equal(a.r, -ENOENT);
        assert_int_equal(consul_check_update(f->consul, "c", "passing", "ok", on_done, &b, NULL, &err), 0);
        expect_once(f, &b);
        assert_int_equal(b.r, -ENOENT);
        assert_non_null(strstr(b.msg, "does not have associated TTL"));
        assert_int_equal(server_requests(&f->srv), 2);
}

static void test_bad_arguments_rejected(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result x = {};

        assert_int_equal(consul_check_update(f->consul, "c", "ok", NULL, on_done, &x, NULL, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "status \"ok\" is not one of"));
        assert_int_equal(consul_check_update(f->consul, "c", NULL, NULL, on_done, &x, NULL, &err), -EINVAL);
        assert_int_equal(consul_check_update(f->consul, "", "passing", NULL, on_done, &x, NULL, &err),
                         -EINVAL);
        assert_int_equal(consul_check_update(f->consul, "c", "passing", NULL, NULL, &x, NULL, &err),
                         -EINVAL);
        assert_int_equal(consul_verify(f->consul, "a\nb", on_done, &x, NULL, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "verify a\\x0ab: service ID contains a control character"));
        assert_int_equal(consul_verify(f->consul, NULL, on_done, &x, NULL, &err), -EINVAL);
        assert_int_equal(consul_deregister(f->consul, "", on_done, &x, NULL, &err), -EINVAL);
        assert_int_equal(consul_confirm_gone(f->consul, "\x7f", on_done, &x, NULL, &err), -EINVAL);
        assert_int_equal(consul_verify(NULL, "a", on_done, &x, NULL, &err), -EINVAL);
        assert_int_equal(consul_list_services_by_meta(f->consul, "consul-x", "v", on_list, &x, NULL, &err),
                         -EINVAL);
        assert_int_equal(consul_list_services_by_meta(f->consul, "k", "v\n", on_list, &x, NULL, &err),
                         -EINVAL);
        assert_int_equal(x.calls, 0);
        assert_int_equal(server_requests(&f->srv), 0);
        assert_int_equal(http_client_pending(f->http), 0);
}

/* ---- list by meta ---- */

static void test_list_by_meta(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result x = {}, unfiltered = {};

        /* the fake ignores ?filter=, as an old agent would: the client must filter itself */
        SCRIPT(&f->srv,
               TEXT(200,
                    "{\"web-T1\":{\"ID\":\"web-T1\",\"Service\":\"web\",\"Meta\":{\"pacer_task_id\":\"T1\"}},"
                    "\"web-T2\":{\"ID\":\"web-T2\",\"Service\":\"web\",\"Meta\":{\"pacer_task_id\":\"T2\"}},"
                    "\"db\":{\"ID\":\"db\",\"Service\":\"db\"},"
                    "\"odd\":{\"ID\":\"odd\",\"Meta\":{\"pacer_task_id\":1}},"
                    "\"web-T1-old\":{\"ID\":\"web-T1-old\",\"Meta\":{\"x\":\"y\",\"pacer_task_id\":\"T1\"}}}"));
        assert_int_equal(
                consul_list_services_by_meta(f->consul, "pacer_task_id", "T1", on_list, &x, NULL, &err), 0);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_int_equal(x.n, 2);
        assert_string_equal(x.ids[0], "web-T1");
        assert_string_equal(x.ids[1], "web-T1-old");
        assert_string_equal(x.msg, "list services with Meta pacer_task_id=T1: 2 found");
        assert_string_equal(recorded(f, 0)->method, "GET");
        assert_string_equal(recorded(f, 0)->path, "/v1/agent/services");
        assert_true(recorded(f, 0)->has_filter);
        assert_string_equal(recorded(f, 0)->filter, "Meta[\"pacer_task_id\"] == \"T1\"");

        /* a value the filter syntax cannot carry plainly: no filter, client-side only */
        assert_int_equal(consul_list_services_by_meta(f->consul, "pacer_task_id", "T\"1", on_list,
                                                      &unfiltered, NULL, &err),
                         0);
        expect_once(f, &unfiltered);
        assert_int_equal(unfiltered.r, 0);
        assert_int_equal(unfiltered.n, 0);
        assert_false(recorded(f, 1)->has_filter);
        assert_string_equal(recorded(f, 1)->uri, "/v1/agent/services");
}

static void test_list_wrong_shape(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result arr = {}, entry = {}, empty = {};

        SCRIPT(&f->srv, TEXT(200, "[]"), TEXT(200, "{\"a\":{\"Meta\":{\"k\":\"v\"}},\"b\":\"oops\"}"),
               TEXT(200, "{}"));
        assert_int_equal(consul_list_services_by_meta(f->consul, "k", "v", on_list, &arr, NULL, &err), 0);
        expect_once(f, &arr);
        assert_int_equal(arr.r, -EBADMSG);
        assert_int_equal(consul_list_services_by_meta(f->consul, "k", "v", on_list, &entry, NULL, &err), 0);
        expect_once(f, &entry);
        assert_int_equal(entry.r, -EBADMSG);
        assert_int_equal(entry.n, 0);
        assert_non_null(strstr(entry.msg, "service \"b\""));
        assert_int_equal(consul_list_services_by_meta(f->consul, "k", "v", on_list, &empty, NULL, &err), 0);
        expect_once(f, &empty);
        assert_int_equal(empty.r, 0);
        assert_int_equal(empty.n, 0);
}

/* ---- errors from Consul ---- */

static void test_403_is_eacces_with_token_hint(void **state)
{
        Fixture *f = *state;
        ConsulConfig cfg = test_config(f);
        ConsulServiceDef s = web_service();
        PacerError err = {};
        Result with = {}, without = {};

        SCRIPT(&f->srv, TEXT(403, "Permission denied: Missing service:write on web"));
        assert_int_equal(consul_register(f->consul, &s, on_done, &with, NULL, &err), 0);
        expect_once(f, &with);
        assert_int_equal(with.r, -EACCES);
        assert_non_null(strstr(with.msg, "register web-T1: Consul answered 403: Permission denied: Missing "
                                         "service:write on web"));
        assert_non_null(strstr(with.msg, "CONSUL_HTTP_TOKEN"));
        assert_non_null(strstr(with.msg, "--consul-token"));
        /* the secret itself never appears */
        assert_null(strstr(with.msg, TEST_TOKEN));

        cfg.token = "";
        consul_reset(f, &cfg);
        assert_int_equal(consul_register(f->consul, &s, on_done, &without, NULL, &err), 0);
        expect_once(f, &without);
        assert_int_equal(without.r, -EACCES);
        assert_non_null(
                strstr(without.msg, "no ACL token was given: set CONSUL_HTTP_TOKEN or --consul-token"));
        assert_false(recorded(f, 1)->has_token);
        /* not retried */
        assert_int_equal(server_requests(&f->srv), 2);
}

static void test_400_is_einval_with_consul_text(void **state)
{
        Fixture *f = *state;
        ConsulServiceDef s = web_service();
        PacerError err = {};
        Result x = {};

        SCRIPT(&f->srv, TEXT(400, "Invalid Service Meta:\r\nCouldn't load metadata pair\t('k', 'v')\n"));
        assert_int_equal(consul_register(f->consul, &s, on_done, &x, NULL, &err), 0);
        expect_once(f, &x);
        assert_int_equal(x.r, -EINVAL);
        /* one line: the newlines and tabs of Consul's text became single spaces */
        assert_string_equal(x.msg,
                            "register web-T1: Consul answered 400: Invalid Service Meta: Couldn't load "
                            "metadata pair ('k', 'v')");
        assert_int_equal(server_requests(&f->srv), 1);
}

static void test_error_text_capped(void **state)
{
        Fixture *f = *state;
        _cleanup_free_ char *text = malloc(5001);
        Result x = {};

        assert_non_null(text);
        memset(text, 'e', 5000);
        text[5000] = 0;
        SCRIPT(&f->srv, TEXT(400, text));
        start_verify(f, "web-T1", &x, NULL);
        expect_once(f, &x);
        assert_int_equal(x.r, -EINVAL);
        assert_non_null(strstr(x.msg, "eee..."));
        assert_true(strlen(x.msg) < CONSUL_ERROR_TEXT_MAX + 64);
}

static void test_other_status_not_retried(void **state)
{
        Fixture *f = *state;
        ConsulServiceDef s = web_service();
        PacerError err = {};
        Result x = {};

        SCRIPT(&f->srv, TEXT(405, "method GET not allowed"));
        assert_int_equal(consul_register(f->consul, &s, on_done, &x, NULL, &err), 0);
        expect_once(f, &x);
        assert_int_equal(x.r, -EIO);
        assert_non_null(strstr(x.msg, "405: method GET not allowed"));
        assert_int_equal(server_requests(&f->srv), 1);
}

/* ---- retries ---- */

static void test_500_retried_then_success(void **state)
{
        Fixture *f = *state;
        ConsulServiceDef s = web_service();
        PacerError err = {};
        Result x = {};

        SCRIPT(&f->srv, TEXT(500, "rpc error: No cluster leader"), TEXT(503, "busy"), TEXT(200, ""));
        assert_int_equal(consul_register(f->consul, &s, on_done, &x, NULL, &err), 0);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_int_equal(server_requests(&f->srv), 3);
        /* every attempt sends the same request */
        for (unsigned i = 0; i < 3; i++)
                assert_string_equal(recorded(f, i)->body, recorded(f, 0)->body);
}

static void test_500_persistent_is_eio(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result x = {};

        SCRIPT(&f->srv, TEXT(500, "rpc error: No cluster leader"));
        assert_int_equal(consul_deregister(f->consul, "web-T1", on_done, &x, NULL, &err), 0);
        expect_once(f, &x);
        assert_int_equal(x.r, -EIO);
        assert_string_equal(x.msg,
                            "deregister web-T1: Consul answered 500: rpc error: No cluster leader (after 3 "
                            "attempts)");
        assert_int_equal(server_requests(&f->srv), 3);
}

static void test_429_retried(void **state)
{
        Fixture *f = *state;
        Result x = {};

        SCRIPT(&f->srv, TEXT(429, "rate limited"), TEXT(200, "{\"ID\":\"web-T1\"}"));
        start_verify(f, "web-T1", &x, NULL);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_int_equal(server_requests(&f->srv), 2);
}

static void test_connection_reset_retried(void **state)
{
        Fixture *f = *state;
        Result x = {};

        SCRIPT(&f->srv, DROP, DROP, TEXT(200, "{\"ID\":\"web-T1\"}"));
        start_verify(f, "web-T1", &x, NULL);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_int_equal(server_requests(&f->srv), 3);
}

static void test_hanging_server_times_out(void **state)
{
        Fixture *f = *state;
        ConsulConfig cfg = test_config(f);
        ConsulServiceDef s = web_service();
        PacerError err = {};
        Result x = {};
        double t0, elapsed;

        cfg.call_timeout_ns = SHORT_DEADLINE_NS;
        consul_reset(f, &cfg);
        SCRIPT(&f->srv, HANG);
        t0 = now_s();
        assert_int_equal(consul_register(f->consul, &s, on_done, &x, NULL, &err), 0);
        expect_once(f, &x);
        elapsed = now_s() - t0 - SETTLE_S;
        assert_int_equal(x.r, -ETIMEDOUT);
        assert_non_null(strstr(x.msg, "did not answer within 100ms"));
        assert_non_null(strstr(x.msg, "after 3 attempts"));
        assert_int_equal(server_requests(&f->srv), 3);
        /* three deadlines of 100 ms and two short backoffs; the upper bound only catches a hang */
        assert_true(elapsed >= 0.29);
        assert_true(elapsed < 2.0);
}

static void test_connection_refused(void **state)
{
        Fixture *f = *state;
        ConsulConfig cfg = test_config(f);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        char addr[64];
        Result x = {};
        int fd;

        /* a port that was free a moment ago, with nobody listening */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        snprintf(addr, sizeof(addr), "http://127.0.0.1:%u", ntohs(sa.sin_port));
        cfg.address = addr;
        consul_reset(f, &cfg);

        start_verify(f, "web-T1", &x, NULL);
        expect_once(f, &x);
        assert_int_equal(x.r, -ECONNREFUSED);
        assert_non_null(strstr(x.msg, "verify web-T1: cannot reach the Consul agent"));
        assert_non_null(strstr(x.msg, "after 3 attempts"));
}

/* ---- bounded responses ---- */

static void test_huge_body_is_emsgsize(void **state)
{
        Fixture *f = *state;
        PacerError err = {};
        Result x = {}, y = {};
        double t0 = now_s();

        SCRIPT(&f->srv, HUGE);
        start_verify(f, "web-T1", &x, NULL);
        expect_once(f, &x);
        assert_int_equal(x.r, -EMSGSIZE);
        assert_non_null(strstr(x.msg, "over 1048576 bytes"));
        assert_int_equal(consul_list_services_by_meta(f->consul, "k", "v", on_list, &y, NULL, &err), 0);
        expect_once(f, &y);
        assert_int_equal(y.r, -EMSGSIZE);
        /* not retried, and not read to the end */
        assert_int_equal(server_requests(&f->srv), 2);
        assert_true(now_s() - t0 < 5.0);
}

static void test_small_response_cap(void **state)
{
        Fixture *f = *state;
        ConsulConfig cfg = test_config(f);
        Result x = {};

        cfg.max_response = 16;
        consul_reset(f, &cfg);
        SCRIPT(&f->srv, TEXT(200, "{\"ID\":\"web-T1\",\"Service\":\"web\"}"));
        start_verify(f, "web-T1", &x, NULL);
        expect_once(f, &x);
        assert_int_equal(x.r, -EMSGSIZE);
}

/* ---- cancel and free ---- */

static void test_cancel_in_flight(void **state)
{
        Fixture *f = *state;
        ConsulOp *op = NULL;
        Result x = {};

        SCRIPT(&f->srv, HANG);
        start_verify(f, "web-T1", &x, &op);
        wait_for(f, &f->handled, 1); /* the server holds the request */
        assert_int_equal(x.calls, 0);
        consul_op_cancel(op);
        /* fired before consul_op_cancel returned */
        assert_int_equal(x.calls, 1);
        assert_int_equal(x.r, -ECANCELED);
        assert_string_equal(x.msg, "verify web-T1: cancelled");
        assert_int_equal(consul_client_pending(f->consul), 0);
        assert_int_equal(http_client_pending(f->http), 0);
        settle(f);
        assert_int_equal(x.calls, 1);
}

static void test_cancel_before_sending(void **state)
{
        Fixture *f = *state;
        ConsulOp *op = NULL;
        Result x = {};

        SCRIPT(&f->srv, TEXT(200, "{\"ID\":\"web-T1\"}"));
        start_verify(f, "web-T1", &x, &op);
        consul_op_cancel(op);
        assert_int_equal(x.calls, 1);
        assert_int_equal(x.r, -ECANCELED);
        consul_op_cancel(NULL);
        settle(f);
        assert_int_equal(x.calls, 1);
}

/* Cancel while the op waits to retry: no request is in flight then. */
static void test_cancel_during_backoff(void **state)
{
        Fixture *f = *state;
        ConsulConfig cfg = test_config(f);
        ConsulOp *op = NULL;
        Result x = {};
        bool expired = false;
        ev_timer safety;

        cfg.backoff_initial_ns = cfg.backoff_max_ns = SLOW_BACKOFF_NS;
        consul_reset(f, &cfg);
        SCRIPT(&f->srv, TEXT(500, "busy"));
        start_verify(f, "web-T1", &x, &op);
        ev_now_update(f->loop);
        ev_timer_init(&safety, on_safety, WAIT_MAX_S, 0.);
        safety.data = &expired;
        ev_timer_start(f->loop, &safety);
        /* the first answer is in once the HTTP request is done; the backoff timer cannot fire in
         * the loop iteration that started it */
        while (http_client_pending(f->http) > 0 && !expired)
                ev_run(f->loop, EVRUN_ONCE);
        ev_timer_stop(f->loop, &safety);
        assert_false(expired);
        assert_int_equal(x.calls, 0);
        assert_int_equal(consul_client_pending(f->consul), 1);
        consul_op_cancel(op);
        assert_int_equal(x.calls, 1);
        assert_int_equal(x.r, -ECANCELED);
        settle(f);
        assert_int_equal(x.calls, 1);
        assert_int_equal(server_requests(&f->srv), 1);
}

static void test_free_cancels_pending(void **state)
{
        Fixture *f = *state;
        ConsulServiceDef s = web_service();
        PacerError err = {};
        Result a = {}, b = {}, c = {};

        SCRIPT(&f->srv, HANG);
        start_verify(f, "web-T1", &a, NULL);
        assert_int_equal(consul_register(f->consul, &s, on_done, &b, NULL, &err), 0);
        assert_int_equal(consul_list_services_by_meta(f->consul, "k", "v", on_list, &c, NULL, &err), 0);
        wait_for(f, &f->handled, 3);
        f->consul = consul_client_free(f->consul);
        assert_int_equal(a.calls, 1);
        assert_int_equal(b.calls, 1);
        assert_int_equal(c.calls, 1);
        assert_int_equal(a.r, -ECANCELED);
        assert_int_equal(b.r, -ECANCELED);
        assert_int_equal(c.r, -ECANCELED);
        assert_int_equal(http_client_pending(f->http), 0);
        settle(f);
        assert_int_equal(a.calls + b.calls + c.calls, 3);
}

/* A callback may free the client; the other pending op is cancelled exactly once, and a callback
 * that then tries to cancel it again does nothing. */
static void test_free_inside_callback(void **state)
{
        Fixture *f = *state;
        ConsulOp *hanging = NULL;
        Result first = {}, second = {};

        SCRIPT(&f->srv, HANG, TEXT(200, "{\"ID\":\"web-T1\"}"));
        start_verify(f, "web-T2", &second, &hanging);
        wait_for(f, &f->handled, 1);
        first.free_client_of = f;
        start_verify(f, "web-T1", &first, NULL);
        second.cancel_op = hanging; /* its own callback: a no-op */
        expect_once(f, &first);
        assert_int_equal(first.r, 0);
        assert_null(f->consul);
        assert_int_equal(second.calls, 1);
        assert_int_equal(second.r, -ECANCELED);
        settle(f);
        assert_int_equal(second.calls, 1);
}

/* A callback may cancel another operation. */
static void test_callback_cancels_another(void **state)
{
        Fixture *f = *state;
        ConsulOp *hanging = NULL;
        Result first = {}, second = {};

        SCRIPT(&f->srv, HANG, TEXT(404, "unknown service ID: web-T1"));
        start_verify(f, "web-T2", &second, &hanging);
        wait_for(f, &f->handled, 1);
        first.cancel_op = hanging;
        start_verify(f, "web-T1", &first, NULL);
        expect_once(f, &first);
        assert_int_equal(first.r, -ENOENT);
        assert_int_equal(second.calls, 1);
        assert_int_equal(second.r, -ECANCELED);
        assert_int_equal(consul_client_pending(f->consul), 0);
}

/* ---- configuration ---- */

static void test_bad_config_rejected(void **state)
{
        Fixture *f = *state;
        static const struct {
                ConsulConfig cfg;
                const char *expect;
        } cases[] = {
                { { .token = "abc\r\nX-Evil: 1" }, "Consul token contains a space, a control character" },
                { { .token = "abc def" }, "at offset 3" },
                { { .token = "t\xc3\xa9" }, "non-ASCII" },
                { { .address = "ftp://127.0.0.1:21" }, "scheme must be http, https or unix" },
                { { .address = "http://127.0.0.1:8500/v1" }, "without a path" },
                { { .address = "http://user:pw@127.0.0.1:8500" }, "credentials" },
                { { .address = "http://" }, "expected host:port" },
                { { .address = "127.0.0.1:8500\r\nX: y" }, "control character" },
                { { .address = "unix://relative.sock" }, "unix:///absolute/path" },
                { { .attempts = CONSUL_ATTEMPTS_MAX + 1 }, "attempts" },
                { { .call_timeout_ns = -1 }, "negative" },
        };
        char long_token[CONSUL_TOKEN_MAX + 2];
        ConsulConfig too_long = { .token = long_token };
        ConsulClient *c = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PacerError err = {};
                int r = consul_client_new(f->loop, f->http, &cases[i].cfg, &c, &err);
                if (r != -EINVAL || !strstr(err.msg, cases[i].expect))
                        fail_msg("case %zu: r=%d message \"%s\", expected \"%s\"", i, r, err.msg,
                                 cases[i].expect);
                assert_null(c);
                assert_null(strchr(err.msg, '\n'));
                /* a secret is never echoed */
                if (cases[i].cfg.token)
                        assert_null(strstr(err.msg, cases[i].cfg.token));
        }
        memset(long_token, 'a', sizeof(long_token) - 1);
        long_token[sizeof(long_token) - 1] = 0;
        assert_int_equal(consul_client_new(f->loop, f->http, &too_long, &c, NULL), -EINVAL);
        assert_int_equal(consul_client_new(NULL, f->http, NULL, &c, NULL), -EINVAL);
        assert_int_equal(consul_client_new(f->loop, NULL, NULL, &c, NULL), -EINVAL);
        assert_null(c);
        assert_null(consul_client_free(NULL));
}

static void test_good_config_forms(void **state)
{
        Fixture *f = *state;
        static const char *const good[] = {
                NULL,
                "",
                "127.0.0.1:8500",
                "localhost",
                "http://127.0.0.1:8500/",
                "HTTPS://consul.example:8501",
                "unix:///run/consul/http.sock",
                "[::1]:8500",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                ConsulConfig cfg = { .address = good[i], .token = TEST_TOKEN };
                ConsulClient *c = NULL;
                PacerError err = {};
                if (consul_client_new(f->loop, f->http, &cfg, &c, &err) != 0)
                        fail_msg("address \"%s\" refused: %s", strna(good[i]), err.msg);
                assert_non_null(c);
                assert_int_equal(consul_client_pending(c), 0);
                c = consul_client_free(c);
        }
}

static void test_config_from_env(void **state)
{
        Fixture *f = *state;
        ConsulConfig cfg = {}, flags = { .address = "10.0.0.1:8500", .token = "from-flag" };
        ConsulClient *c = NULL;
        Result x = {};
        char addr[64];

        snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->srv.port);
        assert_int_equal(setenv("CONSUL_HTTP_ADDR", addr, 1), 0);
        assert_int_equal(setenv("CONSUL_HTTP_TOKEN", "from-env", 1), 0);
        assert_int_equal(unsetenv("CONSUL_HTTP_SSL"), 0);
        consul_config_from_env(&cfg);
        assert_string_equal(cfg.address, addr);
        assert_string_equal(cfg.token, "from-env");
        assert_false(cfg.https);
        /* flags win over the environment */
        consul_config_from_env(&flags);
        assert_string_equal(flags.address, "10.0.0.1:8500");
        assert_string_equal(flags.token, "from-flag");

        /* CONSUL_HTTP_SSL=true: https for a scheme-less address, which this plain server refuses */
        assert_int_equal(setenv("CONSUL_HTTP_SSL", "true", 1), 0);
        consul_config_from_env(&cfg);
        assert_true(cfg.https);
        cfg.call_timeout_ns = 2 * NSEC_PER_SEC;
        cfg.attempts = 1;
        assert_int_equal(consul_client_new(f->loop, f->http, &cfg, &c, NULL), 0);
        assert_int_equal(consul_verify(c, "web-T1", on_done, &x, NULL, NULL), 0);
        expect_once(f, &x);
        assert_true(x.r < 0);
        assert_non_null(strstr(x.msg, "https://127.0.0.1:"));
        c = consul_client_free(c);
        unsetenv("CONSUL_HTTP_ADDR");
        unsetenv("CONSUL_HTTP_TOKEN");
        unsetenv("CONSUL_HTTP_SSL");
}

static int setup_unix(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));
        char path[108];

        assert_non_null(f);
        snprintf(path, sizeof(path), "/tmp/test-consul-%d.sock", (int)getpid());
        *state = f;
        fixture_setup(f, path);
        return 0;
}

static void test_unix_socket(void **state)
{
        Fixture *f = *state;
        Result x = {};

        SCRIPT(&f->srv, TEXT(200, "{\"ID\":\"web-T1\"}"));
        start_verify(f, "web-T1", &x, NULL);
        expect_once(f, &x);
        assert_int_equal(x.r, 0);
        assert_string_equal(recorded(f, 0)->uri, "/v1/agent/service/web-T1");
        assert_string_equal(recorded(f, 0)->token, TEST_TOKEN);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_register_sends_exact_json, setup, teardown),
                cmocka_unit_test_setup_teardown(test_register_minimal_without_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_register_rejects_bad_definitions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_present_and_absent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_wrong_shape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_confirm_gone, setup, teardown),
                cmocka_unit_test_setup_teardown(test_deregister, setup, teardown),
                cmocka_unit_test_setup_teardown(test_acl_unknown_answers_not_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ids_percent_encoded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_update, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_update_output_capped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_update_unknown_check, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_arguments_rejected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_by_meta, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_wrong_shape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_403_is_eacces_with_token_hint, setup, teardown),
                cmocka_unit_test_setup_teardown(test_400_is_einval_with_consul_text, setup, teardown),
                cmocka_unit_test_setup_teardown(test_error_text_capped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_status_not_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_500_retried_then_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_500_persistent_is_eio, setup, teardown),
                cmocka_unit_test_setup_teardown(test_429_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_reset_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hanging_server_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_huge_body_is_emsgsize, setup, teardown),
                cmocka_unit_test_setup_teardown(test_small_response_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_before_sending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_during_backoff, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_cancels_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_inside_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_callback_cancels_another, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_config_rejected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_good_config_forms, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_from_env, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unix_socket, setup_unix, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
