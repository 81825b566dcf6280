/* SPDX-License-Identifier: Apache-2.0 */
/* bench-ref-executor: the protocol floor of the latency benchmarks. It is
 * started by the fake agent like an executor and makes the same exchanges
 * pacer-executor makes, in the same order and on the same kind of
 * connections, but does nothing else: no task, no checks, no decisions. The
 * time it takes through the fakes is what the fakes, the loopback and HTTP
 * cost; what pacer-executor takes beyond it is its own.
 *
 * Every request is a file holding the complete HTTP request, built by the
 * driver (bench_launch_latency.py), so this program never encodes protobuf or
 * JSON. On the event stream it recognises events by their first bytes: field
 * 1 (type) of mesos.v1.executor.Event, a varint, comes first on the wire. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench-util.h"
#include "macro.h"

/* The events this program waits for (mesos.v1.executor.Event.Type). */
#define EVENT_LAUNCH   2
#define EVENT_SHUTDOWN 7
/* The tag of Event.type: field 1, wire type varint. */
#define EVENT_TYPE_TAG 0x08
/* What the bench's event streams carry is a few KiB. */
#define STREAM_MAX      (256 * 1024)
#define RECORD_LEN_MAX  20
#define CHECK_DELAY_MAX 60000

typedef struct Options {
        const char *agent;
        const char *subscribe, *starting, *running;
        /* the "healthy" exchange: first passing check, register, verify, TASK_RUNNING healthy */
        const char *consul, *consul_warm, *reg, *verify, *check, *check_request, *healthy;
        long check_delay_ms;
} Options;

/* The subscription stream: everything received so far, and how many records were looked at. */
typedef struct Stream {
        int fd;
        char raw[STREAM_MAX];
        size_t len;
        size_t consumed;
} Stream;

/* The body of a chunked response decoded from raw, up to the last complete chunk. */
static size_t dechunk(const char *raw, size_t len, char *out)
{
        const char *p = raw, *end = raw + len;
        size_t n = 0;

        for (;;) {
                const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                        return n;
                unsigned long size = strtoul(p, NULL, 16);
                if (size == 0 || size > (size_t)(end - eol - 2) || (size_t)(end - eol - 2) - size < 2)
                        return n;
                memcpy(out + n, eol + 2, size);
                n += size;
                p = eol + 2 + size + 2;
        }
}

/* Looks at the records not yet consumed; true when one of type `type` was found (and consumed). */
static bool stream_take(Stream *s, int type)
{
        static char body[STREAM_MAX];
        const char *head_end = memmem(s->raw, s->len, "\r\n\r\n", 4);
        size_t n, index = 0;

        if (!head_end)
                return false;
        head_end += 4;
        n = dechunk(head_end, s->len - (size_t)(head_end - s->raw), body);
        for (const char *p = body, *end = body + n; p < end; index++) {
                const char *nl = memchr(p, '\n', MIN((size_t)(end - p), (size_t)RECORD_LEN_MAX));
                if (!nl)
                        return false;
                unsigned long l = strtoul(p, NULL, 10);
                if (l > (size_t)(end - nl - 1))
                        return false;
                const unsigned char *rec = (const unsigned char *)nl + 1;
                p = nl + 1 + l;
                if (index < s->consumed)
                        continue;
                s->consumed = index + 1;
                if (l >= 2 && rec[0] == EVENT_TYPE_TAG && rec[1] == type)
                        return true;
        }
        return false;
}

