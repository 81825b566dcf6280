/* SPDX-License-Identifier: Apache-2.0 */
#include "app.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Marathon's defaults (AppDefinition, HealthCheck); maxLaunchDelaySeconds as before Marathon 1.8. */
#define DEFAULT_CPUS               1.0
#define DEFAULT_MEM                128.0
#define DEFAULT_DISK               0.0
#define DEFAULT_INSTANCES          1
#define DEFAULT_BACKOFF_SECONDS    1.0
#define DEFAULT_BACKOFF_FACTOR     1.15
#define DEFAULT_MAX_LAUNCH_DELAY   3600.0
#define DEFAULT_CHECK_GRACE        300
#define DEFAULT_CHECK_INTERVAL     60
#define DEFAULT_CHECK_TIMEOUT      20
#define DEFAULT_CHECK_FAILURES     3
#define DEFAULT_CHECK_DELAY        15
#define DEFAULT_UPGRADE_MIN_HEALTH 1.0
#define DEFAULT_UPGRADE_MAX_OVER   1.0

/* 15 significant digits: every double Pacer keeps was rounded to that, so
 * printing it this way gives back the same value, and 0.1 prints as "0.1". */
#define APP_JSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* `,"version":""` plus the longest version. */
#define VERSION_RESERVE (STRLEN(",\"version\":\"\"") + APP_VERSION_MAX)

#define SEGMENT_RULE "segments are lower-case letters, digits and '-', in labels joined by '.'"

static const char *const check_protocol_names[_CHECK_PROTOCOL_MAX] = {
        [CHECK_PROTOCOL_HTTP] = "HTTP",
        [CHECK_PROTOCOL_HTTPS] = "HTTPS",
        [CHECK_PROTOCOL_TCP] = "TCP",
        [CHECK_PROTOCOL_COMMAND] = "COMMAND",
};

static const char *const kill_selection_names[_KILL_SELECTION_MAX] = {
        [KILL_SELECTION_YOUNGEST_FIRST] = "YOUNGEST_FIRST",
        [KILL_SELECTION_OLDEST_FIRST] = "OLDEST_FIRST",
};

static const char *const port_protocol_names[_PORT_PROTOCOL_MAX] = {
        [PORT_PROTOCOL_TCP] = "tcp",
        [PORT_PROTOCOL_UDP] = "udp",
        [PORT_PROTOCOL_UDP_TCP] = "udp,tcp",
};

static int name_index(const char *const *names, int n, const char *s)
{
        for (int i = 0; s && i < n; i++)
                if (streq(s, names[i]))
                        return i;
        return -EINVAL;
}

const char *app_check_protocol_to_string(CheckProtocol p)
{
        return p >= 0 && p < _CHECK_PROTOCOL_MAX ? check_protocol_names[p] : NULL;
}

CheckProtocol app_check_protocol_from_string(const char *s, bool *ret_mesos)
{
        bool mesos = s && strneq(s, "MESOS_", STRLEN("MESOS_"));
        int i = name_index(check_protocol_names, _CHECK_PROTOCOL_MAX, mesos ? s + STRLEN("MESOS_") : s);

        /* there is no MESOS_COMMAND: Marathon's COMMAND checks are Mesos checks already */
        if (i < 0 || (mesos && i == CHECK_PROTOCOL_COMMAND))
                return _CHECK_PROTOCOL_INVALID;
        if (ret_mesos)
                *ret_mesos = mesos;
        return (CheckProtocol)i;
}

const char *app_kill_selection_to_string(KillSelection k)
{
        return k >= 0 && k < _KILL_SELECTION_MAX ? kill_selection_names[k] : NULL;
}

KillSelection app_kill_selection_from_string(const char *s)
{
        return (KillSelection)name_index(kill_selection_names, _KILL_SELECTION_MAX, s);
}

const char *app_port_protocol_to_string(PortProtocol p)
{
        return p >= 0 && p < _PORT_PROTOCOL_MAX ? port_protocol_names[p] : NULL;
}

PortProtocol app_port_protocol_from_string(const char *s)
{
        return (PortProtocol)name_index(port_protocol_names, _PORT_PROTOCOL_MAX, s);
}

/* Printable ASCII and short: safe to quote back in a message. */
static bool quotable(const char *s, size_t len)
{
        if (len > 64)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return true;
}

static bool has_control(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* A member name as it may appear in an error path: control characters as \xNN. */
static const char *path_key(const char *key, char *buf, size_t size)
{
        size_t o = 0;

        if (!has_control(key))
                return key;
        for (const char *p = key; *p && o + 5 < size; p++) {
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        o += (size_t)snprintf(buf + o, size - o, "\\x%02x", (unsigned char)*p);
                else
                        buf[o++] = *p;
        }
        buf[o] = 0;
        return buf;
}

/* ---- ids ---------------------------------------------------------------- */

static bool id_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool id_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Marathon's segment rule: DNS-like labels of [a-z0-9-], each starting and
 * ending with a letter or digit, joined by single dots. */
static int id_segment_check(const char *seg, size_t n, PacerError *err)
{
        bool q = quotable(seg, n);
        int w = q ? (int)n : 0;
        const char *open = q ? "segment \"" : "a segment", *close = q ? "\"" : "";

        for (size_t i = 0; i < n; i++) {
                char c = seg[i];
                if (id_char(c))
                        continue;
                if (c >= 'A' && c <= 'Z')
                        return pacer_error_set(err, EINVAL,
                                               "%s%.*s%s has an upper-case '%c': ids are lower case", open,
                                               w, seg, close, c);
                if (c == ' ')
                        return pacer_error_set(err, EINVAL, "%s%.*s%s contains a space; " SEGMENT_RULE, open,
                                               w, seg, close);
                if (c > 0x20 && c < 0x7f)
                        return pacer_error_set(err, EINVAL, "%s%.*s%s contains '%c'; " SEGMENT_RULE, open, w,
                                               seg, close, c);
                return pacer_error_set(err, EINVAL,
                                       "%s%.*s%s contains byte 0x%02x at offset %zu; " SEGMENT_RULE, open, w,
                                       seg, close, (unsigned char)c, i);
        }
        for (size_t start = 0; start <= n;) {
                const char *dot = memchr(seg + start, '.', n - start);
                size_t end = dot ? (size_t)(dot - seg) : n;
                if (end == start)
                        return pacer_error_set(err, EINVAL,
                                               "%s%.*s%s has an empty label between dots; " SEGMENT_RULE,
                                               open, w, seg, close);
                if (!id_alnum(seg[start]) || !id_alnum(seg[end - 1]))
                        return pacer_error_set(err, EINVAL,
                                               "%s%.*s%s must start and end with a letter or digit, also "
                                               "around each '.'",
                                               open, w, seg, close);
                start = end + 1;
        }
        return 0;
}

/* Appends a segment to out ("" = the root, else "/a/b"), or resolves "." and "..". */
static int id_push(char *out, size_t *len, const char *seg, size_t n, PacerError *err)
{
        int r;

        if (n == 1 && seg[0] == '.')
                return 0;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
                if (*len == 0)
                        return pacer_error_set(err, EINVAL, "\"..\" goes above the root");
                while (out[*len - 1] != '/')
                        (*len)--;
                out[--(*len)] = 0;
                return 0;
        }
        r = id_segment_check(seg, n, err);
        if (r < 0)
                return r;
        if (*len + 1 + n > APP_ID_MAX)
                return pacer_error_set(err, EINVAL, "is longer than %d bytes once resolved", APP_ID_MAX);
        out[(*len)++] = '/';
        memcpy(out + *len, seg, n);
        *len += n;
        out[*len] = 0;
        return 0;
}

