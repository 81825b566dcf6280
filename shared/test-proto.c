/* SPDX-License-Identifier: Apache-2.0 */
/* Wire-compatibility tests for the protobuf-c code generated from the .proto
 * files under proto/mesos/v1: what the executor and the scheduler exchange with
 * Mesos must pack to exactly the bytes Mesos expects, and unpack from them.
 *
 * How the golden vectors were built: by hand, from the field numbers and types
 * in ../shared/PROTOCOLS.md (§2.3, §2.4, §4, §5.2, §5.3), not by running an
 * encoder. A key byte is (field number << 3) | wire type, with wire type
 * 0 = VARINT, 1 = I64 (little-endian double), 2 = LEN (a length varint, then
 * that many bytes). Each commented line of a vector is one field, written as
 * "<field number> <name>: <value>"; lines indented below a LEN field are its
 * content. Fields come in field number order, as protobuf encoders write them.
 *
 * How they were cross-checked: each vector was decoded with
 * `protoc --decode_raw`, and, independently, parsed with the Python modules
 * that `protoc --python_out` generates from proto/; the same messages built in
 * Python serialized to the same bytes. The malformed inputs were checked to be
 * refused by the Python parser too, except where noted below. Neither tool is
 * needed to run these tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>

#include "macro.h"
#include "mesos/v1/executor/executor.pb-c.h"
#include "mesos/v1/mesos.pb-c.h"
#include "mesos/v1/scheduler/scheduler.pb-c.h"

/* A status update's uuid: 16 bytes, with a 0x00 and a 0x0a (a newline and a
 * LEN key) inside to make sure nothing treats it as text. */
#define UUID_BYTES \
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f

static const uint8_t uuid16[16] = { UUID_BYTES };

/* TaskInfo, 53 bytes: the task of executor LAUNCH and of scheduler ACCEPT. */
/* clang-format off */
#define TASK_INFO_BYTES                                                                                     \
        0x0a, 0x03, 'w', 'e', 'b',                      /* 1 name: "web" */                                 \
        0x12, 0x04, 0x0a, 0x02, 'T', '1',               /* 2 task_id: { 1 value: "T1" } */                  \
        0x1a, 0x04, 0x0a, 0x02, 'A', '1',               /* 3 agent_id: { 1 value: "A1" } */                 \
        0x22, 0x13,                                     /* 4 resources: LEN 19 */                           \
        0x0a, 0x04, 'c', 'p', 'u', 's',                 /*   1 name: "cpus" */                              \
        0x10, 0x00,                                     /*   2 type: SCALAR = 0 (required: written) */      \
        0x1a, 0x09,                                     /*   3 scalar: LEN 9 */                             \
        0x09,                                           /*     1 value: I64 */                              \
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f, /*       0.5 */                                     \
        0x3a, 0x0d,                                     /* 7 command: LEN 13 */                             \
        0x1a, 0x09,                                     /*   3 value: LEN 9 */                              \
        's', 'l', 'e', 'e', 'p', ' ', '1', '0', '0',    /*     "sleep 100" */                               \
        0x30, 0x01                                      /*   6 shell: true */
/* clang-format on */

/* Builds the TaskInfo of TASK_INFO_BYTES in caller-provided storage. */
typedef struct TaskInfoParts {
        Mesos__V1__TaskInfo task;
        Mesos__V1__TaskID task_id;
        Mesos__V1__AgentID agent_id;
        Mesos__V1__Resource cpus;
        Mesos__V1__Resource *resources[1];
        Mesos__V1__Value__Scalar scalar;
        Mesos__V1__CommandInfo command;
} TaskInfoParts;

static Mesos__V1__TaskInfo *task_info_build(TaskInfoParts *p)
{
        *p = (TaskInfoParts){
                .task = MESOS__V1__TASK_INFO__INIT,
                .task_id = MESOS__V1__TASK_ID__INIT,
                .agent_id = MESOS__V1__AGENT_ID__INIT,
                .cpus = MESOS__V1__RESOURCE__INIT,
                .scalar = MESOS__V1__VALUE__SCALAR__INIT,
                .command = MESOS__V1__COMMAND_INFO__INIT,
        };
        p->task_id.value = "T1";
        p->agent_id.value = "A1";
        p->scalar.value = 0.5;
        p->cpus.name = "cpus";
        p->cpus.type = MESOS__V1__VALUE__TYPE__SCALAR;
        p->cpus.scalar = &p->scalar;
        p->resources[0] = &p->cpus;
        p->command.value = "sleep 100";
        p->command.has_shell = true;
        p->command.shell = true;
        p->task.name = "web";
        p->task.task_id = &p->task_id;
        p->task.agent_id = &p->agent_id;
        p->task.n_resources = 1;
        p->task.resources = p->resources;
        p->task.command = &p->command;
        return &p->task;
}

static void task_info_check(const Mesos__V1__TaskInfo *t)
{
        assert_non_null(t);
        assert_string_equal(t->name, "web");
        assert_string_equal(t->task_id->value, "T1");
        assert_string_equal(t->agent_id->value, "A1");
        assert_int_equal(t->n_resources, 1);
        assert_string_equal(t->resources[0]->name, "cpus");
        assert_int_equal(t->resources[0]->type, MESOS__V1__VALUE__TYPE__SCALAR);
        assert_non_null(t->resources[0]->scalar);
        assert_true(t->resources[0]->scalar->value == 0.5);
        assert_null(t->resources[0]->ranges);
        assert_non_null(t->command);
        assert_string_equal(t->command->value, "sleep 100");
        assert_true(t->command->has_shell && t->command->shell);
        assert_null(t->executor);
        assert_null(t->health_check);
        assert_false(t->has_data);
}

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
        fprintf(stderr, "%s, %zu bytes:", what, n);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "%s%02x", i % 16 ? " " : "\n    ", p[i]);
        fputc('\n', stderr);
}

static void assert_packs_to(const ProtobufCMessage *m, const uint8_t *want, size_t want_len)
{
        size_t len = protobuf_c_message_get_packed_size(m);
        _cleanup_free_ uint8_t *out = malloc(len + 1);

        assert_non_null(out);
        assert_int_equal(protobuf_c_message_pack(m, out), len);
        if (len != want_len || memcmp(out, want, len) != 0) {
                hexdump("packed", out, len);
                hexdump("golden", want, want_len);
                fail_msg("%s does not pack to its golden bytes", m->descriptor->name);
        }
}

#define ASSERT_PACKS_TO(msg, golden) assert_packs_to(&(msg).base, (golden), sizeof(golden))

static void *unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n)
{
        return protobuf_c_message_unpack(desc, NULL, n, p);
}

