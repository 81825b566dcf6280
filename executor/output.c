/* SPDX-License-Identifier: Apache-2.0 */
#include "output.h"

#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"

/* One read per loop wake-up at most this big; shared, the loop is single-threaded. */
#define OUTPUT_CHUNK (32u * 1024)

struct OutputSink {
        struct ev_loop *loop;
        ev_io io;
        int pipe_fd;
        int file_fd;
        char *path;
        size_t max_bytes;
        uint64_t size;
        uint64_t rotations;
        int eof;
        int failed; /* the file could not be written: data is discarded, logged once */
};

static uint8_t chunk[OUTPUT_CHUNK];

static int open_file(OutputSink *s)
{
        struct stat st;

        s->file_fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
        if (s->file_fd < 0)
                return negative_errno();
        s->size = fstat(s->file_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        return 0;
}

static int rotate(OutputSink *s)
{
        _cleanup_free_ char *old = NULL;

        if (asprintf(&old, "%s.1", s->path) < 0)
                return -ENOMEM;
        s->file_fd = safe_close(s->file_fd);
        if (rename(s->path, old) < 0 && errno != ENOENT)
                log_warn_errno(errno, "cannot rotate %s: %m", s->path);
        s->rotations++;
        return open_file(s);
}

static void write_all(OutputSink *s, const uint8_t *p, size_t n)
{
        while (n > 0 && !s->failed) {
                size_t room;
                ssize_t w;

                if (s->size >= s->max_bytes && rotate(s) < 0) {
                        s->failed = 1;
                        log_error_errno(errno, "cannot reopen %s after rotation: task output is discarded",
                                        s->path);
                        return;
                }
                room = s->max_bytes - (size_t)s->size;
                w = write(s->file_fd, p, MIN(n, room));
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        s->failed = 1;
                        log_error_errno(errno, "cannot write %s: %m: task output is discarded", s->path);
                        return;
                }
                s->size += (uint64_t)w;
                p += w;
                n -= (size_t)w;
        }
}

/* Reads until the pipe is empty (or at most a few chunks, to stay fair to the rest of the loop). */
static void pump(OutputSink *s, int max_reads)
{
        for (int i = 0; i < max_reads && !s->eof; i++) {
                ssize_t n = read(s->pipe_fd, chunk, sizeof(chunk));
                if (n > 0) {
                        write_all(s, chunk, (size_t)n);
                        continue;
                }
                if (n == 0) {
                        s->eof = 1;
                        ev_io_stop(s->loop, &s->io);
                        return;
                }
                if (errno != EINTR)
                        return; /* EAGAIN: empty for now */
        }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
        pump(w->data, 4);
}

int output_sink_new(struct ev_loop *loop, int pipe_fd, const char *path, size_t max_bytes, OutputSink **ret)
{
        _cleanup_free_ OutputSink *s = calloc(1, sizeof(*s));
        int r;

        if (!s) {
                safe_close(pipe_fd);
                return -ENOMEM;
        }
        s->loop = loop;
        s->pipe_fd = pipe_fd;
        s->max_bytes = max_bytes ? max_bytes : OUTPUT_MAX_DEFAULT;
        s->path = strdup(path);
        if (!s->path) {
                safe_close(pipe_fd);
                return -ENOMEM;
        }
        r = open_file(s);
        if (r < 0) {
                safe_close(pipe_fd);
                free(s->path);
                return r;
        }
        fcntl(pipe_fd, F_SETFL, fcntl(pipe_fd, F_GETFL) | O_NONBLOCK);
        ev_io_init(&s->io, on_readable, pipe_fd, EV_READ);
        s->io.data = s;
        ev_io_start(loop, &s->io);
        *ret = TAKE_PTR(s);
        return 0;
}

void output_sink_drain(OutputSink *s)
{
        if (s)
                pump(s, 64);
}

int output_sink_at_eof(const OutputSink *s)
{
        return s ? s->eof : 1;
}

uint64_t output_sink_rotations(const OutputSink *s)
{
        return s->rotations;
}

OutputSink *output_sink_free(OutputSink *s)
{
        if (!s)
                return NULL;
        ev_io_stop(s->loop, &s->io);
        safe_close(s->pipe_fd);
        safe_close(s->file_fd);
        free(s->path);
        free(s);
        return NULL;
}