static int id_walk(const char *s, char *out, size_t *len, PacerError *err)
{
        const char *p = s + (*s == '/');
        int r;

        while (*p) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t)(slash - p) : strlen(p);
                if (n == 0)
                        return pacer_error_set(err, EINVAL, "has an empty path segment (\"//\")");
                r = id_push(out, len, p, n, err);
                if (r < 0)
                        return r;
                if (!slash)
                        break;
                p = slash + 1; /* a trailing '/' ends the loop: dropped, as Marathon does */
        }
        return 0;
}

int app_id_normalize(const char *id, const char *base, char **ret, PacerError *err)
{
        char out[APP_ID_MAX + 1] = "";
        size_t len = 0, n = strlen(id);
        char *s;
        int r;

        if (n == 0)
                return pacer_error_set(err, EINVAL, "must not be empty");
        if (n > APP_ID_MAX)
                return pacer_error_set(err, EINVAL, "is %zu bytes long, more than %d", n, APP_ID_MAX);
        if (id[0] != '/' && base) {
                r = id_walk(base, out, &len, err);
                if (r < 0) {
                        pacer_error_prefix(err, "base id");
                        return r;
                }
        }
        r = id_walk(id, out, &len, err);
        if (r < 0)
                return r;
        if (len == 0)
                return pacer_error_set(err, EINVAL, "must name an app, not the root group \"/\"");
        s = strdup(out);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct Parse {
        const json_t *j;
        const JsonPath *at;
        AppSpec *a;
        JsonErrors *errs;
        bool ports_valid; /* n_ports is what the definition says: portIndex can be checked */
} Parse;

typedef enum FieldKind {
        FIELD_PARSED,
        FIELD_READ_ONLY,   /* in Marathon's responses: ignored on input */
        FIELD_UNSUPPORTED, /* accepted only when empty, else an error saying why */
} FieldKind;

static bool networks_host_only(const json_t *v)
{
        size_t i;
        json_t *n;

        if (!json_is_array(v))
                return false;
        json_array_foreach(v, i, n)
        {
                json_t *mode = json_object_get(n, "mode");
                if (json_object_size(n) != 1 || !json_is_string(mode) ||
                    !streq(json_string_value(mode), "host"))
                        return false;
        }
        return true;
}

static bool roles_any(const json_t *v)
{
        return json_is_array(v) && json_array_size(v) == 1 && json_is_string(json_array_get(v, 0)) &&
               streq(json_string_value(json_array_get(v, 0)), "*");
}

static const struct AppField {
        const char *name;
        FieldKind kind;
        const char *why;
        bool (*also_empty)(const json_t *v); /* FIELD_UNSUPPORTED: other values meaning "nothing" */
} app_fields[] = {
        { .name = "id" },
        { .name = "cmd" },
        { .name = "args" },
        { .name = "user" },
        { .name = "env" },
        { .name = "instances" },
        { .name = "cpus" },
        { .name = "mem" },
        { .name = "disk" },
        { .name = "executor" },
        { .name = "constraints" },
        { .name = "backoffSeconds" },
        { .name = "backoffFactor" },
        { .name = "maxLaunchDelaySeconds" },
        { .name = "healthChecks" },
        { .name = "dependencies" },
        { .name = "upgradeStrategy" },
        { .name = "labels" },
        { .name = "portDefinitions" },
        { .name = "ports" },
        { .name = "requirePorts" },
        { .name = "killSelection" },
        { .name = "taskKillGracePeriodSeconds" },
        { .name = "version", .kind = FIELD_READ_ONLY },
        { .name = "versionInfo", .kind = FIELD_READ_ONLY },
        { .name = "tasksRunning", .kind = FIELD_READ_ONLY },
        { .name = "tasksStaged", .kind = FIELD_READ_ONLY },
        { .name = "tasksHealthy", .kind = FIELD_READ_ONLY },
        { .name = "tasksUnhealthy", .kind = FIELD_READ_ONLY },
        { .name = "deployments", .kind = FIELD_READ_ONLY },
        { .name = "tasks", .kind = FIELD_READ_ONLY },
        { .name = "lastTaskFailure", .kind = FIELD_READ_ONLY },
        { .name = "taskStats", .kind = FIELD_READ_ONLY },
        { .name = "readinessCheckResults", .kind = FIELD_READ_ONLY },
        { .name = "container",
          .kind = FIELD_UNSUPPORTED,
          .why = "tasks run cmd/args on the agent under pacer-executor, with no Docker or Mesos container" },
        { .name = "gpus", .kind = FIELD_UNSUPPORTED, .why = "Pacer does not schedule GPUs" },
        { .name = "uris",
          .kind = FIELD_UNSUPPORTED,
          .why = "Pacer fetches no artifacts; install them on the agents or download them in cmd" },
        { .name = "fetch",
          .kind = FIELD_UNSUPPORTED,
          .why = "Pacer fetches no artifacts; install them on the agents or download them in cmd" },
        { .name = "storeUrls", .kind = FIELD_UNSUPPORTED, .why = "Pacer fetches no artifacts" },
        { .name = "readinessChecks",
          .kind = FIELD_UNSUPPORTED,
          .why = "an instance is ready when pacer-executor reports it healthy and registered in Consul; use "
                 "healthChecks" },
        { .name = "residency", .kind = FIELD_UNSUPPORTED, .why = "no persistent volumes or resident tasks" },
        { .name = "secrets",
          .kind = FIELD_UNSUPPORTED,
          .why = "there is no secret store; provide secrets on the agent (files, or its environment)" },
        { .name = "networks",
          .kind = FIELD_UNSUPPORTED,
          .why = "tasks use host networking only",
          .also_empty = networks_host_only },
        { .name = "ipAddress",
          .kind = FIELD_UNSUPPORTED,
          .why = "tasks use host networking only (no IP per task)" },
        { .name = "acceptedResourceRoles",
          .kind = FIELD_UNSUPPORTED,
          .why = "offers are accepted for the roles the scheduler subscribes with, for every app",
          .also_empty = roles_any },
        { .name = "role", .kind = FIELD_UNSUPPORTED, .why = "the scheduler's roles apply to every app" },
        { .name = "unreachableStrategy",
          .kind = FIELD_UNSUPPORTED,
          .why = "unreachable tasks are handled scheduler-wide" },
        { .name = "executorResources",
          .kind = FIELD_UNSUPPORTED,
          .why = "executor resources are a scheduler setting" },
        { .name = "check",
          .kind = FIELD_UNSUPPORTED,
          .why = "use healthChecks; pacer-executor runs them all on the agent" },
        { .name = "resourceLimits",
          .kind = FIELD_UNSUPPORTED,
          .why = "tasks are limited to the resources they reserve" },
        { .name = "tty", .kind = FIELD_UNSUPPORTED, .why = "tasks have no TTY" },
};

/* null, false, 0, "", [] and {}: what Marathon's own responses hold for a
 * feature not in use. */
static bool empty_value(const json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_NULL:
        case JSON_FALSE:
                return true;
        case JSON_INTEGER:
        case JSON_REAL:
                return json_number_value(v) == 0;
        case JSON_STRING:
                return json_string_length(v) == 0;
        case JSON_ARRAY:
                return json_array_size(v) == 0;
        case JSON_OBJECT:
                return json_object_size(v) == 0;
        default:
                return false;
        }
}

