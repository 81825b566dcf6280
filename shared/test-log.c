/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for log: the line format (UTC timestamp with milliseconds, program,
 * pid, level, subject), level filtering, escaping and truncation that keep
 * one event on one line, and the -|errno| return convention. Output is
 * captured through log_set_fd() on a non-blocking pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

/* What log.c may write for one event at most: its message limit plus room for
 * the prefix. A line longer than this means the truncation failed. */
#define TEST_LINE_MAX (4096 + 256)
/* Read buffer: several lines' worth. */
#define TEST_CAPTURE_MAX (4 * TEST_LINE_MAX)

static int pipe_fds[2] = { -1, -1 };
static char captured[TEST_CAPTURE_MAX + 1];

static int setup(void **state)
{
        if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -1;
        /* a non-UTC zone, so that a local-time timestamp would show */
        setenv("TZ", "XYZ-5:30", 1);
        tzset();
        log_set_fd(pipe_fds[1]);
        log_set_program("test-log");
        log_set_level(LOG_LEVEL_INFO);
        return 0;
}

static int teardown(void **state)
{
        log_set_fd(STDERR_FILENO);
        pipe_fds[0] = safe_close(pipe_fds[0]);
        pipe_fds[1] = safe_close(pipe_fds[1]);
        return 0;
}

/* Returns what was logged since the last call (NUL-terminated in captured[]). */
static size_t capture(void)
{
        size_t n = 0;

        for (;;) {
                ssize_t r = read(pipe_fds[0], captured + n, TEST_CAPTURE_MAX - n);
                if (r < 0) {
                        assert_true(errno == EAGAIN);
                        break;
                }
                if (r == 0 || (size_t)(n += (size_t)r) == TEST_CAPTURE_MAX)
                        break;
        }
        captured[n] = 0;
        return n;
}

/* Asserts captured[] holds exactly one line and returns its message part: what
 * follows "<timestamp> <program>[<pid>] <LEVEL> ". */
static const char *one_line(size_t n, const char *level)
{
        char prefix[128];
        const char *p;

        assert_true(n > 0);
        assert_true(n <= TEST_LINE_MAX);
        assert_int_equal(captured[n - 1], '\n');
        assert_ptr_equal(memchr(captured, '\n', n), captured + n - 1);
        assert_null(memchr(captured, 0, n));
        snprintf(prefix, sizeof(prefix), " test-log[%d] %s ", (int)getpid(), level);
        p = strstr(captured, prefix);
        assert_non_null(p);
        return p + strlen(prefix);
}

static time_t realtime_s(void)
{
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
        return ts.tv_sec;
}

static void test_format_and_timestamp(void **state)
{
        regex_t re;
        struct tm tm = { 0 };
        time_t before, after, logged;
        const char *end;
        size_t n;

        assert_int_equal(regcomp(&re,
                                 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                                 "test-log\\[[0-9]+\\] INFO hello 42\n$",
                                 REG_EXTENDED | REG_NOSUB),
                         0);
        /* the log's clock: time(NULL) reads the coarse clock, which can still show the previous
         * second when CLOCK_REALTIME has turned over (a flake seen once at a second boundary) */
        before = realtime_s();
        assert_int_equal(log_info("hello %d", 42), 0);
        after = realtime_s();
        n = capture();
        assert_string_equal(one_line(n, "INFO"), "hello 42\n");
        assert_int_equal(regexec(&re, captured, 0, NULL, 0), 0);
        regfree(&re);

        /* the timestamp is UTC: it matches time(NULL) although TZ is +05:30 */
        end = strptime(captured, "%Y-%m-%dT%H:%M:%S", &tm);
        assert_non_null(end);
        assert_int_equal(*end, '.');
        logged = timegm(&tm);
        assert_true(logged >= before && logged <= after);
}

