/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the scheduler's recovery and persistence against a real store:
 * recovery rebuilds the state the store describes (current versions, the
 * history kept unparsed until needed, instances on older versions, running
 * deployments with their versions), reports corrupt history versions when
 * something needs them, an API call's deployment is committed before the
 * call returns (a child process ends right after it, as in a crash), and a
 * change the store refuses is discarded without the writes queued before it. */
#include <ev.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "json.h"
#include "scheduler.h"
#include "store_sqlite.h"
#include "test-support.h"

#define FRAMEWORK "pacer-test"

/* /web's versions, oldest first; the two BAD ones are corrupt records. */
#define V_BAD_USED   "2026-01-01T00:00:00.500Z" /* named by an instance */
#define V1           "2026-01-01T00:00:01.000Z" /* named by an instance */
#define V_IDLE       "2026-01-01T00:00:01.200Z" /* named by nothing: stays unparsed */
#define V_BAD_UNUSED "2026-01-01T00:00:01.500Z" /* named by a deployment only */
#define V2           "2026-01-01T00:00:02.000Z" /* a running deployment's "from" */
#define V3           "2026-01-01T00:00:03.000Z" /* current */

#define WEB_V1   "{\"id\":\"/web\",\"cmd\":\"sleep 1\",\"instances\":2,\"taskKillGracePeriodSeconds\":7}"
#define WEB_IDLE "{\"id\":\"/web\",\"cmd\":\"sleep 12\",\"instances\":2}"
#define WEB_V2   "{\"id\":\"/web\",\"cmd\":\"sleep 2\",\"instances\":2,\"labels\":{\"x\":\"y\"}}"
#define WEB_V3   "{\"id\":\"/web\",\"cmd\":\"sleep 3\",\"instances\":2,\"cpus\":0.1}"
#define WEB_BAD  "{\"id\":\"/web\",\"cmd\":\"sleep 0\",\"cpus\":\"lots\"}"

typedef struct Fixture {
        char dir[256];
        struct ev_loop *loop;
} Fixture;

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        test_tmpdir(f->dir, sizeof(f->dir), "test-scheduler");
        f->loop = ev_loop_new(EVFLAG_AUTO);
        assert_non_null(f->loop);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        ev_loop_destroy(f->loop);
        test_rmtree(f->dir);
        free(f);
        return 0;
}

static Store *store_open(Fixture *f)
{
        StoreOptions o = { .framework_name = FRAMEWORK, .sqlite = { .data_dir = f->dir } };
        PacerError err = { "" };
        Store *s = NULL;

        if (store_sqlite_open(&o, &s, &err) < 0)
                fail_msg("store: %s", err.msg);
        return s;
}

static void put(Store *s, const char *kind, const char *key, const void *data, size_t len)
{
        PacerError err = { "" };

        if (store_put(s, kind, key, data, len, &err) < 0)
                fail_msg("put %s %s: %s", kind, key, err.msg);
}

static void put_version(Store *s, const char *text, const char *version)
{
        AppSpec *a = test_spec(text, version);
        char key[APP_ID_MAX + 40];

        snprintf(key, sizeof(key), "%s@%s", a->id, version);
        put(s, STORE_KIND_APP_VERSION, key, a->json, a->json_len);
        app_spec_free(a);
}

static void put_bad_version(Store *s, const char *version)
{
        char key[APP_ID_MAX + 40];

        snprintf(key, sizeof(key), "/web@%s", version);
        put(s, STORE_KIND_APP_VERSION, key, WEB_BAD, strlen(WEB_BAD));
}

static void put_app(Store *s, const char *text, const char *version)
{
        AppSpec *a = test_spec(text, version);

        put(s, STORE_KIND_APP, a->id, a->json, a->json_len);
        app_spec_free(a);
        put_version(s, text, version);
}

