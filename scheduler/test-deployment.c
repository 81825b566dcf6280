/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for deployments: the planner's rolling replacement within
 * upgradeStrategy (never below minimumHealthCapacity ready, never above
 * maximumOverCapacity in total), scale up and down with killSelection,
 * stopping, dependency ordering with cycles, and the store round trip
 * (versions recovery kept unparsed included). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deployment.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "test-support.h"

/* Through the store's records, as the scheduler writes them and recovery reads them back: a header,
 * then the steps (in reverse: the index places a step, not the order of arrival). */
static int roundtrip(const Deployment *d, const State *st, Deployment **ret, PacerError *err)
{
        Buf h = BUF_INIT(STORE_OBJECT_MAX);
        json_t *rec = NULL;
        int r;

        assert_int_equal(deployment_encode_header(d, &h), 0);
        assert_int_equal(deployment_record_open(h.data, h.len, &rec, err), 0);
        assert_false(deployment_record_is_legacy(rec));
        assert_string_equal(deployment_record_id(rec), d->id);
        assert_int_equal(deployment_record_n_steps(rec), d->n_steps);
        for (size_t i = d->n_steps; i-- > 0;) {
                Buf b = BUF_INIT(STORE_OBJECT_MAX);
                assert_int_equal(deployment_encode_step(&d->steps[i], &b), 0);
                assert_int_equal(deployment_record_add_step(rec, i, b.data, b.len, err), 0);
                buf_done(&b);
        }
        r = deployment_decode(rec, st, ret, err);
        json_decref(rec);
        buf_done(&h);
        return r;
}

static Instance *add(State *st, App *app, AppVersion *v, TaskState state, bool ready, double staged)
{
        Instance *i;
        assert_int_equal(state_instance_new(st, app, v, &i), 0);
        i->state = state;
        i->registration = ready ? REGISTRATION_REGISTERED : REGISTRATION_REGISTERING;
        i->health = HEALTH_UNKNOWN;
        i->staged_at = staged;
        return i;
}

typedef struct Fixture {
        State st;
        App *app;
        AppVersion *old, *new;
} Fixture;

/* An app with n_old ready instances of an old version and a new version with the given strategy. */
static void setup(Fixture *f, unsigned n_old, unsigned target, double min_health, double over)
{
        char json[512];

        state_init(&f->st);
        assert_int_equal(state_app_add(&f->st,
                                       test_spec("{\"id\":\"/web\",\"cmd\":\"sleep 1\",\"instances\":3}",
                                                 "2026-01-01T00:00:00.000Z"),
                                       &f->app),
                         0);
        f->old = f->app->current;
        for (unsigned i = 0; i < n_old; i++)
                add(&f->st, f->app, f->old, TASK_STATE(TASK_RUNNING), true, 100 + i);
        snprintf(json, sizeof(json),
                 "{\"id\":\"/web\",\"cmd\":\"sleep 2\",\"instances\":%u,\"upgradeStrategy\":"
                 "{\"minimumHealthCapacity\":%g,\"maximumOverCapacity\":%g}}",
                 target, min_health, over);
        assert_int_equal(state_app_set_spec(&f->st, f->app, test_spec(json, "2026-01-02T00:00:00.000Z")), 0);
        f->new = f->app->current;
}

static void teardown(Fixture *f)
{
        state_done(&f->st);
}

static DeploymentStep restart_step(Fixture *f)
{
        return (DeploymentStep){ .app_id = "/web",
                                 .action = STEP_ACTION_RESTART,
                                 .state = STEP_RUNNING,
                                 .from = f->old,
                                 .to = f->new };
}

static unsigned count(App *app, AppVersion *v, bool only_ready)
{
        unsigned n = 0;
        for (Instance *i = app->instances; i; i = i->next)
                if (instance_active(i) && (!v || i->version == v) && (!only_ready || instance_ready(i)))
                        n++;
        return n;
}

/* Instances not ended yet, the ones being killed included: what holds resources. */
static unsigned count_alive(App *app)
{
        unsigned n = 0;
        for (Instance *i = app->instances; i; i = i->next)
                if (!task_state_is_terminal(i->state))
                        n++;
        return n;
}

