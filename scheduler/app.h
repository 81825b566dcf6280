/* SPDX-License-Identifier: Apache-2.0 */
/* A Marathon app definition: parsed from the REST API's JSON, validated
 * completely (every error with its JSON path, as Marathon's 422 does), with
 * Marathon's defaults filled in, and kept both as a struct for the scheduler
 * and as canonical compact JSON for responses and the store. Field by field
 * rules, defaults and where Pacer differs from Marathon: docs/apps.md.
 *
 * Choices where Marathon is loose or varies between releases:
 * - Unknown fields are errors ("unknown field"), not ignored; Marathon fields
 *   Pacer does not implement (container, secrets, fetch, ...) are errors
 *   saying why, unless they hold their empty value (null, [], {}, 0) as
 *   Marathon's own responses do, so a GET body can be PUT back. Read-only
 *   fields of responses (version, tasksRunning, deployments, ...) are ignored.
 * - Ids: empty segments ("//") are errors, Marathon collapses them; one
 *   trailing "/" is dropped as Marathon does.
 * - Doubles are kept rounded to 15 significant digits and printed with
 *   JSON_REAL_PRECISION(15), so 0.1 is "0.1" and the struct equals what the
 *   canonical JSON says; integral values print as integers ("mem":128).
 * - Health checks of every protocol run on the agent in pacer-executor: HTTP
 *   behaves as MESOS_HTTP, HTTPS as MESOS_HTTPS, TCP as MESOS_TCP. */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constraint.h"
#include "error.h"
#include "json.h"

/* Longest app id, and the cap on one serialized app (one store row). */
#define APP_ID_MAX           256
#define APP_JSON_MAX         (64u * 1024)
#define APP_INSTANCES_MAX    100000u
#define APP_PORTS_MAX        64
#define APP_CHECKS_MAX       8
#define APP_LABELS_MAX       256
#define APP_ENV_MAX          512
#define APP_CONSTRAINTS_MAX  32
#define APP_DEPENDENCIES_MAX 64
#define APP_ARGS_MAX         256
/* Labels of one port definition. */
#define APP_PORT_LABELS_MAX 32
/* Bytes: label keys and values, env names, user, executor, port names, check paths. */
#define APP_LABEL_KEY_MAX   256
#define APP_LABEL_VALUE_MAX 4096
#define APP_ENV_NAME_MAX    254 /* Marathon: shorter than 255 */
#define APP_USER_MAX        256
#define APP_EXECUTOR_MAX    1024
#define APP_PORT_NAME_MAX   63 /* a DNS label */
#define APP_CHECK_PATH_MAX  1024
/* Upper bounds that keep numbers finite and sums meaningful: cpus, mem and
 * disk (MB); backoffSeconds, maxLaunchDelaySeconds and
 * taskKillGracePeriodSeconds (one year); health check durations (one day);
 * backoffFactor; maxConsecutiveFailures. */
#define APP_RESOURCE_MAX       1e9
#define APP_SECONDS_MAX        31536000
#define APP_CHECK_SECONDS_MAX  86400
#define APP_BACKOFF_FACTOR_MAX 100.0
#define APP_CHECK_FAILURES_MAX 1000
/* Room for `,"version":"..."` added when the version is stamped. */
#define APP_VERSION_MAX 31

typedef struct KeyValue {
        char *key;
        char *value;
} KeyValue;

typedef enum PortProtocol {
        PORT_PROTOCOL_TCP,
        PORT_PROTOCOL_UDP,
        PORT_PROTOCOL_UDP_TCP, /* "udp,tcp" */
        _PORT_PROTOCOL_MAX,
        _PORT_PROTOCOL_INVALID = -EINVAL,
} PortProtocol;

typedef struct PortDefinition {
        uint32_t port; /* 0 = any free host port (Marathon's "port": 0) */
        PortProtocol protocol;
        char *name; /* NULL when not given */
        KeyValue *labels;
        size_t n_labels;
} PortDefinition;

/* What the executor runs. Marathon's MESOS_ variants map onto the same kinds. */
typedef enum CheckProtocol {
        CHECK_PROTOCOL_HTTP,
        CHECK_PROTOCOL_HTTPS,
        CHECK_PROTOCOL_TCP,
        CHECK_PROTOCOL_COMMAND,
        _CHECK_PROTOCOL_MAX,
        _CHECK_PROTOCOL_INVALID = -EINVAL,
} CheckProtocol;

typedef struct AppHealthCheck {
        CheckProtocol protocol;
        bool mesos_name;    /* given as MESOS_HTTP / MESOS_HTTPS / MESOS_TCP: echoed back that way */
        bool ipv6;          /* ipProtocol "IPv6" */
        char *path;         /* HTTP(S): starts with '/', default "/"; NULL otherwise */
        char *command;      /* COMMAND: command.value; NULL otherwise */
        int32_t port_index; /* -1 when port is given, and for COMMAND */
        uint32_t port;      /* 0 when port_index is used */
        uint32_t grace_period_seconds;     /* Marathon default 300 */
        uint32_t interval_seconds;         /* 60 */
        uint32_t timeout_seconds;          /* 20, always < interval_seconds */
        uint32_t max_consecutive_failures; /* 3; Marathon: 0 = never kill (its own checks only) */
        uint32_t delay_seconds;            /* 15 */
} AppHealthCheck;

