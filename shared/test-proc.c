/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for /proc/<pid>/stat parsing (command names with spaces and
 * parentheses, truncated text) and for killing the processes a predicate
 * picks, and only those. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

static void test_parse(void **state)
{
        ProcStat st;

        assert_int_equal(
                proc_stat_parse("1234 (a b) c)) Z 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 "
                                "0 987654 1000 200",
                                &st),
                0);
        assert_int_equal(st.state, 'Z');
        assert_int_equal(st.ppid, 1);
        assert_int_equal(st.pgrp, 1234);
        assert_int_equal(st.session, 1234);
        assert_int_equal(st.start_time, 987654);
        assert_int_equal(proc_stat_parse("1234 (x S 1 2", &st), -EBADMSG);
        assert_int_equal(proc_stat_parse("1234 (x) S 1 2", &st), -EBADMSG);
}

static void test_read(void **state)
{
        ProcStat st;

        assert_int_equal(proc_stat_read(getpid(), &st), 0);
        assert_int_equal(st.ppid, getppid());
        assert_int_equal(st.pgrp, getpgrp());
        assert_int_equal(proc_stat_read(-1, &st), -ENOENT);
}

static bool pick_pid(pid_t pid, const ProcStat *st, void *userdata)
{
        return pid == *(pid_t *)userdata && st->ppid == getpid();
}

/* A small file whole, and a clear error for one that does not fit or is not there. */
static void test_read_file(void **state)
{
        char path[] = "/tmp/pacer-test-proc-XXXXXX", buf[16];
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "1234567", 7), 7);
        close(fd);
        assert_int_equal(proc_read_file(path, buf, 8),
                         -EFBIG); /* 7 bytes fill 8 without room to tell the end */
        assert_int_equal(proc_read_file(path, buf, sizeof(buf)), 7);
        assert_string_equal(buf, "1234567");
        unlink(path);
        assert_int_equal(proc_read_file(path, buf, sizeof(buf)), -ENOENT);
}

static void test_kill_picked(void **state)
{
        pid_t child = fork(), none = -1;
        int status;

        assert_true(child >= 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        assert_int_equal(proc_kill_picked(pick_pid, &none), 0);
        assert_int_equal(proc_kill_picked(pick_pid, &child), 1);
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_read),
                cmocka_unit_test(test_read_file),
                cmocka_unit_test(test_kill_picked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
