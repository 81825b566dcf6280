/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for metrics: exact Prometheus text output (../shared/PROTOCOLS.md §9),
 * escaping, histogram buckets and their cumulative counts, number formatting,
 * names and registrations that are refused and why, caps, and a long update
 * loop on the hot path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

#define RENDER_MAX (1024 * 1024)
/* The end of the message for an invalid metric name. */
#define NAME_RULE "(must match [a-zA-Z_:][a-zA-Z0-9_:]*, at most 128 characters)"

static char *render(const MetricsRegistry *reg)
{
        Buf b = BUF_INIT(RENDER_MAX);

        assert_int_equal(metrics_render(reg, &b), 0);
        return buf_steal(&b, NULL);
}

/* ---- a small checker of the exposition format, independent of the renderer ---- */

static bool name_char(char c, bool first, bool colon)
{
        return isalpha((unsigned char)c) || c == '_' || (colon && c == ':') ||
               (!first && isdigit((unsigned char)c));
}

static const char *skip_name(const char *p, bool colon)
{
        if (!name_char(*p, true, colon))
                return NULL;
        while (name_char(*p, false, colon))
                p++;
        return p;
}

static bool parse_value(const char *p, const char *end)
{
        char tmp[64], *e;
        size_t n = (size_t)(end - p);

        if (n == 0 || n >= sizeof(tmp))
                return false;
        memcpy(tmp, p, n);
        tmp[n] = 0;
        if (streq(tmp, "NaN") || streq(tmp, "+Inf") || streq(tmp, "-Inf"))
                return true;
        strtod(tmp, &e);
        return *e == 0 && !isalpha((unsigned char)tmp[0]);
}

/* Fails unless text is valid text format 0.0.4 as Pacer writes it: every line
 * ends in \n, HELP and TYPE at most once and before the family's samples,
 * samples of a family contiguous, names and labels well formed, values parse. */
static void assert_valid_exposition(const char *text)
{
        char seen[64][METRICS_NAME_MAX + 1] = {}, family[METRICS_NAME_MAX + 1] = "", type[16] = "";
        size_t n_seen = 0;
        const char *line = text;

        assert_true(*text == 0 || text[strlen(text) - 1] == '\n');
        while (*line) {
                const char *end = strchr(line, '\n'), *p, *q;
                char name[METRICS_NAME_MAX + 1];

                assert_non_null(end);
                if (strneq(line, "# HELP ", 7) || strneq(line, "# TYPE ", 7)) {
                        p = line + 7;
                        q = skip_name(p, true);
                        assert_non_null(q);
                        assert_true(*q == ' ');
                        snprintf(name, sizeof(name), "%.*s", (int)(q - p), p);
                        if (!streq(name, family)) {
                                for (size_t i = 0; i < n_seen; i++)
                                        if (streq(seen[i], name))
                                                fail_msg("family %s is not contiguous", name);
                                assert_true(n_seen < ELEMENTSOF(seen));
                                strcpy(seen[n_seen++], name);
                                strcpy(family, name);
                                type[0] = 0;
                        }
                        if (line[2] == 'T') {
                                if (type[0])
                                        fail_msg("second TYPE for %s", name);
                                snprintf(type, sizeof(type), "%.*s", (int)(end - q - 1), q + 1);
                                assert_true(streq(type, "counter") || streq(type, "gauge") ||
                                            streq(type, "histogram"));
                        }
                        for (p = q + 1; p < end; p++)
                                assert_true(*p != '\n');
                } else {
                        size_t fl = strlen(family);

                        assert_true(type[0] != 0); /* TYPE before samples */
                        q = skip_name(line, true);
                        assert_non_null(q);
                        snprintf(name, sizeof(name), "%.*s", (int)(q - line), line);
                        if (!streq(name, family) &&
                            !(streq(type, "histogram") && strneq(name, family, fl) &&
                              (streq(name + fl, "_bucket") || streq(name + fl, "_sum") ||
                               streq(name + fl, "_count"))))
                                fail_msg("sample %s outside its family (current %s)", name, family);
                        p = q;
                        if (*p == '{') {
                                p++;
                                while (*p != '}') {
                                        p = skip_name(p, false);
                                        assert_non_null(p);
                                        assert_true(p[0] == '=' && p[1] == '"');
                                        for (p += 2; *p != '"'; p++) {
                                                assert_true(*p != '\n' && p < end);
                                                if (*p == '\\') {
                                                        p++;
                                                        assert_true(*p == '\\' || *p == '"' || *p == 'n');
                                                }
                                        }
                                        p++;
                                        if (*p == ',')
                                                p++;
                                }
                                p++;
                        }
                        assert_true(*p == ' ');
                        if (!parse_value(p + 1, end))
                                fail_msg("bad value in line: %.*s", (int)(end - line), line);
                }
                line = end + 1;
        }
}

