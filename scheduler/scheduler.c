/* SPDX-License-Identifier: Apache-2.0 */
#include "scheduler.h"

#include <ev.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "json.h"
#include "log.h"
#include "placement.h"
#include "status_record.h"
#include "store_sqlite.h"

#define PENDING_ACKS_MAX           65536 /* acknowledgements waiting for a commit */
#define RECONCILE_BATCH            1000
#define RECONCILE_RETRY_S          10.0
#define RECONCILE_RETRY_MAX        900.0
#define KILL_RETRY_S               60.0 /* a kill that got no answer is sent again */
#define TICK_S                     1.0
#define REVIVE_MIN_INTERVAL_S      1.0
#define REVIVE_REPEAT_S            5.0 /* work waits and no offer came since the last REVIVE: ask again */
#define QUEUE_REASONS_MAX          4
#define LAUNCHES_PER_ROUND_DEFAULT 5000
#define TRIM_AFTER_WRITES          1000 /* a commit this large was a burst: trim the heap after it */
#define TRIM_INTERVAL_S            1.0

typedef struct PendingAck {
        char *agent_id;
        char *task_id;
        uint8_t uuid[MESOS_UUID_SIZE];
        size_t uuid_len;
} PendingAck;

/* Why the last round could not place an app's instances, for /v2/queue. */
typedef struct QueueInfo {
        uint32_t processed, unused;
        uint32_t rejects[8];
        char reasons[QUEUE_REASONS_MAX][PLACEMENT_REASON_MAX];
        size_t n_reasons;
} QueueInfo;

struct Scheduler {
        struct ev_loop *loop;
        SchedulerConfig cfg;
        char fatal[512]; /* why the scheduler gave up (the master's ERROR); empty while it runs */
        Store *store;
        State state;
        Master *master;
        Deployment *deployments; /* running ones, oldest first */
        Hashmap queue_info;      /* app id → QueueInfo */

        PendingAck *acks;
        size_t n_acks, cap_acks;
        Arena *ack_ids; /* the acks' agent and task ids, freed with them */
        ev_prepare commit_watcher;
        ev_idle trim_idle;   /* after a large commit: free heap pages go back once the loop is idle */
        ev_timer trim_timer; /* ... at most once every TRIM_INTERVAL_S */
        double trimmed_at;
        ev_timer tick;
        ev_timer revive_timer; /* a REVIVE held back by REVIVE_MIN_INTERVAL_S goes out when it ends */
        ev_timer reconcile_timer;
        size_t n_unreconciled; /* known tasks the master has not answered for since we subscribed */
        bool reconciling;      /* deployments and launches wait until it answered (or RECONCILE_RETRY_S) */
        double reconcile_retry_s;
        bool suppressed;
        bool filtered; /* offers were declined with a filter since the last REVIVE */
        double last_revive;
        double last_offers;
        bool subscribed;

        scheduler_event_fn event_fn;
        void *event_userdata;

        MetricsRegistry *metrics;
        MetricCounter *m_updates, *m_offers, *m_launched, *m_killed, *m_acks, *m_declined, *m_strays;
        MetricCounter *m_commit_failures;
        MetricGauge *m_apps, *m_instances, *m_deployments, *m_heap_used, *m_heap_free;
        MetricHistogram *m_commit_seconds;
};

static void evaluate_app(Scheduler *s, App *app);
static void reconciled(Scheduler *s, const char *why);
static void want_offers(Scheduler *s);
static void reap_deployments(Scheduler *s);

static double now_s(void)
{
        return mesos_now();
}

static void emit(Scheduler *s, const char *type, json_t *payload)
{
        if (s->event_fn && payload)
                s->event_fn(type, payload, s->event_userdata);
        json_decref(payload);
}

static void iso_time(double t, char *buf, size_t size)
{
        time_t sec = (time_t)t;
        struct tm tm;
        gmtime_r(&sec, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03dZ", (int)((t - (double)sec) * 1000) % 1000);
}

/* ---- persistence ---- */

static void persist_instance(Scheduler *s, const Instance *i)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(STORE_OBJECT_MAX);
        PacerError err;

        if (instance_encode(i, &b) < 0 ||
            store_put(s->store, STORE_KIND_INSTANCE, i->task_id, b.data, b.len, &err) < 0)
                log_error_s(i->task_id, "cannot queue the instance record: %s", err.msg);
}

static void forget_instance(Scheduler *s, Instance *i)
{
        PacerError err;
        if (s->reconciling && !i->reconciled && s->n_unreconciled > 0)
                s->n_unreconciled--;
        if (store_delete(s->store, STORE_KIND_INSTANCE, i->task_id, &err) < 0)
                log_error_s(i->task_id, "cannot queue the instance deletion: %s", err.msg);
        state_instance_remove(&s->state, i);
}

/* An instance whose agent is partitioned (TASK_UNREACHABLE past --unreachable-expunge-after) or
 * that the master does not know at all (TASK_UNKNOWN) is given up, as Marathon's default
 * unreachableStrategy does: forgotten, so that a replacement is launched, and killed (should its
 * agent come back, the master kills it; if it reports in later, it is a stray and killed then). */
static void expunge_instance(Scheduler *s, Instance *i, TaskState state)
{
        log_warn_s(i->task_id, "%s: given up and replaced%s", task_state_to_string(state),
                   state == TASK_STATE(TASK_UNKNOWN) ? " (the master does not know it)" : "");
        emit(s, "instance_expunged_event",
             json_pack("{s:s, s:s, s:s}", "taskId", i->task_id, "appId", i->app ? i->app->id : "",
                       "taskStatus", task_state_to_string(state)));
        if (state == TASK_STATE(TASK_UNREACHABLE))
                s->master->ops->kill(s->master, i->task_id, i->agent ? i->agent->id : NULL, -1);
        forget_instance(s, i);
}

static int persist_app_version(Scheduler *s, const AppSpec *spec, PacerError *err)
{
        _cleanup_free_ char *key = NULL;

        if (asprintf(&key, "%s@%s", spec->id, spec->version) < 0)
                return -ENOMEM;
        return store_put(s->store, STORE_KIND_APP_VERSION, key, spec->json, spec->json_len, err);
}

/* A deployment is stored as a header and a record per step (see deployment.h). A change marks what
 * it touched; flush_deployments() writes it once per loop turn, so a step change costs one small
 * record however large the batch. */
static void persist_deployment(Scheduler *s, Deployment *d)
{
        d->dirty = true;
}

static void persist_step(Deployment *d, DeploymentStep *st)
{
        st->dirty = true;
        d->steps_dirty = true;
}

static int put_deployment(Scheduler *s, Deployment *d, PacerError *err)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(STORE_OBJECT_MAX);
        char key[DEPLOYMENT_ID_MAX + 24];
        int r = 0;

        if (d->dirty) {
                r = deployment_encode_header(d, &b);
                if (r >= 0)
                        r = store_put(s->store, STORE_KIND_DEPLOYMENT, d->id, b.data, b.len, err);
        }
        for (size_t i = 0; r >= 0 && i < d->n_steps; i++) {
                DeploymentStep *st = &d->steps[i];
                if (!d->dirty && !st->dirty)
                        continue;
                st->dirty = false;
                buf_reset(&b);
                r = deployment_encode_step(st, &b);
                if (r >= 0)
                        r = deployment_step_key(d->id, i, key, sizeof(key));
                if (r >= 0)
                        r = store_put(s->store, STORE_KIND_DEPLOYMENT_STEP, key, b.data, b.len, err);
        }
        if (r < 0 && !err->msg[0])
                pacer_error_set(err, -r, "%s",
                                r == -ENOMEM ? "out of memory" : "a step record is too large");
        return r;
}

/* Queues the records of every deployment changed since the last flush. Before every commit that an
 * acknowledgement, an API answer or a launch waits for. */
static void flush_deployments(Scheduler *s)
{
        for (Deployment *d = s->deployments; d; d = d->next) {
                PacerError err = { "" };

                if (!d->dirty && !d->steps_dirty)
                        continue;
                if (!d->finished && put_deployment(s, d, &err) < 0)
                        log_error("deployment %s: cannot queue its records: %s", d->id, err.msg);
                d->dirty = d->steps_dirty = false;
        }
}

/* Queues the deletion of a deployment's records: its header and n_steps step records. */
static void delete_deployment_records(Scheduler *s, const char *id, size_t n_steps)
{
        char key[DEPLOYMENT_ID_MAX + 24];

        store_delete(s->store, STORE_KIND_DEPLOYMENT, id, NULL);
        for (size_t i = 0; i < n_steps; i++)
                if (deployment_step_key(id, i, key, sizeof(key)) >= 0)
                        store_delete(s->store, STORE_KIND_DEPLOYMENT_STEP, key, NULL);
}

static void queue_ack(Scheduler *s, const TaskStatus *st)
{
        PendingAck *a;

        if (!st->has_uuid || st->uuid.len == 0 || st->uuid.len > MESOS_UUID_SIZE || !st->agent_id)
                return; /* master-generated updates carry no uuid and are never acknowledged */
        if (s->n_acks == s->cap_acks) {
                size_t cap = s->cap_acks ? s->cap_acks * 2 : 256;
                if (cap > PENDING_ACKS_MAX)
                        return; /* the master will resend it */
                PendingAck *n = realloc(s->acks, cap * sizeof(*n));
                if (!n)
                        return;
                s->acks = n;
                s->cap_acks = cap;
        }
        a = &s->acks[s->n_acks];
        if (!s->ack_ids && !(s->ack_ids = arena_new()))
                return;
        a->agent_id = arena_strdup(s->ack_ids, st->agent_id->value);
        a->task_id = arena_strdup(s->ack_ids, st->task_id->value);
        if (!a->agent_id || !a->task_id)
                return;
        memcpy(a->uuid, st->uuid.data, st->uuid.len);
        a->uuid_len = st->uuid.len;
        s->n_acks++;
}

static void drop_acks(Scheduler *s)
{
        if (s->ack_ids)
                arena_reset(s->ack_ids);
        s->n_acks = 0;
}

/* A burst (a round of thousands of launches, thousands of status updates) frees
 * its transient memory into holes among the long-lived state, and malloc keeps
 * it: tens of MiB at 100,000 instances. Once a commit of TRIM_AFTER_WRITES or
 * more is done and the loop has nothing else to do, the free pages inside
 * those holes go back to the system (malloc_trim), at most once every
 * TRIM_INTERVAL_S. */
static void on_trim_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
        Scheduler *s = w->data;
        double since = ev_now(loop) - s->trimmed_at;

        ev_idle_stop(loop, w);
        if (since < TRIM_INTERVAL_S) {
                ev_timer_set(&s->trim_timer, TRIM_INTERVAL_S - since, 0.);
                ev_timer_start(loop, &s->trim_timer);
                return;
        }
        double t0 = ev_time();
        malloc_trim(0);
        ev_now_update(loop);
        s->trimmed_at = ev_now(loop);
        log_debug("heap trimmed in %.1f ms", (s->trimmed_at - t0) * 1e3);
}

static void on_trim_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Scheduler *s = w->data;

        ev_idle_start(loop, &s->trim_idle);
}

static void want_trim(Scheduler *s)
{
        if (!ev_is_active(&s->trim_idle) && !ev_is_active(&s->trim_timer))
                ev_idle_start(s->loop, &s->trim_idle);
}

/* End of a loop turn: one transaction for everything this turn changed, and
 * only then the acknowledgements — an update is never acknowledged before it
 * is durable. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
        Scheduler *s = w->data;
        PacerError err = { "" };
        struct timespec t0, t1;
        int r;

        flush_deployments(s);
        reap_deployments(s);
        if (store_pending(s->store) == 0 && s->n_acks == 0)
                return;
        if (store_pending(s->store) >= TRIM_AFTER_WRITES)
                want_trim(s);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = store_pending(s->store) ? store_commit(s->store, &err) : 0;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        metrics_histogram_observe(s->m_commit_seconds,
                                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        if (r < 0) {
                metrics_counter_inc(s->m_commit_failures);
                log_error(
                        "store commit failed: %s; %zu status updates stay unacknowledged (the master resends "
                        "them)",
                        err.msg, s->n_acks);
                drop_acks(s);
                return;
        }
        for (size_t i = 0; i < s->n_acks; i++) {
                PendingAck *a = &s->acks[i];
                if (s->master->ops->acknowledge(s->master, a->agent_id, a->task_id, a->uuid, a->uuid_len) >=
                    0)
                        metrics_counter_inc(s->m_acks);
        }
        drop_acks(s);
}

/* An API call's answer can go out before the loop turn ends (libmicrohttpd writes it at once): what
 * it reports, the deployment it started or changed included, is committed before the call returns.
 * On failure the batch stays queued and the end of the turn tries again. */
