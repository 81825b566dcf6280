/* SPDX-License-Identifier: Apache-2.0 */
#include "registrar.h"

#include <ctype.h>
#include <ev.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "duration.h"
#include "log.h"

#define TTL_DEFAULT_NS           (10 * NSEC_PER_SEC)
#define DEREGISTER_AFTER_DEFAULT (60 * NSEC_PER_SEC)
#define RETRY_INITIAL_DEFAULT    (1 * NSEC_PER_SEC)
#define RETRY_MAX_DEFAULT        (30 * NSEC_PER_SEC)
#define ERROR_MAX                STATUS_RECORD_ERROR_MAX
#define META_TASK_ID             "pacer_task_id"

typedef enum Step {
        STEP_IDLE,
        STEP_CLEANUP_LIST,
        STEP_CLEANUP_DEREGISTER,
        STEP_REGISTER,
        STEP_VERIFY,
        STEP_UNDO, /* a registration failed half-way: remove what it registered, then retry */
        STEP_HEALTH,
        STEP_DEREGISTER,
        STEP_CONFIRM,
} Step;

struct Registrar {
        struct ev_loop *loop;
        RegistrarCallbacks cb;
        void *userdata;
        ConsulClient *consul;
        char *task_id, *framework_id, *executor_id, *app_id, *address;
        RegistrarService services[REGISTRAR_SERVICES_MAX];
        size_t n_services;
        int64_t ttl_ns, deregister_after_ns, retry_initial_ns, retry_max_ns;

        RegistrationState state;
        char last_error[ERROR_MAX + 1];
        uint64_t registered_at_ms;
        bool attempted; /* a register call went out: Consul may hold an entry */
        bool cleanup_done;

        Step step;
        size_t index;  /* service (or stale id) the current step works on */
        size_t n_undo; /* STEP_UNDO: services [0, n_undo) to remove */
        char undo_why[ERROR_MAX + 1];
        ConsulOp *op;
        char **stale; /* ids found by the cleanup listing */
        size_t n_stale;

        int64_t retry_ns;
        ev_timer retry_timer;
        ev_timer ttl_timer;      /* re-asserts the last health well within the TTL */
        ev_timer deadline_timer; /* bounds deregistration */

        bool health_known, health_passing;
        char health_output[256];
        bool push_pending; /* a newer health value waits for the current push */
        bool pushing_passing;
};

static void run_step(Registrar *r);

