/* SPDX-License-Identifier: Apache-2.0 */
#include "sandbox.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

static const char *const step_names[_SANDBOX_STEP_MAX] = {
        [SANDBOX_STEP_USER_GROUPS] = "setgroups",
        [SANDBOX_STEP_USER_GID] = "setgid",
        [SANDBOX_STEP_USER_UID] = "setuid",
        [SANDBOX_STEP_USER_VERIFY] = "verify user switch",
};

const char *sandbox_step_to_string(SandboxStep s)
{
        return s >= 0 && s < _SANDBOX_STEP_MAX ? step_names[s] : "unknown step";
}

void sandbox_plan_init(SandboxPlan *p)
{
        *p = (SandboxPlan){ 0 };
}

void sandbox_plan_done(SandboxPlan *p)
{
        *p = (SandboxPlan){ 0 };
}

int sandbox_plan_user(SandboxPlan *p, const char *user, PacerError *err)
{
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r, n = SANDBOX_GROUPS_MAX;

        p->switch_user = false;
        if (!user || !*user)
                return 0;
        if (strlen(user) >= sizeof(p->user))
                return pacer_error_set(err, EINVAL, "user name '%.32s...' is too long", user);

        r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
        if (!res) {
                char *end;
                errno = 0;
                unsigned long uid = strtoul(user, &end, 10);
                if (*end == 0 && errno == 0 && uid < (unsigned long)(uid_t)-1)
                        r = getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res);
        }
        if (!res)
                return pacer_error_set(err, r > 0 ? r : ENOENT,
                                       "user '%s' does not exist on this agent (CommandInfo.user or --user)",
                                       user);
        if (pw.pw_uid == geteuid() && pw.pw_gid == getegid())
                return 0; /* already that user: nothing to switch */
        if (geteuid() != 0)
                return pacer_error_set(
                        err, EPERM,
                        "cannot run the task as user '%s': the executor runs as uid %u, not root", user,
                        (unsigned)geteuid());

        if (getgrouplist(pw.pw_name, pw.pw_gid, p->groups, &n) < 0)
                return pacer_error_set(err, E2BIG, "user '%s' is in more than %d groups", user,
                                       SANDBOX_GROUPS_MAX);
        p->n_groups = n;
        p->uid = pw.pw_uid;
        p->gid = pw.pw_gid;
        snprintf(p->user, sizeof(p->user), "%s", pw.pw_name);
        p->switch_user = true;
        return 0;
}

int sandbox_apply(const SandboxPlan *p, SandboxStep *ret_step)
{
        if (p->switch_user) {
                /* groups first, then gid, then uid: each later step removes the right to do the earlier */
                if (setgroups((size_t)p->n_groups, p->groups) < 0) {
                        *ret_step = SANDBOX_STEP_USER_GROUPS;
                        return -errno;
                }
                if (setresgid(p->gid, p->gid, p->gid) < 0) {
                        *ret_step = SANDBOX_STEP_USER_GID;
                        return -errno;
                }
                if (setresuid(p->uid, p->uid, p->uid) < 0) {
                        *ret_step = SANDBOX_STEP_USER_UID;
                        return -errno;
                }
                /* a process that could regain root after this is not sandboxed */
                if (geteuid() != p->uid || getegid() != p->gid || (p->uid != 0 && setuid(0) == 0)) {
                        *ret_step = SANDBOX_STEP_USER_VERIFY;
                        return -EPERM;
                }
        }
        return 0;
}
