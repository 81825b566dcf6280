/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "status_record.h"

static void full_record(StatusRecord *r)
{
        status_record_init(r);
        r->healthy = HEALTH_HEALTHY;
        r->registered = true;
        r->registration = REGISTRATION_REGISTERED;
        strcpy(r->service_id, "T1_web_31000");
        r->consecutive_failures = 2;
        r->check_latency_us = 1234;
        strcpy(r->last_error, "HTTP 503");
        r->registered_at_ms = 1764000000123ULL;
}

static void test_round_trip(void **state)
{
        StatusRecord in, out;
        uint8_t buf[STATUS_RECORD_MAX];
        size_t len;
        PacerError err;

        full_record(&in);
        assert_int_equal(status_record_encode(&in, buf, sizeof(buf), &len), 0);
        assert_true(len <= STATUS_RECORD_MAX);
        assert_int_equal(status_record_decode(buf, len, &out, &err), 0);
        assert_int_equal(out.version, STATUS_RECORD_VERSION);
        assert_int_equal(out.healthy, HEALTH_HEALTHY);
        assert_true(out.registered);
        assert_int_equal(out.registration, REGISTRATION_REGISTERED);
        assert_string_equal(out.service_id, "T1_web_31000");
        assert_int_equal(out.consecutive_failures, 2);
        assert_int_equal(out.check_latency_us, 1234);
        assert_string_equal(out.last_error, "HTTP 503");
        assert_true(out.registered_at_ms == 1764000000123ULL);
}

static void test_unknown_health_is_nil(void **state)
{
        StatusRecord in, out;
        uint8_t buf[STATUS_RECORD_MAX];
        size_t len;

        status_record_init(&in);
        assert_int_equal(status_record_encode(&in, buf, sizeof(buf), &len), 0);
        assert_int_equal(status_record_decode(buf, len, &out, NULL), 0);
        assert_int_equal(out.healthy, HEALTH_UNKNOWN);
        assert_int_equal(out.registration, REGISTRATION_OFF);
        assert_false(out.registered);
        in.healthy = HEALTH_UNHEALTHY;
        assert_int_equal(status_record_encode(&in, buf, sizeof(buf), &len), 0);
        assert_int_equal(status_record_decode(buf, len, &out, NULL), 0);
        assert_int_equal(out.healthy, HEALTH_UNHEALTHY);
}

/* The longest fields still fit the cap; an error text cut mid-character is cut before it. */
static void test_size_bound_and_utf8_cut(void **state)
{
        StatusRecord in, out;
        uint8_t buf[STATUS_RECORD_MAX];
        size_t len;

        full_record(&in);
        memset(in.service_id, 'x', STATUS_RECORD_SERVICE_ID_MAX);
        in.service_id[STATUS_RECORD_SERVICE_ID_MAX] = 0;
        /* 199 ASCII bytes then a 2-byte character straddling the 200-byte cap */
        memset(in.last_error, 'e', STATUS_RECORD_ERROR_MAX - 1);
        in.last_error[STATUS_RECORD_ERROR_MAX - 1] = (char)0xc3;
        in.last_error[STATUS_RECORD_ERROR_MAX] = 0;
        assert_int_equal(status_record_encode(&in, buf, sizeof(buf), &len), 0);
        assert_true(len <= STATUS_RECORD_MAX);
        assert_int_equal(status_record_decode(buf, len, &out, NULL), 0);
        assert_int_equal(strlen(out.last_error), STATUS_RECORD_ERROR_MAX - 1);
        assert_int_equal(strlen(out.service_id), STATUS_RECORD_SERVICE_ID_MAX);
        assert_int_equal(status_record_encode(&in, buf, STATUS_RECORD_MAX - 1, &len), -ENOBUFS);
}

static size_t pack_map(uint8_t *out, size_t size, void (*fill)(msgpack_packer *pk))
{
        msgpack_sbuffer sb;
        msgpack_packer pk;
        size_t n;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        fill(&pk);
        n = sb.size < size ? sb.size : size;
        memcpy(out, sb.data, n);
        msgpack_sbuffer_destroy(&sb);
        return n;
}

static void key(msgpack_packer *pk, const char *k)
{
        msgpack_pack_str(pk, strlen(k));
        msgpack_pack_str_body(pk, k, strlen(k));
}

