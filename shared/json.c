/* SPDX-License-Identifier: Apache-2.0 */
#include "json.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (at most left bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t left)
{
        uint32_t cp, min;
        size_t n;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0) {
                n = 2, cp = p[0] & 0x1f, min = 0x80;
        } else if ((p[0] & 0xf0) == 0xe0) {
                n = 3, cp = p[0] & 0x0f, min = 0x800;
        } else if ((p[0] & 0xf8) == 0xf0) {
                n = 4, cp = p[0] & 0x07, min = 0x10000;
        } else {
                return 0;
        }
        if (left < n)
                return 0;
        for (size_t k = 1; k < n; k++) {
                if ((p[k] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

bool json_utf8_valid(const char *s, size_t len, size_t *ret_offset)
{
        const unsigned char *p = (const unsigned char *)s;

        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq_len(p + i, len - i);
                if (n == 0) {
                        if (ret_offset)
                                *ret_offset = i;
                        return false;
                }
                i += n;
        }
        return true;
}

/* Replaces bytes that are not valid UTF-8 by '?', so the text can become a JSON string. */
static void utf8_scrub(char *s)
{
        unsigned char *p = (unsigned char *)s;
        size_t len = strlen(s);

        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq_len(p + i, len - i);
                if (n == 0) {
                        p[i] = '?';
                        n = 1;
                }
                i += n;
        }
}

/* s was cut by snprintf at size - 1 bytes: end it with "..." on a character boundary. */
static void cut_with_ellipsis(char *s, size_t size)
{
        size_t len;

        if (size < 4)
                return;
        len = MIN(strlen(s), size - 4);
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
                len--;
        memcpy(s + len, "...", 4);
}

/* Copies text (from jansson, possibly quoting input bytes) into out with
 * control characters and invalid UTF-8 shown as \xNN. */
static const char *sanitize(const char *text, char *out, size_t size)
{
        const unsigned char *p = (const unsigned char *)text;
        size_t len = strlen(text), o = 0;

        for (size_t i = 0; i < len && o + 5 < size;) {
                size_t n = utf8_seq_len(p + i, len - i);
                if (n == 0 || p[i] < 0x20 || p[i] == 0x7f) {
                        o += (size_t)snprintf(out + o, size - o, "\\x%02x", p[i]);
                        i++;
                } else if (o + n < size) {
                        memcpy(out + o, p + i, n);
                        o += n;
                        i += n;
                } else {
                        break;
                }
        }
        out[o] = 0;
        return out;
}

static void line_column(const char *data, size_t offset, size_t *ret_line, size_t *ret_column)
{
        size_t line = 1, start = 0;

        for (size_t i = 0; i < offset; i++)
                if (data[i] == '\n') {
                        line++;
                        start = i + 1;
                }
        *ret_line = line;
        *ret_column = offset - start + 1;
}

/* Cheap scan before jansson: its parser recurses once per nesting level, and a
 * NUL byte deserves a clearer message than jansson's. Brackets inside strings
 * (escapes honoured) do not count. */
static int prescan(const char *data, size_t len, unsigned depth_max, PacerError *err)
{
        bool in_string = false, escaped = false;
        unsigned depth = 0;
        size_t line, column;

        for (size_t i = 0; i < len; i++) {
                char c = data[i];

                if (c == 0) {
                        line_column(data, i, &line, &column);
                        return pacer_error_set(
                                err, EINVAL,
                                "invalid JSON: NUL byte at line %zu, column %zu (byte offset %zu)", line,
                                column, i);
                }
                if (in_string) {
                        if (escaped)
                                escaped = false;
                        else if (c == '\\')
                                escaped = true;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                switch (c) {
                case '"':
                        in_string = true;
                        break;
                case '[':
                case '{':
                        if (++depth > depth_max) {
                                line_column(data, i, &line, &column);
                                return pacer_error_set(
                                        err, EINVAL,
                                        "JSON nested deeper than %u levels at line %zu, column "
                                        "%zu (byte offset %zu); not parsed",
                                        depth_max, line, column, i);
                        }
                        break;
                case ']':
                case '}':
                        /* an unbalanced closer is jansson's to report */
                        if (depth > 0)
                                depth--;
                        break;
                }
        }
        return 0;
}

int json_parse(const char *data, size_t len, const JsonLimits *limits, json_t **ret, PacerError *err)
{
        size_t body_max = limits && limits->body_max ? limits->body_max : JSON_BODY_MAX_DEFAULT;
        unsigned depth_max = limits && limits->depth_max ? limits->depth_max : JSON_DEPTH_MAX_DEFAULT;
        char text[JSON_ERROR_TEXT_LENGTH * 2];
        json_error_t jerr;
        json_t *j;
        int r;

        if (len > body_max)
                return pacer_error_set(
                        err, EMSGSIZE,
                        "JSON body of %zu bytes exceeds the limit of %zu bytes at byte offset "
                        "%zu; not parsed",
                        len, body_max, body_max);
        if (len == 0)
                return pacer_error_set(err, EINVAL, "invalid JSON: empty body");
        r = prescan(data, len, depth_max, err);
        if (r < 0)
                return r;

        j = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!j) {
                if (json_error_code(&jerr) == json_error_out_of_memory)
                        return pacer_error_set(err, ENOMEM, "out of memory parsing JSON");
                if (json_error_code(&jerr) == json_error_null_character)
                        /* jansson's text names its own flag, which means nothing to a client */
                        snprintf(jerr.text, sizeof(jerr.text), "NUL character (\\u0000) in a string");
                return pacer_error_set(err, EINVAL,
                                       "invalid JSON at line %d, column %d (byte offset %d): %s", jerr.line,
                                       jerr.column, jerr.position, sanitize(jerr.text, text, sizeof(text)));
        }
        *ret = j;
        return 0;
}

typedef struct Out {
        char *s;
        size_t size, len;
        bool cut;
} Out;

static void out_put(Out *o, const char *p, size_t n)
{
        size_t room = o->size - 1 - o->len;

        if (o->cut)
                return;
        if (n > room) {
                n = room;
                o->cut = true;
        }
        memcpy(o->s + o->len, p, n);
        o->len += n;
        o->s[o->len] = 0;
}

const char *json_path_render(const JsonPath *at, const char *key, char *out, size_t size)
{
        const JsonPath *segs[JSON_PATH_SEGMENTS_MAX];
        Out o = { .s = out, .size = size };
        bool elided = false;
        size_t n = 0;

        if (size < 8) {
                if (size > 0)
                        out[0] = 0;
                return out;
        }
        out[0] = 0;
        for (const JsonPath *p = at; p; p = p->parent) {
                if (n == ELEMENTSOF(segs)) {
                        elided = true;
                        break;
                }
                segs[n++] = p;
        }
        if (elided)
                out_put(&o, "/...", 4);
        for (size_t i = n; i-- > 0;) {
                if (segs[i]->key) {
                        out_put(&o, "/", 1);
                        out_put(&o, segs[i]->key, strlen(segs[i]->key));
                } else {
                        char idx[32];
                        int l = snprintf(idx, sizeof(idx), "%s(%zu)", o.len == 0 ? "/" : "", segs[i]->index);
                        out_put(&o, idx, (size_t)l);
                }
        }
        if (key) {
                out_put(&o, "/", 1);
                out_put(&o, key, strlen(key));
        }
        if (o.len == 0)
                out_put(&o, "/", 1);
        if (o.cut)
                cut_with_ellipsis(out, size);
        return out;
}

void json_errors_add(JsonErrors *e, const JsonPath *at, const char *key, const char *fmt, ...)
{
        JsonErrorEntry *x;
        va_list ap;
        int n;

        if (!e)
                return;
        if (e->n >= JSON_ERRORS_MAX) {
                e->dropped++;
                return;
        }
        x = &e->entries[e->n++];
        json_path_render(at, key, x->path, sizeof(x->path));
        va_start(ap, fmt);
        n = vsnprintf(x->message, sizeof(x->message), fmt, ap);
        va_end(ap);
        if (n < 0)
                snprintf(x->message, sizeof(x->message), "invalid");
        else if ((size_t)n >= sizeof(x->message))
                cut_with_ellipsis(x->message, sizeof(x->message));
        /* paths and messages become JSON strings, which must be UTF-8 */
        utf8_scrub(x->path);
        utf8_scrub(x->message);
}

size_t json_errors_count(const JsonErrors *e)
{
        return e ? e->n + e->dropped : 0;
}

/* Appends msg to the detail for path, creating the detail on first use. */
static int add_detail(json_t *details, json_t *by_path, const char *path, const char *msg)
{
        json_t *errors = json_object_get(by_path, path);

        if (!errors) {
                json_t *detail;

                errors = json_array();
                if (!errors)
                        return -ENOMEM;
                detail = json_pack("{s:s, s:O}", "path", path, "errors", errors);
                /* the *_new() setters take the reference even when they fail */
                if (!detail || json_array_append_new(details, detail) < 0) {
                        json_decref(errors);
                        return -ENOMEM;
                }
                if (json_object_set_new(by_path, path, errors) < 0)
                        return -ENOMEM;
        }
        return json_array_append_new(errors, json_string(msg)) < 0 ? -ENOMEM : 0;
}

json_t *json_errors_to_json(const JsonErrors *e)
{
        json_t *details = json_array(), *by_path = json_object(), *body = NULL;
        char note[64];
        int r = 0;

        if (!details || !by_path)
                goto finish;
        for (size_t i = 0; e && i < e->n && r >= 0; i++)
                r = add_detail(details, by_path, e->entries[i].path, e->entries[i].message);
        if (r >= 0 && e && e->dropped > 0) {
                snprintf(note, sizeof(note), "%zu more errors not shown", e->dropped);
                r = add_detail(details, by_path, "/", note);
        }
        if (r >= 0)
                body = json_pack("{s:s, s:O}", "message", "Object is not valid", "details", details);
finish:
        json_decref(details);
        json_decref(by_path);
        return body;
}

int json_errors_render(const JsonErrors *e, Buf *out)
{
        json_t *body = json_errors_to_json(e);
        int r;

        if (!body)
                return -ENOMEM;
        r = json_to_buf(body, out);
        json_decref(body);
        return r;
}

int json_errors_to_error(const JsonErrors *e, PacerError *err)
{
        size_t total = json_errors_count(e);

        if (total == 0)
                return 0;
        if (e->n == 0)
                return pacer_error_set(err, EINVAL, "%zu errors", total);
        if (total == 1)
                return pacer_error_set(err, EINVAL, "%s: %s", e->entries[0].path, e->entries[0].message);
        return pacer_error_set(err, EINVAL, "%s: %s (and %zu more error%s)", e->entries[0].path,
                               e->entries[0].message, total - 1, total == 2 ? "" : "s");
}

const char *json_type_name(const json_t *j)
{
        switch (j ? json_typeof(j) : JSON_NULL) {
        case JSON_OBJECT:
                return "object";
        case JSON_ARRAY:
                return "array";
        case JSON_STRING:
                return "string";
        case JSON_INTEGER:
        case JSON_REAL:
                return "number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "boolean";
        default:
                return "null";
        }
}

/* The member, or NULL (returning 0 or -EINVAL) when it is absent. */
static int member(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, json_t **ret,
                  JsonErrors *errs)
{
        json_t *v;

        if (!json_is_object(obj))
                return 0;
        v = json_object_get(obj, key);
        if (!v || json_is_null(v)) {
                if (flags & JSON_GET_REQUIRED) {
                        json_errors_add(errs, at, key, "is required");
                        return -EINVAL;
                }
                return 0;
        }
        *ret = v;
        return 1;
}

static int wrong_type(const JsonPath *at, const char *key, const char *expected, const json_t *v,
                      JsonErrors *errs)
{
        json_errors_add(errs, at, key, "expected %s, got %s", expected, json_type_name(v));
        return -EINVAL;
}

int json_get_string(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, size_t max_len,
                    const char **ret, JsonErrors *errs)
{
        const char *s;
        json_t *v;
        size_t len;
        int r;

        r = member(obj, at, key, flags, &v, errs);
        if (r <= 0)
                return r;
        if (!json_is_string(v))
                return wrong_type(at, key, "string", v, errs);
        s = json_string_value(v);
        len = json_string_length(v);
        if (strlen(s) != len) {
                json_errors_add(errs, at, key, "must not contain NUL characters");
                return -EINVAL;
        }
        if ((flags & JSON_GET_NONEMPTY) && len == 0) {
                json_errors_add(errs, at, key, "must not be empty");
                return -EINVAL;
        }
        if (max_len > 0 && len > max_len) {
                json_errors_add(errs, at, key, "must be at most %zu bytes long (got %zu)", max_len, len);
                return -EINVAL;
        }
        if (flags & JSON_GET_NO_CONTROL)
                for (size_t i = 0; i < len; i++) {
                        unsigned char c = (unsigned char)s[i];
                        if (c < 0x20 || c == 0x7f) {
                                json_errors_add(errs, at, key,
                                                "must not contain control characters (U+%04X at byte %zu)",
                                                c, i);
                                return -EINVAL;
                        }
                }
        *ret = s;
        return 1;
}

static int range_error(const JsonPath *at, const char *key, int64_t min, int64_t max, const char *got,
                       JsonErrors *errs)
{
        if (min == INT64_MIN)
                json_errors_add(errs, at, key, "must be at most %lld (got %s)", (long long)max, got);
        else if (max == INT64_MAX)
                json_errors_add(errs, at, key, "must be at least %lld (got %s)", (long long)min, got);
        else
                json_errors_add(errs, at, key, "must be between %lld and %lld (got %s)", (long long)min,
                                (long long)max, got);
        return -EINVAL;
}

int json_get_int(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, int64_t min,
                 int64_t max, int64_t *ret, JsonErrors *errs)
{
        char got[64];
        int64_t i;
        json_t *v;
        int r;

        r = member(obj, at, key, flags, &v, errs);
        if (r <= 0)
                return r;
        if (json_is_integer(v)) {
                i = json_integer_value(v);
        } else if (json_is_real(v)) {
                double d = json_real_value(v);
                /* -2^63 and 2^63 are exact doubles; the upper bound is exclusive */
                if (d != floor(d)) {
                        json_errors_add(errs, at, key, "expected integer, got %g", d);
                        return -EINVAL;
                }
                if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
                        json_errors_add(errs, at, key, "must be between %lld and %lld (got %g)",
                                        (long long)min, (long long)max, d);
                        return -EINVAL;
                }
                i = (int64_t)d;
        } else {
                return wrong_type(at, key, "integer", v, errs);
        }
        if (i < min || i > max) {
                snprintf(got, sizeof(got), "%lld", (long long)i);
                return range_error(at, key, min, max, got, errs);
        }
        *ret = i;
        return 1;
}

