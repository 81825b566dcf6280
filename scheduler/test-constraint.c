/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for constraint parsing: every operator's value rule, Marathon-style
 * error paths, regexes anchored to the whole value, hostile regexes refused
 * before regcomp() sees them, canonical JSON and the name tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "constraint.h"

/* JSON written with single quotes, for readability. */
static json_t *load(const char *text)
{
        char buf[4096];
        json_error_t jerr;
        json_t *j;

        assert_true(strlen(text) < sizeof(buf));
        snprintf(buf, sizeof(buf), "%s", text);
        for (char *c = buf; *c; c++)
                if (*c == '\'')
                        *c = '"';
        j = json_loads(buf, JSON_DECODE_ANY, &jerr);
        if (!j)
                fail_msg("bad test JSON %s: %s", buf, jerr.text);
        return j;
}

static void parse_ok(const char *text, Constraint *ret)
{
        JsonPath list = JSON_PATH_KEY(NULL, "constraints"), at = JSON_PATH_INDEX(&list, 0);
        JsonErrors errs = {};
        json_t *j = load(text);
        int r;

        r = constraint_parse(j, &at, ret, &errs);
        if (r != 0)
                fail_msg("%s rejected: %s: %s", text, errs.n ? errs.entries[0].path : "",
                         errs.n ? errs.entries[0].message : "(no error)");
        assert_int_equal(json_errors_count(&errs), 0);
        json_decref(j);
}

/* Asserts that text is rejected with one error at /constraints(1) whose
 * message holds every NULL-terminated fragment, and that *ret is untouched. */
static void assert_rejected(const char *text, ...)
{
        JsonPath list = JSON_PATH_KEY(NULL, "constraints"), at = JSON_PATH_INDEX(&list, 1);
        Constraint c = { .field = (char *)"sentinel" };
        JsonErrors errs = {};
        const char *frag;
        json_t *j = load(text);
        va_list ap;

        assert_int_equal(constraint_parse(j, &at, &c, &errs), -EINVAL);
        assert_string_equal(c.field, "sentinel");
        if (json_errors_count(&errs) != 1)
                fail_msg("%s: %zu errors, want 1 (first: %s)", text, json_errors_count(&errs),
                         errs.n ? errs.entries[0].message : "");
        assert_string_equal(errs.entries[0].path, "/constraints(1)");
        va_start(ap, text);
        while ((frag = va_arg(ap, const char *)))
                if (!strstr(errs.entries[0].message, frag))
                        fail_msg("%s: message \"%s\" lacks \"%s\"", text, errs.entries[0].message, frag);
        va_end(ap);
        json_decref(j);
}

#define REJECTED(text, ...) assert_rejected((text), __VA_ARGS__, NULL)

static bool matches(const Constraint *c, const char *s)
{
        return regexec(&c->regex, s, 0, NULL, 0) == 0;
}

static void test_op_names(void **state)
{
        static const char *const names[] = { "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE",
                                             "UNLIKE", "MAX_PER", "IS" };

        assert_int_equal(ELEMENTSOF(names), _CONSTRAINT_OP_MAX);
        for (int i = 0; i < _CONSTRAINT_OP_MAX; i++) {
                assert_string_equal(constraint_op_to_string((ConstraintOp)i), names[i]);
                assert_int_equal(constraint_op_from_string(names[i]), i);
        }
        assert_null(constraint_op_to_string(_CONSTRAINT_OP_MAX));
        assert_null(constraint_op_to_string(_CONSTRAINT_OP_INVALID));
        assert_int_equal(constraint_op_from_string("unique"), _CONSTRAINT_OP_INVALID);
        assert_int_equal(constraint_op_from_string("UNIQUE "), _CONSTRAINT_OP_INVALID);
        assert_int_equal(constraint_op_from_string(""), _CONSTRAINT_OP_INVALID);
        assert_int_equal(constraint_op_from_string(NULL), _CONSTRAINT_OP_INVALID);
}

