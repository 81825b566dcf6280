/* SPDX-License-Identifier: Apache-2.0 */
/* What the benchmark helpers share: a monotonic clock comparable across
 * processes (Python's time.monotonic() reads the same one), blocking loopback
 * TCP with Nagle off, and one HTTP/1.1 exchange on a connection. They are
 * measuring instruments, not product code: blocking calls are fine here. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Caps on what the helpers read. */
#define BENCH_FILE_MAX    (1024 * 1024)
#define BENCH_HEADERS_MAX (16 * 1024)
#define BENCH_BODY_MAX    (1024 * 1024)

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* Parses a decimal number in [min, max]. */
int bench_parse_number(const char *s, long min, long max, long *ret);

/* Connects to "ip:port" (IPv4) with TCP_NODELAY set, as libcurl does. */
int bench_connect(const char *address);

int bench_write_all(int fd, const void *data, size_t len);

/* The whole file, NUL-terminated (the length excludes the NUL); at most BENCH_FILE_MAX bytes. */
int bench_read_file(const char *path, char **ret, size_t *ret_len);

/* Sends a complete request and reads one response: headers, then a body of
 * Content-Length bytes, or to end of file when the server said
 * "Connection: close" without a length. Returns the status code. */
int bench_http_exchange(int fd, const void *request, size_t len);
