/* c-ares' socket table (port_src/ares_socks.c), on a real channel: a
 * channel never has a socket open that the table does not watch. Before,
 * http_resolve.c's channel (whose servers come from the host's
 * resolv.conf, any number of them) logged a socket past the room and left
 * it open and unpolled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ares_socks.h"

/* More servers than the table has room for, each a UDP socket that never
 * answers: c-ares asks them one after another, keeping each socket. */
#define SILENT_SERVERS (ARES_SOCKS_MAX + 3)

/* Sockets this process has open, from /proc/self/fd. */
static int open_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0 && strncmp(target, "socket:", 7) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    (void)abuf;
    (void)alen;
    *(int *)arg = status;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sockets_past_the_room_are_refused(void **state)
{
    (void)state;
    int silent[SILENT_SERVERS];
    char csv[SILENT_SERVERS * 24] = "";
    for (int i = 0; i < SILENT_SERVERS; i++) {
        silent[i] = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        assert_int_equal(bind(silent[i], (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(getsockname(silent[i], (struct sockaddr *)&a, &len), 0);
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "%s127.0.0.1:%u", i ? "," : "",
                 ntohs(a.sin_port));
    }
    assert_int_equal(ares_library_init(ARES_LIB_INIT_ALL), ARES_SUCCESS);
    int before = open_sockets(); /* the silent servers' own */
    struct ares_socks table;
    memset(&table, 0, sizeof table);
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    o.timeout = 20; /* per server */
    o.tries = 1;
    o.flags = ARES_FLAG_NOSEARCH;
    ares_socks_options(&table, &o, &mask);
    ares_channel ch;
    assert_int_equal(ares_init_options(&ch, &o, mask), ARES_SUCCESS);
    ares_socks_guard(&table, ch);
    assert_int_equal(ares_set_servers_ports_csv(ch, csv), ARES_SUCCESS);

    int status = -1;
    size_t most = 0;
    ares_query(ch, "app.service.consul", 1 /* C_IN */, 33 /* T_SRV */, on_answer, &status);
    int64_t give_up = now_ms() + 10000;
    while (status == -1 && now_ms() < give_up) {
        /* Every socket the channel has open is in the table, watched. */
        assert_int_equal(open_sockets() - before, (int)table.n);
        struct pollfd fds[ARES_SOCKS_MAX];
        size_t n = table.n;
        for (size_t i = 0; i < n; i++)
            fds[i] = ares_socks_pollfd(&table, i);
        struct timeval tv, *t = ares_timeout(ch, NULL, &tv);
        (void)poll(fds, n, t ? (int)(t->tv_sec * 1000 + t->tv_usec / 1000) : 50);
        ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        if (table.n > most)
            most = table.n;
    }
    /* The query went through the servers until the table was full: the
     * sockets past it were refused, not opened unwatched. */
    assert_int_not_equal(status, -1);
    assert_int_equal(most, ARES_SOCKS_MAX);
    assert_int_equal(open_sockets() - before, (int)table.n);
    ares_destroy(ch);
    assert_int_equal(table.n, 0);
    for (int i = 0; i < SILENT_SERVERS; i++)
        close(silent[i]);
}

static void table_updates(void **state)
{
    (void)state;
    struct ares_socks t;
    memset(&t, 0, sizeof t);
    assert_int_equal(ares_socks_update(&t, 5, 1, 0), 0);
    assert_int_equal(ares_socks_update(&t, 6, 1, 1), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(ares_socks_pollfd(&t, 1).events, POLLIN | POLLOUT);
    assert_int_equal(ares_socks_update(&t, 5, 0, 1), 0); /* changed */
    assert_int_equal(ares_socks_pollfd(&t, 0).events, POLLOUT);
    assert_int_equal(ares_socks_update(&t, 5, 0, 0), 0); /* removed */
    assert_int_equal(t.n, 1);
    assert_int_equal(ares_socks_pollfd(&t, 0).fd, 6);
    assert_int_equal(ares_socks_update(&t, 9, 0, 0), 0); /* unknown, nothing wanted */
    assert_int_equal(t.n, 1);
    for (int fd = 10; t.n < ARES_SOCKS_MAX; fd++)
        assert_int_equal(ares_socks_update(&t, fd, 1, 0), 0);
    assert_int_equal(ares_socks_admit(99, SOCK_DGRAM, &t), -1);
    assert_int_equal(ares_socks_update(&t, 99, 1, 0), -1);
    assert_int_equal(ares_socks_update(&t, 10, 0, 0), 0);
    assert_int_equal(ares_socks_admit(99, SOCK_DGRAM, &t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_updates),
        cmocka_unit_test(sockets_past_the_room_are_refused),
    };
    return cmocka_run_group_tests_name("ares_socks", tests, NULL, NULL);
}
