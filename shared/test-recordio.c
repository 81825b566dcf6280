/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for recordio: framing round trips, input split at every position,
 * hostile headers (non-digits, too many digits, lengths above the cap) that
 * must fail before any allocation of the declared size, callbacks that stop
 * decoding, and a deterministic fuzz loop checked against a simple model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "recordio.h"

#define RECORDS_MAX 128

/* What the callback saw. */
typedef struct Records {
        size_t n;
        uint8_t *data[RECORDS_MAX];
        size_t len[RECORDS_MAX];
        size_t stop_at; /* 1-based record whose callback returns stop_value; 0 = never */
        int stop_value;
} Records;

static int collect(const uint8_t *data, size_t len, void *userdata)
{
        Records *r = userdata;

        assert_true(r->n < RECORDS_MAX);
        assert_true(len > 0); /* zero-length records are never delivered */
        r->data[r->n] = malloc(len);
        assert_non_null(r->data[r->n]);
        memcpy(r->data[r->n], data, len);
        r->len[r->n] = len;
        r->n++;
        if (r->stop_at != 0 && r->n == r->stop_at)
                return r->stop_value;
        return 0;
}

static void records_clear(Records *r)
{
        for (size_t i = 0; i < r->n; i++)
                free(r->data[i]);
        *r = (Records){ 0 };
}

static void assert_record(const Records *r, size_t i, const void *data, size_t len)
{
        assert_true(i < r->n);
        assert_int_equal(r->len[i], len);
        assert_memory_equal(r->data[i], data, len);
}

