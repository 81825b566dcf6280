/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "buf.h"
#include "json.h"
#include "store_sqlite.h"
#include "test-support.h"

#define PERF_INSTANCES 100000
#define SNAPSHOT_MAX   (64u * 1024 * 1024)

static const char *const all_kinds[] = {
        STORE_KIND_APP,        STORE_KIND_APP_VERSION,     STORE_KIND_INSTANCE,
        STORE_KIND_DEPLOYMENT, STORE_KIND_DEPLOYMENT_STEP, STORE_KIND_META,
};

typedef struct Fixture {
        char dir[256];
        char data_dir[300];
        char db[340];
} Fixture;

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        test_tmpdir(f->dir, sizeof(f->dir), "test-store");
        /* nested and missing: open creates it */
        snprintf(f->data_dir, sizeof(f->data_dir), "%s/data/scheduler", f->dir);
        snprintf(f->db, sizeof(f->db), "%s/%s", f->data_dir, STORE_SQLITE_DB_FILE);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;

        test_rmtree(f->dir);
        free(f);
        return 0;
}

static StoreOptions options(const char *dir, const char *framework)
{
        return (StoreOptions){ .framework_name = framework, .sqlite = { .data_dir = dir } };
}

static Store *open_ok(const char *dir)
{
        StoreOptions o = options(dir, "pacer");
        PacerError err = { "" };
        Store *s = NULL;
        int r = store_sqlite_open(&o, &s, &err);

        if (r < 0)
                fail_msg("open %s: %d %s", dir, r, err.msg);
        assert_non_null(s);
        return s;
}

static int open_err(const char *dir, const char *framework, PacerError *err)
{
        StoreOptions o = options(dir, framework);
        Store *s = NULL;
        int r = store_sqlite_open(&o, &s, err);

        assert_true(r < 0);
        assert_null(s);
        return r;
}

static void put_ok(Store *s, const char *kind, const char *key, const char *value)
{
        PacerError err = { "" };
        int r = store_put(s, kind, key, value, strlen(value), &err);

        if (r < 0)
                fail_msg("put %s/%s: %d %s", kind, key, r, err.msg);
}

static int commit_ok(Store *s)
{
        PacerError err = { "" };
        int r = store_commit(s, &err);

        if (r < 0)
                fail_msg("commit: %d %s", r, err.msg);
        return r;
}

/* Returns the committed value as a string, or NULL when missing. */
static char *get_str(Store *s, const char *kind, const char *key)
{
        PacerError err = { "" };
        void *data = NULL;
        size_t len = 0;
        int r = store_get(s, kind, key, &data, &len, &err);

        if (r == -ENOENT)
                return NULL;
        if (r < 0)
                fail_msg("get %s/%s: %d %s", kind, key, r, err.msg);
        assert_int_equal(strlen(data), len);
        return data;
}

static void assert_value(Store *s, const char *kind, const char *key, const char *want)
{
        char *got = get_str(s, kind, key);

        if (!want)
                assert_null(got);
        else {
                assert_non_null(got);
                assert_string_equal(got, want);
        }
        free(got);
}

/* ---- snapshots: every committed object as sorted "kind/key=hex" lines --------------------- */

typedef struct Lines {
        char **v;
        size_t n, cap;
        const char *kind;
} Lines;

