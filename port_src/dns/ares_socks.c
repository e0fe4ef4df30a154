/* ares_socks.c - c-ares' socket table; see ares_socks.h. */
#include "ares_socks.h"

int ares_socks_library_init(void)
{
    static bool ready = false;
    if (!ready) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
            return -1;
        ready = true;
    }
    return 0;
}

int ares_socks_update(struct ares_socks *t, ares_socket_t fd, int readable, int writable)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->socks[i].fd != fd)
            continue;
        if (!readable && !writable)
            t->socks[i] = t->socks[--t->n];
        else
            t->socks[i] = (struct ares_sock){fd, readable != 0, writable != 0};
        return 0;
    }
    if (!readable && !writable)
        return 0;
    if (t->n >= ARES_SOCKS_MAX)
        return -1;
    t->socks[t->n++] = (struct ares_sock){fd, readable != 0, writable != 0};
    return 0;
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    /* ares_socks_admit refused any socket beyond the room: it fits. */
    (void)ares_socks_update(data, fd, readable, writable);
}

int ares_socks_admit(ares_socket_t fd, int type, void *data)
{
    (void)fd;
    (void)type;
    const struct ares_socks *t = data;
    return t->n < ARES_SOCKS_MAX ? 0 : -1;
}

void ares_socks_options(struct ares_socks *t, struct ares_options *o, int *mask)
{
    o->sock_state_cb = sock_state;
    o->sock_state_cb_data = t;
    *mask |= ARES_OPT_SOCK_STATE_CB;
}

void ares_socks_guard(struct ares_socks *t, ares_channel channel)
{
    ares_set_socket_callback(channel, ares_socks_admit, t);
}

struct pollfd ares_socks_pollfd(const struct ares_socks *t, size_t i)
{
    const struct ares_sock *s = &t->socks[i];
    return (struct pollfd){.fd = s->fd,
                           .events = (short)((s->readable ? POLLIN : 0) |
                                             (s->writable ? POLLOUT : 0))};
}