static void test_level_filtering(void **state)
{
        log_set_level(LOG_LEVEL_WARN);
        assert_int_equal(log_get_level(), LOG_LEVEL_WARN);
        assert_false(log_enabled(LOG_LEVEL_INFO));
        assert_true(log_enabled(LOG_LEVEL_ERROR));

        log_info("not shown");
        log_debug("not shown");
        log_info_s("task=a", "not shown");
        assert_int_equal(capture(), 0);

        log_warn("shown %s", "warn");
        assert_string_equal(one_line(capture(), "WARN"), "shown warn\n");
        log_error("shown error");
        assert_string_equal(one_line(capture(), "ERROR"), "shown error\n");

        log_set_level(LOG_LEVEL_DEBUG);
        log_debug("now %s", "debug");
        assert_string_equal(one_line(capture(), "DEBUG"), "now debug\n");

        log_set_level(LOG_LEVEL_ERROR);
        log_warn("not shown");
        assert_int_equal(capture(), 0);

        /* an invalid level is ignored rather than silencing or flooding */
        log_set_level(_LOG_LEVEL_MAX);
        assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
        log_set_level(_LOG_LEVEL_INVALID);
        assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
        log_set_level(LOG_LEVEL_INFO);
}

static void test_level_names(void **state)
{
        for (LogLevel l = 0; l < _LOG_LEVEL_MAX; l++) {
                const char *s = log_level_to_string(l);
                assert_non_null(s);
                assert_int_equal(log_level_from_string(s), l);
        }
        assert_string_equal(log_level_to_string(LOG_LEVEL_ERROR), "ERROR");
        assert_string_equal(log_level_to_string(LOG_LEVEL_WARN), "WARN");
        assert_string_equal(log_level_to_string(LOG_LEVEL_INFO), "INFO");
        assert_string_equal(log_level_to_string(LOG_LEVEL_DEBUG), "DEBUG");
        assert_null(log_level_to_string(_LOG_LEVEL_MAX));
        assert_null(log_level_to_string((LogLevel)-1));

        assert_int_equal(log_level_from_string("debug"), LOG_LEVEL_DEBUG);
        assert_int_equal(log_level_from_string("Info"), LOG_LEVEL_INFO);
        assert_int_equal(log_level_from_string("warning"), LOG_LEVEL_WARN);
        assert_int_equal(log_level_from_string("WARNING"), LOG_LEVEL_WARN);
        assert_int_equal(log_level_from_string("verbose"), _LOG_LEVEL_INVALID);
        assert_int_equal(log_level_from_string("info "), _LOG_LEVEL_INVALID);
        assert_int_equal(log_level_from_string(""), _LOG_LEVEL_INVALID);
        assert_int_equal(log_level_from_string(NULL), _LOG_LEVEL_INVALID);
}

static void test_subject(void **state)
{
        log_info_s("task=web.1", "started pid %d", 7);
        assert_string_equal(one_line(capture(), "INFO"), "task=web.1: started pid 7\n");
        log_warn_s("app=/a", "slow");
        assert_string_equal(one_line(capture(), "WARN"), "app=/a: slow\n");
        /* a subject from the network is escaped like the message */
        log_error_s("task=x\ny", "bad");
        assert_string_equal(one_line(capture(), "ERROR"), "task=x\\ny: bad\n");
        /* no subject, no separator */
        log_info("plain");
        assert_string_equal(one_line(capture(), "INFO"), "plain\n");
}

static void test_escaping(void **state)
{
        log_info("a\nb\rc\td\x01"
                 "e\x1b[31m\x7f"
                 "f");
        assert_string_equal(one_line(capture(), "INFO"), "a\\nb\\rc\\td\\x01e\\x1b[31m\\x7ff\n");
        /* UTF-8 and other high bytes pass through untouched */
        log_info("caf\xc3\xa9 \xff");
        assert_string_equal(one_line(capture(), "INFO"), "caf\xc3\xa9 \xff\n");
        /* a message that is nothing but newlines */
        log_info("%s", "\n\n\n");
        assert_string_equal(one_line(capture(), "INFO"), "\\n\\n\\n\n");
}

