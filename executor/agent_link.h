/* SPDX-License-Identifier: Apache-2.0 */
/* The executor's side of the Mesos v1 executor HTTP API: one long-lived
 * SUBSCRIBE stream of RecordIO-framed protobuf events, and UPDATE/MESSAGE
 * calls on separate requests. Owns the unacknowledged updates and tasks,
 * resends them on every re-subscribe, delivers updates to the agent in order
 * (one in flight at a time, so the agent sees them in the order they were
 * made), reconnects with capped exponential backoff and gives up — telling
 * its owner — when the agent stays away past the recovery timeout or when
 * checkpointing is off. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "http_client.h"
#include "mesos.h"

struct ev_loop;

typedef struct AgentLink AgentLink;

typedef struct AgentLinkConfig {
        const char *endpoint;     /* MESOS_AGENT_ENDPOINT, "ip:port" */
        const char *framework_id; /* MESOS_FRAMEWORK_ID */
        const char *executor_id;  /* MESOS_EXECUTOR_ID */
        const char *auth_token;   /* MESOS_EXECUTOR_AUTHENTICATION_TOKEN, optional */
        const char *unix_socket;  /* MESOS_DOMAIN_SOCKET, optional */
        bool checkpoint;          /* MESOS_CHECKPOINT == "1" */
        int64_t recovery_timeout_ns;
        int64_t backoff_max_ns;      /* MESOS_SUBSCRIPTION_BACKOFF_MAX */
        int64_t register_timeout_ns; /* how long to try the first SUBSCRIBE without checkpointing */
        int64_t call_timeout_ns;     /* deadline of one UPDATE/MESSAGE call */
} AgentLinkConfig;

typedef struct AgentLinkCallbacks {
        /* SUBSCRIBED, LAUNCH, LAUNCH_GROUP, KILL, MESSAGE, SHUTDOWN and ERROR events.
         * ACKNOWLEDGED and HEARTBEAT are handled inside. */
        void (*event)(const Mesos__V1__Executor__Event *ev, void *userdata);
        /* An update of this task in this state was acknowledged by the agent. */
        void (*acknowledged)(const char *task_id, TaskState state, void *userdata);
        /* The subscription stream broke; the link is reconnecting. */
        void (*disconnected)(const char *why, void *userdata);
        /* The link gave up for good (no checkpointing, recovery timeout passed,
         * the agent refused us). The owner must stop the task and exit. */
        void (*lost)(const char *why, void *userdata);
} AgentLinkCallbacks;

int agent_link_new(struct ev_loop *loop, HttpClient *http, const AgentLinkConfig *cfg,
                   const AgentLinkCallbacks *cb, void *userdata, AgentLink **ret);
AgentLink *agent_link_free(AgentLink *l);

/* Starts subscribing. */
int agent_link_start(AgentLink *l);
bool agent_link_is_subscribed(const AgentLink *l);

/* Fills in uuid, timestamp, source and executor_id, keeps the status until it
 * is acknowledged and delivers it as soon as the agent can take it. */
int agent_link_send_status(AgentLink *l, TaskStatus *status);
/* Remembers a launched task until one of its updates is acknowledged. */
int agent_link_track_task(AgentLink *l, const TaskInfo *task);
/* True while any update of task_id (NULL: of any task) awaits acknowledgement. */
bool agent_link_has_unacked(const AgentLink *l, const char *task_id);
/* Sends a MESSAGE call (best effort, as Mesos defines it). */
int agent_link_send_message(AgentLink *l, const void *data, size_t len);

/* Counters for logs, metrics and benchmarks. */
typedef struct AgentLinkStats {
        uint64_t subscribes;
        uint64_t events;
        uint64_t updates_sent;
        uint64_t updates_acked;
        uint64_t bad_frames;
} AgentLinkStats;
const AgentLinkStats *agent_link_stats(const AgentLink *l);
