/* SPDX-License-Identifier: Apache-2.0 */
/* bench-http-get: times GET requests on one kept-alive connection, as a
 * dashboard polling the REST API does. Each request is timed from the first
 * byte written to the last byte of the body read; the body is read and
 * dropped (GET /v2/apps with 10,000 apps is tens of MiB, more than
 * bench_http_exchange() takes). Prints one line per request:
 * "<nanoseconds> <status> <body bytes>".
 * Usage: bench-http-get --address IP:PORT --path PATH [--count N] [--warmup N] */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench-util.h"
#include "macro.h"

#define RESPONSE_BODY_MAX (1024L * 1024 * 1024)
#define READ_SIZE         (1024 * 1024)
#define COUNT_MAX         100000
#define PATH_MAX_LEN      1024

static char buf[READ_SIZE + 1];

/* The value of header `name` in a NUL-terminated header block, or NULL. */
static const char *find_header(const char *headers, const char *name)
{
        size_t l = strlen(name);

        for (const char *line = strstr(headers, "\r\n"); line; line = strstr(line, "\r\n")) {
                line += 2;
                if (strncasecmp(line, name, l) == 0 && line[l] == ':') {
                        const char *v = line + l + 1;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        return v;
                }
        }
        return NULL;
}

static ssize_t read_some(int fd, char *p, size_t size)
{
        for (;;) {
                ssize_t n = recv(fd, p, size, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 ? -errno : n;
        }
}

/* One exchange; returns the status, with the body length in *ret_len. */
static int get(int fd, const char *request, size_t request_len, long *ret_len)
{
        size_t have = 0;
        char *end = NULL;
        long want = 0;
        int status, r;

        r = bench_write_all(fd, request, request_len);
        if (r < 0)
                return r;
        while (!end) {
                if (have == BENCH_HEADERS_MAX)
                        return -E2BIG;
                ssize_t n = read_some(fd, buf + have, BENCH_HEADERS_MAX - have);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        return -ECONNRESET;
                have += (size_t)n;
                buf[have] = 0;
                end = strstr(buf, "\r\n\r\n");
        }
        end[2] = 0;
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                return -EPROTO;
        const char *cl = find_header(buf, "Content-Length");
        if (!cl || find_header(buf, "Transfer-Encoding"))
                return -EPROTONOSUPPORT; /* the scheduler's API sends every body with its length */
        if (bench_parse_number(strndupa(cl, strcspn(cl, "\r")), 0, RESPONSE_BODY_MAX, &want) < 0)
                return -EPROTO;
        size_t seen = have - (size_t)(end + 4 - buf);
        if (seen > (size_t)want)
                return -EPROTO; /* nothing was asked for beyond this response */
        while (seen < (size_t)want) {
                ssize_t n = read_some(fd, buf, MIN((size_t)READ_SIZE, (size_t)want - seen));
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        return -ECONNRESET;
                seen += (size_t)n;
        }
        *ret_len = want;
        return status;
}

static void usage(void)
{
        fprintf(stderr, "usage: bench-http-get --address IP:PORT --path PATH [--count N] [--warmup N]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = { { "address", required_argument, NULL, 'a' },
                                              { "path", required_argument, NULL, 'p' },
                                              { "count", required_argument, NULL, 'c' },
                                              { "warmup", required_argument, NULL, 'w' },
                                              {} };
        const char *address = NULL, *path = NULL;
        long count = 1, warmup = 0;
        char request[PATH_MAX_LEN + 128];
        int c, n;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == 'a')
                        address = optarg;
                else if (c == 'p')
                        path = optarg;
                else if (c == 'c' && bench_parse_number(optarg, 1, COUNT_MAX, &count) >= 0)
                        continue;
                else if (c == 'w' && bench_parse_number(optarg, 0, COUNT_MAX, &warmup) >= 0)
                        continue;
                else
                        usage();
        }
        if (!address || !path || strlen(path) > PATH_MAX_LEN || optind < argc)
                usage();
        n = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n\r\n", path,
                     address);

        _cleanup_close_ int fd = bench_connect(address);
        if (fd < 0) {
                fprintf(stderr, "bench-http-get: connect %s: %s\n", address, strerror(-fd));
                return 1;
        }
        for (long i = 0; i < warmup + count; i++) {
                long len = 0;
                int64_t t0 = bench_now_ns();
                int status = get(fd, request, (size_t)n, &len);
                int64_t t1 = bench_now_ns();
                if (status < 0) {
                        fprintf(stderr, "bench-http-get: GET %s: %s\n", path, strerror(-status));
                        return 1;
                }
                if (i >= warmup)
                        printf("%" PRId64 " %d %ld\n", t1 - t0, status, len);
        }
        return 0;
}
