/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "client.h"
#include "ctl.h"
#include "events.h"
#include "macro.h"
#include "show.h"
#include "term.h"
#include "watch.h"

/* Room for a command's flags: the global ones plus its own. */
#define CLI_FLAGS_MAX (CLI_GLOBAL_FLAGS_MAX + 8)
/* Longest help synopsis: "pacerctl <command> [FLAGS] <arguments>". */
#define CLI_SYNOPSIS_MAX 256
/* Bounds of --interval. */
#define CLI_INTERVAL_MIN_NS (10 * NSEC_PER_MSEC)
#define CLI_INTERVAL_MAX_NS (60 * NSEC_PER_SEC)

enum {
        CMD_WAITS = 1 << 0,  /* --force, --[no-]wait, --wait-timeout, --interval */
        CMD_EVENTS = 1 << 1, /* --type, --app, --count, --last-event-id */
};

typedef struct Command {
        const char *name;
        const char *args; /* the synopsis after the flags */
        const char *summary;
        const char *description;
        unsigned flags;
        int min_args, max_args;
        int (*run)(Ctl *ctl, const CmdArgs *a);
} Command;

static const Command commands[] = {
        { "apps", "[ID-PREFIX]", "list apps",
          "Lists the apps (GET /v2/apps), or those whose id starts with ID-PREFIX. INSTANCES is\n"
          "running/healthy/registered/desired.",
          0, 0, 1, show_apps },
        { "app", "ID", "show one app and its tasks",
          "Shows an app's definition, counts and failures (GET /v2/apps/ID) and its tasks.", 0, 1, 1,
          show_app },
        { "deploy", "FILE.json", "create or update apps from a file and wait",
          "Sends the app definition in FILE.json (- for stdin): one app object with POST /v2/apps (an app\n"
          "that exists already is replaced with PUT /v2/apps/ID?partialUpdate=false), an array of apps\n"
          "as one batch with PUT /v2/apps. Then waits for the deployment to finish or fail, showing its\n"
          "progress. Exit code 0: deployed; 1: the deployment failed; 2: the definition is invalid (every\n"
          "error is listed with its path); 3: pacer-scheduler is unreachable.",
          CMD_WAITS, 1, 1, change_deploy },
        { "scale", "ID N", "set an app's instance count and wait",
          "Sets the app's instance count (PATCH /v2/apps/ID) and waits like deploy.", CMD_WAITS, 2, 2,
          change_scale },
        { "restart", "ID", "replace every instance of an app and wait",
          "Replaces the app's instances, rolling (POST /v2/apps/ID/restart), and waits like deploy.",
          CMD_WAITS, 1, 1, change_restart },
        { "delete", "ID", "destroy an app and wait",
          "Destroys the app and its instances (DELETE /v2/apps/ID) and waits until it is gone.", CMD_WAITS,
          1, 1, change_delete },
        { "tasks", "[APP-ID]", "list tasks",
          "Lists every task (GET /v2/tasks) or one app's (GET /v2/apps/APP-ID/tasks).", 0, 0, 1,
          show_tasks },
        { "deployments", "", "list running deployments",
          "Lists the running deployments (GET /v2/deployments), one row per app step with its state\n"
          "and, for failed or stopped steps, the reason.",
          0, 0, 0, show_deployments },
        { "deployment", "stop|rollback|retry DEPLOYMENT-ID [APP-ID]",
          "act on a deployment or one of its apps",
          "With APP-ID, acts on that app's step only (POST /v2/deployments/ID/apps/APP-ID): stop leaves it\n"
          "as it is, rollback returns it to its previous version, retry runs a failed or stopped step\n"
          "again; the other apps of the deployment are not touched. Without APP-ID: stop ends the whole\n"
          "deployment where it stands (DELETE ...?force=true), rollback undoes it (DELETE\n"
          "/v2/deployments/ID: pacer-scheduler turns the same deployment back; Marathon starts a new one);\n"
          "retry needs an app id.",
          0, 1, 3, change_deployment },
        { "events", "", "follow the event stream",
          "Follows GET /v2/events, one line per event (its JSON with --json), until interrupted or\n"
          "--count events were shown. The filters are applied by the server and again here. When the\n"
          "stream drops, pacerctl reconnects with Last-Event-ID, so no event is missed or repeated.",
          CMD_EVENTS, 0, 0, events_follow },
        { "info", "", "show the scheduler's configuration", "Shows GET /v2/info.", 0, 0, 0, show_info },
        { "ping", "", "check that the scheduler answers", "GET /ping: exit code 0 when it answers.", 0, 0, 0,
          show_ping },
};

