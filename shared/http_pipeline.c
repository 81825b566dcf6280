/* SPDX-License-Identifier: Apache-2.0 */
#include "http_pipeline.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "macro.h"

#define PIPELINE_CONNECTIONS_MAX 64
#define PIPELINE_DEPTH_MAX       4096
/* Requests written but not yet taken by the kernel, per connection. */
#define PIPELINE_OUT_MAX  (16u * 1024 * 1024)
#define PIPELINE_OUT_KEEP (64u * 1024) /* what a drained send buffer keeps allocated */
/* Read at most this much per readiness event before answering callbacks. */
#define PIPELINE_READ_SIZE      (64u * 1024)
#define PIPELINE_CHUNK_LINE_MAX 64
#define PIPELINE_HEADER_LINE    1024 /* one request header, with its name */
/* The fewest requests in flight on every open connection before another is opened. */
#define PIPELINE_SPREAD 32

typedef struct Pending {
        http_pipeline_done_fn cb;
        void *userdata;
        double deadline;
} Pending;

typedef enum ConnState {
        CONN_CLOSED,
        CONN_CONNECTING,
        CONN_OPEN,
} ConnState;

typedef enum RespState {
        RESP_HEAD,
        RESP_LENGTH,     /* Content-Length bytes */
        RESP_CHUNK_SIZE, /* a chunk-size line */
        RESP_CHUNK_DATA,
        RESP_CHUNK_END, /* the CRLF after a chunk's data */
        RESP_TRAILER,   /* trailer lines up to the empty one */
        RESP_UNTIL_EOF, /* neither length nor chunked: the body ends with the connection */
} RespState;

typedef struct Conn {
        HttpPipeline *p;
        int fd;
        uint64_t gen; /* which connection of this slot: a callback may close it and open another */
        ConnState state;
        ev_io io;
        int io_events;
        ev_timer timer;
        Buf out;
        size_t out_off; /* written up to here */
        Buf in;
        size_t in_off; /* parsed up to here */
        Pending *ring;
        size_t head, n;
        RespState rs;
        long status;
        size_t remaining;
        bool close_after;
        Buf body;
} Conn;

struct HttpPipeline {
        struct ev_loop *loop;
        struct sockaddr_storage addr;
        socklen_t addr_len;
        char *host, *path;
        size_t depth, max_body;
        double timeout_s;
        Conn *conns;
        size_t n_conns;
        size_t in_flight;
        uint64_t connects;
        bool closing;
};

static void conn_update_io(Conn *c);

static Pending ring_pop(Conn *c)
{
        Pending pd = c->ring[c->head];

        c->head = (c->head + 1) % c->p->depth;
        c->n--;
        c->p->in_flight--;
        return pd;
}

/* Closes the connection and fails what was in flight on it. The requests are
 * taken off first: a callback may post again, on this slot too. */
static void conn_fail(Conn *c, int r)
{
        HttpPipeline *p = c->p;
        size_t n = c->n;
        _cleanup_free_ Pending *failed = n > 0 ? calloc(n, sizeof(Pending)) : NULL;

        for (size_t i = 0; i < n; i++) {
                Pending pd = ring_pop(c);
                if (failed)
                        failed[i] = pd;
                else if (pd.cb) /* out of memory: tell them now, in order all the same */
                        pd.cb(r, 0, "", 0, pd.userdata);
        }
        ev_io_stop(p->loop, &c->io);
        ev_timer_stop(p->loop, &c->timer);
        c->io_events = 0;
        c->fd = safe_close(c->fd);
        c->state = CONN_CLOSED;
        buf_reset(&c->out);
        buf_reset(&c->in);
        buf_reset(&c->body);
        c->out_off = c->in_off = 0;
        c->head = 0;
        c->rs = RESP_HEAD;
        c->close_after = false;
        for (size_t i = 0; failed && i < n; i++)
                if (failed[i].cb)
                        failed[i].cb(r, 0, "", 0, failed[i].userdata);
}

static void conn_arm_timer(Conn *c)
{
        HttpPipeline *p = c->p;

        if (c->n == 0 || ev_is_active(&c->timer))
                return;
        ev_timer_set(&c->timer, MAX(c->ring[c->head].deadline - ev_now(p->loop), 0.), 0.);
        ev_timer_start(p->loop, &c->timer);
}

