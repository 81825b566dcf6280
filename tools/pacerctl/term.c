/* SPDX-License-Identifier: Apache-2.0 */
#include "term.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "json.h"

static const char *const color_codes[_TERM_COLOR_MAX] = {
        [TERM_COLOR_NONE] = "",           [TERM_COLOR_RED] = "\033[31m", [TERM_COLOR_GREEN] = "\033[32m",
        [TERM_COLOR_YELLOW] = "\033[33m", [TERM_COLOR_BOLD] = "\033[1m",
};

bool term_is_tty(FILE *f)
{
        return isatty(fileno(f)) == 1;
}

bool term_can_redraw(FILE *f)
{
        const char *term = getenv("TERM");

        return term_is_tty(f) && !(term && streq(term, "dumb"));
}

bool term_color_allowed(FILE *f)
{
        const char *no_color = getenv("NO_COLOR");

        return !(no_color && *no_color) && term_can_redraw(f);
}

const char *term_color_on(TermColor c)
{
        if (c < 0 || c >= _TERM_COLOR_MAX)
                return "";
        return color_codes[c];
}

const char *term_color_off(void)
{
        return "\033[0m";
}

unsigned term_width(FILE *f)
{
        struct winsize ws = {};

        if (ioctl(fileno(f), TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
                return TERM_WIDTH_DEFAULT;
        return ws.ws_col;
}

/* Length of the UTF-8 character at s, 0 when the bytes there are not one. */
static size_t char_len(const char *s, size_t left)
{
        if ((unsigned char)s[0] < 0x80)
                return 1;
        for (size_t n = 2; n <= 4 && n <= left; n++)
                if (json_utf8_valid(s, n, NULL))
                        return n;
        return 0;
}

/* C0 controls, DEL, and C1 controls (U+0080..U+009F), which some terminals
 * take as the start of an escape sequence. */
static bool is_control(const char *s, size_t n)
{
        unsigned char c = (unsigned char)s[0];

        if (n == 1)
                return c < 0x20 || c == 0x7f;
        return n == 2 && c == 0xc2 && (unsigned char)s[1] < 0xa0;
}

int term_sanitize(Buf *out, const char *s, size_t max)
{
        size_t len = strlen(s), i = 0, written = 0;
        int r;

        while (i < len) {
                size_t n = char_len(s + i, len - i);
                bool keep = n > 0 && !is_control(s + i, n);
                size_t w = keep ? n : 1;

                if (max > 0 && written + w > max)
                        return buf_puts(out, "...");
                r = keep ? buf_append(out, s + i, n) : buf_putc(out, '?');
                if (r < 0)
                        return r;
                written += w;
                /* one '?' per character, or per byte that is not part of one */
                i += n > 0 ? n : 1;
        }
        return 0;
}

size_t term_text_width(const char *s)
{
        size_t w = 0;

        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        w++;
        return w;
}

void term_error(const char *fmt, ...)
{
        va_list ap;

        fflush(stdout);
        fputs("pacerctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}