static int check_fields(Parse *p)
{
        char buf[JSON_PATH_MAX];
        const char *key;
        json_t *v;

        json_object_foreach((json_t *)p->j, key, v)
        {
                const struct AppField *f = NULL;
                for (size_t i = 0; i < ELEMENTSOF(app_fields) && !f; i++)
                        if (streq(key, app_fields[i].name))
                                f = &app_fields[i];
                if (!f)
                        json_errors_add(p->errs, p->at, path_key(key, buf, sizeof(buf)), "unknown field");
                else if (f->kind == FIELD_UNSUPPORTED && !empty_value(v) &&
                         !(f->also_empty && f->also_empty(v)))
                        json_errors_add(p->errs, p->at, key, "not supported by Pacer: %s", f->why);
        }
        return 0;
}

static int parse_id(Parse *p)
{
        PacerError err = {};
        const char *s;
        int r;

        if (json_get_string(p->j, p->at, "id", JSON_GET_REQUIRED, 0, &s, p->errs) <= 0)
                return 0;
        r = app_id_normalize(s, NULL, &p->a->id, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                json_errors_add(p->errs, p->at, "id", "%s", err.msg);
        return 0;
}

static int parse_command(Parse *p)
{
        JsonPath args_at = JSON_PATH_KEY(p->at, "args");
        const char *cmd = NULL;
        json_t *args = NULL, *arg;
        int rc, ra;
        size_t i;

        rc = json_get_string(p->j, p->at, "cmd", JSON_GET_NONEMPTY, 0, &cmd, p->errs);
        ra = json_get_array(p->j, p->at, "args", JSON_GET_NONEMPTY, APP_ARGS_MAX, &args, p->errs);
        if (rc != 0 && ra != 0) {
                json_errors_add(p->errs, p->at, NULL, "cmd and args are mutually exclusive");
                return 0;
        }
        if (rc == 0 && ra == 0) {
                json_errors_add(
                        p->errs, p->at, NULL,
                        "one of cmd or args is required (Pacer has no containers to supply a command)");
                return 0;
        }
        if (rc > 0) {
                p->a->cmd = strdup(cmd);
                return p->a->cmd ? 0 : -ENOMEM;
        }
        if (ra <= 0)
                return 0;
        p->a->args = calloc(json_array_size(args) + 1, sizeof(char *));
        if (!p->a->args)
                return -ENOMEM;
        json_array_foreach(args, i, arg)
        {
                JsonPath at = JSON_PATH_INDEX(&args_at, i);
                if (!json_is_string(arg)) {
                        json_errors_add(p->errs, &at, NULL, "expected string, got %s", json_type_name(arg));
                        continue;
                }
                if (strlen(json_string_value(arg)) != json_string_length(arg)) {
                        json_errors_add(p->errs, &at, NULL, "must not contain NUL characters");
                        continue;
                }
                p->a->args[p->a->n_args] = strdup(json_string_value(arg));
                if (!p->a->args[p->a->n_args])
                        return -ENOMEM;
                p->a->n_args++;
        }
        return 0;
}

static int parse_user(Parse *p)
{
        const char *s;

        if (json_get_string(p->j, p->at, "user", JSON_GET_NONEMPTY | JSON_GET_NO_CONTROL, APP_USER_MAX, &s,
                            p->errs) <= 0)
                return 0;
        p->a->user = strdup(s);
        return p->a->user ? 0 : -ENOMEM;
}

/* Rounds to 15 significant digits (what the canonical JSON prints) and makes -0 plain 0. */
static double canonical_double(double d)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%.15g", d);
        d = strtod(buf, NULL);
        return d == 0 ? 0 : d;
}

static const struct {
        const char *key;
        size_t offset;
        double min, max;
} double_fields[] = {
        { "cpus", offsetof(AppSpec, cpus), 0, APP_RESOURCE_MAX },
        { "mem", offsetof(AppSpec, mem), 0, APP_RESOURCE_MAX },
        { "disk", offsetof(AppSpec, disk), 0, APP_RESOURCE_MAX },
        { "backoffSeconds", offsetof(AppSpec, backoff_seconds), 0, APP_SECONDS_MAX },
        { "backoffFactor", offsetof(AppSpec, backoff_factor), 1, APP_BACKOFF_FACTOR_MAX },
        { "maxLaunchDelaySeconds", offsetof(AppSpec, max_launch_delay_seconds), 0, APP_SECONDS_MAX },
};

static int parse_numbers(Parse *p)
{
        int64_t i;

        for (size_t k = 0; k < ELEMENTSOF(double_fields); k++) {
                double *d = (double *)((char *)p->a + double_fields[k].offset);
                if (json_get_double(p->j, p->at, double_fields[k].key, 0, double_fields[k].min,
                                    double_fields[k].max, d, p->errs) > 0)
                        *d = canonical_double(*d);
        }
        if (json_get_int(p->j, p->at, "instances", 0, 0, APP_INSTANCES_MAX, &i, p->errs) > 0)
                p->a->instances = (uint32_t)i;
        if (json_get_int(p->j, p->at, "taskKillGracePeriodSeconds", 0, 0, APP_SECONDS_MAX, &i, p->errs) > 0)
                p->a->task_kill_grace_seconds = i;
        return 0;
}

typedef enum MapKind {
        MAP_ENV,
        MAP_LABELS,
} MapKind;

/* Env names: Marathon checks app env names loosely (its strict rule,
 * [A-Za-z_][A-Za-z0-9_]*, is for pods); Pacer refuses what cannot be an
 * environment name ('=') or is unsafe to pass on: blanks, control and non-ASCII bytes. */
static const char *env_name_problem(const char *k)
{
        size_t n = strlen(k);

        if (n == 0)
                return "environment variable name must not be empty";
        if (n > APP_ENV_NAME_MAX)
                return "environment variable name is longer than 254 bytes";
        for (const char *c = k; *c; c++)
                if (*c <= 0x20 || *c >= 0x7f || *c == '=')
                        return "environment variable name must be printable ASCII without '=' or blanks";
        return NULL;
}

static const char *label_name_problem(const char *k)
{
        size_t n = strlen(k);

        if (n == 0)
                return "label name must not be empty";
        if (n > APP_LABEL_KEY_MAX)
                return "label name is longer than 256 bytes";
        if (has_control(k))
                return "label name must not contain control characters";
        return NULL;
}

