/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for flags: every value type in both spellings, where parsing stops (the
 * executor's command words follow its own flags), precedence of command line
 * over environment over default, all-or-nothing application, error messages
 * naming the flag or variable and the value, hostile values, and --help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "duration.h"
#include "flags.h"
#include "log.h"

#define ENV_ADDR     "PACER_TEST_CONSUL_ADDR"
#define ENV_PORT     "PACER_TEST_PORT"
#define ENV_INTERVAL "PACER_TEST_INTERVAL"
#define ENV_LEVEL    "PACER_TEST_LOG_LEVEL"
#define ENV_VERBOSE  "PACER_TEST_VERBOSE"

/* The start of a long value that an error message quotes. */
#define V25 "vvvvvvvvvvvvvvvvvvvvvvvvv"

typedef struct Opts {
        const char *addr;
        bool verbose;
        int64_t port;
        double ratio;
        int64_t interval;
        uint64_t max_log;
        LogLevel level;
        const char *name;
} Opts;

static Opts o;

static const Opts defaults = {
        .addr = "http://127.0.0.1:8500",
        .verbose = false,
        .port = 8080,
        .ratio = 0.5,
        .interval = 10 * NSEC_PER_SEC,
        .max_log = 10 * 1024 * 1024,
        .level = LOG_LEVEL_INFO,
        .name = NULL,
};

static const Flag table[] = {
        { .name = "consul-addr",
          .type = FLAG_STRING,
          .target = &o.addr,
          .env = ENV_ADDR,
          .help = "Consul agent address.",
          .metavar = "URL" },
        { .name = "verbose",
          .type = FLAG_BOOL,
          .target = &o.verbose,
          .env = ENV_VERBOSE,
          .help = "Log more." },
        { .name = "port",
          .type = FLAG_INT64,
          .target = &o.port,
          .env = ENV_PORT,
          .help = "Port to listen on.",
          .min = 1,
          .max = 65535 },
        { .name = "ratio", .type = FLAG_DOUBLE, .target = &o.ratio, .help = "Share of something." },
        { .name = "interval",
          .type = FLAG_DURATION,
          .target = &o.interval,
          .env = ENV_INTERVAL,
          .help = "Check interval.",
          .min = NSEC_PER_SEC,
          .max = 3600 * NSEC_PER_SEC },
        { .name = "max-log", .type = FLAG_SIZE, .target = &o.max_log, .help = "Cap on the log file." },
        { .name = "log-level",
          .type = FLAG_LOG_LEVEL,
          .target = &o.level,
          .env = ENV_LEVEL,
          .help = "Least severe level logged." },
        { .name = "name",
          .type = FLAG_STRING,
          .target = &o.name,
          .help = "A name; a long help text that does not fit on the line with the environment variable "
                  "and the default value." },
};

static int setup(void **state)
{
        o = defaults;
        unsetenv(ENV_ADDR);
        unsetenv(ENV_PORT);
        unsetenv(ENV_INTERVAL);
        unsetenv(ENV_LEVEL);
        unsetenv(ENV_VERBOSE);
        return 0;
}

/* Parses a NULL-terminated argument list (argv[0] = "prog" added). */
static int parse(int *ret_first, PacerError *err, ...)
{
        char *argv[64] = { "prog" };
        int argc = 1;
        va_list ap;

        va_start(ap, err);
        while ((argv[argc] = va_arg(ap, char *)))
                argc++;
        va_end(ap);
        return flags_parse(table, ELEMENTSOF(table), argc, argv, ret_first, err);
}

static void assert_defaults(void)
{
        assert_true(o.addr == defaults.addr);
        assert_int_equal(o.verbose, defaults.verbose);
        assert_int_equal(o.port, defaults.port);
        assert_true(o.ratio == defaults.ratio);
        assert_int_equal(o.interval, defaults.interval);
        assert_int_equal(o.max_log, defaults.max_log);
        assert_int_equal(o.level, defaults.level);
        assert_null(o.name);
}

/* Asserts the arguments are rejected with exactly the message want, leaving every target alone. */
#define assert_rejected(want, ...)                                                      \
        do {                                                                            \
                PacerError err_ = { "" };                                               \
                int first_ = -7, r_ = parse(&first_, &err_, __VA_ARGS__, NULL);         \
                if (r_ != -EINVAL && r_ != -ERANGE)                                     \
                        fail_msg("got %d (%s), want an error: %s", r_, err_.msg, want); \
                assert_string_equal(err_.msg, want);                                    \
                assert_int_equal(first_, -7);                                           \
                assert_defaults();                                                      \
        } while (0)

static void test_both_spellings(void **state)
{
        PacerError err = { "" };
        int first = -1;

        assert_int_equal(parse(&first, &err, "--consul-addr=http://c:1", "--port", "9000", "--ratio=0.25",
                               "--interval", "1m30s", "--max-log=64K", "--log-level", "debug", "--verbose",
                               "--name", "", NULL),
                         0);
        assert_int_equal(first, 13);
        assert_string_equal(o.addr, "http://c:1");
        assert_int_equal(o.port, 9000);
        assert_true(o.ratio == 0.25);
        assert_int_equal(o.interval, 90 * NSEC_PER_SEC);
        assert_int_equal(o.max_log, 64 * 1024);
        assert_int_equal(o.level, LOG_LEVEL_DEBUG);
        assert_true(o.verbose);
        assert_string_equal(o.name, ""); /* an empty string is a value */

        setup(NULL);
        assert_int_equal(parse(&first, &err, "--interval=5secs", "--log-level=WARN", "--port=+1", NULL), 0);
        assert_int_equal(o.interval, 5 * NSEC_PER_SEC);
        assert_int_equal(o.level, LOG_LEVEL_WARN);
        assert_int_equal(o.port, 1);
}

static void test_bools_and_sizes(void **state)
{
        static const struct {
                const char *arg;
                bool want;
        } bools[] = {
                { "--verbose", true },     { "--verbose=true", true }, { "--verbose=YES", true },
                { "--verbose=on", true },  { "--verbose=1", true },    { "--verbose=false", false },
                { "--verbose=no", false }, { "--verbose=Off", false }, { "--verbose=0", false },
                { "--no-verbose", false },
        };
        static const struct {
                const char *arg;
                uint64_t want;
        } sizes[] = {
                { "--max-log=0", 0 },
                { "--max-log=512", 512 },
                { "--max-log=512B", 512 },
                { "--max-log=64k", 64 * 1024 },
                { "--max-log=64KiB", 64 * 1024 },
                { "--max-log=10M", 10 * 1024 * 1024 },
                { "--max-log=10mb", 10 * 1024 * 1024 },
                { "--max-log=2G", 2ULL << 30 },
                { "--max-log=3TiB", 3ULL << 40 },
                { "--max-log=16777215T", 16777215ULL << 40 },
        };
        PacerError err;
        int first;

        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                o.verbose = !bools[i].want;
                if (parse(&first, &err, bools[i].arg, NULL) != 0)
                        fail_msg("%s: %s", bools[i].arg, err.msg);
                assert_int_equal(o.verbose, bools[i].want);
        }
        /* a boolean never swallows the next argument */
        assert_int_equal(parse(&first, &err, "--verbose", "false", NULL), 0);
        assert_true(o.verbose);
        assert_int_equal(first, 2);

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                if (parse(&first, &err, sizes[i].arg, NULL) != 0)
                        fail_msg("%s: %s", sizes[i].arg, err.msg);
                assert_true(o.max_log == sizes[i].want);
        }
}