/* ---- tests ---- */

static void test_render_exact(void **state)
{
        MetricsRegistry *reg = metrics_registry_new();
        MetricCounter *running, *failed, *declined, *again;
        MetricGauge *instances;
        MetricHistogram *reg_time, *check_time;
        PacerError err;
        char *text;

        assert_non_null(reg);
        assert_int_equal(metrics_counter(reg, "pacer_status_updates_total", "Status updates received.",
                                         METRICS_LABELS("state", "TASK_RUNNING"), &running, &err),
                         1);
        assert_int_equal(metrics_counter(reg, "pacer_offers_declined_total", "Offers declined.", NULL,
                                         &declined, &err),
                         1);
        /* a child created later still renders with its family */
        assert_int_equal(metrics_counter(reg, "pacer_status_updates_total", "Status updates received.",
                                         METRICS_LABELS("state", "TASK_FAILED"), &failed, &err),
                         1);
        assert_int_equal(metrics_gauge(reg, "pacer_instances", "Instances by state.",
                                       METRICS_LABELS("app", "/web", "state", "running"), &instances, &err),
                         1);
        assert_int_equal(metrics_histogram(reg, "pacer_consul_register_seconds",
                                           "Time to register in Consul.", METRICS_BUCKETS(0.25, 0.5, 1),
                                           NULL, &reg_time, &err),
                         1);
        assert_int_equal(metrics_histogram(reg, "pacer_check_seconds", "Check duration.", METRICS_BUCKETS(1),
                                           METRICS_LABELS("kind", "http"), &check_time, &err),
                         1);
        /* the same name and labels give the same metric */
        assert_int_equal(metrics_counter(reg, "pacer_status_updates_total", "Status updates received.",
                                         METRICS_LABELS("state", "TASK_RUNNING"), &again, &err),
                         0);
        assert_ptr_equal(again, running);

        metrics_counter_inc(running);
        metrics_counter_inc(running);
        metrics_counter_inc(again);
        metrics_counter_add(failed, 2);
        metrics_gauge_set(instances, 4);
        metrics_gauge_add(instances, -1.5);
        metrics_histogram_observe(reg_time, 0.125);
        metrics_histogram_observe(reg_time, 0.25); /* on a bound: counts in that bucket (le) */
        metrics_histogram_observe(reg_time, 0.375);
        metrics_histogram_observe(reg_time, 2);

        text = render(reg);
        assert_string_equal(text, "# HELP pacer_status_updates_total Status updates received.\n"
                                  "# TYPE pacer_status_updates_total counter\n"
                                  "pacer_status_updates_total{state=\"TASK_RUNNING\"} 3\n"
                                  "pacer_status_updates_total{state=\"TASK_FAILED\"} 2\n"
                                  "# HELP pacer_offers_declined_total Offers declined.\n"
                                  "# TYPE pacer_offers_declined_total counter\n"
                                  "pacer_offers_declined_total 0\n"
                                  "# HELP pacer_instances Instances by state.\n"
                                  "# TYPE pacer_instances gauge\n"
                                  "pacer_instances{app=\"/web\",state=\"running\"} 2.5\n"
                                  "# HELP pacer_consul_register_seconds Time to register in Consul.\n"
                                  "# TYPE pacer_consul_register_seconds histogram\n"
                                  "pacer_consul_register_seconds_bucket{le=\"0.25\"} 2\n"
                                  "pacer_consul_register_seconds_bucket{le=\"0.5\"} 3\n"
                                  "pacer_consul_register_seconds_bucket{le=\"1\"} 3\n"
                                  "pacer_consul_register_seconds_bucket{le=\"+Inf\"} 4\n"
                                  "pacer_consul_register_seconds_sum 2.75\n"
                                  "pacer_consul_register_seconds_count 4\n"
                                  "# HELP pacer_check_seconds Check duration.\n"
                                  "# TYPE pacer_check_seconds histogram\n"
                                  "pacer_check_seconds_bucket{kind=\"http\",le=\"1\"} 0\n"
                                  "pacer_check_seconds_bucket{kind=\"http\",le=\"+Inf\"} 0\n"
                                  "pacer_check_seconds_sum{kind=\"http\"} 0\n"
                                  "pacer_check_seconds_count{kind=\"http\"} 0\n");
        assert_valid_exposition(text);
        free(text);

        assert_int_equal(metrics_counter_value(running), 3);
        assert_true(metrics_gauge_value(instances) == 2.5);
        assert_int_equal(metrics_histogram_count(reg_time), 4);
        assert_true(metrics_histogram_sum(reg_time) == 2.75);
        assert_null(metrics_registry_free(reg));
}

