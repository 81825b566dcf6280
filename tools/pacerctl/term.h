/* SPDX-License-Identifier: Apache-2.0 */
/* What pacerctl writes to a terminal: text from the server made safe to print
 * (no control characters, no invalid UTF-8, capped), colours only on a TTY
 * without NO_COLOR, the terminal's width, and the one-line error format. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "macro.h"

typedef enum TermColor {
        TERM_COLOR_NONE,
        TERM_COLOR_RED,
        TERM_COLOR_GREEN,
        TERM_COLOR_YELLOW,
        TERM_COLOR_BOLD,
        _TERM_COLOR_MAX,
} TermColor;

/* Width assumed when the terminal does not say. */
#define TERM_WIDTH_DEFAULT 80

bool term_is_tty(FILE *f);
/* A TTY whose TERM is not "dumb": a line can be redrawn with CR and EL. */
bool term_can_redraw(FILE *f);
/* term_can_redraw(), and NO_COLOR unset or empty. */
bool term_color_allowed(FILE *f);
/* Escape sequences; "" for TERM_COLOR_NONE. */
const char *term_color_on(TermColor c);
const char *term_color_off(void);
/* Columns of the terminal f is, TERM_WIDTH_DEFAULT when unknown. */
unsigned term_width(FILE *f);

/* Appends s with control characters (C0, DEL, C1) and invalid UTF-8 bytes
 * replaced by '?', cut to at most max bytes (0 = no cap) at a character
 * boundary with "..." added. -EMSGSIZE/-ENOMEM from the buffer. */
int term_sanitize(Buf *out, const char *s, size_t max);
/* Display width of a sanitized string: its code points. */
size_t term_text_width(const char *s);

/* "pacerctl: <message>" on stderr. */
void term_error(const char *fmt, ...) _printf_(1, 2);
