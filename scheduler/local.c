/* SPDX-License-Identifier: Apache-2.0 */
#include "local.h"

#include <ev.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "hashmap.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "proc.h"
#include "recordio.h"

#define CONTENT_TYPE_PROTOBUF  "application/x-protobuf"
#define CONTENT_TYPE_JSON      "application/json"
#define DEFAULT_PATH           "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define FRAMEWORK_NAME_DEFAULT "pacer"
#define EXECUTOR_LOG           "executor.log"
#define EXECUTOR_LOG_MAX       (16 * 1024 * 1024) /* then rotated once (executor.log.1) */
#define EXECUTOR_LOG_CHECK_S   10.0
#define STATE_FILE_NAME        "executors.json"
#define STATE_VERSION          1
/* An executor that has not subscribed after this is destroyed (the agent's
 * --executor_registration_timeout default). */
#define REGISTRATION_TIMEOUT_NS (60 * NSEC_PER_SEC)
/* What a checkpointing executor is told: the agent's --recovery_timeout and
 * --executor_reregistration_timeout defaults. */
#define RECOVERY_TIMEOUT_NS         (15 * 60 * NSEC_PER_SEC)
#define SUBSCRIPTION_BACKOFF_MAX_NS (2 * NSEC_PER_SEC)
/* The status-update manager resends an unacknowledged update this often, doubling. */
#define UPDATE_RETRY_INITIAL_NS (10 * NSEC_PER_SEC)
#define UPDATE_RETRY_MAX_NS     (10 * 60 * NSEC_PER_SEC)
/* Filters.refuse_seconds: the default, and the master's cap. */
#define REFUSE_DEFAULT_S 5.0
#define REFUSE_MAX_S     31536000.0
/* Free resources below both of these are not worth an offer (the allocator's minimum). */
#define OFFER_MIN_CPUS 10    /* 0.01 CPU */
#define OFFER_MIN_MEM  32000 /* 32 MB */
/* A LAUNCH carrying a large environment is a few hundred KiB at worst. */
#define EXECUTOR_STREAM_BUFFER_MAX (2u * 1024 * 1024)
/* Recent update uuids kept per task, to drop updates an executor resends. */
#define TASK_UUIDS_REMEMBERED 64
/* After SIGKILL, how long to wait for processes to be gone. */
#define KILL_WAIT_NS (2 * NSEC_PER_SEC)
/* Bounded reads of /proc files. */
#define PROC_FILE_MAX 4096
#define ID_TEXT_MAX   64
#define COPY_BLOCK    (64u * 1024)

typedef struct LocalMaster LocalMaster;
typedef struct LocalTask LocalTask;

typedef enum ExecState {
        EXEC_REGISTERING, /* started, not subscribed yet */
        EXEC_RUNNING,     /* subscribed (its stream may be gone meanwhile) */
        EXEC_TERMINATING, /* told to shut down; killed when its grace period is over */
} ExecState;

typedef struct LocalExecutor {
        LocalMaster *m;
        char *id;
        char *container_id;
        char *sandbox;
        char *argv0;   /* to recognise the process after a restart */
        uint8_t *info; /* packed ExecutorInfo with framework_id set */
        size_t info_len;
        pid_t pid; /* also its process group and session */
        unsigned long long start_time;
        ExecState state;
        HttpdStream *stream;
        LocalUsage usage; /* its own resources */
        int64_t grace_ns;
        ev_child child;
        ev_timer reg_timer;
        ev_timer kill_timer;
        int fail_reason; /* for its unfinished tasks when it ends */
        char *fail_message;
        bool had_delivery; /* a task was ever delivered to it */
        LocalTask *tasks;  /* in launch order, through exec_next */
} LocalExecutor;

typedef struct PendingUpdate {
        struct PendingUpdate *next;
        uint8_t uuid[MESOS_UUID_SIZE];
        TaskState state;
        size_t len;
        uint8_t data[]; /* packed TaskStatus */
} PendingUpdate;

struct LocalTask {
        LocalMaster *m;
        char *id;
        char *executor_id;
        LocalExecutor *executor; /* NULL once it is gone */
        LocalTask *exec_next;
        uint8_t *info; /* packed TaskInfo until delivered */
        size_t info_len;
        bool delivered;
        LocalUsage usage;
        bool usage_held;
        TaskState state;
        uint8_t *latest; /* packed latest TaskStatus, for reconciliation */
        size_t latest_len;
        bool terminal; /* a terminal update was recorded */
        /* the update stream towards the scheduler: the head is in flight */
        PendingUpdate *head, *tail;
        size_t n_pending;
        bool head_sent;
        ev_timer retry_timer;
        int64_t retry_ns;
        uint8_t seen[TASK_UUIDS_REMEMBERED][MESOS_UUID_SIZE];
        size_t n_seen;
};

typedef struct LocalOffer {
        struct LocalOffer *next;
        char *id;
        LocalUsage usage;
} LocalOffer;

typedef struct QueuedEvent {
        struct QueuedEvent *next;
        bool subscribed; /* data is the framework id */
        size_t len;
        uint8_t data[];
} QueuedEvent;

struct LocalMaster {
        Master base;
        struct ev_loop *loop;
        MasterCallbacks cb;
        void *userdata;

        char *local_dir; /* <data_dir>/local, absolute */
        char *state_path;
        char *hostname;
        char *agent_id;
        char *framework_name;
        char *user;
        char boot_id[ID_TEXT_MAX];
        char run_id[ID_TEXT_MAX];
        double offer_interval_s;
        int64_t grace_ns;
        bool checkpoint;
        bool state_ready; /* the state file was read: it may be written */

        char *framework_id;
        bool subscribed, suppressed, shutting_down;

        HttpdServer *httpd;
        char endpoint[32];

        LocalPool pool;
        Hashmap executors; /* id → LocalExecutor */
        Hashmap tasks;     /* id → LocalTask */
        Hashmap gone;      /* task id → itself: tasks of executors killed at start-up */
        LocalOffer *offers;
        uint64_t offer_seq;
        LocalUsage filter; /* declined, not offered again before filter_until unless more is free */
        double filter_until;

        QueuedEvent *q_head, *q_tail;
        ev_timer deliver_timer;
        ev_timer offer_timer;
        ev_timer log_timer; /* keeps every executor.log under EXECUTOR_LOG_MAX */
};

#define LM(b) ((LocalMaster *)(b))

static const MasterOps local_ops;

static void task_send_head(LocalTask *t);
static void exec_shutdown(LocalExecutor *e, const char *why);
static void state_save(LocalMaster *m);

/* ---- small helpers ---- */

static double ns_to_s(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}

static void uuid_string(char *buf)
{
        uint8_t u[MESOS_UUID_SIZE];
        mesos_uuid_generate(u);
        mesos_uuid_format(u, buf);
}

static int mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

static void describe_wstatus(int status, char *buf, size_t size)
{
        if (WIFEXITED(status))
                snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "killed by SIG%s", strna(sigabbrev_np(WTERMSIG(status))));
        else
                snprintf(buf, size, "ended with wait status %d", status);
}

/* ---- resources ---- */

int64_t local_milli(double v)
{
        return llround(v * 1000.0);
}

static double from_milli(int64_t v)
{
        return (double)v / 1000.0;
}

void local_usage_done(LocalUsage *u)
{
        free(u->ports);
        *u = (LocalUsage){ 0 };
}

static int range_cmp(const void *a, const void *b)
{
        const LocalRange *x = a, *y = b;
        return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void ranges_normalize(LocalUsage *u)
{
        size_t n = 0;

        if (u->n_ports == 0)
                return;
        qsort(u->ports, u->n_ports, sizeof(*u->ports), range_cmp);
        for (size_t i = 1; i < u->n_ports; i++) {
                if ((uint64_t)u->ports[n].end + 1 >= u->ports[i].begin)
                        u->ports[n].end = MAX(u->ports[n].end, u->ports[i].end);
                else
                        u->ports[++n] = u->ports[i];
        }
        u->n_ports = n + 1;
}

static int ranges_append(LocalUsage *u, const LocalRange *r, size_t n)
{
        LocalRange *p;

        if (n == 0)
                return 0;
        p = realloc(u->ports, (u->n_ports + n) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        memcpy(p + u->n_ports, r, n * sizeof(*r));
        u->ports = p;
        u->n_ports += n;
        return 0;
}

/* Resource.role is deprecated, but it is what Mesos sends frameworks without the
 * RESERVATION_REFINEMENT capability */
static const char *resource_role(const Resource *r)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        return r->role;
#pragma GCC diagnostic pop
}

static void resource_set_role(Resource *r, const char *role)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        r->role = (char *)role;
#pragma GCC diagnostic pop
}

static bool is_scalar_name(const char *name, int64_t **field, LocalUsage *u)
{
        if (streq(name, "cpus"))
                *field = &u->cpus;
        else if (streq(name, "mem"))
                *field = &u->mem;
        else if (streq(name, "disk"))
                *field = &u->disk;
        else
                return false;
        return true;
}

int local_usage_from_resources(Resource *const *res, size_t n, LocalUsage *ret, PacerError *err)
{
        _cleanup_(local_usage_done) LocalUsage u = { 0 };
        int64_t *field;

        if (n > LOCAL_RESOURCES_MAX)
                return pacer_error_set(err, E2BIG, "%zu resources: at most %u are accepted", n,
                                       LOCAL_RESOURCES_MAX);
        for (size_t i = 0; i < n; i++) {
                const Resource *r = res[i];
                const char *name = r ? r->name : NULL;

                if (!name || !*name)
                        return pacer_error_set(err, EINVAL, "resource %zu has no name", i);
                if (r->reservation || r->n_reservations > 0 ||
                    (resource_role(r) && !streq(resource_role(r), "*")))
                        return pacer_error_set(
                                err, EINVAL,
                                "resource %.64s: reserved resources (role %.64s) are not offered "
                                "by this agent",
                                name, strna(resource_role(r)));
                if (r->allocation_info && r->allocation_info->role && !streq(r->allocation_info->role, "*"))
                        return pacer_error_set(err, EINVAL,
                                               "resource %.64s: allocated to role %.64s, this agent offers "
                                               "role \"*\" only",
                                               name, r->allocation_info->role);
                if (is_scalar_name(name, &field, &u)) {
                        if (r->type != MESOS__V1__VALUE__TYPE__SCALAR || !r->scalar)
                                return pacer_error_set(err, EINVAL, "resource %s: expected a SCALAR", name);
                        double v = r->scalar->value;
                        if (!isfinite(v) || v < 0 || v > LOCAL_SCALAR_MAX)
                                return pacer_error_set(err, EINVAL, "resource %s: invalid amount %g", name,
                                                       v);
                        *field += local_milli(v);
                        if (*field > local_milli(LOCAL_SCALAR_MAX))
                                return pacer_error_set(err, EINVAL, "resource %s: total amount too large",
                                                       name);
                } else if (streq(name, "ports")) {
                        if (r->type != MESOS__V1__VALUE__TYPE__RANGES || !r->ranges)
                                return pacer_error_set(err, EINVAL, "resource ports: expected RANGES");
                        if (r->ranges->n_range > LOCAL_PORT_RANGES_MAX ||
                            u.n_ports + r->ranges->n_range > LOCAL_PORT_RANGES_MAX)
                                return pacer_error_set(err, E2BIG, "resource ports: more than %u ranges",
                                                       LOCAL_PORT_RANGES_MAX);
                        for (size_t k = 0; k < r->ranges->n_range; k++) {
                                const Mesos__V1__Value__Range *rg = r->ranges->range[k];
                                if (!rg || rg->begin == 0 || rg->begin > rg->end || rg->end > 65535)
                                        return pacer_error_set(err, EINVAL,
                                                               "resource ports: invalid range [%llu-%llu]",
                                                               rg ? (unsigned long long)rg->begin : 0ULL,
                                                               rg ? (unsigned long long)rg->end : 0ULL);
                                LocalRange lr = { (uint32_t)rg->begin, (uint32_t)rg->end };
                                if (ranges_append(&u, &lr, 1) < 0)
                                        return -ENOMEM;
                        }
                } else
                        return pacer_error_set(
                                err, EINVAL,
                                "resource %.64s is not offered by this agent (it offers cpus, "
                                "mem, disk and ports)",
                                name);
        }
        ranges_normalize(&u);
        *ret = u;
        u = (LocalUsage){ 0 };
        return 0;
}

int local_usage_add(LocalUsage *dst, const LocalUsage *src)
{
        if (ranges_append(dst, src->ports, src->n_ports) < 0)
                return -ENOMEM;
        dst->cpus += src->cpus;
        dst->mem += src->mem;
        dst->disk += src->disk;
        ranges_normalize(dst);
        return 0;
}

bool local_usage_subset(const LocalUsage *a, const LocalUsage *b)
{
        size_t j = 0;

        if (a->cpus > b->cpus || a->mem > b->mem || a->disk > b->disk)
                return false;
        /* both normalized: each range of a must sit inside one range of b */
        for (size_t i = 0; i < a->n_ports; i++) {
                while (j < b->n_ports && b->ports[j].end < a->ports[i].begin)
                        j++;
                if (j == b->n_ports || b->ports[j].begin > a->ports[i].begin ||
                    b->ports[j].end < a->ports[i].end)
                        return false;
        }
        return true;
}

bool local_usage_empty(const LocalUsage *u)
{
        return u->cpus <= 0 && u->mem <= 0 && u->disk <= 0 && u->n_ports == 0;
}

static bool port_bit(const LocalPool *p, uint32_t port)
{
        return p->ports[port / 8] & (1u << (port % 8));
}

static void port_set(LocalPool *p, uint32_t port, bool used)
{
        if (used)
                p->ports[port / 8] |= (uint8_t)(1u << (port % 8));
        else
                p->ports[port / 8] &= (uint8_t) ~(1u << (port % 8));
}

void local_pool_init(LocalPool *p, double cpus, double mem, double disk, uint32_t port_begin,
                     uint32_t port_end)
{
        memset(p, 0, sizeof(*p));
        p->cpus = local_milli(cpus);
        p->mem = local_milli(mem);
        p->disk = local_milli(disk);
        p->port_begin = MIN(port_begin, 65535u);
        p->port_end = MIN(port_end, 65535u);
}

