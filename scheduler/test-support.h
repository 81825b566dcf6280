/* SPDX-License-Identifier: Apache-2.0 */
/* What the scheduler's unit tests share: a definition made as the scheduler
 * makes one, and a scratch directory removed with everything in it. Header
 * only: every test-*.c of this directory is a test program of its own. */
#pragma once

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "json.h"

/* A definition as the scheduler makes one: validated, stamped with version (NULL: not stamped). */
static inline AppSpec *test_spec(const char *text, const char *version)
{
        JsonErrors errs = { 0 };
        AppSpec *a = NULL;
        json_t *j = NULL;

        assert_int_equal(json_parse(text, strlen(text), NULL, &j, NULL), 0);
        if (app_spec_from_json(j, NULL, &a, &errs) < 0) {
                PacerError e;
                json_errors_to_error(&errs, &e);
                fail_msg("spec does not validate: %s", e.msg);
        }
        json_decref(j);
        if (version)
                assert_int_equal(app_spec_set_version(a, version), 0);
        return a;
}

/* A fresh directory "$TMPDIR/<prefix>-XXXXXX" (TMPDIR only when shorter than 64 bytes) in dir. */
static inline void test_tmpdir(char *dir, size_t size, const char *prefix)
{
        const char *tmp = getenv("TMPDIR");

        snprintf(dir, size, "%s/%s-XXXXXX", tmp && *tmp && strlen(tmp) < 64 ? tmp : "/tmp", prefix);
        assert_non_null(mkdtemp(dir));
}

static inline int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

/* Removes dir and everything in it. */
static inline void test_rmtree(const char *dir)
{
        nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
