/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox.h"

#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "macro.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* Flags that make clone()/unshare() create a namespace. CLONE_NEWTIME shares
 * its bit with clone()'s exit-signal byte, so it is checked for unshare() only. */
#define CLONE_NS_FLAGS                                                                                \
        (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
         CLONE_NEWNET)
#define UNSHARE_NS_FLAGS (CLONE_NS_FLAGS | CLONE_NEWTIME)

#define CAPS_MAX         64 /* capset(2) version 3 carries 64 bits */
#define CAP_NAME_MAX     32
#define SYSCALL_NAME_MAX 64
#define QUOTE_MAX        64 /* bytes of a bad value echoed back in an error */
#define NR_OPEN_FALLBACK 1048576
#define RLIMIT_VALUE_MAX ((uint64_t)INT64_MAX)

/* ---- names ---- */

static const char *const step_names[_SANDBOX_STEP_MAX] = {
        [SANDBOX_STEP_PLAN] = "sandbox (incomplete plan)",
        [SANDBOX_STEP_CAP_BOUNDING] = "dropping capabilities from the bounding set",
        [SANDBOX_STEP_KEEPCAPS] = "prctl(PR_SET_KEEPCAPS)",
        [SANDBOX_STEP_USER_GROUPS] = "setgroups",
        [SANDBOX_STEP_USER_GID] = "setgid",
        [SANDBOX_STEP_USER_UID] = "setuid",
        [SANDBOX_STEP_USER_VERIFY] = "verify user switch",
        [SANDBOX_STEP_CAPS] = "capset",
        [SANDBOX_STEP_CAP_AMBIENT] = "setting ambient capabilities",
        [SANDBOX_STEP_CAP_VERIFY] = "verify capabilities",
        [SANDBOX_STEP_NO_NEW_PRIVS] = "prctl(PR_SET_NO_NEW_PRIVS)",
        [SANDBOX_STEP_SECCOMP] = "installing the seccomp filter",
};

static const char *const profile_names[_SANDBOX_PROFILE_MAX] = {
        [SANDBOX_PROFILE_DEFAULT] = "default",
        [SANDBOX_PROFILE_STRICT] = "strict",
        [SANDBOX_PROFILE_UNCONFINED] = "unconfined",
};

static const char *const seccomp_log_names[_SANDBOX_SECCOMP_LOG_MAX] = {
        [SANDBOX_SECCOMP_LOG_OFF] = "off",
        [SANDBOX_SECCOMP_LOG_DENIED] = "denied",
        [SANDBOX_SECCOMP_LOG_COMPLAIN] = "complain",
};

/* The resource limits a label may set: pacer.sandbox.rlimit.<name>. A number
 * outside [min, max] is refused as absurd; max 0 means RLIMIT_VALUE_MAX. */
typedef struct RlimitInfo {
        const char *name;
        int resource;
        const char *step;
        uint64_t min, max;
} RlimitInfo;

static const RlimitInfo rlimit_table[] = {
        { "as", RLIMIT_AS, "setrlimit RLIMIT_AS", 16u << 20, 0 },
        { "core", RLIMIT_CORE, "setrlimit RLIMIT_CORE", 0, 0 },
        { "cpu", RLIMIT_CPU, "setrlimit RLIMIT_CPU", 1, 0 },
        { "data", RLIMIT_DATA, "setrlimit RLIMIT_DATA", 0, 0 },
        { "fsize", RLIMIT_FSIZE, "setrlimit RLIMIT_FSIZE", 0, 0 },
        { "locks", RLIMIT_LOCKS, "setrlimit RLIMIT_LOCKS", 0, 0 },
        { "memlock", RLIMIT_MEMLOCK, "setrlimit RLIMIT_MEMLOCK", 0, 0 },
        { "msgqueue", RLIMIT_MSGQUEUE, "setrlimit RLIMIT_MSGQUEUE", 0, 0 },
        { "nice", RLIMIT_NICE, "setrlimit RLIMIT_NICE", 0, 40 },
        { "nofile", RLIMIT_NOFILE, "setrlimit RLIMIT_NOFILE", SANDBOX_NOFILE_MIN, 0 /* fs.nr_open */ },
        { "nproc", RLIMIT_NPROC, "setrlimit RLIMIT_NPROC", 1, SANDBOX_NPROC_MAX },
        { "rss", RLIMIT_RSS, "setrlimit RLIMIT_RSS", 0, 0 },
        { "rtprio", RLIMIT_RTPRIO, "setrlimit RLIMIT_RTPRIO", 0, 99 },
        { "rttime", RLIMIT_RTTIME, "setrlimit RLIMIT_RTTIME", 0, 0 },
        { "sigpending", RLIMIT_SIGPENDING, "setrlimit RLIMIT_SIGPENDING", 0, 0 },
        { "stack", RLIMIT_STACK, "setrlimit RLIMIT_STACK", 16u << 10, 0 },
};

const char *sandbox_step_to_string(SandboxStep s)
{
        if (s >= SANDBOX_STEP_RLIMIT && s <= SANDBOX_STEP_RLIMIT_LAST) {
                for (size_t i = 0; i < ELEMENTSOF(rlimit_table); i++)
                        if (rlimit_table[i].resource == (int)(s - SANDBOX_STEP_RLIMIT))
                                return rlimit_table[i].step;
                return "setrlimit";
        }
        return s >= 0 && s < _SANDBOX_STEP_MAX && step_names[s] ? step_names[s] : "unknown step";
}

static int lookup(const char *const *table, int n, const char *s)
{
        for (int i = 0; s && i < n; i++)
                if (table[i] && streq(table[i], s))
                        return i;
        return -EINVAL;
}

const char *sandbox_profile_to_string(SandboxProfile p)
{
        return p >= 0 && p < _SANDBOX_PROFILE_MAX ? profile_names[p] : NULL;
}

SandboxProfile sandbox_profile_from_string(const char *s)
{
        return (SandboxProfile)lookup(profile_names, _SANDBOX_PROFILE_MAX, s);
}

const char *sandbox_seccomp_log_to_string(SandboxSeccompLog l)
{
        return l >= 0 && l < _SANDBOX_SECCOMP_LOG_MAX ? seccomp_log_names[l] : NULL;
}

SandboxSeccompLog sandbox_seccomp_log_from_string(const char *s)
{
        return (SandboxSeccompLog)lookup(seccomp_log_names, _SANDBOX_SECCOMP_LOG_MAX, s);
}

/* A bad value as it goes into an error message, which ends up in a
 * TaskStatus: printable ASCII only, and not too long. */
static const char *quote(const char *v, char buf[static QUOTE_MAX + 4])
{
        size_t i = 0;

        for (; v[i] && i < QUOTE_MAX; i++)
                buf[i] = (unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7f ? v[i] : '?';
        strcpy(buf + i, v[i] ? "..." : "");
        return buf;
}

/* ---- the executor's own privileges (read before fork, in the parent) ---- */

typedef struct OwnCaps {
        uint64_t permitted, effective, bounding;
        int last;
} OwnCaps;

static int cap_last_cap(void)
{
        int c;

        for (c = 0; c < CAPS_MAX; c++)
                if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) < 0)
                        break;
        return c - 1;
}