typedef enum KillSelection {
        KILL_SELECTION_YOUNGEST_FIRST,
        KILL_SELECTION_OLDEST_FIRST,
        _KILL_SELECTION_MAX,
        _KILL_SELECTION_INVALID = -EINVAL,
} KillSelection;

typedef struct AppSpec {
        char *id;    /* absolute, normalised: "/prod/web" */
        char *cmd;   /* NULL when args are used */
        char **args; /* NULL-terminated, NULL when cmd is used */
        size_t n_args;
        char *user;             /* NULL when not given */
        double cpus, mem, disk; /* Marathon defaults 1, 128, 0 */
        uint32_t instances;     /* default 1 */
        KeyValue *env;
        size_t n_env;
        KeyValue *labels;
        size_t n_labels;
        Constraint *constraints;
        size_t n_constraints;
        PortDefinition *ports; /* default: one, port 0 */
        size_t n_ports;
        bool require_ports;
        AppHealthCheck *checks;
        size_t n_checks;
        double minimum_health_capacity;  /* upgradeStrategy, default 1.0 */
        double maximum_over_capacity;    /* default 1.0 */
        double backoff_seconds;          /* default 1 */
        double backoff_factor;           /* default 1.15 */
        double max_launch_delay_seconds; /* default 3600 (Marathon up to 1.7; 1.8+ has 300) */
        KillSelection kill_selection;    /* default YOUNGEST_FIRST */
        int64_t task_kill_grace_seconds; /* -1 = not set */
        char **dependencies;             /* normalised absolute ids */
        size_t n_dependencies;
        char *executor; /* "" = pacer-executor (the scheduler's default); a path is passed on */
        char version[APP_VERSION_MAX + 1]; /* ISO-8601 UTC with ms; "" until stamped */
        char *json; /* canonical compact JSON of this spec (all fields, defaults filled) */
        size_t json_len;
} AppSpec;

/* Normalises an app id ("web" relative to base "/prod" → "/prod/web"): path
 * segments match Marathon's rule, DNS-like labels of [a-z0-9-] joined by '.';
 * "." and ".." are resolved, and rejected when they go above the root; base
 * is an absolute normalised id, NULL or "" for the root. Returns 0 and a
 * malloc'ed id, or -EINVAL with err saying why (upper case, a space, an empty
 * segment, ...), or -ENOMEM. */
int app_id_normalize(const char *id, const char *base, char **ret, PacerError *err);

/* Parses and validates an app definition. Every error is recorded in errs
 * with its JSON path (at is the path of j in the request, NULL at the root),
 * after any errors errs already holds. Nothing is built on error: -EINVAL
 * (errors recorded) or -ENOMEM, *ret untouched. On success *ret has defaults
 * filled, json/json_len set, and version empty (the caller stamps it with
 * app_spec_set_version()). */
int app_spec_from_json(const json_t *j, const JsonPath *at, AppSpec **ret, JsonErrors *errs);
/* Applies a partial update (PATCH semantics): the fields present in patch
 * replace those of base (null resets a field to its default), then the whole
 * result is validated as app_spec_from_json() does. Giving cmd drops base's
 * args and the other way round; giving ports or portDefinitions replaces
 * both. An id in patch must name the same app. version is not carried over. */
int app_spec_merge(const AppSpec *base, const json_t *patch, const JsonPath *at, AppSpec **ret,
                   JsonErrors *errs);
/* Stamps the version and re-renders json. -EINVAL when version is longer
 * than APP_VERSION_MAX or holds anything but printable ASCII; -ENOMEM. */
int app_spec_set_version(AppSpec *a, const char *version);
/* What app_spec_set_version() accepts. */
bool app_spec_version_valid(const char *version);
/* Rebuilds a spec from its store record (the json of a stamped spec): parsed
 * and validated as app_spec_from_json() does, stamped with version (NULL: the
 * record's own "version"). When the record already carries that version its
 * text is kept as json, not rendered again: it is that rendering, and
 * rendering is most of what recovery would cost. Any other record (no
 * version, another one) is rendered as app_spec_set_version() would. Returns
 * -EBADMSG with err saying what is wrong and where (the first invalid field's
 * JSON path), or -ENOMEM. */
int app_spec_from_stored(const void *data, size_t len, const char *version, AppSpec **ret, PacerError *err);
/* The canonical JSON as a jansson object (new reference; NULL on ENOMEM).
 * Write a->json rather than dumping this object with other flags: jansson's
 * default real precision prints 0.1 as 0.10000000000000001. */
json_t *app_spec_to_json(const AppSpec *a);
AppSpec *app_spec_free(AppSpec *a);

const char *app_check_protocol_to_string(CheckProtocol p);
/* "HTTP"/"MESOS_HTTP" → CHECK_PROTOCOL_HTTP, ...; *ret_mesos (may be NULL) tells which. */
CheckProtocol app_check_protocol_from_string(const char *s, bool *ret_mesos);
const char *app_kill_selection_to_string(KillSelection k);
KillSelection app_kill_selection_from_string(const char *s);
const char *app_port_protocol_to_string(PortProtocol p);
PortProtocol app_port_protocol_from_string(const char *s);