int json_get_double(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, double min,
                    double max, double *ret, JsonErrors *errs)
{
        json_t *v;
        double d;
        int r;

        r = member(obj, at, key, flags, &v, errs);
        if (r <= 0)
                return r;
        if (!json_is_number(v))
                return wrong_type(at, key, "number", v, errs);
        d = json_number_value(v);
        if (!(d >= min && d <= max)) {
                json_errors_add(errs, at, key, "must be between %g and %g (got %g)", min, max, d);
                return -EINVAL;
        }
        *ret = d;
        return 1;
}

int json_get_bool(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, bool *ret,
                  JsonErrors *errs)
{
        json_t *v;
        int r;

        r = member(obj, at, key, flags, &v, errs);
        if (r <= 0)
                return r;
        if (!json_is_boolean(v))
                return wrong_type(at, key, "boolean", v, errs);
        *ret = json_is_true(v);
        return 1;
}

int json_get_object(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, json_t **ret,
                    JsonErrors *errs)
{
        json_t *v;
        int r;

        r = member(obj, at, key, flags, &v, errs);
        if (r <= 0)
                return r;
        if (!json_is_object(v))
                return wrong_type(at, key, "object", v, errs);
        if ((flags & JSON_GET_NONEMPTY) && json_object_size(v) == 0) {
                json_errors_add(errs, at, key, "must not be empty");
                return -EINVAL;
        }
        *ret = v;
        return 1;
}

