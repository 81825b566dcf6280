/* SPDX-License-Identifier: Apache-2.0 */
/* A bump allocator for what one piece of work builds and frees at once: the
 * TaskInfos of an offer's launches, a placement result. Objects are carved
 * from chunks of ARENA_CHUNK_SIZE and freed together with the arena.
 *
 * Why not malloc each object: a round of thousands of launches makes
 * millions of small objects, allocated among the long-lived state (the
 * instances those launches create) and freed a moment later. The holes they
 * leave are kept by malloc for good, and cost more memory than the state
 * itself at 100,000 instances. Chunks this large are mapped by malloc (see
 * the scheduler's M_MMAP_THRESHOLD) and go back to the system with the arena. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>

#include "macro.h"

#define ARENA_CHUNK_SIZE (256u * 1024)

typedef struct Arena Arena;

Arena *arena_new(void);
Arena *arena_free(Arena *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Arena *, arena_free);

/* Frees every object, keeping one chunk for what comes next (the others go back). */
void arena_reset(Arena *a);

/* n zeroed bytes aligned for any type, or NULL when memory runs out. An
 * object larger than a chunk gets a chunk of its own. */
void *arena_alloc(Arena *a, size_t n);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) _printf_(2, 3);
char *arena_vprintf(Arena *a, const char *fmt, va_list ap) _printf_(2, 0);
/* Bytes obtained from malloc so far (chunks and their headers). */
size_t arena_size(const Arena *a);
/* protobuf-c allocation in the arena: unpack with it, never free_unpacked
 * what it made (the arena frees it). */
ProtobufCAllocator arena_protobuf_allocator(Arena *a);
