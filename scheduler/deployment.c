/* SPDX-License-Identifier: Apache-2.0 */
#include "deployment.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

static const char *const action_names[_STEP_ACTION_MAX] = {
        [STEP_ACTION_START] = "StartApplication",
        [STEP_ACTION_SCALE] = "ScaleApplication",
        [STEP_ACTION_RESTART] = "RestartApplication",
        [STEP_ACTION_STOP] = "StopApplication",
};

static const char *const state_names[_STEP_STATE_MAX] = {
        [STEP_WAITING] = "waiting", [STEP_RUNNING] = "running", [STEP_SUCCEEDED] = "succeeded",
        [STEP_FAILED] = "failed",   [STEP_STOPPED] = "stopped",
};

const char *step_action_to_string(StepAction a)
{
        return a >= 0 && a < _STEP_ACTION_MAX ? action_names[a] : NULL;
}

StepAction step_action_from_string(const char *s)
{
        for (int i = 0; s && i < _STEP_ACTION_MAX; i++)
                if (streq(s, action_names[i]))
                        return (StepAction)i;
        return _STEP_ACTION_INVALID;
}

const char *step_state_to_string(StepState s)
{
        return s >= 0 && s < _STEP_STATE_MAX ? state_names[s] : NULL;
}

StepState step_state_from_string(const char *s)
{
        for (int i = 0; s && i < _STEP_STATE_MAX; i++)
                if (streq(s, state_names[i]))
                        return (StepState)i;
        return _STEP_STATE_INVALID;
}

Deployment *deployment_new(const char *version)
{
        Deployment *d = calloc(1, sizeof(*d));
        uint8_t u[MESOS_UUID_SIZE];

        if (!d)
                return NULL;
        mesos_uuid_generate(u);
        mesos_uuid_format(u, d->id);
        snprintf(d->version, sizeof(d->version), "%s", strempty(version));
        d->created_at = mesos_now();
        return d;
}

int deployment_add_step(Deployment *d, const char *app_id, StepAction action, AppVersion *from,
                        AppVersion *to, DeploymentStep **ret)
{
        DeploymentStep *steps = realloc(d->steps, (d->n_steps + 1) * sizeof(*steps)), *s;

        if (!steps)
                return -ENOMEM;
        d->steps = steps;
        s = &d->steps[d->n_steps];
        *s = (DeploymentStep){ .action = action, .state = STEP_WAITING };
        s->app_id = strdup(app_id);
        if (!s->app_id)
                return -ENOMEM;
        s->from = app_version_ref(from);
        s->to = app_version_ref(to);
        d->n_steps++;
        if (ret)
                *ret = s;
        return 0;
}

DeploymentStep *deployment_step(Deployment *d, const char *app_id)
{
        for (size_t i = 0; d && i < d->n_steps; i++)
                if (streq(d->steps[i].app_id, app_id))
                        return &d->steps[i];
        return NULL;
}

bool deployment_finished(const Deployment *d)
{
        for (size_t i = 0; i < d->n_steps; i++)
                if (!step_state_is_final(d->steps[i].state))
                        return false;
        return true;
}

/* A rolled-back step reached its previous version: what was asked did not happen. */
static bool step_applied(const DeploymentStep *st)
{
        return st->state == STEP_SUCCEEDED && !st->rollback;
}

bool deployment_succeeded(const Deployment *d)
{
        for (size_t i = 0; i < d->n_steps; i++)
                if (!step_applied(&d->steps[i]))
                        return false;
        return true;
}

const char *deployment_failure(const Deployment *d, char *buf, size_t size)
{
        for (size_t i = 0; i < d->n_steps; i++) {
                const DeploymentStep *st = &d->steps[i];
                if (step_applied(st))
                        continue;
                const char *what =
                        st->state == STEP_SUCCEEDED ? "rolled back" : step_state_to_string(st->state);
                if (strneq(st->reason, what, strlen(what))) /* "rolled back: deadline..." says it already */
                        snprintf(buf, size, "%s: %s", st->app_id, st->reason);
                else
                        snprintf(buf, size, "%s: %s%s%s", st->app_id, what, *st->reason ? ": " : "",
                                 st->reason);
                return buf;
        }
        return NULL;
}

