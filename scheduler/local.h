/* SPDX-License-Identifier: Apache-2.0 */
/* Local mode: the Master interface over a one-machine cluster that lives inside the scheduler. It
 * offers this host's resources as a master does, and serves the v1 executor API on loopback as an
 * agent does, starting real executors with an agent's environment in per-executor sandboxes, so
 * pacer-executor runs exactly the code path it runs under a real Mesos agent.
 *
 * Where local mode differs from a real agent, and why:
 * - The executor API takes application/x-protobuf only; a JSON call gets 415, and SUBSCRIBE needs an
 *   Accept that allows protobuf (a real agent prefers JSON). pacer-executor speaks protobuf.
 * - The executor's own stdout and stderr go to `executor.log` in its sandbox: pacer-executor writes
 *   its task's output to the sandbox's `stdout` and `stderr`, which the executor's would clobber.
 * - Acknowledgements: as the agent's status-update manager does, an UPDATE is acknowledged to the
 *   executor as soon as it is recorded, and forwarded to the scheduler one at a time per task,
 *   resent (10 s doubling to 10 min) until the scheduler acknowledges it.
 * - The scheduler is always treated as PARTITION_AWARE: unknown tasks reconcile to TASK_GONE (this
 *   agent) or TASK_UNKNOWN, stale offers drop their tasks with TASK_DROPPED.
 * - Only custom executors run: a TaskInfo with a command and no executor gets TASK_ERROR (there is no
 *   Mesos command executor here), as do containers, secrets, task groups and non-local URIs.
 * - Stopping: master_local_shutdown() sends SHUTDOWN to every executor and waits for them; the
 *   master's free() SIGKILLs whatever is left. A scheduler that died without either leaves its
 *   executors behind: the next start finds them in <data_dir>/local/executors.json, kills them
 *   (process group and session, after checking /proc that the pid is still the process it started)
 *   and reconciliation reports their tasks as TASK_GONE, so the scheduler launches them again.
 *   Their ports changed with the executor API's, so they could not re-subscribe anyway.
 * - Executor processes are watched with ev_child: the loop must be libev's default loop.
 * - The executor API has no authentication: it listens on 127.0.0.1 only, and a call must name a
 *   framework and executor id this agent launched. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "master.h"

#define LOCAL_PORT_BEGIN_DEFAULT        31000u
#define LOCAL_PORT_END_DEFAULT          32000u
#define LOCAL_OFFER_INTERVAL_DEFAULT_S  1.0
#define LOCAL_SHUTDOWN_GRACE_DEFAULT_NS (5LL * 1000000000LL)
/* Share of MemTotal offered when no amount is given. */
#define LOCAL_MEM_SHARE_DEFAULT 0.8

/* Limits on what a scheduler or an executor hands local mode. */
#define LOCAL_CALL_MAX         (4u * 1024 * 1024) /* executor call body, as the fake agent */
#define LOCAL_PORT_RANGES_MAX  1024u              /* ranges in one ports resource */
#define LOCAL_RESOURCES_MAX    64u                /* Resource entries of one task or executor */
#define LOCAL_ENV_VARS_MAX     4096u              /* ExecutorInfo environment variables */
#define LOCAL_ARGS_MAX         4096u              /* CommandInfo arguments */
#define LOCAL_SCALAR_MAX       1e12               /* any one scalar amount */
#define LOCAL_TASK_UPDATES_MAX 256u               /* updates queued per task for the scheduler */
#define LOCAL_STATE_FILE_MAX   (16u * 1024 * 1024)
#define LOCAL_ID_MAX           255u /* Mesos IDs: at most NAME_MAX */

typedef struct LocalOptions {
        const char *data_dir; /* sandboxes under <data_dir>/local/sandboxes/<framework>/<executor>/ */
        /* offered; computed when 0: the host's CPU count, 80% of MemTotal (MB), free disk of data_dir (MB)
         */
        double cpus, mem, disk;
        uint32_t port_begin, port_end;      /* 0 = 31000-32000 */
        const char *hostname;               /* NULL = gethostname() */
        const char *agent_id;               /* NULL = "local-<hostname>" */
        double offer_interval_s;            /* free resources are offered again this often; 0 = 1 s */
        int64_t executor_shutdown_grace_ns; /* when ExecutorInfo has none; 0 = 5 s */
        bool checkpoint;                    /* the framework's checkpoint flag, as executors see it */
        const char *framework_name;         /* FrameworkInfo.name given to executors; NULL = "pacer" */
        const char *user;                   /* FrameworkInfo.user; NULL = the scheduler's own user */
} LocalOptions;

/* Binds the executor API on 127.0.0.1 (any free port), kills executors a previous run left behind
 * and computes the offered resources. The framework subscribes with ops->start(). http is unused
 * (local mode talks to no master). */
int master_local_new(struct ev_loop *loop, HttpClient *http, const LocalOptions *o,
                     const MasterCallbacks *cb, void *userdata, Master **ret, PacerError *err);
