/* SPDX-License-Identifier: Apache-2.0 */
#include "recordio.h"

#include <inttypes.h>
#include <stdio.h>

/* A record buffer larger than this is freed once its record is delivered. */
#define RECORDIO_KEEP_BUFFER (64u * 1024)

void recordio_decoder_init(RecordioDecoder *d, size_t max_record)
{
        *d = (RecordioDecoder){ .max_record = max_record ? max_record : RECORDIO_RECORD_MAX_DEFAULT };
        buf_init(&d->record, d->max_record);
}

void recordio_decoder_done(RecordioDecoder *d)
{
        buf_done(&d->record);
}

void recordio_decoder_reset(RecordioDecoder *d)
{
        size_t max = d->max_record;
        recordio_decoder_done(d);
        recordio_decoder_init(d, max);
}

const char *recordio_error(const RecordioDecoder *d)
{
        return d->state == RECORDIO_FAILED ? d->error.msg : NULL;
}

bool recordio_at_boundary(const RecordioDecoder *d)
{
        return d->state == RECORDIO_HEADER && d->digits == 0;
}

/* Enters the permanent error state; what says what was wrong with byte c. */
static int fail(RecordioDecoder *d, const char *what, unsigned char c)
{
        d->state = RECORDIO_FAILED;
        buf_done(&d->record);
        if (c >= 0x20 && c < 0x7f)
                return pacer_error_set(&d->error, EBADMSG, "recordio: %s ('%c') at offset %" PRIu64, what, c,
                                       d->offset);
        return pacer_error_set(&d->error, EBADMSG, "recordio: %s (byte 0x%02x) at offset %" PRIu64, what, c,
                               d->offset);
}

static int deliver(RecordioDecoder *d, const uint8_t *p, size_t n, recordio_record_fn cb, void *userdata)
{
        d->records++;
        d->state = RECORDIO_HEADER;
        d->digits = 0;
        d->length = 0;
        return cb(p, n, userdata);
}

int recordio_feed(RecordioDecoder *d, const void *data, size_t len, recordio_record_fn cb, void *userdata)
{
        const uint8_t *p = data, *end = p + len;
        int r;

        if (d->state == RECORDIO_FAILED)
                return -EBADMSG;

        while (p < end) {
                if (d->state == RECORDIO_HEADER) {
                        uint8_t c = *p;
                        if (c == '\n') {
                                p++;
                                d->offset++;
                                if (d->digits == 0)
                                        continue; /* empty header line: skipped, as Mesos's docs do */
                                if (d->length == 0) {
                                        /* a zero-length record carries no event; nothing to deliver */
                                        d->digits = 0;
                                        continue;
                                }
                                d->state = RECORDIO_DATA;
                                buf_reset(&d->record);
                                continue;
                        }
                        if (c < '0' || c > '9')
                                return fail(d, "non-digit byte in a length header", c);
                        if (d->digits >= RECORDIO_HEADER_DIGITS_MAX)
                                return fail(d, "length header longer than 20 digits", c);
                        uint64_t v = d->length * 10 + (uint64_t)(c - '0');
                        if (d->length > (UINT64_MAX - 9) / 10 || v > d->max_record) {
                                d->state = RECORDIO_FAILED;
                                buf_done(&d->record);
                                return pacer_error_set(
                                        &d->error, EBADMSG,
                                        "recordio: record length exceeds the cap of %zu bytes "
                                        "at offset %" PRIu64,
                                        d->max_record, d->offset);
                        }
                        d->length = v;
                        d->digits++;
                        d->offset++;
                        p++;
                        continue;
                }

                /* RECORDIO_DATA: the whole record in this feed and nothing buffered → no copy. */
                size_t have = (size_t)(end - p);
                size_t need = (size_t)d->length - d->record.len;
                if (d->record.len == 0 && have >= need) {
                        p += need;
                        d->offset += need;
                        r = deliver(d, p - need, need, cb, userdata);
                        if (r < 0)
                                return r;
                        continue;
                }
                size_t take = MIN(have, need);
                r = buf_append(&d->record, p, take);
                if (r < 0) /* cannot happen below the cap checked in the header, but never overrun */
                        return fail(d, "record buffer exhausted", p[0]);
                p += take;
                d->offset += take;
                if (d->record.len == d->length) {
                        r = deliver(d, (const uint8_t *)d->record.data, d->record.len, cb, userdata);
                        /* keep a small buffer for the next split record, give a big one back */
                        if (d->record.cap > RECORDIO_KEEP_BUFFER)
                                buf_done(&d->record);
                        else
                                buf_reset(&d->record);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int recordio_encode(Buf *out, const void *data, size_t len)
{
        char hdr[RECORDIO_HEADER_DIGITS_MAX + 2];
        int n = snprintf(hdr, sizeof(hdr), "%zu\n", len);
        size_t old = out->len;
        int r;

        r = buf_append(out, hdr, (size_t)n);
        if (r >= 0)
                r = buf_append(out, data, len);
        if (r < 0 && out->data) {
                /* all or nothing: the header may be in, so cut back and terminate again */
                out->len = old;
                out->data[old] = 0;
        }
        return r;
}
