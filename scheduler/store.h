/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler's durable state: objects (kind, key) -> bytes, each its own small record, written in
 * batches that commit all-or-nothing. One interface, several backends (SQLite by default, ZooKeeper
 * for HA); the batch (coalescing, validation) lives here, a backend only writes and reads records.
 *
 * Contract, whatever the backend:
 *   - An open store has one writer: the process that opened it (SQLite: a lock file; ZooKeeper:
 *     leader election on ephemeral sequential nodes).
 *   - store_put()/store_delete() only queue; nothing is durable until store_commit() returns >= 0.
 *   - Within a batch the last write per (kind, key) wins; the batch holds one entry per object, so
 *     its memory is bounded by the number of distinct objects touched, not by the number of calls.
 *   - store_commit() applies the whole batch in one transaction or nothing of it. On failure the
 *     batch stays queued, unchanged (later writes coalesce into it), so the caller can retry;
 *     every queued write is an idempotent upsert or delete, so retrying after an unknown outcome
 *     (an I/O error during the commit itself) is safe.
 *   - Reads (store_load(), store_get()) see committed objects only, never the pending batch.
 *   - A backend that can lose exclusive ownership of the store (ZooKeeper: leadership) fails every
 *     later commit with -ESTALE; the caller must stop acting as the leader. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "error.h"
#include "macro.h"

/* Hard cap on one object's value: large state is many small objects, never one big one. */
#define STORE_OBJECT_MAX (64u * 1024)
/* A key is a non-empty UTF-8 string without control characters (a task id, an app id, ...). */
#define STORE_KEY_MAX 1024
/* A kind is [a-z][a-z0-9_]*. */
#define STORE_KIND_MAX 32
/* Name of the framework a store belongs to (Mesos FrameworkInfo.name, or name/role). */
#define STORE_FRAMEWORK_NAME_MAX 256

/* The kinds the scheduler keeps. */
#define STORE_KIND_APP             "app"             /* key: app id; value: canonical app JSON */
#define STORE_KIND_APP_VERSION     "app_version"     /* key: "<app id>@<version>"; value: app JSON */
#define STORE_KIND_INSTANCE        "instance"        /* key: task id; value: msgpack instance record */
#define STORE_KIND_DEPLOYMENT      "deployment"      /* key: deployment id; value: JSON header */
#define STORE_KIND_DEPLOYMENT_STEP "deployment_step" /* key: "<deployment id>#<index>"; value: JSON */
#define STORE_KIND_META            "meta"            /* key: a name below; value: bytes */

/* Meta keys. The first two are written by the backend at creation and cannot be put or deleted. */
#define STORE_META_SCHEMA_VERSION "schema_version"
#define STORE_META_FRAMEWORK_NAME "framework_name"
#define STORE_META_FRAMEWORK_ID   "framework_id"

/* How hard a commit pushes data to stable storage before it returns. */
typedef enum StoreSync {
        STORE_SYNC_NORMAL, /* SQLite WAL + synchronous=NORMAL: a power loss may lose the last commits */
        STORE_SYNC_FULL,   /* fsync on every commit: a committed batch survives a power loss */
        _STORE_SYNC_MAX,
        _STORE_SYNC_INVALID = -EINVAL,
} StoreSync;

const char *store_sync_to_string(StoreSync s);
StoreSync store_sync_from_string(const char *s);

typedef struct StoreOptions {
        /* Required: a store created for one framework refuses to open for another. */
        const char *framework_name;
        struct {
                const char *data_dir;     /* created (0700) when missing */
                StoreSync sync;           /* default STORE_SYNC_NORMAL */
                uint32_t busy_timeout_ms; /* 0 = STORE_SQLITE_BUSY_TIMEOUT_DEFAULT_MS */
                uint32_t max_pages;       /* cap on the database size in pages; 0 = none (tests) */
                bool skip_check;          /* skip PRAGMA quick_check at open */
        } sqlite;
} StoreOptions;

typedef struct Store Store;

/* Called for each object of a kind. key and data are valid only during the call (copy what you
 * keep); data is never NULL but is not NUL-terminated (parse it with its length: json_loadb()).
 * A negative return stops the iteration and is what store_load() returns. */