static void free_unpacked(void *m)
{
        if (m)
                protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- executor Call ------------------------------------------------------ */

/* clang-format off */
static const uint8_t exec_call_subscribe[] = {
        0x0a, 0x04, 0x0a, 0x02, 'E', '1',               /* 1 executor_id: { 1 value: "E1" } */
        0x12, 0x04, 0x0a, 0x02, 'F', '1',               /* 2 framework_id: { 1 value: "F1" } */
        0x18, 0x01,                                     /* 3 type: SUBSCRIBE = 1 */
        0x22, 0x00,                                     /* 4 subscribe: LEN 0, present although empty */
};
/* clang-format on */

static void test_exec_call_subscribe(void **state)
{
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__Executor__Call__Subscribe sub = MESOS__V1__EXECUTOR__CALL__SUBSCRIBE__INIT;
        Mesos__V1__Executor__Call call = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call *c;

        eid.value = "E1";
        fid.value = "F1";
        call.executor_id = &eid;
        call.framework_id = &fid;
        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE;
        call.subscribe = &sub;
        ASSERT_PACKS_TO(call, exec_call_subscribe);

        /* the pitfall: without the pointer, field 4 is simply not there */
        call.subscribe = NULL;
        assert_int_equal(protobuf_c_message_get_packed_size(&call.base), sizeof(exec_call_subscribe) - 2);

        c = unpack(&mesos__v1__executor__call__descriptor, exec_call_subscribe, sizeof(exec_call_subscribe));
        assert_non_null(c);
        assert_string_equal(c->executor_id->value, "E1");
        assert_string_equal(c->framework_id->value, "F1");
        assert_true(c->has_type);
        assert_int_equal(c->type, MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE);
        assert_non_null(c->subscribe);
        assert_int_equal(c->subscribe->n_unacknowledged_tasks, 0);
        assert_int_equal(c->subscribe->n_unacknowledged_updates, 0);
        assert_null(c->update);
        assert_null(c->message);
        free_unpacked(c);
}

/* clang-format off */
static const uint8_t exec_call_update[] = {
        0x0a, 0x04, 0x0a, 0x02, 'E', '1',               /* 1 executor_id: { 1 value: "E1" } */
        0x12, 0x04, 0x0a, 0x02, 'F', '1',               /* 2 framework_id: { 1 value: "F1" } */
        0x18, 0x02,                                     /* 3 type: UPDATE = 2 */
        0x2a, 0x2d,                                     /* 5 update: LEN 45 */
        0x0a, 0x2b,                                     /*   1 status (TaskStatus): LEN 43 */
        0x0a, 0x04, 0x0a, 0x02, 'T', '1',               /*     1 task_id: { 1 value: "T1" } */
        0x10, 0x01,                                     /*     2 state: TASK_RUNNING = 1 */
        0x1a, 0x02, 'o', 'k',                           /*     3 data: "ok" */
        0x31,                                           /*     6 timestamp: I64 */
        0x00, 0x00, 0x20, 0x40, 0xfc, 0x54, 0xd9, 0x41, /*       1700000000.5 */
        0x40, 0x01,                                     /*     8 healthy: true */
        0x48, 0x02,                                     /*     9 source: SOURCE_EXECUTOR = 2 */
        0x5a, 0x10, UUID_BYTES,                         /*     11 uuid: 16 bytes */
};
/* clang-format on */

static void test_exec_call_update(void **state)
{
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__TaskStatus status = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__Executor__Call__Update update = MESOS__V1__EXECUTOR__CALL__UPDATE__INIT;
        Mesos__V1__Executor__Call call = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call *c;
        const Mesos__V1__TaskStatus *s;

        eid.value = "E1";
        fid.value = "F1";
        tid.value = "T1";
        status.task_id = &tid;
        status.state = MESOS__V1__TASK_STATE__TASK_RUNNING;
        status.has_data = true;
        status.data = (ProtobufCBinaryData){ .len = 2, .data = (uint8_t *)"ok" };
        status.has_timestamp = true;
        status.timestamp = 1700000000.5;
        status.has_healthy = true;
        status.healthy = true;
        status.has_source = true;
        status.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
        status.has_uuid = true;
        status.uuid = (ProtobufCBinaryData){ .len = sizeof(uuid16), .data = (uint8_t *)uuid16 };
        update.status = &status;
        call.executor_id = &eid;
        call.framework_id = &fid;
        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE;
        call.update = &update;
        ASSERT_PACKS_TO(call, exec_call_update);

        /* the pitfall: without has_source, source is not sent and the agent reads SOURCE_MASTER */
        status.has_source = false;
        assert_int_equal(protobuf_c_message_get_packed_size(&call.base), sizeof(exec_call_update) - 2);

        c = unpack(&mesos__v1__executor__call__descriptor, exec_call_update, sizeof(exec_call_update));
        assert_non_null(c);
        assert_int_equal(c->type, MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE);
        assert_non_null(c->update);
        s = c->update->status;
        assert_non_null(s);
        assert_string_equal(s->task_id->value, "T1");
        assert_int_equal(s->state, MESOS__V1__TASK_STATE__TASK_RUNNING);
        assert_true(s->has_data);
        assert_int_equal(s->data.len, 2);
        assert_memory_equal(s->data.data, "ok", 2);
        assert_true(s->has_timestamp);
        assert_true(s->timestamp == 1700000000.5);
        assert_true(s->has_healthy && s->healthy);
        assert_true(s->has_source);
        assert_int_equal(s->source, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR);
        assert_true(s->has_uuid);
        assert_int_equal(s->uuid.len, 16);
        assert_memory_equal(s->uuid.data, uuid16, 16);
        assert_false(s->has_reason);
        assert_null(s->message);
        assert_null(s->agent_id);
        assert_null(c->subscribe);
        free_unpacked(c);
}

/* clang-format off */
static const uint8_t exec_call_message[] = {
        0x0a, 0x04, 0x0a, 0x02, 'E', '1',               /* 1 executor_id: { 1 value: "E1" } */
        0x12, 0x04, 0x0a, 0x02, 'F', '1',               /* 2 framework_id: { 1 value: "F1" } */
        0x18, 0x03,                                     /* 3 type: MESSAGE = 3 */
        0x32, 0x04,                                     /* 6 message: LEN 4 */
        0x12, 0x02, 'h', 'i',                           /*   2 data: "hi" (field 2, not 1) */
};
/* clang-format on */

static void test_exec_call_message(void **state)
{
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__Executor__Call__Message msg = MESOS__V1__EXECUTOR__CALL__MESSAGE__INIT;
        Mesos__V1__Executor__Call call = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call *c;
        static const uint8_t field_one[] = { 0x0a, 0x02, 'h', 'i' };

        eid.value = "E1";
        fid.value = "F1";
        msg.data = (ProtobufCBinaryData){ .len = 2, .data = (uint8_t *)"hi" };
        call.executor_id = &eid;
        call.framework_id = &fid;
        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__MESSAGE;
        call.message = &msg;
        ASSERT_PACKS_TO(call, exec_call_message);

        c = unpack(&mesos__v1__executor__call__descriptor, exec_call_message, sizeof(exec_call_message));
        assert_non_null(c);
        assert_int_equal(c->type, MESOS__V1__EXECUTOR__CALL__TYPE__MESSAGE);
        assert_non_null(c->message);
        assert_int_equal(c->message->data.len, 2);
        assert_memory_equal(c->message->data.data, "hi", 2);
        free_unpacked(c);

        /* data under field 1 is not this message's data: required field 2 is missing */
        assert_null(unpack(&mesos__v1__executor__call__message__descriptor, field_one, sizeof(field_one)));
}

/* ---- executor Event ----------------------------------------------------- */

/* clang-format off */
static const uint8_t exec_event_launch[] = {
        0x08, 0x02,                                     /* 1 type: LAUNCH = 2 */
        0x22, 0x37,                                     /* 4 launch: LEN 55 */
        0x0a, 0x35,                                     /*   1 task (TaskInfo): LEN 53 */
        TASK_INFO_BYTES,                                /*     as above */
};
/* clang-format on */

static void test_exec_event_launch(void **state)
{
        TaskInfoParts parts;
        Mesos__V1__Executor__Event__Launch launch = MESOS__V1__EXECUTOR__EVENT__LAUNCH__INIT;
        Mesos__V1__Executor__Event event = MESOS__V1__EXECUTOR__EVENT__INIT;
        Mesos__V1__Executor__Event *e;

        launch.task = task_info_build(&parts);
        event.has_type = true;
        event.type = MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH;
        event.launch = &launch;
        ASSERT_PACKS_TO(event, exec_event_launch);

        e = unpack(&mesos__v1__executor__event__descriptor, exec_event_launch, sizeof(exec_event_launch));
        assert_non_null(e);
        assert_true(e->has_type);
        assert_int_equal(e->type, MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH);
        assert_non_null(e->launch);
        task_info_check(e->launch->task);
        assert_null(e->subscribed);
        assert_null(e->kill);
        free_unpacked(e);
}

/* clang-format off */
static const uint8_t exec_event_acknowledged[] = {
        0x08, 0x04,                                     /* 1 type: ACKNOWLEDGED = 4 */
        0x1a, 0x18,                                     /* 3 acknowledged: LEN 24 */
        0x0a, 0x04, 0x0a, 0x02, 'T', '1',               /*   1 task_id: { 1 value: "T1" } */
        0x12, 0x10, UUID_BYTES,                         /*   2 uuid: 16 bytes */
};
/* clang-format on */

static void test_exec_event_acknowledged(void **state)
{
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__Executor__Event__Acknowledged ack = MESOS__V1__EXECUTOR__EVENT__ACKNOWLEDGED__INIT;
        Mesos__V1__Executor__Event event = MESOS__V1__EXECUTOR__EVENT__INIT;
        Mesos__V1__Executor__Event *e;

        tid.value = "T1";
        ack.task_id = &tid;
        ack.uuid = (ProtobufCBinaryData){ .len = sizeof(uuid16), .data = (uint8_t *)uuid16 };
        event.has_type = true;
        event.type = MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED;
        event.acknowledged = &ack;
        ASSERT_PACKS_TO(event, exec_event_acknowledged);

        e = unpack(&mesos__v1__executor__event__descriptor, exec_event_acknowledged,
                   sizeof(exec_event_acknowledged));
        assert_non_null(e);
        assert_int_equal(e->type, MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED);
        assert_non_null(e->acknowledged);
        assert_string_equal(e->acknowledged->task_id->value, "T1");
        assert_int_equal(e->acknowledged->uuid.len, 16);
        assert_memory_equal(e->acknowledged->uuid.data, uuid16, 16);
        free_unpacked(e);
}

/* clang-format off */
static const uint8_t exec_event_kill[] = {
        0x08, 0x03,                                     /* 1 type: KILL = 3 */
        0x2a, 0x10,                                     /* 5 kill: LEN 16 */
        0x0a, 0x04, 0x0a, 0x02, 'T', '1',               /*   1 task_id: { 1 value: "T1" } */
        0x12, 0x08,                                     /*   2 kill_policy: LEN 8 */
        0x0a, 0x06,                                     /*     1 grace_period (DurationInfo): LEN 6 */
        0x08, 0x80, 0xbc, 0xc1, 0x96, 0x0b,             /*       1 nanoseconds: 3000000000 */
};
/* clang-format on */

static void test_exec_event_kill(void **state)
{
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__DurationInfo grace = MESOS__V1__DURATION_INFO__INIT;
        Mesos__V1__KillPolicy policy = MESOS__V1__KILL_POLICY__INIT;
        Mesos__V1__Executor__Event__Kill kill = MESOS__V1__EXECUTOR__EVENT__KILL__INIT;
        Mesos__V1__Executor__Event event = MESOS__V1__EXECUTOR__EVENT__INIT;
        Mesos__V1__Executor__Event *e;

        tid.value = "T1";
        grace.nanoseconds = 3000000000LL;
        policy.grace_period = &grace;
        kill.task_id = &tid;
        kill.kill_policy = &policy;
        event.has_type = true;
        event.type = MESOS__V1__EXECUTOR__EVENT__TYPE__KILL;
        event.kill = &kill;
        ASSERT_PACKS_TO(event, exec_event_kill);

        e = unpack(&mesos__v1__executor__event__descriptor, exec_event_kill, sizeof(exec_event_kill));
        assert_non_null(e);
        assert_int_equal(e->type, MESOS__V1__EXECUTOR__EVENT__TYPE__KILL);
        assert_non_null(e->kill);
        assert_string_equal(e->kill->task_id->value, "T1");
        assert_non_null(e->kill->kill_policy);
        assert_non_null(e->kill->kill_policy->grace_period);
        assert_int_equal(e->kill->kill_policy->grace_period->nanoseconds, 3000000000LL);
        free_unpacked(e);
}

/* ---- scheduler Call ----------------------------------------------------- */

/* clang-format off */
static const uint8_t sched_call_subscribe[] = {
                                                        /* no 1 framework_id: the first SUBSCRIBE has none */
        0x10, 0x01,                                     /* 2 type: SUBSCRIBE = 1 */
        0x1a, 0x1e,                                     /* 3 subscribe: LEN 30 */
        0x0a, 0x1c,                                     /*   1 framework_info: LEN 28 */
        0x0a, 0x04, 'r', 'o', 'o', 't',                 /*     1 user: "root" */
        0x12, 0x05, 'p', 'a', 'c', 'e', 'r',            /*     2 name: "pacer" */
        0x21,                                           /*     4 failover_timeout: I64 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x75, 0x22, 0x41, /*       604800.0 */
        0x28, 0x01,                                     /*     5 checkpoint: true */
                                                        /*     no 6 role: its default "*" is left unset */
        0x52, 0x02,                                     /*     10 capabilities: LEN 2 */
        0x08, 0x02,                                     /*       1 type: TASK_KILLING_STATE = 2 */
};
/* clang-format on */

static void test_sched_call_subscribe(void **state)
{
        Mesos__V1__FrameworkInfo__Capability cap = MESOS__V1__FRAMEWORK_INFO__CAPABILITY__INIT;
        Mesos__V1__FrameworkInfo__Capability *caps[] = { &cap };
        Mesos__V1__FrameworkInfo info = MESOS__V1__FRAMEWORK_INFO__INIT;
        Mesos__V1__Scheduler__Call__Subscribe sub = MESOS__V1__SCHEDULER__CALL__SUBSCRIBE__INIT;
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call *c;
        const Mesos__V1__FrameworkInfo *fi;

        cap.has_type = true;
        cap.type = MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__TASK_KILLING_STATE;
        info.user = "root";
        info.name = "pacer";
        info.has_failover_timeout = true;
        info.failover_timeout = 604800.0;
        info.has_checkpoint = true;
        info.checkpoint = true;
        info.n_capabilities = 1;
        info.capabilities = caps;
        sub.framework_info = &info;
        call.has_type = true;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__SUBSCRIBE;
        call.subscribe = &sub;
        ASSERT_PACKS_TO(call, sched_call_subscribe);

        c = unpack(&mesos__v1__scheduler__call__descriptor, sched_call_subscribe,
                   sizeof(sched_call_subscribe));
        assert_non_null(c);
        assert_null(c->framework_id);
        assert_int_equal(c->type, MESOS__V1__SCHEDULER__CALL__TYPE__SUBSCRIBE);
        assert_non_null(c->subscribe);
        fi = c->subscribe->framework_info;
        assert_non_null(fi);
        assert_string_equal(fi->user, "root");
        assert_string_equal(fi->name, "pacer");
        assert_null(fi->id);
        assert_true(fi->has_failover_timeout);
        assert_true(fi->failover_timeout == 604800.0);
        assert_true(fi->has_checkpoint && fi->checkpoint);
        assert_int_equal(fi->n_capabilities, 1);
        assert_true(fi->capabilities[0]->has_type);
        assert_int_equal(fi->capabilities[0]->type,
                         MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__TASK_KILLING_STATE);
        assert_int_equal(fi->n_roles, 0);
        free_unpacked(c);
}

/* clang-format off */
static const uint8_t sched_call_accept[] = {
        0x0a, 0x04, 0x0a, 0x02, 'F', '1',               /* 1 framework_id: { 1 value: "F1" } */
        0x10, 0x03,                                     /* 2 type: ACCEPT = 3 */
        0x22, 0x4e,                                     /* 4 accept: LEN 78 */
        0x0a, 0x04, 0x0a, 0x02, 'O', '1',               /*   1 offer_ids: { 1 value: "O1" } */
        0x12, 0x3b,                                     /*   2 operations: LEN 59 */
        0x08, 0x01,                                     /*     1 type: LAUNCH = 1 */
        0x12, 0x37,                                     /*     2 launch: LEN 55 */
        0x0a, 0x35,                                     /*       1 task_infos: LEN 53 */
        TASK_INFO_BYTES,                                /*         as above */
        0x1a, 0x09,                                     /*   3 filters: LEN 9 */
        0x09,                                           /*     1 refuse_seconds: I64 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x40, /*       10.0 */
};
/* clang-format on */

static void test_sched_call_accept(void **state)
{
        TaskInfoParts parts;
        Mesos__V1__TaskInfo *tasks[1];
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__OfferID oid = MESOS__V1__OFFER_ID__INIT;
        Mesos__V1__OfferID *oids[] = { &oid };
        Mesos__V1__Offer__Operation__Launch launch = MESOS__V1__OFFER__OPERATION__LAUNCH__INIT;
        Mesos__V1__Offer__Operation op = MESOS__V1__OFFER__OPERATION__INIT;
        Mesos__V1__Offer__Operation *ops[] = { &op };
        Mesos__V1__Filters filters = MESOS__V1__FILTERS__INIT;
        Mesos__V1__Scheduler__Call__Accept accept = MESOS__V1__SCHEDULER__CALL__ACCEPT__INIT;
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call *c;
        const Mesos__V1__Scheduler__Call__Accept *a;

        fid.value = "F1";
        oid.value = "O1";
        tasks[0] = task_info_build(&parts);
        launch.n_task_infos = 1;
        launch.task_infos = tasks;
        op.has_type = true;
        op.type = MESOS__V1__OFFER__OPERATION__TYPE__LAUNCH;
        op.launch = &launch;
        filters.has_refuse_seconds = true;
        filters.refuse_seconds = 10.0;
        accept.n_offer_ids = 1;
        accept.offer_ids = oids;
        accept.n_operations = 1;
        accept.operations = ops;
        accept.filters = &filters;
        call.framework_id = &fid;
        call.has_type = true;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT;
        call.accept = &accept;
        ASSERT_PACKS_TO(call, sched_call_accept);

        c = unpack(&mesos__v1__scheduler__call__descriptor, sched_call_accept, sizeof(sched_call_accept));
        assert_non_null(c);
        assert_string_equal(c->framework_id->value, "F1");
        assert_int_equal(c->type, MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT);
        a = c->accept;
        assert_non_null(a);
        assert_int_equal(a->n_offer_ids, 1);
        assert_string_equal(a->offer_ids[0]->value, "O1");
        assert_int_equal(a->n_operations, 1);
        assert_true(a->operations[0]->has_type);
        assert_int_equal(a->operations[0]->type, MESOS__V1__OFFER__OPERATION__TYPE__LAUNCH);
        assert_non_null(a->operations[0]->launch);
        assert_int_equal(a->operations[0]->launch->n_task_infos, 1);
        task_info_check(a->operations[0]->launch->task_infos[0]);
        assert_non_null(a->filters);
        assert_true(a->filters->has_refuse_seconds);
        assert_true(a->filters->refuse_seconds == 10.0);
        free_unpacked(c);
}

/* clang-format off */
static const uint8_t sched_call_decline[] = {
        0x0a, 0x04, 0x0a, 0x02, 'F', '1',               /* 1 framework_id: { 1 value: "F1" } */
        0x10, 0x04,                                     /* 2 type: DECLINE = 4 */
        0x2a, 0x11,                                     /* 5 decline: LEN 17 */
        0x0a, 0x04, 0x0a, 0x02, 'O', '1',               /*   1 offer_ids: { 1 value: "O1" } */
        0x12, 0x09,                                     /*   2 filters: LEN 9 */
        0x09,                                           /*     1 refuse_seconds: I64 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4e, 0x40, /*       60.0 */
};
/* clang-format on */

static void test_sched_call_decline(void **state)
{
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__OfferID oid = MESOS__V1__OFFER_ID__INIT;
        Mesos__V1__OfferID *oids[] = { &oid };
        Mesos__V1__Filters filters = MESOS__V1__FILTERS__INIT;
        Mesos__V1__Scheduler__Call__Decline decline = MESOS__V1__SCHEDULER__CALL__DECLINE__INIT;
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call *c;

        fid.value = "F1";
        oid.value = "O1";
        filters.has_refuse_seconds = true;
        filters.refuse_seconds = 60.0;
        decline.n_offer_ids = 1;
        decline.offer_ids = oids;
        decline.filters = &filters;
        call.framework_id = &fid;
        call.has_type = true;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE;
        call.decline = &decline;
        ASSERT_PACKS_TO(call, sched_call_decline);

        c = unpack(&mesos__v1__scheduler__call__descriptor, sched_call_decline, sizeof(sched_call_decline));
        assert_non_null(c);
        assert_int_equal(c->type, MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE);
        assert_non_null(c->decline);
        assert_int_equal(c->decline->n_offer_ids, 1);
        assert_string_equal(c->decline->offer_ids[0]->value, "O1");
        assert_true(c->decline->filters->has_refuse_seconds);
        assert_true(c->decline->filters->refuse_seconds == 60.0);
        free_unpacked(c);
}

/* clang-format off */
static const uint8_t sched_call_acknowledge[] = {
        0x0a, 0x04, 0x0a, 0x02, 'F', '1',               /* 1 framework_id: { 1 value: "F1" } */
        0x10, 0x08,                                     /* 2 type: ACKNOWLEDGE = 8 */
        0x42, 0x1e,                                     /* 8 acknowledge: LEN 30 */
        0x0a, 0x04, 0x0a, 0x02, 'A', '1',               /*   1 agent_id: { 1 value: "A1" } */
        0x12, 0x04, 0x0a, 0x02, 'T', '1',               /*   2 task_id: { 1 value: "T1" } */
        0x1a, 0x10, UUID_BYTES,                         /*   3 uuid: 16 bytes */
};
/* clang-format on */

static void test_sched_call_acknowledge(void **state)
{
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__Scheduler__Call__Acknowledge ack = MESOS__V1__SCHEDULER__CALL__ACKNOWLEDGE__INIT;
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call *c;

        fid.value = "F1";
        aid.value = "A1";
        tid.value = "T1";
        ack.agent_id = &aid;
        ack.task_id = &tid;
        ack.uuid = (ProtobufCBinaryData){ .len = sizeof(uuid16), .data = (uint8_t *)uuid16 };
        call.framework_id = &fid;
        call.has_type = true;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE;
        call.acknowledge = &ack;
        ASSERT_PACKS_TO(call, sched_call_acknowledge);

        c = unpack(&mesos__v1__scheduler__call__descriptor, sched_call_acknowledge,
                   sizeof(sched_call_acknowledge));
        assert_non_null(c);
        assert_int_equal(c->type, MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE);
        assert_non_null(c->acknowledge);
        assert_string_equal(c->acknowledge->agent_id->value, "A1");
        assert_string_equal(c->acknowledge->task_id->value, "T1");
        assert_int_equal(c->acknowledge->uuid.len, 16);
        assert_memory_equal(c->acknowledge->uuid.data, uuid16, 16);
        free_unpacked(c);
}

/* clang-format off */
static const uint8_t sched_call_reconcile_implicit[] = {
        0x0a, 0x04, 0x0a, 0x02, 'F', '1',               /* 1 framework_id: { 1 value: "F1" } */
        0x10, 0x09,                                     /* 2 type: RECONCILE = 9 */
        0x4a, 0x00,                                     /* 9 reconcile: LEN 0 (no tasks: implicit) */
};
/* clang-format on */

/* clang-format off */
static const uint8_t sched_call_reconcile_explicit[] = {
        0x0a, 0x04, 0x0a, 0x02, 'F', '1',               /* 1 framework_id: { 1 value: "F1" } */
        0x10, 0x09,                                     /* 2 type: RECONCILE = 9 */
        0x4a, 0x0e,                                     /* 9 reconcile: LEN 14 */
        0x0a, 0x0c,                                     /*   1 tasks: LEN 12 */
        0x0a, 0x04, 0x0a, 0x02, 'T', '1',               /*     1 task_id: { 1 value: "T1" } */
        0x12, 0x04, 0x0a, 0x02, 'A', '1',               /*     2 agent_id: { 1 value: "A1" } */
};
/* clang-format on */

static void test_sched_call_reconcile(void **state)
{
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__Scheduler__Call__Reconcile__Task task = MESOS__V1__SCHEDULER__CALL__RECONCILE__TASK__INIT;
        Mesos__V1__Scheduler__Call__Reconcile__Task *tasks[] = { &task };
        Mesos__V1__Scheduler__Call__Reconcile rec = MESOS__V1__SCHEDULER__CALL__RECONCILE__INIT;
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call *c;

        fid.value = "F1";
        call.framework_id = &fid;
        call.has_type = true;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__RECONCILE;
        call.reconcile = &rec;
        ASSERT_PACKS_TO(call, sched_call_reconcile_implicit);

        tid.value = "T1";
        aid.value = "A1";
        task.task_id = &tid;
        task.agent_id = &aid;
        rec.n_tasks = 1;
        rec.tasks = tasks;
        ASSERT_PACKS_TO(call, sched_call_reconcile_explicit);

        c = unpack(&mesos__v1__scheduler__call__descriptor, sched_call_reconcile_implicit,
                   sizeof(sched_call_reconcile_implicit));
        assert_non_null(c);
        assert_int_equal(c->type, MESOS__V1__SCHEDULER__CALL__TYPE__RECONCILE);
        assert_non_null(c->reconcile);
        assert_int_equal(c->reconcile->n_tasks, 0);
        free_unpacked(c);

        c = unpack(&mesos__v1__scheduler__call__descriptor, sched_call_reconcile_explicit,
                   sizeof(sched_call_reconcile_explicit));
        assert_non_null(c);
        assert_int_equal(c->reconcile->n_tasks, 1);
        assert_string_equal(c->reconcile->tasks[0]->task_id->value, "T1");
        assert_string_equal(c->reconcile->tasks[0]->agent_id->value, "A1");
        free_unpacked(c);
}

/* ---- scheduler Event ---------------------------------------------------- */

/* clang-format off */
static const uint8_t sched_event_subscribed[] = {
        0x08, 0x01,                                     /* 1 type: SUBSCRIBED = 1 */
        0x12, 0x0f,                                     /* 2 subscribed: LEN 15 */
        0x0a, 0x04, 0x0a, 0x02, 'F', '1',               /*   1 framework_id: { 1 value: "F1" } */
        0x11,                                           /*   2 heartbeat_interval_seconds: I64 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2e, 0x40, /*     15.0 */
};
/* clang-format on */

static void test_sched_event_subscribed(void **state)
{
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__Scheduler__Event__Subscribed sub = MESOS__V1__SCHEDULER__EVENT__SUBSCRIBED__INIT;
        Mesos__V1__Scheduler__Event event = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event *e;

        fid.value = "F1";
        sub.framework_id = &fid;
        sub.has_heartbeat_interval_seconds = true;
        sub.heartbeat_interval_seconds = 15.0;
        event.has_type = true;
        event.type = MESOS__V1__SCHEDULER__EVENT__TYPE__SUBSCRIBED;
        event.subscribed = &sub;
        ASSERT_PACKS_TO(event, sched_event_subscribed);

        e = unpack(&mesos__v1__scheduler__event__descriptor, sched_event_subscribed,
                   sizeof(sched_event_subscribed));
        assert_non_null(e);
        assert_int_equal(e->type, MESOS__V1__SCHEDULER__EVENT__TYPE__SUBSCRIBED);
        assert_string_equal(e->subscribed->framework_id->value, "F1");
        assert_true(e->subscribed->has_heartbeat_interval_seconds);
        assert_true(e->subscribed->heartbeat_interval_seconds == 15.0);
        assert_null(e->subscribed->master_info);
        free_unpacked(e);
}

/* clang-format off */
static const uint8_t sched_event_offers[] = {
        0x08, 0x02,                                     /* 1 type: OFFERS = 2 */
        0x1a, 0x2f,                                     /* 3 offers: LEN 47 */
        0x0a, 0x2d,                                     /*   1 offers (Offer): LEN 45 */
        0x0a, 0x04, 0x0a, 0x02, 'O', '1',               /*     1 id: { 1 value: "O1" } */
        0x12, 0x04, 0x0a, 0x02, 'F', '1',               /*     2 framework_id: { 1 value: "F1" } */
        0x1a, 0x04, 0x0a, 0x02, 'A', '1',               /*     3 agent_id: { 1 value: "A1" } */
        0x22, 0x02, 'h', '1',                           /*     4 hostname: "h1" */
        0x2a, 0x15,                                     /*     5 resources: LEN 21 */
        0x0a, 0x05, 'p', 'o', 'r', 't', 's',            /*       1 name: "ports" */
        0x10, 0x01,                                     /*       2 type: RANGES = 1 */
        0x22, 0x0a,                                     /*       4 ranges: LEN 10 */
        0x0a, 0x08,                                     /*         1 range: LEN 8 */
        0x08, 0x98, 0xf2, 0x01,                         /*           1 begin: 31000 */
        0x10, 0x80, 0xfa, 0x01,                         /*           2 end: 32000 */
};
/* clang-format on */

static void test_sched_event_offers(void **state)
{
        Mesos__V1__OfferID oid = MESOS__V1__OFFER_ID__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__Value__Range range = MESOS__V1__VALUE__RANGE__INIT;
        Mesos__V1__Value__Range *range_list[] = { &range };
        Mesos__V1__Value__Ranges ranges = MESOS__V1__VALUE__RANGES__INIT;
        Mesos__V1__Resource ports = MESOS__V1__RESOURCE__INIT;
        Mesos__V1__Resource *resources[] = { &ports };
        Mesos__V1__Offer offer = MESOS__V1__OFFER__INIT;
        Mesos__V1__Offer *offer_list[] = { &offer };
        Mesos__V1__Scheduler__Event__Offers offers = MESOS__V1__SCHEDULER__EVENT__OFFERS__INIT;
        Mesos__V1__Scheduler__Event event = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event *e;
        const Mesos__V1__Offer *o;
        const Mesos__V1__Resource *r;

        oid.value = "O1";
        fid.value = "F1";
        aid.value = "A1";
        range.begin = 31000;
        range.end = 32000;
        ranges.n_range = 1;
        ranges.range = range_list;
        ports.name = "ports";
        ports.type = MESOS__V1__VALUE__TYPE__RANGES;
        ports.ranges = &ranges;
        offer.id = &oid;
        offer.framework_id = &fid;
        offer.agent_id = &aid;
        offer.hostname = "h1";
        offer.n_resources = 1;
        offer.resources = resources;
        offers.n_offers = 1;
        offers.offers = offer_list;
        event.has_type = true;
        event.type = MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS;
        event.offers = &offers;
        ASSERT_PACKS_TO(event, sched_event_offers);

        e = unpack(&mesos__v1__scheduler__event__descriptor, sched_event_offers, sizeof(sched_event_offers));
        assert_non_null(e);
        assert_int_equal(e->type, MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS);
        assert_non_null(e->offers);
        assert_int_equal(e->offers->n_offers, 1);
        o = e->offers->offers[0];
        assert_string_equal(o->id->value, "O1");
        assert_string_equal(o->framework_id->value, "F1");
        assert_string_equal(o->agent_id->value, "A1");
        assert_string_equal(o->hostname, "h1");
        assert_int_equal(o->n_resources, 1);
        r = o->resources[0];
        assert_string_equal(r->name, "ports");
        assert_int_equal(r->type, MESOS__V1__VALUE__TYPE__RANGES);
        assert_null(r->scalar);
        assert_non_null(r->ranges);
        assert_int_equal(r->ranges->n_range, 1);
        assert_int_equal(r->ranges->range[0]->begin, 31000);
        assert_int_equal(r->ranges->range[0]->end, 32000);
        assert_int_equal(r->base.n_unknown_fields, 0);
        free_unpacked(e);
}

/* clang-format off */
static const uint8_t sched_event_update[] = {
        0x08, 0x04,                                     /* 1 type: UPDATE = 4 */
        0x2a, 0x28,                                     /* 5 update: LEN 40 */
        0x0a, 0x26,                                     /*   1 status (TaskStatus): LEN 38 */
        0x0a, 0x04, 0x0a, 0x02, 'T', '1',               /*     1 task_id: { 1 value: "T1" } */
        0x10, 0x01,                                     /*     2 state: TASK_RUNNING = 1 */
        0x2a, 0x04, 0x0a, 0x02, 'A', '1',               /*     5 agent_id: { 1 value: "A1" } */
        0x40, 0x00,                                     /*     8 healthy: false (set, so written) */
        0x48, 0x02,                                     /*     9 source: SOURCE_EXECUTOR = 2 */
        0x50, 0x1d,                                     /*     10 reason: 29 = REASON_TASK_HEALTH_CHECK_ */
                                                        /*                       STATUS_UPDATED */
        0x5a, 0x10, UUID_BYTES,                         /*     11 uuid: 16 bytes */
};
/* clang-format on */

static void test_sched_event_update(void **state)
{
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__TaskStatus status = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__Scheduler__Event__Update update = MESOS__V1__SCHEDULER__EVENT__UPDATE__INIT;
        Mesos__V1__Scheduler__Event event = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event *e;
        const Mesos__V1__TaskStatus *s;

        tid.value = "T1";
        aid.value = "A1";
        status.task_id = &tid;
        status.state = MESOS__V1__TASK_STATE__TASK_RUNNING;
        status.agent_id = &aid;
        status.has_healthy = true;
        status.healthy = false;
        status.has_source = true;
        status.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
        status.has_reason = true;
        status.reason = MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED;
        status.has_uuid = true;
        status.uuid = (ProtobufCBinaryData){ .len = sizeof(uuid16), .data = (uint8_t *)uuid16 };
        update.status = &status;
        event.has_type = true;
        event.type = MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE;
        event.update = &update;
        ASSERT_PACKS_TO(event, sched_event_update);

        e = unpack(&mesos__v1__scheduler__event__descriptor, sched_event_update, sizeof(sched_event_update));
        assert_non_null(e);
        assert_int_equal(e->type, MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE);
        s = e->update->status;
        assert_non_null(s);
        assert_string_equal(s->task_id->value, "T1");
        assert_int_equal(s->state, MESOS__V1__TASK_STATE__TASK_RUNNING);
        assert_string_equal(s->agent_id->value, "A1");
        assert_true(s->has_healthy);
        assert_false(s->healthy);
        assert_int_equal(s->source, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR);
        assert_true(s->has_reason);
        assert_int_equal(s->reason, MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED);
        assert_true(s->has_uuid);
        assert_memory_equal(s->uuid.data, uuid16, 16);
        assert_false(s->has_timestamp);
        free_unpacked(e);
}

/* ---- unknown fields ----------------------------------------------------- */

/* An offered resource carrying fields of the full Mesos Resource that Pacer's
 * proto leaves out. The scheduler copies offered resources into ACCEPT, so
 * these must come back out exactly as they came in. */
/* clang-format off */
static const uint8_t resource_with_unknown[] = {
        0x0a, 0x05, 'p', 'o', 'r', 't', 's',            /* 1 name: "ports" */
        0x10, 0x01,                                     /* 2 type: RANGES = 1 */
        0x22, 0x0a,                                     /* 4 ranges: LEN 10 */
        0x0a, 0x08,                                     /*   1 range: LEN 8 */
        0x08, 0x98, 0xf2, 0x01,                         /*     1 begin: 31000 */
        0x10, 0x80, 0xfa, 0x01,                         /*     2 end: 32000 */
        0x4a, 0x00,                                     /* 9 revocable: LEN 0 (unknown) */
        0x62, 0x04, 0x0a, 0x02, 'r', 'p',               /* 12 provider_id: { 1 value: "rp" } (unknown) */
};

/* Fields no version of the Call has, appended to an ACCEPT. */
static const uint8_t call_unknown_tail[] = {
        0xf8, 0x01, 0x07,                               /* 31: VARINT 7 (unknown) */
        0x98, 0x02, 0x01,                               /* 35: VARINT 1 (unknown) */
};
/* clang-format on */

static void test_unknown_fields_survive(void **state)
{
        uint8_t extended[sizeof(sched_call_accept) + sizeof(call_unknown_tail)];
        TaskInfoParts parts;
        Mesos__V1__Resource *r, *copied[1];
        Mesos__V1__TaskInfo *task;
        Mesos__V1__Scheduler__Call *c;
        size_t len;
        _cleanup_free_ uint8_t *out = NULL;

        r = unpack(&mesos__v1__resource__descriptor, resource_with_unknown, sizeof(resource_with_unknown));
        assert_non_null(r);
        assert_string_equal(r->name, "ports");
        assert_int_equal(r->base.n_unknown_fields, 2);
        /* unpack → pack gives the same bytes */
        assert_packs_to(&r->base, resource_with_unknown, sizeof(resource_with_unknown));

        /* copied into a TaskInfo, the resource is written with its unknown fields */
        task = task_info_build(&parts);
        copied[0] = r;
        task->resources = copied;
        len = protobuf_c_message_get_packed_size(&task->base);
        out = malloc(len);
        assert_non_null(out);
        assert_int_equal(protobuf_c_message_pack(&task->base, out), len);
        assert_non_null(memmem(out, len, resource_with_unknown, sizeof(resource_with_unknown)));
        free_unpacked(r);

        /* the same for a whole Call with unknown fields after the known ones */
        memcpy(extended, sched_call_accept, sizeof(sched_call_accept));
        memcpy(extended + sizeof(sched_call_accept), call_unknown_tail, sizeof(call_unknown_tail));
        c = unpack(&mesos__v1__scheduler__call__descriptor, extended, sizeof(extended));
        assert_non_null(c);
        assert_int_equal(c->base.n_unknown_fields, 2);
        task_info_check(c->accept->operations[0]->launch->task_infos[0]);
        assert_packs_to(&c->base, extended, sizeof(extended));
        free_unpacked(c);
}

/* An unknown field before a known one: protobuf-c writes the known fields
 * first and the unknown ones after them (as the reference implementation does):
 * the same fields in another order, which any decoder accepts. */
/* clang-format off */
static const uint8_t resource_unknown_first[] = {
        0x0a, 0x04, 'c', 'p', 'u', 's',                 /* 1 name: "cpus" */
        0x10, 0x00,                                     /* 2 type: SCALAR = 0 */
        0x1a, 0x09,                                     /* 3 scalar: LEN 9 */
        0x09,                                           /*   1 value: I64 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f, /*     0.5 */
        0x4a, 0x00,                                     /* 9 revocable: LEN 0 (unknown) */
        0x5a, 0x03, 0x0a, 0x01, '*',                    /* 11 allocation_info: { 1 role: "*" } */
};

static const uint8_t resource_unknown_last[] = {
        0x0a, 0x04, 'c', 'p', 'u', 's',                 /* 1 name: "cpus" */
        0x10, 0x00,                                     /* 2 type: SCALAR = 0 */
        0x1a, 0x09,                                     /* 3 scalar: LEN 9 */
        0x09,                                           /*   1 value: I64 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f, /*     0.5 */
        0x5a, 0x03, 0x0a, 0x01, '*',                    /* 11 allocation_info: { 1 role: "*" } */
        0x4a, 0x00,                                     /* 9 revocable: LEN 0 (unknown) */
};
/* clang-format on */

static void test_unknown_field_before_known(void **state)
{
        Mesos__V1__Resource *r;

        r = unpack(&mesos__v1__resource__descriptor, resource_unknown_first, sizeof(resource_unknown_first));
        assert_non_null(r);
        assert_int_equal(r->base.n_unknown_fields, 1);
        assert_non_null(r->allocation_info);
        assert_string_equal(r->allocation_info->role, "*");
        assert_packs_to(&r->base, resource_unknown_last, sizeof(resource_unknown_last));
        free_unpacked(r);
}

/* An event type Pacer's proto names but whose payload it leaves out. */
/* clang-format off */
static const uint8_t sched_event_inverse_offers[] = {
        0x08, 0x09,                                     /* 1 type: INVERSE_OFFERS = 9 */
        0x4a, 0x08,                                     /* 9 inverse_offers: LEN 8 (unknown) */
        0x0a, 0x06,                                     /*   1 inverse_offers: LEN 6 */
        0x0a, 0x04, 0x0a, 0x02, 'I', '1',               /*     1 id: { 1 value: "I1" } */
};

/* An event type newer than Pacer's proto: protobuf-c keeps the number in the
 * enum field (the reference implementation would move it to the unknown
 * fields and leave type unset), so a switch on it needs a default branch. */
static const uint8_t sched_event_future[] = {
        0x08, 0x63,                                     /* 1 type: 99 (no such type yet) */
        0xa2, 0x06, 0x01, 'x',                          /* 100: LEN 1 "x" (unknown) */
};
/* clang-format on */

static void test_unknown_event(void **state)
{
        Mesos__V1__Scheduler__Event *e;

        e = unpack(&mesos__v1__scheduler__event__descriptor, sched_event_inverse_offers,
                   sizeof(sched_event_inverse_offers));
        assert_non_null(e);
        assert_int_equal(e->type, MESOS__V1__SCHEDULER__EVENT__TYPE__INVERSE_OFFERS);
        assert_int_equal(e->base.n_unknown_fields, 1);
        free_unpacked(e);

        e = unpack(&mesos__v1__scheduler__event__descriptor, sched_event_future, sizeof(sched_event_future));
        assert_non_null(e);
        assert_true(e->has_type);
        assert_int_equal(e->type, 99);
        assert_int_equal(e->base.n_unknown_fields, 1);
        free_unpacked(e);
}

/* ---- proto2 defaults ---------------------------------------------------- */

/* clang-format off */
static const uint8_t filters_default_set[] = {
        0x09,                                           /* 1 refuse_seconds: I64 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x40, /*   5.0 (the default, but set) */
};
/* clang-format on */

static void test_proto2_defaults(void **state)
{
        static const uint8_t agent_info[] = { 0x0a, 0x01, 'h' }; /* 1 hostname: "h" */
        Mesos__V1__HealthCheck hc_init = MESOS__V1__HEALTH_CHECK__INIT;
        Mesos__V1__Filters filters_init = MESOS__V1__FILTERS__INIT;
        Mesos__V1__CommandInfo cmd_init = MESOS__V1__COMMAND_INFO__INIT;
        Mesos__V1__HealthCheck *hc;
        Mesos__V1__CommandInfo *cmd;
        Mesos__V1__Filters *filters;
        Mesos__V1__AgentInfo *agent;

        /* an empty message reads as the declared defaults, flagged as unset */
        hc = unpack(&mesos__v1__health_check__descriptor, (const uint8_t *)"", 0);
        assert_non_null(hc);
        assert_false(hc->has_delay_seconds);
        assert_true(hc->delay_seconds == 15.0);
        assert_false(hc->has_interval_seconds);
        assert_true(hc->interval_seconds == 10.0);
        assert_false(hc->has_timeout_seconds);
        assert_true(hc->timeout_seconds == 20.0);
        assert_false(hc->has_consecutive_failures);
        assert_int_equal(hc->consecutive_failures, 3);
        assert_false(hc->has_grace_period_seconds);
        assert_true(hc->grace_period_seconds == 10.0);
        assert_false(hc->has_type);
        assert_null(hc->command);
        free_unpacked(hc);

        cmd = unpack(&mesos__v1__command_info__descriptor, (const uint8_t *)"", 0);
        assert_non_null(cmd);
        assert_false(cmd->has_shell);
        assert_true(cmd->shell);
        assert_null(cmd->value);
        free_unpacked(cmd);

        filters = unpack(&mesos__v1__filters__descriptor, (const uint8_t *)"", 0);
        assert_non_null(filters);
        assert_false(filters->has_refuse_seconds);
        assert_true(filters->refuse_seconds == 5.0);
        free_unpacked(filters);

        agent = unpack(&mesos__v1__agent_info__descriptor, agent_info, sizeof(agent_info));
        assert_non_null(agent);
        assert_false(agent->has_port);
        assert_int_equal(agent->port, 5051);
        free_unpacked(agent);

        /* the same defaults are in a fresh struct, and are not sent: the peer
         * applies its own default to an absent field */
        assert_true(hc_init.delay_seconds == 15.0);
        assert_int_equal(protobuf_c_message_get_packed_size(&hc_init.base), 0);
        assert_true(filters_init.refuse_seconds == 5.0);
        assert_int_equal(protobuf_c_message_get_packed_size(&filters_init.base), 0);
        assert_true(cmd_init.shell);
        assert_int_equal(protobuf_c_message_get_packed_size(&cmd_init.base), 0);

        /* a value set explicitly is sent even when it equals the default */
        filters_init.has_refuse_seconds = true;
        ASSERT_PACKS_TO(filters_init, filters_default_set);
}

/* ---- malformed input ---------------------------------------------------- */

typedef struct Malformed {
        const char *what;
        const ProtobufCMessageDescriptor *desc;
        const uint8_t *bytes;
        size_t len;
} Malformed;

/* clang-format off */
#define MALFORMED(what, desc, ...) \
        { what, &(desc), (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }) }
