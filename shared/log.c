/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
/* A subject names one object (`task=<id>`); a longer one is cut so that it can
 * neither crowd the message out of the line nor overrun it. */
#define LOG_SUBJECT_MAX 512

static const char *const level_names[_LOG_LEVEL_MAX] = {
        [LOG_LEVEL_ERROR] = "ERROR",
        [LOG_LEVEL_WARN] = "WARN",
        [LOG_LEVEL_INFO] = "INFO",
        [LOG_LEVEL_DEBUG] = "DEBUG",
};

static LogLevel log_level = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;
static char log_program[64] = "pacer";

const char *log_level_to_string(LogLevel l)
{
        if (l < 0 || l >= _LOG_LEVEL_MAX)
                return NULL;
        return level_names[l];
}

LogLevel log_level_from_string(const char *s)
{
        if (!s)
                return _LOG_LEVEL_INVALID;
        for (int i = 0; i < _LOG_LEVEL_MAX; i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return (LogLevel)i;
        if (strcasecmp(s, "warning") == 0)
                return LOG_LEVEL_WARN;
        return _LOG_LEVEL_INVALID;
}

void log_set_program(const char *name)
{
        snprintf(log_program, sizeof(log_program), "%s", name ? name : "pacer");
}

void log_set_level(LogLevel l)
{
        if (l >= 0 && l < _LOG_LEVEL_MAX)
                log_level = l;
}

LogLevel log_get_level(void)
{
        return log_level;
}

void log_set_fd(int fd)
{
        log_fd = fd;
}

/* Appends s to out, escaping control characters (newline → \n, others → \xNN)
 * so one event stays on one line. Returns the new length, never past cap-1. */
static size_t append_escaped(char *out, size_t len, size_t cap, const char *s)
{
        for (; *s && len + 5 < cap; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '\n') {
                        out[len++] = '\\';
                        out[len++] = 'n';
                } else if (c == '\r') {
                        out[len++] = '\\';
                        out[len++] = 'r';
                } else if (c == '\t') {
                        out[len++] = '\\';
                        out[len++] = 't';
                } else if (c < 0x20 || c == 0x7f) {
                        len += (size_t)snprintf(out + len, cap - len, "\\x%02x", c);
                } else
                        out[len++] = (char)c;
        }
        return len;
}

int log_internalv(LogLevel level, int error, const char *subject, const char *fmt, va_list ap)
{
        int saved_errno = errno;
        int ret = error > 0 ? -error : error;
        char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 256];
        struct timespec ts;
        struct tm tm;
        size_t n;

        if (error != 0)
                errno = error > 0 ? error : -error; /* lets %m name the error */
        vsnprintf(msg, sizeof(msg), fmt, ap);

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%d] %s ", ts.tv_nsec / 1000000L,
                              log_program, (int)getpid(), strna(log_level_to_string(level)));
        if (subject) {
                n = append_escaped(line, n, n + LOG_SUBJECT_MAX, subject);
                n += (size_t)snprintf(line + n, sizeof(line) - n, ": ");
        }
        n = append_escaped(line, n, sizeof(line) - 1, msg);
        line[n++] = '\n';

        /* One write per line: concurrent writers interleave whole lines only. */
        while (write(log_fd, line, n) < 0 && errno == EINTR)
                ;
        errno = saved_errno;
        return ret;
}

int log_internal(LogLevel level, int error, const char *subject, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_internalv(level, error, subject, fmt, ap);
        va_end(ap);
        return r;
}