static void test_valid(void **state)
{
        Constraint c;

        parse_ok("['hostname', 'UNIQUE']", &c);
        assert_string_equal(c.field, "hostname");
        assert_int_equal(c.op, CONSTRAINT_UNIQUE);
        assert_null(c.value);
        assert_false(c.has_regex);
        constraint_done(&c);

        parse_ok("['@hostname', 'UNIQUE', null]", &c);
        assert_string_equal(c.field, "@hostname");
        assert_null(c.value);
        constraint_done(&c);

        parse_ok("['rack_id', 'CLUSTER', 'rack-1']", &c);
        assert_int_equal(c.op, CONSTRAINT_CLUSTER);
        assert_string_equal(c.value, "rack-1");
        constraint_done(&c);

        /* CLUSTER without a value: the value of the first instance placed */
        parse_ok("['rack_id', 'CLUSTER']", &c);
        assert_null(c.value);
        constraint_done(&c);

        parse_ok("['zone', 'GROUP_BY']", &c);
        assert_int_equal(c.op, CONSTRAINT_GROUP_BY);
        assert_int_equal(c.number, 0);
        assert_null(c.value);
        constraint_done(&c);

        parse_ok("['zone', 'GROUP_BY', '3']", &c);
        assert_int_equal(c.number, 3);
        assert_string_equal(c.value, "3");
        constraint_done(&c);

        /* a JSON integer too, and leading zeros: the value becomes canonical */
        parse_ok("['zone', 'GROUP_BY', 4]", &c);
        assert_int_equal(c.number, 4);
        assert_string_equal(c.value, "4");
        constraint_done(&c);
        parse_ok("['hostname', 'MAX_PER', '007']", &c);
        assert_int_equal(c.op, CONSTRAINT_MAX_PER);
        assert_int_equal(c.number, 7);
        assert_string_equal(c.value, "7");
        constraint_done(&c);
        parse_ok("['hostname', 'MAX_PER', '1000000']", &c);
        assert_int_equal(c.number, CONSTRAINT_NUMBER_MAX);
        constraint_done(&c);

        parse_ok("['os', 'IS', 'linux']", &c);
        assert_int_equal(c.op, CONSTRAINT_IS);
        assert_string_equal(c.value, "linux");
        constraint_done(&c);

        parse_ok("['kubernetes.io/arch', 'UNLIKE', 'arm.*']", &c);
        assert_int_equal(c.op, CONSTRAINT_UNLIKE);
        assert_true(c.has_regex);
        constraint_done(&c);

        /* zeroed after done, and done twice is harmless */
        assert_null(c.field);
        assert_false(c.has_regex);
        constraint_done(&c);
        constraint_done(NULL);
}

static void test_like_is_anchored(void **state)
{
        Constraint c;

        parse_ok("['rack', 'LIKE', 'rack-[0-9]+']", &c);
        assert_true(matches(&c, "rack-1"));
        assert_true(matches(&c, "rack-42"));
        assert_false(matches(&c, "rack-1x"));
        assert_false(matches(&c, "xrack-1"));
        assert_false(matches(&c, "rack-"));
        assert_string_equal(c.value, "rack-[0-9]+");
        constraint_done(&c);

        /* an alternation must not escape the anchors: ^(a|b)$, not ^a|b$ */
        parse_ok("['x', 'LIKE', 'a|b']", &c);
        assert_true(matches(&c, "a"));
        assert_true(matches(&c, "b"));
        assert_false(matches(&c, "ab"));
        assert_false(matches(&c, "xa"));
        assert_false(matches(&c, "bx"));
        constraint_done(&c);

        /* brackets holding ')' and '(' do not count as groups */
        parse_ok("['x', 'LIKE', '[)(]|[]x]|[[:digit:]]{2}']", &c);
        assert_true(matches(&c, ")"));
        assert_true(matches(&c, "]"));
        assert_true(matches(&c, "42"));
        assert_false(matches(&c, "4"));
        constraint_done(&c);

        /* escaped punctuation and the GNU classes that agree with Java's */
        parse_ok("['host', 'LIKE', 'web\\\\.[a-z]+\\\\w*\\\\s?']", &c);
        assert_true(matches(&c, "web.example"));
        assert_false(matches(&c, "webxexample"));
        constraint_done(&c);

        parse_ok("['x', 'LIKE', '.*']", &c);
        assert_true(matches(&c, ""));
        assert_true(matches(&c, "anything at all"));
        constraint_done(&c);

        /* moderate repetition stays under the cost cap: a hostname pattern */
        parse_ok("['host', 'LIKE', '[a-z0-9]{1,63}(\\\\.[a-z0-9]{1,63}){0,10}']", &c);
        assert_true(matches(&c, "a.b.c"));
        constraint_done(&c);
}

static void test_shape_errors(void **state)
{
        REJECTED("{'field': 'hostname'}", "expected an array", "got object");
        REJECTED("'hostname:UNIQUE'", "expected an array", "got string");
        REJECTED("['hostname']", "2 or 3 items", "got 1");
        REJECTED("[]", "got 0");
        REJECTED("['hostname', 'MAX_PER', '2', 'extra']", "got 4");
        REJECTED("[1, 'UNIQUE']", "field must be a string, got number");
        REJECTED("['', 'UNIQUE']", "field must not be empty");
        REJECTED("['host name', 'UNIQUE']", "attribute name", "0x20");
        REJECTED("['@zone', 'GROUP_BY']", "@zone", "only @hostname");
        REJECTED("['hostname', 5]", "operator must be a string", "got number");
}