static void commit_for_answer(Scheduler *s)
{
        PacerError err = { "" };

        flush_deployments(s);
        if (store_pending(s->store) == 0 || store_commit(s->store, &err) >= 0)
                return;
        metrics_counter_inc(s->m_commit_failures);
        log_error("store commit failed: %s; retried at the end of the loop turn", err.msg);
}

/* A change that must be stored all or nothing, or refused, is discarded from the batch when the
 * store refuses it. The batch may already hold writes of this turn's earlier events (status
 * updates waiting for their acknowledgement): they are committed first, so that a refused change
 * is discarded alone. */
static int commit_before_change(Scheduler *s, PacerError *err)
{
        return store_pending(s->store) > 0 ? store_commit(s->store, err) : 0;
}

/* ---- recovery ---- */

/* What recovery parses is what it needs: each app's record (its current
 * version), the versions its instances and running deployments name, and
 * nothing of the rest of the history, kept as stored text until something
 * needs it (state_app_version()). A history version that turns out
 * unreadable when needed is reported then and dropped, as if never stored:
 * its instances count as the current version's, a deployment naming it is
 * dropped. */
typedef struct LoadCtx {
        Scheduler *s;
        PacerError *err;
        Hashmap deployments; /* id → deployment record (json_t) being assembled */
} LoadCtx;

static int load_app(const char *key, const void *data, size_t len, void *userdata)
{
        LoadCtx *c = userdata;
        AppSpec *spec = NULL;
        PacerError e = { "" };
        App *app;
        int r;

        r = app_spec_from_stored(data, len, NULL, &spec, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return pacer_error_set(c->err, EBADMSG, "store: app %s is unreadable: %s", key, e.msg);
        r = state_app_add(&c->s->state, spec, &app);
        if (r < 0) {
                app_spec_free(spec);
                return r;
        }
        return 0;
}

/* A version joins its app's history unparsed; the app's current one is its app record already. */
static int load_version(const char *key, const void *data, size_t len, void *userdata)
{
        LoadCtx *c = userdata;
        const char *at = strrchr(key, '@'), *version;
        char id[APP_ID_MAX + 1];
        AppVersion *v;
        App *app;

        if (!at || at == key || (size_t)(at - key) > APP_ID_MAX || !at[1] ||
            !app_spec_version_valid(at + 1)) {
                log_warn("store: app version %s has a malformed key: skipped", key);
                return 0;
        }
        memcpy(id, key, (size_t)(at - key));
        id[at - key] = 0;
        version = at + 1;
        app = state_app(&c->s->state, id);
        if (!app || streq(app->current->version, version))
                return 0; /* of a deleted app; or the app record holds it */
        if (app->n_history == STATE_VERSIONS_KEPT &&
            strcmp(app->history[STATE_VERSIONS_KEPT - 1]->version, version) > 0)
                return 0; /* older than every version kept */
        v = app_version_new_stored(version, data, len);
        if (!v)
                return -ENOMEM;
        state_app_add_history(app, v);
        return 0;
}

static int load_instance(const char *key, const void *data, size_t len, void *userdata)
{
        LoadCtx *c = userdata;
        InstanceRecord rec;
        PacerError err;
        AppVersion *version;
        Instance *i;
        App *app;
        int r;

        r = instance_decode(data, len, &rec, &err);
        if (r < 0) {
                log_warn("store: instance %s is unreadable (%s): the master's reconciliation will tell", key,
                         err.msg);
                return 0;
        }
        app = state_app(&c->s->state, rec.app_id);
        if (!app) {
                log_warn("store: instance %s belongs to no known app %s: it will be killed if it runs", key,
                         rec.app_id);
                return 0;
        }
        r = state_app_version(app, rec.version, &version, &err);
        if (r == -ENOMEM)
                return r;
        if (r == -EBADMSG)
                log_error("store: %s; instance %s and the others of that version count as the current one's",
                          err.msg, key);
        if (r < 0)
                version = app->current; /* a version no longer kept */
        r = state_instance_add(&c->s->state, app, version, rec.task_id, &i);
        if (r == -EEXIST) {
                log_warn("store: instance %s names task %s, which another record holds: skipped", key,
                         rec.task_id);
                return 0;
        }
        if (r < 0)
                return r;
        i->state = rec.state;
        i->health = rec.health;
        i->registration = rec.registration;
        i->staged_at = rec.staged_at;
        i->started_at = rec.started_at;
        i->kill_sent = rec.kill_sent;
        if (*rec.agent_id) {
                Agent *a = state_agent_get(&c->s->state, rec.agent_id, rec.hostname, NULL, 0);
                if (a)
                        state_instance_set_agent(&c->s->state, i, a);
        }
        if (rec.n_ports) {
                i->ports = calloc(rec.n_ports, sizeof(uint32_t));
                if (!i->ports)
                        return -ENOMEM;
                memcpy(i->ports, rec.ports, rec.n_ports * sizeof(uint32_t));
                i->n_ports = (uint8_t)rec.n_ports;
        }
        return 0;
}

/* A deployment's header opens its record; its steps follow (load_deployment_step()). */
static int load_deployment(const char *key, const void *data, size_t len, void *userdata)
{
        LoadCtx *c = userdata;
        json_t *rec = NULL;
        PacerError err = { "" };
        int r;

        r = deployment_record_open(data, len, &rec, &err);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && !streq(deployment_record_id(rec), key)) {
                pacer_error_set(&err, EBADMSG, "it is deployment %s", deployment_record_id(rec));
                json_decref(rec);
                r = -EBADMSG;
        }
        if (r < 0) {
                /* its step records, if any, are dropped as orphans */
                log_warn("store: deployment %s is unreadable (%s): dropped", key, err.msg);
                store_delete(c->s->store, STORE_KIND_DEPLOYMENT, key, NULL);
                return 0;
        }
        r = hashmap_put(&c->deployments, deployment_record_id(rec), rec, NULL);
        if (r < 0)
                json_decref(rec);
        return r;
}

static int load_deployment_step(const char *key, const void *data, size_t len, void *userdata)
{
        LoadCtx *c = userdata;
        char id[DEPLOYMENT_ID_MAX];
        PacerError err = { "" };
        size_t index;
        json_t *rec;
        int r;

        if (deployment_step_key_parse(key, id, &index) < 0 || !(rec = hashmap_get(&c->deployments, id))) {
                log_warn("store: deployment step %s belongs to no deployment: dropped", key);
                store_delete(c->s->store, STORE_KIND_DEPLOYMENT_STEP, key, NULL);
                return 0;
        }
        r = deployment_record_add_step(rec, index, data, len, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* the deployment then lacks this step, and is dropped with all its records */
                log_warn("store: deployment step %s is unreadable (%s)", key, err.msg);
                if (r == -ERANGE)
                        store_delete(c->s->store, STORE_KIND_DEPLOYMENT_STEP, key, NULL);
        }
        return 0;
}

static int cmp_record_created(const void *a, const void *b)
{
        const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
        double cx = json_number_value(json_object_get(x, "created")),
               cy = json_number_value(json_object_get(y, "created"));

        return cx < cy ? -1 : cx > cy ? 1 : strcmp(deployment_record_id(x), deployment_record_id(y));
}

/* Turns the assembled records into running deployments, oldest first. */
static int resume_deployments(LoadCtx *c)
{
        size_t n = hashmap_count(&c->deployments), m = 0, it = 0;
        _cleanup_free_ json_t **recs = calloc(n + 1, sizeof(*recs));
        const char *k;
        void *v;
        int r = 0;

        if (!recs)
                return -ENOMEM;
        while (hashmap_next(&c->deployments, &it, &k, &v))
                recs[m++] = v;
        qsort(recs, m, sizeof(*recs), cmp_record_created);
        for (size_t i = 0; i < m; i++) {
                const char *id = deployment_record_id(recs[i]);
                size_t n_steps = deployment_record_n_steps(recs[i]);
                PacerError err = { "" };
                Deployment *d = NULL;

                if (r >= 0)
                        r = deployment_decode(recs[i], &c->s->state, &d, &err);
                if (r == -ENOMEM)
                        continue; /* what is left is freed below */
                if (r < 0) {
                        log_warn("store: deployment %s is unreadable (%s): dropped", id, err.msg);
                        delete_deployment_records(c->s, id, n_steps);
                        r = 0;
                        continue;
                }
                if (deployment_finished(d)) {
                        delete_deployment_records(c->s, id, n_steps);
                        deployment_free(d);
                        continue;
                }
                /* the one-record form is written again as a header and steps */
                d->dirty = deployment_record_is_legacy(recs[i]);
                Deployment **tail = &c->s->deployments;
                while (*tail)
                        tail = &(*tail)->next;
                *tail = d;
                for (size_t j = 0; j < d->n_steps; j++) {
                        App *app = state_app(&c->s->state, d->steps[j].app_id);
                        if (app && !step_state_is_final(d->steps[j].state))
                                app->deployment = d;
                }
        }
        for (size_t i = 0; i < m; i++)
                json_decref(recs[i]);
        hashmap_done(&c->deployments);
        return r;
}

static int recover(Scheduler *s, PacerError *err)
{
        LoadCtx c = { .s = s, .err = err, .deployments = HASHMAP_INIT };
        void *fid = NULL;
        size_t fid_len = 0;
        int r;

        r = store_get(s->store, STORE_KIND_META, STORE_META_FRAMEWORK_ID, &fid, &fid_len, err);
        if (r >= 0 && fid) {
                s->state.framework_id = strndup(fid, fid_len);
                free(fid);
        }
        r = store_load(s->store, STORE_KIND_APP, load_app, &c, err);
        if (r >= 0)
                r = store_load(s->store, STORE_KIND_APP_VERSION, load_version, &c, err);
        if (r >= 0)
                r = store_load(s->store, STORE_KIND_INSTANCE, load_instance, &c, err);
        if (r >= 0)
                r = store_load(s->store, STORE_KIND_DEPLOYMENT, load_deployment, &c, err);
        if (r >= 0)
                r = store_load(s->store, STORE_KIND_DEPLOYMENT_STEP, load_deployment_step, &c, err);
        if (r >= 0)
                r = resume_deployments(&c);
        else {
                size_t it = 0;
                const char *k;
                void *v;
                while (hashmap_next(&c.deployments, &it, &k, &v))
                        json_decref(v);
                hashmap_done(&c.deployments);
        }
        if (r < 0)
                return r;
        log_info("recovered %zu apps, %zu instances and %zu running deployments from the store%s%s",
                 hashmap_count(&s->state.apps), hashmap_count(&s->state.instances), (size_t)({
                         size_t n = 0;
                         for (Deployment *d = s->deployments; d; d = d->next)
                                 n++;
                         n;
                 }),
                 s->state.framework_id ? "; framework " : "", strempty(s->state.framework_id));
        return 0;
}

/* ---- deployments ---- */

static void finish_deployment(Scheduler *s, Deployment *d)
{
        char why[DEPLOYMENT_REASON_MAX + 300];
        const char *failure = deployment_failure(d, why, sizeof(why));

        if (d->finished)
                return;
        d->finished = true;
        if (failure) {
                log_info("deployment %s ended without applying everything: %s", d->id, failure);
                emit(s, "deployment_failed", json_pack("{s:s, s:s}", "id", d->id, "reason", failure));
        } else {
                log_info("deployment %s finished", d->id);
                emit(s, "deployment_success", json_pack("{s:s}", "id", d->id));
        }
        for (size_t i = 0; i < d->n_steps; i++) {
                App *app = state_app(&s->state, d->steps[i].app_id);
                if (app && app->deployment == d)
                        app->deployment = NULL;
        }
        delete_deployment_records(s, d->id, d->n_steps);
        metrics_gauge_add(s->m_deployments, -1);
}

