/* SPDX-License-Identifier: Apache-2.0 */
#include "executor.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "agent_link.h"
#include "check.h"
#include "command.h"
#include "consul.h"
#include "duration.h"
#include "http_client.h"
#include "mesos.h"
#include "registrar.h"
#include "sandbox.h"
#include "status_record.h"
#include "task.h"

extern char **environ;

/* Part of the shutdown grace period kept back for the terminal update and exit. */
#define SHUTDOWN_RESERVE_NS  (500 * NSEC_PER_MSEC)
#define SHUTDOWN_RESERVE_PCT 10
#define MESSAGE_MAX          512
#define TASK_PORTS_MAX       64
/* Polling for the last processes of a group after its leader exited during a kill. */
#define GROUP_POLL_S     0.02
#define SWEEP_INTERVAL_S 0.05 /* after the task: what escaped its group is looked for this often */
#define SWEEPS_EMPTY     5    /* ... until this many sweeps in a row find nothing */
#define EXIT_SWEEPS_MAX  100  /* at exit, 10 ms apart */

typedef enum Phase {
        PHASE_STARTING, /* forked; waiting to learn whether exec succeeded */
        PHASE_RUNNING,  /* the command runs */
        PHASE_STOPPING, /* deregister → drain → SIGTERM → grace → SIGKILL */
        PHASE_DONE,     /* terminal update sent; waiting for its acknowledgement */
} Phase;

typedef enum StopCause {
        STOP_KILL,       /* KILL event */
        STOP_SHUTDOWN,   /* SHUTDOWN event, SIGTERM/SIGINT to the executor */
        STOP_EXITED,     /* the task ended on its own */
        STOP_HEALTH,     /* a liveness check reached its failure limit */
        STOP_AGENT_LOST, /* no agent past the recovery timeout, or no checkpointing */
} StopCause;

typedef struct Task {
        char *id;
        TaskInfo *info; /* our own copy */
        Command cmd;
        SandboxPlan plan; /* outlives the command checks that borrow it */
        TaskProcess *proc;
        Phase phase;
        StopCause cause;
        char stop_why[MESSAGE_MAX];
        bool exited;
        int wstatus;
        int64_t kill_grace_ns;
        int64_t drain_ns;
        ev_timer kill_timer;
        ev_timer drain_timer;
        ev_timer group_timer; /* the leader is gone; waiting for the rest of its group */
        bool term_sent;

        CheckSpec *specs;
        size_t n_specs;
        Checker **checkers;
        bool gated;       /* some check gates readiness */
        Health readiness; /* aggregate of the gating checks */
        Health reported;  /* what the last update said (UNKNOWN: healthy unset) */
        bool running_sent;
        bool want_ready;     /* report healthy once Consul has us */
        bool want_unhealthy; /* report unhealthy once Consul marked the check critical */
        char unhealthy_why[CHECK_OUTPUT_MAX + 64];

        Registrar *reg;
        StatusRecord record;
} Task;

struct Executor {
        struct ev_loop *loop;
        const ExecutorConfig *cfg;
        HttpClient *http;
        ConsulClient *consul;
        AgentLink *link;
        Task *task;
        char *agent_hostname;
        bool task_killing_capable; /* the framework understands TASK_KILLING */
        bool shutting_down;
        bool exit_when_acked; /* no task: exit once every update is acknowledged */
        bool exiting;
        int exit_code;
        ev_tstamp stop_deadline; /* 0: none */
        ev_timer ack_timer;
        ev_timer sweep_timer; /* once the task is over: kill what escaped its group, until none is left */
        unsigned sweeps_empty;
        ev_idle prebuild; /* the task's seccomp filter, compiled while the agent answers SUBSCRIBE */
        ev_signal sigterm, sigint;
};

static void task_stop(Executor *e, StopCause cause, int64_t grace_ns, const char *why);

static double ns_to_ev(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}

static void executor_exit(Executor *e, int code)
{
        if (e->exiting)
                return;
        e->exiting = true;
        e->exit_code = code;
        ev_break(e->loop, EVBREAK_ALL);
}

/* Time left before the shutdown deadline (or `fallback` when there is none). */
static int64_t time_left_ns(Executor *e, int64_t fallback)
{
        if (e->stop_deadline <= 0)
                return fallback;
        double left = e->stop_deadline - ev_now(e->loop);
        return left > 0 ? (int64_t)(left * (double)NSEC_PER_SEC) : 0;
}

/* ---- the status record and updates ---- */

static void refresh_record(Task *t)
{
        StatusRecord *r = &t->record;

        r->healthy = t->gated ? t->readiness : HEALTH_UNKNOWN;
        r->registration = registrar_state(t->reg);
        r->registered = r->registration == REGISTRATION_REGISTERED;
        snprintf(r->service_id, sizeof(r->service_id), "%s", registrar_service_id(t->reg));
        r->registered_at_ms = registrar_registered_at_ms(t->reg);
        if (*registrar_last_error(t->reg) &&
            (r->registration == REGISTRATION_FAILED || r->registration == REGISTRATION_DEREGISTERING))
                snprintf(r->last_error, sizeof(r->last_error), "consul: %s", registrar_last_error(t->reg));
}

static void send_status(Executor *e, const char *task_id, TaskState state, Task *t, int reason, int healthy,
                        const char *fmt, ...) _printf_(7, 8);

/* Sends an update. reason < 0: none; healthy < 0: unset. The status record
 * rides along on every update: t's, or for a task this executor does not run
 * (a second task, a refused LAUNCH_GROUP) one saying nothing is registered,
 * with the message as its error. */
