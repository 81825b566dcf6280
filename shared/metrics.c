/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* 2^53: integral values below it print exactly without an exponent. */
#define EXACT_INTEGER_LIMIT 9007199254740992.0
/* Room for one rendered label set: names, escaped values (at most 2 bytes per byte), quotes, commas. */
#define LABELS_RENDERED_MAX (METRICS_LABELS_MAX * (METRICS_NAME_MAX + 2 * METRICS_LABEL_VALUE_MAX + 4))

typedef enum MetricType {
        METRIC_COUNTER,
        METRIC_GAUGE,
        METRIC_HISTOGRAM,
        _METRIC_TYPE_MAX,
} MetricType;

static const char *const type_names[_METRIC_TYPE_MAX] = {
        [METRIC_COUNTER] = "counter",
        [METRIC_GAUGE] = "gauge",
        [METRIC_HISTOGRAM] = "histogram",
};

typedef struct Family Family;

typedef struct Child {
        Family *family;
        struct Child *next;
        char *labels; /* rendered `a="x",b="y"`, "" without labels */
} Child;

struct MetricCounter {
        Child child;
        uint64_t value;
};

struct MetricGauge {
        Child child;
        double value;
};

struct MetricHistogram {
        Child child;
        const double *bounds; /* the family's */
        size_t n_bounds;
        double sum;
        uint64_t count;
        uint64_t buckets[]; /* n_bounds + 1, not cumulative; the last is +Inf */
};

struct Family {
        MetricType type;
        char *name;
        char *help;         /* as registered, to compare */
        char *help_escaped; /* for the HELP line */
        char **label_names;
        size_t n_labels;
        double *bounds;
        char **bound_strings; /* le="..." values */
        size_t n_bounds;
        Child *first, *last;
        size_t n_children;
};

struct MetricsRegistry {
        Family **families;
        size_t n_families;
};

/* A name for an error message: printable ASCII kept, the rest as '?', cut short. */
static const char *safe(const char *s, char *out, size_t size)
{
        size_t i = 0;

        for (; s && s[i] && i + 4 < size; i++)
                out[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
        if (s && s[i]) {
                memcpy(out + i, "...", 3);
                i += 3;
        }
        out[i] = 0;
        return out;
}

static bool valid_name(const char *s, bool colons)
{
        size_t len = s ? strlen(s) : 0;

        if (len == 0 || len > METRICS_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                          (colons && c == ':') || (i > 0 && c >= '0' && c <= '9');
                if (!ok)
                        return false;
        }
        return true;
}

/* Shortest decimal that reads back as v; integers without an exponent. */
static const char *format_double(double v, char *buf, size_t size)
{
        if (isnan(v))
                snprintf(buf, size, "NaN");
        else if (isinf(v))
                snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
        else if (v == floor(v) && fabs(v) < EXACT_INTEGER_LIMIT)
                snprintf(buf, size, "%lld", (long long)v);
        else
                for (int prec = 15; prec <= 17; prec++) {
                        snprintf(buf, size, "%.*g", prec, v);
                        if (strtod(buf, NULL) == v)
                                break;
                }
        return buf;
}

/* Escapes for HELP (label = false: backslash, newline) or a label value (also the double quote). */
static int escape(Buf *b, const char *s, bool label)
{
        int r = 0;

        for (; *s && r >= 0; s++) {
                if (*s == '\\')
                        r = buf_puts(b, "\\\\");
                else if (*s == '\n')
                        r = buf_puts(b, "\\n");
                else if (*s == '"' && label)
                        r = buf_puts(b, "\\\"");
                else
                        r = buf_putc(b, *s);
        }
        return r;
}

static void child_free(Child *c)
{
        if (!c)
                return;
        free(c->labels);
        free(c);
}

static void family_free(Family *f)
{
        if (!f)
                return;
        for (Child *c = f->first, *next; c; c = next) {
                next = c->next;
                child_free(c);
        }
        for (size_t i = 0; i < f->n_labels; i++)
                free(f->label_names[i]);
        for (size_t i = 0; i < f->n_bounds; i++)
                free(f->bound_strings[i]);
        free(f->label_names);
        free(f->bound_strings);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f->help_escaped);
        free(f);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Family *, family_free);

MetricsRegistry *metrics_registry_new(void)
{
        return calloc(1, sizeof(MetricsRegistry));
}

MetricsRegistry *metrics_registry_free(MetricsRegistry *reg)
{
        if (!reg)
                return NULL;
        for (size_t i = 0; i < reg->n_families; i++)
                family_free(reg->families[i]);
        free(reg->families);
        free(reg);
        return NULL;
}

