/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for app definitions: Marathon's defaults, the canonical JSON (shape,
 * order, number printing, echo-back), ids, every field's validation with its
 * Marathon-style error path, the unknown/unsupported/read-only field policy,
 * hostile input (huge env, long labels, control characters, unicode, huge
 * numbers), the size cap, all errors at once in a 422 body, PATCH merges,
 * version stamping, and specs rebuilt from store records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

#define VERSION "2024-05-01T12:00:00.000Z"

/* JSON written with single quotes for readability, through the REST API's parser. */
static json_t *load(const char *text)
{
        PacerError err = {};
        char *buf = strdup(text);
        json_t *j = NULL;

        assert_non_null(buf);
        for (char *c = buf; *c; c++)
                if (*c == '\'')
                        *c = '"';
        if (json_parse(buf, strlen(buf), NULL, &j, &err) < 0)
                fail_msg("bad test JSON %s: %s", buf, err.msg);
        free(buf);
        return j;
}

static AppSpec *from_json_ok(const json_t *j)
{
        JsonErrors errs = {};
        AppSpec *a = NULL;

        if (app_spec_from_json(j, NULL, &a, &errs) != 0) {
                for (size_t i = 0; i < errs.n; i++)
                        print_error("%s: %s\n", errs.entries[i].path, errs.entries[i].message);
                fail_msg("app rejected with %zu errors", json_errors_count(&errs));
        }
        assert_non_null(a);
        assert_non_null(a->json);
        assert_int_equal(strlen(a->json), a->json_len);
        return a;
}

static AppSpec *parse_ok(const char *text)
{
        json_t *j = load(text);
        AppSpec *a = from_json_ok(j);

        json_decref(j);
        return a;
}

/* Asserts that j is rejected with exactly the errors given as (path, message
 * fragment) pairs, NULL-terminated, in any order, and that *ret is untouched. */
static void assert_errors_v(const json_t *j, va_list ap)
{
        AppSpec *sentinel = (AppSpec *)&sentinel, *a = sentinel;
        bool used[JSON_ERRORS_MAX] = {};
        JsonErrors errs = {};
        const char *path;
        size_t want = 0;
        int r;

        r = app_spec_from_json(j, NULL, &a, &errs);
        assert_int_equal(r, -EINVAL);
        assert_ptr_equal(a, sentinel);
        while ((path = va_arg(ap, const char *))) {
                const char *frag = va_arg(ap, const char *);
                bool found = false;
                want++;
                for (size_t i = 0; i < errs.n && !found; i++)
                        if (!used[i] && streq(errs.entries[i].path, path) &&
                            strstr(errs.entries[i].message, frag))
                                found = used[i] = true;
                if (!found) {
                        for (size_t i = 0; i < errs.n; i++)
                                print_error("  got %s: %s\n", errs.entries[i].path, errs.entries[i].message);
                        fail_msg("no error at %s containing \"%s\"", path, frag);
                }
        }
        if (json_errors_count(&errs) != want) {
                for (size_t i = 0; i < errs.n; i++)
                        print_error("  got %s: %s\n", errs.entries[i].path, errs.entries[i].message);
                fail_msg("%zu errors, want %zu", json_errors_count(&errs), want);
        }
}

static void assert_json_errors(const json_t *j, ...)
{
        va_list ap;

        va_start(ap, j);
        assert_errors_v(j, ap);
        va_end(ap);
}

static void assert_errors(const char *text, ...)
{
        json_t *j = load(text);
        va_list ap;

        va_start(ap, text);
        assert_errors_v(j, ap);
        va_end(ap);
        json_decref(j);
}

#define ERRORS(text, ...) assert_errors((text), __VA_ARGS__, NULL)

static void test_name_tables(void **state)
{
        bool mesos = true;

        assert_string_equal(app_check_protocol_to_string(CHECK_PROTOCOL_COMMAND), "COMMAND");
        assert_null(app_check_protocol_to_string(_CHECK_PROTOCOL_MAX));
        assert_int_equal(app_check_protocol_from_string("HTTP", &mesos), CHECK_PROTOCOL_HTTP);
        assert_false(mesos);
        assert_int_equal(app_check_protocol_from_string("MESOS_HTTPS", &mesos), CHECK_PROTOCOL_HTTPS);
        assert_true(mesos);
        assert_int_equal(app_check_protocol_from_string("MESOS_TCP", NULL), CHECK_PROTOCOL_TCP);
        assert_int_equal(app_check_protocol_from_string("MESOS_COMMAND", NULL), _CHECK_PROTOCOL_INVALID);
        assert_int_equal(app_check_protocol_from_string("MESOS_", NULL), _CHECK_PROTOCOL_INVALID);
        assert_int_equal(app_check_protocol_from_string("http", NULL), _CHECK_PROTOCOL_INVALID);
        assert_int_equal(app_check_protocol_from_string(NULL, NULL), _CHECK_PROTOCOL_INVALID);

        assert_string_equal(app_kill_selection_to_string(KILL_SELECTION_OLDEST_FIRST), "OLDEST_FIRST");
        assert_int_equal(app_kill_selection_from_string("YOUNGEST_FIRST"), KILL_SELECTION_YOUNGEST_FIRST);
        assert_int_equal(app_kill_selection_from_string("RANDOM"), _KILL_SELECTION_INVALID);
        assert_null(app_kill_selection_to_string(_KILL_SELECTION_INVALID));

        assert_string_equal(app_port_protocol_to_string(PORT_PROTOCOL_UDP_TCP), "udp,tcp");
        assert_int_equal(app_port_protocol_from_string("udp"), PORT_PROTOCOL_UDP);
        assert_int_equal(app_port_protocol_from_string("tcp,udp"), _PORT_PROTOCOL_INVALID);
}

static void test_defaults(void **state)
{
        AppSpec *a = parse_ok("{'id': 'web', 'cmd': 'sleep 1'}");

        assert_string_equal(a->id, "/web");
        assert_string_equal(a->cmd, "sleep 1");
        assert_null(a->args);
        assert_null(a->user);
        assert_true(a->cpus == 1 && a->mem == 128 && a->disk == 0);
        assert_int_equal(a->instances, 1);
        assert_int_equal(a->n_env, 0);
        assert_int_equal(a->n_labels, 0);
        assert_int_equal(a->n_constraints, 0);
        assert_int_equal(a->n_ports, 1);
        assert_int_equal(a->ports[0].port, 0);
        assert_int_equal(a->ports[0].protocol, PORT_PROTOCOL_TCP);
        assert_null(a->ports[0].name);
        assert_false(a->require_ports);
        assert_int_equal(a->n_checks, 0);
        assert_true(a->minimum_health_capacity == 1 && a->maximum_over_capacity == 1);
        assert_true(a->backoff_seconds == 1 && a->backoff_factor == 1.15 &&
                    a->max_launch_delay_seconds == 3600);
        assert_int_equal(a->kill_selection, KILL_SELECTION_YOUNGEST_FIRST);
        assert_int_equal(a->task_kill_grace_seconds, -1);
        assert_int_equal(a->n_dependencies, 0);
        assert_string_equal(a->executor, "");
        assert_string_equal(a->version, "");
        assert_string_equal(
                a->json,
                "{\"id\":\"/web\",\"cmd\":\"sleep 1\",\"args\":null,\"user\":null,\"env\":{},\"instances\":1,"
                "\"cpus\":1,\"mem\":128,\"disk\":0,\"gpus\":0,\"executor\":\"\",\"constraints\":[],\"uris\":[],"
                "\"fetch\":[],\"storeUrls\":[],\"backoffSeconds\":1,\"backoffFactor\":1.15,"
                "\"maxLaunchDelaySeconds\":3600,\"container\":null,\"healthChecks\":[],\"readinessChecks\":[],"
                "\"dependencies\":[],\"upgradeStrategy\":{\"minimumHealthCapacity\":1,\"maximumOverCapacity\":1},"
                "\"labels\":{},\"portDefinitions\":[{\"port\":0,\"protocol\":\"tcp\",\"labels\":{}}],"
                "\"requirePorts\":false,\"killSelection\":\"YOUNGEST_FIRST\"}");
        app_spec_free(a);
        assert_null(app_spec_free(NULL));
}