static int collect_line(const char *key, const void *data, size_t len, void *userdata)
{
        Lines *l = userdata;
        Buf b = BUF_INIT(SNAPSHOT_MAX);

        assert_int_equal(buf_printf(&b, "%s/%s=", l->kind, key), 0);
        for (size_t i = 0; i < len; i++)
                assert_int_equal(buf_printf(&b, "%02x", ((const unsigned char *)data)[i]), 0);
        if (l->n == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 64;
                l->v = realloc(l->v, l->cap * sizeof(*l->v));
                assert_non_null(l->v);
        }
        l->v[l->n++] = buf_steal(&b, NULL);
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *snapshot(Store *s)
{
        Lines l = { 0 };
        Buf out = BUF_INIT(SNAPSHOT_MAX);
        PacerError err = { "" };

        for (size_t k = 0; k < ELEMENTSOF(all_kinds); k++) {
                l.kind = all_kinds[k];
                if (store_load(s, all_kinds[k], collect_line, &l, &err) < 0)
                        fail_msg("load: %s", err.msg);
        }
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
        for (size_t i = 0; i < l.n; i++) {
                assert_int_equal(buf_puts(&out, l.v[i]), 0);
                assert_int_equal(buf_putc(&out, '\n'), 0);
                free(l.v[i]);
        }
        free(l.v);
        return buf_steal(&out, NULL);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        const uint8_t rec[] = { 0x83, 0xa1, 's', 0x01, 0x00, 0xa1, 'h', 0xc3, 0x00, 0xff };
        PacerError err = { "" };
        char *before;
        void *data;
        size_t len;
        struct stat st;

        put_ok(s, STORE_KIND_APP, "/web", "{\"id\":\"/web\",\"instances\":2}");
        put_ok(s, STORE_KIND_APP_VERSION, "/web@2025-01-01T00:00:00.000Z", "{\"id\":\"/web\"}");
        assert_int_equal(store_put(s, STORE_KIND_INSTANCE, "web.1", rec, sizeof(rec), &err), 0);
        put_ok(s, STORE_KIND_DEPLOYMENT, "d-1", "{}");
        put_ok(s, STORE_KIND_META, STORE_META_FRAMEWORK_ID, "fw-1234");
        assert_int_equal(store_put(s, STORE_KIND_INSTANCE, "web.empty", NULL, 0, &err), 0);
        assert_int_equal(store_pending(s), 6);
        /* reads see committed objects only */
        assert_value(s, STORE_KIND_META, STORE_META_FRAMEWORK_ID, NULL);
        assert_int_equal(commit_ok(s), 6);
        assert_int_equal(store_pending(s), 0);
        /* an empty batch commits nothing and succeeds */
        assert_int_equal(commit_ok(s), 0);

        assert_value(s, STORE_KIND_APP, "/web", "{\"id\":\"/web\",\"instances\":2}");
        assert_value(s, STORE_KIND_META, STORE_META_FRAMEWORK_ID, "fw-1234");
        assert_value(s, STORE_KIND_META, STORE_META_FRAMEWORK_NAME, "pacer");
        assert_value(s, STORE_KIND_META, STORE_META_SCHEMA_VERSION, "1");
        assert_int_equal(store_get(s, STORE_KIND_INSTANCE, "web.1", &data, &len, &err), 0);
        assert_int_equal(len, sizeof(rec));
        assert_memory_equal(data, rec, sizeof(rec)); /* binary, NUL bytes included */
        free(data);
        assert_int_equal(store_get(s, STORE_KIND_INSTANCE, "web.empty", &data, &len, &err), 0);
        assert_int_equal(len, 0);
        free(data);
        assert_int_equal(store_get(s, STORE_KIND_INSTANCE, "web.2", &data, &len, &err), -ENOENT);

        before = snapshot(s);
        s = store_close(s);
        assert_null(s);

        /* the database and its directory are private to the scheduler */
        assert_int_equal(stat(f->db, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(f->data_dir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);

        s = open_ok(f->data_dir);
        char *after = snapshot(s);
        assert_string_equal(before, after);
        free(before);
        free(after);
        store_close(s);
}

static void test_last_write_wins(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        char value[32];

        put_ok(s, STORE_KIND_APP, "/a", "v1");
        put_ok(s, STORE_KIND_APP, "/a", "v2");
        /* the same key under another kind is another object */
        put_ok(s, STORE_KIND_DEPLOYMENT, "/a", "d");
        put_ok(s, STORE_KIND_APP, "/b", "b1");
        assert_int_equal(store_delete(s, STORE_KIND_APP, "/b", NULL), 0);
        assert_int_equal(store_delete(s, STORE_KIND_APP, "/c", NULL), 0);
        put_ok(s, STORE_KIND_APP, "/c", "c-after-delete");
        /* coalescing keeps the batch at one entry per object however many writes */
        for (int i = 0; i < 10000; i++) {
                snprintf(value, sizeof(value), "n%d", i);
                put_ok(s, STORE_KIND_INSTANCE, "t1", value);
        }
        assert_int_equal(store_pending(s), 5);
        assert_int_equal(commit_ok(s), 5);
        assert_value(s, STORE_KIND_APP, "/a", "v2");
        assert_value(s, STORE_KIND_DEPLOYMENT, "/a", "d");
        assert_value(s, STORE_KIND_APP, "/b", NULL);
        assert_value(s, STORE_KIND_APP, "/c", "c-after-delete");
        assert_value(s, STORE_KIND_INSTANCE, "t1", "n9999");

        /* many distinct objects: the index grows and keeps every one findable */
        for (int i = 0; i < 5000; i++) {
                char key[32];
                snprintf(key, sizeof(key), "task-%d", i);
                snprintf(value, sizeof(value), "first-%d", i);
                put_ok(s, STORE_KIND_INSTANCE, key, value);
        }
        for (int i = 0; i < 5000; i += 2) {
                char key[32];
                snprintf(key, sizeof(key), "task-%d", i);
                snprintf(value, sizeof(value), "second-%d", i);
                put_ok(s, STORE_KIND_INSTANCE, key, value);
        }
        assert_int_equal(store_pending(s), 5000);
        assert_int_equal(commit_ok(s), 5000);
        assert_value(s, STORE_KIND_INSTANCE, "task-0", "second-0");
        assert_value(s, STORE_KIND_INSTANCE, "task-1", "first-1");
        assert_value(s, STORE_KIND_INSTANCE, "task-4998", "second-4998");
        assert_value(s, STORE_KIND_INSTANCE, "task-4999", "first-4999");

        /* discard drops the batch without writing */
        put_ok(s, STORE_KIND_APP, "/a", "discarded");
        store_discard(s);
        assert_int_equal(store_pending(s), 0);
        assert_int_equal(commit_ok(s), 0);
        assert_value(s, STORE_KIND_APP, "/a", "v2");
        store_close(s);
}

static void test_delete(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);

        put_ok(s, STORE_KIND_APP, "/a", "a");
        put_ok(s, STORE_KIND_APP, "/b", "b");
        commit_ok(s);
        assert_int_equal(store_delete(s, STORE_KIND_APP, "/a", NULL), 0);
        assert_int_equal(store_delete(s, STORE_KIND_APP, "/never-existed", NULL), 0);
        assert_int_equal(commit_ok(s), 2);
        assert_value(s, STORE_KIND_APP, "/a", NULL);
        assert_value(s, STORE_KIND_APP, "/b", "b");
        store_close(s);

        s = open_ok(f->data_dir);
        assert_value(s, STORE_KIND_APP, "/a", NULL);
        assert_value(s, STORE_KIND_APP, "/b", "b");
        store_close(s);
}

static void test_object_cap(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        _cleanup_free_ char *big = malloc(STORE_OBJECT_MAX + 1);
        PacerError err = { "" };
        void *data;
        size_t len;

        assert_non_null(big);
        memset(big, 'x', STORE_OBJECT_MAX + 1);
        put_ok(s, STORE_KIND_APP, "/small", "small");
        put_ok(s, STORE_KIND_APP, "/over", "previous");
        assert_int_equal(store_put(s, STORE_KIND_APP, "/exact", big, STORE_OBJECT_MAX, &err), 0);
        assert_int_equal(store_put(s, STORE_KIND_APP, "/over", big, STORE_OBJECT_MAX + 1, &err), -EMSGSIZE);
        assert_non_null(strstr(err.msg, "app '/over'"));
        assert_non_null(strstr(err.msg, "65537 bytes exceeds the cap of 65536"));
        /* the rejected put changed nothing: the earlier write of the same object stays */
        assert_int_equal(store_pending(s), 3);
        assert_int_equal(commit_ok(s), 3);
        assert_value(s, STORE_KIND_APP, "/over", "previous");
        assert_value(s, STORE_KIND_APP, "/small", "small");
        assert_int_equal(store_get(s, STORE_KIND_APP, "/exact", &data, &len, &err), 0);
        assert_int_equal(len, STORE_OBJECT_MAX);
        assert_memory_equal(data, big, STORE_OBJECT_MAX);
        free(data);
        store_close(s);

        /* the schema enforces the cap too, against writes that bypass the store (sqlite3 CLI) */
        sqlite3 *db;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "INSERT INTO objects VALUES ('app', '/huge', zeroblob(65537))",
                                      NULL, NULL, NULL),
                         SQLITE_CONSTRAINT);
        sqlite3_close(db);
}

