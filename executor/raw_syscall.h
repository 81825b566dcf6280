/* SPDX-License-Identifier: Apache-2.0 */
/* A system call without libc, for the guard and the spawner: they share the
 * executor's memory (CLONE_VM) but not its thread, and libc's wrappers write
 * errno into the executor's thread-local storage. Returns -errno on failure. */
#pragma once

#if defined(__x86_64__)
#define PACER_HAVE_RAW_SYSCALL 1

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
