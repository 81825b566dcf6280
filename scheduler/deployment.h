/* SPDX-License-Identifier: Apache-2.0 */
/* Deployments: every change to apps (create, scale, update, restart, delete;
 * one app or a batch) is a deployment made of one step per app. Steps are
 * ordered by the apps' dependencies but otherwise independent: each can be
 * stopped, retried or rolled back on its own, has its own deadline and
 * crash-loop limit, and a failing step never blocks unrelated apps. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "state.h"

#define DEPLOYMENT_ID_MAX     40
#define DEPLOYMENT_REASON_MAX 256
/* Bound on the steps of one deployment read from the store (a step per app). */
#define DEPLOYMENT_STEPS_MAX 1000000

typedef enum StepAction {
        STEP_ACTION_START,   /* new app: launch its instances */
        STEP_ACTION_SCALE,   /* same version, another instance count */
        STEP_ACTION_RESTART, /* new version (or restart): rolling replacement */
        STEP_ACTION_STOP,    /* delete the app */
        _STEP_ACTION_MAX,
        _STEP_ACTION_INVALID = -EINVAL,
} StepAction;

typedef enum StepState {
        STEP_WAITING, /* its dependencies in this deployment have not finished */
        STEP_RUNNING,
        STEP_SUCCEEDED,
        STEP_FAILED,  /* deadline passed or crash loop; reason says which */
        STEP_STOPPED, /* stopped by an operator: instances left as they are */
        _STEP_STATE_MAX,
        _STEP_STATE_INVALID = -EINVAL,
} StepState;

typedef struct DeploymentStep {
        char *app_id;
        StepAction action;
        StepState state;
        AppVersion *from; /* the version before the change; NULL for a new app */
        AppVersion *to;   /* the target; NULL when deleting */
        bool rollback;    /* this step undoes an earlier change */
        char reason[DEPLOYMENT_REASON_MAX];
        double started_at, deadline_at, finished_at;
        uint32_t failures; /* of the target version's instances, within the crash-loop window */
        char **deps;       /* app ids of steps in this deployment this one waits for */
        size_t n_deps;
        bool dirty; /* changed since its store record was written */
} DeploymentStep;

typedef struct Deployment {
        char id[DEPLOYMENT_ID_MAX];
        char version[APP_VERSION_MAX + 1];
        double created_at;
        DeploymentStep *steps;
        size_t n_steps;
        bool finished; /* over; freed at the end of the loop turn, so pointers held during it stay valid */
        bool dirty;    /* header and every step to be written (new, or read in the one-record form) */
        bool steps_dirty; /* some step is dirty */
        struct Deployment *prev, *next;
} Deployment;

const char *step_action_to_string(StepAction a); /* Marathon's: "ScaleApplication", ... */
StepAction step_action_from_string(const char *s);
const char *step_state_to_string(StepState s); /* "waiting", "running", ... */
StepState step_state_from_string(const char *s);
static inline bool step_state_is_final(StepState s)
{
        return s == STEP_SUCCEEDED || s == STEP_FAILED || s == STEP_STOPPED;
}

Deployment *deployment_new(const char *version);
/* Adds a step (takes references on from/to). */
int deployment_add_step(Deployment *d, const char *app_id, StepAction action, AppVersion *from,
                        AppVersion *to, DeploymentStep **ret);
DeploymentStep *deployment_step(Deployment *d, const char *app_id);
bool deployment_finished(const Deployment *d);
/* Every step applied: succeeded, and not by rolling back. */
bool deployment_succeeded(const Deployment *d);
/* Why it did not succeed, for its deployment_failed event: the first step not applied. */
const char *deployment_failure(const Deployment *d, char *buf, size_t size);
Deployment *deployment_free(Deployment *d);

/* Orders steps by dependencies: deps of a step are the apps it depends on that
 * also have a step here. -ELOOP with err naming the cycle. */
int deployment_resolve_dependencies(Deployment *d, const State *s, PacerError *err);

/* Marathon's /v2/deployments shape plus Pacer's per-app "apps" array. */
json_t *deployment_to_json(const Deployment *d, const State *s);
/* The store keeps a deployment as a header record (STORE_KIND_DEPLOYMENT, key:
 * its id: id, version, creation time, number of steps) and one record per step
 * (STORE_KIND_DEPLOYMENT_STEP, key: deployment_step_key()), steps naming their
 * versions. No record grows with the batch (a batch of 10,000 apps stays far
 * below STORE_OBJECT_MAX a record) and a loop turn writes only the steps it
 * changed. */
int deployment_encode_header(const Deployment *d, Buf *out);
int deployment_encode_step(const DeploymentStep *st, Buf *out);
/* "<deployment id>#<step index>"; -ENOBUFS when size is too small. */
int deployment_step_key(const char *deployment_id, size_t i, char *buf, size_t size);
/* Splits a step key; -EINVAL when it is not one. */
int deployment_step_key_parse(const char *key, char id[DEPLOYMENT_ID_MAX], size_t *index);

/* Reading back, in three moves: the header record opens a record (a JSON
 * object whose steps are still null), each step record goes into it, then it
 * becomes a deployment, its versions resolved against the state (history
 * versions parsed as needed). A header that holds its steps itself (the
 * one-record form of earlier releases) needs no step records.
 * deployment_record_open() returns -EBADMSG with err saying what is wrong;
 * deployment_record_add_step() -EBADMSG or -ERANGE (no such step);
 * deployment_decode() -EBADMSG (a step missing or malformed), -ENOENT (a
 * version no longer stored) or -ENOMEM. */
int deployment_record_open(const void *data, size_t len, json_t **ret, PacerError *err);
const char *deployment_record_id(const json_t *rec);
size_t deployment_record_n_steps(const json_t *rec);
/* True for the one-record form: written again as a header and steps. */
bool deployment_record_is_legacy(const json_t *rec);
int deployment_record_add_step(json_t *rec, size_t index, const void *data, size_t len, PacerError *err);
int deployment_decode(const json_t *rec, const State *s, Deployment **ret, PacerError *err);

/* What the planner wants done now for one running step. */
#define PLAN_KILLS_MAX 256
typedef struct PlanActions {
        uint32_t launch;                /* new instances of step->to to launch now */
        Instance *kill[PLAN_KILLS_MAX]; /* instances to kill now */
        size_t n_kill;
        bool done; /* the step reached its target */
} PlanActions;

/* Rolling replacement within upgradeStrategy: never fewer than
 * ceil(instances × minimumHealthCapacity) ready instances, never more than
 * instances × (1 + maximumOverCapacity) in total; killSelection decides which
 * old instances go first (not-ready ones before ready ones). */
void planner_plan(const App *app, const DeploymentStep *step, PlanActions *ret);
