/* SPDX-License-Identifier: Apache-2.0 */
#include "state.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "msgpack_guard.h"
#include "placement.h"

/* Record keys: short, the store holds 100k of these. */
#define K_TASK    "i"
#define K_APP     "a"
#define K_VERSION "v"
#define K_AGENT   "g"
#define K_HOST    "h"
#define K_PORTS   "p"
#define K_STATE   "s"
#define K_HEALTH  "hl"
#define K_REG     "r"
#define K_STAGED  "st"
#define K_STARTED "sa"
#define K_KILL    "k"

void state_init(State *s)
{
        *s = (State){ .apps = HASHMAP_INIT, .instances = HASHMAP_INIT, .agents = HASHMAP_INIT };
}

AppVersion *app_version_new(AppSpec *spec)
{
        AppVersion *v = calloc(1, sizeof(*v));
        if (!v)
                return NULL;
        v->spec = spec;
        v->version = spec->version;
        v->refs = 1;
        return v;
}

AppVersion *app_version_new_stored(const char *version, const void *json, size_t len)
{
        size_t n = strlen(version);
        AppVersion *v = calloc(1, sizeof(*v));

        if (!v)
                return NULL;
        v->stored = malloc(n + 1 + len + 1);
        if (!v->stored) {
                free(v);
                return NULL;
        }
        memcpy(v->stored, version, n + 1);
        memcpy(v->stored + n + 1, json, len);
        v->stored[n + 1 + len] = 0;
        v->stored_len = len;
        v->version = v->stored;
        v->refs = 1;
        return v;
}

/* Turns a stored version into a parsed one; on failure it stays as it was. */
static int version_parse(AppVersion *v, const char *app_id, PacerError *err)
{
        AppSpec *spec = NULL;
        int r;

        r = app_spec_from_stored(v->stored + strlen(v->version) + 1, v->stored_len, v->version, &spec, err);
        if (r < 0)
                return r;
        if (!streq(spec->id, app_id)) {
                pacer_error_set(err, EBADMSG, "it defines %s", spec->id);
                app_spec_free(spec);
                return -EBADMSG;
        }
        v->spec = spec;
        v->version = spec->version;
        free(v->stored);
        v->stored = NULL;
        v->stored_len = 0;
        return 0;
}

AppVersion *app_version_ref(AppVersion *v)
{
        if (v)
                v->refs++;
        return v;
}

AppVersion *app_version_unref(AppVersion *v)
{
        if (v && --v->refs == 0) {
                app_spec_free(v->spec);
                free(v->stored);
                free(v);
        }
        return NULL;
}

static void agent_free(Agent *a)
{
        if (!a)
                return;
        for (size_t i = 0; i < a->n_attrs; i++) {
                free(a->attr_names[i]);
                free(a->attr_values[i]);
        }
        free(a->id);
        free(a->hostname);
        free(a);
}

static void instance_free(Instance *i)
{
        if (!i)
                return;
        app_version_unref(i->version);
        free(i->ports);
        free(i->last_message);
        free(i->task_id);
        free(i);
}

static void app_free(App *a)
{
        if (!a)
                return;
        app_version_unref(a->current);
        for (size_t i = 0; i < a->n_history; i++)
                app_version_unref(a->history[i]);
        free(a->last_failure);
        free(a->id);
        free(a);
}

void state_done(State *s)
{
        const char *k;
        void *v;
        size_t it = 0;

        while (hashmap_next(&s->instances, &it, &k, &v))
                instance_free(v);
        it = 0;
        while (hashmap_next(&s->apps, &it, &k, &v))
                app_free(v);
        it = 0;
        while (hashmap_next(&s->agents, &it, &k, &v))
                agent_free(v);
        hashmap_done(&s->instances);
        hashmap_done(&s->apps);
        hashmap_done(&s->agents);
        free(s->framework_id);
        *s = (State){ 0 };
}

App *state_app(const State *s, const char *id)
{
        return hashmap_get(&s->apps, id);
}

Instance *state_instance(const State *s, const char *task_id)
{
        return hashmap_get(&s->instances, task_id);
}