static Family *find_family(const MetricsRegistry *reg, const char *name)
{
        for (size_t i = 0; i < reg->n_families; i++)
                if (streq(reg->families[i]->name, name))
                        return reg->families[i];
        return NULL;
}

/* True when name is one of the series a histogram called base writes. */
static bool is_histogram_series(const char *name, const char *base)
{
        static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
        size_t l = strlen(base);

        if (!strneq(name, base, l))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (streq(name + l, suffixes[i]))
                        return true;
        return false;
}

static int check_collisions(const MetricsRegistry *reg, const char *name, MetricType type, PacerError *err)
{
        char q[METRICS_NAME_MAX + 8], q2[METRICS_NAME_MAX + 8];

        for (size_t i = 0; i < reg->n_families; i++) {
                const Family *f = reg->families[i];
                if ((f->type == METRIC_HISTOGRAM && is_histogram_series(name, f->name)) ||
                    (type == METRIC_HISTOGRAM && is_histogram_series(f->name, name)))
                        return pacer_error_set(err, EINVAL,
                                               "metric '%s' collides with the series of metric '%s'",
                                               safe(name, q, sizeof(q)), safe(f->name, q2, sizeof(q2)));
        }
        return 0;
}

/* Number of name/value pairs in labels, checking names and values. */
static int check_labels(const char *name, MetricType type, const char *const *labels, size_t *ret_n,
                        PacerError *err)
{
        char q[METRICS_NAME_MAX + 8], ql[METRICS_NAME_MAX + 8];
        size_t n = 0, bad;

        for (; labels && labels[2 * n]; n++) {
                const char *ln = labels[2 * n], *lv = labels[2 * n + 1];

                if (n >= METRICS_LABELS_MAX)
                        return pacer_error_set(err, E2BIG, "metric '%s': more than %d labels",
                                               safe(name, q, sizeof(q)), METRICS_LABELS_MAX);
                if (!lv)
                        return pacer_error_set(err, EINVAL, "metric '%s': label '%s' has no value",
                                               safe(name, q, sizeof(q)), safe(ln, ql, sizeof(ql)));
                if (!valid_name(ln, false) || strneq(ln, "__", 2))
                        return pacer_error_set(err, EINVAL,
                                               "metric '%s': invalid label name '%s' (must match "
                                               "[a-zA-Z_][a-zA-Z0-9_]* without a leading __)",
                                               safe(name, q, sizeof(q)), safe(ln, ql, sizeof(ql)));
                if (type == METRIC_HISTOGRAM && streq(ln, "le"))
                        return pacer_error_set(err, EINVAL,
                                               "metric '%s': label 'le' is reserved for histogram buckets",
                                               safe(name, q, sizeof(q)));
                for (size_t k = 0; k < n; k++)
                        if (streq(labels[2 * k], ln))
                                return pacer_error_set(err, EINVAL, "metric '%s': label '%s' given twice",
                                                       safe(name, q, sizeof(q)), ln);
                if (strlen(lv) > METRICS_LABEL_VALUE_MAX)
                        return pacer_error_set(err, E2BIG,
                                               "metric '%s': value of label '%s' is over %d bytes",
                                               safe(name, q, sizeof(q)), ln, METRICS_LABEL_VALUE_MAX);
                if (!json_utf8_valid(lv, strlen(lv), &bad))
                        return pacer_error_set(
                                err, EINVAL,
                                "metric '%s': value of label '%s' is not valid UTF-8 (byte offset %zu)",
                                safe(name, q, sizeof(q)), ln, bad);
        }
        *ret_n = n;
        return 0;
}

static int check_bounds(const char *name, const double *bounds, size_t n, PacerError *err)
{
        char q[METRICS_NAME_MAX + 8];

        if (n == 0 || !bounds)
                return pacer_error_set(err, EINVAL, "histogram '%s': needs at least one bucket bound",
                                       safe(name, q, sizeof(q)));
        if (n > METRICS_BUCKETS_MAX)
                return pacer_error_set(err, E2BIG, "histogram '%s': more than %d buckets",
                                       safe(name, q, sizeof(q)), METRICS_BUCKETS_MAX);
        for (size_t i = 0; i < n; i++) {
                if (!isfinite(bounds[i]))
                        return pacer_error_set(err, EINVAL, "histogram '%s': bucket bound %zu is not finite",
                                               safe(name, q, sizeof(q)), i);
                if (i > 0 && !(bounds[i] > bounds[i - 1]))
                        return pacer_error_set(err, EINVAL,
                                               "histogram '%s': bucket bounds must increase (%g after %g)",
                                               safe(name, q, sizeof(q)), bounds[i], bounds[i - 1]);
        }
        return 0;
}

