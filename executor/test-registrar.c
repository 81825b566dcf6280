/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for how a task's Consul services are derived (registrar_plan_services):
 * the name from the `consul` label, else the app id, else the task name;
 * DNS-safe names; `tag` labels and the global tag; one service per port whose
 * discovery labels carry `consul`, else the first port; bad label values
 * refused with the label named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registrar.h"

#define LABELS_MAX 8

typedef struct Fixture {
        TaskInfo task;
        Mesos__V1__TaskID id;
        Labels labels;
        Label label[LABELS_MAX], *lp[LABELS_MAX];
        Mesos__V1__DiscoveryInfo discovery;
        Mesos__V1__Ports ports;
        Mesos__V1__Port port[3], *pp[3];
        Labels port_labels[3];
        Label port_label[3], *plp[3];
} Fixture;

static void fixture(Fixture *f, const char *name)
{
        memset(f, 0, sizeof(*f));
        mesos__v1__task_info__init(&f->task);
        mesos__v1__task_id__init(&f->id);
        mesos__v1__labels__init(&f->labels);
        f->id.value = "web.1234";
        f->task.task_id = &f->id;
        f->task.name = (char *)name;
        f->task.labels = &f->labels;
        f->labels.labels = f->lp;
}

static void label(Fixture *f, const char *key, const char *value)
{
        size_t i = f->labels.n_labels++;

        assert_true(i < LABELS_MAX);
        mesos__v1__label__init(&f->label[i]);
        f->label[i].key = (char *)key;
        f->label[i].value = (char *)value;
        f->lp[i] = &f->label[i];
}

/* Discovery ports; a NULL consul value leaves that port without the label. */
static void discovery(Fixture *f, const char *const consul[], size_t n)
{
        mesos__v1__discovery_info__init(&f->discovery);
        mesos__v1__ports__init(&f->ports);
        for (size_t i = 0; i < n; i++) {
                mesos__v1__port__init(&f->port[i]);
                mesos__v1__labels__init(&f->port_labels[i]);
                if (consul[i]) {
                        mesos__v1__label__init(&f->port_label[i]);
                        f->port_label[i].key = "consul";
                        f->port_label[i].value = (char *)consul[i];
                        f->plp[i] = &f->port_label[i];
                        f->port_labels[i].labels = &f->plp[i];
                        f->port_labels[i].n_labels = 1;
                }
                f->port[i].labels = &f->port_labels[i];
                f->pp[i] = &f->port[i];
        }
        f->ports.ports = f->pp;
        f->ports.n_ports = n;
        f->discovery.ports = &f->ports;
        f->task.discovery = &f->discovery;
}

static bool has_tag(const RegistrarService *s, const char *tag)
{
        for (size_t i = 0; i < s->n_tags; i++)
                if (strcmp(s->tags[i], tag) == 0)
                        return true;
        return false;
}