/* Reads the stream until an event of `type` arrives. */
static int stream_wait(Stream *s, int type)
{
        while (!stream_take(s, type)) {
                if (s->len == STREAM_MAX)
                        return -E2BIG;
                ssize_t n = read(s->fd, s->raw + s->len, STREAM_MAX - s->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -ECONNRESET;
                s->len += (size_t)n;
        }
        return 0;
}

/* Sends the request in `path` on fd and checks the answer's status. */
static int exchange(int fd, const char *path, int want)
{
        _cleanup_free_ char *req = NULL;
        size_t len;
        int r;

        r = bench_read_file(path, &req, &len);
        if (r < 0) {
                fprintf(stderr, "bench-ref-executor: %s: %s\n", path, strerror(-r));
                return r;
        }
        r = bench_http_exchange(fd, req, len);
        if (r < 0) {
                fprintf(stderr, "bench-ref-executor: %s: %s\n", path, strerror(-r));
                return r;
        }
        if (r != want) {
                fprintf(stderr, "bench-ref-executor: %s: HTTP %d, expected %d\n", path, r, want);
                return -EPROTO;
        }
        return 0;
}

static int connect_to(const char *address)
{
        int fd = bench_connect(address);
        if (fd < 0)
                fprintf(stderr, "bench-ref-executor: connect %s: %s\n", address, strerror(-fd));
        return fd;
}

/* After TASK_RUNNING: the first passing check, then register, verify and report healthy. */
static int become_healthy(const Options *o, int agent_fd)
{
        struct timespec delay = { .tv_sec = o->check_delay_ms / 1000,
                                  .tv_nsec = (o->check_delay_ms % 1000) * 1000000 };
        int r;

        /* pacer-executor's Consul connection is open from its stale-entry cleanup at launch */
        _cleanup_close_ int consul_fd = connect_to(o->consul);
        if (consul_fd < 0)
                return consul_fd;
        r = exchange(consul_fd, o->consul_warm, 200);
        if (r < 0)
                return r;
        nanosleep(&delay, NULL);
        {
                /* a check uses a fresh connection every time */
                _cleanup_close_ int check_fd = connect_to(o->check);
                if (check_fd < 0)
                        return check_fd;
                r = exchange(check_fd, o->check_request, 200);
                if (r < 0)
                        return r;
        }
        r = exchange(consul_fd, o->reg, 200);
        if (r < 0)
                return r;
        r = exchange(consul_fd, o->verify, 200);
        if (r < 0)
                return r;
        return exchange(agent_fd, o->healthy, 202);
}

static int run(const Options *o)
{
        static Stream stream;
        _cleanup_free_ char *subscribe = NULL;
        size_t len;
        int r;

        r = bench_read_file(o->subscribe, &subscribe, &len);
        if (r < 0) {
                fprintf(stderr, "bench-ref-executor: %s: %s\n", o->subscribe, strerror(-r));
                return r;
        }
        _cleanup_close_ int sub_fd = connect_to(o->agent);
        if (sub_fd < 0)
                return sub_fd;
        r = bench_write_all(sub_fd, subscribe, len);
        if (r < 0)
                return r;
        stream.fd = sub_fd;
        r = stream_wait(&stream, EVENT_LAUNCH);
        if (r < 0) {
                fprintf(stderr, "bench-ref-executor: waiting for LAUNCH: %s\n", strerror(-r));
                return r;
        }

        /* updates go out one at a time on one kept-alive connection, as pacer-executor sends them */
        _cleanup_close_ int agent_fd = connect_to(o->agent);
        if (agent_fd < 0)
                return agent_fd;
        r = exchange(agent_fd, o->starting, 202);
        if (r < 0)
                return r;
        r = exchange(agent_fd, o->running, 202);
        if (r < 0)
                return r;
        if (o->healthy) {
                r = become_healthy(o, agent_fd);
                if (r < 0)
                        return r;
        }
        r = stream_wait(&stream, EVENT_SHUTDOWN);
        return r == -ECONNRESET ? 0 : r;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: bench-ref-executor --subscribe REQ --starting REQ --running REQ\n"
                "           [--consul ADDR --consul-warm REQ --register REQ --verify REQ\n"
                "            --check ADDR --check-request REQ --check-delay-ms N --healthy REQ]\n"
                "Each REQ is a file holding a complete HTTP request. The agent is MESOS_AGENT_ENDPOINT.\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "subscribe", required_argument, NULL, 's' },
                { "starting", required_argument, NULL, 'S' },
                { "running", required_argument, NULL, 'R' },
                { "consul", required_argument, NULL, 'c' },
                { "consul-warm", required_argument, NULL, 'w' },
                { "register", required_argument, NULL, 'g' },
                { "verify", required_argument, NULL, 'v' },
                { "check", required_argument, NULL, 'k' },
                { "check-request", required_argument, NULL, 'q' },
                { "check-delay-ms", required_argument, NULL, 'd' },
                { "healthy", required_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        Options o = { .agent = getenv("MESOS_AGENT_ENDPOINT") };
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 's':
                        o.subscribe = optarg;
                        break;
                case 'S':
                        o.starting = optarg;
                        break;
                case 'R':
                        o.running = optarg;
                        break;
                case 'c':
                        o.consul = optarg;
                        break;
                case 'w':
                        o.consul_warm = optarg;
                        break;
                case 'g':
                        o.reg = optarg;
                        break;
                case 'v':
                        o.verify = optarg;
                        break;
                case 'k':
                        o.check = optarg;
                        break;
                case 'q':
                        o.check_request = optarg;
                        break;
                case 'd':
                        if (bench_parse_number(optarg, 0, CHECK_DELAY_MAX, &o.check_delay_ms) < 0) {
                                fprintf(stderr, "bench-ref-executor: bad --check-delay-ms '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 'H':
                        o.healthy = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        bool healthy_complete = o.consul && o.consul_warm && o.reg && o.verify && o.check && o.check_request;
        if (optind != argc || !o.agent || !o.subscribe || !o.starting || !o.running ||
            (o.healthy && !healthy_complete)) {
                usage(stderr);
                return 2;
        }
        return run(&o) < 0 ? 1 : 0;
}