static int own_caps(OwnCaps *ret)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {};
        OwnCaps c = { .last = cap_last_cap() };

        if (syscall(SYS_capget, &h, d) < 0)
                return negative_errno();
        c.permitted = (uint64_t)d[1].permitted << 32 | d[0].permitted;
        c.effective = (uint64_t)d[1].effective << 32 | d[0].effective;
        for (int i = 0; i <= c.last; i++)
                if (prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0) == 1)
                        c.bounding |= 1ULL << i;
        *ret = c;
        return 0;
}

static bool have_cap(int cap)
{
        OwnCaps c;
        return own_caps(&c) >= 0 && (c.effective & (1ULL << cap));
}

/* "CAP_SYS_ADMIN" for the lowest capability in mask. */
static const char *cap_name(uint64_t mask, char buf[static CAP_NAME_MAX + 8])
{
        int cap = __builtin_ctzll(mask);
        char *n = cap_to_name(cap);

        snprintf(buf, CAP_NAME_MAX + 8, "%s", n ? n : "?");
        cap_free(n);
        for (char *s = buf; *s; s++)
                *s = (char)toupper((unsigned char)*s);
        if (!strneq(buf, "CAP_", 4))
                snprintf(buf, CAP_NAME_MAX + 8, "capability %d", cap);
        return buf;
}

/* ---- options and labels ---- */

/* Splits a comma-separated list in place: the next element with spaces
 * trimmed, or NULL at the end. An empty element is returned as "". */
static char *next_element(char **cursor)
{
        char *s = *cursor, *end;

        if (!s)
                return NULL;
        end = strchr(s, ',');
        *cursor = end ? end + 1 : NULL;
        if (end)
                *end = 0;
        while (*s == ' ' || *s == '\t')
                s++;
        end = s + strlen(s);
        while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = 0;
        return s;
}

int sandbox_parse_capabilities(const char *s, const char *what, uint64_t *ret, PacerError *err)
{
        _cleanup_free_ char *copy = NULL;
        char q[QUOTE_MAX + 4], *cursor, *e;
        uint64_t mask = 0;

        if (!s)
                return -EINVAL;
        if (strlen(s) > SANDBOX_VALUE_MAX)
                return pacer_error_set(err, EINVAL, "%s: value longer than %d characters", what,
                                       SANDBOX_VALUE_MAX);
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        cursor = copy;
        e = next_element(&cursor);
        if (e && streq(e, "none") && !cursor) {
                *ret = 0;
                return 0;
        }
        for (; e; e = next_element(&cursor)) {
                char name[CAP_NAME_MAX + 8] = "cap_";
                const char *bare = strncasecmp(e, "cap_", 4) == 0 ? e + 4 : e;
                size_t len = strlen(bare);
                bool ok = len > 0 && len <= CAP_NAME_MAX;
                cap_value_t v;

                if (!*e)
                        return pacer_error_set(
                                err, EINVAL,
                                "%s=%s: empty element in the list (use \"none\" for no capabilities)", what,
                                quote(s, q));
                for (size_t i = 0; ok && i < len; i++) {
                        ok = isalpha((unsigned char)bare[i]) || bare[i] == '_';
                        name[4 + i] = (char)tolower((unsigned char)bare[i]);
                }
                if (ok)
                        name[4 + len] = 0;
                /* cap_from_name() also takes numbers; a name is what the docs promise */
                if (!ok || cap_from_name(name, &v) < 0 || v < 0 || v >= CAPS_MAX)
                        return pacer_error_set(err, EINVAL, "%s=%s: unknown capability '%s'", what,
                                               quote(s, q), quote(e, (char[QUOTE_MAX + 4]){}));
                mask |= 1ULL << v;
        }
        *ret = mask;
        return 0;
}

/* The kernel's ceiling on RLIMIT_NOFILE (sysctl fs.nr_open). */
static long nr_open(void)
{
        _cleanup_close_ int fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC);
        char buf[32];
        ssize_t n;
        long v;

        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n <= 0)
                return NR_OPEN_FALLBACK;
        buf[n] = 0;
        v = strtol(buf, NULL, 10);
        return v > 0 ? v : NR_OPEN_FALLBACK;
}

static const RlimitInfo *rlimit_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(rlimit_table); i++)
                if (streq(rlimit_table[i].name, name))
                        return &rlimit_table[i];
        return NULL;
}

/* One side of "soft:hard": a decimal number or "unlimited". */
static int parse_limit(const char *s, size_t len, rlim_t *ret)
{
        uint64_t v = 0;

        if (len == STRLEN("unlimited") && strneq(s, "unlimited", len)) {
                *ret = RLIM_INFINITY;
                return 0;
        }
        if (len == 0 || len > 20)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        if (v > RLIMIT_VALUE_MAX)
                return -ERANGE;
        *ret = (rlim_t)v;
        return 0;
}

int sandbox_parse_rlimit(const char *name, const char *value, const char *what, struct rlimit *ret,
                         PacerError *err)
{
        const RlimitInfo *info = rlimit_find(name);
        const char *colon;
        struct rlimit l, cur;
        char q[QUOTE_MAX + 4];
        uint64_t max;
        int r;

        if (!info)
                return pacer_error_set(
                        err, EINVAL,
                        "%s: unknown resource limit '%s' (as, core, cpu, data, fsize, locks, memlock, "
                        "msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)",
                        what, quote(name, q));
        if (strlen(value) > SANDBOX_VALUE_MAX)
                return pacer_error_set(err, EINVAL, "%s: value longer than %d characters", what,
                                       SANDBOX_VALUE_MAX);
        colon = strchr(value, ':');
        r = parse_limit(value, colon ? (size_t)(colon - value) : strlen(value), &l.rlim_cur);
        if (r >= 0) {
                if (colon)
                        r = parse_limit(colon + 1, strlen(colon + 1), &l.rlim_max);
                else
                        l.rlim_max = l.rlim_cur;
        }
        if (r < 0)
                return pacer_error_set(
                        err, EINVAL,
                        "%s=%s: expected soft[:hard], each a number below 2^63 or \"unlimited\"", what,
                        quote(value, q));
        if (l.rlim_max != RLIM_INFINITY && (l.rlim_cur == RLIM_INFINITY || l.rlim_cur > l.rlim_max))
                return pacer_error_set(err, EINVAL, "%s=%s: the soft limit is above the hard limit", what,
                                       quote(value, q));

        max = info->max ? info->max : RLIMIT_VALUE_MAX;
        if (info->resource == RLIMIT_NOFILE)
                max = (uint64_t)nr_open();
        /* the kernel refuses an unlimited number of open files */
        if ((info->resource == RLIMIT_NOFILE && l.rlim_max == RLIM_INFINITY) ||
            (l.rlim_cur != RLIM_INFINITY && (l.rlim_cur < info->min || l.rlim_cur > max)) ||
            (l.rlim_max != RLIM_INFINITY && (l.rlim_max < info->min || l.rlim_max > max)))
                return pacer_error_set(err, ERANGE,
                                       "%s=%s: out of range: %s takes %" PRIu64 "..%" PRIu64 "%s", what,
                                       quote(value, q), name, info->min, max,
                                       info->resource == RLIMIT_NOFILE ? " (fs.nr_open)" : " or unlimited");

        /* past the executor's own hard limit only with CAP_SYS_RESOURCE; checked
         * here so that the child's setrlimit() does not fail */
        if (getrlimit(info->resource, &cur) < 0)
                return pacer_error_set(err, errno, "%s: getrlimit: %m", what);
        if (cur.rlim_max != RLIM_INFINITY && (l.rlim_max == RLIM_INFINITY || l.rlim_max > cur.rlim_max) &&
            !have_cap(CAP_SYS_RESOURCE))
                return pacer_error_set(
                        err, EPERM,
                        "%s=%s: above the executor's own hard limit %llu, and the executor lacks "
                        "CAP_SYS_RESOURCE to raise it",
                        what, quote(value, q), (unsigned long long)cur.rlim_max);
        *ret = l;
        return 0;
}