static double ns_to_ev(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void set_state(Registrar *r, RegistrationState s, const char *error)
{
        bool changed = r->state != s;

        if (error && !streq(error, r->last_error)) {
                snprintf(r->last_error, sizeof(r->last_error), "%s", error);
                changed = true;
        }
        r->state = s;
        if (changed && r->cb.changed)
                r->cb.changed(r->userdata);
}

/* ---- naming ---- */

/* Consul service names double as DNS labels: [a-z0-9-], no leading/trailing '-'. */
static void dns_name(const char *in, char *out, size_t size)
{
        size_t n = 0;
        bool dash = false;

        for (; *in && n + 1 < size; in++) {
                unsigned char c = (unsigned char)tolower((unsigned char)*in);
                if (isalnum(c)) {
                        if (dash && n > 0)
                                out[n++] = '-';
                        dash = false;
                        if (n + 1 < size)
                                out[n++] = (char)c;
                } else
                        dash = true;
        }
        out[n] = 0;
}

static int check_label_value(const char *key, const char *value, PacerError *err)
{
        size_t l = strlen(value);
        if (l > REGISTRAR_LABEL_MAX)
                return pacer_error_set(err, EINVAL, "label %.64s: value is %zu bytes, more than %d", key, l,
                                       REGISTRAR_LABEL_MAX);
        for (const char *p = value; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return pacer_error_set(err, EINVAL,
                                               "label %.64s: value contains a control character", key);
        return 0;
}

static int add_tag(RegistrarService *s, const char *tag, PacerError *err)
{
        for (size_t i = 0; i < s->n_tags; i++)
                if (streq(s->tags[i], tag))
                        return 0;
        if (s->n_tags >= REGISTRAR_TAGS_MAX)
                return pacer_error_set(err, E2BIG, "more than %d Consul tags", REGISTRAR_TAGS_MAX);
        if (!(s->tags[s->n_tags] = strdup(tag)))
                return -ENOMEM;
        s->n_tags++;
        return 0;
}

/* Tags from labels whose value is "tag". */
static int add_label_tags(RegistrarService *s, const Labels *labels, PacerError *err)
{
        for (size_t i = 0; labels && i < labels->n_labels; i++) {
                const Label *l = labels->labels[i];
                int r;
                if (!l->key || !l->value || !streq(l->value, "tag"))
                        continue;
                if ((r = check_label_value(l->key, l->key, err)) < 0 || (r = add_tag(s, l->key, err)) < 0)
                        return r;
        }
        return 0;
}

static int fill_service(RegistrarService *s, const char *task_id, const char *name, int port,
                        PacerError *err)
{
        int n;

        snprintf(s->name, sizeof(s->name), "%s", name);
        s->port = port;
        n = snprintf(s->id, sizeof(s->id), "%s_%s_%d", task_id, name, port);
        if (n < 0 || (size_t)n >= sizeof(s->id))
                return pacer_error_set(err, ENAMETOOLONG,
                                       "Consul service id for task %.64s is longer than %d bytes", task_id,
                                       CONSUL_ID_MAX);
        n = snprintf(s->check_id, sizeof(s->check_id), "%s:ttl", s->id);
        if (n < 0 || (size_t)n >= sizeof(s->check_id))
                return pacer_error_set(err, ENAMETOOLONG, "Consul check id for task %.64s is too long",
                                       task_id);
        return 0;
}

int registrar_plan_services(const TaskInfo *task, const char *app_id, const uint32_t *ports, size_t n_ports,
                            const RegistrarNaming *naming, RegistrarService *ret, size_t *ret_n,
                            PacerError *err)
{
        char base[CONSUL_ID_MAX + 1] = "";
        const char *label = mesos_label(task->labels, "consul");
        const Mesos__V1__Ports *dports = task->discovery ? task->discovery->ports : NULL;
        size_t n = 0;
        int r;

        if (!task->task_id || !task->task_id->value)
                return pacer_error_set(err, EINVAL, "task without an id");
        for (size_t i = 0; task->labels && i < task->labels->n_labels; i++) {
                const Label *l = task->labels->labels[i];
                if (l->key && l->value && (streq(l->key, "consul") || streq(l->value, "tag")) &&
                    (r = check_label_value(l->key, l->value, err)) < 0)
                        return r;
        }
        if (label && *label)
                dns_name(label, base, sizeof(base));
        else if (app_id && *app_id)
                dns_name(app_id, base, sizeof(base));
        else if (task->name)
                dns_name(task->name, base, sizeof(base));
        if (!*base)
                dns_name(task->task_id->value, base, sizeof(base));
        if (!*base)
                return pacer_error_set(err, EINVAL,
                                       "cannot derive a Consul service name: set the `consul` label");

        /* per-port services: ports whose discovery labels carry `consul` */
        for (size_t i = 0; dports && i < dports->n_ports && i < n_ports; i++) {
                const char *pl = mesos_label(dports->ports[i]->labels, "consul");
                char name[CONSUL_ID_MAX + 1];
                if (!pl)
                        continue;
                if ((r = check_label_value("consul", pl, err)) < 0)
                        return r;
                if (n >= REGISTRAR_SERVICES_MAX)
                        return pacer_error_set(err, E2BIG, "more than %d ports carry a `consul` label",
                                               REGISTRAR_SERVICES_MAX);
                if (*pl)
                        dns_name(pl, name, sizeof(name));
                else
                        snprintf(name, sizeof(name), "%s", base);
                memset(&ret[n], 0, sizeof(ret[n]));
                if ((r = fill_service(&ret[n], task->task_id->value, name, (int)ports[i], err)) < 0 ||
                    (r = add_label_tags(&ret[n], dports->ports[i]->labels, err)) < 0) {
                        registrar_services_done(ret, n + 1);
                        return r;
                }
                n++;
        }
        if (n == 0) {
                memset(&ret[0], 0, sizeof(ret[0]));
                if ((r = fill_service(&ret[0], task->task_id->value, base, n_ports > 0 ? (int)ports[0] : 0,
                                      err)) < 0)
                        return r;
                n = 1;
        }
        for (size_t i = 0; i < n; i++)
                if ((r = add_label_tags(&ret[i], task->labels, err)) < 0 ||
                    (naming && naming->global_tag && *naming->global_tag &&
                     (r = add_tag(&ret[i], naming->global_tag, err)) < 0)) {
                        registrar_services_done(ret, n);
                        return r;
                }
        *ret_n = n;
        return 0;
}

void registrar_services_done(RegistrarService *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < s[i].n_tags; j++)
                        free(s[i].tags[j]);
                s[i].n_tags = 0;
        }
}