/* Fires at the deadline of the request that was oldest when it was armed: the
 * answers to it and to others may have come since. */
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Conn *c = w->data;

        if (c->n > 0 && c->ring[c->head].deadline <= ev_now(loop)) {
                conn_fail(c, -ETIMEDOUT);
                return;
        }
        conn_arm_timer(c);
}

static void response_done(Conn *c)
{
        Pending pd = ring_pop(c);
        long status = c->status;
        bool close_after = c->close_after;

        c->rs = RESP_HEAD;
        c->close_after = false;
        if (pd.cb)
                pd.cb(0, status, buf_str(&c->body), c->body.len, pd.userdata);
        buf_reset(&c->body);
        if (close_after)
                conn_fail(c, -ECONNRESET); /* the server said it closes: nothing more comes */
}

static const char *header_find(const char *head, const char *end, const char *name, size_t *ret_len)
{
        size_t n = strlen(name);

        for (const char *p = head; p < end;) {
                const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                        eol = end;
                if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
                        const char *v = p + n + 1, *ve = eol;
                        while (v < ve && (*v == ' ' || *v == '\t'))
                                v++;
                        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                                ve--;
                        *ret_len = (size_t)(ve - v);
                        return v;
                }
                p = eol + 2;
        }
        return NULL;
}

static bool token_in(const char *v, size_t len, const char *token)
{
        size_t n = strlen(token);

        for (size_t i = 0; i + n <= len; i++)
                if (strncasecmp(v + i, token, n) == 0 && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
                    (i + n == len || v[i + n] == ' ' || v[i + n] == ','))
                        return true;
        return false;
}

static int parse_size(const char *s, size_t len, int base, size_t *ret)
{
        size_t v = 0;

        if (len == 0)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                int d;
                if (s[i] >= '0' && s[i] <= '9')
                        d = s[i] - '0';
                else if (base == 16 && s[i] >= 'a' && s[i] <= 'f')
                        d = s[i] - 'a' + 10;
                else if (base == 16 && s[i] >= 'A' && s[i] <= 'F')
                        d = s[i] - 'A' + 10;
                else
                        return -EBADMSG;
                if (v > (SIZE_MAX - (size_t)d) / (size_t)base)
                        return -EMSGSIZE;
                v = v * (size_t)base + (size_t)d;
        }
        *ret = v;
        return 0;
}

/* Status line and headers of the next response, at in_off. 0 when more bytes are needed,
 * 1 when parsed, < 0 on a bad response. */
static int parse_head(Conn *c)
{
        const char *start = c->in.data + c->in_off, *end = c->in.data + c->in.len, *hend, *v;
        size_t avail = (size_t)(end - start), len, clen;
        int r;

        hend = memmem(start, avail, "\r\n\r\n", 4);
        if (!hend)
                return avail > HTTP_PIPELINE_HEAD_MAX ? -EMSGSIZE : 0;
        if ((size_t)(hend - start) + 4 > HTTP_PIPELINE_HEAD_MAX)
                return -EMSGSIZE;
        /* "HTTP/1.x NNN reason" */
        if (hend - start < 12 || strncmp(start, "HTTP/1.", 7) != 0 || start[8] != ' ' ||
            parse_size(start + 9, 3, 10, &len) < 0 || (start[12] != ' ' && start[12] != '\r'))
                return -EBADMSG;
        c->status = (long)len;
        const char *headers = memmem(start, (size_t)(hend - start) + 2, "\r\n", 2) + 2;
        c->in_off += (size_t)(hend - start) + 4;
        if (c->status >= 100 && c->status < 200)
                return 1; /* an interim response (100 Continue): the final one follows */

        v = header_find(headers, hend + 2, "Connection", &len);
        c->close_after = (v && token_in(v, len, "close")) || start[7] == '0';
        if (c->status == 204 || c->status == 304) {
                c->rs = RESP_LENGTH;
                c->remaining = 0;
        } else if ((v = header_find(headers, hend + 2, "Transfer-Encoding", &len))) {
                if (!token_in(v, len, "chunked"))
                        return -EBADMSG;
                c->rs = RESP_CHUNK_SIZE;
        } else if ((v = header_find(headers, hend + 2, "Content-Length", &len))) {
                r = parse_size(v, len, 10, &clen);
                if (r < 0)
                        return r;
                if (clen > c->p->max_body)
                        return -EMSGSIZE;
                c->rs = RESP_LENGTH;
                c->remaining = clen;
        } else {
                c->rs = RESP_UNTIL_EOF;
                c->close_after = true;
        }
        return 1;
}