/* The pacer.sandbox.* labels of a task, each at most once. */
typedef struct LabelValues {
        const char *capabilities, *seccomp, *seccomp_deny, *seccomp_log;
        const char *rlimit[ELEMENTSOF(rlimit_table)];
} LabelValues;

static int read_labels(const Labels *labels, LabelValues *ret, PacerError *err)
{
        LabelValues v = {};
        char q[QUOTE_MAX + 4];

        for (size_t i = 0; labels && i < labels->n_labels; i++) {
                const Label *l = labels->labels[i];
                const char **slot = NULL;

                if (!l || !l->key || !strneq(l->key, SANDBOX_LABEL_PREFIX, STRLEN(SANDBOX_LABEL_PREFIX)))
                        continue;
                if (streq(l->key, SANDBOX_LABEL_CAPABILITIES))
                        slot = &v.capabilities;
                else if (streq(l->key, SANDBOX_LABEL_SECCOMP))
                        slot = &v.seccomp;
                else if (streq(l->key, SANDBOX_LABEL_SECCOMP_DENY))
                        slot = &v.seccomp_deny;
                else if (streq(l->key, SANDBOX_LABEL_SECCOMP_LOG))
                        slot = &v.seccomp_log;
                else if (strneq(l->key, SANDBOX_LABEL_RLIMIT_PREFIX, STRLEN(SANDBOX_LABEL_RLIMIT_PREFIX))) {
                        const RlimitInfo *info = rlimit_find(l->key + STRLEN(SANDBOX_LABEL_RLIMIT_PREFIX));
                        if (info)
                                slot = &v.rlimit[info - rlimit_table];
                }
                if (!slot)
                        return pacer_error_set(
                                err, EINVAL,
                                "unknown label %s (see docs/sandbox.md for the pacer.sandbox.* labels)",
                                quote(l->key, q));
                if (*slot)
                        return pacer_error_set(err, EINVAL, "label %s is given twice", l->key);
                *slot = l->value ? l->value : "";
        }
        *ret = v;
        return 0;
}

static int parse_profile(const char *s, const char *what, SandboxProfile *ret, PacerError *err)
{
        char q[QUOTE_MAX + 4];
        SandboxProfile p = sandbox_profile_from_string(s);

        if (p < 0)
                return pacer_error_set(err, EINVAL,
                                       "%s=%s: no such seccomp profile (known: default, strict, unconfined)",
                                       what, quote(s, q));
        *ret = p;
        return 0;
}

static int parse_seccomp_log(const char *s, const char *what, SandboxSeccompLog *ret, PacerError *err)
{
        char q[QUOTE_MAX + 4];
        SandboxSeccompLog l = sandbox_seccomp_log_from_string(s);

        if (l < 0)
                return pacer_error_set(err, EINVAL, "%s=%s: expected off, denied or complain", what,
                                       quote(s, q));
        *ret = l;
        return 0;
}

int sandbox_options_check(const SandboxOptions *o, PacerError *err)
{
        SandboxProfile p;
        SandboxSeccompLog l;
        uint64_t caps;
        int r = 0;

        if (o->seccomp_profile)
                r = parse_profile(o->seccomp_profile, "--seccomp-profile", &p, err);
        if (r >= 0 && o->seccomp_log)
                r = parse_seccomp_log(o->seccomp_log, "--seccomp-log", &l, err);
        if (r >= 0 && o->capabilities)
                r = sandbox_parse_capabilities(o->capabilities, "--capabilities", &caps, err);
        return r < 0 ? r : 0;
}

/* ---- seccomp filters ---- */

/* What no process under the executor may do — the executor itself, and every
 * task, whatever its profile: the floor that sandbox_harden_self() installs
 * and every task inherits. docs/sandbox.md says why for each. */
/* clang-format off */
static const char *const floor_syscalls[] = {
        "init_module", "finit_module", "delete_module",      /* kernel modules */
        "kexec_load", "kexec_file_load", "reboot",           /* replacing or stopping the kernel */
        "swapon", "swapoff",                                 /* the host's swap */
        "acct",                                              /* host-wide process accounting */
        "settimeofday", "clock_settime",                     /* the host's clock */
        "iopl", "ioperm",                                    /* raw I/O ports */
        "uselib", "nfsservctl", "lookup_dcookie", "_sysctl", /* obsolete interfaces */
};
/* clang-format on */

/* What the default profile denies on top of the floor (EPERM). clone(),
 * unshare(), clone3() and personality() get rules of their own. */
/* clang-format off */
static const char *const default_deny_syscalls[] = {
        /* mounts, old and new API */
        "mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
        "open_tree", "mount_setattr",
        /* entering namespaces */
        "setns",
        /* other processes' memory and descriptors */
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
        /* the kernel keyring, shared across the host */
        "keyctl", "add_key", "request_key",
        /* large kernel attack surface a service does not need */
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
        "modify_ldt",
        /* file handles bypass path checks (the "shocker" escape) */
        "open_by_handle_at", "name_to_handle_at",
        /* the host's identity and consoles */
        "sethostname", "setdomainname", "vhangup", "syslog",
        /* disk quotas of the host's filesystems */
        "quotactl", "quotactl_fd",
};
/* clang-format on */

/* The strict profile's allow-list: what a typical network service or batch
 * job needs. clone(), unshare() and personality() are allowed with argument
 * checks; clone3() answers ENOSYS. */
