/*
 * main.c - caravan_port: the program behind caravan's Erlang ports, and a
 * small command line for operators.
 *
 * As a port (no arguments, stdin not a terminal) it reads {packet,4} requests
 * on stdin and writes replies on stdout until stdin closes. stdout carries
 * nothing but packets: every diagnostic goes to stderr, prefixed
 * "caravan_port:".
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist_port.h"
#include "frame.h"
#include "ops.h"

/* With nothing deferred the loop still wakes once a second; it costs nothing
 * and bounds how long a lost wakeup could stall a future timer. */
#define IDLE_POLL_MS 1000

static const char usage[] =
    "usage: caravan_port                      run as an Erlang port (stdin not a terminal)\n"
    "       caravan_port dist-port NAME [--default PORT]\n"
    "                                         print the distribution port of a node name\n"
    "       caravan_port --version | --help\n"
    "\n"
    "The port of a node is the run of digits ending its name part:\n"
    "app-4370@10.0.0.5 -> 4370. Without digits the default is used (4370).\n"
    "As a port it speaks {packet,4} external terms; see docs/protocol.md.\n";

static int send_stdout(void *ctx, const char *buf, size_t len)
{
    (void)ctx;
    return frame_write(STDOUT_FILENO, buf, len);
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

static int run_port(void)
{
    struct ops o;
    struct frame_reader reader;
    struct reply_sink sink = {.send = send_stdout, .ctx = NULL};
    int rc = EXIT_SUCCESS;

    frame_reader_init(&reader);
    if (ops_init(&o, sink) != 0) {
        fprintf(stderr, "caravan_port: out of memory at start-up\n");
        return EXIT_FAILURE;
    }

    for (;;) {
        struct pollfd fds[1] = {{.fd = STDIN_FILENO, .events = POLLIN}};
        int n = poll(fds, 1, ops_timeout(&o, IDLE_POLL_MS));
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "caravan_port: poll: %s\n", strerror(errno));
            rc = EXIT_FAILURE;
            break;
        }
        if (ops_tick(&o) != 0)
            break; /* stdout closed: the VM is gone */
        if (n <= 0)
            continue;

        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            /* Read even on POLLHUP: the last requests may still be buffered. */
            enum frame_status s = frame_reader_fill(&reader, STDIN_FILENO);
            if (handle_packets(&o, &reader) != 0)
                break;
            if (s == FRAME_EOF)
                break; /* the VM closed the port: a normal exit */
            if (s == FRAME_ERROR) {
                fprintf(stderr, "caravan_port: read: %s\n", strerror(errno));
                rc = EXIT_FAILURE;
                break;
            }
        }
    }

    ops_free(&o);
    frame_reader_free(&reader);
    return rc;
}

static int run_dist_port(int argc, char **argv)
{
    long default_port = 4370;
    const char *name = NULL;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--default") == 0 && i + 1 < argc) {
            char *end = NULL;
            default_port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || default_port < 0 || default_port > 65535) {
                fprintf(stderr, "caravan_port: --default takes a port 0..65535\n");
                return 2;
            }
        } else if (name == NULL) {
            name = argv[i];
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (name == NULL) {
        fputs(usage, stderr);
        return 2;
    }

    char msg[512];
    long port = 0;
    enum dist_port_error e =
        dist_port_from_name(name, strlen(name), default_port, &port, msg, sizeof msg);
    if (e != DIST_PORT_OK) {
        fprintf(stderr, "caravan_port: %s (%s)\n", msg, dist_port_error_atom(e));
        return 1;
    }
    printf("%ld\n", port);
    return 0;
}

int main(int argc, char **argv)
{
    /* A write to a closed stdout must come back as EPIPE, not kill us before
     * we can exit cleanly. */
    signal(SIGPIPE, SIG_IGN);
    ei_init();

    if (argc == 1) {
        if (isatty(STDIN_FILENO)) {
            fputs(usage, stderr);
            return 2;
        }
        return run_port();
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("caravan_port %s\n", CARAVAN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "dist-port") == 0)
        return run_dist_port(argc - 2, argv + 2);
    fputs(usage, stderr);
    return 2;
}
