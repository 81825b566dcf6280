/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the unacknowledged-update memory: ordering, acknowledgement by
 * uuid, the bound during a long agent outage, and the SUBSCRIBE call that
 * carries everything unacknowledged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "updates.h"

static void make_status(TaskStatus *st, Mesos__V1__TaskID *tid, const char *task, TaskState state,
                        uint8_t uuid[MESOS_UUID_SIZE])
{
        mesos__v1__task_status__init(st);
        mesos__v1__task_id__init(tid);
        tid->value = (char *)task;
        st->task_id = tid;
        st->state = state;
        mesos_uuid_generate(uuid);
        st->has_uuid = true;
        st->uuid.data = uuid;
        st->uuid.len = MESOS_UUID_SIZE;
        st->has_source = true;
        st->source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
}

static void test_order_and_ack(void **state)
{
        UpdateQueue q;
        TaskStatus st;
        Mesos__V1__TaskID tid;
        uint8_t u1[16], u2[16], u3[16];
        TaskState acked;

        update_queue_init(&q);
        make_status(&st, &tid, "T1", TASK_STATE(TASK_STARTING), u1);
        assert_int_equal(update_queue_push(&q, &st, NULL), 0);
        make_status(&st, &tid, "T1", TASK_STATE(TASK_RUNNING), u2);
        assert_int_equal(update_queue_push(&q, &st, NULL), 0);
        make_status(&st, &tid, "T1", TASK_STATE(TASK_FINISHED), u3);
        assert_int_equal(update_queue_push(&q, &st, NULL), 0);

        PendingUpdate *u = update_queue_next_unsent(&q);
        assert_int_equal(u->state, TASK_STATE(TASK_STARTING));
        u->sent = true;
        assert_int_equal(update_queue_next_unsent(&q)->state, TASK_STATE(TASK_RUNNING));

        /* an ack of the wrong task or an unknown uuid changes nothing */
        assert_int_equal(update_queue_ack(&q, "T2", u2, 16, &acked), 0);
        uint8_t bogus[16] = { 0 };
        assert_int_equal(update_queue_ack(&q, "T1", bogus, 16, &acked), 0);
        assert_int_equal(update_queue_ack(&q, "T1", u2, 15, &acked), 0);
        assert_int_equal(q.count, 3);

        assert_int_equal(update_queue_ack(&q, "T1", u2, 16, &acked), 1);
        assert_int_equal(acked, TASK_STATE(TASK_RUNNING));
        assert_int_equal(q.count, 2);
        /* acknowledged updates are never resent */
        assert_int_equal(update_queue_ack(&q, "T1", u2, 16, &acked), 0);
        assert_true(update_queue_has_unacked(&q, "T1"));
        assert_int_equal(update_queue_ack(&q, "T1", u1, 16, &acked), 1);
        assert_int_equal(update_queue_ack(&q, "T1", u3, 16, &acked), 1);
        assert_false(update_queue_has_unacked(&q, NULL));
        assert_null(update_queue_next_unsent(&q));
        update_queue_done(&q);
}

static void test_bound_keeps_terminal(void **state)
{
        UpdateQueue q;
        TaskStatus st;
        Mesos__V1__TaskID tid;
        uint8_t u[16], term[16];

        update_queue_init(&q);
        make_status(&st, &tid, "T1", TASK_STATE(TASK_STARTING), u);
        assert_int_equal(update_queue_push(&q, &st, NULL), 0);
        for (int i = 0; i < UPDATE_QUEUE_MAX * 3; i++) {
                make_status(&st, &tid, "T1", TASK_STATE(TASK_RUNNING), u);
                assert_int_equal(update_queue_push(&q, &st, NULL), 0);
        }
        make_status(&st, &tid, "T1", TASK_STATE(TASK_KILLED), term);
        assert_int_equal(update_queue_push(&q, &st, NULL), 0);
        assert_int_equal(q.count, UPDATE_QUEUE_MAX);
        assert_true(q.dropped > 0);
        /* the terminal update is still there, last */
        assert_int_equal(q.tail->state, TASK_STATE(TASK_KILLED));
        assert_memory_equal(q.tail->uuid, term, 16);
        update_queue_done(&q);
}