/* clang-format on */
#define EXEC_EVENT mesos__v1__executor__event__descriptor

static void test_malformed(void **state)
{
        /* clang-format off */
        const Malformed cases[] = {
                /* 1 type: a varint with its continuation bit set, then nothing */
                MALFORMED("truncated varint", EXEC_EVENT, 0x08, 0x82),
                MALFORMED("key without a value", EXEC_EVENT, 0x08),
                MALFORMED("truncated key", EXEC_EVENT, 0x80),
                /* 2 subscribed: LEN 5, but only 2 bytes follow */
                MALFORMED("length past the end", EXEC_EVENT, 0x12, 0x05, 0x0a, 0x02),
                /* 3 acknowledged: LEN 4 { 1 task_id: LEN 6, but only 2 bytes follow } */
                MALFORMED("nested length past the end", EXEC_EVENT, 0x1a, 0x04, 0x0a, 0x06, 0x0a, 0x02),
                /* 2 subscribed: LEN 2^32 - 1 */
                MALFORMED("huge length", EXEC_EVENT, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00),
                /* 1 type: 11 varint bytes */
                MALFORMED("varint longer than 10 bytes", EXEC_EVENT,
                          0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
                /* A known field with the wrong wire type: protobuf-c refuses it
                 * (the reference implementation would keep it as an unknown
                 * field); either way it never reaches Pacer as the declared type. */
                /* 1 type as LEN 1 */
                MALFORMED("LEN where a VARINT field is declared", EXEC_EVENT, 0x0a, 0x01, 0x00),
                /* 1 type: LAUNCH, 4 launch as VARINT 1 */
                MALFORMED("VARINT where a message field is declared", EXEC_EVENT, 0x08, 0x02, 0x20, 0x01),
                /* 1 refuse_seconds as a 32-bit float */
                MALFORMED("I32 where a double is declared", mesos__v1__filters__descriptor,
                          0x0d, 0x00, 0x00, 0x00, 0x00),
                MALFORMED("wire type 7", EXEC_EVENT, 0x0f, 0x00),
                MALFORMED("field number 0", EXEC_EVENT, 0x02, 0x00),
                /* 2 framework_id, 3 type: HEARTBEAT, but no 1 executor_id */
                MALFORMED("required executor_id missing", mesos__v1__executor__call__descriptor,
                          0x12, 0x04, 0x0a, 0x02, 'F', '1', 0x18, 0x04),
                /* 1 task_id, no 2 state */
                MALFORMED("required TaskStatus.state missing", mesos__v1__task_status__descriptor,
                          0x0a, 0x04, 0x0a, 0x02, 'T', '1'),
                /* 1 type: ACKNOWLEDGED, 3 acknowledged: { 1 task_id } without 2 uuid */
                MALFORMED("required field missing one level down", EXEC_EVENT,
                          0x08, 0x04, 0x1a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 'T', '1'),
        };
        /* clang-format on */

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                void *m = unpack(cases[i].desc, cases[i].bytes, cases[i].len);
                if (m) {
                        free_unpacked(m);
                        fail_msg("%s: unpacked although malformed", cases[i].what);
                }
        }
}

