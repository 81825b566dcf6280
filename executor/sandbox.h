/* SPDX-License-Identifier: Apache-2.0 */
/* What a task (or a command health check) may do, decided in the executor
 * before fork and applied in the child between fork and exec. Everything
 * that can fail for a reason the user should hear about (an unknown user, a
 * bad label) fails in sandbox_plan_*(), before fork. sandbox_apply() runs in
 * the forked child and uses only async-signal-safe calls. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

#define SANDBOX_GROUPS_MAX 64

/* The steps of sandbox_apply(), in order; a failure names its step. */
typedef enum SandboxStep {
        SANDBOX_STEP_USER_GROUPS,
        SANDBOX_STEP_USER_GID,
        SANDBOX_STEP_USER_UID,
        SANDBOX_STEP_USER_VERIFY,
        _SANDBOX_STEP_MAX,
        _SANDBOX_STEP_INVALID = -EINVAL,
} SandboxStep;

typedef struct SandboxPlan {
        bool switch_user;
        char user[64];
        uid_t uid;
        gid_t gid;
        gid_t groups[SANDBOX_GROUPS_MAX];
        int n_groups;
} SandboxPlan;

const char *sandbox_step_to_string(SandboxStep s);

void sandbox_plan_init(SandboxPlan *p);
/* Resolves user (a name or a numeric uid) and its groups. An empty/NULL user
 * or the executor's own user means no switch. */
int sandbox_plan_user(SandboxPlan *p, const char *user, PacerError *err);
void sandbox_plan_done(SandboxPlan *p);

/* In the child: applies the plan. On failure returns -errno and the step. */
int sandbox_apply(const SandboxPlan *p, SandboxStep *ret_step);
