/* SPDX-License-Identifier: Apache-2.0 */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

/* /proc/<pid>/stat is about 300 bytes; a longer one is not one */
#define PROC_STAT_MAX 4096

int proc_stat_parse(const char *text, ProcStat *ret)
{
        const char *p = strrchr(text, ')');
        ProcStat st = { 0 };
        int ppid, pgrp, session;

        if (!p)
                return -EBADMSG;
        if (sscanf(p + 1, " %c %d %d %d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                   &st.state, &ppid, &pgrp, &session, &st.start_time) != 5)
                return -EBADMSG;
        st.ppid = ppid;
        st.pgrp = pgrp;
        st.session = session;
        *ret = st;
        return 0;
}

ssize_t proc_read_file(const char *path, char *buf, size_t size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        size_t len = 0;

        if (fd < 0)
                return negative_errno();
        for (;;) {
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len == size - 1)
                        return -EFBIG;
        }
        buf[len] = 0;
        return (ssize_t)len;
}

int proc_stat_read(pid_t pid, ProcStat *ret)
{
        char path[64], buf[PROC_STAT_MAX];
        ssize_t r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        r = proc_read_file(path, buf, sizeof(buf));
        return r < 0 ? (int)r : proc_stat_parse(buf, ret);
}

size_t proc_kill_picked(bool (*pick)(pid_t pid, const ProcStat *st, void *userdata), void *userdata)
{
        pid_t self = getpid();
        struct dirent *de;
        size_t n = 0;
        DIR *d = opendir("/proc");

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                ProcStat st;

                if (*end || pid <= 0 || pid == self || proc_stat_read((pid_t)pid, &st) < 0 ||
                    st.state == 'Z' || st.state == 'X' || !pick((pid_t)pid, &st, userdata))
                        continue;
                if (kill((pid_t)pid, SIGKILL) == 0)
                        n++;
        }
        closedir(d);
        return n;
}
