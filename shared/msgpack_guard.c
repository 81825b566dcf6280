/* SPDX-License-Identifier: Apache-2.0 */
#include "msgpack_guard.h"

#include <stdbool.h>
#include <stdint.h>

static uint64_t be(const uint8_t *p, size_t n)
{
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

int msgpack_guard_check(const void *data, size_t len, unsigned max_depth, PacerError *err)
{
        const uint8_t *p = data;
        uint64_t pending[MSGPACK_GUARD_DEPTH_MAX + 1]; /* items left per open container */
        size_t depth = 0, off = 0;

        if (max_depth > MSGPACK_GUARD_DEPTH_MAX)
                max_depth = MSGPACK_GUARD_DEPTH_MAX;

        pending[0] = 1; /* one top-level value */
        while (depth > 0 || pending[0] > 0) {
                if (pending[depth] == 0) {
                        depth--;
                        continue;
                }
                pending[depth]--;
                if (off >= len)
                        return pacer_error_set(err, EBADMSG, "truncated at byte %zu", off);
                uint8_t c = p[off++];
                uint64_t skip = 0, items = 0, hdr = 0;
                bool container = false;

                if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
                        continue;
                if (c >= 0x80 && c <= 0x8f) {
                        items = 2 * (uint64_t)(c & 0x0f);
                        container = true;
                } else if (c >= 0x90 && c <= 0x9f) {
                        items = c & 0x0f;
                        container = true;
                } else if (c >= 0xa0 && c <= 0xbf)
                        skip = c & 0x1f;
                else
                        switch (c) {
                        case 0xc4:
                        case 0xd9:
                                hdr = 1;
                                break; /* bin8, str8 */
                        case 0xc5:
                        case 0xda:
                                hdr = 2;
                                break;
                        case 0xc6:
                        case 0xdb:
                                hdr = 4;
                                break;
                        case 0xc7:
                                hdr = 1;
                                skip = 1;
                                break; /* ext8: length, then type */
                        case 0xc8:
                                hdr = 2;
                                skip = 1;
                                break;
                        case 0xc9:
                                hdr = 4;
                                skip = 1;
                                break;
                        case 0xca:
                                skip = 4;
                                break;
                        case 0xcb:
                                skip = 8;
                                break;
                        case 0xcc:
                        case 0xd0:
                                skip = 1;
                                break;
                        case 0xcd:
                        case 0xd1:
                                skip = 2;
                                break;
                        case 0xce:
                        case 0xd2:
                                skip = 4;
                                break;
                        case 0xcf:
                        case 0xd3:
                                skip = 8;
                                break;
                        case 0xd4:
                                skip = 2;
                                break;
                        case 0xd5:
                                skip = 3;
                                break;
                        case 0xd6:
                                skip = 5;
                                break;
                        case 0xd7:
                                skip = 9;
                                break;
                        case 0xd8:
                                skip = 17;
                                break;
                        case 0xdc:
                                hdr = 2;
                                container = true;
                                break;
                        case 0xdd:
                                hdr = 4;
                                container = true;
                                break;
                        case 0xde:
                                hdr = 2;
                                container = true;
                                items = 1;
                                break; /* map: doubled below */
                        case 0xdf:
                                hdr = 4;
                                container = true;
                                items = 1;
                                break;
                        default:
                                return pacer_error_set(err, EBADMSG, "invalid msgpack byte 0x%02x at %zu", c,
                                                       off - 1);
                        }
                if (hdr) {
                        if (len - off < hdr)
                                return pacer_error_set(err, EBADMSG, "truncated at byte %zu", off);
                        uint64_t n = be(p + off, hdr);
                        off += hdr;
                        if (container)
                                items = items ? 2 * n : n;
                        else
                                skip += n;
                }
                if (container) {
                        /* every item takes at least one byte */
                        if (items > len - off)
                                return pacer_error_set(err, EBADMSG,
                                                       "a container at byte %zu claims %llu items "
                                                       "in %zu bytes",
                                                       off, (unsigned long long)items, len - off);
                        if (depth + 1 > max_depth)
                                return pacer_error_set(err, EBADMSG, "nested deeper than %u", max_depth);
                        pending[++depth] = items;
                        continue;
                }
                if (skip > len - off)
                        return pacer_error_set(err, EBADMSG, "value at byte %zu runs past the end", off);
                off += skip;
        }
        return 0;
}
