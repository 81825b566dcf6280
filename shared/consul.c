/* SPDX-License-Identifier: Apache-2.0 */
#include "consul.h"

#include <assert.h>
#include <ev.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>

#include "buf.h"
#include "duration.h"
#include "json.h"
#include "log.h"
#include "macro.h"

/* An id or value quoted in a message is cut to this many bytes. */
#define CONSUL_QUOTE_MAX 96
#define QUOTE_SIZE       (CONSUL_QUOTE_MAX + 1)
/* "list services with Meta <key>=<value>", the longest operation name, fits. */
#define WHAT_SIZE (2 * QUOTE_SIZE + 64)
/* Longest URL built: the base plus a percent-encoded id or filter stays well below this. */
#define CONSUL_URL_MAX 8192
/* Longest request body: with the caps in consul.h a registration stays under 100 KiB. */
#define CONSUL_BODY_MAX (256u * 1024)
/* Room for a Go duration ("2562047h47m16.854775807s"). */
#define CONSUL_DURATION_TEXT 40

typedef enum OpKind {
        OP_REGISTER,
        OP_VERIFY,
        OP_CHECK_UPDATE,
        OP_DEREGISTER,
        OP_CONFIRM_GONE,
        OP_LIST,
} OpKind;

struct ConsulClient {
        struct ev_loop *loop;
        HttpClient *http;
        char *base_url;     /* scheme://host[:port], without a trailing slash */
        char *unix_socket;  /* for unix:// addresses */
        char *token_header; /* "X-Consul-Token: ...", or NULL */
        int64_t call_timeout_ns, backoff_initial_ns, backoff_max_ns;
        unsigned attempts;
        size_t max_response;
        uint64_t rng;
        ConsulOp *ops;
        size_t n_ops;
        bool closing;
};

struct ConsulOp {
        ConsulClient *client;
        ConsulOp *prev, *next;
        OpKind kind;
        const char *method;
        char *url;
        char *body;
        size_t body_len;
        char *id;             /* service or check id; the Meta value for OP_LIST */
        char *meta_key;       /* OP_LIST */
        char what[WHAT_SIZE]; /* "register web-T1": opens every message */
        unsigned attempt;     /* attempts started */
        HttpRequest *req;     /* the attempt in flight; NULL while backing off */
        ev_timer backoff;
        consul_done_fn done_cb;
        consul_list_fn list_cb;
        void *userdata;
        bool done;
};

/* ---- text helpers ---- */

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0 when it is invalid. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
        unsigned char c = p[0];
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef)
                n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
                n = 4;
        else
                return 0;
        if (n > left)
                return 0;
        /* the second byte's range rules out overlongs, surrogates and values past U+10FFFF */
        if (c == 0xe0)
                lo = 0xa0;
        else if (c == 0xed)
                hi = 0x9f;
        else if (c == 0xf0)
                lo = 0x90;
        else if (c == 0xf4)
                hi = 0x8f;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return n;
}

static bool is_control(unsigned char c)
{
        return c < 0x20 || c == 0x7f;
}

typedef enum TextMode {
        TEXT_ESCAPE,    /* control characters and bad bytes as \xNN: for quoting input back */
        TEXT_ONE_LINE,  /* control characters as one space, bad bytes as '?': for Consul's text */
        TEXT_MULTILINE, /* as TEXT_ONE_LINE but newline and tab are kept: for check output */
} TextMode;

/* Copies p[0..len) into out (size bytes, NUL included) made safe for the mode, cut at a
 * character boundary with "..." when it does not fit in max bytes. Returns out. */
static char *text_sanitize(const char *p, size_t len, TextMode mode, size_t max, char *out, size_t size)
{
        const unsigned char *s = (const unsigned char *)p;
        size_t o = 0, i = 0, limit = MIN(max, size - 1);
        bool space = false, cut = false;

        assert(size > 4);
        while (i < len) {
                char piece[8];
                size_t n = utf8_len(s + i, len - i), plen;

                if (n == 1 && is_control(s[i]) &&
                    !(mode == TEXT_MULTILINE && (s[i] == '\n' || s[i] == '\t'))) {
                        if (mode == TEXT_ESCAPE) {
                                plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", s[i]);
                        } else if (mode == TEXT_MULTILINE && s[i] == '\r') {
                                i++; /* CRLF line ends keep just the LF */
                                continue;
                        } else {
                                i++;
                                space = o > 0; /* leading ones are dropped, runs become one */
                                continue;
                        }
                } else if (n == 0) {
                        if (mode == TEXT_ESCAPE)
                                plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", s[i]);
                        else {
                                piece[0] = '?';
                                plen = 1;
                        }
                        n = 1;
                } else {
                        memcpy(piece, s + i, n);
                        plen = n;
                }
                if (o + space + plen > limit) {
                        cut = true;
                        break;
                }
                if (space)
                        out[o++] = ' ';
                space = false;
                memcpy(out + o, piece, plen);
                o += plen;
                i += n;
        }
        if (cut) {
                /* back off to a character boundary with room for the marker */
                while (o > 0 && o + 3 > limit)
                        o--;
                while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
                        o--;
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o] = 0;
        return out;
}

/* A caller's string quoted back in a message. */
static const char *quote(const char *s, char *buf, size_t size)
{
        return text_sanitize(s, strlen(s), TEXT_ESCAPE, CONSUL_QUOTE_MAX, buf, size);
}