/* An instance record as the scheduler writes it. */
static void put_instance(Store *s, const char *key, const char *task_id, const char *app_id,
                         const char *version)
{
        App app = { .id = (char *)app_id };
        AppVersion v = { .version = version, .refs = 1 };
        Instance i = { .task_id = (char *)task_id,
                       .app = &app,
                       .version = &v,
                       .state = TASK_STATE(TASK_RUNNING),
                       .health = HEALTH_HEALTHY,
                       .registration = REGISTRATION_REGISTERED,
                       .staged_at = 100,
                       .started_at = 101 };
        Buf b = BUF_INIT(4096);

        assert_int_equal(instance_encode(&i, &b), 0);
        put(s, STORE_KIND_INSTANCE, key, b.data, b.len);
        buf_done(&b);
}

static void put_deployment(Store *s, const char *id, const char *app, const char *from, const char *to)
{
        char text[1024];

        snprintf(
                text, sizeof(text),
                "{\"id\":\"%s\",\"version\":\"%s\",\"created\":1,\"steps\":[{\"app\":\"%s\",\"action\":"
                "\"RestartApplication\",\"state\":\"running\",\"from\":\"%s\",\"to\":\"%s\",\"rollback\":false,"
                "\"reason\":\"\",\"started\":1,\"deadline\":0,\"finished\":0,\"failures\":0,\"deps\":[]}]}",
                id, to, app, from, to);
        put(s, STORE_KIND_DEPLOYMENT, id, text, strlen(text));
}

/* A deployment as a header and step records (of a running ScaleApplication of app), steps of
 * n_steps written. */
static void put_deployment_split(Store *s, const char *id, double created, const char *app, size_t n_steps,
                                 size_t written)
{
        char text[1024], key[64];

        snprintf(text, sizeof(text), "{\"id\":\"%s\",\"version\":\"v\",\"created\":%g,\"n_steps\":%zu}", id,
                 created, n_steps);
        put(s, STORE_KIND_DEPLOYMENT, id, text, strlen(text));
        for (size_t i = 0; i < written; i++) {
                snprintf(key, sizeof(key), "%s#%zu", id, i);
                snprintf(text, sizeof(text),
                         "{\"app\":\"%s\",\"action\":\"ScaleApplication\",\"state\":\"running\"}", app);
                put(s, STORE_KIND_DEPLOYMENT_STEP, key, text, strlen(text));
        }
}

static bool stored(Store *st, const char *kind, const char *key, const char *needle)
{
        PacerError err = { "" };
        void *data = NULL;
        size_t len = 0;
        bool found;

        if (store_get(st, kind, key, &data, &len, &err) < 0)
                return false;
        found = !needle || memmem(data, len, needle, strlen(needle));
        free(data);
        return found;
}

static Scheduler *scheduler_open(Fixture *f)
{
        SchedulerConfig cfg = { .master = { .name = FRAMEWORK }, .data_dir = f->dir };
        PacerError err = { "" };
        Scheduler *s = NULL;

        if (scheduler_new(f->loop, &cfg, &s, &err) < 0)
                fail_msg("scheduler_new: %s", err.msg);
        return s;
}

static void assert_version_is(const AppVersion *v, const char *text, const char *version)
{
        AppSpec *ref = test_spec(text, version);

        assert_non_null(v);
        assert_non_null(v->spec);
        assert_string_equal(v->version, version);
        assert_string_equal(v->spec->version, version);
        /* the eager parse, to the byte */
        assert_string_equal(v->spec->json, ref->json);
        app_spec_free(ref);
}

