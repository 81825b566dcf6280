/* SPDX-License-Identifier: Apache-2.0 */
/* The commands that change apps — deploy, scale, restart, delete — each
 * followed until its deployment ends (see watch.h) unless --no-wait, and the
 * per-app deployment actions (stop, rollback, retry). */
#pragma once

#include "ctl.h"

/* A definition file larger than this is refused unread: the scheduler's
 * request cap (docs/rest-api.md). */
#define CHANGE_FILE_MAX (1024u * 1024)
/* The largest instance count an app may have (docs/apps.md). */
#define CHANGE_INSTANCES_MAX 100000

int change_deploy(Ctl *ctl, const CmdArgs *a);
int change_scale(Ctl *ctl, const CmdArgs *a);
int change_restart(Ctl *ctl, const CmdArgs *a);
int change_delete(Ctl *ctl, const CmdArgs *a);
int change_deployment(Ctl *ctl, const CmdArgs *a);