static void step_done(DeploymentStep *s)
{
        free(s->app_id);
        app_version_unref(s->from);
        app_version_unref(s->to);
        for (size_t i = 0; i < s->n_deps; i++)
                free(s->deps[i]);
        free(s->deps);
}

Deployment *deployment_free(Deployment *d)
{
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_steps; i++)
                step_done(&d->steps[i]);
        free(d->steps);
        free(d);
        return NULL;
}

/* Dependencies of app_id as its target spec says (or its current one). */
static const AppSpec *step_spec(const DeploymentStep *st, const State *s)
{
        if (st->to)
                return st->to->spec;
        const App *a = state_app(s, st->app_id);
        return a && a->current ? a->current->spec : NULL;
}

/* DFS colouring over the steps: 0 unseen, 1 on the path, 2 done. */
static int visit(Deployment *d, const State *s, size_t i, uint8_t *colour, PacerError *err)
{
        const AppSpec *spec = step_spec(&d->steps[i], s);

        if (colour[i] == 2)
                return 0;
        if (colour[i] == 1)
                return pacer_error_set(err, ELOOP, "dependency cycle through %s", d->steps[i].app_id);
        colour[i] = 1;
        for (size_t k = 0; spec && k < spec->n_dependencies; k++) {
                for (size_t j = 0; j < d->n_steps; j++)
                        if (streq(d->steps[j].app_id, spec->dependencies[k])) {
                                int r = visit(d, s, j, colour, err);
                                if (r < 0)
                                        return r;
                        }
        }
        colour[i] = 2;
        return 0;
}

int deployment_resolve_dependencies(Deployment *d, const State *s, PacerError *err)
{
        _cleanup_free_ uint8_t *colour = calloc(d->n_steps ? d->n_steps : 1, 1);
        int r;

        if (!colour)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_steps; i++) {
                r = visit(d, s, i, colour, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < d->n_steps; i++) {
                DeploymentStep *st = &d->steps[i];
                const AppSpec *spec = step_spec(st, s);
                /* a stopped app is gone before the apps it depended on, so they wait for it, not the other
                 * way */
                for (size_t k = 0; spec && st->action != STEP_ACTION_STOP && k < spec->n_dependencies; k++) {
                        if (!deployment_step(d, spec->dependencies[k]))
                                continue;
                        char **deps = realloc(st->deps, (st->n_deps + 1) * sizeof(char *));
                        if (!deps)
                                return -ENOMEM;
                        st->deps = deps;
                        if (!(st->deps[st->n_deps] = strdup(spec->dependencies[k])))
                                return -ENOMEM;
                        st->n_deps++;
                }
        }
        return 0;
}

/* Level of a step = 1 + the highest level of its dependencies (Marathon's "steps"). */
static size_t step_level(const Deployment *d, size_t i, unsigned depth)
{
        size_t level = 0;
        if (depth > d->n_steps)
                return 0;
        for (size_t k = 0; k < d->steps[i].n_deps; k++)
                for (size_t j = 0; j < d->n_steps; j++)
                        if (streq(d->steps[j].app_id, d->steps[i].deps[k]))
                                level = MAX(level, step_level(d, j, depth + 1) + 1);
        return level;
}

static json_t *readiness_results(const State *s, const DeploymentStep *st)
{
        json_t *arr = json_array();
        const App *app = state_app(s, st->app_id);

        for (const Instance *i = app ? app->instances : NULL; arr && i; i = i->next) {
                if (!st->to || i->version != st->to || !instance_active(i))
                        continue;
                json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:s}", "name", "pacer", "taskId",
                                                     i->task_id, "ready", instance_ready(i), "registration",
                                                     strna(registration_state_to_string(i->registration))));
        }
        return arr;
}

