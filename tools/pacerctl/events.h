/* SPDX-License-Identifier: Apache-2.0 */
/* `pacerctl events`: follows GET /v2/events (filters on the server, checked
 * again here), one line per event or the event's JSON with --json, and the
 * one-line rendering of an event that the deployment progress reuses. */
#pragma once

#include <jansson.h>

#include "buf.h"
#include "ctl.h"

/* A rendered member value longer than this is cut with "...". */
#define EVENTS_VALUE_MAX 160
/* A rendered event line longer than this is cut. */
#define EVENTS_LINE_MAX 2048

/* Whether a --type value is a documented event type. */
bool events_type_known(const char *type);
/* A well-formed event type name: 1-64 of [a-z0-9_]. */
bool events_type_valid(const char *type);

/* "<type> key=value ..." for the members of data other than eventType and
 * timestamp, in the server's order, sanitized; with_time puts the event's
 * timestamp (or now) first. */
int events_format(const char *type, const json_t *data, bool with_time, Buf *out);

int events_follow(Ctl *ctl, const CmdArgs *a);
