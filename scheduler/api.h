/* SPDX-License-Identifier: Apache-2.0 */
/* The REST API: Marathon's /v2 (apps, tasks, deployments, queue, info,
 * leader, events), /ping, /metrics and Pacer's per-app deployment control,
 * served from the scheduler's loop (docs/rest-api.md). */
#pragma once

#include "error.h"
#include "events.h"
#include "scheduler.h"

struct ev_loop;

typedef struct Api Api;

typedef struct ApiOptions {
        const char *listen;           /* "127.0.0.1:8080" */
        const char *mode;             /* "local" or "mesos", for /v2/info */
        const char *http_credentials; /* "user:password" (basic), or NULL */
        const char *http_token_file;  /* bearer tokens, a line each, or NULL */
} ApiOptions;

int api_new(struct ev_loop *loop, Scheduler *s, const ApiOptions *o, Api **ret, PacerError *err);
Api *api_free(Api *a);
/* The port actually bound (for listen ports of 0). */
int api_port(const Api *a);
