/* SPDX-License-Identifier: Apache-2.0 */
/* bench-sse: many subscribers of pacer-scheduler's event stream at once, for
 * bench_event_fanout.py. It opens N connections to GET /v2/events on one epoll
 * loop, undoes the chunked encoding, and for every event takes its lag: the
 * time it was read here minus the event's own "timestamp" (stamped by the
 * scheduler when it published the event, UTC to the millisecond; both clocks
 * are this machine's CLOCK_REALTIME). So the lag is the fan-out's: from the
 * scheduler's publish to each subscriber's read.
 *
 * Lines on stdout:
 *   connected n=N                  every stream answered 200 with its headers
 *   report events=N conns=N min_per_conn=N max_per_conn=N p50_us=N p99_us=N max_us=N
 *          first_ns=N last_ns=N    (CLOCK_MONOTONIC of the first and last event counted)
 * Commands on stdin: "reset" forgets what was counted (after a warm-up) and
 * from then on counts only events newer than any read so far,
 * "report" prints a report, "quit" (or end of file) exits.
 * Usage: bench-sse --address IP:PORT [--connections N] [--path PATH] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "macro.h"

#define CONNECTIONS_MAX 10000
#define READ_SIZE       (64 * 1024)
#define LINE_MAX_LEN    (64 * 1024) /* the scheduler's events are smaller */
#define LAGS_MAX        (64u * 1024 * 1024)
#define PATH_MAX_LEN    1024

typedef enum {
        READ_HEADERS,
        CHUNK_SIZE,
        CHUNK_DATA,
        CHUNK_END,
} ReadState;

typedef struct Sub {
        int fd;
        ReadState state;
        char head[BENCH_HEADERS_MAX + 1];
        size_t head_len;
        char size_line[32];
        size_t size_len;
        size_t chunk_left;
        char line[LINE_MAX_LEN];
        size_t line_len;
        uint64_t id; /* of the event being read (its "id:" line comes first) */
        uint64_t events;
} Sub;

static Sub *subs;
static size_t n_subs, n_connected;
static uint32_t *lags; /* microseconds */
static size_t n_lags;
static int64_t first_ns, last_ns;
/* Events up to this id are not counted: those some subscriber had read before the
 * reset. Every subscriber is sent every later one, so their counts can be compared. */
static uint64_t counted_after, max_id;

_noreturn_ static void die(const char *what, int error)
{
        fprintf(stderr, "bench-sse: %s: %s\n", what, strerror(error));
        exit(1);
}

static int64_t realtime_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "...\"timestamp\":\"2026-11-26T04:35:49.404Z\"..." -> microseconds since the epoch, or -1. */
static int64_t event_time_us(const char *data)
{
        const char *p = strstr(data, "\"timestamp\":\"");
        struct tm tm = {};
        int ms = 0;

        if (!p || sscanf(p + 13, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                         &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
                return -1;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return (int64_t)timegm(&tm) * 1000000 + ms * 1000;
}

static void on_line(Sub *s, const char *line)
{
        int64_t t, lag;

        if (strncmp(line, "id: ", 4) == 0) {
                s->id = strtoull(line + 4, NULL, 10);
                max_id = MAX(max_id, s->id);
                return;
        }
        if (strncmp(line, "data: ", 6) != 0 || s->id <= counted_after || (t = event_time_us(line + 6)) < 0)
                return;
        lag = realtime_us() - t;
        s->events++;
        if (n_lags < LAGS_MAX)
                lags[n_lags++] = (uint32_t)CLAMP(lag, 0, (int64_t)UINT32_MAX);
        last_ns = bench_now_ns();
        if (!first_ns)
                first_ns = last_ns;
}

static void body_bytes(Sub *s, const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (p[i] == '\n') {
                        s->line[s->line_len] = 0;
                        on_line(s, s->line);
                        s->line_len = 0;
                } else if (s->line_len + 1 < sizeof(s->line))
                        s->line[s->line_len++] = p[i];
        }
}

/* Feeds what was read to the connection's parser: headers, then chunks. */
static void feed(Sub *s, const char *p, size_t n)
{
        while (n > 0) {
                switch (s->state) {
                case READ_HEADERS: {
                        size_t take = MIN(n, sizeof(s->head) - 1 - s->head_len);
                        if (take == 0)
                                die("response headers", EMSGSIZE);
                        memcpy(s->head + s->head_len, p, take);
                        s->head_len += take;
                        s->head[s->head_len] = 0;
                        char *end = strstr(s->head, "\r\n\r\n");
                        if (!end) {
                                p += take, n -= take;
                                break;
                        }
                        if (strncmp(s->head, "HTTP/1.1 200", 12) != 0) {
                                fprintf(stderr, "bench-sse: the stream answered: %.*s\n",
                                        (int)(end - s->head), s->head);
                                exit(1);
                        }
                        size_t used = (size_t)(end + 4 - s->head) - (s->head_len - take);
                        p += used, n -= used;
                        s->state = CHUNK_SIZE;
                        if (++n_connected == n_subs) {
                                printf("connected n=%zu\n", n_subs);
                                fflush(stdout);
                        }
                        break;
                }
                case CHUNK_SIZE:
                        if (*p == '\n') {
                                s->size_line[s->size_len] = 0;
                                s->chunk_left = strtoul(s->size_line, NULL, 16);
                                s->size_len = 0;
                                s->state = s->chunk_left ? CHUNK_DATA : READ_HEADERS;
                                if (!s->chunk_left)
                                        die("the stream ended", ECONNRESET);
                        } else if (*p != '\r' && s->size_len + 1 < sizeof(s->size_line))
                                s->size_line[s->size_len++] = *p;
                        p++, n--;
                        break;
                case CHUNK_DATA: {
                        size_t take = MIN(n, s->chunk_left);
                        body_bytes(s, p, take);
                        s->chunk_left -= take;
                        p += take, n -= take;
                        if (!s->chunk_left)
                                s->state = CHUNK_END;
                        break;
                }
                case CHUNK_END: /* the CRLF after a chunk's data */
                        if (*p == '\n')
                                s->state = CHUNK_SIZE;
                        p++, n--;
                        break;
                }
        }
}

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return (x > y) - (x < y);
}

