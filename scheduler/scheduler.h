/* SPDX-License-Identifier: Apache-2.0 */
/* pacer-scheduler's core: recovers state from the store, talks to the master
 * (or local mode), places instances on offers, applies status updates (from
 * the executors' status records; it never probes tasks), runs deployments
 * step by step, and persists every change before acknowledging it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "deployment.h"
#include "error.h"
#include "launch.h"
#include "master.h"
#include "metrics.h"
#include "state.h"
#include "store.h"

struct ev_loop;

typedef struct Scheduler Scheduler;

typedef struct SchedulerConfig {
        MasterOptions master;
        const char *data_dir;
        StoreSync store_sync;
        uint32_t store_max_pages; /* test hook: simulates a full disk; 0 = none */
        LaunchOptions launch;
        double refuse_seconds;        /* filter on offers declined while work waits */
        double idle_refuse_seconds;   /* filter on offers declined when nothing waits */
        int64_t step_deadline_ns;     /* default deadline of a deployment step; 0 = none */
        bool auto_rollback;           /* roll a failed step back to the previous version */
        uint32_t crash_loop_failures; /* failures of a new version within the window that stop its step */
        int64_t crash_loop_window_ns;
        int64_t unreachable_expunge_ns; /* an instance unreachable this long is replaced; 0 = at once */
        double reconcile_interval_s;    /* implicit reconciliation */
        uint32_t launches_per_round;    /* cap on instances placed per offer round */
        const char *consul_description; /* for /v2/info */
} SchedulerConfig;

/* Opens the store and recovers apps, instances and deployments. */
int scheduler_new(struct ev_loop *loop, const SchedulerConfig *cfg, Scheduler **ret, PacerError *err);
/* The callbacks a Master must be created with (userdata: the scheduler). */
const MasterCallbacks *scheduler_master_callbacks(void);
/* Connects to the master (or starts local mode) given by master. */
int scheduler_start(Scheduler *s, Master *master);
Scheduler *scheduler_free(Scheduler *s);

State *scheduler_state(Scheduler *s);
const SchedulerConfig *scheduler_config(const Scheduler *s);
MetricsRegistry *scheduler_metrics(Scheduler *s);
Deployment *scheduler_deployments(Scheduler *s);
Deployment *scheduler_deployment(Scheduler *s, const char *id);
bool scheduler_connected(const Scheduler *s);
/* Why the scheduler stopped its loop for good (the master ended the framework), or NULL. */
const char *scheduler_fatal(const Scheduler *s);
const char *scheduler_leader(const Scheduler *s);
/* Where an instance's launch stands, for /v2/queue: waiting, delay, reasons. */
typedef struct QueueEntry {
        const App *app;
        uint32_t count;      /* instances waiting to be launched */
        double delay_left_s; /* backoff left */
        uint32_t processed, unused;
        uint32_t rejects[8];
        const char *reasons[4];
        size_t n_reasons;
} QueueEntry;
size_t scheduler_queue(Scheduler *s, QueueEntry *ret, size_t max);

/* One change of a deployment request. */
typedef struct AppChange {
        AppSpec *spec;      /* the new definition (taken over); NULL to delete */
        const char *app_id; /* for deletes and restarts */
        bool restart;       /* same definition, new version: replace every instance */
} AppChange;

typedef enum SchedulerError {
        SCHED_ERR_NONE,
        SCHED_ERR_INVALID,   /* 422/400: message says why */
        SCHED_ERR_NOT_FOUND, /* 404 */
        SCHED_ERR_CONFLICT,  /* 409: locked by a deployment (ids in conflicts) */
        SCHED_ERR_EXISTS,    /* 409: already exists */
        SCHED_ERR_STORE,     /* 503: the store did not take it; nothing changed */
} SchedulerError;

typedef struct SchedulerResult {
        SchedulerError kind;
        char message[512];
        /* the deployment a change started ("" when none): it may already be over
         * when the call returns, so callers keep these, not a pointer */
        char deployment_id[DEPLOYMENT_ID_MAX];
        char version[APP_VERSION_MAX + 1];
        char conflicts[4][DEPLOYMENT_ID_MAX]; /* deployments holding the apps */
        size_t n_conflicts;
} SchedulerResult;

/* Validates the whole request (dependencies, locks), persists it and starts
 * a deployment. On success res->deployment_id/version name it, *ret_deployment
 * is it while it still runs (NULL when it already finished), and
 * changes[].spec were taken over; on failure nothing changed. */
int scheduler_apply(Scheduler *s, AppChange *changes, size_t n, bool force, Deployment **ret_deployment,
                    SchedulerResult *res);

typedef enum StepCommand {
        STEP_COMMAND_STOP,
        STEP_COMMAND_ROLLBACK,
        STEP_COMMAND_RETRY,
        _STEP_COMMAND_MAX,
        _STEP_COMMAND_INVALID = -EINVAL,
} StepCommand;
const char *step_command_to_string(StepCommand c);
StepCommand step_command_from_string(const char *s);

/* Acts on one app's step of a deployment without touching the others. */
int scheduler_step_command(Scheduler *s, const char *deployment_id, const char *app_id, StepCommand cmd,
                           SchedulerResult *res);
/* DELETE /v2/deployments/{id}: force stops it; otherwise rolls every step back
 * in place (*ret: the same deployment). */
int scheduler_cancel_deployment(Scheduler *s, const char *deployment_id, bool force, Deployment **ret,
                                SchedulerResult *res);
/* Kills tasks; with scale, lowers their apps' instance counts too, all apps in
 * one deployment (*ret) stored before any kill goes out; an app locked by a
 * deployment is a conflict unless force. */
int scheduler_kill_tasks(Scheduler *s, char *const *task_ids, size_t n, bool scale, bool force,
                         Deployment **ret, SchedulerResult *res);

/* Events for subscribers (the API's SSE streams): type and a small JSON payload. */
typedef void (*scheduler_event_fn)(const char *type, json_t *payload, void *userdata);
void scheduler_set_event_sink(Scheduler *s, scheduler_event_fn fn, void *userdata);