static int feed_str(RecordioDecoder *d, const char *s, Records *r)
{
        return recordio_feed(d, s, strlen(s), collect, r);
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t rng_below(size_t n)
{
        return n ? (size_t)(rng() % n) : 0;
}

static void test_encode(void **state)
{
        Buf out = BUF_INIT(1024);

        assert_int_equal(recordio_encode(&out, "hello", 5), 0);
        assert_int_equal(recordio_encode(&out, NULL, 0), 0);
        assert_int_equal(recordio_encode(&out, "a\n9", 3), 0);
        assert_int_equal(out.len, strlen("5\nhello0\n3\na\n9"));
        assert_memory_equal(out.data, "5\nhello0\n3\na\n9", out.len);
        buf_done(&out);
}

static void test_encode_all_or_nothing(void **state)
{
        char big[20];
        Buf out = BUF_INIT(10);

        memset(big, 'x', sizeof(big));
        assert_int_equal(buf_puts(&out, "abc"), 0);
        /* the header fits, the data does not: nothing of it may stay */
        assert_int_equal(recordio_encode(&out, big, sizeof(big)), -EMSGSIZE);
        assert_int_equal(out.len, 3);
        assert_string_equal(buf_str(&out), "abc");
        assert_int_equal(recordio_encode(&out, big, 5), 0);
        assert_string_equal(buf_str(&out), "abc5\nxxxxx");
        assert_int_equal(recordio_encode(&out, "", 0), -EMSGSIZE);
        assert_string_equal(buf_str(&out), "abc5\nxxxxx");
        buf_done(&out);
}

static void test_round_trip(void **state)
{
        static const uint8_t binary[] = { 0, '\n', '1', '2', '\n', 0xff, 0x80, '\r' };
        _cleanup_free_ char *big = malloc(300);
        Buf out = BUF_INIT(4096);
        RecordioDecoder d;
        Records r = { 0 };

        assert_non_null(big);
        memset(big, 'b', 300);
        assert_int_equal(recordio_encode(&out, "hello", 5), 0);
        assert_int_equal(recordio_encode(&out, "", 0), 0);
        assert_int_equal(recordio_encode(&out, big, 300), 0);
        assert_int_equal(recordio_encode(&out, binary, sizeof(binary)), 0);

        recordio_decoder_init(&d, 0);
        assert_true(recordio_at_boundary(&d));
        assert_int_equal(recordio_feed(&d, out.data, out.len, collect, &r), 0);
        assert_int_equal(r.n, 3);
        assert_record(&r, 0, "hello", 5);
        assert_record(&r, 1, big, 300);
        assert_record(&r, 2, binary, sizeof(binary));
        assert_int_equal(d.records, 3);
        assert_int_equal(d.offset, out.len);
        assert_true(recordio_at_boundary(&d));
        assert_null(recordio_error(&d));
        records_clear(&r);
        recordio_decoder_done(&d);
        buf_done(&out);
}

static void test_several_records_one_feed(void **state)
{
        RecordioDecoder d;
        Records r = { 0 };

        recordio_decoder_init(&d, 0);
        assert_int_equal(feed_str(&d, "3\nabc4\ndefg\n\n1\nz10\n0123456789", &r), 0);
        assert_int_equal(r.n, 4);
        assert_record(&r, 0, "abc", 3);
        assert_record(&r, 1, "defg", 4);
        assert_record(&r, 2, "z", 1);
        assert_record(&r, 3, "0123456789", 10);
        assert_true(recordio_at_boundary(&d));
        records_clear(&r);
        recordio_decoder_done(&d);
}

/* A stream with every kind of piece: records of several sizes, a zero-length
 * record, empty header lines, data that looks like headers. */
static const char split_stream[] = "5\nhello\n0\n12\n3\nabc\n4\n7\n1\n\n\n1\nx2\n\n\n";

static void assert_split_records(const Records *r)
{
        assert_int_equal(r->n, 4);
        assert_record(r, 0, "hello", 5);
        assert_record(r, 1, "3\nabc\n4\n7\n1\n", 12);
        assert_record(r, 2, "x", 1);
        assert_record(r, 3, "\n\n", 2);
}

static void test_split_everywhere(void **state)
{
        const size_t len = strlen(split_stream);

        /* whole */
        for (size_t i = 0; i <= len; i++) {
                RecordioDecoder d;
                Records r = { 0 };

                recordio_decoder_init(&d, 0);
                assert_int_equal(recordio_feed(&d, split_stream, i, collect, &r), 0);
                assert_int_equal(recordio_feed(&d, split_stream + i, len - i, collect, &r), 0);
                assert_split_records(&r);
                assert_true(recordio_at_boundary(&d));
                assert_int_equal(d.offset, len);
                records_clear(&r);
                recordio_decoder_done(&d);
        }

        /* and in three pieces, every pair of cut points */
        for (size_t i = 0; i <= len; i++)
                for (size_t j = i; j <= len; j++) {
                        RecordioDecoder d;
                        Records r = { 0 };

                        recordio_decoder_init(&d, 0);
                        assert_int_equal(recordio_feed(&d, split_stream, i, collect, &r), 0);
                        assert_int_equal(recordio_feed(&d, split_stream + i, j - i, collect, &r), 0);
                        assert_int_equal(recordio_feed(&d, split_stream + j, len - j, collect, &r), 0);
                        assert_split_records(&r);
                        records_clear(&r);
                        recordio_decoder_done(&d);
                }
}

static void test_byte_by_byte(void **state)
{
        const size_t len = strlen(split_stream);
        RecordioDecoder d;
        Records r = { 0 };

        recordio_decoder_init(&d, 0);
        for (size_t i = 0; i < len; i++)
                assert_int_equal(recordio_feed(&d, split_stream + i, 1, collect, &r), 0);
        assert_split_records(&r);
        assert_true(recordio_at_boundary(&d));
        /* an empty feed is a no-op */
        assert_int_equal(recordio_feed(&d, NULL, 0, collect, &r), 0);
        assert_int_equal(r.n, 4);
        records_clear(&r);
        recordio_decoder_done(&d);
}

static void test_zero_length_and_empty_lines(void **state)
{
        RecordioDecoder d;
        Records r = { 0 };

        recordio_decoder_init(&d, 0);
        assert_int_equal(feed_str(&d, "\n\n0\n\n00\n", &r), 0);
        assert_int_equal(r.n, 0);
        assert_int_equal(d.records, 0);
        assert_true(recordio_at_boundary(&d));
        assert_int_equal(feed_str(&d, "2\nok0\n\n", &r), 0);
        assert_int_equal(r.n, 1);
        assert_record(&r, 0, "ok", 2);
        assert_true(recordio_at_boundary(&d));
        records_clear(&r);
        recordio_decoder_done(&d);
}

static void test_non_digit_header(void **state)
{
        static const struct {
                char c;
                const char *shown;
        } bad[] = {
                { 'a', "('a')" },        { '-', "('-')" },          { ' ', "(' ')" },
                { '\r', "(byte 0x0d)" }, { '\xff', "(byte 0xff)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char stream[] = "3\nabc1?\n1\nx";
                RecordioDecoder d;
                Records r = { 0 };
                const char *e;

                stream[6] = bad[i].c;
                recordio_decoder_init(&d, 0);
                assert_int_equal(recordio_feed(&d, stream, strlen(stream), collect, &r), -EBADMSG);
                /* what came before the bad header was delivered */
                assert_int_equal(r.n, 1);
                assert_record(&r, 0, "abc", 3);
                e = recordio_error(&d);
                assert_non_null(e);
                assert_non_null(strstr(e, "non-digit"));
                assert_non_null(strstr(e, bad[i].shown));
                assert_non_null(strstr(e, "at offset 6"));
                assert_false(recordio_at_boundary(&d));

                /* and it stays failed, whatever comes next */
                assert_int_equal(feed_str(&d, "1\nx", &r), -EBADMSG);
                assert_int_equal(feed_str(&d, "\n", &r), -EBADMSG);
                assert_int_equal(r.n, 1);
                assert_non_null(recordio_error(&d));
                assert_false(recordio_at_boundary(&d));

                /* until it is reset for a new stream */
                recordio_decoder_reset(&d);
                assert_null(recordio_error(&d));
                assert_int_equal(feed_str(&d, "1\nx", &r), 0);
                assert_int_equal(r.n, 2);
                records_clear(&r);
                recordio_decoder_done(&d);
        }
}

static void test_error_offset_across_feeds(void **state)
{
        RecordioDecoder d;
        Records r = { 0 };

        recordio_decoder_init(&d, 0);
        assert_int_equal(feed_str(&d, "3\nab", &r), 0);
        assert_int_equal(feed_str(&d, "c12", &r), 0);
        assert_int_equal(feed_str(&d, "\r\n", &r), -EBADMSG);
        assert_non_null(strstr(recordio_error(&d), "at offset 7"));
        /* CRLF after a header is not tolerated: the length must be bare digits */
        recordio_decoder_reset(&d);
        assert_int_equal(feed_str(&d, "3\r\nabc", &r), -EBADMSG);
        assert_non_null(strstr(recordio_error(&d), "at offset 1"));
        records_clear(&r);
        recordio_decoder_done(&d);
}

static void test_header_digits(void **state)
{
        RecordioDecoder d;
        Records r = { 0 };

        /* 20 digits hold any uint64 and are accepted, leading zeros included */
        recordio_decoder_init(&d, 0);
        assert_int_equal(feed_str(&d, "00000000000000000005\nhello", &r), 0);
        assert_int_equal(r.n, 1);
        assert_record(&r, 0, "hello", 5);
        records_clear(&r);

        /* the 21st digit is refused even when the value is small */
        recordio_decoder_reset(&d);
        assert_int_equal(feed_str(&d, "000000000000000000001\nx", &r), -EBADMSG);
        assert_non_null(strstr(recordio_error(&d), "20 digits"));
        assert_non_null(strstr(recordio_error(&d), "at offset 20"));
        assert_int_equal(r.n, 0);

        /* a 21-digit value */
        recordio_decoder_reset(&d);
        assert_int_equal(feed_str(&d, "100000000000000000000\nx", &r), -EBADMSG);
        assert_int_equal(r.n, 0);
        assert_null(d.record.data);
        recordio_decoder_done(&d);

        /* without a practical cap, the uint64 range is the limit */
        recordio_decoder_init(&d, SIZE_MAX);
        assert_int_equal(feed_str(&d, "18446744073709551616\n", &r), -EBADMSG);
        assert_null(d.record.data);
        recordio_decoder_reset(&d);
        assert_int_equal(feed_str(&d, "18446744073709551000\nabc", &r), 0);
        assert_int_equal(r.n, 0);
        assert_false(recordio_at_boundary(&d));
        /* the declared size is not allocated up front: only what arrived */
        assert_true(d.record.cap < 4096);
        recordio_decoder_done(&d);
}

static void test_cap(void **state)
{
        char data[101];
        RecordioDecoder d;
        Records r = { 0 };

        memset(data, 'd', sizeof(data));
        recordio_decoder_init(&d, 100);

        /* exactly the cap is fine, split or not */
        assert_int_equal(feed_str(&d, "100\n", &r), 0);
        assert_int_equal(recordio_feed(&d, data, 50, collect, &r), 0);
        assert_int_equal(recordio_feed(&d, data, 50, collect, &r), 0);
        assert_int_equal(r.n, 1);
        assert_record(&r, 0, data, 100);
        records_clear(&r);

        /* one more is refused at the digit that crosses the cap, before the
         * newline and before any data: nothing was allocated for it */
        recordio_decoder_reset(&d);
        assert_int_equal(feed_str(&d, "10", &r), 0);
        assert_int_equal(feed_str(&d, "1", &r), -EBADMSG);
        assert_non_null(strstr(recordio_error(&d), "cap of 100 bytes"));
        assert_non_null(strstr(recordio_error(&d), "at offset 2"));
        assert_null(d.record.data);
        assert_int_equal(d.record.cap, 0);
        assert_int_equal(feed_str(&d, "\n", &r), -EBADMSG);
        assert_int_equal(r.n, 0);

        /* after a good record that left a buffer behind, the buffer is released */
        recordio_decoder_reset(&d);
        assert_int_equal(feed_str(&d, "5\nab", &r), 0);
        assert_int_equal(feed_str(&d, "cde101\n", &r), -EBADMSG);
        assert_int_equal(r.n, 1);
        assert_null(d.record.data);
        records_clear(&r);
        recordio_decoder_done(&d);

        /* the default cap stops a 20-digit length long before its end */
        recordio_decoder_init(&d, 0);
        assert_int_equal(d.max_record, RECORDIO_RECORD_MAX_DEFAULT);
        assert_int_equal(feed_str(&d, "99999999999999999999\n", &r), -EBADMSG);
        assert_non_null(strstr(recordio_error(&d), "exceeds the cap"));
        assert_null(d.record.data);
        assert_int_equal(d.record.cap, 0);

        /* a length just under the default cap is accepted, but memory follows
         * the bytes that actually arrive, not the length a peer claims */
        recordio_decoder_reset(&d);
        assert_int_equal(feed_str(&d, "16000000\n", &r), 0);
        assert_int_equal(recordio_feed(&d, data, 10, collect, &r), 0);
        assert_int_equal(d.record.len, 10);
        assert_true(d.record.cap < 4096);
        assert_false(recordio_at_boundary(&d));
        recordio_decoder_done(&d);
}

static void test_callback_stops(void **state)
{
        const char *stream = "1\na2\nbb3\nccc";
        RecordioDecoder d;
        Records r = { .stop_at = 2, .stop_value = -ECANCELED };

        /* the whole record in one feed (delivered without copying) */
        recordio_decoder_init(&d, 0);
        assert_int_equal(feed_str(&d, stream, &r), -ECANCELED);
        assert_int_equal(r.n, 2);
        assert_record(&r, 1, "bb", 2);
        records_clear(&r);
        recordio_decoder_done(&d);

        /* the record assembled from two feeds (delivered from the buffer) */
        r = (Records){ .stop_at = 2, .stop_value = -EPIPE };
        recordio_decoder_init(&d, 0);
        assert_int_equal(feed_str(&d, "1\na2\nb", &r), 0);
        assert_int_equal(feed_str(&d, "b3\nccc", &r), -EPIPE);
        assert_int_equal(r.n, 2);
        assert_record(&r, 1, "bb", 2);
        records_clear(&r);
        recordio_decoder_done(&d);

        /* a callback error is the caller's, not a framing error */
        r = (Records){ .stop_at = 1, .stop_value = -ENOMEM };
        recordio_decoder_init(&d, 0);
        assert_int_equal(feed_str(&d, "1\nx", &r), -ENOMEM);
        assert_null(recordio_error(&d));
        records_clear(&r);
        recordio_decoder_done(&d);
}

static void test_truncated(void **state)
{
        static const char *const partial[] = { "5", "5\n", "5\nab", "5\nabcd", "3\nabc12" };
        RecordioDecoder d;
        Records r = { 0 };

        recordio_decoder_init(&d, 0);
        assert_true(recordio_at_boundary(&d));
        for (size_t i = 0; i < ELEMENTSOF(partial); i++) {
                recordio_decoder_reset(&d);
                assert_int_equal(feed_str(&d, partial[i], &r), 0);
                assert_false(recordio_at_boundary(&d));
        }
        assert_int_equal(r.n, 1); /* only the "abc" of the last one */
        assert_int_equal(feed_str(&d, "\nabcdefghijkl", &r), 0);
        assert_true(recordio_at_boundary(&d));
        assert_int_equal(r.n, 2);
        records_clear(&r);
        recordio_decoder_done(&d);
}

static void test_large_record_in_pieces(void **state)
{
        const size_t size = 1024 * 1024, piece = 4096;
        Buf stream = BUF_INIT(size + 64);
        uint8_t *data = malloc(size);
        RecordioDecoder d;
        Records r = { 0 };

        assert_non_null(data);
        for (size_t i = 0; i < size; i++)
                data[i] = (uint8_t)(i * 31 + (i >> 12));
        assert_int_equal(recordio_encode(&stream, data, size), 0);
        assert_int_equal(recordio_encode(&stream, "tail", 4), 0);

        recordio_decoder_init(&d, 0);
        for (size_t off = 0; off < stream.len; off += piece)
                assert_int_equal(
                        recordio_feed(&d, stream.data + off, MIN(piece, stream.len - off), collect, &r), 0);
        assert_int_equal(r.n, 2);
        assert_record(&r, 0, data, size);
        assert_record(&r, 1, "tail", 4);
        assert_true(recordio_at_boundary(&d));
        /* the megabyte buffer was given back once its record was delivered */
        assert_true(d.record.cap < size);
        records_clear(&r);
        recordio_decoder_done(&d);
        buf_done(&stream);
        free(data);
}

/* Fuzz oracle: the whole stream at once, the obvious way. Returns the number
 * of records (lengths in lens[]) and whether the stream is malformed. */
static size_t model_decode(const uint8_t *s, size_t len, size_t cap, size_t *lens, size_t lens_max,
                           bool *ret_bad)
{
        size_t i = 0, n = 0;

        *ret_bad = false;
        while (i < len) {
                uint64_t v = 0;
                unsigned digits = 0;

                for (; i < len && s[i] != '\n'; i++) {
                        if (s[i] < '0' || s[i] > '9' || digits == RECORDIO_HEADER_DIGITS_MAX ||
                            v * 10 + (uint64_t)(s[i] - '0') > cap) {
                                *ret_bad = true;
                                return n;
                        }
                        v = v * 10 + (uint64_t)(s[i] - '0');
                        digits++;
                }
                if (i == len)
                        return n;
                i++; /* the newline */
                if (v == 0)
                        continue;
                if (len - i < v)
                        return n;
                assert_true(n < lens_max);
                lens[n++] = (size_t)v;
                i += (size_t)v;
        }
        return n;
}

static int count_only(const uint8_t *data, size_t len, void *userdata)
{
        Records *r = userdata;

        assert_true(r->n < RECORDS_MAX);
        r->len[r->n++] = len;
        return 0;
}

/* Fills s with a random mix of plausible records, empty lines, lengths above
 * CAP and stray bytes; returns how much was written (at most size). */
static size_t fuzz_stream(uint8_t *s, size_t size, size_t cap)
{
        size_t target = rng_below(size + 1), n = 0;

        while (n < target) {
                size_t k = rng_below(32);
                if (k == 0) {
                        s[n++] = (uint8_t)rng(); /* often not a digit */
                } else if (k < 3) {
                        s[n++] = '\n';
                } else {
                        char hdr[16];
                        size_t len = rng_below(cap + 4);
                        int h = snprintf(hdr, sizeof(hdr), "%zu\n", len);
                        for (int i = 0; i < h && n < target; i++)
                                s[n++] = (uint8_t)hdr[i];
                        for (size_t i = 0; i < len && n < target; i++)
                                s[n++] = (uint8_t)rng();
                }
        }
        return n;
}

static void test_fuzz_random_bytes(void **state)
{
        enum {
                ITERATIONS = 5000,
                STREAM_MAX = 256,
                CAP = 40
        };
        uint8_t s[STREAM_MAX];
        size_t n_failed = 0, n_records = 0;

        for (int it = 0; it < ITERATIONS; it++) {
                size_t len = fuzz_stream(s, sizeof(s), CAP), expect[RECORDS_MAX], n_expect, off = 0;
                RecordioDecoder d;
                Records r = { 0 };
                bool bad, failed = false;

                n_expect = model_decode(s, len, CAP, expect, RECORDS_MAX, &bad);

                recordio_decoder_init(&d, CAP);
                while (off < len) {
                        size_t take = 1 + rng_below(MIN(len - off, (size_t)17));
                        int k = recordio_feed(&d, s + off, take, count_only, &r);
                        if (failed) {
                                assert_int_equal(k, -EBADMSG);
                        } else if (k < 0) {
                                assert_int_equal(k, -EBADMSG);
                                failed = true;
                        }
                        off += take;
                        assert_true(d.record.cap <= CAP);
                }
                assert_int_equal(failed, bad);
                n_failed += failed;
                n_records += r.n;
                if (failed) {
                        assert_non_null(recordio_error(&d));
                        assert_memory_equal(recordio_error(&d), "recordio: ", 10);
                        assert_null(d.record.data);
                }
                assert_int_equal(r.n, n_expect);
                for (size_t i = 0; i < r.n; i++)
                        assert_int_equal(r.len[i], expect[i]);
                recordio_decoder_done(&d);
        }
        /* the input mix exercised both outcomes */
        printf("fuzz: %zu of %d streams malformed, %zu records\n", n_failed, ITERATIONS, n_records);
        assert_true(n_failed > ITERATIONS / 10 && n_failed < ITERATIONS * 9 / 10);
        assert_true(n_records > ITERATIONS);
}

static void test_fuzz_valid_streams(void **state)
{
        enum {
                ITERATIONS = 500
        };

        for (int it = 0; it < ITERATIONS; it++) {
                size_t count = rng_below(10), lens[10];
                uint8_t *payload[10];
                Buf stream = BUF_INIT(64 * 1024);
                RecordioDecoder d;
                Records r = { 0 };
                size_t off = 0, delivered = 0;

                for (size_t i = 0; i < count; i++) {
                        lens[i] = rng_below(4) == 0 ? 0 : 1 + rng_below(rng_below(2) ? 20 : 3000);
                        payload[i] = malloc(lens[i] + 1);
                        assert_non_null(payload[i]);
                        for (size_t j = 0; j < lens[i]; j++)
                                payload[i][j] = (uint8_t)rng();
                        assert_int_equal(recordio_encode(&stream, payload[i], lens[i]), 0);
                        if (rng_below(5) == 0)
                                assert_int_equal(buf_putc(&stream, '\n'), 0);
                }

                recordio_decoder_init(&d, 0);
                while (off < stream.len) {
                        size_t take = 1 + rng_below(MIN(stream.len - off, (size_t)1000));
                        assert_int_equal(recordio_feed(&d, stream.data + off, take, collect, &r), 0);
                        off += take;
                }
                assert_true(recordio_at_boundary(&d));
                for (size_t i = 0; i < count; i++) {
                        if (lens[i] == 0)
                                continue;
                        assert_record(&r, delivered, payload[i], lens[i]);
                        delivered++;
                }
                assert_int_equal(r.n, delivered);
                for (size_t i = 0; i < count; i++)
                        free(payload[i]);
                records_clear(&r);
                recordio_decoder_done(&d);
                buf_done(&stream);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode),
                cmocka_unit_test(test_encode_all_or_nothing),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_several_records_one_feed),
                cmocka_unit_test(test_split_everywhere),
                cmocka_unit_test(test_byte_by_byte),
                cmocka_unit_test(test_zero_length_and_empty_lines),
                cmocka_unit_test(test_non_digit_header),
                cmocka_unit_test(test_error_offset_across_feeds),
                cmocka_unit_test(test_header_digits),
                cmocka_unit_test(test_cap),
                cmocka_unit_test(test_callback_stops),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_large_record_in_pieces),
                cmocka_unit_test(test_fuzz_random_bytes),
                cmocka_unit_test(test_fuzz_valid_streams),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
