/* SPDX-License-Identifier: Apache-2.0 */
#include "flags.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "duration.h"
#include "json.h"
#include "log.h"

/* Bytes of a value quoted in an error message (the rest is elided), few enough
 * that the message still fits in a PacerError when each byte needs an escape. */
#define FLAGS_QUOTE_MAX 32
/* Help layout: flag column width (longer flags put their help on the next line). */
#define FLAGS_HELP_COLUMN_MAX 32
#define FLAGS_HELP_WIDTH      100

typedef union FlagValue {
        const char *s;
        bool b;
        int64_t i;
        double d;
        uint64_t u;
        LogLevel l;
} FlagValue;

typedef struct Slot {
        FlagValue v;
        bool set;
} Slot;

typedef enum TokenKind {
        TOKEN_FLAG,
        TOKEN_HELP,
        TOKEN_VERSION,
        TOKEN_END, /* first positional argument, "--" or the end of argv */
} TokenKind;

typedef struct Token {
        TokenKind kind;
        const Flag *flag;
        const char *value;
        const char *arg; /* as written, for messages */
        int first_positional;
} Token;

static const char *const default_metavars[_FLAG_TYPE_MAX] = {
        [FLAG_STRING] = "VALUE",    [FLAG_BOOL] = "BOOL",         [FLAG_INT64] = "INT",
        [FLAG_DOUBLE] = "NUMBER",   [FLAG_DURATION] = "DURATION", [FLAG_SIZE] = "SIZE",
        [FLAG_LOG_LEVEL] = "LEVEL",
};

static const char *metavar(const Flag *f)
{
        return f->metavar ? f->metavar : default_metavars[f->type];
}

/* Length of the UTF-8 character at s, 0 when the bytes there are not one. */
static size_t utf8_char_len(const char *s, size_t left)
{
        if ((unsigned char)s[0] < 0x80)
                return 1;
        for (size_t n = 2; n <= 4 && n <= left; n++)
                if (json_utf8_valid(s, n, NULL))
                        return n;
        return 0;
}

/* Quotes s[0..len) for a message: valid UTF-8 kept, control characters and
 * invalid bytes as \xNN, anything past FLAGS_QUOTE_MAX bytes as "...". */
static const char *quote(const char *s, size_t len, char *out, size_t size)
{
        size_t o = 0, i = 0;

        while (i < len && i < FLAGS_QUOTE_MAX && o + 5 < size) {
                unsigned char c = (unsigned char)s[i];
                size_t n = utf8_char_len(s + i, len - i);

                if (n == 0 || c < 0x20 || c == 0x7f) {
                        o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
                        i++;
                } else {
                        memcpy(out + o, s + i, n);
                        o += n;
                        i += n;
                }
        }
        if (i < len && o + 4 < size) {
                memcpy(out + o, "...", 3);
                o += 3;
        }
        out[o] = 0;
        return out;
}

/* The whole of a NUL-terminated string, quoted. */
static const char *quote_str(const char *s, char *out, size_t size)
{
        return quote(s, strlen(s), out, size);
}

static bool name_matches(const char *name, const char *s, size_t len)
{
        return strlen(name) == len && strneq(name, s, len);
}

static const Flag *find_flag(const Flag *flags, size_t n, const char *s, size_t len)
{
        for (size_t i = 0; i < n; i++)
                if (name_matches(flags[i].name, s, len))
                        return &flags[i];
        return NULL;
}