static void send_status(Executor *e, const char *task_id, TaskState state, Task *t, int reason, int healthy,
                        const char *fmt, ...)
{
        TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        uint8_t record[STATUS_RECORD_MAX];
        char message[MESSAGE_MAX] = "";
        size_t rlen;
        va_list ap;
        int r;

        if (fmt) {
                va_start(ap, fmt);
                vsnprintf(message, sizeof(message), fmt, ap);
                va_end(ap);
        }
        tid.value = (char *)task_id;
        st.task_id = &tid;
        st.state = state;
        if (*message)
                st.message = message;
        if (reason >= 0) {
                st.has_reason = true;
                st.reason = (Mesos__V1__TaskStatus__Reason)reason;
        }
        if (healthy >= 0) {
                st.has_healthy = true;
                st.healthy = healthy;
        }
        if (e->cfg->agent_id) {
                aid.value = e->cfg->agent_id;
                st.agent_id = &aid;
        }
        StatusRecord none;
        if (t)
                refresh_record(t);
        else {
                status_record_init(&none);
                none.registration = REGISTRATION_OFF;
                snprintf(none.last_error, sizeof(none.last_error), "%s", message);
        }
        if (status_record_encode(t ? &t->record : &none, record, sizeof(record), &rlen) >= 0) {
                st.has_data = true;
                st.data.data = record;
                st.data.len = rlen;
        }
        r = agent_link_send_status(e->link, &st);
        if (r < 0)
                log_warn_errno_s(task_id, r, "cannot send %s: %m", task_state_to_string(state));
        else
                log_info_s(task_id, "%s%s%s%s", task_state_to_string(state),
                           healthy >= 0 ? (healthy ? " healthy" : " unhealthy") : "", *message ? ": " : "",
                           message);
}

/* TASK_RUNNING carrying the health we last reported (or a new one). */
static void send_running(Executor *e, Task *t, Health health, int reason, const char *fmt, ...)
        _printf_(5, 6);
static void send_running(Executor *e, Task *t, Health health, int reason, const char *fmt, ...)
{
        char message[MESSAGE_MAX] = "";
        va_list ap;

        if (fmt) {
                va_start(ap, fmt);
                vsnprintf(message, sizeof(message), fmt, ap);
                va_end(ap);
        }
        t->running_sent = true;
        t->reported = health;
        send_status(e, t->id, TASK_STATE(TASK_RUNNING), t, reason,
                    health == HEALTH_UNKNOWN ? -1 : health == HEALTH_HEALTHY, "%s", message);
}

/* The task is ready (its gating checks pass, or it has none) and, when
 * registration is on, visible in Consul: say so. */
static void report_ready(Executor *e, Task *t)
{
        t->want_ready = false;
        if (t->phase != PHASE_RUNNING)
                return;
        if (!t->gated) {
                /* no check to vouch for health: running, and registered when Consul is on, is healthy */
                Health h = registrar_enabled(t->reg) ? HEALTH_HEALTHY : HEALTH_UNKNOWN;
                if (!t->running_sent || t->reported != h)
                        send_running(e, t, h, -1, t->running_sent ? "registered in Consul again" : NULL);
                return;
        }
        if (t->reported != HEALTH_HEALTHY)
                send_running(e, t, HEALTH_HEALTHY,
                             MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, NULL);
}

/* Ready by the checks: register (or mark the check passing) first, report after. */
static void task_ready(Executor *e, Task *t)
{
        RegistrationState rs = registrar_state(t->reg);

        if (rs == REGISTRATION_OFF) {
                report_ready(e, t);
                return;
        }
        t->want_ready = true;
        if (rs == REGISTRATION_REGISTERED) {
                if (registrar_set_health(t->reg, true, "passing") < 0)
                        report_ready(e, t);
                return;
        }
        registrar_register(t->reg);
}

/* ---- registrar callbacks ---- */

static void on_registrar_changed(void *userdata)
{
        Executor *e = userdata;
        Task *t = e->task;
        RegistrationState rs;

        if (!t || t->phase != PHASE_RUNNING)
                return;
        rs = registrar_state(t->reg);
        if (rs == REGISTRATION_REGISTERED) {
                t->record.last_error[0] = 0;
                if (t->want_ready)
                        report_ready(e, t);
                else if (t->running_sent)
                        send_running(e, t, t->reported, -1, "registered in Consul again");
                return;
        }
        if (rs == REGISTRATION_FAILED) {
                /* not ready, and why: the scheduler sees it in the record and the message. Healthy
                 * means registered: a task Consul lost (and that could not be registered again) is
                 * reported unhealthy, and healthy again once it is back in Consul */
                if (t->running_sent) {
                        bool was_healthy = t->reported == HEALTH_HEALTHY;
                        if (was_healthy)
                                t->want_ready = !t->gated || t->readiness == HEALTH_HEALTHY;
                        send_running(
                                e, t, was_healthy ? HEALTH_UNHEALTHY : t->reported,
                                was_healthy
                                        ? MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
                                        : -1,
                                "Consul registration failed: %s", registrar_last_error(t->reg));
                } else
                        send_status(e, t->id, TASK_STATE(TASK_STARTING), t, -1, -1,
                                    "waiting for Consul registration: %s", registrar_last_error(t->reg));
        }
}