/* Sends SHUTDOWN to every executor and runs the loop until they exited or timeout_ns passed, then
 * SIGKILLs what is left (process group and session). Status updates keep reaching the scheduler
 * meanwhile; no more offers are made. Returns 0 when every executor stopped on its own, -ETIMEDOUT
 * when some had to be killed, -EINVAL when m is not a local master. */
int master_local_shutdown(Master *m, int64_t timeout_ns);
/* The executor API's port (MESOS_AGENT_ENDPOINT is 127.0.0.1:<port>); 0 when m is not local. */
uint16_t master_local_port(const Master *m);

/* ---- the pure parts, exposed for tests ---- */

/* Scalars are kept in thousandths, as Mesos rounds them (fixed point, 3 decimals). */
typedef struct LocalRange {
        uint32_t begin, end; /* inclusive */
} LocalRange;

typedef struct LocalUsage {
        int64_t cpus, mem, disk; /* thousandths of a CPU / MB */
        LocalRange *ports;       /* sorted, disjoint, not adjacent */
        size_t n_ports;
} LocalUsage;

#define LOCAL_PORT_BITMAP_BYTES (65536u / 8)

/* The agent's resources: totals and what is in use (tasks, executors, outstanding offers). */
typedef struct LocalPool {
        int64_t cpus, mem, disk;
        int64_t used_cpus, used_mem, used_disk;
        uint32_t port_begin, port_end;
        uint8_t ports[LOCAL_PORT_BITMAP_BYTES]; /* bit set = a port of the pool that is in use */
} LocalPool;

int64_t local_milli(double v);
void local_usage_done(LocalUsage *u);
/* Parses Resources (cpus, mem, disk, ports; unreserved, role "*"), adding them up. Anything else
 * is an error naming the resource and what is wrong. */
int local_usage_from_resources(Resource *const *res, size_t n, LocalUsage *ret, PacerError *err);
/* dst += src (ports merged). */
int local_usage_add(LocalUsage *dst, const LocalUsage *src);
/* Whether every resource of a is also in b. */
bool local_usage_subset(const LocalUsage *a, const LocalUsage *b);
bool local_usage_empty(const LocalUsage *u);

void local_pool_init(LocalPool *p, double cpus, double mem, double disk, uint32_t port_begin,
                     uint32_t port_end);
/* A pool holding exactly u (for checking tasks against an offer). */
void local_pool_init_usage(LocalPool *p, const LocalUsage *u);
/* -ENOSPC (err: what does not fit) unless u fits in what is free. */
int local_pool_check(const LocalPool *p, const LocalUsage *u, PacerError *err);
/* Checks, then marks u as used. */
int local_pool_take(LocalPool *p, const LocalUsage *u, PacerError *err);
void local_pool_release(LocalPool *p, const LocalUsage *u);
/* What is free. */
int local_pool_free(const LocalPool *p, LocalUsage *ret);

/* Mesos ID rules: non-empty, at most LOCAL_ID_MAX bytes, not "." or "..", no '/', '\\' or
 * control characters (IDs name sandbox directories). */
int local_id_check(const char *what, const char *id, PacerError *err);
/* What the master checks of a TaskInfo on its own (ids, agent, executor, command, environment,
 * URIs); resources are checked against the offer separately. */
int local_task_check(const TaskInfo *t, const char *framework_id, const char *agent_id, PacerError *err);

/* Whether an Accept header allows media_type, as libprocess decides (NULL allows anything). */
bool local_accepts(const char *accept, const char *media_type);

/* The environment an agent gives an executor (../shared/PROTOCOLS.md §3). */
typedef struct LocalExecutorContext {
        const char *framework_id;
        const char *executor_id;
        const char *agent_id;
        const char *sandbox;  /* absolute */
        const char *endpoint; /* 127.0.0.1:<port> */
        bool checkpoint;
        int64_t shutdown_grace_ns; /* the agent's default, when ExecutorInfo has none */
} LocalExecutorContext;

/* NULL-terminated "NAME=value" strings: PATH (default unless given), ASAN/UBSAN/LSAN_OPTIONS from
 * our own environment, the MESOS_* variables, LIBPROCESS_PORT=0, then ExecutorInfo.command's
 * environment on top. Free with strv_free-like loop (local_strv_free). */
int local_executor_environment(const ExecutorInfo *ei, const LocalExecutorContext *c, char ***ret,
                               PacerError *err);
char **local_strv_free(char **v);

/* MemTotal of /proc/meminfo, in MB. */
int local_meminfo_total_mb(const char *text, double *ret);
/* Keeps a log that another process appends to (O_APPEND) under max bytes: past
 * it, its content is copied to "<path>.1" (replacing the older copy) and the
 * file truncated, so the writer goes on at its start. Lines written between
 * the copy and the truncation are lost (logrotate's copytruncate). Returns 1
 * when rotated, 0 when under max or absent, or a negative errno. */
int local_log_rotate(const char *path, off_t max);
