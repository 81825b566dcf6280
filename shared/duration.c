/* SPDX-License-Identifier: Apache-2.0 */
#include "duration.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Longest duration string considered; anything longer is garbage, not a duration. */
#define DURATION_STRING_MAX 64

typedef struct Unit {
        const char *name;
        int64_t ns;
} Unit;

static const Unit mesos_units[] = {
        { "ns", 1 },
        { "us", NSEC_PER_USEC },
        { "ms", NSEC_PER_MSEC },
        { "secs", NSEC_PER_SEC },
        { "mins", 60 * NSEC_PER_SEC },
        { "hrs", 3600 * NSEC_PER_SEC },
        { "days", 86400 * NSEC_PER_SEC },
        { "weeks", 7 * 86400 * NSEC_PER_SEC },
};

static const Unit go_units[] = {
        { "ns", 1 },
        { "us", NSEC_PER_USEC },
        { "\xc2\xb5s", NSEC_PER_USEC }, /* U+00B5 micro sign */
        { "\xce\xbcs", NSEC_PER_USEC }, /* U+03BC Greek mu */
        { "ms", NSEC_PER_MSEC },
        { "s", NSEC_PER_SEC },
        { "m", 60 * NSEC_PER_SEC },
        { "h", 3600 * NSEC_PER_SEC },
};

/* Quotes s for an error message: printable ASCII kept, the rest as \xNN, cut
 * short with "..." (room for an escape, the dots and the NUL is kept back). */
static const char *quote(const char *s, char *out, size_t size)
{
        size_t n = 0;
        for (; *s && n + 8 < size; s++) {
                unsigned char c = (unsigned char)*s;
                if (c >= 0x20 && c < 0x7f && c != '\\')
                        out[n++] = (char)c;
                else
                        n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
        }
        if (*s) {
                memcpy(out + n, "...", 3);
                n += 3;
        }
        out[n] = 0;
        return out;
}

/* Reads digits[.digits] at s; at least one digit overall. Returns chars consumed, 0 if none. */
static size_t scan_number(const char *s, double *ret)
{
        char tmp[DURATION_STRING_MAX + 1];
        size_t n = 0, digits = 0;
        bool dot = false;

        for (; s[n]; n++) {
                if (s[n] >= '0' && s[n] <= '9')
                        digits++;
                else if (s[n] == '.' && !dot)
                        dot = true;
                else
                        break;
        }
        if (digits == 0 || n > DURATION_STRING_MAX)
                return 0;
        memcpy(tmp, s, n);
        tmp[n] = 0;
        *ret = strtod(tmp, NULL);
        return n;
}

static const Unit *match_unit(const Unit *units, size_t count, const char *s, size_t *ret_len, bool whole)
{
        const Unit *best = NULL;
        size_t best_len = 0;

        for (size_t i = 0; i < count; i++) {
                size_t l = strlen(units[i].name);
                if (strncmp(s, units[i].name, l) != 0)
                        continue;
                if (whole && s[l] != 0)
                        continue;
                if (l > best_len) {
                        best = &units[i];
                        best_len = l;
                }
        }
        *ret_len = best_len;
        return best;
}

static int to_ns(double v, int64_t unit, int64_t *ret)
{
        double ns = v * (double)unit;
        if (!isfinite(ns) || ns >= 9.2e18)
                return -ERANGE;
        *ret = (int64_t)llround(ns);
        return 0;
}

int duration_parse_mesos(const char *s, int64_t *ret_ns, PacerError *err)
{
        char q[DURATION_STRING_MAX + 8];
        const Unit *u;
        size_t n, ul;
        double v;
        int64_t ns;

        if (!s || !*s)
                return pacer_error_set(err, EINVAL, "empty duration (expected e.g. 5secs, 100ms, 1.5hrs)");
        if (strlen(s) > DURATION_STRING_MAX)
                return pacer_error_set(err, EINVAL, "duration '%s' is longer than %d characters",
                                       quote(s, q, sizeof(q)), DURATION_STRING_MAX);
        n = scan_number(s, &v);
        if (n == 0)
                return pacer_error_set(err, EINVAL,
                                       "invalid duration '%s': must start with a non-negative number "
                                       "(e.g. 5secs)",
                                       quote(s, q, sizeof(q)));
        u = match_unit(mesos_units, ELEMENTSOF(mesos_units), s + n, &ul, true);
        if (!u)
                return pacer_error_set(err, EINVAL,
                                       "invalid duration '%s': unit must be one of ns, us, ms, secs, mins, "
                                       "hrs, days, weeks",
                                       quote(s, q, sizeof(q)));
        if (to_ns(v, u->ns, &ns) < 0)
                return pacer_error_set(err, ERANGE, "duration '%s' is out of range", quote(s, q, sizeof(q)));
        *ret_ns = ns;
        return 0;
}