static void test_recovery_rebuilds_the_state(void **state)
{
        Fixture *f = *state;
        PacerError err = { "" };
        char version[32], text[128];
        Store *st = store_open(f);

        put_app(st, WEB_V3, V3);
        put_version(st, WEB_V1, V1);
        put_version(st, WEB_IDLE, V_IDLE);
        put_version(st, WEB_V2, V2);
        put_bad_version(st, V_BAD_USED);
        put_bad_version(st, V_BAD_UNUSED);
        put_version(st, "{\"id\":\"/gone\",\"cmd\":\"x\"}", V1); /* of an app that no longer exists */
        /* /many: more history than is kept */
        put_app(st, "{\"id\":\"/many\",\"cmd\":\"x\",\"instances\":0}", "2026-02-01T00:00:00.000Z");
        for (unsigned k = 0; k < STATE_VERSIONS_KEPT + 3; k++) {
                snprintf(version, sizeof(version), "2026-01-01T00:00:%02u.000Z", k);
                snprintf(text, sizeof(text), "{\"id\":\"/many\",\"cmd\":\"x%u\",\"instances\":0}", k);
                put_version(st, text, version);
        }
        put_instance(st, "web.1", "web.1", "/web", V1);
        put_instance(st, "web.2", "web.2", "/web", V3);
        put_instance(st, "web.3", "web.3", "/web", V_BAD_USED);
        put_instance(st, "web.4", "web.4", "/web",
                     "2020-01-01T00:00:00.000Z"); /* a version no longer kept */
        put_instance(st, "gone.1", "gone.1", "/gone", V1);
        put_instance(st, "web.5", "web.2", "/web", V1); /* names a task another record holds */
        put_deployment(st, "d-ok", "/web", V2, V3);
        put_deployment(st, "d-bad", "/web", V_BAD_UNUSED, V3);
        put_deployment_split(st, "d-split", 0.5, "/many", 1, 1);  /* older than d-ok */
        put_deployment_split(st, "d-torn", 2, "/many", 2, 1);     /* a step record missing */
        put(st, STORE_KIND_DEPLOYMENT_STEP, "d-none#0", "{}", 2); /* of no deployment */
        assert_true(store_commit(st, &err) >= 0);
        store_close(st);

        Scheduler *s = scheduler_open(f);
        State *state_ = scheduler_state(s);
        App *web = state_app(state_, "/web"), *many = state_app(state_, "/many");
        AppVersion *v;

        assert_int_equal(hashmap_count(&state_->apps), 2);
        assert_non_null(web);
        assert_version_is(web->current, WEB_V3, V3);

        /* history newest first, the current one not repeated, the unreadable ones gone */
        assert_int_equal(web->n_history, 3);
        assert_string_equal(web->history[0]->version, V2);
        assert_string_equal(web->history[1]->version, V_IDLE);
        assert_string_equal(web->history[2]->version, V1);
        /* what something named is parsed; the rest is not until it is used */
        assert_version_is(web->history[0], WEB_V2, V2);
        assert_version_is(web->history[2], WEB_V1, V1);
        assert_null(web->history[1]->spec);
        assert_int_equal(state_app_version(web, V_IDLE, &v, &err), 0);
        assert_ptr_equal(v, web->history[1]);
        assert_version_is(v, WEB_IDLE, V_IDLE);

        /* instances on their versions; an unreadable or forgotten version counts as the current one */
        assert_int_equal(hashmap_count(&state_->instances), 4);
        assert_int_equal(web->n_instances, 4);
        Instance *i1 = state_instance(state_, "web.1");
        assert_non_null(i1);
        assert_ptr_equal(i1->version, web->history[2]);
        assert_int_equal(i1->version->spec->task_kill_grace_seconds, 7);
        assert_true(i1->state == TASK_STATE(TASK_RUNNING) && i1->health == HEALTH_HEALTHY);
        assert_true(i1->staged_at == 100 && i1->started_at == 101);
        assert_ptr_equal(state_instance(state_, "web.2")->version, web->current);
        assert_ptr_equal(state_instance(state_, "web.3")->version, web->current);
        assert_ptr_equal(state_instance(state_, "web.4")->version, web->current);
        assert_null(state_instance(state_, "gone.1"));
        assert_int_equal(state_app_version(web, V_BAD_USED, &v, &err), -ENOENT);

        /* the deployment naming the unreadable version is dropped, and the torn one; the others run
         * on, oldest first */
        Deployment *d = scheduler_deployments(s);
        assert_non_null(d);
        assert_string_equal(d->id, "d-split");
        assert_int_equal(d->steps[0].action, STEP_ACTION_SCALE);
        assert_ptr_equal(many->deployment, d);
        d = d->next;
        assert_non_null(d);
        assert_null(d->next);
        assert_string_equal(d->id, "d-ok");
        assert_ptr_equal(d->steps[0].from, web->history[0]);
        assert_ptr_equal(d->steps[0].to, web->current);
        assert_ptr_equal(web->deployment, d);

        /* /many: the newest STATE_VERSIONS_KEPT, none parsed */
        assert_int_equal(many->n_history, STATE_VERSIONS_KEPT);
        for (size_t h = 0; h < many->n_history; h++) {
                snprintf(version, sizeof(version), "2026-01-01T00:00:%02zu.000Z",
                         STATE_VERSIONS_KEPT + 2 - h);
                assert_string_equal(many->history[h]->version, version);
                assert_null(many->history[h]->spec);
        }
        scheduler_free(s);

        /* the dropped deployments' records went with them, and the orphan step; the one-record form
         * was written again as a header and steps */
        st = store_open(f);
        assert_false(stored(st, STORE_KIND_DEPLOYMENT, "d-bad", NULL));
        assert_false(stored(st, STORE_KIND_DEPLOYMENT, "d-torn", NULL));
        assert_false(stored(st, STORE_KIND_DEPLOYMENT_STEP, "d-torn#0", NULL));
        assert_false(stored(st, STORE_KIND_DEPLOYMENT_STEP, "d-none#0", NULL));
        assert_true(stored(st, STORE_KIND_DEPLOYMENT, "d-split", NULL));
        assert_true(stored(st, STORE_KIND_DEPLOYMENT_STEP, "d-split#0", NULL));
        assert_true(stored(st, STORE_KIND_DEPLOYMENT, "d-ok", "\"n_steps\":1"));
        assert_false(stored(st, STORE_KIND_DEPLOYMENT, "d-ok", "\"steps\""));
        assert_true(stored(st, STORE_KIND_DEPLOYMENT_STEP, "d-ok#0", "\"from\":\"" V2 "\""));
        store_close(st);
}

