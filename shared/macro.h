/* SPDX-License-Identifier: Apache-2.0 */
/* Small language helpers used everywhere: cleanup attributes in the systemd
 * style, ownership transfer, array sizes and attribute shorthands. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)         __attribute__((cleanup(f)))
#define _cleanup_free_       _cleanup_(freep)
#define _cleanup_close_      _cleanup_(closep)
#define _unused_             __attribute__((unused))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _noreturn_           __attribute__((noreturn))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _likely_(x)          __builtin_expect(!!(x), 1)
#define _unlikely_(x)        __builtin_expect(!!(x), 0)

#define ELEMENTSOF(a)                   (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define MAX(a, b)                       ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi)                ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))
#define STRLEN(s)                       (sizeof("" s "") - 1)
#define streq(a, b)                     (strcmp((a), (b)) == 0)
#define strneq(a, b, n)                 (strncmp((a), (b), (n)) == 0)
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Hand ownership of *p to the caller and leave NULL behind, so a cleanup
 * attribute on the variable does not free it. */
#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _ptr_ = (p); \
                (p) = NULL;                \
                _ptr_;                     \
        })
#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -1;       \
                _fd_;            \
        })

/* Defines foop(type **p) calling foo(*p) when non-NULL, for _cleanup_(foop). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p)     \
        {                                       \
                if (*p)                         \
                        func(*p);               \
        }

static inline void freep(void *p)
{
        free(*(void **)p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

/* close() that keeps errno and returns -1 for assignment: fd = safe_close(fd). */
static inline int safe_close(int fd)
{
        closep(&fd);
        return -1;
}

static inline const char *strna(const char *s)
{
        return s ? s : "n/a";
}

static inline const char *strempty(const char *s)
{
        return s ? s : "";
}

static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}
