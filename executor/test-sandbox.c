/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for sandbox: planning rejects bad labels and flags before fork, with
 * the label and value in the message; and real programs started through
 * TaskProcess (the executor's own path) show the sandbox took effect: their
 * /proc/self/status and /proc/self/limits, and what the kernel lets them do
 * (tests/sandbox-probe.c). Tests that need root to switch users or hold
 * capabilities skip with a message otherwise. */
#include <ev.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <pwd.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "sandbox.h"
#include "spawner.h"
#include "task.h"

#define RUN_TIMEOUT_S 30.
#define OUTPUT_MAX    (1u << 20)
#define TEST_USER     "pacer-sandbox-test" /* created only when running as root without "nobody" */

static char tmpdir[] = "/tmp/pacer-test-sandbox-XXXXXX";
static char probe[sizeof(tmpdir) + 16];
static const char *unprivileged_user; /* NULL when not root */
static bool created_user;
static int run_counter;

/* ---- fixtures ---- */

static int copy_file(const char *from, const char *to, mode_t mode)
{
        char buf[65536];
        int in = open(from, O_RDONLY | O_CLOEXEC), out;
        ssize_t n;

        if (in < 0)
                return -1;
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (out < 0) {
                close(in);
                return -1;
        }
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t)n) != n) {
                        n = -1;
                        break;
                }
        close(in);
        close(out);
        return n < 0 ? -1 : chmod(to, mode);
}

static int group_setup(void **state)
{
        /* the probe must be reachable by an unprivileged user: a copy in a 0755 directory */
        if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755) < 0)
                return -1;
        snprintf(probe, sizeof(probe), "%s/probe", tmpdir);
        if (copy_file(SANDBOX_PROBE, probe, 0755) < 0)
                return -1;
        if (geteuid() == 0) {
                if (getpwnam("nobody"))
                        unprivileged_user = "nobody";
                else if (system("useradd --system --no-create-home --shell /usr/sbin/nologin " TEST_USER) ==
                         0) {
                        unprivileged_user = TEST_USER;
                        created_user = true;
                }
        }
        /* a child killed by SIGSYS must not take the test with it: the default disposition is fine */
        return 0;
}

static int group_teardown(void **state)
{
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
        if (system(cmd) != 0)
                return -1;
        if (created_user && system("userdel " TEST_USER) != 0)
                return -1;
        return 0;
}

static bool need_root(void)
{
        if (geteuid() == 0 && unprivileged_user)
                return true;
        print_message("[  SKIPPED ] needs root and an unprivileged user (nobody) to switch to\n");
        return false;
}

/* ---- labels ---- */

#define LABELS_MAX 80

typedef struct TestLabels {
        Labels labels;
        Label l[LABELS_MAX];
        Label *ptrs[LABELS_MAX];
} TestLabels;

/* key, value, key, value, ..., NULL */
static const Labels *make_labels(TestLabels *t, ...)
{
        va_list ap;
        const char *k;

        mesos__v1__labels__init(&t->labels);
        t->labels.labels = t->ptrs;
        va_start(ap, t);
        while ((k = va_arg(ap, const char *))) {
                size_t i = t->labels.n_labels++;
                assert_true(i < LABELS_MAX);
                mesos__v1__label__init(&t->l[i]);
                t->l[i].key = (char *)k;
                t->l[i].value = va_arg(ap, char *);
                t->ptrs[i] = &t->l[i];
        }
        va_end(ap);
        return &t->labels;
}

static int plan_for(SandboxPlan *p, const char *user, const Labels *labels, const SandboxOptions *o,
                    PacerError *err)
{
        int r;

        sandbox_plan_init(p);
        r = sandbox_plan_user(p, user, err);
        if (r >= 0)
                r = sandbox_plan_labels(p, labels, o, err);
        return r;
}

/* The plan must fail, with a message containing each of the NULL-terminated strings. */
static void expect_plan_error(const char *user, const Labels *labels, const SandboxOptions *o, ...)
{
        SandboxPlan p;
        PacerError err = { "" };
        va_list ap;
        const char *s;

        assert_true(plan_for(&p, user, labels, o, &err) < 0);
        assert_false(p.ready);
        va_start(ap, o);
        while ((s = va_arg(ap, const char *)))
                if (!strstr(err.msg, s))
                        fail_msg("error message \"%s\" does not contain \"%s\"", err.msg, s);
        va_end(ap);
        for (const char *c = err.msg; *c; c++)
                assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
        sandbox_plan_done(&p);
}

/* ---- running the probe ---- */

typedef struct Run {
        bool done;
        int start_error;
        char what[256];
        int wstatus;
        char stderr_path[PATH_MAX];
} Run;

static void on_started(TaskProcess *p, int error, const char *what, void *userdata)
{
        Run *run = userdata;

        run->start_error = error;
        snprintf(run->what, sizeof(run->what), "%s", what ? what : "");
        if (error < 0)
                run->done = true;
}

static void on_exited(TaskProcess *p, int wstatus, void *userdata)
{
        Run *run = userdata;

        run->wstatus = wstatus;
        run->done = true;
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
        fail_msg("the sandboxed program did not finish within %.0fs", RUN_TIMEOUT_S);
}

static char *read_all(const char *path)
{
        static char buf[OUTPUT_MAX];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_true(fd >= 0);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(n >= 0);
        buf[n] = 0;
        return strdup(buf);
}

/* Runs argv (the probe when argv[0] is NULL) under plan, through TaskProcess;
 * returns its stdout. */
static char *run_argv(const SandboxPlan *plan, char **argv, Run *run)
{
        struct ev_loop *loop = ev_default_loop(0);
        char out[PATH_MAX], errp[PATH_MAX];
        char *envp[] = { "PATH=/usr/bin:/bin", NULL };
        TaskProcessCallbacks cb = { .started = on_started, .exited = on_exited };
        TaskProcess *p = NULL;
        PacerError err = { "" };
        ev_timer timeout;

        *run = (Run){};
        snprintf(out, sizeof(out), "%s/out-%d", tmpdir, run_counter);
        snprintf(errp, sizeof(errp), "%s/err-%d", tmpdir, run_counter++);
        snprintf(run->stderr_path, sizeof(run->stderr_path), "%s", errp);
        if (!argv[0])
                argv[0] = probe;
        TaskSpawnOptions o = {
                .argv = argv,
                .envp = envp,
                .cwd = tmpdir,
                .stdout_path = out,
                .stderr_path = errp,
                .output_max = OUTPUT_MAX,
                .sandbox = plan,
        };
        if (task_process_spawn(loop, &o, &cb, run, &p, &err) < 0)
                fail_msg("task_process_spawn: %s", err.msg);
        ev_timer_init(&timeout, on_timeout, RUN_TIMEOUT_S, 0.);
        ev_timer_start(loop, &timeout);
        while (!run->done)
                ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &timeout);
        task_process_free(p);
        return read_all(out);
}

