/* SPDX-License-Identifier: Apache-2.0 */
/* A supervised process: a task, or a command health check. It runs in its own
 * process group (so signals reach everything it starts), watched by the guard,
 * sandboxed between fork and exec, with stdout/stderr copied into size-capped
 * files. Whether exec succeeded is learnt through a close-on-exec pipe, so
 * "started" means the command really runs, and a failure names its step. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "sandbox.h"

struct ev_loop;

typedef struct TaskProcess TaskProcess;

typedef struct TaskSpawnOptions {
        char *const *argv; /* argv[0] is the program: a path, or a name looked up in envp's PATH */
        char *const *envp;
        const char *cwd;            /* NULL: inherit */
        const char *stdout_path;    /* NULL: /dev/null */
        const char *stderr_path;    /* NULL: /dev/null */
        size_t output_max;          /* cap per output file before rotation; 0 = default */
        const SandboxPlan *sandbox; /* NULL: none */
        /* When the leader exits, leave the rest of its process group to the owner
         * (task_process_group_alive(), task_process_signal()) instead of SIGKILLing
         * it: a shell leader dies at once on SIGTERM, and the program it started
         * deserves the rest of its grace period. */
        bool linger_group;
} TaskSpawnOptions;

typedef struct TaskProcessCallbacks {
        /* exec succeeded (error 0), or failed: error is -errno and what names the step
         * ("exec /usr/bin/x", "setuid", ...). After a failure, exited is not called. */
        void (*started)(TaskProcess *p, int error, const char *what, void *userdata);
        /* The group leader exited; wstatus as from waitpid(). */
        void (*exited)(TaskProcess *p, int wstatus, void *userdata);
} TaskProcessCallbacks;

/* Resolves the program, forks, and returns at once; callbacks follow from the loop. */
int task_process_spawn(struct ev_loop *loop, const TaskSpawnOptions *o, const TaskProcessCallbacks *cb,
                       void *userdata, TaskProcess **ret, PacerError *err);
/* Sends sig to the whole process group (also after the leader exited). */
int task_process_signal(TaskProcess *p, int sig);
/* True while any process of the group is left. */
bool task_process_group_alive(const TaskProcess *p);
pid_t task_process_pid(const TaskProcess *p);
bool task_process_running(const TaskProcess *p);
/* SIGKILLs the group if still running, stops watching, frees. Accepts NULL. */
TaskProcess *task_process_free(TaskProcess *p);

/* SIGKILLs every child of this process but the guard. The executor is a child
 * subreaper: a task process that left the task's group (setsid, setpgid) and
 * whose parent died is reparented to it, and the group kill cannot reach it.
 * Called once the task is over (its checks stopped); a kill can orphan the
 * victim's own children, so callers sweep again until a sweep finds none.
 * Returns how many were killed. */
size_t task_kill_orphans(void);

/* "exited with status 3", "killed by signal 9 (SIGKILL)". */
const char *task_describe_wstatus(int wstatus, char *buf, size_t size);
/* Finds name in the PATH of envp (or the default PATH); returns a malloc'ed path. */
int task_resolve_program(const char *name, char *const *envp, char **ret, PacerError *err);