/* Runs fn in a child that dies right after it (no final commit, as in a crash). */
static void in_child_then_die(Fixture *f, void (*fn)(Scheduler *s))
{
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                Scheduler *s = scheduler_open(f);
                fn(s);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char deployment_id[DEPLOYMENT_ID_MAX];

static void apply_two_apps(Scheduler *s)
{
        AppChange c[2] = { { .spec = test_spec("{\"id\":\"/a\",\"cmd\":\"x\",\"instances\":1}", NULL) },
                           { .spec = test_spec("{\"id\":\"/b\",\"cmd\":\"x\",\"instances\":1}", NULL) } };
        SchedulerResult res;
        Deployment *d = NULL;

        if (scheduler_apply(s, c, 2, false, &d, &res) < 0 || !d)
                _exit(1);
}

static void stop_b(Scheduler *s)
{
        SchedulerResult res;

        if (scheduler_step_command(s, deployment_id, "/b", STEP_COMMAND_STOP, &res) < 0)
                _exit(1);
}

static void cancel_it(Scheduler *s)
{
        SchedulerResult res;
        Deployment *d;

        if (scheduler_cancel_deployment(s, deployment_id, true, &d, &res) < 0)
                _exit(1);
}

static void test_api_changes_committed_before_answer(void **state)
{
        Fixture *f = *state;
        Scheduler *s;
        Deployment *d;

        /* a new deployment: both steps running (no master, no offers) */
        in_child_then_die(f, apply_two_apps);
        s = scheduler_open(f);
        d = scheduler_deployments(s);
        assert_non_null(d);
        assert_int_equal(d->n_steps, 2);
        assert_int_equal(deployment_step(d, "/a")->state, STEP_RUNNING);
        assert_int_equal(deployment_step(d, "/b")->state, STEP_RUNNING);
        assert_non_null(deployment_step(d, "/b")->to);
        snprintf(deployment_id, sizeof(deployment_id), "%s", d->id);
        scheduler_free(s);

        /* a step command */
        in_child_then_die(f, stop_b);
        s = scheduler_open(f);
        d = scheduler_deployment(s, deployment_id);
        assert_non_null(d);
        assert_int_equal(deployment_step(d, "/a")->state, STEP_RUNNING);
        assert_int_equal(deployment_step(d, "/b")->state, STEP_STOPPED);
        assert_string_equal(deployment_step(d, "/b")->reason, "stopped by an operator");
        scheduler_free(s);

        /* stopping the whole deployment: its record is deleted, not written again */
        in_child_then_die(f, cancel_it);
        s = scheduler_open(f);
        assert_null(scheduler_deployments(s));
        assert_non_null(state_app(scheduler_state(s), "/a"));
        scheduler_free(s);
}

/* What the master link hands the scheduler for a status update (no uuid: nothing to acknowledge). */
static void update_unhealthy(Scheduler *s, const char *task_id)
{
        Mesos__V1__TaskID id = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__Scheduler__Event__Update up = MESOS__V1__SCHEDULER__EVENT__UPDATE__INIT;
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;

        id.value = (char *)task_id;
        st.task_id = &id;
        st.state = TASK_STATE(TASK_RUNNING);
        st.has_healthy = true;
        st.healthy = false;
        up.status = &st;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE;
        ev.update = &up;
        scheduler_master_callbacks()->event(&ev, s);
}

static uint32_t store_pages;

/* A status update, then a change too large for the full store: the change is refused, the update kept. */
static void update_then_refused_change(Fixture *f)
{
        SchedulerConfig cfg = { .master = { .name = FRAMEWORK },
                                .data_dir = f->dir,
                                .store_max_pages = store_pages };
        char *text = malloc(APP_JSON_MAX), *p = text;
        AppChange c = { 0 };
        SchedulerResult res;
        JsonErrors errs = { 0 };
        Deployment *d = NULL;
        Scheduler *s = NULL;
        json_t *j = NULL;

        if (!text || scheduler_new(f->loop, &cfg, &s, NULL) < 0)
                _exit(2);
        update_unhealthy(s, "web.1");
        /* about 48 KiB of labels: more than the store has room for */
        p += sprintf(p, "{\"id\":\"/big\",\"cmd\":\"x\",\"labels\":{");
        for (int k = 0; k < 12; k++) {
                p += sprintf(p, "%s\"k%d\":\"", k ? "," : "", k);
                memset(p, 'v', 4000);
                p += 4000;
                *p++ = '"';
        }
        p += sprintf(p, "}}");
        if (json_parse(text, (size_t)(p - text), NULL, &j, NULL) < 0 ||
            app_spec_from_json(j, NULL, &c.spec, &errs) < 0)
                _exit(3);
        if (scheduler_apply(s, &c, 1, false, &d, &res) != -EIO || res.kind != SCHED_ERR_STORE)
                _exit(4);
        _exit(0);
}

static void test_refused_change_keeps_earlier_writes(void **state)
{
        Fixture *f = *state;
        PacerError err = { "" };
        Store *st = store_open(f);
        Scheduler *s;
        int status;
        pid_t pid;

        put_app(st, WEB_V3, V3);
        put_instance(st, "web.1", "web.1", "/web", V3);
        assert_true(store_commit(st, &err) >= 0);
        /* the cap never goes below the current size: this is the size */
        assert_int_equal(store_sqlite_set_max_pages(st, 1, &store_pages), 0);
        assert_true(store_pages > 0);
        store_close(st);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                update_then_refused_change(f);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        s = scheduler_open(f);
        assert_null(state_app(scheduler_state(s), "/big"));
        Instance *i = state_instance(scheduler_state(s), "web.1");
        assert_non_null(i);
        assert_int_equal(i->health, HEALTH_UNHEALTHY);
        scheduler_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_recovery_rebuilds_the_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_api_changes_committed_before_answer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_change_keeps_earlier_writes, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