#define PROBE(plan, run, ...) run_argv((plan), (char *[]){ NULL, __VA_ARGS__, NULL }, (run))

/* Runs the probe and asserts it started and exited 0. */
static char *probe_ok(const SandboxPlan *plan, char **argv)
{
        Run run;
        char *out = run_argv(plan, argv, &run);

        if (run.start_error < 0)
                fail_msg("the probe did not start: %s: %s", run.what, strerror(-run.start_error));
        if (!WIFEXITED(run.wstatus) || WEXITSTATUS(run.wstatus) != 0)
                fail_msg("the probe ended with wait status 0x%x; output:\n%s\nstderr:\n%s",
                         (unsigned)run.wstatus, out, read_all(run.stderr_path));
        return out;
}

#define PROBE_OK(plan, ...) probe_ok((plan), (char *[]){ NULL, __VA_ARGS__, NULL })

/* The value after "key" on its line ("CapEff:\t0000" → "0000"), or "" when absent. */
static const char *field(const char *out, const char *key)
{
        static char buf[256];
        size_t kl = strlen(key);

        for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, key, kl) != 0 || (l[kl] != ' ' && l[kl] != '\t' && l[kl] != ':'))
                        continue;
                l += kl;
                while (*l == ':' || *l == ' ' || *l == '\t')
                        l++;
                size_t n = strcspn(l, "\n");
                snprintf(buf, sizeof(buf), "%.*s", (int)MIN(n, sizeof(buf) - 1), l);
                return buf;
        }
        return "";
}

#define assert_field(out, key, want)                                                                      \
        do {                                                                                              \
                const char *_got = field((out), (key));                                                   \
                if (strcmp(_got, (want)) != 0)                                                            \
                        fail_msg("%s: got \"%s\", want \"%s\"; output:\n%s", (key), _got, (want), (out)); \
        } while (0)

/* A number from our own /proc/self/status: hex for the Cap* sets, else decimal. */
static uint64_t own_status(const char *key)
{
        char *out = NULL, line[256];
        FILE *f = fopen("/proc/self/status", "re");
        uint64_t v = 0;

        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, strlen(key)) == 0)
                        v = strtoull(line + strlen(key), &out, strncmp(key, "Cap", 3) == 0 ? 16 : 10);
        fclose(f);
        return v;
}

static void hex16(uint64_t v, char buf[static 17])
{
        snprintf(buf, 17, "%016" PRIx64, v);
}

/* ---- names and parsers ---- */

static void test_names(void **state)
{
        for (int s = 0; s < _SANDBOX_STEP_MAX; s++)
                assert_string_not_equal(sandbox_step_to_string((SandboxStep)s), "unknown step");
        /* task.c numbers its own steps from 100 */
        assert_true(_SANDBOX_STEP_MAX <= 100);
        assert_string_equal(sandbox_step_to_string((SandboxStep)(SANDBOX_STEP_RLIMIT + RLIMIT_NOFILE)),
                            "setrlimit RLIMIT_NOFILE");
        assert_string_equal(sandbox_step_to_string(SANDBOX_STEP_SECCOMP), "installing the seccomp filter");
        assert_string_equal(sandbox_step_to_string(_SANDBOX_STEP_MAX), "unknown step");
        for (int p = 0; p < _SANDBOX_PROFILE_MAX; p++)
                assert_int_equal(sandbox_profile_from_string(sandbox_profile_to_string((SandboxProfile)p)),
                                 p);
        for (int l = 0; l < _SANDBOX_SECCOMP_LOG_MAX; l++)
                assert_int_equal(
                        sandbox_seccomp_log_from_string(sandbox_seccomp_log_to_string((SandboxSeccompLog)l)),
                        l);
        assert_int_equal(sandbox_profile_from_string("Default"), -EINVAL);
        assert_int_equal(sandbox_profile_from_string(""), -EINVAL);
        assert_int_equal(sandbox_seccomp_log_from_string("yes"), -EINVAL);
        assert_null(sandbox_profile_to_string(_SANDBOX_PROFILE_MAX));
}

