/* SPDX-License-Identifier: Apache-2.0 */
#include "http_client.h"

#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <ev.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>

#include "duration.h"
#include "log.h"
#include "macro.h"

#ifndef CURL_WRITEFUNC_ERROR /* before libcurl 7.87: any count but the one passed is an error */
#define CURL_WRITEFUNC_ERROR 0xFFFFFFFF
#endif

/* Longest request method accepted: every registered method is shorter. */
#define HTTP_METHOD_MAX 16
/* RFC 9110 token characters: what a method or a header name may consist of. */
#define HTTP_TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"
/* Error texts quote at most this much of the URL. */
#define HTTP_ERROR_URL_MAX 200
/* The part of an error text after "METHOD URL: ". */
#define HTTP_ERROR_DETAIL_MAX 320
/* With tcp_keepalive, a silent peer is probed after this long, then every
 * HTTP_KEEPALIVE_INTERVAL_S: a dead one is noticed within about two minutes. */
#define HTTP_KEEPALIVE_IDLE_S     30L
#define HTTP_KEEPALIVE_INTERVAL_S 10L

typedef struct HttpSocket {
        ev_io io;
        HttpClient *client;
        struct HttpSocket *prev, *next;
} HttpSocket;

struct HttpRequest {
        HttpClient *client;
        HttpRequest *prev, *next; /* every request not yet destroyed */
        HttpRequest *todo_next;   /* work deferred until libcurl has returned */
        CURL *easy;
        struct curl_slist *headers;
        HttpResponse resp;
        ev_timer idle;
        ev_tstamp idle_after; /* seconds; 0 = no idle timeout */
        ev_tstamp last_byte;
        http_headers_fn on_headers;
        http_data_fn on_data;
        http_done_fn on_done;
        void *userdata;
        char *url;
        char *error;
        int abort_result; /* set when one of our curl callbacks ended the transfer */
        bool added;       /* in the multi handle */
        bool queued;      /* on the client's todo list */
        bool final_headers;
        bool streaming; /* final response is 2xx and on_data is set */
        bool done;      /* on_done has fired */
        char method[HTTP_METHOD_MAX + 1];
        char errbuf[CURL_ERROR_SIZE];
};

/* Easy handles kept for reuse: about the requests a busy client has in flight at once. */
#define HTTP_SPARE_HANDLES 32

struct HttpClient {
        struct ev_loop *loop;
        CURLM *multi;
        ev_timer timer; /* libcurl's one timeout */
        HttpRequest *requests;
        HttpSocket *sockets;
        HttpRequest *todo, **todo_tail;
        size_t n_pending;
        /* >0 while libcurl may run our callbacks: libcurl then refuses to add or
         * remove handles, so that work waits on the todo list. */
        unsigned in_curl;
        bool closing;
        /* finished easy handles, reset, for the next requests: creating one costs more
         * than the request it carries on a kept-alive connection */
        CURL *spare[HTTP_SPARE_HANDLES];
        size_t n_spare;
};