/* ---- the operation chain ---- */

static void free_stale(Registrar *r)
{
        for (size_t i = 0; i < r->n_stale; i++)
                free(r->stale[i]);
        free(r->stale);
        r->stale = NULL;
        r->n_stale = 0;
}

static void schedule_retry(Registrar *r, const char *why)
{
        uint32_t rnd = 0;

        set_state(r, REGISTRATION_FAILED, why);
        r->retry_ns = r->retry_ns ? MIN(r->retry_ns * 2, r->retry_max_ns) : r->retry_initial_ns;
        (void)getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
        int64_t delay =
                r->retry_ns / 2 + (int64_t)((double)(r->retry_ns / 2) * ((double)rnd / (double)UINT32_MAX));
        ev_timer_set(&r->retry_timer, ns_to_ev(delay), 0.);
        ev_timer_start(r->loop, &r->retry_timer);
}

static void on_op_done(int result, const char *message, void *userdata);

static void on_list_done(int result, const char *message, char **ids, size_t n, void *userdata)
{
        Registrar *r = userdata;

        r->op = NULL;
        if (result == -ECANCELED)
                return;
        if (result < 0) {
                log_warn_s(r->task_id, "looking for stale Consul entries failed: %s", message);
                /* not fatal by itself: the registration step reports Consul trouble */
                r->cleanup_done = true;
                r->step = STEP_REGISTER;
                r->index = 0;
                run_step(r);
                return;
        }
        free_stale(r);
        r->stale = calloc(n ? n : 1, sizeof(char *));
        for (size_t i = 0; r->stale && i < n; i++)
                if ((r->stale[r->n_stale] = strdup(ids[i])))
                        r->n_stale++;
        r->step = STEP_CLEANUP_DEREGISTER;
        r->index = 0;
        run_step(r);
}

static void start_op(Registrar *r, int rc, const PacerError *err)
{
        if (rc >= 0)
                return;
        /* the call could not even start: a definition Consul would refuse, or no memory */
        char why[ERROR_MAX + 1];
        snprintf(why, sizeof(why), "%.*s", ERROR_MAX, err && *err->msg ? err->msg : strerror(-rc));
        log_error_s(r->task_id, "Consul call failed to start: %s", why);
        on_op_done(rc, why, r);
}

