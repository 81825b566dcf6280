/* SPDX-License-Identifier: Apache-2.0 */
/* Keeps the task's Consul entries in step with what the executor knows, in
 * the order that makes the product: register and verify before the task is
 * reported healthy, mark the TTL check critical before it is reported
 * unhealthy, deregister and confirm before it is stopped. Everything runs on
 * the loop; every Consul call has a deadline; a failed registration is
 * reported (state + last error) and retried with backoff, never ignored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consul.h"
#include "error.h"
#include "mesos.h"
#include "status_record.h"

struct ev_loop;

#define REGISTRAR_SERVICES_MAX 8
#define REGISTRAR_TAGS_MAX     32
/* Cap on a label value that names a service or a tag; longer is an error, not a cut. */
#define REGISTRAR_LABEL_MAX 255

typedef struct RegistrarService {
        char id[CONSUL_ID_MAX + 1];
        char name[CONSUL_ID_MAX + 1];
        char check_id[CONSUL_ID_MAX + 1];
        int port;
        char *tags[REGISTRAR_TAGS_MAX];
        size_t n_tags;
} RegistrarService;

/* Where the names, tags and ports come from (docs/consul.md). */
typedef struct RegistrarNaming {
        const char *global_tag; /* added to every service; NULL/"" = none */
        const char *address;    /* the service address; NULL/"" = the Consul node's */
} RegistrarNaming;

typedef struct RegistrarConfig {
        ConsulClient *consul; /* NULL: registration disabled */
        const char *task_id;
        const char *framework_id;
        const char *executor_id;
        const char *app_id; /* MARATHON_APP_ID when known, for Meta */
        const char *address;
        const RegistrarService *services;
        size_t n_services;
        int64_t ttl_ns;              /* of the TTL check the executor feeds */
        int64_t deregister_after_ns; /* DeregisterCriticalServiceAfter */
        int64_t retry_initial_ns;    /* registration retry backoff */
        int64_t retry_max_ns;
} RegistrarConfig;

typedef struct RegistrarCallbacks {
        /* state() or last_error() changed */
        void (*changed)(void *userdata);
        /* a registrar_set_health() push finished (result < 0: Consul did not take it) */
        void (*health_pushed)(bool passing, int result, void *userdata);
        /* registrar_deregister() finished: 0 confirmed gone, or the error at the deadline */
        void (*deregistered)(int result, void *userdata);
} RegistrarCallbacks;

typedef struct Registrar Registrar;

/* Derives the services of a task from its labels and ports: the `consul`
 * label names the service (else the app or task name), labels whose value is
 * `tag` become tags, ports whose DiscoveryInfo labels carry `consul` get a
 * service each (else the first port). ports[] are the task's host ports in
 * port-definition order. Errors name the label. */
int registrar_plan_services(const TaskInfo *task, const char *app_id, const uint32_t *ports, size_t n_ports,
                            const RegistrarNaming *naming, RegistrarService *ret, size_t *ret_n,
                            PacerError *err);
void registrar_services_done(RegistrarService *s, size_t n);

int registrar_new(struct ev_loop *loop, const RegistrarConfig *cfg, const RegistrarCallbacks *cb,
                  void *userdata, Registrar **ret);
Registrar *registrar_free(Registrar *r);

bool registrar_enabled(const Registrar *r);
/* Removes entries of this task left by an earlier executor (same task id). */
void registrar_cleanup_stale(Registrar *r);
/* Registers and verifies (retrying until it works or deregister is called). */
void registrar_register(Registrar *r);
/* Feeds the TTL check. 0: a push started, health_pushed follows; -ENOTCONN:
 * nothing registered, no callback. */
int registrar_set_health(Registrar *r, bool passing, const char *output);
/* Leaves Consul; deregistered fires once, by the deadline at the latest. */
void registrar_deregister(Registrar *r, int64_t deadline_ns);

RegistrationState registrar_state(const Registrar *r);
const char *registrar_last_error(const Registrar *r);
const char *registrar_service_id(const Registrar *r);
uint64_t registrar_registered_at_ms(const Registrar *r);