static const char full_app[] =
        "{'id': '/prod/web', 'args': ['/bin/server', '--port', '$PORT0', ''], 'user': 'www',"
        " 'env': {'MODE': 'prod', 'CERT': 'line1\\nline2', 'spring.profiles': 'x'},"
        " 'instances': 3, 'cpus': 0.25, 'mem': 256, 'disk': 10.5,"
        " 'constraints': [['hostname', 'UNIQUE'], ['rack', 'GROUP_BY', 2], ['os', 'LIKE', 'linux|bsd']],"
        " 'portDefinitions': [{'port': 0, 'name': 'http', 'labels': {'consul': 'web'}},"
        "                     {'port': 9000, 'protocol': 'udp,tcp', 'name': 'admin-1'}],"
        " 'requirePorts': true,"
        " 'healthChecks': [{'protocol': 'MESOS_HTTP', 'path': '/health?full=1', 'portIndex': 1,"
        "                   'gracePeriodSeconds': 30, 'intervalSeconds': 10, 'timeoutSeconds': 2,"
        "                   'maxConsecutiveFailures': 0, 'delaySeconds': 1, 'ipProtocol': 'IPv6'},"
        "                  {'protocol': 'COMMAND', 'command': {'value': 'test -f /tmp/ok'}},"
        "                  {'protocol': 'TCP', 'port': 8125}],"
        " 'upgradeStrategy': {'minimumHealthCapacity': 0.5, 'maximumOverCapacity': 0},"
        " 'labels': {'team': 'core', 'pacer.check.ready': 'http:/ready', 'ünïcode': 'välue'},"
        " 'backoffSeconds': 2, 'backoffFactor': 2.5, 'maxLaunchDelaySeconds': 300,"
        " 'killSelection': 'OLDEST_FIRST', 'taskKillGracePeriodSeconds': 30,"
        " 'dependencies': ['db', '../infra/dns', '/abs/thing'], 'executor': '/opt/pacer/pacer-executor'}";

static void test_full(void **state)
{
        AppSpec *a = parse_ok(full_app);

        assert_string_equal(a->id, "/prod/web");
        assert_null(a->cmd);
        assert_int_equal(a->n_args, 4);
        assert_string_equal(a->args[2], "$PORT0");
        assert_string_equal(a->args[3], "");
        assert_null(a->args[4]);
        assert_string_equal(a->user, "www");
        assert_int_equal(a->n_env, 3);
        assert_string_equal(a->env[1].key, "CERT");
        assert_string_equal(a->env[1].value, "line1\nline2");
        assert_int_equal(a->instances, 3);
        assert_true(a->cpus == 0.25 && a->mem == 256 && a->disk == 10.5);
        assert_int_equal(a->n_constraints, 3);
        assert_int_equal(a->constraints[1].op, CONSTRAINT_GROUP_BY);
        assert_int_equal(a->constraints[1].number, 2);
        assert_true(a->constraints[2].has_regex);
        assert_int_equal(a->n_ports, 2);
        assert_string_equal(a->ports[0].name, "http");
        assert_int_equal(a->ports[0].n_labels, 1);
        assert_int_equal(a->ports[1].port, 9000);
        assert_int_equal(a->ports[1].protocol, PORT_PROTOCOL_UDP_TCP);
        assert_true(a->require_ports);
        assert_int_equal(a->n_checks, 3);
        assert_int_equal(a->checks[0].protocol, CHECK_PROTOCOL_HTTP);
        assert_true(a->checks[0].mesos_name);
        assert_true(a->checks[0].ipv6);
        assert_string_equal(a->checks[0].path, "/health?full=1");
        assert_int_equal(a->checks[0].port_index, 1);
        assert_int_equal(a->checks[0].max_consecutive_failures, 0);
        assert_int_equal(a->checks[1].protocol, CHECK_PROTOCOL_COMMAND);
        assert_string_equal(a->checks[1].command, "test -f /tmp/ok");
        assert_int_equal(a->checks[1].port_index, -1);
        assert_null(a->checks[1].path);
        assert_int_equal(a->checks[2].protocol, CHECK_PROTOCOL_TCP);
        assert_false(a->checks[2].mesos_name);
        assert_int_equal(a->checks[2].port, 8125);
        assert_int_equal(a->checks[2].port_index, -1);
        assert_true(a->minimum_health_capacity == 0.5 && a->maximum_over_capacity == 0);
        assert_true(a->backoff_seconds == 2 && a->backoff_factor == 2.5 &&
                    a->max_launch_delay_seconds == 300);
        assert_int_equal(a->kill_selection, KILL_SELECTION_OLDEST_FIRST);
        assert_int_equal(a->task_kill_grace_seconds, 30);
        assert_int_equal(a->n_dependencies, 3);
        assert_string_equal(a->dependencies[0], "/prod/db");
        assert_string_equal(a->dependencies[1], "/infra/dns");
        assert_string_equal(a->dependencies[2], "/abs/thing");
        assert_string_equal(a->executor, "/opt/pacer/pacer-executor");

        /* health checks in Marathon's field names, only those of their protocol */
        assert_non_null(strstr(a->json,
                               "\"healthChecks\":[{\"protocol\":\"MESOS_HTTP\",\"path\":\"/health?full=1\","
                               "\"portIndex\":1,\"gracePeriodSeconds\":30,\"intervalSeconds\":10,"
                               "\"timeoutSeconds\":2,\"maxConsecutiveFailures\":0,\"delaySeconds\":1,"
                               "\"ipProtocol\":\"IPv6\"},{\"protocol\":\"COMMAND\",\"command\":"
                               "{\"value\":\"test -f /tmp/ok\"},\"gracePeriodSeconds\":300,"
                               "\"intervalSeconds\":60,\"timeoutSeconds\":20,\"maxConsecutiveFailures\":3,"
                               "\"delaySeconds\":15},{\"protocol\":\"TCP\",\"port\":8125,"));
        assert_non_null(
                strstr(a->json, "\"cmd\":null,\"args\":[\"/bin/server\",\"--port\",\"$PORT0\",\"\"],"));
        assert_non_null(strstr(a->json,
                               "\"constraints\":[[\"hostname\",\"UNIQUE\"],[\"rack\",\"GROUP_BY\",\"2\"],"
                               "[\"os\",\"LIKE\",\"linux|bsd\"]]"));
        assert_non_null(strstr(a->json,
                               "\"portDefinitions\":[{\"port\":0,\"protocol\":\"tcp\",\"name\":\"http\","
                               "\"labels\":{\"consul\":\"web\"}},{\"port\":9000,\"protocol\":\"udp,tcp\","
                               "\"name\":\"admin-1\",\"labels\":{}}],\"requirePorts\":true"));
        assert_non_null(
                strstr(a->json, "\"killSelection\":\"OLDEST_FIRST\",\"taskKillGracePeriodSeconds\":30}"));
        assert_non_null(strstr(a->json, "\"ünïcode\":\"välue\""));
        app_spec_free(a);
}

/* The canonical JSON parses back to the same canonical JSON, with the
 * read-only fields a client echoes from a GET response. */