static void test_operator_errors(void **state)
{
        REJECTED("['hostname', 'FOO']", "unknown operator \"FOO\"",
                 "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS");
        REJECTED("['hostname', 'unique']", "unknown operator \"unique\"");
        REJECTED("['hostname', 'UNIQUE', 'x']", "UNIQUE takes no value");
        REJECTED("['hostname', 'LIKE']", "LIKE needs a value", "regex");
        REJECTED("['hostname', 'UNLIKE', null]", "UNLIKE needs a value");
        REJECTED("['hostname', 'IS']", "IS needs a value");
        REJECTED("['hostname', 'IS', '']", "IS value must not be empty");
        REJECTED("['hostname', 'IS', 3]", "IS value must be a string, got number");
        REJECTED("['hostname', 'CLUSTER', '']", "CLUSTER value must not be empty");
        REJECTED("['hostname', 'CLUSTER', 'a\\nb']", "control characters");
        REJECTED("['hostname', 'MAX_PER']", "MAX_PER needs a value", "count");
        REJECTED("['hostname', 'MAX_PER', 'abc']", "MAX_PER value must be an integer from 1 to 1000000",
                 "got \"abc\"");
        REJECTED("['hostname', 'MAX_PER', '0']", "got \"0\"");
        REJECTED("['hostname', 'MAX_PER', '-1']", "got \"-1\"");
        REJECTED("['hostname', 'MAX_PER', '+1']", "got \"+1\"");
        REJECTED("['hostname', 'MAX_PER', ' 1']", "got \" 1\"");
        REJECTED("['hostname', 'MAX_PER', '1.5']", "got \"1.5\"");
        REJECTED("['hostname', 'MAX_PER', '1000001']", "got \"1000001\"");
        REJECTED("['hostname', 'MAX_PER', '99999999999999999999']", "got \"99999999999999999999\"");
        REJECTED("['hostname', 'MAX_PER', 0]", "got 0");
        REJECTED("['hostname', 'MAX_PER', 2.5]", "got number");
        REJECTED("['hostname', 'GROUP_BY', 'abc']", "GROUP_BY value must be an integer");
}

static void test_field_and_value_size(void **state)
{
        char text[2048];
        Constraint c;

        snprintf(text, sizeof(text), "['%0*d', 'UNIQUE']", CONSTRAINT_FIELD_MAX, 0);
        parse_ok(text, &c);
        constraint_done(&c);
        snprintf(text, sizeof(text), "['%0*d', 'UNIQUE']", CONSTRAINT_FIELD_MAX + 1, 0);
        REJECTED(text, "field is 129 bytes long, more than 128");

        snprintf(text, sizeof(text), "['os', 'IS', '%0*d']", CONSTRAINT_VALUE_MAX, 0);
        parse_ok(text, &c);
        constraint_done(&c);
        snprintf(text, sizeof(text), "['os', 'IS', '%0*d']", CONSTRAINT_VALUE_MAX + 1, 0);
        REJECTED(text, "IS value is 513 bytes long, more than 512");
}

static void test_bad_regex(void **state)
{
        /* what regcomp itself refuses, with its reason */
        REJECTED("['x', 'LIKE', '*a']", "LIKE value is not a valid regular expression");
        REJECTED("['x', 'LIKE', 'a{2,1}']", "not a valid regular expression");
        /* caught before regcomp, with a reason naming the problem */
        REJECTED("['x', 'LIKE', '([a-z]']", "unmatched '('");
        REJECTED("['x', 'LIKE', 'x[a-z']", "unterminated bracket expression at offset 1");
        REJECTED("['x', 'LIKE', '(ab']", "unmatched '('");
        REJECTED("['x', 'UNLIKE', 'a)|(b']", "UNLIKE value", "unmatched ')' at offset 1");
        REJECTED("['x', 'LIKE', 'ab\\\\']", "lone backslash");
        REJECTED("['x', 'LIKE', '(a)\\\\1']", "back-references");
        REJECTED("['x', 'LIKE', 'rack-\\\\d+']", "\\d is not a POSIX", "[0-9]");
        REJECTED("['x', 'LIKE', '\\\\p{Alpha}']", "\\p is not a POSIX");
        REJECTED("['x', 'LIKE', '(?i)web']", "(?", "Java syntax");
        REJECTED("['x', 'LIKE', '[[:alpha:]']", "unterminated bracket");
}