static const struct {
        CURLcode code;
        int error;
} curl_errors[] = {
        { CURLE_OPERATION_TIMEDOUT, -ETIMEDOUT }, /* deadline or connect timeout */
        { CURLE_COULDNT_CONNECT, -ECONNREFUSED }, /* refused or unreachable */
        { CURLE_RECV_ERROR, -ECONNRESET },        /* the connection broke ... */
        { CURLE_SEND_ERROR, -ECONNRESET },
        { CURLE_PARTIAL_FILE, -ECONNRESET }, /* ... or closed before the body was complete */
        { CURLE_GOT_NOTHING, -ECONNRESET },  /* ... or before any response */
        { CURLE_OUT_OF_MEMORY, -ENOMEM },
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int curl_code_to_errno(CURLcode code)
{
        for (size_t i = 0; i < ELEMENTSOF(curl_errors); i++)
                if (curl_errors[i].code == code)
                        return curl_errors[i].error;
        return -EIO;
}

/* The URL for an error text: without credentials, shortened with "...". */
static void url_for_error(const char *url, char *buf, size_t size)
{
        const char *host = strstr(url, "://"), *at = NULL;
        int n;

        if (host) {
                host += STRLEN("://");
                at = memrchr(host, '@', strcspn(host, "/?#"));
        }
        if (at)
                n = snprintf(buf, size, "%.*s%s", (int)(host - url), url, at + 1);
        else
                n = snprintf(buf, size, "%s", url);
        if (n >= 0 && (size_t)n >= size && size > 3)
                memcpy(buf + size - 4, "...", 4);
}

static void request_set_error(HttpRequest *r, const char *fmt, ...) _printf_(2, 3);
static void request_set_error(HttpRequest *r, const char *fmt, ...)
{
        char detail[HTTP_ERROR_DETAIL_MAX], url[HTTP_ERROR_URL_MAX + 1];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        url_for_error(r->url, url, sizeof(url));
        free(r->error);
        if (asprintf(&r->error, "%s %s: %s", r->method, url, detail) < 0)
                r->error = NULL;
}

static void socket_free(HttpClient *c, HttpSocket *s)
{
        ev_io_stop(c->loop, &s->io);
        if (s->prev)
                s->prev->next = s->next;
        else
                c->sockets = s->next;
        if (s->next)
                s->next->prev = s->prev;
        free(s);
}

static void request_destroy(HttpRequest *r)
{
        HttpClient *c = r->client;

        /* libcurl refuses to remove a handle from inside its callbacks */
        assert((c->in_curl == 0 || !r->added) && !r->queued);
        ev_timer_stop(c->loop, &r->idle);
        if (r->added)
                curl_multi_remove_handle(c->multi, r->easy);
        if (r->easy && !c->closing && c->n_spare < HTTP_SPARE_HANDLES) {
                curl_easy_reset(r->easy);
                c->spare[c->n_spare++] = r->easy;
        } else
                curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        buf_done(&r->resp.body);
        buf_done(&r->resp.headers);
        free(r->url);
        free(r->error);
        if (r->prev)
                r->prev->next = r->next;
        else
                c->requests = r->next;
        if (r->next)
                r->next->prev = r->prev;
        free(r);
}

static void request_defer(HttpRequest *r)
{
        HttpClient *c = r->client;

        if (r->queued)
                return;
        r->queued = true;
        r->todo_next = NULL;
        *c->todo_tail = r;
        c->todo_tail = &r->todo_next;
}

/* Fires on_done (exactly once: r->done guards every path here) and frees the
 * request, or leaves it to the todo list when libcurl is on the stack. */
static void request_finish(HttpRequest *r, int result)
{
        HttpClient *c = r->client;

        assert(!r->done);
        r->done = true;
        c->n_pending--;
        ev_timer_stop(c->loop, &r->idle);
        if (result == 0) {
                free(r->error);
                r->error = NULL;
        }
        r->on_done(r, result, &r->resp, r->userdata);
        /* queued: client_run_todo() is on the stack and reaches it */
        if (c->in_curl > 0 || r->queued)
                request_defer(r);
        else
                request_destroy(r);
}

static int request_add(HttpRequest *r)
{
        CURLMcode m = curl_multi_add_handle(r->client->multi, r->easy);

        if (m != CURLM_OK)
                return m == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
        r->added = true;
        return 0;
}

static void client_run_todo(HttpClient *c)
{
        HttpRequest *r;
        int k;

        while ((r = c->todo)) {
                c->todo = r->todo_next;
                if (!c->todo)
                        c->todo_tail = &c->todo;
                r->queued = false;
                r->todo_next = NULL;
                if (r->done) {
                        request_destroy(r);
                        continue;
                }
                k = r->added ? 0 : request_add(r);
                if (k < 0) {
                        request_set_error(r, "cannot start the transfer: %s", strerror(-k));
                        request_finish(r, k);
                }
        }
}

static void request_complete(HttpRequest *r, CURLcode code)
{
        long status = 0, os_errno = 0;
        const char *detail;
        int result;

        if (r->resp.status == 0 && curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
                r->resp.status = status;
        if (r->abort_result < 0) {
                result = r->abort_result; /* the error text was set where we aborted */
        } else if (code != CURLE_OK) {
                result = curl_code_to_errno(code);
                detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
                (void)curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
                if (os_errno > 0 && os_errno < INT_MAX && !strstr(detail, strerror((int)os_errno)))
                        request_set_error(r, "%s (%s)", detail, strerror((int)os_errno));
                else
                        request_set_error(r, "%s", detail);
        } else {
                result = 0;
        }
        request_finish(r, result);
}

static void client_drain(HttpClient *c)
{
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(c->multi, &left))) {
                CURLcode code = m->data.result;
                char *p = NULL;
                HttpRequest *r;

                if (m->msg != CURLMSG_DONE)
                        continue;
                (void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
                r = (HttpRequest *)p;
                if (r && !r->done)
                        request_complete(r, code);
        }
}

/* Runs libcurl for an event, then everything that had to wait for it to return. */
static void client_action(HttpClient *c, curl_socket_t fd, int flags)
{
        CURLMcode m;
        int running;

        c->in_curl++;
        m = curl_multi_socket_action(c->multi, fd, flags, &running);
        c->in_curl--;
        if (m != CURLM_OK)
                log_warn("http: curl_multi_socket_action: %s", curl_multi_strerror(m));
        client_run_todo(c);
        client_drain(c);
}

static void on_socket_io(struct ev_loop *loop, ev_io *w, int revents)
{
        HttpSocket *s = container_of(w, HttpSocket, io);
        int flags = 0;

        if (revents & EV_READ)
                flags |= CURL_CSELECT_IN;
        if (revents & EV_WRITE)
                flags |= CURL_CSELECT_OUT;
        if (revents & EV_ERROR)
                flags |= CURL_CSELECT_ERR;
        /* s may be freed inside */
        client_action(s->client, w->fd, flags);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        client_action(container_of(w, HttpClient, timer), CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
        HttpClient *c = userp;
        HttpSocket *s = socketp;
        int events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (s)
                        socket_free(c, s);
                return 0;
        }
        if (!s) {
                s = calloc(1, sizeof(*s));
                if (!s)
                        return -1;
                s->client = c;
                s->next = c->sockets;
                if (s->next)
                        s->next->prev = s;
                c->sockets = s;
                ev_init(&s->io, on_socket_io);
                if (curl_multi_assign(c->multi, fd, s) != CURLM_OK) {
                        socket_free(c, s);
                        return -1;
                }
        } else {
                ev_io_stop(c->loop, &s->io);
        }
        if (what & CURL_POLL_IN)
                events |= EV_READ;
        if (what & CURL_POLL_OUT)
                events |= EV_WRITE;
        ev_io_set(&s->io, fd, events);
        if (events)
                ev_io_start(c->loop, &s->io);
        return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        HttpClient *c = userp;

        /* libcurl must not be re-entered from here: the loop calls it back instead */
        ev_timer_stop(c->loop, &c->timer);
        if (timeout_ms >= 0) {
                ev_timer_set(&c->timer, (double)timeout_ms / 1000., 0.);
                ev_timer_start(c->loop, &c->timer);
        }
        return 0;
}

static void request_touch(HttpRequest *r)
{
        /* the idle timer checks this when it fires instead of being re-armed per read */
        if (r->idle_after > 0)
                r->last_byte = ev_now(r->client->loop);
}

static void on_idle_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        HttpRequest *r = container_of(w, HttpRequest, idle);
        ev_tstamp left = r->last_byte + r->idle_after - ev_now(loop);

        if (left > 0) {
                ev_timer_set(w, left, 0.);
                ev_timer_start(loop, w);
                return;
        }
        request_set_error(r, "no data received for %.0f ms", r->idle_after * 1000.);
        request_finish(r, -ETIMEDOUT);
}