static void test_echo_back(void **state)
{
        AppSpec *a = parse_ok(full_app), *b;
        json_t *j;

        assert_int_equal(app_spec_set_version(a, VERSION), 0);
        j = app_spec_to_json(a);
        assert_non_null(j);
        assert_int_equal(json_object_set_new(j, "tasksRunning", json_integer(3)), 0);
        assert_int_equal(json_object_set_new(j, "tasksStaged", json_integer(0)), 0);
        assert_int_equal(json_object_set_new(j, "tasksHealthy", json_integer(3)), 0);
        assert_int_equal(json_object_set_new(j, "tasksUnhealthy", json_integer(0)), 0);
        assert_int_equal(json_object_set_new(j, "deployments", json_pack("[{s:s}]", "id", "d1")), 0);
        assert_int_equal(json_object_set_new(j, "tasks", json_pack("[{s:s}]", "id", "t1")), 0);
        assert_int_equal(
                json_object_set_new(j, "lastTaskFailure", json_pack("{s:s}", "state", "TASK_FAILED")), 0);
        assert_int_equal(json_object_set_new(j, "versionInfo", json_pack("{s:s}", "lastScalingAt", VERSION)),
                         0);
        b = from_json_ok(j);
        assert_string_equal(b->version, "");
        assert_int_equal(app_spec_set_version(b, VERSION), 0);
        assert_string_equal(b->json, a->json);
        json_decref(j);
        app_spec_free(b);
        app_spec_free(a);
}

static void test_numbers(void **state)
{
        AppSpec *a =
                parse_ok("{'id': 'n', 'cmd': 'x', 'cpus': 0.1, 'mem': 0.30000000000000004, 'disk': 64.0,"
                         " 'backoffFactor': 1.1, 'backoffSeconds': 0.001, 'maxLaunchDelaySeconds': 1e3,"
                         " 'upgradeStrategy': {'minimumHealthCapacity': -0.0, 'maximumOverCapacity': 0.7}}");

        assert_non_null(strstr(a->json, "\"cpus\":0.1,\"mem\":0.3,\"disk\":64,"));
        assert_non_null(strstr(a->json, "\"backoffSeconds\":0.001,\"backoffFactor\":1.1,"
                                        "\"maxLaunchDelaySeconds\":1000,"));
        assert_non_null(strstr(a->json, "{\"minimumHealthCapacity\":0,\"maximumOverCapacity\":0.7}"));
        /* the struct holds exactly what the JSON says */
        assert_true(a->mem == 0.3);
        assert_false(signbit(a->minimum_health_capacity));
        app_spec_free(a);
}

static void test_id_normalize(void **state)
{
        static const struct {
                const char *id, *base, *want;
        } ok[] = {
                { "web", NULL, "/web" },
                { "/web", "/prod", "/web" },
                { "web", "/prod", "/prod/web" },
                { "web", "", "/web" },
                { "./web", "/prod", "/prod/web" },
                { "../web", "/prod/a", "/prod/web" },
                { "/a/b/../c/./d/", NULL, "/a/c/d" },
                { "a.b-c/x1.y2", NULL, "/a.b-c/x1.y2" },
                { "0/9-9", NULL, "/0/9-9" },
        };
        static const struct {
                const char *id, *base, *frag;
        } bad[] = {
                { "", NULL, "must not be empty" },
                { "/", NULL, "not the root group" },
                { "a/..", NULL, "not the root group" },
                { "..", NULL, "\"..\" goes above the root" },
                { "/../x", NULL, "\"..\" goes above the root" },
                { "../../x", "/prod", "\"..\" goes above the root" },
                { "/a//b", NULL, "empty path segment" },
                { "//", NULL, "empty path segment" },
                { "/Web", NULL, "segment \"Web\" has an upper-case 'W': ids are lower case" },
                { "/my app", NULL, "segment \"my app\" contains a space" },
                { "/w\xc3\xa9"
                  "b",
                  NULL, "byte 0xc3 at offset 1" },
                { "/a_b", NULL, "contains '_'" },
                { "/a\tb", NULL, "byte 0x09" },
                { "/-web", NULL, "must start and end with a letter or digit" },
                { "/web-", NULL, "must start and end with a letter or digit" },
                { "/a.-b", NULL, "must start and end with a letter or digit" },
                { "/a..b", NULL, "empty label between dots" },
                { "/...", NULL, "empty label between dots" },
                { "/.a", NULL, "empty label" },
        };
        char long_id[APP_ID_MAX + 2];

        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                PacerError err = {};
                char *id = NULL;
                if (app_id_normalize(ok[i].id, ok[i].base, &id, &err) != 0)
                        fail_msg("%s rejected: %s", ok[i].id, err.msg);
                assert_string_equal(id, ok[i].want);
                free(id);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                PacerError err = {};
                char *id = (char *)"sentinel";
                assert_int_equal(app_id_normalize(bad[i].id, bad[i].base, &id, &err), -EINVAL);
                assert_string_equal(id, "sentinel");
                if (!strstr(err.msg, bad[i].frag))
                        fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].id, err.msg, bad[i].frag);
        }

        /* length: as given, and once resolved against the base */
        memset(long_id, 'a', sizeof(long_id));
        long_id[0] = '/';
        long_id[APP_ID_MAX] = 0;
        {
                PacerError err = {};
                char *id = NULL;
                assert_int_equal(app_id_normalize(long_id, NULL, &id, &err), 0);
                assert_int_equal(strlen(id), APP_ID_MAX);
                free(id);
                assert_int_equal(app_id_normalize(long_id + 1, "/prod", &id, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "longer than 256 bytes"));
                long_id[APP_ID_MAX] = 'a';
                long_id[APP_ID_MAX + 1] = 0;
                assert_int_equal(app_id_normalize(long_id, NULL, &id, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "is 257 bytes long"));
        }
}

static void test_id_in_app(void **state)
{
        ERRORS("{'cmd': 'x'}", "/id", "is required");
        ERRORS("{'id': null, 'cmd': 'x'}", "/id", "is required");
        ERRORS("{'id': 5, 'cmd': 'x'}", "/id", "expected string, got number");
        ERRORS("{'id': '/Prod/web', 'cmd': 'x'}", "/id", "upper-case 'P'");
        ERRORS("{'id': '/prod/../../web', 'cmd': 'x'}", "/id", "goes above the root");
        ERRORS("{'id': 'a b', 'cmd': 'x'}", "/id", "contains a space");
        ERRORS("{'id': '/\\u00e9t\\u00e9', 'cmd': 'x'}", "/id", "byte 0xc3");
        ERRORS("{'id': '/a//b', 'cmd': 'x'}", "/id", "empty path segment");
}

static void test_command(void **state)
{
        AppSpec *a = parse_ok("{'id': 'a', 'cmd': 'while true; do\\n  sleep 1\\ndone'}");

        assert_string_equal(a->cmd, "while true; do\n  sleep 1\ndone");
        app_spec_free(a);

        ERRORS("{'id': 'a', 'cmd': 'x', 'args': ['y']}", "/", "cmd and args are mutually exclusive");
        ERRORS("{'id': 'a'}", "/", "one of cmd or args is required");
        ERRORS("{'id': 'a', 'cmd': null, 'args': null}", "/", "one of cmd or args is required");
        ERRORS("{'id': 'a', 'cmd': ''}", "/cmd", "must not be empty");
        ERRORS("{'id': 'a', 'args': []}", "/args", "must not be empty");
        ERRORS("{'id': 'a', 'cmd': ['x']}", "/cmd", "expected string, got array");
        ERRORS("{'id': 'a', 'args': ['x', 1, {}]}", "/args(1)", "expected string, got number", "/args(2)",
               "got object");
        ERRORS("{'id': 'a', 'cmd': 'x', 'user': ''}", "/user", "must not be empty");
        ERRORS("{'id': 'a', 'cmd': 'x', 'user': 'a\\nb'}", "/user", "control characters");
}

