/* SPDX-License-Identifier: Apache-2.0 */
#include "status_record.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "msgpack_guard.h"

/* Nesting a status record never needs; deeper input is hostile. */
#define STATUS_RECORD_DEPTH_MAX 8

/* Keys: one or two characters, so the record stays a few dozen bytes. */
#define K_VERSION      "v"
#define K_HEALTHY      "h"
#define K_REGISTERED   "r"
#define K_REGISTRATION "rs"
#define K_SERVICE_ID   "s"
#define K_FAILURES     "f"
#define K_LATENCY      "l"
#define K_ERROR        "e"
#define K_REG_TIME     "t"

static const char *const registration_names[_REGISTRATION_STATE_MAX] = {
        [REGISTRATION_OFF] = "off",
        [REGISTRATION_PENDING] = "pending",
        [REGISTRATION_REGISTERING] = "registering",
        [REGISTRATION_REGISTERED] = "registered",
        [REGISTRATION_FAILED] = "failed",
        [REGISTRATION_DEREGISTERING] = "deregistering",
        [REGISTRATION_DEREGISTERED] = "deregistered",
};

const char *registration_state_to_string(RegistrationState s)
{
        return s >= 0 && s < _REGISTRATION_STATE_MAX ? registration_names[s] : NULL;
}

RegistrationState registration_state_from_string(const char *s)
{
        for (int i = 0; s && i < _REGISTRATION_STATE_MAX; i++)
                if (streq(s, registration_names[i]))
                        return (RegistrationState)i;
        return _REGISTRATION_STATE_INVALID;
}

void status_record_init(StatusRecord *r)
{
        *r = (StatusRecord){ .version = STATUS_RECORD_VERSION, .healthy = HEALTH_UNKNOWN };
}

typedef struct FixedBuf {
        uint8_t *p;
        size_t len, size;
} FixedBuf;

static int fixed_write(void *data, const char *buf, size_t len)
{
        FixedBuf *b = data;
        if (len > b->size - b->len)
                return -1;
        memcpy(b->p + b->len, buf, len);
        b->len += len;
        return 0;
}

static int pack_key(msgpack_packer *pk, const char *k)
{
        size_t l = strlen(k);
        return msgpack_pack_str(pk, l) || msgpack_pack_str_body(pk, k, l);
}

static int pack_str(msgpack_packer *pk, const char *s, size_t l)
{
        return msgpack_pack_str(pk, l) || msgpack_pack_str_body(pk, s, l);
}

/* Length of s cut to at most max bytes, without ending inside a UTF-8
 * sequence: texts come from snprintf, which cuts anywhere. */
static size_t utf8_cut(const char *s, size_t max)
{
        size_t l = strnlen(s, max), lead = l;

        /* find the start of the last sequence (at most 3 continuation bytes back) */
        while (lead > 0 && l - lead < 4 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80)
                lead--;
        if (lead == 0)
                return l;
        unsigned char c = (unsigned char)s[lead - 1];
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return l - (lead - 1) < need ? lead - 1 : l;
}