static void run_step(Registrar *r)
{
        PacerError err = { "" };
        const RegistrarService *s;
        int rc;

        switch (r->step) {
        case STEP_CLEANUP_LIST:
                rc = consul_list_services_by_meta(r->consul, META_TASK_ID, r->task_id, on_list_done, r,
                                                  &r->op, &err);
                if (rc < 0) {
                        r->cleanup_done = true;
                        r->step = STEP_REGISTER;
                        r->index = 0;
                        run_step(r);
                }
                return;
        case STEP_CLEANUP_DEREGISTER:
                if (r->index >= r->n_stale) {
                        if (r->n_stale)
                                log_info_s(r->task_id, "removed %zu stale Consul entries of this task",
                                           r->n_stale);
                        free_stale(r);
                        r->cleanup_done = true;
                        r->step = r->state == REGISTRATION_REGISTERING ? STEP_REGISTER : STEP_IDLE;
                        r->index = 0;
                        if (r->step != STEP_IDLE)
                                run_step(r);
                        return;
                }
                rc = consul_deregister(r->consul, r->stale[r->index], on_op_done, r, &r->op, &err);
                start_op(r, rc, &err);
                return;
        case STEP_REGISTER: {
                if (r->index >= r->n_services) {
                        r->step = STEP_VERIFY;
                        r->index = 0;
                        run_step(r);
                        return;
                }
                s = &r->services[r->index];
                const char *meta_keys[4] = { META_TASK_ID, "pacer_framework_id", "pacer_executor_id",
                                             "marathon_app_id" };
                const char *meta_values[4] = { r->task_id, r->framework_id, r->executor_id, r->app_id };
                ConsulServiceDef def = {
                        .id = s->id,
                        .name = s->name,
                        .address = r->address,
                        .port = s->port,
                        .tags = (const char *const *)s->tags,
                        .n_tags = s->n_tags,
                        .meta_keys = meta_keys,
                        .meta_values = meta_values,
                        .n_meta = r->app_id && *r->app_id ? 4 : 3,
                        .check_id = s->check_id,
                        .check_name = "pacer-executor health",
                        .ttl_ns = r->ttl_ns,
                        .deregister_critical_after_ns = r->deregister_after_ns,
                        /* first registered once the task passed its checks; registered again (the
                         * agent lost the entry) with what the probes last said */
                        .initial_status = r->health_known && !r->health_passing ? "critical" : "passing",
                        .check_notes = "fed by pacer-executor's own health probes",
                };
                r->attempted = true;
                rc = consul_register(r->consul, &def, on_op_done, r, &r->op, &err);
                start_op(r, rc, &err);
                return;
        }
        case STEP_VERIFY:
                if (r->index >= r->n_services) {
                        r->step = STEP_IDLE;
                        r->retry_ns = 0;
                        r->registered_at_ms = now_ms();
                        r->health_known = true;
                        r->health_passing = true;
                        r->last_error[0] = 0;
                        ev_timer_again(r->loop, &r->ttl_timer);
                        log_info_s(r->task_id, "registered in Consul as %s (%zu service%s), verified",
                                   r->services[0].id, r->n_services, r->n_services == 1 ? "" : "s");
                        set_state(r, REGISTRATION_REGISTERED, NULL);
                        return;
                }
                rc = consul_verify(r->consul, r->services[r->index].id, on_op_done, r, &r->op, &err);
                start_op(r, rc, &err);
                return;
        case STEP_UNDO:
                if (r->index >= r->n_undo) {
                        r->step = STEP_IDLE;
                        schedule_retry(r, r->undo_why);
                        return;
                }
                rc = consul_deregister(r->consul, r->services[r->index].id, on_op_done, r, &r->op, &err);
                start_op(r, rc, &err);
                return;
        case STEP_HEALTH: {
                if (r->index >= r->n_services) {
                        bool passing = r->pushing_passing;
                        r->step = STEP_IDLE;
                        if (r->cb.health_pushed)
                                r->cb.health_pushed(passing, 0, r->userdata);
                        if (r->push_pending && r->step == STEP_IDLE && r->state == REGISTRATION_REGISTERED) {
                                r->push_pending = false;
                                r->pushing_passing = r->health_passing;
                                r->step = STEP_HEALTH;
                                r->index = 0;
                                run_step(r);
                        }
                        return;
                }
                rc = consul_check_update(r->consul, r->services[r->index].check_id,
                                         r->pushing_passing ? "passing" : "critical", r->health_output,
                                         on_op_done, r, &r->op, &err);
                start_op(r, rc, &err);
                return;
        }
        case STEP_DEREGISTER:
                if (r->index >= r->n_services) {
                        r->step = STEP_CONFIRM;
                        r->index = 0;
                        run_step(r);
                        return;
                }
                rc = consul_deregister(r->consul, r->services[r->index].id, on_op_done, r, &r->op, &err);
                start_op(r, rc, &err);
                return;
        case STEP_CONFIRM:
                if (r->index >= r->n_services) {
                        r->step = STEP_IDLE;
                        ev_timer_stop(r->loop, &r->deadline_timer);
                        log_info_s(r->task_id, "deregistered from Consul, confirmed gone");
                        set_state(r, REGISTRATION_DEREGISTERED, NULL);
                        if (r->cb.deregistered)
                                r->cb.deregistered(0, r->userdata);
                        return;
                }
                rc = consul_confirm_gone(r->consul, r->services[r->index].id, on_op_done, r, &r->op, &err);
                start_op(r, rc, &err);
                return;
        case STEP_IDLE:
                return;
        }
}