static void test_resources(void **state)
{
        PacerError err = {};
        json_t *j = NULL;

        ERRORS("{'id': 'a', 'cmd': 'x', 'cpus': -1, 'mem': -0.5, 'disk': -1e-9}", "/cpus", "got -1", "/mem",
               "got -0.5", "/disk", "must be between 0 and");
        ERRORS("{'id': 'a', 'cmd': 'x', 'cpus': '1'}", "/cpus", "expected number, got string");
        ERRORS("{'id': 'a', 'cmd': 'x', 'mem': 1e300}", "/mem", "must be between 0 and 1e+09");
        ERRORS("{'id': 'a', 'cmd': 'x', 'instances': -1}", "/instances", "between 0 and 100000");
        ERRORS("{'id': 'a', 'cmd': 'x', 'instances': 100001}", "/instances", "got 100001");
        ERRORS("{'id': 'a', 'cmd': 'x', 'instances': 1.5}", "/instances", "expected integer");
        ERRORS("{'id': 'a', 'cmd': 'x', 'instances': true}", "/instances", "expected integer, got boolean");

        /* NaN and infinity cannot reach a spec: the parser refuses them */
        assert_int_equal(json_parse("{\"cpus\":1e400}", 14, NULL, &j, &err), -EINVAL);
        assert_int_equal(json_parse("{\"cpus\":NaN}", 12, NULL, &j, &err), -EINVAL);
        assert_null(json_real(NAN));
        assert_null(json_real(INFINITY));

        /* zero is a valid amount, and 0 instances a valid (suspended) app */
        AppSpec *a = parse_ok("{'id': 'a', 'cmd': 'x', 'cpus': 0, 'mem': 0, 'instances': 0}");
        assert_true(a->cpus == 0 && a->mem == 0);
        assert_int_equal(a->instances, 0);
        app_spec_free(a);
}

static void test_env(void **state)
{
        json_t *j = load("{'id': 'a', 'cmd': 'x'}"), *env = json_object();
        char name[32];

        /* 10,000 variables: one error for the count, not 10,000 (and the definition is too large) */
        for (int i = 0; i < 10000; i++) {
                snprintf(name, sizeof(name), "VAR_%d", i);
                json_object_set_new(env, name, json_string("v"));
        }
        json_object_set_new(j, "env", env);
        assert_json_errors(j, "/env", "must have at most 512 entries (got 10000)", "/",
                           "app definition is 148918 bytes, more than 65536", NULL);
        json_decref(j);

        ERRORS("{'id': 'a', 'cmd': 'x', 'env': {'FOO': 5, 'OK': 'y', 'BAR': null}}", "/env/FOO",
               "expected string, got number", "/env/BAR", "");
        ERRORS("{'id': 'a', 'cmd': 'x', 'env': {'DB_PASSWORD': {'secret': 'db'}}}", "/env/DB_PASSWORD",
               "not supported by Pacer: secret references");
        ERRORS("{'id': 'a', 'cmd': 'x', 'env': {'A=B': 'x', 'A B': 'x', '': 'x', 'CAF\\u00c9': 'x'}}",
               "/env/A=B", "without '=' or blanks", "/env/A B", "without '=' or blanks", "/env/",
               "must not be empty", "/env/CAF\xc3\x89", "printable ASCII");
        ERRORS("{'id': 'a', 'cmd': 'x', 'env': ['A=B']}", "/env", "expected object, got array");
}

static void test_labels(void **state)
{
        json_t *j, *labels;
        char *big;

        ERRORS("{'id': 'a', 'cmd': 'x', 'labels': {'bad': 'line1\\nline2', 'ok': 'fine'}}", "/labels/bad",
               "must not contain control characters (U+000A at byte 5)");
        /* a control character in the key: shown escaped in the path */
        ERRORS("{'id': 'a', 'cmd': 'x', 'labels': {'a\\tb': 'x'}}", "/labels/a\\x09b",
               "label name must not contain control characters");
        ERRORS("{'id': 'a', 'cmd': 'x', 'labels': {'': 'x'}}", "/labels/", "label name must not be empty");
        ERRORS("{'id': 'a', 'cmd': 'x', 'labels': {'n': 1}}", "/labels/n", "expected string, got number");

        /* a 100 KB value */
        big = malloc(100 * 1024 + 1);
        memset(big, 'v', 100 * 1024);
        big[100 * 1024] = 0;
        j = load("{'id': 'a', 'cmd': 'x', 'labels': {}}");
        json_object_set_new(json_object_get(j, "labels"), "big", json_string(big));
        assert_json_errors(j, "/labels/big", "must be at most 4096 bytes long (got 102400)", "/",
                           "app definition is 102440 bytes, more than 65536", NULL);
        json_decref(j);

        /* the largest value is fine */
        big[APP_LABEL_VALUE_MAX] = 0;
        j = load("{'id': 'a', 'cmd': 'x', 'labels': {}}");
        json_object_set_new(json_object_get(j, "labels"), "big", json_string(big));
        app_spec_free(from_json_ok(j));
        json_decref(j);
        free(big);

        /* too many */
        j = load("{'id': 'a', 'cmd': 'x'}");
        labels = json_object();
        for (int i = 0; i <= APP_LABELS_MAX; i++) {
                char k[16];
                snprintf(k, sizeof(k), "l%d", i);
                json_object_set_new(labels, k, json_string(""));
        }
        json_object_set_new(j, "labels", labels);
        assert_json_errors(j, "/labels", "must have at most 256 entries (got 257)", NULL);
        json_decref(j);
}

static void test_constraints_in_app(void **state)
{
        json_t *j, *list;

        ERRORS("{'id': 'a', 'cmd': 'x', 'constraints': [['hostname', 'UNIQUE'], ['rack', 'FOO'],"
               " ['os', 'LIKE', '(linux'], ['hostname', 'MAX_PER', 'abc'], 'hostname:UNIQUE']}",
               "/constraints(1)", "unknown operator \"FOO\"", "/constraints(2)",
               "not a valid regular expression", "/constraints(3)", "got \"abc\"", "/constraints(4)",
               "expected an array");
        ERRORS("{'id': 'a', 'cmd': 'x', 'constraints': {'hostname': 'UNIQUE'}}", "/constraints",
               "expected array, got object");

        j = load("{'id': 'a', 'cmd': 'x'}");
        list = json_array();
        for (int i = 0; i <= APP_CONSTRAINTS_MAX; i++)
                json_array_append_new(list, json_pack("[ss]", "hostname", "UNIQUE"));
        json_object_set_new(j, "constraints", list);
        assert_json_errors(j, "/constraints", "at most 32 items (got 33)", NULL);
        json_decref(j);
}

