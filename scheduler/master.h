/* SPDX-License-Identifier: Apache-2.0 */
/* What the scheduler needs from "a Mesos master": the calls it makes and
 * the events it gets. Two implementations: the real master through the v1
 * scheduler API (master_mesos.c) and local mode, where the scheduler offers
 * the host's own resources and serves the executor API itself (local.c).
 * The scheduler's code is the same for both. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "http_client.h"
#include "mesos.h"

struct ev_loop;

typedef struct Master Master;

typedef struct MasterCallbacks {
        void (*subscribed)(const char *framework_id, void *userdata);
        /* OFFERS, RESCIND, UPDATE, MESSAGE, FAILURE, ERROR */
        void (*event)(const Mesos__V1__Scheduler__Event *ev, void *userdata);
        void (*disconnected)(const char *why, void *userdata);
} MasterCallbacks;

typedef struct MasterOps {
        const char *name;
        int (*start)(Master *m, const char *framework_id);
        int (*accept)(Master *m, const char *offer_id, TaskInfo *const *tasks, size_t n,
                      double refuse_seconds);
        int (*decline)(Master *m, char *const *offer_ids, size_t n, double refuse_seconds);
        int (*kill)(Master *m, const char *task_id, const char *agent_id, int64_t grace_ns);
        int (*acknowledge)(Master *m, const char *agent_id, const char *task_id, const uint8_t *uuid,
                           size_t uuid_len);
        int (*reconcile)(Master *m, char *const *task_ids, char *const *agent_ids, size_t n);
        int (*revive)(Master *m);
        int (*suppress)(Master *m);
        bool (*subscribed)(const Master *m);
        const char *(*leader)(const Master *m); /* "host:port" of the master talked to */
        Master *(*free)(Master *m);
} MasterOps;

struct Master {
        const MasterOps *ops;
};

/* The scheduler-side settings both implementations share. */
typedef struct MasterOptions {
        const char *master; /* host:port of a Mesos master, or "local" */
        const char *user;
        const char *name;
        const char *const *roles;
        size_t n_roles;
        double failover_timeout_s;
        bool checkpoint;
        const char *principal;
        const char *webui_url;
} MasterOptions;

int master_mesos_new(struct ev_loop *loop, HttpClient *http, const MasterOptions *o,
                     const MasterCallbacks *cb, void *userdata, Master **ret, PacerError *err);

static inline Master *master_free(Master *m)
{
        return m ? m->ops->free(m) : NULL;
}