static void on_op_done(int result, const char *message, void *userdata)
{
        Registrar *r = userdata;
        char why[ERROR_MAX + 1];

        r->op = NULL;
        if (result == -ECANCELED)
                return;
        snprintf(why, sizeof(why), "%s", message && *message ? message : strerror(-result));

        switch (r->step) {
        case STEP_CLEANUP_DEREGISTER:
                if (result < 0)
                        log_warn_s(r->task_id, "removing stale Consul entry %s failed: %s",
                                   r->stale[r->index], why);
                r->index++;
                run_step(r);
                return;
        case STEP_REGISTER:
        case STEP_VERIFY:
                if (result < 0) {
                        log_warn_s(r->task_id, "Consul registration failed: %s; retrying", why);
                        /* nothing stays registered half-way: an entry Consul accepted but that could
                         * not be verified (or whose sibling services failed) would get traffic while
                         * the task is reported not ready */
                        r->n_undo = r->step == STEP_VERIFY ? r->n_services : r->index;
                        if (r->n_undo > 0) {
                                snprintf(r->undo_why, sizeof(r->undo_why), "%s", why);
                                set_state(r, REGISTRATION_FAILED, why);
                                r->step = STEP_UNDO;
                                r->index = 0;
                                run_step(r);
                                return;
                        }
                        r->step = STEP_IDLE;
                        schedule_retry(r, why);
                        return;
                }
                r->index++;
                run_step(r);
                return;
        case STEP_UNDO:
                if (result < 0)
                        log_warn_s(r->task_id,
                                   "removing the unverified Consul entry %s failed: %s; its TTL check will "
                                   "expire",
                                   r->services[r->index].id, why);
                r->index++;
                run_step(r);
                return;
        case STEP_HEALTH:
                if (result < 0) {
                        bool passing = r->pushing_passing;
                        r->step = STEP_IDLE;
                        log_warn_s(r->task_id, "updating the Consul TTL check failed: %s", why);
                        if (result == -ENOENT) {
                                /* the agent lost our entry (restarted, or reaped it): register again,
                                 * with what the probes last said */
                                r->push_pending = false;
                                ev_timer_stop(r->loop, &r->ttl_timer);
                                set_state(r, REGISTRATION_REGISTERING, why);
                                registrar_register(r);
                        }
                        if (r->cb.health_pushed)
                                r->cb.health_pushed(passing, result, r->userdata);
                        return;
                }
                r->index++;
                run_step(r);
                return;
        case STEP_DEREGISTER:
        case STEP_CONFIRM:
                if (result < 0) {
                        /* keep trying until the deadline: an entry left behind gets traffic */
                        log_warn_s(r->task_id, "Consul deregistration step failed: %s; retrying", why);
                        snprintf(r->last_error, sizeof(r->last_error), "%s", why);
                        if (r->step == STEP_CONFIRM)
                                r->step = STEP_DEREGISTER; /* still there: deregister again */
                        ev_timer_set(&r->retry_timer, 0.2, 0.);
                        ev_timer_start(r->loop, &r->retry_timer);
                        return;
                }
                r->index++;
                run_step(r);
                return;
        default:
                return;
        }
}