static void on_health_pushed(bool passing, int result, void *userdata)
{
        Executor *e = userdata;
        Task *t = e->task;

        if (!t || t->phase != PHASE_RUNNING)
                return;
        if (!passing && t->want_unhealthy) {
                /* Consul already sends no traffic (or we tried and could not say so): now report */
                t->want_unhealthy = false;
                send_running(e, t, HEALTH_UNHEALTHY,
                             MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED,
                             "%s%s%s", t->unhealthy_why, result < 0 ? "; Consul check not updated: " : "",
                             result < 0 ? strerror(-result) : "");
                return;
        }
        if (passing && t->want_ready && registrar_state(t->reg) == REGISTRATION_REGISTERED)
                report_ready(e, t);
}

/* ---- checks ---- */

static Health aggregate_readiness(Task *t)
{
        bool unknown = false;

        for (size_t i = 0; i < t->n_specs; i++) {
                if (!check_role_gates_readiness(t->specs[i].role))
                        continue;
                Health h = checker_health(t->checkers[i]);
                if (h == HEALTH_UNHEALTHY)
                        return HEALTH_UNHEALTHY;
                if (h == HEALTH_UNKNOWN)
                        unknown = true;
        }
        return unknown ? HEALTH_UNKNOWN : HEALTH_HEALTHY;
}

static void on_check_result(Checker *c, const CheckResult *res, void *userdata)
{
        Executor *e = userdata;
        Task *t = e->task;
        const CheckSpec *spec = checker_spec(c);
        Health before, now;
        char why[MESSAGE_MAX];

        if (!t || t->phase != PHASE_RUNNING)
                return;
        t->record.check_latency_us = (uint32_t)MIN(res->latency_ns / 1000, (int64_t)UINT32_MAX);
        t->record.consecutive_failures = res->verdict.consecutive_failures;
        if (!res->passed)
                snprintf(t->record.last_error, sizeof(t->record.last_error), "check %s: %s", spec->name,
                         res->output);

        if (!res->passed && !res->verdict.ignored)
                log_warn_s(t->id, "check %s failed (%u in a row): %s", spec->name,
                           res->verdict.consecutive_failures, res->output);
        else if (res->verdict.changed)
                log_info_s(t->id, "check %s: %s", spec->name, res->passed ? "passing" : res->output);

        if (check_role_kills(spec->role) && res->verdict.limit_reached) {
                snprintf(why, sizeof(why), "health check %s failed %u consecutive times: %s", spec->name,
                         res->verdict.consecutive_failures, res->output);
                task_stop(e, STOP_HEALTH, t->kill_grace_ns, why);
                return;
        }
        if (!check_role_gates_readiness(spec->role))
                return;

        before = t->readiness;
        now = aggregate_readiness(t);
        t->readiness = now;
        if (res->passed) {
                /* a steady pass changes nothing: the registrar re-asserts it within the TTL */
                if (now == HEALTH_HEALTHY && (before != HEALTH_HEALTHY || t->want_ready))
                        task_ready(e, t);
                return;
        }
        if (res->verdict.ignored)
                return; /* a failure inside the grace period, before the first success */

        /* Mesos reports every counted failure; Pacer first makes Consul stop sending traffic */
        t->want_ready = false;
        snprintf(t->unhealthy_why, sizeof(t->unhealthy_why), "check %s failed: %s", spec->name, res->output);
        if (registrar_set_health(t->reg, false, res->output) == 0)
                t->want_unhealthy = true;
        else
                send_running(e, t, HEALTH_UNHEALTHY,
                             MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, "%s",
                             t->unhealthy_why);
}

static void stop_checks(Task *t)
{
        for (size_t i = 0; t->checkers && i < t->n_specs; i++)
                checker_stop(t->checkers[i]);
}

static int start_checks(Executor *e, Task *t)
{
        t->checkers = calloc(t->n_specs ? t->n_specs : 1, sizeof(Checker *));
        if (!t->checkers)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_specs; i++) {
                int r = checker_new(e->loop, e->http, &t->specs[i], on_check_result, e, &t->checkers[i]);
                if (r < 0)
                        return r;
                if (check_role_gates_readiness(t->specs[i].role))
                        t->gated = true;
        }
        for (size_t i = 0; i < t->n_specs; i++)
                checker_start(t->checkers[i]);
        return 0;
}

/* ---- task lifetime ---- */

static Task *task_free(Executor *e, Task *t)
{
        if (!t)
                return NULL;
        ev_timer_stop(e->loop, &t->kill_timer);
        ev_timer_stop(e->loop, &t->drain_timer);
        ev_timer_stop(e->loop, &t->group_timer);
        for (size_t i = 0; t->checkers && i < t->n_specs; i++)
                checker_free(t->checkers[i]);
        free(t->checkers);
        check_specs_free(t->specs, t->n_specs);
        registrar_free(t->reg);
        task_process_free(t->proc);
        command_done(&t->cmd);
        sandbox_plan_done(&t->plan);
        if (t->info)
                mesos__v1__task_info__free_unpacked(t->info, NULL);
        free(t->id);
        free(t);
        return NULL;
}

static void start_ack_wait(Executor *e)
{
        /* wait for the acknowledgement, but not forever, and not past the agent's shutdown grace */
        double wait = ns_to_ev(e->cfg->ack_wait_ns);
        if (e->stop_deadline > 0)
                wait = MIN(wait, MAX(0.1, e->stop_deadline - ev_now(e->loop)));
        ev_timer_set(&e->ack_timer, wait, 0.);
        ev_timer_start(e->loop, &e->ack_timer);
}

/* What escaped the task's process group (setsid) comes back to the executor, a
 * child subreaper, when its parent dies, and is killed then. Each kill can
 * orphan more: sweep until SWEEPS_EMPTY sweeps in a row find nothing. */