static void test_escaping(void **state)
{
        MetricsRegistry *reg = metrics_registry_new();
        MetricGauge *g, *plain;
        PacerError err;
        char *text;

        assert_int_equal(metrics_gauge(reg, "escaped", "Back\\slash, \"quotes\" and a\nnew line.",
                                       METRICS_LABELS("v", "a\\b\"c\nd", "utf8", "caf\xc3\xa9"), &g, &err),
                         1);
        assert_int_equal(metrics_gauge(reg, "no_help", NULL, METRICS_LABELS("empty", ""), &plain, &err), 1);
        metrics_gauge_set(g, 1);
        text = render(reg);
        assert_string_equal(text, "# HELP escaped Back\\\\slash, \"quotes\" and a\\nnew line.\n"
                                  "# TYPE escaped gauge\n"
                                  "escaped{v=\"a\\\\b\\\"c\\nd\",utf8=\"caf\xc3\xa9\"} 1\n"
                                  "# TYPE no_help gauge\n"
                                  "no_help{empty=\"\"} 0\n");
        assert_valid_exposition(text);
        free(text);

        /* escaping keeps label sets apart: these two differ only before escaping */
        MetricGauge *a, *b;
        assert_int_equal(metrics_gauge(reg, "pair", "x", METRICS_LABELS("v", "a\\\"b"), &a, &err), 1);
        assert_int_equal(metrics_gauge(reg, "pair", "x", METRICS_LABELS("v", "a\"b"), &b, &err), 1);
        assert_ptr_not_equal(a, b);
        metrics_registry_free(reg);
}

static void test_number_format(void **state)
{
        static const struct {
                double v;
                const char *text;
        } cases[] = {
                { 0, "0" },
                { -0.0, "0" },
                { 1, "1" },
                { -42, "-42" },
                { 1e6, "1000000" },
                { 123456789012, "123456789012" },
                { 9007199254740991.0, "9007199254740991" },
                { 0.1, "0.1" },
                { 1.0 / 3, "0.3333333333333333" },
                { -2.5e-7, "-2.5e-07" },
                { 1e300, "1e+300" },
                { 9007199254740992.0, "9007199254740992" },
                { NAN, "NaN" },
                { INFINITY, "+Inf" },
                { -INFINITY, "-Inf" },
        };
        MetricsRegistry *reg = metrics_registry_new();
        MetricGauge *g;
        PacerError err;
        char want[128], *text;

        assert_int_equal(metrics_gauge(reg, "g", "", NULL, &g, &err), 1);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                metrics_gauge_set(g, cases[i].v);
                text = render(reg);
                snprintf(want, sizeof(want), "# TYPE g gauge\ng %s\n", cases[i].text);
                if (!streq(text, want))
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, text, want);
                assert_valid_exposition(text);
                /* what we print reads back as the same value */
                if (!isnan(cases[i].v))
                        assert_true(strtod(text + strlen("# TYPE g gauge\ng "), NULL) == cases[i].v);
                free(text);
        }
        metrics_registry_free(reg);
}

