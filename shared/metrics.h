/* SPDX-License-Identifier: Apache-2.0 */
/* Counters, gauges and histograms for /metrics. Metrics are looked up once, at
 * start-up or when a label value first appears, and the caller keeps the
 * pointer: an update is then a plain store, with no lookup, allocation or lock.
 * Rendering (Prometheus text format 0.0.4) costs one line per sample. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Caps that keep a mistake (a task id as a label value, say) from eating memory. */
#define METRICS_FAMILIES_MAX    512
#define METRICS_CHILDREN_MAX    1024 /* label value combinations per family */
#define METRICS_LABELS_MAX      8
#define METRICS_NAME_MAX        128 /* metric and label names */
#define METRICS_HELP_MAX        512
#define METRICS_LABEL_VALUE_MAX 256
#define METRICS_BUCKETS_MAX     32

typedef struct MetricsRegistry MetricsRegistry;
typedef struct MetricCounter MetricCounter;
typedef struct MetricGauge MetricGauge;
typedef struct MetricHistogram MetricHistogram;

/* Label pairs for registration: METRICS_LABELS("state", "TASK_RUNNING", "reason", "none"). */
#define METRICS_LABELS(...) ((const char *const[]){ __VA_ARGS__, NULL })
/* Histogram bounds as the two arguments (array, count): METRICS_BUCKETS(0.01, 0.1, 1). */
#define METRICS_BUCKETS(...) ((const double[]){ __VA_ARGS__ }), ELEMENTSOF(((const double[]){ __VA_ARGS__ }))

MetricsRegistry *metrics_registry_new(void);
/* Frees the registry and every metric in it. Accepts NULL; returns NULL. */
MetricsRegistry *metrics_registry_free(MetricsRegistry *reg);

/* Get-or-create: the first call for a name registers the family (help, type,
 * label names, buckets); later calls must repeat them identically and return
 * the child for the given label values, creating it when new. labels is NULL
 * or a NULL-terminated list of name, value pairs; families render in order of
 * registration, children in order of creation. Returns 1 when created, 0 when
 * found, or -EINVAL (bad name per PROTOCOLS.md §9, label names or help that
 * differ from the family's, bad buckets, non-UTF-8 label value), -E2BIG (a cap
 * above) or -ENOMEM, with err saying which. Pointers stay valid until
 * metrics_registry_free(). */
int metrics_counter(MetricsRegistry *reg, const char *name, const char *help, const char *const *labels,
                    MetricCounter **ret, PacerError *err);
int metrics_gauge(MetricsRegistry *reg, const char *name, const char *help, const char *const *labels,
                  MetricGauge **ret, PacerError *err);
/* bounds: finite, strictly increasing upper bounds; "+Inf" is implicit. */
int metrics_histogram(MetricsRegistry *reg, const char *name, const char *help, const double *bounds,
                      size_t n_bounds, const char *const *labels, MetricHistogram **ret, PacerError *err);

/* Updates. Not thread-safe: call them from the event loop's thread. A NULL
 * metric (registration failed) is ignored. */
void metrics_counter_inc(MetricCounter *c);
void metrics_counter_add(MetricCounter *c, uint64_t n);
void metrics_gauge_set(MetricGauge *g, double v);
void metrics_gauge_add(MetricGauge *g, double delta);
/* NaN is ignored: it would turn _sum into NaN for good. */
void metrics_histogram_observe(MetricHistogram *h, double v);

uint64_t metrics_counter_value(const MetricCounter *c);
double metrics_gauge_value(const MetricGauge *g);
uint64_t metrics_histogram_count(const MetricHistogram *h);
double metrics_histogram_sum(const MetricHistogram *h);

/* Appends the exposition of every metric to out; -EMSGSIZE past out's cap, leaving out unchanged. */
int metrics_render(const MetricsRegistry *reg, Buf *out);
