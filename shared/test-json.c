/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for json: the bounded parser (size and depth refused before jansson
 * runs, truncated, non-UTF-8, duplicate keys, NUL bytes, huge numbers), paths
 * in Marathon's form, error collection and the 422 body, the typed getters,
 * UTF-8 validation and capped serialisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "json.h"

#define MIB (1024u * 1024)

static json_t *parse_ok(const char *s)
{
        PacerError err = { "" };
        json_t *j = NULL;

        if (json_parse(s, strlen(s), NULL, &j, &err) != 0)
                fail_msg("'%s' was rejected: %s", s, err.msg);
        assert_non_null(j);
        return j;
}

/* A message must be safe to log and to put into JSON: valid UTF-8, no control characters. */
static void assert_clean_message(const char *msg)
{
        assert_true(json_utf8_valid(msg, strlen(msg), NULL));
        for (const char *p = msg; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        fail_msg("control character 0x%02x in message \"%s\"", (unsigned char)*p, msg);
}

/* Asserts json_parse(data, len) fails with code, leaves *ret alone and that
 * the message contains each NULL-terminated fragment. */
static void assert_parse_fails(const char *data, size_t len, const JsonLimits *limits, int code, ...)
{
        json_t *sentinel = (json_t *)&sentinel, *j = sentinel;
        PacerError err = { "" };
        const char *frag;
        va_list ap;
        int r;

        r = json_parse(data, len, limits, &j, &err);
        if (r != code)
                fail_msg("got %d, want %d (%s)", r, code, err.msg);
        assert_ptr_equal(j, sentinel);
        assert_true(strlen(err.msg) > 0);
        assert_clean_message(err.msg);
        va_start(ap, code);
        while ((frag = va_arg(ap, const char *)))
                if (!strstr(err.msg, frag))
                        fail_msg("message \"%s\" lacks \"%s\"", err.msg, frag);
        va_end(ap);
}

#define assert_parse_fails_str(s, code, ...) \
        assert_parse_fails((s), strlen(s), NULL, (code), __VA_ARGS__, NULL)

static void test_parse_valid(void **state)
{
        json_t *j;

        j = parse_ok("{\"id\":\"/web\",\"instances\":3,\"cpus\":0.5,\"env\":{\"A\":\"b\"},\"ports\":[1,2]}");
        assert_true(json_is_object(j));
        assert_string_equal(json_string_value(json_object_get(j, "id")), "/web");
        assert_int_equal(json_integer_value(json_object_get(j, "instances")), 3);
        json_decref(j);

        /* any value at the top: Consul's /v1/status/leader answers with a bare string */
        j = parse_ok("\"127.0.0.1:8300\"");
        assert_string_equal(json_string_value(j), "127.0.0.1:8300");
        json_decref(j);
        j = parse_ok(" [] ");
        assert_true(json_is_array(j));
        json_decref(j);

        /* the data need not be NUL-terminated: only len bytes are read */
        const char buf[] = { '[', '1', ']', 'x', 'x' };
        j = NULL;
        assert_int_equal(json_parse(buf, 3, NULL, &j, NULL), 0);
        assert_int_equal(json_array_size(j), 1);
        json_decref(j);
}

static void test_parse_size_cap(void **state)
{
        JsonLimits small = { .body_max = 16 };
        size_t big = 10 * MIB;
        char *body;
        json_t *j;

        /* 10 MiB: refused by its size alone; jansson never sees it (its messages
         * carry a line and column, and it would complain about the nesting). */
        body = malloc(big);
        assert_non_null(body);
        memset(body, '[', big);
        assert_parse_fails(body, big, NULL, -EMSGSIZE, "JSON body of 10485760 bytes",
                           "limit of 1048576 bytes", "byte offset 1048576", "not parsed", NULL);
        free(body);

        /* the cap is inclusive */
        assert_int_equal(json_parse("[1,2,3,4,5,6,7]", 15, &small, &j, NULL), 0);
        json_decref(j);
        assert_int_equal(json_parse("[1,2,3,4,5,6,78]", 16, &small, &j, NULL), 0);
        json_decref(j);
        assert_parse_fails("[1,2,3,4,5,6,789]", 17, &small, -EMSGSIZE, "17 bytes", "limit of 16 bytes",
                           NULL);
}

static char *nested(size_t depth, const char *inner)
{
        size_t il = strlen(inner);
        char *s = malloc(2 * depth + il + 1);

        assert_non_null(s);
        memset(s, '[', depth);
        memcpy(s + depth, inner, il);
        memset(s + depth + il, ']', depth);
        s[2 * depth + il] = 0;
        return s;
}

static void test_parse_depth(void **state)
{
        JsonLimits lax = { .body_max = 64 * MIB, .depth_max = 1000000 };
        JsonLimits two = { .depth_max = 2 };
        char *s;
        json_t *j;

        /* 100000 levels: the pre-scan stops at the 33rd bracket, jansson is not called */
        s = nested(100000, "");
        assert_parse_fails(s, strlen(s), NULL, -EINVAL, "nested deeper than 32 levels", "line 1, column 33",
                           "byte offset 32", "not parsed", NULL);
        /* with our cap lifted, jansson's own recursion limit still holds, without a crash */
        assert_parse_fails(s, strlen(s), &lax, -EINVAL, "invalid JSON at line 1", NULL);
        free(s);

        s = nested(JSON_DEPTH_MAX_DEFAULT, "1");
        j = parse_ok(s);
        json_decref(j);
        free(s);
        s = nested(JSON_DEPTH_MAX_DEFAULT + 1, "1");
        assert_parse_fails(s, strlen(s), NULL, -EINVAL, "nested deeper than 32 levels", NULL);
        free(s);

        /* objects count as well as arrays, and the position says where */
        assert_parse_fails("{\"a\":\n {\"b\":\n  {\"c\":1}}}", 24, &two, -EINVAL, "deeper than 2 levels",
                           "line 3, column 3", "byte offset 15", NULL);

        /* brackets inside strings do not count, escaped quotes do not end them */
        assert_int_equal(json_parse("[\"[[[[{{{{\"]", 12, &two, &j, NULL), 0);
        json_decref(j);
        assert_int_equal(json_parse("[\"\\\"[[[[\", 1]", 13, &two, &j, NULL), 0);
        json_decref(j);
        /* an escaped backslash does end the escape: the brackets after it are real */
        assert_parse_fails("[\"\\\\\", [[1]]]", 13, &two, -EINVAL, "deeper than 2 levels", NULL);
}

static void test_parse_truncated(void **state)
{
        const char *doc =
                "{\"id\":\"/web\",\"cmd\":\"sleep 100\",\"instances\":2,\"healthChecks\":[{\"protocol\":"
                "\"HTTP\",\"portIndex\":0,\"path\":\"/ping\"}],\"labels\":{\"consul\":\"web\"}}";
        json_t *j;

        j = parse_ok(doc);
        json_decref(j);
        /* every proper prefix is invalid and says where it ended */
        for (size_t len = 1; len < strlen(doc); len++)
                assert_parse_fails(doc, len, NULL, -EINVAL, "invalid JSON at line 1, column", NULL);

        assert_parse_fails_str("{\"id\": \"abc\"", -EINVAL, "line 1, column 12", "'}' expected", NULL);
        assert_parse_fails_str("", -EINVAL, "empty body", NULL);
        assert_parse_fails_str("   \n ", -EINVAL, "invalid JSON at line 2", NULL);
        assert_parse_fails_str("[1] x", -EINVAL, "end of file expected", NULL);
        assert_parse_fails_str("[tru]", -EINVAL, "invalid token", NULL);
        assert_parse_fails_str("]]]]", -EINVAL, "invalid JSON", NULL);
}

static void test_parse_invalid_utf8(void **state)
{
        static const char *const bad[] = {
                "{\"a\":\"\xff\"}",             /* never valid */
                "{\"a\":\"\xc0\xaf\"}",         /* overlong '/' */
                "{\"a\":\"\xed\xa0\x80\"}",     /* UTF-16 surrogate */
                "{\"a\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
                "{\"a\":\"\xe2\x82\"}",         /* cut short */
                "{\"a\xfe\":1}",                /* in a key */
                "[\"\\ud800\"]",                /* lone surrogate escape */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_parse_fails(bad[i], strlen(bad[i]), NULL, -EINVAL, "invalid JSON at line 1", NULL);
        /* the offending byte is named, not copied raw into the message */
        assert_parse_fails_str("{\"a\":\"\xff\"}", -EINVAL, "0xff", NULL);

        json_t *j = parse_ok("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
        assert_string_equal(json_string_value(json_object_get(j, "a")), "é€😀");
        json_decref(j);
}

static void test_parse_duplicates_nul_numbers(void **state)
{
        const char with_nul[] = "{\"a\":\n\"x\0y\"}";
        char digits[100010];
        json_t *j;

        assert_parse_fails_str("{\"a\":1,\"a\":2}", -EINVAL, "duplicate object key", "line 1, column 10",
                               NULL);
        assert_parse_fails_str("{\"x\":{\"a\":1,\"b\":{},\"a\":[]}}", -EINVAL, "duplicate", NULL);

        assert_parse_fails(with_nul, sizeof(with_nul) - 1, NULL, -EINVAL, "NUL byte at line 2, column 3",
                           "byte offset 8", NULL);
        assert_parse_fails_str("[\"\\u0000\"]", -EINVAL, "NUL character", NULL);

        assert_parse_fails_str("[1e400]", -EINVAL, "real number overflow", NULL);
        assert_parse_fails_str("[99999999999999999999]", -EINVAL, "too big integer", NULL);
        assert_parse_fails_str("[-9223372036854775809]", -EINVAL, "too big negative integer", NULL);
        digits[0] = '[';
        memset(digits + 1, '7', 100000);
        strcpy(digits + 100001, "]");
        assert_parse_fails_str(digits, -EINVAL, "invalid JSON", NULL);

        j = parse_ok("[-9223372036854775808, 9223372036854775807, 1e308, 1e-400]");
        assert_true(json_integer_value(json_array_get(j, 0)) == INT64_MIN);
        assert_true(json_integer_value(json_array_get(j, 1)) == INT64_MAX);
        json_decref(j);
}

static void test_utf8_valid(void **state)
{
        static const struct {
                const char *s;
                bool ok;
                size_t offset;
        } cases[] = {
                { "", true, 0 },
                { "plain ascii", true, 0 },
                { "\xc3\xa9", true, 0 },
                { "\xe2\x82\xac", true, 0 },
                { "\xf0\x9f\x98\x80", true, 0 },
                { "\xf4\x8f\xbf\xbf", true, 0 }, /* U+10FFFF */
                { "\xef\xbf\xbd", true, 0 },     /* U+FFFD */
                { "a\x80", false, 1 },
                { "ab\xc3", false, 2 },
                { "\xc0\x80", false, 0 },
                { "\xc1\xbf", false, 0 },
                { "\xe0\x80\x80", false, 0 },
                { "x\xed\xa0\x80", false, 1 },
                { "\xf4\x90\x80\x80", false, 0 },
                { "\xf0\x8f\xbf\xbf", false, 0 },
                { "\xf8\x88\x80\x80\x80", false, 0 },
                { "ok\xfe", false, 2 },
                { "\xe2\x28\xa1", false, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t off = 999;
                bool ok = json_utf8_valid(cases[i].s, strlen(cases[i].s), &off);
                if (ok != cases[i].ok)
                        fail_msg("case %zu: got %d", i, ok);
                assert_int_equal(off, cases[i].ok ? 999 : cases[i].offset);
        }
        /* embedded NUL is valid UTF-8 (callers that care check for it) */
        assert_true(json_utf8_valid("a\0b", 3, NULL));
}

static void test_path_render(void **state)
{
        JsonPath checks = JSON_PATH_KEY(NULL, "healthChecks"), first = JSON_PATH_INDEX(&checks, 0);
        JsonPath env = JSON_PATH_KEY(NULL, "env"), root_item = JSON_PATH_INDEX(NULL, 3);
        JsonPath a = JSON_PATH_KEY(NULL, "a"), a1 = JSON_PATH_INDEX(&a, 1), a12 = JSON_PATH_INDEX(&a1, 2);
        JsonPath chain[40];
        char out[JSON_PATH_MAX], key[400];

        assert_string_equal(json_path_render(NULL, NULL, out, sizeof(out)), "/");
        assert_string_equal(json_path_render(NULL, "id", out, sizeof(out)), "/id");
        assert_string_equal(json_path_render(&first, "portIndex", out, sizeof(out)),
                            "/healthChecks(0)/portIndex");
        assert_string_equal(json_path_render(&first, NULL, out, sizeof(out)), "/healthChecks(0)");
        assert_string_equal(json_path_render(&env, "FOO", out, sizeof(out)), "/env/FOO");
        assert_string_equal(json_path_render(&root_item, "id", out, sizeof(out)), "/(3)/id");
        assert_string_equal(json_path_render(&a12, NULL, out, sizeof(out)), "/a(1)(2)");

        /* too long: cut, marked, within the buffer */
        memset(key, 'k', 300);
        key[300] = 0;
        json_path_render(&env, key, out, sizeof(out));
        assert_int_equal(strlen(out), sizeof(out) - 1);
        assert_true(strneq(out, "/env/kkk", 8));
        assert_string_equal(out + strlen(out) - 3, "...");
        /* cut on a character boundary */
        for (size_t i = 0; i < 199; i++)
                memcpy(key + 2 * i, "\xc3\xa9", 2);
        key[398] = 0;
        for (size_t size = 8; size <= sizeof(out); size++) {
                json_path_render(&env, key, out, size);
                assert_true(strlen(out) < size);
                assert_true(json_utf8_valid(out, strlen(out), NULL));
        }
        /* too deep: the innermost segments are kept */
        chain[0] = JSON_PATH_KEY(NULL, "s0");
        for (size_t i = 1; i < ELEMENTSOF(chain); i++)
                chain[i] = JSON_PATH_KEY(&chain[i - 1], "s");
        json_path_render(&chain[39], "leaf", out, sizeof(out));
        assert_true(strneq(out, "/.../s/s", 8));
        assert_string_equal(out + strlen(out) - 7, "/s/leaf");
        assert_null(strstr(out, "s0"));
        /* a buffer too small for anything useful stays a valid string */
        assert_string_equal(json_path_render(&env, "FOO", out, 4), "");
}

static void test_errors_render(void **state)
{
        JsonPath checks = JSON_PATH_KEY(NULL, "healthChecks"), second = JSON_PATH_INDEX(&checks, 1);
        JsonErrors errs = {};
        PacerError err = { "untouched" };
        Buf b = BUF_INIT(4096);

        assert_int_equal(json_errors_count(&errs), 0);
        assert_int_equal(json_errors_to_error(&errs, &err), 0);
        assert_string_equal(err.msg, "untouched");

        json_errors_add(&errs, NULL, "id", "must not be empty");
        json_errors_add(&errs, &second, "portIndex", "must be between %d and %d (got %d)", 0, 10, 99);
        json_errors_add(&errs, NULL, "id", "must be an absolute path");
        json_errors_add(&errs, NULL, NULL, "object-level problem");
        assert_int_equal(json_errors_count(&errs), 4);

        assert_int_equal(json_errors_render(&errs, &b), 0);
        assert_string_equal(buf_str(&b),
                            "{\"message\":\"Object is not valid\",\"details\":["
                            "{\"path\":\"/id\",\"errors\":[\"must not be empty\",\"must be an "
                            "absolute path\"]},"
                            "{\"path\":\"/healthChecks(1)/portIndex\",\"errors\":[\"must be between "
                            "0 and 10 (got 99)\"]},"
                            "{\"path\":\"/\",\"errors\":[\"object-level problem\"]}]}");
        buf_done(&b);

        assert_int_equal(json_errors_to_error(&errs, &err), -EINVAL);
        assert_string_equal(err.msg, "/id: must not be empty (and 3 more errors)");

        /* a NULL collector is allowed: validation without reporting */
        json_errors_add(NULL, NULL, "id", "ignored");
        assert_int_equal(json_errors_count(NULL), 0);
}

static void test_errors_cap_and_hostile(void **state)
{
        JsonErrors errs = {};
        PacerError err;
        Buf b = BUF_INIT(64 * 1024);
        char key[16], longmsg[600];
        json_t *body, *details, *last;

        for (int i = 0; i < 40; i++) {
                snprintf(key, sizeof(key), "f%d", i);
                json_errors_add(&errs, NULL, key, "bad %d", i);
        }
        assert_int_equal(errs.n, JSON_ERRORS_MAX);
        assert_int_equal(errs.dropped, 40 - JSON_ERRORS_MAX);
        assert_int_equal(json_errors_count(&errs), 40);
        body = json_errors_to_json(&errs);
        assert_non_null(body);
        details = json_object_get(body, "details");
        assert_int_equal(json_array_size(details), JSON_ERRORS_MAX + 1);
        last = json_array_get(details, JSON_ERRORS_MAX);
        assert_string_equal(json_string_value(json_object_get(last, "path")), "/");
        assert_string_equal(json_string_value(json_array_get(json_object_get(last, "errors"), 0)),
                            "8 more errors not shown");
        json_decref(body);
        assert_int_equal(json_errors_to_error(&errs, &err), -EINVAL);
        assert_string_equal(err.msg, "/f0: bad 0 (and 39 more errors)");

        /* long multi-byte messages are cut on a character boundary; stray bytes
         * from a caller's %s are replaced so that the body stays valid JSON */
        errs = (JsonErrors){};
        for (size_t i = 0; i < 299; i++)
                memcpy(longmsg + 2 * i, "\xc3\xa9", 2);
        longmsg[598] = 0;
        json_errors_add(&errs, NULL, "a", "%s", longmsg);
        json_errors_add(&errs, NULL, "b\xff", "value '%s'", "x\xfey");
        assert_true(strlen(errs.entries[0].message) < JSON_ERROR_MESSAGE_MAX);
        assert_true(json_utf8_valid(errs.entries[0].message, strlen(errs.entries[0].message), NULL));
        assert_string_equal(errs.entries[0].message + strlen(errs.entries[0].message) - 3, "...");
        assert_string_equal(errs.entries[1].path, "/b?");
        assert_string_equal(errs.entries[1].message, "value 'x?y'");
        assert_int_equal(json_errors_render(&errs, &b), 0);
        buf_done(&b);
}

static void test_get_string(void **state)
{
        json_t *o = parse_ok("{\"id\":\"/web\",\"n\":1,\"empty\":\"\",\"nul\":null,\"label\":\"a\\nb\","
                             "\"del\":\"x\\u007f\",\"long\":\"abcdefghij\"}");
        JsonPath labels = JSON_PATH_KEY(NULL, "labels");
        JsonErrors errs = {};
        const char *s = "default";

        assert_int_equal(json_get_string(o, NULL, "id", JSON_GET_REQUIRED, 255, &s, &errs), 1);
        assert_string_equal(s, "/web");
        s = "default";
        assert_int_equal(json_get_string(o, NULL, "missing", 0, 0, &s, &errs), 0);
        assert_int_equal(json_get_string(o, NULL, "nul", 0, 0, &s, &errs), 0);
        assert_string_equal(s, "default");
        assert_int_equal(json_get_string(o, NULL, "empty", 0, 0, &s, &errs), 1);
        assert_string_equal(s, "");
        assert_int_equal(json_get_string(o, NULL, "long", 0, 10, &s, &errs), 1);
        assert_int_equal(json_get_string(o, NULL, "label", 0, 0, &s, &errs), 1);
        assert_int_equal(json_errors_count(&errs), 0);

        s = "default";
        assert_int_equal(json_get_string(o, NULL, "missing", JSON_GET_REQUIRED, 0, &s, &errs), -EINVAL);
        assert_int_equal(json_get_string(o, NULL, "nul", JSON_GET_REQUIRED, 0, &s, &errs), -EINVAL);
        assert_int_equal(json_get_string(o, NULL, "n", 0, 0, &s, &errs), -EINVAL);
        assert_int_equal(json_get_string(o, NULL, "empty", JSON_GET_NONEMPTY, 0, &s, &errs), -EINVAL);
        assert_int_equal(json_get_string(o, NULL, "long", 0, 9, &s, &errs), -EINVAL);
        assert_int_equal(json_get_string(o, &labels, "label", JSON_GET_NO_CONTROL, 0, &s, &errs), -EINVAL);
        assert_int_equal(json_get_string(o, NULL, "del", JSON_GET_NO_CONTROL, 0, &s, &errs), -EINVAL);
        assert_string_equal(s, "default");

        assert_int_equal(json_errors_count(&errs), 7);
        assert_string_equal(errs.entries[0].path, "/missing");
        assert_string_equal(errs.entries[0].message, "is required");
        assert_string_equal(errs.entries[1].message, "is required");
        assert_string_equal(errs.entries[2].path, "/n");
        assert_string_equal(errs.entries[2].message, "expected string, got number");
        assert_string_equal(errs.entries[3].message, "must not be empty");
        assert_string_equal(errs.entries[4].message, "must be at most 9 bytes long (got 10)");
        assert_string_equal(errs.entries[5].path, "/labels/label");
        assert_string_equal(errs.entries[5].message,
                            "must not contain control characters (U+000A at byte 1)");
        assert_string_equal(errs.entries[6].message,
                            "must not contain control characters (U+007F at byte 1)");
        json_decref(o);

        /* a string built with an embedded NUL (not from json_parse, which refuses it) */
        o = json_object();
        json_object_set_new(o, "k", json_stringn("a\0b", 3));
        errs = (JsonErrors){};
        assert_int_equal(json_get_string(o, NULL, "k", 0, 0, &s, &errs), -EINVAL);
        assert_string_equal(errs.entries[0].message, "must not contain NUL characters");
        json_decref(o);
}

static void test_get_numbers(void **state)
{
        json_t *o =
                parse_ok("{\"i\":7,\"neg\":-1,\"r\":2.0,\"e\":1e3,\"frac\":2.5,\"big\":1e300,\"s\":\"7\","
                         "\"max\":9223372036854775807,\"d\":0.25,\"t\":true}");
        JsonErrors errs = {};
        int64_t i = 42;
        double d = 4.2;

        assert_int_equal(json_get_int(o, NULL, "i", JSON_GET_REQUIRED, 0, 10, &i, &errs), 1);
        assert_int_equal(i, 7);
        assert_int_equal(json_get_int(o, NULL, "r", 0, 0, 10, &i, &errs), 1);
        assert_int_equal(i, 2);
        assert_int_equal(json_get_int(o, NULL, "e", 0, 0, 1000, &i, &errs), 1);
        assert_int_equal(i, 1000);
        assert_int_equal(json_get_int(o, NULL, "max", 0, INT64_MIN, INT64_MAX, &i, &errs), 1);
        assert_true(i == INT64_MAX);
        assert_int_equal(json_get_int(o, NULL, "absent", 0, 0, 10, &i, &errs), 0);
        assert_true(i == INT64_MAX);
        assert_int_equal(json_errors_count(&errs), 0);

        i = 42;
        assert_int_equal(json_get_int(o, NULL, "neg", 0, 0, 10, &i, &errs), -EINVAL);
        assert_int_equal(json_get_int(o, NULL, "i", 0, INT64_MIN, 5, &i, &errs), -EINVAL);
        assert_int_equal(json_get_int(o, NULL, "i", 0, 0, INT64_MAX, &i, &errs), 1);
        i = 42;
        assert_int_equal(json_get_int(o, NULL, "i", 0, 8, INT64_MAX, &i, &errs), -EINVAL);
        assert_int_equal(json_get_int(o, NULL, "frac", 0, 0, 10, &i, &errs), -EINVAL);
        assert_int_equal(json_get_int(o, NULL, "big", 0, INT64_MIN, INT64_MAX, &i, &errs), -EINVAL);
        assert_int_equal(json_get_int(o, NULL, "s", 0, 0, 10, &i, &errs), -EINVAL);
        assert_int_equal(i, 42);
        assert_string_equal(errs.entries[0].message, "must be between 0 and 10 (got -1)");
        assert_string_equal(errs.entries[1].message, "must be at most 5 (got 7)");
        assert_string_equal(errs.entries[2].message, "must be at least 8 (got 7)");
        assert_string_equal(errs.entries[3].message, "expected integer, got 2.5");
        assert_string_equal(errs.entries[4].message,
                            "must be between -9223372036854775808 and 9223372036854775807 (got 1e+300)");
        assert_string_equal(errs.entries[5].message, "expected integer, got string");

        errs = (JsonErrors){};
        assert_int_equal(json_get_double(o, NULL, "d", 0, 0, 1, &d, &errs), 1);
        assert_true(d == 0.25);
        assert_int_equal(json_get_double(o, NULL, "i", 0, 0, 10, &d, &errs), 1);
        assert_true(d == 7.0);
        d = 4.2;
        assert_int_equal(json_get_double(o, NULL, "big", 0, 0, 1e6, &d, &errs), -EINVAL);
        assert_int_equal(json_get_double(o, NULL, "t", 0, 0, 1, &d, &errs), -EINVAL);
        assert_int_equal(json_get_double(o, NULL, "absent", JSON_GET_REQUIRED, 0, 1, &d, &errs), -EINVAL);
        assert_true(d == 4.2);
        assert_string_equal(errs.entries[0].message, "must be between 0 and 1e+06 (got 1e+300)");
        assert_string_equal(errs.entries[1].message, "expected number, got boolean");
        assert_string_equal(errs.entries[2].message, "is required");
        json_decref(o);
}

static void test_get_containers(void **state)
{
        json_t *o = parse_ok("{\"b\":false,\"o\":{\"k\":1},\"eo\":{},\"a\":[1,2,3],\"ea\":[],\"s\":\"x\"}");
        JsonErrors errs = {};
        json_t *got = NULL;
        bool b = true;

        assert_int_equal(json_get_bool(o, NULL, "b", JSON_GET_REQUIRED, &b, &errs), 1);
        assert_false(b);
        assert_int_equal(json_get_object(o, NULL, "o", JSON_GET_NONEMPTY, &got, &errs), 1);
        assert_ptr_equal(got, json_object_get(o, "o"));
        assert_int_equal(json_get_array(o, NULL, "a", JSON_GET_NONEMPTY, 3, &got, &errs), 1);
        assert_int_equal(json_array_size(got), 3);
        assert_int_equal(json_get_array(o, NULL, "ea", 0, 0, &got, &errs), 1);
        assert_int_equal(json_errors_count(&errs), 0);

        got = NULL;
        assert_int_equal(json_get_bool(o, NULL, "s", 0, &b, &errs), -EINVAL);
        assert_int_equal(json_get_object(o, NULL, "a", 0, &got, &errs), -EINVAL);
        assert_int_equal(json_get_object(o, NULL, "eo", JSON_GET_NONEMPTY, &got, &errs), -EINVAL);
        assert_int_equal(json_get_array(o, NULL, "o", 0, 0, &got, &errs), -EINVAL);
        assert_int_equal(json_get_array(o, NULL, "a", 0, 2, &got, &errs), -EINVAL);
        assert_int_equal(json_get_array(o, NULL, "ea", JSON_GET_NONEMPTY, 0, &got, &errs), -EINVAL);
        assert_null(got);
        assert_string_equal(errs.entries[0].message, "expected boolean, got string");
        assert_string_equal(errs.entries[1].message, "expected object, got array");
        assert_string_equal(errs.entries[2].message, "must not be empty");
        assert_string_equal(errs.entries[3].message, "expected array, got object");
        assert_string_equal(errs.entries[4].message, "must have at most 2 items (got 3)");
        assert_string_equal(errs.entries[5].message, "must not be empty");

        /* an absent optional parent: required children are not reported again */
        errs = (JsonErrors){};
        assert_int_equal(json_get_object(o, NULL, "container", 0, &got, &errs), 0);
        assert_null(got);
        assert_int_equal(
                json_get_string(got, NULL, "type", JSON_GET_REQUIRED, 0, &(const char *){ NULL }, &errs), 0);
        assert_int_equal(json_get_int(json_object_get(o, "s"), NULL, "x", JSON_GET_REQUIRED, 0, 1,
                                      &(int64_t){ 0 }, &errs),
                         0);
        assert_int_equal(json_errors_count(&errs), 0);

        assert_string_equal(json_type_name(json_object_get(o, "b")), "boolean");
        assert_string_equal(json_type_name(json_object_get(o, "o")), "object");
        assert_string_equal(json_type_name(NULL), "null");
        json_decref(o);
}

/* A miniature of the scheduler's app validator: every error at once, with its path. */
static void validate_app(const json_t *app, JsonErrors *errs)
{
        static const char *const fields[] = { "id",     "instances",    "cpus", "env",
                                              "labels", "healthChecks", NULL };
        JsonPath env_at = JSON_PATH_KEY(NULL, "env"), labels_at = JSON_PATH_KEY(NULL, "labels");
        JsonPath checks_at = JSON_PATH_KEY(NULL, "healthChecks");
        json_t *env = NULL, *labels = NULL, *checks = NULL, *v;
        const char *id = NULL, *key, *s;
        int64_t instances = 1;
        double cpus = 1;
        size_t i;

        json_check_keys(app, NULL, fields, errs);
        if (json_get_string(app, NULL, "id", JSON_GET_REQUIRED | JSON_GET_NONEMPTY, 255, &id, errs) > 0) {
                if (id[0] != '/')
                        json_errors_add(errs, NULL, "id", "must be an absolute path");
                if (strchr(id, ' '))
                        json_errors_add(errs, NULL, "id", "must not contain spaces");
        }
        json_get_int(app, NULL, "instances", 0, 0, INT64_MAX, &instances, errs);
        json_get_double(app, NULL, "cpus", 0, 0.001, 1024, &cpus, errs);
        json_get_object(app, NULL, "env", 0, &env, errs);
        json_object_foreach(env, key, v) json_get_string(env, &env_at, key, 0, 4096, &s, errs);
        json_get_object(app, NULL, "labels", 0, &labels, errs);
        json_object_foreach(labels, key, v)
                json_get_string(labels, &labels_at, key, JSON_GET_NO_CONTROL, 255, &s, errs);
        json_get_array(app, NULL, "healthChecks", 0, 8, &checks, errs);
        json_array_foreach(checks, i, v)
        {
                JsonPath at = JSON_PATH_INDEX(&checks_at, i);
                int64_t port = 0;
                json_get_int(v, &at, "portIndex", 0, 0, 10, &port, errs);
                json_get_string(v, &at, "protocol", 0, 16, &s, errs);
        }
}

static void test_marathon_style_validation(void **state)
{
        json_t *app = parse_ok(
                "{\"id\":\"bad id\",\"instances\":-1,\"cpus\":\"lots\",\"env\":{\"FOO\":1,\"OK\":\"x\"},"
                "\"labels\":{\"team\":\"a\\nb\"},\"healthChecks\":[{\"portIndex\":1},"
                "{\"portIndex\":99,\"protocol\":7}],\"bogus\":true}");
        JsonErrors errs = {};
        Buf b = BUF_INIT(4096);

        validate_app(app, &errs);
        assert_int_equal(json_errors_render(&errs, &b), 0);
        assert_string_equal(
                buf_str(&b),
                "{\"message\":\"Object is not valid\",\"details\":["
                "{\"path\":\"/bogus\",\"errors\":[\"unknown field\"]},"
                "{\"path\":\"/id\",\"errors\":[\"must be an absolute path\",\"must not contain spaces\"]},"
                "{\"path\":\"/instances\",\"errors\":[\"must be at least 0 (got -1)\"]},"
                "{\"path\":\"/cpus\",\"errors\":[\"expected number, got string\"]},"
                "{\"path\":\"/env/FOO\",\"errors\":[\"expected string, got number\"]},"
                "{\"path\":\"/labels/team\",\"errors\":[\"must not contain control characters (U+000A "
                "at byte 1)\"]},"
                "{\"path\":\"/healthChecks(1)/portIndex\",\"errors\":[\"must be between 0 and 10 (got "
                "99)\"]},"
                "{\"path\":\"/healthChecks(1)/protocol\",\"errors\":[\"expected string, got number\"]}]}");
        buf_done(&b);
        json_decref(app);

        /* a valid app produces no errors */
        app = parse_ok("{\"id\":\"/web\",\"instances\":2,\"cpus\":0.5,\"healthChecks\":[{\"portIndex\":0,"
                       "\"protocol\":\"HTTP\"}]}");
        errs = (JsonErrors){};
        validate_app(app, &errs);
        assert_int_equal(json_errors_count(&errs), 0);
        json_decref(app);

        /* the root itself of the wrong type: required fields are not reported one by one */
        app = parse_ok("[1]");
        errs = (JsonErrors){};
        validate_app(app, &errs);
        assert_int_equal(json_errors_count(&errs), 0);
        json_decref(app);
}

static void test_dump(void **state)
{
        json_t *j = parse_ok("{\"a\": [1, 2.5, \"x\\\"y\"], \"b\": {\"c\": null}, \"d\": \"0123456789\"}");
        Buf small = BUF_INIT(16), big = BUF_INIT(1024);
        json_t *n = json_integer(42);
        char *s;

        s = json_dumps_compact(j);
        assert_string_equal(s, "{\"a\":[1,2.5,\"x\\\"y\"],\"b\":{\"c\":null},\"d\":\"0123456789\"}");
        free(s);
        s = json_dumps_compact(n);
        assert_string_equal(s, "42");
        free(s);

        assert_int_equal(buf_puts(&big, "pre:"), 0);
        assert_int_equal(json_to_buf(j, &big), 0);
        assert_string_equal(buf_str(&big),
                            "pre:{\"a\":[1,2.5,\"x\\\"y\"],\"b\":{\"c\":null},\"d\":\"0123456789\"}");

        /* over the cap: an error, and the buffer is as it was */
        assert_int_equal(buf_puts(&small, "pre:"), 0);
        assert_int_equal(json_to_buf(j, &small), -EMSGSIZE);
        assert_int_equal(small.len, 4);
        assert_string_equal(buf_str(&small), "pre:");
        assert_int_equal(json_to_buf(n, &small), 0);
        assert_string_equal(buf_str(&small), "pre:42");

        buf_done(&small);
        buf_done(&big);
        json_decref(n);
        json_decref(j);
}

/* json_to_msgpack: golden bytes from the msgpack spec's encodings, by hand. */
static void test_to_msgpack(void **state)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(1024);
        json_t *j = json_pack("{s:i, s:[b, n, b], s:s, s:f, s:I}", "a", 1, "b", true, false, "c", "xy", "d",
                              0.5, "e", (json_int_t)-70000);
        static const uint8_t want[] = {
                0x85,                                                /* map of 5 */
                0xa1, 'a', 0x01,                                     /* "a": 1 */
                0xa1, 'b', 0x93, 0xc3, 0xc0, 0xc2,                   /* "b": [true, nil, false] */
                0xa1, 'c', 0xa2, 'x',  'y',                          /* "c": "xy" */
                0xa1, 'd', 0xcb, 0x3f, 0xe0, 0,    0,    0, 0, 0, 0, /* "d": float64 0.5 */
                0xa1, 'e', 0xd2, 0xff, 0xfe, 0xee, 0x90,             /* "e": int32 -70000 */
        };

        assert_non_null(j);
        assert_int_equal(json_to_msgpack(j, &b), 0);
        assert_int_equal(b.len, sizeof(want));
        assert_memory_equal(b.data, want, sizeof(want));

        /* past the cap: an error, and b as it was */
        Buf small = BUF_INIT(8);
        assert_int_equal(buf_append(&small, "ab", 2), 0);
        assert_int_equal(json_to_msgpack(j, &small), -EMSGSIZE);
        assert_int_equal(small.len, 2);
        buf_done(&small);
        json_decref(j);

        /* nesting past the limit is refused, not followed down the stack */
        json_t *deep = json_array(), *at = deep;
        for (unsigned i = 0; i < JSON_MSGPACK_DEPTH_MAX + 1; i++) {
                json_t *next = json_array();
                json_array_append_new(at, next);
                at = next;
        }
        buf_reset(&b);
        assert_int_equal(json_to_msgpack(deep, &b), -ELOOP);
        assert_int_equal(b.len, 0);
        json_decref(deep);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_parse_size_cap),
                cmocka_unit_test(test_parse_depth),
                cmocka_unit_test(test_parse_truncated),
                cmocka_unit_test(test_parse_invalid_utf8),
                cmocka_unit_test(test_parse_duplicates_nul_numbers),
                cmocka_unit_test(test_utf8_valid),
                cmocka_unit_test(test_path_render),
                cmocka_unit_test(test_errors_render),
                cmocka_unit_test(test_errors_cap_and_hostile),
                cmocka_unit_test(test_get_string),
                cmocka_unit_test(test_get_numbers),
                cmocka_unit_test(test_get_containers),
                cmocka_unit_test(test_marathon_style_validation),
                cmocka_unit_test(test_dump),
                cmocka_unit_test(test_to_msgpack),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