static void test_subscribe_carries_unacked(void **state)
{
        UpdateQueue q;
        TaskStatus st;
        Mesos__V1__TaskID tid;
        TaskInfo ti = MESOS__V1__TASK_INFO__INIT;
        Mesos__V1__TaskID ttid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        uint8_t u1[16], u2[16];
        Buf body = BUF_INIT(MESOS_MESSAGE_MAX);
        uint64_t last = 99;

        update_queue_init(&q);
        /* empty: still a SUBSCRIBE with the sub-message present */
        assert_int_equal(update_queue_build_subscribe(&q, "F1", "E1", &body, &last), 0);
        Mesos__V1__Executor__Call *call =
                mesos__v1__executor__call__unpack(NULL, body.len, (const uint8_t *)body.data);
        assert_non_null(call);
        assert_int_equal(call->type, MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE);
        assert_non_null(call->subscribe);
        assert_int_equal(call->subscribe->n_unacknowledged_updates, 0);
        assert_int_equal(last, 0);
        mesos__v1__executor__call__free_unpacked(call, NULL);
        buf_reset(&body);

        ttid.value = "T1";
        aid.value = "A1";
        ti.name = "t";
        ti.task_id = &ttid;
        ti.agent_id = &aid;
        assert_int_equal(update_queue_track_task(&q, &ti), 0);
        assert_int_equal(update_queue_track_task(&q, &ti), 0); /* once only */
        make_status(&st, &tid, "T1", TASK_STATE(TASK_STARTING), u1);
        update_queue_push(&q, &st, NULL);
        make_status(&st, &tid, "T1", TASK_STATE(TASK_RUNNING), u2);
        update_queue_push(&q, &st, NULL);

        assert_int_equal(update_queue_build_subscribe(&q, "F1", "E1", &body, &last), 0);
        call = mesos__v1__executor__call__unpack(NULL, body.len, (const uint8_t *)body.data);
        assert_non_null(call);
        assert_string_equal(call->framework_id->value, "F1");
        assert_string_equal(call->executor_id->value, "E1");
        assert_int_equal(call->subscribe->n_unacknowledged_tasks, 1);
        assert_string_equal(call->subscribe->unacknowledged_tasks[0]->task_id->value, "T1");
        assert_int_equal(call->subscribe->n_unacknowledged_updates, 2);
        assert_int_equal(call->subscribe->unacknowledged_updates[0]->status->state,
                         TASK_STATE(TASK_STARTING));
        assert_memory_equal(call->subscribe->unacknowledged_updates[1]->status->uuid.data, u2, 16);
        mesos__v1__executor__call__free_unpacked(call, NULL);

        /* marking sent up to the SUBSCRIBE's last update leaves later ones unsent */
        make_status(&st, &tid, "T1", TASK_STATE(TASK_KILLED), u1);
        update_queue_push(&q, &st, NULL);
        update_queue_mark_sent_upto(&q, last);
        assert_int_equal(update_queue_next_unsent(&q)->state, TASK_STATE(TASK_KILLED));

        /* one ack of the task's updates makes the task acknowledged */
        assert_true(update_queue_task_unacked(&q, "T1"));
        update_queue_ack(&q, "T1", u2, 16, NULL);
        assert_false(update_queue_task_unacked(&q, "T1"));
        buf_done(&body);
        update_queue_done(&q);
}

static void test_push_rejects_bad_status(void **state)
{
        UpdateQueue q;
        TaskStatus st;
        Mesos__V1__TaskID tid;
        uint8_t u[16];

        update_queue_init(&q);
        make_status(&st, &tid, "T1", TASK_STATE(TASK_RUNNING), u);
        st.uuid.len = 15;
        assert_int_equal(update_queue_push(&q, &st, NULL), -EINVAL);
        st.uuid.len = 16;
        st.task_id = NULL;
        assert_int_equal(update_queue_push(&q, &st, NULL), -EINVAL);
        assert_int_equal(q.count, 0);
        update_queue_done(&q);
}

int main(void)
{
        log_set_level(LOG_LEVEL_ERROR); /* the bound test drops hundreds of updates on purpose */
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order_and_ack),
                cmocka_unit_test(test_bound_keeps_terminal),
                cmocka_unit_test(test_subscribe_carries_unacked),
                cmocka_unit_test(test_push_rejects_bad_status),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
