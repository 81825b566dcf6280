/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: one line per event on stderr, with a UTC timestamp, the program,
 * a level and an optional subject such as `task=web.1`. Control characters in
 * messages are escaped so that an event never spans two lines. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>

#include "macro.h"

typedef enum LogLevel {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARN,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
        _LOG_LEVEL_MAX,
        _LOG_LEVEL_INVALID = -EINVAL,
} LogLevel;

const char *log_level_to_string(LogLevel l);
LogLevel log_level_from_string(const char *s);

void log_set_program(const char *name);
void log_set_level(LogLevel l);
LogLevel log_get_level(void);
/* Where lines go (default 2 = stderr). Tests point it at a pipe. */
void log_set_fd(int fd);

/* Logs and returns -|error| (or 0 when error is 0), so callers can write
 * `return log_error_errno(r, "...")`. The subject may be NULL. */
int log_internal(LogLevel level, int error, const char *subject, const char *fmt, ...) _printf_(4, 5);
int log_internalv(LogLevel level, int error, const char *subject, const char *fmt, va_list ap)
        _printf_(4, 0);

static inline bool log_enabled(LogLevel level)
{
        return level <= log_get_level();
}

#define log_full(level, error, subject, ...)                                                          \
        ({                                                                                            \
                LogLevel _l = (level);                                                                \
                int _e = (error);                                                                     \
                log_enabled(_l) ? log_internal(_l, _e, (subject), __VA_ARGS__) : (_e > 0 ? -_e : _e); \
        })

#define log_error(...)          log_full(LOG_LEVEL_ERROR, 0, NULL, __VA_ARGS__)
#define log_warn(...)           log_full(LOG_LEVEL_WARN, 0, NULL, __VA_ARGS__)
#define log_info(...)           log_full(LOG_LEVEL_INFO, 0, NULL, __VA_ARGS__)
#define log_debug(...)          log_full(LOG_LEVEL_DEBUG, 0, NULL, __VA_ARGS__)
#define log_error_errno(e, ...) log_full(LOG_LEVEL_ERROR, (e), NULL, __VA_ARGS__)
#define log_warn_errno(e, ...)  log_full(LOG_LEVEL_WARN, (e), NULL, __VA_ARGS__)

/* With a subject: log_info_s(subject, ...) prints "<subject>: message". */
#define log_error_s(s, ...)          log_full(LOG_LEVEL_ERROR, 0, (s), __VA_ARGS__)
#define log_warn_s(s, ...)           log_full(LOG_LEVEL_WARN, 0, (s), __VA_ARGS__)
#define log_info_s(s, ...)           log_full(LOG_LEVEL_INFO, 0, (s), __VA_ARGS__)
#define log_debug_s(s, ...)          log_full(LOG_LEVEL_DEBUG, 0, (s), __VA_ARGS__)
#define log_error_errno_s(s, e, ...) log_full(LOG_LEVEL_ERROR, (e), (s), __VA_ARGS__)
#define log_warn_errno_s(s, e, ...)  log_full(LOG_LEVEL_WARN, (e), (s), __VA_ARGS__)