json_t *deployment_to_json(const Deployment *d, const State *s)
{
        json_t *j, *affected = json_array(), *steps = json_array(), *current = json_array(),
                   *apps = json_array();
        size_t levels = 0, current_step = 0;

        if (!affected || !steps || !current || !apps)
                goto oom;
        for (size_t i = 0; i < d->n_steps; i++)
                levels = MAX(levels, step_level(d, i, 0) + 1);
        for (size_t lvl = 0; lvl < levels; lvl++) {
                json_t *actions = json_array();
                bool running = false;
                for (size_t i = 0; i < d->n_steps; i++) {
                        if (step_level(d, i, 0) != lvl)
                                continue;
                        const DeploymentStep *st = &d->steps[i];
                        json_array_append_new(actions, json_pack("{s:s, s:s}", "action",
                                                                 step_action_to_string(st->action), "app",
                                                                 st->app_id));
                        if (!step_state_is_final(st->state))
                                running = true;
                }
                json_array_append_new(steps, json_pack("{s:o}", "actions", actions));
                if (running && current_step == 0)
                        current_step = lvl + 1;
        }
        for (size_t i = 0; i < d->n_steps; i++) {
                const DeploymentStep *st = &d->steps[i];
                json_array_append_new(affected, json_string(st->app_id));
                if (st->state == STEP_RUNNING)
                        json_array_append_new(current,
                                              json_pack("{s:s, s:s, s:o}", "action",
                                                        step_action_to_string(st->action), "app", st->app_id,
                                                        "readinessCheckResults", readiness_results(s, st)));
                json_array_append_new(apps,
                                      json_pack("{s:s, s:s, s:s, s:s, s:b, s:s?, s:s?}", "appId", st->app_id,
                                                "action", step_action_to_string(st->action), "state",
                                                step_state_to_string(st->state), "reason", st->reason,
                                                "rollback", st->rollback, "fromVersion",
                                                st->from ? st->from->spec->version : NULL, "toVersion",
                                                st->to ? st->to->spec->version : NULL));
        }
        j = json_pack("{s:s, s:s, s:o, s:[], s:o, s:o, s:i, s:i, s:o}", "id", d->id, "version", d->version,
                      "affectedApps", affected, "affectedPods", "steps", steps, "currentActions", current,
                      "currentStep", (json_int_t)(current_step ? current_step : levels), "totalSteps",
                      (json_int_t)levels, "apps", apps);
        return j;
oom:
        json_decref(affected);
        json_decref(steps);
        json_decref(current);
        json_decref(apps);
        return NULL;
}

/* Appends j compactly (jansson's default real precision, 17 digits, keeps times exact) and frees it. */
static int dump_json(json_t *j, Buf *out)
{
        int r;

        if (!j)
                return -ENOMEM;
        r = json_to_buf(j, out);
        json_decref(j);
        return r;
}

int deployment_encode_header(const Deployment *d, Buf *out)
{
        return dump_json(json_pack("{s:s, s:s, s:f, s:I}", "id", d->id, "version", d->version, "created",
                                   d->created_at, "n_steps", (json_int_t)d->n_steps),
                         out);
}

int deployment_encode_step(const DeploymentStep *st, Buf *out)
{
        json_t *deps = json_array();

        for (size_t k = 0; deps && k < st->n_deps; k++)
                json_array_append_new(deps, json_string(st->deps[k]));
        if (!deps)
                return -ENOMEM;
        return dump_json(
                json_pack("{s:s, s:s, s:s, s:s*, s:s*, s:b, s:s, s:f, s:f, s:f, s:i, s:o}", "app",
                          st->app_id, "action", step_action_to_string(st->action), "state",
                          step_state_to_string(st->state), "from", st->from ? st->from->version : NULL, "to",
                          st->to ? st->to->version : NULL, "rollback", st->rollback, "reason", st->reason,
                          "started", st->started_at, "deadline", st->deadline_at, "finished",
                          st->finished_at, "failures", (json_int_t)st->failures, "deps", deps),
                out);
}