/* Makes our curl callback fail the transfer; request_complete() reports why. */
static size_t request_abort(HttpRequest *r, int error, const char *fmt, ...) _printf_(3, 4);
static size_t request_abort(HttpRequest *r, int error, const char *fmt, ...)
{
        char detail[HTTP_ERROR_DETAIL_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        r->abort_result = error;
        request_set_error(r, "%s", detail);
        return CURL_WRITEFUNC_ERROR;
}

static bool header_line_is_end(const char *p, size_t len)
{
        return (len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n');
}

static size_t on_curl_header(char *p, size_t size, size_t n, void *userdata)
{
        HttpRequest *r = userdata;
        size_t len = size * n;
        long status = 0;

        if (r->done)
                return CURL_WRITEFUNC_ERROR; /* cancelled while libcurl was busy */
        request_touch(r);
        if (r->final_headers)
                return len; /* trailers after a chunked body */
        if (len >= STRLEN("HTTP/") && strneq(p, "HTTP/", STRLEN("HTTP/"))) {
                /* a new status line: headers of an interim (1xx) response are not kept */
                buf_reset(&r->resp.headers);
                return len;
        }
        if (!header_line_is_end(p, len)) {
                int k = buf_append(&r->resp.headers, p, len);
                if (k == -EMSGSIZE)
                        return request_abort(r, k, "response headers over %zu bytes", r->resp.headers.max);
                if (k < 0)
                        return request_abort(r, k, "no memory for the response headers");
                return len;
        }

        (void)curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 100 && status < 200)
                return len;
        r->resp.status = status;
        r->final_headers = true;
        r->streaming = r->on_data && status >= 200 && status < 300;
        if (r->on_headers) {
                r->on_headers(r, &r->resp, r->userdata);
                if (r->done)
                        return CURL_WRITEFUNC_ERROR;
        }
        return len;
}

static size_t on_curl_write(char *p, size_t size, size_t n, void *userdata)
{
        HttpRequest *r = userdata;
        size_t len = size * n;
        int k;

        if (r->done)
                return CURL_WRITEFUNC_ERROR;
        request_touch(r);
        if (r->streaming) {
                k = r->on_data(r, p, len, r->userdata);
                if (r->done)
                        return CURL_WRITEFUNC_ERROR; /* cancelled from inside on_data */
                if (k < 0)
                        return request_abort(r, k, "the data callback failed: %s", strerror(-k));
                return len;
        }
        k = buf_append(&r->resp.body, p, len);
        if (k == -EMSGSIZE)
                return request_abort(r, k, "response body over %zu bytes", r->resp.body.max);
        if (k < 0)
                return request_abort(r, k, "no memory for the response body");
        return len;
}

HttpClient *http_client_new(struct ev_loop *loop)
{
        _cleanup_free_ HttpClient *c = NULL;

        if (!loop)
                return NULL;
        (void)pthread_once(&curl_once, curl_init_once);
        if (curl_init_result != CURLE_OK)
                return NULL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->loop = loop;
        c->todo_tail = &c->todo;
        ev_init(&c->timer, on_timer);
        c->multi = curl_multi_init();
        if (!c->multi)
                return NULL;
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
                curl_multi_cleanup(c->multi);
                return NULL;
        }
        return TAKE_PTR(c);
}

