/*
 * loop.c - the port's loop: {packet,4} requests on stdin, replies on stdout
 * (non-blocking, through frame.h's writer), and every backend's descriptors
 * in one poll(); see loop.h.
 */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "frame.h"
#include "http.h"
#include "ops.h"

/* With nothing deferred the loop still wakes once a second; it costs nothing
 * and bounds how long a lost wakeup could stall a future timer. */
#define IDLE_POLL_MS 1000

static int send_stdout(void *ctx, const char *buf, size_t len)
{
    return frame_writer_send(ctx, (void *)buf, len, false);
}

static int send_stdout_owned(void *ctx, char *buf, size_t len)
{
    return frame_writer_send(ctx, buf, len, true);
}

/* Drains every complete packet the reader holds. Returns -1 when stdout is gone. */
static int handle_packets(struct ops *o, struct frame_reader *r)
{
    for (;;) {
        const uint8_t *data = NULL;
        size_t len = 0;
        switch (frame_reader_next(r, &data, &len)) {
        case FRAME_PACKET:
            if (ops_packet(o, (const char *)data, len) != 0)
                return -1;
            break;
        case FRAME_EMPTY:
            ops_dropped(o, "empty packet", 0);
            break;
        case FRAME_OVERSIZE:
            ops_dropped(o, "larger than the 1 MiB limit, discarded", r->discard);
            break;
        default:
            return 0;
        }
    }
}

/* Reads stdin and handles every complete request. Returns -1 when the
 * loop must end: stdout gone, stdin closed (a normal exit) or failing (*rc
 * set). Reads even on POLLHUP: the last requests may still be buffered. */
static int read_input(struct ops *o, struct frame_reader *reader, int *rc)
{
    enum frame_status s = frame_reader_fill(reader, STDIN_FILENO);
    if (handle_packets(o, reader) != 0)
        return -1;
    if (s == FRAME_EOF)
        return -1; /* the VM closed the port: a normal exit */
    if (s == FRAME_ERROR) {
        fprintf(stderr, "caravan_port: read: %s\n", strerror(errno));
        *rc = EXIT_FAILURE;
        return -1;
    }
    return 0;
}

static bool any_revents(const struct pollfd *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i].revents != 0)
            return true;
    return false;
}

int loop_run(void)
{
    /* The program never needs to gain privileges (no setuid helpers, no
     * file capabilities): make sure nothing it could be tricked into
     * executing can. Best effort: older kernels lack the option. */
    (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

    struct ops o;
    struct frame_reader reader;
    struct frame_writer writer;
    struct reply_sink sink = {.send = send_stdout, .send_owned = send_stdout_owned,
                              .ctx = &writer};
    int rc = EXIT_SUCCESS;

    /* Replies the VM has not read yet wait in the writer, not in write(2):
     * the loop goes on meanwhile (frame.h). */
    int flags = fcntl(STDOUT_FILENO, F_GETFL);
    if (flags < 0 || fcntl(STDOUT_FILENO, F_SETFL, flags | O_NONBLOCK) < 0) {
        fprintf(stderr, "caravan_port: stdout: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    frame_writer_init(&writer, STDOUT_FILENO);
    frame_reader_init(&reader);
    if (ops_init(&o, sink) != 0) {
        fprintf(stderr, "caravan_port: out of memory at start-up\n");
        return EXIT_FAILURE;
    }
    o.out = &writer.counters;

    struct pollfd *fds = NULL;
    size_t fds_cap = 0;
    bool backends_owed = false; /* requests went first: the backends run next */
    for (;;) {
        /* stdin first, then every backend's descriptors (ops.h), however
         * many libcurl opens, then stdout while replies wait. */
        size_t cap = 2 + ops_nfds(&o);
        if (cap > fds_cap) {
            struct pollfd *grown = realloc(fds, cap * sizeof *grown);
            if (grown == NULL) {
                fprintf(stderr, "caravan_port: out of memory for the poll table\n");
                rc = EXIT_FAILURE;
                break;
            }
            fds = grown;
            fds_cap = cap;
        }
        fds[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
        size_t nbackends = ops_poll_fds(&o, fds + 1, cap - 2);
        size_t nfds = 1 + nbackends;
        size_t out = nfds;
        if (frame_writer_pending(&writer))
            fds[nfds++] = (struct pollfd){.fd = STDOUT_FILENO, .events = POLLOUT};
        int n = poll(fds, nfds, backends_owed ? 0 : ops_timeout(&o, IDLE_POLL_MS));
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "caravan_port: poll: %s\n", strerror(errno));
            rc = EXIT_FAILURE;
            break;
        }
        if (n < 0)
            continue;
        if (out < nfds && fds[out].revents != 0 && frame_writer_flush(&writer) != 0)
            break; /* stdout closed: the VM is gone */
        bool input = (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
        if (input && !backends_owed && any_revents(fds + 1, nbackends)) {
            /* Requests first: a ping that came in while the last turn
             * parsed a big DNS answer waits for that turn only, not for the
             * next answer too (one 41 KB SRV answer is a millisecond or
             * more). The backends' readiness is read again before they
             * run, by a poll that does not wait: what the requests just
             * did (a cancel closing a socket whose number a new request
             * reuses) makes these revents stale. Then they run first,
             * whatever came in meanwhile, so that a VM that never stops
             * sending cannot starve them. */
            if (read_input(&o, &reader, &rc) != 0)
                break;
            backends_owed = true;
            continue;
        }
        backends_owed = false;
        ops_process(&o, fds + 1, nbackends);
        if (ops_tick(&o) != 0 || o.r.failed)
            break; /* stdout closed: the VM is gone */
        if (input && read_input(&o, &reader, &rc) != 0)
            break;
    }

    free(fds);
    ops_free(&o);
    frame_reader_free(&reader);
    frame_writer_free(&writer);
    if (http_library_loading()) {
        /* IMPORTANT: exit() would wait for the dynamic linker's lock, which
         * the loader thread holds inside dlopen (a library's constructor may
         * take any time), or tear down libraries OpenSSL is initialising:
         * leave now. Everything of ours is freed; stdout was written with
         * write(2) and stderr is unbuffered. */
        _exit(rc);
    }
    return rc;
}
