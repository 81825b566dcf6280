/* SPDX-License-Identifier: Apache-2.0 */
#include "arena.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Chunk {
        struct Chunk *next;
        size_t used, size;
        alignas(max_align_t) unsigned char data[];
} Chunk;

struct Arena {
        Chunk *head;
        size_t total;
};

Arena *arena_new(void)
{
        return calloc(1, sizeof(Arena));
}

Arena *arena_free(Arena *a)
{
        if (!a)
                return NULL;
        for (Chunk *c = a->head, *next; c; c = next) {
                next = c->next;
                free(c);
        }
        free(a);
        return NULL;
}

void arena_reset(Arena *a)
{
        Chunk *keep = NULL;

        for (Chunk *c = a->head, *next; c; c = next) {
                next = c->next;
                if (!keep && sizeof(Chunk) + c->size == ARENA_CHUNK_SIZE)
                        keep = c;
                else
                        free(c);
        }
        a->head = keep;
        a->total = 0;
        if (keep) {
                keep->next = NULL;
                keep->used = 0;
                a->total = ARENA_CHUNK_SIZE;
        }
}

void *arena_alloc(Arena *a, size_t n)
{
        void *p;

        if (n > SIZE_MAX - alignof(max_align_t) - sizeof(Chunk))
                return NULL;
        n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
        if (!a->head || a->head->size - a->head->used < n) {
                bool outsized = n > ARENA_CHUNK_SIZE / 2;
                size_t size = outsized ? n : ARENA_CHUNK_SIZE - sizeof(Chunk);
                Chunk *c = malloc(sizeof(Chunk) + size);
                if (!c)
                        return NULL;
                *c = (Chunk){ .size = size };
                a->total += sizeof(Chunk) + size;
                if (outsized && a->head) {
                        /* an outsized object: behind the current chunk, whose free room stays in use */
                        c->next = a->head->next;
                        a->head->next = c;
                        c->used = n;
                        return memset(c->data, 0, n);
                }
                c->next = a->head;
                a->head = c;
        }
        p = a->head->data + a->head->used;
        a->head->used += n;
        return memset(p, 0, n);
}

static char *copy(Arena *a, const char *s, size_t len)
{
        char *p = arena_alloc(a, len + 1);

        if (p)
                memcpy(p, s, len);
        return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
        return copy(a, s, strnlen(s, n));
}

char *arena_strdup(Arena *a, const char *s)
{
        return copy(a, s, strlen(s));
}

char *arena_vprintf(Arena *a, const char *fmt, va_list ap)
{
        va_list aq;
        char *p;
        int n;

        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0 || !(p = arena_alloc(a, (size_t)n + 1)))
                return NULL;
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        return p;
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
        va_list ap;
        char *p;

        va_start(ap, fmt);
        p = arena_vprintf(a, fmt, ap);
        va_end(ap);
        return p;
}

size_t arena_size(const Arena *a)
{
        return a->total;
}

static void *pb_alloc(void *data, size_t size)
{
        return arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
        (void)data, (void)p; /* with the arena */
}

ProtobufCAllocator arena_protobuf_allocator(Arena *a)
{
        return (ProtobufCAllocator){ .alloc = pb_alloc, .free = pb_free, .allocator_data = a };
}