/* Runs the planner to completion, launching what it asks (made ready one at a
 * time) and killing what it asks (ended a turn later), checking the capacity
 * bounds at every turn: a killed instance counts until it has ended. */
static unsigned simulate(Fixture *f, unsigned target, unsigned min_ready, unsigned max_total)
{
        DeploymentStep st = restart_step(f);
        unsigned turns = 0;
        double t = 1000;

        for (;;) {
                PlanActions p;
                bool progressed = false;
                /* a kill ends two turns after it was sent: the planner runs once in between, as on any
                 * other update that arrives first */
                for (Instance *i = f->app->instances; i; i = i->next)
                        if (i->kill_sent && !task_state_is_terminal(i->state) &&
                            i->kill_sent_at < (double)turns - 1) {
                                i->state = TASK_STATE(TASK_KILLED);
                                progressed = true;
                        }
                planner_plan(f->app, &st, &p);
                for (size_t k = 0; k < p.n_kill; k++) {
                        p.kill[k]->kill_sent = true;
                        p.kill[k]->kill_sent_at = turns;
                }
                assert_true(count(f->app, NULL, true) >= min_ready);
                for (uint32_t l = 0; l < p.launch; l++)
                        add(&f->st, f->app, f->new, TASK_STATE(TASK_STAGING), false, t++);
                assert_true(count_alive(f->app) <= max_total);
                if (p.done)
                        break;
                /* one staged instance of the new version becomes ready per turn */
                progressed = progressed || p.n_kill > 0 || p.launch > 0 ||
                             count_alive(f->app) > count(f->app, NULL, false);
                for (Instance *i = f->app->instances; i; i = i->next)
                        if (instance_active(i) && i->version == f->new && !instance_ready(i)) {
                                i->state = TASK_STATE(TASK_RUNNING);
                                i->registration = REGISTRATION_REGISTERED;
                                progressed = true;
                                break;
                        }
                assert_true(progressed); /* never stuck */
                assert_true(++turns < 100);
        }
        assert_int_equal(count(f->app, f->new, true), target);
        assert_int_equal(count(f->app, f->old, false), 0);
        return turns;
}

static void test_rolling_default_strategy(void **state)
{
        Fixture f;
        setup(&f, 3, 3, 1.0, 1.0);
        DeploymentStep st = restart_step(&f);
        PlanActions p;
        planner_plan(f.app, &st, &p);
        /* over capacity allowed: all three new ones at once, no old one killed before they are ready */
        assert_int_equal(p.launch, 3);
        assert_int_equal(p.n_kill, 0);
        assert_false(p.done);
        teardown(&f);

        setup(&f, 3, 3, 1.0, 1.0);
        simulate(&f, 3, 3, 6);
        teardown(&f);
}

static void test_rolling_half_capacity_no_overshoot(void **state)
{
        Fixture f;
        setup(&f, 4, 4, 0.5, 0.0);
        DeploymentStep st = restart_step(&f);
        PlanActions p;
        planner_plan(f.app, &st, &p);
        /* no room to grow: two old ones go first, keeping two ready */
        assert_int_equal(p.launch, 0);
        assert_int_equal(p.n_kill, 2);
        teardown(&f);

        setup(&f, 4, 4, 0.5, 0.0);
        simulate(&f, 4, 2, 4);
        teardown(&f);
}

static void test_full_capacity_no_overshoot_allows_one_extra(void **state)
{
        Fixture f;
        setup(&f, 2, 2, 1.0, 0.0);
        DeploymentStep st = restart_step(&f);
        PlanActions p;
        planner_plan(f.app, &st, &p);
        /* (1, 0) would deadlock: one instance over capacity, as Marathon does */
        assert_int_equal(p.launch, 1);
        assert_int_equal(p.n_kill, 0);
        teardown(&f);

        setup(&f, 2, 2, 1.0, 0.0);
        simulate(&f, 2, 2, 3);
        teardown(&f);
}

