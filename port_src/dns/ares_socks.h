/*
 * ares_socks.h - what every c-ares user of the program shares: the one
 * place c-ares' library state is initialised, and the sockets one channel
 * asks to have watched, as its socket-state callback reports them, turned
 * into poll() entries. Used by dns.c (lookups) and http_resolve.c (the HTTP
 * client's host names).
 *
 * The table has a fixed room; a socket beyond it is refused when c-ares
 * opens it (c-ares then treats that server as unreachable and moves on),
 * so every socket a channel has open is polled. Never a socket left open
 * and unwatched, whatever the server list.
 */
#ifndef CARAVAN_ARES_SOCKS_H
#define CARAVAN_ARES_SOCKS_H

#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */
#include <ares.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

/* Sockets one channel may hold: a UDP and a TCP socket for each of 8 servers. */
#define ARES_SOCKS_MAX 16

struct ares_sock {
    ares_socket_t fd;
    bool readable, writable;
};

struct ares_socks {
    struct ares_sock socks[ARES_SOCKS_MAX];
    size_t n;
};

/* ares_library_init, once for the whole program, before any channel is
 * made. Returns 0, or -1 when c-ares cannot be initialised. */
int ares_socks_library_init(void);

/* Before ares_init_options: has o report sockets into t (adds
 * ARES_OPT_SOCK_STATE_CB to *mask). */
void ares_socks_options(struct ares_socks *t, struct ares_options *o, int *mask);

/* After ares_init_options: has the channel refuse a socket t has no room for. */
void ares_socks_guard(struct ares_socks *t, ares_channel channel);

/* The callbacks the two above install, for tests: the socket-state report
 * (updates, removes or appends a socket; -1 if it does not fit, which the
 * guard prevents), and the open-socket check (0, or -1 when t is full). */
int ares_socks_update(struct ares_socks *t, ares_socket_t fd, int readable, int writable);
int ares_socks_admit(ares_socket_t fd, int type, void *t);

/* The poll() entry for t->socks[i], revents cleared. */
struct pollfd ares_socks_pollfd(const struct ares_socks *t, size_t i);

#endif
