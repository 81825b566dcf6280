/* SPDX-License-Identifier: Apache-2.0 */
#include "guard.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "raw_syscall.h"

/* Groups watched at once: the task plus running command checks. */
#define GUARD_GROUPS_MAX 64
/* How long guard_stop() waits for the guard to exit: 50 x 10 ms. */
#define GUARD_REAP_TRIES   50
#define GUARD_REAP_STEP_NS 10000000L

typedef struct GuardMessage {
        int32_t op; /* +1 watch, -1 unwatch */
        int32_t pgid;
} GuardMessage;

static int guard_fd = -1;
static pid_t guard_child = 0;

#if PACER_HAVE_RAW_SYSCALL
/* The guard shares the executor's memory (CLONE_VM), so it costs no memory of its
 * own — a forked copy would take its share of every dirty page of the executor's
 * libraries (about 0.8 MiB PSS, measured). Sharing memory, it must not touch
 * anything of the executor's: its own stack, and raw system calls that set no
 * errno (libc's wrappers write errno, in the executor's thread-local storage). */
#define GUARD_SHARES_MEMORY 1

__attribute__((no_stack_protector, no_sanitize("address", "undefined"))) static int
guard_clone_main(void *arg)
{
        int fd = (int)(intptr_t)arg;
        pid_t groups[GUARD_GROUPS_MAX];
        unsigned long all = ~0UL;
        size_t n = 0;
        GuardMessage m;

        /* ^C and SIGTERM to the executor's group are for the executor; blocked here, and SIGKILL
         * cannot be blocked */
        raw_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, sizeof(all));
        raw_syscall4(SYS_prctl, PR_SET_NAME, (long)"pacer-guard", 0, 0);
        raw_syscall4(SYS_close_range, 3, fd - 1, 0, 0);
        raw_syscall4(SYS_close_range, fd + 1, ~0U, 0, 0);
        /* nothing holds the executor's stdin or stdout open after it is gone */
        long devnull = raw_syscall4(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDWR | O_CLOEXEC, 0);
        if (devnull >= 0) {
                raw_syscall4(SYS_dup2, devnull, STDIN_FILENO, 0, 0);
                raw_syscall4(SYS_dup2, devnull, STDOUT_FILENO, 0, 0);
                if (devnull > STDOUT_FILENO)
                        raw_syscall4(SYS_close, devnull, 0, 0, 0);
        }
        for (;;) {
                long r = raw_syscall4(SYS_read, fd, (long)&m, sizeof(m), 0);
                if (r == -EINTR)
                        continue;
                if (r != (long)sizeof(m))
                        break; /* EOF or error: the executor is gone */
                if (m.op > 0 && n < GUARD_GROUPS_MAX && m.pgid > 1) {
                        groups[n++] = m.pgid;
                } else if (m.op < 0) {
                        for (size_t i = 0; i < n; i++)
                                if (groups[i] == m.pgid) {
                                        groups[i] = groups[--n];
                                        break;
                                }
                }
        }
        for (size_t i = 0; i < n; i++)
                raw_syscall4(SYS_kill, -groups[i], SIGKILL, 0, 0);
        raw_syscall4(SYS_exit, 0, 0, 0, 0);
        return 0;
}

#else
#define GUARD_SHARES_MEMORY 0
#endif

_noreturn_ static void guard_main(int fd)
{
        pid_t groups[GUARD_GROUPS_MAX];
        size_t n = 0;
        GuardMessage m;

        prctl(PR_SET_NAME, "pacer-guard");
        /* survive the terminal's ^C and a polite SIGTERM to the executor's group: the executor
         * handles those and stops its task; the guard is for when it cannot */
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        close_range(3, (unsigned)fd - 1, 0);
        close_range((unsigned)fd + 1, ~0U, 0);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
                dup2(devnull, STDIN_FILENO);
                dup2(devnull, STDOUT_FILENO);
        }

        for (;;) {
                ssize_t r = read(fd, &m, sizeof(m));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r != (ssize_t)sizeof(m))
                        break; /* EOF or error: the executor is gone */
                if (m.op > 0 && n < GUARD_GROUPS_MAX && m.pgid > 1) {
                        groups[n++] = m.pgid;
                } else if (m.op < 0) {
                        for (size_t i = 0; i < n; i++)
                                if (groups[i] == m.pgid) {
                                        groups[i] = groups[--n];
                                        break;
                                }
                }
        }
        for (size_t i = 0; i < n; i++)
                kill(-groups[i], SIGKILL);
        _exit(0);
}

int guard_start(void)
{
        int fds[2];
        pid_t pid;

        if (guard_fd >= 0)
                return 0;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
#if GUARD_SHARES_MEMORY
        pid = helper_clone(guard_clone_main, (void *)(intptr_t)fds[0], 0);
        if (pid > 0) {
                /* the guard has its own descriptor table: our copy of the read end can go */
                close(fds[0]);
                guard_fd = fds[1];
                guard_child = pid;
                return 0;
        }
#endif
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                close(fds[1]);
                guard_main(fds[0]);
        }
        close(fds[0]);
        guard_fd = fds[1];
        guard_child = pid;
        return 0;
}

static int guard_send(int32_t op, pid_t pgid)
{
        GuardMessage m = { .op = op, .pgid = (int32_t)pgid };
        ssize_t r;

        if (guard_fd < 0)
                return -ENOTCONN;
        do
                r = write(guard_fd, &m, sizeof(m));
        while (r < 0 && errno == EINTR);
        if (r != (ssize_t)sizeof(m))
                return log_warn_errno(
                        r < 0 ? errno : EIO,
                        "the guard process is gone: tasks would outlive a crash of the executor");
        return 0;
}

int guard_watch(pid_t pgid)
{
        return guard_send(1, pgid);
}

int guard_unwatch(pid_t pgid)
{
        return guard_send(-1, pgid);
}

void guard_stop(void)
{
        guard_fd = safe_close(guard_fd);
        if (guard_child > 0) {
                /* it exits at the pipe's end of file, after killing what is left: reap it, so it
                 * does not linger as a zombie under a parent that never reaps (PID 1 of a container) */
                for (int i = 0; i < GUARD_REAP_TRIES; i++) {
                        pid_t r = waitpid(guard_child, NULL, WNOHANG);
                        if (r == guard_child || (r < 0 && errno == ECHILD))
                                break;
                        struct timespec ts = { 0, GUARD_REAP_STEP_NS };
                        nanosleep(&ts, NULL); /* the loop is over; nothing else to do */
                }
        }
        guard_child = 0;
}

pid_t guard_pid(void)
{
        return guard_child;
}