static void test_histogram_buckets(void **state)
{
        static const double bounds[] = { -1, 0, 0.5, 10, 1000 };
        MetricsRegistry *reg = metrics_registry_new();
        uint64_t want[ELEMENTSOF(bounds) + 1] = {};
        MetricHistogram *h;
        PacerError err;
        char *text, *p;
        uint64_t last = 0;
        size_t count = 0;

        assert_int_equal(metrics_histogram(reg, "h", "x", bounds, ELEMENTSOF(bounds), NULL, &h, &err), 1);
        /* a pseudo-random spread, with every bound hit exactly, and the expected buckets counted naively */
        for (int i = 0; i < 10000; i++) {
                double v =
                        i % 7 == 0 ? bounds[i % ELEMENTSOF(bounds)] : (double)((i * 7919) % 3001) - 1000.5;
                size_t k = 0;
                while (k < ELEMENTSOF(bounds) && v > bounds[k])
                        k++;
                for (; k <= ELEMENTSOF(bounds); k++)
                        want[k]++;
                metrics_histogram_observe(h, v);
        }
        metrics_histogram_observe(h, NAN); /* ignored */
        metrics_histogram_observe(h, INFINITY);
        want[ELEMENTSOF(bounds)]++;
        assert_int_equal(metrics_histogram_count(h), 10001);

        text = render(reg);
        assert_valid_exposition(text);
        for (p = strstr(text, "h_bucket{"); p; p = strstr(p + 1, "h_bucket{")) {
                uint64_t v = strtoull(strchr(p, ' ') + 1, NULL, 10);
                assert_true(v >= last); /* cumulative: never decreasing */
                assert_int_equal(v, want[count]);
                last = v;
                count++;
        }
        assert_int_equal(count, ELEMENTSOF(bounds) + 1);
        assert_non_null(strstr(text, "h_bucket{le=\"-1\"} "));
        assert_non_null(strstr(text, "h_bucket{le=\"+Inf\"} 10001\n"));
        assert_non_null(strstr(text, "h_sum +Inf\n"));
        assert_non_null(strstr(text, "h_count 10001\n"));
        free(text);
        metrics_registry_free(reg);
}