static const char global_description[] =
        "Command-line client of pacer-scheduler's REST API (Marathon's /v2 plus Pacer's extensions).\n"
        "\n"
        "Commands:\n"
        "%s"
        "\n"
        "Flags go before or after the command; `pacerctl COMMAND --help` lists a command's own.\n"
        "Exit codes: 0 success; 1 refused or deployment failed; 2 usage error or invalid definition;\n"
        "3 pacer-scheduler unreachable; 130 interrupted while waiting. See docs/pacerctl.md.";

size_t cli_global_flags(CliGlobals *g, bool with_env, Flag ret_flags[static CLI_GLOBAL_FLAGS_MAX])
{
        const Flag flags[] = {
                { "url", FLAG_STRING, &g->url, "PACER_URL", "pacer-scheduler's REST API.", "URL", 0, 0 },
                { "token", FLAG_STRING, &g->token, "PACER_TOKEN", "Bearer token sent as Authorization.",
                  "TOKEN", 0, 0 },
                { "json", FLAG_BOOL, &g->json, NULL,
                  "Print the server's JSON (for scripts) instead of tables; progress goes to stderr.", NULL,
                  0, 0 },
                { "timeout", FLAG_DURATION, &g->timeout_ns, "PACER_TIMEOUT", "Deadline of each request.",
                  NULL, 10 * NSEC_PER_MSEC, 3600 * NSEC_PER_SEC },
        };

        _Static_assert(ELEMENTSOF(flags) <= CLI_GLOBAL_FLAGS_MAX, "CLI_GLOBAL_FLAGS_MAX is too small");
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                ret_flags[i] = flags[i];
                if (!with_env)
                        ret_flags[i].env = NULL;
        }
        return ELEMENTSOF(flags);
}

void cli_print_help(FILE *f, const Flag *flags, size_t n)
{
        Buf list = BUF_INIT(8192), description = BUF_INIT(16384);

        int width = 0;

        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                width = MAX(width, (int)(strlen(commands[i].name) + 1 + strlen(commands[i].args)));
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char left[CLI_SYNOPSIS_MAX];
                snprintf(left, sizeof(left), "%s %s", commands[i].name, commands[i].args);
                (void)buf_printf(&list, "  %-*s  %s\n", width, left, commands[i].summary);
        }
        (void)buf_printf(&description, global_description, buf_str(&list));
        flags_print_help(f, "pacerctl", "[FLAGS] COMMAND [ARGS]", buf_str(&description), flags, n);
        buf_done(&list);
        buf_done(&description);
}

int cli_exit_code(int r)
{
        if (r >= 0)
                return CTL_EXIT_OK;
        switch (r) {
        case -EINVAL:
                return CTL_EXIT_USAGE;
        case -EHOSTUNREACH:
                return CTL_EXIT_UNREACHABLE;
        case -EINTR:
                return CTL_EXIT_INTERRUPTED;
        default:
                return CTL_EXIT_FAILED;
        }
}

static const Command *command_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

/* token and type_sink receive what must not land in g or a directly: the
 * token is a secret (--help shows targets as defaults), and every --type is
 * collected by reorder() instead. */
