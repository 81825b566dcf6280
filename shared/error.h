/* SPDX-License-Identifier: Apache-2.0 */
/* A parser error that says what went wrong and where. Parsers take an optional
 * PacerError * and fill it on failure; they return a negative errno. */
#pragma once

#include <stdarg.h>

#include "macro.h"

#define PACER_ERROR_MAX 256

typedef struct PacerError {
        char msg[PACER_ERROR_MAX];
} PacerError;

/* Formats into e (when non-NULL) and returns -|code|. */
int pacer_error_set(PacerError *e, int code, const char *fmt, ...) _printf_(3, 4);
/* Prepends "prefix: " to an existing message (for adding context upwards). */
void pacer_error_prefix(PacerError *e, const char *fmt, ...) _printf_(2, 3);