HttpClient *http_client_free(HttpClient *c)
{
        if (!c)
                return NULL;
        assert(c->in_curl == 0);
        c->closing = true;
        /* on_done of one may cancel others: cancel destroys at once (libcurl is
         * not on the stack), so the head of the list is always the next one */
        while (c->requests) {
                if (c->requests->done)
                        request_destroy(c->requests);
                else
                        http_request_cancel(c->requests);
        }
        while (c->n_spare > 0)
                curl_easy_cleanup(c->spare[--c->n_spare]);
        curl_multi_cleanup(c->multi);
        ev_timer_stop(c->loop, &c->timer);
        while (c->sockets)
                socket_free(c, c->sockets);
        free(c);
        return NULL;
}

static bool method_is_valid(const char *m)
{
        size_t n = strlen(m);

        return n > 0 && n <= HTTP_METHOD_MAX && strspn(m, HTTP_TOKEN_CHARS) == n;
}

static bool header_is_valid(const char *h)
{
        size_t n = strspn(h, HTTP_TOKEN_CHARS);

        /* "Name: value", "Name:" (drops a header libcurl adds) or "Name;" (sends it empty);
         * no CR or LF anywhere, so a value cannot smuggle in another header */
        return n > 0 && (h[n] == ':' || h[n] == ';') && strcspn(h, "\r\n") == strlen(h);
}

static bool headers_have(const char *const *headers, const char *name)
{
        size_t n = strlen(name);

        for (const char *const *h = headers; h && *h; h++)
                if (strncasecmp(*h, name, n) == 0 && ((*h)[n] == ':' || (*h)[n] == ';'))
                        return true;
        return false;
}