typedef struct Golden {
        const ProtobufCMessageDescriptor *desc;
        const uint8_t *bytes;
        size_t len;
} Golden;

/* clang-format off */
#define GOLDEN(desc, bytes) { &(desc), (bytes), sizeof(bytes) }
/* clang-format on */

static const Golden goldens[] = {
        GOLDEN(mesos__v1__executor__call__descriptor, exec_call_subscribe),
        GOLDEN(mesos__v1__executor__call__descriptor, exec_call_update),
        GOLDEN(mesos__v1__executor__call__descriptor, exec_call_message),
        GOLDEN(EXEC_EVENT, exec_event_launch),
        GOLDEN(EXEC_EVENT, exec_event_acknowledged),
        GOLDEN(EXEC_EVENT, exec_event_kill),
        GOLDEN(mesos__v1__scheduler__call__descriptor, sched_call_subscribe),
        GOLDEN(mesos__v1__scheduler__call__descriptor, sched_call_accept),
        GOLDEN(mesos__v1__scheduler__call__descriptor, sched_call_decline),
        GOLDEN(mesos__v1__scheduler__call__descriptor, sched_call_acknowledge),
        GOLDEN(mesos__v1__scheduler__call__descriptor, sched_call_reconcile_implicit),
        GOLDEN(mesos__v1__scheduler__call__descriptor, sched_call_reconcile_explicit),
        GOLDEN(mesos__v1__scheduler__event__descriptor, sched_event_subscribed),
        GOLDEN(mesos__v1__scheduler__event__descriptor, sched_event_offers),
        GOLDEN(mesos__v1__scheduler__event__descriptor, sched_event_update),
        GOLDEN(mesos__v1__resource__descriptor, resource_with_unknown),
};

