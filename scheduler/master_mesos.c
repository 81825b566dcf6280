/* SPDX-License-Identifier: Apache-2.0 */
/* The Master interface over a real Mesos master (master_link.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master.h"
#include "master_link.h"

#define LEADER_MAX 300 /* "host:port" of a URL of at most URL_MAX bytes */

typedef struct MasterMesos {
        Master base;
        MasterLink *link;
        MasterCallbacks cb;
        void *userdata;
        char leader[LEADER_MAX];
} MasterMesos;

static void on_subscribed(const char *framework_id, double heartbeat_s, void *userdata)
{
        MasterMesos *m = userdata;
        if (m->cb.subscribed)
                m->cb.subscribed(framework_id, m->userdata);
}

static void on_event(const Mesos__V1__Scheduler__Event *ev, void *userdata)
{
        MasterMesos *m = userdata;
        if (m->cb.event)
                m->cb.event(ev, m->userdata);
}

static void on_disconnected(const char *why, void *userdata)
{
        MasterMesos *m = userdata;
        if (m->cb.disconnected)
                m->cb.disconnected(why, m->userdata);
}

#define LINK(m) (((MasterMesos *)(m))->link)

static int mm_start(Master *m, const char *framework_id)
{
        return master_link_start(LINK(m), framework_id);
}

static int mm_accept(Master *m, const char *offer_id, TaskInfo *const *tasks, size_t n, double refuse)
{
        return master_link_accept(LINK(m), offer_id, tasks, n, refuse);
}

static int mm_decline(Master *m, char *const *ids, size_t n, double refuse)
{
        return master_link_decline(LINK(m), ids, n, refuse);
}

static int mm_kill(Master *m, const char *task_id, const char *agent_id, int64_t grace_ns)
{
        return master_link_kill(LINK(m), task_id, agent_id, grace_ns);
}

static int mm_ack(Master *m, const char *agent_id, const char *task_id, const uint8_t *uuid, size_t len)
{
        return master_link_acknowledge(LINK(m), agent_id, task_id, uuid, len);
}

static int mm_reconcile(Master *m, char *const *task_ids, char *const *agent_ids, size_t n)
{
        return master_link_reconcile(LINK(m), task_ids, agent_ids, n);
}

static int mm_revive(Master *m)
{
        return master_link_revive(LINK(m));
}

static int mm_suppress(Master *m)
{
        return master_link_suppress(LINK(m));
}

static bool mm_subscribed(const Master *m)
{
        return master_link_is_subscribed(((const MasterMesos *)m)->link);
}

/* Marathon's /v2/leader shows "host:port", not the URL of the scheduler API. */
static const char *mm_leader(const Master *m)
{
        MasterMesos *mm = (MasterMesos *)m;
        const char *url = master_link_url(mm->link), *host, *end;

        if (!url)
                return "";
        host = strstr(url, "://");
        host = host ? host + 3 : url;
        end = strchr(host, '/');
        snprintf(mm->leader, sizeof(mm->leader), "%.*s", (int)(end ? (size_t)(end - host) : strlen(host)),
                 host);
        return mm->leader;
}

static Master *mm_free(Master *m)
{
        MasterMesos *mm = (MasterMesos *)m;
        master_link_free(mm->link);
        free(mm);
        return NULL;
}

static const MasterOps mesos_ops = {
        .name = "mesos",
        .start = mm_start,
        .accept = mm_accept,
        .decline = mm_decline,
        .kill = mm_kill,
        .acknowledge = mm_ack,
        .reconcile = mm_reconcile,
        .revive = mm_revive,
        .suppress = mm_suppress,
        .subscribed = mm_subscribed,
        .leader = mm_leader,
        .free = mm_free,
};

int master_mesos_new(struct ev_loop *loop, HttpClient *http, const MasterOptions *o,
                     const MasterCallbacks *cb, void *userdata, Master **ret, PacerError *err)
{
        MasterMesos *m = calloc(1, sizeof(*m));
        MasterLinkConfig lc = {
                .master = o->master,
                .user = o->user,
                .name = o->name,
                .principal = o->principal,
                .webui_url = o->webui_url,
                .roles = o->roles,
                .n_roles = o->n_roles,
                .failover_timeout_s = o->failover_timeout_s,
                .checkpoint = o->checkpoint,
        };
        MasterLinkCallbacks lcb = { .subscribed = on_subscribed,
                                    .event = on_event,
                                    .disconnected = on_disconnected };
        int r;

        if (!m)
                return -ENOMEM;
        m->base.ops = &mesos_ops;
        m->cb = *cb;
        m->userdata = userdata;
        r = master_link_new(loop, http, &lc, &lcb, m, &m->link, err);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret = &m->base;
        return 0;
}