static void test_not_ready_old_instances_go_first(void **state)
{
        Fixture f;
        setup(&f, 3, 3, 1.0, 0.0);
        /* one old instance is unhealthy: it holds no capacity and is replaced first */
        Instance *sick = f.app->instances;
        sick->registration = REGISTRATION_FAILED;
        DeploymentStep st = restart_step(&f);
        PlanActions p;
        planner_plan(f.app, &st, &p);
        assert_int_equal(p.n_kill, 1);
        assert_ptr_equal(p.kill[0], sick);
        teardown(&f);
}

static void test_scale_up_and_down_with_kill_selection(void **state)
{
        Fixture f;
        PlanActions p;

        state_init(&f.st);
        assert_int_equal(state_app_add(&f.st,
                                       test_spec("{\"id\":\"/web\",\"cmd\":\"x\",\"instances\":5}", "v1"),
                                       &f.app),
                         0);
        f.new = f.app->current;
        Instance *a = add(&f.st, f.app, f.new, TASK_STATE(TASK_RUNNING), true, 10);
        Instance *b = add(&f.st, f.app, f.new, TASK_STATE(TASK_RUNNING), true, 20);
        Instance *c = add(&f.st, f.app, f.new, TASK_STATE(TASK_RUNNING), true, 30);
        DeploymentStep st = {
                .app_id = "/web", .action = STEP_ACTION_SCALE, .state = STEP_RUNNING, .to = f.new
        };
        planner_plan(f.app, &st, &p);
        assert_int_equal(p.launch, 2);
        assert_int_equal(p.n_kill, 0);

        f.new->spec->instances = 1;
        planner_plan(f.app, &st, &p);
        assert_int_equal(p.launch, 0);
        assert_int_equal(p.n_kill, 2);
        /* YOUNGEST_FIRST (default): c then b */
        assert_ptr_equal(p.kill[0], c);
        assert_ptr_equal(p.kill[1], b);
        f.new->spec->kill_selection = KILL_SELECTION_OLDEST_FIRST;
        planner_plan(f.app, &st, &p);
        assert_ptr_equal(p.kill[0], a);
        assert_ptr_equal(p.kill[1], b);

        /* done once the count matches and all are ready */
        b->kill_sent = c->kill_sent = true;
        planner_plan(f.app, &st, &p);
        assert_true(p.done);
        teardown(&f);
}

static void test_stop_kills_everything(void **state)
{
        Fixture f;
        PlanActions p;

        setup(&f, 3, 3, 1.0, 1.0);
        DeploymentStep st = {
                .app_id = "/web", .action = STEP_ACTION_STOP, .state = STEP_RUNNING, .from = f.new
        };
        planner_plan(f.app, &st, &p);
        assert_int_equal(p.n_kill, 3);
        assert_false(p.done);
        teardown(&f);
}

