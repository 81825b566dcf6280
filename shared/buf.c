/* SPDX-License-Identifier: Apache-2.0 */
#include "buf.h"

#include <stdio.h>

#define BUF_MIN_ALLOC 64

void buf_init(Buf *b, size_t max)
{
        *b = BUF_INIT(max);
}

void buf_done(Buf *b)
{
        free(b->data);
        *b = BUF_INIT(b->max);
}

int buf_reserve(Buf *b, size_t n)
{
        size_t want, cap;
        char *p;

        if (n > b->max || b->len > b->max - n)
                return -EMSGSIZE;
        want = b->len + n;
        if (want <= b->cap && b->data)
                return 0;
        cap = b->cap ? b->cap : BUF_MIN_ALLOC;
        while (cap < want)
                cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        if (cap > b->max)
                cap = b->max;
        p = realloc(b->data, cap + 1);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        b->data[b->len] = 0;
        return 0;
}

int buf_append(Buf *b, const void *p, size_t n)
{
        int r = buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

int buf_puts(Buf *b, const char *s)
{
        return buf_append(b, s, strlen(s));
}

int buf_putc(Buf *b, char c)
{
        return buf_append(b, &c, 1);
}

int buf_vprintf(Buf *b, const char *fmt, va_list ap)
{
        va_list aq;
        int n, r;

        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        r = buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int buf_printf(Buf *b, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

void buf_consume(Buf *b, size_t n)
{
        if (n >= b->len) {
                b->len = 0;
        } else {
                memmove(b->data, b->data + n, b->len - n);
                b->len -= n;
        }
        if (b->data)
                b->data[b->len] = 0;
}

void buf_reset(Buf *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = 0;
}

void buf_reset_shrink(Buf *b, size_t keep)
{
        if (b->cap > keep) {
                free(b->data);
                b->data = NULL;
                b->cap = 0;
        }
        buf_reset(b);
}

char *buf_steal(Buf *b, size_t *ret_len)
{
        char *p = b->data;

        if (!p)
                p = strdup("");
        if (ret_len)
                *ret_len = b->data ? b->len : 0;
        *b = BUF_INIT(b->max);
        return p;
}

const char *buf_str(const Buf *b)
{
        return b->data ? b->data : "";
}
