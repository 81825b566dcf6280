/* SPDX-License-Identifier: Apache-2.0 */
/* Waiting for a deployment with a progress display: what deploy, scale,
 * restart and delete do unless --no-wait. The event stream (subscribed before
 * the change is sent, so nothing is missed) decides at once; polling
 * GET /v2/deployments and the apps decides when there is no stream, and shows
 * the instance counts. One line per change on a pipe, one redrawn line on a
 * terminal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

#define WATCH_INTERVAL_DEFAULT_NS (1000LL * 1000 * 1000)
/* Apps whose instance counts are polled and shown; a larger batch is
 * followed through its deployment's per-app states only. */
#define WATCH_APPS_POLLED_MAX 16
/* Once the deployment has left GET /v2/deployments without an event saying
 * how it ended, the apps must look deployed within this long. */
#define WATCH_GONE_GRACE_NS (3LL * 1000 * 1000 * 1000)
/* Polls may fail this long (a scheduler restarting) before waiting gives up. */
#define WATCH_UNREACHABLE_MAX_NS (30LL * 1000 * 1000 * 1000)

typedef struct Watch Watch;

typedef struct WatchOptions {
        int64_t interval_ns; /* polling period */
        int64_t timeout_ns;  /* give up waiting after this long; 0 = never */
        bool deleting;       /* success means the apps are gone */
} WatchOptions;

/* Subscribes to the events a deployment produces. Without a stream (refused,
 * not served) waiting falls back to polling, so this fails only for lack of
 * memory. */
int watch_new(Ctl *ctl, const WatchOptions *o, Watch **ret);
Watch *watch_free(Watch *w);
/* Waits for deployment_id, which changes the apps (absolute ids; the
 * deployment's own list replaces them once seen). 0 when it succeeded;
 * -EIO when it failed, -ETIME when --wait-timeout passed, -EINTR on a
 * signal, -EHOSTUNREACH when the scheduler stayed away: each reported. */
int watch_run(Watch *w, const char *deployment_id, char *const *apps, size_t n_apps);
