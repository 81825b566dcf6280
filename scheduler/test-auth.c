/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for REST API authentication: base64 vectors, credentials and token
 * files (good ones and every refusal, with its line), and the decision for
 * each kind of Authorization header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "macro.h"

#define TOKEN_W "write-token-0123456789abcdef"
#define TOKEN_R "read-token-0123456789abcdef"

static char *write_file(const char *text)
{
        char *path = strdup("/tmp/pacer-test-auth-XXXXXX");
        int fd = mkstemp(path);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        return path;
}

static void test_base64(void **state)
{
        static const struct {
                const char *in, *out;
        } good[] = { { "", "" },        { "Zg==", "f" },        { "Zm8=", "fo" },
                     { "Zm9v", "foo" }, { "Zm9vYg==", "foob" }, { "YWxpY2U6czNjcmV0", "alice:s3cret" } };
        static const char *const bad[] = { "Zm9", "Zm9v=", "Z=9v", "Zm9v====", "Zm=v", "Zm9*", "=Zm9" };
        unsigned char out[64];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                int n = auth_base64_decode(good[i].in, strlen(good[i].in), out, sizeof(out));
                assert_int_equal(n, strlen(good[i].out));
                assert_memory_equal(out, good[i].out, (size_t)n);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(auth_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -EINVAL);
        /* never past out_max */
        assert_int_equal(auth_base64_decode("Zm9vYg==", 8, out, 3), -EINVAL);
}

static void test_open_when_unset(void **state)
{
        PacerError err = { "" };
        char who[AUTH_PRINCIPAL_MAX];
        Auth *a = (Auth *)1;

        assert_int_equal(auth_new(NULL, NULL, &a, &err), 0);
        assert_null(a);
        assert_int_equal(auth_new("", "", &a, &err), 0);
        assert_null(a);
        assert_int_equal(auth_check(NULL, NULL, AUTH_WRITE, who), 0);
}

static void test_bad_credentials(void **state)
{
        static const struct {
                const char *value, *needle;
        } cases[] = {
                { "alice", "expected USER:PASSWORD" },
                { ":pw", "expected USER:PASSWORD" },
                { "alice:", "expected USER:PASSWORD" },
                { "alice:pa\nss", "control character at byte 9" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PacerError err = { "" };
                Auth *a = NULL;
                assert_int_equal(auth_new(cases[i].value, NULL, &a, &err), -EINVAL);
                assert_null(a);
                if (!strstr(err.msg, cases[i].needle))
                        fail_msg("'%s': %s", cases[i].value, err.msg);
        }
}

static void test_bad_token_files(void **state)
{
        static const struct {
                const char *text, *needle;
        } cases[] = {
                { "short\n", ":1: a token must be 16 to 512 characters (it has 5)" },
                { "# c\n" TOKEN_W " admin\n", ":2: access must be 'read' or 'write', not 'admin'" },
                { TOKEN_W " read extra\n", ":1: unexpected 'extra' after the access" },
                { TOKEN_W "\n\n" TOKEN_W " read\n", ":3: the same token as line 1" },
                { "# only comments\n\n", "no token in it" },
                { "", "no token in it" },
                { TOKEN_W "\x01xx\n", ":1: a token must be printable ASCII without spaces" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PacerError err = { "" };
                Auth *a = NULL;
                char *path = write_file(cases[i].text);
                assert_true(auth_new(NULL, path, &a, &err) < 0);
                assert_null(a);
                if (!strstr(err.msg, cases[i].needle) || !strstr(err.msg, path))
                        fail_msg("case %zu: %s", i, err.msg);
                unlink(path);
                free(path);
        }

        PacerError err = { "" };
        Auth *a = NULL;
        assert_int_equal(auth_new(NULL, "/nonexistent/pacer-tokens", &a, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "--http-token-file /nonexistent/pacer-tokens: No such file"));

        /* a line past the cap */
        char *big = malloc(2000);
        memset(big, 'x', 1999);
        big[1999] = 0;
        char *path = write_file(big);
        assert_int_equal(auth_new(NULL, path, &a, &err), -EINVAL);
        assert_non_null(strstr(err.msg, ":1: line longer than"));
        unlink(path);
        free(path);
        free(big);
}

static void test_decisions(void **state)
{
        char *path = write_file("# tokens\n  " TOKEN_W "\n\n" TOKEN_R "\tread\n");
        PacerError err = { "" };
        char who[AUTH_PRINCIPAL_MAX];
        Auth *a = NULL;

        assert_int_equal(auth_new("alice:s3cret", path, &a, &err), 0);
        assert_non_null(a);
        unlink(path);
        free(path);
        assert_string_equal(auth_challenge(a), "Basic realm=\"pacer\"");

        /* nothing, or nothing that is ours: 401 */
        assert_int_equal(auth_check(a, NULL, AUTH_READ, who), 401);
        assert_int_equal(auth_check(a, "Basic YWxpY2U6d3Jvbmc=", AUTH_READ, who), 401); /* alice:wrong */
        assert_int_equal(auth_check(a, "Basic not-base64!", AUTH_READ, who), 401);
        assert_int_equal(auth_check(a, "Basic YWxpY2U6czNjcmV0eA==", AUTH_READ, who), 401); /* a byte more */
        assert_int_equal(auth_check(a, "Bearer nope-nope-nope-nope-nope", AUTH_READ, who), 401);
        assert_int_equal(auth_check(a, "Bearer " TOKEN_W "x", AUTH_READ, who), 401);
        assert_int_equal(auth_check(a, "Digest " TOKEN_W, AUTH_READ, who), 401);
        assert_int_equal(auth_check(a, TOKEN_W, AUTH_READ, who), 401); /* no scheme */
        assert_int_equal(auth_check(a, "Bearer", AUTH_READ, who), 401);

        /* the credentials: everything */
        assert_int_equal(auth_check(a, "Basic YWxpY2U6czNjcmV0", AUTH_WRITE, who), 0);
        assert_string_equal(who, "user alice");
        assert_int_equal(auth_check(a, "basic   YWxpY2U6czNjcmV0", AUTH_WRITE, who), 0);

        /* a full token writes, a read token reads */
        assert_int_equal(auth_check(a, "Bearer " TOKEN_W, AUTH_WRITE, who), 0);
        assert_string_equal(who, "token at line 2");
        assert_int_equal(auth_check(a, "bearer  " TOKEN_R, AUTH_READ, who), 0);
        assert_string_equal(who, "token at line 4");
        assert_int_equal(auth_check(a, "Bearer " TOKEN_R, AUTH_WRITE, who), 403);
        auth_free(a);

        /* tokens only: the challenge says Bearer, and Basic is not accepted */
        path = write_file(TOKEN_W "\n");
        assert_int_equal(auth_new(NULL, path, &a, &err), 0);
        unlink(path);
        free(path);
        assert_string_equal(auth_challenge(a), "Bearer realm=\"pacer\"");
        assert_int_equal(auth_check(a, "Basic YWxpY2U6czNjcmV0", AUTH_READ, who), 401);
        auth_free(a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64),          cmocka_unit_test(test_open_when_unset),
                cmocka_unit_test(test_bad_credentials), cmocka_unit_test(test_bad_token_files),
                cmocka_unit_test(test_decisions),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
