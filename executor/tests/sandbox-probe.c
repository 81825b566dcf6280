/* SPDX-License-Identifier: Apache-2.0 */
/* A program for test-sandbox to run inside the sandbox: it reports what the
 * kernel says it is (`status`, `limits`) and what it may do (`try NAME...`,
 * each attempt in a child of its own so one cannot change the next). Output
 * is one "key value" line per fact, for the test to parse. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MISSING_PATH "/nonexistent/pacer-sandbox-probe"

static void dump(const char *path, const char *const *keys)
{
        char line[512];
        FILE *f = fopen(path, "re");

        if (!f) {
                printf("error %s %s\n", path, strerrorname_np(errno));
                return;
        }
        while (fgets(line, sizeof(line), f)) {
                for (const char *const *k = keys; !*keys || *k; k++) {
                        if (!*keys || strncmp(line, *k, strlen(*k)) == 0) {
                                fputs(line, stdout);
                                break;
                        }
                }
        }
        fclose(f);
}

static long raw_clone(unsigned long flags)
{
        long r = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
        if (r == 0)
                _exit(0);
        if (r > 0)
                waitpid((pid_t)r, NULL, 0);
        return r < 0 ? -1 : 0;
}

static long try_clone3(void)
{
        struct clone_args a = { .exit_signal = SIGCHLD };
        long r = syscall(SYS_clone3, &a, sizeof(a));
        if (r == 0)
                _exit(0);
        if (r > 0)
                waitpid((pid_t)r, NULL, 0);
        return r < 0 ? -1 : 0;
}

static long try_fork(void)
{
        pid_t pid = fork();
        if (pid == 0)
                _exit(0);
        if (pid > 0)
                waitpid(pid, NULL, 0);
        return pid < 0 ? -1 : 0;
}

/* A system call through the i386 ABI (int 0x80): getpid is 20 there. */
static long try_i386(void)
{
#if defined(__x86_64__)
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        return r == getpid() ? 0 : (errno = (int)-r, -1);
#else
        errno = EOPNOTSUPP;
        return -1;
#endif
}

/* The x32 ABI shares x86_64's audit arch; its numbers have bit 30 set. */
static long try_x32(void)
{
#if defined(__x86_64__)
        return syscall(0x40000000L | SYS_getpid) < 0 ? -1 : 0;
#else
        errno = EOPNOTSUPP;
        return -1;
#endif
}

static long attempt(const char *name)
{
        struct utsname u;

        if (!strcmp(name, "mount"))
                return mount("none", MISSING_PATH, "tmpfs", 0, NULL);
        if (!strcmp(name, "umount2"))
                return umount2(MISSING_PATH, 0);
        if (!strcmp(name, "unshare-user"))
                return unshare(CLONE_NEWUSER);
        if (!strcmp(name, "unshare-ns"))
                return unshare(CLONE_NEWNS);
        if (!strcmp(name, "unshare-files"))
                return unshare(CLONE_FILES);
        if (!strcmp(name, "clone-newns"))
                return raw_clone(CLONE_NEWNS);
        if (!strcmp(name, "clone-newnet"))
                return raw_clone(CLONE_NEWNET);
        if (!strcmp(name, "clone3"))
                return try_clone3();
        if (!strcmp(name, "fork"))
                return try_fork();
        if (!strcmp(name, "ptrace"))
                return ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        if (!strcmp(name, "kexec_load")) /* too many segments: nothing is ever loaded */
                return syscall(SYS_kexec_load, 0UL, 1000000UL, NULL, 0UL);
        if (!strcmp(name, "keyctl")) /* KEYCTL_GET_KEYRING_ID of the session keyring */
                return syscall(SYS_keyctl, 0, -3, 0);
        if (!strcmp(name, "bpf"))
                return syscall(SYS_bpf, -1, NULL, 0);
        if (!strcmp(name, "swapon"))
                return swapon(MISSING_PATH, 0);
        if (!strcmp(name, "setns"))
                return setns(-1, 0);
        if (!strcmp(name, "io_uring"))
                return syscall(SYS_io_uring_setup, 1, NULL);
        if (!strcmp(name, "personality-query"))
                return personality(0xffffffff) < 0 ? -1 : 0;
        if (!strcmp(name, "personality-linux"))
                return personality(PER_LINUX) < 0 ? -1 : 0;
        if (!strcmp(name, "personality-rie"))
                return personality(READ_IMPLIES_EXEC) < 0 ? -1 : 0;
        if (!strcmp(name, "personality-norandom-hi")) /* bit 31 set, as a filter bypass attempt */
                return personality(ADDR_NO_RANDOMIZE | 0x80000000u) < 0 ? -1 : 0;
        if (!strcmp(name, "socket")) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                return fd < 0 ? -1 : close(fd);
        }
        if (!strcmp(name, "uname"))
                return uname(&u);
        if (!strcmp(name, "getpid"))
                return syscall(SYS_getpid) > 0 ? 0 : -1;
        if (!strcmp(name, "setuid0"))
                return setuid(0);
        if (!strcmp(name, "i386"))
                return try_i386();
        if (!strcmp(name, "x32"))
                return try_x32();
        errno = EINVAL;
        return -1;
}

/* Runs one attempt in a child and prints "name ok", "name EPERM" or "name SIGSYS". */
static void try(const char *name)
{
        int fds[2], status, e = 0;
        pid_t pid;

        fflush(stdout);
        if (pipe(fds) < 0 || (pid = fork()) < 0) {
                printf("%s probe-failed\n", name);
                return;
        }
        if (pid == 0) {
                close(fds[0]);
                e = attempt(name) < 0 ? errno : 0;
                if (write(fds[1], &e, sizeof(e)) != sizeof(e))
                        _exit(1);
                _exit(0);
        }
        close(fds[1]);
        if (read(fds[0], &e, sizeof(e)) != sizeof(e))
                e = -1;
        close(fds[0]);
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status))
                printf("%s SIG%s\n", name, sigabbrev_np(WTERMSIG(status)));
        else if (e < 0)
                printf("%s probe-failed\n", name);
        else
                printf("%s %s\n", name, e ? strerrorname_np(e) : "ok");
}

int main(int argc, char **argv)
{
        static const char *const status_keys[] = { "Uid:",        "Gid:",     "Groups:",          "Cap",
                                                   "NoNewPrivs:", "Seccomp:", "Seccomp_filters:", NULL };
        static const char *const all[] = { NULL };

        if (argc >= 2 && !strcmp(argv[1], "status")) {
                dump("/proc/self/status", status_keys);
                return 0;
        }
        if (argc >= 2 && !strcmp(argv[1], "limits")) {
                dump("/proc/self/limits", all);
                return 0;
        }
        if (argc >= 2 && !strcmp(argv[1], "try")) {
                for (int i = 2; i < argc; i++)
                        try(argv[i]);
                return 0;
        }
        fprintf(stderr, "usage: sandbox-probe status | limits | try NAME...\n");
        return 2;
}