static void on_sweep_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Executor *e = w->data;
        size_t n = task_kill_orphans();

        if (n > 0)
                log_warn("killed %zu process%s that had left the task's process group", n,
                         n == 1 ? "" : "es");
        e->sweeps_empty = n > 0 ? 0 : e->sweeps_empty + 1;
        if (e->sweeps_empty >= SWEEPS_EMPTY)
                ev_timer_stop(loop, w);
}

/* The terminal update for the way the task ended. */
static void task_finish(Executor *e, Task *t)
{
        char how[128];

        ev_timer_stop(e->loop, &t->kill_timer);
        ev_timer_stop(e->loop, &t->group_timer);
        t->phase = PHASE_DONE;
        e->sweeps_empty = 0;
        on_sweep_timer(e->loop, &e->sweep_timer, 0);
        if (e->sweeps_empty < SWEEPS_EMPTY)
                ev_timer_again(e->loop, &e->sweep_timer);
        if (t->cause == STOP_AGENT_LOST) {
                log_error_s(t->id, "task stopped because %s; no agent to report to", t->stop_why);
                executor_exit(e, 1);
                return;
        }

        if (t->cause == STOP_EXITED) {
                task_describe_wstatus(t->wstatus, how, sizeof(how));
                if (WIFEXITED(t->wstatus) && WEXITSTATUS(t->wstatus) == 0)
                        send_status(e, t->id, TASK_STATE(TASK_FINISHED), t, -1, -1, "Command %s", how);
                else
                        send_status(e, t->id, TASK_STATE(TASK_FAILED), t, -1, -1, "Command %s", how);
        } else {
                if (t->exited)
                        task_describe_wstatus(t->wstatus, how, sizeof(how));
                else
                        snprintf(how, sizeof(how), "gone");
                if (t->cause == STOP_HEALTH)
                        send_status(e, t->id, TASK_STATE(TASK_KILLED), t,
                                    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED,
                                    0, "%s; command %s", t->stop_why, how);
                else
                        send_status(e, t->id, TASK_STATE(TASK_KILLED), t, -1, -1, "%s; command %s",
                                    t->stop_why, how);
        }
        start_ack_wait(e);
}

static void on_ack_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
        Executor *e = w->data;
        log_warn("the terminal update was not acknowledged in time: exiting anyway");
        executor_exit(e, 0);
}

/* Failed before the command ran: a terminal update with no process to stop. */
static void task_fail_launch(Executor *e, Task *t, TaskState state, int reason, const char *msg)
{
        t->phase = PHASE_STOPPING;
        t->cause = STOP_EXITED;
        send_status(e, t->id, state, t, reason, -1, "%s", msg);
        t->phase = PHASE_DONE;
        start_ack_wait(e);
}

static void on_kill_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Executor *e = w->data;
        Task *t = e->task;

        if (!t || !task_process_group_alive(t->proc))
                return;
        log_warn_s(t->id, "still running %.1fs after SIGTERM: sending SIGKILL", ns_to_ev(t->kill_grace_ns));
        task_process_signal(t->proc, SIGKILL);
}

/* The leader exited during the grace period; what it started may still be
 * shutting down cleanly. Poll the group until it is empty (the kill timer
 * SIGKILLs it at the end of the grace period). */
static void on_group_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Executor *e = w->data;
        Task *t = e->task;

        if (t && t->phase == PHASE_STOPPING && !task_process_group_alive(t->proc))
                task_finish(e, t);
}

/* Step 3 of stopping: SIGTERM now, SIGKILL when the grace period ends. */
static void task_terminate(Executor *e, Task *t)
{
        double grace = ns_to_ev(t->kill_grace_ns);

        if (!task_process_group_alive(t->proc)) {
                task_finish(e, t);
                return;
        }
        if (e->task_killing_capable && t->cause != STOP_AGENT_LOST)
                send_status(e, t->id, TASK_STATE(TASK_KILLING), t, -1, -1, "%s", t->stop_why);
        if (e->stop_deadline > 0)
                grace = MIN(grace, MAX(0., e->stop_deadline - ev_now(e->loop)));
        t->term_sent = true;
        log_info_s(t->id, "sending SIGTERM to the task's process group (grace period %.1fs)", grace);
        task_process_signal(t->proc, SIGTERM);
        ev_timer_set(&t->kill_timer, grace, 0.);
        ev_timer_start(e->loop, &t->kill_timer);
        if (!task_process_running(t->proc))
                ev_timer_start(e->loop, &t->group_timer); /* the leader is already gone */
}

static void on_drain_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Executor *e = w->data;
        if (e->task)
                task_terminate(e, e->task);
}

/* Step 2: let in-flight requests finish after the entry is gone. */
static void task_drain(Executor *e, Task *t, bool was_registered)
{
        int64_t drain = t->drain_ns;

        if (e->stop_deadline > 0) /* under SHUTDOWN: at most half of what is left */
                drain = MIN(drain, time_left_ns(e, 0) / 2);

        if (t->cause == STOP_EXITED || !was_registered || drain <= 0 || !task_process_group_alive(t->proc)) {
                task_terminate(e, t);
                return;
        }
        log_info_s(t->id, "draining for %.1fs before SIGTERM", ns_to_ev(drain));
        ev_timer_set(&t->drain_timer, ns_to_ev(drain), 0.);
        ev_timer_start(e->loop, &t->drain_timer);
}