void local_pool_init_usage(LocalPool *p, const LocalUsage *u)
{
        memset(p, 0, sizeof(*p));
        p->cpus = u->cpus;
        p->mem = u->mem;
        p->disk = u->disk;
        if (u->n_ports == 0) {
                p->port_begin = 1;
                p->port_end = 0; /* no ports */
                return;
        }
        p->port_begin = u->ports[0].begin;
        p->port_end = u->ports[u->n_ports - 1].end;
        for (uint32_t port = p->port_begin; port <= p->port_end; port++)
                port_set(p, port, true);
        for (size_t i = 0; i < u->n_ports; i++)
                for (uint32_t port = u->ports[i].begin; port <= u->ports[i].end; port++)
                        port_set(p, port, false);
}

static int check_scalar(const char *name, int64_t total, int64_t used, int64_t want, PacerError *err)
{
        if (want > 0 && want > total - used)
                return pacer_error_set(err, ENOSPC, "%s: %.3f wanted, %.3f available", name,
                                       from_milli(want), from_milli(MAX(0, total - used)));
        return 0;
}

int local_pool_check(const LocalPool *p, const LocalUsage *u, PacerError *err)
{
        int r;

        if ((r = check_scalar("cpus", p->cpus, p->used_cpus, u->cpus, err)) < 0 ||
            (r = check_scalar("mem", p->mem, p->used_mem, u->mem, err)) < 0 ||
            (r = check_scalar("disk", p->disk, p->used_disk, u->disk, err)) < 0)
                return r;
        for (size_t i = 0; i < u->n_ports; i++)
                for (uint32_t port = u->ports[i].begin; port <= u->ports[i].end; port++) {
                        if (port < p->port_begin || port > p->port_end)
                                return pacer_error_set(err, ENOSPC, "port %u is not offered", port);
                        if (port_bit(p, port))
                                return pacer_error_set(err, ENOSPC, "port %u is in use", port);
                }
        return 0;
}

int local_pool_take(LocalPool *p, const LocalUsage *u, PacerError *err)
{
        int r = local_pool_check(p, u, err);

        if (r < 0)
                return r;
        p->used_cpus += u->cpus;
        p->used_mem += u->mem;
        p->used_disk += u->disk;
        for (size_t i = 0; i < u->n_ports; i++)
                for (uint32_t port = u->ports[i].begin; port <= u->ports[i].end; port++)
                        port_set(p, port, true);
        return 0;
}

void local_pool_release(LocalPool *p, const LocalUsage *u)
{
        p->used_cpus = MAX(0, p->used_cpus - u->cpus);
        p->used_mem = MAX(0, p->used_mem - u->mem);
        p->used_disk = MAX(0, p->used_disk - u->disk);
        for (size_t i = 0; i < u->n_ports; i++)
                for (uint32_t port = u->ports[i].begin; port <= u->ports[i].end; port++)
                        if (port >= p->port_begin && port <= p->port_end)
                                port_set(p, port, false);
}

int local_pool_free(const LocalPool *p, LocalUsage *ret)
{
        _cleanup_(local_usage_done) LocalUsage u = {
                .cpus = MAX(0, p->cpus - p->used_cpus),
                .mem = MAX(0, p->mem - p->used_mem),
                .disk = MAX(0, p->disk - p->used_disk),
        };
        uint32_t port = p->port_begin;

        while (port <= p->port_end && port > 0) {
                if (port_bit(p, port)) {
                        port++;
                        continue;
                }
                LocalRange r = { port, port };
                while (r.end < p->port_end && !port_bit(p, r.end + 1))
                        r.end++;
                if (ranges_append(&u, &r, 1) < 0)
                        return -ENOMEM;
                if (r.end == 65535)
                        break;
                port = r.end + 1;
        }
        *ret = u;
        u = (LocalUsage){ 0 };
        return 0;
}

/* ---- validation ---- */

int local_id_check(const char *what, const char *id, PacerError *err)
{
        size_t len;

        if (!id || !*id)
                return pacer_error_set(err, EINVAL, "%s must not be empty", what);
        len = strlen(id);
        if (len > LOCAL_ID_MAX)
                return pacer_error_set(err, EINVAL, "%s is %zu bytes long: at most %u are allowed", what,
                                       len, LOCAL_ID_MAX);
        if (streq(id, ".") || streq(id, ".."))
                return pacer_error_set(err, EINVAL, "%s must not be '.' or '..'", what);
        for (const char *c = id; *c; c++) {
                if (*c == '/' || *c == '\\')
                        return pacer_error_set(err, EINVAL, "%s '%.64s' contains '%c'", what, id, *c);
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        return pacer_error_set(err, EINVAL, "%s contains control characters", what);
        }
        return 0;
}

static int env_var_check(const Mesos__V1__Environment__Variable *v, PacerError *err)
{
        if (!v || !v->name || !*v->name || strchr(v->name, '='))
                return pacer_error_set(err, EINVAL, "executor environment: invalid variable name '%.64s'",
                                       v && v->name ? v->name : "");
        if (v->has_type && v->type == MESOS__V1__ENVIRONMENT__VARIABLE__TYPE__SECRET)
                return pacer_error_set(err, ENOTSUP,
                                       "executor environment: %.64s is a secret; local mode has no secret "
                                       "resolver",
                                       v->name);
        if (!v->value)
                return pacer_error_set(err, EINVAL, "executor environment: %.64s has no value", v->name);
        return 0;
}

static bool uri_is_archive(const char *v)
{
        static const char *const exts[] = { ".tar",    ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz",
                                            ".tar.xz", ".zip", ".gz",     ".bz2",  ".xz" };
        size_t len = strlen(v);

        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                size_t el = strlen(exts[i]);
                if (len > el && streq(v + len - el, exts[i]))
                        return true;
        }
        return false;
}

/* The local file a URI names, or NULL: local mode fetches nothing from the network. */
static const char *uri_local_path(const char *v)
{
        if (strneq(v, "file://", 7))
                v += 7;
        return *v == '/' ? v : NULL;
}

static int uri_check(const Mesos__V1__CommandInfo__URI *u, PacerError *err)
{
        if (!u || !u->value || !*u->value)
                return pacer_error_set(err, EINVAL, "executor URI without a value");
        if (!uri_local_path(u->value))
                return pacer_error_set(
                        err, ENOTSUP,
                        "executor URI %.128s: local mode fetches only local files (file:// or an "
                        "absolute path)",
                        u->value);
        if ((!u->has_extract || u->extract) && uri_is_archive(u->value))
                return pacer_error_set(
                        err, ENOTSUP, "executor URI %.128s: local mode does not extract archives", u->value);
        if (u->output_file && (!*u->output_file || strchr(u->output_file, '/') ||
                               streq(u->output_file, ".") || streq(u->output_file, "..")))
                return pacer_error_set(
                        err, EINVAL, "executor URI %.128s: output_file must be a plain file name", u->value);
        return 0;
}

int local_task_check(const TaskInfo *t, const char *framework_id, const char *agent_id, PacerError *err)
{
        const ExecutorInfo *ei = t->executor;
        const CommandInfo *c;
        int r;

        if (!t->task_id || !t->task_id->value)
                return pacer_error_set(err, EINVAL, "Task has no ID");
        if ((r = local_id_check("Task ID", t->task_id->value, err)) < 0)
                return r;
        if (!t->name)
                return pacer_error_set(err, EINVAL, "Task has no name");
        if (!t->agent_id || !t->agent_id->value || !streq(t->agent_id->value, agent_id))
                return pacer_error_set(
                        err, EINVAL, "Task uses agent '%.128s', the offer is from agent '%.64s'",
                        t->agent_id && t->agent_id->value ? t->agent_id->value : "", agent_id);
        if (t->n_resources == 0)
                return pacer_error_set(err, EINVAL, "Task uses no resources");
        if (t->executor && t->command)
                return pacer_error_set(err, EINVAL,
                                       "Task should have at least one (but not both) of CommandInfo or "
                                       "ExecutorInfo present");
        if (!ei)
                return pacer_error_set(
                        err, ENOTSUP,
                        "Task has a command and no executor: local mode runs tasks only through "
                        "a custom executor (TaskInfo.executor), it has no Mesos command "
                        "executor");
        if (!ei->executor_id || !ei->executor_id->value)
                return pacer_error_set(err, EINVAL, "ExecutorInfo has no executor ID");
        if ((r = local_id_check("Executor ID", ei->executor_id->value, err)) < 0)
                return r;
        if (ei->framework_id && (!ei->framework_id->value || !streq(ei->framework_id->value, framework_id)))
                return pacer_error_set(err, EINVAL,
                                       "ExecutorInfo has framework ID '%.64s', expected '%.64s'",
                                       strempty(ei->framework_id->value), framework_id);
        if (ei->has_type && ei->type == MESOS__V1__EXECUTOR_INFO__TYPE__DEFAULT)
                return pacer_error_set(err, ENOTSUP,
                                       "the DEFAULT executor (task groups) is not available in "
                                       "local mode");
        c = ei->command;
        if (!c || !c->value || !*c->value)
                return pacer_error_set(err, EINVAL,
                                       "ExecutorInfo.command.value is required for a custom executor");
        if (c->n_arguments > LOCAL_ARGS_MAX)
                return pacer_error_set(err, E2BIG, "ExecutorInfo.command has %zu arguments: at most %u",
                                       c->n_arguments, LOCAL_ARGS_MAX);
        for (size_t i = 0; i < c->n_arguments; i++)
                if (!c->arguments[i])
                        return pacer_error_set(err, EINVAL, "ExecutorInfo.command argument %zu is missing",
                                               i);
        if (c->environment) {
                if (c->environment->n_variables > LOCAL_ENV_VARS_MAX)
                        return pacer_error_set(err, E2BIG,
                                               "executor environment has %zu variables: at most %u",
                                               c->environment->n_variables, LOCAL_ENV_VARS_MAX);
                for (size_t i = 0; i < c->environment->n_variables; i++)
                        if ((r = env_var_check(c->environment->variables[i], err)) < 0)
                                return r;
        }
        for (size_t i = 0; i < c->n_uris; i++)
                if ((r = uri_check(c->uris[i], err)) < 0)
                        return r;
        if (ei->shutdown_grace_period && ei->shutdown_grace_period->nanoseconds < 0)
                return pacer_error_set(err, EINVAL,
                                       "ExecutorInfo.shutdown_grace_period must not be negative");
        if (t->kill_policy && t->kill_policy->grace_period && t->kill_policy->grace_period->nanoseconds < 0)
                return pacer_error_set(err, EINVAL,
                                       "TaskInfo.kill_policy.grace_period must not be negative");
        return 0;
}

bool local_accepts(const char *accept, const char *media_type)
{
        const char *slash = strchr(media_type, '/');
        size_t main_len = slash ? (size_t)(slash - media_type) : strlen(media_type);
        int best_spec = -1;
        double best_q = 0;
        const char *p = accept;

        if (!accept)
                return true;
        while (*p) {
                const char *end = strchrnul(p, ',');
                const char *semi = memchr(p, ';', (size_t)(end - p));
                const char *rs = p, *re = semi ? semi : end;
                double q = 1.0;
                int spec = -1;

                while (rs < re && (*rs == ' ' || *rs == '\t'))
                        rs++;
                while (re > rs && (re[-1] == ' ' || re[-1] == '\t'))
                        re--;
                for (const char *a = semi; a && a < end;) {
                        const char *next = memchr(a + 1, ';', (size_t)(end - a - 1));
                        const char *k = a + 1;
                        while (k < end && (*k == ' ' || *k == '\t'))
                                k++;
                        if ((*k == 'q' || *k == 'Q') && k[1] == '=') {
                                char num[16];
                                size_t nl = (size_t)((next ? next : end) - (k + 2));
                                char *ep;
                                snprintf(num, sizeof(num), "%.*s", (int)MIN(nl, sizeof(num) - 1), k + 2);
                                q = strtod(num, &ep);
                                if (ep == num)
                                        q = 0;
                        }
                        a = next;
                }
                size_t rl = (size_t)(re - rs);
                if (rl == strlen(media_type) && strncasecmp(rs, media_type, rl) == 0)
                        spec = 2;
                else if (rl == main_len + 2 && strncasecmp(rs, media_type, main_len) == 0 &&
                         strneq(rs + main_len, "/*", 2))
                        spec = 1;
                else if (rl == 3 && strneq(rs, "*/*", 3))
                        spec = 0;
                if (spec > best_spec) {
                        best_spec = spec;
                        best_q = q;
                }
                p = *end ? end + 1 : end;
        }
        return best_spec >= 0 && best_q > 0;
}

/* ---- the executor's environment ---- */

typedef struct EnvList {
        char **v;
        size_t n, cap;
} EnvList;

char **local_strv_free(char **v)
{
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
        return NULL;
}