static void test_ports(void **state)
{
        AppSpec *a;

        /* legacy ports become port definitions */
        a = parse_ok("{'id': 'a', 'cmd': 'x', 'ports': [8080, 0, 0]}");
        assert_int_equal(a->n_ports, 3);
        assert_int_equal(a->ports[0].port, 8080);
        assert_non_null(
                strstr(a->json, "\"portDefinitions\":[{\"port\":8080,\"protocol\":\"tcp\",\"labels\":{}},"));
        assert_null(strstr(a->json, "\"ports\""));
        app_spec_free(a);

        /* both, saying the same (Marathon allows it) */
        a = parse_ok(
                "{'id': 'a', 'cmd': 'x', 'ports': [80], 'portDefinitions': [{'port': 80, 'name': 'web'}]}");
        assert_int_equal(a->n_ports, 1);
        assert_string_equal(a->ports[0].name, "web");
        app_spec_free(a);

        /* explicitly none */
        a = parse_ok("{'id': 'a', 'cmd': 'x', 'portDefinitions': []}");
        assert_int_equal(a->n_ports, 0);
        assert_non_null(strstr(a->json, "\"portDefinitions\":[]"));
        app_spec_free(a);
        a = parse_ok("{'id': 'a', 'cmd': 'x', 'ports': []}");
        assert_int_equal(a->n_ports, 0);
        app_spec_free(a);

        ERRORS("{'id': 'a', 'cmd': 'x', 'ports': [80], 'portDefinitions': [{'port': 81}]}", "/ports",
               "both given and differ");
        ERRORS("{'id': 'a', 'cmd': 'x', 'ports': [80, 'x', -1, 70000]}", "/ports(1)",
               "integer from 0 to 65535", "/ports(2)", "from 0", "/ports(3)", "from 0");
        ERRORS("{'id': 'a', 'cmd': 'x', 'ports': [80, 80]}", "/ports(1)",
               "port 80 is also given by ports(0)");
        ERRORS("{'id': 'a', 'cmd': 'x', 'portDefinitions': [{'port': 80, 'name': 'web'},"
               " {'port': 80, 'name': 'web'}, {'port': 0}, {'port': 0}]}",
               "/portDefinitions(1)/port", "ports must be unique", "/portDefinitions(1)/name",
               "\"web\" is also the name of portDefinitions(0)");
        ERRORS("{'id': 'a', 'cmd': 'x', 'portDefinitions': [{'port': 70000, 'name': 'Web', 'protocol': 'sctp',"
               " 'hostPort': 1, 'labels': {'x': 'a\\nb'}}, 5]}",
               "/portDefinitions(0)/port", "between 0 and 65535", "/portDefinitions(0)/name", "[a-z0-9-]+",
               "/portDefinitions(0)/protocol", "must be tcp, udp or udp,tcp", "/portDefinitions(0)/hostPort",
               "unknown field", "/portDefinitions(0)/labels/x", "control characters", "/portDefinitions(1)",
               "expected object, got number");
        ERRORS("{'id': 'a', 'cmd': 'x', 'portDefinitions': [{'name': ''}]}", "/portDefinitions(0)/name",
               "must not be empty");
}

static void test_health_check_defaults(void **state)
{
        AppSpec *a = parse_ok("{'id': 'a', 'cmd': 'x', 'healthChecks': [{}]}");

        assert_int_equal(a->n_checks, 1);
        assert_int_equal(a->checks[0].protocol, CHECK_PROTOCOL_HTTP);
        assert_false(a->checks[0].mesos_name);
        assert_string_equal(a->checks[0].path, "/");
        assert_int_equal(a->checks[0].port_index, 0);
        assert_int_equal(a->checks[0].grace_period_seconds, 300);
        assert_int_equal(a->checks[0].interval_seconds, 60);
        assert_int_equal(a->checks[0].timeout_seconds, 20);
        assert_int_equal(a->checks[0].max_consecutive_failures, 3);
        assert_int_equal(a->checks[0].delay_seconds, 15);
        assert_false(a->checks[0].ipv6);
        assert_non_null(strstr(
                a->json, "\"healthChecks\":[{\"protocol\":\"HTTP\",\"path\":\"/\",\"portIndex\":0,"
                         "\"gracePeriodSeconds\":300,\"intervalSeconds\":60,\"timeoutSeconds\":20,"
                         "\"maxConsecutiveFailures\":3,\"delaySeconds\":15,\"ipProtocol\":\"IPv4\"}]"));
        app_spec_free(a);

        /* Marathon emits ignoreHttp1xx: false; accepted back */
        a = parse_ok(
                "{'id': 'a', 'cmd': 'x', 'healthChecks': [{'protocol': 'HTTPS', 'ignoreHttp1xx': false}]}");
        assert_int_equal(a->checks[0].protocol, CHECK_PROTOCOL_HTTPS);
        app_spec_free(a);
}

static void test_health_check_errors(void **state)
{
        json_t *j, *list;

        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'portIndex': 1}]}", "/healthChecks(0)/portIndex",
               "must be less than the number of port definitions (1), got 1");
        ERRORS("{'id': 'a', 'cmd': 'x', 'portDefinitions': [], 'healthChecks': [{'protocol': 'TCP'}]}",
               "/healthChecks(0)/portIndex", "the app has no port definitions");
        /* a bad port list is reported once, not again through portIndex */
        ERRORS("{'id': 'a', 'cmd': 'x', 'ports': ['x'], 'healthChecks': [{'portIndex': 3}]}", "/ports(0)",
               "integer");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'path': '/a b'}, {'path': '/a\\nb'}, {'path': 'health'},"
               " {'path': '/caf\\u00e9'}]}",
               "/healthChecks(0)/path", "must not contain spaces", "/healthChecks(1)/path",
               "control characters", "/healthChecks(2)/path", "must start with '/'", "/healthChecks(3)/path",
               "printable ASCII");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'timeoutSeconds': 60}, {'intervalSeconds': 5}]}",
               "/healthChecks(0)/timeoutSeconds", "must be less than intervalSeconds (60), got 60",
               "/healthChecks(1)/timeoutSeconds", "less than intervalSeconds (5), got 20");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'protocol': 'GRPC'}, {'protocol': 'MESOS_COMMAND'}]}",
               "/healthChecks(0)/protocol", "must be one of HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP",
               "/healthChecks(1)/protocol", "must be one of");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'protocol': 'COMMAND'}]}",
               "/healthChecks(0)/command", "is required");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'protocol': 'COMMAND', 'command': {'value': 'true',"
               " 'shell': true}, 'path': '/', 'portIndex': 0, 'port': 80, 'ipProtocol': 'IPv6'}]}",
               "/healthChecks(0)/command/shell", "unknown field", "/healthChecks(0)/path",
               "only HTTP and HTTPS checks have a path", "/healthChecks(0)/portIndex",
               "COMMAND checks have no port", "/healthChecks(0)/port", "COMMAND checks have no port",
               "/healthChecks(0)/ipProtocol", "COMMAND checks have no IP protocol");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'protocol': 'COMMAND', 'command': {'value': ''}}]}",
               "/healthChecks(0)/command/value", "must not be empty");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'protocol': 'TCP', 'path': '/x', 'command': {'value':"
               " 'true'}, 'port': 80, 'portIndex': 0}]}",
               "/healthChecks(0)/path", "only HTTP and HTTPS", "/healthChecks(0)/command",
               "only COMMAND checks", "/healthChecks(0)/port", "port and portIndex are mutually exclusive");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': [{'ignoreHttp1xx': true, 'ipProtocol': 'IPv5', 'foo': 1,"
               " 'intervalSeconds': 0, 'maxConsecutiveFailures': -1, 'port': 0}]}",
               "/healthChecks(0)/ignoreHttp1xx", "not supported by Pacer", "/healthChecks(0)/ipProtocol",
               "must be IPv4 or IPv6", "/healthChecks(0)/foo", "unknown field",
               "/healthChecks(0)/intervalSeconds", "between 1 and 86400",
               "/healthChecks(0)/maxConsecutiveFailures", "between 0 and 1000", "/healthChecks(0)/port",
               "between 1 and 65535");
        ERRORS("{'id': 'a', 'cmd': 'x', 'healthChecks': ['http']}", "/healthChecks(0)", "expected object");

        j = load("{'id': 'a', 'cmd': 'x'}");
        list = json_array();
        for (int i = 0; i <= APP_CHECKS_MAX; i++)
                json_array_append_new(list, json_object());
        json_object_set_new(j, "healthChecks", list);
        assert_json_errors(j, "/healthChecks", "at most 8 items (got 9)", NULL);
        json_decref(j);
}