int json_get_array(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, size_t max_items,
                   json_t **ret, JsonErrors *errs)
{
        json_t *v;
        int r;

        r = member(obj, at, key, flags, &v, errs);
        if (r <= 0)
                return r;
        if (!json_is_array(v))
                return wrong_type(at, key, "array", v, errs);
        if ((flags & JSON_GET_NONEMPTY) && json_array_size(v) == 0) {
                json_errors_add(errs, at, key, "must not be empty");
                return -EINVAL;
        }
        if (max_items > 0 && json_array_size(v) > max_items) {
                json_errors_add(errs, at, key, "must have at most %zu items (got %zu)", max_items,
                                json_array_size(v));
                return -EINVAL;
        }
        *ret = v;
        return 1;
}

int json_check_keys(const json_t *obj, const JsonPath *at, const char *const *allowed, JsonErrors *errs)
{
        const char *key;
        json_t *v;
        int r = 0;

        if (!json_is_object(obj))
                return 0;
        json_object_foreach((json_t *)obj, key, v)
        {
                bool known = false;
                for (const char *const *a = allowed; a && *a && !known; a++)
                        known = streq(*a, key);
                if (!known) {
                        json_errors_add(errs, at, key, "unknown field");
                        r = -EINVAL;
                }
        }
        return r;
}

