/* SPDX-License-Identifier: Apache-2.0 */
#include "task.h"

#include <ev.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guard.h"
#include "log.h"
#include "macro.h"
#include "output.h"
#include "proc.h"
#include "spawner.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The child runs between clone and exec on this stack, in the executor's own
 * memory (CLONE_VM | CLONE_VFORK, as posix_spawn does). fork() would copy the
 * page tables of the executor's ~40 libraries first: about 0.7 ms, the largest
 * part of the time from LAUNCH to a running task. The executor is suspended
 * until the child execs or exits, so one stack serves every spawn. Sanitizer
 * builds need deeper frames. */
#define SPAWN_STACK_SIZE (256u * 1024)

/* Steps of the child before exec beyond the sandbox's own, for error reports. */
enum {
        CHILD_STEP_SETPGID = 100,
        CHILD_STEP_STDIO,
        CHILD_STEP_CHDIR,
        CHILD_STEP_EXEC,
};

typedef struct ChildError {
        int32_t step;
        int32_t error;
} ChildError;

struct TaskProcess {
        struct ev_loop *loop;
        TaskProcessCallbacks cb;
        void *userdata;
        pid_t pid;
        bool running;
        bool started_reported;
        bool linger_group;
        int start_error;
        char *program;
        ev_child child;
        ev_io errpipe;
        int errfd;
        OutputSink *out, *err;
};

const char *task_describe_wstatus(int wstatus, char *buf, size_t size)
{
        if (WIFEXITED(wstatus))
                snprintf(buf, size, "exited with status %d", WEXITSTATUS(wstatus));
        else if (WIFSIGNALED(wstatus))
                snprintf(buf, size, "killed by signal %d (SIG%s)%s", WTERMSIG(wstatus),
                         strna(sigabbrev_np(WTERMSIG(wstatus))), WCOREDUMP(wstatus) ? ", core dumped" : "");
        else
                snprintf(buf, size, "ended with wait status 0x%x", (unsigned)wstatus);
        return buf;
}

static const char *env_lookup(char *const *envp, const char *name)
{
        size_t l = strlen(name);
        for (; envp && *envp; envp++)
                if (strneq(*envp, name, l) && (*envp)[l] == '=')
                        return *envp + l + 1;
        return NULL;
}

int task_resolve_program(const char *name, char *const *envp, char **ret, PacerError *err)
{
        const char *path;

        if (!name || !*name)
                return pacer_error_set(err, EINVAL, "empty program name");
        if (strchr(name, '/')) {
                char *p = strdup(name);
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return 0;
        }
        path = env_lookup(envp, "PATH");
        if (!path || !*path)
                path = DEFAULT_PATH;
        for (const char *p = path; *p;) {
                const char *end = strchrnul(p, ':');
                _cleanup_free_ char *candidate = NULL;
                if (end == p) { /* empty element: the current directory, as execvp does */
                        if (asprintf(&candidate, "./%s", name) < 0)
                                return -ENOMEM;
                } else if (asprintf(&candidate, "%.*s/%s", (int)(end - p), p, name) < 0)
                        return -ENOMEM;
                if (access(candidate, X_OK) == 0) {
                        struct stat st;
                        if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode)) {
                                *ret = TAKE_PTR(candidate);
                                return 0;
                        }
                }
                p = *end ? end + 1 : end;
        }
        return pacer_error_set(err, ENOENT, "command '%s' not found in PATH=%s", name, path);
}

static const char *child_step_name(int32_t step, const char *program, char *buf, size_t size)
{
        switch (step) {
        case CHILD_STEP_SETPGID:
                return "setpgid";
        case CHILD_STEP_STDIO:
                return "redirecting stdout/stderr";
        case CHILD_STEP_CHDIR:
                return "chdir to the sandbox";
        case CHILD_STEP_EXEC:
                snprintf(buf, size, "exec %s", program);
                return buf;
        default:
                return sandbox_step_to_string((SandboxStep)step);
        }
}

_noreturn_ static void child_fail(int errfd, int32_t step, int error)
{
        ChildError e = { .step = step, .error = error };
        ssize_t _unused_ w = write(errfd, &e, sizeof(e));
        _exit(127);
}

/* In the child, between clone and exec, in the executor's memory while it waits:
 * only async-signal-safe calls, nothing that allocates or writes the executor's
 * data; errno is the one shared word it may touch (the executor does not read it
 * until the child has gone). */