static void test_commit_failure_full(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        PacerError err = { "" };
        char key[64], value[1100];
        uint32_t pages = 0;
        char *before, *after;
        int r;

        for (int i = 0; i < 100; i++) {
                snprintf(key, sizeof(key), "base-%d", i);
                snprintf(value, sizeof(value), "base value %d", i);
                put_ok(s, STORE_KIND_INSTANCE, key, value);
        }
        commit_ok(s);
        before = snapshot(s);

        /* as small as SQLite allows: the current size */
        assert_int_equal(store_sqlite_set_max_pages(s, 1, &pages), 0);
        assert_true(pages >= 1);

        memset(value, 'v', 1024);
        value[1024] = 0;
        for (int i = 0; i < 200; i++) {
                snprintf(key, sizeof(key), "new-%d", i);
                put_ok(s, STORE_KIND_INSTANCE, key, value);
        }
        put_ok(s, STORE_KIND_INSTANCE, "base-1", "updated");
        assert_int_equal(store_delete(s, STORE_KIND_INSTANCE, "base-2", NULL), 0);
        put_ok(s, STORE_KIND_META, STORE_META_FRAMEWORK_ID, "fw-new");
        assert_int_equal(store_pending(s), 203);

        r = store_commit(s, &err);
        assert_int_equal(r, -ENOSPC);
        assert_non_null(strstr(err.msg, "full"));
        assert_non_null(strstr(err.msg, "the batch stays queued"));
        assert_non_null(strstr(err.msg, f->db));
        /* nothing half-applied, the batch intact */
        assert_int_equal(store_pending(s), 203);
        after = snapshot(s);
        assert_string_equal(before, after);
        free(after);
        assert_value(s, STORE_KIND_INSTANCE, "base-1", "base value 1");
        assert_value(s, STORE_KIND_META, STORE_META_FRAMEWORK_ID, NULL);

        /* a second try fails the same way; a write made meanwhile coalesces into the batch */
        put_ok(s, STORE_KIND_INSTANCE, "base-1", "updated again");
        assert_int_equal(store_commit(s, &err), -ENOSPC);
        assert_int_equal(store_pending(s), 203);
        after = snapshot(s);
        assert_string_equal(before, after);
        free(after);

        /* room again: the retry commits the whole batch */
        assert_int_equal(store_sqlite_set_max_pages(s, 0, &pages), 0);
        assert_true(pages > 1000000);
        assert_int_equal(commit_ok(s), 203);
        assert_int_equal(store_pending(s), 0);
        assert_value(s, STORE_KIND_INSTANCE, "base-1", "updated again");
        assert_value(s, STORE_KIND_INSTANCE, "base-2", NULL);
        assert_value(s, STORE_KIND_INSTANCE, "new-199", value);
        after = snapshot(s);
        store_close(s);

        /* and it is durable */
        s = open_ok(f->data_dir);
        char *reopened = snapshot(s);
        assert_string_equal(after, reopened);
        free(reopened);
        free(after);
        free(before);
        store_close(s);
}