/* Checks a string field of a request: UTF-8, no control character, at most max bytes. */
static int check_text(const char *what, const char *field, const char *s, bool required, size_t max,
                      PacerError *err)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t len;

        if (!s || !*s) {
                if (required)
                        return pacer_error_set(err, EINVAL, "%s: %s is required", what, field);
                return 0;
        }
        len = strnlen(s, max + 1);
        if (len > max)
                return pacer_error_set(err, EINVAL, "%s: %s is %zu bytes long, more than %zu", what, field,
                                       strlen(s), max);
        for (size_t i = 0; i < len;) {
                size_t n = utf8_len(p + i, len - i);
                if (n == 0)
                        return pacer_error_set(err, EINVAL,
                                               "%s: %s is not valid UTF-8 (byte 0x%02x at offset %zu)", what,
                                               field, p[i], i);
                if (n == 1 && is_control(p[i]))
                        return pacer_error_set(err, EINVAL,
                                               "%s: %s contains a control character (0x%02x) at offset %zu",
                                               what, field, p[i], i);
                i += n;
        }
        return 0;
}

/* Consul's rule for Meta keys (agent/structs ValidateServiceMetadata). */
static int check_meta_key(const char *what, const char *key, PacerError *err)
{
        char q[QUOTE_SIZE];
        size_t len;

        if (!key || !*key)
                return pacer_error_set(err, EINVAL, "%s: a Meta key is empty", what);
        len = strnlen(key, CONSUL_META_KEY_MAX + 1);
        if (len > CONSUL_META_KEY_MAX)
                return pacer_error_set(err, EINVAL, "%s: Meta key \"%s\" is longer than %d characters", what,
                                       quote(key, q, sizeof(q)), CONSUL_META_KEY_MAX);
        if (strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != len)
                return pacer_error_set(err, EINVAL,
                                       "%s: Meta key \"%s\" may contain only letters, digits, '_' and '-'",
                                       what, quote(key, q, sizeof(q)));
        if (strneq(key, "consul-", STRLEN("consul-")))
                return pacer_error_set(err, EINVAL,
                                       "%s: Meta key \"%s\" uses the prefix \"consul-\" reserved by Consul",
                                       what, quote(key, q, sizeof(q)));
        return 0;
}

static bool is_unreserved(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '_' || c == '~';
}

/* Appends s percent-encoded (everything but RFC 3986's unreserved characters). */
static int put_percent_encoded(Buf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        int k = 0;

        for (const unsigned char *p = (const unsigned char *)s; *p && k >= 0; p++) {
                if (is_unreserved((char)*p))
                        k = buf_putc(b, (char)*p);
                else
                        k = buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
        }
        return k < 0 ? k : 0;
}

/* ---- configuration ---- */

void consul_config_from_env(ConsulConfig *cfg)
{
        const char *ssl = getenv("CONSUL_HTTP_SSL");

        if (!cfg->address)
                cfg->address = getenv("CONSUL_HTTP_ADDR");
        if (!cfg->token)
                cfg->token = getenv("CONSUL_HTTP_TOKEN");
        /* Go's strconv.ParseBool, which Consul's own tools use */
        if (ssl && (streq(ssl, "1") || streq(ssl, "t") || streq(ssl, "T") || streq(ssl, "true") ||
                    streq(ssl, "TRUE") || streq(ssl, "True")))
                cfg->https = true;
}