static int env_set(EnvList *l, const char *name, const char *value)
{
        size_t nl = strlen(name);
        char *s;

        if (asprintf(&s, "%s=%s", name, value) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (strneq(l->v[i], name, nl) && l->v[i][nl] == '=') {
                        free(l->v[i]);
                        l->v[i] = s;
                        return 0;
                }
        if (l->n + 2 > l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 32;
                char **v = realloc(l->v, cap * sizeof(*v));
                if (!v) {
                        free(s);
                        return -ENOMEM;
                }
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = s;
        l->v[l->n] = NULL;
        return 0;
}

int local_executor_environment(const ExecutorInfo *ei, const LocalExecutorContext *c, char ***ret,
                               PacerError *err)
{
        static const char *const passed[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
        EnvList l = { 0 };
        char grace[32], slave_pid[64], buf[32];
        int64_t grace_ns =
                ei->shutdown_grace_period ? ei->shutdown_grace_period->nanoseconds : c->shutdown_grace_ns;
        const Environment *env = ei->command ? ei->command->environment : NULL;
        int r = 0;

        snprintf(slave_pid, sizeof(slave_pid), "slave(1)@%s", c->endpoint);
        /* executors do not inherit the agent's environment; sanitizer settings are the exception,
         * so a sanitized build's executors report the way the tests expect */
        r = env_set(&l, "PATH", DEFAULT_PATH);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(passed); i++) {
                const char *v = getenv(passed[i]);
                if (v)
                        r = env_set(&l, passed[i], v);
        }
        if (r >= 0)
                r = env_set(&l, "MESOS_FRAMEWORK_ID", c->framework_id);
        if (r >= 0)
                r = env_set(&l, "MESOS_EXECUTOR_ID", c->executor_id);
        if (r >= 0)
                r = env_set(&l, "MESOS_DIRECTORY", c->sandbox);
        if (r >= 0)
                r = env_set(&l, "MESOS_SANDBOX", c->sandbox);
        if (r >= 0)
                r = env_set(&l, "MESOS_AGENT_ENDPOINT", c->endpoint);
        if (r >= 0)
                r = env_set(&l, "MESOS_SLAVE_ID", c->agent_id);
        if (r >= 0)
                r = env_set(&l, "MESOS_SLAVE_PID", slave_pid);
        if (r >= 0)
                r = env_set(&l, "MESOS_CHECKPOINT", c->checkpoint ? "1" : "0");
        if (r >= 0)
                r = env_set(&l, "MESOS_HTTP_COMMAND_EXECUTOR", "0");
        if (r >= 0)
                r = env_set(&l, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                            duration_format_mesos(MAX(0, grace_ns), grace, sizeof(grace)));
        if (r >= 0 && c->checkpoint) {
                r = env_set(&l, "MESOS_RECOVERY_TIMEOUT",
                            duration_format_mesos(RECOVERY_TIMEOUT_NS, buf, sizeof(buf)));
                if (r >= 0)
                        r = env_set(&l, "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                                    duration_format_mesos(SUBSCRIPTION_BACKOFF_MAX_NS, buf, sizeof(buf)));
        }
        if (r >= 0)
                r = env_set(&l, "LIBPROCESS_PORT", "0");
        /* the framework's variables win over the agent's */
        if (r >= 0 && env && env->n_variables > LOCAL_ENV_VARS_MAX)
                r = pacer_error_set(err, E2BIG, "executor environment has %zu variables: at most %u",
                                    env->n_variables, LOCAL_ENV_VARS_MAX);
        for (size_t i = 0; r >= 0 && env && i < env->n_variables; i++) {
                r = env_var_check(env->variables[i], err);
                if (r >= 0)
                        r = env_set(&l, env->variables[i]->name, env->variables[i]->value);
        }
        if (r < 0) {
                local_strv_free(l.v);
                return r;
        }
        *ret = l.v;
        return 0;
}

/* ---- /proc ---- */

int local_meminfo_total_mb(const char *text, double *ret)
{
        const char *p = strstr(text, "MemTotal:");
        unsigned long long kb;

        if (!p || (p != text && p[-1] != '\n'))
                return -EBADMSG;
        if (sscanf(p + 9, " %llu kB", &kb) != 1)
                return -EBADMSG;
        *ret = (double)kb / 1024.0;
        return 0;
}

/* SIGKILLs every process of session sid (what an executor and its tasks leave behind: the executor
 * starts its own session, its tasks their own process groups within it). */
static bool in_session(pid_t pid, const ProcStat *st, void *userdata)
{
        return pid > 1 && st->session == *(pid_t *)userdata;
}

static unsigned sweep_session(pid_t sid)
{
        if (sid <= 1 || sid == getsid(0))
                return 0;
        return (unsigned)proc_kill_picked(in_session, &sid);
}

/* Waits (bounded) for processes that are not our children to be gone. */
static void wait_gone(const pid_t *pids, size_t n, int64_t timeout_ns)
{
        struct timespec start, now;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = (int)pidfd_open(pids[i], 0);
                if (fd < 0)
                        continue; /* gone already */
                clock_gettime(CLOCK_MONOTONIC, &now);
                int64_t left = timeout_ns -
                               ((now.tv_sec - start.tv_sec) * NSEC_PER_SEC + now.tv_nsec - start.tv_nsec);
                if (left <= 0)
                        return;
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                (void)poll(&pfd, 1, (int)(left / NSEC_PER_MSEC));
        }
}

/* ---- scheduler events ---- */

static void queue_raw(LocalMaster *m, bool subscribed, const void *data, size_t len)
{
        QueuedEvent *q = malloc(sizeof(*q) + len + 1);

        if (!q) {
                log_error("out of memory queueing an event for the scheduler: dropped");
                return;
        }
        q->next = NULL;
        q->subscribed = subscribed;
        q->len = len;
        memcpy(q->data, data, len);
        q->data[len] = 0;
        if (m->q_tail)
                m->q_tail->next = q;
        else
                m->q_head = q;
        m->q_tail = q;
        /* delivered from the loop: never inside the call that caused it, as a master's answers arrive */
        if (!ev_is_active(&m->deliver_timer)) {
                ev_timer_set(&m->deliver_timer, 0., 0.);
                ev_timer_start(m->loop, &m->deliver_timer);
        }
}

static void queue_event(LocalMaster *m, const Mesos__V1__Scheduler__Event *ev)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(MESOS_MESSAGE_MAX);

        if (mesos_pack(&ev->base, &b) < 0) {
                log_error("cannot pack a %d event for the scheduler: dropped", (int)ev->type);
                return;
        }
        queue_raw(m, false, b.data, b.len);
}

static void queue_update(LocalMaster *m, const TaskStatus *st)
{
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event__Update up = MESOS__V1__SCHEDULER__EVENT__UPDATE__INIT;

        up.status = (TaskStatus *)st;
        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE;
        ev.update = &up;
        queue_event(m, &ev);
}

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents)
{
        LocalMaster *m = w->data;
        QueuedEvent *last = m->q_tail;

        /* only what is queued now: callbacks that queue more get it on the next turn */
        while (m->q_head) {
                QueuedEvent *q = m->q_head;
                bool stop = q == last;

                m->q_head = q->next;
                if (!m->q_head)
                        m->q_tail = NULL;
                if (q->subscribed) {
                        m->subscribed = true;
                        log_info(
                                "local master: framework %s subscribed; offering %s's resources as agent %s",
                                (const char *)q->data, m->hostname, m->agent_id);
                        if (m->cb.subscribed)
                                m->cb.subscribed((const char *)q->data, m->userdata);
                        /* the first offer right after SUBSCRIBED */
                        ev_timer_stop(m->loop, &m->offer_timer);
                        ev_timer_set(&m->offer_timer, 0., m->offer_interval_s);
                        ev_timer_start(m->loop, &m->offer_timer);
                } else {
                        Mesos__V1__Scheduler__Event *ev =
                                mesos__v1__scheduler__event__unpack(NULL, q->len, q->data);
                        if (ev) {
                                if (m->cb.event)
                                        m->cb.event(ev, m->userdata);
                                mesos__v1__scheduler__event__free_unpacked(ev, NULL);
                        }
                }
                free(q);
                if (stop)
                        break;
        }
        if (m->q_head) {
                ev_timer_set(&m->deliver_timer, 0., 0.);
                ev_timer_start(m->loop, &m->deliver_timer);
        }
}

/* A status the master makes itself: no uuid, never acknowledged. */
static void master_update(LocalMaster *m, const char *task_id, TaskState state, int reason, const char *msg)
{
        TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;

        tid.value = (char *)strempty(task_id);
        aid.value = m->agent_id;
        st.task_id = &tid;
        st.agent_id = &aid;
        st.state = state;
        st.has_source = true;
        st.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_MASTER;
        if (reason >= 0) {
                st.has_reason = true;
                st.reason = reason;
        }
        st.message = (char *)msg;
        st.has_timestamp = true;
        st.timestamp = mesos_now();
        queue_update(m, &st);
}

/* ---- tasks and their update streams ---- */

static void pending_free_all(LocalTask *t)
{
        while (t->head) {
                PendingUpdate *u = t->head;
                t->head = u->next;
                free(u);
        }
        t->tail = NULL;
        t->n_pending = 0;
}

static void task_release_usage(LocalTask *t)
{
        if (!t->usage_held)
                return;
        local_pool_release(&t->m->pool, &t->usage);
        t->usage_held = false;
}

static LocalTask *task_free(LocalTask *t)
{
        if (!t)
                return NULL;
        ev_timer_stop(t->m->loop, &t->retry_timer);
        task_release_usage(t);
        pending_free_all(t);
        local_usage_done(&t->usage);
        free(t->latest);
        free(t->info);
        free(t->executor_id);
        free(t->id);
        free(t);
        return NULL;
}

static void exec_unlink_task(LocalExecutor *e, LocalTask *t)
{
        for (LocalTask **p = &e->tasks; *p; p = &(*p)->exec_next)
                if (*p == t) {
                        *p = t->exec_next;
                        break;
                }
        t->exec_next = NULL;
}

/* The task is done with: terminal, and the scheduler acknowledged everything. */
static void task_forget(LocalTask *t)
{
        LocalMaster *m = t->m;

        hashmap_remove(&m->tasks, t->id);
        if (t->executor)
                exec_unlink_task(t->executor, t);
        task_free(t);
        state_save(m);
}

static bool task_seen(const LocalTask *t, const uint8_t *uuid)
{
        for (size_t i = 0; i < MIN(t->n_seen, (size_t)TASK_UUIDS_REMEMBERED); i++)
                if (memcmp(t->seen[i], uuid, MESOS_UUID_SIZE) == 0)
                        return true;
        return false;
}

static void task_remember(LocalTask *t, const uint8_t *uuid)
{
        memcpy(t->seen[t->n_seen % TASK_UUIDS_REMEMBERED], uuid, MESOS_UUID_SIZE);
        t->n_seen++;
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
        LocalTask *t = w->data;

        if (!t->head)
                return;
        log_info_s(t->id, "the scheduler has not acknowledged the %s update: resending it",
                   task_state_to_string(t->head->state));
        t->retry_ns = MIN(t->retry_ns * 2, UPDATE_RETRY_MAX_NS);
        t->head_sent = false;
        task_send_head(t);
}

static void task_send_head(LocalTask *t)
{
        TaskStatus *st;

        if (!t->head || t->head_sent)
                return;
        st = mesos__v1__task_status__unpack(NULL, t->head->len, t->head->data);
        if (!st)
                return;
        queue_update(t->m, st);
        mesos__v1__task_status__free_unpacked(st, NULL);
        t->head_sent = true;
        ev_timer_stop(t->m->loop, &t->retry_timer);
        ev_timer_set(&t->retry_timer, ns_to_s(t->retry_ns), 0.);
        ev_timer_start(t->m->loop, &t->retry_timer);
}

/* What the agent's status-update manager does with an update (uuid and agent_id set): keep it
 * until the scheduler acknowledges it, forward one at a time per task. */
static void task_record(LocalTask *t, const TaskStatus *st)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(MESOS_MESSAGE_MAX);
        PendingUpdate *u;
        uint8_t *latest;

        if (mesos_pack(&st->base, &b) < 0) {
                log_error_s(t->id, "cannot pack the %s update: dropped", task_state_to_string(st->state));
                return;
        }
        u = malloc(sizeof(*u) + b.len);
        latest = malloc(b.len ? b.len : 1);
        if (!u || !latest) {
                free(u);
                free(latest);
                log_error_s(t->id, "out of memory recording the %s update: dropped",
                            task_state_to_string(st->state));
                return;
        }
        u->next = NULL;
        memcpy(u->uuid, st->uuid.data, MESOS_UUID_SIZE);
        u->state = st->state;
        u->len = b.len;
        memcpy(u->data, b.data, b.len);
        memcpy(latest, b.data, b.len);
        free(t->latest);
        t->latest = latest;
        t->latest_len = b.len;
        t->state = st->state;
        if (task_state_is_terminal(st->state)) {
                t->terminal = true;
                task_release_usage(t); /* as the master does on a terminal update */
        }
        if (t->tail)
                t->tail->next = u;
        else
                t->head = u;
        t->tail = u;
        t->n_pending++;
        /* a scheduler that stopped acknowledging must not grow memory without end: drop the oldest
         * waiting non-terminal update, later ones supersede it */
        if (t->n_pending > LOCAL_TASK_UPDATES_MAX) {
                for (PendingUpdate **p = &t->head->next; *p; p = &(*p)->next)
                        if (!task_state_is_terminal((*p)->state)) {
                                PendingUpdate *drop = *p;
                                *p = drop->next;
                                if (t->tail == drop) {
                                        t->tail = t->head;
                                        while (t->tail->next)
                                                t->tail = t->tail->next;
                                }
                                free(drop);
                                t->n_pending--;
                                log_warn_s(t->id,
                                           "more than %u updates wait for the scheduler's "
                                           "acknowledgement: dropped the oldest",
                                           LOCAL_TASK_UPDATES_MAX);
                                break;
                        }
        }
        task_send_head(t);
}

/* A status the agent makes itself (SOURCE_AGENT): it has a uuid and goes through the stream. */
static void agent_update(LocalTask *t, TaskState state, int reason, const char *msg)
{
        TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        uint8_t uuid[MESOS_UUID_SIZE];

        mesos_uuid_generate(uuid);
        tid.value = t->id;
        aid.value = t->m->agent_id;
        eid.value = t->executor_id;
        st.task_id = &tid;
        st.agent_id = &aid;
        st.executor_id = &eid;
        st.state = state;
        st.has_source = true;
        st.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_AGENT;
        if (reason >= 0) {
                st.has_reason = true;
                st.reason = reason;
        }
        st.message = (char *)msg;
        st.has_timestamp = true;
        st.timestamp = mesos_now();
        st.has_uuid = true;
        st.uuid.data = uuid;
        st.uuid.len = sizeof(uuid);
        task_remember(t, uuid);
        log_info_s(t->id, "%s (from the agent): %s", task_state_to_string(state), strempty(msg));
        task_record(t, &st);
}

/* ---- executors: events to them ---- */

static int exec_send(LocalExecutor *e, const Mesos__V1__Executor__Event *ev)
{
        _cleanup_(buf_done) Buf packed = BUF_INIT(MESOS_MESSAGE_MAX);
        _cleanup_(buf_done) Buf framed = BUF_INIT(MESOS_MESSAGE_MAX + 32);
        int r;

        if (!e->stream)
                return -ENOTCONN;
        r = mesos_pack(&ev->base, &packed);
        if (r >= 0)
                r = recordio_encode(&framed, packed.data, packed.len);
        if (r >= 0)
                r = httpd_stream_write(e->stream, framed.data, framed.len);
        if (r < 0) {
                log_warn_errno_s(e->id, r,
                                 "cannot send an event to the executor (%m): closing its stream, it will "
                                 "subscribe again");
                e->stream = httpd_stream_close(e->stream);
        }
        return r;
}

static void exec_send_simple(LocalExecutor *e, Mesos__V1__Executor__Event__Type type)
{
        Mesos__V1__Executor__Event ev = MESOS__V1__EXECUTOR__EVENT__INIT;

        ev.has_type = true;
        ev.type = type;
        (void)exec_send(e, &ev);
}

static void exec_ack(LocalExecutor *e, const char *task_id, const uint8_t *uuid)
{
        Mesos__V1__Executor__Event ev = MESOS__V1__EXECUTOR__EVENT__INIT;
        Mesos__V1__Executor__Event__Acknowledged ack = MESOS__V1__EXECUTOR__EVENT__ACKNOWLEDGED__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;

        tid.value = (char *)task_id;
        ack.task_id = &tid;
        ack.uuid.data = (uint8_t *)uuid;
        ack.uuid.len = MESOS_UUID_SIZE;
        ev.has_type = true;
        ev.type = MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED;
        ev.acknowledged = &ack;
        (void)exec_send(e, &ev);
}

