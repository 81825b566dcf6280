/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler's side of the Mesos v1 scheduler HTTP API: a SUBSCRIBE stream
 * of RecordIO-framed protobuf events and calls on separate requests carrying
 * the Mesos-Stream-Id. Follows 307 redirects to the leading master, watches
 * heartbeats (a silent stream is dropped and re-subscribed), re-subscribes
 * with capped exponential backoff and the persisted framework id. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "http_client.h"
#include "mesos.h"

struct ev_loop;

typedef struct MasterLink MasterLink;

#define MASTER_STREAM_ID_MAX 128
#define MASTER_ROLES_MAX     16

typedef struct MasterLinkConfig {
        const char *master;       /* "host:port" or "http(s)://host:port" */
        const char *user;         /* FrameworkInfo.user */
        const char *name;         /* FrameworkInfo.name */
        const char *principal;    /* optional */
        const char *hostname;     /* optional */
        const char *webui_url;    /* optional */
        const char *const *roles; /* MULTI_ROLE roles; NULL/empty = "*" */
        size_t n_roles;
        double failover_timeout_s; /* how long the master keeps our tasks while we are away */
        bool checkpoint;
        int64_t backoff_max_ns;    /* re-subscribe backoff cap; default 15 s */
        int64_t call_timeout_ns;   /* one call; default 10 s */
        unsigned heartbeat_misses; /* drop the stream after this many missed heartbeats; default 5 */
        const char *auth_header;   /* optional "Authorization: ..." line */
} MasterLinkConfig;

typedef struct MasterLinkCallbacks {
        /* SUBSCRIBED: the (possibly new) framework id to persist */
        void (*subscribed)(const char *framework_id, double heartbeat_interval_s, void *userdata);
        /* OFFERS, RESCIND, UPDATE, MESSAGE, FAILURE, ERROR, INVERSE_OFFERS... (not HEARTBEAT) */
        void (*event)(const Mesos__V1__Scheduler__Event *ev, void *userdata);
        /* the stream broke: offers are void; the link re-subscribes by itself */
        void (*disconnected)(const char *why, void *userdata);
} MasterLinkCallbacks;

/* Completion of a call: result 0 when the master answered 202 (or 200). */
typedef void (*master_call_fn)(int result, const char *error, void *userdata);

int master_link_new(struct ev_loop *loop, HttpClient *http, const MasterLinkConfig *cfg,
                    const MasterLinkCallbacks *cb, void *userdata, MasterLink **ret, PacerError *err);
MasterLink *master_link_free(MasterLink *l);

/* Subscribes (with framework_id when re-subscribing after a restart). */
int master_link_start(MasterLink *l, const char *framework_id);
bool master_link_is_subscribed(const MasterLink *l);
const char *master_link_framework_id(const MasterLink *l);
/* The URL of the master currently talked to (after redirects). */
const char *master_link_url(const MasterLink *l);

/* Sends a call (framework_id and type filled in when unset). -ENOTCONN when
 * not subscribed (no callback then). cb may be NULL. */
int master_link_call(MasterLink *l, Mesos__V1__Scheduler__Call *call, master_call_fn cb, void *userdata);

/* ACCEPT of one offer with LAUNCH of tasks (none: the offer is declined). */
int master_link_accept(MasterLink *l, const char *offer_id, TaskInfo *const *tasks, size_t n,
                       double refuse_seconds);
int master_link_acknowledge(MasterLink *l, const char *agent_id, const char *task_id, const uint8_t *uuid,
                            size_t uuid_len);
int master_link_decline(MasterLink *l, char *const *offer_ids, size_t n, double refuse_seconds);
int master_link_kill(MasterLink *l, const char *task_id, const char *agent_id, int64_t grace_ns);
/* tasks: (task id, agent id) pairs, n = 0 for implicit reconciliation. */
int master_link_reconcile(MasterLink *l, char *const *task_ids, char *const *agent_ids, size_t n);
/* Waits (returning 0) until the DECLINE, SUPPRESS and ACCEPT calls in flight
 * are answered, so that none of them reaches the master after it. */
int master_link_revive(MasterLink *l);
int master_link_suppress(MasterLink *l);

typedef struct MasterLinkStats {
        uint64_t subscribes;
        uint64_t redirects;
        uint64_t events;
        uint64_t calls;
        uint64_t call_failures;
        uint64_t heartbeat_timeouts;
} MasterLinkStats;
const MasterLinkStats *master_link_stats(const MasterLink *l);
/* Calls waiting for one of the few connections to the master. */
size_t master_link_calls_queued(const MasterLink *l);