static void on_retry_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Registrar *r = w->data;

        if (r->state == REGISTRATION_DEREGISTERING) {
                run_step(r);
                return;
        }
        if (r->state == REGISTRATION_FAILED)
                registrar_register(r);
}

static void on_ttl_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Registrar *r = w->data;

        /* re-assert the last probe result so a healthy entry never expires between probes */
        if (r->state == REGISTRATION_REGISTERED && r->step == STEP_IDLE && r->health_known) {
                r->pushing_passing = r->health_passing;
                r->step = STEP_HEALTH;
                r->index = 0;
                run_step(r);
        }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
        Registrar *r = w->data;
        char why[ERROR_MAX + 1];

        if (r->state != REGISTRATION_DEREGISTERING)
                return;
        snprintf(why, sizeof(why), "deregistration did not finish in time%s%.*s", *r->last_error ? ": " : "",
                 ERROR_MAX - 40, r->last_error);
        if (r->op)
                consul_op_cancel(r->op);
        ev_timer_stop(loop, &r->retry_timer);
        r->step = STEP_IDLE;
        log_error_s(r->task_id, "%s; the TTL check will expire and Consul will reap the entry", why);
        set_state(r, REGISTRATION_DEREGISTERING, why);
        if (r->cb.deregistered)
                r->cb.deregistered(-ETIMEDOUT, r->userdata);
}

/* ---- public ---- */

int registrar_new(struct ev_loop *loop, const RegistrarConfig *cfg, const RegistrarCallbacks *cb,
                  void *userdata, Registrar **ret)
{
        Registrar *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->loop = loop;
        r->cb = *cb;
        r->userdata = userdata;
        r->consul = cfg->consul;
        r->task_id = strdup(strempty(cfg->task_id));
        r->framework_id = strdup(strempty(cfg->framework_id));
        r->executor_id = strdup(strempty(cfg->executor_id));
        r->app_id = strdup(strempty(cfg->app_id));
        r->address = strdup(strempty(cfg->address));
        if (!r->task_id || !r->framework_id || !r->executor_id || !r->app_id || !r->address) {
                registrar_free(r);
                return -ENOMEM;
        }
        r->n_services = MIN(cfg->n_services, (size_t)REGISTRAR_SERVICES_MAX);
        for (size_t i = 0; i < r->n_services; i++) {
                r->services[i] = cfg->services[i];
                for (size_t j = 0; j < r->services[i].n_tags; j++)
                        r->services[i].tags[j] = strdup(cfg->services[i].tags[j]);
        }
        r->ttl_ns = cfg->ttl_ns > 0 ? cfg->ttl_ns : TTL_DEFAULT_NS;
        r->deregister_after_ns =
                cfg->deregister_after_ns > 0 ? cfg->deregister_after_ns : DEREGISTER_AFTER_DEFAULT;
        r->retry_initial_ns = cfg->retry_initial_ns > 0 ? cfg->retry_initial_ns : RETRY_INITIAL_DEFAULT;
        r->retry_max_ns = cfg->retry_max_ns > 0 ? cfg->retry_max_ns : RETRY_MAX_DEFAULT;
        r->state = r->consul ? REGISTRATION_PENDING : REGISTRATION_OFF;
        ev_timer_init(&r->retry_timer, on_retry_timer, 0., 0.);
        r->retry_timer.data = r;
        /* a third of the TTL: two pushes can fail before Consul marks the entry critical */
        ev_timer_init(&r->ttl_timer, on_ttl_timer, 0., ns_to_ev(r->ttl_ns) / 3.);
        r->ttl_timer.data = r;
        ev_timer_init(&r->deadline_timer, on_deadline, 0., 0.);
        r->deadline_timer.data = r;
        *ret = r;
        return 0;
}

