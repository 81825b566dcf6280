/* SPDX-License-Identifier: Apache-2.0 */
/* The executor's memory of what the agent has not acknowledged yet: status
 * updates (kept packed, in the order they were made, until ACKNOWLEDGED) and
 * launched tasks none of whose updates were acknowledged. Both are resent on
 * every (re)subscribe. Pure data, no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesos.h"

/* Bound on updates kept while the agent is away; past it the oldest
 * non-terminal update is dropped (a later update of the same task supersedes
 * it) so a long outage with a flapping check cannot grow memory. */
#define UPDATE_QUEUE_MAX 128

typedef struct PendingUpdate {
        uint8_t uuid[MESOS_UUID_SIZE];
        char *task_id;
        TaskState state;
        uint64_t seq;    /* order of creation */
        bool sent;       /* delivered to the agent (202 or included in a SUBSCRIBE) */
        uint8_t *packed; /* the TaskStatus */
        size_t packed_len;
        struct PendingUpdate *next;
} PendingUpdate;

typedef struct UnackedTask {
        char *task_id;
        uint8_t *packed; /* the TaskInfo */
        size_t packed_len;
        struct UnackedTask *next;
} UnackedTask;

typedef struct UpdateQueue {
        PendingUpdate *head, *tail;
        size_t count;
        size_t dropped;
        uint64_t next_seq;
        UnackedTask *tasks;
} UpdateQueue;

void update_queue_init(UpdateQueue *q);
void update_queue_done(UpdateQueue *q);

/* Queues a status (whose uuid must be set). Returns the entry. */
int update_queue_push(UpdateQueue *q, const TaskStatus *status, PendingUpdate **ret);
/* Removes the update with this uuid; marks its task acknowledged. Returns 1
 * and the acknowledged state in *ret_state, or 0 when the uuid is unknown. */
int update_queue_ack(UpdateQueue *q, const char *task_id, const uint8_t *uuid, size_t uuid_len,
                     TaskState *ret_state);
PendingUpdate *update_queue_find(UpdateQueue *q, const uint8_t uuid[MESOS_UUID_SIZE]);
/* The oldest update not yet delivered, or NULL. */
PendingUpdate *update_queue_next_unsent(UpdateQueue *q);
/* Marks every update up to and including seq as delivered (after a SUBSCRIBE carrying them). */
void update_queue_mark_sent_upto(UpdateQueue *q, uint64_t seq);
bool update_queue_has_unacked(const UpdateQueue *q, const char *task_id);

int update_queue_track_task(UpdateQueue *q, const TaskInfo *task);
bool update_queue_task_unacked(const UpdateQueue *q, const char *task_id);

/* Packs a SUBSCRIBE call carrying every unacknowledged task and update;
 * *ret_last_seq is the seq of the newest update included (0 if none). */
int update_queue_build_subscribe(const UpdateQueue *q, const char *framework_id, const char *executor_id,
                                 Buf *out, uint64_t *ret_last_seq);