/* Checks that a later registration repeats the family's definition. */
static int check_same(const Family *f, MetricType type, const char *help, const double *bounds,
                      size_t n_bounds, const char *const *labels, size_t n_labels, PacerError *err)
{
        char q[METRICS_NAME_MAX + 8];

        if (f->type != type)
                return pacer_error_set(err, EINVAL, "metric '%s' is already registered as a %s",
                                       safe(f->name, q, sizeof(q)), type_names[f->type]);
        if (!streq(f->help, strempty(help)))
                return pacer_error_set(err, EINVAL,
                                       "metric '%s' is already registered with another help text",
                                       safe(f->name, q, sizeof(q)));
        if (f->n_labels != n_labels)
                return pacer_error_set(err, EINVAL, "metric '%s' is registered with %zu labels, not %zu",
                                       safe(f->name, q, sizeof(q)), f->n_labels, n_labels);
        for (size_t i = 0; i < n_labels; i++)
                if (!streq(f->label_names[i], labels[2 * i]))
                        return pacer_error_set(err, EINVAL, "metric '%s': label %zu is '%s', not '%s'",
                                               safe(f->name, q, sizeof(q)), i, f->label_names[i],
                                               labels[2 * i]);
        if (type == METRIC_HISTOGRAM &&
            (f->n_bounds != n_bounds || memcmp(f->bounds, bounds, n_bounds * sizeof(double)) != 0))
                return pacer_error_set(err, EINVAL,
                                       "histogram '%s' is already registered with other buckets",
                                       safe(f->name, q, sizeof(q)));
        return 0;
}