static int task_deliver(LocalTask *t)
{
        Mesos__V1__Executor__Event ev = MESOS__V1__EXECUTOR__EVENT__INIT;
        Mesos__V1__Executor__Event__Launch launch = MESOS__V1__EXECUTOR__EVENT__LAUNCH__INIT;
        int r;

        if (t->delivered || !t->info || !t->executor)
                return 0;
        launch.task = mesos__v1__task_info__unpack(NULL, t->info_len, t->info);
        if (!launch.task)
                return -EBADMSG;
        ev.has_type = true;
        ev.type = MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH;
        ev.launch = &launch;
        r = exec_send(t->executor, &ev);
        mesos__v1__task_info__free_unpacked(launch.task, NULL);
        if (r < 0)
                return r; /* stays queued for the next subscription */
        t->delivered = true;
        t->executor->had_delivery = true;
        free(t->info);
        t->info = NULL;
        return 0;
}

/* ---- executors: life ---- */

static void exec_force_kill(LocalExecutor *e, const char *why)
{
        unsigned n;

        if (e->pid <= 0)
                return;
        log_warn_s(e->id, "killing the executor (pid %d) and its tasks: %s", (int)e->pid, why);
        (void)kill(-e->pid, SIGKILL);
        (void)kill(e->pid, SIGKILL);
        n = sweep_session(e->pid);
        if (n > 0)
                log_debug_s(e->id, "killed %u processes of the executor's session", n);
}

static void on_kill_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        exec_force_kill(w->data, "it did not exit within its shutdown grace period");
}

static void on_reg_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        LocalExecutor *e = w->data;
        char d[32], msg[128];

        snprintf(msg, sizeof(msg), "Executor did not register within %s",
                 duration_format_mesos(REGISTRATION_TIMEOUT_NS, d, sizeof(d)));
        e->fail_reason = MESOS__V1__TASK_STATUS__REASON__REASON_EXECUTOR_REGISTRATION_TIMEOUT;
        free(e->fail_message);
        e->fail_message = strdup(msg);
        exec_force_kill(e, msg);
}

static void exec_shutdown(LocalExecutor *e, const char *why)
{
        ExecState before = e->state;

        if (before == EXEC_TERMINATING)
                return;
        e->state = EXEC_TERMINATING;
        log_info_s(e->id, "shutting the executor down: %s", why);
        if (e->stream)
                exec_send_simple(e, MESOS__V1__EXECUTOR__EVENT__TYPE__SHUTDOWN);
        else if (before == EXEC_RUNNING && e->pid > 0)
                /* subscribed once but its stream is gone: pacer-executor takes SIGTERM as SHUTDOWN */
                (void)kill(e->pid, SIGTERM);
        /* a registering executor gets SHUTDOWN when it subscribes */
        ev_timer_stop(e->m->loop, &e->kill_timer);
        ev_timer_set(&e->kill_timer, ns_to_s(e->grace_ns), 0.);
        ev_timer_start(e->m->loop, &e->kill_timer);
}

static LocalExecutor *exec_free(LocalExecutor *e)
{
        LocalMaster *m;

        if (!e)
                return NULL;
        m = e->m;
        ev_child_stop(m->loop, &e->child);
        ev_timer_stop(m->loop, &e->reg_timer);
        ev_timer_stop(m->loop, &e->kill_timer);
        e->stream = httpd_stream_close(e->stream);
        local_pool_release(&m->pool, &e->usage);
        local_usage_done(&e->usage);
        for (LocalTask *t = e->tasks, *next; t; t = next) {
                next = t->exec_next;
                t->executor = NULL;
                t->exec_next = NULL;
        }
        free(e->info);
        free(e->fail_message);
        free(e->argv0);
        free(e->sandbox);
        free(e->container_id);
        free(e->id);
        free(e);
        return NULL;
}

/* The executor is gone: its unfinished tasks fail, as the agent reports them. */
static void exec_terminated(LocalExecutor *e, int status)
{
        LocalMaster *m = e->m;
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event__Failure f = MESOS__V1__SCHEDULER__EVENT__FAILURE__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        char how[64], msg[160];

        describe_wstatus(status, how, sizeof(how));
        snprintf(msg, sizeof(msg), "Executor terminated: %s", how);
        for (LocalTask *t = e->tasks; t; t = t->exec_next)
                if (!t->terminal)
                        agent_update(t, TASK_STATE(TASK_FAILED), e->fail_reason,
                                     e->fail_message ? e->fail_message : msg);
        aid.value = m->agent_id;
        eid.value = e->id;
        f.agent_id = &aid;
        f.executor_id = &eid;
        f.has_status = true;
        f.status = status;
        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__FAILURE;
        ev.failure = &f;
        queue_event(m, &ev);
        hashmap_remove(&m->executors, e->id);
        exec_free(e);
        state_save(m);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
        LocalExecutor *e = w->data;
        char how[64];
        unsigned n;

        ev_child_stop(loop, w);
        describe_wstatus(w->rstatus, how, sizeof(how));
        log_info_s(e->id, "executor (pid %d) %s", (int)e->pid, how);
        /* the guard and anything a crashed executor left of its tasks */
        n = sweep_session(e->pid);
        if (n > 0)
                log_full(w->rstatus == 0 ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, 0, e->id,
                         "killed %u processes the executor left behind", n);
        e->pid = 0;
        exec_terminated(e, w->rstatus);
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out = -1;
        _cleanup_free_ char *block = NULL;

        if (in < 0)
                return negative_errno();
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (out < 0)
                return negative_errno();
        block = malloc(COPY_BLOCK);
        if (!block)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(in, block, COPY_BLOCK);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, block + off, (size_t)(n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return negative_errno();
                        off += w;
                }
        }
        if (fchmod(out, mode) < 0)
                return negative_errno();
        return 0;
}

/* The agent's fetcher, for local files only (checked at ACCEPT). */
static int fetch_uris(const CommandInfo *c, const char *sandbox, PacerError *err)
{
        for (size_t i = 0; i < c->n_uris; i++) {
                const Mesos__V1__CommandInfo__URI *u = c->uris[i];
                const char *path = uri_local_path(u->value), *base;
                _cleanup_free_ char *to = NULL;
                int r;

                base = u->output_file ? u->output_file : strrchr(path, '/') + 1;
                if (!*base || asprintf(&to, "%s/%s", sandbox, base) < 0)
                        return pacer_error_set(err, EINVAL, "cannot fetch %.128s: no file name", u->value);
                r = copy_file(path, to, u->has_executable && u->executable ? 0755 : 0644);
                if (r < 0)
                        return pacer_error_set(err, -r, "cannot fetch %.128s: %s", u->value, strerror(-r));
        }
        return 0;
}

/* execvp's search, with the executor's PATH rather than ours. */
static char *resolve_program(const char *name, char *const *envp)
{
        const char *path = DEFAULT_PATH;

        if (strchr(name, '/'))
                return strdup(name);
        for (size_t i = 0; envp[i]; i++)
                if (strneq(envp[i], "PATH=", 5))
                        path = envp[i] + 5;
        for (const char *p = path; *p;) {
                const char *end = strchrnul(p, ':');
                _cleanup_free_ char *cand = NULL;

                if (asprintf(&cand, "%.*s/%s", (int)(end - p), end == p ? "." : p, name) < 0)
                        return NULL;
                if (access(cand, X_OK) == 0)
                        return TAKE_PTR(cand);
                p = *end ? end + 1 : end;
        }
        return strdup(name); /* execve reports ENOENT */
}

typedef struct ChildPlan {
        const char *path;
        char *const *argv;
        char *const *envp;
        const char *sandbox;
        int log_fd, null_fd, err_fd;
        bool switch_user;
        uid_t uid;
        gid_t gid;
        gid_t *groups;
        int n_groups;
} ChildPlan;

/* Between fork and exec: async-signal-safe calls only (the scheduler may have threads). */
_noreturn_ static void exec_child(const ChildPlan *p)
{
        sigset_t none;
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        int e;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
                (void)sigaction(s, &dfl, NULL); /* ignored signals (SIGPIPE) would survive exec */
        if (setsid() < 0)
                goto fail;
        if (dup2(p->null_fd, STDIN_FILENO) < 0 || dup2(p->log_fd, STDOUT_FILENO) < 0 ||
            dup2(p->log_fd, STDERR_FILENO) < 0)
                goto fail;
        if (chdir(p->sandbox) < 0)
                goto fail;
        if (p->switch_user &&
            (setgroups((size_t)p->n_groups, p->groups) < 0 || setgid(p->gid) < 0 || setuid(p->uid) < 0))
                goto fail;
        close_range(3, (unsigned)p->err_fd - 1, 0);
        close_range((unsigned)p->err_fd + 1, ~0U, 0);
        execve(p->path, p->argv, p->envp);
fail:
        e = errno;
        (void)!write(p->err_fd, &e, sizeof(e));
        _exit(127);
}

static int high_fd(int fd)
{
        int n;

        if (fd < 0)
                return fd;
        n = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        close(fd);
        return n;
}

/* Who the executor runs as: CommandInfo.user, else the framework's user (as the agent does with
 * --switch_user); switching needs root. */
static int plan_user(LocalMaster *m, const CommandInfo *c, ChildPlan *p, const char *sandbox,
                     PacerError *err)
{
        const char *user = c->user ? c->user : m->user;
        struct passwd pwbuf, *pw = NULL;
        char buf[4096];
        int n = 64;

        if (!user || streq(user, m->user))
                return 0;
        if (geteuid() != 0)
                return pacer_error_set(
                        err, EPERM,
                        "cannot start the executor as user '%.64s': the scheduler runs as '%.64s', "
                        "not as root",
                        user, m->user);
        if (getpwnam_r(user, &pwbuf, buf, sizeof(buf), &pw) != 0 || !pw)
                return pacer_error_set(err, ENOENT,
                                       "cannot start the executor as user '%.64s': no such user", user);
        p->groups = calloc((size_t)n, sizeof(gid_t));
        if (!p->groups)
                return -ENOMEM;
        if (getgrouplist(user, pw->pw_gid, p->groups, &n) < 0) {
                gid_t *g = reallocarray(p->groups, (size_t)n, sizeof(gid_t));
                if (!g)
                        return -ENOMEM;
                p->groups = g;
                if (getgrouplist(user, pw->pw_gid, p->groups, &n) < 0)
                        return pacer_error_set(err, EINVAL, "cannot list the groups of user '%.64s'", user);
        }
        p->n_groups = n;
        p->switch_user = true;
        p->uid = pw->pw_uid;
        p->gid = pw->pw_gid;
        if (chown(sandbox, p->uid, p->gid) < 0)
                return pacer_error_set(err, errno, "cannot give the sandbox to user '%.64s': %m", user);
        return 0;
}

static int exec_spawn(LocalMaster *m, LocalExecutor *e, const ExecutorInfo *ei, PacerError *err)
{
        const CommandInfo *c = ei->command;
        LocalExecutorContext ctx = {
                .framework_id = m->framework_id,
                .executor_id = e->id,
                .agent_id = m->agent_id,
                .sandbox = e->sandbox,
                .endpoint = m->endpoint,
                .checkpoint = m->checkpoint,
                .shutdown_grace_ns = m->grace_ns,
        };
        char **envp = NULL, **argv = NULL;
        _cleanup_free_ char *path = NULL, *log_path = NULL;
        ChildPlan p = { .log_fd = -1, .null_fd = -1, .err_fd = -1 };
        int pipefd[2] = { -1, -1 }, child_errno = 0, r;
        size_t argc = 0;
        pid_t pid;

        r = mkdir_p(e->sandbox, 0755);
        if (r < 0)
                return pacer_error_set(err, -r, "cannot create the sandbox %.200s: %s", e->sandbox,
                                       strerror(-r));
        r = fetch_uris(c, e->sandbox, err);
        if (r < 0)
                return r;
        r = local_executor_environment(ei, &ctx, &envp, err);
        if (r < 0)
                return r;
        argv = calloc(MAX(c->n_arguments, (size_t)3) + 1, sizeof(char *));
        if (!argv) {
                r = -ENOMEM;
                goto out;
        }
        if (c->has_shell && !c->shell) {
                /* value is the program; arguments are the whole argv, argv[0] included */
                if (c->n_arguments == 0)
                        argv[argc++] = c->value;
                for (size_t i = 0; i < c->n_arguments; i++)
                        argv[argc++] = c->arguments[i];
                path = resolve_program(c->value, envp);
        } else {
                argv[argc++] = "sh";
                argv[argc++] = "-c";
                argv[argc++] = c->value;
                path = strdup("/bin/sh");
        }
        argv[argc] = NULL;
        if (!path || asprintf(&log_path, "%s/" EXECUTOR_LOG, e->sandbox) < 0) {
                r = -ENOMEM;
                goto out;
        }
        e->argv0 = strdup(argv[0]);
        if (!e->argv0) {
                r = -ENOMEM;
                goto out;
        }
        r = plan_user(m, c, &p, e->sandbox, err);
        if (r < 0)
                goto out;
        p.log_fd = high_fd(open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644));
        p.null_fd = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (p.log_fd < 0 || p.null_fd < 0) {
                r = pacer_error_set(err, errno, "cannot open %.200s: %m", log_path);
                goto out;
        }
        if (p.switch_user && fchown(p.log_fd, p.uid, p.gid) < 0) {
                r = pacer_error_set(err, errno, "cannot give %.200s to the executor's user: %m", log_path);
                goto out;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                r = pacer_error_set(err, errno, "cannot create a pipe: %m");
                goto out;
        }
        pipefd[0] = high_fd(pipefd[0]);
        pipefd[1] = high_fd(pipefd[1]);
        if (pipefd[0] < 0 || pipefd[1] < 0) {
                r = pacer_error_set(err, EMFILE, "cannot create a pipe");
                goto out;
        }
        p.path = path;
        p.argv = argv;
        p.envp = envp;
        p.sandbox = e->sandbox;
        p.err_fd = pipefd[1];

        pid = fork();
        if (pid < 0) {
                r = pacer_error_set(err, errno, "cannot fork: %m");
                goto out;
        }
        if (pid == 0)
                exec_child(&p);
        pipefd[1] = safe_close(pipefd[1]);
        /* returns at exec (the pipe closes) or with the child's errno: a few milliseconds */
        for (;;) {
                ssize_t n = read(pipefd[0], &child_errno, sizeof(child_errno));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != (ssize_t)sizeof(child_errno))
                        child_errno = 0;
                break;
        }
        if (child_errno != 0) {
                (void)waitpid(pid, NULL, 0);
                r = pacer_error_set(err, child_errno, "cannot start the executor %.200s: %s", path,
                                    strerror(child_errno));
                goto out;
        }
        e->pid = pid;
        ProcStat st;
        if (proc_stat_read(pid, &st) >= 0)
                e->start_time = st.start_time;
        ev_child_init(&e->child, on_child, pid, 0);
        e->child.data = e;
        ev_child_start(m->loop, &e->child);
        log_info_s(e->id, "started the executor (pid %d) in %s: %s", (int)pid, e->sandbox, c->value);
        r = 0;
