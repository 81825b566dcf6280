/* SPDX-License-Identifier: Apache-2.0 */
#include "updates.h"

#include "log.h"

void update_queue_init(UpdateQueue *q)
{
        *q = (UpdateQueue){ 0 };
}

static PendingUpdate *pending_update_free(PendingUpdate *u)
{
        if (u) {
                free(u->task_id);
                free(u->packed);
                free(u);
        }
        return NULL;
}

static UnackedTask *unacked_task_free(UnackedTask *t)
{
        if (t) {
                free(t->task_id);
                free(t->packed);
                free(t);
        }
        return NULL;
}

void update_queue_done(UpdateQueue *q)
{
        while (q->head) {
                PendingUpdate *u = q->head;
                q->head = u->next;
                pending_update_free(u);
        }
        while (q->tasks) {
                UnackedTask *t = q->tasks;
                q->tasks = t->next;
                unacked_task_free(t);
        }
        *q = (UpdateQueue){ 0 };
}

static void unlink_update(UpdateQueue *q, PendingUpdate *prev, PendingUpdate *u)
{
        if (prev)
                prev->next = u->next;
        else
                q->head = u->next;
        if (q->tail == u)
                q->tail = prev;
        q->count--;
}

/* Drops the oldest non-terminal update to stay within UPDATE_QUEUE_MAX. */
static void make_room(UpdateQueue *q)
{
        PendingUpdate *prev = NULL;

        for (PendingUpdate *u = q->head; u; prev = u, u = u->next)
                if (!task_state_is_terminal(u->state)) {
                        log_warn_s(
                                u->task_id,
                                "dropping an unacknowledged %s update: %d updates already wait for the agent",
                                task_state_to_string(u->state), UPDATE_QUEUE_MAX);
                        unlink_update(q, prev, u);
                        pending_update_free(u);
                        q->dropped++;
                        return;
                }
}

int update_queue_push(UpdateQueue *q, const TaskStatus *status, PendingUpdate **ret)
{
        PendingUpdate *u;

        if (!status->has_uuid || status->uuid.len != MESOS_UUID_SIZE || !status->task_id ||
            !status->task_id->value)
                return -EINVAL;
        if (q->count >= UPDATE_QUEUE_MAX)
                make_room(q);
        if (q->count >= UPDATE_QUEUE_MAX)
                return -ENOBUFS; /* only terminal updates left: cannot happen with one task */

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->task_id = strdup(status->task_id->value);
        u->packed_len = protobuf_c_message_get_packed_size(&status->base);
        u->packed = malloc(u->packed_len ? u->packed_len : 1);
        if (!u->task_id || !u->packed) {
                pending_update_free(u);
                return -ENOMEM;
        }
        protobuf_c_message_pack(&status->base, u->packed);
        memcpy(u->uuid, status->uuid.data, MESOS_UUID_SIZE);
        u->state = status->state;
        u->seq = ++q->next_seq;

        if (q->tail)
                q->tail->next = u;
        else
                q->head = u;
        q->tail = u;
        q->count++;
        if (ret)
                *ret = u;
        return 0;
}

static void task_acknowledged(UpdateQueue *q, const char *task_id)
{
        for (UnackedTask **p = &q->tasks; *p; p = &(*p)->next)
                if (streq((*p)->task_id, task_id)) {
                        UnackedTask *t = *p;
                        *p = t->next;
                        unacked_task_free(t);
                        return;
                }
}

int update_queue_ack(UpdateQueue *q, const char *task_id, const uint8_t *uuid, size_t uuid_len,
                     TaskState *ret_state)
{
        PendingUpdate *prev = NULL;

        if (uuid_len != MESOS_UUID_SIZE)
                return 0;
        for (PendingUpdate *u = q->head; u; prev = u, u = u->next) {
                if (memcmp(u->uuid, uuid, MESOS_UUID_SIZE) != 0)
                        continue;
                if (task_id && !streq(task_id, u->task_id))
                        return 0; /* uuid of another task: not ours to drop */
                if (ret_state)
                        *ret_state = u->state;
                task_acknowledged(q, u->task_id);
                unlink_update(q, prev, u);
                pending_update_free(u);
                return 1;
        }
        return 0;
}

PendingUpdate *update_queue_find(UpdateQueue *q, const uint8_t uuid[MESOS_UUID_SIZE])
{
        for (PendingUpdate *u = q->head; u; u = u->next)
                if (memcmp(u->uuid, uuid, MESOS_UUID_SIZE) == 0)
                        return u;
        return NULL;
}