/* Frees the deployments that finished during this loop turn. */
static void reap_deployments(Scheduler *s)
{
        for (Deployment **p = &s->deployments; *p;) {
                Deployment *d = *p;
                if (d->finished) {
                        *p = d->next;
                        deployment_free(d);
                } else
                        p = &d->next;
        }
}

static void step_finish(Scheduler *s, Deployment *d, DeploymentStep *st, StepState state, const char *reason)
{
        App *app = state_app(&s->state, st->app_id);

        st->state = state;
        st->finished_at = now_s();
        if (reason)
                snprintf(st->reason, sizeof(st->reason), "%s", reason);
        if (app && app->deployment == d)
                app->deployment = NULL;
        log_info("deployment %s: %s of %s %s%s%s", d->id, step_action_to_string(st->action), st->app_id,
                 step_state_to_string(state), reason ? ": " : "", strempty(reason));
        emit(s, state == STEP_SUCCEEDED ? "deployment_step_success" : "deployment_step_failure",
             json_pack("{s:s, s:s, s:s, s:s}", "deploymentId", d->id, "appId", st->app_id, "state",
                       step_state_to_string(state), "reason", st->reason));
        persist_step(d, st);
}

static bool deps_satisfied(Deployment *d, const DeploymentStep *st)
{
        for (size_t k = 0; k < st->n_deps; k++) {
                DeploymentStep *dep = deployment_step(d, st->deps[k]);
                if (dep && dep->state != STEP_SUCCEEDED)
                        return false;
        }
        return true;
}

static int64_t step_deadline_ns(const Scheduler *s, const DeploymentStep *st)
{
        const AppSpec *spec = st->to ? st->to->spec : st->from ? st->from->spec : NULL;

        for (size_t i = 0; spec && i < spec->n_labels; i++)
                if (streq(spec->labels[i].key, "pacer.deployment.deadline")) {
                        int64_t ns;
                        if (duration_parse(spec->labels[i].value, &ns, NULL) >= 0)
                                return ns;
                }
        return s->cfg.step_deadline_ns;
}

static void step_start(Scheduler *s, Deployment *d, DeploymentStep *st)
{
        App *app = state_app(&s->state, st->app_id);
        int64_t deadline = step_deadline_ns(s, st);

        st->state = STEP_RUNNING;
        st->started_at = now_s();
        st->deadline_at = deadline > 0 ? st->started_at + (double)deadline / 1e9 : 0;
        st->failures = 0;
        if (!st->rollback)
                st->reason[0] = 0; /* a retry starts afresh; a rollback says why it happens */
        if (app) {
                app->deployment = d;
                app->n_failures = 0;
                app->crash_loop = false;
        }
        emit(s, "deployment_info",
             json_pack("{s:s, s:s, s:s}", "deploymentId", d->id, "appId", st->app_id, "action",
                       step_action_to_string(st->action)));
        persist_step(d, st);
}

/* Kills what the planner says and learns whether the step is done. */
static void run_step(Scheduler *s, Deployment *d, DeploymentStep *st, App *app)
{
        PlanActions plan;
        bool changed = false;

        if (!app) {
                step_finish(s, d, st, STEP_SUCCEEDED, NULL);
                return;
        }
        planner_plan(app, st, &plan);
        for (size_t k = 0; k < plan.n_kill; k++) {
                Instance *i = plan.kill[k];
                int64_t grace = i->version->spec->task_kill_grace_seconds;
                if (s->master->ops->kill(s->master, i->task_id, i->agent ? i->agent->id : NULL,
                                         grace >= 0 ? grace * NSEC_PER_SEC : -1) < 0)
                        continue; /* not connected: the next evaluation tries again */
                i->kill_sent = true;
                i->kill_sent_at = now_s();
                persist_instance(s, i);
                metrics_counter_inc(s->m_killed);
                changed = true;
        }
        if (plan.launch > 0)
                want_offers(s);
        if (plan.done) {
                if (st->action == STEP_ACTION_STOP && app->n_instances == 0) {
                        PacerError err;
                        store_delete(s->store, STORE_KIND_APP, app->id, &err);
                        for (size_t h = 0; h < app->n_history; h++) {
                                char key[APP_ID_MAX + 40];
                                snprintf(key, sizeof(key), "%s@%s", app->id, app->history[h]->version);
                                store_delete(s->store, STORE_KIND_APP_VERSION, key, &err);
                        }
                        char key[APP_ID_MAX + 40];
                        snprintf(key, sizeof(key), "%s@%s", app->id, app->current->version);
                        store_delete(s->store, STORE_KIND_APP_VERSION, key, &err);
                        emit(s, "app_terminated_event", json_pack("{s:s}", "appId", app->id));
                        app->deployment = NULL;
                        state_app_remove(&s->state, app);
                        metrics_gauge_add(s->m_apps, -1);
                }
                step_finish(s, d, st, STEP_SUCCEEDED, NULL);
        }
        (void)changed;
}

/* Starts the steps whose dependencies are done, runs the running ones,
 * ends the deployment when every step is final. */
/* The dependency of st that failed or was stopped, which st would wait for forever, or NULL. */
static const DeploymentStep *dep_given_up(Deployment *d, const DeploymentStep *st)
{
        for (size_t k = 0; k < st->n_deps; k++) {
                const DeploymentStep *dep = deployment_step(d, st->deps[k]);
                if (dep && (dep->state == STEP_FAILED || dep->state == STEP_STOPPED))
                        return dep;
        }
        return NULL;
}

static void advance_deployment(Scheduler *s, Deployment *d)
{
        if (d->finished || s->reconciling)
                return; /* after a (re)subscription: first learn what runs */
        for (size_t i = 0; i < d->n_steps; i++) {
                DeploymentStep *st = &d->steps[i];
                const DeploymentStep *dep = st->state == STEP_WAITING ? dep_given_up(d, st) : NULL;
                if (dep) {
                        /* it would never start: it stops, and the deployment can end (failed) */
                        char why[DEPLOYMENT_REASON_MAX];
                        snprintf(why, sizeof(why), "not started: dependency %s %s", dep->app_id,
                                 step_state_to_string(dep->state));
                        step_finish(s, d, st, STEP_STOPPED, why);
                        continue;
                }
                if (st->state == STEP_WAITING && deps_satisfied(d, st))
                        step_start(s, d, st);
                if (st->state == STEP_RUNNING)
                        run_step(s, d, st, state_app(&s->state, st->app_id));
        }
        /* a step that finished may release another waiting on it */
        for (size_t i = 0; i < d->n_steps; i++) {
                DeploymentStep *st = &d->steps[i];
                if (st->state == STEP_WAITING && deps_satisfied(d, st)) {
                        step_start(s, d, st);
                        run_step(s, d, st, state_app(&s->state, st->app_id));
                }
        }
        if (deployment_finished(d))
                finish_deployment(s, d);
}

static void evaluate_app(Scheduler *s, App *app)
{
        Deployment *d = app->deployment;
        if (d)
                advance_deployment(s, d);
}

/* Rolls one step back to the version before it (a new step in place). */
static void adopt_instances(Scheduler *s, App *app, AppVersion *from);

/* A copy of base, unstamped (the caller gives it a version) and validated again as any definition,
 * with its instance count replaced when instances >= 0. */
static int spec_copy(const AppSpec *base, int64_t instances, AppSpec **ret)
{
        _cleanup_(json_decrefp) json_t *patch =
                instances >= 0 ? json_pack("{s:I}", "instances", (json_int_t)instances) : json_object();
        JsonErrors errs = { 0 };

        if (!patch)
                return -ENOMEM;
        return app_spec_merge(base, patch, NULL, ret, &errs);
}

static int rollback_step(Scheduler *s, Deployment *d, DeploymentStep *st, SchedulerResult *res)
{
        App *app = state_app(&s->state, st->app_id);
        PacerError err = { "" };
        AppSpec *copy = NULL;

        if (!st->from) {
                /* a new app rolled back is an app removed */
                st->action = STEP_ACTION_STOP;
                app_version_unref(st->to);
                st->to = NULL;
                if (app)
                        app->deleting = true;
        } else {
                char version[40];
                if (spec_copy(st->from->spec, -1, &copy) < 0) {
                        snprintf(res->message, sizeof(res->message), "cannot restore the previous version");
                        res->kind = SCHED_ERR_INVALID;
                        return -EINVAL;
                }
                /* the previous definition as a new version, so every instance of the bad one is replaced */
                iso_time(now_s(), version, sizeof(version));
                app_spec_set_version(copy, version);
                if (commit_before_change(s, &err) < 0) {
                        app_spec_free(copy);
                        res->kind = SCHED_ERR_STORE;
                        snprintf(res->message, sizeof(res->message), "store: %s", err.msg);
                        return -EIO;
                }
                if (persist_app_version(s, copy, &err) < 0 ||
                    store_put(s->store, STORE_KIND_APP, copy->id, copy->json, copy->json_len, &err) < 0 ||
                    store_commit(s->store, &err) < 0) {
                        app_spec_free(copy);
                        store_discard(s->store);
                        res->kind = SCHED_ERR_STORE;
                        snprintf(res->message, sizeof(res->message), "store: %s", err.msg);
                        return -EIO;
                }
                StepAction was = st->action;
                if (app && state_app_set_spec(&s->state, app, copy) < 0) {
                        app_spec_free(copy);
                        return -ENOMEM;
                }
                if (!app) {
                        /* a deletion that is over: the rollback creates the app again */
                        if (state_app_add(&s->state, copy, &app) < 0) {
                                app_spec_free(copy);
                                return -ENOMEM;
                        }
                        metrics_gauge_add(s->m_apps, 1);
                        was = STEP_ACTION_START;
                }
                AppVersion *old_to = st->to;
                st->to = app_version_ref(app->current);
                if (was == STEP_ACTION_SCALE && old_to) {
                        /* the same definition with the old count: what runs stays */
                        adopt_instances(s, app, old_to);
                        st->action = STEP_ACTION_SCALE;
                } else
                        st->action = was == STEP_ACTION_START ? STEP_ACTION_START : STEP_ACTION_RESTART;
                app_version_unref(old_to);
        }
        st->rollback = true;
        st->state = STEP_WAITING;
        if (app) {
                app->deleting = st->action == STEP_ACTION_STOP;
                app->deployment = d;
        }
        return 0;
}

static void fail_step(Scheduler *s, Deployment *d, DeploymentStep *st, const char *why)
{
        SchedulerResult res = { 0 };

        step_finish(s, d, st, STEP_FAILED, why);
        if (s->cfg.auto_rollback && !st->rollback && st->from) {
                log_info("deployment %s: rolling %s back to version %s", d->id, st->app_id,
                         st->from->spec->version);
                if (rollback_step(s, d, st, &res) >= 0) {
                        snprintf(st->reason, sizeof(st->reason), "rolled back: %s", why);
                        advance_deployment(s, d);
                }
        }
}

/* ---- offers ---- */

/* Work is waiting: make sure offers come. REVIVE also clears the filters of
 * earlier declines, so resources freed by a kill come back at once instead of
 * after the filter's 5 s; rate-limited, a deployment asks for it at every turn. */
static void want_offers(Scheduler *s)
{
        double now = now_s();
        /* A REVIVE can be undone at the master behind our back (a DECLINE or SUPPRESS overtaking it on
         * another connection, a master failing over): work waiting and no offers coming is the only
         * sign of it, so ask again then. */
        bool starved = now - MAX(s->last_revive, s->last_offers) >= REVIVE_REPEAT_S;

        if (!s->subscribed || !(s->suppressed || s->filtered || starved))
                return;
        if (!s->suppressed && now - s->last_revive < REVIVE_MIN_INTERVAL_S) {
                /* not at the next tick, up to a second later: as soon as the interval allows */
                if (!ev_is_active(&s->revive_timer)) {
                        ev_timer_set(&s->revive_timer, s->last_revive + REVIVE_MIN_INTERVAL_S - now, 0.);
                        ev_timer_start(s->loop, &s->revive_timer);
                }
                return;
        }
        if (s->master->ops->revive(s->master) >= 0) {
                s->suppressed = false;
                s->filtered = false;
                s->last_revive = now;
                log_debug("reviving offers: work is waiting");
        }
}

