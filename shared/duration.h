/* SPDX-License-Identifier: Apache-2.0 */
/* Durations as Mesos writes them (`5secs`, `1.5hrs`, `100ms`, `2days`) and as
 * Consul/Go writes them (`10s`, `1m30s`, `250ms`), as int64 nanoseconds. */
#pragma once

#include <stdint.h>

#include "error.h"

#define NSEC_PER_USEC 1000LL
#define NSEC_PER_MSEC 1000000LL
#define NSEC_PER_SEC  1000000000LL

/* Mesos form: one non-negative decimal number and one unit of ns, us, ms,
 * secs, mins, hrs, days, weeks. */
int duration_parse_mesos(const char *s, int64_t *ret_ns, PacerError *err);
/* Go form: "0", or one or more <number><unit> with units ns, us, µs, ms, s, m, h. */
int duration_parse_go(const char *s, int64_t *ret_ns, PacerError *err);
/* Either form (flags and labels accept both); Mesos form is tried first. */
int duration_parse(const char *s, int64_t *ret_ns, PacerError *err);

/* Formats for Consul (Go form, e.g. "1m30s", "250ms", "0s"); returns buf. */
const char *duration_format_go(int64_t ns, char *buf, size_t size);
/* Formats in Mesos form with the largest unit that keeps an integer ("5secs"). */
const char *duration_format_mesos(int64_t ns, char *buf, size_t size);

static inline double duration_to_seconds(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}