static void fill_newer_version(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 3);
        key(pk, "v");
        msgpack_pack_uint32(pk, 7);
        key(pk, "zz");
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, 1);
        msgpack_pack_int(pk, 2);
        key(pk, "r");
        msgpack_pack_true(pk);
}

static void fill_wrong_type(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 2);
        key(pk, "v");
        msgpack_pack_uint32(pk, 1);
        key(pk, "h");
        msgpack_pack_str(pk, 3);
        msgpack_pack_str_body(pk, "yes", 3);
}

static void fill_no_version(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 1);
        key(pk, "r");
        msgpack_pack_false(pk);
}

static void fill_not_map(msgpack_packer *pk)
{
        msgpack_pack_array(pk, 0);
}

static void fill_bad_state(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 2);
        key(pk, "v");
        msgpack_pack_uint32(pk, 1);
        key(pk, "rs");
        msgpack_pack_str(pk, 5);
        msgpack_pack_str_body(pk, "bogus", 5);
}

static void fill_nul_in_string(msgpack_packer *pk)
{
        msgpack_pack_map(pk, 2);
        key(pk, "v");
        msgpack_pack_uint32(pk, 1);
        key(pk, "e");
        msgpack_pack_str(pk, 3);
        msgpack_pack_str_body(pk, "a\0b", 3);
}

static void test_decode_forward_compatible(void **state)
{
        uint8_t buf[256];
        StatusRecord out;
        size_t n = pack_map(buf, sizeof(buf), fill_newer_version);

        assert_int_equal(status_record_decode(buf, n, &out, NULL), 0);
        assert_int_equal(out.version, 7);
        assert_true(out.registered);
}

static void expect_error(void (*fill)(msgpack_packer *), const char *needle)
{
        uint8_t buf[256];
        StatusRecord out;
        PacerError err = { "" };
        size_t n = pack_map(buf, sizeof(buf), fill);

        assert_true(status_record_decode(buf, n, &out, &err) < 0);
        if (!strstr(err.msg, needle))
                fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_decode_rejects(void **state)
{
        expect_error(fill_wrong_type, "key 'h' must be bool");
        expect_error(fill_no_version, "no schema version");
        expect_error(fill_not_map, "expected a map");
        expect_error(fill_bad_state, "unknown registration state 'bogus'");
        expect_error(fill_nul_in_string, "NUL");
}

static void test_decode_hostile_bytes(void **state)
{
        StatusRecord in, out;
        uint8_t buf[STATUS_RECORD_MAX], big[STATUS_RECORD_INPUT_MAX + 1] = { 0 };
        PacerError err;
        size_t len;

        full_record(&in);
        assert_int_equal(status_record_encode(&in, buf, sizeof(buf), &len), 0);
        /* every truncation fails cleanly */
        for (size_t i = 0; i < len; i++)
                assert_true(status_record_decode(buf, i, &out, &err) < 0);
        /* trailing garbage */
        buf[len] = 0xc0;
        assert_true(status_record_decode(buf, len + 1, &out, &err) < 0);
        assert_non_null(strstr(err.msg, "trailing"));
        /* a map header claiming 4 billion entries: refused before msgpack-c allocates for them */
        const uint8_t huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01 };
        assert_int_equal(status_record_decode(huge_map, sizeof(huge_map), &out, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "claims"));
        const uint8_t huge_str[] = { 0x81, 0xa1, 'e', 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x' };
        assert_int_equal(status_record_decode(huge_str, sizeof(huge_str), &out, &err), -EBADMSG);
        uint8_t deep[64];
        memset(deep, 0x91, sizeof(deep)); /* arrays of one array of one array ... */
        assert_int_equal(status_record_decode(deep, sizeof(deep), &out, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "nested"));
        /* too big, refused before parsing */
        assert_int_equal(status_record_decode(big, sizeof(big), &out, &err), -EMSGSIZE);
        /* every single-byte corruption: decodes or fails, never crashes */
        for (size_t i = 0; i < len; i++)
                for (int b = 0; b < 256; b += 17) {
                        uint8_t copy[STATUS_RECORD_MAX];
                        memcpy(copy, buf, len);
                        copy[i] = (uint8_t)b;
                        (void)status_record_decode(copy, len, &out, &err);
                }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_unknown_health_is_nil),
                cmocka_unit_test(test_size_bound_and_utf8_cut),
                cmocka_unit_test(test_decode_forward_compatible),
                cmocka_unit_test(test_decode_rejects),
                cmocka_unit_test(test_decode_hostile_bytes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