static void test_field_policy(void **state)
{
        AppSpec *a;

        ERRORS("{'id': 'a', 'cmd': 'x', 'foo': 1, 'Cmd': 'y', 'instance': 2}", "/foo", "unknown field",
               "/Cmd", "unknown field", "/instance", "unknown field");
        /* a hostile member name is escaped in the path */
        ERRORS("{'id': 'a', 'cmd': 'x', 'a\\nb': 1}", "/a\\x0ab", "unknown field");
        ERRORS("{'id': 'a', 'cmd': 'x', 'container': {'type': 'DOCKER', 'docker': {'image': 'nginx'}}}",
               "/container", "not supported by Pacer: tasks run cmd/args on the agent under pacer-executor");
        ERRORS("{'id': 'a', 'cmd': 'x', 'fetch': [{'uri': 'http://x/y.tgz'}], 'uris': ['http://x'], 'gpus': 1,"
               " 'secrets': {'s': {'source': 'x'}}, 'readinessChecks': [{'name': 'r'}], 'residency': {},"
               " 'networks': [{'mode': 'container', 'name': 'dcos'}], 'ipAddress': {'networkName': 'n'},"
               " 'acceptedResourceRoles': ['slave_public'], 'unreachableStrategy': 'disabled', 'check': {},"
               " 'executorResources': {'cpus': 1}}",
               "/fetch", "fetches no artifacts", "/uris", "fetches no artifacts", "/gpus", "GPUs",
               "/secrets", "no secret store", "/readinessChecks", "use healthChecks", "/networks",
               "host networking", "/ipAddress", "host networking", "/acceptedResourceRoles", "roles",
               "/unreachableStrategy", "scheduler-wide", "/executorResources", "scheduler setting");

        /* what Marathon's responses hold for features not in use is accepted */
        a = parse_ok("{'id': 'a', 'cmd': 'x', 'container': null, 'gpus': 0, 'uris': [], 'fetch': [],"
                     " 'storeUrls': [], 'readinessChecks': [], 'residency': null, 'secrets': {},"
                     " 'networks': [{'mode': 'host'}], 'ipAddress': null, 'acceptedResourceRoles': ['*'],"
                     " 'role': null, 'tty': false}");
        app_spec_free(a);

        /* read-only fields are ignored, whatever they hold */
        a = parse_ok("{'id': 'a', 'cmd': 'x', 'version': 'whatever', 'tasksRunning': 'x', 'deployments': 7,"
                     " 'lastTaskFailure': {}, 'taskStats': null}");
        assert_string_equal(a->version, "");
        assert_null(strstr(a->json, "whatever"));
        app_spec_free(a);

        ERRORS("[1, 2]", "/", "expected an app definition (object), got array");
}

static void test_executor_and_misc(void **state)
{
        AppSpec *a;

        ERRORS("{'id': 'a', 'cmd': 'x', 'executor': '//cmd'}", "/executor", "Mesos's command executor");
        ERRORS("{'id': 'a', 'cmd': 'x', 'executor': '/bin/x\\n'}", "/executor", "control characters");
        a = parse_ok("{'id': 'a', 'cmd': 'x', 'executor': ''}");
        assert_string_equal(a->executor, "");
        app_spec_free(a);

        ERRORS("{'id': 'a', 'cmd': 'x', 'upgradeStrategy': {'minimumHealthCapacity': 1.5, 'foo': 0,"
               " 'maximumOverCapacity': -0.1}}",
               "/upgradeStrategy/minimumHealthCapacity", "between 0 and 1 (got 1.5)", "/upgradeStrategy/foo",
               "unknown field", "/upgradeStrategy/maximumOverCapacity", "got -0.1");
        ERRORS("{'id': 'a', 'cmd': 'x', 'backoffFactor': 0.5, 'backoffSeconds': -1, 'maxLaunchDelaySeconds': -1,"
               " 'killSelection': 'RANDOM', 'taskKillGracePeriodSeconds': -1, 'requirePorts': 'yes'}",
               "/backoffFactor", "between 1 and 100", "/backoffSeconds", "got -1", "/maxLaunchDelaySeconds",
               "got -1", "/killSelection", "YOUNGEST_FIRST or OLDEST_FIRST", "/taskKillGracePeriodSeconds",
               "between 0 and", "/requirePorts", "expected boolean");
        a = parse_ok("{'id': 'a', 'cmd': 'x', 'taskKillGracePeriodSeconds': 0}");
        assert_int_equal(a->task_kill_grace_seconds, 0);
        assert_non_null(strstr(a->json, ",\"taskKillGracePeriodSeconds\":0}"));
        app_spec_free(a);
}

static void test_dependencies(void **state)
{
        json_t *j, *list;

        ERRORS("{'id': '/prod/web', 'cmd': 'x', 'dependencies': ['web', '/prod/db', 'db', '../../x', 'A', 3]}",
               "/dependencies(0)", "cannot depend on itself", "/dependencies(2)", "/prod/db is listed twice",
               "/dependencies(3)", "goes above the root", "/dependencies(4)", "upper-case",
               "/dependencies(5)", "expected string, got number");
        /* with an invalid id, relative dependencies are still checked (against the root) */
        ERRORS("{'id': 'B', 'cmd': 'x', 'dependencies': ['ok', 'x//y']}", "/id", "upper-case",
               "/dependencies(1)", "empty path segment");

        j = load("{'id': 'a', 'cmd': 'x'}");
        list = json_array();
        for (int i = 0; i <= APP_DEPENDENCIES_MAX; i++) {
                char dep[16];
                snprintf(dep, sizeof(dep), "/d%d", i);
                json_array_append_new(list, json_string(dep));
        }
        json_object_set_new(j, "dependencies", list);
        assert_json_errors(j, "/dependencies", "at most 64 items (got 65)", NULL);
        json_decref(j);
}

/* Every error at once, each with its path, rendered as Marathon's 422 body. */
static void test_all_errors_and_422(void **state)
{
        static const char *const want[] = { "/id",
                                            "/cpus",
                                            "/env/FOO",
                                            "/labels/bad",
                                            "/constraints(1)",
                                            "/healthChecks(0)/portIndex",
                                            "/bogus",
                                            "/" };
        AppSpec *a = (AppSpec *)&a;
        JsonErrors errs = {};
        Buf body = BUF_INIT(64 * 1024);
        json_t *j, *r, *details;
        PacerError err = {};

        j = load(
                "{'id': '/Web', 'cmd': 'x', 'args': ['y'], 'cpus': -2, 'env': {'FOO': 1},"
                " 'labels': {'bad': 'a\\nb'}, 'constraints': [['hostname', 'UNIQUE'], ['hostname', 'NOPE']],"
                " 'healthChecks': [{'portIndex': 5}], 'bogus': true}");
        assert_int_equal(app_spec_from_json(j, NULL, &a, &errs), -EINVAL);
        assert_ptr_equal(a, (AppSpec *)&a);
        assert_int_equal(json_errors_count(&errs), ELEMENTSOF(want));

        assert_int_equal(json_errors_render(&errs, &body), 0);
        assert_int_equal(json_parse(body.data, body.len, NULL, &r, &err), 0);
        assert_string_equal(json_string_value(json_object_get(r, "message")), "Object is not valid");
        details = json_object_get(r, "details");
        assert_int_equal(json_array_size(details), ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                bool found = false;
                for (size_t k = 0; k < json_array_size(details) && !found; k++) {
                        json_t *d = json_array_get(details, k);
                        found = streq(json_string_value(json_object_get(d, "path")), want[i]) &&
                                json_array_size(json_object_get(d, "errors")) == 1;
                }
                if (!found)
                        fail_msg("422 body lacks %s: %s", want[i], body.data);
        }
        json_decref(r);
        json_decref(j);
        buf_done(&body);

        /* errors already collected (a batch) are kept, and paths carry the prefix */
        {
                JsonPath at = JSON_PATH_INDEX(NULL, 2);
                errs = (JsonErrors){};
                json_errors_add(&errs, NULL, "x", "earlier");
                j = load("{'id': 'a', 'cmd': 'x', 'cpus': -1}");
                assert_int_equal(app_spec_from_json(j, &at, &a, &errs), -EINVAL);
                assert_int_equal(json_errors_count(&errs), 2);
                assert_string_equal(errs.entries[1].path, "/(2)/cpus");
                json_decref(j);
        }
}