/* Splits an address into the URL base and an optional Unix socket path. */
static int address_parse(const char *address, bool https, char **ret_base, char **ret_unix, PacerError *err)
{
        _cleanup_free_ char *base = NULL, *unix_path = NULL;
        const char *a = address && *address ? address : CONSUL_ADDRESS_DEFAULT, *host;
        char q[QUOTE_SIZE];
        size_t len = strnlen(a, CONSUL_ADDRESS_MAX + 1);

        if (len > CONSUL_ADDRESS_MAX)
                return pacer_error_set(err, EINVAL, "Consul address is longer than %d bytes",
                                       CONSUL_ADDRESS_MAX);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)a[i] <= ' ' || (unsigned char)a[i] >= 0x7f)
                        return pacer_error_set(
                                err, EINVAL,
                                "Consul address \"%s\" contains a space, a control character or "
                                "non-ASCII byte at offset %zu",
                                quote(a, q, sizeof(q)), i);

        if (strncasecmp(a, "unix://", STRLEN("unix://")) == 0) {
                const char *path = a + STRLEN("unix://");
                if (path[0] != '/' || strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                        return pacer_error_set(
                                err, EINVAL,
                                "Consul address \"%s\": expected unix:///absolute/path of at most "
                                "%zu bytes",
                                quote(a, q, sizeof(q)), sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
                unix_path = strdup(path);
                /* only the Host header sees this name */
                base = strdup("http://localhost");
                if (!unix_path || !base)
                        return -ENOMEM;
                *ret_base = TAKE_PTR(base);
                *ret_unix = TAKE_PTR(unix_path);
                return 0;
        }

        if (strncasecmp(a, "http://", STRLEN("http://")) == 0) {
                host = a + STRLEN("http://");
                https = false;
        } else if (strncasecmp(a, "https://", STRLEN("https://")) == 0) {
                host = a + STRLEN("https://");
                https = true;
        } else if (strstr(a, "://")) {
                return pacer_error_set(err, EINVAL,
                                       "Consul address \"%s\": the scheme must be http, https or unix",
                                       quote(a, q, sizeof(q)));
        } else {
                host = a;
        }
        len = strlen(host);
        if (len > 0 && host[len - 1] == '/')
                len--;
        if (len == 0 || strcspn(host, "/?#@") < len)
                return pacer_error_set(err, EINVAL,
                                       "Consul address \"%s\": expected host:port, without a path, query or "
                                       "credentials",
                                       quote(a, q, sizeof(q)));
        if (asprintf(&base, "%s://%.*s", https ? "https" : "http", (int)len, host) < 0)
                return -ENOMEM;
        *ret_base = TAKE_PTR(base);
        *ret_unix = NULL;
        return 0;
}

static int token_header_new(const char *token, char **ret, PacerError *err)
{
        size_t len;

        *ret = NULL;
        if (!token || !*token)
                return 0;
        len = strnlen(token, CONSUL_TOKEN_MAX + 1);
        if (len > CONSUL_TOKEN_MAX)
                return pacer_error_set(err, EINVAL, "Consul token is longer than %d bytes",
                                       CONSUL_TOKEN_MAX);
        /* the token goes into a header: a CR or LF would let it add headers of its own.
         * Its text is never quoted back, it is a secret. */
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 0x7f)
                        return pacer_error_set(err, EINVAL,
                                               "Consul token contains a space, a control character or a "
                                               "non-ASCII byte at offset %zu",
                                               i);
        if (asprintf(ret, "X-Consul-Token: %s", token) < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

static uint64_t rng_seed(const void *salt)
{
        uint64_t seed = 0;
        struct timespec ts;

        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
                return seed;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid() ^
               (uint64_t)(uintptr_t)salt;
}

/* splitmix64: jitter needs spread, not secrecy */
static uint64_t rng_next(ConsulClient *c)
{
        uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

int consul_client_new(struct ev_loop *loop, HttpClient *http, const ConsulConfig *cfg, ConsulClient **ret,
                      PacerError *err)
{
        _cleanup_free_ char *base = NULL, *unix_path = NULL, *token = NULL;
        const ConsulConfig none = {};
        ConsulClient *c;
        int r;

        if (!loop || !http || !ret)
                return pacer_error_set(err, EINVAL, "Consul client: no event loop or HTTP client");
        if (!cfg)
                cfg = &none;
        if (cfg->call_timeout_ns < 0 || cfg->backoff_initial_ns < 0 || cfg->backoff_max_ns < 0)
                return pacer_error_set(err, EINVAL, "Consul client: negative timeout or backoff");
        if (cfg->attempts > CONSUL_ATTEMPTS_MAX)
                return pacer_error_set(err, EINVAL, "Consul client: %u attempts, more than %u",
                                       cfg->attempts, CONSUL_ATTEMPTS_MAX);
        r = address_parse(cfg->address, cfg->https, &base, &unix_path, err);
        if (r < 0)
                return r;
        r = token_header_new(cfg->token, &token, err);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (ConsulClient){
                .loop = loop,
                .http = http,
                .base_url = TAKE_PTR(base),
                .unix_socket = TAKE_PTR(unix_path),
                .token_header = TAKE_PTR(token),
                .call_timeout_ns = cfg->call_timeout_ns ?: CONSUL_CALL_TIMEOUT_DEFAULT,
                .attempts = cfg->attempts ?: CONSUL_ATTEMPTS_DEFAULT,
                .backoff_initial_ns = cfg->backoff_initial_ns ?: CONSUL_BACKOFF_INITIAL_DEFAULT,
                .backoff_max_ns = cfg->backoff_max_ns ?: CONSUL_BACKOFF_MAX_DEFAULT,
                .max_response = cfg->max_response ?: CONSUL_RESPONSE_MAX_DEFAULT,
        };
        c->backoff_max_ns = MAX(c->backoff_max_ns, c->backoff_initial_ns);
        c->rng = rng_seed(c);
        *ret = c;
        return 0;
}

ConsulClient *consul_client_free(ConsulClient *c)
{
        if (!c || c->closing)
                return NULL; /* closing: called again from a callback of the outer call, which frees */
        c->closing = true;
        /* a callback may cancel other ops: take the head each time */
        while (c->ops)
                consul_op_cancel(c->ops);
        free(c->base_url);
        free(c->unix_socket);
        if (c->token_header)
                explicit_bzero(c->token_header, strlen(c->token_header));
        free(c->token_header);
        free(c);
        return NULL;
}

size_t consul_client_pending(const ConsulClient *c)
{
        return c ? c->n_ops : 0;
}

/* ---- operations ---- */

static void op_free(ConsulOp *op)
{
        if (!op)
                return;
        free(op->url);
        free(op->body);
        free(op->id);
        free(op->meta_key);
        free(op);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ConsulOp *, op_free);

static void op_unlink(ConsulOp *op)
{
        ConsulClient *c = op->client;

        if (op->prev)
                op->prev->next = op->next;
        else
                c->ops = op->next;
        if (op->next)
                op->next->prev = op->prev;
        op->prev = op->next = NULL;
        c->n_ops--;
}

/* Fires the callback (exactly once: op->done guards every path) and frees op. ids/n for
 * OP_LIST. Nothing touches the client after the callback, which may free it. */
static void op_finish(ConsulOp *op, int result, char **ids, size_t n, const char *fmt, ...) _printf_(5, 6);
static void op_finish(ConsulOp *op, int result, char **ids, size_t n, const char *fmt, ...)
{
        char msg[CONSUL_MESSAGE_MAX];
        int k = snprintf(msg, sizeof(msg), "%s: ", op->what);
        va_list ap;

        assert(!op->done);
        op->done = true;
        if (k > 0 && (size_t)k < sizeof(msg)) {
                va_start(ap, fmt);
                vsnprintf(msg + k, sizeof(msg) - (size_t)k, fmt, ap);
                va_end(ap);
        }
        ev_timer_stop(op->client->loop, &op->backoff);
        op_unlink(op);
        if (op->kind == OP_LIST)
                op->list_cb(result, msg, ids, n, op->userdata);
        else
                op->done_cb(result, msg, op->userdata);
        op_free(op);
}

static void on_http_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata);

static int op_attempt(ConsulOp *op)
{
        ConsulClient *c = op->client;
        const char *headers[3];
        size_t n = 0;

        if (c->token_header)
                headers[n++] = c->token_header;
        if (op->body)
                headers[n++] = "Content-Type: application/json";
        headers[n] = NULL;
        op->attempt++;
        return http_request_start(c->http,
                                  &(HttpRequestOptions){
                                          .method = op->method,
                                          .url = op->url,
                                          .headers = headers,
                                          .body = op->body,
                                          .body_len = op->body_len,
                                          .timeout_ns = c->call_timeout_ns,
                                          .max_body = c->max_response,
                                          .unix_socket = c->unix_socket,
                                          .on_done = on_http_done,
                                          .userdata = op,
                                  },
                                  &op->req);
}

static void on_backoff(struct ev_loop *loop, ev_timer *w, int revents)
{
        ConsulOp *op = container_of(w, ConsulOp, backoff);
        int r = op_attempt(op);

        if (r < 0)
                op_finish(op, r, NULL, 0, "cannot start attempt %u: %s", op->attempt, strerror(-r));
}

/* Full jitter: uniform in [0, min(max, initial * 2^(attempts so far - 1))]. */
static int64_t op_backoff_ns(ConsulOp *op)
{
        ConsulClient *c = op->client;
        int64_t cap = c->backoff_initial_ns;

        for (unsigned i = 1; i < op->attempt && cap < c->backoff_max_ns; i++)
                cap = cap > c->backoff_max_ns / 2 ? c->backoff_max_ns : cap * 2;
        cap = MIN(cap, c->backoff_max_ns);
        return (int64_t)(rng_next(c) % ((uint64_t)cap + 1));
}

/* What one attempt came to. */
typedef struct Verdict {
        int result;
        bool retry;
        char text[CONSUL_MESSAGE_MAX];
        char **ids; /* OP_LIST: the matches, owned */
        size_t n_ids;
} Verdict;

static void verdict_set(Verdict *v, int result, bool retry, const char *fmt, ...) _printf_(4, 5);
static void verdict_set(Verdict *v, int result, bool retry, const char *fmt, ...)
{
        va_list ap;

        v->result = result;
        v->retry = retry;
        va_start(ap, fmt);
        vsnprintf(v->text, sizeof(v->text), fmt, ap);
        va_end(ap);
}

static const char *answer_text(const HttpResponse *resp, char *buf, size_t size)
{
        return text_sanitize(resp->body.data ? resp->body.data : "", resp->body.len, TEXT_ONE_LINE,
                             CONSUL_ERROR_TEXT_MAX, buf, size);
}

/* The answer as "403: Permission denied: ..." (or just "403" without a text). */
static const char *status_text(const HttpResponse *resp, char *buf, size_t size)
{
        char t[CONSUL_ERROR_TEXT_MAX + 8];

        answer_text(resp, t, sizeof(t));
        snprintf(buf, size, "%ld%s%s", resp->status, t[0] ? ": " : "", t);
        return buf;
}

static void judge_transport(ConsulOp *op, int result, HttpRequest *req, Verdict *v)
{
        char d[CONSUL_DURATION_TEXT];

        switch (result) {
        case -ETIMEDOUT:
                verdict_set(v, result, true, "the Consul agent did not answer within %s (%s)",
                            duration_format_go(op->client->call_timeout_ns, d, sizeof(d)),
                            http_request_error(req));
                break;
        case -ECONNREFUSED:
        case -ECONNRESET:
                verdict_set(v, result, true, "cannot reach the Consul agent: %s", http_request_error(req));
                break;
        case -EMSGSIZE:
                verdict_set(v, result, false, "Consul's answer is over %zu bytes, not read (%s)",
                            op->client->max_response, http_request_error(req));
                break;
        default:
                verdict_set(v, result, false, "request to the Consul agent failed: %s",
                            http_request_error(req));
        }
}

static int parse_body(ConsulOp *op, const HttpResponse *resp, json_t **ret, Verdict *v)
{
        JsonLimits limits = { .body_max = op->client->max_response, .depth_max = JSON_DEPTH_MAX_DEFAULT };
        PacerError e = {};
        int r = json_parse(resp->body.data ? resp->body.data : "", resp->body.len, &limits, ret, &e);

        if (r == -ENOMEM)
                verdict_set(v, r, false, "out of memory parsing Consul's answer");
        else if (r < 0)
                verdict_set(v, -EBADMSG, false, "Consul answered %ld with a body that is not JSON: %s",
                            resp->status, e.msg);
        return r;
}

static void judge_verify(ConsulOp *op, const HttpResponse *resp, Verdict *v)
{
        char q[QUOTE_SIZE];
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *id;

        if (parse_body(op, resp, &j, v) < 0)
                return;
        if (!json_is_object(j)) {
                verdict_set(v, -EBADMSG, false, "Consul answered with a JSON %s, expected a service object",
                            json_type_name(j));
                return;
        }
        id = json_string_value(json_object_get(j, "ID"));
        if (!id) {
                verdict_set(v, -EBADMSG, false, "Consul's answer has no string \"ID\"");
                return;
        }
        if (!streq(id, op->id)) {
                verdict_set(v, -EBADMSG, false, "Consul answered with service \"%s\"",
                            quote(id, q, sizeof(q)));
                return;
        }
        verdict_set(v, 0, false, "registered in the local Consul agent");
}

static void ids_free(char **ids, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(ids[i]);
        free(ids);
}

/* An OP_LIST answered 2xx: the IDs of the services whose Meta matches. */
static void judge_list(ConsulOp *op, const HttpResponse *resp, Verdict *v)
{
        _cleanup_(json_decrefp) json_t *j = NULL;

        if (parse_body(op, resp, &j, v) < 0)
                return;
        if (!json_is_object(j)) {
                verdict_set(v, -EBADMSG, false, "Consul answered with a JSON %s, expected an object",
                            json_type_name(j));
                return;
        }
        v->ids = calloc(json_object_size(j) + 1, sizeof(char *));
        if (!v->ids) {
                verdict_set(v, -ENOMEM, false, "out of memory");
                return;
        }
        for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it)) {
                const char *key = json_object_iter_key(it);
                json_t *svc = json_object_iter_value(it);
                const char *val;

                if (!json_is_object(svc)) {
                        char q[QUOTE_SIZE];
                        verdict_set(v, -EBADMSG, false,
                                    "Consul answered with a JSON %s for service \"%s\", expected an object",
                                    json_type_name(svc), quote(key, q, sizeof(q)));
                        return;
                }
                /* the server-side filter may have been ignored (or not sent): this is the check */
                val = json_string_value(json_object_get(json_object_get(svc, "Meta"), op->meta_key));
                if (!val || !streq(val, op->id))
                        continue;
                v->ids[v->n_ids] = strdup(key);
                if (!v->ids[v->n_ids]) {
                        verdict_set(v, -ENOMEM, false, "out of memory");
                        return;
                }
                v->n_ids++;
        }
        verdict_set(v, 0, false, "%zu found", v->n_ids);
}

