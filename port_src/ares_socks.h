/*
 * ares_socks.h - the sockets c-ares asks to have watched, as its socket
 * state callback reports them: one table per c-ares channel, turned into
 * poll() entries. Used by dns.c (lookups) and http_resolve.c (the HTTP
 * client's host names).
 */
#ifndef CARAVAN_ARES_SOCKS_H
#define CARAVAN_ARES_SOCKS_H

#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */
#include <ares.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

struct ares_sock {
    ares_socket_t fd;
    bool readable, writable;
};

/* Applies one socket-state report to socks[0..*n) (room for cap): updates
 * the socket, removes it when it wants nothing, appends a new one. Returns
 * 0, or -1 when a new socket does not fit (it is then not watched). */
int ares_socks_update(struct ares_sock *socks, size_t *n, size_t cap, ares_socket_t fd,
                      int readable, int writable);

/* The poll() entry for s, revents cleared. */
struct pollfd ares_sock_pollfd(const struct ares_sock *s);

#endif
