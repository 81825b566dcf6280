/* SPDX-License-Identifier: Apache-2.0 */
#include "error.h"

#include <stdio.h>
#include <string.h>

int pacer_error_set(PacerError *e, int code, const char *fmt, ...)
{
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
                va_end(ap);
        }
        return code > 0 ? -code : code;
}

void pacer_error_prefix(PacerError *e, const char *fmt, ...)
{
        char out[PACER_ERROR_MAX];
        va_list ap;
        int n;

        if (!e)
                return;
        va_start(ap, fmt);
        n = vsnprintf(out, sizeof(out), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(out) - 2)
                return; /* no room: keep the original message, which matters more */
        out[n++] = ':';
        out[n++] = ' ';
        /* truncation of the tail is fine: the message keeps its start */
        size_t room = sizeof(out) - (size_t)n - 1, len = strnlen(e->msg, room);
        memcpy(out + n, e->msg, len);
        out[(size_t)n + len] = 0;
        memcpy(e->msg, out, sizeof(out));
}