static int options_validate(const HttpRequestOptions *o)
{
        if (!o->url || !o->on_done)
                return -EINVAL;
        if (strncasecmp(o->url, "http://", STRLEN("http://")) != 0 &&
            strncasecmp(o->url, "https://", STRLEN("https://")) != 0)
                return -EINVAL;
        if (o->method && !method_is_valid(o->method))
                return -EINVAL;
        for (const char *const *h = o->headers; h && *h; h++)
                if (!header_is_valid(*h))
                        return -EINVAL;
        if (o->body_len > 0 && !o->body)
                return -EINVAL;
        if (o->timeout_ns < 0 || o->connect_timeout_ns < 0 || o->idle_timeout_ns < 0)
                return -EINVAL;
        return 0;
}

static long ns_to_ms(int64_t ns)
{
        int64_t ms = ns / NSEC_PER_MSEC + (ns % NSEC_PER_MSEC != 0);
        return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

static int request_build_headers(HttpRequest *r, const HttpRequestOptions *o, bool has_body)
{
        struct curl_slist *l;

        for (const char *const *h = o->headers; h && *h; h++) {
                l = curl_slist_append(r->headers, *h);
                if (!l)
                        return -ENOMEM;
                r->headers = l;
        }
        /* "Expect: 100-continue" costs a round trip on every larger body */
        if (!headers_have(o->headers, "Expect")) {
                l = curl_slist_append(r->headers, "Expect:");
                if (!l)
                        return -ENOMEM;
                r->headers = l;
        }
        /* libcurl would label a body as a form; better no type than a wrong one */
        if (has_body && !headers_have(o->headers, "Content-Type")) {
                l = curl_slist_append(r->headers, "Content-Type:");
                if (!l)
                        return -ENOMEM;
                r->headers = l;
        }
        return 0;
}

static int request_setup(HttpRequest *r, const HttpRequestOptions *o)
{
        const char *m = r->method;
        bool has_body = o->body_len > 0 || streq(m, "POST") || streq(m, "PUT") || streq(m, "PATCH");
        CURL *e = r->easy;
        int k;

        k = request_build_headers(r, o, has_body && !streq(m, "HEAD"));
        if (k < 0)
                return k;

#define SET(opt, val)                                                         \
        do {                                                                  \
                CURLcode _c = curl_easy_setopt(e, opt, val);                  \
                if (_c != CURLE_OK)                                           \
                        return _c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL; \
        } while (0)

        SET(CURLOPT_PRIVATE, r);
        SET(CURLOPT_URL, o->url);
#if LIBCURL_VERSION_NUM >= 0x075500
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
        SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_ERRORBUFFER, r->errbuf);
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        /* the peers are cluster services; a proxy from the environment would be a surprise */
        SET(CURLOPT_PROXY, "");
        SET(CURLOPT_HEADERFUNCTION, on_curl_header);
        SET(CURLOPT_HEADERDATA, r);
        SET(CURLOPT_WRITEFUNCTION, on_curl_write);
        SET(CURLOPT_WRITEDATA, r);
        SET(CURLOPT_HTTPHEADER, r->headers);
        if (o->timeout_ns > 0)
                SET(CURLOPT_TIMEOUT_MS, ns_to_ms(o->timeout_ns));
        if (o->connect_timeout_ns > 0)
                SET(CURLOPT_CONNECTTIMEOUT_MS, ns_to_ms(o->connect_timeout_ns));
        if (o->tcp_keepalive) {
                SET(CURLOPT_TCP_KEEPALIVE, 1L);
                SET(CURLOPT_TCP_KEEPIDLE, HTTP_KEEPALIVE_IDLE_S);
                SET(CURLOPT_TCP_KEEPINTVL, HTTP_KEEPALIVE_INTERVAL_S);
        }
        if (o->fresh_connection)
                SET(CURLOPT_FRESH_CONNECT, 1L);
        if (o->tls_no_verify) {
                SET(CURLOPT_SSL_VERIFYPEER, 0L);
                SET(CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (o->unix_socket)
                SET(CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);

        if (streq(m, "HEAD")) {
                SET(CURLOPT_NOBODY, 1L);
        } else if (has_body) {
                /* the size first: COPYPOSTFIELDS copies that many bytes */
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
                SET(CURLOPT_COPYPOSTFIELDS, o->body_len > 0 ? (const char *)o->body : "");
                if (!streq(m, "POST"))
                        SET(CURLOPT_CUSTOMREQUEST, m);
        } else if (!streq(m, "GET")) {
                SET(CURLOPT_CUSTOMREQUEST, m);
        }
#undef SET
        return 0;
}

int http_request_start(HttpClient *c, const HttpRequestOptions *o, HttpRequest **ret_req)
{
        HttpRequest *r;
        int k;

        if (!c || !o)
                return -EINVAL;
        k = options_validate(o);
        if (k < 0)
                return k;
        if (c->closing)
                return -ECANCELED;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->client = c;
        r->next = c->requests;
        if (r->next)
                r->next->prev = r;
        c->requests = r;
        buf_init(&r->resp.body, o->max_body ? o->max_body : HTTP_BODY_MAX_DEFAULT);
        buf_init(&r->resp.headers, HTTP_HEADERS_MAX);
        strcpy(r->method, o->method ? o->method : "GET");
        r->on_headers = o->on_headers;
        r->on_data = o->on_data;
        r->on_done = o->on_done;
        r->userdata = o->userdata;
        ev_init(&r->idle, on_idle_timer);
        r->url = strdup(o->url);
        r->easy = c->n_spare > 0 ? c->spare[--c->n_spare] : curl_easy_init();
        if (!r->url || !r->easy) {
                k = -ENOMEM;
                goto fail;
        }
        k = request_setup(r, o);
        if (k < 0)
                goto fail;
        /* from inside a libcurl callback the handle can only be added once libcurl returns */
        if (c->in_curl > 0)
                request_defer(r);
        else {
                k = request_add(r);
                if (k < 0)
                        goto fail;
        }
        if (o->idle_timeout_ns > 0) {
                r->idle_after = duration_to_seconds(o->idle_timeout_ns);
                r->last_byte = ev_now(c->loop);
                ev_timer_set(&r->idle, r->idle_after, 0.);
                ev_timer_start(c->loop, &r->idle);
        }
        c->n_pending++;
        if (ret_req)
                *ret_req = r;
        return 0;

fail:
        request_destroy(r);
        return k;
}

void http_request_cancel(HttpRequest *r)
{
        if (!r || r->done)
                return;
        request_set_error(r, "cancelled");
        request_finish(r, -ECANCELED);
}

const char *http_request_error(const HttpRequest *r)
{
        if (!r || !r->error)
                return "";
        return r->error;
}

const char *http_response_header(const HttpResponse *resp, const char *name, char *buf, size_t size)
{
        const char *p, *end;
        size_t n;

        if (!resp || !name || !buf || size == 0)
                return NULL;
        n = strlen(name);
        if (n == 0)
                return NULL;
        p = buf_str(&resp->headers);
        end = p + resp->headers.len;
        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p)), *line_end = eol ? eol : end;

                if ((size_t)(line_end - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
                        const char *v = p + n + 1, *ve = line_end;
                        size_t len;

                        while (v < ve && (*v == ' ' || *v == '\t'))
                                v++;
                        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                                ve--;
                        len = MIN((size_t)(ve - v), size - 1);
                        memcpy(buf, v, len);
                        buf[len] = 0;
                        return buf;
                }
                p = eol ? eol + 1 : end;
        }
        return NULL;
}

size_t http_client_pending(const HttpClient *c)
{
        return c ? c->n_pending : 0;
}

int http_request_peer(HttpRequest *r, struct sockaddr_storage *ret_addr, socklen_t *ret_len)
{
        struct sockaddr_storage a = { 0 };
        char *ip = NULL;
        long port = 0;

        if (!r || !r->easy || curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK ||
            curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_PORT, &port) != CURLE_OK || !ip || !*ip)
                return -ENOTCONN;
        if (port <= 0 || port > 65535)
                return -EAFNOSUPPORT;
        struct sockaddr_in *v4 = (struct sockaddr_in *)&a;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a;
        if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
                v4->sin_family = AF_INET;
                v4->sin_port = htons((uint16_t)port);
                *ret_len = sizeof(*v4);
        } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
                v6->sin6_family = AF_INET6;
                v6->sin6_port = htons((uint16_t)port);
                *ret_len = sizeof(*v6);
        } else
                return -EAFNOSUPPORT;
        *ret_addr = a;
        return 0;
}
