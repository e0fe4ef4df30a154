/* fds.c - see fds.h. */
#include "fds.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Logged once per episode: set at the first failure, cleared once a socket
 * can be had again. */
static bool logged;

const char *fds_exhausted(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd >= 0) {
        close(fd);
        logged = false;
        return NULL;
    }
    const char *why = errno == EMFILE   ? "out of file descriptors (EMFILE)"
                    : errno == ENFILE   ? "out of file descriptors (ENFILE, the system's limit)"
                                        : NULL;
    if (why != NULL && !logged) {
        logged = true;
        fprintf(stderr, "caravan_port: %s: DNS lookups and HTTP requests fail until some are "
                        "closed (raise the VM's `ulimit -n`)\n", why);
    }
    return why;
}