/* Reads the token at argv[*i] and advances *i past it, even on error. */
static int next_token(const Flag *flags, size_t n, int argc, char **argv, int *i, Token *t, PacerError *err)
{
        char q[FLAGS_QUOTE_MAX * 4 + 8];
        const char *a, *name, *eq;
        size_t len;

        *t = (Token){ .kind = TOKEN_END, .first_positional = argc };
        if (*i >= argc)
                return 0;
        a = t->arg = argv[*i];
        if (streq(a, "--")) {
                t->first_positional = ++*i;
                return 0;
        }
        if (a[0] != '-' || a[1] == 0) {
                t->first_positional = *i;
                return 0;
        }
        ++*i;
        if (streq(a, "-h") || streq(a, "--help")) {
                t->kind = TOKEN_HELP;
                return 0;
        }
        if (streq(a, "--version")) {
                t->kind = TOKEN_VERSION;
                return 0;
        }
        if (a[1] != '-')
                return pacer_error_set(err, EINVAL, "unknown flag %s (see --help)",
                                       quote_str(a, q, sizeof(q)));

        name = a + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        if (name_matches("help", name, len) || name_matches("version", name, len))
                return pacer_error_set(err, EINVAL, "%s: --%.*s takes no value", quote_str(a, q, sizeof(q)),
                                       (int)len, name);
        t->kind = TOKEN_FLAG;
        t->flag = find_flag(flags, n, name, len);
        if (!t->flag && len > 3 && strneq(name, "no-", 3)) {
                const Flag *f = find_flag(flags, n, name + 3, len - 3);
                if (f && f->type == FLAG_BOOL) {
                        if (eq)
                                return pacer_error_set(err, EINVAL, "%s: --no-%s takes no value",
                                                       quote_str(a, q, sizeof(q)), f->name);
                        t->flag = f;
                        t->value = "false";
                        return 0;
                }
        }
        if (!t->flag)
                return pacer_error_set(err, EINVAL, "unknown flag %s (see --help)",
                                       quote(a, len + 2, q, sizeof(q)));
        if (eq)
                t->value = eq + 1;
        else if (t->flag->type == FLAG_BOOL)
                t->value = "true"; /* a boolean never takes the next argument */
        else if (*i < argc)
                t->value = argv[(*i)++];
        else
                return pacer_error_set(err, EINVAL, "--%s: missing value (expected %s)", t->flag->name,
                                       metavar(t->flag));
        return 0;
}