static void on_revive_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        want_offers(w->data);
}

/* Instances an app wants launched now, of which version. */
static uint32_t launch_demand(Scheduler *s, App *app, AppVersion **ret_version)
{
        uint32_t active = 0;

        *ret_version = app->current;
        if (app->deleting || app->crash_loop || now_s() < app->next_launch_at)
                return 0;
        if (app->deployment) {
                DeploymentStep *st = deployment_step(app->deployment, app->id);
                if (!st || st->state != STEP_RUNNING || !st->to)
                        return 0;
                PlanActions plan;
                planner_plan(app, st, &plan);
                *ret_version = st->to;
                return plan.launch;
        }
        /* steady state: keep the count (replaces failed instances with the current version). Every
         * version counts, as in Marathon: after a stopped step the app stays as it stood, old and new
         * instances side by side, rather than growing new ones next to the old */
        for (Instance *i = app->instances; i; i = i->next)
                if (instance_active(i))
                        active++;
        return active < app->current->spec->instances ? app->current->spec->instances - active : 0;
}

static QueueInfo *queue_info(Scheduler *s, const App *app)
{
        QueueInfo *q = hashmap_get(&s->queue_info, app->id);
        if (q)
                return q;
        q = calloc(1, sizeof(*q) + strlen(app->id) + 1);
        if (!q)
                return NULL;
        char *key = (char *)(q + 1);
        strcpy(key, app->id);
        if (hashmap_put(&s->queue_info, key, q, NULL) < 0) {
                free(q);
                return NULL;
        }
        return q;
}

typedef struct Wanted {
        App *app;
        AppVersion *version;
        size_t app_index;
        uint32_t ports[INSTANCE_PORTS_MAX];
        size_t n_ports;
} Wanted;

/* The tasks one offer launches. */
typedef struct OfferLaunch {
        Arena *arena;
        TaskInfo **tasks;
        Instance **launched;
        size_t n_tasks;
} OfferLaunch;

static void offer_launch_done(OfferLaunch *l)
{
        free(l->tasks);
        free(l->launched);
        arena_free(l->arena);
        *l = (OfferLaunch){ 0 };
}

/* Creates (and queues for the store) the instances placed on offer o and
 * their TaskInfos. Returns how many. */
static size_t build_launches(Scheduler *s, const Mesos__V1__Offer *of, size_t o, const PlacementResult *res,
                             const PlacementRequest *reqs, Wanted *wanted, OfferLaunch *l)
{
        l->arena = arena_new();
        l->tasks = calloc(res->n_launches, sizeof(*l->tasks));
        l->launched = calloc(res->n_launches, sizeof(*l->launched));
        for (size_t k = 0; l->arena && l->tasks && l->launched && k < res->n_launches; k++) {
                const PlacementLaunch *pl = &res->launches[k];
                if (pl->offer != o)
                        continue;
                Wanted *w = &wanted[reqs[pl->request].app];
                Instance *inst;
                if (state_instance_new(&s->state, w->app, w->version, &inst) < 0)
                        continue;
                Agent *agent = state_agent_get(&s->state, of->agent_id->value, of->hostname, NULL, 0);
                state_instance_set_agent(&s->state, inst, agent);
                inst->ports = calloc(pl->n_host_ports + 1, sizeof(uint32_t));
                if (inst->ports && pl->n_host_ports > 0) { /* no ports: host_ports is NULL */
                        memcpy(inst->ports, pl->host_ports, pl->n_host_ports * sizeof(uint32_t));
                        inst->n_ports = (uint8_t)pl->n_host_ports;
                }
                TaskInfo *ti;
                if (launch_task_info(l->arena, &s->cfg.launch, inst, of->agent_id->value, of->hostname,
                                     inst->ports, inst->n_ports, pl->task_resources, pl->n_task_resources,
                                     pl->executor_resources, pl->n_executor_resources, &ti) < 0) {
                        state_instance_remove(&s->state, inst);
                        continue;
                }
                persist_instance(s, inst);
                l->tasks[l->n_tasks] = ti;
                l->launched[l->n_tasks++] = inst;
        }
        return l->n_tasks;
}

static void handle_offers(Scheduler *s, const Mesos__V1__Scheduler__Event__Offers *ev)
{
        size_t n_offers = ev->n_offers, n_apps = 0, n_req = 0, cap_req, max_req = s->cfg.launches_per_round;
        _cleanup_free_ PlacementApp *apps = NULL;
        _cleanup_free_ PlacementRequest *reqs = NULL;
        _cleanup_free_ Wanted *wanted = NULL;
        _cleanup_free_ PlacementInstance *insts = NULL;
        _cleanup_free_ PlacementAttribute *attrs = NULL;
        _cleanup_(placement_result_freep) PlacementResult *res = NULL;
        _cleanup_free_ char **declines = NULL;
        size_t n_declines = 0, n_insts = 0, n_attrs = 0;
        const char *k;
        void *v;
        size_t it = 0;

        metrics_counter_add(s->m_offers, n_offers);
        s->last_offers = now_s();
        if (s->reconciling) {
                /* nothing is placed on a state the master has not confirmed yet */
                _cleanup_free_ char **ids = calloc(n_offers + 1, sizeof(*ids));
                for (size_t o = 0; ids && o < n_offers; o++)
                        ids[o] = ev->offers[o]->id->value;
                if (ids)
                        s->master->ops->decline(s->master, ids, n_offers, 1.0);
                return;
        }
        for (size_t o = 0; o < n_offers; o++) {
                const Mesos__V1__Offer *of = ev->offers[o];
                if (of->agent_id && of->agent_id->value)
                        state_agent_get(&s->state, of->agent_id->value, of->hostname,
                                        (const Mesos__V1__Attribute *const *)of->attributes,
                                        of->n_attributes);
        }

        /* what is wanted, app by app */
        cap_req = MIN(max_req, (size_t)hashmap_count(&s->state.instances) + 1024);
        apps = calloc(hashmap_count(&s->state.apps) + 1, sizeof(*apps));
        reqs = calloc(cap_req + 1, sizeof(*reqs));
        wanted = calloc(hashmap_count(&s->state.apps) + 1, sizeof(*wanted));
        insts = calloc(hashmap_count(&s->state.instances) + 1, sizeof(*insts));
        size_t attr_cap = 0;
        for (it = 0; hashmap_next(&s->state.instances, &it, &k, &v);)
                attr_cap += ((Instance *)v)->agent ? ((Instance *)v)->agent->n_attrs : 0;
        attrs = calloc(attr_cap + 1, sizeof(*attrs));
        declines = calloc(n_offers + 1, sizeof(char *));
        if (!apps || !reqs || !wanted || !insts || !attrs || !declines)
                return;
        for (it = 0; hashmap_next(&s->state.apps, &it, &k, &v) && n_req < cap_req;) {
                App *app = v;
                AppVersion *ver;
                uint32_t n = launch_demand(s, app, &ver);
                if (n == 0)
                        continue;
                const AppSpec *spec = ver->spec;
                Wanted *w = &wanted[n_apps];
                w->app = app;
                w->version = ver;
                w->app_index = n_apps;
                w->n_ports = MIN(spec->n_ports, (size_t)INSTANCE_PORTS_MAX);
                for (size_t p = 0; p < w->n_ports; p++)
                        w->ports[p] = spec->require_ports ? spec->ports[p].port : 0;
                PlacementApp *pa = &apps[n_apps];
                pa->id = app->id;
                pa->constraints = spec->constraints;
                pa->n_constraints = spec->n_constraints;
                pa->instances = &insts[n_insts];
                for (Instance *i = app->instances; i; i = i->next) {
                        if (!instance_active(i))
                                continue;
                        PlacementInstance *pi = &insts[n_insts++];
                        pi->hostname = i->agent ? i->agent->hostname : NULL;
                        pi->attributes = &attrs[n_attrs];
                        for (size_t a = 0; i->agent && a < i->agent->n_attrs; a++)
                                attrs[n_attrs++] = (PlacementAttribute){ i->agent->attr_names[a],
                                                                         i->agent->attr_values[a] };
                        pi->n_attributes = i->agent ? i->agent->n_attrs : 0;
                        pa->n_instances++;
                }
                for (uint32_t r = 0; r < n && n_req < cap_req; r++) {
                        PlacementRequest *rq = &reqs[n_req++];
                        rq->app = n_apps;
                        rq->cpus = spec->cpus;
                        rq->mem = spec->mem;
                        rq->disk = spec->disk;
                        rq->ports = w->ports;
                        rq->n_ports = w->n_ports;
                        rq->executor_cpus = s->cfg.launch.executor_cpus;
                        rq->executor_mem = s->cfg.launch.executor_mem;
                        rq->executor_disk = s->cfg.launch.executor_disk;
                }
                n_apps++;
        }

        if (n_req > 0) {
                PlacementInput in = {
                        .offers = (const Mesos__V1__Offer *const *)ev->offers,
                        .n_offers = n_offers,
                        .apps = apps,
                        .n_apps = n_apps,
                        .requests = reqs,
                        .n_requests = n_req,
                };
                if (placement_compute(&in, &res) < 0)
                        res = NULL;
        }

        /* launches: built for every offer, stored, and only then sent (one ACCEPT per offer). A task
         * the master runs is always one the store knows: after a crash it is recovered, not killed as
         * a stray; and when the store cannot commit, nothing is launched */
        _cleanup_free_ OfferLaunch *ol = calloc(n_offers + 1, sizeof(*ol));
        size_t n_launching = 0;
        bool stored = true;
        if (!ol)
                return;
        for (size_t o = 0; res && o < n_offers; o++)
                if (res->offers[o].used)
                        n_launching += build_launches(s, ev->offers[o], o, res, reqs, wanted, &ol[o]);
        if (n_launching > 0) {
                PacerError err = { "" };
                flush_deployments(s); /* the progress that led to these launches goes with them */
                if (store_commit(s->store, &err) < 0) {
                        metrics_counter_inc(s->m_commit_failures);
                        log_error("store commit failed: %s; the %zu launches of this offer round are not "
                                  "sent",
                                  err.msg, n_launching);
                        stored = false;
                }
        }
        for (size_t o = 0; o < n_offers; o++) {
                const Mesos__V1__Offer *of = ev->offers[o];
                OfferLaunch *l = &ol[o];

                if (l->n_tasks > 0 && stored &&
                    s->master->ops->accept(s->master, of->id->value, l->tasks, l->n_tasks,
                                           s->cfg.refuse_seconds) >= 0) {
                        s->filtered = true;
                        for (size_t t = 0; t < l->n_tasks; t++) {
                                log_info_s(l->launched[t]->task_id, "launching on %s (%s)", of->hostname,
                                           l->launched[t]->app->id);
                                emit(s, "status_update_event",
                                     json_pack("{s:s, s:s, s:s, s:s}", "taskId", l->launched[t]->task_id,
                                               "appId", l->launched[t]->app->id, "taskStatus",
                                               "TASK_STAGING", "host", of->hostname));
                        }
                        metrics_counter_add(s->m_launched, l->n_tasks);
                } else {
                        for (size_t t = 0; t < l->n_tasks; t++)
                                forget_instance(s, l->launched[t]);
                        if (of->id && of->id->value)
                                declines[n_declines++] = of->id->value;
                }
                offer_launch_done(l);
        }

        /* why the rest waits (for /v2/queue), app by app */
        for (size_t r = 0; res && r < res->n_requests; r++) {
                const PlacementRequestResult *rr = &res->requests[r];
                if (rr->placed)
                        continue;
                QueueInfo *q = queue_info(s, wanted[reqs[r].app].app);
                if (!q)
                        continue;
                q->processed = rr->processed;
                q->unused = (uint32_t)n_offers;
                for (size_t j = 0; j < _PLACEMENT_REJECT_MAX && j < ELEMENTSOF(q->rejects); j++)
                        q->rejects[j] = rr->rejects[j];
                q->n_reasons = 0;
                for (size_t j = 0; j < rr->n_reasons && j < QUEUE_REASONS_MAX; j++)
                        snprintf(q->reasons[q->n_reasons++], PLACEMENT_REASON_MAX, "%s", rr->reasons[j]);
        }

        if (n_declines > 0) {
                bool idle = n_req == 0;
                s->master->ops->decline(s->master, declines, n_declines,
                                        idle ? s->cfg.idle_refuse_seconds : s->cfg.refuse_seconds);
                s->filtered = true;
                metrics_counter_add(s->m_declined, n_declines);
                if (idle && !s->suppressed && s->master->ops->suppress(s->master) >= 0) {
                        s->suppressed = true;
                        log_debug("nothing to launch: suppressing offers");
                }
        }
}

