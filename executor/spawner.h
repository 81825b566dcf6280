/* SPDX-License-Identifier: Apache-2.0 */
/* The spawner: a small process started before the executor loads its seccomp
 * allow-list, which creates the task's processes (and command checks') on the
 * executor's behalf. The allow-list has no fork and no exec, and seccomp
 * filters are inherited and never loosened: a process the executor forked
 * itself could never exec the task. The spawner is not under the allow-list
 * (only under the floor every task gets), so its children are not either.
 *
 * It shares the executor's memory and descriptor table (CLONE_VM |
 * CLONE_FILES), so a spawn costs no copying: the executor hands it a pointer,
 * blocks until the reply, and the spawner starts the child with CLONE_VM |
 * CLONE_VFORK | CLONE_PARENT — the child is the executor's own child, runs on
 * the stack the executor gave it, and the executor learns its pid once it has
 * exec'd or failed. It exits with the executor (PR_SET_PDEATHSIG, and at the
 * end of file of its request pipe). x86-64 only, as the guard's raw calls. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Starts the spawner; -EOPNOTSUPP where it cannot run, or -errno. */
int spawner_start(void);
/* True once started, also after it was lost (spawner_clone() then fails). */
bool spawner_running(void);
/* clone(fn, stack_top, CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, arg)
 * done by the spawner; returns the child's pid or -errno. Blocks until the
 * child has exec'd or exited, as vfork does. */
pid_t spawner_clone(int (*fn)(void *), void *stack_top, void *arg);
/* Closes the request pipe: the spawner exits. */
void spawner_stop(void);
/* The spawner's pid while it runs, else 0. */
pid_t spawner_pid(void);