/* Consul 1.10 answers some "no such thing" cases with a 500 (later versions with a 404): a retry
 * cannot help, so these are final answers. */
static const struct AbsentAnswer {
        OpKind kind;
        const char *text;
        bool prefix; /* text starts the answer; else it is anywhere in it */
        int result;
        const char *meaning;
} absent_answers[] = {
        /* ACLs enabled: vetting a deregistration fails first */
        { OP_DEREGISTER, "Unknown service \"", true, 0, "already gone" },
        { OP_CHECK_UPDATE, "Unknown check \"", true, -ENOENT, "no such check in the local Consul agent" },
        /* ACLs disabled: an unknown check and a check that is not a TTL check read the same */
        { OP_CHECK_UPDATE, "does not have associated TTL", false, -ENOENT,
          "no TTL check with this ID in the local Consul agent" },
};

static const struct AbsentAnswer *absent_answer(OpKind kind, const char *text)
{
        for (size_t i = 0; i < ELEMENTSOF(absent_answers); i++) {
                const struct AbsentAnswer *a = &absent_answers[i];
                if (a->kind == kind &&
                    (a->prefix ? strneq(text, a->text, strlen(a->text)) : !!strstr(text, a->text)))
                        return a;
        }
        return NULL;
}

static void judge_status(ConsulOp *op, const HttpResponse *resp, Verdict *v)
{
        const struct AbsentAnswer *a;
        ConsulClient *c = op->client;
        char st[CONSUL_ERROR_TEXT_MAX + 32];
        long s = resp->status;

        status_text(resp, st, sizeof(st));
        if (s >= 200 && s < 300) {
                switch (op->kind) {
                case OP_REGISTER:
                        verdict_set(v, 0, false, "registered");
                        break;
                case OP_VERIFY:
                        judge_verify(op, resp, v);
                        break;
                case OP_CHECK_UPDATE:
                        verdict_set(v, 0, false, "updated");
                        break;
                case OP_DEREGISTER:
                        verdict_set(v, 0, false, "deregistered");
                        break;
                case OP_CONFIRM_GONE:
                        verdict_set(v, -EEXIST, false, "still registered in the local Consul agent");
                        break;
                case OP_LIST:
                        judge_list(op, resp, v);
                        break;
                }
                return;
        }
        if (s == 404) {
                switch (op->kind) {
                case OP_VERIFY:
                        verdict_set(v, -ENOENT, false,
                                    "not registered in the local Consul agent (Consul answered %s)", st);
                        return;
                case OP_CONFIRM_GONE:
                        verdict_set(v, 0, false, "gone from the local Consul agent");
                        return;
                case OP_DEREGISTER:
                        verdict_set(v, 0, false, "already gone (Consul answered %s)", st);
                        return;
                case OP_CHECK_UPDATE:
                        verdict_set(v, -ENOENT, false,
                                    "no such check in the local Consul agent (Consul answered %s)", st);
                        return;
                default:
                        break; /* the endpoint itself is missing: not a Consul agent? */
                }
        }
        if (s == 400) {
                verdict_set(v, -EINVAL, false, "Consul answered %s", st);
        } else if (s == 403) {
                verdict_set(v, -EACCES, false, "Consul answered %s (%s)", st,
                            c->token_header
                                    ? "the ACL token given lacks the permission or is unknown; check "
                                      "CONSUL_HTTP_TOKEN or --consul-token"
                                    : "no ACL token was given: set CONSUL_HTTP_TOKEN or --consul-token");
        } else if (s == 500 && (a = absent_answer(op->kind, buf_str(&resp->body)))) {
                verdict_set(v, a->result, false, "%s (Consul answered %s)", a->meaning, st);
        } else if (s == 429 || (s >= 500 && s < 600)) {
                verdict_set(v, -EIO, true, "Consul answered %s", st);
        } else {
                verdict_set(v, -EIO, false, "unexpected answer from Consul: %s", st);
        }
}