static void test_parse_capabilities(void **state)
{
        PacerError err = { "" };
        uint64_t m = 1;

        assert_int_equal(sandbox_parse_capabilities("CAP_NET_BIND_SERVICE", "label x", &m, &err), 0);
        assert_int_equal(m, 1ULL << 10);
        assert_int_equal(
                sandbox_parse_capabilities("net_bind_service, kill ,Cap_Chown", "label x", &m, &err), 0);
        assert_int_equal(m, (1ULL << 10) | (1ULL << 5) | (1ULL << 0));
        assert_int_equal(sandbox_parse_capabilities("none", "label x", &m, &err), 0);
        assert_int_equal(m, 0);
        assert_int_equal(sandbox_parse_capabilities(SANDBOX_ROOT_CAPABILITIES_DEFAULT, "x", &m, &err), 0);
        assert_int_equal(__builtin_popcountll(m), 10);
        assert_false(m & (1ULL << 21)); /* never CAP_SYS_ADMIN by default */

        m = 7;
        assert_int_equal(sandbox_parse_capabilities("CAP_NET_BIND_SERVICE,CAP_FLY",
                                                    "label pacer.sandbox.capabilities", &m, &err),
                         -EINVAL);
        assert_int_equal(m, 7); /* untouched on error */
        assert_non_null(strstr(err.msg, "label pacer.sandbox.capabilities=CAP_NET_BIND_SERVICE,CAP_FLY"));
        assert_non_null(strstr(err.msg, "unknown capability 'CAP_FLY'"));
        /* numbers are capability numbers to libcap, but not names */
        assert_int_equal(sandbox_parse_capabilities("21", "label x", &m, &err), -EINVAL);
        assert_int_equal(sandbox_parse_capabilities("kill,,chown", "label x", &m, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "empty element"));
        assert_int_equal(sandbox_parse_capabilities("", "label x", &m, &err), -EINVAL);
        assert_int_equal(sandbox_parse_capabilities("none,kill", "label x", &m, &err), -EINVAL);
        assert_int_equal(sandbox_parse_capabilities("CAP_", "label x", &m, &err), -EINVAL);
        assert_int_equal(sandbox_parse_capabilities("cap_kill\n", "label x", &m, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "cap_kill?"));

        char big[SANDBOX_VALUE_MAX + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(sandbox_parse_capabilities(big, "label x", &m, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "longer than"));
}

static void test_parse_rlimit(void **state)
{
        PacerError err = { "" };
        struct rlimit l = { 1, 1 }, cur;

        assert_int_equal(sandbox_parse_rlimit("nofile", "1024", "label n", &l, &err), 0);
        assert_int_equal(l.rlim_cur, 1024);
        assert_int_equal(l.rlim_max, 1024);
        assert_int_equal(sandbox_parse_rlimit("nofile", "100:200", "label n", &l, &err), 0);
        assert_int_equal(l.rlim_cur, 100);
        assert_int_equal(l.rlim_max, 200);
        assert_int_equal(sandbox_parse_rlimit("core", "0", "label c", &l, &err), 0);
        assert_int_equal(l.rlim_max, 0);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &cur), 0);
        if (cur.rlim_max == RLIM_INFINITY) {
                assert_int_equal(sandbox_parse_rlimit("fsize", "4096:unlimited", "label f", &l, &err), 0);
                assert_int_equal(l.rlim_cur, 4096);
                assert_true(l.rlim_max == RLIM_INFINITY);
        }

        static const struct {
                const char *name, *value, *msg;
        } bad[] = {
                { "nofile", "-1", "expected soft[:hard]" },
                { "nofile", "abc", "expected soft[:hard]" },
                { "nofile", "", "expected soft[:hard]" },
                { "nofile", "1:2:3", "expected soft[:hard]" },
                { "nofile", " 100", "expected soft[:hard]" },
                { "nofile", "100:", "expected soft[:hard]" },
                { "nofile", "0x100", "expected soft[:hard]" },
                { "nofile", "99999999999999999999999", "expected soft[:hard]" },
                { "fsize", "9223372036854775808", "expected soft[:hard]" }, /* 2^63 */
                { "nofile", "200:100", "soft limit is above the hard limit" },
                { "nofile", "unlimited:100", "soft limit is above the hard limit" },
                { "nofile", "unlimited", "out of range" },
                { "nofile", "8", "out of range" },
                { "nofile", "100000000", "out of range" },
                { "nproc", "5000000", "out of range" },
                { "nproc", "0", "out of range" },
                { "cpu", "0", "out of range" },
                { "nice", "41", "out of range" },
                { "rtprio", "100", "out of range" },
                { "stack", "1024", "out of range" },
                { "nofiles", "10", "unknown resource limit 'nofiles'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char what[128], want[256];

                snprintf(what, sizeof(what), "label pacer.sandbox.rlimit.%s", bad[i].name);
                l = (struct rlimit){ 5, 5 };
                assert_true(sandbox_parse_rlimit(bad[i].name, bad[i].value, what, &l, &err) < 0);
                assert_int_equal(l.rlim_cur, 5);
                if (!strstr(err.msg, bad[i].msg))
                        fail_msg("%s=%s: message \"%s\" lacks \"%s\"", bad[i].name, bad[i].value, err.msg,
                                 bad[i].msg);
                snprintf(want, sizeof(want), "%s%s%s", what, bad[i].msg[0] == 'u' ? "" : "=",
                         bad[i].msg[0] == 'u' ? "" : bad[i].value);
                if (!strstr(err.msg, want))
                        fail_msg("message \"%s\" does not name \"%s\"", err.msg, want);
        }

        /* raising the hard limit needs CAP_SYS_RESOURCE, which may be missing even as root */
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &cur), 0);
        if (!(own_status("CapEff:") & (1ULL << 24)) && cur.rlim_max < 1024 * 1024) {
                char v[32];
                snprintf(v, sizeof(v), "%llu", (unsigned long long)cur.rlim_max + 1);
                assert_int_equal(
                        sandbox_parse_rlimit("nofile", v, "label pacer.sandbox.rlimit.nofile", &l, &err),
                        -EPERM);
                assert_non_null(strstr(err.msg, "CAP_SYS_RESOURCE"));
                assert_non_null(strstr(err.msg, v));
        }
}

static void test_label_errors(void **state)
{
        TestLabels t;
        SandboxOptions bad_flag = { .seccomp_profile = "paranoid" };

        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp", "paranoid", NULL), NULL,
                          "label pacer.sandbox.seccomp=paranoid", "no such seccomp profile", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp", "", NULL), NULL,
                          "label pacer.sandbox.seccomp=", "no such seccomp profile", NULL);
        expect_plan_error(NULL, NULL, &bad_flag, "--seccomp-profile=paranoid", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp.deny", "uname,no_such_call", NULL),
                          NULL, "label pacer.sandbox.seccomp.deny=uname,no_such_call",
                          "unknown system call 'no_such_call'", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp.deny", "uname,,getpid", NULL), NULL,
                          "unknown system call ''", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp.deny", "UNAME", NULL), NULL,
                          "unknown system call 'UNAME'", NULL);
        /* libseccomp knows syscalls by number too; a deny list is names */
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp.deny", "-1", NULL), NULL,
                          "unknown system call '-1'", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp.log", "verbose", NULL), NULL,
                          "label pacer.sandbox.seccomp.log=verbose", "expected off, denied or complain",
                          NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.capabilities", "CAP_FLY", NULL), NULL,
                          "label pacer.sandbox.capabilities=CAP_FLY", "unknown capability", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.rlimit.nofile", "-5", NULL), NULL,
                          "label pacer.sandbox.rlimit.nofile=-5", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.rlimit.nofiles", "5", NULL), NULL,
                          "unknown label pacer.sandbox.rlimit.nofiles", NULL);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccom", "strict", NULL), NULL,
                          "unknown label pacer.sandbox.seccom", NULL);
        expect_plan_error(
                NULL,
                make_labels(&t, "pacer.sandbox.seccomp", "strict", "pacer.sandbox.seccomp", "default", NULL),
                NULL, "label pacer.sandbox.seccomp is given twice", NULL);
        /* hostile bytes are not echoed back as they are */
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp", "\xff\x01\nx", NULL), NULL,
                          "label pacer.sandbox.seccomp=???x", NULL);
        expect_plan_error("no-such-user-for-pacer", NULL, NULL,
                          "user 'no-such-user-for-pacer' does not exist", "CommandInfo.user", NULL);
}

static void test_deny_list_limit(void **state)
{
        static const char *const names[] = { "uname", "getpid", "getppid", "gettid", "sync",  "brk",
                                             "time",  "alarm",  "pause",   "times",  "umask", "sysinfo" };
        char deny[4096] = "";
        TestLabels t;
        SandboxPlan p;
        PacerError err = { "" };
        int n = 0;

        /* syscall numbers from the native table, to reach the limit with distinct names */
        for (int nr = 0; n <= SANDBOX_DENY_MAX && nr < 512; nr++) {
                char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
                if (name) {
                        strcat(deny, n ? "," : "");
                        strcat(deny, name);
                        n++;
                }
                free(name);
        }
        assert_int_equal(n, SANDBOX_DENY_MAX + 1);
        expect_plan_error(NULL, make_labels(&t, "pacer.sandbox.seccomp.deny", deny, NULL), NULL,
                          "more than 64 system calls", NULL);

        /* duplicates are folded: a long list of the same few names is fine */
        deny[0] = 0;
        for (int i = 0; i < 2 * SANDBOX_DENY_MAX; i++) {
                strcat(deny, i ? "," : "");
                strcat(deny, names[i % ELEMENTSOF(names)]);
        }
        assert_int_equal(
                plan_for(&p, NULL, make_labels(&t, "pacer.sandbox.seccomp.deny", deny, NULL), NULL, &err),
                0);
        assert_non_null(p.filter);
        sandbox_plan_done(&p);
}