static void on_deregistered(int result, void *userdata)
{
        Executor *e = userdata;
        Task *t = e->task;

        if (!t || t->phase != PHASE_STOPPING)
                return;
        if (result < 0)
                log_error_s(t->id, "stopping without a confirmed Consul deregistration: %s",
                            registrar_last_error(t->reg));
        task_drain(e, t, true);
}

/* Step 1 of stopping: leave the service registry, confirmed, before any signal. */
static void task_leave_registry(Executor *e, Task *t)
{
        RegistrationState rs = registrar_state(t->reg);

        stop_checks(t);
        if (rs == REGISTRATION_OFF) {
                task_drain(e, t, false);
                return;
        }
        int64_t deadline =
                MIN(e->cfg->consul_deregister_timeout_ns,
                    MAX(100 * NSEC_PER_MSEC, time_left_ns(e, e->cfg->consul_deregister_timeout_ns) / 2));
        registrar_deregister(t->reg, deadline);
}

static void task_stop(Executor *e, StopCause cause, int64_t grace_ns, const char *why)
{
        Task *t = e->task;

        if (!t)
                return;
        if (t->phase >= PHASE_STOPPING) {
                /* a second KILL may shorten a kill in progress, never lengthen it */
                if (grace_ns < t->kill_grace_ns && t->term_sent && ev_is_active(&t->kill_timer)) {
                        double left = ev_timer_remaining(e->loop, &t->kill_timer);
                        if (ns_to_ev(grace_ns) < left) {
                                ev_timer_stop(e->loop, &t->kill_timer);
                                ev_timer_set(&t->kill_timer, ns_to_ev(grace_ns), 0.);
                                ev_timer_start(e->loop, &t->kill_timer);
                        }
                }
                t->kill_grace_ns = MIN(t->kill_grace_ns, grace_ns);
                return;
        }
        t->phase = PHASE_STOPPING;
        t->cause = cause;
        t->kill_grace_ns = grace_ns;
        t->want_ready = t->want_unhealthy = false;
        snprintf(t->stop_why, sizeof(t->stop_why), "%s", why);
        log_info_s(t->id, "stopping the task: %s", why);
        task_leave_registry(e, t);
}

static void on_task_started(TaskProcess *p, int error, const char *what, void *userdata)
{
        Executor *e = userdata;
        Task *t = e->task;
        char msg[MESSAGE_MAX];
        int r;

        if (!t || t->proc != p)
                return;
        if (error < 0) {
                snprintf(msg, sizeof(msg), "cannot start the task: %s failed: %s", what, strerror(-error));
                log_error_s(t->id, "%s", msg);
                registrar_deregister(t->reg, e->cfg->consul_deregister_timeout_ns);
                task_fail_launch(e, t, TASK_STATE(TASK_FAILED),
                                 MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED, msg);
                return;
        }
        log_info_s(t->id, "task process %d started", (int)task_process_pid(p));
        if (t->phase != PHASE_STARTING)
                return;
        t->phase = PHASE_RUNNING;
        r = start_checks(e, t);
        if (r < 0) {
                task_stop(e, STOP_KILL, t->kill_grace_ns, "cannot start the health checks");
                return;
        }
        if (t->gated) {
                /* running, health unknown until the first check passes */
                send_running(e, t, HEALTH_UNKNOWN, -1, NULL);
                return;
        }
        /* nothing gates readiness: the process running is as ready as it gets */
        task_ready(e, t);
}

static void on_task_exited(TaskProcess *p, int wstatus, void *userdata)
{
        Executor *e = userdata;
        Task *t = e->task;
        char how[128];

        if (!t || t->proc != p)
                return;
        t->exited = true;
        t->wstatus = wstatus;
        log_info_s(t->id, "task process %s", task_describe_wstatus(wstatus, how, sizeof(how)));
        if (t->phase < PHASE_STOPPING) {
                /* what the task left running is not the task anymore */
                task_process_signal(t->proc, SIGKILL);
                task_stop(e, STOP_EXITED, 0, how);
                return;
        }
        if (t->phase != PHASE_STOPPING)
                return;
        if (ev_is_active(&t->drain_timer)) {
                ev_timer_stop(e->loop, &t->drain_timer);
                task_process_signal(t->proc, SIGKILL);
                task_finish(e, t);
        } else if (t->term_sent) {
                if (task_process_group_alive(t->proc))
                        ev_timer_start(e->loop, &t->group_timer);
                else
                        task_finish(e, t);
        }
        /* else deregistration is in progress: it continues and then finds the process gone */
}

static int64_t kill_policy_grace(const Mesos__V1__KillPolicy *kp, int64_t fallback)
{
        if (kp && kp->grace_period && kp->grace_period->nanoseconds >= 0)
                return kp->grace_period->nanoseconds;
        return fallback;
}

/* ---- events ---- */

static TaskInfo *copy_task_info(const TaskInfo *in)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(MESOS_MESSAGE_MAX);
        if (mesos_pack(&in->base, &b) < 0)
                return NULL;
        return mesos__v1__task_info__unpack(NULL, b.len, (const uint8_t *)b.data);
}

