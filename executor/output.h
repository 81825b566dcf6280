/* SPDX-License-Identifier: Apache-2.0 */
/* Copies a task's stdout or stderr from a pipe into a file in the sandbox,
 * appending, with a size cap: when the file would pass the cap it is renamed
 * to "<name>.1" (replacing the previous one) and a fresh file is started, so
 * a chatty task never fills the agent's disk. Driven by the event loop. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

typedef struct OutputSink OutputSink;

/* Default cap per file; at most twice this is kept (current + one rotation). */
#define OUTPUT_MAX_DEFAULT (10u * 1024 * 1024)

/* Takes ownership of pipe_fd (the read end). path is the file to append to. */
int output_sink_new(struct ev_loop *loop, int pipe_fd, const char *path, size_t max_bytes, OutputSink **ret);
/* Reads what is buffered in the pipe now (without blocking) and stops. */
void output_sink_drain(OutputSink *s);
/* True once the write end was closed by every writer and all data was copied. */
int output_sink_at_eof(const OutputSink *s);
uint64_t output_sink_rotations(const OutputSink *s);
OutputSink *output_sink_free(OutputSink *s);
