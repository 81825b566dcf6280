/* SPDX-License-Identifier: Apache-2.0 */
/* What a task (or a command health check) may do, decided in the executor
 * before fork and applied in the child between fork and exec. Everything
 * that can fail for a reason the user should hear about (an unknown user, a
 * bad label) fails in sandbox_plan_*(), before fork. sandbox_apply() runs in
 * the forked child and uses only async-signal-safe calls. See docs/sandbox.md. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "error.h"
#include "mesos.h"

struct sock_filter;

#define SANDBOX_GROUPS_MAX 64

/* Task labels the sandbox reads; any other pacer.sandbox.* label is an error. */
#define SANDBOX_LABEL_PREFIX        "pacer.sandbox."
#define SANDBOX_LABEL_CAPABILITIES  "pacer.sandbox.capabilities"
#define SANDBOX_LABEL_SECCOMP       "pacer.sandbox.seccomp"
#define SANDBOX_LABEL_SECCOMP_DENY  "pacer.sandbox.seccomp.deny"
#define SANDBOX_LABEL_SECCOMP_LOG   "pacer.sandbox.seccomp.log"
#define SANDBOX_LABEL_RLIMIT_PREFIX "pacer.sandbox.rlimit."

/* Limits on what labels and flags may ask for. */
#define SANDBOX_VALUE_MAX     1024 /* length of one label or flag value */
#define SANDBOX_DENY_MAX      64   /* syscalls in a custom deny list */
#define SANDBOX_NOFILE_MIN    16   /* fewer descriptors and a program cannot load its libraries */
#define SANDBOX_NOFILE_TARGET 65536
#define SANDBOX_NPROC_MAX     4194304 /* the kernel's PID_MAX_LIMIT */

/* What a task running as root keeps when nothing else is asked (see docs/sandbox.md). */
#define SANDBOX_ROOT_CAPABILITIES_DEFAULT                                                              \
        "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,CAP_SETUID,CAP_SETPCAP," \
        "CAP_NET_BIND_SERVICE,CAP_SYS_CHROOT"

/* The steps of sandbox_apply(), in order; a failure names its step. One step
 * per resource limit, so the report says which limit the kernel refused. */
typedef enum SandboxStep {
        SANDBOX_STEP_PLAN,
        SANDBOX_STEP_RLIMIT,
        SANDBOX_STEP_RLIMIT_LAST = SANDBOX_STEP_RLIMIT + RLIM_NLIMITS - 1,
        SANDBOX_STEP_CAP_BOUNDING,
        SANDBOX_STEP_KEEPCAPS,
        SANDBOX_STEP_USER_GROUPS,
        SANDBOX_STEP_USER_GID,
        SANDBOX_STEP_USER_UID,
        SANDBOX_STEP_USER_VERIFY,
        SANDBOX_STEP_CAPS,
        SANDBOX_STEP_CAP_AMBIENT,
        SANDBOX_STEP_CAP_VERIFY,
        SANDBOX_STEP_NO_NEW_PRIVS,
        SANDBOX_STEP_SECCOMP,
        _SANDBOX_STEP_MAX,
        _SANDBOX_STEP_INVALID = -EINVAL,
} SandboxStep;

typedef enum SandboxProfile {
        SANDBOX_PROFILE_DEFAULT,    /* deny-list: what a service has no business doing */
        SANDBOX_PROFILE_STRICT,     /* allow-list of what a typical service needs */
        SANDBOX_PROFILE_UNCONFINED, /* no filter of the task's own */
        _SANDBOX_PROFILE_MAX,
        _SANDBOX_PROFILE_INVALID = -EINVAL,
} SandboxProfile;

typedef enum SandboxSeccompLog {
        SANDBOX_SECCOMP_LOG_OFF,
        SANDBOX_SECCOMP_LOG_DENIED,   /* deny, and have the kernel log each denial */
        SANDBOX_SECCOMP_LOG_COMPLAIN, /* log what would be denied, but allow it */
        _SANDBOX_SECCOMP_LOG_MAX,
        _SANDBOX_SECCOMP_LOG_INVALID = -EINVAL,
} SandboxSeccompLog;

/* Agent-wide defaults, from the executor's flags. NULL members take the
 * built-in defaults. Labels of a task override them. */