out:
        safe_close(pipefd[0]);
        safe_close(pipefd[1]);
        safe_close(p.log_fd);
        safe_close(p.null_fd);
        free(p.groups);
        free(argv);
        local_strv_free(envp);
        return r;
}

/* Creates the executor and starts its process; on failure nothing is left but err. */
static int exec_launch(LocalMaster *m, const ExecutorInfo *ei, LocalUsage *usage, LocalExecutor **ret,
                       PacerError *err)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(MESOS_MESSAGE_MAX);
        ExecutorInfo copy = *ei;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        char cid[40];
        LocalExecutor *e;
        int r;

        fid.value = m->framework_id;
        copy.framework_id = &fid;
        r = mesos_pack(&copy.base, &b);
        if (r < 0)
                return pacer_error_set(err, -r, "ExecutorInfo is too large");
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        uuid_string(cid);
        e->m = m;
        e->id = strdup(ei->executor_id->value);
        e->container_id = strdup(cid);
        e->info = malloc(b.len ? b.len : 1);
        e->grace_ns = ei->shutdown_grace_period ? ei->shutdown_grace_period->nanoseconds : m->grace_ns;
        e->fail_reason = MESOS__V1__TASK_STATUS__REASON__REASON_EXECUTOR_TERMINATED;
        if (!e->id || !e->container_id || !e->info ||
            asprintf(&e->sandbox, "%s/sandboxes/%s/%s", m->local_dir, m->framework_id, e->id) < 0) {
                e->sandbox = NULL;
                exec_free(e);
                return -ENOMEM;
        }
        memcpy(e->info, b.data, b.len);
        e->info_len = b.len;
        ev_timer_init(&e->reg_timer, on_reg_timer, ns_to_s(REGISTRATION_TIMEOUT_NS), 0.);
        e->reg_timer.data = e;
        ev_timer_init(&e->kill_timer, on_kill_timer, 0., 0.);
        e->kill_timer.data = e;
        ev_child_init(&e->child, on_child, 0, 0);
        e->child.data = e;
        r = exec_spawn(m, e, ei, err);
        if (r < 0) {
                exec_free(e);
                return r;
        }
        if (hashmap_put(&m->executors, e->id, e, NULL) < 0) {
                exec_force_kill(e, "out of memory");
                (void)waitpid(e->pid, NULL, 0);
                exec_free(e);
                return -ENOMEM;
        }
        e->usage = *usage;
        *usage = (LocalUsage){ 0 };
        ev_timer_start(m->loop, &e->reg_timer);
        *ret = e;
        return 0;
}

/* ---- the executor API ---- */

static int reply(HttpdRequest *req, unsigned status, const char *fmt, ...) _printf_(3, 4);
static int reply(HttpdRequest *req, unsigned status, const char *fmt, ...)
{
        char text[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        (void)httpd_respond_text(req, status, text);
        return HTTPD_DONE;
}

/* The agent's validation of an executor call (common/validation.cpp); NULL when valid. */
static const char *validate_call(const Mesos__V1__Executor__Call *c, char *buf, size_t size)
{
        if (!c->has_type)
                return "Expecting 'type' to be present";
        if (!c->executor_id || !c->executor_id->value)
                return "Expecting 'executor_id' to be present";
        if (!c->framework_id || !c->framework_id->value)
                return "Expecting 'framework_id' to be present";
        switch (c->type) {
        case MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE:
                if (!c->subscribe)
                        return "Expecting 'subscribe' to be present";
                break;
        case MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE: {
                const TaskStatus *st = c->update ? c->update->status : NULL;
                if (!st)
                        return "Expecting 'update' to be present";
                if (!st->has_uuid)
                        return "Expecting 'uuid' to be present";
                if (st->uuid.len != MESOS_UUID_SIZE) {
                        snprintf(buf, size, "Not a valid UUID: expected 16 bytes, got %zu", st->uuid.len);
                        return buf;
                }
                if (st->executor_id && st->executor_id->value &&
                    !streq(st->executor_id->value, c->executor_id->value)) {
                        snprintf(buf, size,
                                 "ExecutorID in Call: %.64s does not match ExecutorID in TaskStatus: %.64s",
                                 c->executor_id->value, st->executor_id->value);
                        return buf;
                }
                if (!st->has_source || st->source != MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR) {
                        snprintf(buf, size,
                                 "Received Call from executor %.64s of framework %.64s with invalid source, "
                                 "expecting 'SOURCE_EXECUTOR'",
                                 c->executor_id->value, c->framework_id->value);
                        return buf;
                }
                if (st->state == TASK_STATE(TASK_STAGING)) {
                        snprintf(buf, size,
                                 "Received TASK_STAGING from executor %.64s of framework %.64s which is not "
                                 "allowed",
                                 c->executor_id->value, c->framework_id->value);
                        return buf;
                }
                break;
        }
        case MESOS__V1__EXECUTOR__CALL__TYPE__MESSAGE:
                if (!c->message)
                        return "Expecting 'message' to be present";
                break;
        default:
                break;
        }
        return NULL;
}

static void on_stream_closed(HttpdStream *s, void *userdata)
{
        LocalExecutor *e = userdata;

        if (e->stream == s) {
                e->stream = NULL;
                log_info_s(e->id, "the executor closed its subscription stream");
        }
        httpd_stream_close(s);
}

/* An update from an executor: record it, acknowledge it to the executor, forward it. */
static void executor_status_update(LocalMaster *m, LocalExecutor *e, TaskStatus *st)
{
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__AgentID *saved_aid = st->agent_id;
        const char *task_id = st->task_id->value;
        LocalTask *t = hashmap_get(&m->tasks, task_id);

        aid.value = m->agent_id;
        st->agent_id = &aid;
        if (!t) {
                /* the agent forwards these too; the scheduler sorts out tasks it does not know */
                log_warn_s(task_id, "%s from executor %s for a task this agent does not know",
                           task_state_to_string(st->state), e->id);
                queue_update(m, st);
                exec_ack(e, task_id, st->uuid.data);
        } else if (t->executor != e) {
                log_warn_s(task_id, "%s from executor %s, which does not run this task: ignored",
                           task_state_to_string(st->state), e->id);
                exec_ack(e, task_id, st->uuid.data);
        } else if (task_seen(t, st->uuid.data)) {
                /* resent after a lost acknowledgement: acknowledge again, forward once */
                exec_ack(e, task_id, st->uuid.data);
        } else {
                task_remember(t, st->uuid.data);
                if (t->terminal)
                        log_warn_s(task_id, "%s after the task's terminal update: ignored",
                                   task_state_to_string(st->state));
                else {
                        log_debug_s(task_id, "%s from the executor", task_state_to_string(st->state));
                        task_record(t, st);
                }
                exec_ack(e, task_id, st->uuid.data);
        }
        st->agent_id = saved_aid;
}

static bool listed_task(const Mesos__V1__Executor__Call__Subscribe *sub, const char *task_id)
{
        for (size_t i = 0; i < sub->n_unacknowledged_tasks; i++) {
                const TaskInfo *ti = sub->unacknowledged_tasks[i];
                if (ti && ti->task_id && ti->task_id->value && streq(ti->task_id->value, task_id))
                        return true;
        }
        return false;
}

static int executor_subscribe(LocalMaster *m, LocalExecutor *e, HttpdRequest *req,
                              Mesos__V1__Executor__Call *call)
{
        HttpdStreamOptions so = {
                .content_type = CONTENT_TYPE_PROTOBUF,
                .buffer_max = EXECUTOR_STREAM_BUFFER_MAX,
                .on_close = on_stream_closed,
                .userdata = e,
        };
        Mesos__V1__Executor__Event ev = MESOS__V1__EXECUTOR__EVENT__INIT;
        Mesos__V1__Executor__Event__Subscribed sub = MESOS__V1__EXECUTOR__EVENT__SUBSCRIBED__INIT;
        FrameworkInfo fi = MESOS__V1__FRAMEWORK_INFO__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__AgentInfo ai = MESOS__V1__AGENT_INFO__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__ContainerID cid = MESOS__V1__CONTAINER_ID__INIT;
        Mesos__V1__FrameworkInfo__Capability caps[3], *capp[3];
        static const int cap_types[3] = {
                MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__TASK_KILLING_STATE,
                MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__PARTITION_AWARE,
                MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__MULTI_ROLE,
        };
        char *roles[1] = { "*" };
        HttpdStream *s;
        int r;

        r = httpd_stream_start(req, 200, &so, &s);
        if (r < 0)
                return r == -EBUSY ? HTTPD_DONE : r;
        if (e->stream) {
                log_info_s(e->id, "the executor subscribed again: closing its previous stream");
                e->stream = httpd_stream_close(e->stream);
        }
        e->stream = s;
        if (e->state == EXEC_TERMINATING) {
                exec_send_simple(e, MESOS__V1__EXECUTOR__EVENT__TYPE__SHUTDOWN);
                e->stream = httpd_stream_close(e->stream);
                return HTTPD_DONE;
        }
        e->state = EXEC_RUNNING;
        ev_timer_stop(m->loop, &e->reg_timer);

        ev.has_type = true;
        ev.type = MESOS__V1__EXECUTOR__EVENT__TYPE__SUBSCRIBED;
        ev.subscribed = &sub;
        sub.executor_info = mesos__v1__executor_info__unpack(NULL, e->info_len, e->info);
        if (!sub.executor_info) {
                e->stream = httpd_stream_close(e->stream);
                return HTTPD_DONE;
        }
        for (size_t i = 0; i < ELEMENTSOF(caps); i++) {
                mesos__v1__framework_info__capability__init(&caps[i]);
                caps[i].has_type = true;
                caps[i].type = cap_types[i];
                capp[i] = &caps[i];
        }
        fid.value = m->framework_id;
        fi.user = m->user;
        fi.name = m->framework_name;
        fi.id = &fid;
        fi.has_checkpoint = true;
        fi.checkpoint = m->checkpoint;
        fi.n_capabilities = ELEMENTSOF(caps);
        fi.capabilities = capp;
        fi.n_roles = 1;
        fi.roles = roles;
        fi.hostname = m->hostname;
        aid.value = m->agent_id;
        ai.hostname = m->hostname;
        ai.id = &aid;
        ai.has_port = true;
        ai.port = httpd_port(m->httpd);
        cid.value = e->container_id;
        sub.framework_info = &fi;
        sub.agent_info = &ai;
        sub.container_id = &cid;
        r = exec_send(e, &ev);
        mesos__v1__executor_info__free_unpacked(sub.executor_info, NULL);
        if (r < 0)
                return HTTPD_DONE;
        log_info_s(e->id, "the executor subscribed (%zu unacknowledged tasks, %zu unacknowledged updates)",
                   call->subscribe->n_unacknowledged_tasks, call->subscribe->n_unacknowledged_updates);

        /* a delivered task the executor has never reported and does not list is lost to it */
        for (LocalTask *t = e->tasks; t; t = t->exec_next)
                if (t->delivered && !t->terminal && t->state == TASK_STATE(TASK_STAGING) &&
                    !listed_task(call->subscribe, t->id))
                        agent_update(t, TASK_STATE(TASK_DROPPED),
                                     MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_RESTARTED,
                                     "Task launched during agent restart");
        for (LocalTask *t = e->tasks; t && e->stream; t = t->exec_next)
                if (!t->delivered && !t->terminal)
                        (void)task_deliver(t);
        for (size_t i = 0; i < call->subscribe->n_unacknowledged_updates; i++) {
                Mesos__V1__Executor__Call__Update *u = call->subscribe->unacknowledged_updates[i];
                char buf[256];
                Mesos__V1__Executor__Call one = *call;
                one.type = MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE;
                one.update = u;
                const char *why = u ? validate_call(&one, buf, sizeof(buf)) : "empty update";
                if (why) {
                        log_warn_s(e->id, "an unacknowledged update in SUBSCRIBE is invalid: %s: ignored",
                                   why);
                        continue;
                }
                executor_status_update(m, e, u->status);
        }
        return HTTPD_DONE;
}

static void executor_message(LocalMaster *m, LocalExecutor *e, const Mesos__V1__Executor__Call__Message *msg)
{
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event__Message mm = MESOS__V1__SCHEDULER__EVENT__MESSAGE__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;

        aid.value = m->agent_id;
        eid.value = e->id;
        mm.agent_id = &aid;
        mm.executor_id = &eid;
        mm.data = msg->data;
        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__MESSAGE;
        ev.message = &mm;
        queue_event(m, &ev);
}

static int on_executor_call(HttpdRequest *req, void *userdata)
{
        LocalMaster *m = userdata;
        const char *ct = httpd_request_header(req, "Content-Type");
        Mesos__V1__Executor__Call *call;
        LocalExecutor *e;
        const char *body, *why;
        char buf[256];
        size_t len;
        int r;

        if (!ct)
                return reply(req, 400, "Expecting 'Content-Type' to be present");
        if (streq(ct, CONTENT_TYPE_JSON))
                return reply(req, 415, "This agent (pacer-scheduler local mode) takes '%s' only",
                             CONTENT_TYPE_PROTOBUF);
        if (!streq(ct, CONTENT_TYPE_PROTOBUF))
                return reply(req, 415, "Expecting 'Content-Type' of %s or %s", CONTENT_TYPE_JSON,
                             CONTENT_TYPE_PROTOBUF);
        body = httpd_request_body(req, &len);
        call = mesos__v1__executor__call__unpack(NULL, len, (const uint8_t *)body);
        if (!call)
                return reply(req, 400, "Failed to parse body into Call protobuf");
        why = validate_call(call, buf, sizeof(buf));
        if (why) {
                r = reply(req, 400, "Failed to validate Executor::Call: %s", why);
                goto out;
        }
        if (call->type == MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE &&
            !local_accepts(httpd_request_header(req, "Accept"), CONTENT_TYPE_PROTOBUF)) {
                r = reply(req, 406, "Expecting 'Accept' to allow '%s'", CONTENT_TYPE_PROTOBUF);
                goto out;
        }
        if (!m->framework_id || !streq(call->framework_id->value, m->framework_id)) {
                r = reply(req, 400, "Framework cannot be found");
                goto out;
        }
        e = hashmap_get(&m->executors, call->executor_id->value);
        if (!e) {
                r = reply(req, 400, "Executor cannot be found");
                goto out;
        }
        if (e->state == EXEC_REGISTERING && call->type != MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE) {
                r = reply(req, 403, "Executor is not subscribed");
                goto out;
        }
        switch (call->type) {
        case MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE:
                r = executor_subscribe(m, e, req, call);
                break;
        case MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE:
                /* answered first: the acknowledgement follows on the stream, as the agent's does */
                r = reply(req, 202, "%s", "");
                executor_status_update(m, e, call->update->status);
                break;
        case MESOS__V1__EXECUTOR__CALL__TYPE__MESSAGE:
                r = reply(req, 202, "%s", "");
                executor_message(m, e, call->message);
                break;
        case MESOS__V1__EXECUTOR__CALL__TYPE__HEARTBEAT:
                r = reply(req, 202, "%s", "");
                break;
        default:
                r = reply(req, 501, "Received an unknown call type %d", (int)call->type);
                break;
        }
out:
        mesos__v1__executor__call__free_unpacked(call, NULL);
        return r;
}

static const HttpdRoute executor_routes[] = {
        { "POST", "/api/v1/executor", on_executor_call, LOCAL_CALL_MAX, 0 },
        { "POST", "/slave(1)/api/v1/executor", on_executor_call, LOCAL_CALL_MAX, 0 },
};

/* ---- offers ---- */

static LocalOffer *offer_free(LocalOffer *o)
{
        if (!o)
                return NULL;
        local_usage_done(&o->usage);
        free(o->id);
        free(o);
        return NULL;
}

/* Unlinks the outstanding offer with this id. */
static LocalOffer *offer_take(LocalMaster *m, const char *id)
{
        for (LocalOffer **p = &m->offers; *p; p = &(*p)->next)
                if (id && streq((*p)->id, id)) {
                        LocalOffer *o = *p;
                        *p = o->next;
                        o->next = NULL;
                        local_pool_release(&m->pool, &o->usage);
                        return o;
                }
        return NULL;
}

static void offers_clear(LocalMaster *m)
{
        while (m->offers) {
                LocalOffer *o = m->offers;
                m->offers = o->next;
                local_pool_release(&m->pool, &o->usage);
                offer_free(o);
        }
}

static void set_filter(LocalMaster *m, LocalUsage *declined, double refuse_s)
{
        if (!isfinite(refuse_s) || refuse_s < 0)
                refuse_s = REFUSE_DEFAULT_S;
        refuse_s = MIN(refuse_s, REFUSE_MAX_S);
        local_usage_done(&m->filter);
        m->filter_until = 0;
        if (refuse_s <= 0 || local_usage_empty(declined))
                return;
        m->filter = *declined;
        *declined = (LocalUsage){ 0 };
        m->filter_until = ev_now(m->loop) + refuse_s;
}

static void fill_scalar(Resource *r, Mesos__V1__Value__Scalar *s, Mesos__V1__Resource__AllocationInfo *ai,
                        const char *name, int64_t milli)
{
        mesos__v1__resource__init(r);
        mesos__v1__value__scalar__init(s);
        s->value = from_milli(milli);
        r->name = (char *)name;
        r->type = MESOS__V1__VALUE__TYPE__SCALAR;
        r->scalar = s;
        resource_set_role(r, "*");
        r->allocation_info = ai;
}

static int build_offer_event(LocalMaster *m, const LocalOffer *o, Buf *out)
{
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event__Offers offers = MESOS__V1__SCHEDULER__EVENT__OFFERS__INIT;
        Mesos__V1__Offer offer = MESOS__V1__OFFER__INIT, *offerp = &offer;
        Mesos__V1__OfferID oid = MESOS__V1__OFFER_ID__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__Resource__AllocationInfo ai = MESOS__V1__RESOURCE__ALLOCATION_INFO__INIT;
        Mesos__V1__Value__Scalar scalars[3];
        Mesos__V1__Value__Ranges ranges = MESOS__V1__VALUE__RANGES__INIT;
        Resource res[4], *resp[4];
        _cleanup_free_ Mesos__V1__Value__Range *rg = NULL;
        _cleanup_free_ Mesos__V1__Value__Range **rgp = NULL;
        _cleanup_free_ Mesos__V1__ExecutorID *eids = NULL;
        _cleanup_free_ Mesos__V1__ExecutorID **eidp = NULL;
        size_t n = 0, ne = 0, it = 0;
        const char *k;
        void *v;

        ai.role = "*";
        if (o->usage.cpus > 0) {
                fill_scalar(&res[n], &scalars[0], &ai, "cpus", o->usage.cpus);
                resp[n] = &res[n];
                n++;
        }
        if (o->usage.mem > 0) {
                fill_scalar(&res[n], &scalars[1], &ai, "mem", o->usage.mem);
                resp[n] = &res[n];
                n++;
        }
        if (o->usage.disk > 0) {
                fill_scalar(&res[n], &scalars[2], &ai, "disk", o->usage.disk);
                resp[n] = &res[n];
                n++;
        }
        if (o->usage.n_ports > 0) {
                rg = calloc(o->usage.n_ports, sizeof(*rg));
                rgp = calloc(o->usage.n_ports, sizeof(*rgp));
                if (!rg || !rgp)
                        return -ENOMEM;
                for (size_t i = 0; i < o->usage.n_ports; i++) {
                        mesos__v1__value__range__init(&rg[i]);
                        rg[i].begin = o->usage.ports[i].begin;
                        rg[i].end = o->usage.ports[i].end;
                        rgp[i] = &rg[i];
                }
                ranges.n_range = o->usage.n_ports;
                ranges.range = rgp;
                mesos__v1__resource__init(&res[n]);
                res[n].name = "ports";
                res[n].type = MESOS__V1__VALUE__TYPE__RANGES;
                res[n].ranges = &ranges;
                resource_set_role(&res[n], "*");
                res[n].allocation_info = &ai;
                resp[n] = &res[n];
                n++;
        }
        /* the framework's executors on this agent */
        eids = calloc(hashmap_count(&m->executors) + 1, sizeof(*eids));
        eidp = calloc(hashmap_count(&m->executors) + 1, sizeof(*eidp));
        if (!eids || !eidp)
                return -ENOMEM;
        while (hashmap_next(&m->executors, &it, &k, &v)) {
                mesos__v1__executor_id__init(&eids[ne]);
                eids[ne].value = (char *)k;
                eidp[ne] = &eids[ne];
                ne++;
        }
        oid.value = o->id;
        fid.value = m->framework_id;
        aid.value = m->agent_id;
        offer.id = &oid;
        offer.framework_id = &fid;
        offer.agent_id = &aid;
        offer.hostname = m->hostname;
        offer.n_resources = n;
        offer.resources = resp;
        offer.n_executor_ids = ne;
        offer.executor_ids = eidp;
        offer.allocation_info = &ai;
        offers.n_offers = 1;
        offers.offers = &offerp;
        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS;
        ev.offers = &offers;
        return mesos_pack(&ev.base, out);
}

/* The allocator's turn: offer what is free, unless the framework suppressed offers or declined
 * exactly these resources a moment ago. */
static void allocate(LocalMaster *m)
{
        _cleanup_(local_usage_done) LocalUsage f = { 0 };
        _cleanup_(buf_done) Buf b = BUF_INIT(MESOS_MESSAGE_MAX);
        LocalOffer *o;

        if (!m->subscribed || m->suppressed || m->shutting_down)
                return;
        if (local_pool_free(&m->pool, &f) < 0)
                return;
        if (f.cpus < OFFER_MIN_CPUS && f.mem < OFFER_MIN_MEM)
                return;
        if (m->filter_until > 0) {
                if (ev_now(m->loop) < m->filter_until && local_usage_subset(&f, &m->filter))
                        return;
                if (ev_now(m->loop) >= m->filter_until) {
                        local_usage_done(&m->filter);
                        m->filter_until = 0;
                }
        }
        o = calloc(1, sizeof(*o));
        if (!o || asprintf(&o->id, "%s-O%llu", m->run_id, (unsigned long long)++m->offer_seq) < 0) {
                free(o);
                return;
        }
        o->usage = f;
        f = (LocalUsage){ 0 };
        if (build_offer_event(m, o, &b) < 0) {
                offer_free(o);
                return;
        }
        (void)local_pool_take(&m->pool, &o->usage, NULL);
        o->next = m->offers;
        m->offers = o;
        queue_raw(m, false, b.data, b.len);
}

static void on_offer_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        allocate(w->data);
}