/* ---- status updates ---- */

static void note_failure(Scheduler *s, App *app, Instance *i, const TaskStatus *st)
{
        const AppSpec *spec = app->current->spec;
        double now = now_s();
        char msg[512];

        snprintf(msg, sizeof(msg), "%s: %s", task_state_to_string(st->state),
                 st->message ? st->message : "");
        free(app->last_failure);
        app->last_failure = strdup(msg);
        app->last_failure_at = now;

        /* launch backoff: backoffSeconds × backoffFactor^n, capped, for consecutive failures. As
         * Marathon forgets a delay once it is maxLaunchDelaySeconds overdue, a failure that long
         * after the last delay ran out starts over from backoffSeconds */
        if (app->next_launch_at > 0 && now - app->next_launch_at > spec->max_launch_delay_seconds)
                app->backoff_s = spec->backoff_seconds;
        app->next_launch_at = now + app->backoff_s;
        app->backoff_s = MIN(app->backoff_s * spec->backoff_factor, spec->max_launch_delay_seconds);

        /* crash loop: failures of the current version within the window */
        if (i->version != app->current)
                return;
        double window = (double)s->cfg.crash_loop_window_ns / 1e9;
        size_t n = 0;
        for (size_t k = 0; k < app->n_failures; k++)
                if (now - app->failure_times[k] <= window)
                        app->failure_times[n++] = app->failure_times[k];
        if (n < ELEMENTSOF(app->failure_times))
                app->failure_times[n++] = now;
        app->n_failures = n;
        if (s->cfg.crash_loop_failures > 0 && n >= s->cfg.crash_loop_failures && !app->crash_loop) {
                char why[DEPLOYMENT_REASON_MAX];
                app->crash_loop = true;
                snprintf(why, sizeof(why), "crash loop: %zu failures in %.0fs, last: %.160s", n, window,
                         msg);
                log_error("app %s: %s; no more launches until it is changed or retried", app->id, why);
                Deployment *d = app->deployment;
                DeploymentStep *stp = d ? deployment_step(d, app->id) : NULL;
                if (stp && stp->state == STEP_RUNNING)
                        fail_step(s, d, stp, why);
        }
}

static void apply_record(Instance *i, const TaskStatus *st)
{
        StatusRecord rec;

        if (!st->has_data || st->data.len == 0)
                return;
        if (status_record_decode(st->data.data, st->data.len, &rec, NULL) < 0)
                return; /* not from pacer-executor: the Mesos fields are all there is */
        i->health = rec.healthy;
        i->registration = rec.registration;
        i->consecutive_failures = (uint16_t)MIN(rec.consecutive_failures, 65535u);
        if (*rec.last_error) {
                free(i->last_message);
                i->last_message = strdup(rec.last_error);
        }
}

static void handle_update(Scheduler *s, const TaskStatus *st)
{
        const char *task_id = st->task_id ? st->task_id->value : NULL;
        Instance *i;
        App *app;

        metrics_counter_inc(s->m_updates);
        if (!task_id)
                return;
        i = state_instance(&s->state, task_id);
        if (!i) {
                if (!task_state_is_terminal(st->state) && st->state != TASK_STATE(TASK_UNKNOWN)) {
                        /* a task we do not know: a stray of an earlier incarnation, or someone else's launch
                         */
                        log_warn_s(task_id, "%s for a task this scheduler does not know: killing it",
                                   task_state_to_string(st->state));
                        s->master->ops->kill(s->master, task_id, st->agent_id ? st->agent_id->value : NULL,
                                             -1);
                        metrics_counter_inc(s->m_strays);
                }
                queue_ack(s, st);
                return;
        }
        app = i->app;
        if (!i->reconciled) {
                i->reconciled = true;
                if (s->reconciling && s->n_unreconciled > 0)
                        s->n_unreconciled--; /* the gate opens once the update is handled (on_event) */
        }
        if (st->has_reason && st->reason == MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION &&
            st->state == i->state && !st->has_data) {
                queue_ack(s, st);
                return; /* confirmation only */
        }
        TaskState before = i->state;
        Health health_before = i->health;
        RegistrationState reg_before = i->registration;
        i->state = st->state;
        apply_record(i, st);
        if (st->has_healthy && !st->has_data)
                i->health = st->healthy ? HEALTH_HEALTHY : HEALTH_UNHEALTHY;
        if (st->state == TASK_STATE(TASK_RUNNING) && i->started_at == 0)
                i->started_at = st->has_timestamp ? st->timestamp : now_s();
        if (st->agent_id && st->agent_id->value && !i->agent) {
                Agent *a = state_agent_get(&s->state, st->agent_id->value, NULL, NULL, 0);
                if (a)
                        state_instance_set_agent(&s->state, i, a);
        }
        if (before != st->state || health_before != i->health || reg_before != i->registration)
                emit(s, "status_update_event",
                     json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s}", "taskId", i->task_id, "appId", app->id,
                               "taskStatus", task_state_to_string(st->state), "message", st->message,
                               "healthy",
                               i->health == HEALTH_HEALTHY     ? "true"
                               : i->health == HEALTH_UNHEALTHY ? "false"
                                                               : "unknown",
                               "registration", strna(registration_state_to_string(i->registration))));
        if (health_before != i->health && i->health != HEALTH_UNKNOWN)
                emit(s, "instance_health_changed_event",
                     json_pack("{s:s, s:s, s:s, s:b}", "instanceId", i->task_id, "appId", app->id,
                               "runSpecVersion", i->version ? i->version->version : "", "healthy",
                               i->health == HEALTH_HEALTHY));
        if (reg_before != i->registration)
                emit(s, "pacer_registration_event",
                     json_pack("{s:s, s:s, s:s, s:s}", "taskId", i->task_id, "appId", app->id,
                               "registration", strna(registration_state_to_string(i->registration)),
                               "previous", strna(registration_state_to_string(reg_before))));

        if (st->state == TASK_STATE(TASK_UNREACHABLE)) {
                if (i->unreachable_since == 0)
                        i->unreachable_since = now_s();
        } else
                i->unreachable_since = 0;
        if (task_state_is_terminal(st->state)) {
                bool expected = i->kill_sent && (st->state == TASK_STATE(TASK_KILLED) ||
                                                 st->state == TASK_STATE(TASK_FINISHED));
                if (!expected && st->state != TASK_STATE(TASK_FINISHED))
                        note_failure(s, app, i, st);
                log_info_s(task_id, "%s%s%s", task_state_to_string(st->state), st->message ? ": " : "",
                           strempty(st->message));
                forget_instance(s, i);
                i = NULL;
        } else if (st->state == TASK_STATE(TASK_UNKNOWN) ||
                   (i->unreachable_since > 0 && s->cfg.unreachable_expunge_ns <= 0)) {
                expunge_instance(s, i, st->state);
                i = NULL;
        } else
                persist_instance(s, i);
        queue_ack(s, st);

        if (app->deleting) {
                evaluate_app(s, app); /* its removal may end here: app is freed then */
                return;
        }
        evaluate_app(s, app);
        if (!app->deployment) {
                AppVersion *v;
                if (launch_demand(s, app, &v) > 0)
                        want_offers(s);
        }
}

/* ---- reconciliation ---- */

/* Asks for offers when any app waits for instances. */
static void want_offers_for_demand(Scheduler *s)
{
        AppVersion *v;
        const char *k;
        void *a;
        size_t it = 0;

        while (hashmap_next(&s->state.apps, &it, &k, &a))
                if (launch_demand(s, a, &v) > 0) {
                        want_offers(s);
                        return;
                }
}

/* The gate after a (re)subscription opens: deployments resume and launches go out. */
static void reconciled(Scheduler *s, const char *why)
{
        s->reconciling = false;
        log_info("reconciled (%s): deployments resume", why);
        for (Deployment *d = s->deployments, *next; d; d = next) {
                next = d->next;
                advance_deployment(s, d);
        }
        want_offers_for_demand(s);
}

static void reconcile_all(Scheduler *s, bool only_unconfirmed)
{
        char *ids[RECONCILE_BATCH], *agents[RECONCILE_BATCH];
        size_t n = 0, total = 0;
        const char *k;
        void *v;
        size_t it = 0;

        while (hashmap_next(&s->state.instances, &it, &k, &v)) {
                Instance *i = v;
                if (only_unconfirmed && i->reconciled)
                        continue;
                ids[n] = i->task_id;
                agents[n] = i->agent ? i->agent->id : NULL;
                n++;
                total++;
                if (n == RECONCILE_BATCH) {
                        s->master->ops->reconcile(s->master, ids, agents, n);
                        n = 0;
                }
        }
        if (n > 0)
                s->master->ops->reconcile(s->master, ids, agents, n);
        if (total)
                log_info("asked the master about %zu known tasks", total);
}

static void on_reconcile_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Scheduler *s = w->data;
        bool unconfirmed = false;
        const char *k;
        void *v;
        size_t it = 0;

        if (!s->subscribed)
                return;
        if (s->reconciling) {
                char why[96];
                snprintf(why, sizeof(why), "%zu known tasks still unanswered after %.0fs; going on",
                         s->n_unreconciled, RECONCILE_RETRY_S);
                reconciled(s, why);
        }
        while (hashmap_next(&s->state.instances, &it, &k, &v))
                if (!((Instance *)v)->reconciled) {
                        unconfirmed = true;
                        break;
                }
        if (unconfirmed) {
                /* explicit, with truncated exponential backoff until every task got an answer */
                reconcile_all(s, true);
                s->reconcile_retry_s = MIN(s->reconcile_retry_s * 2, RECONCILE_RETRY_MAX);
        } else {
                /* periodic implicit reconciliation finds strays */
                s->master->ops->reconcile(s->master, NULL, NULL, 0);
                s->reconcile_retry_s = s->cfg.reconcile_interval_s;
        }
        ev_timer_set(w, s->reconcile_retry_s, 0.);
        ev_timer_start(loop, w);
}

/* ---- master callbacks ---- */

static void on_subscribed(const char *framework_id, void *userdata)
{
        Scheduler *s = userdata;
        PacerError err;
        const char *k;
        void *v;
        size_t it = 0;

        s->subscribed = true;
        s->suppressed = false; /* a new subscription starts unsuppressed, without filters */
        s->filtered = false;
        if (!s->state.framework_id || !streq(s->state.framework_id, framework_id)) {
                free(s->state.framework_id);
                s->state.framework_id = strdup(framework_id);
                if (store_put(s->store, STORE_KIND_META, STORE_META_FRAMEWORK_ID, framework_id,
                              strlen(framework_id), &err) >= 0 &&
                    store_commit(s->store, &err) < 0)
                        log_error("cannot persist the framework id: %s", err.msg);
        }
        while (hashmap_next(&s->state.instances, &it, &k, &v))
                ((Instance *)v)->reconciled = false;
        s->n_unreconciled = hashmap_count(&s->state.instances);
        s->reconciling = s->n_unreconciled > 0;
        if (s->reconciling)
                log_info("deployments and launches wait until the master has answered for the %zu known "
                         "tasks",
                         s->n_unreconciled);
        reconcile_all(s, false);
        /* implicit reconciliation: the master reports every task it knows, strays included */
        s->master->ops->reconcile(s->master, NULL, NULL, 0);
        s->reconcile_retry_s = MIN(RECONCILE_RETRY_S, s->cfg.reconcile_interval_s);
        ev_timer_stop(s->loop, &s->reconcile_timer);
        ev_timer_set(&s->reconcile_timer, s->reconcile_retry_s, 0.);
        ev_timer_start(s->loop, &s->reconcile_timer);
        emit(s, "subscribe_event", json_pack("{s:s}", "frameworkId", framework_id));
}

