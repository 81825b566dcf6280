/* SPDX-License-Identifier: Apache-2.0 */
/* The default store backend: one SQLite database in WAL mode under --data-dir, one row per
 * object, one transaction per commit, and a lock file so that only one scheduler uses the
 * directory. Synchronous calls on local disk; docs/store.md has the format and operations. */
#pragma once

#include <stdint.h>

#include "store.h"

#define STORE_SQLITE_DB_FILE   "pacer.db"
#define STORE_SQLITE_LOCK_FILE "pacer.lock"
/* Layout version kept in meta/schema_version; a newer store is refused, an older one migrated. */
#define STORE_SQLITE_SCHEMA_VERSION 1
/* SQLite header field identifying the file as a Pacer store ("PACR"). */
#define STORE_SQLITE_APPLICATION_ID          0x50414352
#define STORE_SQLITE_BUSY_TIMEOUT_DEFAULT_MS 1000u
/* Page cache per connection, KiB. */
#define STORE_SQLITE_CACHE_KIB 8192
/* The WAL is truncated back to this size after a checkpoint that emptied it. */
#define STORE_SQLITE_WAL_LIMIT (16 * 1024 * 1024)

/* Opens (creating when missing) the store in o->sqlite.data_dir for o->framework_name. Errors,
 * each with a message in err naming the path:
 *   -EBUSY      another process holds the directory's lock file (its pid is named when known)
 *   -EBADMSG    the file is not an SQLite database, or not a Pacer store
 *   -EUCLEAN    the database is corrupt (PRAGMA quick_check), damaged, empty, or missing while
 *               its write-ahead log is not
 *   -EPERM      the store belongs to another framework
 *   -EPROTONOSUPPORT  the store's schema version is newer than this program supports
 *   -EINVAL     bad options; -EACCES, -ENOTDIR, -EIO, -ENOMEM ... from the file system */
int store_sqlite_open(const StoreOptions *o, Store **ret, PacerError *err);

/* Caps the database at this many pages (SQLite's max_page_count; never below its current size, 0 =
 * no cap), so a commit that needs more fails as on a full disk. *ret_pages (may be NULL) is the cap
 * in force. For tests; the scheduler can expose it (option sqlite.max_pages) to simulate a full
 * disk in integration tests. */
int store_sqlite_set_max_pages(Store *s, uint32_t pages, uint32_t *ret_pages);