static void on_http_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        ConsulOp *op = userdata;
        ConsulClient *c = op->client;
        Verdict v = {};

        op->req = NULL;
        if (result == -ECANCELED) {
                op_finish(op, -ECANCELED, NULL, 0, "cancelled");
                return;
        }
        if (result < 0)
                judge_transport(op, result, req, &v);
        else
                judge_status(op, resp, &v);

        if (v.retry && op->attempt < c->attempts && !c->closing) {
                int64_t delay = op_backoff_ns(op);
                log_debug("consul: %s: %s; attempt %u of %u failed, retrying in %.0f ms", op->what, v.text,
                          op->attempt, c->attempts, (double)delay / (double)NSEC_PER_MSEC);
                ev_timer_set(&op->backoff, duration_to_seconds(delay), 0.);
                ev_timer_start(c->loop, &op->backoff);
                return;
        }
        if (v.result < 0 && op->attempt > 1)
                op_finish(op, v.result, NULL, 0, "%s (after %u attempts)", v.text, op->attempt);
        else if (v.result < 0)
                op_finish(op, v.result, NULL, 0, "%s", v.text);
        else
                op_finish(op, 0, v.ids, v.n_ids, "%s", v.text);
        ids_free(v.ids, v.n_ids);
}

void consul_op_cancel(ConsulOp *op)
{
        if (!op || op->done)
                return;
        if (op->req)
                http_request_cancel(op->req); /* on_http_done() finishes op */
        else
                op_finish(op, -ECANCELED, NULL, 0, "cancelled");
}