/* Everything that can be wrong with a task is found here, before anything runs. */
static int task_prepare(Executor *e, Task *t, PacerError *err)
{
        uint32_t ports[TASK_PORTS_MAX];
        RegistrarService services[REGISTRAR_SERVICES_MAX];
        size_t n_ports, n_services = 0;
        const char *drain;
        int r;

        r = command_build(t->info, e->cfg->command_argv, e->cfg->command_argc, environ, &t->cmd, err);
        if (r < 0)
                return r;
        sandbox_plan_init(&t->plan);
        r = sandbox_plan_user(&t->plan, t->cmd.user ? t->cmd.user : e->cfg->user, err);
        if (r < 0)
                return r;
        r = sandbox_plan_labels(&t->plan, t->info->labels, &e->cfg->sandbox_options, err);
        if (r < 0)
                return r;

        n_ports = command_ports(t->info, environ, ports, ELEMENTSOF(ports));
        CheckTaskContext ctx = {
                .ports = ports,
                .n_ports = n_ports,
                .envp = t->cmd.envp,
                .sandbox = &t->plan,
                .cwd = e->cfg->sandbox,
        };
        r = check_specs_from_task(t->info, &ctx, &t->specs, &t->n_specs, err);
        if (r < 0)
                return r;

        t->drain_ns = e->cfg->drain_delay_ns;
        drain = mesos_label(t->info->labels, EXECUTOR_DRAIN_LABEL);
        if (drain) {
                PacerError derr;
                r = duration_parse(drain, &t->drain_ns, &derr);
                if (r < 0)
                        return pacer_error_set(err, r, "label %s: %s", EXECUTOR_DRAIN_LABEL, derr.msg);
        }

        const char *app_id = getenv("MARATHON_APP_ID");
        const char *address = e->cfg->service_address ? e->cfg->service_address : getenv("HOST");
        if (!address || !*address)
                address = e->agent_hostname;
        RegistrarNaming naming = { .global_tag = e->cfg->consul_tag, .address = address };
        if (e->consul) {
                r = registrar_plan_services(t->info, app_id, ports, n_ports, &naming, services, &n_services,
                                            err);
                if (r < 0)
                        return r;
        }
        RegistrarConfig rc = {
                .consul = e->consul,
                .task_id = t->id,
                .framework_id = e->cfg->framework_id,
                .executor_id = e->cfg->executor_id,
                .app_id = app_id,
                .address = address,
                .services = services,
                .n_services = n_services,
                .ttl_ns = e->cfg->consul_ttl_ns,
                .deregister_after_ns = e->cfg->consul_deregister_after_ns,
        };
        RegistrarCallbacks rcb = {
                .changed = on_registrar_changed,
                .health_pushed = on_health_pushed,
                .deregistered = on_deregistered,
        };
        r = registrar_new(e->loop, &rc, &rcb, e, &t->reg);
        registrar_services_done(services, n_services);
        return r;
}

static void handle_launch(Executor *e, const TaskInfo *info)
{
        const char *id = info->task_id ? info->task_id->value : NULL;
        PacerError err = { "" };
        Task *t;
        int r;

        if (!id || !*id) {
                log_error("LAUNCH without a task id: ignored");
                return;
        }
        if (e->task) {
                if (streq(e->task->id, id)) {
                        log_warn_s(id, "duplicate LAUNCH for a task this executor already runs: ignored");
                        return;
                }
                agent_link_track_task(e->link, info);
                send_status(
                        e, id, TASK_STATE(TASK_ERROR), NULL,
                        MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID, -1,
                        "pacer-executor runs one task per executor and already runs %s; give each task its own "
                        "ExecutorID",
                        e->task->id);
                return;
        }

        t = calloc(1, sizeof(*t));
        if (!t || !(t->id = strdup(id)) || !(t->info = copy_task_info(info))) {
                task_free(e, t);
                log_error_s(id, "out of memory accepting the task");
                return;
        }
        status_record_init(&t->record);
        t->readiness = t->reported = HEALTH_UNKNOWN;
        ev_timer_init(&t->kill_timer, on_kill_timer, 0., 0.);
        t->kill_timer.data = e;
        ev_timer_init(&t->drain_timer, on_drain_timer, 0., 0.);
        t->drain_timer.data = e;
        ev_timer_init(&t->group_timer, on_group_timer, GROUP_POLL_S, GROUP_POLL_S);
        t->group_timer.data = e;
        t->kill_grace_ns = kill_policy_grace(info->kill_policy, e->cfg->kill_grace_ns);
        e->task = t;
        agent_link_track_task(e->link, info);

        if (e->shutting_down) {
                task_fail_launch(e, t, TASK_STATE(TASK_KILLED),
                                 MESOS__V1__TASK_STATUS__REASON__REASON_TASK_KILLED_DURING_LAUNCH,
                                 "the executor is shutting down");
                return;
        }
        r = task_prepare(e, t, &err);
        if (r < 0) {
                log_error_s(id, "invalid task: %s", *err.msg ? err.msg : strerror(-r));
                task_fail_launch(e, t, TASK_STATE(TASK_ERROR),
                                 MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID,
                                 *err.msg ? err.msg : strerror(-r));
                return;
        }
        /* entries an earlier executor of this task left behind go first, while the task starts */
        registrar_cleanup_stale(t->reg);

        t->phase = PHASE_STARTING;
        send_status(e, id, TASK_STATE(TASK_STARTING), t, -1, -1, NULL);

        _cleanup_free_ char *out = NULL, *errp = NULL;
        const char *dir = e->cfg->directory ? e->cfg->directory : ".";
        if (asprintf(&out, "%s/stdout", dir) < 0 || asprintf(&errp, "%s/stderr", dir) < 0) {
                task_fail_launch(e, t, TASK_STATE(TASK_FAILED), -1, "out of memory");
                return;
        }
        TaskSpawnOptions o = {
                .argv = t->cmd.argv,
                .envp = t->cmd.envp,
                .cwd = e->cfg->sandbox && access(e->cfg->sandbox, X_OK) == 0 ? e->cfg->sandbox
                                                                             : e->cfg->directory,
                .stdout_path = out,
                .stderr_path = errp,
                .output_max = e->cfg->output_max_bytes,
                .sandbox = &t->plan,
                .linger_group = true,
        };
        TaskProcessCallbacks cb = { .started = on_task_started, .exited = on_task_exited };
        char **argv = t->cmd.argv;
        log_info_s(id, "launching: %s%s%s", argv[0], argv[1] ? " " : "",
                   argv[1] ? (argv[2] && streq(argv[1], "-c") ? argv[2] : argv[1]) : "");
        r = task_process_spawn(e->loop, &o, &cb, e, &t->proc, &err);
        if (r < 0) {
                log_error_s(id, "cannot start the task: %s", err.msg);
                task_fail_launch(e, t, TASK_STATE(TASK_FAILED),
                                 MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED, err.msg);
        }
}

