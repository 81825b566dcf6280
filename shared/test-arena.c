/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the arena: zeroed, aligned objects that stay where they are,
 * chunks of the documented size, outsized objects in a chunk of their own
 * without wasting the current one, strings and formats, protobuf-c messages
 * unpacked into it, and no leak (ASan) when it is freed. */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "mesos/v1/mesos.pb-c.h"

static void test_objects_are_zeroed_aligned_and_stable(void **state)
{
        Arena *a = arena_new();
        unsigned char *first = arena_alloc(a, 1), *p;

        assert_non_null(first);
        assert_int_equal(arena_size(a), ARENA_CHUNK_SIZE);
        *first = 0xaa;
        for (size_t i = 0; i < 10000; i++) {
                size_t n = 1 + i % 97;
                p = arena_alloc(a, n);
                assert_non_null(p);
                assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
                for (size_t k = 0; k < n; k++)
                        assert_int_equal(p[k], 0);
                memset(p, 0xff, n);
        }
        assert_int_equal(*first, 0xaa); /* nothing moved, nothing overwrote it */
        /* 10,000 objects of up to 112 bytes aligned: a few chunks, not 10,000 allocations */
        assert_true(arena_size(a) <= 5 * ARENA_CHUNK_SIZE);
        assert_int_equal(arena_size(a) % ARENA_CHUNK_SIZE, 0);
        arena_free(a);
        assert_null(arena_free(NULL));
}

static void test_outsized_object_keeps_the_current_chunk(void **state)
{
        Arena *a = arena_new();
        char *small = arena_alloc(a, 16), *big, *after;

        big = arena_alloc(a, ARENA_CHUNK_SIZE); /* more than a chunk */
        assert_non_null(big);
        memset(big, 1, ARENA_CHUNK_SIZE);
        /* its own chunk; the next small object still comes from the first one */
        after = arena_alloc(a, 16);
        assert_ptr_equal(after, small + 16);
        assert_in_range(arena_size(a) - ARENA_CHUNK_SIZE, ARENA_CHUNK_SIZE + 1,
                        ARENA_CHUNK_SIZE + 64);    /* + header */
        assert_null(arena_alloc(a, SIZE_MAX - 8)); /* refused, not wrapped around */
        arena_free(a);
}

static void test_reset_keeps_one_chunk(void **state)
{
        _cleanup_(arena_freep) Arena *a = arena_new();
        char *p;

        arena_reset(a); /* empty: nothing to keep */
        assert_int_equal(arena_size(a), 0);
        for (size_t i = 0; i < 3 * ARENA_CHUNK_SIZE / 1024; i++)
                assert_non_null(arena_alloc(a, 1000));
        assert_non_null(arena_alloc(a, 2 * ARENA_CHUNK_SIZE)); /* and an outsized one */
        assert_true(arena_size(a) > 4 * ARENA_CHUNK_SIZE);
        arena_reset(a);
        assert_int_equal(arena_size(a), ARENA_CHUNK_SIZE);
        p = arena_alloc(a, 64);
        assert_non_null(p);
        assert_int_equal(p[63], 0);                        /* zeroed again, though the chunk was used */
        assert_int_equal(arena_size(a), ARENA_CHUNK_SIZE); /* from the kept chunk */
}

static void test_strings(void **state)
{
        _cleanup_(arena_freep) Arena *a = arena_new();
        char big[1000];

        assert_string_equal(arena_strdup(a, "hello"), "hello");
        assert_string_equal(arena_strndup(a, "hello", 3), "hel");
        assert_string_equal(arena_strndup(a, "hi", 10), "hi");
        assert_string_equal(arena_printf(a, "%s-%04d", "task", 42), "task-0042");
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(strlen(arena_printf(a, "%s%s", big, big)), 2 * (sizeof(big) - 1));
}

static void test_protobuf_unpack_into_the_arena(void **state)
{
        _cleanup_(arena_freep) Arena *a = arena_new();
        ProtobufCAllocator alloc = arena_protobuf_allocator(a);
        Mesos__V1__Resource r = MESOS__V1__RESOURCE__INIT, *copy;
        Mesos__V1__Value__Scalar scalar = MESOS__V1__VALUE__SCALAR__INIT;
        uint8_t buf[256];
        size_t before = arena_size(a), n;

        r.name = "cpus";
        r.type = MESOS__V1__VALUE__TYPE__SCALAR;
        scalar.value = 0.25;
        r.scalar = &scalar;
        n = mesos__v1__resource__pack(&r, buf);
        copy = mesos__v1__resource__unpack(&alloc, n, buf);
        assert_non_null(copy);
        assert_string_equal(copy->name, "cpus");
        assert_true(copy->scalar->value == 0.25);
        assert_true(arena_size(a) > before); /* it came from the arena: freed with it (ASan checks) */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_objects_are_zeroed_aligned_and_stable),
                cmocka_unit_test(test_outsized_object_keeps_the_current_chunk),
                cmocka_unit_test(test_reset_keeps_one_chunk),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_protobuf_unpack_into_the_arena),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
