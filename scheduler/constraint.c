/* SPDX-License-Identifier: Apache-2.0 */
#include "constraint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_LIST "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS"

typedef enum ValueRule {
        VALUE_NONE,
        VALUE_OPTIONAL,
        VALUE_REQUIRED,
} ValueRule;

typedef enum ValueKind {
        VALUE_TEXT,
        VALUE_COUNT, /* a positive integer, as a string or a JSON integer */
        VALUE_REGEX,
} ValueKind;

static const struct {
        const char *name;
        ValueRule rule;
        ValueKind kind;
} ops[_CONSTRAINT_OP_MAX] = {
        [CONSTRAINT_UNIQUE] = { "UNIQUE", VALUE_NONE, VALUE_TEXT },
        /* Marathon 1.5+ requires CLUSTER's value; earlier releases took the
         * value of the first instance placed, which placement implements */
        [CONSTRAINT_CLUSTER] = { "CLUSTER", VALUE_OPTIONAL, VALUE_TEXT },
        [CONSTRAINT_GROUP_BY] = { "GROUP_BY", VALUE_OPTIONAL, VALUE_COUNT },
        [CONSTRAINT_LIKE] = { "LIKE", VALUE_REQUIRED, VALUE_REGEX },
        [CONSTRAINT_UNLIKE] = { "UNLIKE", VALUE_REQUIRED, VALUE_REGEX },
        [CONSTRAINT_MAX_PER] = { "MAX_PER", VALUE_REQUIRED, VALUE_COUNT },
        [CONSTRAINT_IS] = { "IS", VALUE_REQUIRED, VALUE_TEXT },
};

const char *constraint_op_to_string(ConstraintOp op)
{
        return op >= 0 && op < _CONSTRAINT_OP_MAX ? ops[op].name : NULL;
}

ConstraintOp constraint_op_from_string(const char *s)
{
        for (int i = 0; s && i < _CONSTRAINT_OP_MAX; i++)
                if (streq(s, ops[i].name))
                        return (ConstraintOp)i;
        return _CONSTRAINT_OP_INVALID;
}

void constraint_done(Constraint *c)
{
        if (!c)
                return;
        free(c->field);
        free(c->value);
        if (c->has_regex)
                regfree(&c->regex);
        *c = (Constraint){};
}

/* Short, printable ASCII: safe to quote back in a message. */
static bool quotable(const char *s, size_t len)
{
        if (len > 32)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return true;
}

static const char *shown(const char *s, size_t len)
{
        return quotable(s, len) ? s : "(not shown)";
}

static bool is_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void check_field(const char *f, size_t len, const JsonPath *at, JsonErrors *errs)
{
        if (len == 0) {
                json_errors_add(errs, at, NULL, "field must not be empty");
                return;
        }
        if (len > CONSTRAINT_FIELD_MAX) {
                json_errors_add(errs, at, NULL, "field is %zu bytes long, more than %d", len,
                                CONSTRAINT_FIELD_MAX);
                return;
        }
        if (streq(f, "@hostname"))
                return;
        if (f[0] == '@') {
                json_errors_add(
                        errs, at, NULL,
                        "field %s: of Marathon's @ fields Pacer supports only @hostname (@region and "
                        "@zone need fault domains, which Pacer does not use)",
                        shown(f, len));
                return;
        }
        for (size_t i = 0; i < len; i++)
                if (!is_alnum(f[i]) && !strchr("_.-/", f[i])) {
                        json_errors_add(errs, at, NULL,
                                        "field must be hostname or an agent attribute name "
                                        "([A-Za-z0-9_./-]); byte %zu is 0x%02x",
                                        i, (unsigned char)f[i]);
                        return;
                }
}

/* A count for GROUP_BY or MAX_PER: 1..CONSTRAINT_NUMBER_MAX, written in decimal
 * digits only (Marathon's toInt takes "+5" and " 5" differently across versions). */