/* A new op, not yet started: what = "<verb> <id>". */
static int op_new(ConsulClient *c, OpKind kind, const char *method, const char *verb, const char *id,
                  ConsulOp **ret)
{
        char q[QUOTE_SIZE];
        ConsulOp *op = calloc(1, sizeof(*op));

        if (!op)
                return -ENOMEM;
        op->client = c;
        op->kind = kind;
        op->method = method;
        ev_init(&op->backoff, on_backoff);
        snprintf(op->what, sizeof(op->what), "%s %s", verb, quote(id ? id : "", q, sizeof(q)));
        if (id) {
                op->id = strdup(id);
                if (!op->id) {
                        op_free(op);
                        return -ENOMEM;
                }
        }
        *ret = op;
        return 0;
}

/* url = base + path + the id percent-encoded (a path segment, optional) */
static int op_set_url(ConsulOp *op, const char *path, const char *id)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(CONSUL_URL_MAX);
        int k;

        k = buf_puts(&b, op->client->base_url);
        if (k >= 0)
                k = buf_puts(&b, path);
        if (k >= 0 && id)
                k = put_percent_encoded(&b, id);
        if (k < 0)
                return k;
        op->url = buf_steal(&b, NULL);
        return 0;
}

/* Links op into the client and starts its first attempt; takes op in all cases. */
static int op_submit(ConsulOp *op, consul_done_fn done_cb, consul_list_fn list_cb, void *userdata,
                     ConsulOp **ret_op, PacerError *err)
{
        ConsulClient *c = op->client;
        int r;

        op->done_cb = done_cb;
        op->list_cb = list_cb;
        op->userdata = userdata;
        op->next = c->ops;
        if (op->next)
                op->next->prev = op;
        c->ops = op;
        c->n_ops++;
        r = op_attempt(op);
        if (r < 0) {
                pacer_error_set(err, r, "%s: cannot start the request: %s", op->what, strerror(-r));
                op_unlink(op);
                op_free(op);
                return r;
        }
        if (ret_op)
                *ret_op = op;
        return 0;
}

static int start_check(ConsulClient *c, bool has_cb, const char *verb, PacerError *err)
{
        if (!c || !has_cb)
                return pacer_error_set(err, EINVAL, "%s: no Consul client or callback", verb);
        if (c->closing)
                return pacer_error_set(err, ECANCELED, "%s: the Consul client is being freed", verb);
        return 0;
}

static int json_set(json_t *o, const char *key, json_t *v)
{
        /* jansson takes v even on failure; a NULL v is an allocation that failed */
        return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static int service_validate(const char *what, const ConsulServiceDef *s, PacerError *err)
{
        char field[CONSUL_META_KEY_MAX + 32];
        int r;

        r = check_text(what, "ID", s->id, true, CONSUL_ID_MAX, err);
        if (r < 0)
                return r;
        r = check_text(what, "Name", s->name, true, CONSUL_ID_MAX, err);
        if (r < 0)
                return r;
        r = check_text(what, "Address", s->address, false, CONSUL_ID_MAX, err);
        if (r < 0)
                return r;
        if (s->port < 0 || s->port > 65535)
                return pacer_error_set(err, EINVAL, "%s: Port %d is out of range 0-65535", what, s->port);

        if (s->n_tags > CONSUL_TAGS_MAX)
                return pacer_error_set(err, EINVAL, "%s: %zu Tags, more than %d", what, s->n_tags,
                                       CONSUL_TAGS_MAX);
        if (s->n_tags > 0 && !s->tags)
                return pacer_error_set(err, EINVAL, "%s: Tags missing", what);
        for (size_t i = 0; i < s->n_tags; i++) {
                snprintf(field, sizeof(field), "Tags[%zu]", i);
                if (!s->tags[i])
                        return pacer_error_set(err, EINVAL, "%s: %s is NULL", what, field);
                r = check_text(what, field, s->tags[i], false, CONSUL_TAG_MAX, err);
                if (r < 0)
                        return r;
        }

        if (s->n_meta > CONSUL_META_PAIRS_MAX)
                return pacer_error_set(err, EINVAL, "%s: %zu Meta pairs, more than %d", what, s->n_meta,
                                       CONSUL_META_PAIRS_MAX);
        if (s->n_meta > 0 && (!s->meta_keys || !s->meta_values))
                return pacer_error_set(err, EINVAL, "%s: Meta keys or values missing", what);
        for (size_t i = 0; i < s->n_meta; i++) {
                r = check_meta_key(what, s->meta_keys[i], err);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(s->meta_keys[i], s->meta_keys[j]))
                                return pacer_error_set(err, EINVAL, "%s: Meta key \"%s\" given twice", what,
                                                       s->meta_keys[i]);
                snprintf(field, sizeof(field), "Meta[\"%s\"]", s->meta_keys[i]);
                if (!s->meta_values[i])
                        return pacer_error_set(err, EINVAL, "%s: %s is NULL", what, field);
                r = check_text(what, field, s->meta_values[i], false, CONSUL_META_VALUE_MAX, err);
                if (r < 0)
                        return r;
        }

        if (s->ttl_ns < 0 || s->deregister_critical_after_ns < 0)
                return pacer_error_set(err, EINVAL,
                                       "%s: negative check TTL or DeregisterCriticalServiceAfter", what);
        if (s->ttl_ns == 0) {
                if ((s->check_id && *s->check_id) || s->deregister_critical_after_ns > 0)
                        return pacer_error_set(err, EINVAL, "%s: a check needs a TTL", what);
                return 0;
        }
        r = check_text(what, "Check.CheckID", s->check_id, true, CONSUL_ID_MAX, err);
        if (r < 0)
                return r;
        r = check_text(what, "Check.Name", s->check_name, false, CONSUL_ID_MAX, err);
        if (r < 0)
                return r;
        r = check_text(what, "Check.Notes", s->check_notes, false, CONSUL_NOTES_MAX, err);
        if (r < 0)
                return r;
        if (s->initial_status && *s->initial_status && !streq(s->initial_status, "critical") &&
            !streq(s->initial_status, "passing") && !streq(s->initial_status, "warning")) {
                char q[QUOTE_SIZE];
                return pacer_error_set(err, EINVAL,
                                       "%s: Check.Status \"%s\" is not one of passing, warning, critical",
                                       what, quote(s->initial_status, q, sizeof(q)));
        }
        return 0;
}

