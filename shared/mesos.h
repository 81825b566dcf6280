/* SPDX-License-Identifier: Apache-2.0 */
/* Shorter names for the generated Mesos v1 protobuf-c types, and the few
 * helpers both the executor and the scheduler need around them: state names,
 * terminality, status-update UUIDs and packing into a capped buffer. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "mesos/v1/executor/executor.pb-c.h"
#include "mesos/v1/mesos.pb-c.h"
#include "mesos/v1/scheduler/scheduler.pb-c.h"

typedef Mesos__V1__TaskInfo TaskInfo;
typedef Mesos__V1__TaskStatus TaskStatus;
typedef Mesos__V1__TaskState TaskState;
typedef Mesos__V1__TaskID TaskID;
typedef Mesos__V1__CommandInfo CommandInfo;
typedef Mesos__V1__Environment Environment;
typedef Mesos__V1__HealthCheck HealthCheck;
typedef Mesos__V1__Labels Labels;
typedef Mesos__V1__Label Label;
typedef Mesos__V1__Resource Resource;
typedef Mesos__V1__ExecutorInfo ExecutorInfo;
typedef Mesos__V1__FrameworkInfo FrameworkInfo;

#define MESOS_UUID_SIZE 16
/* Cap on one packed protobuf message Pacer builds (a TaskInfo with its
 * environment and labels is a few KiB; 4 MiB leaves room for large offers). */
#define MESOS_MESSAGE_MAX (4u * 1024 * 1024)

#define TASK_STATE(x) MESOS__V1__TASK_STATE__##x

const char *task_state_to_string(TaskState s);
/* Parses "TASK_RUNNING"; returns the state or -EINVAL. */
int task_state_from_string(const char *s);
bool task_state_is_terminal(TaskState s);
const char *task_reason_to_string(Mesos__V1__TaskStatus__Reason r);

/* 16 random bytes laid out as an RFC 4122 version 4 UUID. */
void mesos_uuid_generate(uint8_t ret_uuid[MESOS_UUID_SIZE]);
/* "xxxxxxxx-xxxx-..." into buf (at least 37 bytes). */
const char *mesos_uuid_format(const uint8_t uuid[MESOS_UUID_SIZE], char *buf);

/* Packs any message into out (appending). -EMSGSIZE past the Buf's cap. */
int mesos_pack(const ProtobufCMessage *m, Buf *out);

/* Looks up a label value in a Labels message; NULL when absent. */
const char *mesos_label(const Labels *labels, const char *key);
/* Looks up a variable in an Environment; NULL when absent. */
const char *mesos_env(const Environment *env, const char *name);

/* Current wall-clock time as seconds since the epoch (TaskStatus.timestamp). */
double mesos_now(void);
