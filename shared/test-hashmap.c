/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the hash map against a simple reference (an array searched
 * linearly) under random inserts, replacements and removals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hashmap.h"

#define N 5000

static char keys[N][16];

static void test_basic(void **state)
{
        Hashmap m = HASHMAP_INIT;
        void *old = (void *)1;
        int a = 1, b = 2;

        assert_null(hashmap_get(&m, "x"));
        assert_null(hashmap_remove(&m, "x"));
        assert_int_equal(hashmap_put(&m, "x", &a, &old), 0);
        assert_null(old);
        assert_ptr_equal(hashmap_get(&m, "x"), &a);
        assert_int_equal(hashmap_put(&m, "x", &b, &old), 0);
        assert_ptr_equal(old, &a);
        assert_int_equal(hashmap_count(&m), 1);
        assert_ptr_equal(hashmap_remove(&m, "x"), &b);
        assert_int_equal(hashmap_count(&m), 0);
        assert_null(hashmap_get(&m, "x"));
        hashmap_done(&m);
}

static void test_random_against_reference(void **state)
{
        Hashmap m = HASHMAP_INIT;
        void *ref[N] = { 0 };
        uint64_t seed = 42;
        size_t live = 0;

        for (int i = 0; i < N; i++)
                snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        for (int step = 0; step < 200000; step++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                int k = (int)((seed >> 33) % N);
                int op = (int)((seed >> 20) % 3);
                if (op < 2) {
                        void *v = (void *)(uintptr_t)(step + 1), *old;
                        assert_int_equal(hashmap_put(&m, keys[k], v, &old), 0);
                        assert_ptr_equal(old, ref[k]);
                        if (!ref[k])
                                live++;
                        ref[k] = v;
                } else {
                        assert_ptr_equal(hashmap_remove(&m, keys[k]), ref[k]);
                        if (ref[k])
                                live--;
                        ref[k] = NULL;
                }
                if (step % 997 == 0)
                        for (int j = 0; j < N; j++)
                                assert_ptr_equal(hashmap_get(&m, keys[j]), ref[j]);
        }
        assert_int_equal(hashmap_count(&m), live);
        size_t i = 0, seen = 0;
        const char *key;
        void *value;
        while (hashmap_next(&m, &i, &key, &value)) {
                int k = atoi(key + 1);
                assert_ptr_equal(ref[k], value);
                seen++;
        }
        assert_int_equal(seen, live);
        hashmap_done(&m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_basic),
                cmocka_unit_test(test_random_against_reference),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