#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

char *json_dumps_compact(const json_t *j)
{
        return json_dumps(j, JSON_DUMP_FLAGS);
}

typedef struct DumpCtx {
        Buf *b;
        int r;
} DumpCtx;

static int dump_cb(const char *buffer, size_t size, void *userdata)
{
        DumpCtx *ctx = userdata;

        ctx->r = buf_append(ctx->b, buffer, size);
        return ctx->r < 0 ? -1 : 0;
}

int json_to_buf(const json_t *j, Buf *b)
{
        DumpCtx ctx = { .b = b };
        size_t saved = b->len;

        if (json_dump_callback(j, dump_cb, &ctx, JSON_DUMP_FLAGS) == 0)
                return 0;
        b->len = saved;
        if (b->data)
                b->data[saved] = 0;
        return ctx.r < 0 ? ctx.r : -EINVAL;
}

typedef struct PackCtx {
        Buf *b;
        int r;
} PackCtx;

static int pack_write(void *data, const char *p, size_t len)
{
        PackCtx *ctx = data;
        int r = buf_append(ctx->b, p, len);
        if (r < 0 && ctx->r == 0)
                ctx->r = r;
        return r < 0 ? -1 : 0;
}

static int pack_value(msgpack_packer *pk, const json_t *j, unsigned depth)
{
        const char *key;
        json_t *v;
        size_t i;

        if (depth > JSON_MSGPACK_DEPTH_MAX)
                return -ELOOP;
        switch (json_typeof(j)) {
        case JSON_OBJECT:
                if (msgpack_pack_map(pk, json_object_size(j)))
                        return -EMSGSIZE;
                json_object_foreach((json_t *)j, key, v)
                {
                        size_t l = strlen(key);
                        int r;
                        if (msgpack_pack_str(pk, l) || msgpack_pack_str_body(pk, key, l))
                                return -EMSGSIZE;
                        if ((r = pack_value(pk, v, depth + 1)) < 0)
                                return r;
                }
                return 0;
        case JSON_ARRAY:
                if (msgpack_pack_array(pk, json_array_size(j)))
                        return -EMSGSIZE;
                json_array_foreach(j, i, v)
                {
                        int r = pack_value(pk, v, depth + 1);
                        if (r < 0)
                                return r;
                }
                return 0;
        case JSON_STRING: {
                size_t l = json_string_length(j);
                return msgpack_pack_str(pk, l) || msgpack_pack_str_body(pk, json_string_value(j), l)
                               ? -EMSGSIZE
                               : 0;
        }
        case JSON_INTEGER:
                return msgpack_pack_int64(pk, json_integer_value(j)) ? -EMSGSIZE : 0;
        case JSON_REAL:
                return msgpack_pack_double(pk, json_real_value(j)) ? -EMSGSIZE : 0;
        case JSON_TRUE:
                return msgpack_pack_true(pk) ? -EMSGSIZE : 0;
        case JSON_FALSE:
                return msgpack_pack_false(pk) ? -EMSGSIZE : 0;
        case JSON_NULL:
                return msgpack_pack_nil(pk) ? -EMSGSIZE : 0;
        }
        return -EINVAL;
}

int json_to_msgpack(const json_t *j, Buf *b)
{
        PackCtx ctx = { .b = b };
        msgpack_packer pk;
        size_t saved = b->len;
        int r;

        msgpack_packer_init(&pk, &ctx, pack_write);
        r = pack_value(&pk, j, 0);
        if (r == 0)
                return 0;
        b->len = saved;
        return ctx.r < 0 ? ctx.r : r;
}