_noreturn_ static void child_run(const TaskSpawnOptions *o, const char *program, int errfd, int out_fd,
                                 int err_fd, pid_t parent)
{
        sigset_t all;
        SandboxStep step;
        int r;

        /* the executor handles signals; the task starts from a clean slate. All signals are blocked
         * until here, so none of the executor's handlers can run on its memory in this process */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        signal(sig, SIG_DFL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);

        if (setpgid(0, 0) < 0)
                child_fail(errfd, CHILD_STEP_SETPGID, errno);
        /* the guard covers the whole group; this covers the leader even before the guard knows it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(127);

        int devnull = open("/dev/null", O_RDWR);
        if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
            dup2(out_fd >= 0 ? out_fd : devnull, STDOUT_FILENO) < 0 ||
            dup2(err_fd >= 0 ? err_fd : devnull, STDERR_FILENO) < 0)
                child_fail(errfd, CHILD_STEP_STDIO, errno);
        /* everything the executor holds (sockets, the guard pipe) closes at exec; errfd is already cloexec
         */
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

        if (o->cwd && chdir(o->cwd) < 0)
                child_fail(errfd, CHILD_STEP_CHDIR, errno);
        if (o->sandbox) {
                r = sandbox_apply(o->sandbox, &step);
                if (r < 0)
                        child_fail(errfd, (int32_t)step, -r);
        }
        execve(program, o->argv, o->envp);
        child_fail(errfd, CHILD_STEP_EXEC, errno);
}

typedef struct SpawnArgs {
        const TaskSpawnOptions *o;
        const char *program;
        int errfd, out_fd, err_fd;
        pid_t parent;
} SpawnArgs;

static int child_entry(void *arg)
{
        const SpawnArgs *a = arg;
        child_run(a->o, a->program, a->errfd, a->out_fd, a->err_fd, a->parent);
}