static void test_dependencies_and_cycles(void **state)
{
        State st;
        App *a, *b, *c;
        Deployment *d;
        PacerError err = { "" };

        state_init(&st);
        assert_int_equal(state_app_add(&st, test_spec("{\"id\":\"/db\",\"cmd\":\"x\"}", "v1"), &a), 0);
        assert_int_equal(
                state_app_add(&st,
                              test_spec("{\"id\":\"/api\",\"cmd\":\"x\",\"dependencies\":[\"/db\"]}", "v1"),
                              &b),
                0);
        assert_int_equal(
                state_app_add(&st,
                              test_spec("{\"id\":\"/web\",\"cmd\":\"x\",\"dependencies\":[\"/api\"]}", "v1"),
                              &c),
                0);
        d = deployment_new("v1");
        deployment_add_step(d, "/web", STEP_ACTION_START, NULL, c->current, NULL);
        deployment_add_step(d, "/api", STEP_ACTION_START, NULL, b->current, NULL);
        deployment_add_step(d, "/db", STEP_ACTION_START, NULL, a->current, NULL);
        assert_int_equal(deployment_resolve_dependencies(d, &st, &err), 0);
        assert_int_equal(deployment_step(d, "/web")->n_deps, 1);
        assert_string_equal(deployment_step(d, "/web")->deps[0], "/api");
        assert_int_equal(deployment_step(d, "/db")->n_deps, 0);

        /* Marathon's steps: one per dependency level, /db first */
        json_t *j = deployment_to_json(d, &st);
        assert_int_equal(json_integer_value(json_object_get(j, "totalSteps")), 3);
        json_t *steps = json_object_get(j, "steps");
        assert_string_equal(
                json_string_value(json_object_get(
                        json_array_get(json_object_get(json_array_get(steps, 0), "actions"), 0), "app")),
                "/db");
        json_decref(j);

        /* the store round trip keeps states, reasons and dependencies */
        deployment_step(d, "/db")->state = STEP_FAILED;
        snprintf(deployment_step(d, "/db")->reason, DEPLOYMENT_REASON_MAX, "crash loop");
        Deployment *back;
        assert_int_equal(roundtrip(d, &st, &back, &err), 0);
        assert_string_equal(back->id, d->id);
        assert_int_equal(deployment_step(back, "/db")->state, STEP_FAILED);
        assert_string_equal(deployment_step(back, "/db")->reason, "crash loop");
        assert_ptr_equal(deployment_step(back, "/web")->to, c->current);
        assert_int_equal(deployment_step(back, "/api")->n_deps, 1);
        deployment_free(back);
        deployment_free(d);

        /* a cycle is refused, naming an app on it */
        App *x, *y;
        assert_int_equal(
                state_app_add(
                        &st, test_spec("{\"id\":\"/x\",\"cmd\":\"x\",\"dependencies\":[\"/y\"]}", "v1"), &x),
                0);
        assert_int_equal(
                state_app_add(
                        &st, test_spec("{\"id\":\"/y\",\"cmd\":\"x\",\"dependencies\":[\"/x\"]}", "v1"), &y),
                0);
        d = deployment_new("v1");
        deployment_add_step(d, "/x", STEP_ACTION_START, NULL, x->current, NULL);
        deployment_add_step(d, "/y", STEP_ACTION_START, NULL, y->current, NULL);
        assert_int_equal(deployment_resolve_dependencies(d, &st, &err), -ELOOP);
        assert_non_null(strstr(err.msg, "cycle"));
        deployment_free(d);
        state_done(&st);
}

static void test_rolled_back_step_is_no_success(void **state)
{
        Deployment *d = deployment_new("v1");
        DeploymentStep *a, *b;
        char buf[300];

        deployment_add_step(d, "/a", STEP_ACTION_RESTART, NULL, NULL, NULL);
        deployment_add_step(d, "/b", STEP_ACTION_RESTART, NULL, NULL, NULL);
        a = deployment_step(d, "/a"); /* after the last add: steps live in one array */
        b = deployment_step(d, "/b");
        a->state = b->state = STEP_SUCCEEDED;
        assert_true(deployment_succeeded(d));
        assert_null(deployment_failure(d, buf, sizeof(buf)));

        /* reaching the previous version is not what was asked */
        b->rollback = true;
        assert_false(deployment_succeeded(d));
        assert_string_equal(deployment_failure(d, buf, sizeof(buf)), "/b: rolled back");
        snprintf(b->reason, sizeof(b->reason), "rolled back: deadline of 2s passed");
        assert_string_equal(deployment_failure(d, buf, sizeof(buf)),
                            "/b: rolled back: deadline of 2s passed");

        b->rollback = false;
        b->state = STEP_FAILED;
        snprintf(b->reason, sizeof(b->reason), "crash loop");
        assert_string_equal(deployment_failure(d, buf, sizeof(buf)), "/b: failed: crash loop");
        deployment_free(d);
}

/* A deployment recovered from the store names versions of the history that recovery kept unparsed:
 * decoding parses them (a step needs its versions' content), and refuses a record whose version is
 * unreadable, saying which. */
