/* SPDX-License-Identifier: Apache-2.0 */
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "raw_syscall.h"

typedef struct SpawnRequest {
        int (*fn)(void *);
        void *stack_top;
        void *arg;
} SpawnRequest;

typedef struct SpawnerSetup {
        int request_fd; /* read end */
        int reply_fd;   /* write end */
        pid_t executor;
} SpawnerSetup;

static int request_fd = -1; /* write end of the request pipe */
static int reply_fd = -1;   /* read end of the reply pipe */
static int spawner_pidfd = -1;
static pid_t spawner_child = 0;

#if PACER_HAVE_RAW_SYSCALL
/* Between requests it runs beside the executor, so it makes raw calls only; a
 * request's clone() runs while the executor waits for the reply with every
 * signal blocked, so libc's clone() may set errno then. */
__attribute__((no_stack_protector, no_sanitize("address", "undefined"))) static int spawner_main(void *arg)
{
        const SpawnerSetup *s = arg;
        int in = s->request_fd, out = s->reply_fd;
        unsigned long all = ~0UL;

        raw_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, sizeof(all));
        raw_syscall4(SYS_prctl, PR_SET_NAME, (long)"pacer-spawner", 0, 0);
        /* the read below never sees end of file while the shared descriptor table lives: this is
         * what ends the spawner when the executor dies */
        raw_syscall4(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0);
        if (raw_syscall4(SYS_getppid, 0, 0, 0, 0) != s->executor)
                raw_syscall4(SYS_exit, 0, 0, 0, 0);
        for (;;) {
                SpawnRequest *rq;
                long r = raw_syscall4(SYS_read, in, (long)&rq, sizeof(rq), 0);
                if (r == -EINTR)
                        continue;
                if (r != (long)sizeof(rq))
                        break;
                long pid = clone(rq->fn, rq->stack_top, CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD,
                                 rq->arg);
                long reply = pid < 0 ? -(long)errno : pid;
                raw_syscall4(SYS_write, out, (long)&reply, sizeof(reply), 0);
        }
        raw_syscall4(SYS_exit, 0, 0, 0, 0);
        return 0;
}

int spawner_start(void)
{
        static SpawnerSetup setup; /* read by the spawner after this returns */
        int req[2] = { -1, -1 }, rep[2] = { -1, -1 }, pidfd = -1, r;
        pid_t pid = -1;

        if (spawner_child > 0)
                return 0;
        if (pipe2(req, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
                r = negative_errno();
                goto fail;
        }
        setup = (SpawnerSetup){ .request_fd = req[0], .reply_fd = rep[1], .executor = getpid() };
        pid = helper_clone(spawner_main, &setup, CLONE_FILES);
        if (pid < 0) {
                r = pid;
                goto fail;
        }
        /* the descriptor table is shared: a dead spawner never closes its pipe ends, so its
         * death is watched through a pidfd */
        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                r = negative_errno();
                kill(pid, SIGKILL);
                goto fail;
        }
        request_fd = req[1];
        reply_fd = rep[0];
        spawner_pidfd = pidfd;
        spawner_child = pid;
        return 0;
fail:
        safe_close(req[0]);
        safe_close(req[1]);
        safe_close(rep[0]);
        safe_close(rep[1]);
        return r;
}
#else
int spawner_start(void)
{
        return -EOPNOTSUPP;
}
#endif

bool spawner_running(void)
{
        /* also once it is lost: spawns must then fail, not fall back to a fork the filter forbids */
        return spawner_child != 0;
}

/* The spawner is gone (killed from outside): later spawns fail at once. */
static pid_t spawner_lost(void)
{
        log_error("the spawner process is gone (killed from outside?): no task or command check can start; "
                  "restart the executor");
        spawner_pidfd = safe_close(spawner_pidfd);
        spawner_child = -1;
        return -ESRCH;
}

pid_t spawner_clone(int (*fn)(void *), void *stack_top, void *arg)
{
        SpawnRequest rq = { .fn = fn, .stack_top = stack_top, .arg = arg };
        SpawnRequest *p = &rq;
        long reply;
        ssize_t n;

        if (spawner_child == 0)
                return -ENOTCONN;
        if (spawner_child < 0)
                return -ESRCH;
        do
                n = write(request_fd, &p, sizeof(p));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(p))
                return n < 0 ? negative_errno() : -EIO;
        for (;;) {
                struct pollfd fds[2] = { { .fd = reply_fd, .events = POLLIN },
                                         { .fd = spawner_pidfd, .events = POLLIN } };
                if (poll(fds, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (fds[0].revents & POLLIN)
                        break;
                if (fds[1].revents)
                        return spawner_lost();
        }
        do
                n = read(reply_fd, &reply, sizeof(reply));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(reply))
                return n < 0 ? negative_errno() : -EIO;
        return (pid_t)reply;
}

void spawner_stop(void)
{
        /* the spawner reads end of file and exits; the event loop or init reaps it */
        request_fd = safe_close(request_fd);
        reply_fd = safe_close(reply_fd);
        spawner_pidfd = safe_close(spawner_pidfd);
        spawner_child = 0;
}

pid_t spawner_pid(void)
{
        return spawner_child > 0 ? spawner_child : 0;
}