static int take_body(Conn *c, size_t n)
{
        int r = buf_append(&c->body, c->in.data + c->in_off, n);

        c->in_off += n;
        return r;
}

/* A CRLF-terminated line at in_off, of at most max bytes: its length (without the CRLF),
 * 0 with *ret_line NULL when more bytes are needed. */
static int take_line(Conn *c, size_t max, const char **ret_line, size_t *ret_len)
{
        const char *start = c->in.data + c->in_off;
        size_t avail = c->in.len - c->in_off;
        const char *eol = memmem(start, avail, "\r\n", 2);

        *ret_line = NULL;
        if (!eol)
                return avail > max ? -EMSGSIZE : 0;
        if ((size_t)(eol - start) > max)
                return -EMSGSIZE;
        *ret_line = start;
        *ret_len = (size_t)(eol - start);
        c->in_off += *ret_len + 2;
        return 0;
}

/* Answers every complete response in the input; < 0 when the stream is broken. */
static int parse_responses(Conn *c)
{
        const char *line;
        size_t len, avail;
        int r;

        while (c->fd >= 0) {
                avail = c->in.len - c->in_off;
                switch (c->rs) {
                case RESP_HEAD:
                        if (avail == 0)
                                return 0;
                        if (c->n == 0)
                                return -EBADMSG; /* an answer to nothing */
                        r = parse_head(c);
                        if (r <= 0)
                                return r;
                        if (c->status >= 100 && c->status < 200)
                                continue;
                        if (c->rs == RESP_LENGTH && c->remaining == 0)
                                response_done(c);
                        break;
                case RESP_LENGTH:
                        if (avail == 0)
                                return 0;
                        len = MIN(avail, c->remaining);
                        r = take_body(c, len);
                        if (r < 0)
                                return r;
                        c->remaining -= len;
                        if (c->remaining == 0)
                                response_done(c);
                        break;
                case RESP_CHUNK_SIZE:
                        r = take_line(c, PIPELINE_CHUNK_LINE_MAX, &line, &len);
                        if (r < 0 || !line)
                                return r;
                        const char *semi = memchr(line, ';', len); /* chunk extensions are ignored */
                        r = parse_size(line, semi ? (size_t)(semi - line) : len, 16, &c->remaining);
                        if (r < 0)
                                return r;
                        if (c->remaining > c->p->max_body - c->body.len)
                                return -EMSGSIZE;
                        c->rs = c->remaining == 0 ? RESP_TRAILER : RESP_CHUNK_DATA;
                        break;
                case RESP_CHUNK_DATA:
                        if (avail == 0)
                                return 0;
                        len = MIN(avail, c->remaining);
                        r = take_body(c, len);
                        if (r < 0)
                                return r;
                        c->remaining -= len;
                        if (c->remaining == 0)
                                c->rs = RESP_CHUNK_END;
                        break;
                case RESP_CHUNK_END:
                        if (avail < 2)
                                return 0;
                        if (memcmp(c->in.data + c->in_off, "\r\n", 2) != 0)
                                return -EBADMSG;
                        c->in_off += 2;
                        c->rs = RESP_CHUNK_SIZE;
                        break;
                case RESP_TRAILER:
                        r = take_line(c, HTTP_PIPELINE_HEAD_MAX, &line, &len);
                        if (r < 0 || !line)
                                return r;
                        if (len == 0)
                                response_done(c);
                        break;
                case RESP_UNTIL_EOF:
                        if (avail == 0)
                                return 0;
                        r = take_body(c, avail);
                        if (r < 0)
                                return r;
                        break;
                }
        }
        return 0;
}

