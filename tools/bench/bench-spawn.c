/* SPDX-License-Identifier: Apache-2.0 */
/* bench-spawn: the fork/exec baseline of the launch-latency benchmark. It
 * starts PROGRAM the way pacer-executor learns that a task started — fork,
 * execve in the child, and a close-on-exec pipe whose end of file says the
 * exec succeeded — and prints the nanoseconds from fork to that end of file,
 * one line per run. The child is then killed and reaped. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "bench-util.h"
#include "macro.h"

#define RUNS_MAX 100000

extern char **environ;

/* Nanoseconds from fork to the successful exec of argv[0]. */
static int spawn_once(char *const *argv, int64_t *ret_ns)
{
        int fds[2], err = 0;
        int64_t start, done;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        start = bench_now_ns();
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                close(fds[0]);
                execve(argv[0], argv, environ);
                err = errno;
                ssize_t _unused_ w = write(fds[1], &err, sizeof(err));
                _exit(127);
        }
        close(fds[1]);
        ssize_t n;
        do
                n = read(fds[0], &err, sizeof(err));
        while (n < 0 && errno == EINTR);
        done = bench_now_ns();
        close(fds[0]);
        kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        if (n > 0)
                return err > 0 ? -err : -EIO;
        *ret_ns = done - start;
        return 0;
}

int main(int argc, char **argv)
{
        long runs;
        int64_t ns;
        int r;

        if (argc < 3 || bench_parse_number(argv[1], 1, RUNS_MAX, &runs) < 0 || argv[2][0] != '/') {
                fprintf(stderr,
                        "usage: bench-spawn RUNS /PATH/TO/PROGRAM [ARG]...\n"
                        "Prints, one line per run, the nanoseconds from fork to the successful exec.\n");
                return 2;
        }
        for (long i = 0; i < runs; i++) {
                r = spawn_once(argv + 2, &ns);
                if (r < 0) {
                        fprintf(stderr, "bench-spawn: %s: %s\n", argv[2], strerror(-r));
                        return 1;
                }
                printf("%" PRId64 "\n", ns);
        }
        return 0;
}