static size_t command_flags(const Command *cmd, CliGlobals *g, const char **token, const char **type_sink,
                            CmdArgs *a, Flag flags[static CLI_FLAGS_MAX])
{
        const Flag wait_flags[] = {
                { "force", FLAG_BOOL, &a->force, NULL,
                  "Override a deployment lock: the running deployment of the app is stopped and this change "
                  "wins.",
                  NULL, 0, 0 },
                { "wait", FLAG_BOOL, &a->wait, NULL,
                  "Wait for the deployment to finish; --no-wait prints its id and returns.", NULL, 0, 0 },
                { "wait-timeout", FLAG_DURATION, &a->wait_timeout_ns, NULL,
                  "Stop waiting after this long (exit code 1; the deployment goes on). 0 waits as long as it "
                  "takes.",
                  NULL, 0, 0 },
                { "interval", FLAG_DURATION, &a->interval_ns, NULL,
                  "How often to poll the deployment and the apps' instances while waiting.", NULL,
                  CLI_INTERVAL_MIN_NS, CLI_INTERVAL_MAX_NS },
        };
        const Flag event_flags[] = {
                { "type", FLAG_STRING, type_sink, NULL,
                  "Only events of this type; repeat for several (status_update_event, deployment_success, "
                  "...).",
                  "TYPE", 0, 0 },
                { "app", FLAG_STRING, &a->app_prefix, NULL,
                  "Only events of apps whose id starts with this prefix.", "PREFIX", 0, 0 },
                { "count", FLAG_INT64, &a->count, NULL,
                  "Stop after this many events; 0 follows until interrupted.", "N", 0, INT64_MAX },
                { "last-event-id", FLAG_STRING, &a->last_event_id, NULL,
                  "Start after this event id (the server replays what followed it).", "ID", 0, 0 },
        };
        size_t n = cli_global_flags(g, false, flags);

        _Static_assert(CLI_GLOBAL_FLAGS_MAX + ELEMENTSOF(wait_flags) + ELEMENTSOF(event_flags) <=
                               CLI_FLAGS_MAX,
                       "CLI_FLAGS_MAX is too small");
        for (size_t i = 0; i < n; i++)
                if (streq(flags[i].name, "token"))
                        flags[i].target = token;
        for (size_t i = 0; (cmd->flags & CMD_WAITS) && i < ELEMENTSOF(wait_flags); i++)
                flags[n++] = wait_flags[i];
        for (size_t i = 0; (cmd->flags & CMD_EVENTS) && i < ELEMENTSOF(event_flags); i++)
                flags[n++] = event_flags[i];
        return n;
}

static const Flag *flag_find(const Flag *flags, size_t n, const char *name, size_t len)
{
        for (size_t i = 0; i < n; i++)
                if (strlen(flags[i].name) == len && strneq(flags[i].name, name, len))
                        return &flags[i];
        return NULL;
}

static bool is_flag_word(const char *s)
{
        /* "-" is stdin and "-3" a (bad) number: both are arguments */
        return s[0] == '-' && s[1] != 0 && !(s[1] >= '0' && s[1] <= '9');
}

/* Moves the command's flags in front of its arguments, so flags_parse() (which
 * stops at the first argument) sees them wherever they were written; collects
 * every --type, which may repeat. */
static int reorder(int argc, char **argv, const Flag *flags, size_t n, CmdArgs *a, char **out, int *ret_argc)
{
        int k = 0, p = 0;
        _cleanup_free_ char **positional = calloc((size_t)argc + 1, sizeof(char *));
        bool rest = false;

        if (!positional)
                return -ENOMEM;
        out[k++] = argv[0];
        for (int i = 1; i < argc; i++) {
                const char *s = argv[i], *name, *eq, *value = NULL;
                const Flag *f;
                size_t len;

                if (rest || !is_flag_word(s)) {
                        positional[p++] = argv[i];
                        continue;
                }
                if (streq(s, "--")) {
                        rest = true;
                        continue;
                }
                out[k++] = argv[i];
                if (s[1] != '-')
                        continue;
                name = s + 2;
                eq = strchr(name, '=');
                len = eq ? (size_t)(eq - name) : strlen(name);
                f = flag_find(flags, n, name, len);
                if (eq)
                        value = eq + 1;
                else if (f && f->type != FLAG_BOOL && i + 1 < argc) {
                        out[k++] = argv[++i];
                        value = argv[i];
                }
                if (f && streq(f->name, "type") && value) {
                        if (a->n_types >= CTL_EVENT_TYPES_MAX) {
                                term_error("%s: at most %d --type filters", a->command, CTL_EVENT_TYPES_MAX);
                                return -EINVAL;
                        }
                        a->types[a->n_types++] = value;
                }
        }
        out[k++] = (char *)"--";
        for (int i = 0; i < p; i++)
                out[k++] = positional[i];
        out[k] = NULL;
        *ret_argc = k;
        return 0;
}

