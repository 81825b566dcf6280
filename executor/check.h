/* SPDX-License-Identifier: Apache-2.0 */
/* A task's health checks: the Mesos TaskInfo.health_check plus named ones from
 * `pacer.check.<name>` labels (docs/checks.md). A CheckSpec is built and fully
 * validated before anything runs; a Checker probes one spec on the event loop
 * (HTTP(S), TCP or a command) and runs every result through Mesos's policy
 * (grace period, consecutive failures), which is pure logic of its own. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duration.h"
#include "error.h"
#include "mesos.h"
#include "sandbox.h"
#include "status_record.h"

struct ev_loop;
typedef struct HttpClient HttpClient;

/* Checks per task: TaskInfo.health_check and the labels together. */
#define CHECKS_MAX         8
#define CHECK_NAME_MAX     32
#define CHECK_LABEL_PREFIX "pacer.check."
/* A longer label value is refused before it is looked at. */
#define CHECK_LABEL_VALUE_MAX 4096
#define CHECK_PATH_MAX        1024
#define CHECK_STATUSES_MAX    32
#define CHECK_ARGS_MAX        256
#define CHECK_COMMAND_MAX     (64u * 1024)
#define CHECK_FAILURES_MAX    1000
/* The text of one result ("HTTP 503", "connect: Connection refused"). */
#define CHECK_OUTPUT_MAX      128
#define CHECK_DURATION_MAX_NS (365LL * 24 * 3600 * NSEC_PER_SEC)
/* Probes never follow each other closer than this: an interval of 0 (which
 * Mesos accepts) would otherwise spin the loop on a check that fails at once. */
#define CHECK_INTERVAL_MIN_NS (10 * NSEC_PER_MSEC)
/* The name of the check built from TaskInfo.health_check: '_' is not allowed
 * in label names, so it never clashes with one. */
#define CHECK_NAME_TASKINFO "health_check"

/* Mesos's defaults (HealthCheck in mesos.proto). */
#define CHECK_DEFAULT_DELAY_NS    (15 * NSEC_PER_SEC)
#define CHECK_DEFAULT_INTERVAL_NS (10 * NSEC_PER_SEC)
#define CHECK_DEFAULT_TIMEOUT_NS  (20 * NSEC_PER_SEC)
#define CHECK_DEFAULT_FAILURES    3
#define CHECK_DEFAULT_GRACE_NS    (10 * NSEC_PER_SEC)

typedef enum CheckType {
        CHECK_TYPE_HTTP,
        CHECK_TYPE_HTTPS,
        CHECK_TYPE_TCP,
        CHECK_TYPE_COMMAND,
        _CHECK_TYPE_MAX,
        _CHECK_TYPE_INVALID = -EINVAL,
} CheckType;

/* What a check's results are used for. TaskInfo.health_check is BOTH. */
typedef enum CheckRole {
        CHECK_ROLE_BOTH,      /* gates readiness and kills at its failure limit */
        CHECK_ROLE_LIVENESS,  /* kills at its failure limit, never gates readiness */
        CHECK_ROLE_READINESS, /* gates "healthy" (Consul registration, healthy=true), never kills */
        _CHECK_ROLE_MAX,
        _CHECK_ROLE_INVALID = -EINVAL,
} CheckRole;

const char *check_type_to_string(CheckType t);
CheckType check_type_from_string(const char *s);
const char *check_role_to_string(CheckRole r);
CheckRole check_role_from_string(const char *s);

static inline bool check_role_gates_readiness(CheckRole r)
{
        return r != CHECK_ROLE_LIVENESS;
}

static inline bool check_role_kills(CheckRole r)
{
        return r != CHECK_ROLE_READINESS;
}

/* What a check needs from its task. The specs keep copies of what they use,
 * except the sandbox plan (it may hold a seccomp filter), which is borrowed:
 * the executor keeps the task's plan for the task's whole life, which is
 * longer than its checks'. */
typedef struct CheckTaskContext {
        const uint32_t *ports; /* the task's ports, for port-index= */
        size_t n_ports;
        char *const *envp;          /* the task's environment, for command checks; may be NULL */
        const SandboxPlan *sandbox; /* applied to command checks; NULL: none */
        const char *cwd;            /* command checks run here (the task's sandbox); NULL: inherit */
} CheckTaskContext;

/* One validated check. Durations are nanoseconds; timeout 0 means none
 * (possible only from TaskInfo.health_check). */