static void test_size_cap(void **state)
{
        AppSpec *a = parse_ok("{'id': 'a', 'cmd': 'x'}");
        size_t base = a->json_len,
               fit = APP_JSON_MAX - STRLEN(",\"version\":\"\"") - APP_VERSION_MAX - base + 1;
        char version[APP_VERSION_MAX + 1];
        char *cmd = malloc(fit + 2);
        json_t *j;

        app_spec_free(a);
        memset(cmd, 'x', fit + 1);

        /* the largest definition that fits, even with the longest version */
        cmd[fit] = 0;
        j = load("{'id': 'a'}");
        json_object_set_new(j, "cmd", json_string(cmd));
        a = from_json_ok(j);
        memset(version, '9', APP_VERSION_MAX);
        version[APP_VERSION_MAX] = 0;
        assert_int_equal(app_spec_set_version(a, version), 0);
        assert_int_equal(a->json_len, APP_JSON_MAX);
        app_spec_free(a);
        json_decref(j);

        /* one byte more */
        cmd[fit] = 'x';
        cmd[fit + 1] = 0;
        j = load("{'id': 'a'}");
        json_object_set_new(j, "cmd", json_string(cmd));
        assert_json_errors(j, "/", "app definition is 65537 bytes, more than 65536", NULL);

        json_decref(j);
        free(cmd);

        /* along with other errors, the size is that of the definition as given */
        cmd = malloc(70001);
        memset(cmd, 'x', 70000);
        cmd[70000] = 0;
        j = load("{'id': 'a', 'cpus': -1}");
        json_object_set_new(j, "cmd", json_string(cmd));
        assert_json_errors(j, "/cpus", "got -1", "/", "app definition is 70029 bytes, more than 65536",
                           NULL);
        json_decref(j);
        free(cmd);
}

static void test_merge(void **state)
{
        AppSpec *base = parse_ok(full_app), *m = NULL, *sentinel = (AppSpec *)&sentinel;
        JsonErrors errs = {};
        json_t *patch;

        assert_int_equal(app_spec_set_version(base, VERSION), 0);

        /* present fields replace, absent ones stay, version is not carried */
        patch = load("{'instances': 7, 'labels': {'x': 'y'}, 'version': 'ignored', 'tasksRunning': 3}");
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), 0);
        assert_int_equal(m->instances, 7);
        assert_int_equal(m->n_labels, 1);
        assert_int_equal(m->n_args, 4);
        assert_int_equal(m->n_checks, 3);
        assert_int_equal(m->n_ports, 2);
        assert_string_equal(m->version, "");
        assert_string_equal(m->id, "/prod/web");
        m = app_spec_free(m);
        json_decref(patch);

        /* cmd replaces args; ports replace portDefinitions; null resets to the default */
        patch = load("{'cmd': 'run', 'ports': [8080], 'healthChecks': [{'protocol': 'TCP'}], 'user': null,"
                     " 'id': 'web'}");
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), 0);
        assert_string_equal(m->cmd, "run");
        assert_null(m->args);
        assert_int_equal(m->n_ports, 1);
        assert_int_equal(m->ports[0].port, 8080);
        assert_null(m->ports[0].name);
        assert_null(m->user);
        m = app_spec_free(m);
        json_decref(patch);

        /* and args replace cmd */
        {
                AppSpec *c = parse_ok("{'id': 'c', 'cmd': 'x'}");
                patch = load("{'args': ['a']}");
                assert_int_equal(app_spec_merge(c, patch, NULL, &m, &errs), 0);
                assert_null(m->cmd);
                assert_int_equal(m->n_args, 1);
                m = app_spec_free(m);
                json_decref(patch);
                app_spec_free(c);
        }

        /* the result is validated as a whole: a portIndex left dangling by new ports */
        patch = load("{'portDefinitions': [], 'cpus': -1}");
        m = sentinel;
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), -EINVAL);
        assert_ptr_equal(m, sentinel);
        assert_int_equal(json_errors_count(&errs), 2);
        assert_string_equal(errs.entries[0].path, "/cpus");
        assert_string_equal(errs.entries[1].path, "/healthChecks(0)/portIndex");
        json_decref(patch);

        /* the id cannot change; both cmd and args given still conflict */
        errs = (JsonErrors){};
        patch = load("{'id': '/prod/other'}");
        m = sentinel;
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), -EINVAL);
        assert_ptr_equal(m, sentinel);
        assert_int_equal(json_errors_count(&errs), 1);
        assert_string_equal(errs.entries[0].path, "/id");
        assert_non_null(
                strstr(errs.entries[0].message, "is /prod/other, but the app being updated is /prod/web"));
        json_decref(patch);
        /* with other errors: all reported */
        errs = (JsonErrors){};
        patch = load("{'id': 'Other', 'mem': -1}");
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), -EINVAL);
        assert_int_equal(json_errors_count(&errs), 2);
        assert_string_equal(errs.entries[0].path, "/id");
        assert_non_null(strstr(errs.entries[0].message, "upper-case"));
        assert_string_equal(errs.entries[1].path, "/mem");
        json_decref(patch);
        errs = (JsonErrors){};
        patch = load("{'cmd': 'a', 'args': ['b']}");
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), -EINVAL);
        assert_non_null(strstr(errs.entries[0].message, "mutually exclusive"));
        json_decref(patch);
        errs = (JsonErrors){};
        patch = load("{'bogus': 1}");
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), -EINVAL);
        assert_string_equal(errs.entries[0].path, "/bogus");
        json_decref(patch);
        errs = (JsonErrors){};
        patch = load("'x'");
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), -EINVAL);
        json_decref(patch);

        /* an empty patch reproduces the base */
        patch = load("{}");
        assert_int_equal(app_spec_merge(base, patch, NULL, &m, &errs), 0);
        assert_int_equal(app_spec_set_version(m, VERSION), 0);
        assert_string_equal(m->json, base->json);
        app_spec_free(m);
        json_decref(patch);
        app_spec_free(base);
}