int state_app_add(State *s, AppSpec *spec, App **ret)
{
        App *a;
        int r;

        if (state_app(s, spec->id))
                return -EEXIST;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->id = strdup(spec->id);
        a->current = app_version_new(spec);
        if (!a->id || !a->current) {
                if (a->current)
                        a->current->spec = NULL; /* not ours to free on this failure */
                app_free(a);
                return -ENOMEM;
        }
        a->backoff_s = spec->backoff_seconds;
        r = hashmap_put(&s->apps, a->id, a, NULL);
        if (r < 0) {
                a->current->spec = NULL;
                app_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

int state_app_set_spec(State *s, App *app, AppSpec *spec)
{
        AppVersion *v = app_version_new(spec);

        if (!v)
                return -ENOMEM;
        if (app->n_history == STATE_VERSIONS_KEPT)
                app_version_unref(app->history[--app->n_history]);
        memmove(app->history + 1, app->history, app->n_history * sizeof(app->history[0]));
        app->history[0] = app->current;
        app->n_history++;
        app->current = v;
        /* a new version starts with a clean slate: no backoff, no crash loop */
        app->backoff_s = spec->backoff_seconds;
        app->next_launch_at = 0;
        app->n_failures = 0;
        app->crash_loop = false;
        return 0;
}

AppVersion *state_app_previous(const App *app)
{
        return app->n_history > 0 ? app->history[0] : NULL;
}

void state_app_add_history(App *app, AppVersion *v)
{
        size_t pos = 0;

        while (pos < app->n_history && strcmp(app->history[pos]->version, v->version) > 0)
                pos++;
        if (pos == STATE_VERSIONS_KEPT) {
                app_version_unref(v);
                return;
        }
        if (app->n_history == STATE_VERSIONS_KEPT)
                app_version_unref(app->history[--app->n_history]);
        memmove(app->history + pos + 1, app->history + pos,
                (app->n_history - pos) * sizeof(app->history[0]));
        app->history[pos] = v;
        app->n_history++;
}

int state_app_version(App *app, const char *version, AppVersion **ret, PacerError *err)
{
        PacerError e = { "" };
        AppVersion *v;
        int r;

        if (app->current && streq(app->current->version, version)) {
                *ret = app->current;
                return 0;
        }
        for (size_t i = 0; i < app->n_history; i++) {
                v = app->history[i];
                if (!streq(v->version, version))
                        continue;
                if (!v->spec) {
                        r = version_parse(v, app->id, &e);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0) {
                                memmove(app->history + i, app->history + i + 1,
                                        (app->n_history - i - 1) * sizeof(app->history[0]));
                                app->n_history--;
                                app_version_unref(v);
                                return pacer_error_set(err, EBADMSG, "version %s of %s is unreadable: %s",
                                                       version, app->id, e.msg);
                        }
                }
                *ret = v;
                return 0;
        }
        return pacer_error_set(err, ENOENT, "%s has no version %s", app->id, version);
}

void state_app_remove(State *s, App *app)
{
        hashmap_remove(&s->apps, app->id);
        app_free(app);
}

Agent *state_agent_get(State *s, const char *id, const char *hostname,
                       const Mesos__V1__Attribute *const *attrs, size_t n_attrs)
{
        Agent *a = hashmap_get(&s->agents, id);
        char value[512];

        if (a) {
                if (hostname && (!a->hostname || !streq(a->hostname, hostname))) {
                        free(a->hostname);
                        a->hostname = strdup(hostname);
                }
                if (attrs && n_attrs > 0 && a->n_attrs == 0)
                        goto fill; /* learnt the attributes only now (an instance recovered from the store)
                                    */
                return a;
        }
        a = calloc(1, sizeof(*a));
        if (!a || !(a->id = strdup(id)) || !(a->hostname = strdup(strempty(hostname)))) {
                agent_free(a);
                return NULL;
        }
        if (hashmap_put(&s->agents, a->id, a, NULL) < 0) {
                agent_free(a);
                return NULL;
        }
fill:
        for (size_t i = 0; attrs && i < n_attrs && a->n_attrs < AGENT_ATTRS_MAX; i++) {
                if (!attrs[i]->name || placement_attribute_format(attrs[i], value, sizeof(value)) < 0)
                        continue;
                a->attr_names[a->n_attrs] = strdup(attrs[i]->name);
                a->attr_values[a->n_attrs] = strdup(value);
                if (!a->attr_names[a->n_attrs] || !a->attr_values[a->n_attrs]) {
                        free(a->attr_names[a->n_attrs]);
                        free(a->attr_values[a->n_attrs]);
                        break;
                }
                a->n_attrs++;
        }
        return a;
}

int state_task_id(const char *app_id, char *buf, size_t size)
{
        uint8_t u[MESOS_UUID_SIZE];
        char uuid[40];
        size_t n = 0;

        const char *id = app_id[0] == '/' ? app_id + 1 : app_id;

        if (strlen(id) + 1 + 36 + 1 > size)
                return -ENAMETOOLONG;
        mesos_uuid_generate(u);
        mesos_uuid_format(u, uuid);
        for (const char *p = id; *p; p++)
                buf[n++] = *p == '/' ? '_' : *p;
        buf[n++] = '.';
        memcpy(buf + n, uuid, 37);
        return 0;
}

int state_app_id_of_task(const char *task_id, char *buf, size_t size)
{
        const char *dot = strrchr(task_id, '.');
        size_t n = 0;

        if (!dot || dot == task_id || size < 2)
                return -EINVAL;
        buf[n++] = '/';
        for (const char *p = task_id; p < dot && n + 1 < size; p++)
                buf[n++] = *p == '_' ? '/' : *p;
        buf[n] = 0;
        return 0;
}

int state_instance_new(State *s, App *app, AppVersion *version, Instance **ret)
{
        char id[APP_ID_MAX + 64];
        int r;

        r = state_task_id(app->id, id, sizeof(id));
        if (r < 0)
                return r;
        return state_instance_add(s, app, version, id, ret);
}

int state_instance_add(State *s, App *app, AppVersion *version, const char *task_id, Instance **ret)
{
        Instance *i;
        void *old = NULL;
        int r;

        i = calloc(1, sizeof(*i));
        if (!i || !(i->task_id = strdup(task_id))) {
                free(i);
                return -ENOMEM;
        }
        i->app = app;
        i->version = app_version_ref(version);
        i->state = TASK_STATE(TASK_STAGING);
        i->health = HEALTH_UNKNOWN;
        i->registration = REGISTRATION_PENDING;
        i->staged_at = mesos_now();
        /* one probe of a table of 100,000 on recovery, not a lookup and then an insertion */
        r = hashmap_put(&s->instances, i->task_id, i, &old);
        if (r >= 0 && old) {
                hashmap_put(&s->instances, ((Instance *)old)->task_id, old,
                            NULL); /* cannot fail: no growth */
                r = -EEXIST;
        }
        if (r < 0) {
                instance_free(i);
                return r;
        }
        i->next = app->instances;
        if (app->instances)
                app->instances->prev = i;
        app->instances = i;
        app->n_instances++;
        *ret = i;
        return 0;
}

void state_instance_set_agent(State *s, Instance *i, Agent *a)
{
        if (i->agent == a)
                return;
        if (i->agent)
                i->agent->refs--;
        i->agent = a;
        if (a)
                a->refs++;
}

void state_instance_remove(State *s, Instance *i)
{
        App *app = i->app;

        hashmap_remove(&s->instances, i->task_id);
        if (i->prev)
                i->prev->next = i->next;
        else if (app)
                app->instances = i->next;
        if (i->next)
                i->next->prev = i->prev;
        if (app)
                app->n_instances--;
        state_instance_set_agent(s, i, NULL);
        instance_free(i);
}

bool instance_active(const Instance *i)
{
        return !task_state_is_terminal(i->state) && !i->kill_sent && i->state != TASK_STATE(TASK_KILLING);
}

bool instance_ready(const Instance *i)
{
        const AppSpec *spec = i->version ? i->version->spec : NULL;

        if (i->state != TASK_STATE(TASK_RUNNING) || i->kill_sent)
                return false;
        if (spec && spec->n_checks > 0 && i->health != HEALTH_HEALTHY)
                return false;
        /* registration off (no Consul on that agent) does not hold a deployment back */
        return i->registration == REGISTRATION_OFF || i->registration == REGISTRATION_REGISTERED;
}

/* ---- records ---- */

static int pack_str(msgpack_packer *pk, const char *k, const char *v)
{
        size_t kl = strlen(k), vl = strlen(strempty(v));
        return msgpack_pack_str(pk, kl) || msgpack_pack_str_body(pk, k, kl) || msgpack_pack_str(pk, vl) ||
               msgpack_pack_str_body(pk, strempty(v), vl);
}

static int pack_key(msgpack_packer *pk, const char *k)
{
        size_t kl = strlen(k);
        return msgpack_pack_str(pk, kl) || msgpack_pack_str_body(pk, k, kl);
}

static int buf_write(void *data, const char *p, size_t n)
{
        return buf_append(data, p, n) < 0 ? -1 : 0;
}

int instance_encode(const Instance *i, Buf *out)
{
        msgpack_packer pk;
        int fail = 0;

        msgpack_packer_init(&pk, out, buf_write);
        fail |= msgpack_pack_map(&pk, 12);
        fail |= pack_str(&pk, K_TASK, i->task_id);
        fail |= pack_str(&pk, K_APP, i->app ? i->app->id : "");
        fail |= pack_str(&pk, K_VERSION, i->version ? i->version->version : "");
        fail |= pack_str(&pk, K_AGENT, i->agent ? i->agent->id : "");
        fail |= pack_str(&pk, K_HOST, i->agent ? i->agent->hostname : "");
        fail |= pack_key(&pk, K_PORTS) || msgpack_pack_array(&pk, i->n_ports);
        for (size_t p = 0; p < i->n_ports; p++)
                fail |= msgpack_pack_uint32(&pk, i->ports[p]);
        fail |= pack_key(&pk, K_STATE) || msgpack_pack_int(&pk, i->state);
        fail |= pack_key(&pk, K_HEALTH) || msgpack_pack_int(&pk, i->health);
        fail |= pack_key(&pk, K_REG) || msgpack_pack_int(&pk, i->registration);
        fail |= pack_key(&pk, K_STAGED) || msgpack_pack_double(&pk, i->staged_at);
        fail |= pack_key(&pk, K_STARTED) || msgpack_pack_double(&pk, i->started_at);
        fail |= pack_key(&pk, K_KILL) || (i->kill_sent ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
        return fail ? -EMSGSIZE : 0;
}

static int copy_str(const msgpack_object *o, char *out, size_t size)
{
        if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= size ||
            memchr(o->via.str.ptr, 0, o->via.str.size))
                return -EBADMSG;
        memcpy(out, o->via.str.ptr, o->via.str.size);
        out[o->via.str.size] = 0;
        return 0;
}

static double get_double(const msgpack_object *o)
{
        if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
                return o->via.f64;
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                return (double)o->via.u64;
        return 0;
}

static int get_int(const msgpack_object *o, int *ret)
{
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
                *ret = (int)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= INT32_MIN)
                *ret = (int)o->via.i64;
        else
                return -EBADMSG;
        return 0;
}

