/* SPDX-License-Identifier: Apache-2.0 */
#include "hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HASHMAP_MIN_CAP 16
/* Grow above 70% full: linear probing stays short. */
#define HASHMAP_LOAD_NUM 7
#define HASHMAP_LOAD_DEN 10

/* FNV-1a: good enough spread for ids, cheap, no state. */
uint32_t hashmap_hash(const char *key)
{
        uint32_t h = 2166136261u;
        for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
                h ^= *p;
                h *= 16777619u;
        }
        return h ? h : 1; /* 0 marks an empty slot */
}

static size_t find_slot(const Hashmap *m, const char *key, uint32_t h, bool *ret_found)
{
        size_t mask = m->cap - 1, i = h & mask;

        for (;;) {
                const HashmapEntry *e = &m->slots[i];
                if (e->hash == 0) {
                        *ret_found = false;
                        return i;
                }
                if (e->hash == h && strcmp(e->key, key) == 0) {
                        *ret_found = true;
                        return i;
                }
                i = (i + 1) & mask;
        }
}

static int grow(Hashmap *m)
{
        size_t cap = m->cap ? m->cap * 2 : HASHMAP_MIN_CAP;
        HashmapEntry *old = m->slots, *slots;
        size_t old_cap = m->cap;

        if (cap > SIZE_MAX / sizeof(HashmapEntry))
                return -ENOMEM;
        slots = calloc(cap, sizeof(HashmapEntry));
        if (!slots)
                return -ENOMEM;
        m->slots = slots;
        m->cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
                bool found;
                if (old[i].hash == 0)
                        continue;
                size_t j = find_slot(m, old[i].key, old[i].hash, &found);
                m->slots[j] = old[i];
        }
        free(old);
        return 0;
}

void *hashmap_get(const Hashmap *m, const char *key)
{
        bool found;
        size_t i;

        if (m->count == 0)
                return NULL;
        i = find_slot(m, key, hashmap_hash(key), &found);
        return found ? m->slots[i].value : NULL;
}

int hashmap_put(Hashmap *m, const char *key, void *value, void **ret_old)
{
        uint32_t h = hashmap_hash(key);
        bool found;
        size_t i;

        if ((m->count + 1) * HASHMAP_LOAD_DEN > m->cap * HASHMAP_LOAD_NUM) {
                int r = grow(m);
                if (r < 0)
                        return r;
        }
        i = find_slot(m, key, h, &found);
        if (ret_old)
                *ret_old = found ? m->slots[i].value : NULL;
        if (!found)
                m->count++;
        m->slots[i] = (HashmapEntry){ .key = key, .value = value, .hash = h };
        return 0;
}

void *hashmap_remove(Hashmap *m, const char *key)
{
        size_t mask, i, j;
        bool found;
        void *value;

        if (m->count == 0)
                return NULL;
        mask = m->cap - 1;
        i = find_slot(m, key, hashmap_hash(key), &found);
        if (!found)
                return NULL;
        value = m->slots[i].value;
        /* backward-shift: move later members of the probe run into the hole */
        j = i;
        for (;;) {
                j = (j + 1) & mask;
                if (m->slots[j].hash == 0)
                        break;
                size_t home = m->slots[j].hash & mask;
                /* can slot j move to the hole at i? only if its home is not in (i, j] */
                bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
                if (between)
                        continue;
                m->slots[i] = m->slots[j];
                i = j;
        }
        m->slots[i] = (HashmapEntry){ 0 };
        m->count--;
        return value;
}

size_t hashmap_count(const Hashmap *m)
{
        return m->count;
}

void hashmap_done(Hashmap *m)
{
        free(m->slots);
        *m = HASHMAP_INIT;
}

bool hashmap_next(const Hashmap *m, size_t *i, const char **ret_key, void **ret_value)
{
        for (; *i < m->cap; (*i)++)
                if (m->slots[*i].hash != 0) {
                        if (ret_key)
                                *ret_key = m->slots[*i].key;
                        if (ret_value)
                                *ret_value = m->slots[*i].value;
                        (*i)++;
                        return true;
                }
        return false;
}