int local_log_rotate(const char *path, off_t max)
{
        _cleanup_free_ char *old = NULL;
        _cleanup_close_ int in = -1, out = -1;
        struct stat st;

        if (stat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (st.st_size <= max)
                return 0;
        if (asprintf(&old, "%s.1", path) < 0)
                return -ENOMEM;
        in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        out = open(old, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (in < 0 || out < 0)
                return negative_errno();
        for (off_t left = st.st_size; left > 0;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? negative_errno() : -EIO;
                left -= n;
        }
        return truncate(path, 0) < 0 ? negative_errno() : 1;
}

static void on_log_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        LocalMaster *m = w->data;
        char path[PATH_MAX];
        const char *k;
        void *v;
        size_t it = 0;

        while (hashmap_next(&m->executors, &it, &k, &v)) {
                LocalExecutor *e = v;
                int r;
                if (!e->sandbox)
                        continue;
                snprintf(path, sizeof(path), "%s/" EXECUTOR_LOG, e->sandbox);
                r = local_log_rotate(path, EXECUTOR_LOG_MAX);
                if (r < 0)
                        log_warn("local master: cannot rotate %s: %s", path, strerror(-r));
        }
}

static void allocate_soon(LocalMaster *m)
{
        if (!m->subscribed)
                return;
        ev_timer_stop(m->loop, &m->offer_timer);
        ev_timer_set(&m->offer_timer, 0., m->offer_interval_s);
        ev_timer_start(m->loop, &m->offer_timer);
}

/* ---- MasterOps ---- */

static void state_save(LocalMaster *m);

static int lm_start(Master *base, const char *framework_id)
{
        LocalMaster *m = LM(base);
        char uuid[40], *fid;
        PacerError err;

        if (framework_id && *framework_id) {
                if (local_id_check("framework ID", framework_id, &err) < 0) {
                        log_error("local master: %s", err.msg);
                        return -EINVAL;
                }
                fid = strdup(framework_id);
        } else {
                uuid_string(uuid);
                fid = NULL;
                if (asprintf(&fid, "%s-0000", uuid) < 0)
                        fid = NULL;
        }
        if (!fid)
                return -ENOMEM;
        free(m->framework_id);
        m->framework_id = fid;
        /* a (re)subscription voids every outstanding offer */
        offers_clear(m);
        m->subscribed = false;
        m->suppressed = false;
        m->shutting_down = false;
        queue_raw(m, true, fid, strlen(fid));
        state_save(m);
        return 0;
}

static void launch_task(LocalMaster *m, LocalPool *offered, TaskInfo *ti)
{
        _cleanup_(local_usage_done) LocalUsage tu = { 0 }, eu = { 0 }, both = { 0 };
        _cleanup_(buf_done) Buf tb = BUF_INIT(MESOS_MESSAGE_MAX);
        const char *task_id = ti->task_id && ti->task_id->value ? ti->task_id->value : "";
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__FrameworkID *saved_fid;
        PacerError err = { "" };
        LocalExecutor *e = NULL;
        LocalTask *t;
        int r;

        r = local_task_check(ti, m->framework_id, m->agent_id, &err);
        if (r >= 0 && hashmap_get(&m->tasks, task_id))
                r = pacer_error_set(&err, EEXIST, "Task has duplicate ID: %.128s", task_id);
        if (r >= 0) {
                e = hashmap_get(&m->executors, ti->executor->executor_id->value);
                if (e && e->state == EXEC_TERMINATING)
                        r = pacer_error_set(&err, EBUSY, "Executor %.128s is shutting down", e->id);
        }
        /* every task of an executor must carry the same ExecutorInfo */
        if (r >= 0 && e) {
                _cleanup_(buf_done) Buf eb = BUF_INIT(MESOS_MESSAGE_MAX);
                ExecutorInfo copy = *ti->executor;
                fid.value = m->framework_id;
                copy.framework_id = &fid;
                if (mesos_pack(&copy.base, &eb) < 0 || eb.len != e->info_len ||
                    memcmp(eb.data, e->info, eb.len) != 0)
                        r = pacer_error_set(&err, EINVAL,
                                            "ExecutorInfo of executor %.128s differs from the running one's",
                                            e->id);
        }
        if (r >= 0)
                r = local_usage_from_resources(ti->resources, ti->n_resources, &tu, &err);
        if (r >= 0 && !e)
                r = local_usage_from_resources(ti->executor->resources, ti->executor->n_resources, &eu,
                                               &err);
        if (r >= 0 && (r = local_usage_add(&both, &tu)) >= 0 && (r = local_usage_add(&both, &eu)) >= 0) {
                r = local_pool_take(offered, &both, &err);
                if (r < 0)
                        pacer_error_prefix(&err, "Task uses more resources than offered");
        }
        if (r < 0) {
                log_warn_s(task_id, "TASK_ERROR: %s", err.msg);
                master_update(m, task_id, TASK_STATE(TASK_ERROR),
                              MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID, err.msg);
                return;
        }
        /* the LAUNCH carries the TaskInfo with the framework filled into its ExecutorInfo */
        saved_fid = ti->executor->framework_id;
        fid.value = m->framework_id;
        ti->executor->framework_id = &fid;
        r = mesos_pack(&ti->base, &tb);
        ti->executor->framework_id = saved_fid;
        t = calloc(1, sizeof(*t));
        if (r < 0 || !t || !(t->id = strdup(task_id)) ||
            !(t->executor_id = strdup(ti->executor->executor_id->value)) ||
            !(t->info = malloc(tb.len ? tb.len : 1)) || hashmap_put(&m->tasks, t->id, t, NULL) < 0) {
                if (t) {
                        t->m = m;
                        task_free(t);
                }
                master_update(m, task_id, TASK_STATE(TASK_ERROR),
                              MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID,
                              r < 0 ? "TaskInfo is too large" : "out of memory");
                return;
        }
        t->m = m;
        memcpy(t->info, tb.data, tb.len);
        t->info_len = tb.len;
        t->state = TASK_STATE(TASK_STAGING);
        t->retry_ns = UPDATE_RETRY_INITIAL_NS;
        ev_timer_init(&t->retry_timer, on_retry, 0., 0.);
        t->retry_timer.data = t;
        if (local_pool_take(&m->pool, &tu, &err) < 0)
                log_warn_s(task_id, "resource accounting is off: %s", err.msg);
        t->usage = tu;
        tu = (LocalUsage){ 0 };
        t->usage_held = true;

        if (!e) {
                if (local_pool_take(&m->pool, &eu, &err) < 0)
                        log_warn_s(task_id, "resource accounting is off: %s", err.msg);
                r = exec_launch(m, ti->executor, &eu, &e, &err);
                if (r < 0) {
                        local_pool_release(&m->pool, &eu);
                        if (!*err.msg)
                                snprintf(err.msg, sizeof(err.msg), "cannot start the executor: %s",
                                         strerror(-r));
                        log_error_s(task_id, "%s", err.msg);
                        agent_update(t, TASK_STATE(TASK_FAILED),
                                     MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED,
                                     err.msg);
                        return;
                }
        }
        t->executor = e;
        LocalTask **tail = &e->tasks;
        while (*tail)
                tail = &(*tail)->exec_next;
        *tail = t;
        log_info_s(task_id, "launching on executor %s", e->id);
        if (e->state == EXEC_RUNNING && e->stream)
                (void)task_deliver(t);
}

static int lm_accept(Master *base, const char *offer_id, TaskInfo *const *tasks, size_t n, double refuse)
{
        LocalMaster *m = LM(base);
        _cleanup_(local_usage_done) LocalUsage rest = { 0 };
        _cleanup_free_ LocalPool *offered = NULL;
        LocalOffer *o;
        char msg[160];

        if (!m->subscribed)
                return -ENOTCONN;
        o = offer_take(m, offer_id);
        if (!o) {
                snprintf(msg, sizeof(msg),
                         "Task launched with invalid offers: Offer %.64s is no longer valid",
                         strna(offer_id));
                for (size_t i = 0; i < n; i++)
                        master_update(m, tasks[i]->task_id ? tasks[i]->task_id->value : "",
                                      TASK_STATE(TASK_DROPPED),
                                      MESOS__V1__TASK_STATUS__REASON__REASON_INVALID_OFFERS, msg);
                return 0;
        }
        offered = malloc(sizeof(*offered));
        if (!offered) {
                offer_free(o);
                return -ENOMEM;
        }
        local_pool_init_usage(offered, &o->usage);
        for (size_t i = 0; i < n; i++)
                launch_task(m, offered, tasks[i]);
        /* what the tasks left of the offer is declined, with the filter */
        if (local_pool_free(offered, &rest) >= 0)
                set_filter(m, &rest, refuse);
        offer_free(o);
        state_save(m);
        return 0;
}

static int lm_decline(Master *base, char *const *ids, size_t n, double refuse)
{
        LocalMaster *m = LM(base);
        _cleanup_(local_usage_done) LocalUsage declined = { 0 };

        if (!m->subscribed)
                return -ENOTCONN;
        for (size_t i = 0; i < n; i++) {
                LocalOffer *o = offer_take(m, ids[i]);
                if (!o)
                        continue;
                (void)local_usage_add(&declined, &o->usage);
                offer_free(o);
        }
        set_filter(m, &declined, refuse);
        return 0;
}

static void reconcile_known(LocalMaster *m, const LocalTask *t)
{
        TaskStatus *latest =
                t->latest ? mesos__v1__task_status__unpack(NULL, t->latest_len, t->latest) : NULL;
        TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;

        tid.value = t->id;
        aid.value = m->agent_id;
        eid.value = t->executor_id;
        st.task_id = &tid;
        st.agent_id = &aid;
        st.executor_id = &eid;
        st.state = t->state;
        st.has_source = true;
        st.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_MASTER;
        st.has_reason = true;
        st.reason = MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION;
        st.message = "Reconciliation: Latest task state";
        st.has_timestamp = true;
        st.timestamp = mesos_now();
        if (latest) {
                /* what the master keeps of the latest status: not its data, labels or uuid */
                st.has_healthy = latest->has_healthy;
                st.healthy = latest->healthy;
        }
        queue_update(m, &st);
        if (latest)
                mesos__v1__task_status__free_unpacked(latest, NULL);
}

static void reconcile_unknown(LocalMaster *m, const char *task_id, const char *agent_id)
{
        bool left_over = task_id && hashmap_get(&m->gone, task_id);
        bool ours = agent_id && streq(agent_id, m->agent_id);

        /* PARTITION_AWARE answers: this agent does not have it (GONE), or nobody knows (UNKNOWN) */
        if (left_over)
                master_update(m, task_id, TASK_STATE(TASK_GONE),
                              MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION,
                              "Reconciliation: the task's executor was left over from an earlier run of the "
                              "scheduler and was killed when local mode started");
        else if (ours)
                master_update(m, task_id, TASK_STATE(TASK_GONE),
                              MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION,
                              "Reconciliation: Task is unknown to the agent");
        else
                master_update(m, task_id, TASK_STATE(TASK_UNKNOWN),
                              MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION,
                              "Reconciliation: Task is unknown");
}

static int lm_reconcile(Master *base, char *const *task_ids, char *const *agent_ids, size_t n)
{
        LocalMaster *m = LM(base);

        if (!m->subscribed)
                return -ENOTCONN;
        if (n == 0) {
                const char *k;
                void *v;
                size_t it = 0;
                while (hashmap_next(&m->tasks, &it, &k, &v))
                        reconcile_known(m, v);
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                LocalTask *t = task_ids[i] ? hashmap_get(&m->tasks, task_ids[i]) : NULL;
                if (t)
                        reconcile_known(m, t);
                else
                        reconcile_unknown(m, task_ids[i], agent_ids ? agent_ids[i] : NULL);
        }
        return 0;
}

static int lm_kill(Master *base, const char *task_id, const char *agent_id, int64_t grace_ns)
{
        LocalMaster *m = LM(base);
        Mesos__V1__Executor__Event ev = MESOS__V1__EXECUTOR__EVENT__INIT;
        Mesos__V1__Executor__Event__Kill k = MESOS__V1__EXECUTOR__EVENT__KILL__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__KillPolicy kp = MESOS__V1__KILL_POLICY__INIT;
        Mesos__V1__DurationInfo d = MESOS__V1__DURATION_INFO__INIT;
        LocalTask *t;
        LocalExecutor *e;

        if (!m->subscribed)
                return -ENOTCONN;
        t = task_id ? hashmap_get(&m->tasks, task_id) : NULL;
        if (!t) {
                /* as the master: an unknown task is answered by reconciliation */
                reconcile_unknown(m, task_id, agent_id);
                return 0;
        }
        e = t->executor;
        if (t->terminal || !e)
                return 0;
        if (!t->delivered) {
                free(t->info);
                t->info = NULL;
                agent_update(t, TASK_STATE(TASK_KILLED),
                             MESOS__V1__TASK_STATUS__REASON__REASON_TASK_KILLED_DURING_LAUNCH,
                             "Killed before delivery to the executor");
                bool queued = false;
                for (LocalTask *o = e->tasks; o; o = o->exec_next)
                        if (!o->terminal)
                                queued = true;
                if (!e->had_delivery && !queued)
                        exec_shutdown(e, "all its tasks were killed before it subscribed");
                return 0;
        }
        tid.value = t->id;
        k.task_id = &tid;
        if (grace_ns >= 0) {
                d.nanoseconds = grace_ns;
                kp.grace_period = &d;
                k.kill_policy = &kp;
        }
        ev.has_type = true;
        ev.type = MESOS__V1__EXECUTOR__EVENT__TYPE__KILL;
        ev.kill = &k;
        log_info_s(t->id, "KILL to executor %s", e->id);
        if (exec_send(e, &ev) < 0)
                log_warn_s(t->id,
                           "executor %s is not connected: the kill is lost (as with an agent); retry it",
                           e->id);
        return 0;
}

static int lm_acknowledge(Master *base, const char *agent_id, const char *task_id, const uint8_t *uuid,
                          size_t uuid_len)
{
        LocalMaster *m = LM(base);
        LocalTask *t;
        PendingUpdate *u;

        if (!m->subscribed)
                return -ENOTCONN;
        if (!agent_id || !streq(agent_id, m->agent_id) || !task_id || uuid_len != MESOS_UUID_SIZE)
                return -EINVAL;
        t = hashmap_get(&m->tasks, task_id);
        u = t ? t->head : NULL;
        if (!u || !t->head_sent || memcmp(u->uuid, uuid, MESOS_UUID_SIZE) != 0) {
                log_debug_s(task_id, "acknowledgement of an update that is not waiting for one: ignored");
                return -ENOENT;
        }
        t->head = u->next;
        if (!t->head)
                t->tail = NULL;
        t->n_pending--;
        free(u);
        t->head_sent = false;
        t->retry_ns = UPDATE_RETRY_INITIAL_NS;
        ev_timer_stop(m->loop, &t->retry_timer);
        if (t->head)
                task_send_head(t);
        else if (t->terminal)
                task_forget(t);
        return 0;
}

static int lm_revive(Master *base)
{
        LocalMaster *m = LM(base);

        if (!m->subscribed)
                return -ENOTCONN;
        m->suppressed = false;
        local_usage_done(&m->filter);
        m->filter_until = 0;
        allocate_soon(m);
        return 0;
}

static int lm_suppress(Master *base)
{
        LocalMaster *m = LM(base);

        if (!m->subscribed)
                return -ENOTCONN;
        m->suppressed = true;
        return 0;
}

static bool lm_subscribed(const Master *base)
{
        return LM(base)->subscribed;
}

static const char *lm_leader(const Master *base)
{
        return "local";
}

/* ---- the state file: what a restart must clean up ---- */

static void state_save(LocalMaster *m)
{
        json_auto_t *root = NULL;
        _cleanup_free_ char *tmp = NULL, *text = NULL;
        json_t *arr;
        const char *k;
        void *v;
        size_t it = 0;
        int r = 0;

        if (!m->state_ready)
                return;
        root = json_pack("{s:i, s:s, s:s?, s:[]}", "version", STATE_VERSION, "boot_id", m->boot_id,
                         "framework_id", m->framework_id, "executors");
        if (!root)
                goto fail;
        arr = json_object_get(root, "executors");
        while (hashmap_next(&m->executors, &it, &k, &v)) {
                LocalExecutor *e = v;
                json_t *tasks = json_array();
                if (e->pid <= 0 || !tasks) {
                        json_decref(tasks);
                        continue;
                }
                for (LocalTask *t = e->tasks; t; t = t->exec_next)
                        r |= json_array_append_new(tasks, json_string(t->id));
                r |= json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:s, s:s, s:o}", "executor_id",
                                                          e->id, "pid", (json_int_t)e->pid, "start_time",
                                                          (json_int_t)e->start_time, "argv0", e->argv0,
                                                          "sandbox", e->sandbox, "tasks", tasks));
        }
        text = json_dumps(root, JSON_COMPACT);
        if (r < 0 || !text || asprintf(&tmp, "%s.tmp", m->state_path) < 0)
                goto fail;
        {
                _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                size_t len = strlen(text);
                if (fd < 0 || write(fd, text, len) != (ssize_t)len)
                        goto fail;
        }
        if (rename(tmp, m->state_path) < 0)
                goto fail;
        return;