static void test_positional(void **state)
{
        PacerError err;
        int first = -1;

        /* Marathon runs `executor <command words>`: the command's own options are not ours */
        assert_int_equal(parse(&first, &err, "--port=81", "sh", "-c", "exec server --port=1 --bogus", NULL),
                         0);
        assert_int_equal(first, 2);
        assert_int_equal(o.port, 81);

        assert_int_equal(parse(&first, &err, "--port", "82", "--", "--port=1", "--help", NULL), 0);
        assert_int_equal(first, 4);
        assert_int_equal(o.port, 82);

        assert_int_equal(parse(&first, &err, "-", "--port=1", NULL), 0);
        assert_int_equal(first, 1);
        assert_int_equal(parse(&first, &err, "--port=83", NULL), 0);
        assert_int_equal(first, 2);
        assert_int_equal(parse(&first, &err, "--", NULL), 0);
        assert_int_equal(first, 2);
        assert_int_equal(parse(&first, &err, NULL), 0);
        assert_int_equal(first, 1);
        assert_int_equal(o.port, 83);

        /* string values point into argv: nothing to free */
        char arg[] = "--consul-addr=http://x:1", *argv[] = { "prog", arg, NULL };
        assert_int_equal(flags_parse(table, ELEMENTSOF(table), 2, argv, &first, &err), 0);
        assert_ptr_equal(o.addr, arg + strlen("--consul-addr="));
}

