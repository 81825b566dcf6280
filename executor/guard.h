/* SPDX-License-Identifier: Apache-2.0 */
/* The guard: a tiny process started at start-up (sharing the executor's
 * memory where it can, else forked) that sits in a blocking read on a pipe
 * only the executor holds. When
 * the executor dies — even by SIGKILL, when it can run no code — the read
 * returns end-of-file and the guard SIGKILLs every process group it was told
 * about, then exits. Process groups alone do not survive their creator's
 * death, PR_SET_PDEATHSIG reaches only the direct child, and a subreaper only
 * adopts orphans: this is what makes "no task outlives its executor" hold. */
#pragma once

#include <sys/types.h>

/* Forks the guard. Call early in main(), before the event loop starts. */
int guard_start(void);
/* The guard SIGKILLs this process group if the executor dies. */
int guard_watch(pid_t pgid);
/* The group is gone; forget it (its id could be reused). */
int guard_unwatch(pid_t pgid);
/* Clean exit: the guard kills whatever is still watched and exits. */
void guard_stop(void);
pid_t guard_pid(void);