/* Asserts a registration is refused with code and exactly the message want. */
#define assert_refused(call, code, want)                                 \
        do {                                                             \
                int r_ = (call);                                         \
                if (r_ != (code))                                        \
                        fail_msg("%s: got %d (%s)", #call, r_, err.msg); \
                assert_string_equal(err.msg, want);                      \
        } while (0)

static void test_invalid_registrations(void **state)
{
        MetricsRegistry *reg = metrics_registry_new();
        char long_value[METRICS_LABEL_VALUE_MAX + 2], long_help[METRICS_HELP_MAX + 2];
        MetricCounter *c = NULL;
        MetricHistogram *h = NULL;
        PacerError err;

        assert_refused(metrics_counter(reg, "1abc", "", NULL, &c, &err), -EINVAL,
                       "invalid metric name '1abc' " NAME_RULE);
        assert_refused(metrics_counter(reg, "foo-bar", "", NULL, &c, &err), -EINVAL,
                       "invalid metric name 'foo-bar' " NAME_RULE);
        assert_refused(metrics_counter(reg, "a\nb", "", NULL, &c, &err), -EINVAL,
                       "invalid metric name 'a?b' " NAME_RULE);
        assert_refused(metrics_counter(reg, "", "", NULL, &c, &err), -EINVAL,
                       "invalid metric name '' " NAME_RULE);
        assert_refused(metrics_counter(reg, NULL, "", NULL, &c, &err), -EINVAL,
                       "invalid metric name '' " NAME_RULE);
        assert_refused(
                metrics_counter(reg, "c", "", METRICS_LABELS("__reserved", "x"), &c, &err), -EINVAL,
                "metric 'c': invalid label name '__reserved' (must match [a-zA-Z_][a-zA-Z0-9_]* without a "
                "leading __)");
        assert_refused(
                metrics_counter(reg, "c", "", METRICS_LABELS("a:b", "x"), &c, &err), -EINVAL,
                "metric 'c': invalid label name 'a:b' (must match [a-zA-Z_][a-zA-Z0-9_]* without a leading "
                "__)");
        assert_refused(metrics_counter(reg, "c", "", METRICS_LABELS("a", "1", "a", "2"), &c, &err), -EINVAL,
                       "metric 'c': label 'a' given twice");
        assert_refused(metrics_counter(reg, "c", "", ((const char *const[]){ "a", NULL }), &c, &err),
                       -EINVAL, "metric 'c': label 'a' has no value");
        assert_refused(metrics_counter(reg, "c", "",
                                       METRICS_LABELS("a", "", "b", "", "c", "", "d", "", "e", "", "f", "",
                                                      "g", "", "h", "", "i", ""),
                                       &c, &err),
                       -E2BIG, "metric 'c': more than 8 labels");
        memset(long_value, 'x', sizeof(long_value) - 1);
        long_value[sizeof(long_value) - 1] = 0;
        assert_refused(metrics_counter(reg, "c", "", METRICS_LABELS("a", long_value), &c, &err), -E2BIG,
                       "metric 'c': value of label 'a' is over 256 bytes");
        assert_refused(metrics_counter(reg, "c", "", METRICS_LABELS("a", "x\xff"), &c, &err), -EINVAL,
                       "metric 'c': value of label 'a' is not valid UTF-8 (byte offset 1)");
        memset(long_help, 'h', sizeof(long_help) - 1);
        long_help[sizeof(long_help) - 1] = 0;
        assert_refused(metrics_counter(reg, "c", long_help, NULL, &c, &err), -E2BIG,
                       "metric 'c': help is over 512 bytes");
        assert_refused(metrics_counter(reg, "c", "bad \xc0\xaf", NULL, &c, &err), -EINVAL,
                       "metric 'c': help is not valid UTF-8");

        assert_refused(metrics_histogram(reg, "h", "", NULL, 0, NULL, &h, &err), -EINVAL,
                       "histogram 'h': needs at least one bucket bound");
        assert_refused(metrics_histogram(reg, "h", "", METRICS_BUCKETS(1, 1), NULL, &h, &err), -EINVAL,
                       "histogram 'h': bucket bounds must increase (1 after 1)");
        assert_refused(metrics_histogram(reg, "h", "", METRICS_BUCKETS(1, NAN), NULL, &h, &err), -EINVAL,
                       "histogram 'h': bucket bound 1 is not finite");
        assert_refused(metrics_histogram(reg, "h", "", METRICS_BUCKETS(1, INFINITY), NULL, &h, &err),
                       -EINVAL, "histogram 'h': bucket bound 1 is not finite");
        assert_refused(
                metrics_histogram(reg, "h", "", METRICS_BUCKETS(1), METRICS_LABELS("le", "x"), &h, &err),
                -EINVAL, "metric 'h': label 'le' is reserved for histogram buckets");

        /* nothing above registered anything */
        char *text = render(reg);
        assert_string_equal(text, "");
        free(text);

        /* a later registration must repeat the first */
        assert_int_equal(metrics_counter(reg, "c_total", "Help.", METRICS_LABELS("a", "1"), &c, &err), 1);
        assert_refused(metrics_gauge(reg, "c_total", "Help.", METRICS_LABELS("a", "1"),
                                     &(MetricGauge *){ NULL }, &err),
                       -EINVAL, "metric 'c_total' is already registered as a counter");
        assert_refused(metrics_counter(reg, "c_total", "Other.", METRICS_LABELS("a", "1"), &c, &err),
                       -EINVAL, "metric 'c_total' is already registered with another help text");
        assert_refused(metrics_counter(reg, "c_total", "Help.", NULL, &c, &err), -EINVAL,
                       "metric 'c_total' is registered with 1 labels, not 0");
        assert_refused(metrics_counter(reg, "c_total", "Help.", METRICS_LABELS("b", "1"), &c, &err), -EINVAL,
                       "metric 'c_total': label 0 is 'a', not 'b'");
        assert_int_equal(metrics_histogram(reg, "lat", "L.", METRICS_BUCKETS(1, 2), NULL, &h, &err), 1);
        assert_refused(metrics_histogram(reg, "lat", "L.", METRICS_BUCKETS(1, 3), NULL, &h, &err), -EINVAL,
                       "histogram 'lat' is already registered with other buckets");
        /* names that would clash with a histogram's series, in both orders */
        assert_refused(metrics_counter(reg, "lat_count", "", NULL, &c, &err), -EINVAL,
                       "metric 'lat_count' collides with the series of metric 'lat'");
        assert_int_equal(metrics_gauge(reg, "size_bucket", "", NULL, &(MetricGauge *){ NULL }, &err), 1);
        assert_refused(metrics_histogram(reg, "size", "", METRICS_BUCKETS(1), NULL, &h, &err), -EINVAL,
                       "metric 'size' collides with the series of metric 'size_bucket'");
        metrics_registry_free(reg);
}

static void test_caps(void **state)
{
        MetricsRegistry *reg = metrics_registry_new();
        MetricCounter *c;
        PacerError err;
        char v[32];

        /* a label value per task would grow without end: the family stops growing */
        for (int i = 0; i < METRICS_CHILDREN_MAX; i++) {
                snprintf(v, sizeof(v), "task-%d", i);
                assert_int_equal(
                        metrics_counter(reg, "per_task_total", "", METRICS_LABELS("task", v), &c, &err), 1);
        }
        assert_refused(
                metrics_counter(reg, "per_task_total", "", METRICS_LABELS("task", "one-more"), &c, &err),
                -E2BIG, "metric 'per_task_total': more than 1024 label combinations");
        /* existing children are still found */
        assert_int_equal(
                metrics_counter(reg, "per_task_total", "", METRICS_LABELS("task", "task-7"), &c, &err), 0);

        for (int i = 1; i < METRICS_FAMILIES_MAX; i++) {
                snprintf(v, sizeof(v), "family_%d", i);
                assert_int_equal(metrics_counter(reg, v, "", NULL, &c, &err), 1);
        }
        assert_refused(metrics_counter(reg, "one_more", "", NULL, &c, &err), -E2BIG,
                       "metric 'one_more': more than 512 metrics registered");
        metrics_registry_free(reg);
}

static void test_render_cap(void **state)
{
        MetricsRegistry *reg = metrics_registry_new();
        Buf b = BUF_INIT(64);
        MetricCounter *c;
        PacerError err;

        assert_int_equal(metrics_counter(reg, "a_total", "A counter with a long help text.", NULL, &c, &err),
                         1);
        assert_int_equal(buf_puts(&b, "keep"), 0);
        assert_int_equal(metrics_render(reg, &b), -EMSGSIZE);
        assert_string_equal(buf_str(&b), "keep");
        assert_int_equal(b.len, 4);
        buf_done(&b);

        /* an empty registry renders nothing */
        MetricsRegistry *empty = metrics_registry_new();
        b = BUF_INIT(64);
        assert_int_equal(metrics_render(empty, &b), 0);
        assert_int_equal(b.len, 0);
        assert_int_equal(metrics_render(NULL, &b), 0);
        buf_done(&b);
        metrics_registry_free(empty);
        metrics_registry_free(reg);
}

static void test_hot_path(void **state)
{
        MetricsRegistry *reg = metrics_registry_new();
        MetricCounter *c;
        MetricGauge *g;
        MetricHistogram *h;
        PacerError err;
        char *text;

        assert_int_equal(
                metrics_counter(reg, "updates_total", "", METRICS_LABELS("state", "TASK_RUNNING"), &c, &err),
                1);
        assert_int_equal(metrics_gauge(reg, "inflight", "", NULL, &g, &err), 1);
        assert_int_equal(metrics_histogram(reg, "latency_seconds", "",
                                           METRICS_BUCKETS(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2,
                                                           0.5, 1, 2, 5, 10, 20, 50, 100),
                                           NULL, &h, &err),
                         1);
        for (uint64_t i = 0; i < 10000000; i++) {
                metrics_counter_inc(c);
                metrics_gauge_add(g, (i & 1) ? -1 : 1);
                if ((i & 7) == 0)
                        metrics_histogram_observe(h, (double)(i % 1000) / 100.0);
        }
        assert_int_equal(metrics_counter_value(c), 10000000);
        assert_true(metrics_gauge_value(g) == 0);
        assert_int_equal(metrics_histogram_count(h), 1250000);
        text = render(reg);
        assert_non_null(strstr(text, "updates_total{state=\"TASK_RUNNING\"} 10000000\n"));
        assert_non_null(strstr(text, "latency_seconds_bucket{le=\"+Inf\"} 1250000\n"));
        assert_valid_exposition(text);
        free(text);

        /* a failed registration leaves a NULL metric: updating it is harmless */
        metrics_counter_inc(NULL);
        metrics_counter_add(NULL, 3);
        metrics_gauge_set(NULL, 1);
        metrics_gauge_add(NULL, 1);
        metrics_histogram_observe(NULL, 1);
        assert_int_equal(metrics_counter_value(NULL), 0);
        assert_null(metrics_registry_free(reg));
        assert_null(metrics_registry_free(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render_exact),
                cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_number_format),
                cmocka_unit_test(test_histogram_buckets),
                cmocka_unit_test(test_invalid_registrations),
                cmocka_unit_test(test_caps),
                cmocka_unit_test(test_render_cap),
                cmocka_unit_test(test_hot_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