static bool parse_count(const json_t *v, uint32_t *ret)
{
        unsigned long long n = 0;

        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);
                if (i < 1 || i > CONSTRAINT_NUMBER_MAX)
                        return false;
                *ret = (uint32_t)i;
                return true;
        }
        if (!json_is_string(v))
                return false;
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len == 0 || len > 10)
                return false;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                n = n * 10 + (unsigned)(s[i] - '0');
        }
        if (n < 1 || n > CONSTRAINT_NUMBER_MAX)
                return false;
        *ret = (uint32_t)n;
        return true;
}

/* Index of the ']' closing the bracket expression opened at re[i], or 0 when it
 * is unterminated. POSIX: a ']' first (after an optional '^') is literal, a
 * backslash is literal, and [:class:], [=equiv=], [.coll.] nest. */
static size_t bracket_end(const char *re, size_t i)
{
        size_t j = i + 1;

        if (re[j] == '^')
                j++;
        if (re[j] == ']')
                j++;
        while (re[j] && re[j] != ']') {
                if (re[j] == '[' && re[j + 1] && strchr(":=.", re[j + 1])) {
                        const char *end = strchr(re + j + 2, re[j + 1]);
                        while (end && end[1] != ']')
                                end = strchr(end + 1, re[j + 1]);
                        if (!end)
                                return 0;
                        j = (size_t)(end - re) + 2;
                        continue;
                }
                j++;
        }
        return re[j] ? j : 0;
}

static uint64_t cost_cap(uint64_t x)
{
        return MIN(x, (uint64_t)CONSTRAINT_REGEX_COST_MAX + 1);
}

/* Parses an interval "{m}", "{m,}" or "{m,n}" at re[i]; returns the index of
 * its '}' and the most copies it makes, or 0 when it is not one (regcomp then
 * judges it). */
static size_t interval(const char *re, size_t i, uint64_t *ret_copies)
{
        uint64_t m = 0, n = 0;
        bool comma = false, have_n = false;
        size_t j = i + 1;

        if (re[j] < '0' || re[j] > '9')
                return 0;
        for (; re[j] >= '0' && re[j] <= '9'; j++)
                m = cost_cap(m * 10 + (uint64_t)(re[j] - '0'));
        if (re[j] == ',') {
                comma = true;
                for (j++; re[j] >= '0' && re[j] <= '9'; j++, have_n = true)
                        n = cost_cap(n * 10 + (uint64_t)(re[j] - '0'));
        }
        if (re[j] != '}')
                return 0;
        /* "{m,}" repeats at least m times, with a loop after: count one more copy */
        *ret_copies = have_n ? MAX(m, n) : comma ? m + 1 : m;
        return j;
}

/* Walks an ERE the way regcomp() will, to refuse what it would accept but
 * should not: an unmatched ')' (it would break out of the ^(...)$ anchoring),
 * back-references (exponential matching), Java escapes that glibc silently
 * reads as literals (\d is "d"), and interval repetitions that expand the
 * compiled pattern past CONSTRAINT_REGEX_COST_MAX. Cost model: one per atom, a
 * group costs its content, "{m,n}" multiplies the preceding atom by n. */
