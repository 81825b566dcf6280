/* SPDX-License-Identifier: Apache-2.0 */
/* The read-only commands: apps, app, tasks, deployments, info, ping. Human
 * output is aligned columns or "KEY value" lines; --json prints the server's
 * answer as it came. */
#pragma once

#include "ctl.h"

int show_apps(Ctl *ctl, const CmdArgs *a);
int show_app(Ctl *ctl, const CmdArgs *a);
int show_tasks(Ctl *ctl, const CmdArgs *a);
int show_deployments(Ctl *ctl, const CmdArgs *a);
int show_info(Ctl *ctl, const CmdArgs *a);
int show_ping(Ctl *ctl, const CmdArgs *a);