static void test_precedence(void **state)
{
        PacerError err;
        int first;

        setenv(ENV_PORT, "7000", 1);
        setenv(ENV_INTERVAL, "30secs", 1);
        setenv(ENV_LEVEL, "", 1); /* empty: unset */
        setenv(ENV_VERBOSE, "yes", 1);
        assert_int_equal(parse(&first, &err, "--port=9000", NULL), 0);
        assert_int_equal(o.port, 9000);                  /* command line over environment */
        assert_int_equal(o.interval, 30 * NSEC_PER_SEC); /* environment over default */
        assert_int_equal(o.level, LOG_LEVEL_INFO);       /* default */
        assert_true(o.verbose);
        assert_true(o.addr == defaults.addr);

        /* a flag on the command line shadows a broken variable */
        setenv(ENV_INTERVAL, "soon", 1);
        assert_int_equal(parse(&first, &err, "--interval=2secs", NULL), 0);
        assert_int_equal(o.interval, 2 * NSEC_PER_SEC);
        assert_int_equal(parse(&first, &err, "--no-verbose", "--interval=2secs", NULL), 0);
        assert_false(o.verbose);

        /* a string from the environment points into it */
        setenv(ENV_ADDR, "http://env:8500", 1);
        assert_int_equal(parse(&first, &err, "--interval=3secs", NULL), 0);
        assert_ptr_equal(o.addr, getenv(ENV_ADDR));
        assert_int_equal(o.port, 7000);
}

