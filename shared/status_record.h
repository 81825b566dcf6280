/* SPDX-License-Identifier: Apache-2.0 */
/* The status record: what pacer-executor knows about its task's health and
 * Consul registration, as a small versioned msgpack map carried in every
 * TaskStatus.data. The scheduler decides readiness from it and never probes
 * tasks itself. Schema and keys: docs/status-record.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define STATUS_RECORD_VERSION 1
/* Encoded size never exceeds this: the agent checkpoints every update and the
 * master forwards it, so it must stay small. The decoder refuses more than
 * STATUS_RECORD_INPUT_MAX (room for newer, larger schema versions). */
#define STATUS_RECORD_MAX            512
#define STATUS_RECORD_INPUT_MAX      2048
#define STATUS_RECORD_SERVICE_ID_MAX 200
#define STATUS_RECORD_ERROR_MAX      200

typedef enum RegistrationState {
        REGISTRATION_OFF,         /* no Consul configured: registration disabled */
        REGISTRATION_PENDING,     /* waiting for the first passing check */
        REGISTRATION_REGISTERING, /* register/verify calls in flight */
        REGISTRATION_REGISTERED,  /* visible in the local Consul agent */
        REGISTRATION_FAILED,      /* last attempt failed; retrying with backoff */
        REGISTRATION_DEREGISTERING,
        REGISTRATION_DEREGISTERED,
        _REGISTRATION_STATE_MAX,
        _REGISTRATION_STATE_INVALID = -EINVAL,
} RegistrationState;

typedef enum Health {
        HEALTH_UNKNOWN = -1, /* no check result yet, or the task has no check */
        HEALTH_UNHEALTHY = 0,
        HEALTH_HEALTHY = 1,
} Health;

typedef struct StatusRecord {
        uint32_t version;
        Health healthy;
        bool registered;
        RegistrationState registration;
        char service_id[STATUS_RECORD_SERVICE_ID_MAX + 1];
        uint32_t consecutive_failures;
        uint32_t check_latency_us; /* of the last check; 0 = none yet */
        char last_error[STATUS_RECORD_ERROR_MAX + 1];
        uint64_t registered_at_ms; /* Unix time of the verified registration; 0 = never */
} StatusRecord;

const char *registration_state_to_string(RegistrationState s);
RegistrationState registration_state_from_string(const char *s);

void status_record_init(StatusRecord *r);
/* Encodes into out (size ≥ STATUS_RECORD_MAX); an over-long error text is cut
 * so the whole record stays within STATUS_RECORD_MAX. */
int status_record_encode(const StatusRecord *r, uint8_t *out, size_t size, size_t *ret_len);
/* Decodes; unknown keys are skipped (newer executors), wrong types rejected. */
int status_record_decode(const void *data, size_t len, StatusRecord *ret, PacerError *err);