static int regex_vet(const char *re, char *msg, size_t size)
{
        uint64_t sum[CONSTRAINT_REGEX_DEPTH_MAX + 1] = {}, last[CONSTRAINT_REGEX_DEPTH_MAX + 1] = {};
        unsigned depth = 0;
        uint64_t copies, g;
        size_t end;

        for (size_t i = 0; re[i]; i++) {
                switch (re[i]) {
                case '\\':
                        i++;
                        if (!re[i]) {
                                snprintf(msg, size, "ends with a lone backslash");
                                return -EINVAL;
                        }
                        if (re[i] >= '0' && re[i] <= '9') {
                                snprintf(msg, size, "back-references (\\%c) are not supported", re[i]);
                                return -EINVAL;
                        }
                        if (is_alnum(re[i]) && !strchr("wWsSbB", re[i])) {
                                snprintf(msg, size,
                                         "\\%c is not a POSIX extended regex escape (Java classes such as "
                                         "\\d are not supported: use [0-9])",
                                         re[i]);
                                return -EINVAL;
                        }
                        sum[depth]++, last[depth] = 1;
                        break;
                case '[':
                        end = bracket_end(re, i);
                        if (end == 0) {
                                snprintf(msg, size, "unterminated bracket expression at offset %zu", i);
                                return -EINVAL;
                        }
                        i = end;
                        sum[depth]++, last[depth] = 1;
                        break;
                case '(':
                        if (re[i + 1] == '?') {
                                snprintf(msg, size,
                                         "\"(?\" at offset %zu is Java syntax: flags such as (?i) and "
                                         "non-capturing groups are not POSIX",
                                         i);
                                return -EINVAL;
                        }
                        if (depth == CONSTRAINT_REGEX_DEPTH_MAX) {
                                snprintf(msg, size, "groups nested deeper than %d",
                                         CONSTRAINT_REGEX_DEPTH_MAX);
                                return -EINVAL;
                        }
                        depth++;
                        sum[depth] = last[depth] = 0;
                        break;
                case ')':
                        if (depth == 0) {
                                snprintf(msg, size, "unmatched ')' at offset %zu", i);
                                return -EINVAL;
                        }
                        g = MAX(sum[depth], 1u);
                        depth--;
                        sum[depth] = cost_cap(sum[depth] + g);
                        last[depth] = g;
                        break;
                case '|':
                        last[depth] = 0;
                        break;
                case '{':
                        end = interval(re, i, &copies);
                        if (end == 0) {
                                sum[depth]++, last[depth] = 1;
                                break;
                        }
                        i = end;
                        if (copies > 1) {
                                sum[depth] = cost_cap(sum[depth] + last[depth] * (copies - 1));
                                last[depth] = cost_cap(last[depth] * copies);
                        }
                        break;
                case '*':
                case '+':
                case '?':
                        break;
                default:
                        sum[depth]++, last[depth] = 1;
                }
                if (sum[depth] > CONSTRAINT_REGEX_COST_MAX) {
                        snprintf(msg, size, "too complex: its repetitions expand to more than %u elements",
                                 CONSTRAINT_REGEX_COST_MAX);
                        return -EINVAL;
                }
        }
        if (depth > 0) {
                snprintf(msg, size, "unmatched '('");
                return -EINVAL;
        }
        return 0;
}

/* Compiles value anchored at both ends, Marathon's whole-value match. */
static int compile_anchored(const char *value, regex_t *ret, char *msg, size_t size)
{
        char pattern[CONSTRAINT_VALUE_MAX + 8];
        int r;

        r = regex_vet(value, msg, size);
        if (r < 0)
                return r;
        snprintf(pattern, sizeof(pattern), "^(%s)$", value);
        r = regcomp(ret, pattern, REG_EXTENDED | REG_NOSUB);
        if (r == REG_ESPACE)
                return -ENOMEM;
        if (r != 0) {
                regerror(r, ret, msg, size);
                return -EINVAL;
        }
        return 0;
}

static void check_text(const char *s, size_t len, const char *op, const JsonPath *at, JsonErrors *errs)
{
        if (len == 0) {
                json_errors_add(errs, at, NULL, "%s value must not be empty", op);
                return;
        }
        if (len > CONSTRAINT_VALUE_MAX) {
                json_errors_add(errs, at, NULL, "%s value is %zu bytes long, more than %d", op, len,
                                CONSTRAINT_VALUE_MAX);
                return;
        }
        if (strlen(s) != len) {
                json_errors_add(errs, at, NULL, "%s value must not contain NUL characters", op);
                return;
        }
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                        json_errors_add(errs, at, NULL, "%s value must not contain control characters", op);
                        return;
                }
}

/* Validates the third item against the operator's rule; on success sets the
 * count for VALUE_COUNT operators. */
