/* SPDX-License-Identifier: Apache-2.0 */
#include "bench-util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "macro.h"

#define ADDRESS_MAX 64

int64_t bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_parse_number(const char *s, long min, long max, long *ret)
{
        char *end;
        long v;

        if (!s || !*s)
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || *end || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

int bench_connect(const char *address)
{
        char host[ADDRESS_MAX];
        struct sockaddr_in sa = { .sin_family = AF_INET };
        const char *colon = strrchr(address, ':');
        long port;
        int one = 1;

        if (!colon || (size_t)(colon - address) >= sizeof(host) ||
            bench_parse_number(colon + 1, 1, 65535, &port) < 0)
                return -EINVAL;
        memcpy(host, address, (size_t)(colon - address));
        host[colon - address] = 0;
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return -EINVAL;
        sa.sin_port = htons((uint16_t)port);

        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

int bench_write_all(int fd, const void *data, size_t len)
{
        const char *p = data;

        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int bench_read_file(const char *path, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;
        struct stat st;
        size_t got = 0;

        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size > BENCH_FILE_MAX)
                return -EFBIG;
        data = malloc((size_t)st.st_size + 1);
        if (!data)
                return -ENOMEM;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        data[got] = 0;
        *ret = TAKE_PTR(data);
        *ret_len = got;
        return 0;
}

/* The value of header `name` in a header block, or NULL. */
static const char *header_value(const char *headers, const char *name)
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

static int read_some(int fd, char *buf, size_t size)
{
        for (;;) {
                ssize_t n = recv(fd, buf, size, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 ? negative_errno() : (int)n;
        }
}

int bench_http_exchange(int fd, const void *request, size_t len)
{
        char buf[BENCH_HEADERS_MAX + 1];
        size_t have = 0;
        char *end = NULL;
        int status, r;

        r = bench_write_all(fd, request, len);
        if (r < 0)
                return r;
        while (!end) {
                if (have == BENCH_HEADERS_MAX)
                        return -E2BIG;
                r = read_some(fd, buf + have, BENCH_HEADERS_MAX - have);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ECONNRESET;
                have += (size_t)r;
                buf[have] = 0;
                end = strstr(buf, "\r\n\r\n");
        }
        end[2] = 0; /* the header block, each line ending in CRLF */
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                return -EPROTO;

        size_t body_seen = have - (size_t)(end + 4 - buf);
        const char *cl = header_value(buf, "Content-Length");
        const char *conn = header_value(buf, "Connection");
        bool to_eof = !cl && conn && strncasecmp(conn, "close", 5) == 0;
        long want = 0;
        if (cl && (bench_parse_number(strndupa(cl, strcspn(cl, "\r")), 0, BENCH_BODY_MAX, &want) < 0))
                return -EPROTO;
        if (header_value(buf, "Transfer-Encoding"))
                return -EPROTONOSUPPORT;

        while (to_eof || body_seen < (size_t)want) {
                r = read_some(fd, buf, BENCH_HEADERS_MAX);
                if (r < 0)
                        return r;
                if (r == 0) {
                        if (to_eof)
                                break;
                        return -ECONNRESET;
                }
                body_seen += (size_t)r;
                if (body_seen > BENCH_BODY_MAX)
                        return -E2BIG;
        }
        return status;
}