int duration_parse_go(const char *s, int64_t *ret_ns, PacerError *err)
{
        char q[DURATION_STRING_MAX + 8];
        const char *p = s;
        int64_t total = 0;

        if (!s || !*s)
                return pacer_error_set(err, EINVAL, "empty duration (expected e.g. 10s, 1m30s, 250ms)");
        if (strlen(s) > DURATION_STRING_MAX)
                return pacer_error_set(err, EINVAL, "duration '%s' is longer than %d characters",
                                       quote(s, q, sizeof(q)), DURATION_STRING_MAX);
        if (streq(s, "0")) {
                *ret_ns = 0;
                return 0;
        }
        while (*p) {
                const Unit *u;
                size_t n, ul;
                double v;
                int64_t ns;

                n = scan_number(p, &v);
                if (n == 0)
                        return pacer_error_set(err, EINVAL,
                                               "invalid duration '%s' at position %zu: expected a "
                                               "non-negative number",
                                               quote(s, q, sizeof(q)), (size_t)(p - s));
                p += n;
                u = match_unit(go_units, ELEMENTSOF(go_units), p, &ul, false);
                if (!u)
                        return pacer_error_set(err, EINVAL,
                                               "invalid duration '%s' at position %zu: unit must be one "
                                               "of ns, us, ms, s, m, h",
                                               quote(s, q, sizeof(q)), (size_t)(p - s));
                p += ul;
                if (to_ns(v, u->ns, &ns) < 0 || total > INT64_MAX - ns)
                        return pacer_error_set(err, ERANGE, "duration '%s' is out of range",
                                               quote(s, q, sizeof(q)));
                total += ns;
        }
        *ret_ns = total;
        return 0;
}

int duration_parse(const char *s, int64_t *ret_ns, PacerError *err)
{
        PacerError mesos_err, go_err;
        int r;

        /* A range error means the syntax matched: report it, not a syntax error. */
        r = duration_parse_mesos(s, ret_ns, &mesos_err);
        if (r >= 0)
                return 0;
        if (r == -ERANGE)
                return pacer_error_set(err, r, "%s", mesos_err.msg);
        r = duration_parse_go(s, ret_ns, &go_err);
        if (r >= 0)
                return 0;
        if (r == -ERANGE)
                return pacer_error_set(err, r, "%s", go_err.msg);
        return pacer_error_set(err, EINVAL, "%s (Go forms such as 1m30s are accepted too)", mesos_err.msg);
}

const char *duration_format_go(int64_t ns, char *buf, size_t size)
{
        size_t n = 0;

        if (ns <= 0) {
                snprintf(buf, size, "0s");
                return buf;
        }
        if (ns < NSEC_PER_SEC) {
                if (ns % NSEC_PER_MSEC == 0)
                        snprintf(buf, size, "%lldms", (long long)(ns / NSEC_PER_MSEC));
                else if (ns % NSEC_PER_USEC == 0)
                        snprintf(buf, size, "%lldus", (long long)(ns / NSEC_PER_USEC));
                else
                        snprintf(buf, size, "%lldns", (long long)ns);
                return buf;
        }
        int64_t h = ns / (3600 * NSEC_PER_SEC), m = ns / (60 * NSEC_PER_SEC) % 60;
        int64_t sec = ns / NSEC_PER_SEC % 60, frac = ns % NSEC_PER_SEC;
        buf[0] = 0;
        if (h)
                n += (size_t)snprintf(buf + n, size > n ? size - n : 0, "%lldh", (long long)h);
        if (h || m)
                n += (size_t)snprintf(buf + n, size > n ? size - n : 0, "%lldm", (long long)m);
        if (frac) {
                /* every digit down to the nanosecond, trailing zeros dropped (as Go
                 * prints), so that parsing the text gives the same value back */
                char digits[16];
                int d = snprintf(digits, sizeof(digits), "%09lld", (long long)frac);
                while (digits[d - 1] == '0')
                        d--;
                snprintf(buf + n, size > n ? size - n : 0, "%lld.%.*ss", (long long)sec, d, digits);
        } else {
                snprintf(buf + n, size > n ? size - n : 0, "%llds", (long long)sec);
        }
        return buf;
}

const char *duration_format_mesos(int64_t ns, char *buf, size_t size)
{
        for (size_t i = ELEMENTSOF(mesos_units); i-- > 0;)
                if (ns != 0 && ns % mesos_units[i].ns == 0) {
                        snprintf(buf, size, "%lld%s", (long long)(ns / mesos_units[i].ns),
                                 mesos_units[i].name);
                        return buf;
                }
        snprintf(buf, size, "0secs");
        return buf;
}