static void test_name_from_label_app_or_task(void **state)
{
        static const uint32_t ports[] = { 31001, 31002 };
        RegistrarService s[REGISTRAR_SERVICES_MAX];
        PacerError err = { "" };
        size_t n = 0;
        Fixture f;

        fixture(&f, "web.prod");
        label(&f, "consul", "Web_Front..End");
        assert_int_equal(registrar_plan_services(&f.task, "/prod/web", ports, 2, NULL, s, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(s[0].name, "web-front-end"); /* DNS-safe: lower case, runs become one '-' */
        assert_string_equal(s[0].id, "web.1234_web-front-end_31001");
        assert_string_equal(s[0].check_id, "web.1234_web-front-end_31001:ttl");
        assert_int_equal(s[0].port, 31001); /* no port labels: the first port */
        registrar_services_done(s, n);

        fixture(&f, "web.prod"); /* no label: the app id */
        assert_int_equal(registrar_plan_services(&f.task, "/prod/web", ports, 2, NULL, s, &n, &err), 0);
        assert_string_equal(s[0].name, "prod-web");
        registrar_services_done(s, n);

        fixture(&f, "Web.Prod"); /* no app id (not under Marathon or Pacer): the task name */
        assert_int_equal(registrar_plan_services(&f.task, NULL, ports, 0, NULL, s, &n, &err), 0);
        assert_string_equal(s[0].name, "web-prod");
        assert_int_equal(s[0].port, 0);
        registrar_services_done(s, n);
}

static void test_tags_and_global_tag(void **state)
{
        static const uint32_t ports[] = { 31001 };
        RegistrarNaming naming = { .global_tag = "pacer" };
        RegistrarService s[REGISTRAR_SERVICES_MAX];
        PacerError err = { "" };
        size_t n = 0;
        Fixture f;

        fixture(&f, "web");
        label(&f, "consul", "web");
        label(&f, "canary", "tag");
        label(&f, "eu-west", "tag");
        label(&f, "team", "payments"); /* not a tag */
        label(&f, "pacer", "tag");     /* same as the global tag: once */
        assert_int_equal(registrar_plan_services(&f.task, "/web", ports, 1, &naming, s, &n, &err), 0);
        assert_int_equal(s[0].n_tags, 3);
        assert_true(has_tag(&s[0], "canary") && has_tag(&s[0], "eu-west") && has_tag(&s[0], "pacer"));
        assert_false(has_tag(&s[0], "team"));
        registrar_services_done(s, n);
}

static void test_port_labels_select_ports(void **state)
{
        static const uint32_t ports[] = { 31001, 31002, 31003 };
        static const char *const consul[] = { NULL, "admin", "" };
        RegistrarNaming naming = { .global_tag = "g" };
        RegistrarService s[REGISTRAR_SERVICES_MAX];
        PacerError err = { "" };
        size_t n = 0;
        Fixture f;

        fixture(&f, "web");
        label(&f, "consul", "web");
        label(&f, "v2", "tag");
        discovery(&f, consul, 3);
        assert_int_equal(registrar_plan_services(&f.task, "/web", ports, 3, &naming, s, &n, &err), 0);
        assert_int_equal(n, 2); /* port 0 carries no `consul` label */
        assert_string_equal(s[0].name, "admin");
        assert_int_equal(s[0].port, 31002);
        assert_string_equal(s[1].name, "web"); /* an empty value: the task's service name */
        assert_int_equal(s[1].port, 31003);
        assert_string_not_equal(s[0].id, s[1].id);
        for (size_t i = 0; i < n; i++)
                assert_true(has_tag(&s[i], "v2") && has_tag(&s[i], "g"));
        registrar_services_done(s, n);
}

static void test_bad_labels_name_the_label(void **state)
{
        static const uint32_t ports[] = { 31001 };
        static const char *const consul[] = { "adm\nin" };
        RegistrarService s[REGISTRAR_SERVICES_MAX];
        PacerError err = { "" };
        char big[REGISTRAR_LABEL_MAX + 2];
        size_t n = 0;
        Fixture f;

        fixture(&f, "web");
        label(&f, "consul", "web\nevil");
        assert_int_equal(registrar_plan_services(&f.task, "/web", ports, 1, NULL, s, &n, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "label consul"));
        assert_non_null(strstr(err.msg, "control character"));

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        fixture(&f, "web");
        label(&f, "consul", big);
        assert_int_equal(registrar_plan_services(&f.task, "/web", ports, 1, NULL, s, &n, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "more than"));

        fixture(&f, "web");
        discovery(&f, consul, 1);
        assert_int_equal(registrar_plan_services(&f.task, "/web", ports, 1, NULL, s, &n, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "label consul"));

        fixture(&f, "!!!"); /* nothing DNS-safe anywhere but the task id: the task id */
        f.id.value = "...";
        assert_int_equal(registrar_plan_services(&f.task, NULL, ports, 1, NULL, s, &n, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "set the `consul` label"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_name_from_label_app_or_task),
                cmocka_unit_test(test_tags_and_global_tag),
                cmocka_unit_test(test_port_labels_select_ports),
                cmocka_unit_test(test_bad_labels_name_the_label),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