static int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "true", "yes", "on", "1" };
        static const char *const no[] = { "false", "no", "off", "0" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

static bool has_range(const Flag *f)
{
        return f->min < f->max;
}

static int parse_size(const char *s, uint64_t *ret)
{
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = {
                { "", 0 },     { "b", 0 },   { "k", 10 },   { "kb", 10 },  { "kib", 10 },
                { "m", 20 },   { "mb", 20 }, { "mib", 20 }, { "g", 30 },   { "gb", 30 },
                { "gib", 30 }, { "t", 40 },  { "tb", 40 },  { "tib", 40 },
        };
        unsigned long long v;
        char *end;

        if (!isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcasecmp(end, units[i].suffix) == 0) {
                        if (v > (UINT64_MAX >> units[i].shift))
                                return -ERANGE;
                        *ret = (uint64_t)v << units[i].shift;
                        return 0;
                }
        return -EINVAL;
}

/* Converts one value; the message says what is wrong with it, the caller adds who gave it. */
static int convert(const Flag *f, const char *s, FlagValue *ret, PacerError *err)
{
        char q[FLAGS_QUOTE_MAX * 4 + 8];
        size_t len = strlen(s), bad;
        FlagValue v = {};
        char *end;
        int r;

        if (len > FLAGS_VALUE_MAX)
                return pacer_error_set(err, EINVAL, "value is %zu bytes long, over the limit of %d bytes",
                                       len, FLAGS_VALUE_MAX);
        if (!json_utf8_valid(s, len, &bad))
                return pacer_error_set(err, EINVAL, "value is not valid UTF-8 (byte 0x%02x at offset %zu)",
                                       (unsigned char)s[bad], bad);
        if (len == 0 && f->type != FLAG_STRING)
                return pacer_error_set(err, EINVAL, "empty value (expected %s)", metavar(f));
        quote_str(s, q, sizeof(q));

        switch (f->type) {
        case FLAG_STRING:
                v.s = s;
                break;
        case FLAG_BOOL:
                if (parse_bool(s, &v.b) < 0)
                        return pacer_error_set(
                                err, EINVAL,
                                "invalid boolean '%s' (expected true, false, yes, no, on, off, 1 "
                                "or 0)",
                                q);
                break;
        case FLAG_INT64:
                errno = 0;
                v.i = strtoll(s, &end, 10);
                if (!(isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+') || *end != 0)
                        return pacer_error_set(err, EINVAL,
                                               "invalid integer '%s' (expected a decimal integer)", q);
                if (errno == ERANGE || (has_range(f) && (v.i < f->min || v.i > f->max))) {
                        if (has_range(f))
                                return pacer_error_set(err, ERANGE,
                                                       "'%s' is out of range (expected %lld..%lld)", q,
                                                       (long long)f->min, (long long)f->max);
                        return pacer_error_set(err, ERANGE, "'%s' is out of range", q);
                }
                break;
        case FLAG_DOUBLE:
                errno = 0;
                v.d = strtod(s, &end);
                if (isspace((unsigned char)s[0]) || *end != 0)
                        return pacer_error_set(err, EINVAL, "invalid number '%s'", q);
                if (!isfinite(v.d) || errno == ERANGE)
                        return pacer_error_set(err, ERANGE, "'%s' is not a finite number in range", q);
                break;
        case FLAG_DURATION:
                r = duration_parse(s, &v.i, err);
                if (r < 0)
                        return r;
                if (has_range(f) && (v.i < f->min || v.i > f->max)) {
                        char lo[32], hi[32];
                        return pacer_error_set(err, ERANGE,
                                               "duration '%s' is out of range (expected %s..%s)", q,
                                               duration_format_mesos(f->min, lo, sizeof(lo)),
                                               duration_format_mesos(f->max, hi, sizeof(hi)));
                }
                break;
        case FLAG_SIZE:
                r = parse_size(s, &v.u);
                if (r == -ERANGE)
                        return pacer_error_set(err, ERANGE, "size '%s' is out of range", q);
                if (r < 0)
                        return pacer_error_set(
                                err, EINVAL,
                                "invalid size '%s' (expected bytes with an optional K, M, G or T "
                                "suffix, powers of 1024, e.g. 512, 64K, 10M)",
                                q);
                if (has_range(f) && (v.u < (uint64_t)MAX(f->min, 0) || v.u > (uint64_t)f->max))
                        return pacer_error_set(err, ERANGE,
                                               "size '%s' is out of range (expected %lld..%lld bytes)", q,
                                               (long long)f->min, (long long)f->max);
                break;
        case FLAG_LOG_LEVEL:
                v.l = log_level_from_string(s);
                if (v.l < 0)
                        return pacer_error_set(
                                err, EINVAL, "invalid log level '%s' (expected error, warn, info or debug)",
                                q);
                break;
        default:
                return pacer_error_set(err, EINVAL, "unsupported flag type %d", f->type);
        }
        *ret = v;
        return 0;
}

static void store(const Flag *f, const FlagValue *v)
{
        switch (f->type) {
        case FLAG_STRING:
                *(const char **)f->target = v->s;
                break;
        case FLAG_BOOL:
                *(bool *)f->target = v->b;
                break;
        case FLAG_INT64:
        case FLAG_DURATION:
                *(int64_t *)f->target = v->i;
                break;
        case FLAG_DOUBLE:
                *(double *)f->target = v->d;
                break;
        case FLAG_SIZE:
                *(uint64_t *)f->target = v->u;
                break;
        case FLAG_LOG_LEVEL:
                *(LogLevel *)f->target = v->l;
                break;
        default:
                break;
        }
}

static int check_table(const Flag *flags, size_t n, PacerError *err)
{
        for (size_t i = 0; i < n; i++) {
                const Flag *f = &flags[i];
                size_t len;

                if (!f->name || !f->target || f->type < 0 || f->type >= _FLAG_TYPE_MAX)
                        return pacer_error_set(
                                err, EINVAL, "flag table entry %zu: missing name or target, or bad type", i);
                len = strlen(f->name);
                if (len == 0 || len > FLAGS_NAME_MAX ||
                    strspn(f->name, "abcdefghijklmnopqrstuvwxyz0123456789-") != len || f->name[0] == '-')
                        return pacer_error_set(err, EINVAL, "flag table: bad name '%.*s'", FLAGS_NAME_MAX,
                                               f->name);
                if (streq(f->name, "help") || streq(f->name, "version"))
                        return pacer_error_set(err, EINVAL, "flag table: --%s is built in", f->name);
                for (size_t k = 0; k < i; k++)
                        if (streq(flags[k].name, f->name))
                                return pacer_error_set(err, EINVAL, "flag table: --%s appears twice",
                                                       f->name);
        }
        return 0;
}

int flags_parse(const Flag *flags, size_t n, int argc, char **argv, int *ret_first_positional,
                PacerError *err)
{
        char q[FLAGS_QUOTE_MAX * 4 + 8];
        _cleanup_free_ Slot *slots = NULL;
        Token t;
        int i, r;

        r = check_table(flags, n, err);
        if (r < 0)
                return r;

        /* --help wins over any error elsewhere on the line: someone asking for help
         * after a bad flag should get the help. */
        for (i = 1;;) {
                if (next_token(flags, n, argc, argv, &i, &t, NULL) < 0)
                        continue;
                if (t.kind == TOKEN_HELP)
                        return FLAGS_HELP;
                if (t.kind == TOKEN_VERSION)
                        return FLAGS_VERSION;
                if (t.kind == TOKEN_END)
                        break;
        }

        slots = calloc(MAX(n, (size_t)1), sizeof(Slot));
        if (!slots)
                return pacer_error_set(err, ENOMEM, "out of memory");

        for (i = 1;;) {
                Slot *s;

                r = next_token(flags, n, argc, argv, &i, &t, err);
                if (r < 0)
                        return r;
                if (t.kind == TOKEN_END)
                        break;
                s = &slots[t.flag - flags];
                r = convert(t.flag, t.value, &s->v, err);
                if (r < 0) {
                        if (strchr(t.arg, '='))
                                pacer_error_prefix(err, "%s", quote_str(t.arg, q, sizeof(q)));
                        else
                                pacer_error_prefix(err, "--%s=%s", t.flag->name,
                                                   quote_str(t.value, q, sizeof(q)));
                        return r;
                }
                s->set = true;
        }

        for (size_t k = 0; k < n; k++) {
                const char *v;

                if (slots[k].set || !flags[k].env)
                        continue;
                v = getenv(flags[k].env);
                if (!v || !*v)
                        continue;
                r = convert(&flags[k], v, &slots[k].v, err);
                if (r < 0) {
                        pacer_error_prefix(err, "%s=%s", flags[k].env, quote_str(v, q, sizeof(q)));
                        return r;
                }
                slots[k].set = true;
        }

        for (size_t k = 0; k < n; k++)
                if (slots[k].set)
                        store(&flags[k], &slots[k].v);
        if (ret_first_positional)
                *ret_first_positional = t.first_positional;
        return 0;
}

static const char *format_size(uint64_t v, char *buf, size_t size)
{
        static const char units[] = "KMGT";
        int k = -1;

        while (v != 0 && k < 3 && v % 1024 == 0) {
                v /= 1024;
                k++;
        }
        if (k < 0)
                snprintf(buf, size, "%llu", (unsigned long long)v);
        else
                snprintf(buf, size, "%llu%c", (unsigned long long)v, units[k]);
        return buf;
}

/* The target's current value for --help, or NULL when there is nothing worth showing. */
static const char *format_default(const Flag *f, char *buf, size_t size)
{
        const char *s;

        switch (f->type) {
        case FLAG_STRING:
                s = *(const char *const *)f->target;
                if (!s || !*s)
                        return NULL;
                return quote_str(s, buf, size);
        case FLAG_BOOL:
                return *(const bool *)f->target ? "true" : "false";
        case FLAG_INT64:
                snprintf(buf, size, "%lld", (long long)*(const int64_t *)f->target);
                return buf;
        case FLAG_DOUBLE:
                snprintf(buf, size, "%g", *(const double *)f->target);
                return buf;
        case FLAG_DURATION:
                return duration_format_mesos(*(const int64_t *)f->target, buf, size);
        case FLAG_SIZE:
                return format_size(*(const uint64_t *)f->target, buf, size);
        case FLAG_LOG_LEVEL:
                s = log_level_to_string(*(const LogLevel *)f->target);
                if (!s)
                        return NULL;
                snprintf(buf, size, "%s", s);
                for (char *p = buf; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                return buf;
        default:
                return NULL;
        }
}

static int flag_column(const Flag *f, char *buf, size_t size)
{
        if (f->type == FLAG_BOOL)
                return snprintf(buf, size, "  --[no-]%s", f->name);
        return snprintf(buf, size, "  --%s=%s", f->name, metavar(f));
}

/* Writes a word at *pos, breaking the line first when it would pass FLAGS_HELP_WIDTH. */
static void put_word(FILE *out, int column, int *pos, const char *word, size_t len)
{
        if (*pos > column && *pos + 1 + (int)len > FLAGS_HELP_WIDTH) {
                fprintf(out, "\n%*s", column, "");
                *pos = column;
        }
        if (*pos > column) {
                fputc(' ', out);
                (*pos)++;
        }
        fwrite(word, 1, len, out);
        *pos += (int)len;
}

static void print_entry(FILE *out, int column, const char *left, const char *help, const char *extra)
{
        int pos = fprintf(out, "%s", left);

        if (pos + 2 > column) {
                fputc('\n', out);
                pos = 0;
        }
        fprintf(out, "%*s", column - pos, "");
        pos = column;
        for (const char *w = strempty(help); *w;) {
                size_t len = strcspn(w, " ");
                if (len > 0)
                        put_word(out, column, &pos, w, len);
                w += len + strspn(w + len, " ");
        }
        /* the env/default note stays in one piece */
        if (extra && *extra)
                put_word(out, column, &pos, extra, strlen(extra));
        fputc('\n', out);
}

void flags_print_help(FILE *f, const char *program, const char *synopsis, const char *description,
                      const Flag *flags, size_t n)
{
        char left[FLAGS_NAME_MAX + 64], def[FLAGS_QUOTE_MAX * 4 + 8], extra[FLAGS_QUOTE_MAX * 4 + 160];
        int column = (int)strlen("  -h, --help") + 2;

        for (size_t i = 0; i < n; i++)
                column = MAX(column,
                             MIN(flag_column(&flags[i], left, sizeof(left)) + 2, FLAGS_HELP_COLUMN_MAX));

        fprintf(f, "Usage: %s %s\n", strna(program), synopsis ? synopsis : "[OPTIONS]");
        if (description && *description)
                fprintf(f, "\n%s\n", description);
        fprintf(f, "\nOptions:\n");
        for (size_t i = 0; i < n; i++) {
                const Flag *fl = &flags[i];
                const char *d = format_default(fl, def, sizeof(def));
                int len = 0;

                extra[0] = 0;
                if (fl->env)
                        len = snprintf(extra, sizeof(extra), "[env: %s]", fl->env);
                if (d && len >= 0 && (size_t)len < sizeof(extra))
                        snprintf(extra + len, sizeof(extra) - (size_t)len, "%s[default: %s]", len ? " " : "",
                                 d);
                flag_column(fl, left, sizeof(left));
                print_entry(f, column, left, fl->help, extra);
        }
        print_entry(f, column, "  -h, --help", "Show this help and exit.", NULL);
        print_entry(f, column, "      --version", "Show the version and exit.", NULL);
}