static void report(void)
{
        uint64_t lo = UINT64_MAX, hi = 0, total = 0;

        for (size_t i = 0; i < n_subs; i++) {
                lo = MIN(lo, subs[i].events);
                hi = MAX(hi, subs[i].events);
                total += subs[i].events;
        }
        qsort(lags, n_lags, sizeof(*lags), cmp_u32);
        uint32_t p50 = n_lags ? lags[n_lags / 2] : 0, p99 = n_lags ? lags[(n_lags * 99) / 100] : 0,
                 max = n_lags ? lags[n_lags - 1] : 0;
        printf("report events=%" PRIu64 " conns=%zu min_per_conn=%" PRIu64 " max_per_conn=%" PRIu64
               " p50_us=%u p99_us=%u max_us=%u first_ns=%" PRId64 " last_ns=%" PRId64 "\n",
               total, n_subs, lo, hi, p50, p99, max, first_ns, last_ns);
        fflush(stdout);
}

static void reset(void)
{
        for (size_t i = 0; i < n_subs; i++)
                subs[i].events = 0;
        n_lags = 0;
        first_ns = last_ns = 0;
        counted_after = max_id;
}

/* Returns false at end of file or "quit". */
static bool read_commands(void)
{
        static char line[256];
        static size_t len;
        char c;
        ssize_t r;

        while ((r = read(STDIN_FILENO, &c, 1)) == 1) {
                if (c != '\n') {
                        if (len + 1 < sizeof(line))
                                line[len++] = c;
                        continue;
                }
                line[len] = 0;
                len = 0;
                if (streq(line, "reset"))
                        reset();
                else if (streq(line, "report"))
                        report();
                else if (streq(line, "quit"))
                        return false;
                else
                        fprintf(stderr, "bench-sse: unknown command '%s'\n", line);
        }
        return !(r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR));
}

static void usage(void)
{
        fprintf(stderr, "usage: bench-sse --address IP:PORT [--connections N] [--path PATH]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "address", required_argument, NULL, 'a' },
                { "connections", required_argument, NULL, 'n' },
                { "path", required_argument, NULL, 'p' },
                {},
        };
        static char stdin_mark, buf[READ_SIZE];
        const char *address = NULL, *path = "/v2/events";
        long conns = 100;
        struct epoll_event ev, evs[256];
        char request[PATH_MAX_LEN + 128];
        int c, epfd;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (c == 'a')
                        address = optarg;
                else if (c == 'n') {
                        if (bench_parse_number(optarg, 1, CONNECTIONS_MAX, &conns) < 0)
                                usage();
                } else if (c == 'p' && strlen(optarg) < PATH_MAX_LEN)
                        path = optarg;
                else
                        usage();
        }
        if (!address)
                usage();
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        n_subs = (size_t)conns;
        subs = calloc(n_subs, sizeof(*subs));
        lags = malloc(LAGS_MAX * sizeof(*lags));
        if (!subs || !lags)
                die("memory", ENOMEM);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                die("epoll_create1", errno);
        int len =
                snprintf(request, sizeof(request),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, address);
        for (size_t i = 0; i < n_subs; i++) {
                Sub *s = &subs[i];
                s->fd = bench_connect(address);
                if (s->fd < 0)
                        die("connect", -s->fd);
                if (bench_write_all(s->fd, request, (size_t)len) < 0)
                        die("write", errno);
                fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
                ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = s };
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
                        die("epoll_ctl", errno);
        }
        fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
        ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &stdin_mark };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0)
                die("epoll_ctl stdin", errno);

        for (;;) {
                int n = epoll_wait(epfd, evs, (int)ELEMENTSOF(evs), -1);
                if (n < 0 && errno != EINTR)
                        die("epoll_wait", errno);
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.ptr == &stdin_mark) {
                                if (!read_commands())
                                        return 0;
                                continue;
                        }
                        Sub *s = evs[i].data.ptr;
                        ssize_t r = read(s->fd, buf, sizeof(buf));
                        if (r == 0)
                                die("a stream was closed by the scheduler", ECONNRESET);
                        if (r < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        continue;
                                die("read", errno);
                        }
                        feed(s, buf, (size_t)r);
                }
        }
}