/* clang-format off */
static const char *const strict_allow_syscalls[] = {
        /* descriptors */
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
        "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "ioctl", "pipe",
        "pipe2", "sendfile", "splice", "tee", "copy_file_range",
        /* files and directories */
        "open", "openat", "openat2", "creat", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs",
        "fstatfs", "access", "faccessat", "faccessat2", "getdents", "getdents64", "getcwd", "chdir",
        "fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2",
        "link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat",
        "chown", "fchown", "lchown", "fchownat", "umask", "utime", "utimes", "utimensat", "futimesat",
        "truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "syncfs", "sync_file_range", "flock",
        "fadvise64", "readahead", "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
        "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
        "fremovexattr", "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
        "memfd_create",
        /* memory */
        "brk", "mmap", "munmap", "mremap", "mprotect", "msync", "madvise", "mincore", "mlock", "mlock2",
        "munlock", "mlockall", "munlockall", "membarrier", "pkey_alloc", "pkey_free", "pkey_mprotect",
        "get_mempolicy", "set_mempolicy", "mbind",
        /* processes, threads, credentials */
        "execve", "execveat", "fork", "vfork", "exit", "exit_group", "wait4", "waitid", "kill", "tgkill",
        "tkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid",
        "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid", "capget",
        "capset", "prctl", "arch_prctl", "set_tid_address", "set_robust_list", "get_robust_list", "rseq",
        "prlimit64", "getrlimit", "setrlimit", "getrusage", "getpriority", "setpriority", "sched_yield",
        "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
        "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
        "sched_getattr", "sched_setattr", "ioprio_get", "ioprio_set", "pidfd_open", "pidfd_send_signal",
        "times", "uname", "sysinfo", "getcpu", "restart_syscall",
        /* giving up privileges is always allowed */
        "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
        /* signals */
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
        "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "pause", "signalfd",
        "signalfd4", "alarm", "getitimer", "setitimer",
        /* time */
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
        "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
        "timerfd_create", "timerfd_settime", "timerfd_gettime",
        /* waiting for events */
        "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
        "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "futex", "futex_waitv",
        /* network */
        "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
        "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
        "setsockopt", "getsockopt",
        /* System V and POSIX IPC (databases use them) */
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd",
        "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
        "mq_getsetattr",
        /* randomness */
        "getrandom",
};
/* clang-format on */

/* personality() values that change nothing a sandbox relies on: PER_LINUX,
 * PER_LINUX32 (uname says i686), UNAME26, both, and the query 0xffffffff.
 * Everything else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO, ...)
 * is refused. Sorted. */
static const uint64_t personality_allowed[] = { PER_LINUX, PER_LINUX32, UNAME26, UNAME26 | PER_LINUX32,
                                                0xffffffffULL };

typedef struct FilterBuild {
        scmp_filter_ctx ctx;
        uint32_t deny;   /* EPERM, or LOG in complain mode */
        uint32_t enosys; /* for clone3, whose flags a filter cannot see */
        const int *user_deny;
        size_t n_user_deny;
        PacerError *err;
} FilterBuild;

static void seccomp_releasep(scmp_filter_ctx *ctx)
{
        if (*ctx)
                seccomp_release(*ctx);
}

static bool user_denied(const FilterBuild *b, int nr)
{
        for (size_t i = 0; i < b->n_user_deny; i++)
                if (b->user_deny[i] == nr)
                        return true;
        return false;
}

static int resolve(const FilterBuild *b, const char *name, int *ret)
{
        int nr = seccomp_syscall_resolve_name(name);

        if (nr == __NR_SCMP_ERROR)
                return pacer_error_set(b->err, ENOSYS,
                                       "seccomp: libseccomp does not know the system call %s", name);
        *ret = nr;
        return 0;
}

static int add_rule(const FilterBuild *b, uint32_t action, int nr, unsigned n,
                    const struct scmp_arg_cmp *cmp)
{
        int r = seccomp_rule_add_array(b->ctx, action, nr, n, cmp);
        if (r < 0) {
                _cleanup_free_ char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
                return pacer_error_set(b->err, r, "seccomp: cannot add a rule for %s: %s", name ? name : "?",
                                       strerror(-r));
        }
        return 0;
}

/* Denies each named system call, unconditionally, unless the user's own deny
 * list already has it. */
static int deny_all(const FilterBuild *b, const char *const *names, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int nr = 0, r = resolve(b, names[i], &nr);
                if (r < 0)
                        return r;
                if (!user_denied(b, nr) && (r = add_rule(b, b->deny, nr, 0, NULL)) < 0)
                        return r;
        }
        return 0;
}

/* Denies personality(v) for every v in [lo, hi], as aligned power-of-two
 * blocks: a filter compares an argument once per rule, so a range is a set
 * of masked compares. */
static int deny_range(const FilterBuild *b, int nr, uint64_t lo, uint64_t hi)
{
        while (lo <= hi) {
                uint64_t size = lo ? lo & -lo : (uint64_t)1 << 63;
                int r;

                while (size - 1 > hi - lo)
                        size >>= 1;
                r = add_rule(b, b->deny, nr, 1, &SCMP_A0_64(SCMP_CMP_MASKED_EQ, ~(size - 1), lo));
                if (r < 0)
                        return r;
                if (lo + size - 1 == hi)
                        break;
                lo += size;
        }
        return 0;
}

/* clone() and unshare() creating namespaces, clone3() and personality(): the
 * same in both enforcing profiles, written as deny rules (default) or as
 * conditional allow rules (strict). */
static int special_rules(const FilterBuild *b, bool allow_list)
{
        int nr = 0, r;

        if ((r = resolve(b, "clone", &nr)) < 0)
                return r;
        if (!user_denied(b, nr)) {
                if (allow_list)
                        r = add_rule(b, SCMP_ACT_ALLOW, nr, 1,
                                     &SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0));
                for (unsigned f = 1; !allow_list && r >= 0 && f; f <<= 1)
                        if (f & CLONE_NS_FLAGS)
                                r = add_rule(b, b->deny, nr, 1, &SCMP_A0_64(SCMP_CMP_MASKED_EQ, f, f));
                if (r < 0)
                        return r;
        }
        if ((r = resolve(b, "unshare", &nr)) < 0)
                return r;
        if (!user_denied(b, nr)) {
                if (allow_list)
                        r = add_rule(b, SCMP_ACT_ALLOW, nr, 1,
                                     &SCMP_A0_64(SCMP_CMP_MASKED_EQ, UNSHARE_NS_FLAGS, 0));
                for (unsigned f = 1; !allow_list && r >= 0 && f; f <<= 1)
                        if (f & UNSHARE_NS_FLAGS)
                                r = add_rule(b, b->deny, nr, 1, &SCMP_A0_64(SCMP_CMP_MASKED_EQ, f, f));
                if (r < 0)
                        return r;
        }
        if ((r = resolve(b, "clone3", &nr)) < 0)
                return r;
        /* ENOSYS makes libc fall back to clone(), whose flags the filter sees */
        if (!user_denied(b, nr) && (r = add_rule(b, b->enosys, nr, 0, NULL)) < 0)
                return r;

        if ((r = resolve(b, "personality", &nr)) < 0)
                return r;
        if (user_denied(b, nr))
                return 0;
        if (allow_list) {
                for (size_t i = 0; i < ELEMENTSOF(personality_allowed); i++)
                        if ((r = add_rule(b, SCMP_ACT_ALLOW, nr, 1,
                                          &SCMP_A0_64(SCMP_CMP_EQ, personality_allowed[i]))) < 0)
                                return r;
                return 0;
        }
        /* the gaps between the allowed values, then everything above them */
        uint64_t lo = 0;
        for (size_t i = 0; i < ELEMENTSOF(personality_allowed); i++) {
                uint64_t v = personality_allowed[i];
                if (v > lo && (r = deny_range(b, nr, lo, v - 1)) < 0)
                        return r;
                lo = v + 1;
        }
        return add_rule(b, b->deny, nr, 1, &SCMP_A0_64(SCMP_CMP_GT, lo - 1));
}