static void test_hostile_regex(void **state)
{
        char text[1024], re[600];
        Constraint c;
        size_t o = 0;

        /* nested intervals would make regcomp build millions of nodes */
        REJECTED("['x', 'LIKE', '((a{100}){100}){100}']", "too complex");
        REJECTED("['x', 'LIKE', '(a{1,100}){1,100}']", "too complex");
        REJECTED("['x', 'LIKE', 'a{5000}']", "too complex");
        REJECTED("['x', 'LIKE', 'a{4096,}']", "too complex");
        REJECTED("['x', 'LIKE', '[a-z]{99999999999999999999}']", "too complex");

        /* deep nesting */
        for (int i = 0; i < CONSTRAINT_REGEX_DEPTH_MAX + 1; i++)
                re[o++] = '(';
        re[o++] = 'a';
        for (int i = 0; i < CONSTRAINT_REGEX_DEPTH_MAX + 1; i++)
                re[o++] = ')';
        re[o] = 0;
        snprintf(text, sizeof(text), "['x', 'LIKE', '%s']", re);
        REJECTED(text, "nested deeper than 16");

        /* the depth limit itself is fine */
        memmove(re, re + 1, strlen(re));
        re[strlen(re) - 1] = 0;
        snprintf(text, sizeof(text), "['x', 'LIKE', '%s']", re);
        parse_ok(text, &c);
        assert_true(matches(&c, "a"));
        constraint_done(&c);
}

static void test_errors_are_collected(void **state)
{
        JsonPath list = JSON_PATH_KEY(NULL, "constraints"), at = JSON_PATH_INDEX(&list, 3);
        JsonErrors errs = {};
        Constraint c = {};
        json_t *j = load("['', 'NOPE']");

        /* earlier errors (other constraints, other fields) stay */
        json_errors_add(&errs, NULL, "id", "earlier");
        assert_int_equal(constraint_parse(j, &at, &c, &errs), -EINVAL);
        assert_int_equal(json_errors_count(&errs), 3);
        assert_string_equal(errs.entries[1].path, "/constraints(3)");
        assert_string_equal(errs.entries[1].message, "field must not be empty");
        assert_string_equal(errs.entries[2].path, "/constraints(3)");
        assert_non_null(strstr(errs.entries[2].message, "unknown operator"));
        assert_null(c.field);
        json_decref(j);

        /* an operator that is not quotable is not echoed */
        j = load("['x', 'NO\\nPE']");
        errs = (JsonErrors){};
        assert_int_equal(constraint_parse(j, &at, &c, &errs), -EINVAL);
        assert_non_null(strstr(errs.entries[0].message, "(not shown)"));
        json_decref(j);
}

static void test_to_json(void **state)
{
        static const char *const cases[][2] = {
                { "['hostname','UNIQUE']", "[\"hostname\",\"UNIQUE\"]" },
                { "['hostname','UNIQUE',null]", "[\"hostname\",\"UNIQUE\"]" },
                { "['rack','GROUP_BY',3]", "[\"rack\",\"GROUP_BY\",\"3\"]" },
                { "['rack','MAX_PER','02']", "[\"rack\",\"MAX_PER\",\"2\"]" },
                { "['rack','LIKE','r[0-9]']", "[\"rack\",\"LIKE\",\"r[0-9]\"]" },
                { "['os','IS','linux']", "[\"os\",\"IS\",\"linux\"]" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Constraint c, again;
                json_t *j;
                char *s;

                parse_ok(cases[i][0], &c);
                j = constraint_to_json(&c);
                assert_non_null(j);
                s = json_dumps(j, JSON_COMPACT);
                assert_string_equal(s, cases[i][1]);
                /* what is printed parses back to the same */
                parse_ok(s, &again);
                assert_int_equal(again.op, c.op);
                assert_int_equal(again.number, c.number);
                assert_string_equal(again.field, c.field);
                free(s);
                json_decref(j);
                constraint_done(&again);
                constraint_done(&c);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_op_names),
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_like_is_anchored),
                cmocka_unit_test(test_shape_errors),
                cmocka_unit_test(test_operator_errors),
                cmocka_unit_test(test_field_and_value_size),
                cmocka_unit_test(test_bad_regex),
                cmocka_unit_test(test_hostile_regex),
                cmocka_unit_test(test_errors_are_collected),
                cmocka_unit_test(test_to_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