fail:
        log_warn_errno(errno,
                       "local master: cannot write %s (%m): executors could be left behind by a crash",
                       m->state_path);
}

static bool cmdline_matches(pid_t pid, const char *argv0)
{
        char path[64], buf[PROC_FILE_MAX];

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
        /* argv[0] is the first NUL-terminated string; a longer cmdline only fails to fit */
        ssize_t n = proc_read_file(path, buf, sizeof(buf));
        if (n < 0 && n != -EFBIG)
                return false;
        buf[sizeof(buf) - 1] = 0;
        return streq(buf, argv0);
}

/* Kills what a previous run left: the executor if the pid still is it, and its session. */
static bool kill_leftover(LocalMaster *m, const char *eid, pid_t pid, unsigned long long start_time,
                          const char *argv0)
{
        ProcStat st;
        unsigned n;

        if (pid <= 1)
                return false;
        if (proc_stat_read(pid, &st) < 0) {
                /* gone; a session outlives its leader only while members remain, so its id is still
                 * ours if any process has it */
                n = sweep_session(pid);
                if (n > 0)
                        log_warn_s(eid, "killed %u processes left over from an earlier run", n);
                return false;
        }
        if (st.start_time != start_time || !cmdline_matches(pid, argv0)) {
                log_info_s(eid, "pid %d is another process now: the executor of an earlier run is gone",
                           (int)pid);
                return false;
        }
        log_warn_s(eid, "killing the executor (pid %d) left over from an earlier run and its tasks",
                   (int)pid);
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
        sweep_session(pid);
        return true;
}