static void test_decode_parses_stored_versions(void **state)
{
        static const char good[] = "{\"id\":\"/web\",\"cmd\":\"sleep 1\",\"instances\":4}";
        static const char bad[] = "{\"id\":\"/web\",\"cmd\":\"sleep 1\",\"mem\":-5}";
        PacerError err = { "" };
        AppSpec *ref = test_spec(good, "2025-01-01T00:00:00.000Z");
        Deployment *d, *back;
        State st;
        App *app;

        state_init(&st);
        assert_int_equal(
                state_app_add(&st,
                              test_spec("{\"id\":\"/web\",\"cmd\":\"sleep 2\"}", "2026-01-02T00:00:00.000Z"),
                              &app),
                0);
        state_app_add_history(app,
                              app_version_new_stored("2025-01-01T00:00:00.000Z", ref->json, ref->json_len));
        state_app_add_history(app, app_version_new_stored("2025-06-01T00:00:00.000Z", bad, strlen(bad)));
        assert_int_equal(app->n_history, 2);
        AppVersion *old = app->history[1];
        assert_null(old->spec);

        /* encoding needs only the names */
        d = deployment_new("2026-01-02T00:00:00.000Z");
        deployment_add_step(d, "/web", STEP_ACTION_RESTART, old, app->current, NULL);
        assert_int_equal(roundtrip(d, &st, &back, &err), 0);
        deployment_free(d);
        DeploymentStep *step = deployment_step(back, "/web");
        assert_ptr_equal(step->from, old);
        assert_non_null(step->from->spec);
        assert_string_equal(step->from->spec->json, ref->json);
        assert_int_equal(step->from->spec->instances, 4);
        assert_ptr_equal(step->to, app->current);
        deployment_free(back);

        /* a step from the unreadable version: the record is refused, naming it */
        d = deployment_new("2026-01-02T00:00:00.000Z");
        deployment_add_step(d, "/web", STEP_ACTION_RESTART, app->history[0], app->current, NULL);
        back = NULL;
        assert_int_equal(roundtrip(d, &st, &back, &err), -EBADMSG);
        assert_null(back);
        assert_non_null(strstr(err.msg, "2025-06-01T00:00:00.000Z"));
        assert_non_null(strstr(err.msg, "/mem"));
        /* and again, now that the version is forgotten: not in the store */
        assert_int_equal(roundtrip(d, &st, &back, &err), -ENOENT);
        assert_int_equal(app->n_history, 1);
        deployment_free(d);

        app_spec_free(ref);
        state_done(&st);
}

/* The store's records: a batch of 10,000 apps is 10,001 small records, not one that outgrows
 * STORE_OBJECT_MAX; what recovery reads is checked piece by piece, naming what is wrong; the
 * one-record form of earlier releases still reads. */