static void test_errors(void **state)
{
        assert_rejected("unknown flag --foo (see --help)", "--foo");
        assert_rejected("unknown flag --foo (see --help)", "--foo=secret-value");
        assert_rejected("unknown flag -v (see --help)", "-v");
        assert_rejected("unknown flag --no-port (see --help)", "--no-port");
        assert_rejected("--no-verbose=1: --no-verbose takes no value", "--no-verbose=1");
        assert_rejected(
                "--interval=abc: invalid duration 'abc': must start with a non-negative number (e.g. "
                "5secs) (Go forms such as 1m30s are accepted too)",
                "--interval=abc");
        /* the same wording whichever spelling was used */
        assert_rejected(
                "--interval=abc: invalid duration 'abc': must start with a non-negative number (e.g. "
                "5secs) (Go forms such as 1m30s are accepted too)",
                "--interval", "abc");
        assert_rejected("--interval=5ms: duration '5ms' is out of range (expected 1secs..1hrs)",
                        "--interval=5ms");
        assert_rejected("--interval: missing value (expected DURATION)", "--interval");
        assert_rejected("--consul-addr: missing value (expected URL)", "--port=1", "--consul-addr");
        assert_rejected("--interval=: empty value (expected DURATION)", "--interval=");
        assert_rejected("--port=: empty value (expected INT)", "--port", "");
        assert_rejected("--port=70000: '70000' is out of range (expected 1..65535)", "--port=70000");
        assert_rejected(
                "--port=99999999999999999999: '99999999999999999999' is out of range (expected 1..65535)",
                "--port=99999999999999999999");
        assert_rejected("--port=12x: invalid integer '12x' (expected a decimal integer)", "--port=12x");
        assert_rejected("--port= 12: invalid integer ' 12' (expected a decimal integer)", "--port= 12");
        assert_rejected("--ratio=nan: 'nan' is not a finite number in range", "--ratio=nan");
        assert_rejected("--ratio=1e999: '1e999' is not a finite number in range", "--ratio=1e999");
        assert_rejected("--ratio=1,5: invalid number '1,5'", "--ratio=1,5");
        assert_rejected(
                "--verbose=maybe: invalid boolean 'maybe' (expected true, false, yes, no, on, off, 1 or 0)",
                "--verbose=maybe");
        assert_rejected(
                "--max-log=10Q: invalid size '10Q' (expected bytes with an optional K, M, G or T suffix, "
                "powers of 1024, e.g. 512, 64K, 10M)",
                "--max-log=10Q");
        assert_rejected(
                "--max-log=-1: invalid size '-1' (expected bytes with an optional K, M, G or T suffix, "
                "powers of 1024, e.g. 512, 64K, 10M)",
                "--max-log=-1");
        assert_rejected("--max-log=16777216T: size '16777216T' is out of range", "--max-log=16777216T");
        assert_rejected("--log-level=loud: invalid log level 'loud' (expected error, warn, info or debug)",
                        "--log-level=loud");

        /* nothing is applied when a later flag is bad */
        assert_rejected("unknown flag --bogus (see --help)", "--port=9", "--verbose", "--bogus");
        /* every occurrence is checked, though the last one wins */
        assert_rejected("--port=x: invalid integer 'x' (expected a decimal integer)", "--port=x",
                        "--port=2");
}

static void test_env_errors(void **state)
{
        setenv(ENV_INTERVAL, "abc", 1);
        assert_rejected(
                "PACER_TEST_INTERVAL=abc: invalid duration 'abc': must start with a non-negative number "
                "(e.g. 5secs) (Go forms such as 1m30s are accepted too)",
                "--port=9");
        unsetenv(ENV_INTERVAL);
        setenv(ENV_PORT, "0", 1);
        assert_rejected("PACER_TEST_PORT=0: '0' is out of range (expected 1..65535)", "--verbose");
        setenv(ENV_PORT, "1\n2", 1);
        assert_rejected("PACER_TEST_PORT=1\\x0a2: invalid integer '1\\x0a2' (expected a decimal integer)",
                        "--verbose");
        unsetenv(ENV_PORT);
        setenv(ENV_ADDR, "http://\xff", 1);
        assert_rejected(
                "PACER_TEST_CONSUL_ADDR=http://\\xff: value is not valid UTF-8 (byte 0xff at offset 7)",
                "--verbose");
}