/* ERROR ends the framework's life at this master: it was torn down by an
 * operator, its failover timeout ran out, or it may not subscribe. Subscribing
 * again cannot help, so the scheduler stops (as Marathon does). A removed
 * framework id can never be used again: it is forgotten, and the next start
 * registers a new framework, whose reconciliation finds the old tasks gone. */
static void handle_error(Scheduler *s, const char *message)
{
        PacerError err;
        bool removed = strstr(message, "removed") || strstr(message, "completed") ||
                       strstr(message, "torn down") || strstr(message, "teardown");

        log_error("the master reports an error: %s", message);
        if (removed && s->state.framework_id) {
                log_error("framework %s no longer exists at the master: forgetting it; the next start "
                          "registers a new framework",
                          s->state.framework_id);
                if (store_delete(s->store, STORE_KIND_META, STORE_META_FRAMEWORK_ID, &err) < 0 ||
                    store_commit(s->store, &err) < 0)
                        log_error("cannot forget the framework id: %s", err.msg);
                free(s->state.framework_id);
                s->state.framework_id = NULL;
        }
        snprintf(s->fatal, sizeof(s->fatal), "the master ended this framework: %s", message);
        ev_break(s->loop, EVBREAK_ALL);
}

static void on_event(const Mesos__V1__Scheduler__Event *ev, void *userdata)
{
        Scheduler *s = userdata;

        switch (ev->type) {
        case MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS:
                if (ev->offers)
                        handle_offers(s, ev->offers);
                break;
        case MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE:
                if (ev->update && ev->update->status)
                        handle_update(s, ev->update->status);
                if (s->reconciling && s->n_unreconciled == 0)
                        reconciled(s, "the master answered for every known task");
                break;
        case MESOS__V1__SCHEDULER__EVENT__TYPE__RESCIND:
                break; /* offers are used or declined at once: nothing held */
        case MESOS__V1__SCHEDULER__EVENT__TYPE__FAILURE:
                if (ev->failure && ev->failure->executor_id)
                        log_info("executor %s ended (status %d)", ev->failure->executor_id->value,
                                 ev->failure->has_status ? ev->failure->status : -1);
                break;
        case MESOS__V1__SCHEDULER__EVENT__TYPE__ERROR:
                handle_error(s, ev->error && ev->error->message ? ev->error->message : "(no message)");
                break;
        default:
                break;
        }
}

static void on_disconnected(const char *why, void *userdata)
{
        Scheduler *s = userdata;
        s->subscribed = false;
}

/* Deadlines, kills without an answer, backoffs that ran out. */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
        Scheduler *s = w->data;
        double now = now_s();
        const char *k;
        void *v;
        size_t it = 0;

        for (Deployment *d = s->reconciling ? NULL : s->deployments, *next; d; d = next) {
                next = d->next;
                for (size_t i = 0; i < d->n_steps; i++) {
                        DeploymentStep *st = &d->steps[i];
                        if (st->state == STEP_RUNNING && st->deadline_at > 0 && now > st->deadline_at) {
                                char why[DEPLOYMENT_REASON_MAX];
                                snprintf(why, sizeof(why), "deadline of %.0fs passed",
                                         st->deadline_at - st->started_at);
                                fail_step(s, d, st, why);
                        }
                }
                advance_deployment(s, d);
        }
        if (!s->subscribed)
                return;
        char **expired = NULL; /* task ids: expunging changes the table, and evaluating an app may
                                * remove other instances */
        size_t n_expired = 0, cap_expired = 0;
        double expunge_after = (double)s->cfg.unreachable_expunge_ns / 1e9;
        while (hashmap_next(&s->state.instances, &it, &k, &v)) {
                Instance *i = v;
                if (i->kill_sent && now - i->kill_sent_at > KILL_RETRY_S) {
                        i->kill_sent_at = now;
                        s->master->ops->kill(s->master, i->task_id, i->agent ? i->agent->id : NULL, -1);
                }
                if (i->unreachable_since > 0 && now - i->unreachable_since >= expunge_after) {
                        if (n_expired == cap_expired) {
                                size_t cap = cap_expired ? 2 * cap_expired : 16;
                                char **n = realloc(expired, cap * sizeof(*n));
                                if (!n)
                                        break; /* the rest at the next tick */
                                expired = n;
                                cap_expired = cap;
                        }
                        if (!(expired[n_expired] = strdup(i->task_id)))
                                break;
                        n_expired++;
                }
        }
        for (size_t e = 0; e < n_expired; e++) {
                Instance *i = state_instance(&s->state, expired[e]);
                if (i && i->unreachable_since > 0) {
                        App *app = i->app;
                        expunge_instance(s, i, TASK_STATE(TASK_UNREACHABLE));
                        evaluate_app(s, app);
                }
                free(expired[e]);
        }
        free(expired);
        want_offers_for_demand(s);
        metrics_gauge_set(s->m_apps, (double)hashmap_count(&s->state.apps));
        metrics_gauge_set(s->m_instances, (double)hashmap_count(&s->state.instances));
}

/* ---- changes from the API ---- */

static StepAction classify(const App *app, const AppChange *c)
{
        if (!c->spec)
                return STEP_ACTION_STOP;
        if (!app)
                return STEP_ACTION_START;
        if (c->restart)
                return STEP_ACTION_RESTART;
        /* only the count changed: a scale, no instance is replaced */
        const AppSpec *a = app->current->spec, *b = c->spec;
        _cleanup_(json_decrefp) json_t *ja = app_spec_to_json(a), *jb = app_spec_to_json(b);
        if (ja && jb) {
                json_object_del(ja, "instances");
                json_object_del(jb, "instances");
                json_object_del(ja, "version");
                json_object_del(jb, "version");
                if (json_equal(ja, jb))
                        return STEP_ACTION_SCALE;
        }
        return STEP_ACTION_RESTART;
}

static void result_set(SchedulerResult *res, SchedulerError kind, const char *fmt, ...) _printf_(3, 4);
static void result_set(SchedulerResult *res, SchedulerError kind, const char *fmt, ...)
{
        va_list ap;

        res->kind = kind;
        va_start(ap, fmt);
        vsnprintf(res->message, sizeof(res->message), fmt, ap);
        va_end(ap);
}

static const AppChange *change_for(const AppChange *changes, size_t n, const char *id)
{
        for (size_t i = 0; i < n; i++) {
                const char *cid = changes[i].spec ? changes[i].spec->id : changes[i].app_id;
                if (cid && streq(cid, id))
                        return &changes[i];
        }
        return NULL;
}

/* Every dependency must exist after the change: in the state, or in this batch. */
static int check_dependencies(Scheduler *s, const AppChange *changes, size_t n, SchedulerResult *res)
{
        for (size_t i = 0; i < n; i++) {
                const AppSpec *spec = changes[i].spec;
                for (size_t k = 0; spec && k < spec->n_dependencies; k++) {
                        const char *dep = spec->dependencies[k];
                        const AppChange *dc = change_for(changes, n, dep);
                        bool exists = dc ? dc->spec != NULL : state_app(&s->state, dep) != NULL;
                        if (!exists) {
                                result_set(res, SCHED_ERR_INVALID,
                                           "app %s depends on %s, which does not exist", spec->id, dep);
                                return -EINVAL;
                        }
                }
        }
        return 0;
}

/* The definition a change leaves its app with: the new one, or (delete, restart) the current one. */
static const AppSpec *change_spec(Scheduler *s, const AppChange *c)
{
        const App *app = c->spec ? NULL : state_app(&s->state, c->app_id);

        return c->spec ? c->spec : app ? app->current->spec : NULL;
}

/* The dependency graph as it would be after the request: the request's apps
 * with their new definitions (a deleted app has none), every other app as
 * stored. The stored graph has no cycle, so a new one runs through an app of
 * the request: depth-first from each of them (colour: absent unseen, 1 on the
 * path, 2 done), path naming the apps being visited. */
typedef struct CycleWalk {
        Scheduler *s;
        const AppChange *changes;
        Hashmap in_request; /* app id → its change + 1 */
        Hashmap colour;     /* app id → 1 or 2 */
        const char **path;
        size_t depth;
        SchedulerResult *res;
} CycleWalk;

static const AppSpec *walk_spec(CycleWalk *w, const char *id)
{
        void *v = hashmap_get(&w->in_request, id);
        App *app;

        if (v) {
                const AppChange *c = &w->changes[(uintptr_t)v - 1];
                return c->spec || c->restart ? change_spec(w->s, c) : NULL;
        }
        app = state_app(&w->s->state, id);
        return app && !app->deleting && app->current ? app->current->spec : NULL;
}

static int walk_cycle(CycleWalk *w, const char *id)
{
        uintptr_t colour = (uintptr_t)hashmap_get(&w->colour, id);
        const AppSpec *spec;
        int r;

        if (colour == 2)
                return 0;
        if (colour == 1) {
                size_t start = 0, len;
                while (!streq(w->path[start], id))
                        start++;
                len = (size_t)snprintf(w->res->message, sizeof(w->res->message), "dependency cycle: ");
                for (size_t k = start; k <= w->depth && len < sizeof(w->res->message); k++)
                        len += (size_t)snprintf(w->res->message + len, sizeof(w->res->message) - len, "%s%s",
                                                k > start ? " -> " : "", k < w->depth ? w->path[k] : id);
                w->res->kind = SCHED_ERR_INVALID;
                return -ELOOP;
        }
        spec = walk_spec(w, id);
        if (!spec)
                return 0;
        if (hashmap_put(&w->colour, spec->id, (void *)1, NULL) < 0)
                return -ENOMEM;
        w->path[w->depth++] = spec->id;
        for (size_t k = 0; k < spec->n_dependencies; k++) {
                r = walk_cycle(w, spec->dependencies[k]);
                if (r < 0)
                        return r;
        }
        w->depth--;
        return hashmap_put(&w->colour, spec->id, (void *)2, NULL);
}

/* Dependencies must not form a cycle, within the request or through stored apps: found before
 * anything is stored, so a refused request changes nothing. */
static int check_cycles(Scheduler *s, const AppChange *changes, size_t n, SchedulerResult *res)
{
        CycleWalk w = { .s = s, .changes = changes, .res = res };
        int r = 0;

        w.path = calloc(hashmap_count(&s->state.apps) + n + 1, sizeof(*w.path));
        if (!w.path)
                return -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *id = changes[i].spec ? changes[i].spec->id : changes[i].app_id;
                if (id)
                        r = hashmap_put(&w.in_request, id, (void *)(uintptr_t)(i + 1), NULL);
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *id = changes[i].spec ? changes[i].spec->id : changes[i].app_id;
                if (id)
                        r = walk_cycle(&w, id);
        }
        hashmap_done(&w.in_request);
        hashmap_done(&w.colour);
        free(w.path);
        return r;
}

/* A scale keeps what runs: the instances of the version before it join the new
 * one, which differs from theirs only in the instance count. */
static void adopt_instances(Scheduler *s, App *app, AppVersion *from)
{
        for (Instance *i = app->instances; i; i = i->next) {
                if (i->version != from)
                        continue;
                app_version_unref(i->version);
                i->version = app_version_ref(app->current);
                persist_instance(s, i);
        }
}