int instance_decode(const void *data, size_t len, InstanceRecord *ret, PacerError *err)
{
        msgpack_unpacked u;
        size_t off = 0;
        int r = 0;

        *ret = (InstanceRecord){ .health = HEALTH_UNKNOWN };
        r = msgpack_guard_check(data, len, 4, err);
        if (r < 0)
                return r;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
            u.data.type != MSGPACK_OBJECT_MAP) {
                msgpack_unpacked_destroy(&u);
                return pacer_error_set(err, EBADMSG, "instance record is not a msgpack map");
        }
        for (uint32_t k = 0; r >= 0 && k < u.data.via.map.size; k++) {
                const msgpack_object_kv *kv = &u.data.via.map.ptr[k];
                char key[8];
                if (copy_str(&kv->key, key, sizeof(key)) < 0)
                        continue;
                const msgpack_object *v = &kv->val;
                if (streq(key, K_TASK))
                        r = copy_str(v, ret->task_id, sizeof(ret->task_id));
                else if (streq(key, K_APP))
                        r = copy_str(v, ret->app_id, sizeof(ret->app_id));
                else if (streq(key, K_VERSION))
                        r = copy_str(v, ret->version, sizeof(ret->version));
                else if (streq(key, K_AGENT))
                        r = copy_str(v, ret->agent_id, sizeof(ret->agent_id));
                else if (streq(key, K_HOST))
                        r = copy_str(v, ret->hostname, sizeof(ret->hostname));
                else if (streq(key, K_PORTS)) {
                        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > INSTANCE_PORTS_MAX)
                                r = -EBADMSG;
                        for (uint32_t p = 0; r >= 0 && p < v->via.array.size; p++) {
                                const msgpack_object *e = &v->via.array.ptr[p];
                                if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > 65535)
                                        r = -EBADMSG;
                                else
                                        ret->ports[ret->n_ports++] = (uint32_t)e->via.u64;
                        }
                } else if (streq(key, K_STATE))
                        r = get_int(v, &ret->state);
                else if (streq(key, K_HEALTH))
                        r = get_int(v, &ret->health);
                else if (streq(key, K_REG))
                        r = get_int(v, &ret->registration);
                else if (streq(key, K_STAGED))
                        ret->staged_at = get_double(v);
                else if (streq(key, K_STARTED))
                        ret->started_at = get_double(v);
                else if (streq(key, K_KILL))
                        ret->kill_sent = v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
        }
        msgpack_unpacked_destroy(&u);
        if (r < 0)
                return pacer_error_set(err, EBADMSG, "instance record has a field of the wrong type");
        if (!*ret->task_id || !*ret->app_id)
                return pacer_error_set(err, EBADMSG, "instance record without task or app id");
        return 0;
}