/* The AgentServiceRegistration body, keys in Consul's PascalCase. */
static int service_to_json(const ConsulServiceDef *s, char **ret, size_t *ret_len)
{
        _cleanup_(json_decrefp) json_t *o = json_object();
        char d[CONSUL_DURATION_TEXT];
        char *text;
        int r = 0;

        if (!o)
                return -ENOMEM;
        r = json_set(o, "ID", json_string(s->id));
        if (r >= 0)
                r = json_set(o, "Name", json_string(s->name));
        if (r >= 0 && s->n_tags > 0) {
                json_t *tags = json_array();
                r = json_set(o, "Tags", tags);
                for (size_t i = 0; r >= 0 && i < s->n_tags; i++)
                        r = json_array_append_new(tags, json_string(s->tags[i])) < 0 ? -ENOMEM : 0;
        }
        if (r >= 0 && s->address && *s->address)
                r = json_set(o, "Address", json_string(s->address));
        if (r >= 0 && s->port > 0)
                r = json_set(o, "Port", json_integer(s->port));
        if (r >= 0 && s->n_meta > 0) {
                json_t *meta = json_object();
                r = json_set(o, "Meta", meta);
                for (size_t i = 0; r >= 0 && i < s->n_meta; i++)
                        r = json_set(meta, s->meta_keys[i], json_string(s->meta_values[i]));
        }
        if (r >= 0 && s->ttl_ns > 0) {
                json_t *check = json_object();
                r = json_set(o, "Check", check);
                if (r >= 0)
                        r = json_set(check, "CheckID", json_string(s->check_id));
                if (r >= 0 && s->check_name && *s->check_name)
                        r = json_set(check, "Name", json_string(s->check_name));
                if (r >= 0)
                        r = json_set(check, "TTL", json_string(duration_format_go(s->ttl_ns, d, sizeof(d))));
                if (r >= 0)
                        r = json_set(check, "Status",
                                     json_string(s->initial_status && *s->initial_status ? s->initial_status
                                                                                         : "critical"));
                if (r >= 0 && s->check_notes && *s->check_notes)
                        r = json_set(check, "Notes", json_string(s->check_notes));
                if (r >= 0 && s->deregister_critical_after_ns > 0)
                        r = json_set(check, "DeregisterCriticalServiceAfter",
                                     json_string(duration_format_go(s->deregister_critical_after_ns, d,
                                                                    sizeof(d))));
        }
        if (r < 0)
                return r;
        text = json_dumps_compact(o);
        if (!text)
                return -ENOMEM;
        *ret_len = strlen(text);
        if (*ret_len > CONSUL_BODY_MAX) {
                free(text);
                return -EMSGSIZE;
        }
        *ret = text;
        return 0;
}

int consul_register(ConsulClient *c, const ConsulServiceDef *s, consul_done_fn cb, void *userdata,
                    ConsulOp **ret_op, PacerError *err)
{
        _cleanup_(op_freep) ConsulOp *op = NULL;
        char what[WHAT_SIZE], q[QUOTE_SIZE];
        int r;

        r = start_check(c, cb != NULL, "register", err);
        if (r < 0)
                return r;
        if (!s)
                return pacer_error_set(err, EINVAL, "register: no service definition");
        snprintf(what, sizeof(what), "register %s", quote(s->id ? s->id : "", q, sizeof(q)));
        r = service_validate(what, s, err);
        if (r < 0)
                return r;
        r = op_new(c, OP_REGISTER, "PUT", "register", s->id, &op);
        if (r < 0)
                return pacer_error_set(err, r, "%s: out of memory", what);
        r = service_to_json(s, &op->body, &op->body_len);
        if (r < 0)
                return pacer_error_set(err, r, "%s: cannot build the request body: %s", what, strerror(-r));
        /* the query drops checks of an earlier registration that this one no longer has */
        r = op_set_url(op, "/v1/agent/service/register?replace-existing-checks", NULL);
        if (r < 0)
                return pacer_error_set(err, r, "%s: cannot build the URL: %s", what, strerror(-r));
        return op_submit(TAKE_PTR(op), cb, NULL, userdata, ret_op, err);
}

/* The ops on one service or check id: verify, deregister, confirm gone. */
static int start_id_op(ConsulClient *c, OpKind kind, const char *method, const char *verb, const char *path,
                       const char *field, const char *id, consul_done_fn cb, void *userdata,
                       ConsulOp **ret_op, PacerError *err)
{
        _cleanup_(op_freep) ConsulOp *op = NULL;
        char what[WHAT_SIZE], q[QUOTE_SIZE];
        int r;

        r = start_check(c, cb != NULL, verb, err);
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "%s %s", verb, quote(id ? id : "", q, sizeof(q)));
        r = check_text(what, field, id, true, CONSUL_ID_MAX, err);
        if (r < 0)
                return r;
        r = op_new(c, kind, method, verb, id, &op);
        if (r < 0)
                return pacer_error_set(err, r, "%s: out of memory", what);
        r = op_set_url(op, path, id);
        if (r < 0)
                return pacer_error_set(err, r, "%s: cannot build the URL: %s", what, strerror(-r));
        return op_submit(TAKE_PTR(op), cb, NULL, userdata, ret_op, err);
}