static int family_new(MetricType type, const char *name, const char *help, const double *bounds,
                      size_t n_bounds, const char *const *labels, size_t n_labels, Family **ret)
{
        _cleanup_(family_freep) Family *f = NULL;
        Buf b = BUF_INIT(2 * METRICS_HELP_MAX);
        char num[64];

        f = calloc(1, sizeof(Family));
        if (!f)
                return -ENOMEM;
        f->type = type;
        f->name = strdup(name);
        f->help = strdup(strempty(help));
        if (!f->name || !f->help || escape(&b, f->help, false) < 0) {
                buf_done(&b);
                return -ENOMEM;
        }
        f->help_escaped = buf_steal(&b, NULL);
        if (!f->help_escaped)
                return -ENOMEM;

        if (n_labels > 0) {
                f->label_names = calloc(n_labels, sizeof(char *));
                if (!f->label_names)
                        return -ENOMEM;
                for (; f->n_labels < n_labels; f->n_labels++) {
                        f->label_names[f->n_labels] = strdup(labels[2 * f->n_labels]);
                        if (!f->label_names[f->n_labels])
                                return -ENOMEM;
                }
        }
        if (type == METRIC_HISTOGRAM) {
                f->bounds = calloc(n_bounds, sizeof(double));
                f->bound_strings = calloc(n_bounds, sizeof(char *));
                if (!f->bounds || !f->bound_strings)
                        return -ENOMEM;
                memcpy(f->bounds, bounds, n_bounds * sizeof(double));
                for (; f->n_bounds < n_bounds; f->n_bounds++) {
                        f->bound_strings[f->n_bounds] =
                                strdup(format_double(bounds[f->n_bounds], num, sizeof(num)));
                        if (!f->bound_strings[f->n_bounds])
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(f);
        return 0;
}

static int render_labels(const char *const *labels, size_t n, Buf *b)
{
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                r = buf_printf(b, "%s%s=\"", i > 0 ? "," : "", labels[2 * i]);
                if (r >= 0)
                        r = escape(b, labels[2 * i + 1], true);
                if (r >= 0)
                        r = buf_putc(b, '"');
        }
        return r;
}

static Child *child_new(const Family *f)
{
        MetricHistogram *h;

        switch (f->type) {
        case METRIC_COUNTER:
                return calloc(1, sizeof(MetricCounter));
        case METRIC_GAUGE:
                return calloc(1, sizeof(MetricGauge));
        case METRIC_HISTOGRAM:
                h = calloc(1, sizeof(MetricHistogram) + (f->n_bounds + 1) * sizeof(uint64_t));
                if (!h)
                        return NULL;
                h->bounds = f->bounds;
                h->n_bounds = f->n_bounds;
                return &h->child;
        default:
                return NULL;
        }
}

static int get_child(MetricsRegistry *reg, MetricType type, const char *name, const char *help,
                     const double *bounds, size_t n_bounds, const char *const *labels, Child **ret,
                     PacerError *err)
{
        _cleanup_free_ char *rendered = NULL;
        Buf b = BUF_INIT(LABELS_RENDERED_MAX);
        char q[METRICS_NAME_MAX + 8];
        size_t n_labels = 0;
        Family *f;
        Child *c;
        int r;

        if (!reg)
                return pacer_error_set(err, EINVAL, "no metrics registry");
        if (!valid_name(name, true))
                return pacer_error_set(
                        err, EINVAL,
                        "invalid metric name '%s' (must match [a-zA-Z_:][a-zA-Z0-9_:]*, at most %d "
                        "characters)",
                        safe(name, q, sizeof(q)), METRICS_NAME_MAX);
        r = check_labels(name, type, labels, &n_labels, err);
        if (r < 0)
                return r;

        f = find_family(reg, name);
        if (f) {
                r = check_same(f, type, help, bounds, n_bounds, labels, n_labels, err);
                if (r < 0)
                        return r;
        } else {
                Family **a;

                if (help && strlen(help) > METRICS_HELP_MAX)
                        return pacer_error_set(err, E2BIG, "metric '%s': help is over %d bytes", name,
                                               METRICS_HELP_MAX);
                if (help && !json_utf8_valid(help, strlen(help), NULL))
                        return pacer_error_set(err, EINVAL, "metric '%s': help is not valid UTF-8", name);
                if (type == METRIC_HISTOGRAM) {
                        r = check_bounds(name, bounds, n_bounds, err);
                        if (r < 0)
                                return r;
                }
                r = check_collisions(reg, name, type, err);
                if (r < 0)
                        return r;
                if (reg->n_families >= METRICS_FAMILIES_MAX)
                        return pacer_error_set(err, E2BIG, "metric '%s': more than %d metrics registered",
                                               name, METRICS_FAMILIES_MAX);
                a = reallocarray(reg->families, reg->n_families + 1, sizeof(Family *));
                if (!a)
                        return pacer_error_set(err, ENOMEM, "out of memory");
                reg->families = a;
                r = family_new(type, name, help, bounds, n_bounds, labels, n_labels, &f);
                if (r < 0)
                        return pacer_error_set(err, r, "out of memory");
                reg->families[reg->n_families++] = f;
        }

        r = render_labels(labels, n_labels, &b);
        if (r < 0) {
                buf_done(&b);
                return pacer_error_set(err, r, "metric '%s': cannot render labels", name);
        }
        rendered = buf_steal(&b, NULL);
        if (!rendered)
                return pacer_error_set(err, ENOMEM, "out of memory");
        for (c = f->first; c; c = c->next)
                if (streq(c->labels, rendered)) {
                        *ret = c;
                        return 0;
                }
        if (f->n_children >= METRICS_CHILDREN_MAX)
                return pacer_error_set(err, E2BIG, "metric '%s': more than %d label combinations", name,
                                       METRICS_CHILDREN_MAX);
        c = child_new(f);
        if (!c)
                return pacer_error_set(err, ENOMEM, "out of memory");
        c->family = f;
        c->labels = TAKE_PTR(rendered);
        if (f->last)
                f->last->next = c;
        else
                f->first = c;
        f->last = c;
        f->n_children++;
        *ret = c;
        return 1;
}

int metrics_counter(MetricsRegistry *reg, const char *name, const char *help, const char *const *labels,
                    MetricCounter **ret, PacerError *err)
{
        Child *c;
        int r = get_child(reg, METRIC_COUNTER, name, help, NULL, 0, labels, &c, err);
        if (r >= 0)
                *ret = container_of(c, MetricCounter, child);
        return r;
}

int metrics_gauge(MetricsRegistry *reg, const char *name, const char *help, const char *const *labels,
                  MetricGauge **ret, PacerError *err)
{
        Child *c;
        int r = get_child(reg, METRIC_GAUGE, name, help, NULL, 0, labels, &c, err);
        if (r >= 0)
                *ret = container_of(c, MetricGauge, child);
        return r;
}

int metrics_histogram(MetricsRegistry *reg, const char *name, const char *help, const double *bounds,
                      size_t n_bounds, const char *const *labels, MetricHistogram **ret, PacerError *err)
{
        Child *c;
        int r = get_child(reg, METRIC_HISTOGRAM, name, help, bounds, n_bounds, labels, &c, err);
        if (r >= 0)
                *ret = container_of(c, MetricHistogram, child);
        return r;
}

void metrics_counter_inc(MetricCounter *c)
{
        if (c)
                c->value++;
}

void metrics_counter_add(MetricCounter *c, uint64_t n)
{
        if (c)
                c->value += n;
}

void metrics_gauge_set(MetricGauge *g, double v)
{
        if (g)
                g->value = v;
}

void metrics_gauge_add(MetricGauge *g, double delta)
{
        if (g)
                g->value += delta;
}

void metrics_histogram_observe(MetricHistogram *h, double v)
{
        size_t lo = 0, hi;

        if (!h || isnan(v))
                return;
        /* first bound >= v; past the last bound is the +Inf bucket */
        hi = h->n_bounds;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (v <= h->bounds[mid])
                        hi = mid;
                else
                        lo = mid + 1;
        }
        h->buckets[lo]++;
        h->sum += v;
        h->count++;
}

