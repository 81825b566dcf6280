/* SPDX-License-Identifier: Apache-2.0 */
/* JSON helpers over jansson for the REST API and the Consul client: a bounded
 * parser (size and depth capped before jansson sees the body), typed getters
 * that validate and collect every error with its path, and Marathon's 422 body. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

/* A request body larger than this is refused unread: Marathon app definitions are a few KiB. */
#define JSON_BODY_MAX_DEFAULT (1024u * 1024)
/* Nesting deeper than this is refused before parsing; app definitions nest about 6 deep. */
#define JSON_DEPTH_MAX_DEFAULT 32u
/* Validation errors kept per request; the rest are only counted. */
#define JSON_ERRORS_MAX 32
/* Rendered length of one error path and of one error message (longer ones are cut). */
#define JSON_PATH_MAX          160
#define JSON_ERROR_MESSAGE_MAX 160
/* Path segments rendered; deeper paths keep their innermost segments. */
#define JSON_PATH_SEGMENTS_MAX 32

typedef struct JsonLimits {
        size_t body_max;    /* bytes */
        unsigned depth_max; /* nested arrays/objects; 1 = a flat object */
} JsonLimits;

#define JSON_LIMITS_DEFAULT \
        ((JsonLimits){ .body_max = JSON_BODY_MAX_DEFAULT, .depth_max = JSON_DEPTH_MAX_DEFAULT })

/* Parses data[0..len) (need not be NUL-terminated) with the limits (NULL or a
 * zero field = the default). Any JSON value is accepted at the top (Consul answers some calls
 * with a bare string): callers check the root's type. Duplicate object keys,
 * invalid UTF-8, NUL bytes (raw or as \u0000) and numbers out of range are
 * errors. Returns -EMSGSIZE (too large), -EINVAL (too deep or invalid; err says
 * what and at which line, column and byte) or -ENOMEM. */
int json_parse(const char *data, size_t len, const JsonLimits *limits, json_t **ret, PacerError *err);

/* A location in a document, as Marathon writes it: /id, /healthChecks(0)/portIndex,
 * /env/FOO. Segments live on the caller's stack and are rendered only when an
 * error is recorded, so a valid document costs no string work:
 *
 *         JsonPath checks = JSON_PATH_KEY(NULL, "healthChecks");
 *         json_array_foreach(arr, i, hc) {
 *                 JsonPath at = JSON_PATH_INDEX(&checks, i);
 *                 json_get_int(hc, &at, "portIndex", 0, 0, 1000, &port, errs);
 *         }
 *
 * A NULL JsonPath is the document's root. */
typedef struct JsonPath {
        const struct JsonPath *parent;
        const char *key; /* NULL for an array index */
        size_t index;
} JsonPath;

#define JSON_PATH_KEY(parent_, key_)     ((JsonPath){ .parent = (parent_), .key = (key_) })
#define JSON_PATH_INDEX(parent_, index_) ((JsonPath){ .parent = (parent_), .index = (index_) })

/* Renders at + "/" + key (key may be NULL) into out; the root renders as "/".
 * Too long paths are cut at a UTF-8 boundary and end in "...". Returns out. */
const char *json_path_render(const JsonPath *at, const char *key, char *out, size_t size);

typedef struct JsonErrorEntry {
        char path[JSON_PATH_MAX];
        char message[JSON_ERROR_MESSAGE_MAX];
} JsonErrorEntry;

/* Validation errors, collected rather than returned one by one, so a client
 * sees all that is wrong with a request at once. Zero-initialise before use
 * (`JsonErrors errs = {};`); adding never allocates and never fails. */
typedef struct JsonErrors {
        size_t n;       /* entries kept */
        size_t dropped; /* errors past JSON_ERRORS_MAX, counted only */
        JsonErrorEntry entries[JSON_ERRORS_MAX];
} JsonErrors;

void json_errors_add(JsonErrors *e, const JsonPath *at, const char *key, const char *fmt, ...)
        _printf_(4, 5);
/* All errors recorded, including those not kept. */
size_t json_errors_count(const JsonErrors *e);
/* Marathon's 422 body: {"message":"Object is not valid","details":[{"path":"/id",
 * "errors":["..."]}]}, one detail per path in order of first appearance. */
json_t *json_errors_to_json(const JsonErrors *e);
int json_errors_render(const JsonErrors *e, Buf *out);
/* One line for logs and CLI errors: "/id: is required (and 2 more errors)".
 * Returns -EINVAL (for `return json_errors_to_error(...)`), or 0 when e is empty. */
int json_errors_to_error(const JsonErrors *e, PacerError *err);

/* Flags for the getters. */
enum {
        JSON_GET_REQUIRED = 1 << 0,   /* absent or null is an error */
        JSON_GET_NONEMPTY = 1 << 1,   /* "" / [] / {} is an error */
        JSON_GET_NO_CONTROL = 1 << 2, /* strings: U+0000-U+001F and U+007F are errors */
};

/* Typed getters: read obj[key] where obj sits at `at`. Each returns 1 and sets
 * *ret when the member is present and valid, 0 when it is absent or null and
 * not required (*ret keeps its default), and -EINVAL after recording an error
 * ("expected string, got number", "is required", ...) in errs. A non-object obj
 * (NULL: an optional parent that was absent or invalid) counts as absent even
 * when required, so a caller can chain getters without checking each level and
 * errors are reported once, at the parent. max_len (bytes), max_items: 0 = no
 * cap. Strings, objects and arrays are borrowed from obj. */
int json_get_string(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, size_t max_len,
                    const char **ret, JsonErrors *errs);
/* Integers; a number with an integral value (2.0, 1e3) is accepted too. */
int json_get_int(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, int64_t min,
                 int64_t max, int64_t *ret, JsonErrors *errs);
int json_get_double(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, double min,
                    double max, double *ret, JsonErrors *errs);
int json_get_bool(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, bool *ret,
                  JsonErrors *errs);
int json_get_object(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, json_t **ret,
                    JsonErrors *errs);
/* max_items caps the array's length. */
int json_get_array(const json_t *obj, const JsonPath *at, const char *key, unsigned flags, size_t max_items,
                   json_t **ret, JsonErrors *errs);
/* Records "unknown field" for each member of obj not in the NULL-terminated
 * list; -EINVAL when there was one, else 0. */
int json_check_keys(const json_t *obj, const JsonPath *at, const char *const *allowed, JsonErrors *errs);

/* "object", "array", "string", "number", "boolean" or "null" (as users read JSON). */
const char *json_type_name(const json_t *j);

/* True when s[0..len) is valid UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF); otherwise false and *ret_offset (if given) is the first bad byte. */
bool json_utf8_valid(const char *s, size_t len, size_t *ret_offset);

/* Compact serialisation (no whitespace, members in insertion order, any value
 * at the top); the caller frees. NULL on allocation failure. */
char *json_dumps_compact(const json_t *j);
/* Appends the compact form to b; -EMSGSIZE past b's cap, leaving b unchanged. */
int json_to_buf(const json_t *j, Buf *b);
/* Appends j as one msgpack value (objects as maps in insertion order, integers as
 * ints, reals as float64); -EMSGSIZE past b's cap or -ELOOP past JSON_MSGPACK_DEPTH_MAX
 * levels, leaving b unchanged. */
#define JSON_MSGPACK_DEPTH_MAX 64u
int json_to_msgpack(const json_t *j, Buf *b);
