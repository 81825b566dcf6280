/* SPDX-License-Identifier: Apache-2.0 */
/* A system call without libc, for the guard and the spawner: they share the
 * executor's memory (CLONE_VM) but not its thread, and libc's wrappers write
 * errno into the executor's thread-local storage. Returns -errno on failure.
 * And how both are started. */
#pragma once

#if defined(__x86_64__)
#define PACER_HAVE_RAW_SYSCALL 1

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include "macro.h"

/* The stack of a helper process: its loop and libc's clone(), nothing more. */
#define HELPER_STACK_SIZE (64u * 1024)

/* Starts fn(arg) in a helper process sharing our memory (CLONE_VM, plus
 * extra_flags) on a stack of its own, which stays mapped for the helper's
 * whole life (it may outlive us). Returns its pid, or -errno. */
static inline pid_t helper_clone(int (*fn)(void *), void *arg, int extra_flags)
{
        void *stack = mmap(NULL, HELPER_STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        pid_t pid;

        if (stack == MAP_FAILED)
                return negative_errno();
        pid = clone(fn, (char *)stack + HELPER_STACK_SIZE, CLONE_VM | extra_flags | SIGCHLD, arg);
        if (pid < 0) {
                int r = negative_errno();
                munmap(stack, HELPER_STACK_SIZE);
                return r;
        }
        return pid;
}

static inline long raw_syscall4(long n, long a, long b, long c, long d)
{
        long ret;
        register long r10 __asm__("r10") = d;
        __asm__ volatile("syscall"
                         : "=a"(ret)
                         : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                         : "rcx", "r11", "memory");
        return ret;
}
#else
#define PACER_HAVE_RAW_SYSCALL 0
#endif