PendingUpdate *update_queue_next_unsent(UpdateQueue *q)
{
        for (PendingUpdate *u = q->head; u; u = u->next)
                if (!u->sent)
                        return u;
        return NULL;
}

void update_queue_mark_sent_upto(UpdateQueue *q, uint64_t seq)
{
        for (PendingUpdate *u = q->head; u && u->seq <= seq; u = u->next)
                u->sent = true;
}

bool update_queue_has_unacked(const UpdateQueue *q, const char *task_id)
{
        for (const PendingUpdate *u = q->head; u; u = u->next)
                if (!task_id || streq(u->task_id, task_id))
                        return true;
        return false;
}

int update_queue_track_task(UpdateQueue *q, const TaskInfo *task)
{
        UnackedTask *t;

        if (!task->task_id || !task->task_id->value)
                return -EINVAL;
        if (update_queue_task_unacked(q, task->task_id->value))
                return 0;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->task_id = strdup(task->task_id->value);
        t->packed_len = protobuf_c_message_get_packed_size(&task->base);
        t->packed = malloc(t->packed_len ? t->packed_len : 1);
        if (!t->task_id || !t->packed) {
                unacked_task_free(t);
                return -ENOMEM;
        }
        protobuf_c_message_pack(&task->base, t->packed);
        t->next = q->tasks;
        q->tasks = t;
        return 0;
}

bool update_queue_task_unacked(const UpdateQueue *q, const char *task_id)
{
        for (const UnackedTask *t = q->tasks; t; t = t->next)
                if (streq(t->task_id, task_id))
                        return true;
        return false;
}

int update_queue_build_subscribe(const UpdateQueue *q, const char *framework_id, const char *executor_id,
                                 Buf *out, uint64_t *ret_last_seq)
{
        Mesos__V1__Executor__Call call = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call__Subscribe sub = MESOS__V1__EXECUTOR__CALL__SUBSCRIBE__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        size_t n_tasks = 0, n_updates = 0;
        uint64_t last_seq = 0;
        int r = 0;

        for (const UnackedTask *t = q->tasks; t; t = t->next)
                n_tasks++;
        n_updates = q->count;

        _cleanup_free_ TaskInfo **tasks = calloc(n_tasks + 1, sizeof(*tasks));
        _cleanup_free_ Mesos__V1__Executor__Call__Update *updates = calloc(n_updates + 1, sizeof(*updates));
        _cleanup_free_ Mesos__V1__Executor__Call__Update **update_ptrs =
                calloc(n_updates + 1, sizeof(*update_ptrs));
        if (!tasks || !updates || !update_ptrs)
                return -ENOMEM;

        size_t i = 0;
        for (const UnackedTask *t = q->tasks; t; t = t->next) {
                tasks[i] = mesos__v1__task_info__unpack(NULL, t->packed_len, t->packed);
                if (!tasks[i]) {
                        r = -EBADMSG;
                        goto finish;
                }
                i++;
        }
        size_t j = 0;
        for (const PendingUpdate *u = q->head; u; u = u->next) {
                mesos__v1__executor__call__update__init(&updates[j]);
                updates[j].status = mesos__v1__task_status__unpack(NULL, u->packed_len, u->packed);
                if (!updates[j].status) {
                        r = -EBADMSG;
                        goto finish;
                }
                update_ptrs[j] = &updates[j];
                last_seq = u->seq;
                j++;
        }

        fid.value = (char *)framework_id;
        eid.value = (char *)executor_id;
        call.framework_id = &fid;
        call.executor_id = &eid;
        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE;
        /* always present, even when empty: an absent sub-message gets a 400 */
        call.subscribe = &sub;
        sub.n_unacknowledged_tasks = i;
        sub.unacknowledged_tasks = tasks;
        sub.n_unacknowledged_updates = j;
        sub.unacknowledged_updates = update_ptrs;
        r = mesos_pack(&call.base, out);
        if (r >= 0 && ret_last_seq)
                *ret_last_seq = last_seq;

finish:
        for (size_t k = 0; k < n_tasks; k++)
                if (tasks[k])
                        mesos__v1__task_info__free_unpacked(tasks[k], NULL);
        for (size_t k = 0; k < n_updates; k++)
                if (updates[k].status)
                        mesos__v1__task_status__free_unpacked(updates[k].status, NULL);
        return r;
}