static void conn_read(Conn *c)
{
        size_t got = 0;
        int r;

        while (got < PIPELINE_READ_SIZE) {
                if (c->in_off > 0 && c->in_off == c->in.len) {
                        buf_reset(&c->in);
                        c->in_off = 0;
                }
                r = buf_reserve(&c->in, PIPELINE_READ_SIZE);
                if (r < 0) {
                        conn_fail(c, r);
                        return;
                }
                ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        /* what came before the end is answered; a body that runs to the end of the
                         * connection ends here; the rest never will be */
                        uint64_t gen = c->gen;
                        if (n == 0 && parse_responses(c) >= 0 && c->gen == gen && c->fd >= 0 &&
                            c->rs == RESP_UNTIL_EOF && c->n > 0)
                                response_done(c);
                        if (c->gen == gen && c->fd >= 0)
                                conn_fail(c, -ECONNRESET);
                        return;
                }
                c->in.len += (size_t)n;
                c->in.data[c->in.len] = 0;
                got += (size_t)n;
        }
        r = parse_responses(c);
        if (r < 0 && c->fd >= 0) {
                conn_fail(c, r);
                return;
        }
        /* what is left is a partial response: keep it at the start */
        if (c->in_off > 0 && c->fd >= 0) {
                buf_consume(&c->in, c->in_off);
                c->in_off = 0;
        }
        if (c->fd >= 0)
                conn_arm_timer(c);
}

static void conn_write(Conn *c)
{
        while (c->out_off < c->out.len) {
                ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0) {
                        conn_fail(c, -ECONNRESET);
                        return;
                }
                c->out_off += (size_t)n;
        }
        if (c->out_off == c->out.len) {
                /* a burst of calls (thousands of launches) grows it to megabytes: not kept */
                buf_reset_shrink(&c->out, PIPELINE_OUT_KEEP);
                c->out_off = 0;
        }
        conn_update_io(c);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
        Conn *c = w->data;

        if (c->state == CONN_CONNECTING) {
                int err = 0;
                socklen_t l = sizeof(err);
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                        err = errno;
                if (err != 0) {
                        conn_fail(c, err == ECONNREFUSED ? -ECONNREFUSED : -err);
                        return;
                }
                c->state = CONN_OPEN;
        }
        uint64_t gen = c->gen;
        if (revents & EV_WRITE)
                conn_write(c);
        if (c->gen == gen && c->fd >= 0 && (revents & EV_READ))
                conn_read(c);
}

static void conn_update_io(Conn *c)
{
        HttpPipeline *p = c->p;
        int events = EV_READ;

        if (c->fd < 0)
                return;
        if (c->state == CONN_CONNECTING || c->out_off < c->out.len)
                events |= EV_WRITE;
        if (events == c->io_events)
                return;
        ev_io_stop(p->loop, &c->io);
        ev_io_set(&c->io, c->fd, events);
        ev_io_start(p->loop, &c->io);
        c->io_events = events;
}

static int conn_open(Conn *c)
{
        HttpPipeline *p = c->p;
        int one = 1, fd;

        fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (const struct sockaddr *)&p->addr, p->addr_len) < 0 && errno != EINPROGRESS) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        c->fd = fd;
        c->gen++;
        c->state = CONN_CONNECTING;
        c->io_events = 0;
        p->connects++;
        conn_update_io(c);
        return 0;
}

/* The connection a new request goes on: the least busy open one, unless all
 * are busy and another may be opened. */
static Conn *conn_pick(HttpPipeline *p)
{
        Conn *best = NULL, *closed = NULL;

        for (size_t i = 0; i < p->n_conns; i++) {
                Conn *c = &p->conns[i];
                if (c->state == CONN_CLOSED) {
                        if (!closed)
                                closed = c;
                        continue;
                }
                if (c->n < p->depth && (!best || c->n < best->n))
                        best = c;
        }
        if (closed && (!best || best->n >= PIPELINE_SPREAD))
                return closed;
        return best;
}

bool http_pipeline_can_post(const HttpPipeline *p)
{
        return p && p->in_flight < p->n_conns * p->depth;
}

static bool header_line_ok(const char *h)
{
        return strlen(h) < PIPELINE_HEADER_LINE && !strpbrk(h, "\r\n") && strchr(h, ':');
}