static void command_help(const Command *cmd, const Flag *flags, size_t n)
{
        char program[CLI_SYNOPSIS_MAX], synopsis[CLI_SYNOPSIS_MAX];

        snprintf(program, sizeof(program), "pacerctl %s", cmd->name);
        snprintf(synopsis, sizeof(synopsis), "[FLAGS]%s%s", *cmd->args ? " " : "", cmd->args);
        flags_print_help(stdout, program, synopsis, cmd->description, flags, n);
}

static int run(const Command *cmd, CliGlobals *g, CmdArgs *a)
{
        Ctl ctl = { .json = g->json, .out = stdout };
        PacerError err = { "" };
        int r;

        r = client_new(&(ClientOptions){ .url = g->url, .token = g->token, .timeout_ns = g->timeout_ns },
                       &ctl.client, &err);
        if (r < 0) {
                term_error("%s", err.msg);
                return r == -ENOMEM ? r : -EINVAL;
        }
        ctl.out_color = !ctl.json && term_color_allowed(stdout);
        ctl.progress = ctl.json ? stderr : stdout;
        ctl.progress_tty = term_can_redraw(ctl.progress);
        ctl.progress_color = term_color_allowed(ctl.progress);
        r = cmd->run(&ctl, a);
        client_free(ctl.client);
        return r;
}

int cli_run(CliGlobals *g, int argc, char **argv)
{
        const Command *cmd = command_find(argv[0]);
        CmdArgs a = { .command = argv[0], .wait = true, .interval_ns = WATCH_INTERVAL_DEFAULT_NS };
        Flag flags[CLI_FLAGS_MAX];
        _cleanup_free_ char **args = NULL;
        PacerError err = { "" };
        const char *token = NULL, *type_sink = NULL;
        int first = 0, n_args = 0, r;
        size_t n;

        if (!cmd) {
                term_error("unknown command '%.64s' (see `pacerctl --help`)", argv[0]);
                return CTL_EXIT_USAGE;
        }
        n = command_flags(cmd, g, &token, &type_sink, &a, flags);
        args = calloc((size_t)argc + 2, sizeof(char *));
        if (!args) {
                term_error("out of memory");
                return CTL_EXIT_FAILED;
        }
        r = reorder(argc, argv, flags, n, &a, args, &n_args);
        if (r < 0)
                return cli_exit_code(r);
        r = flags_parse(flags, n, n_args, args, &first, &err);
        if (r == FLAGS_HELP) {
                command_help(cmd, flags, n);
                return CTL_EXIT_OK;
        }
        if (r == FLAGS_VERSION) {
                printf("pacerctl %s\n", PACER_VERSION);
                return CTL_EXIT_OK;
        }
        if (r < 0) {
                term_error("%s: %s", cmd->name, err.msg);
                return CTL_EXIT_USAGE;
        }
        if (token)
                g->token = token;
        a.argv = args + first;
        a.argc = n_args - first;
        if (a.argc < cmd->min_args || a.argc > cmd->max_args) {
                if (a.argc > cmd->max_args)
                        term_error("%s: unexpected argument '%.64s' (usage: pacerctl %s %s)", cmd->name,
                                   a.argv[cmd->max_args], cmd->name, cmd->args);
                else
                        term_error("%s: missing arguments (usage: pacerctl %s %s)", cmd->name, cmd->name,
                                   cmd->args);
                return CTL_EXIT_USAGE;
        }
        /* the stream and stdout write errors are handled where they happen */
        signal(SIGPIPE, SIG_IGN);
        r = run(cmd, g, &a);
        if (r == -ENOMEM)
                term_error("out of memory");
        if (fflush(stdout) != 0 && r >= 0)
                r = -EIO;
        return cli_exit_code(r);
}