static void handle_launch_group(Executor *e, const Mesos__V1__Executor__Event__LaunchGroup *g)
{
        for (size_t i = 0; g->task_group && i < g->task_group->n_tasks; i++) {
                const TaskInfo *ti = g->task_group->tasks[i];
                if (!ti->task_id || !ti->task_id->value)
                        continue;
                agent_link_track_task(e->link, ti);
                send_status(e, ti->task_id->value, TASK_STATE(TASK_ERROR), NULL,
                            MESOS__V1__TASK_STATUS__REASON__REASON_TASK_GROUP_INVALID, -1,
                            "pacer-executor does not run task groups (LAUNCH_GROUP): launch each task with "
                            "its own ExecutorInfo instead");
        }
        log_error("LAUNCH_GROUP is not supported: its tasks were answered with TASK_ERROR");
        if (!e->task) {
                /* nothing to run: the agent never stops an idle custom executor, so leave once
                 * the answers are acknowledged (or the ack wait passes) and free the resources */
                e->exit_when_acked = true;
                start_ack_wait(e);
        }
}

static void handle_kill(Executor *e, const Mesos__V1__Executor__Event__Kill *k)
{
        const char *id = k->task_id ? k->task_id->value : NULL;
        Task *t = e->task;

        if (!id || !t || !streq(t->id, id)) {
                log_warn_s(strna(id), "KILL for a task this executor does not run: ignored");
                return;
        }
        if (t->phase == PHASE_DONE) {
                log_info_s(id, "KILL for a task that already ended: ignored");
                return;
        }
        task_stop(e, STOP_KILL,
                  kill_policy_grace(k->kill_policy,
                                    kill_policy_grace(t->info->kill_policy, e->cfg->kill_grace_ns)),
                  "killed by the scheduler");
}

static void set_stop_deadline(Executor *e)
{
        int64_t reserve = MAX(SHUTDOWN_RESERVE_NS, e->cfg->shutdown_grace_ns * SHUTDOWN_RESERVE_PCT / 100);
        int64_t budget = MAX(0, e->cfg->shutdown_grace_ns - reserve);
        e->stop_deadline = ev_now(e->loop) + ns_to_ev(budget);
}

void executor_shutdown(Executor *e, const char *why)
{
        if (e->shutting_down)
                return;
        e->shutting_down = true;
        log_info("shutting down: %s", why);
        if (!e->task || e->task->phase == PHASE_DONE) {
                if (!e->task)
                        executor_exit(e, 0);
                return;
        }
        set_stop_deadline(e);
        task_stop(e, STOP_SHUTDOWN, e->task->kill_grace_ns, why);
}

static void on_event(const Mesos__V1__Executor__Event *ev, void *userdata)
{
        Executor *e = userdata;

        switch (ev->type) {
        case MESOS__V1__EXECUTOR__EVENT__TYPE__SUBSCRIBED: {
                const FrameworkInfo *fi = ev->subscribed->framework_info;
                const Mesos__V1__AgentInfo *ai = ev->subscribed->agent_info;
                e->task_killing_capable = false;
                for (size_t i = 0; fi && i < fi->n_capabilities; i++)
                        if (fi->capabilities[i]->has_type &&
                            fi->capabilities[i]->type ==
                                    MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__TASK_KILLING_STATE)
                                e->task_killing_capable = true;
                if (ai && ai->hostname && !e->agent_hostname)
                        e->agent_hostname = strdup(ai->hostname);
                break;
        }
        case MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH:
                if (ev->launch && ev->launch->task)
                        handle_launch(e, ev->launch->task);
                else
                        log_error("LAUNCH event without a task: ignored");
                break;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH_GROUP:
                if (ev->launch_group)
                        handle_launch_group(e, ev->launch_group);
                break;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__KILL:
                if (ev->kill)
                        handle_kill(e, ev->kill);
                else
                        log_error("KILL event without a task id: ignored");
                break;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__SHUTDOWN:
                executor_shutdown(e, "the agent asked the executor to shut down");
                break;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__MESSAGE:
                log_info("MESSAGE from the scheduler (%zu bytes): pacer-executor takes no messages; ignored",
                         ev->message ? ev->message->data.len : 0);
                break;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__ERROR:
                log_error("ERROR from the agent: %s",
                          ev->error && ev->error->message ? ev->error->message : "(no message)");
                break;
        default:
                break;
        }
}

