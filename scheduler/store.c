/* SPDX-License-Identifier: Apache-2.0 */
#include "store.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "json.h"

/* A batch this large after a commit is freed rather than kept for reuse, so one burst (recovery,
 * a full resync) does not pin its memory for the life of the process. */
#define STORE_BATCH_KEEP 4096

static const char *const store_sync_table[_STORE_SYNC_MAX] = {
        [STORE_SYNC_NORMAL] = "normal",
        [STORE_SYNC_FULL] = "full",
};

const char *store_sync_to_string(StoreSync s)
{
        if (s < 0 || s >= _STORE_SYNC_MAX)
                return NULL;
        return store_sync_table[s];
}

StoreSync store_sync_from_string(const char *s)
{
        if (!s)
                return _STORE_SYNC_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(store_sync_table); i++)
                if (streq(s, store_sync_table[i]))
                        return (StoreSync)i;
        return _STORE_SYNC_INVALID;
}

bool store_kind_valid(const char *kind)
{
        size_t n;

        if (!kind || !(kind[0] >= 'a' && kind[0] <= 'z'))
                return false;
        for (n = 1; kind[n]; n++) {
                char c = kind[n];
                if (n >= STORE_KIND_MAX)
                        return false;
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

/* Offset of the first ASCII control character in s[0..n), or n. */
static size_t store_find_control(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return i;
        return n;
}

int store_quote_len(const char *s)
{
        size_t n, off;

        if (!s)
                return 0;
        n = strnlen(s, STORE_QUOTE_MAX);
        n = store_find_control(s, n);
        /* a character cut at the end counts as invalid, so this also backs off to a boundary */
        if (!json_utf8_valid(s, n, &off))
                n = off;
        return (int)n;
}

bool store_key_valid(const char *key)
{
        size_t n;

        if (!key)
                return false;
        n = strnlen(key, STORE_KEY_MAX + 1);
        if (n == 0 || n > STORE_KEY_MAX)
                return false;
        /* strict UTF-8 also refuses the overlong C0 80 some encoders use to smuggle a NUL */
        return store_find_control(key, n) == n && json_utf8_valid(key, n, NULL);
}

/* Validates (kind, key) for a write, filling err with what is wrong. */
static int store_check_name(const char *op, const char *kind, const char *key, PacerError *err)
{
        size_t n, off;

        if (!store_kind_valid(kind))
                return pacer_error_set(
                        err, EINVAL,
                        "store %s: invalid kind '%.*s' (want [a-z][a-z0-9_]*, at most %d bytes)", op,
                        STORE_QUOTE(kind), STORE_KIND_MAX);
        if (!key)
                return pacer_error_set(err, EINVAL, "store %s %s: missing key", op, kind);
        n = strnlen(key, STORE_KEY_MAX + 1);
        if (n == 0)
                return pacer_error_set(err, EINVAL, "store %s %s: empty key", op, kind);
        if (n > STORE_KEY_MAX)
                return pacer_error_set(err, EINVAL, "store %s %s: key longer than %d bytes", op, kind,
                                       STORE_KEY_MAX);
        off = store_find_control(key, n);
        if (off < n)
                return pacer_error_set(err, EINVAL, "store %s %s: key has a control character at byte %zu",
                                       op, kind, off);
        if (!json_utf8_valid(key, n, &off))
                return pacer_error_set(err, EINVAL, "store %s %s: key is not valid UTF-8 at byte %zu", op,
                                       kind, off);
        if (streq(kind, STORE_KIND_META) &&
            (streq(key, STORE_META_SCHEMA_VERSION) || streq(key, STORE_META_FRAMEWORK_NAME)))
                return pacer_error_set(err, EPERM, "store %s meta '%s': the key is owned by the store", op,
                                       key);
        return 0;
}

/* FNV-1a over seed, kind, a separator and key: cheap; the per-store random seed makes the
 * bucket a key lands in differ between processes, so keys cannot be picked to collide by
 * trying them on another scheduler. Not a cryptographic defence: a batch is one loop turn. */
static uint64_t store_hash(const Store *s, const char *kind, const char *key)
{
        uint64_t h = 0xcbf29ce484222325ULL ^ s->seed;

        for (const unsigned char *p = (const unsigned char *)kind; *p; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL; /* 0xff never occurs in a kind or in UTF-8 */
        for (const unsigned char *p = (const unsigned char *)key; *p; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        return h ^ (h >> 29);
}

/* Slot of (kind, key) in the index: the one holding it, or the empty one where it would go. */
static size_t store_slot(const Store *s, const char *kind, const char *key)
{
        size_t mask = s->n_buckets - 1, i = store_hash(s, kind, key) & mask;

        for (;; i = (i + 1) & mask) {
                uint32_t v = s->index[i];
                if (v == 0)
                        return i;
                const StoreWrite *w = &s->writes[v - 1];
                if (streq(w->key, key) && streq(w->kind, kind))
                        return i;
        }
}

/* Keeps the index at most half full, so probes stay short. */
static int store_index_grow(Store *s)
{
        size_t n = s->n_buckets ? s->n_buckets * 2 : 64;
        uint32_t *index;

        if (n > UINT32_MAX)
                return -ENOMEM;
        index = calloc(n, sizeof(*index));
        if (!index)
                return -ENOMEM;
        free(s->index);
        s->index = index;
        s->n_buckets = n;
        for (size_t j = 0; j < s->n_writes; j++)
                s->index[store_slot(s, s->writes[j].kind, s->writes[j].key)] = (uint32_t)(j + 1);
        return 0;
}

static int store_queue(Store *s, const char *op, const char *kind, const char *key, const void *data,
                       size_t len, bool put, PacerError *err)
{
        void *copy = NULL;
        char *names;
        size_t slot, kind_len, key_len;
        int r;

        assert(s);
        r = store_check_name(op, kind, key, err);
        if (r < 0)
                return r;
        if (!s->batch && !(s->batch = arena_new()))
                return pacer_error_set(err, ENOMEM, "store %s %s '%.*s': out of memory", op, kind,
                                       STORE_QUOTE(key));
        if (put) {
                if (len > STORE_OBJECT_MAX)
                        return pacer_error_set(
                                err, EMSGSIZE,
                                "store put %s '%.*s': object of %zu bytes exceeds the cap of %u bytes", kind,
                                STORE_QUOTE(key), len, STORE_OBJECT_MAX);
                if (!data && len > 0)
                        return pacer_error_set(err, EINVAL, "store put %s '%.*s': no data", kind,
                                               STORE_QUOTE(key));
                /* always a buffer, NUL-terminated, so a put is never confused with a delete */
                copy = arena_alloc(s->batch, len + 1);
                if (!copy)
                        return pacer_error_set(err, ENOMEM, "store put %s '%.*s': out of memory", kind,
                                               STORE_QUOTE(key));
                if (len > 0)
                        memcpy(copy, data, len);
        }

        if (2 * (s->n_writes + 1) > s->n_buckets) {
                r = store_index_grow(s);
                if (r < 0)
                        return pacer_error_set(err, r, "store %s %s '%.*s': out of memory", op, kind,
                                               STORE_QUOTE(key));
        }
        slot = store_slot(s, kind, key);
        if (s->index[slot] != 0) {
                StoreWrite *w = &s->writes[s->index[slot] - 1];
                w->data = copy; /* the earlier value stays in the arena until the commit */
                w->len = len;
                return 0;
        }

        if (s->n_writes == s->n_allocated) {
                size_t n = s->n_allocated ? s->n_allocated * 2 : 64;
                StoreWrite *w = reallocarray(s->writes, n, sizeof(*w));
                if (!w)
                        return pacer_error_set(err, ENOMEM, "store %s %s '%.*s': out of memory", op, kind,
                                               STORE_QUOTE(key));
                s->writes = w;
                s->n_allocated = n;
        }
        kind_len = strlen(kind);
        key_len = strlen(key);
        names = arena_alloc(s->batch, kind_len + 1 + key_len + 1);
        if (!names)
                return pacer_error_set(err, ENOMEM, "store %s %s '%.*s': out of memory", op, kind,
                                       STORE_QUOTE(key));
        memcpy(names, kind, kind_len + 1);
        memcpy(names + kind_len + 1, key, key_len + 1);
        s->writes[s->n_writes] = (StoreWrite){
                .kind = names,
                .key = names + kind_len + 1,
                .data = copy,
                .len = len,
        };
        s->n_writes++;
        s->index[slot] = (uint32_t)s->n_writes;
        return 0;
}

int store_put(Store *s, const char *kind, const char *key, const void *data, size_t len, PacerError *err)
{
        return store_queue(s, "put", kind, key, data, len, true, err);
}

int store_delete(Store *s, const char *kind, const char *key, PacerError *err)
{
        return store_queue(s, "delete", kind, key, NULL, 0, false, err);
}

size_t store_pending(const Store *s)
{
        return s ? s->n_writes : 0;
}

void store_discard(Store *s)
{
        if (!s)
                return;
        if (s->batch)
                arena_reset(s->batch);
        if (s->n_allocated > STORE_BATCH_KEEP) {
                free(s->writes);
                s->writes = NULL;
                s->n_allocated = 0;
                free(s->index);
                s->index = NULL;
                s->n_buckets = 0;
        } else if (s->index) {
                memset(s->index, 0, s->n_buckets * sizeof(*s->index));
        }
        s->n_writes = 0;
}

int store_commit(Store *s, PacerError *err)
{
        size_t n;
        int r;

        assert(s);
        n = s->n_writes;
        if (n == 0)
                return 0;
        r = s->ops->commit(s, s->writes, n, err);
        if (r < 0)
                return r;
        store_discard(s);
        return n > INT32_MAX ? INT32_MAX : (int)n;
}

int store_load(Store *s, const char *kind, store_load_fn cb, void *userdata, PacerError *err)
{
        assert(s);
        assert(cb);
        if (!store_kind_valid(kind))
                return pacer_error_set(err, EINVAL, "store load: invalid kind '%.*s'", STORE_QUOTE(kind));
        return s->ops->load(s, kind, cb, userdata, err);
}

int store_get(Store *s, const char *kind, const char *key, void **ret_data, size_t *ret_len, PacerError *err)
{
        assert(s);
        assert(ret_data);
        if (!store_kind_valid(kind))
                return pacer_error_set(err, EINVAL, "store get: invalid kind '%.*s'", STORE_QUOTE(kind));
        if (!store_key_valid(key))
                return pacer_error_set(err, EINVAL, "store get %s: invalid key", kind);
        return s->ops->get(s, kind, key, ret_data, ret_len, err);
}

Store *store_close(Store *s)
{
        if (!s)
                return NULL;
        store_discard(s);
        free(s->writes);
        free(s->index);
        arena_free(s->batch);
        s->ops->free(s);
        return NULL;
}

void store_init(Store *s, const StoreOps *ops)
{
        uint64_t seed = 0;

        *s = (Store){ .ops = ops };
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)s;
        }
        s->seed = seed;
}