static void test_options_check(void **state)
{
        PacerError err = { "" };
        SandboxOptions good = { "strict", "denied", "CAP_KILL,net_bind_service" }, none = {};
        SandboxOptions bad_profile = { .seccomp_profile = "nope" }, bad_log = { .seccomp_log = "loud" },
                       bad_caps = { .capabilities = "CAP_KILL,CAP_FLY" };

        assert_int_equal(sandbox_options_check(&good, &err), 0);
        assert_int_equal(sandbox_options_check(&none, &err), 0);
        assert_int_equal(sandbox_options_check(&bad_profile, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "--seccomp-profile=nope"));
        assert_int_equal(sandbox_options_check(&bad_log, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "--seccomp-log=loud"));
        assert_int_equal(sandbox_options_check(&bad_caps, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "--capabilities=CAP_KILL,CAP_FLY"));
        assert_non_null(strstr(err.msg, "'CAP_FLY'"));
}

static long nr_open(void)
{
        FILE *f = fopen("/proc/sys/fs/nr_open", "re");
        long v = 1048576;

        if (f) {
                assert_int_equal(fscanf(f, "%ld", &v), 1);
                fclose(f);
        }
        return v;
}

/* What the plan should give by default: 65536 descriptors unless the executor cannot grant them. */
static rlim_t expected_nofile(void)
{
        struct rlimit cur;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &cur), 0);
        if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < SANDBOX_NOFILE_TARGET &&
            !((own_status("CapEff:") & (1ULL << 24)) && nr_open() >= SANDBOX_NOFILE_TARGET))
                return cur.rlim_max;
        return SANDBOX_NOFILE_TARGET;
}

/* What a root task keeps by default: the documented set, less what we do not hold. */
static uint64_t expected_root_caps(void)
{
        uint64_t m;

        assert_int_equal(sandbox_parse_capabilities(SANDBOX_ROOT_CAPABILITIES_DEFAULT, "x", &m, NULL), 0);
        return m & own_status("CapPrm:") & own_status("CapBnd:");
}

static void test_plan_defaults(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;
        SandboxOptions strict = { .seccomp_profile = "strict" }, logged = { .seccomp_log = "denied" };

        assert_int_equal(plan_for(&p, NULL, NULL, NULL, &err), 0);
        assert_true(p.ready);
        assert_int_equal(p.profile, SANDBOX_PROFILE_DEFAULT);
        assert_non_null(p.filter);
        assert_true(p.filter_len > 0 && p.filter_len <= BPF_MAXINSNS);
        assert_int_equal(p.seccomp_flags, 0);
        assert_true(p.rlimits[RLIMIT_CORE].set);
        assert_int_equal(p.rlimits[RLIMIT_CORE].limit.rlim_max, 0);
        assert_true(p.rlimits[RLIMIT_NOFILE].set);
        assert_int_equal(p.rlimits[RLIMIT_NOFILE].limit.rlim_cur, expected_nofile());
        assert_int_equal(p.rlimits[RLIMIT_NOFILE].limit.rlim_max, expected_nofile());
        assert_false(p.rlimits[RLIMIT_NPROC].set);
        assert_int_equal(p.caps, geteuid() == 0 ? expected_root_caps() : 0);
        assert_false(p.ambient);
        /* planning again replaces the filter (ASan sees a leak otherwise) */
        assert_int_equal(sandbox_plan_labels(&p, NULL, &strict, &err), 0);
        assert_int_equal(p.profile, SANDBOX_PROFILE_STRICT);
        assert_non_null(p.filter);
        sandbox_plan_done(&p);
        assert_null(p.filter);
        assert_false(p.ready);
        sandbox_plan_done(&p);

        /* a label wins over the flag */
        assert_int_equal(plan_for(&p, NULL, make_labels(&t, "pacer.sandbox.seccomp", "unconfined", NULL),
                                  &strict, &err),
                         0);
        assert_int_equal(p.profile, SANDBOX_PROFILE_UNCONFINED);
        assert_null(p.filter);
        sandbox_plan_done(&p);
        assert_int_equal(
                plan_for(&p, NULL,
                         make_labels(&t, "pacer.sandbox.seccomp", "unconfined", "pacer.sandbox.seccomp.deny",
                                     "uname", "other.label", "ignored", NULL),
                         NULL, &err),
                0);
        assert_non_null(p.filter);
        sandbox_plan_done(&p);
        assert_int_equal(plan_for(&p, NULL, NULL, &logged, &err), 0);
        assert_int_equal(p.seccomp_log, SANDBOX_SECCOMP_LOG_DENIED);
        assert_int_equal(p.seccomp_flags, SECCOMP_FILTER_FLAG_LOG);
        sandbox_plan_done(&p);

        /* a zeroed plan can be freed */
        SandboxPlan zero = {};
        sandbox_plan_done(&zero);
}

static void test_capability_the_executor_lacks(void **state)
{
        uint64_t held = own_status("CapPrm:") & own_status("CapBnd:");
        static const struct {
                int cap;
                const char *name;
        } candidates[] = { { 24, "CAP_SYS_RESOURCE" }, { 21, "CAP_SYS_ADMIN" }, { 16, "CAP_SYS_MODULE" } };
        TestLabels t;

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                if (held & (1ULL << candidates[i].cap))
                        continue;
                expect_plan_error(NULL,
                                  make_labels(&t, "pacer.sandbox.capabilities", candidates[i].name, NULL),
                                  NULL, "label pacer.sandbox.capabilities=", candidates[i].name,
                                  "the executor does not hold", NULL);
                return;
        }
        skip();
}

/* ---- in the sandbox ---- */

static void test_incomplete_plan_fails_with_step(void **state)
{
        SandboxPlan p;
        Run run;

        sandbox_plan_init(&p);
        free(PROBE(&p, &run, "status"));
        assert_int_equal(run.start_error, -EINVAL);
        assert_string_equal(run.what, "sandbox (incomplete plan)");
}

static void test_child_failure_names_step_and_errno(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        Run run;

        assert_int_equal(plan_for(&p, NULL, NULL, NULL, &err), 0);
        /* past what the kernel allows anyone: the child's setrlimit() fails */
        p.rlimits[RLIMIT_NOFILE].limit.rlim_cur = p.rlimits[RLIMIT_NOFILE].limit.rlim_max =
                (rlim_t)nr_open() + 1;
        free(PROBE(&p, &run, "status"));
        assert_int_equal(run.start_error, -EPERM);
        assert_string_equal(run.what, "setrlimit RLIMIT_NOFILE");
        sandbox_plan_done(&p);
}

