/* SPDX-License-Identifier: Apache-2.0 */
#include "consul_dev.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "log.h"
#include "macro.h"

#define PROBE_INTERVAL_NS (100 * NSEC_PER_MSEC)
#define STOP_TIMEOUT_NS   (5 * NSEC_PER_SEC)

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

char *consul_dev_find(const char *given)
{
        const char *path = getenv("PATH");

        if (given && *given)
                return access(given, X_OK) == 0 ? strdup(given) : NULL;
        for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; *p;) {
                const char *end = strchrnul(p, ':');
                char *candidate;
                if (end > p && asprintf(&candidate, "%.*s/consul", (int)(end - p), p) >= 0) {
                        if (access(candidate, X_OK) == 0)
                                return candidate;
                        free(candidate);
                }
                p = *end ? end + 1 : end;
        }
        return NULL;
}

static int free_port(void)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0)
                return -1;
        return ntohs(a.sin_port);
}

/* One GET /v1/status/leader, with a deadline; 1 when a leader is named. */
static int probe_leader(const char *host, int port, int64_t timeout_ns)
{
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        char req[256], resp[2048];
        size_t got = 0;
        int64_t deadline = now_ns() + timeout_ns;

        if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1)
                return 0;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
                return 0;
        int n = snprintf(req, sizeof(req), "GET /v1/status/leader HTTP/1.0\r\nHost: %s:%d\r\n\r\n", host,
                         port);
        bool sent = false;
        for (;;) {
                int64_t left = deadline - now_ns();
                if (left <= 0)
                        return 0;
                struct pollfd p = { .fd = fd, .events = sent ? POLLIN : POLLOUT };
                if (poll(&p, 1, (int)(left / NSEC_PER_MSEC) + 1) <= 0)
                        continue;
                if (!sent) {
                        int soerr = 0;
                        socklen_t sl = sizeof(soerr);
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr ||
                            write(fd, req, (size_t)n) != n)
                                return 0;
                        sent = true;
                        continue;
                }
                ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
                if (r < 0 && errno == EAGAIN)
                        continue;
                if (r <= 0)
                        break;
                got += (size_t)r;
                if (got == sizeof(resp) - 1)
                        break;
        }
        resp[got] = 0;
        const char *body = strstr(resp, "\r\n\r\n");
        /* 200 and a non-empty quoted address, e.g. "127.0.0.1:8300" */
        return strneq(resp, "HTTP/1.", 7) && strstr(resp, " 200 ") && body && strlen(body + 4) > 2;
}

bool consul_dev_reachable(const char *address, int64_t timeout_ns)
{
        char host[64];
        const char *a = address, *colon;
        int port = 8500;

        if (strneq(a, "http://", 7))
                a += 7;
        colon = strrchr(a, ':');
        if (colon) {
                port = atoi(colon + 1);
                snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
        } else
                snprintf(host, sizeof(host), "%s", a);
        if (streq(host, "localhost"))
                snprintf(host, sizeof(host), "127.0.0.1");
        return probe_leader(host, port, timeout_ns) > 0;
}

int consul_dev_start(const char *binary, const char *data_dir, int64_t timeout_ns, ConsulDev *ret,
                     PacerError *err)
{
        int http = free_port(), lan = free_port(), wan = free_port(), srv = free_port();
        char ports[4][16], dir[4096], log_path[4096];
        pid_t pid;

        if (http < 0 || lan < 0 || wan < 0 || srv < 0)
                return pacer_error_set(err, EADDRNOTAVAIL,
                                       "no free loopback ports for the Consul dev agent");
        snprintf(ports[0], sizeof(ports[0]), "%d", http);
        snprintf(ports[1], sizeof(ports[1]), "%d", lan);
        snprintf(ports[2], sizeof(ports[2]), "%d", wan);
        snprintf(ports[3], sizeof(ports[3]), "%d", srv);
        snprintf(dir, sizeof(dir), "%s/consul", data_dir);
        snprintf(log_path, sizeof(log_path), "%s/consul.log", data_dir);
        mkdir(data_dir, 0700);
        mkdir(dir, 0700);

        pid = fork();
        if (pid < 0)
                return pacer_error_set(err, errno, "fork: %m");
        if (pid == 0) {
                int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                int devnull = open("/dev/null", O_RDONLY);
                setpgid(0, 0); /* ^C goes to the scheduler, which stops the agent itself */
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                if (devnull >= 0)
                        dup2(devnull, STDIN_FILENO);
                execl(binary, binary, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
                      "-http-port", ports[0], "-dns-port", "-1", "-grpc-port", "-1", "-serf-lan-port",
                      ports[1], "-serf-wan-port", ports[2], "-server-port", ports[3], "-data-dir", dir,
                      "-log-level", "warn", (char *)NULL);
                _exit(127);
        }
        ret->pid = pid;
        snprintf(ret->address, sizeof(ret->address), "127.0.0.1:%d", http);
        for (int64_t deadline = now_ns() + timeout_ns; now_ns() < deadline;) {
                int status;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                        ret->pid = 0;
                        return pacer_error_set(err, ECHILD,
                                               "the Consul dev agent (%s) exited at start; see %s", binary,
                                               log_path);
                }
                if (probe_leader("127.0.0.1", http, PROBE_INTERVAL_NS) > 0)
                        return 0;
                struct timespec ts = { 0, PROBE_INTERVAL_NS };
                nanosleep(&ts, NULL); /* before the event loop exists: nothing else to do meanwhile */
        }
        consul_dev_stop(ret);
        return pacer_error_set(err, ETIMEDOUT, "the Consul dev agent elected no leader in time; see %s",
                               log_path);
}

void consul_dev_stop(ConsulDev *c)
{
        int status;

        if (!c || c->pid <= 0)
                return;
        kill(c->pid, SIGTERM); /* the dev agent exits 1 on SIGTERM: normal for it */
        for (int64_t deadline = now_ns() + STOP_TIMEOUT_NS; now_ns() < deadline;) {
                pid_t r = waitpid(c->pid, &status, WNOHANG);
                if (r == c->pid || (r < 0 && errno == ECHILD)) { /* ECHILD: the loop reaped it */
                        c->pid = 0;
                        return;
                }
                struct timespec ts = { 0, 50 * NSEC_PER_MSEC };
                nanosleep(&ts, NULL);
        }
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &status, 0);
        c->pid = 0;
}