static int allow_all(const FilterBuild *b, const char *const *names, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int nr = seccomp_syscall_resolve_name(names[i]);
                int r;

                /* an allow-list may name what this libseccomp or architecture lacks */
                if (nr == __NR_SCMP_ERROR || nr < 0 || user_denied(b, nr))
                        continue;
                if ((r = add_rule(b, SCMP_ACT_ALLOW, nr, 0, NULL)) < 0)
                        return r;
        }
        return 0;
}

/* A filter for the native architecture only: syscalls through another ABI
 * (i386's int 0x80, x32) kill the process, since a filter written for one
 * ABI's numbers does not cover another's. */
static int filter_new(uint32_t default_action, scmp_filter_ctx *ret, PacerError *err)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(default_action);
        int r;

        if (!ctx)
                return pacer_error_set(err, ENOMEM, "seccomp: cannot create a filter");
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return pacer_error_set(err, r, "seccomp: cannot block foreign system call ABIs: %s",
                                       strerror(-r));
        /* a binary tree keeps a long allow-list cheap; older libseccomp lacks it */
        (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        *ret = TAKE_PTR(ctx);
        return 0;
}

static int filter_build(SandboxProfile profile, SandboxSeccompLog log, const int *user_deny,
                        size_t n_user_deny, scmp_filter_ctx *ret, PacerError *err)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        bool complain = log == SANDBOX_SECCOMP_LOG_COMPLAIN;
        FilterBuild b = {
                .deny = complain ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(EPERM),
                .enosys = complain ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(ENOSYS),
                .user_deny = user_deny,
                .n_user_deny = n_user_deny,
                .err = err,
        };
        int r;

        r = filter_new(profile == SANDBOX_PROFILE_STRICT ? b.deny : SCMP_ACT_ALLOW, &ctx, err);
        if (r < 0)
                return r;
        b.ctx = ctx;
        if (log == SANDBOX_SECCOMP_LOG_DENIED && (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)
                return pacer_error_set(err, r, "seccomp: this kernel cannot log denials: %s", strerror(-r));

        switch (profile) {
        case SANDBOX_PROFILE_DEFAULT:
                r = deny_all(&b, floor_syscalls, ELEMENTSOF(floor_syscalls));
                if (r >= 0)
                        r = deny_all(&b, default_deny_syscalls, ELEMENTSOF(default_deny_syscalls));
                if (r >= 0)
                        r = special_rules(&b, false);
                break;
        case SANDBOX_PROFILE_STRICT:
                r = allow_all(&b, strict_allow_syscalls, ELEMENTSOF(strict_allow_syscalls));
                if (r >= 0)
                        r = special_rules(&b, true);
                break;
        default:
                break;
        }
        if (r < 0)
                return r;
        /* under the strict profile, what is not allowed is denied already */
        for (size_t i = 0; profile != SANDBOX_PROFILE_STRICT && i < n_user_deny; i++)
                if ((r = add_rule(&b, b.deny, user_deny[i], 0, NULL)) < 0)
                        return r;
        *ret = TAKE_PTR(ctx);
        return 0;
}

/* The BPF program of ctx, read back through a memfd: libseccomp allocates, so
 * this happens in the parent and the child only installs the result. */
static int filter_export(scmp_filter_ctx ctx, struct sock_filter **ret, unsigned short *ret_len,
                         PacerError *err)
{
        _cleanup_close_ int fd = memfd_create("pacer-seccomp", MFD_CLOEXEC);
        _cleanup_free_ struct sock_filter *prog = NULL;
        struct stat st;
        ssize_t n;
        int r;

        if (fd < 0)
                return pacer_error_set(err, errno, "seccomp: memfd_create: %m");
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return pacer_error_set(err, r, "seccomp: cannot export the filter: %s", strerror(-r));
        if (fstat(fd, &st) < 0)
                return pacer_error_set(err, errno, "seccomp: fstat: %m");
        if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
            st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
                return pacer_error_set(
                        err, E2BIG,
                        "seccomp: the filter has a bad size (%lld bytes, at most %d instructions)",
                        (long long)st.st_size, BPF_MAXINSNS);
        prog = malloc((size_t)st.st_size);
        if (!prog)
                return -ENOMEM;
        n = pread(fd, prog, (size_t)st.st_size, 0);
        if (n != st.st_size)
                return pacer_error_set(err, n < 0 ? errno : EIO, "seccomp: cannot read the filter back");
        *ret_len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
        *ret = TAKE_PTR(prog);
        return 0;
}

/* "uname, getpid" → syscall numbers, each checked against libseccomp's tables. */
static int parse_deny(const char *s, int ret[static SANDBOX_DENY_MAX], size_t *ret_n, PacerError *err)
{
        _cleanup_free_ char *copy = NULL;
        char q[QUOTE_MAX + 4], *cursor, *e;
        size_t n = 0;

        if (strlen(s) > SANDBOX_VALUE_MAX)
                return pacer_error_set(err, EINVAL, "label %s: value longer than %d characters",
                                       SANDBOX_LABEL_SECCOMP_DENY, SANDBOX_VALUE_MAX);
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        cursor = copy;
        while ((e = next_element(&cursor))) {
                bool ok = *e && strlen(e) <= SYSCALL_NAME_MAX;
                int nr;

                for (const char *c = e; ok && *c; c++)
                        ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
                nr = ok ? seccomp_syscall_resolve_name(e) : __NR_SCMP_ERROR;
                if (nr == __NR_SCMP_ERROR)
                        return pacer_error_set(err, EINVAL, "label %s=%s: unknown system call '%s'",
                                               SANDBOX_LABEL_SECCOMP_DENY, quote(s, q),
                                               quote(e, (char[QUOTE_MAX + 4]){}));
                for (size_t i = 0; i < n && ok; i++)
                        ok = ret[i] != nr;
                if (!ok)
                        continue; /* named twice */
                if (n == SANDBOX_DENY_MAX)
                        return pacer_error_set(err, E2BIG, "label %s: more than %d system calls",
                                               SANDBOX_LABEL_SECCOMP_DENY, SANDBOX_DENY_MAX);
                ret[n++] = nr;
        }
        *ret_n = n;
        return 0;
}

/* ---- planning ---- */

void sandbox_plan_init(SandboxPlan *p)
{
        *p = (SandboxPlan){ .cap_last = -1 };
}

void sandbox_plan_done(SandboxPlan *p)
{
        free(p->filter);
        *p = (SandboxPlan){ .cap_last = -1 };
}

