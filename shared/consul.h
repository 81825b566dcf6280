/* SPDX-License-Identifier: Apache-2.0 */
/* Client of the LOCAL Consul agent's HTTP API, for the executor's service registration: register
 * a service with one TTL check, verify it, feed the check, deregister and confirm it is gone, and
 * find stale registrations of a task. Asynchronous on the event loop (over http_client), with a
 * deadline per call and jittered retries of transient failures; nothing blocks and nothing logs
 * above debug level: the caller logs, with the task as the subject.
 *
 * Callback contract (as http_client's): when a consul_* starter returns 0, its callback fires
 * exactly once — on success, failure, cancel or consul_client_free(); when it returns < 0, the
 * callback never fires. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duration.h"
#include "error.h"
#include "http_client.h"

struct ev_loop;

typedef struct ConsulClient ConsulClient;
/* One logical operation in flight, retries included. The handle is valid until its callback
 * returns. */
typedef struct ConsulOp ConsulOp;

#define CONSUL_ADDRESS_DEFAULT         "http://127.0.0.1:8500"
#define CONSUL_CALL_TIMEOUT_DEFAULT    (2 * NSEC_PER_SEC)
#define CONSUL_ATTEMPTS_DEFAULT        3u
#define CONSUL_ATTEMPTS_MAX            20u
#define CONSUL_BACKOFF_INITIAL_DEFAULT (100 * NSEC_PER_MSEC)
#define CONSUL_BACKOFF_MAX_DEFAULT     (2 * NSEC_PER_SEC)
#define CONSUL_RESPONSE_MAX_DEFAULT    (1024u * 1024)
/* Tokens are UUIDs (36 bytes); anything much longer is a mistake, not a token. */
#define CONSUL_TOKEN_MAX   256
#define CONSUL_ADDRESS_MAX 512

/* Limits Consul enforces on service Meta (agent/structs: 400 "Invalid Service Meta"). */
#define CONSUL_META_PAIRS_MAX 64
#define CONSUL_META_KEY_MAX   128
#define CONSUL_META_VALUE_MAX 512
/* Pacer's own caps on what Consul leaves unbounded, so a registration body stays small. */
#define CONSUL_ID_MAX    256 /* service ID, name, check ID and name, address: bytes */
#define CONSUL_TAGS_MAX  64
#define CONSUL_TAG_MAX   256
#define CONSUL_NOTES_MAX 1024
/* Check output sent with an update is cut to this many bytes (at a UTF-8 boundary). */
#define CONSUL_CHECK_OUTPUT_MAX 4096
/* Consul's error text quoted in a message is cut to this many bytes. */
#define CONSUL_ERROR_TEXT_MAX 200
/* Length of the message handed to a callback, NUL included. */
#define CONSUL_MESSAGE_MAX 512

typedef struct ConsulConfig {
        /* "host:port", "http://host:port", "https://host:port" or "unix:///path" (the forms
         * CONSUL_HTTP_ADDR allows); NULL/empty = CONSUL_ADDRESS_DEFAULT */
        const char *address;
        bool https;                 /* scheme for an address without one (CONSUL_HTTP_SSL) */
        const char *token;          /* sent as X-Consul-Token; NULL/empty = none */
        int64_t call_timeout_ns;    /* deadline of one HTTP call; 0 = 2 s */
        unsigned attempts;          /* per operation, retryable failures only; 0 = 3 */
        int64_t backoff_initial_ns; /* 0 = 100 ms; doubles per retry, full jitter */
        int64_t backoff_max_ns;     /* 0 = 2 s */
        size_t max_response;        /* cap on a response body; 0 = 1 MiB */
} ConsulConfig;

/* Fills the fields still unset (NULL address/token) from CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN,
 * and sets https when CONSUL_HTTP_SSL is true (as Go's ParseBool reads it). The strings point
 * into the environment. */
void consul_config_from_env(ConsulConfig *cfg);

/* Validates the configuration (address form, token of visible ASCII only: it goes into a
 * header) and creates the client; -EINVAL with err saying what is wrong. The client does not
 * own http, which must outlive it. */
int consul_client_new(struct ev_loop *loop, HttpClient *http, const ConsulConfig *cfg, ConsulClient **ret,
                      PacerError *err);
/* Cancels every pending operation (each callback fires once with -ECANCELED) and frees the
 * client. Accepts NULL; returns NULL. May be called from inside a callback of this client. */
ConsulClient *consul_client_free(ConsulClient *c);
/* Operations in flight (for tests and metrics). */
size_t consul_client_pending(const ConsulClient *c);