static void test_hostile_values(void **state)
{
        char *huge = malloc(100020), *name;
        PacerError err = { "" };
        int first;

        /* a value past the cap: refused, and the message quotes only its start */
        strcpy(huge, "--name=");
        memset(huge + 7, 'v', 100000);
        huge[100007] = 0;
        assert_rejected("--name=" V25 "...: value is 100000 bytes long, over the limit of 4096 bytes", huge);
        /* just at the cap is fine */
        huge[7 + FLAGS_VALUE_MAX] = 0;
        assert_int_equal(parse(&first, &err, huge, NULL), 0);
        assert_int_equal(strlen(o.name), FLAGS_VALUE_MAX);
        setup(NULL);

        /* a huge unknown flag name is cut too */
        memset(huge + 2, 'v', 100000);
        huge[100002] = 0;
        assert_rejected("unknown flag --" V25 "vvvvv... (see --help)", huge);
        free(huge);

        assert_rejected("--name=ab\\xff: value is not valid UTF-8 (byte 0xff at offset 2)", "--name=ab\xff");
        assert_rejected("--name=\\xc0\\xaf: value is not valid UTF-8 (byte 0xc0 at offset 0)",
                        "--name=\xc0\xaf");
        assert_rejected("--port=\\x1b[31m: invalid integer '\\x1b[31m' (expected a decimal integer)",
                        "--port=\x1b[31m");
        assert_rejected("unknown flag --b\\x01d (see --help)", "--b\x01"
                                                               "d=1");

        /* the worst case for quoting (every byte escaped) still leaves room for the reason */
        huge = malloc(128);
        strcpy(huge, "--name=");
        memset(huge + 7, 0xff, 100);
        huge[107] = 0;
        assert_int_equal(parse(&first, &err, huge, NULL), -EINVAL);
        assert_true(strneq(err.msg, "--name=\\xff\\xff", 15));
        assert_non_null(strstr(err.msg, "\\xff...: value is not valid UTF-8 (byte 0xff at offset 0)"));
        free(huge);
        assert_defaults();

        /* valid UTF-8 is kept as it is */
        assert_int_equal(parse(&first, &err, "--name=caf\xc3\xa9 \xe2\x82\xac", NULL), 0);
        assert_string_equal(o.name, "café €");

        /* argv strings end at a NUL: the bytes after it are not part of the value */
        name = (char[]){ "--name=ab\0cd" };
        char *argv[] = { "prog", name, "pos", NULL };
        assert_int_equal(flags_parse(table, ELEMENTSOF(table), 3, argv, &first, &err), 0);
        assert_string_equal(o.name, "ab");
        assert_int_equal(first, 2);
}

static void test_help_and_version(void **state)
{
        PacerError err = { "untouched" };
        int first = -7;

        setenv(ENV_PORT, "7000", 1);
        assert_int_equal(parse(&first, &err, "--help", NULL), FLAGS_HELP);
        assert_int_equal(parse(&first, &err, "--port=1", "-h", NULL), FLAGS_HELP);
        /* asking for help after a mistake still gets help */
        assert_int_equal(parse(&first, &err, "--bogus", "--interval=x", "--help", NULL), FLAGS_HELP);
        assert_int_equal(parse(&first, &err, "--version", "--port=2", NULL), FLAGS_VERSION);
        assert_string_equal(err.msg, "untouched");
        assert_int_equal(first, -7);
        /* nothing was applied: help shows the defaults */
        assert_defaults();
        assert_rejected("--help=1: --help takes no value", "--help=1");
        assert_rejected("--version=2: --version takes no value", "--version=2");
        /* past the positional boundary, or as a value, it is not ours */
        assert_int_equal(parse(&first, &err, "cmd", "--help", NULL), 0);
        assert_int_equal(parse(&first, &err, "--name", "--help", NULL), 0);
        assert_string_equal(o.name, "--help");
}