int http_pipeline_post(HttpPipeline *p, const char *const *headers, const void *body, size_t len,
                       http_pipeline_done_fn cb, void *userdata)
{
        size_t mark;
        Conn *c;
        int r;

        if (!p)
                return -EINVAL;
        if (p->closing)
                return -ECANCELED;
        for (size_t i = 0; headers && headers[i]; i++)
                if (!header_line_ok(headers[i]))
                        return -EINVAL;
        c = conn_pick(p);
        if (!c)
                return -EAGAIN;
        if (c->state == CONN_CLOSED) {
                r = conn_open(c);
                if (r < 0)
                        return r;
        }
        mark = c->out.len;
        r = buf_printf(&c->out, "POST %s HTTP/1.1\r\nHost: %s\r\n", p->path, p->host);
        for (size_t i = 0; r >= 0 && headers && headers[i]; i++)
                r = buf_printf(&c->out, "%s\r\n", headers[i]);
        if (r >= 0)
                r = buf_printf(&c->out, "Content-Length: %zu\r\n\r\n", len);
        if (r >= 0 && len > 0)
                r = buf_append(&c->out, body, len);
        if (r < 0) {
                c->out.len = mark; /* nothing of it goes out */
                if (c->out.data)
                        c->out.data[mark] = 0;
                return r;
        }
        c->ring[(c->head + c->n) % p->depth] =
                (Pending){ .cb = cb, .userdata = userdata, .deadline = ev_now(p->loop) + p->timeout_s };
        c->n++;
        p->in_flight++;
        /* written when the loop polls: every request of this loop turn goes in one send() */
        conn_update_io(c);
        conn_arm_timer(c);
        return 0;
}

size_t http_pipeline_in_flight(const HttpPipeline *p)
{
        return p ? p->in_flight : 0;
}

uint64_t http_pipeline_connects(const HttpPipeline *p)
{
        return p ? p->connects : 0;
}

int http_pipeline_new(struct ev_loop *loop, const HttpPipelineOptions *o, HttpPipeline **ret)
{
        _cleanup_free_ HttpPipeline *p = NULL;

        if (!loop || !o || !o->host || !o->path || o->addr_len == 0 || o->addr_len > sizeof(o->addr) ||
            (o->addr.ss_family != AF_INET && o->addr.ss_family != AF_INET6) || o->connections == 0 ||
            o->connections > PIPELINE_CONNECTIONS_MAX || o->depth == 0 || o->depth > PIPELINE_DEPTH_MAX ||
            o->timeout_ns <= 0 || strpbrk(o->host, "\r\n") || strpbrk(o->path, "\r\n "))
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (HttpPipeline){
                .loop = loop,
                .addr = o->addr,
                .addr_len = o->addr_len,
                .depth = o->depth,
                .max_body = o->max_body ? o->max_body : HTTP_PIPELINE_HEAD_MAX,
                .timeout_s = (double)o->timeout_ns / 1e9,
                .n_conns = o->connections,
        };
        p->host = strdup(o->host);
        p->path = strdup(o->path);
        p->conns = calloc(o->connections, sizeof(Conn));
        if (!p->host || !p->path || !p->conns)
                goto oom;
        for (size_t i = 0; i < p->n_conns; i++) {
                Conn *c = &p->conns[i];
                c->p = p;
                c->fd = -1;
                c->ring = calloc(p->depth, sizeof(Pending));
                if (!c->ring)
                        goto oom;
                buf_init(&c->out, PIPELINE_OUT_MAX);
                buf_init(&c->in, PIPELINE_READ_SIZE * 2 + HTTP_PIPELINE_HEAD_MAX + p->max_body);
                buf_init(&c->body, p->max_body);
                ev_io_init(&c->io, on_io, -1, 0);
                c->io.data = c;
                ev_init(&c->timer, on_timer);
                c->timer.data = c;
        }
        *ret = TAKE_PTR(p);
        return 0;
oom:
        for (size_t i = 0; p->conns && i < p->n_conns; i++)
                free(p->conns[i].ring);
        free(p->conns);
        free(p->host);
        free(p->path);
        return -ENOMEM;
}

HttpPipeline *http_pipeline_free(HttpPipeline *p)
{
        if (!p)
                return NULL;
        p->closing = true; /* the callbacks below cannot post again */
        for (size_t i = 0; i < p->n_conns; i++) {
                Conn *c = &p->conns[i];
                conn_fail(c, -ECANCELED);
                buf_done(&c->out);
                buf_done(&c->in);
                buf_done(&c->body);
                free(c->ring);
        }
        free(p->conns);
        free(p->host);
        free(p->path);
        free(p);
        return NULL;
}