typedef struct ConsulServiceDef {
        const char *id, *name;
        const char *address; /* NULL/empty: Consul uses the node's address */
        int port;            /* 0 = none */
        const char *const *tags;
        size_t n_tags;
        const char *const *meta_keys;
        const char *const *meta_values;
        size_t n_meta;
        /* One TTL check, fed by the executor with consul_check_update(); present when
         * ttl_ns > 0, and then check_id is required. */
        const char *check_id;
        const char *check_name; /* NULL: Consul names it */
        int64_t ttl_ns;
        int64_t deregister_critical_after_ns; /* 0 = not set; Consul raises values under 1 min */
        const char *initial_status;           /* "critical" (NULL = default) or "passing"/"warning" */
        const char *check_notes;              /* optional */
} ConsulServiceDef;

/* result: 0 on success, else a negative errno:
 *   -EACCES     403 (ACL); the message says to set CONSUL_HTTP_TOKEN / --consul-token
 *   -EINVAL     400; Consul's text is in the message
 *   -ENOENT     404 where it means absence (verify, check update); also the 500s Consul 1.10
 *               gives a check update for an unknown check ("Unknown check ...", "... does not
 *               have associated TTL"), which are final answers, not retried
 *   -EEXIST     consul_confirm_gone(): the service is still registered
 *   -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET   transport, after the last attempt
 *   -EIO        5xx/429 after the last attempt, any other unexpected status
 *   -EBADMSG    a response that is not JSON or not of the expected shape
 *   -EMSGSIZE   a response body over max_response (not read beyond the cap)
 *   -ECANCELED  consul_op_cancel(), consul_client_free(), or the HttpClient freed
 * message: never NULL, one line naming the operation and the service or check id, and on
 * failure the HTTP status and Consul's text (sanitised, capped), e.g. "register web-T1: Consul
 * answered 403: Permission denied: ... (set CONSUL_HTTP_TOKEN or --consul-token)". */
typedef void (*consul_done_fn)(int result, const char *message, void *userdata);
/* As consul_done_fn, with the matching service IDs on success (n = 0 otherwise). The array and
 * its strings belong to the client and are valid only during the call. */
typedef void (*consul_list_fn)(int result, const char *message, char **service_ids, size_t n,
                               void *userdata);

/* Each starter validates its input first and returns -EINVAL with err filled (err may be NULL)
 * before anything is sent; -ECANCELED while the client is being freed; -ENOMEM. On success
 * *ret_op (optional) is the operation's handle. Path segments (service and check IDs) are
 * percent-encoded. */

/* PUT /v1/agent/service/register?replace-existing-checks with the PascalCase body; strings must
 * be UTF-8 without control characters, Meta within Consul's limits. */
int consul_register(ConsulClient *c, const ConsulServiceDef *s, consul_done_fn cb, void *userdata,
                    ConsulOp **ret_op, PacerError *err);
/* GET /v1/agent/service/<id>: 0 when present with that ID, -ENOENT on 404. */
int consul_verify(ConsulClient *c, const char *service_id, consul_done_fn cb, void *userdata,
                  ConsulOp **ret_op, PacerError *err);
/* PUT /v1/agent/check/update/<id> with {"Status","Output"}; status is passing, warning or
 * critical; output (may be NULL) is cut to CONSUL_CHECK_OUTPUT_MAX bytes, control characters
 * other than newline and tab become spaces and invalid UTF-8 becomes '?'. */
int consul_check_update(ConsulClient *c, const char *check_id, const char *status, const char *output,
                        consul_done_fn cb, void *userdata, ConsulOp **ret_op, PacerError *err);
/* PUT /v1/agent/service/deregister/<id>. Already gone counts as success, however Consul says it:
 * 404 (later versions), 200 (1.10) or, with ACLs enabled, 500 "Unknown service ..." (1.10). */
int consul_deregister(ConsulClient *c, const char *service_id, consul_done_fn cb, void *userdata,
                      ConsulOp **ret_op, PacerError *err);
/* GET /v1/agent/service/<id>: 0 on 404, -EEXIST while it is still there. */
int consul_confirm_gone(ConsulClient *c, const char *service_id, consul_done_fn cb, void *userdata,
                        ConsulOp **ret_op, PacerError *err);
/* GET /v1/agent/services: the IDs of this agent's services whose Meta[key] == value, to remove
 * stale registrations. A server-side ?filter= is added when key and value are safe to quote
 * in one, and the answer is filtered here again either way. With ACLs, the agent silently leaves
 * out services the token may not read: an empty list is not proof of absence. */
int consul_list_services_by_meta(ConsulClient *c, const char *key, const char *value, consul_list_fn cb,
                                 void *userdata, ConsulOp **ret_op, PacerError *err);

/* Aborts an operation: its callback fires with -ECANCELED before this returns. No-op on NULL and
 * from inside the operation's own callback. */
void consul_op_cancel(ConsulOp *op);
