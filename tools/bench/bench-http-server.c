/* SPDX-License-Identifier: Apache-2.0 */
/* bench-http-server: the HTTP endpoint the benchmarks' health checks probe.
 * One thread, one connection at a time: it reads a request head, answers
 * "200 OK" with an empty body, closes. Its cost is never counted; it only
 * has to be cheap and predictable, and (with --stamps) to write the
 * monotonic time at which it answered each request, one line per answer, so
 * a driver can count checks and see when the first one passed. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "bench-util.h"
#include "macro.h"

/* A client that sends nothing must not stall the next one for long. */
#define CLIENT_TIMEOUT_MS 1000
#define REQUEST_HEAD_MAX  8192
#define LISTEN_BACKLOG    64

static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/* Reads up to the end of the request head; a request without one is dropped. */
static bool read_request_head(int fd)
{
        char buf[REQUEST_HEAD_MAX + 1];
        size_t have = 0;

        while (have < REQUEST_HEAD_MAX) {
                ssize_t n = recv(fd, buf + have, REQUEST_HEAD_MAX - have, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                have += (size_t)n;
                buf[have] = 0;
                if (strstr(buf, "\r\n\r\n"))
                        return true;
        }
        return false;
}

static void serve(int listen_fd, int stamps_fd)
{
        const struct timeval timeout = { .tv_sec = CLIENT_TIMEOUT_MS / 1000,
                                         .tv_usec = (CLIENT_TIMEOUT_MS % 1000) * 1000 };

        for (;;) {
                _cleanup_close_ int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        perror("bench-http-server: accept");
                        return;
                }
                (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
                if (!read_request_head(fd))
                        continue;
                /* stamped before the answer leaves, so a reader that reacts to it is never earlier */
                int64_t now = bench_now_ns();
                if (bench_write_all(fd, response, sizeof(response) - 1) < 0)
                        continue;
                if (stamps_fd >= 0) {
                        char line[32];
                        int l = snprintf(line, sizeof(line), "%" PRId64 "\n", now);
                        if (write(stamps_fd, line, (size_t)l) != l) {
                                perror("bench-http-server: writing the stamps file");
                                return;
                        }
                }
        }
}

static void usage(FILE *f)
{
        fprintf(f, "usage: bench-http-server [--port PORT] [--stamps FILE]\n"
                   "Answers every HTTP request on 127.0.0.1:PORT (0: any free port, printed on stdout)\n"
                   "with 200 and an empty body; --stamps appends the CLOCK_MONOTONIC nanoseconds of\n"
                   "each answer to FILE.\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "port", required_argument, NULL, 'p' },
                { "stamps", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t salen = sizeof(sa);
        const char *stamps = NULL;
        long port = 0;
        int one = 1, c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'p':
                        if (bench_parse_number(optarg, 0, 65535, &port) < 0) {
                                fprintf(stderr, "bench-http-server: bad port '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case 's':
                        stamps = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);

        _cleanup_close_ int stamps_fd = -1;
        if (stamps) {
                stamps_fd = open(stamps, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (stamps_fd < 0) {
                        fprintf(stderr, "bench-http-server: %s: %m\n", stamps);
                        return 1;
                }
        }
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sa.sin_port = htons((uint16_t)port);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
                fprintf(stderr, "bench-http-server: cannot listen on 127.0.0.1:%ld: %m\n", port);
                return 1;
        }
        printf("%u\n", ntohs(sa.sin_port));
        fflush(stdout);
        serve(fd, stamps_fd);
        return 1;
}
