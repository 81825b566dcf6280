/* SPDX-License-Identifier: Apache-2.0 */
/* Mesos RecordIO: "<decimal length>\n<bytes>" records in a stream. The decoder
 * accepts input split anywhere (down to one byte at a time), caps the record
 * size before allocating, and stops for good at the first malformed header. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

/* The default cap on one record: a Mesos event carrying a large TaskInfo is
 * a few KiB; an OFFERS event with hundreds of offers stays well below this. */
#define RECORDIO_RECORD_MAX_DEFAULT (16u * 1024 * 1024)
/* Digits in a length header: 20 holds any uint64. */
#define RECORDIO_HEADER_DIGITS_MAX 20

/* Called once per complete record. Return < 0 to stop decoding; that value is
 * returned by recordio_feed(). The data is only valid during the call. */
typedef int (*recordio_record_fn)(const uint8_t *data, size_t len, void *userdata);

typedef struct RecordioDecoder {
        enum {
                RECORDIO_HEADER,
                RECORDIO_DATA,
                RECORDIO_FAILED
        } state;
        uint64_t length; /* of the record being read */
        unsigned digits; /* seen in the current header */
        Buf record;      /* partial record, when it spans feeds */
        size_t max_record;
        uint64_t offset;  /* bytes consumed since the stream started */
        uint64_t records; /* delivered */
        PacerError error;
} RecordioDecoder;

void recordio_decoder_init(RecordioDecoder *d, size_t max_record);
void recordio_decoder_done(RecordioDecoder *d);
/* Back to the start of a stream (a new connection). */
void recordio_decoder_reset(RecordioDecoder *d);

/* Feeds bytes; calls cb for each complete record. Returns 0, -EBADMSG on a
 * malformed or oversized header (see recordio_error()), or the callback's
 * negative value. After an error the decoder refuses further input. */
int recordio_feed(RecordioDecoder *d, const void *data, size_t len, recordio_record_fn cb, void *userdata);
const char *recordio_error(const RecordioDecoder *d);
/* True when the stream ended cleanly between records. */
bool recordio_at_boundary(const RecordioDecoder *d);

/* Appends one framed record to out. */
int recordio_encode(Buf *out, const void *data, size_t len);