static void assert_no_caps(const char *out)
{
        assert_field(out, "CapInh", "0000000000000000");
        assert_field(out, "CapPrm", "0000000000000000");
        assert_field(out, "CapEff", "0000000000000000");
        assert_field(out, "CapBnd", "0000000000000000");
        assert_field(out, "CapAmb", "0000000000000000");
}

static void test_user_switch_and_no_capabilities(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        char want[128];
        struct passwd *pw;
        gid_t groups[SANDBOX_GROUPS_MAX];
        int n = SANDBOX_GROUPS_MAX;

        if (!need_root())
                skip();
        pw = getpwnam(unprivileged_user);
        assert_non_null(pw);
        assert_int_equal(plan_for(&p, unprivileged_user, NULL, NULL, &err), 0);
        assert_true(p.switch_user);
        assert_false(p.root);

        char *out = PROBE_OK(&p, "status");
        snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_uid, pw->pw_uid, pw->pw_uid, pw->pw_uid);
        assert_field(out, "Uid", want);
        snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_gid, pw->pw_gid, pw->pw_gid, pw->pw_gid);
        assert_field(out, "Gid", want);
        /* the supplementary groups are the user's, not the executor's */
        assert_true(getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) >= 0);
        const char *g = field(out, "Groups");
        for (int i = 0; i < n; i++) {
                char id[16];
                snprintf(id, sizeof(id), "%u", groups[i]);
                assert_non_null(strstr(g, id));
        }
        assert_null(strstr(g, " 0 "));
        assert_true(strncmp(g, "0 ", 2) != 0);
        assert_no_caps(out);
        assert_field(out, "NoNewPrivs", "1");
        assert_field(out, "Seccomp", "2");
        free(out);

        /* and it cannot become root again */
        out = PROBE_OK(&p, "try", "setuid0");
        assert_field(out, "setuid0", "EPERM");
        free(out);
        sandbox_plan_done(&p);
}

static void test_root_task_keeps_the_default_set(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        char want[17];

        if (geteuid() != 0) {
                print_message("[  SKIPPED ] needs root\n");
                skip();
        }
        assert_int_equal(plan_for(&p, NULL, NULL, NULL, &err), 0);
        assert_true(p.root);
        char *out = PROBE_OK(&p, "status");
        hex16(expected_root_caps(), want);
        assert_field(out, "CapEff", want);
        assert_field(out, "CapPrm", want);
        assert_field(out, "CapBnd", want);
        /* an empty inheritable set: a non-root child cannot pick capabilities up from files */
        assert_field(out, "CapInh", "0000000000000000");
        assert_field(out, "CapAmb", "0000000000000000");
        assert_field(out, "NoNewPrivs", "1");
        assert_field(out, "Seccomp", "2");
        free(out);
        sandbox_plan_done(&p);

        /* "none" leaves a root task with nothing */
        TestLabels t;
        assert_int_equal(
                plan_for(&p, NULL, make_labels(&t, "pacer.sandbox.capabilities", "none", NULL), NULL, &err),
                0);
        out = PROBE_OK(&p, "status");
        assert_no_caps(out);
        free(out);
        sandbox_plan_done(&p);
}

static void test_nonroot_task_with_ambient_capability(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;

        if (!need_root())
                skip();
        if (!(own_status("CapPrm:") & own_status("CapBnd:") & (1ULL << 10)))
                skip();
        assert_int_equal(plan_for(&p, unprivileged_user,
                                  make_labels(&t, "pacer.sandbox.capabilities", "net_bind_service", NULL),
                                  NULL, &err),
                         0);
        assert_true(p.ambient);
        char *out = PROBE_OK(&p, "status");
        assert_field(out, "CapEff", "0000000000000400");
        assert_field(out, "CapPrm", "0000000000000400");
        assert_field(out, "CapInh", "0000000000000400");
        assert_field(out, "CapAmb", "0000000000000400");
        assert_field(out, "CapBnd", "0000000000000400");
        assert_field(out, "NoNewPrivs", "1");
        free(out);
        out = PROBE_OK(&p, "try", "setuid0");
        assert_field(out, "setuid0", "EPERM");
        free(out);
        sandbox_plan_done(&p);
}

static bool sysctl_is(const char *path, const char *value)
{
        char buf[32] = "";
        FILE *f = fopen(path, "re");

        if (!f)
                return false;
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = 0;
        fclose(f);
        buf[strcspn(buf, "\n")] = 0;
        return streq(buf, value);
}

/* What the default profile refuses, and what it must still allow. */
static void test_default_profile(void **state)
{
        static const char *const control[] = { "mount",        "umount2", "unshare-ns", "clone-newns",
                                               "clone-newnet", "keyctl",  "bpf",        "swapon",
                                               "setns",        "clone3",  "ptrace",     "personality-rie" };
        uint64_t held = own_status("CapPrm:") & own_status("CapBnd:");
        const uint64_t admin =
                (1ULL << 21) | (1ULL << 22) | (1ULL << 19); /* SYS_ADMIN, SYS_BOOT, SYS_PTRACE */
        bool root = geteuid() == 0 && (held & admin) == admin;
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;
        char *out;

        /* Control: with the privileges to do these things and no filter of the
         * task's own, the kernel answers something else than EPERM. So below,
         * with the same privileges, only the filter can be saying no. */
        if (root) {
                assert_int_equal(plan_for(&p, NULL,
                                          make_labels(&t, "pacer.sandbox.seccomp", "unconfined",
                                                      "pacer.sandbox.capabilities",
                                                      "CAP_SYS_ADMIN,CAP_SYS_BOOT,CAP_SYS_PTRACE", NULL),
                                          NULL, &err),
                                 0);
                out = PROBE_OK(&p, "try", "mount", "umount2", "unshare-ns", "clone-newns", "clone-newnet",
                               "keyctl", "bpf", "swapon", "setns", "clone3", "ptrace", "personality-rie");
                for (size_t i = 0; i < ELEMENTSOF(control); i++) {
                        const char *v = field(out, control[i]);
                        if (streq(control[i], "ptrace") &&
                            sysctl_is("/proc/sys/kernel/yama/ptrace_scope", "3"))
                                continue;
                        if (streq(v, "EPERM") || streq(v, "SIGSYS") || !*v)
                                fail_msg("control: %s gave \"%s\" without a task filter; output:\n%s",
                                         control[i], v, out);
                }
                free(out);
                sandbox_plan_done(&p);
                assert_int_equal(plan_for(&p, NULL,
                                          make_labels(&t, "pacer.sandbox.capabilities",
                                                      "CAP_SYS_ADMIN,CAP_SYS_BOOT,CAP_SYS_PTRACE", NULL),
                                          NULL, &err),
                                 0);
        } else {
                print_message(
                        "[     INFO ] not root with CAP_SYS_ADMIN: EPERM may come from the kernel as well\n");
                assert_int_equal(plan_for(&p, NULL, NULL, NULL, &err), 0);
        }

        out = PROBE_OK(&p, "try", "mount", "umount2", "unshare-user", "unshare-ns", "clone-newns",
                       "clone-newnet", "ptrace", "kexec_load", "keyctl", "bpf", "swapon", "setns",
                       "io_uring", "personality-rie", "personality-norandom-hi", "clone3", "fork",
                       "unshare-files", "personality-query", "personality-linux", "socket", "uname",
                       "getpid");
        static const char *const denied[] = { "mount",      "umount2",         "unshare-user",
                                              "unshare-ns", "clone-newns",     "clone-newnet",
                                              "ptrace",     "kexec_load",      "keyctl",
                                              "bpf",        "swapon",          "setns",
                                              "io_uring",   "personality-rie", "personality-norandom-hi" };
        for (size_t i = 0; i < ELEMENTSOF(denied); i++)
                assert_field(out, denied[i], "EPERM");
        /* clone3 cannot be checked for namespace flags: libc falls back to clone() */
        assert_field(out, "clone3", "ENOSYS");
        static const char *const allowed[] = {
                "fork",  "unshare-files", "personality-query", "personality-linux", "socket",
                "uname", "getpid"
        };
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                assert_field(out, allowed[i], "ok");
        free(out);

#if defined(__x86_64__)
        /* the 32-bit ABIs are not covered by the filter's numbers, so they kill */
        out = PROBE_OK(&p, "try", "i386", "x32");
        assert_field(out, "i386", "SIGSYS");
        assert_field(out, "x32", "SIGSYS");
        free(out);
#endif
        out = PROBE_OK(&p, "status");
        assert_field(out, "NoNewPrivs", "1");
        assert_field(out, "Seccomp", "2");
        free(out);
        sandbox_plan_done(&p);
}

