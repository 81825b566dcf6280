/* SPDX-License-Identifier: Apache-2.0 */
/* A guard in front of msgpack-c: msgpack_unpack_next() trusts a map32 header
 * claiming four billion entries and allocates for them. This walks the bytes
 * without allocating and checks that every length and element count fits in
 * what is left, and that nesting stays shallow, before msgpack-c sees them. */
#pragma once

#include <stddef.h>

#include "error.h"

#define MSGPACK_GUARD_DEPTH_MAX 32

/* 0 when data starts with one complete msgpack value within the bounds
 * (trailing bytes are the caller's business), else -EBADMSG with err saying
 * what is wrong and at which byte. */
int msgpack_guard_check(const void *data, size_t len, unsigned max_depth, PacerError *err);