/* env or labels: an object of strings, parsed into a KeyValue array. */
static int parse_map(const json_t *obj, const JsonPath *at, const char *key, MapKind kind, size_t max,
                     KeyValue **ret, size_t *ret_n, JsonErrors *errs)
{
        JsonPath map_at = JSON_PATH_KEY(at, key);
        size_t before = json_errors_count(errs), n = 0;
        char buf[JSON_PATH_MAX];
        const char *k, *s;
        KeyValue *kv;
        json_t *m, *v;

        if (json_get_object(obj, at, key, 0, &m, errs) <= 0)
                return 0;
        if (json_object_size(m) > max) {
                json_errors_add(errs, at, key, "must have at most %zu entries (got %zu)", max,
                                json_object_size(m));
                return 0;
        }
        json_object_foreach(m, k, v)
        {
                const char *problem = kind == MAP_ENV ? env_name_problem(k) : label_name_problem(k);
                if (problem) {
                        json_errors_add(errs, &map_at, path_key(k, buf, sizeof(buf)), "%s", problem);
                        continue;
                }
                if (kind == MAP_ENV && json_is_object(v) && json_object_get(v, "secret")) {
                        json_errors_add(
                                errs, &map_at, k,
                                "not supported by Pacer: secret references (there is no secret store); "
                                "give the value as a string");
                        continue;
                }
                if (json_is_null(v)) {
                        json_errors_add(errs, &map_at, k, "expected string, got null");
                        continue;
                }
                json_get_string(m, &map_at, k, kind == MAP_LABELS ? JSON_GET_NO_CONTROL : 0,
                                kind == MAP_LABELS ? APP_LABEL_VALUE_MAX : 0, &s, errs);
        }
        if (json_errors_count(errs) > before || json_object_size(m) == 0)
                return 0;

        kv = calloc(json_object_size(m), sizeof(KeyValue));
        if (!kv)
                return -ENOMEM;
        /* stored before it is filled, so that a failure midway frees what was copied */
        *ret = kv;
        json_object_foreach(m, k, v)
        {
                kv[n].key = strdup(k);
                kv[n].value = strdup(json_string_value(v));
                *ret_n = ++n;
                if (!kv[n - 1].key || !kv[n - 1].value)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_maps(Parse *p)
{
        int r;

        r = parse_map(p->j, p->at, "env", MAP_ENV, APP_ENV_MAX, &p->a->env, &p->a->n_env, p->errs);
        if (r < 0)
                return r;
        return parse_map(p->j, p->at, "labels", MAP_LABELS, APP_LABELS_MAX, &p->a->labels, &p->a->n_labels,
                         p->errs);
}

typedef int (*ItemParser)(Parse *p, const json_t *item, const JsonPath *at, void *ret);

/* The array member key (at most max items), each item parsed by fn into an
 * element of `size` bytes. An item that fails leaves its element zeroed, so
 * the list can be freed as it is. */
static int parse_list(Parse *p, const char *key, size_t max, size_t size, ItemParser fn, void **ret,
                      size_t *ret_n)
{
        JsonPath list_at = JSON_PATH_KEY(p->at, key);
        json_t *arr, *item;
        size_t i;
        int r;

        if (json_get_array(p->j, p->at, key, 0, max, &arr, p->errs) <= 0 || json_array_size(arr) == 0)
                return 0;
        *ret = calloc(json_array_size(arr), size);
        if (!*ret)
                return -ENOMEM;
        json_array_foreach(arr, i, item)
        {
                JsonPath at = JSON_PATH_INDEX(&list_at, i);
                *ret_n = i + 1;
                r = fn(p, item, &at, (char *)*ret + i * size);
                if (r == -ENOMEM)
                        return r;
        }
        return 0;
}

static int parse_constraint(Parse *p, const json_t *item, const JsonPath *at, void *ret)
{
        return constraint_parse(item, at, ret, p->errs);
}

static int parse_constraints(Parse *p)
{
        void *list = NULL;
        int r;

        r = parse_list(p, "constraints", APP_CONSTRAINTS_MAX, sizeof(Constraint), parse_constraint, &list,
                       &p->a->n_constraints);
        p->a->constraints = list;
        return r;
}

static bool port_name_valid(const char *s)
{
        for (; *s; s++)
                if (!id_alnum(*s) && *s != '-')
                        return false;
        return true;
}

static int parse_port_definition(Parse *p, const json_t *item, const JsonPath *at, PortDefinition *d)
{
        static const char *const keys[] = { "port", "protocol", "name", "labels", NULL };
        const char *s;
        int64_t port;

        if (!json_is_object(item)) {
                json_errors_add(p->errs, at, NULL, "expected object, got %s", json_type_name(item));
                return 0;
        }
        json_check_keys(item, at, keys, p->errs);
        if (json_get_int(item, at, "port", 0, 0, 65535, &port, p->errs) > 0)
                d->port = (uint32_t)port;
        if (json_get_string(item, at, "protocol", 0, 0, &s, p->errs) > 0 &&
            (d->protocol = app_port_protocol_from_string(s)) < 0)
                json_errors_add(p->errs, at, "protocol", "must be tcp, udp or udp,tcp");
        if (json_get_string(item, at, "name", JSON_GET_NONEMPTY, APP_PORT_NAME_MAX, &s, p->errs) > 0) {
                if (!port_name_valid(s))
                        json_errors_add(p->errs, at, "name",
                                        "must be lower-case letters, digits and '-' ([a-z0-9-]+)");
                else if (!(d->name = strdup(s)))
                        return -ENOMEM;
        }
        return parse_map(item, at, "labels", MAP_LABELS, APP_PORT_LABELS_MAX, &d->labels, &d->n_labels,
                         p->errs);
}

/* Marathon: non-zero ports and the names given are unique. */
static void check_ports_unique(Parse *p, const char *key)
{
        JsonPath list_at = JSON_PATH_KEY(p->at, key);
        const PortDefinition *d = p->a->ports;

        for (size_t i = 0; i < p->a->n_ports; i++) {
                JsonPath at = JSON_PATH_INDEX(&list_at, i);
                for (size_t k = 0; k < i; k++) {
                        if (d[i].port != 0 && d[i].port == d[k].port)
                                json_errors_add(p->errs, &at, streq(key, "ports") ? NULL : "port",
                                                "port %" PRIu32
                                                " is also given by %s(%zu): ports must be unique",
                                                d[i].port, key, k);
                        if (d[i].name && d[k].name && streq(d[i].name, d[k].name))
                                json_errors_add(
                                        p->errs, &at, "name",
                                        "\"%s\" is also the name of %s(%zu): port names must be unique",
                                        d[i].name, key, k);
                }
        }
}

static int parse_ports(Parse *p)
{
        JsonPath defs_at = JSON_PATH_KEY(p->at, "portDefinitions"),
                 legacy_at = JSON_PATH_KEY(p->at, "ports");
        uint32_t legacy_ports[APP_PORTS_MAX];
        size_t before = json_errors_count(p->errs), i;
        json_t *defs = NULL, *legacy = NULL, *item;
        int rd, rl, r;

        rd = json_get_array(p->j, p->at, "portDefinitions", 0, APP_PORTS_MAX, &defs, p->errs);
        rl = json_get_array(p->j, p->at, "ports", 0, APP_PORTS_MAX, &legacy, p->errs);
        if (rd < 0 || rl < 0)
                return 0;
        if (rl > 0)
                json_array_foreach(legacy, i, item)
                {
                        JsonPath at = JSON_PATH_INDEX(&legacy_at, i);
                        if (!json_is_integer(item) || json_integer_value(item) < 0 ||
                            json_integer_value(item) > 65535)
                                json_errors_add(p->errs, &at, NULL, "must be an integer from 0 to 65535");
                        else
                                legacy_ports[i] = (uint32_t)json_integer_value(item);
                }

        if (rd == 0 && rl == 0) {
                /* Marathon's default: one port, any free host port */
                p->a->ports = calloc(1, sizeof(PortDefinition));
                if (!p->a->ports)
                        return -ENOMEM;
                p->a->n_ports = 1;
                p->ports_valid = true;
                return 0;
        }
        if (rd > 0) {
                p->a->ports = calloc(MAX(json_array_size(defs), 1u), sizeof(PortDefinition));
                if (!p->a->ports)
                        return -ENOMEM;
                json_array_foreach(defs, i, item)
                {
                        JsonPath at = JSON_PATH_INDEX(&defs_at, i);
                        p->a->n_ports = i + 1;
                        r = parse_port_definition(p, item, &at, &p->a->ports[i]);
                        if (r < 0)
                                return r;
                }
                check_ports_unique(p, "portDefinitions");
        }
        if (json_errors_count(p->errs) > before)
                return 0;
        if (rd > 0 && rl > 0) {
                /* Marathon takes both only when they say the same */
                bool same = json_array_size(legacy) == p->a->n_ports;
                for (i = 0; same && i < p->a->n_ports; i++)
                        same = legacy_ports[i] == p->a->ports[i].port;
                if (!same)
                        json_errors_add(p->errs, p->at, "ports",
                                        "ports and portDefinitions are both given and differ: give only "
                                        "portDefinitions");
                p->ports_valid = same;
                return 0;
        }
        if (rl > 0) {
                p->a->ports = calloc(MAX(json_array_size(legacy), 1u), sizeof(PortDefinition));
                if (!p->a->ports)
                        return -ENOMEM;
                p->a->n_ports = json_array_size(legacy);
                for (i = 0; i < p->a->n_ports; i++)
                        p->a->ports[i].port = legacy_ports[i];
                check_ports_unique(p, "ports");
        }
        p->ports_valid = json_errors_count(p->errs) == before;
        return 0;
}

static int parse_require_ports(Parse *p)
{
        json_get_bool(p->j, p->at, "requirePorts", 0, &p->a->require_ports, p->errs);
        return 0;
}

static const struct {
        const char *key;
        size_t offset;
        int64_t min, max;
} check_int_fields[] = {
        { "gracePeriodSeconds", offsetof(AppHealthCheck, grace_period_seconds), 0, APP_CHECK_SECONDS_MAX },
        { "intervalSeconds", offsetof(AppHealthCheck, interval_seconds), 1, APP_CHECK_SECONDS_MAX },
        { "timeoutSeconds", offsetof(AppHealthCheck, timeout_seconds), 1, APP_CHECK_SECONDS_MAX },
        { "maxConsecutiveFailures", offsetof(AppHealthCheck, max_consecutive_failures), 0,
          APP_CHECK_FAILURES_MAX },
        { "delaySeconds", offsetof(AppHealthCheck, delay_seconds), 0, APP_CHECK_SECONDS_MAX },
};

/* A URL path: starts with '/', printable ASCII without blanks (percent-encode the rest). */
static const char *check_path_problem(const char *s)
{
        if (s[0] != '/')
                return "must start with '/'";
        for (const char *c = s; *c; c++) {
                if (*c == ' ')
                        return "must not contain spaces (percent-encode them as %20)";
                if (*c < 0x20 || *c >= 0x7f)
                        return "must be printable ASCII without control characters (percent-encode the rest)";
        }
        return NULL;
}

static int check_path(Parse *p, const json_t *item, const JsonPath *at, bool http, AppHealthCheck *c)
{
        const char *s = "/", *problem;

        if (!http) {
                if (json_object_get(item, "path") && !json_is_null(json_object_get(item, "path")))
                        json_errors_add(p->errs, at, "path", "only HTTP and HTTPS checks have a path");
                return 0;
        }
        if (json_get_string(item, at, "path", 0, APP_CHECK_PATH_MAX, &s, p->errs) < 0)
                return 0;
        problem = check_path_problem(s);
        if (problem) {
                json_errors_add(p->errs, at, "path", "%s", problem);
                return 0;
        }
        c->path = strdup(s);
        return c->path ? 0 : -ENOMEM;
}

static int check_command(Parse *p, const json_t *item, const JsonPath *at, bool command, AppHealthCheck *c)
{
        static const char *const keys[] = { "value", NULL };
        JsonPath cmd_at = JSON_PATH_KEY(at, "command");
        const char *s;
        json_t *cmd;

        if (!command) {
                if (json_object_get(item, "command") && !json_is_null(json_object_get(item, "command")))
                        json_errors_add(p->errs, at, "command", "only COMMAND checks have a command");
                return 0;
        }
        if (json_get_object(item, at, "command", JSON_GET_REQUIRED, &cmd, p->errs) <= 0)
                return 0;
        json_check_keys(cmd, &cmd_at, keys, p->errs);
        if (json_get_string(cmd, &cmd_at, "value", JSON_GET_REQUIRED | JSON_GET_NONEMPTY, 0, &s, p->errs) <=
            0)
                return 0;
        c->command = strdup(s);
        return c->command ? 0 : -ENOMEM;
}

static void check_port(Parse *p, const json_t *item, const JsonPath *at, bool command, AppHealthCheck *c)
{
        int64_t port = 0, index = 0;
        int rp, ri;

        c->port_index = -1;
        if (command) {
                for (size_t k = 0; k < 2; k++) {
                        const char *key = k == 0 ? "port" : "portIndex";
                        if (json_object_get(item, key) && !json_is_null(json_object_get(item, key)))
                                json_errors_add(p->errs, at, key, "COMMAND checks have no port");
                }
                return;
        }
        rp = json_get_int(item, at, "port", 0, 1, 65535, &port, p->errs);
        ri = json_get_int(item, at, "portIndex", 0, 0, INT32_MAX, &index, p->errs);
        if (rp < 0 || ri < 0)
                return;
        if (rp > 0 && ri > 0) {
                json_errors_add(p->errs, at, "port", "port and portIndex are mutually exclusive");
                return;
        }
        if (rp > 0) {
                c->port = (uint32_t)port;
                return;
        }
        if (!p->ports_valid)
                return;
        if (p->a->n_ports == 0)
                json_errors_add(p->errs, at, "portIndex",
                                "the app has no port definitions: define one, or give the check a port");
        else if ((size_t)index >= p->a->n_ports)
                json_errors_add(p->errs, at, "portIndex",
                                "must be less than the number of port definitions (%zu), got %" PRId64,
                                p->a->n_ports, index);
        c->port_index = (int32_t)index;
}

static int parse_check(Parse *p, const json_t *item, const JsonPath *at, void *ret)
{
        static const char *const keys[] = { "protocol",
                                            "path",
                                            "portIndex",
                                            "port",
                                            "command",
                                            "gracePeriodSeconds",
                                            "intervalSeconds",
                                            "timeoutSeconds",
                                            "maxConsecutiveFailures",
                                            "delaySeconds",
                                            "ipProtocol",
                                            "ignoreHttp1xx",
                                            NULL };
        bool interval_ok = true, timeout_ok = true, ignore_1xx = false, command;
        AppHealthCheck *c = ret;
        const char *s;
        int64_t v;
        int r;

        *c = (AppHealthCheck){
                .protocol = CHECK_PROTOCOL_HTTP,
                .port_index = -1,
                .grace_period_seconds = DEFAULT_CHECK_GRACE,
                .interval_seconds = DEFAULT_CHECK_INTERVAL,
                .timeout_seconds = DEFAULT_CHECK_TIMEOUT,
                .max_consecutive_failures = DEFAULT_CHECK_FAILURES,
                .delay_seconds = DEFAULT_CHECK_DELAY,
        };
        if (!json_is_object(item)) {
                json_errors_add(p->errs, at, NULL, "expected object, got %s", json_type_name(item));
                return 0;
        }
        json_check_keys(item, at, keys, p->errs);
        for (size_t k = 0; k < ELEMENTSOF(check_int_fields); k++) {
                r = json_get_int(item, at, check_int_fields[k].key, 0, check_int_fields[k].min,
                                 check_int_fields[k].max, &v, p->errs);
                if (r > 0)
                        *(uint32_t *)((char *)c + check_int_fields[k].offset) = (uint32_t)v;
                else if (r < 0 && check_int_fields[k].offset == offsetof(AppHealthCheck, interval_seconds))
                        interval_ok = false;
                else if (r < 0 && check_int_fields[k].offset == offsetof(AppHealthCheck, timeout_seconds))
                        timeout_ok = false;
        }
        /* a probe still running when the next is due would overlap it in Marathon */
        if (interval_ok && timeout_ok && c->timeout_seconds >= c->interval_seconds)
                json_errors_add(p->errs, at, "timeoutSeconds",
                                "must be less than intervalSeconds (%" PRIu32 "), got %" PRIu32,
                                c->interval_seconds, c->timeout_seconds);
        if (json_get_string(item, at, "ipProtocol", 0, 0, &s, p->errs) > 0) {
                if (streq(s, "IPv6"))
                        c->ipv6 = true;
                else if (!streq(s, "IPv4"))
                        json_errors_add(p->errs, at, "ipProtocol", "must be IPv4 or IPv6");
        }
        if (json_get_bool(item, at, "ignoreHttp1xx", 0, &ignore_1xx, p->errs) > 0 && ignore_1xx)
                json_errors_add(p->errs, at, "ignoreHttp1xx",
                                "not supported by Pacer: the executor judges the final HTTP status only");

        if (json_get_string(item, at, "protocol", 0, 0, &s, p->errs) > 0 &&
            (c->protocol = app_check_protocol_from_string(s, &c->mesos_name)) < 0) {
                json_errors_add(
                        p->errs, at, "protocol",
                        "must be one of HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP");
                return 0;
        }
        if (c->protocol < 0)
                return 0;
        command = c->protocol == CHECK_PROTOCOL_COMMAND;
        if (command && c->ipv6)
                json_errors_add(p->errs, at, "ipProtocol", "COMMAND checks have no IP protocol");
        check_port(p, item, at, command, c);
        r = check_path(p, item, at,
                       c->protocol == CHECK_PROTOCOL_HTTP || c->protocol == CHECK_PROTOCOL_HTTPS, c);
        if (r < 0)
                return r;
        return check_command(p, item, at, command, c);
}

static int parse_checks(Parse *p)
{
        void *list = NULL;
        int r;

        r = parse_list(p, "healthChecks", APP_CHECKS_MAX, sizeof(AppHealthCheck), parse_check, &list,
                       &p->a->n_checks);
        p->a->checks = list;
        return r;
}

static int parse_upgrade_strategy(Parse *p)
{
        static const char *const keys[] = { "minimumHealthCapacity", "maximumOverCapacity", NULL };
        JsonPath at = JSON_PATH_KEY(p->at, "upgradeStrategy");
        json_t *us;

        if (json_get_object(p->j, p->at, "upgradeStrategy", 0, &us, p->errs) <= 0)
                return 0;
        json_check_keys(us, &at, keys, p->errs);
        if (json_get_double(us, &at, "minimumHealthCapacity", 0, 0, 1, &p->a->minimum_health_capacity,
                            p->errs) > 0)
                p->a->minimum_health_capacity = canonical_double(p->a->minimum_health_capacity);
        if (json_get_double(us, &at, "maximumOverCapacity", 0, 0, 1, &p->a->maximum_over_capacity, p->errs) >
            0)
                p->a->maximum_over_capacity = canonical_double(p->a->maximum_over_capacity);
        return 0;
}

static int parse_kill_selection(Parse *p)
{
        const char *s;

        if (json_get_string(p->j, p->at, "killSelection", 0, 0, &s, p->errs) > 0 &&
            (p->a->kill_selection = app_kill_selection_from_string(s)) < 0)
                json_errors_add(p->errs, p->at, "killSelection", "must be YOUNGEST_FIRST or OLDEST_FIRST");
        return 0;
}

/* The group an app is in: "/prod" for "/prod/web", "" (the root) for "/web". */
static void parent_of(const char *id, char out[static APP_ID_MAX + 1])
{
        snprintf(out, APP_ID_MAX + 1, "%s", id);
        *strrchr(out, '/') = 0;
}

static int parse_dependency(Parse *p, const json_t *item, const JsonPath *at, void *ret)
{
        char parent[APP_ID_MAX + 1] = "";
        PacerError err = {};
        int r;

        if (!json_is_string(item)) {
                json_errors_add(p->errs, at, NULL, "expected string, got %s", json_type_name(item));
                return -EINVAL;
        }
        /* relative ids are relative to the app's group, as in Marathon */
        if (p->a->id)
                parent_of(p->a->id, parent);
        r = app_id_normalize(json_string_value(item), parent, ret, &err);
        if (r == -EINVAL)
                json_errors_add(p->errs, at, NULL, "%s", err.msg);
        return r;
}

static int parse_dependencies(Parse *p)
{
        JsonPath list_at = JSON_PATH_KEY(p->at, "dependencies");
        void *list = NULL;
        char **deps;
        int r;

        r = parse_list(p, "dependencies", APP_DEPENDENCIES_MAX, sizeof(char *), parse_dependency, &list,
                       &p->a->n_dependencies);
        deps = p->a->dependencies = list;
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->a->n_dependencies; i++) {
                JsonPath at = JSON_PATH_INDEX(&list_at, i);
                if (!deps[i])
                        continue;
                if (p->a->id && streq(deps[i], p->a->id))
                        json_errors_add(p->errs, &at, NULL, "an app cannot depend on itself");
                for (size_t k = 0; k < i; k++)
                        if (deps[k] && streq(deps[k], deps[i])) {
                                json_errors_add(p->errs, &at, NULL, "%s is listed twice", deps[i]);
                                break;
                        }
        }
        return 0;
}

static int parse_executor(Parse *p)
{
        const char *s = "";

        if (json_get_string(p->j, p->at, "executor", JSON_GET_NO_CONTROL, APP_EXECUTOR_MAX, &s, p->errs) >
                    0 &&
            streq(s, "//cmd")) {
                json_errors_add(p->errs, p->at, "executor",
                                "not supported by Pacer: \"//cmd\" is Mesos's command executor; every Pacer "
                                "task runs under pacer-executor (leave executor empty)");
                return 0;
        }
        p->a->executor = strdup(s);
        return p->a->executor ? 0 : -ENOMEM;
}

/* In order: ports before health checks (portIndex), id before dependencies. */
static int (*const parse_steps[])(Parse *p) = {
        check_fields,        parse_id,       parse_command,          parse_user,
        parse_numbers,       parse_maps,     parse_constraints,      parse_ports,
        parse_require_ports, parse_checks,   parse_upgrade_strategy, parse_kill_selection,
        parse_dependencies,  parse_executor,
};

/* ---- canonical JSON ----------------------------------------------------- */

static void put(json_t *o, const char *key, json_t *v, bool *oom)
{
        if (json_object_set_new(o, key, v) < 0)
                *oom = true;
}

static void push(json_t *arr, json_t *v, bool *oom)
{
        if (json_array_append_new(arr, v) < 0)
                *oom = true;
}

/* Integral values as integers ("mem":128), the rest as reals. */
static json_t *number(double d)
{
        if (d == trunc(d) && fabs(d) < 9007199254740992.0)
                return json_integer((json_int_t)d);
        return json_real(d);
}

static json_t *string_or_null(const char *s)
{
        return s ? json_string(s) : json_null();
}

static json_t *kv_object(const KeyValue *kv, size_t n, bool *oom)
{
        json_t *o = json_object();

        if (!o) {
                *oom = true;
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                put(o, kv[i].key, json_string(kv[i].value), oom);
        return o;
}

static json_t *strings_array(char *const *s, size_t n, bool *oom)
{
        json_t *arr = json_array();

        if (!arr) {
                *oom = true;
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                push(arr, json_string(s[i]), oom);
        return arr;
}

static json_t *check_json(const AppHealthCheck *c, bool *oom)
{
        char protocol[32];
        json_t *o = json_object();

        if (!o) {
                *oom = true;
                return NULL;
        }
        snprintf(protocol, sizeof(protocol), "%s%s", c->mesos_name ? "MESOS_" : "",
                 app_check_protocol_to_string(c->protocol));
        put(o, "protocol", json_string(protocol), oom);
        if (c->path)
                put(o, "path", json_string(c->path), oom);
        if (c->port_index >= 0)
                put(o, "portIndex", json_integer(c->port_index), oom);
        else if (c->port > 0)
                put(o, "port", json_integer(c->port), oom);
        if (c->command)
                put(o, "command", json_pack("{s:s}", "value", c->command), oom);
        put(o, "gracePeriodSeconds", json_integer(c->grace_period_seconds), oom);
        put(o, "intervalSeconds", json_integer(c->interval_seconds), oom);
        put(o, "timeoutSeconds", json_integer(c->timeout_seconds), oom);
        put(o, "maxConsecutiveFailures", json_integer(c->max_consecutive_failures), oom);
        put(o, "delaySeconds", json_integer(c->delay_seconds), oom);
        if (c->protocol != CHECK_PROTOCOL_COMMAND)
                put(o, "ipProtocol", json_string(c->ipv6 ? "IPv6" : "IPv4"), oom);
        return o;
}

static json_t *port_json(const PortDefinition *d, bool *oom)
{
        json_t *o = json_object();

        if (!o) {
                *oom = true;
                return NULL;
        }
        put(o, "port", json_integer(d->port), oom);
        put(o, "protocol", json_string(app_port_protocol_to_string(d->protocol)), oom);
        if (d->name)
                put(o, "name", json_string(d->name), oom);
        put(o, "labels", kv_object(d->labels, d->n_labels, oom), oom);
        return o;
}

/* Marathon's response shape, in Marathon's field order. */
json_t *app_spec_to_json(const AppSpec *a)
{
        json_t *o = json_object(), *arr;
        bool oom = !o;

        if (oom)
                return NULL;
        put(o, "id", json_string(a->id), &oom);
        put(o, "cmd", string_or_null(a->cmd), &oom);
        put(o, "args", a->args ? strings_array(a->args, a->n_args, &oom) : json_null(), &oom);
        put(o, "user", string_or_null(a->user), &oom);
        put(o, "env", kv_object(a->env, a->n_env, &oom), &oom);
        put(o, "instances", json_integer(a->instances), &oom);
        put(o, "cpus", number(a->cpus), &oom);
        put(o, "mem", number(a->mem), &oom);
        put(o, "disk", number(a->disk), &oom);
        put(o, "gpus", json_integer(0), &oom);
        put(o, "executor", json_string(a->executor), &oom);
        put(o, "constraints", arr = json_array(), &oom);
        for (size_t i = 0; arr && i < a->n_constraints; i++)
                push(arr, constraint_to_json(&a->constraints[i]), &oom);
        put(o, "uris", json_array(), &oom);
        put(o, "fetch", json_array(), &oom);
        put(o, "storeUrls", json_array(), &oom);
        put(o, "backoffSeconds", number(a->backoff_seconds), &oom);
        put(o, "backoffFactor", number(a->backoff_factor), &oom);
        put(o, "maxLaunchDelaySeconds", number(a->max_launch_delay_seconds), &oom);
        put(o, "container", json_null(), &oom);
        put(o, "healthChecks", arr = json_array(), &oom);
        for (size_t i = 0; arr && i < a->n_checks; i++)
                push(arr, check_json(&a->checks[i], &oom), &oom);
        put(o, "readinessChecks", json_array(), &oom);
        put(o, "dependencies", strings_array(a->dependencies, a->n_dependencies, &oom), &oom);
        put(o, "upgradeStrategy",
            json_pack("{s:o, s:o}", "minimumHealthCapacity", number(a->minimum_health_capacity),
                      "maximumOverCapacity", number(a->maximum_over_capacity)),
            &oom);
        put(o, "labels", kv_object(a->labels, a->n_labels, &oom), &oom);
        put(o, "portDefinitions", arr = json_array(), &oom);
        for (size_t i = 0; arr && i < a->n_ports; i++)
                push(arr, port_json(&a->ports[i], &oom), &oom);
        put(o, "requirePorts", json_boolean(a->require_ports), &oom);
        if (a->version[0])
                put(o, "version", json_string(a->version), &oom);
        put(o, "killSelection", json_string(app_kill_selection_to_string(a->kill_selection)), &oom);
        if (a->task_kill_grace_seconds >= 0)
                put(o, "taskKillGracePeriodSeconds", json_integer(a->task_kill_grace_seconds), &oom);
        if (oom) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* Replaces a->json with a fresh rendering; a is unchanged on failure. */
static int render(AppSpec *a)
{
        json_t *o = app_spec_to_json(a);
        char *s;

        if (!o)
                return -ENOMEM;
        s = json_dumps(o, APP_JSON_DUMP_FLAGS);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        free(a->json);
        a->json = s;
        a->json_len = strlen(s);
        return 0;
}

/* ---- public ------------------------------------------------------------- */

static void kv_free(KeyValue *kv, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

static void strv_free(char **s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(s[i]);
        free(s);
}

AppSpec *app_spec_free(AppSpec *a)
{
        if (!a)
                return NULL;
        free(a->id);
        free(a->cmd);
        strv_free(a->args, a->n_args);
        free(a->user);
        kv_free(a->env, a->n_env);
        kv_free(a->labels, a->n_labels);
        for (size_t i = 0; i < a->n_constraints; i++)
                constraint_done(&a->constraints[i]);
        free(a->constraints);
        for (size_t i = 0; i < a->n_ports; i++) {
                free(a->ports[i].name);
                kv_free(a->ports[i].labels, a->ports[i].n_labels);
        }
        free(a->ports);
        for (size_t i = 0; i < a->n_checks; i++) {
                free(a->checks[i].path);
                free(a->checks[i].command);
        }
        free(a->checks);
        strv_free(a->dependencies, a->n_dependencies);
        free(a->executor);
        free(a->json);
        free(a);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(AppSpec *, app_spec_free);

/* Parses and validates into a spec whose json is not rendered yet (NULL). */
static int parse_spec(const json_t *j, const JsonPath *at, AppSpec **ret, JsonErrors *errs)
{
        _cleanup_(app_spec_freep) AppSpec *a = NULL;
        size_t before = json_errors_count(errs), size;
        Parse p;
        int r;

        if (!json_is_object(j)) {
                json_errors_add(errs, at, NULL, "expected an app definition (object), got %s",
                                json_type_name(j));
                return -EINVAL;
        }
        a = malloc(sizeof(*a));
        if (!a)
                return -ENOMEM;
        *a = (AppSpec){
                .cpus = DEFAULT_CPUS,
                .mem = DEFAULT_MEM,
                .disk = DEFAULT_DISK,
                .instances = DEFAULT_INSTANCES,
                .minimum_health_capacity = DEFAULT_UPGRADE_MIN_HEALTH,
                .maximum_over_capacity = DEFAULT_UPGRADE_MAX_OVER,
                .backoff_seconds = DEFAULT_BACKOFF_SECONDS,
                .backoff_factor = DEFAULT_BACKOFF_FACTOR,
                .max_launch_delay_seconds = DEFAULT_MAX_LAUNCH_DELAY,
                .kill_selection = KILL_SELECTION_YOUNGEST_FIRST,
                .task_kill_grace_seconds = -1,
        };
        p = (Parse){ .j = j, .at = at, .a = a, .errs = errs };
        for (size_t i = 0; i < ELEMENTSOF(parse_steps); i++) {
                r = parse_steps[i](&p);
                if (r < 0)
                        return r;
        }
        if (json_errors_count(errs) > before) {
                /* the definition as given, to tell its size along with the other errors */
                size = json_dumpb(j, NULL, 0, APP_JSON_DUMP_FLAGS);
                if (size > APP_JSON_MAX)
                        json_errors_add(errs, at, NULL, "app definition is %zu bytes, more than %u", size,
                                        APP_JSON_MAX);
                return -EINVAL;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

/* The size a rendered definition may have: room is left for the version it is stamped with. */
static int check_size(const AppSpec *a, const JsonPath *at, JsonErrors *errs)
{
        if (a->json_len + VERSION_RESERVE > APP_JSON_MAX) {
                json_errors_add(errs, at, NULL, "app definition is %zu bytes, more than %u",
                                a->json_len + VERSION_RESERVE, APP_JSON_MAX);
                return -EINVAL;
        }
        return 0;
}

int app_spec_from_json(const json_t *j, const JsonPath *at, AppSpec **ret, JsonErrors *errs)
{
        _cleanup_(app_spec_freep) AppSpec *a = NULL;
        int r;

        r = parse_spec(j, at, &a, errs);
        if (r >= 0)
                r = render(a);
        if (r >= 0)
                r = check_size(a, at, errs);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

int app_spec_from_stored(const void *data, size_t len, const char *version, AppSpec **ret, PacerError *err)
{
        _cleanup_(app_spec_freep) AppSpec *a = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonErrors errs = { 0 };
        PacerError e = { "" };
        const char *stored;
        int r;

        if (version && !app_spec_version_valid(version))
                return pacer_error_set(err, EINVAL, "'%.*s' is not a version", APP_VERSION_MAX, version);
        if (len > APP_JSON_MAX)
                return pacer_error_set(err, EBADMSG, "app record is %zu bytes, more than %u", len,
                                       APP_JSON_MAX);
        r = json_parse(data, len, NULL, &j, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return pacer_error_set(err, EBADMSG, "%s", e.msg);
        r = parse_spec(j, NULL, &a, &errs);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                json_errors_to_error(&errs, &e);
                return pacer_error_set(err, EBADMSG, "%s", e.msg);
        }
        stored = json_string_value(json_object_get(j, "version"));
        if (!version) /* a broken one is dropped, as app_spec_set_version() refuses it */
                version = stored && app_spec_version_valid(stored) ? stored : "";
        if (*version && stored && streq(stored, version)) {
                /* the record is the rendering app_spec_set_version() made: keep its text */
                strcpy(a->version, version);
                a->json = malloc(len + 1);
                if (!a->json)
                        return -ENOMEM;
                memcpy(a->json, data, len);
                a->json[len] = 0;
                a->json_len = len;
        } else {
                strcpy(a->version, version);
                r = render(a);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

static bool present(const json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);

        return v && !json_is_null(v);
}

/* The id a patch gives must name the base app (relative ids: to its group). */
static void check_patch_id(const AppSpec *base, const json_t *patch, const JsonPath *at, JsonErrors *errs)
{
        char parent[APP_ID_MAX + 1], *id = NULL;
        PacerError err = {};
        const char *s;

        if (json_get_string(patch, at, "id", 0, 0, &s, errs) <= 0)
                return;
        parent_of(base->id, parent);
        if (app_id_normalize(s, parent, &id, &err) < 0)
                json_errors_add(errs, at, "id", "%s", err.msg);
        else if (!streq(id, base->id))
                json_errors_add(errs, at, "id", "is %s, but the app being updated is %s: ids cannot change",
                                id, base->id);
        free(id);
}

int app_spec_merge(const AppSpec *base, const json_t *patch, const JsonPath *at, AppSpec **ret,
                   JsonErrors *errs)
{
        json_auto_t *m = NULL;
        size_t before = json_errors_count(errs);
        AppSpec *a = NULL;
        const char *key;
        bool id_ok;
        json_t *v;
        int r;

        if (!json_is_object(patch)) {
                json_errors_add(errs, at, NULL, "expected an app definition (object), got %s",
                                json_type_name(patch));
                return -EINVAL;
        }
        check_patch_id(base, patch, at, errs);
        id_ok = json_errors_count(errs) == before;
        m = app_spec_to_json(base);
        if (!m)
                return -ENOMEM;
        json_object_del(m, "version");
        if (present(patch, "cmd") && !present(patch, "args"))
                json_object_del(m, "args");
        if (present(patch, "args") && !present(patch, "cmd"))
                json_object_del(m, "cmd");
        if (json_object_get(patch, "ports") || json_object_get(patch, "portDefinitions"))
                json_object_del(m, "portDefinitions");
        json_object_foreach((json_t *)patch, key, v)
        {
                if (streq(key, "id"))
                        continue;
                if (json_object_set(m, key, v) < 0)
                        return -ENOMEM;
        }
        /* validated even when the id is wrong, to report every error at once */
        r = app_spec_from_json(m, at, &a, errs);
        if (r < 0)
                return r;
        if (!id_ok) {
                app_spec_free(a);
                return -EINVAL;
        }
        *ret = a;
        return 0;
}

bool app_spec_version_valid(const char *version)
{
        size_t n = strlen(version);

        if (n > APP_VERSION_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (version[i] < 0x21 || version[i] > 0x7e || version[i] == '"' || version[i] == '\\')
                        return false;
        return true;
}

int app_spec_set_version(AppSpec *a, const char *version)
{
        char saved[sizeof(a->version)];
        size_t n = strlen(version);
        int r;

        if (!app_spec_version_valid(version))
                return -EINVAL;
        memcpy(saved, a->version, sizeof(saved));
        memcpy(a->version, version, n + 1);
        r = render(a);
        if (r < 0)
                memcpy(a->version, saved, sizeof(saved));
        return r;
}