int deployment_step_key(const char *deployment_id, size_t i, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s#%zu", deployment_id, i);

        return n < 0 || (size_t)n >= size ? -ENOBUFS : 0;
}

int deployment_step_key_parse(const char *key, char id[DEPLOYMENT_ID_MAX], size_t *index)
{
        const char *hash = strrchr(key, '#');
        unsigned long long i;
        char *end;

        if (!hash || hash == key || (size_t)(hash - key) >= DEPLOYMENT_ID_MAX ||
            !isdigit((unsigned char)hash[1]))
                return -EINVAL;
        errno = 0;
        i = strtoull(hash + 1, &end, 10);
        if (errno || *end || i >= DEPLOYMENT_STEPS_MAX)
                return -EINVAL;
        memcpy(id, key, (size_t)(hash - key));
        id[hash - key] = 0;
        *index = (size_t)i;
        return 0;
}

int deployment_record_open(const void *data, size_t len, json_t **ret, PacerError *err)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        PacerError e = { "" };
        json_t *steps;
        json_int_t n = -1;
        const char *id, *version;
        double created;
        int r;

        r = json_parse(data, len, NULL, &j, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return pacer_error_set(err, EBADMSG, "not JSON: %s", e.msg);
        if (json_unpack(j, "{s:s, s:s, s:F, s?I}", "id", &id, "version", &version, "created", &created,
                        "n_steps", &n) < 0 ||
            strlen(id) >= DEPLOYMENT_ID_MAX || strchr(id, '#'))
                return pacer_error_set(err, EBADMSG, "the header has the wrong shape");
        steps = json_object_get(j, "steps");
        if (steps && n < 0) {
                if (!json_is_array(steps))
                        return pacer_error_set(err, EBADMSG, "\"steps\" is not an array");
                json_object_set_new(j, "legacy", json_true());
        } else {
                if (steps || n < 0 || n > DEPLOYMENT_STEPS_MAX)
                        return pacer_error_set(err, EBADMSG, "\"n_steps\" is missing or out of range");
                steps = json_array();
                for (json_int_t i = 0; steps && i < n; i++)
                        if (json_array_append_new(steps, json_null()) < 0)
                                break;
                if (!steps || json_array_size(steps) != (size_t)n ||
                    json_object_set_new(j, "steps", steps) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(j);
        return 0;
}

const char *deployment_record_id(const json_t *rec)
{
        return json_string_value(json_object_get(rec, "id"));
}

size_t deployment_record_n_steps(const json_t *rec)
{
        return json_array_size(json_object_get(rec, "steps"));
}

bool deployment_record_is_legacy(const json_t *rec)
{
        return json_is_true(json_object_get(rec, "legacy"));
}

int deployment_record_add_step(json_t *rec, size_t index, const void *data, size_t len, PacerError *err)
{
        json_t *steps = json_object_get(rec, "steps"), *step = NULL;
        PacerError e = { "" };
        int r;

        if (deployment_record_is_legacy(rec) || index >= json_array_size(steps))
                return pacer_error_set(err, ERANGE, "deployment %s has no step %zu",
                                       deployment_record_id(rec), index);
        r = json_parse(data, len, NULL, &step, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return pacer_error_set(err, EBADMSG, "not JSON: %s", e.msg);
        if (!json_is_object(step)) {
                json_decref(step);
                return pacer_error_set(err, EBADMSG, "not a JSON object");
        }
        return json_array_set_new(steps, index, step) < 0 ? -ENOMEM : 0;
}

/* The version of app_id named v (parsed: a step needs its content), or NULL (v NULL: none wanted). */
static int find_version(const State *s, const char *app_id, const char *v, AppVersion **ret, PacerError *err)
{
        App *a = state_app(s, app_id);

        *ret = NULL;
        if (!v)
                return 0;
        if (!a)
                return pacer_error_set(err, ENOENT, "app %s is not in the store", app_id);
        return state_app_version(a, v, ret, err);
}

int deployment_decode(const json_t *rec, const State *s, Deployment **ret, PacerError *err)
{
        json_t *steps = json_object_get(rec, "steps");
        const char *id = deployment_record_id(rec),
                   *version = json_string_value(json_object_get(rec, "version"));
        double created = json_number_value(json_object_get(rec, "created"));
        Deployment *d;
        int r;

        if (!id || !version || !json_is_array(steps))
                return pacer_error_set(err, EBADMSG, "deployment record has the wrong shape");
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        snprintf(d->id, sizeof(d->id), "%s", id);
        snprintf(d->version, sizeof(d->version), "%s", version);
        d->created_at = created;
        for (size_t i = 0; i < json_array_size(steps); i++) {
                const char *app, *action, *state, *from = NULL, *to = NULL, *reason = "";
                int rollback = 0;
                double started = 0, deadline = 0, finished = 0;
                json_int_t failures = 0;
                json_t *deps = NULL;
                DeploymentStep *st;

                if (json_is_null(json_array_get(steps, i))) {
                        deployment_free(d);
                        return pacer_error_set(err, EBADMSG, "deployment %s: step %zu is missing", id, i);
                }
                if (json_unpack(json_array_get(steps, i),
                                "{s:s, s:s, s:s, s?s, s?s, s?b, s?s, s?F, s?F, s?F, s?I, s?o}", "app", &app,
                                "action", &action, "state", &state, "from", &from, "to", &to, "rollback",
                                &rollback, "reason", &reason, "started", &started, "deadline", &deadline,
                                "finished", &finished, "failures", &failures, "deps", &deps) < 0 ||
                    step_action_from_string(action) < 0 || step_state_from_string(state) < 0) {
                        deployment_free(d);
                        return pacer_error_set(err, EBADMSG, "deployment %s: step %zu has the wrong shape",
                                               id, i);
                }
                AppVersion *vf, *vt;
                PacerError e = { "" };
                r = find_version(s, app, from, &vf, &e);
                if (r >= 0)
                        r = find_version(s, app, to, &vt, &e);
                if (r < 0) {
                        deployment_free(d);
                        return r == -ENOMEM ? r : pacer_error_set(err, r, "deployment %s: %s", id, e.msg);
                }
                r = deployment_add_step(d, app, step_action_from_string(action), vf, vt, &st);
                if (r < 0) {
                        deployment_free(d);
                        return r;
                }
                st->state = step_state_from_string(state);
                st->rollback = rollback;
                snprintf(st->reason, sizeof(st->reason), "%s", reason);
                st->started_at = started;
                st->deadline_at = deadline;
                st->finished_at = finished;
                st->failures = (uint32_t)failures;
                for (size_t k = 0; json_is_array(deps) && k < json_array_size(deps); k++) {
                        const char *dep = json_string_value(json_array_get(deps, k));
                        char **nd = dep ? realloc(st->deps, (st->n_deps + 1) * sizeof(char *)) : NULL;
                        if (!nd || !(nd[st->n_deps] = strdup(dep))) {
                                if (nd)
                                        st->deps = nd;
                                deployment_free(d);
                                return -ENOMEM;
                        }
                        st->deps = nd;
                        st->n_deps++;
                }
        }
        *ret = d;
        return 0;
}

/* ---- planner ---- */

typedef struct Candidate {
        Instance *i;
        bool ready;
} Candidate;

/* Killing order: not-ready instances first, then by killSelection. */
static int cmp_youngest(const void *a, const void *b)
{
        const Candidate *x = a, *y = b;
        if (x->ready != y->ready)
                return x->ready ? 1 : -1;
        return x->i->staged_at < y->i->staged_at ? 1 : x->i->staged_at > y->i->staged_at ? -1 : 0;
}

static int cmp_oldest(const void *a, const void *b)
{
        const Candidate *x = a, *y = b;
        if (x->ready != y->ready)
                return x->ready ? 1 : -1;
        return x->i->staged_at < y->i->staged_at ? -1 : x->i->staged_at > y->i->staged_at ? 1 : 0;
}

static void add_kills(PlanActions *p, Candidate *c, size_t n, size_t want, KillSelection sel)
{
        qsort(c, n, sizeof(*c), sel == KILL_SELECTION_OLDEST_FIRST ? cmp_oldest : cmp_youngest);
        for (size_t k = 0; k < n && k < want && p->n_kill < PLAN_KILLS_MAX; k++)
                p->kill[p->n_kill++] = c[k].i;
}

void planner_plan(const App *app, const DeploymentStep *step, PlanActions *ret)
{
        const AppSpec *spec = step->to ? step->to->spec : NULL;
        uint32_t n_new = 0, n_old = 0, n_dying = 0, ready_new = 0, ready_old = 0, target;
        _cleanup_free_ Candidate *olds = NULL, *news = NULL;
        size_t no = 0, nn = 0;

        *ret = (PlanActions){ 0 };
        olds = calloc(app->n_instances + 1, sizeof(*olds));
        news = calloc(app->n_instances + 1, sizeof(*news));
        if (!olds || !news)
                return;
        for (Instance *i = app->instances; i; i = i->next) {
                if (!instance_active(i)) {
                        /* killed but not gone yet: it still holds its resources and may still serve,
                         * so it counts towards the over-capacity bound until its terminal update (as
                         * in Marathon). One on an unreachable agent may never report: it does not. */
                        if (!task_state_is_terminal(i->state) && i->state != TASK_STATE(TASK_UNREACHABLE))
                                n_dying++;
                        continue;
                }
                bool ready = instance_ready(i);
                if (spec && i->version == step->to) {
                        n_new++;
                        ready_new += ready;
                        news[nn++] = (Candidate){ i, ready };
                } else {
                        n_old++;
                        ready_old += ready;
                        olds[no++] = (Candidate){ i, ready };
                }
        }

        if (!spec) { /* STOP: everything goes */
                add_kills(ret, olds, no, no, KILL_SELECTION_YOUNGEST_FIRST);
                ret->done = n_old == 0 && app->n_instances == 0;
                return;
        }
        target = spec->instances;

        /* too many of the new version (scale down): the surplus goes first */
        if (n_new > target)
                add_kills(ret, news, nn, n_new - target, spec->kill_selection);

        uint32_t min_ready = (uint32_t)ceil((double)target * spec->minimum_health_capacity - 1e-9);
        uint32_t max_total = target + (uint32_t)floor((double)target * spec->maximum_over_capacity + 1e-9);
        /* (1, 0) would deadlock: Marathon allows one instance over capacity then, and so does Pacer */
        if (min_ready >= target && max_total <= target && n_old > 0)
                max_total = target + 1;
        min_ready = MIN(min_ready, target);

        /* a kill planned now frees nothing until its task has ended */
        uint32_t total = n_new + n_old + n_dying;
        uint32_t new_after = n_new - (uint32_t)MIN((size_t)n_new, ret->n_kill);
        if (new_after < target && total < max_total)
                ret->launch = MIN(target - new_after, max_total - total);

        /* old instances go while enough ready ones remain */
        if (n_old > 0) {
                uint32_t ready = ready_new + ready_old;
                size_t killable = 0;
                /* not-ready old instances never count towards capacity: they can always go */
                for (size_t k = 0; k < no; k++)
                        if (!olds[k].ready)
                                killable++;
                if (ready > min_ready)
                        killable += MIN((size_t)(ready - min_ready), (size_t)ready_old);
                add_kills(ret, olds, no, killable, spec->kill_selection);
        }
        ret->done =
                ret->n_kill == 0 && ret->launch == 0 && n_old == 0 && n_new == target && ready_new == target;
}
