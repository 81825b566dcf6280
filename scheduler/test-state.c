/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the in-memory state's versions and instances: a version kept as
 * its stored JSON is parsed on first use into what an eager parse gives, a
 * corrupt one is reported when it is needed and then forgotten, the history
 * stays sorted and capped, and recovered instances keep their task ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "state.h"
#include "test-support.h"

#define V1 "2026-01-01T00:00:01.000Z"
#define V2 "2026-01-01T00:00:02.000Z"
#define V3 "2026-01-01T00:00:03.000Z"

/* A version as recovery keeps it: its name and the store's bytes. */
static AppVersion *stored(const char *text, const char *version)
{
        AppSpec *a = test_spec(text, version);
        AppVersion *v = app_version_new_stored(version, a->json, a->json_len);

        assert_non_null(v);
        app_spec_free(a);
        return v;
}

static App *web(State *st)
{
        App *app;

        assert_int_equal(
                state_app_add(st, test_spec("{\"id\":\"/web\",\"cmd\":\"sleep 3\",\"instances\":2}", V3),
                              &app),
                0);
        return app;
}

static void test_stored_version_parsed_on_first_use(void **state)
{
        static const char v1[] =
                "{\"id\":\"/web\",\"cmd\":\"sleep 1\",\"cpus\":0.1,\"labels\":{\"a\":\"b\"},"
                "\"healthChecks\":[{\"protocol\":\"MESOS_HTTP\",\"portIndex\":0}]}";
        State st;
        App *app;
        AppVersion *v, *again;
        AppSpec *ref = test_spec(v1, V1);
        PacerError err = { "" };

        state_init(&st);
        app = web(&st);
        state_app_add_history(app, stored(v1, V1));
        v = app->history[0];
        assert_null(v->spec);
        assert_string_equal(v->version, V1);

        assert_int_equal(state_app_version(app, V1, &again, &err), 0);
        assert_ptr_equal(again, v);
        assert_non_null(v->spec);
        assert_null(v->stored);
        assert_ptr_equal(v->version, v->spec->version);
        /* what an eager parse gives, to the byte */
        assert_string_equal(v->spec->json, ref->json);
        assert_string_equal(v->spec->version, V1);
        assert_true(v->spec->cpus == 0.1);
        assert_int_equal(v->spec->n_checks, 1);

        /* parsed once: a second use gives the same spec */
        AppSpec *spec = v->spec;
        assert_int_equal(state_app_version(app, V1, &again, &err), 0);
        assert_ptr_equal(again->spec, spec);

        /* the current version, and one the app does not have */
        assert_int_equal(state_app_version(app, V3, &again, &err), 0);
        assert_ptr_equal(again, app->current);
        assert_int_equal(state_app_version(app, V2, &again, &err), -ENOENT);
        assert_non_null(strstr(err.msg, V2));

        app_spec_free(ref);
        state_done(&st);
}

static void test_corrupt_version_reported_when_needed(void **state)
{
        static const struct {
                const char *json;
                const char *says; /* part of the message */
        } bad[] = {
                { "{\"id\":\"/web\",\"cmd\":\"x\",\"cpus\":-1}", "/cpus" },
                { "{\"id\":\"/web\",\"cmd\":", "" },
                { "{\"id\":\"/other\",\"cmd\":\"x\"}", "defines /other" },
                { "\xff\xfe", "" },
        };
        PacerError err;
        State st;
        AppVersion *v;
        App *app;

        state_init(&st);
        app = web(&st);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char version[32];

                snprintf(version, sizeof(version), "2026-01-01T00:00:00.%03zuZ", i);
                v = app_version_new_stored(version, bad[i].json, strlen(bad[i].json));
                assert_non_null(v);
                state_app_add_history(app, v);
                /* nothing is parsed until it is needed */
                assert_int_equal(app->n_history, 1);

                err = (PacerError){ "" };
                assert_int_equal(state_app_version(app, version, &v, &err), -EBADMSG);
                if (!strstr(err.msg, version) || !strstr(err.msg, "/web") || !strstr(err.msg, bad[i].says))
                        fail_msg("record %zu: '%s' should name the version, the app and %s", i, err.msg,
                                 bad[i].says);
                /* reported once: dropped from the history, unknown from then on */
                assert_int_equal(app->n_history, 0);
                assert_int_equal(state_app_version(app, version, &v, &err), -ENOENT);
        }
        state_done(&st);
}

static void test_history_sorted_and_capped(void **state)
{
        char version[32];
        State st;
        App *app;

        state_init(&st);
        app = web(&st);
        /* out of order, two more than kept: the two oldest go */
        for (unsigned k = 0; k < STATE_VERSIONS_KEPT + 2; k++) {
                unsigned n = (k * 7) % (STATE_VERSIONS_KEPT + 2); /* a permutation of 0..11 */
                snprintf(version, sizeof(version), "2025-01-01T00:00:%02u.000Z", n);
                state_app_add_history(app, stored("{\"id\":\"/web\",\"cmd\":\"x\"}", version));
        }
        assert_int_equal(app->n_history, STATE_VERSIONS_KEPT);
        for (size_t h = 0; h < app->n_history; h++) {
                snprintf(version, sizeof(version), "2025-01-01T00:00:%02zu.000Z",
                         STATE_VERSIONS_KEPT + 1 - h);
                assert_string_equal(app->history[h]->version, version);
                assert_null(app->history[h]->spec);
        }
        /* older than all kept: not taken */
        state_app_add_history(app, stored("{\"id\":\"/web\",\"cmd\":\"x\"}", "2024-01-01T00:00:00.000Z"));
        assert_int_equal(app->n_history, STATE_VERSIONS_KEPT);
        assert_string_equal(app->history[STATE_VERSIONS_KEPT - 1]->version, "2025-01-01T00:00:02.000Z");
        state_done(&st);
}

static void test_instance_add_keeps_task_id(void **state)
{
        static const char id[] = "web.11111111-2222-3333-4444-555555555555";
        InstanceRecord rec;
        State st;
        Instance *i, *j;
        App *app;
        Buf b = BUF_INIT(4096);

        state_init(&st);
        app = web(&st);
        assert_int_equal(state_instance_add(&st, app, app->current, id, &i), 0);
        assert_string_equal(i->task_id, id);
        assert_ptr_equal(state_instance(&st, id), i);
        assert_int_equal(app->current->refs, 2);

        /* a task id taken: refused, the first instance untouched */
        j = NULL;
        assert_int_equal(state_instance_add(&st, app, app->current, id, &j), -EEXIST);
        assert_null(j);
        assert_ptr_equal(state_instance(&st, id), i);
        assert_int_equal(app->n_instances, 1);
        assert_int_equal(hashmap_count(&st.instances), 1);
        assert_int_equal(app->current->refs, 2);

        /* fresh ids still come from state_instance_new */
        assert_int_equal(state_instance_new(&st, app, app->current, &j), 0);
        assert_string_not_equal(j->task_id, id);
        assert_int_equal(strncmp(j->task_id, "web.", 4), 0);

        /* the record names the version by name */
        assert_int_equal(instance_encode(i, &b), 0);
        assert_int_equal(instance_decode(b.data, b.len, &rec, NULL), 0);
        assert_string_equal(rec.task_id, id);
        assert_string_equal(rec.version, V3);
        buf_done(&b);
        state_done(&st);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stored_version_parsed_on_first_use),
                cmocka_unit_test(test_corrupt_version_reported_when_needed),
                cmocka_unit_test(test_history_sorted_and_capped),
                cmocka_unit_test(test_instance_add_keeps_task_id),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