static void test_long_message_truncated(void **state)
{
        char *big = malloc(10000 + 1);
        const char *msg;
        size_t n;

        assert_non_null(big);
        memset(big, 'x', 10000);
        big[10000] = 0;
        log_info("%s", big);
        n = capture();
        msg = one_line(n, "INFO");
        assert_true(strlen(msg) > 1000); /* truncated, not dropped */
        assert_true(strspn(msg, "x") == strlen(msg) - 1);

        /* escapes expand 1 byte to 2 or 4: still bounded, and never cut in half */
        memset(big, '\n', 10000);
        log_info("%s", big);
        msg = one_line(capture(), "INFO");
        assert_true(strlen(msg) > 1000);
        for (size_t i = 0; msg[i] != '\n'; i += 2)
                assert_memory_equal(msg + i, "\\n", 2);
        memset(big, '\x01', 10000);
        log_info("%s", big);
        msg = one_line(capture(), "INFO");
        assert_int_equal((strlen(msg) - 1) % 4, 0);
        assert_memory_equal(msg + strlen(msg) - 5, "\\x01\n", 5);

        /* an oversized subject: bounded too, and the message still shows. The
         * escapes are 4 bytes wide; k plain bytes in front shift where the last
         * one ends, so one of the four runs ends right at the line's limit. */
        for (size_t k = 0; k < 4; k++) {
                memset(big, 's', k);
                memset(big + k, '\x01', 3000);
                big[k + 3000] = 0;
                log_info_s(big, "the message");
                msg = one_line(capture(), "INFO");
                assert_non_null(strstr(msg, "the message\n"));
        }
        memset(big, 's', 10000);
        log_info_s(big, "the message");
        msg = one_line(capture(), "INFO");
        assert_non_null(strstr(msg, "the message\n"));
        log_info_s(big, "%s", big);
        one_line(capture(), "INFO");
        free(big);
}

static void test_return_values_and_errno(void **state)
{
        /* %m names the given error, not whatever errno happened to be */
        errno = EPERM;
        assert_int_equal(log_error_errno(ENOENT, "open %s: %m", "/x"), -ENOENT);
        /* errno is left as it was */
        assert_int_equal(errno, EPERM);
        assert_string_equal(one_line(capture(), "ERROR"), "open /x: No such file or directory\n");

        /* a negative error means the same */
        assert_int_equal(log_error_errno(-EACCES, "%m"), -EACCES);
        assert_string_equal(one_line(capture(), "ERROR"), "Permission denied\n");
        assert_int_equal(log_warn_errno_s("task=t", -ETIMEDOUT, "probe: %m"), -ETIMEDOUT);
        assert_string_equal(one_line(capture(), "WARN"), "task=t: probe: Connection timed out\n");

        /* filtered out: nothing written, the same return value */
        log_set_level(LOG_LEVEL_ERROR);
        assert_int_equal(log_warn_errno(EIO, "hidden"), -EIO);
        assert_int_equal(log_warn_errno(-EIO, "hidden"), -EIO);
        assert_int_equal(log_full(LOG_LEVEL_DEBUG, 0, NULL, "hidden"), 0);
        assert_int_equal(capture(), 0);
        log_set_level(LOG_LEVEL_INFO);

        /* no error: 0 */
        assert_int_equal(log_error("e"), 0);
        assert_int_equal(log_error_errno(0, "zero"), 0);
        assert_int_equal(log_info_s("s", "i"), 0);
        capture();
}

static void test_program_name(void **state)
{
        log_set_program("other");
        log_info("x");
        capture();
        assert_non_null(strstr(captured, "Z other["));
        log_set_program(NULL);
        log_info("x");
        capture();
        assert_non_null(strstr(captured, "Z pacer["));
        log_set_program("test-log");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_format_and_timestamp, setup, teardown),
                cmocka_unit_test_setup_teardown(test_level_filtering, setup, teardown),
                cmocka_unit_test(test_level_names),
                cmocka_unit_test_setup_teardown(test_subject, setup, teardown),
                cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_message_truncated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_return_values_and_errno, setup, teardown),
                cmocka_unit_test_setup_teardown(test_program_name, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