int sandbox_plan_user(SandboxPlan *p, const char *user, PacerError *err)
{
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r, n = SANDBOX_GROUPS_MAX;

        p->ready = false;
        p->switch_user = false;
        p->root = geteuid() == 0;
        if (!user || !*user)
                return 0;
        if (strlen(user) >= sizeof(p->user))
                return pacer_error_set(err, EINVAL, "user name '%.32s...' is too long", user);

        r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
        if (!res) {
                char *end;
                errno = 0;
                unsigned long uid = strtoul(user, &end, 10);
                if (*end == 0 && errno == 0 && uid < (unsigned long)(uid_t)-1)
                        r = getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res);
        }
        if (!res)
                return pacer_error_set(err, r > 0 ? r : ENOENT,
                                       "user '%s' does not exist on this agent (CommandInfo.user or --user)",
                                       user);
        if (pw.pw_uid == geteuid() && pw.pw_gid == getegid())
                return 0; /* already that user: nothing to switch */
        if (geteuid() != 0)
                return pacer_error_set(
                        err, EPERM,
                        "cannot run the task as user '%s': the executor runs as uid %u, not root", user,
                        (unsigned)geteuid());

        if (getgrouplist(pw.pw_name, pw.pw_gid, p->groups, &n) < 0)
                return pacer_error_set(err, E2BIG, "user '%s' is in more than %d groups", user,
                                       SANDBOX_GROUPS_MAX);
        p->n_groups = n;
        p->uid = pw.pw_uid;
        p->gid = pw.pw_gid;
        p->root = pw.pw_uid == 0;
        snprintf(p->user, sizeof(p->user), "%s", pw.pw_name);
        p->switch_user = true;
        return 0;
}

static int plan_rlimits(SandboxPlan *p, const LabelValues *v, PacerError *err)
{
        struct rlimit cur;
        char what[128];
        int r;

        memset(p->rlimits, 0, sizeof(p->rlimits));
        /* defaults: many descriptors, but never past what the executor may grant */
        if (getrlimit(RLIMIT_NOFILE, &cur) < 0)
                return pacer_error_set(err, errno, "getrlimit(RLIMIT_NOFILE): %m");
        rlim_t nofile = SANDBOX_NOFILE_TARGET;
        if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < nofile &&
            !(have_cap(CAP_SYS_RESOURCE) && nr_open() >= (long)nofile))
                nofile = cur.rlim_max;
        p->rlimits[RLIMIT_NOFILE] = (SandboxRlimit){ true, { nofile, nofile } };
        /* no core dumps: they fill the sandbox and carry the task's secrets */
        p->rlimits[RLIMIT_CORE] = (SandboxRlimit){ true, { 0, 0 } };

        for (size_t i = 0; i < ELEMENTSOF(rlimit_table); i++) {
                struct rlimit l;

                if (!v->rlimit[i])
                        continue;
                snprintf(what, sizeof(what), "label %s%s", SANDBOX_LABEL_RLIMIT_PREFIX,
                         rlimit_table[i].name);
                r = sandbox_parse_rlimit(rlimit_table[i].name, v->rlimit[i], what, &l, err);
                if (r < 0)
                        return r;
                p->rlimits[rlimit_table[i].resource] = (SandboxRlimit){ true, l };
        }
        return 0;
}

static int plan_capabilities(SandboxPlan *p, const LabelValues *v, const SandboxOptions *o, PacerError *err)
{
        char q[QUOTE_MAX + 4], name[CAP_NAME_MAX + 8];
        uint64_t want = 0, held, known;
        OwnCaps own;
        int r;

        r = own_caps(&own);
        if (r < 0)
                return pacer_error_set(err, r, "cannot read the executor's capabilities: %s", strerror(-r));
        known = own.last >= CAPS_MAX - 1 ? UINT64_MAX : (1ULL << (own.last + 1)) - 1;
        /* for a root task what remains in the bounding set is what it gets at exec */
        held = own.permitted & own.bounding;

        if (v->capabilities) {
                r = sandbox_parse_capabilities(v->capabilities, "label " SANDBOX_LABEL_CAPABILITIES, &want,
                                               err);
                if (r < 0)
                        return r;
                /* asked for by name: having less than asked is an error, not a silent downgrade */
                if (want & ~known)
                        return pacer_error_set(err, EINVAL, "label %s=%s: %s is not known to this kernel",
                                               SANDBOX_LABEL_CAPABILITIES, quote(v->capabilities, q),
                                               cap_name(want & ~known, name));
                if (want & ~held)
                        return pacer_error_set(err, EPERM, "label %s=%s: the executor does not hold %s",
                                               SANDBOX_LABEL_CAPABILITIES, quote(v->capabilities, q),
                                               cap_name(want & ~held, name));
        } else if (p->root) {
                r = sandbox_parse_capabilities(o->capabilities ? o->capabilities
                                                               : SANDBOX_ROOT_CAPABILITIES_DEFAULT,
                                               "--capabilities", &want, err);
                if (r < 0)
                        return r;
                /* a default cannot give what the executor lacks; fewer is safe */
                want &= held & known;
        }

        p->caps = want;
        p->cap_last = own.last;
        p->drop_bounding = own.effective & (1ULL << CAP_SETPCAP);
        p->ambient = !p->root && want != 0;
        /* a root task gets its bounding set at exec: it must shrink, or the task is not confined */
        if (p->root && !p->drop_bounding && (own.bounding & ~want))
                return pacer_error_set(
                        err, EPERM,
                        "cannot confine a task running as root: the executor lacks CAP_SETPCAP to "
                        "shrink the capability bounding set");
        return 0;
}

/* The filter of the commonest plan (no seccomp labels), compiled by sandbox_prebuild(). */
static struct {
        bool ready;
        SandboxProfile profile;
        SandboxSeccompLog log;
        struct sock_filter *filter;
        unsigned short len;
} prebuilt;

int sandbox_prebuild(const SandboxOptions *o, PacerError *err)
{
        static const SandboxOptions none = {};
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        SandboxProfile profile = SANDBOX_PROFILE_DEFAULT;
        SandboxSeccompLog log = SANDBOX_SECCOMP_LOG_OFF;
        struct sock_filter *filter = NULL;
        unsigned short len = 0;
        int r;

        if (!o)
                o = &none;
        r = parse_profile(o->seccomp_profile ? o->seccomp_profile : "default", "--seccomp-profile", &profile,
                          err);
        if (r >= 0)
                r = parse_seccomp_log(o->seccomp_log ? o->seccomp_log : "off", "--seccomp-log", &log, err);
        if (r < 0 || profile == SANDBOX_PROFILE_UNCONFINED)
                return r;
        r = filter_build(profile, log, NULL, 0, &ctx, err);
        if (r >= 0)
                r = filter_export(ctx, &filter, &len, err);
        if (r < 0)
                return r;
        free(prebuilt.filter);
        prebuilt.filter = filter;
        prebuilt.len = len;
        prebuilt.profile = profile;
        prebuilt.log = log;
        prebuilt.ready = true;
        return 0;
}