static void state_load_and_clean(LocalMaster *m)
{
        json_auto_t *root = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ pid_t *killed = NULL;
        JsonErrors errs = { 0 };
        PacerError err = { "" };
        json_t *arr = NULL, *x;
        const char *boot = NULL;
        size_t i, n_killed = 0;
        ssize_t len;

        text = malloc(LOCAL_STATE_FILE_MAX + 1);
        if (!text)
                return;
        len = proc_read_file(m->state_path, text, LOCAL_STATE_FILE_MAX + 1);
        if (len == -ENOENT)
                return;
        if (len < 0) {
                log_warn_errno((int)-len,
                               "local master: cannot read %s (%m): executors of an earlier run are not "
                               "cleaned up",
                               m->state_path);
                return;
        }
        if (json_parse(text, (size_t)len, &(JsonLimits){ .body_max = LOCAL_STATE_FILE_MAX, .depth_max = 8 },
                       &root, &err) < 0) {
                log_warn("local master: %s: %s: executors of an earlier run are not cleaned up",
                         m->state_path, err.msg);
                return;
        }
        json_get_string(root, NULL, "boot_id", JSON_GET_REQUIRED, ID_TEXT_MAX, &boot, &errs);
        json_get_array(root, NULL, "executors", JSON_GET_REQUIRED, 0, &arr, &errs);
        if (json_errors_count(&errs) > 0) {
                json_errors_to_error(&errs, &err);
                log_warn("local master: %s: %s: executors of an earlier run are not cleaned up",
                         m->state_path, err.msg);
                return;
        }
        if (!streq(boot, m->boot_id))
                return; /* the machine rebooted: nothing of that run survived */
        killed = calloc(json_array_size(arr) + 1, sizeof(*killed));
        if (!killed)
                return;
        json_array_foreach(arr, i, x)
        {
                JsonPath at = JSON_PATH_INDEX(NULL, i);
                const char *eid = NULL, *argv0 = NULL;
                int64_t pid = 0, start = 0;
                json_t *tasks = NULL, *tj;
                size_t k;
                JsonErrors e1 = { 0 };

                json_get_string(x, &at, "executor_id", JSON_GET_REQUIRED, LOCAL_ID_MAX, &eid, &e1);
                json_get_string(x, &at, "argv0", JSON_GET_REQUIRED, PATH_MAX, &argv0, &e1);
                json_get_int(x, &at, "pid", JSON_GET_REQUIRED, 2, INT32_MAX, &pid, &e1);
                json_get_int(x, &at, "start_time", JSON_GET_REQUIRED, 0, INT64_MAX, &start, &e1);
                json_get_array(x, &at, "tasks", 0, 0, &tasks, &e1);
                if (json_errors_count(&e1) > 0) {
                        json_errors_to_error(&e1, &err);
                        log_warn("local master: %s: %s: skipped", m->state_path, err.msg);
                        continue;
                }
                if (kill_leftover(m, eid, (pid_t)pid, (unsigned long long)start, argv0))
                        killed[n_killed++] = (pid_t)pid;
                json_array_foreach(tasks, k, tj)
                {
                        char *id = json_is_string(tj) ? strdup(json_string_value(tj)) : NULL;
                        if (id && !hashmap_get(&m->gone, id) && hashmap_put(&m->gone, id, id, NULL) >= 0)
                                continue;
                        free(id);
                }
        }
        wait_gone(killed, n_killed, KILL_WAIT_NS);
        if (hashmap_count(&m->gone) > 0)
                log_warn(
                        "local master: %zu tasks of an earlier run are gone; reconciliation reports them as "
                        "TASK_GONE",
                        hashmap_count(&m->gone));
}

/* ---- lifetime ---- */

static void reap_now(LocalExecutor *e)
{
        _cleanup_close_ int fd = -1;
        struct pollfd pfd;

        if (e->pid <= 0)
                return;
        fd = (int)pidfd_open(e->pid, 0);
        if (fd >= 0) {
                pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
                (void)poll(&pfd, 1, (int)(KILL_WAIT_NS / NSEC_PER_MSEC));
        }
        pid_t w = waitpid(e->pid, NULL, WNOHANG);
        if (w == e->pid || (w < 0 && errno == ECHILD))
                e->pid = 0;
}

static Master *lm_free(Master *base)
{
        LocalMaster *m = LM(base);
        const char *k;
        void *v;
        size_t it = 0;

        if (!m)
                return NULL;
        ev_timer_stop(m->loop, &m->deliver_timer);
        ev_timer_stop(m->loop, &m->offer_timer);
        ev_timer_stop(m->loop, &m->log_timer);
        /* no callback of the server may find a freed executor */
        while (hashmap_next(&m->executors, &it, &k, &v)) {
                LocalExecutor *e = v;
                e->stream = httpd_stream_close(e->stream);
        }
        m->httpd = httpd_free(m->httpd);
        /* kill and reap what is left; what cannot be reaped stays in the state file for the next start */
        Hashmap left = HASHMAP_INIT;
        while (hashmap_count(&m->executors) > 0) {
                LocalExecutor *e;
                it = 0;
                hashmap_next(&m->executors, &it, &k, &v);
                e = v;
                hashmap_remove(&m->executors, k);
                ev_child_stop(m->loop, &e->child);
                if (e->pid > 0) {
                        exec_force_kill(e, "the scheduler is stopping");
                        reap_now(e);
                }
                if (e->pid > 0 && hashmap_put(&left, e->id, e, NULL) >= 0)
                        continue;
                exec_free(e);
        }
        hashmap_done(&m->executors);
        m->executors = left;
        state_save(m);
        while (hashmap_count(&m->executors) > 0) {
                it = 0;
                hashmap_next(&m->executors, &it, &k, &v);
                hashmap_remove(&m->executors, k);
                exec_free(v);
        }
        hashmap_done(&m->executors);
        it = 0;
        while (hashmap_next(&m->tasks, &it, &k, &v))
                task_free(v);
        hashmap_done(&m->tasks);
        it = 0;
        while (hashmap_next(&m->gone, &it, &k, &v))
                free(v);
        hashmap_done(&m->gone);
        offers_clear(m);
        local_usage_done(&m->filter);
        while (m->q_head) {
                QueuedEvent *q = m->q_head;
                m->q_head = q->next;
                free(q);
        }
        free(m->framework_id);
        free(m->local_dir);
        free(m->state_path);
        free(m->hostname);
        free(m->agent_id);
        free(m->framework_name);
        free(m->user);
        free(m);
        return NULL;
}

static const MasterOps local_ops = {
        .name = "local",
        .start = lm_start,
        .accept = lm_accept,
        .decline = lm_decline,
        .kill = lm_kill,
        .acknowledge = lm_acknowledge,
        .reconcile = lm_reconcile,
        .revive = lm_revive,
        .suppress = lm_suppress,
        .subscribed = lm_subscribed,
        .leader = lm_leader,
        .free = lm_free,
};

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
        *(bool *)w->data = true;
}

/* Runs the loop until every executor was reaped or timeout_ns passed. */
static bool wait_executors(LocalMaster *m, int64_t timeout_ns)
{
        bool expired = false;
        ev_timer deadline;

        ev_now_update(m->loop);
        ev_timer_init(&deadline, on_deadline, ns_to_s(MAX(timeout_ns, 0)), 0.);
        deadline.data = &expired;
        ev_timer_start(m->loop, &deadline);
        while (hashmap_count(&m->executors) > 0 && !expired)
                ev_run(m->loop, EVRUN_ONCE);
        ev_timer_stop(m->loop, &deadline);
        return hashmap_count(&m->executors) == 0;
}

int master_local_shutdown(Master *base, int64_t timeout_ns)
{
        LocalMaster *m = LM(base);
        const char *k;
        void *v;
        size_t it = 0;
        int r = 0;

        if (!base || base->ops != &local_ops)
                return -EINVAL;
        m->shutting_down = true;
        ev_timer_stop(m->loop, &m->offer_timer);
        if (hashmap_count(&m->executors) == 0)
                return 0;
        log_info("local master: stopping %zu executors (up to %.1fs)", hashmap_count(&m->executors),
                 ns_to_s(timeout_ns));
        while (hashmap_next(&m->executors, &it, &k, &v))
                exec_shutdown(v, "the scheduler is stopping");
        if (!wait_executors(m, timeout_ns)) {
                r = -ETIMEDOUT;
                it = 0;
                while (hashmap_next(&m->executors, &it, &k, &v))
                        exec_force_kill(v, "it did not stop in time");
                if (!wait_executors(m, KILL_WAIT_NS))
                        log_error("local master: %zu executors could not be reaped",
                                  hashmap_count(&m->executors));
        }
        return r;
}

uint16_t master_local_port(const Master *base)
{
        if (!base || base->ops != &local_ops)
                return 0;
        return httpd_port(LM(base)->httpd);
}

static int default_resources(LocalMaster *m, const LocalOptions *o, double *cpus, double *mem, double *disk,
                             PacerError *err)
{
        *cpus = o->cpus;
        *mem = o->mem;
        *disk = o->disk;
        if (*cpus < 0 || *mem < 0 || *disk < 0 || !isfinite(*cpus) || !isfinite(*mem) || !isfinite(*disk) ||
            *cpus > LOCAL_SCALAR_MAX || *mem > LOCAL_SCALAR_MAX || *disk > LOCAL_SCALAR_MAX)
                return pacer_error_set(err, EINVAL, "local resources must be finite and not negative");
        if (*cpus == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                *cpus = n > 0 ? (double)n : 1.0;
        }
        if (*mem == 0) {
                char buf[PROC_FILE_MAX * 2];
                double total;
                if (proc_read_file("/proc/meminfo", buf, sizeof(buf)) < 0)
                        return pacer_error_set(err, EIO,
                                               "cannot read /proc/meminfo: give the memory to offer");
                if (local_meminfo_total_mb(buf, &total) < 0)
                        return pacer_error_set(err, EIO,
                                               "no MemTotal in /proc/meminfo: give the memory to offer");
                *mem = floor(total * LOCAL_MEM_SHARE_DEFAULT);
        }
        if (*disk == 0) {
                struct statvfs sv;
                if (statvfs(m->local_dir, &sv) < 0)
                        return pacer_error_set(err, errno, "cannot measure the free disk of %.200s: %m",
                                               m->local_dir);
                *disk = floor((double)sv.f_bavail * (double)sv.f_frsize / (1024.0 * 1024.0));
        }
        return 0;
}

int master_local_new(struct ev_loop *loop, HttpClient *http, const LocalOptions *o,
                     const MasterCallbacks *cb, void *userdata, Master **ret, PacerError *err)
{
        _cleanup_free_ char *abs_dir = NULL;
        LocalMaster *m;
        char host[256] = "", run[40];
        double cpus, mem, disk;
        uint32_t pb = o->port_begin ? o->port_begin : LOCAL_PORT_BEGIN_DEFAULT;
        uint32_t pe = o->port_end ? o->port_end : LOCAL_PORT_END_DEFAULT;
        struct passwd *pw;
        int r;

        if (!ev_is_default_loop(loop))
                return pacer_error_set(err, EINVAL,
                                       "local mode needs libev's default loop (it watches executor "
                                       "processes)");
        if (!o->data_dir || !*o->data_dir)
                return pacer_error_set(err, EINVAL, "local mode needs a data directory");
        if (pb == 0 || pe > 65535 || pb > pe)
                return pacer_error_set(
                        err, EINVAL, "local port range %u-%u: expected 1 <= begin <= end <= 65535", pb, pe);
        if (o->offer_interval_s < 0 || !isfinite(o->offer_interval_s))
                return pacer_error_set(err, EINVAL, "the offer interval must not be negative");
        r = mkdir_p(o->data_dir, 0755);
        if (r < 0)
                return pacer_error_set(err, -r, "cannot create %.200s: %s", o->data_dir, strerror(-r));
        abs_dir = realpath(o->data_dir, NULL);
        if (!abs_dir)
                return pacer_error_set(err, errno, "cannot resolve %.200s: %m", o->data_dir);

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->base.ops = &local_ops;
        m->loop = loop;
        m->cb = *cb;
        m->userdata = userdata;
        m->offer_interval_s = o->offer_interval_s > 0 ? o->offer_interval_s : LOCAL_OFFER_INTERVAL_DEFAULT_S;
        m->grace_ns = o->executor_shutdown_grace_ns > 0 ? o->executor_shutdown_grace_ns
                                                        : LOCAL_SHUTDOWN_GRACE_DEFAULT_NS;
        m->checkpoint = o->checkpoint;
        ev_timer_init(&m->deliver_timer, on_deliver, 0., 0.);
        m->deliver_timer.data = m;
        ev_timer_init(&m->offer_timer, on_offer_timer, 0., m->offer_interval_s);
        m->offer_timer.data = m;
        ev_timer_init(&m->log_timer, on_log_timer, EXECUTOR_LOG_CHECK_S, EXECUTOR_LOG_CHECK_S);
        m->log_timer.data = m;
        ev_timer_start(loop, &m->log_timer);
        uuid_string(run);
        snprintf(m->run_id, sizeof(m->run_id), "%s", run);
        if (proc_read_file("/proc/sys/kernel/random/boot_id", m->boot_id, sizeof(m->boot_id)) > 0)
                m->boot_id[strcspn(m->boot_id, "\n")] = 0;
        if (!o->hostname && gethostname(host, sizeof(host) - 1) < 0)
                snprintf(host, sizeof(host), "localhost");
        pw = getpwuid(geteuid());
        m->hostname = strdup(o->hostname ? o->hostname : host);
        m->framework_name = strdup(o->framework_name ? o->framework_name : FRAMEWORK_NAME_DEFAULT);
        m->user = strdup(o->user ? o->user : pw ? pw->pw_name : "root");
        if (o->agent_id)
                m->agent_id = strdup(o->agent_id);
        else if (m->hostname && asprintf(&m->agent_id, "local-%s", m->hostname) < 0)
                m->agent_id = NULL;
        if (asprintf(&m->local_dir, "%s/local", abs_dir) < 0)
                m->local_dir = NULL;
        if (!m->hostname || !m->framework_name || !m->user || !m->agent_id || !m->local_dir ||
            asprintf(&m->state_path, "%s/" STATE_FILE_NAME, m->local_dir) < 0) {
                m->state_path = NULL;
                lm_free(&m->base);
                return -ENOMEM;
        }
        if ((r = local_id_check("agent ID", m->agent_id, err)) < 0) {
                lm_free(&m->base);
                return r;
        }
        r = mkdir_p(m->local_dir, 0755);
        if (r < 0) {
                pacer_error_set(err, -r, "cannot create %.200s: %s", m->local_dir, strerror(-r));
                lm_free(&m->base);
                return r;
        }
        r = default_resources(m, o, &cpus, &mem, &disk, err);
        if (r < 0) {
                lm_free(&m->base);
                return r;
        }
        local_pool_init(&m->pool, cpus, mem, disk, pb, pe);

        HttpdOptions ho = {
                .listen = "127.0.0.1:0",
                .body_max = LOCAL_CALL_MAX,
                .stream_buffer_max = EXECUTOR_STREAM_BUFFER_MAX,
                .routes = executor_routes,
                .n_routes = ELEMENTSOF(executor_routes),
                .userdata = m,
        };
        r = httpd_new(loop, &ho, &m->httpd, err);
        if (r < 0) {
                pacer_error_prefix(err, "cannot serve the executor API");
                lm_free(&m->base);
                return r;
        }
        snprintf(m->endpoint, sizeof(m->endpoint), "127.0.0.1:%u", httpd_port(m->httpd));

        state_load_and_clean(m);
        m->state_ready = true;
        state_save(m);
        log_info("local master: agent %s on %s offers cpus %.2f, mem %.0f MB, disk %.0f MB, ports %u-%u; "
                 "executor API at %s, sandboxes in %s/sandboxes",
                 m->agent_id, m->hostname, cpus, mem, disk, pb, pe, m->endpoint, m->local_dir);
        *ret = &m->base;
        return 0;
}