int scheduler_apply(Scheduler *s, AppChange *changes, size_t n, bool force, Deployment **ret_deployment,
                    SchedulerResult *res)
{
        Deployment *d;
        PacerError err = { "" };
        char version[40];
        int r;

        *res = (SchedulerResult){ 0 };
        *ret_deployment = NULL;
        if (n == 0)
                return 0;

        /* validate everything before changing anything */
        for (size_t i = 0; i < n; i++) {
                const char *id = changes[i].spec ? changes[i].spec->id : changes[i].app_id;
                App *app = id ? state_app(&s->state, id) : NULL;
                for (size_t j = 0; j < i; j++) {
                        const char *o = changes[j].spec ? changes[j].spec->id : changes[j].app_id;
                        if (o && id && streq(o, id)) {
                                result_set(res, SCHED_ERR_INVALID, "app %s appears twice in the request",
                                           id);
                                return -EINVAL;
                        }
                }
                if (!changes[i].spec && !app) {
                        result_set(res, SCHED_ERR_NOT_FOUND, "App '%s' does not exist", strna(id));
                        return -ENOENT;
                }
                if (changes[i].restart && !app) {
                        result_set(res, SCHED_ERR_NOT_FOUND, "App '%s' does not exist", strna(id));
                        return -ENOENT;
                }
                if (app && app->deployment && !force) {
                        result_set(res, SCHED_ERR_CONFLICT,
                                   "App is locked by one or more deployments. Override with the option "
                                   "'?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.");
                        if (res->n_conflicts < ELEMENTSOF(res->conflicts))
                                snprintf(res->conflicts[res->n_conflicts++], DEPLOYMENT_ID_MAX, "%s",
                                         app->deployment->id);
                        return -EBUSY;
                }
        }
        r = check_dependencies(s, changes, n, res);
        if (r >= 0)
                r = check_cycles(s, changes, n, res);
        if (r < 0)
                return r;

        r = commit_before_change(s, &err);
        if (r < 0) {
                result_set(res, SCHED_ERR_STORE,
                           "the store did not take the change (%s); nothing was changed", err.msg);
                return -EIO;
        }
        iso_time(now_s(), version, sizeof(version));
        d = deployment_new(version);
        if (!d)
                return -ENOMEM;
        /* stamp versions and persist, all or nothing */
        for (size_t i = 0; i < n; i++) {
                AppChange *c = &changes[i];
                const char *id = c->spec ? c->spec->id : c->app_id;
                App *app = state_app(&s->state, id);
                if (c->restart && !c->spec) {
                        if (spec_copy(app->current->spec, -1, &c->spec) < 0) {
                                deployment_free(d);
                                result_set(res, SCHED_ERR_INVALID, "cannot copy the definition of %s", id);
                                return -EINVAL;
                        }
                }
                if (c->spec) {
                        r = app_spec_set_version(c->spec, version);
                        if (r >= 0)
                                r = persist_app_version(s, c->spec, &err);
                        if (r >= 0)
                                r = store_put(s->store, STORE_KIND_APP, c->spec->id, c->spec->json,
                                              c->spec->json_len, &err);
                        if (r < 0)
                                break;
                }
        }
        if (r < 0 || (r = store_commit(s->store, &err)) < 0) {
                store_discard(s->store);
                deployment_free(d);
                result_set(res, SCHED_ERR_STORE,
                           "the store did not take the change (%s); nothing was changed", err.msg);
                return -EIO;
        }

        /* apply: state first, then the deployment that walks to it */
        for (size_t i = 0; i < n; i++) {
                AppChange *c = &changes[i];
                const char *id = c->spec ? c->spec->id : c->app_id;
                App *app = state_app(&s->state, id);
                StepAction action = classify(app, c);
                AppVersion *from = app ? app_version_ref(app->current) : NULL;

                if (app && app->deployment && force) {
                        /* the new change wins: the old step stops where it stands */
                        DeploymentStep *old = deployment_step(app->deployment, app->id);
                        Deployment *od = app->deployment;
                        if (old && !step_state_is_final(old->state))
                                step_finish(s, od, old, STEP_STOPPED, "overridden by a forced deployment");
                        if (deployment_finished(od))
                                finish_deployment(s, od);
                }
                if (!c->spec) {
                        app->deleting = true;
                        deployment_add_step(d, id, STEP_ACTION_STOP, from, NULL, NULL);
                } else if (!app) {
                        state_app_add(&s->state, c->spec, &app);
                        metrics_gauge_add(s->m_apps, 1);
                        deployment_add_step(d, id, STEP_ACTION_START, NULL, app->current, NULL);
                } else {
                        state_app_set_spec(&s->state, app, c->spec);
                        app->deleting = false;
                        if (action == STEP_ACTION_SCALE)
                                adopt_instances(s, app, from);
                        deployment_add_step(d, id, action, from, app->current, NULL);
                }
                app_version_unref(from);
                c->spec = NULL; /* taken over */
                emit(s, "api_post_event", json_pack("{s:s, s:s}", "appId", id, "version", version));
        }
        if (deployment_resolve_dependencies(d, &s->state, &err) < 0) {
                /* out of memory (cycles were refused above): the specs are stored, but no deployment
                 * walks to them until they change again */
                result_set(res, SCHED_ERR_INVALID, "%s", err.msg);
                deployment_free(d);
                return -ELOOP;
        }
        /* every app of the deployment is held by it from now, its step waiting on dependencies
         * included: no steady-state launch and no other change gets in before its turn */
        for (size_t i = 0; i < d->n_steps; i++) {
                App *app = state_app(&s->state, d->steps[i].app_id);
                if (app)
                        app->deployment = d;
        }
        Deployment **tail = &s->deployments;
        while (*tail)
                tail = &(*tail)->next;
        *tail = d;
        metrics_gauge_add(s->m_deployments, 1);
        persist_deployment(s, d);
        log_info("deployment %s started: %zu app%s", d->id, d->n_steps, d->n_steps == 1 ? "" : "s");
        snprintf(res->deployment_id, sizeof(res->deployment_id), "%s", d->id);
        snprintf(res->version, sizeof(res->version), "%s", d->version);
        advance_deployment(s, d); /* may already finish it (nothing to do) */
        commit_for_answer(s);
        *ret_deployment = scheduler_deployment(s, res->deployment_id);
        /* the deployment may already be over (nothing to do): the caller still gets its id */
        return 0;
}

static const char *const step_command_names[_STEP_COMMAND_MAX] = {
        [STEP_COMMAND_STOP] = "stop",
        [STEP_COMMAND_ROLLBACK] = "rollback",
        [STEP_COMMAND_RETRY] = "retry",
};

const char *step_command_to_string(StepCommand c)
{
        return c >= 0 && c < _STEP_COMMAND_MAX ? step_command_names[c] : NULL;
}

StepCommand step_command_from_string(const char *s)
{
        for (int i = 0; s && i < _STEP_COMMAND_MAX; i++)
                if (streq(s, step_command_names[i]))
                        return (StepCommand)i;
        return _STEP_COMMAND_INVALID;
}

Deployment *scheduler_deployment(Scheduler *s, const char *id)
{
        for (Deployment *d = s->deployments; d; d = d->next)
                if (!d->finished && streq(d->id, id))
                        return d;
        return NULL;
}

int scheduler_step_command(Scheduler *s, const char *deployment_id, const char *app_id, StepCommand cmd,
                           SchedulerResult *res)
{
        Deployment *d = scheduler_deployment(s, deployment_id);
        DeploymentStep *st;
        App *app;
        int r;

        *res = (SchedulerResult){ 0 };
        if (!d) {
                result_set(res, SCHED_ERR_NOT_FOUND, "deployment %s does not exist (or already finished)",
                           deployment_id);
                return -ENOENT;
        }
        st = deployment_step(d, app_id);
        if (!st) {
                result_set(res, SCHED_ERR_NOT_FOUND, "deployment %s has no step for app %s", deployment_id,
                           app_id);
                return -ENOENT;
        }
        switch (cmd) {
        case STEP_COMMAND_STOP:
                if (step_state_is_final(st->state)) {
                        result_set(res, SCHED_ERR_CONFLICT, "the step of %s is already %s", app_id,
                                   step_state_to_string(st->state));
                        return -EBUSY;
                }
                step_finish(s, d, st, STEP_STOPPED, "stopped by an operator");
                break;
        case STEP_COMMAND_ROLLBACK:
                if (st->rollback && !step_state_is_final(st->state)) {
                        result_set(res, SCHED_ERR_CONFLICT, "the step of %s is already rolling back",
                                   app_id);
                        return -EBUSY;
                }
                if (!st->from) {
                        /* a new app: DELETE /v2/apps or of the whole deployment removes it */
                        result_set(res, SCHED_ERR_CONFLICT, "%s has no previous version to roll back to",
                                   app_id);
                        return -EBUSY;
                }
                if (st->action == STEP_ACTION_STOP) {
                        result_set(res, SCHED_ERR_CONFLICT, "the removal of %s cannot be rolled back",
                                   app_id);
                        return -EBUSY;
                }
                r = rollback_step(s, d, st, res);
                if (r < 0)
                        return r;
                break;
        case STEP_COMMAND_RETRY:
                if (st->state != STEP_FAILED && st->state != STEP_STOPPED) {
                        result_set(res, SCHED_ERR_CONFLICT,
                                   "only a failed or stopped step can be retried (%s is %s)", app_id,
                                   step_state_to_string(st->state));
                        return -EBUSY;
                }
                app = state_app(&s->state, app_id);
                if (app && app->deployment && app->deployment != d) {
                        result_set(res, SCHED_ERR_CONFLICT, "%s is held by deployment %s now", app_id,
                                   app->deployment->id);
                        return -EBUSY;
                }
                st->state = STEP_WAITING;
                if (app)
                        app->deployment = d;
                break;
        default:
                return -EINVAL;
        }
        persist_deployment(s, d);
        emit(s, "deployment_info",
             json_pack("{s:s, s:s, s:s}", "deploymentId", d->id, "appId", app_id, "command",
                       step_command_to_string(cmd)));
        advance_deployment(s, d);
        commit_for_answer(s);
        return 0;
}

int scheduler_cancel_deployment(Scheduler *s, const char *deployment_id, bool force, Deployment **ret,
                                SchedulerResult *res)
{
        Deployment *d = scheduler_deployment(s, deployment_id);
        int r;

        *res = (SchedulerResult){ 0 };
        *ret = NULL;
        if (!d) {
                result_set(res, SCHED_ERR_NOT_FOUND, "deployment %s does not exist (or already finished)",
                           deployment_id);
                return -ENOENT;
        }
        if (force) {
                for (size_t i = 0; i < d->n_steps; i++)
                        if (!step_state_is_final(d->steps[i].state))
                                step_finish(s, d, &d->steps[i], STEP_STOPPED, "the deployment was stopped");
                finish_deployment(s, d);
                commit_for_answer(s);
                return 0;
        }
        /* roll every step back, in this deployment (its id stays what the operator knows) */
        for (size_t i = 0; i < d->n_steps; i++) {
                DeploymentStep *st = &d->steps[i];
                if (st->rollback)
                        continue;
                {
                        r = rollback_step(s, d, st, res);
                        if (r < 0) {
                                /* the steps rolled back so far stay so */
                                persist_deployment(s, d);
                                commit_for_answer(s);
                                return r;
                        }
                }
        }
        persist_deployment(s, d);
        snprintf(res->deployment_id, sizeof(res->deployment_id), "%s", d->id);
        snprintf(res->version, sizeof(res->version), "%s", d->version);
        advance_deployment(s, d);
        commit_for_answer(s);
        *ret = scheduler_deployment(s, deployment_id);
        return 0;
}

