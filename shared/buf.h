/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a hard maximum size. Everything filled from the
 * network or from a user goes through one: exceeding the maximum is an error
 * (-EMSGSIZE), never a silent realloc. The data is always NUL-terminated. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct Buf {
        char *data;
        size_t len;
        size_t cap; /* allocated, excluding the terminating NUL */
        size_t max; /* hard limit on len */
} Buf;

#define BUF_INIT(maximum) ((Buf){ .max = (maximum) })

void buf_init(Buf *b, size_t max);
void buf_done(Buf *b);
/* Ensures room for n more bytes; -EMSGSIZE past the maximum, -ENOMEM. */
int buf_reserve(Buf *b, size_t n);
int buf_append(Buf *b, const void *p, size_t n);
int buf_puts(Buf *b, const char *s);
int buf_putc(Buf *b, char c);
int buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
int buf_vprintf(Buf *b, const char *fmt, va_list ap) _printf_(2, 0);
/* Drops the first n bytes. */
void buf_consume(Buf *b, size_t n);
void buf_reset(Buf *b);
/* Empties b, and frees its memory when more than keep bytes are allocated: a
 * buffer that once held a burst does not keep that much for good. */
void buf_reset_shrink(Buf *b, size_t keep);
/* Returns the data (NUL-terminated, never NULL) and leaves b empty; the caller frees. */
char *buf_steal(Buf *b, size_t *ret_len);
const char *buf_str(const Buf *b);