static int plan_seccomp(SandboxPlan *p, const LabelValues *v, const SandboxOptions *o, PacerError *err)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int deny[SANDBOX_DENY_MAX];
        size_t n_deny = 0;
        int r;

        if (v->seccomp)
                r = parse_profile(v->seccomp, "label " SANDBOX_LABEL_SECCOMP, &p->profile, err);
        else
                r = parse_profile(o->seccomp_profile ? o->seccomp_profile : "default", "--seccomp-profile",
                                  &p->profile, err);
        if (r < 0)
                return r;
        if (v->seccomp_log)
                r = parse_seccomp_log(v->seccomp_log, "label " SANDBOX_LABEL_SECCOMP_LOG, &p->seccomp_log,
                                      err);
        else
                r = parse_seccomp_log(o->seccomp_log ? o->seccomp_log : "off", "--seccomp-log",
                                      &p->seccomp_log, err);
        if (r < 0)
                return r;
        if (v->seccomp_deny && (r = parse_deny(v->seccomp_deny, deny, &n_deny, err)) < 0)
                return r;

        free(p->filter);
        p->filter = NULL;
        p->filter_len = 0;
        p->seccomp_flags = p->seccomp_log == SANDBOX_SECCOMP_LOG_DENIED ? SECCOMP_FILTER_FLAG_LOG : 0;
        if (p->profile == SANDBOX_PROFILE_UNCONFINED && n_deny == 0)
                return 0;
        if (prebuilt.ready && n_deny == 0 && prebuilt.profile == p->profile &&
            prebuilt.log == p->seccomp_log) {
                p->filter = malloc(prebuilt.len * sizeof(struct sock_filter));
                if (!p->filter)
                        return -ENOMEM;
                memcpy(p->filter, prebuilt.filter, prebuilt.len * sizeof(struct sock_filter));
                p->filter_len = prebuilt.len;
                return 0;
        }
        r = filter_build(p->profile, p->seccomp_log, deny, n_deny, &ctx, err);
        if (r < 0)
                return r;
        return filter_export(ctx, &p->filter, &p->filter_len, err);
}

int sandbox_plan_labels(SandboxPlan *p, const Labels *labels, const SandboxOptions *o, PacerError *err)
{
        static const SandboxOptions none = {};
        LabelValues v = {};
        int r;

        p->ready = false;
        if (!o)
                o = &none;
        r = read_labels(labels, &v, err);
        if (r >= 0)
                r = plan_rlimits(p, &v, err);
        if (r >= 0)
                r = plan_capabilities(p, &v, o, err);
        if (r >= 0)
                r = plan_seccomp(p, &v, o, err);
        if (r < 0)
                return r;
        p->ready = true;
        return 0;
}

/* ---- in the child: async-signal-safe from here on ---- */

static int fail(SandboxStep step, int error, SandboxStep *ret_step)
{
        *ret_step = step;
        return error > 0 ? -error : error < 0 ? error : -EIO;
}

static int apply_caps(const SandboxPlan *p, SandboxStep *ret_step)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        uint64_t inheritable = p->ambient ? p->caps : 0;
        struct __user_cap_data_struct d[2] = {
                { (uint32_t)p->caps, (uint32_t)p->caps, (uint32_t)inheritable },
                { (uint32_t)(p->caps >> 32), (uint32_t)(p->caps >> 32), (uint32_t)(inheritable >> 32) },
        };
        struct __user_cap_data_struct got[2] = {};

        if (syscall(SYS_capset, &h, d) < 0)
                return fail(SANDBOX_STEP_CAPS, errno, ret_step);
        /* ambient capabilities survive exec for a non-root user; nobody else gets any */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && (p->ambient || errno != EINVAL))
                return fail(SANDBOX_STEP_CAP_AMBIENT, errno, ret_step);
        for (int c = 0; p->ambient && c <= p->cap_last; c++)
                if ((p->caps & (1ULL << c)) &&
                    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)c, 0, 0) < 0)
                        return fail(SANDBOX_STEP_CAP_AMBIENT, errno, ret_step);

        if (syscall(SYS_capget, &h, got) < 0)
                return fail(SANDBOX_STEP_CAP_VERIFY, errno, ret_step);
        for (int i = 0; i < 2; i++)
                if (got[i].effective != d[i].effective || got[i].permitted != d[i].permitted ||
                    got[i].inheritable != d[i].inheritable)
                        return fail(SANDBOX_STEP_CAP_VERIFY, EPERM, ret_step);
        for (int c = 0; p->drop_bounding && c <= p->cap_last; c++)
                if (!(p->caps & (1ULL << c)) && prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) != 0)
                        return fail(SANDBOX_STEP_CAP_VERIFY, EPERM, ret_step);
        return 0;
}

int sandbox_apply(const SandboxPlan *p, SandboxStep *ret_step)
{
        int r;

        if (!p->ready)
                return fail(SANDBOX_STEP_PLAN, EINVAL, ret_step);

        /* while still privileged: raising a hard limit needs CAP_SYS_RESOURCE */
        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (p->rlimits[i].set && setrlimit(i, &p->rlimits[i].limit) < 0)
                        return fail((SandboxStep)(SANDBOX_STEP_RLIMIT + i), errno, ret_step);

        /* needs CAP_SETPCAP in the effective set, which the user switch clears */
        for (int c = 0; p->drop_bounding && c <= p->cap_last; c++)
                if (!(p->caps & (1ULL << c)) && prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0)
                        return fail(SANDBOX_STEP_CAP_BOUNDING, errno, ret_step);

        if (p->switch_user) {
                /* without it setuid() empties the permitted set, and the ambient
                 * capabilities of a non-root task could not be raised */
                if (p->ambient && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                        return fail(SANDBOX_STEP_KEEPCAPS, errno, ret_step);
                /* groups first, then gid, then uid: each later step removes the right to do the earlier */
                if (setgroups((size_t)p->n_groups, p->groups) < 0)
                        return fail(SANDBOX_STEP_USER_GROUPS, errno, ret_step);
                if (setresgid(p->gid, p->gid, p->gid) < 0)
                        return fail(SANDBOX_STEP_USER_GID, errno, ret_step);
                if (setresuid(p->uid, p->uid, p->uid) < 0)
                        return fail(SANDBOX_STEP_USER_UID, errno, ret_step);
                /* a process that could regain root after this is not sandboxed */
                if (geteuid() != p->uid || getegid() != p->gid || (p->uid != 0 && setuid(0) == 0))
                        return fail(SANDBOX_STEP_USER_VERIFY, EPERM, ret_step);
        }

        r = apply_caps(p, ret_step);
        if (r < 0)
                return r;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return fail(SANDBOX_STEP_NO_NEW_PRIVS, errno, ret_step);
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                return fail(SANDBOX_STEP_NO_NEW_PRIVS, EPERM, ret_step);

        /* last, so the filter need not allow the steps above */
        if (p->filter) {
                struct sock_fprog prog = { .len = p->filter_len, .filter = p->filter };
                if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &prog) < 0)
                        return fail(SANDBOX_STEP_SECCOMP, errno, ret_step);
        }
        return 0;
}

/* ---- the executor itself ---- */