/* scale=true: one scale change per app of the killed tasks, its count lowered by theirs. */
static int kill_and_scale(Scheduler *s, char *const *task_ids, size_t n, bool force, Deployment **ret,
                          SchedulerResult *res)
{
        _cleanup_free_ AppChange *changes = calloc(n, sizeof(*changes));
        _cleanup_free_ bool *marked = calloc(n, sizeof(*marked));
        size_t n_apps = 0;
        int r = 0;

        if (!changes || !marked)
                return -ENOMEM;
        Hashmap counts = HASHMAP_INIT, tasks = HASHMAP_INIT; /* app id → tasks killed; task ids seen */
        for (size_t k = 0; k < n && r >= 0; k++) {
                App *app = state_instance(&s->state, task_ids[k])->app;
                if (hashmap_get(&tasks, task_ids[k]))
                        continue; /* named twice */
                r = hashmap_put(&tasks, task_ids[k], (void *)1, NULL);
                if (r >= 0)
                        r = hashmap_put(&counts, app->id,
                                        (void *)((uintptr_t)hashmap_get(&counts, app->id) + 1), NULL);
        }
        size_t it = 0;
        const char *id;
        void *v;
        while (r >= 0 && hashmap_next(&counts, &it, &id, &v)) {
                App *app = state_app(&s->state, id);
                uint32_t have = app->current->spec->instances, dec = (uint32_t)(uintptr_t)v;
                r = spec_copy(app->current->spec, have > dec ? have - dec : 0, &changes[n_apps].spec);
                if (r >= 0)
                        n_apps++;
        }
        hashmap_done(&counts);
        hashmap_done(&tasks);
        /* the killed tasks are the ones the scale-down removes: marked before the deployment plans */
        for (size_t k = 0; r >= 0 && k < n; k++) {
                Instance *i = state_instance(&s->state, task_ids[k]);
                if (!i->kill_sent)
                        marked[k] = i->kill_sent = true;
        }
        if (r >= 0)
                r = scheduler_apply(s, changes, n_apps, force, ret, res);
        for (size_t c = 0; c < n_apps; c++)
                app_spec_free(changes[c].spec); /* NULL once taken over */
        for (size_t k = 0; k < n; k++) {
                Instance *i = marked[k] ? state_instance(&s->state, task_ids[k]) : NULL;
                if (!i)
                        continue;
                if (r < 0) {
                        i->kill_sent = false; /* nothing changed */
                        continue;
                }
                int64_t grace = i->version->spec->task_kill_grace_seconds;
                i->kill_sent_at = now_s();
                s->master->ops->kill(s->master, i->task_id, i->agent ? i->agent->id : NULL,
                                     grace >= 0 ? grace * NSEC_PER_SEC : -1);
                metrics_counter_inc(s->m_killed);
                persist_instance(s, i);
        }
        if (r < 0 && res->kind == SCHED_ERR_NONE)
                result_set(res, r == -ENOMEM ? SCHED_ERR_STORE : SCHED_ERR_INVALID,
                           "cannot lower the instance counts: %s; nothing was changed", strerror(-r));
        return r;
}

int scheduler_kill_tasks(Scheduler *s, char *const *task_ids, size_t n, bool scale, bool force,
                         Deployment **ret, SchedulerResult *res)
{
        *res = (SchedulerResult){ 0 };
        *ret = NULL;
        for (size_t k = 0; k < n; k++)
                if (!state_instance(&s->state, task_ids[k])) {
                        result_set(res, SCHED_ERR_NOT_FOUND, "Task '%s' does not exist", task_ids[k]);
                        return -ENOENT;
                }
        if (scale)
                return kill_and_scale(s, task_ids, n, force, ret, res);
        for (size_t k = 0; k < n; k++) {
                Instance *i = state_instance(&s->state, task_ids[k]);
                int64_t grace = i->version->spec->task_kill_grace_seconds;
                if (s->master->ops->kill(s->master, i->task_id, i->agent ? i->agent->id : NULL,
                                         grace >= 0 ? grace * NSEC_PER_SEC : -1) >= 0) {
                        /* killed, not scaled: the app replaces it; its end is no failure (no backoff,
                         * no crash-loop count) */
                        i->kill_sent = true;
                        i->kill_sent_at = now_s();
                        persist_instance(s, i);
                        metrics_counter_inc(s->m_killed);
                        AppVersion *v;
                        if (launch_demand(s, i->app, &v) > 0)
                                want_offers(s);
                }
        }
        return 0;
}

/* ---- queue ---- */

size_t scheduler_queue(Scheduler *s, QueueEntry *ret, size_t max)
{
        size_t n = 0;
        const char *k;
        void *v;
        size_t it = 0;
        double now = now_s();

        while (n < max && hashmap_next(&s->state.apps, &it, &k, &v)) {
                App *app = v;
                AppVersion *ver;
                uint32_t waiting = 0;
                /* demand ignoring backoff, to show it with its delay */
                double saved = app->next_launch_at;
                app->next_launch_at = 0;
                waiting = launch_demand(s, app, &ver);
                app->next_launch_at = saved;
                if (waiting == 0)
                        continue;
                QueueEntry *e = &ret[n++];
                *e = (QueueEntry){ .app = app, .count = waiting };
                e->delay_left_s = app->next_launch_at > now ? app->next_launch_at - now : 0;
                QueueInfo *q = hashmap_get(&s->queue_info, app->id);
                if (q) {
                        e->processed = q->processed;
                        e->unused = q->unused;
                        memcpy(e->rejects, q->rejects, sizeof(e->rejects));
                        for (size_t r = 0; r < q->n_reasons; r++)
                                e->reasons[e->n_reasons++] = q->reasons[r];
                }
        }
        return n;
}

/* ---- lifetime ---- */

State *scheduler_state(Scheduler *s)
{
        return &s->state;
}

const SchedulerConfig *scheduler_config(const Scheduler *s)
{
        return &s->cfg;
}

MetricsRegistry *scheduler_metrics(Scheduler *s)
{
        /* what the heap holds against what it keeps: RSS alone cannot tell state from fragmentation */
        struct mallinfo2 mi = mallinfo2();

        metrics_gauge_set(s->m_heap_used, (double)(mi.uordblks + mi.hblkhd));
        metrics_gauge_set(s->m_heap_free, (double)mi.fordblks);
        return s->metrics;
}

Deployment *scheduler_deployments(Scheduler *s)
{
        return s->deployments;
}

const char *scheduler_fatal(const Scheduler *s)
{
        return *s->fatal ? s->fatal : NULL;
}

bool scheduler_connected(const Scheduler *s)
{
        return s->subscribed;
}

const char *scheduler_leader(const Scheduler *s)
{
        return s->master ? s->master->ops->leader(s->master) : "";
}

void scheduler_set_event_sink(Scheduler *s, scheduler_event_fn fn, void *userdata)
{
        s->event_fn = fn;
        s->event_userdata = userdata;
}

static int register_metrics(Scheduler *s, PacerError *err)
{
        static const double commit_buckets[] = { 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1 };
        int r = 0;

        s->metrics = metrics_registry_new();
        if (!s->metrics)
                return -ENOMEM;
#define COUNTER(field, name, help) \
        if (r >= 0)                \
                r = metrics_counter(s->metrics, name, help, NULL, &s->field, err);
#define GAUGE(field, name, help) \
        if (r >= 0)              \
                r = metrics_gauge(s->metrics, name, help, NULL, &s->field, err);
        COUNTER(m_updates, "pacer_status_updates_total", "Status updates received from the master.");
        COUNTER(m_offers, "pacer_offers_total", "Offers received.");
        COUNTER(m_launched, "pacer_tasks_launched_total", "Tasks launched.");
        COUNTER(m_killed, "pacer_tasks_killed_total", "Kills sent.");
        COUNTER(m_acks, "pacer_acknowledgements_total", "Status updates acknowledged after a store commit.");
        COUNTER(m_declined, "pacer_offers_declined_total", "Offers declined.");
        COUNTER(m_strays, "pacer_stray_tasks_killed_total",
                "Running tasks this scheduler did not know, killed.");
        COUNTER(m_commit_failures, "pacer_store_commit_failures_total", "Store commits that failed.");
        GAUGE(m_apps, "pacer_apps", "Apps.");
        GAUGE(m_instances, "pacer_instances", "Instances (tasks) known.");
        GAUGE(m_deployments, "pacer_deployments", "Running deployments.");
        GAUGE(m_heap_used, "pacer_heap_used_bytes", "Heap bytes allocated (malloc), at the last scrape.");
        GAUGE(m_heap_free, "pacer_heap_free_bytes",
              "Heap bytes free but kept by malloc (not returned to the system), at the last scrape.");
#undef COUNTER
#undef GAUGE
        if (r >= 0)
                r = metrics_histogram(s->metrics, "pacer_store_commit_seconds",
                                      "Duration of one store commit.", commit_buckets,
                                      ELEMENTSOF(commit_buckets), NULL, &s->m_commit_seconds, err);
        return r < 0 ? r : 0;
}

int scheduler_new(struct ev_loop *loop, const SchedulerConfig *cfg, Scheduler **ret, PacerError *err)
{
        Scheduler *s = calloc(1, sizeof(*s));
        StoreOptions so = { .framework_name = cfg->master.name };
        int r;

        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->cfg = *cfg;
        if (s->cfg.launches_per_round == 0)
                s->cfg.launches_per_round = LAUNCHES_PER_ROUND_DEFAULT;
        if (s->cfg.reconcile_interval_s <= 0)
                s->cfg.reconcile_interval_s = 900;
        state_init(&s->state);
        s->queue_info = HASHMAP_INIT;
        r = register_metrics(s, err);
        if (r < 0) {
                scheduler_free(s);
                return r;
        }
        so.sqlite.data_dir = cfg->data_dir;
        so.sqlite.sync = cfg->store_sync;
        so.sqlite.max_pages = cfg->store_max_pages;
        r = store_sqlite_open(&so, &s->store, err);
        if (r < 0) {
                scheduler_free(s);
                return r;
        }
        r = recover(s, err);
        if (r < 0) {
                scheduler_free(s);
                return r;
        }
        metrics_gauge_set(s->m_apps, (double)hashmap_count(&s->state.apps));
        metrics_gauge_set(s->m_instances, (double)hashmap_count(&s->state.instances));
        for (Deployment *d = s->deployments; d; d = d->next)
                metrics_gauge_add(s->m_deployments, 1);
        ev_prepare_init(&s->commit_watcher, on_prepare);
        s->commit_watcher.data = s;
        ev_timer_init(&s->tick, on_tick, TICK_S, TICK_S);
        s->tick.data = s;
        ev_timer_init(&s->revive_timer, on_revive_timer, 0., 0.);
        s->revive_timer.data = s;
        ev_timer_init(&s->reconcile_timer, on_reconcile_timer, 0., 0.);
        s->reconcile_timer.data = s;
        ev_idle_init(&s->trim_idle, on_trim_idle);
        s->trim_idle.data = s;
        ev_timer_init(&s->trim_timer, on_trim_timer, 0., 0.);
        s->trim_timer.data = s;
        *ret = s;
        return 0;
}

int scheduler_start(Scheduler *s, Master *master)
{
        s->master = master;
        ev_prepare_start(s->loop, &s->commit_watcher);
        ev_timer_start(s->loop, &s->tick);
        return master->ops->start(master, s->state.framework_id);
}

static const MasterCallbacks callbacks = { .subscribed = on_subscribed,
                                           .event = on_event,
                                           .disconnected = on_disconnected };

const MasterCallbacks *scheduler_master_callbacks(void)
{
        return &callbacks;
}

Scheduler *scheduler_free(Scheduler *s)
{
        const char *k;
        void *v;
        size_t it = 0;

        if (!s)
                return NULL;
        ev_prepare_stop(s->loop, &s->commit_watcher);
        ev_timer_stop(s->loop, &s->tick);
        ev_timer_stop(s->loop, &s->revive_timer);
        ev_timer_stop(s->loop, &s->reconcile_timer);
        ev_idle_stop(s->loop, &s->trim_idle);
        ev_timer_stop(s->loop, &s->trim_timer);
        if (s->store)
                flush_deployments(s); /* the loop may have stopped before the end of its turn */
        if (s->store && store_pending(s->store)) {
                PacerError err;
                if (store_commit(s->store, &err) < 0)
                        log_error("final store commit failed: %s", err.msg);
        }
        drop_acks(s);
        free(s->acks);
        arena_free(s->ack_ids);
        while (s->deployments) {
                Deployment *d = s->deployments;
                s->deployments = d->next;
                deployment_free(d);
        }
        while (hashmap_next(&s->queue_info, &it, &k, &v))
                free(v);
        hashmap_done(&s->queue_info);
        state_done(&s->state);
        store_close(s->store);
        metrics_registry_free(s->metrics);
        free(s);
        return NULL;
}
