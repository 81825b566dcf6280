/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for duration: the Mesos forms (../shared/PROTOCOLS.md §3.1) and the
 * Go forms Consul uses, what each parser rejects and how it says so, overflow,
 * and that formatting then parsing gives the value back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "duration.h"

#define SEC  NSEC_PER_SEC
#define MIN_ (60 * SEC)
#define HOUR (3600 * SEC)
#define DAY  (86400 * SEC)

typedef int (*parse_fn)(const char *s, int64_t *ret_ns, PacerError *err);

typedef struct Good {
        const char *s;
        int64_t ns;
} Good;

static void assert_parses(parse_fn parse, const char *s, int64_t want)
{
        PacerError err = { "untouched" };
        int64_t ns = -1;

        if (parse(s, &ns, &err) != 0)
                fail_msg("'%s' was rejected: %s", s, err.msg);
        if (ns != want)
                fail_msg("'%s' parsed as %lld, want %lld", s, (long long)ns, (long long)want);
        /* success leaves the error alone */
        assert_string_equal(err.msg, "untouched");
}

/* Asserts parse(s) fails with code, leaves *ret_ns alone, and that the message
 * contains each of the NULL-terminated fragments. */
static void assert_rejects(parse_fn parse, const char *s, int code, ...)
{
        PacerError err = { "" };
        int64_t ns = 4242;
        const char *frag;
        va_list ap;
        int r;

        r = parse(s, &ns, &err);
        if (r != code)
                fail_msg("'%s': got %d, want %d (%s)", strna(s), r, code, err.msg);
        assert_int_equal(ns, 4242);
        assert_true(strlen(err.msg) > 0);
        va_start(ap, code);
        while ((frag = va_arg(ap, const char *)))
                if (!strstr(err.msg, frag))
                        fail_msg("'%s': message \"%s\" lacks \"%s\"", strna(s), err.msg, frag);
        va_end(ap);
        /* a NULL error pointer is allowed */
        assert_int_equal(parse(s, &ns, NULL), code);
}

static const Good mesos_good[] = {
        { "5secs", 5 * SEC },
        { "15mins", 15 * MIN_ },
        { "1.5hrs", 90 * MIN_ },
        { "100ms", 100 * NSEC_PER_MSEC },
        { "2days", 2 * DAY },
        { "1weeks", 7 * DAY },
        { "0ns", 0 },
        { "1500ms", 1500 * NSEC_PER_MSEC },
        { "90mins", 90 * MIN_ },
        { "90secs", 90 * SEC },
        { "2secs", 2 * SEC },
        { "3days", 3 * DAY },
        { "7ns", 7 },
        { "250us", 250 * NSEC_PER_USEC },
        { "0.5secs", SEC / 2 },
        { "0secs", 0 },
        { "0.001secs", NSEC_PER_MSEC },
        { "10.secs", 10 * SEC },
        { "1.25weeks", 7 * DAY + 42 * HOUR },
};

static const Good go_good[] = {
        { "10s", 10 * SEC },
        { "1m30s", 90 * SEC },
        { "1h30m", 90 * MIN_ },
        { "1.5s", 1500 * NSEC_PER_MSEC },
        { "250ms", 250 * NSEC_PER_MSEC },
        { "0", 0 },
        { "0s", 0 },
        { "300us", 300 * NSEC_PER_USEC },
        { "1\xc2\xb5s", NSEC_PER_USEC },     /* U+00B5 micro sign */
        { "2\xce\xbcs", 2 * NSEC_PER_USEC }, /* U+03BC Greek mu */
        { "5ns", 5 },
        { "1h", HOUR },
        { "2h45m30.5s", 2 * HOUR + 45 * MIN_ + 30 * SEC + SEC / 2 },
        { "1m0s", MIN_ },
        { "1s500ms", 1500 * NSEC_PER_MSEC },
        { "72h", 3 * DAY },
};

static void test_mesos_forms(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(mesos_good); i++) {
                assert_parses(duration_parse_mesos, mesos_good[i].s, mesos_good[i].ns);
                /* duration_parse takes them too */
                assert_parses(duration_parse, mesos_good[i].s, mesos_good[i].ns);
        }
}