uint64_t metrics_counter_value(const MetricCounter *c)
{
        return c ? c->value : 0;
}

double metrics_gauge_value(const MetricGauge *g)
{
        return g ? g->value : 0;
}

uint64_t metrics_histogram_count(const MetricHistogram *h)
{
        return h ? h->count : 0;
}

double metrics_histogram_sum(const MetricHistogram *h)
{
        return h ? h->sum : 0;
}

/* name[suffix]{labels} with an optional extra le label. */
static int put_series(Buf *b, const char *name, const char *suffix, const char *labels, const char *le)
{
        bool has = *labels;

        if (!has && !le)
                return buf_printf(b, "%s%s ", name, suffix);
        return buf_printf(b, "%s%s{%s%s%s%s%s} ", name, suffix, labels, has && le ? "," : "",
                          le ? "le=\"" : "", strempty(le), le ? "\"" : "");
}

static int render_child(Buf *b, const Family *f, const Child *c)
{
        const MetricHistogram *h;
        char num[64];
        uint64_t cumulative = 0;
        int r;

        switch (f->type) {
        case METRIC_COUNTER:
                r = put_series(b, f->name, "", c->labels, NULL);
                return r < 0 ? r
                             : buf_printf(b, "%llu\n",
                                          (unsigned long long)container_of(c, const MetricCounter, child)
                                                  ->value);
        case METRIC_GAUGE:
                r = put_series(b, f->name, "", c->labels, NULL);
                return r < 0 ? r
                             : buf_printf(b, "%s\n",
                                          format_double(container_of(c, const MetricGauge, child)->value,
                                                        num, sizeof(num)));
        case METRIC_HISTOGRAM:
                h = container_of(c, const MetricHistogram, child);
                for (size_t i = 0; i <= h->n_bounds; i++) {
                        cumulative += h->buckets[i];
                        r = put_series(b, f->name, "_bucket", c->labels,
                                       i < h->n_bounds ? f->bound_strings[i] : "+Inf");
                        if (r >= 0)
                                r = buf_printf(b, "%llu\n", (unsigned long long)cumulative);
                        if (r < 0)
                                return r;
                }
                r = put_series(b, f->name, "_sum", c->labels, NULL);
                if (r >= 0)
                        r = buf_printf(b, "%s\n", format_double(h->sum, num, sizeof(num)));
                if (r >= 0)
                        r = put_series(b, f->name, "_count", c->labels, NULL);
                if (r >= 0)
                        r = buf_printf(b, "%llu\n", (unsigned long long)h->count);
                return r;
        default:
                return -EINVAL;
        }
}

static int render_family(Buf *b, const Family *f)
{
        int r = 0;

        if (*f->help)
                r = buf_printf(b, "# HELP %s %s\n", f->name, f->help_escaped);
        if (r >= 0)
                r = buf_printf(b, "# TYPE %s %s\n", f->name, type_names[f->type]);
        for (const Child *c = f->first; c && r >= 0; c = c->next)
                r = render_child(b, f, c);
        return r;
}

int metrics_render(const MetricsRegistry *reg, Buf *out)
{
        size_t saved = out->len;
        int r = 0;

        for (size_t i = 0; reg && i < reg->n_families && r >= 0; i++)
                r = render_family(out, reg->families[i]);
        if (r < 0) {
                out->len = saved;
                if (out->data)
                        out->data[saved] = 0;
        }
        return r;
}