static void test_strict_profile(void **state)
{
        const char *user = geteuid() == 0 ? unprivileged_user : NULL;
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;
        Run run;

        assert_int_equal(
                plan_for(&p, user, make_labels(&t, "pacer.sandbox.seccomp", "strict", NULL), NULL, &err), 0);
        char *out = PROBE_OK(&p, "try", "socket", "fork", "uname", "getpid", "personality-query",
                             "personality-linux", "unshare-files", "personality-rie", "keyctl", "ptrace",
                             "io_uring", "mount", "clone-newns", "bpf", "setns", "clone3");
        static const char *const allowed[] = {
                "socket",       "fork", "uname", "getpid", "personality-query", "personality-linux",
                "unshare-files"
        };
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                assert_field(out, allowed[i], "ok");
        static const char *const denied[] = { "personality-rie", "keyctl",      "ptrace", "io_uring",
                                              "mount",           "clone-newns", "bpf",    "setns" };
        for (size_t i = 0; i < ELEMENTSOF(denied); i++)
                assert_field(out, denied[i], "EPERM");
        assert_field(out, "clone3", "ENOSYS");
        free(out);

        /* an ordinary shell pipeline runs under it */
        out = run_argv(
                &p,
                (char *[]){ "/bin/sh", "-c",
                            "ls -l / >/dev/null && grep '^Seccomp:' /proc/self/status | tr -d ' \\t' && "
                            "echo done",
                            NULL },
                &run);
        assert_int_equal(run.start_error, 0);
        if (!WIFEXITED(run.wstatus) || WEXITSTATUS(run.wstatus) != 0)
                fail_msg("a shell under the strict profile ended with 0x%x: %s", (unsigned)run.wstatus, out);
        assert_non_null(strstr(out, "Seccomp:2\ndone\n"));
        free(out);
        sandbox_plan_done(&p);
}

static void test_custom_deny_list(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;
        char *out;

        assert_int_equal(plan_for(&p, NULL,
                                  make_labels(&t, "pacer.sandbox.seccomp", "unconfined",
                                              "pacer.sandbox.seccomp.deny", "uname", NULL),
                                  NULL, &err),
                         0);
        out = PROBE_OK(&p, "try", "uname", "getpid", "ptrace");
        assert_field(out, "uname", "EPERM");
        assert_field(out, "getpid", "ok");
        assert_field(out, "ptrace", "ok");
        free(out);
        sandbox_plan_done(&p);

        assert_int_equal(
                plan_for(&p, NULL,
                         make_labels(&t, "pacer.sandbox.seccomp.deny", " socket , uname,clone3", NULL), NULL,
                         &err),
                0);
        out = PROBE_OK(&p, "try", "socket", "uname", "clone3", "fork", "ptrace");
        assert_field(out, "socket", "EPERM");
        assert_field(out, "uname", "EPERM");
        assert_field(out, "clone3", "EPERM"); /* the user's deny wins over the profile's ENOSYS */
        assert_field(out, "fork", "ok");
        assert_field(out, "ptrace", "EPERM");
        free(out);
        sandbox_plan_done(&p);

        assert_int_equal(plan_for(&p, NULL,
                                  make_labels(&t, "pacer.sandbox.seccomp", "strict",
                                              "pacer.sandbox.seccomp.deny", "uname,unshare", NULL),
                                  NULL, &err),
                         0);
        out = PROBE_OK(&p, "try", "uname", "getpid", "unshare-files", "fork");
        assert_field(out, "uname", "EPERM");
        assert_field(out, "getpid", "ok");
        assert_field(out, "unshare-files", "EPERM");
        assert_field(out, "fork", "ok");
        free(out);
        sandbox_plan_done(&p);
}

static void test_seccomp_log_modes(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;
        char *out;

        /* complain: what the profile would deny is logged by the kernel, and allowed */
        assert_int_equal(plan_for(&p, NULL, make_labels(&t, "pacer.sandbox.seccomp.log", "complain", NULL),
                                  NULL, &err),
                         0);
        out = PROBE_OK(&p, "try", "ptrace", "personality-rie", "clone3");
        assert_field(out, "ptrace", "ok");
        assert_field(out, "personality-rie", "ok");
        assert_field(out, "clone3", "ok");
        free(out);
        out = PROBE_OK(&p, "status");
        assert_field(out, "Seccomp", "2");
        free(out);
        sandbox_plan_done(&p);

        /* denied: still denied (the kernel logs it) */
        assert_int_equal(
                plan_for(&p, NULL, make_labels(&t, "pacer.sandbox.seccomp.log", "denied", NULL), NULL, &err),
                0);
        out = PROBE_OK(&p, "try", "ptrace", "getpid");
        assert_field(out, "ptrace", "EPERM");
        assert_field(out, "getpid", "ok");
        free(out);
        sandbox_plan_done(&p);
}