/* A write failing in the middle of a batch, where SQLite leaves the transaction open (a trigger
 * standing in for any statement error): the store rolls back what came before it. */
static void test_commit_failure_midway(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        PacerError err = { "" };
        char *before, *after;
        sqlite3 *db;

        put_ok(s, STORE_KIND_APP, "/a", "a1");
        commit_ok(s);
        before = snapshot(s);
        /* another connection changes the schema under the open store, as the sqlite3 CLI could */
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(db,
                             "CREATE TRIGGER poison BEFORE INSERT ON objects WHEN NEW.key = 'poison'"
                             " BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
                             NULL, NULL, NULL),
                SQLITE_OK);
        put_ok(s, STORE_KIND_APP, "/a", "a2");
        put_ok(s, STORE_KIND_APP, "/b", "b");
        put_ok(s, STORE_KIND_APP, "poison", "p");
        put_ok(s, STORE_KIND_APP, "/c", "c");
        assert_int_equal(store_commit(s, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "failed at app 'poison': poisoned"));
        assert_int_equal(store_pending(s), 4);
        after = snapshot(s);
        assert_string_equal(before, after);
        free(after);
        /* the connection is usable: no transaction was left open */
        assert_int_equal(store_delete(s, STORE_KIND_APP, "poison", NULL), 0);
        assert_int_equal(commit_ok(s), 4);
        assert_value(s, STORE_KIND_APP, "/a", "a2");
        assert_value(s, STORE_KIND_APP, "/c", "c");
        store_close(s);
        sqlite3_close(db);
        free(before);
}

/* The hidden option form of the same hook: a store opened with max_pages refuses to grow. */
static void test_max_pages_option(void **state)
{
        Fixture *f = *state;
        StoreOptions o = options(f->data_dir, "pacer");
        PacerError err = { "" };
        char key[32], value[2048];
        Store *s = NULL;

        s = open_ok(f->data_dir);
        store_close(s);
        o.sqlite.max_pages = 1;
        assert_int_equal(store_sqlite_open(&o, &s, &err), 0);
        memset(value, 'z', sizeof(value) - 1);
        value[sizeof(value) - 1] = 0;
        for (int i = 0; i < 50; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                put_ok(s, STORE_KIND_INSTANCE, key, value);
        }
        assert_int_equal(store_commit(s, &err), -ENOSPC);
        store_close(s);
}

typedef struct Counter {
        size_t n;
        size_t bytes;
        uint64_t sum;
        int stop_at;
} Counter;

static int count_object(const char *key, const void *data, size_t len, void *userdata)
{
        Counter *c = userdata;

        c->n++;
        c->bytes += len;
        c->sum += ((const uint8_t *)data)[0] + ((const uint8_t *)data)[len - 1] + (uint8_t)key[0];
        if (c->stop_at > 0 && c->n == (size_t)c->stop_at)
                return -ECANCELED;
        return 0;
}

static void write_file(const char *path, const void *data, size_t len, off_t at, bool truncate)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);

        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
        close(fd);
}

static void copy_file(const char *from, const char *to)
{
        FILE *in = fopen(from, "rb");
        FILE *out = fopen(to, "wb");
        char buf[65536];
        size_t n;

        assert_non_null(in);
        assert_non_null(out);
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
                assert_int_equal(fwrite(buf, 1, n, out), n);
        fclose(in);
        fclose(out);
}

static void fill_random(void *p, size_t n, uint64_t seed)
{
        uint8_t *b = p;

        for (size_t i = 0; i < n; i++) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b[i] = (uint8_t)seed;
        }
}