static void check_value(ConstraintOp op, const json_t *v, const JsonPath *at, uint32_t *count,
                        JsonErrors *errs)
{
        const char *name = ops[op].name;

        if (!v) {
                if (ops[op].rule == VALUE_REQUIRED)
                        json_errors_add(errs, at, NULL, "%s needs a value: [field, \"%s\", %s]", name, name,
                                        ops[op].kind == VALUE_REGEX   ? "regex"
                                        : ops[op].kind == VALUE_COUNT ? "count"
                                                                      : "value");
                return;
        }
        if (ops[op].rule == VALUE_NONE) {
                json_errors_add(errs, at, NULL, "%s takes no value: [field, \"%s\"]", name, name);
                return;
        }
        if (ops[op].kind == VALUE_COUNT) {
                if (parse_count(v, count))
                        return;
                if (json_is_string(v))
                        json_errors_add(
                                errs, at, NULL, "%s value must be an integer from 1 to %u, got \"%s\"", name,
                                CONSTRAINT_NUMBER_MAX, shown(json_string_value(v), json_string_length(v)));
                else if (json_is_integer(v))
                        json_errors_add(
                                errs, at, NULL,
                                "%s value must be an integer from 1 to %u, got %" JSON_INTEGER_FORMAT, name,
                                CONSTRAINT_NUMBER_MAX, json_integer_value(v));
                else
                        json_errors_add(errs, at, NULL, "%s value must be an integer from 1 to %u, got %s",
                                        name, CONSTRAINT_NUMBER_MAX, json_type_name(v));
                return;
        }
        if (!json_is_string(v)) {
                json_errors_add(errs, at, NULL, "%s value must be a string, got %s", name,
                                json_type_name(v));
                return;
        }
        check_text(json_string_value(v), json_string_length(v), name, at, errs);
}

int constraint_parse(const json_t *item, const JsonPath *at, Constraint *ret, JsonErrors *errs)
{
        _cleanup_(constraint_done) Constraint c = {};
        size_t before = json_errors_count(errs), n;
        const json_t *f, *o, *v;
        char msg[128];
        int r;

        if (!json_is_array(item)) {
                json_errors_add(errs, at, NULL,
                                "expected an array [field, operator] or [field, operator, value], got %s",
                                json_type_name(item));
                return -EINVAL;
        }
        n = json_array_size(item);
        if (n < 2 || n > 3) {
                json_errors_add(errs, at, NULL,
                                "must have 2 or 3 items, [field, operator] or [field, operator, value] "
                                "(got %zu)",
                                n);
                return -EINVAL;
        }
        f = json_array_get(item, 0);
        o = json_array_get(item, 1);
        v = n == 3 && !json_is_null(json_array_get(item, 2)) ? json_array_get(item, 2) : NULL;

        if (json_is_string(f))
                check_field(json_string_value(f), json_string_length(f), at, errs);
        else
                json_errors_add(errs, at, NULL, "field must be a string, got %s", json_type_name(f));

        c.op = _CONSTRAINT_OP_INVALID;
        if (!json_is_string(o))
                json_errors_add(errs, at, NULL, "operator must be a string (one of " OPS_LIST "), got %s",
                                json_type_name(o));
        else if ((c.op = constraint_op_from_string(json_string_value(o))) < 0) {
                json_errors_add(errs, at, NULL, "unknown operator \"%s\"; valid operators: " OPS_LIST,
                                shown(json_string_value(o), json_string_length(o)));
        }
        if (c.op >= 0)
                check_value(c.op, v, at, &c.number, errs);
        if (json_errors_count(errs) > before)
                return -EINVAL;

        c.field = strdup(json_string_value(f));
        if (!c.field)
                return -ENOMEM;
        if (v && ops[c.op].kind == VALUE_COUNT) {
                /* canonical decimal, whichever form it came in */
                if (asprintf(&c.value, "%" PRIu32, c.number) < 0) {
                        c.value = NULL;
                        return -ENOMEM;
                }
        } else if (v) {
                c.value = strdup(json_string_value(v));
                if (!c.value)
                        return -ENOMEM;
        }
        if (ops[c.op].kind == VALUE_REGEX) {
                r = compile_anchored(c.value, &c.regex, msg, sizeof(msg));
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        json_errors_add(errs, at, NULL, "%s value is not a valid regular expression: %s",
                                        ops[c.op].name, msg);
                        return r;
                }
                c.has_regex = true;
        }
        /* glibc's and musl's regex_t hold no pointer to themselves: a copy owns the pattern */
        *ret = c;
        c = (Constraint){};
        return 0;
}

json_t *constraint_to_json(const Constraint *c)
{
        const char *op = constraint_op_to_string(c->op);

        if (!op)
                return NULL;
        return c->value ? json_pack("[sss]", c->field, op, c->value) : json_pack("[ss]", c->field, op);
}