int status_record_encode(const StatusRecord *r, uint8_t *out, size_t size, size_t *ret_len)
{
        FixedBuf b = { .p = out, .size = MIN(size, (size_t)STATUS_RECORD_MAX) };
        msgpack_packer pk;
        size_t sid = utf8_cut(r->service_id, STATUS_RECORD_SERVICE_ID_MAX);
        size_t err = utf8_cut(r->last_error, STATUS_RECORD_ERROR_MAX);
        int fail = 0;

        if (size < STATUS_RECORD_MAX)
                return -ENOBUFS;
        msgpack_packer_init(&pk, &b, fixed_write);
        fail |= msgpack_pack_map(&pk, 9);
        fail |= pack_key(&pk, K_VERSION) || msgpack_pack_uint32(&pk, STATUS_RECORD_VERSION);
        fail |= pack_key(&pk, K_HEALTHY);
        if (r->healthy == HEALTH_UNKNOWN)
                fail |= msgpack_pack_nil(&pk);
        else
                fail |= r->healthy == HEALTH_HEALTHY ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
        fail |= pack_key(&pk, K_REGISTERED) ||
                (r->registered ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
        fail |= pack_key(&pk, K_REGISTRATION) ||
                pack_str(&pk, strna(registration_state_to_string(r->registration)),
                         strlen(strna(registration_state_to_string(r->registration))));
        fail |= pack_key(&pk, K_SERVICE_ID) || pack_str(&pk, r->service_id, sid);
        fail |= pack_key(&pk, K_FAILURES) || msgpack_pack_uint32(&pk, r->consecutive_failures);
        fail |= pack_key(&pk, K_LATENCY) || msgpack_pack_uint32(&pk, r->check_latency_us);
        fail |= pack_key(&pk, K_ERROR) || pack_str(&pk, r->last_error, err);
        fail |= pack_key(&pk, K_REG_TIME) || msgpack_pack_uint64(&pk, r->registered_at_ms);
        if (fail)
                return -ENOBUFS; /* cannot happen: the fields are capped well below the maximum */
        *ret_len = b.len;
        return 0;
}

static const char *type_name(msgpack_object_type t)
{
        switch (t) {
        case MSGPACK_OBJECT_NIL:
                return "nil";
        case MSGPACK_OBJECT_BOOLEAN:
                return "bool";
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                return "integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
                return "float";
        case MSGPACK_OBJECT_STR:
                return "string";
        case MSGPACK_OBJECT_ARRAY:
                return "array";
        case MSGPACK_OBJECT_MAP:
                return "map";
        default:
                return "binary";
        }
}

static int want(const msgpack_object *o, msgpack_object_type t, const char *key, PacerError *err)
{
        if (o->type == t)
                return 0;
        return pacer_error_set(err, EBADMSG, "status record: key '%s' must be %s, got %s", key, type_name(t),
                               type_name(o->type));
}

static int get_uint(const msgpack_object *o, const char *key, uint64_t max, uint64_t *ret, PacerError *err)
{
        int r = want(o, MSGPACK_OBJECT_POSITIVE_INTEGER, key, err);
        if (r < 0)
                return r;
        if (o->via.u64 > max)
                return pacer_error_set(err, ERANGE, "status record: key '%s' is out of range", key);
        *ret = o->via.u64;
        return 0;
}

static int get_str(const msgpack_object *o, const char *key, char *out, size_t size, PacerError *err)
{
        int r = want(o, MSGPACK_OBJECT_STR, key, err);
        if (r < 0)
                return r;
        if (o->via.str.size >= size)
                return pacer_error_set(err, EMSGSIZE, "status record: key '%s' is longer than %zu bytes",
                                       key, size - 1);
        if (memchr(o->via.str.ptr, 0, o->via.str.size))
                return pacer_error_set(err, EBADMSG, "status record: key '%s' contains a NUL byte", key);
        memcpy(out, o->via.str.ptr, o->via.str.size);
        out[o->via.str.size] = 0;
        return 0;
}

static int decode_field(StatusRecord *rec, const char *key, const msgpack_object *v, PacerError *err)
{
        uint64_t u;
        int r = 0;

        if (streq(key, K_VERSION)) {
                r = get_uint(v, key, UINT32_MAX, &u, err);
                if (r >= 0 && u == 0)
                        return pacer_error_set(err, EBADMSG, "status record: version 0 is invalid");
                rec->version = (uint32_t)u;
        } else if (streq(key, K_HEALTHY)) {
                if (v->type == MSGPACK_OBJECT_NIL)
                        rec->healthy = HEALTH_UNKNOWN;
                else if ((r = want(v, MSGPACK_OBJECT_BOOLEAN, key, err)) >= 0)
                        rec->healthy = v->via.boolean ? HEALTH_HEALTHY : HEALTH_UNHEALTHY;
        } else if (streq(key, K_REGISTERED)) {
                if ((r = want(v, MSGPACK_OBJECT_BOOLEAN, key, err)) >= 0)
                        rec->registered = v->via.boolean;
        } else if (streq(key, K_REGISTRATION)) {
                char s[32];
                if ((r = get_str(v, key, s, sizeof(s), err)) >= 0) {
                        RegistrationState st = registration_state_from_string(s);
                        if (st < 0)
                                return pacer_error_set(err, EBADMSG,
                                                       "status record: unknown registration state '%s'", s);
                        rec->registration = st;
                }
        } else if (streq(key, K_SERVICE_ID))
                r = get_str(v, key, rec->service_id, sizeof(rec->service_id), err);
        else if (streq(key, K_FAILURES)) {
                if ((r = get_uint(v, key, UINT32_MAX, &u, err)) >= 0)
                        rec->consecutive_failures = (uint32_t)u;
        } else if (streq(key, K_LATENCY)) {
                if ((r = get_uint(v, key, UINT32_MAX, &u, err)) >= 0)
                        rec->check_latency_us = (uint32_t)u;
        } else if (streq(key, K_ERROR))
                r = get_str(v, key, rec->last_error, sizeof(rec->last_error), err);
        else if (streq(key, K_REG_TIME)) {
                if ((r = get_uint(v, key, UINT64_MAX, &u, err)) >= 0)
                        rec->registered_at_ms = u;
        }
        /* unknown keys: written by a newer executor, skipped */
        return r;
}

int status_record_decode(const void *data, size_t len, StatusRecord *ret, PacerError *err)
{
        msgpack_unpacked u;
        StatusRecord rec;
        size_t off = 0;
        bool have_version = false;
        int r = 0;

        if (!data || len == 0)
                return pacer_error_set(err, ENODATA, "status record: empty");
        if (len > STATUS_RECORD_INPUT_MAX)
                return pacer_error_set(err, EMSGSIZE, "status record: %zu bytes, more than the %d allowed",
                                       len, STATUS_RECORD_INPUT_MAX);
        r = msgpack_guard_check(data, len, STATUS_RECORD_DEPTH_MAX, err);
        if (r < 0)
                pacer_error_prefix(err, "status record");
        if (r < 0)
                return r;
        status_record_init(&rec);
        rec.version = 0;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS) {
                msgpack_unpacked_destroy(&u);
                return pacer_error_set(err, EBADMSG, "status record: not a complete msgpack value");
        }
        if (off != len)
                r = pacer_error_set(err, EBADMSG, "status record: %zu trailing bytes after the map",
                                    len - off);
        else if (u.data.type != MSGPACK_OBJECT_MAP)
                r = pacer_error_set(err, EBADMSG, "status record: expected a map, got %s",
                                    type_name(u.data.type));
        for (uint32_t i = 0; r >= 0 && i < u.data.via.map.size; i++) {
                const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
                char key[16];
                if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size >= sizeof(key)) {
                        continue; /* not one of ours */
                }
                memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
                key[kv->key.via.str.size] = 0;
                if (streq(key, K_VERSION))
                        have_version = true;
                r = decode_field(&rec, key, &kv->val, err);
        }
        msgpack_unpacked_destroy(&u);
        if (r < 0)
                return r;
        if (!have_version)
                return pacer_error_set(err, EBADMSG, "status record: no schema version ('v')");
        *ret = rec;
        return 0;
}
