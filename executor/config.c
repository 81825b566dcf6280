/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the environment a Mesos agent gives an executor (see
 * ../shared/PROTOCOLS.md §3). Every failure names the variable and says what
 * was expected, because the person reading it is debugging an agent setup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "executor.h"
#include "macro.h"

/* Longest value accepted for an ID or an endpoint; Mesos IDs are ≤ 255 chars. */
#define ENV_VALUE_MAX               1024
#define RECOVERY_TIMEOUT_DEFAULT_NS (15LL * 60 * NSEC_PER_SEC)
#define BACKOFF_MAX_DEFAULT_NS      (2LL * NSEC_PER_SEC)
#define SHUTDOWN_GRACE_DEFAULT_NS   (5LL * NSEC_PER_SEC)

static bool printable(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

static int env_string(const char *name, bool required, char **ret, PacerError *err)
{
        const char *v = getenv(name);

        if (!v || !*v) {
                if (required)
                        return pacer_error_set(
                                err, EINVAL,
                                "%s is not set: pacer-executor must be started by a Mesos agent "
                                "(or given the agent's environment)",
                                name);
                *ret = NULL;
                return 0;
        }
        if (strlen(v) > ENV_VALUE_MAX)
                return pacer_error_set(err, EINVAL, "%s is longer than %d characters", name, ENV_VALUE_MAX);
        if (!printable(v))
                return pacer_error_set(err, EINVAL, "%s contains control characters", name);
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int env_duration(const char *name, int64_t def, int64_t *ret, PacerError *err)
{
        const char *v = getenv(name);
        PacerError e;
        int r;

        if (!v || !*v) {
                *ret = def;
                return 0;
        }
        r = duration_parse(v, ret, &e);
        if (r < 0)
                return pacer_error_set(err, r, "%s=%.64s: %s", name, v, e.msg);
        return 0;
}

int executor_config_from_env(ExecutorConfig *c, PacerError *err)
{
        const char *cp;
        int r;

        if ((r = env_string("MESOS_FRAMEWORK_ID", true, &c->framework_id, err)) < 0 ||
            (r = env_string("MESOS_EXECUTOR_ID", true, &c->executor_id, err)) < 0 ||
            (r = env_string("MESOS_AGENT_ENDPOINT", true, &c->agent_endpoint, err)) < 0 ||
            (r = env_string("MESOS_SLAVE_ID", false, &c->agent_id, err)) < 0 ||
            (r = env_string("MESOS_DIRECTORY", false, &c->directory, err)) < 0 ||
            (r = env_string("MESOS_SANDBOX", false, &c->sandbox, err)) < 0 ||
            (r = env_string("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", false, &c->auth_token, err)) < 0 ||
            (r = env_string("MESOS_DOMAIN_SOCKET", false, &c->domain_socket, err)) < 0)
                return r;

        /* MESOS_AGENT_ENDPOINT is ip:port, IPv6 without brackets: the port follows the last colon */
        const char *colon = strrchr(c->agent_endpoint, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == c->agent_endpoint || !colon[1] || *end || port <= 0 || port > 65535)
                return pacer_error_set(err, EINVAL, "MESOS_AGENT_ENDPOINT=%s: expected <ip>:<port>",
                                       c->agent_endpoint);

        cp = getenv("MESOS_CHECKPOINT");
        if (!cp || !*cp || streq(cp, "0"))
                c->checkpoint = false;
        else if (streq(cp, "1"))
                c->checkpoint = true;
        else
                return pacer_error_set(err, EINVAL, "MESOS_CHECKPOINT=%.32s: expected \"1\" or \"0\"", cp);

        if ((r = env_duration("MESOS_RECOVERY_TIMEOUT", RECOVERY_TIMEOUT_DEFAULT_NS, &c->recovery_timeout_ns,
                              err)) < 0 ||
            (r = env_duration("MESOS_SUBSCRIPTION_BACKOFF_MAX", BACKOFF_MAX_DEFAULT_NS, &c->backoff_max_ns,
                              err)) < 0 ||
            (r = env_duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", SHUTDOWN_GRACE_DEFAULT_NS,
                              &c->shutdown_grace_ns, err)) < 0)
                return r;
        if (c->backoff_max_ns <= 0)
                c->backoff_max_ns = BACKOFF_MAX_DEFAULT_NS;

        if (!c->sandbox && c->directory)
                c->sandbox = strdup(c->directory);
        if (!c->directory && c->sandbox)
                c->directory = strdup(c->sandbox);
        return 0;
}

void executor_config_done(ExecutorConfig *c)
{
        free(c->framework_id);
        free(c->executor_id);
        free(c->agent_endpoint);
        free(c->agent_id);
        free(c->directory);
        free(c->sandbox);
        free(c->auth_token);
        free(c->domain_socket);
        c->framework_id = c->executor_id = c->agent_endpoint = c->agent_id = NULL;
        c->directory = c->sandbox = c->auth_token = c->domain_socket = NULL;
}
