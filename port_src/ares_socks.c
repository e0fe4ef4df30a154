/* ares_socks.c - c-ares' socket table; see ares_socks.h. */
#include "ares_socks.h"

int ares_socks_update(struct ares_sock *socks, size_t *n, size_t cap, ares_socket_t fd,
                      int readable, int writable)
{
    for (size_t i = 0; i < *n; i++) {
        if (socks[i].fd != fd)
            continue;
        if (!readable && !writable)
            socks[i] = socks[--*n];
        else
            socks[i] = (struct ares_sock){fd, readable != 0, writable != 0};
        return 0;
    }
    if (!readable && !writable)
        return 0;
    if (*n >= cap)
        return -1;
    socks[(*n)++] = (struct ares_sock){fd, readable != 0, writable != 0};
    return 0;
}

struct pollfd ares_sock_pollfd(const struct ares_sock *s)
{
    return (struct pollfd){.fd = s->fd,
                           .events = (short)((s->readable ? POLLIN : 0) |
                                             (s->writable ? POLLOUT : 0))};
}
