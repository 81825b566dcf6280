/* SPDX-License-Identifier: Apache-2.0 */
/* bench-fork-curl: the peer of pacer-executor's HTTP checks. Mesos's own
 * executors run an HTTP health check by forking
 * `curl -s -o /dev/null -w %{http_code} URL` and reading the status code from
 * its stdout. This does exactly that RUNS times in a row and prints what it
 * cost: the CPU of the curl processes (getrusage of the children), the CPU of
 * this forking parent, and the wall time. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "bench-util.h"
#include "macro.h"

#define RUNS_MAX   1000000
#define STATUS_MAX 16

/* One check: fork curl, read the status code it prints, reap it. */
static int check_once(const char *curl, const char *url, int *ret_status)
{
        char out[STATUS_MAX + 1];
        size_t have = 0;
        int fds[2], wstatus;
        long code;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR);
                if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(fds[1], STDOUT_FILENO) < 0 ||
                    dup2(devnull, STDERR_FILENO) < 0)
                        _exit(126);
                execlp(curl, curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", url, (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                ssize_t n = read(fds[0], out + have, STATUS_MAX - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                have += (size_t)n;
                if (have == STATUS_MAX)
                        break;
        }
        close(fds[0]);
        out[have] = 0;
        while (waitpid(pid, &wstatus, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) >= 126)
                return -ENOEXEC;
        *ret_status = bench_parse_number(out, 0, 999, &code) < 0 ? 0 : (int)code;
        return 0;
}

static int64_t tv_us(struct timeval tv)
{
        return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int main(int argc, char **argv)
{
        const char *curl = argc > 3 ? argv[3] : "curl";
        struct rusage self0, self1, kids0, kids1;
        long runs, passed = 0;
        int64_t t0, t1;
        int status, r;

        if (argc < 3 || argc > 4 || bench_parse_number(argv[1], 1, RUNS_MAX, &runs) < 0) {
                fprintf(stderr,
                        "usage: bench-fork-curl RUNS URL [CURL]\n"
                        "Runs `curl -s -o /dev/null -w %%{http_code} URL` RUNS times and prints its cost.\n");
                return 2;
        }
        getrusage(RUSAGE_SELF, &self0);
        getrusage(RUSAGE_CHILDREN, &kids0);
        t0 = bench_now_ns();
        for (long i = 0; i < runs; i++) {
                r = check_once(curl, argv[2], &status);
                if (r < 0) {
                        fprintf(stderr, "bench-fork-curl: cannot run %s: %s\n", curl, strerror(-r));
                        return 1;
                }
                if (status >= 200 && status <= 399)
                        passed++;
        }
        t1 = bench_now_ns();
        getrusage(RUSAGE_SELF, &self1);
        getrusage(RUSAGE_CHILDREN, &kids1);
        printf("runs=%ld passed=%ld wall_ns=%" PRId64 " self_user_us=%" PRId64 " self_sys_us=%" PRId64
               " children_user_us=%" PRId64 " children_sys_us=%" PRId64 "\n",
               runs, passed, t1 - t0, tv_us(self1.ru_utime) - tv_us(self0.ru_utime),
               tv_us(self1.ru_stime) - tv_us(self0.ru_stime), tv_us(kids1.ru_utime) - tv_us(kids0.ru_utime),
               tv_us(kids1.ru_stime) - tv_us(kids0.ru_stime));
        return 0;
}