static void test_unconfined_keeps_no_new_privs(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;
        char want[32];

        assert_int_equal(
                plan_for(&p, NULL, make_labels(&t, "pacer.sandbox.seccomp", "unconfined", NULL), NULL, &err),
                0);
        char *out = PROBE_OK(&p, "status");
        assert_field(out, "NoNewPrivs", "1");
        snprintf(want, sizeof(want), "%" PRIu64, own_status("Seccomp:")); /* 0, unless we run filtered */
        assert_field(out, "Seccomp", want);
        free(out);
        out = PROBE_OK(&p, "try", "ptrace");
        assert_field(out, "ptrace", "ok");
        free(out);
        sandbox_plan_done(&p);
}

/* "Max open files   100   200   files" → soft and hard as text */
static void assert_limit(const char *out, const char *name, const char *soft, const char *hard)
{
        char s[32], h[32];

        if (sscanf(field(out, name), "%31s %31s", s, h) != 2)
                fail_msg("no limit \"%s\" in:\n%s", name, out);
        if (!streq(s, soft) || !streq(h, hard))
                fail_msg("%s: got %s/%s, want %s/%s", name, s, h, soft, hard);
}

static void test_rlimits(void **state)
{
        SandboxPlan p;
        PacerError err = { "" };
        TestLabels t;
        struct rlimit cpu;
        char n[32];
        char *out;

        assert_int_equal(plan_for(&p, NULL, NULL, NULL, &err), 0);
        out = PROBE_OK(&p, "limits");
        snprintf(n, sizeof(n), "%llu", (unsigned long long)expected_nofile());
        assert_limit(out, "Max open files", n, n);
        assert_limit(out, "Max core file size", "0", "0");
        free(out);
        sandbox_plan_done(&p);

        assert_int_equal(getrlimit(RLIMIT_CPU, &cpu), 0);
        assert_int_equal(
                plan_for(&p, geteuid() == 0 ? unprivileged_user : NULL,
                         make_labels(&t, "pacer.sandbox.rlimit.nofile", "100:200",
                                     "pacer.sandbox.rlimit.core", "0:0", "pacer.sandbox.rlimit.nproc",
                                     "300:400", "pacer.sandbox.rlimit.fsize", "1048576",
                                     "pacer.sandbox.rlimit.cpu",
                                     cpu.rlim_max == RLIM_INFINITY ? "1000:unlimited" : "1", NULL),
                         NULL, &err),
                0);
        out = PROBE_OK(&p, "limits");
        assert_limit(out, "Max open files", "100", "200");
        assert_limit(out, "Max core file size", "0", "0");
        assert_limit(out, "Max processes", "300", "400");
        assert_limit(out, "Max file size", "1048576", "1048576");
        if (cpu.rlim_max == RLIM_INFINITY)
                assert_limit(out, "Max cpu time", "1000", "unlimited");
        free(out);
        sandbox_plan_done(&p);
}

/* ---- the hardened executor ---- */

typedef struct SimpleChild {
        const SandboxPlan *p;
        char **argv;
        int out;
} SimpleChild;

static int simple_child(void *arg)
{
        const SimpleChild *c = arg;
        SandboxStep step;

        dup2(c->out, STDOUT_FILENO);
        if (c->p && sandbox_apply(c->p, &step) < 0)
                _exit(126);
        execv(c->argv[0], c->argv);
        _exit(127);
}

/* sandbox_apply + exec without cmocka or an event loop, for use in a forked
 * child: through the spawner once it runs (a hardened executor cannot fork),
 * else by fork. The output of argv goes into out. Returns the wait status. */
static int spawn_simple(const SandboxPlan *p, char **argv, char *out, size_t size)
{
        static char stack[256 * 1024] __attribute__((aligned(16)));
        int fds[2], status = -1;
        size_t len = 0;
        ssize_t n;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -1;
        SimpleChild c = { .p = p, .argv = argv, .out = fds[1] };
        if (spawner_running())
                pid = spawner_clone(simple_child, stack + sizeof(stack), &c);
        else if ((pid = fork()) == 0)
                simple_child(&c);
        if (pid < 0)
                return -1;
        close(fds[1]);
        while (len + 1 < size && (n = read(fds[0], out + len, size - len - 1)) > 0)
                len += (size_t)n;
        out[len] = 0;
        close(fds[0]);
        waitpid(pid, &status, 0);
        return status;
}

/* Runs f with stderr going into out; returns what f returned, errno in *ret_errno. */
static int with_stderr_captured(int (*f)(void), int *ret_errno, char *out, size_t size)
{
        int fds[2], saved = dup(STDERR_FILENO), r;
        ssize_t n;

        if (saved < 0 || pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -2;
        dup2(fds[1], STDERR_FILENO);
        r = f();
        *ret_errno = errno;
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fds[1]);
        n = read(fds[0], out, size - 1);
        out[n > 0 ? n : 0] = 0;
        close(fds[0]);
        return r;
}

static int try_execve(void)
{
        return execve("/bin/true", (char *[]){ "true", NULL }, environ);
}

static int try_fork(void)
{
        pid_t pid = fork();
        if (pid == 0)
                _exit(0);
        return pid < 0 ? -1 : (waitpid(pid, NULL, 0), 0);
}

/* The checks, in the hardened child; returns the number of the first that failed. */
static int hardened_checks(void)
{
        static char out[OUTPUT_MAX];
        uint64_t filters = own_status("Seccomp_filters:");
        PacerError err = { "" };
        SandboxPlan p;
        TestLabels t;
        char want[64];
        int fd, status, e = 0;

        if (sandbox_harden_floor(&err) < 0 || spawner_start() < 0 || sandbox_harden_executor(&err) < 0) {
                fprintf(stderr, "hardening: %s\n", err.msg);
                return 1;
        }
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 || own_status("Seccomp:") != 2 ||
            own_status("Seccomp_filters:") != filters + 2)
                return 2;
        /* what no process under the executor may do: the floor says EPERM, the allow-list ENOSYS,
         * and the stricter answer wins */
        if (swapon("/nonexistent/pacer-test", 0) == 0 || errno != ENOSYS)
                return 3;
        if (syscall(SYS_kexec_load, 0UL, 1000000UL, NULL, 0UL) == 0 || errno != ENOSYS)
                return 4;
        /* what the executor itself may not do: start programs, fork, mount; and it says so */
        if (with_stderr_captured(try_execve, &e, out, sizeof(out)) != -1 || e != ENOSYS ||
            !strstr(out, "pacer-executor: system call 59 is not in the executor's seccomp allow-list")) {
                fprintf(stderr, "hardened: execve gave errno %d and said: %s\n", e, out);
                return 5;
        }
        if (with_stderr_captured(try_fork, &e, out, sizeof(out)) != -1 || e != ENOSYS)
                return 6;
        if (mount("none", "/nonexistent", "tmpfs", 0, NULL) == 0 || errno != ENOSYS)
                return 7;