typedef struct CheckSpec {
        char name[CHECK_NAME_MAX + 1];
        CheckType type;
        CheckRole role;
        bool ipv6;          /* HTTP/TCP: probe ::1 instead of 127.0.0.1 */
        uint16_t port;      /* HTTP/TCP */
        char *path;         /* HTTP: starts with '/', printable ASCII without spaces */
        uint32_t *statuses; /* HTTP: when given, exactly these pass; else 200-399 */
        size_t n_statuses;
        char **argv;                /* COMMAND: NULL-terminated */
        char **envp;                /* COMMAND: NULL-terminated */
        char *cwd;                  /* COMMAND: NULL = inherit */
        const SandboxPlan *sandbox; /* COMMAND: borrowed from CheckTaskContext; NULL = none */
        int64_t delay_ns;
        int64_t interval_ns;
        int64_t timeout_ns;
        int64_t grace_ns;
        uint32_t max_failures; /* ≥ 1 */
} CheckSpec;

/* From a Mesos HealthCheck, with the proto defaults for unset fields. As in
 * Mesos, timeout may exceed interval (the interval counts from the end of a
 * probe); consecutive_failures 0 behaves as 1; an interval below
 * CHECK_INTERVAL_MIN_NS is raised to it. Errors name the field:
 * `health_check.http.port 70000 out of range (1-65535)`. */
int check_spec_from_health_check(const HealthCheck *hc, const CheckTaskContext *ctx, CheckSpec *ret,
                                 PacerError *err);
/* From one `pacer.check.<name>` label (key is the whole label key). Stricter
 * than Mesos: the timeout must be > 0 and not longer than the interval, so a
 * probe always ends within the period it reports on. */
int check_spec_from_label(const char *key, const char *value, const CheckTaskContext *ctx, CheckSpec *ret,
                          PacerError *err);
void check_spec_done(CheckSpec *s);

/* All checks of a task: TaskInfo.health_check first (if any), then the
 * labels in their order. *ret_specs is NULL when there are none. */
int check_specs_from_task(const TaskInfo *task, const CheckTaskContext *ctx, CheckSpec **ret_specs,
                          size_t *ret_n, PacerError *err);
CheckSpec *check_specs_free(CheckSpec *specs, size_t n);

/* ---- Mesos's policy, per check ---- */

/* What one result means under the policy. */
typedef struct CheckVerdict {
        Health health;                 /* UNKNOWN while only grace-period failures were seen */
        uint32_t consecutive_failures; /* counted failures since the last success */
        bool changed;                  /* this result changed health */
        bool ignored;                  /* a failure inside the grace period, before any success */
        bool limit_reached;            /* consecutive_failures ≥ max_failures */
} CheckVerdict;

typedef struct CheckPolicy {
        int64_t grace_ns;
        uint32_t max_failures;
        int64_t started_ns;
        bool seen_success;
        uint32_t consecutive_failures;
        Health health;
} CheckPolicy;

/* now is any monotonic clock in nanoseconds, the same for init and feed. */
void check_policy_init(CheckPolicy *p, int64_t grace_ns, uint32_t max_failures, int64_t now);
void check_policy_feed(CheckPolicy *p, bool passed, int64_t now, CheckVerdict *ret);

/* ---- running a check ---- */

typedef struct Checker Checker;

typedef struct CheckResult {
        bool passed;
        int64_t latency_ns; /* monotonic, from the start of the probe to its end */
        char output[CHECK_OUTPUT_MAX];
        CheckVerdict verdict;
} CheckResult;

/* Called after every probe. It may call checker_stop() or checker_free() on c;
 * it must not free the HttpClient (it can run inside one of its callbacks). */
typedef void (*check_result_fn)(Checker *c, const CheckResult *r, void *userdata);

/* spec is borrowed and must outlive the checker; http is needed for HTTP(S)
 * checks only. COMMAND checks need the loop that reaps children (libev's
 * default loop). HTTPS: the certificate is not verified, as with Mesos's
 * `curl -k` (see docs/checks.md). */
int checker_new(struct ev_loop *loop, HttpClient *http, const CheckSpec *spec, check_result_fn cb,
                void *userdata, Checker **ret);
/* First probe after the delay, then each one an interval after the previous
 * ended; the grace period counts from here. No callback runs inside this call. */
void checker_start(Checker *c);
/* Aborts a probe in flight (a command check's process group is SIGKILLed) and
 * stops; no callback follows. checker_start() begins afresh. */
void checker_stop(Checker *c);
Checker *checker_free(Checker *c);

const CheckSpec *checker_spec(const Checker *c);
Health checker_health(const Checker *c);