typedef struct SandboxOptions {
        const char *seccomp_profile; /* --seccomp-profile: a SandboxProfile name */
        const char *seccomp_log;     /* --seccomp-log: a SandboxSeccompLog name */
        const char *capabilities;    /* --capabilities: what root tasks keep */
} SandboxOptions;

typedef struct SandboxRlimit {
        bool set;
        struct rlimit limit;
} SandboxRlimit;

typedef struct SandboxPlan {
        bool ready; /* sandbox_plan_labels() succeeded: sandbox_apply() refuses a half-made plan */

        /* the user switch */
        bool switch_user;
        char user[64];
        uid_t uid;
        gid_t gid;
        gid_t groups[SANDBOX_GROUPS_MAX];
        int n_groups;
        bool root; /* the task runs as uid 0 */

        SandboxRlimit rlimits[RLIM_NLIMITS];

        /* capabilities: the task keeps exactly caps */
        uint64_t caps;
        bool drop_bounding; /* the executor holds CAP_SETPCAP, so it can shrink the bounding set */
        bool ambient;       /* a non-root task keeping capabilities gets them through the ambient set */
        int cap_last;       /* the highest capability this kernel knows */

        /* seccomp: filter is NULL for "unconfined" without a deny list */
        SandboxProfile profile;
        SandboxSeccompLog seccomp_log;
        unsigned seccomp_flags;
        struct sock_filter *filter;
        unsigned short filter_len;
} SandboxPlan;

const char *sandbox_step_to_string(SandboxStep s);
const char *sandbox_profile_to_string(SandboxProfile p);
SandboxProfile sandbox_profile_from_string(const char *s);
const char *sandbox_seccomp_log_to_string(SandboxSeccompLog l);
SandboxSeccompLog sandbox_seccomp_log_from_string(const char *s);

/* Checks the flag values once at start-up, so a typo fails the executor
 * rather than every task. */
int sandbox_options_check(const SandboxOptions *o, PacerError *err);

void sandbox_plan_init(SandboxPlan *p);
/* Resolves user (a name or a numeric uid) and its groups. An empty/NULL user
 * or the executor's own user means no switch. */
int sandbox_plan_user(SandboxPlan *p, const char *user, PacerError *err);
/* Completes the plan after sandbox_plan_user(): rlimits, capabilities and
 * the seccomp filter from the task's labels over the agent's options (o may
 * be NULL). An unknown or bad value is an error naming the label and value. */
int sandbox_plan_labels(SandboxPlan *p, const Labels *labels, const SandboxOptions *o, PacerError *err);
/* Frees what the plan holds; a zeroed plan is fine. Usable with _cleanup_(). */
void sandbox_plan_done(SandboxPlan *p);
/* Compiles the seccomp filter of a task without sandbox labels under options o
 * ahead of time (libseccomp takes about a millisecond), for the executor to
 * call while it waits for the agent: sandbox_plan_labels() then copies it
 * instead of compiling it on the way from LAUNCH to a running task. */
int sandbox_prebuild(const SandboxOptions *o, PacerError *err);

/* In the child: applies the plan. On failure returns -errno and the step. */
int sandbox_apply(const SandboxPlan *p, SandboxStep *ret_step);

/* For the executor itself, once at start-up, before the spawner starts:
 * no_new_privs and the floor, a seccomp filter that every task inherits (so
 * it denies only what no task may do). */
int sandbox_harden_floor(PacerError *err);
/* Then, once the spawner runs: the executor's own allow-list, stacked on the
 * floor. A call outside it fails with ENOSYS and a line on stderr. */
int sandbox_harden_executor(PacerError *err);

/* Parses a capability list ("CAP_NET_RAW,kill", or "none") into a mask.
 * what names the source in errors ("label pacer.sandbox.capabilities"). */
int sandbox_parse_capabilities(const char *s, const char *what, uint64_t *ret, PacerError *err);
/* Parses "soft[:hard]" (numbers or "unlimited") for resource limit name
 * ("nofile", "core", ...) against the executor's limits and privileges. */
int sandbox_parse_rlimit(const char *name, const char *value, const char *what, struct rlimit *ret,
                         PacerError *err);