static void test_print_help(void **state)
{
        int64_t grace = 0;
        const Flag wide[] = { { .name = "deregister-critical-service-after",
                                .type = FLAG_DURATION,
                                .target = &grace,
                                .help = "Consul reaps the entry after this." } };
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&text, &size);
        assert_non_null(f);
        o.verbose = true; /* the current value is shown as the default */
        flags_print_help(f, "pacer-executor", "[OPTIONS] [--] COMMAND...", "Runs one Mesos task.", table,
                         ELEMENTSOF(table));
        fclose(f);
        assert_string_equal(
                text,
                "Usage: pacer-executor [OPTIONS] [--] COMMAND...\n"
                "\n"
                "Runs one Mesos task.\n"
                "\n"
                "Options:\n"
                "  --consul-addr=URL    Consul agent address.\n"
                "                       [env: PACER_TEST_CONSUL_ADDR] [default: http://127.0.0.1:8500]\n"
                "  --[no-]verbose       Log more. [env: PACER_TEST_VERBOSE] [default: true]\n"
                "  --port=INT           Port to listen on. [env: PACER_TEST_PORT] [default: 8080]\n"
                "  --ratio=NUMBER       Share of something. [default: 0.5]\n"
                "  --interval=DURATION  Check interval. [env: PACER_TEST_INTERVAL] [default: 10secs]\n"
                "  --max-log=SIZE       Cap on the log file. [default: 10M]\n"
                "  --log-level=LEVEL    Least severe level logged. [env: PACER_TEST_LOG_LEVEL] "
                "[default: info]\n"
                "  --name=VALUE         A name; a long help text that does not fit on the line with "
                "the environment\n"
                "                       variable and the default value.\n"
                "  -h, --help           Show this help and exit.\n"
                "      --version        Show the version and exit.\n");
        free(text);

        /* a flag wider than the column gets its help on the next line; no description, no synopsis */
        text = NULL;
        f = open_memstream(&text, &size);
        assert_non_null(f);
        flags_print_help(f, "prog", NULL, NULL, wide, ELEMENTSOF(wide));
        fclose(f);
        assert_string_equal(text,
                            "Usage: prog [OPTIONS]\n"
                            "\n"
                            "Options:\n"
                            "  --deregister-critical-service-after=DURATION\n"
                            "                                Consul reaps the entry after this. [default: "
                            "0secs]\n"
                            "  -h, --help                    Show this help and exit.\n"
                            "      --version                 Show the version and exit.\n");
        free(text);
}

static void test_bad_tables(void **state)
{
        int64_t x = 0;
        const Flag dup[] = { { .name = "a", .type = FLAG_INT64, .target = &x },
                             { .name = "a", .type = FLAG_INT64, .target = &x } };
        const Flag upper[] = { { .name = "Port", .type = FLAG_INT64, .target = &x } };
        const Flag builtin[] = { { .name = "help", .type = FLAG_BOOL, .target = &x } };
        const Flag no_target[] = { { .name = "x", .type = FLAG_INT64 } };
        const Flag bad_type[] = { { .name = "x", .type = _FLAG_TYPE_MAX, .target = &x } };
        char *argv[] = { "prog", NULL };
        PacerError err;
        int first;

        assert_int_equal(flags_parse(dup, ELEMENTSOF(dup), 1, argv, &first, &err), -EINVAL);
        assert_string_equal(err.msg, "flag table: --a appears twice");
        assert_int_equal(flags_parse(upper, ELEMENTSOF(upper), 1, argv, &first, &err), -EINVAL);
        assert_string_equal(err.msg, "flag table: bad name 'Port'");
        assert_int_equal(flags_parse(builtin, ELEMENTSOF(builtin), 1, argv, &first, &err), -EINVAL);
        assert_string_equal(err.msg, "flag table: --help is built in");
        assert_int_equal(flags_parse(no_target, ELEMENTSOF(no_target), 1, argv, &first, &err), -EINVAL);
        assert_int_equal(flags_parse(bad_type, ELEMENTSOF(bad_type), 1, argv, &first, &err), -EINVAL);
        /* an empty table still parses positionals and the built-ins */
        assert_int_equal(flags_parse(NULL, 0, 1, argv, &first, &err), 0);
        assert_int_equal(first, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_both_spellings, setup),
                cmocka_unit_test_setup(test_bools_and_sizes, setup),
                cmocka_unit_test_setup(test_positional, setup),
                cmocka_unit_test_setup(test_precedence, setup),
                cmocka_unit_test_setup(test_errors, setup),
                cmocka_unit_test_setup(test_env_errors, setup),
                cmocka_unit_test_setup(test_hostile_values, setup),
                cmocka_unit_test_setup(test_help_and_version, setup),
                cmocka_unit_test_setup(test_print_help, setup),
                cmocka_unit_test_setup(test_bad_tables, setup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