static void test_version(void **state)
{
        AppSpec *a = parse_ok("{'id': 'a', 'cmd': 'x', 'taskKillGracePeriodSeconds': 5}");
        char *before;

        assert_null(strstr(a->json, "\"version\""));
        assert_int_equal(app_spec_set_version(a, VERSION), 0);
        assert_string_equal(a->version, VERSION);
        assert_non_null(strstr(a->json, "\"requirePorts\":false,\"version\":\"" VERSION
                                        "\",\"killSelection\":\"YOUNGEST_FIRST\","));
        before = strdup(a->json);
        assert_int_equal(app_spec_set_version(a, "01234567890123456789012345678901"), -EINVAL);
        assert_int_equal(app_spec_set_version(a, "a\"b"), -EINVAL);
        assert_int_equal(app_spec_set_version(a, "a b"), -EINVAL);
        assert_int_equal(app_spec_set_version(a, "a\nb"), -EINVAL);
        assert_string_equal(a->version, VERSION);
        assert_string_equal(a->json, before);
        free(before);

        /* app_spec_to_json is what json says */
        {
                json_t *j = app_spec_to_json(a);
                char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
                assert_string_equal(s, a->json);
                free(s);
                json_decref(j);
        }
        app_spec_free(a);
}

/* What recovery does with a store record: the same spec as parsing it afresh and stamping it. */
static AppSpec *stored_ok(const char *json, size_t len, const char *version)
{
        PacerError err = { "" };
        AppSpec *a = NULL;

        if (app_spec_from_stored(json, len, version, &a, &err) != 0)
                fail_msg("stored record rejected: %s", err.msg);
        assert_non_null(a);
        assert_int_equal(strlen(a->json), a->json_len);
        return a;
}

static void assert_same_spec(const AppSpec *a, const AppSpec *b)
{
        json_t *ja = app_spec_to_json(a), *jb = app_spec_to_json(b);

        assert_true(json_equal(ja, jb));
        assert_string_equal(a->json, b->json);
        assert_int_equal(a->json_len, b->json_len);
        assert_string_equal(a->version, b->version);
        assert_true(a->cpus == b->cpus && a->mem == b->mem && a->instances == b->instances);
        assert_int_equal(a->n_checks, b->n_checks);
        assert_int_equal(a->n_ports, b->n_ports);
        json_decref(ja);
        json_decref(jb);
}

static void test_from_stored(void **state)
{
        static const char *const texts[] = {
                "{'id': 'a', 'cmd': 'x'}",
                "{'id': 'n', 'cmd': 'x', 'cpus': 0.1, 'mem': 0.30000000000000004, 'taskKillGracePeriodSeconds': 5}",
                "{'id': '/bench/app-00001', 'cmd': 'sleep 3600', 'cpus': 0.01, 'mem': 8, 'instances': 10,"
                " 'labels': {'team': 't1', 'requirePorts': 'x', 'killSelection': 'y'},"
                " 'healthChecks': [{'protocol': 'MESOS_HTTP', 'path': '/health', 'portIndex': 0}]}",
        };
        AppSpec *eager, *lazy;

        for (size_t t = 0; t <= ELEMENTSOF(texts); t++) {
                eager = t < ELEMENTSOF(texts) ? parse_ok(texts[t]) : parse_ok(full_app);
                assert_int_equal(app_spec_set_version(eager, VERSION), 0);

                /* the record carries its version: its text is kept, and is what rendering gives */
                lazy = stored_ok(eager->json, eager->json_len, NULL);
                assert_ptr_not_equal(lazy->json, eager->json);
                assert_same_spec(lazy, eager);
                app_spec_free(lazy);
                lazy = stored_ok(eager->json, eager->json_len, VERSION);
                assert_same_spec(lazy, eager);
                app_spec_free(lazy);

                /* another version than the record's: stamped and rendered, as app_spec_set_version() */
                lazy = stored_ok(eager->json, eager->json_len, "2025-01-01T00:00:00.000Z");
                assert_string_equal(lazy->version, "2025-01-01T00:00:00.000Z");
                assert_int_equal(app_spec_set_version(eager, "2025-01-01T00:00:00.000Z"), 0);
                assert_same_spec(lazy, eager);
                app_spec_free(lazy);
                app_spec_free(eager);
        }

        /* a record without a version: rendered without one, or stamped with the one given */
        eager = parse_ok("{'id': 'a', 'cmd': 'x'}");
        lazy = stored_ok(eager->json, eager->json_len, NULL);
        assert_same_spec(lazy, eager);
        assert_null(strstr(lazy->json, "\"version\""));
        app_spec_free(lazy);
        lazy = stored_ok(eager->json, eager->json_len, VERSION);
        assert_int_equal(app_spec_set_version(eager, VERSION), 0);
        assert_same_spec(lazy, eager);
        app_spec_free(lazy);
        app_spec_free(eager);

        /* a record whose own version is broken: dropped, as app_spec_set_version() would refuse it */
        {
                static const char text[] = "{\"id\":\"/a\",\"cmd\":\"x\",\"version\":\"a b\"}";
                lazy = stored_ok(text, strlen(text), NULL);
                assert_string_equal(lazy->version, "");
                assert_null(strstr(lazy->json, "\"version\""));
                app_spec_free(lazy);
        }
}

static void test_from_stored_bad(void **state)
{
        static const struct {
                const char *text;
                const char *message; /* part of the error */
        } bad[] = {
                { "{\"id\":\"/a\",\"cmd\":\"x\"", "" },                    /* truncated */
                { "not json", "" },                                        /* not JSON */
                { "[1,2]", "expected an app definition" },                 /* not an object */
                { "{\"id\":\"/a\",\"cmd\":\"x\",\"cpus\":-1}", "/cpus" },  /* invalid, with its path */
                { "{\"id\":\"/a\",\"cmd\":\"\xff\xfe\"}", "" },            /* not UTF-8 */
                { "{\"id\":\"/a\",\"cmd\":\"x\",\"bogus\":1}", "/bogus" }, /* unknown field */
        };
        PacerError err;
        AppSpec *a = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err = (PacerError){ "" };
                assert_int_equal(app_spec_from_stored(bad[i].text, strlen(bad[i].text), NULL, &a, &err),
                                 -EBADMSG);
                assert_null(a);
                assert_true(*err.msg);
                if (!strstr(err.msg, bad[i].message))
                        fail_msg("record %zu: '%s' does not say %s", i, err.msg, bad[i].message);
        }
        /* a record longer than any app: refused before it is parsed */
        {
                size_t len = APP_JSON_MAX + 1;
                char *big = malloc(len);
                assert_non_null(big);
                memset(big, ' ', len);
                assert_int_equal(app_spec_from_stored(big, len, NULL, &a, &err), -EBADMSG);
                assert_non_null(strstr(err.msg, "bytes"));
                free(big);
        }
        /* a version the caller gives must be one */
        assert_int_equal(app_spec_from_stored("{}", 2, "a\"b", &a, &err), -EINVAL);
        assert_null(a);
        assert_true(app_spec_version_valid(VERSION));
        assert_true(app_spec_version_valid(""));
        assert_false(app_spec_version_valid("a b"));
        assert_false(app_spec_version_valid("01234567890123456789012345678901"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_name_tables),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_echo_back),
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_id_normalize),
                cmocka_unit_test(test_id_in_app),
                cmocka_unit_test(test_command),
                cmocka_unit_test(test_resources),
                cmocka_unit_test(test_env),
                cmocka_unit_test(test_labels),
                cmocka_unit_test(test_constraints_in_app),
                cmocka_unit_test(test_ports),
                cmocka_unit_test(test_health_check_defaults),
                cmocka_unit_test(test_health_check_errors),
                cmocka_unit_test(test_field_policy),
                cmocka_unit_test(test_executor_and_misc),
                cmocka_unit_test(test_dependencies),
                cmocka_unit_test(test_all_errors_and_422),
                cmocka_unit_test(test_size_cap),
                cmocka_unit_test(test_merge),
                cmocka_unit_test(test_version),
                cmocka_unit_test(test_from_stored),
                cmocka_unit_test(test_from_stored_bad),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
