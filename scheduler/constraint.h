/* SPDX-License-Identifier: Apache-2.0 */
/* Marathon placement constraints: `[field, operator, value?]` on the agent's
 * hostname or one of its attributes. Parsing validates everything up front
 * (unknown operators, bad regexes, missing values) so placement never meets
 * a constraint it cannot evaluate. Evaluation against offers is placement's. */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "json.h"

/* Longest field name and value (a regex for LIKE/UNLIKE). */
#define CONSTRAINT_FIELD_MAX 128
#define CONSTRAINT_VALUE_MAX 512
/* Largest count for GROUP_BY and MAX_PER. */
#define CONSTRAINT_NUMBER_MAX 1000000u
/* LIKE/UNLIKE regexes: nesting depth of groups, and the size the pattern may
 * grow to once glibc expands interval repetitions ("(a{100}){100}" is 10,000
 * nodes); past these regcomp() could take unbounded time and memory. */
#define CONSTRAINT_REGEX_DEPTH_MAX 16
#define CONSTRAINT_REGEX_COST_MAX  4096u

typedef enum ConstraintOp {
        CONSTRAINT_UNIQUE,   /* at most one instance per value of field */
        CONSTRAINT_CLUSTER,  /* all instances on the same value (the given one, or the first used) */
        CONSTRAINT_GROUP_BY, /* spread evenly over the values of field (optionally: over N values) */
        CONSTRAINT_LIKE,     /* field matches the regex (whole value) */
        CONSTRAINT_UNLIKE,   /* field does not match the regex */
        CONSTRAINT_MAX_PER,  /* at most N instances per value of field */
        CONSTRAINT_IS,       /* field equals the value exactly */
        _CONSTRAINT_OP_MAX,
        _CONSTRAINT_OP_INVALID = -EINVAL,
} ConstraintOp;

typedef struct Constraint {
        char *field; /* "hostname", "@hostname" or an attribute name */
        ConstraintOp op;
        char *value;     /* as given (GROUP_BY/MAX_PER: the count in decimal); NULL when absent */
        uint32_t number; /* GROUP_BY's optional count (0 = absent), MAX_PER's limit */
        regex_t regex;   /* LIKE/UNLIKE: compiled as ^(value)$, REG_EXTENDED|REG_NOSUB */
        bool has_regex;
} Constraint;

/* "UNIQUE", ...; NULL for a value out of range. */
const char *constraint_op_to_string(ConstraintOp op);
/* Exact, upper-case names as Marathon spells them; _CONSTRAINT_OP_INVALID otherwise. */
ConstraintOp constraint_op_from_string(const char *s);

/* Parses one constraint, item being the JSON array at `at` (for example
 * /constraints(1)); every problem is recorded in errs at that path, as
 * Marathon reports constraint errors. Values are strings; GROUP_BY and MAX_PER
 * also take a JSON integer. LIKE/UNLIKE take POSIX extended regexes (not
 * Java's: no \d, no (?i), no back-references) matched against the whole value.
 * Returns 0 and fills *ret (release with constraint_done()), -EINVAL after
 * recording errors, or -ENOMEM; *ret is untouched on failure. */
int constraint_parse(const json_t *item, const JsonPath *at, Constraint *ret, JsonErrors *errs);
/* Frees what c holds and zeroes it; safe on a zeroed Constraint. */
void constraint_done(Constraint *c);
/* `[field, op]` or `[field, op, value]` (a new reference; NULL on ENOMEM). */
json_t *constraint_to_json(const Constraint *c);
