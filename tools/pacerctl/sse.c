/* SPDX-License-Identifier: Apache-2.0 */
#include "sse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define SSE_BOM "\xef\xbb\xbf"
/* Larger "retry:" values are ignored. */
#define SSE_RETRY_MAX_MS (24L * 3600 * 1000)

void sse_parser_init(SseParser *p, size_t event_max)
{
        *p = (SseParser){ .event_max = event_max, .retry_ms = -1 };
        buf_init(&p->line, event_max);
        buf_init(&p->data, event_max);
}

void sse_parser_done(SseParser *p)
{
        buf_done(&p->line);
        buf_done(&p->data);
}

static void event_clear(SseParser *p)
{
        buf_reset(&p->data);
        p->type[0] = 0;
        p->oversized = false;
}

void sse_parser_reset(SseParser *p)
{
        event_clear(p);
        buf_reset(&p->line);
        p->line_dropped = false;
        p->skip_lf = false;
        p->bom_checked = false;
}

const char *sse_parser_last_id(const SseParser *p)
{
        return p->id;
}

static int dispatch(SseParser *p, sse_event_fn on_event, void *userdata)
{
        SseEvent e;
        int r = 0;

        if (p->data.len == 0 && !p->oversized) {
                /* an event without data is not an event (the spec's rule) */
                event_clear(p);
                return 0;
        }
        if (p->data.len > 0 && p->data.data[p->data.len - 1] == '\n')
                p->data.data[--p->data.len] = 0;
        e = (SseEvent){
                .type = p->type[0] ? p->type : "message",
                .data = p->oversized ? "" : buf_str(&p->data),
                .data_len = p->oversized ? 0 : p->data.len,
                .id = p->id,
                .oversized = p->oversized,
        };
        r = on_event(&e, userdata);
        event_clear(p);
        return r < 0 ? r : 0;
}

static void set_field(SseParser *p, const char *name, size_t name_len, const char *value, size_t value_len)
{
        int r;

        if (name_len == 4 && strneq(name, "data", 4)) {
                if (p->oversized)
                        return;
                r = buf_append(&p->data, value, value_len);
                if (r >= 0)
                        r = buf_putc(&p->data, '\n');
                if (r < 0) {
                        buf_reset(&p->data);
                        p->oversized = true;
                }
        } else if (name_len == 5 && strneq(name, "event", 5)) {
                if (value_len > SSE_TYPE_MAX) {
                        p->oversized = true;
                        return;
                }
                memcpy(p->type, value, value_len);
                p->type[value_len] = 0;
        } else if (name_len == 2 && strneq(name, "id", 2)) {
                /* the spec ignores ids with NUL; ours also have a length cap */
                if (memchr(value, 0, value_len) || value_len > SSE_ID_MAX)
                        return;
                memcpy(p->id, value, value_len);
                p->id[value_len] = 0;
        } else if (name_len == 5 && strneq(name, "retry", 5)) {
                long v = 0;
                size_t i;

                for (i = 0; i < value_len && isdigit((unsigned char)value[i]); i++) {
                        v = v * 10 + (value[i] - '0');
                        if (v > SSE_RETRY_MAX_MS)
                                return;
                }
                if (i == value_len && value_len > 0)
                        p->retry_ms = v;
        }
        /* other fields are ignored, as the spec says */
}

static int process_line(SseParser *p, sse_event_fn on_event, void *userdata)
{
        const char *line = buf_str(&p->line), *colon, *value;
        size_t len = p->line.len, name_len, value_len;

        if (p->line_dropped) {
                /* part of it is lost: whatever field it was, the event is incomplete */
                p->line_dropped = false;
                p->oversized = true;
                buf_reset(&p->line);
                return 0;
        }
        if (len == 0)
                return dispatch(p, on_event, userdata);
        if (line[0] != ':') {
                colon = memchr(line, ':', len);
                name_len = colon ? (size_t)(colon - line) : len;
                value = colon ? colon + 1 : line + len;
                value_len = (size_t)(line + len - value);
                if (value_len > 0 && value[0] == ' ') {
                        value++;
                        value_len--;
                }
                set_field(p, line, name_len, value, value_len);
        }
        buf_reset(&p->line);
        return 0;
}

/* Bytes before the first CR or LF in s[0..n). */
static size_t line_part_len(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] == '\r' || s[i] == '\n')
                        return i;
        return n;
}

int sse_parser_feed(SseParser *p, const char *data, size_t len, sse_event_fn on_event, void *userdata)
{
        size_t i = 0;
        int r;

        if (len == 0)
                return 0;
        if (!p->bom_checked) {
                p->bom_checked = true;
                if (len >= STRLEN(SSE_BOM) && memcmp(data, SSE_BOM, STRLEN(SSE_BOM)) == 0)
                        i = STRLEN(SSE_BOM);
        }
        while (i < len) {
                size_t n;

                if (p->skip_lf) {
                        /* CR LF split across two feeds is one line end */
                        p->skip_lf = false;
                        if (data[i] == '\n') {
                                i++;
                                continue;
                        }
                }
                n = line_part_len(data + i, len - i);
                if (n > 0) {
                        if (!p->line_dropped && buf_append(&p->line, data + i, n) < 0) {
                                buf_reset(&p->line);
                                p->line_dropped = true;
                        }
                        i += n;
                        continue;
                }
                /* at a CR or LF: the line is complete */
                p->skip_lf = data[i] == '\r';
                i++;
                r = process_line(p, on_event, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}
