/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler's in-memory state: apps (current spec and version history),
 * their instances, and the agents they run on. The authoritative copy is the
 * store; every change here is followed by the matching store write in the
 * same loop turn. Memory per instance is a few hundred bytes: agents and
 * specs are shared, not copied. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "error.h"
#include "hashmap.h"
#include "mesos.h"
#include "status_record.h"

#define STATE_VERSIONS_KEPT 10 /* app versions kept in memory for rollback */
#define INSTANCE_PORTS_MAX  APP_PORTS_MAX
#define AGENT_ATTRS_MAX     32

typedef struct Agent {
        char *id;
        char *hostname;
        /* "name", "formatted value" pairs as placement formats them */
        char *attr_names[AGENT_ATTRS_MAX];
        char *attr_values[AGENT_ATTRS_MAX];
        size_t n_attrs;
        uint32_t refs; /* instances on it */
} Agent;

/* One version of an app's definition, shared by the instances running it.
 * A version recovered from the store into an app's history only is kept as
 * its stored JSON and parsed when something first needs it
 * (state_app_version()): most are never needed. Whatever holds a version for
 * its content (an app as current, an instance, a deployment step) holds a
 * parsed one; spec is NULL only in an app's history. */
typedef struct AppVersion {
        AppSpec *spec;       /* NULL until parsed */
        const char *version; /* its name: spec->version, or the stored copy's */
        char *stored;        /* while unparsed: the name, NUL, the JSON, NUL */
        size_t stored_len;   /* of the JSON */
        uint32_t refs;       /* instances + the app's history */
} AppVersion;

struct App;

typedef struct Instance {
        char *task_id;
        struct App *app;
        AppVersion *version;
        Agent *agent; /* NULL until placed */
        uint32_t *ports;
        uint8_t n_ports;
        TaskState state;
        Health health; /* from the executor's status record */
        RegistrationState registration;
        uint16_t consecutive_failures;
        bool kill_sent;
        bool reconciled;   /* the master confirmed it since we (re)subscribed */
        double staged_at;  /* Unix seconds */
        double started_at; /* first TASK_RUNNING; 0 until then */
        double kill_sent_at;
        double unreachable_since;     /* TASK_UNREACHABLE since (Unix seconds; not stored); 0 = reachable */
        char *last_message;           /* last status message worth showing (failures), or NULL */
        struct Instance *prev, *next; /* in app->instances */
} Instance;

typedef struct App {
        char *id;
        AppVersion *current;                      /* the target spec */
        AppVersion *history[STATE_VERSIONS_KEPT]; /* older versions, newest first */
        size_t n_history;
        Instance *instances;
        uint32_t n_instances;
        /* launch backoff (backoffSeconds × backoffFactor^n, capped) */
        double backoff_s;
        double next_launch_at;
        /* crash-loop accounting: failures of the current version */
        double failure_times[16];
        size_t n_failures;
        char *last_failure;
        double last_failure_at;
        bool crash_loop;
        bool deleting;
        struct Deployment *deployment; /* the running deployment holding this app, or NULL */
} App;

typedef struct State {
        Hashmap apps;      /* id → App */
        Hashmap instances; /* task id → Instance */
        Hashmap agents;    /* agent id → Agent */
        char *framework_id;
} State;

void state_init(State *s);
void state_done(State *s);

App *state_app(const State *s, const char *id);
Instance *state_instance(const State *s, const char *task_id);

/* Creates an app from a validated spec (which it takes over). */
int state_app_add(State *s, AppSpec *spec, App **ret);
/* Makes spec the app's current version, the old one going to the history. */
int state_app_set_spec(State *s, App *app, AppSpec *spec);
/* The previous version, or NULL; possibly unparsed (see state_app_version()). */
AppVersion *state_app_previous(const App *app);
/* Adds a version (the reference is taken over) to the history, which stays
 * sorted newest first by name (ISO times sort as text) and holds at most
 * STATE_VERSIONS_KEPT: beyond that the oldest is dropped, possibly v itself. */
void state_app_add_history(App *app, AppVersion *v);
/* The app's version of that name, current or from the history, parsed: a
 * stored one is parsed here on first use. -ENOENT when the app has none of
 * that name; -EBADMSG with err saying why when its JSON does not parse or
 * names another app: it is then dropped from the history, so it is reported
 * once and is unknown from then on, as if never stored; -ENOMEM. */
int state_app_version(App *app, const char *version, AppVersion **ret, PacerError *err);
/* Removes an app that has no instances left. */
void state_app_remove(State *s, App *app);

AppVersion *app_version_new(AppSpec *spec);
/* An unparsed version: its name (valid for app_spec_set_version()) and a copy of its stored JSON. */
AppVersion *app_version_new_stored(const char *version, const void *json, size_t len);
AppVersion *app_version_ref(AppVersion *v);
AppVersion *app_version_unref(AppVersion *v);

Agent *state_agent_get(State *s, const char *id, const char *hostname,
                       const Mesos__V1__Attribute *const *attrs, size_t n_attrs);

/* A new instance of app running version, STAGING, with a fresh task id. */
int state_instance_new(State *s, App *app, AppVersion *version, Instance **ret);
/* The same with a known task id (an instance recovered from the store): -EEXIST when it is taken. */
int state_instance_add(State *s, App *app, AppVersion *version, const char *task_id, Instance **ret);
void state_instance_set_agent(State *s, Instance *i, Agent *a);
void state_instance_remove(State *s, Instance *i);

/* An instance counts as ready for deployments: running, and healthy when the
 * app has readiness checks, and registered when registration is on. */
bool instance_ready(const Instance *i);
bool instance_active(const Instance *i); /* not terminal, not being killed */

/* Task ids: "<app id with '/' → '_'>.<uuid>", as Marathon makes them. */
int state_task_id(const char *app_id, char *buf, size_t size);
/* The app id a task id was made from ("prod_web.<uuid>" → "/prod/web"). */
int state_app_id_of_task(const char *task_id, char *buf, size_t size);

/* Instance records for the store (msgpack). */
int instance_encode(const Instance *i, Buf *out);
typedef struct InstanceRecord {
        char task_id[256];
        char app_id[APP_ID_MAX + 1];
        char version[32];
        char agent_id[256];
        char hostname[256];
        uint32_t ports[INSTANCE_PORTS_MAX];
        size_t n_ports;
        int state;
        int health;
        int registration;
        double staged_at, started_at;
        bool kill_sent;
} InstanceRecord;
int instance_decode(const void *data, size_t len, InstanceRecord *ret, PacerError *err);