static void test_mesos_rejects(void **state)
{
        char long_s[101], bad_utf8[] = "5\xff"
                                       "secs";

        assert_rejects(duration_parse_mesos, "5", -EINVAL, "'5'", "unit", NULL);
        assert_rejects(duration_parse_mesos, "5s", -EINVAL, "'5s'", "secs", NULL);
        assert_rejects(duration_parse_mesos, "5sec", -EINVAL, "'5sec'", NULL);
        assert_rejects(duration_parse_mesos, "1h30m", -EINVAL, "'1h30m'", NULL);
        assert_rejects(duration_parse_mesos, "-1secs", -EINVAL, "'-1secs'", "non-negative", NULL);
        assert_rejects(duration_parse_mesos, "+1secs", -EINVAL, "'+1secs'", NULL);
        assert_rejects(duration_parse_mesos, "1 secs", -EINVAL, "'1 secs'", NULL);
        assert_rejects(duration_parse_mesos, " 1secs", -EINVAL, "' 1secs'", NULL);
        assert_rejects(duration_parse_mesos, "1secs ", -EINVAL, "'1secs '", NULL);
        assert_rejects(duration_parse_mesos, "secs", -EINVAL, "'secs'", NULL);
        assert_rejects(duration_parse_mesos, ".secs", -EINVAL, "'.secs'", NULL);
        assert_rejects(duration_parse_mesos, "1.2.3secs", -EINVAL, "'1.2.3secs'", NULL);
        assert_rejects(duration_parse_mesos, "1e3secs", -EINVAL, "'1e3secs'", NULL);
        assert_rejects(duration_parse_mesos, "0x10secs", -EINVAL, "'0x10secs'", NULL);
        assert_rejects(duration_parse_mesos, "infsecs", -EINVAL, NULL);
        assert_rejects(duration_parse_mesos, "5SECS", -EINVAL, NULL);
        assert_rejects(duration_parse_mesos, "5secss", -EINVAL, NULL);
        assert_rejects(duration_parse_mesos, "", -EINVAL, "empty", NULL);
        assert_rejects(duration_parse_mesos, NULL, -EINVAL, "empty", NULL);

        /* non-UTF-8 and control bytes are shown escaped, never raw */
        assert_rejects(duration_parse_mesos, bad_utf8, -EINVAL, "'5\\xffsecs'", NULL);
        assert_rejects(duration_parse_mesos, "5\nsecs", -EINVAL, "'5\\x0asecs'", NULL);
        assert_rejects(duration_parse_mesos, "5'secs", -EINVAL, "'5'secs'", NULL);
        assert_rejects(duration_parse_mesos, "5\\secs", -EINVAL, "'5\\x5csecs'", NULL);

        /* too long: refused before parsing, quoted but cut short */
        memset(long_s, '1', 96);
        memcpy(long_s + 96, "secs", 5);
        assert_rejects(duration_parse_mesos, long_s, -EINVAL, "longer than", "'1111111111", "...'", NULL);
        memset(long_s, '\xfe', 100);
        long_s[100] = 0;
        assert_rejects(duration_parse_mesos, long_s, -EINVAL, "'\\xfe\\xfe", "...'", NULL);
}

static void test_go_forms(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(go_good); i++) {
                assert_parses(duration_parse_go, go_good[i].s, go_good[i].ns);
                assert_parses(duration_parse, go_good[i].s, go_good[i].ns);
        }
}

static void test_go_rejects(void **state)
{
        assert_rejects(duration_parse_go, "5", -EINVAL, "'5'", "position 1", NULL);
        assert_rejects(duration_parse_go, "1d", -EINVAL, "'1d'", "position 1", NULL);
        assert_rejects(duration_parse_go, "10secs", -EINVAL, "'10secs'", NULL);
        assert_rejects(duration_parse_go, "-5s", -EINVAL, "'-5s'", "position 0", NULL);
        assert_rejects(duration_parse_go, "1m30", -EINVAL, "'1m30'", "position 4", NULL);
        assert_rejects(duration_parse_go, "00", -EINVAL, NULL);
        assert_rejects(duration_parse_go, "1 s", -EINVAL, NULL);
        assert_rejects(duration_parse_go, "1\xc2", -EINVAL, "'1\\xc2'", NULL);
        assert_rejects(duration_parse_go, "s", -EINVAL, NULL);
        assert_rejects(duration_parse_go, "", -EINVAL, "empty", NULL);
        assert_rejects(duration_parse_go, NULL, -EINVAL, "empty", NULL);
}

static void test_overflow(void **state)
{
        assert_rejects(duration_parse_mesos, "9999999999weeks", -ERANGE, "'9999999999weeks'", "range", NULL);
        assert_rejects(duration_parse_mesos, "99999999999999999999ns", -ERANGE, NULL);
        assert_rejects(duration_parse_go, "9999999999999h", -ERANGE, "'9999999999999h'", "range", NULL);
        /* each part fits, the sum does not */
        assert_rejects(duration_parse_go, "2000000h2000000h2000000h", -ERANGE, NULL);
        /* a number too long for a double still ends as a range error, not garbage */
        assert_rejects(duration_parse_mesos, "1000000000000000000000000000000000000000000000000000secs",
                       -ERANGE, NULL);

        /* through duration_parse, the range error and its message survive */
        assert_rejects(duration_parse, "9999999999weeks", -ERANGE, "'9999999999weeks'", "range", NULL);
        assert_rejects(duration_parse, "9999999999999h", -ERANGE, "'9999999999999h'", "range", NULL);

        /* large values that do fit */
        assert_parses(duration_parse_mesos, "15000weeks", 15000 * 7 * DAY);
        assert_parses(duration_parse_go, "2000000h", 2000000 * HOUR);
}

static void test_parse_either(void **state)
{
        /* neither form: the message says what is expected in both */
        assert_rejects(duration_parse, "5", -EINVAL, "'5'", "1m30s", NULL);
        assert_rejects(duration_parse, "1d", -EINVAL, "'1d'", NULL);
        assert_rejects(duration_parse, "5 secs", -EINVAL, "'5 secs'", NULL);
        assert_rejects(duration_parse, "", -EINVAL, "empty", NULL);
        assert_rejects(duration_parse, NULL, -EINVAL, "empty", NULL);
}

