/* SPDX-License-Identifier: Apache-2.0 */
/* What /proc says of a process, and killing processes picked by it: the
 * executor sweeps the processes that left its task's group, local mode the
 * sessions an earlier run left behind. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ProcStat {
        char state; /* 'R', 'S', 'Z'... */
        pid_t ppid, pgrp, session;
        unsigned long long start_time; /* clock ticks after boot */
} ProcStat;

/* Parses the text of /proc/<pid>/stat (its command name, in parentheses, may
 * hold anything, ')' and spaces included); -EBADMSG when it is not one. */
int proc_stat_parse(const char *text, ProcStat *ret);
/* Reads a small file whole into buf (NUL-terminated), as /proc files must be
 * read; returns its length, -EFBIG when it does not fit in size - 1 bytes. */
ssize_t proc_read_file(const char *path, char *buf, size_t size);
/* Reads and parses /proc/<pid>/stat: a negative errno when the process is gone. */
int proc_stat_read(pid_t pid, ProcStat *ret);

/* SIGKILLs every living process (zombies are already dead) other than this
 * one for which pick() says true; returns how many were sent the signal. */
size_t proc_kill_picked(bool (*pick)(pid_t pid, const ProcStat *st, void *userdata), void *userdata);
