/* SPDX-License-Identifier: Apache-2.0 */
#include "mesos.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

const char *task_state_to_string(TaskState s)
{
        const ProtobufCEnumValue *v =
                protobuf_c_enum_descriptor_get_value(&mesos__v1__task_state__descriptor, s);
        return v ? v->name : "TASK_INVALID";
}

int task_state_from_string(const char *s)
{
        const ProtobufCEnumValue *v;

        if (!s)
                return -EINVAL;
        v = protobuf_c_enum_descriptor_get_value_by_name(&mesos__v1__task_state__descriptor, s);
        return v ? v->value : -EINVAL;
}

bool task_state_is_terminal(TaskState s)
{
        switch (s) {
        case TASK_STATE(TASK_FINISHED):
        case TASK_STATE(TASK_FAILED):
        case TASK_STATE(TASK_KILLED):
        case TASK_STATE(TASK_LOST):
        case TASK_STATE(TASK_ERROR):
        case TASK_STATE(TASK_DROPPED):
        case TASK_STATE(TASK_GONE):
        case TASK_STATE(TASK_GONE_BY_OPERATOR):
                return true;
        default:
                return false;
        }
}

const char *task_reason_to_string(Mesos__V1__TaskStatus__Reason r)
{
        const ProtobufCEnumValue *v =
                protobuf_c_enum_descriptor_get_value(&mesos__v1__task_status__reason__descriptor, r);
        return v ? v->name : "REASON_INVALID";
}

void mesos_uuid_generate(uint8_t ret_uuid[MESOS_UUID_SIZE])
{
        size_t got = 0;

        while (got < MESOS_UUID_SIZE) {
                ssize_t n = getrandom(ret_uuid + got, MESOS_UUID_SIZE - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* no entropy source at all: fall back to time and pid, still unique enough
                         * for status-update identity within one executor */
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        uint64_t seed =
                                (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
                        for (; got < MESOS_UUID_SIZE; got++) {
                                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                                ret_uuid[got] = (uint8_t)(seed >> 56);
                        }
                        break;
                }
                got += (size_t)n;
        }
        ret_uuid[6] = (uint8_t)((ret_uuid[6] & 0x0f) | 0x40); /* version 4 */
        ret_uuid[8] = (uint8_t)((ret_uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

const char *mesos_uuid_format(const uint8_t u[MESOS_UUID_SIZE], char *buf)
{
        snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
        return buf;
}

int mesos_pack(const ProtobufCMessage *m, Buf *out)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        int r = buf_reserve(out, n);

        if (r < 0)
                return r;
        protobuf_c_message_pack(m, (uint8_t *)out->data + out->len);
        out->len += n;
        out->data[out->len] = 0;
        return 0;
}

const char *mesos_label(const Labels *labels, const char *key)
{
        if (!labels)
                return NULL;
        for (size_t i = 0; i < labels->n_labels; i++)
                if (labels->labels[i]->key && streq(labels->labels[i]->key, key))
                        return labels->labels[i]->value ? labels->labels[i]->value : "";
        return NULL;
}

const char *mesos_env(const Environment *env, const char *name)
{
        if (!env)
                return NULL;
        for (size_t i = 0; i < env->n_variables; i++)
                if (env->variables[i]->name && streq(env->variables[i]->name, name))
                        return env->variables[i]->value ? env->variables[i]->value : "";
        return NULL;
}

double mesos_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