/* Starts the child; returns its pid, or -errno. */
static pid_t spawn_child(const SpawnArgs *a)
{
        static void *stack = NULL;
        sigset_t all, old;
        pid_t pid;
        int r;

        if (!stack) {
                void *m = mmap(NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
                if (m == MAP_FAILED)
                        return negative_errno();
                stack = m;
        }
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);
        /* a hardened executor may not fork: its spawner does, the child still ours (CLONE_PARENT) */
        if (spawner_running())
                r = spawner_clone(child_entry, (char *)stack + SPAWN_STACK_SIZE, (void *)a);
        else {
                pid = clone(child_entry, (char *)stack + SPAWN_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD,
                            (void *)a);
                r = pid < 0 ? negative_errno() : pid;
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
}

static void report_started(TaskProcess *p, int error, const char *what)
{
        if (p->started_reported)
                return;
        p->started_reported = true;
        p->start_error = error;
        if (p->cb.started)
                p->cb.started(p, error, what, p->userdata);
}

/* Reads the child's error report: nothing before EOF means exec succeeded. */
static void check_errpipe(TaskProcess *p)
{
        ChildError e;
        char buf[512];
        ssize_t n;

        if (p->errfd < 0)
                return;
        do
                n = read(p->errfd, &e, sizeof(e));
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return;
        ev_io_stop(p->loop, &p->errpipe);
        p->errfd = safe_close(p->errfd);
        if (n == (ssize_t)sizeof(e))
                report_started(p, e.error > 0 ? -e.error : -EIO,
                               child_step_name(e.step, p->program, buf, sizeof(buf)));
        else
                report_started(p, 0, NULL);
}

static void on_errpipe(struct ev_loop *loop, ev_io *w, int revents)
{
        check_errpipe(w->data);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
        TaskProcess *p = w->data;

        ev_child_stop(loop, w);
        p->running = false;
        /* the exit can be seen before the error pipe: settle "started" first */
        check_errpipe(p);
        if (!p->linger_group) {
                /* members of the group the leader left behind are not the task anymore */
                kill(-p->pid, SIGKILL);
                guard_unwatch(p->pid);
        }
        output_sink_drain(p->out);
        output_sink_drain(p->err);
        if (p->start_error == 0 && p->cb.exited)
                p->cb.exited(p, w->rstatus, p->userdata);
}

static int open_output(struct ev_loop *loop, const char *path, size_t max, int *ret_write_fd,
                       OutputSink **ret)
{
        int fds[2], r;

        if (!path) {
                *ret_write_fd = -1;
                *ret = NULL;
                return 0;
        }
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        r = output_sink_new(loop, fds[0], path, max, ret);
        if (r < 0) {
                close(fds[1]);
                return r;
        }
        *ret_write_fd = fds[1];
        return 0;
}

int task_process_spawn(struct ev_loop *loop, const TaskSpawnOptions *o, const TaskProcessCallbacks *cb,
                       void *userdata, TaskProcess **ret, PacerError *err)
{
        _cleanup_free_ TaskProcess *p = NULL;
        _cleanup_close_ int out_w = -1, err_w = -1;
        int errpipe[2], r;
        pid_t parent = getpid(), pid;

        if (!o->argv || !o->argv[0])
                return pacer_error_set(err, EINVAL, "no command to run");
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->loop = loop;
        p->linger_group = o->linger_group;
        p->cb = *cb;
        p->userdata = userdata;
        p->errfd = -1;
        r = task_resolve_program(o->argv[0], o->envp, &p->program, err);
        if (r < 0)
                return r;

        r = open_output(loop, o->stdout_path, o->output_max, &out_w, &p->out);
        if (r >= 0)
                r = open_output(loop, o->stderr_path, o->output_max, &err_w, &p->err);
        if (r < 0) {
                output_sink_free(p->out);
                output_sink_free(p->err);
                free(p->program);
                return pacer_error_set(err, r, "cannot open the task's output files in %s: %s",
                                       strna(o->cwd), strerror(-r));
        }
        if (pipe2(errpipe, O_CLOEXEC) < 0) {
                r = negative_errno();
                output_sink_free(p->out);
                output_sink_free(p->err);
                free(p->program);
                return pacer_error_set(err, r, "pipe: %s", strerror(-r));
        }

        SpawnArgs a = {
                .o = o,
                .program = p->program,
                .errfd = errpipe[1],
                .out_fd = out_w,
                .err_fd = err_w,
                .parent = parent,
        };
        pid = spawn_child(&a);
        if (pid < 0) {
                r = pid;
                close(errpipe[0]);
                close(errpipe[1]);
                output_sink_free(p->out);
                output_sink_free(p->err);
                free(p->program);
                if (r == -ESRCH && spawner_running())
                        return pacer_error_set(err, r,
                                               "cannot start the process: the executor's spawner process is "
                                               "gone (killed from outside?); restart the executor");
                return pacer_error_set(err, r, "cannot start the process: %s", strerror(-r));
        }

        close(errpipe[1]);
        /* also here, so a signal to the group works before the child gets to run */
        (void)setpgid(pid, pid);
        guard_watch(pid);
        p->pid = pid;
        p->running = true;
        p->errfd = errpipe[0];
        fcntl(p->errfd, F_SETFL, O_NONBLOCK);
        ev_io_init(&p->errpipe, on_errpipe, p->errfd, EV_READ);
        p->errpipe.data = p;
        ev_io_start(loop, &p->errpipe);
        ev_child_init(&p->child, on_child, pid, 0);
        p->child.data = p;
        ev_child_start(loop, &p->child);
        *ret = TAKE_PTR(p);
        return 0;
}

/* The executor's children but the guard and the spawner. */
static bool orphan(pid_t pid, const ProcStat *st, void *userdata)
{
        return st->ppid == getpid() && pid != guard_pid() && pid != spawner_pid();
}

size_t task_kill_orphans(void)
{
        return proc_kill_picked(orphan, NULL);
}

int task_process_signal(TaskProcess *p, int sig)
{
        if (!p || p->pid <= 0)
                return -ESRCH;
        if (kill(-p->pid, sig) < 0 && (!p->running || kill(p->pid, sig) < 0))
                return negative_errno();
        return 0;
}

bool task_process_group_alive(const TaskProcess *p)
{
        return p && p->pid > 0 && (p->running || kill(-p->pid, 0) == 0);
}

pid_t task_process_pid(const TaskProcess *p)
{
        return p ? p->pid : 0;
}

bool task_process_running(const TaskProcess *p)
{
        return p && p->running;
}

TaskProcess *task_process_free(TaskProcess *p)
{
        if (!p)
                return NULL;
        if (p->running || (p->linger_group && p->pid > 0)) {
                kill(-p->pid, SIGKILL);
                /* the child watcher goes away with us; libev still reaps the pid */
                guard_unwatch(p->pid);
        }
        ev_child_stop(p->loop, &p->child);
        if (p->errfd >= 0) {
                ev_io_stop(p->loop, &p->errpipe);
                safe_close(p->errfd);
        }
        output_sink_free(p->out);
        output_sink_free(p->err);
        free(p->program);
        free(p);
        return NULL;
}