Registrar *registrar_free(Registrar *r)
{
        if (!r)
                return NULL;
        r->step = STEP_IDLE;
        if (r->op)
                consul_op_cancel(r->op);
        ev_timer_stop(r->loop, &r->retry_timer);
        ev_timer_stop(r->loop, &r->ttl_timer);
        ev_timer_stop(r->loop, &r->deadline_timer);
        registrar_services_done(r->services, r->n_services);
        free_stale(r);
        free(r->task_id);
        free(r->framework_id);
        free(r->executor_id);
        free(r->app_id);
        free(r->address);
        free(r);
        return NULL;
}

bool registrar_enabled(const Registrar *r)
{
        return r && r->consul;
}

void registrar_cleanup_stale(Registrar *r)
{
        if (!registrar_enabled(r) || r->cleanup_done || r->step != STEP_IDLE)
                return;
        r->step = STEP_CLEANUP_LIST;
        r->index = 0;
        run_step(r);
}

void registrar_register(Registrar *r)
{
        if (!registrar_enabled(r))
                return;
        if (r->state == REGISTRATION_REGISTERED || r->state == REGISTRATION_DEREGISTERING ||
            r->state == REGISTRATION_DEREGISTERED)
                return;
        ev_timer_stop(r->loop, &r->retry_timer);
        set_state(r, REGISTRATION_REGISTERING, NULL);
        if (r->step != STEP_IDLE)
                return; /* the cleanup in progress continues into registration */
        r->step = r->cleanup_done ? STEP_REGISTER : STEP_CLEANUP_LIST;
        r->index = 0;
        run_step(r);
}

int registrar_set_health(Registrar *r, bool passing, const char *output)
{
        if (!registrar_enabled(r) || r->state != REGISTRATION_REGISTERED)
                return -ENOTCONN;
        r->health_known = true;
        r->health_passing = passing;
        snprintf(r->health_output, sizeof(r->health_output), "%s", strempty(output));
        if (r->step != STEP_IDLE) {
                r->push_pending = true;
                return 0;
        }
        r->pushing_passing = passing;
        r->step = STEP_HEALTH;
        r->index = 0;
        run_step(r);
        return 0;
}

void registrar_deregister(Registrar *r, int64_t deadline_ns)
{
        if (!registrar_enabled(r)) {
                if (r && r->cb.deregistered)
                        r->cb.deregistered(0, r->userdata);
                return;
        }
        if (r->state == REGISTRATION_DEREGISTERING)
                return;
        if (r->op)
                consul_op_cancel(r->op);
        r->op = NULL;
        ev_timer_stop(r->loop, &r->retry_timer);
        ev_timer_stop(r->loop, &r->ttl_timer);
        r->push_pending = false;
        if (!r->attempted) {
                /* nothing ever reached Consul (stale entries, if any, were handled by the cleanup) */
                r->step = STEP_IDLE;
                set_state(r, REGISTRATION_DEREGISTERED, NULL);
                if (r->cb.deregistered)
                        r->cb.deregistered(0, r->userdata);
                return;
        }
        r->last_error[0] = 0;
        set_state(r, REGISTRATION_DEREGISTERING, NULL);
        ev_timer_set(&r->deadline_timer, ns_to_ev(MAX(deadline_ns, 1)), 0.);
        ev_timer_start(r->loop, &r->deadline_timer);
        r->step = STEP_DEREGISTER;
        r->index = 0;
        run_step(r);
}

RegistrationState registrar_state(const Registrar *r)
{
        return r ? r->state : REGISTRATION_OFF;
}

const char *registrar_last_error(const Registrar *r)
{
        return r ? r->last_error : "";
}

const char *registrar_service_id(const Registrar *r)
{
        return r && r->n_services ? r->services[0].id : "";
}

uint64_t registrar_registered_at_ms(const Registrar *r)
{
        return r ? r->registered_at_ms : 0;
}