/* What the executor itself may do once its spawner runs: the calls of its
 * event loop, the agent and Consul links, health checks (libcurl, OpenSSL,
 * the resolver, NSS for user names), its logs and /proc. No fork, no exec, no
 * ptrace, no mounts, no new filters: the spawner creates its processes.
 * clone() is allowed for threads only (libcurl's resolver). docs/sandbox.md
 * lists why each is here. */
/* clang-format off */
static const char *const executor_allow_syscalls[] = {
        /* descriptors and files: logs, the sandbox, /proc, certificates, NSS */
        "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "dup", "dup2", "dup3",
        "fcntl", "ioctl", "pipe2", "openat", "newfstatat", "fstat", "statx", "access", "faccessat",
        "faccessat2", "readlink", "readlinkat", "getdents64", "rename", "renameat", "renameat2",
        "unlink", "unlinkat", "mkdir", "mkdirat", "ftruncate", "fsync", "fdatasync", "fstatfs", "statfs",
        "getcwd", "umask", "memfd_create",
        /* memory */
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
        /* signals and the event loop */
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "kill", "tgkill", "tkill",
        "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll",
        "select", "pselect6", "eventfd2", "signalfd4",
        /* time */
        "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
        /* the task's processes (started by the spawner) and the executor's own state */
        "wait4", "waitid", "setpgid", "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid",
        "getegid", "getgroups", "getresuid", "getresgid", "getpgid", "getpgrp", "getsid", "getrusage",
        "times", "sysinfo", "uname", "capget", "prctl", "sched_getaffinity", "sched_yield", "getrandom",
        "getcpu",
        /* threads (libcurl's resolver) */
        "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "exit", "exit_group",
        /* the network: agent, Consul, health checks, DNS */
        "socket", "socketpair", "connect", "getsockopt", "setsockopt", "getsockname", "getpeername",
        "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "bind",
};
/* clang-format on */

#if defined(__SANITIZE_ADDRESS__)
#define PACER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PACER_ASAN 1
#endif
#endif
#ifdef PACER_ASAN
/* LeakSanitizer stops the process at exit from a cloned tracer that ptraces it;
 * the sanitizers' own system calls use the legacy x86-64 numbers (open, not
 * openat). The tracer runs with every signal blocked: a trapped call kills it. */
static const char *const sanitizer_allow_syscalls[] = {
        "ptrace", "mincore",    "msync", "prlimit64",       "open", "getdents", "stat",
        "lstat",  "arch_prctl", "pipe",  "process_vm_readv"
};
#endif

/* A call outside the allow-list is a bug (or an attack): say which and let it
 * fail with ENOSYS, which callers handle, rather than kill the task's
 * executor. Async-signal-safe: digits by hand, one write(). */
static void on_sigsys(int sig, siginfo_t *si, void *context)
{
        static const char head[] = "pacer-executor: system call ";
        static const char tail[] = " is not in the executor's seccomp allow-list; it failed with ENOSYS. "
                                   "This is a bug: please report it (--no-harden runs without the list).\n";
        char line[sizeof(head) + 12 + sizeof(tail)], digits[12];
        int nr = si->si_syscall, saved = errno;
        size_t len = 0, nd = 0;
        ucontext_t *uc = context;

        memcpy(line, head, sizeof(head) - 1);
        len = sizeof(head) - 1;
        do
                digits[nd++] = (char)('0' + nr % 10);
        while ((nr /= 10) > 0 && nd < sizeof(digits));
        while (nd > 0)
                line[len++] = digits[--nd];
        memcpy(line + len, tail, sizeof(tail) - 1);
        len += sizeof(tail) - 1;
        ssize_t _unused_ w = write(STDERR_FILENO, line, len);
#if defined(__x86_64__)
        uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
        uc->uc_mcontext.regs[0] = (unsigned long long)-ENOSYS;
#endif
        errno = saved;
}

int sandbox_harden_floor(PacerError *err)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        FilterBuild b = { .deny = SCMP_ACT_ERRNO(EPERM), .err = err };
        int r;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return pacer_error_set(err, errno,
                                       "cannot harden the executor: prctl(PR_SET_NO_NEW_PRIVS): %m");
        r = filter_new(SCMP_ACT_ALLOW, &ctx, err);
        if (r < 0)
                return r;
        b.ctx = ctx;
        r = deny_all(&b, floor_syscalls, ELEMENTSOF(floor_syscalls));
        if (r < 0)
                return r;
        /* every thread, should a library have started one already */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r >= 0)
                r = seccomp_load(ctx);
        if (r < 0)
                return pacer_error_set(err, r, "cannot harden the executor: loading its seccomp filter: %s",
                                       strerror(-r));
        return 0;
}

int sandbox_harden_executor(PacerError *err)
{
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
#if defined(__x86_64__) || defined(__aarch64__)
        uint32_t other = SCMP_ACT_TRAP;
#else
        uint32_t other = SCMP_ACT_ERRNO(ENOSYS);
#endif
        FilterBuild b = { .deny = other, .err = err };
        struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO | SA_RESTART };
        int nr = 0, r;

        r = filter_new(other, &ctx, err);
        if (r < 0)
                return r;
        b.ctx = ctx;
        r = allow_all(&b, executor_allow_syscalls, ELEMENTSOF(executor_allow_syscalls));
#ifdef PACER_ASAN
        if (r >= 0)
                r = allow_all(&b, sanitizer_allow_syscalls, ELEMENTSOF(sanitizer_allow_syscalls));
#endif
        /* threads, not processes: the spawner makes those */
        if (r >= 0)
                r = resolve(&b, "clone", &nr);
        if (r >= 0)
                r = add_rule(&b, SCMP_ACT_ALLOW, nr, 1,
                             &SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
#ifdef PACER_ASAN
        /* LeakSanitizer's tracer: CLONE_VM without CLONE_THREAD; a fork never has CLONE_VM */
        if (r >= 0)
                r = add_rule(&b, SCMP_ACT_ALLOW, nr, 1, &SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_VM, CLONE_VM));
#endif
        /* ENOSYS makes libc fall back to clone(), whose flags the filter sees */
        if (r >= 0)
                r = resolve(&b, "clone3", &nr);
        if (r >= 0)
                r = add_rule(&b, SCMP_ACT_ERRNO(ENOSYS), nr, 0, NULL);
        /* reading limits, not changing them */
        if (r >= 0)
                r = resolve(&b, "prlimit64", &nr);
        if (r >= 0)
                r = add_rule(&b, SCMP_ACT_ALLOW, nr, 1, &SCMP_A2_64(SCMP_CMP_EQ, 0));
        if (r < 0)
                return r;
        if (other == SCMP_ACT_TRAP && sigaction(SIGSYS, &sa, NULL) < 0)
                return pacer_error_set(err, errno, "cannot harden the executor: sigaction(SIGSYS): %m");
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r >= 0)
                r = seccomp_load(ctx);
        if (r < 0)
                return pacer_error_set(err, r,
                                       "cannot harden the executor: loading its seccomp allow-list: %s",
                                       strerror(-r));
        return 0;
}
