/* SPDX-License-Identifier: Apache-2.0 */
/* The TaskInfo of an instance: the app's command, environment (with
 * Marathon's variables: PORT0…, HOST, MARATHON_APP_ID, …), labels, ports,
 * health checks and kill policy, run by pacer-executor in a per-task
 * ExecutorInfo. Everything is allocated in an arena (shared/arena.h) freed
 * after ACCEPT. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "mesos.h"
#include "state.h"

typedef struct LaunchOptions {
        const char *executor_path;        /* how the agent starts pacer-executor */
        const char *executor_uri;         /* fetched by the agent when set (the path is then its basename) */
        const char *const *executor_args; /* extra arguments, NULL-terminated */
        const char *const *executor_env;  /* "NAME=value" for the executor, NULL-terminated */
        double executor_cpus, executor_mem, executor_disk; /* also needed by placement */
} LaunchOptions;

/* Builds the TaskInfo of i (placed on agent with host ports) with the given
 * task and executor resources (copies from the offer). */
int launch_task_info(Arena *arena, const LaunchOptions *o, const Instance *i, const char *agent_id,
                     const char *hostname, const uint32_t *ports, size_t n_ports, Resource *const *task_res,
                     size_t n_task_res, Resource *const *exec_res, size_t n_exec_res, TaskInfo **ret);

/* Marathon's task name for an app id: "/prod/web" → "web.prod". */
int launch_task_name(const char *app_id, char *buf, size_t size);