typedef int (*store_load_fn)(const char *key, const void *data, size_t len, void *userdata);

/* Queues a copy of data as the value of (kind, key), replacing any write of the same object already
 * queued. -EINVAL for a bad kind or key, -EMSGSIZE past STORE_OBJECT_MAX, -EPERM for a meta key
 * the backend owns, -ENOMEM; on error nothing is queued and the batch is unchanged. */
int store_put(Store *s, const char *kind, const char *key, const void *data, size_t len, PacerError *err);
/* Queues the deletion of (kind, key) (a no-op at commit if it does not exist). Errors as store_put(). */
int store_delete(Store *s, const char *kind, const char *key, PacerError *err);
/* Writes the batch in one transaction. Returns the number of objects written (0 for an empty
 * batch, which touches nothing); on failure nothing of the batch is applied, the batch stays queued
 * and the return is -ENOSPC (disk or database full), -EIO, -EUCLEAN (corrupt), -EBUSY (locked by
 * another process past the busy timeout), -EROFS, -ENOMEM or -ESTALE (ownership lost). */
int store_commit(Store *s, PacerError *err);
/* Number of objects in the pending batch. */
size_t store_pending(const Store *s);
/* Drops the pending batch. */
void store_discard(Store *s);
/* Calls cb for every committed object of a kind (order unspecified). Returns the number of objects
 * visited, the callback's negative return, or a negative errno with err filled. */
int store_load(Store *s, const char *kind, store_load_fn cb, void *userdata, PacerError *err);
/* Reads one committed object into a new NUL-terminated buffer (NUL not counted in *ret_len).
 * -ENOENT when it does not exist. ret_len may be NULL. */
int store_get(Store *s, const char *kind, const char *key, void **ret_data, size_t *ret_len,
              PacerError *err);
/* Drops the pending batch and closes the store; returns NULL. */
Store *store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close);

/* True when kind / key are acceptable (see STORE_KIND_MAX, STORE_KEY_MAX). */
bool store_kind_valid(const char *kind);
bool store_key_valid(const char *key);

/* For quoting a key or name in a message: printf("'%.*s'", STORE_QUOTE(key)) prints at most
 * STORE_QUOTE_MAX bytes and stops before a control character or invalid UTF-8, so messages stay
 * one valid UTF-8 line (they end up in logs and JSON error bodies). */
#define STORE_QUOTE_MAX 64
#define STORE_QUOTE(s)  store_quote_len(s), strempty(s)
int store_quote_len(const char *s);

/* ---- For backends ---------------------------------------------------------------------------- */

/* One queued write: a put (data, len; data is never NULL) or a delete (data == NULL). */
typedef struct StoreWrite {
        char *kind; /* kind and key share one allocation (in the batch's arena, as data) */
        char *key;
        void *data;
        size_t len;
} StoreWrite;

typedef struct StoreOps {
        const char *name; /* "sqlite", "zookeeper" */
        /* Applies writes[0..n) atomically (n > 0); must not keep pointers into them. Returns >= 0 or
         * a negative errno with err filled, having applied nothing. */
        int (*commit)(Store *s, const StoreWrite *writes, size_t n, PacerError *err);
        /* kind is valid; as store_load(). */
        int (*load)(Store *s, const char *kind, store_load_fn cb, void *userdata, PacerError *err);
        /* kind and key are valid; as store_get(). */
        int (*get)(Store *s, const char *kind, const char *key, void **ret_data, size_t *ret_len,
                   PacerError *err);
        /* Releases the backend; the batch is already freed. */
        void (*free)(Store *s);
} StoreOps;

/* A backend embeds a Store as its first member and calls store_init() on it. */
struct Store {
        const StoreOps *ops;
        StoreWrite *writes; /* the pending batch, one entry per (kind, key) */
        size_t n_writes;
        size_t n_allocated;
        uint32_t *index; /* open addressing over writes: 0 = empty slot, else position + 1 */
        size_t n_buckets;
        uint64_t seed; /* hash seed, random per store: keys come from users */
        Arena *batch;  /* the batch's names and values, freed at once by the commit */
};

void store_init(Store *s, const StoreOps *ops);