#ifndef __SANITIZE_ADDRESS__ /* LeakSanitizer needs ptrace: allowed there */
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 || errno != ENOSYS)
                return 8;
#endif
        /* what it does all day */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ||
            (errno != ECONNREFUSED && errno != EINPROGRESS))
                return 9;
        close(fd);
        fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, out, sizeof(out)) <= 0 || close(fd) < 0)
                return 10;

        /* a task still starts, through the spawner: under the floor and its own filter, not under
         * the executor's allow-list */
        sandbox_plan_init(&p);
        if (sandbox_plan_user(&p, geteuid() == 0 ? unprivileged_user : NULL, &err) < 0 ||
            sandbox_plan_labels(&p, NULL, NULL, &err) < 0) {
                fprintf(stderr, "planning when hardened: %s\n", err.msg);
                return 11;
        }
        status = spawn_simple(&p, (char *[]){ probe, "status", NULL }, out, sizeof(out));
        snprintf(want, sizeof(want), "Seccomp_filters:\t%" PRIu64 "\n", filters + 2);
        if (status != 0 || !strstr(out, "Seccomp:\t2\n") || !strstr(out, want)) {
                fprintf(stderr, "hardened: task status 0x%x:\n%s", (unsigned)status, out);
                return 12;
        }
        status = spawn_simple(&p, (char *[]){ probe, "try", "fork", "socket", "i386", NULL }, out,
                              sizeof(out));
        if (status != 0 || !strstr(out, "fork ok\n") || !strstr(out, "socket ok\n")
#if defined(__x86_64__)
            || !strstr(out, "i386 SIGSYS\n")
#endif
        ) {
                fprintf(stderr, "hardened: task try 0x%x:\n%s", (unsigned)status, out);
                return 13;
        }
        sandbox_plan_done(&p);

        /* an unconfined task is still under the executor's floor */
        if (sandbox_plan_user(&p, NULL, &err) < 0 ||
            sandbox_plan_labels(&p, make_labels(&t, "pacer.sandbox.seccomp", "unconfined", NULL), NULL,
                                &err) < 0)
                return 14;
        status = spawn_simple(&p, (char *[]){ probe, "try", "swapon", "ptrace", "i386", NULL }, out,
                              sizeof(out));
        if (status != 0 || !strstr(out, "swapon EPERM\n") || !strstr(out, "ptrace ok\n")
#if defined(__x86_64__)
            || !strstr(out, "i386 SIGSYS\n")
#endif
        ) {
                fprintf(stderr, "hardened: unconfined task 0x%x:\n%s", (unsigned)status, out);
                return 15;
        }
        sandbox_plan_done(&p);
        return 0;
}

static void test_harden_self(void **state)
{
        int status;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(hardened_checks());
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("the hardened child failed check %d (wait status 0x%x)",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1, (unsigned)status);
        /* and we, the parent, are not affected */
        assert_int_equal(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
}

/* A filter compiled ahead is the program the plan would compile, and only for plans that ask for
 * nothing else. (Last: it leaves the ahead-of-time filter in place for the process.) */
static void test_prebuilt_filter_is_the_compiled_one(void **state)
{
        SandboxOptions defaults = { .seccomp_profile = "default", .seccomp_log = "off" };
        SandboxOptions strict = { .seccomp_profile = "strict", .seccomp_log = "off" };
        _cleanup_(sandbox_plan_done) SandboxPlan fresh = {}, ahead = {}, deny = {}, deny_fresh = {},
                                                 other = {}, other_fresh = {};
        PacerError err = { "" };
        TestLabels t;

        assert_int_equal(plan_for(&fresh, NULL, make_labels(&t, NULL), &defaults, &err), 0);
        assert_int_equal(plan_for(&deny_fresh, NULL,
                                  make_labels(&t, "pacer.sandbox.seccomp.deny", "uname", NULL), &defaults,
                                  &err),
                         0);
        assert_int_equal(plan_for(&other_fresh, NULL, make_labels(&t, NULL), &strict, &err), 0);

        assert_int_equal(sandbox_prebuild(&defaults, &err), 0);
        assert_int_equal(plan_for(&ahead, NULL, make_labels(&t, NULL), &defaults, &err), 0);
        assert_int_equal(ahead.filter_len, fresh.filter_len);
        assert_memory_equal(ahead.filter, fresh.filter, fresh.filter_len * sizeof(*fresh.filter));
        assert_ptr_not_equal(ahead.filter, fresh.filter);

        /* a task that denies more, or another profile, gets its own program */
        assert_int_equal(plan_for(&deny, NULL, make_labels(&t, "pacer.sandbox.seccomp.deny", "uname", NULL),
                                  &defaults, &err),
                         0);
        assert_int_equal(deny.filter_len, deny_fresh.filter_len);
        assert_memory_equal(deny.filter, deny_fresh.filter, deny.filter_len * sizeof(*deny.filter));
        assert_true(deny.filter_len != fresh.filter_len ||
                    memcmp(deny.filter, fresh.filter, fresh.filter_len * sizeof(*fresh.filter)) != 0);
        assert_int_equal(plan_for(&other, NULL, make_labels(&t, NULL), &strict, &err), 0);
        assert_int_equal(other.filter_len, other_fresh.filter_len);
        assert_memory_equal(other.filter, other_fresh.filter, other.filter_len * sizeof(*other.filter));

        /* a bad option is reported, as the plan would */
        SandboxOptions bad = { .seccomp_profile = "paranoid" };
        assert_true(sandbox_prebuild(&bad, &err) < 0);
        assert_non_null(strstr(err.msg, "paranoid"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_parse_capabilities),
                cmocka_unit_test(test_parse_rlimit),
                cmocka_unit_test(test_label_errors),
                cmocka_unit_test(test_deny_list_limit),
                cmocka_unit_test(test_options_check),
                cmocka_unit_test(test_plan_defaults),
                cmocka_unit_test(test_capability_the_executor_lacks),
                cmocka_unit_test(test_incomplete_plan_fails_with_step),
                cmocka_unit_test(test_child_failure_names_step_and_errno),
                cmocka_unit_test(test_user_switch_and_no_capabilities),
                cmocka_unit_test(test_root_task_keeps_the_default_set),
                cmocka_unit_test(test_nonroot_task_with_ambient_capability),
                cmocka_unit_test(test_default_profile),
                cmocka_unit_test(test_strict_profile),
                cmocka_unit_test(test_custom_deny_list),
                cmocka_unit_test(test_seccomp_log_modes),
                cmocka_unit_test(test_unconfined_keeps_no_new_privs),
                cmocka_unit_test(test_rlimits),
                cmocka_unit_test(test_harden_self),
                cmocka_unit_test(test_prebuilt_filter_is_the_compiled_one),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