static void on_acknowledged(const char *task_id, TaskState state, void *userdata)
{
        Executor *e = userdata;
        Task *t = e->task;

        if (!t && e->exit_when_acked && !agent_link_has_unacked(e->link, NULL)) {
                log_info("every update acknowledged and no task to run: exiting");
                executor_exit(e, 0);
                return;
        }
        if (t && task_id && streq(task_id, t->id) && t->phase == PHASE_DONE &&
            task_state_is_terminal(state) && !agent_link_has_unacked(e->link, NULL)) {
                log_info_s(t->id, "terminal update acknowledged: exiting");
                executor_exit(e, 0);
        }
}

static void on_disconnected(const char *why, void *userdata)
{
        /* the link reconnects by itself; the task keeps running meanwhile */
}

static void on_lost(const char *why, void *userdata)
{
        Executor *e = userdata;

        if (!e->task || e->task->phase == PHASE_DONE) {
                executor_exit(e, 1);
                return;
        }
        e->shutting_down = true;
        task_stop(e, STOP_AGENT_LOST, MIN(e->task->kill_grace_ns, e->cfg->kill_grace_ns), why);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
        Executor *e = w->data;
        char why[64];

        snprintf(why, sizeof(why), "received SIG%s", strna(sigabbrev_np(w->signum)));
        executor_shutdown(e, why);
}

/* ---- lifetime ---- */

static void on_prebuild(struct ev_loop *loop, ev_idle *w, int revents)
{
        Executor *e = w->data;
        PacerError err = { "" };

        ev_idle_stop(loop, w);
        /* a failure here is the task's to report, when its plan is made */
        if (sandbox_prebuild(&e->cfg->sandbox_options, &err) < 0)
                log_debug("seccomp filter not compiled ahead: %s", err.msg);
}

int executor_new(struct ev_loop *loop, const ExecutorConfig *cfg, Executor **ret)
{
        _cleanup_free_ Executor *e = calloc(1, sizeof(*e));
        AgentLinkCallbacks cb = {
                .event = on_event,
                .acknowledged = on_acknowledged,
                .disconnected = on_disconnected,
                .lost = on_lost,
        };
        PacerError err = { "" };
        int r;

        if (!e)
                return -ENOMEM;
        e->loop = loop;
        e->cfg = cfg;
        e->http = http_client_new(loop);
        if (!e->http)
                return -ENOMEM;
        if (cfg->consul_address) {
                ConsulConfig cc = {
                        .address = cfg->consul_address,
                        .token = cfg->consul_token,
                        .call_timeout_ns = cfg->consul_timeout_ns,
                };
                r = consul_client_new(loop, e->http, &cc, &e->consul, &err);
                if (r < 0) {
                        log_error("Consul: %s", err.msg);
                        http_client_free(e->http);
                        return r;
                }
                log_info("registering tasks in Consul at %s%s", cfg->consul_address,
                         cfg->consul_token && *cfg->consul_token ? " (with an ACL token)" : "");
        } else
                log_warn(
                        "Consul registration is DISABLED: set CONSUL_HTTP_ADDR or --consul to register tasks "
                        "before they are reported healthy");
        AgentLinkConfig lc = {
                .endpoint = cfg->agent_endpoint,
                .framework_id = cfg->framework_id,
                .executor_id = cfg->executor_id,
                .auth_token = cfg->auth_token,
                .unix_socket = cfg->domain_socket,
                .checkpoint = cfg->checkpoint,
                .recovery_timeout_ns = cfg->recovery_timeout_ns,
                .backoff_max_ns = cfg->backoff_max_ns,
                .call_timeout_ns = cfg->call_timeout_ns,
        };
        r = agent_link_new(loop, e->http, &lc, &cb, e, &e->link);
        if (r < 0) {
                consul_client_free(e->consul);
                http_client_free(e->http);
                return r;
        }
        ev_timer_init(&e->ack_timer, on_ack_timeout, 0., 0.);
        e->ack_timer.data = e;
        ev_timer_init(&e->sweep_timer, on_sweep_timer, 0., SWEEP_INTERVAL_S);
        e->sweep_timer.data = e;
        ev_idle_init(&e->prebuild, on_prebuild);
        e->prebuild.data = e;
        ev_signal_init(&e->sigterm, on_signal, SIGTERM);
        e->sigterm.data = e;
        ev_signal_init(&e->sigint, on_signal, SIGINT);
        e->sigint.data = e;
        *ret = TAKE_PTR(e);
        return 0;
}

int executor_run(Executor *e)
{
        ev_signal_start(e->loop, &e->sigterm);
        ev_signal_start(e->loop, &e->sigint);
        agent_link_start(e->link);
        /* when the loop first waits, for the agent's answer: off the path from LAUNCH to the task */
        ev_idle_start(e->loop, &e->prebuild);
        ev_run(e->loop, 0);
        /* nothing of the task may outlive the executor: a last sweep, and again while it finds any */
        for (int i = 0; i < EXIT_SWEEPS_MAX && task_kill_orphans() > 0; i++)
                nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
        return e->exit_code;
}

Executor *executor_free(Executor *e)
{
        if (!e)
                return NULL;
        ev_timer_stop(e->loop, &e->ack_timer);
        ev_timer_stop(e->loop, &e->sweep_timer);
        ev_idle_stop(e->loop, &e->prebuild);
        ev_signal_stop(e->loop, &e->sigterm);
        ev_signal_stop(e->loop, &e->sigint);
        e->task = task_free(e, e->task);
        agent_link_free(e->link);
        consul_client_free(e->consul);
        http_client_free(e->http);
        free(e->agent_hostname);
        free(e);
        return NULL;
}