int consul_verify(ConsulClient *c, const char *service_id, consul_done_fn cb, void *userdata,
                  ConsulOp **ret_op, PacerError *err)
{
        return start_id_op(c, OP_VERIFY, "GET", "verify", "/v1/agent/service/", "service ID", service_id, cb,
                           userdata, ret_op, err);
}

int consul_deregister(ConsulClient *c, const char *service_id, consul_done_fn cb, void *userdata,
                      ConsulOp **ret_op, PacerError *err)
{
        return start_id_op(c, OP_DEREGISTER, "PUT", "deregister", "/v1/agent/service/deregister/",
                           "service ID", service_id, cb, userdata, ret_op, err);
}

int consul_confirm_gone(ConsulClient *c, const char *service_id, consul_done_fn cb, void *userdata,
                        ConsulOp **ret_op, PacerError *err)
{
        return start_id_op(c, OP_CONFIRM_GONE, "GET", "confirm deregistration of", "/v1/agent/service/",
                           "service ID", service_id, cb, userdata, ret_op, err);
}

int consul_check_update(ConsulClient *c, const char *check_id, const char *status, const char *output,
                        consul_done_fn cb, void *userdata, ConsulOp **ret_op, PacerError *err)
{
        _cleanup_(op_freep) ConsulOp *op = NULL;
        _cleanup_(json_decrefp) json_t *o = NULL;
        char what[WHAT_SIZE], q[QUOTE_SIZE];
        char out[CONSUL_CHECK_OUTPUT_MAX + 1];
        int r;

        r = start_check(c, cb != NULL, "update check", err);
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "update check %s", quote(check_id ? check_id : "", q, sizeof(q)));
        r = check_text(what, "check ID", check_id, true, CONSUL_ID_MAX, err);
        if (r < 0)
                return r;
        if (!status ||
            (!streq(status, "passing") && !streq(status, "warning") && !streq(status, "critical")))
                return pacer_error_set(err, EINVAL,
                                       "%s: status \"%s\" is not one of passing, warning, critical", what,
                                       quote(strempty(status), q, sizeof(q)));
        /* probe output comes from the task: anything may be in it */
        text_sanitize(strempty(output), strlen(strempty(output)), TEXT_MULTILINE, CONSUL_CHECK_OUTPUT_MAX,
                      out, sizeof(out));

        r = op_new(c, OP_CHECK_UPDATE, "PUT", "update check", check_id, &op);
        if (r < 0)
                return pacer_error_set(err, r, "%s: out of memory", what);
        o = json_pack("{s:s, s:s}", "Status", status, "Output", out);
        if (!o)
                return pacer_error_set(err, ENOMEM, "%s: out of memory", what);
        op->body = json_dumps_compact(o);
        if (!op->body)
                return pacer_error_set(err, ENOMEM, "%s: out of memory", what);
        op->body_len = strlen(op->body);
        r = op_set_url(op, "/v1/agent/check/update/", check_id);
        if (r < 0)
                return pacer_error_set(err, r, "%s: cannot build the URL: %s", what, strerror(-r));
        return op_submit(TAKE_PTR(op), cb, NULL, userdata, ret_op, err);
}

/* A go-bexpr filter matching Meta[key] == value, when value can be quoted without escapes
 * (Consul 1.10 rejects escaped quotes, and a filter it cannot parse is a 500). */
static int list_filter(const char *key, const char *value, Buf *url)
{
        _cleanup_(buf_done) Buf f = BUF_INIT(CONSUL_URL_MAX);
        int k;

        if (strpbrk(value, "\"\\"))
                return 0;
        k = buf_printf(&f, "Meta[\"%s\"] == \"%s\"", key, value);
        if (k >= 0)
                k = buf_puts(url, "?filter=");
        if (k >= 0)
                k = put_percent_encoded(url, buf_str(&f));
        return k;
}

int consul_list_services_by_meta(ConsulClient *c, const char *key, const char *value, consul_list_fn cb,
                                 void *userdata, ConsulOp **ret_op, PacerError *err)
{
        _cleanup_(op_freep) ConsulOp *op = NULL;
        _cleanup_(buf_done) Buf url = BUF_INIT(CONSUL_URL_MAX);
        char what[WHAT_SIZE], q[QUOTE_SIZE], qv[QUOTE_SIZE];
        int r;

        r = start_check(c, cb != NULL, "list services", err);
        if (r < 0)
                return r;
        snprintf(what, sizeof(what), "list services with Meta %s=%s", quote(strempty(key), q, sizeof(q)),
                 quote(strempty(value), qv, sizeof(qv)));
        r = check_meta_key(what, key, err);
        if (r < 0)
                return r;
        r = check_text(what, "Meta value", value, false, CONSUL_META_VALUE_MAX, err);
        if (r < 0)
                return r;
        r = op_new(c, OP_LIST, "GET", "list services with Meta", NULL, &op);
        if (r < 0)
                return pacer_error_set(err, r, "%s: out of memory", what);
        snprintf(op->what, sizeof(op->what), "%s", what);
        op->meta_key = strdup(key);
        op->id = strdup(strempty(value));
        if (!op->meta_key || !op->id)
                return pacer_error_set(err, ENOMEM, "%s: out of memory", what);
        r = buf_printf(&url, "%s/v1/agent/services", c->base_url);
        if (r >= 0)
                r = list_filter(key, op->id, &url);
        if (r < 0)
                return pacer_error_set(err, r, "%s: cannot build the URL: %s", what, strerror(-r));
        op->url = buf_steal(&url, NULL);
        return op_submit(TAKE_PTR(op), NULL, cb, userdata, ret_op, err);
}
