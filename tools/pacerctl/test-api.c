/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for api's pure parts: app ids made absolute, paths built with every
 * byte that is not unreserved escaped (slashes of an app id kept), the typed
 * reads with defaults, and the mapping of results to exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "api.h"
#include "cli.h"
#include "macro.h"

static void check_id(const char *in, const char *want)
{
        _cleanup_free_ char *id = api_app_id(in);

        assert_string_equal(id, want);
}

static void test_app_id(void **state)
{
        check_id("web", "/web");
        check_id("/web", "/web");
        check_id("/prod/web/", "/prod/web");
        check_id("prod/web", "/prod/web");
        check_id("/", "/");
        check_id("", "/");
}

static void test_paths(void **state)
{
        _cleanup_free_ char *p1 = api_app_path("/v2/apps", "prod/web", "/restart?force=true");
        _cleanup_free_ char *p2 = api_app_path("/v2/apps", "/a b?c#d%e", NULL);
        _cleanup_free_ char *p3 = api_escape("/dev x&y=\xc3\xa9");

        assert_string_equal(p1, "/v2/apps/prod/web/restart?force=true");
        assert_string_equal(p2, "/v2/apps/a%20b%3Fc%23d%25e");
        assert_string_equal(p3, "%2Fdev%20x%26y%3D%C3%A9");
}

static void test_reads(void **state)
{
        json_t *j = json_pack("{s:s, s:i, s:f, s:s, s:{s:s}}", "deploymentId", "d1", "n", 3, "x", 1.5, "s",
                              "str", "plan", "id", "p1");
        json_t *plan_only = json_pack("{s:{s:s}}", "plan", "id", "p2");

        assert_string_equal(api_str(j, "s"), "str");
        assert_null(api_str(j, "n"));
        assert_null(api_str(NULL, "s"));
        assert_int_equal(api_int(j, "n", 7), 3);
        assert_int_equal(api_int(j, "x", 7), 1);
        assert_int_equal(api_int(j, "s", 7), 7);
        assert_true(api_num(j, "x", 0) == 1.5);
        assert_true(api_num(j, "missing", 2.5) == 2.5);
        assert_string_equal(api_deployment_id(j), "d1");
        assert_string_equal(api_deployment_id(plan_only), "p2");
        json_decref(j);
        json_decref(plan_only);
}

static void test_exit_codes(void **state)
{
        assert_int_equal(cli_exit_code(0), 0);
        assert_int_equal(cli_exit_code(5), 0);
        assert_int_equal(cli_exit_code(-EINVAL), 2);
        assert_int_equal(cli_exit_code(-EHOSTUNREACH), 3);
        assert_int_equal(cli_exit_code(-EINTR), 130);
        assert_int_equal(cli_exit_code(-EIO), 1);
        assert_int_equal(cli_exit_code(-EBUSY), 1);
        assert_int_equal(cli_exit_code(-ENOENT), 1);
        assert_int_equal(cli_exit_code(-ETIME), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_app_id),
                cmocka_unit_test(test_paths),
                cmocka_unit_test(test_reads),
                cmocka_unit_test(test_exit_codes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