static void test_corrupt(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        char dir[400], db[440], key[32], value[200];
        uint8_t garbage[4096];
        PacerError err = { "" };
        struct stat st;
        int r;

        for (int i = 0; i < 2000; i++) {
                snprintf(key, sizeof(key), "task-%05d", i);
                snprintf(value, sizeof(value), "instance record %d with some padding to fill pages", i);
                put_ok(s, STORE_KIND_INSTANCE, key, value);
        }
        commit_ok(s);
        store_close(s);
        assert_int_equal(stat(f->db, &st), 0);
        assert_true(st.st_size > 20 * 4096);

        /* garbage over a page in the middle of the table: the header still says SQLite */
        snprintf(dir, sizeof(dir), "%s/copy-page", f->dir);
        snprintf(db, sizeof(db), "%s/%s", dir, STORE_SQLITE_DB_FILE);
        assert_int_equal(mkdir(dir, 0700), 0);
        copy_file(f->db, db);
        fill_random(garbage, sizeof(garbage), 42);
        write_file(db, garbage, sizeof(garbage), (st.st_size / 4096 / 2) * 4096, false);
        r = open_err(dir, "pacer", &err);
        assert_int_equal(r, -EUCLEAN);
        assert_non_null(strstr(err.msg, "is corrupt"));
        assert_non_null(strstr(err.msg, db));
        assert_null(strchr(err.msg, '\n'));
        /* without the check at open, the damage surfaces as a clear error when read */
        StoreOptions o = options(dir, "pacer");
        o.sqlite.skip_check = true;
        r = store_sqlite_open(&o, &s, &err);
        if (r == 0) {
                Counter c = { 0 };
                r = store_load(s, STORE_KIND_INSTANCE, count_object, &c, &err);
                s = store_close(s);
        }
        assert_int_equal(r, -EUCLEAN);
        assert_non_null(strstr(err.msg, "malformed"));

        /* garbage over the header */
        snprintf(dir, sizeof(dir), "%s/copy-header", f->dir);
        snprintf(db, sizeof(db), "%s/%s", dir, STORE_SQLITE_DB_FILE);
        assert_int_equal(mkdir(dir, 0700), 0);
        copy_file(f->db, db);
        write_file(db, garbage, 100, 0, false);
        r = open_err(dir, "pacer", &err);
        assert_int_equal(r, -EBADMSG);
        assert_non_null(strstr(err.msg, "is not an SQLite database"));

        /* a random file that never was a database, and a short text file */
        snprintf(dir, sizeof(dir), "%s/random", f->dir);
        snprintf(db, sizeof(db), "%s/%s", dir, STORE_SQLITE_DB_FILE);
        assert_int_equal(mkdir(dir, 0700), 0);
        fill_random(garbage, sizeof(garbage), 7);
        write_file(db, garbage, sizeof(garbage), 0, true);
        write_file(db, garbage, sizeof(garbage), 4096, false);
        assert_int_equal(open_err(dir, "pacer", &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "is not an SQLite database"));
        write_file(db, "hello\n", 6, 0, true);
        assert_int_equal(open_err(dir, "pacer", &err), -EBADMSG);
        /* refused files are left as they were */
        assert_int_equal(stat(db, &st), 0);
        assert_int_equal(st.st_size, 6);

        /* a real SQLite database of some other program: refused and not switched to WAL */
        snprintf(dir, sizeof(dir), "%s/foreign", f->dir);
        snprintf(db, sizeof(db), "%s/%s", dir, STORE_SQLITE_DB_FILE);
        assert_int_equal(mkdir(dir, 0700), 0);
        sqlite3 *other;
        assert_int_equal(sqlite3_open(db, &other), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(other, "CREATE TABLE t (x); INSERT INTO t VALUES (1)", NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(other);
        assert_int_equal(open_err(dir, "pacer", &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "not a Pacer store"));
        uint8_t header[20];
        FILE *fp = fopen(db, "rb");
        assert_non_null(fp);
        assert_int_equal(fread(header, 1, sizeof(header), fp), sizeof(header));
        fclose(fp);
        assert_int_equal(header[18], 1); /* file format write version 1 = rollback journal, 2 = WAL */

        /* the original is still fine */
        s = open_ok(f->data_dir);
        assert_value(s, STORE_KIND_INSTANCE, "task-01999",
                     "instance record 1999 with some padding to fill pages");
        store_close(s);
}

/* pacer.db is complete from the moment it exists: an empty one is damage, not a new store. */
static void test_creation(void **state)
{
        Fixture *f = *state;
        PacerError err = { "" };
        char path[400];
        struct stat st;
        Store *s;

        /* leftovers of a creation that crashed, garbage included, do not disturb the next one */
        snprintf(path, sizeof(path), "%s/data", f->dir);
        assert_int_equal(mkdir(path, 0700), 0);
        assert_int_equal(mkdir(f->data_dir, 0700), 0);
        snprintf(path, sizeof(path), "%s.new", f->db);
        write_file(path, "garbage", 7, 0, true);
        snprintf(path, sizeof(path), "%s.new-journal", f->db);
        write_file(path, "garbage journal", 15, 0, true);
        s = open_ok(f->data_dir);
        put_ok(s, STORE_KIND_APP, "/a", "a");
        commit_ok(s);
        store_close(s);
        assert_int_equal(stat(path, &st), -1);
        snprintf(path, sizeof(path), "%s.new", f->db);
        assert_int_equal(stat(path, &st), -1);

        /* truncated to nothing */
        write_file(f->db, "", 0, 0, true);
        assert_int_equal(open_err(f->data_dir, "pacer", &err), -EUCLEAN);
        assert_non_null(strstr(err.msg, "is empty"));
        assert_int_equal(stat(f->db, &st), 0);
        assert_int_equal(st.st_size, 0);

        /* removed, but its log is still there */
        assert_int_equal(unlink(f->db), 0);
        snprintf(path, sizeof(path), "%s-wal", f->db);
        write_file(path, "wal frames", 10, 0, true);
        assert_int_equal(open_err(f->data_dir, "pacer", &err), -EUCLEAN);
        assert_non_null(strstr(err.msg, "write-ahead log"));
        assert_int_equal(stat(f->db, &st), -1);

        /* removed together with its log: a new store */
        assert_int_equal(unlink(path), 0);
        s = open_ok(f->data_dir);
        assert_value(s, STORE_KIND_APP, "/a", NULL);
        assert_value(s, STORE_KIND_META, STORE_META_FRAMEWORK_NAME, "pacer");
        store_close(s);
}

static void test_damaged_schema(void **state)
{
        Fixture *f = *state;
        PacerError err = { "" };
        sqlite3 *db;
        Store *s;

        s = open_ok(f->data_dir);
        store_close(s);

        /* a newer program's store */
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(
                        db,
                        "UPDATE objects SET value = CAST('99' AS BLOB) WHERE kind = 'meta' AND key = 'schema_version'",
                        NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(open_err(f->data_dir, "pacer", &err), -EPROTONOSUPPORT);
        assert_non_null(strstr(err.msg, "schema version 99, newer than the 1"));

        /* nonsense in the version */
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(
                        db,
                        "UPDATE objects SET value = CAST('1x' AS BLOB) WHERE kind = 'meta' AND key = 'schema_version'",
                        NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(open_err(f->data_dir, "pacer", &err), -EUCLEAN);
        assert_non_null(strstr(err.msg, "damaged"));

        /* the right header but no table */
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "DROP TABLE objects", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(open_err(f->data_dir, "pacer", &err), -EUCLEAN);
        assert_non_null(strstr(err.msg, "damaged"));
}

static void test_other_framework(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        PacerError err = { "" };
        char want[600];

        put_ok(s, STORE_KIND_APP, "/a", "a");
        commit_ok(s);
        store_close(s);
        assert_int_equal(open_err(f->data_dir, "other", &err), -EPERM);
        snprintf(want, sizeof(want),
                 "store %s belongs to framework 'pacer', not 'other'; use another --data-dir", f->db);
        assert_string_equal(err.msg, want);
        /* the refused open left it alone */
        s = open_ok(f->data_dir);
        assert_value(s, STORE_KIND_APP, "/a", "a");
        store_close(s);
}

static void test_lock(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        PacerError err = { "" };
        char want[64];
        pid_t pid;
        int status;

        /* a second opener in this process: flock locks belong to the open file, so it conflicts */
        assert_int_equal(open_err(f->data_dir, "pacer", &err), -EBUSY);
        snprintf(want, sizeof(want), "(pid %ld, per %s)", (long)getpid(), STORE_SQLITE_LOCK_FILE);
        assert_non_null(strstr(err.msg, want));
        assert_non_null(strstr(err.msg, "is in use by another process"));

        /* and in another process */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                StoreOptions o = options(f->data_dir, "pacer");
                Store *c = NULL;
                _exit(store_sqlite_open(&o, &c, NULL) == -EBUSY ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);

        /* a failed open did not disturb the holder */
        put_ok(s, STORE_KIND_APP, "/still", "mine");
        commit_ok(s);
        store_close(s);

        /* released on close */
        s = open_ok(f->data_dir);
        assert_value(s, STORE_KIND_APP, "/still", "mine");
        store_close(s);
}

static void test_keys(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        PacerError err = { "" };
        char long_key[STORE_KEY_MAX + 2];
        static const char *const odd[] = {
                "/prod/ünïcødé/日本語",   "it's \"quoted\"; DROP TABLE objects; --",
                "../../etc/passwd",       "%s%n\\x00",
                "emoji-\xf0\x9f\x9a\x80", " spaces around ",
        };
        static const char *const bad_keys[] = {
                "",
                "line\nbreak",
                "tab\there",
                "del\x7f",
                "bad-utf8-\xff",
                "overlong-nul-\xc0\x80",
                "surrogate-\xed\xa0\x80",
                "truncated-\xe6\x97",
        };
        static const char *const bad_kinds[] = { "",    "App", "1app",
                                                 "a-b", "a/b", "abcdefghijklmnopqrstuvwxyz0123456" };

        for (size_t i = 0; i < ELEMENTSOF(odd); i++)
                put_ok(s, STORE_KIND_APP, odd[i], odd[i]);
        memset(long_key, 'k', STORE_KEY_MAX);
        long_key[STORE_KEY_MAX] = 0;
        put_ok(s, STORE_KIND_APP, long_key, "longest");
        assert_true(store_kind_valid("abcdefghijklmnopqrstuvwxyz012345"));
        put_ok(s, "abcdefghijklmnopqrstuvwxyz012345", "k", "longest kind");
        assert_int_equal(store_pending(s), ELEMENTSOF(odd) + 2);

        for (size_t i = 0; i < ELEMENTSOF(bad_keys); i++) {
                err.msg[0] = 0;
                assert_int_equal(store_put(s, STORE_KIND_APP, bad_keys[i], "x", 1, &err), -EINVAL);
                assert_true(strlen(err.msg) > 0);
                assert_int_equal(store_delete(s, STORE_KIND_APP, bad_keys[i], NULL), -EINVAL);
        }
        assert_int_equal(store_put(s, STORE_KIND_APP, "overlong-nul-\xc0\x80", "x", 1, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "not valid UTF-8 at byte 13"));
        assert_int_equal(store_put(s, STORE_KIND_APP, "line\nbreak", "x", 1, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "control character at byte 4"));
        assert_int_equal(store_put(s, STORE_KIND_APP, NULL, "x", 1, &err), -EINVAL);
        long_key[STORE_KEY_MAX] = 'k';
        long_key[STORE_KEY_MAX + 1] = 0;
        assert_int_equal(store_put(s, STORE_KIND_APP, long_key, "x", 1, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "longer than 1024"));
        for (size_t i = 0; i < ELEMENTSOF(bad_kinds); i++)
                assert_int_equal(store_put(s, bad_kinds[i], "k", "x", 1, &err), -EINVAL);
        assert_int_equal(store_put(s, NULL, "k", "x", 1, &err), -EINVAL);
        /* the store's own meta rows are not the caller's to change */
        assert_int_equal(store_put(s, STORE_KIND_META, STORE_META_FRAMEWORK_NAME, "x", 1, &err), -EPERM);
        assert_int_equal(store_delete(s, STORE_KIND_META, STORE_META_SCHEMA_VERSION, &err), -EPERM);
        assert_int_equal(store_pending(s), ELEMENTSOF(odd) + 2);

        /* a quoted key is cut on a character boundary: 63 ASCII bytes, then a 2-byte character
         * that would straddle the 64-byte quote */
        char cut[80], want[80];
        memset(cut, 'a', 63);
        strcpy(cut + 63, "\xc3\xa9tail");
        _cleanup_free_ char *big = calloc(1, STORE_OBJECT_MAX + 1);
        assert_int_equal(store_put(s, STORE_KIND_APP, cut, big, STORE_OBJECT_MAX + 1, &err), -EMSGSIZE);
        snprintf(want, sizeof(want), "'%.63s'", cut);
        assert_non_null(strstr(err.msg, want));
        assert_true(json_utf8_valid(err.msg, strlen(err.msg), NULL));
        assert_int_equal(store_quote_len("ab\ncd"), 2);
        assert_int_equal(store_quote_len("ab\xff"), 2);
        assert_int_equal(store_quote_len(NULL), 0);
        assert_int_equal(store_put(s, "bad\xff\nkind", "k", "x", 1, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "invalid kind 'bad'"));

        commit_ok(s);
        store_close(s);
        s = open_ok(f->data_dir);
        for (size_t i = 0; i < ELEMENTSOF(odd); i++)
                assert_value(s, STORE_KIND_APP, odd[i], odd[i]);
        long_key[STORE_KEY_MAX] = 0;
        assert_value(s, STORE_KIND_APP, long_key, "longest");
        assert_int_equal(store_get(s, STORE_KIND_APP, "bad-utf8-\xff", &(void *){ NULL }, NULL, &err),
                         -EINVAL);
        assert_int_equal(store_load(s, "App", collect_line, NULL, &err), -EINVAL);
        store_close(s);
}

static void test_load_stops(void **state)
{
        Fixture *f = *state;
        Store *s = open_ok(f->data_dir);
        Counter c = { .stop_at = 2 };

        put_ok(s, STORE_KIND_APP, "/a", "a");
        put_ok(s, STORE_KIND_APP, "/b", "b");
        put_ok(s, STORE_KIND_APP, "/c", "c");
        commit_ok(s);
        assert_int_equal(store_load(s, STORE_KIND_APP, count_object, &c, NULL), -ECANCELED);
        assert_int_equal(c.n, 2);
        /* the statement was reset: the next load starts over */
        c = (Counter){ 0 };
        assert_int_equal(store_load(s, STORE_KIND_APP, count_object, &c, NULL), 3);
        assert_int_equal(c.n, 3);
        c = (Counter){ 0 };
        assert_int_equal(store_load(s, STORE_KIND_DEPLOYMENT, count_object, &c, NULL), 0);
        store_close(s);
}

static void test_options(void **state)
{
        Fixture *f = *state;
        StoreOptions o = options(f->data_dir, "pacer");
        PacerError err = { "" };
        char file[400];
        Store *s = NULL;

        o.framework_name = "";
        assert_int_equal(store_sqlite_open(&o, &s, &err), -EINVAL);
        o.framework_name = "bad\x01name";
        assert_int_equal(store_sqlite_open(&o, &s, &err), -EINVAL);
        o.framework_name = "pacer";
        o.sqlite.data_dir = NULL;
        assert_int_equal(store_sqlite_open(&o, &s, &err), -EINVAL);
        o.sqlite.data_dir = f->data_dir;
        o.sqlite.sync = (StoreSync)7;
        assert_int_equal(store_sqlite_open(&o, &s, &err), -EINVAL);
        assert_null(s);

        /* a data directory that is a file */
        snprintf(file, sizeof(file), "%s/plain-file", f->dir);
        write_file(file, "x", 1, 0, true);
        o = options(file, "pacer");
        assert_int_equal(store_sqlite_open(&o, &s, &err), -ENOTDIR);
        assert_non_null(strstr(err.msg, file));

        /* FULL sync opens and works */
        o = options(f->data_dir, "pacer");
        o.sqlite.sync = STORE_SYNC_FULL;
        assert_int_equal(store_sqlite_open(&o, &s, &err), 0);
        put_ok(s, STORE_KIND_APP, "/a", "a");
        assert_int_equal(commit_ok(s), 1);
        store_close(s);

        assert_int_equal(store_sync_from_string("full"), STORE_SYNC_FULL);
        assert_int_equal(store_sync_from_string("normal"), STORE_SYNC_NORMAL);
        assert_int_equal(store_sync_from_string("FULL"), -EINVAL);
        assert_int_equal(store_sync_from_string(NULL), -EINVAL);
        assert_string_equal(store_sync_to_string(STORE_SYNC_FULL), "full");
        assert_null(store_sync_to_string(_STORE_SYNC_MAX));
        assert_null(store_close(NULL));
        assert_int_equal(store_sqlite_set_max_pages(NULL, 1, NULL), -EINVAL);
}

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Not a timed assertion: prints what recovery costs, and checks it loads everything. */
static void test_perf_100k(void **state)
{
        Fixture *f = *state;
        StoreOptions o = options(f->data_dir, "pacer");
        PacerError err = { "" };
        uint8_t rec[256];
        char key[96];
        Counter c = { 0 };
        uint64_t want_sum = 0;
        size_t want_bytes = 0;
        double t0, t_put, t_commit, t_open_check, t_open_nocheck, t_load, t_small, t_small_full;
        struct stat st;
        Store *s;

        s = open_ok(f->data_dir);
        t0 = now_ms();
        for (int i = 0; i < PERF_INSTANCES; i++) {
                size_t len = 180 + (size_t)(i % 41); /* 180..220 bytes */
                fill_random(rec, len, (uint64_t)i * 2654435761u + 1);
                snprintf(key, sizeof(key), "prod_web-frontend-%d.%08x-4c1e-11ef-9a3b-0242ac1200%02d",
                         i % 500, (unsigned)i, i % 100);
                assert_int_equal(store_put(s, STORE_KIND_INSTANCE, key, rec, len, &err), 0);
                want_bytes += len;
                want_sum += rec[0] + rec[len - 1] + (uint8_t)key[0];
        }
        t_put = now_ms() - t0;
        assert_int_equal(store_pending(s), PERF_INSTANCES);
        t0 = now_ms();
        assert_int_equal(commit_ok(s), PERF_INSTANCES);
        t_commit = now_ms() - t0;

        /* the per-turn case: small batches (10 updates) */
        t0 = now_ms();
        for (int turn = 0; turn < 1000; turn++) {
                for (int j = 0; j < 10; j++) {
                        int i = (turn * 10 + j) * 7 % PERF_INSTANCES;
                        size_t len = 180 + (size_t)(i % 41);
                        fill_random(rec, len, (uint64_t)i * 2654435761u + 1);
                        snprintf(key, sizeof(key), "prod_web-frontend-%d.%08x-4c1e-11ef-9a3b-0242ac1200%02d",
                                 i % 500, (unsigned)i, i % 100);
                        assert_int_equal(store_put(s, STORE_KIND_INSTANCE, key, rec, len, &err), 0);
                }
                assert_int_equal(commit_ok(s), 10);
        }
        t_small = (now_ms() - t0) / 1000;
        store_close(s);

        assert_int_equal(stat(f->db, &st), 0);

        t0 = now_ms();
        s = open_ok(f->data_dir);
        t_open_check = now_ms() - t0;
        store_close(s);

        o.sqlite.skip_check = true;
        t0 = now_ms();
        assert_int_equal(store_sqlite_open(&o, &s, &err), 0);
        t_open_nocheck = now_ms() - t0;
        t0 = now_ms();
        assert_int_equal(store_load(s, STORE_KIND_INSTANCE, count_object, &c, &err), PERF_INSTANCES);
        t_load = now_ms() - t0;
        assert_int_equal(c.n, PERF_INSTANCES);
        assert_int_equal(c.bytes, want_bytes);
        assert_true(c.sum == want_sum);
        store_close(s);

        o.sqlite.skip_check = false;
        o.sqlite.sync = STORE_SYNC_FULL;
        assert_int_equal(store_sqlite_open(&o, &s, &err), 0);
        t0 = now_ms();
        for (int turn = 0; turn < 100; turn++) {
                for (int j = 0; j < 10; j++) {
                        snprintf(key, sizeof(key), "full-%d-%d", turn, j);
                        assert_int_equal(store_put(s, STORE_KIND_INSTANCE, key, rec, 200, &err), 0);
                }
                assert_int_equal(commit_ok(s), 10);
        }
        t_small_full = (now_ms() - t0) / 100;
        store_close(s);

        print_message("store perf: %d instances, %zu value bytes, database %.1f MiB\n", PERF_INSTANCES,
                      want_bytes, st.st_size / 1048576.0);
        print_message("store perf: queue 100k puts %.1f ms; commit 100k in one transaction %.1f ms\n", t_put,
                      t_commit);
        print_message("store perf: open with quick_check %.1f ms, without %.1f ms (quick_check ~%.1f ms)\n",
                      t_open_check, t_open_nocheck, t_open_check - t_open_nocheck);
        print_message("store perf: load 100k %.1f ms (%.0f rows/s)\n", t_load,
                      PERF_INSTANCES / (t_load / 1e3));
        print_message("store perf: commit of 10 updates: %.3f ms (NORMAL), %.3f ms (FULL)\n", t_small,
                      t_small_full);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_last_write_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_object_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_failure_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_failure_midway, setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_pages_option, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_creation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_damaged_schema, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_framework, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_load_stops, setup, teardown),
                cmocka_unit_test_setup_teardown(test_options, setup, teardown),
                cmocka_unit_test_setup_teardown(test_perf_100k, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