/* Every prefix and every single-byte corruption of every golden vector: the
 * unpacker may accept or refuse, but must neither crash nor leak (under ASan),
 * and a message cut inside its last field must be refused. */
static void test_corrupted_goldens(void **state)
{
        uint64_t rng = 0x9e3779b97f4a7c15ULL;

        for (size_t g = 0; g < ELEMENTSOF(goldens); g++) {
                const Golden *v = &goldens[g];
                uint8_t copy[256];

                assert_true(v->len <= sizeof(copy));
                free_unpacked(unpack(v->desc, v->bytes, v->len));
                for (size_t n = 0; n < v->len; n++) {
                        void *m = unpack(v->desc, v->bytes, n);
                        if (n == v->len - 1)
                                assert_null(m);
                        free_unpacked(m);
                }
                for (size_t i = 0; i < v->len; i++)
                        for (int k = 0; k < 8; k++) {
                                memcpy(copy, v->bytes, v->len);
                                rng ^= rng << 13;
                                rng ^= rng >> 7;
                                rng ^= rng << 17;
                                copy[i] ^= (uint8_t)(k == 0 ? 0x80 : (rng | 1));
                                free_unpacked(unpack(v->desc, copy, v->len));
                        }
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exec_call_subscribe),
                cmocka_unit_test(test_exec_call_update),
                cmocka_unit_test(test_exec_call_message),
                cmocka_unit_test(test_exec_event_launch),
                cmocka_unit_test(test_exec_event_acknowledged),
                cmocka_unit_test(test_exec_event_kill),
                cmocka_unit_test(test_sched_call_subscribe),
                cmocka_unit_test(test_sched_call_accept),
                cmocka_unit_test(test_sched_call_decline),
                cmocka_unit_test(test_sched_call_acknowledge),
                cmocka_unit_test(test_sched_call_reconcile),
                cmocka_unit_test(test_sched_event_subscribed),
                cmocka_unit_test(test_sched_event_offers),
                cmocka_unit_test(test_sched_event_update),
                cmocka_unit_test(test_unknown_fields_survive),
                cmocka_unit_test(test_unknown_field_before_known),
                cmocka_unit_test(test_unknown_event),
                cmocka_unit_test(test_proto2_defaults),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_corrupted_goldens),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