static void assert_formats(const char *(*format)(int64_t, char *, size_t), int64_t ns, const char *want)
{
        char buf[64];

        assert_ptr_equal(format(ns, buf, sizeof(buf)), buf);
        if (!streq(buf, want))
                fail_msg("%lld formatted as '%s', want '%s'", (long long)ns, buf, want);
}

static void test_format_go(void **state)
{
        assert_formats(duration_format_go, 0, "0s");
        assert_formats(duration_format_go, 90 * SEC, "1m30s");
        assert_formats(duration_format_go, 250 * NSEC_PER_MSEC, "250ms");
        assert_formats(duration_format_go, 300 * NSEC_PER_USEC, "300us");
        assert_formats(duration_format_go, 7, "7ns");
        assert_formats(duration_format_go, 5 * SEC, "5s");
        assert_formats(duration_format_go, 1500 * NSEC_PER_MSEC, "1.5s");
        assert_formats(duration_format_go, HOUR, "1h0m0s");
        assert_formats(duration_format_go, 90 * MIN_, "1h30m0s");
        assert_formats(duration_format_go, 3 * DAY + 5 * SEC, "72h0m5s");
        assert_formats(duration_format_go, 61 * SEC + 1, "1m1.000000001s");
        assert_formats(duration_format_go, SEC + 250 * NSEC_PER_USEC, "1.00025s");
        /* negative durations do not exist in either syntax; they clamp to zero */
        assert_formats(duration_format_go, -5 * SEC, "0s");
}

static void test_format_mesos(void **state)
{
        assert_formats(duration_format_mesos, 5 * SEC, "5secs");
        assert_formats(duration_format_mesos, 1500 * NSEC_PER_MSEC, "1500ms");
        assert_formats(duration_format_mesos, 90 * SEC, "90secs");
        assert_formats(duration_format_mesos, 15 * MIN_, "15mins");
        assert_formats(duration_format_mesos, 90 * MIN_, "90mins");
        assert_formats(duration_format_mesos, 2 * HOUR, "2hrs");
        assert_formats(duration_format_mesos, 3 * DAY, "3days");
        assert_formats(duration_format_mesos, 14 * DAY, "2weeks");
        assert_formats(duration_format_mesos, 250 * NSEC_PER_USEC, "250us");
        assert_formats(duration_format_mesos, 1, "1ns");
        assert_formats(duration_format_mesos, 0, "0secs");
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng(void)
{
        static uint64_t s = 0x2545f4914f6cdd1dULL;

        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545f4914f6cdd1dULL;
}

static void assert_round_trip(int64_t ns)
{
        char buf[64];
        int64_t back;

        duration_format_go(ns, buf, sizeof(buf));
        if (duration_parse_go(buf, &back, NULL) != 0 || back != ns)
                fail_msg("Go form of %lld is '%s', which parses as %lld", (long long)ns, buf,
                         (long long)back);
        assert_int_equal(duration_parse(buf, &back, NULL), 0);
        assert_int_equal(back, ns);

        duration_format_mesos(ns, buf, sizeof(buf));
        if (duration_parse_mesos(buf, &back, NULL) != 0 || back != ns)
                fail_msg("Mesos form of %lld is '%s', which parses as %lld", (long long)ns, buf,
                         (long long)back);
        assert_int_equal(duration_parse(buf, &back, NULL), 0);
        assert_int_equal(back, ns);
}

static void test_round_trip(void **state)
{
        static const int64_t fixed[] = {
                0,
                1,
                999,
                NSEC_PER_USEC,
                NSEC_PER_MSEC,
                SEC - 1,
                SEC,
                SEC + 1,
                90 * SEC,
                59 * MIN_ + 59 * SEC,
                HOUR,
                DAY,
                7 * DAY,
                365 * DAY,
                1500 * NSEC_PER_MSEC,
                3 * HOUR + 7 * NSEC_PER_MSEC,
        };

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                assert_round_trip(fixed[i]);
        /* The parsers read numbers as doubles, as Mesos does, so a value comes
         * back exactly while the double holds it exactly: any nanosecond count
         * below 2^53 (about 104 days), whole milliseconds below 2^38 (8 years),
         * whole seconds below 2^32 (136 years). */
        for (int i = 0; i < 20000; i++) {
                uint64_t x = rng();
                assert_round_trip((int64_t)(x % (1ULL << 53)));
                assert_round_trip((int64_t)(x % (1ULL << 38)) * NSEC_PER_MSEC);
                assert_round_trip((int64_t)(x % (1ULL << 32)) * SEC);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mesos_forms), cmocka_unit_test(test_mesos_rejects),
                cmocka_unit_test(test_go_forms),    cmocka_unit_test(test_go_rejects),
                cmocka_unit_test(test_overflow),    cmocka_unit_test(test_parse_either),
                cmocka_unit_test(test_format_go),   cmocka_unit_test(test_format_mesos),
                cmocka_unit_test(test_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