static void test_records(void **state)
{
        static const char legacy[] =
                "{\"id\":\"d-old\",\"version\":\"v1\",\"created\":5.5,\"steps\":[{\"app\":\"/gone\","
                "\"action\":\"StopApplication\",\"state\":\"running\"}]}";
        PacerError err = { "" };
        char id[DEPLOYMENT_ID_MAX], key[DEPLOYMENT_ID_MAX + 24];
        Deployment *d = deployment_new("v1"), *back;
        json_t *rec;
        size_t index;
        State st;

        state_init(&st);
        for (size_t i = 0; i < 10000; i++) {
                char app[32];
                snprintf(app, sizeof(app), "/batch/app-%05zu", i);
                assert_int_equal(deployment_add_step(d, app, STEP_ACTION_STOP, NULL, NULL, NULL), 0);
        }
        snprintf(d->steps[9999].reason, DEPLOYMENT_REASON_MAX, "%0*d", DEPLOYMENT_REASON_MAX - 1, 7);
        for (size_t i = 0; i < d->n_steps; i += 9999) {
                Buf b = BUF_INIT(STORE_OBJECT_MAX);
                assert_int_equal(deployment_encode_step(&d->steps[i], &b), 0);
                assert_true(b.len < 1024);
                buf_done(&b);
        }
        assert_int_equal(roundtrip(d, &st, &back, &err), 0);
        assert_int_equal(back->n_steps, 10000);
        assert_string_equal(back->steps[9999].app_id, "/batch/app-09999");
        assert_string_equal(back->steps[9999].reason, d->steps[9999].reason);
        deployment_free(back);

        /* keys */
        assert_int_equal(deployment_step_key(d->id, 9999, key, sizeof(key)), 0);
        assert_int_equal(deployment_step_key_parse(key, id, &index), 0);
        assert_string_equal(id, d->id);
        assert_int_equal(index, 9999);
        assert_int_equal(deployment_step_key(d->id, 1, key, 8), -ENOBUFS);
        assert_int_equal(deployment_step_key_parse("d-1", id, &index), -EINVAL);
        assert_int_equal(deployment_step_key_parse("#1", id, &index), -EINVAL);
        assert_int_equal(deployment_step_key_parse("d-1#", id, &index), -EINVAL);
        assert_int_equal(deployment_step_key_parse("d-1#-1", id, &index), -EINVAL);
        assert_int_equal(deployment_step_key_parse("d-1#1x", id, &index), -EINVAL);
        assert_int_equal(deployment_step_key_parse("d-1#99999999999999999999", id, &index), -EINVAL);

        /* a header: garbage, a wrong shape, an absurd step count */
        assert_int_equal(deployment_record_open("[", 1, &rec, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "not JSON"));
        assert_int_equal(deployment_record_open("{\"id\":1}", 8, &rec, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "wrong shape"));
        static const char huge[] = "{\"id\":\"d\",\"version\":\"v\",\"created\":1,\"n_steps\":100000000}";
        assert_int_equal(deployment_record_open(huge, strlen(huge), &rec, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "n_steps"));

        /* a step missing, out of range, not an object */
        static const char two[] = "{\"id\":\"d-2\",\"version\":\"v\",\"created\":1,\"n_steps\":2}";
        static const char step[] = "{\"app\":\"/a\",\"action\":\"StopApplication\",\"state\":\"waiting\"}";
        assert_int_equal(deployment_record_open(two, strlen(two), &rec, &err), 0);
        assert_int_equal(deployment_record_add_step(rec, 0, step, strlen(step), &err), 0);
        assert_int_equal(deployment_record_add_step(rec, 2, step, strlen(step), &err), -ERANGE);
        assert_non_null(strstr(err.msg, "no step 2"));
        assert_int_equal(deployment_record_add_step(rec, 1, "[1]", 3, &err), -EBADMSG);
        assert_int_equal(deployment_record_add_step(rec, 1, "{", 1, &err), -EBADMSG);
        back = NULL;
        assert_int_equal(deployment_decode(rec, &st, &back, &err), -EBADMSG);
        assert_null(back);
        assert_non_null(strstr(err.msg, "step 1 is missing"));
        assert_int_equal(deployment_record_add_step(rec, 1, "{\"app\":\"/b\"}", 12, &err), 0);
        assert_int_equal(deployment_decode(rec, &st, &back, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "step 1 has the wrong shape"));
        json_decref(rec);

        /* the one-record form */
        assert_int_equal(deployment_record_open(legacy, strlen(legacy), &rec, &err), 0);
        assert_true(deployment_record_is_legacy(rec));
        assert_int_equal(deployment_record_add_step(rec, 0, step, strlen(step), &err), -ERANGE);
        assert_int_equal(deployment_decode(rec, &st, &back, &err), 0);
        assert_string_equal(back->id, "d-old");
        assert_int_equal(back->n_steps, 1);
        assert_int_equal(back->steps[0].state, STEP_RUNNING);
        deployment_free(back);
        json_decref(rec);

        deployment_free(d);
        state_done(&st);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rolling_default_strategy),
                cmocka_unit_test(test_records),
                cmocka_unit_test(test_rolling_half_capacity_no_overshoot),
                cmocka_unit_test(test_full_capacity_no_overshoot_allows_one_extra),
                cmocka_unit_test(test_not_ready_old_instances_go_first),
                cmocka_unit_test(test_scale_up_and_down_with_kill_selection),
                cmocka_unit_test(test_stop_kills_everything),
                cmocka_unit_test(test_dependencies_and_cycles),
                cmocka_unit_test(test_rolled_back_step_is_no_success),
                cmocka_unit_test(test_decode_parses_stored_versions),
        };
        log_set_level(LOG_LEVEL_ERROR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
