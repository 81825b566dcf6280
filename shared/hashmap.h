/* SPDX-License-Identifier: Apache-2.0 */
/* A string-keyed hash map with open addressing (linear probing, tombstone-free
 * backward-shift deletion). Keys are borrowed: the caller keeps them alive as
 * long as the entry, typically because the key lives inside the value. Used
 * for apps, instances and agents: O(1) lookups whatever their number. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HashmapEntry {
        const char *key;
        void *value;
        uint32_t hash;
} HashmapEntry;

typedef struct Hashmap {
        HashmapEntry *slots;
        size_t cap; /* power of two, or 0 */
        size_t count;
} Hashmap;

#define HASHMAP_INIT ((Hashmap){ 0 })

uint32_t hashmap_hash(const char *key);
void *hashmap_get(const Hashmap *m, const char *key);
/* Inserts or replaces; returns the previous value (NULL when new) through
 * ret_old. -ENOMEM when the table cannot grow. */
int hashmap_put(Hashmap *m, const char *key, void *value, void **ret_old);
/* Removes; returns the value or NULL. */
void *hashmap_remove(Hashmap *m, const char *key);
size_t hashmap_count(const Hashmap *m);
void hashmap_done(Hashmap *m);

/* Iteration: for (size_t i = 0; hashmap_next(m, &i, &key, &value);) — the map
 * must not change during it (removing the current entry excepted: then do not advance i). */
bool hashmap_next(const Hashmap *m, size_t *i, const char **ret_key, void **ret_value);
