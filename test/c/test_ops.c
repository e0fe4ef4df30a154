/* Requests end to end through ops_packet(): every class of malformed term gets
 * an error reply (or, without a readable id, is dropped and counted), and the
 * operations answer as docs/protocol.md says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ei.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "ops.h"
#include "ops_catalog.h"

#define MAX_REPLIES 16

/* Planting an allocation failure: test_ops is linked with
 * -Wl,--wrap=ei_x_encode_atom (Makefile), so every ei_x_encode_atom of the
 * program comes here. Armed with an atom, the next encode of that atom
 * fails once, as it does when the reply buffer cannot grow. */
int __real_ei_x_encode_atom(ei_x_buff *x, const char *s);
int __wrap_ei_x_encode_atom(ei_x_buff *x, const char *s);
static const char *fail_atom;

int __wrap_ei_x_encode_atom(ei_x_buff *x, const char *s)
{
    if (fail_atom != NULL && strcmp(s, fail_atom) == 0) {
        fail_atom = NULL;
        return -1;
    }
    return __real_ei_x_encode_atom(x, s);
}

/* ei's reallocs, counted (test_ops is linked with -Wl,--wrap=ei_realloc
 * too): how often a reply's buffer grew. */
void *__real_ei_realloc(void *p, size_t size);
void *__wrap_ei_realloc(void *p, size_t size);
static int ei_reallocs;

void *__wrap_ei_realloc(void *p, size_t size)
{
    ei_reallocs++;
    return __real_ei_realloc(p, size);
}

struct captured {
    char *buf[MAX_REPLIES];
    size_t len[MAX_REPLIES];
    int count;
};

static int capture(void *ctx, const char *buf, size_t len)
{
    struct captured *c = ctx;
    assert_true(c->count < MAX_REPLIES);
    c->buf[c->count] = malloc(len);
    memcpy(c->buf[c->count], buf, len);
    c->len[c->count++] = len;
    return 0;
}

struct fixture {
    struct ops ops;
    struct captured out;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct reply_sink sink = {.send = capture, .ctx = &f->out};
    assert_int_equal(ops_init(&f->ops, sink), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < f->out.count; i++)
        free(f->out.buf[i]);
    ops_free(&f->ops);
    free(f);
    return 0;
}

static void send_x(struct fixture *f, ei_x_buff *x)
{
    assert_int_equal(ops_packet(&f->ops, x->buff, (size_t)x->index), 0);
    ei_x_free(x);
}

/* Starts {Id, Op, ...} with the version byte. */
static void begin(ei_x_buff *x, long id, const char *op, int arity)
{
    ei_x_new_with_version(x);
    ei_x_encode_tuple_header(x, arity);
    ei_x_encode_long(x, id);
    if (op)
        ei_x_encode_atom(x, op);
}

/* Decodes reply n: checks the id and status; returns the index of Result. */
static int reply_at(struct fixture *f, int n, unsigned long long id, const char *status)
{
    assert_true(n < f->out.count);
    const char *b = f->out.buf[n];
    int idx = 0, arity = 0, version = 0;
    unsigned long long got = 0;
    char atom[MAXATOMLEN];
    assert_int_equal(ei_decode_version(b, &idx, &version), 0);
    assert_int_equal(ei_decode_tuple_header(b, &idx, &arity), 0);
    assert_int_equal(arity, 3);
    assert_int_equal(ei_decode_ulonglong(b, &idx, &got), 0);
    assert_int_equal(got, id);
    assert_int_equal(ei_decode_atom(b, &idx, atom), 0);
    assert_string_equal(atom, status);
    return idx;
}

/* Checks reply n is {Id, error, {Reason, Detail}} with Detail containing needle. */
static void expect_error(struct fixture *f, int n, unsigned long long id, const char *reason,
                         const char *needle)
{
    int idx = reply_at(f, n, id, "error"), arity = 0;
    const char *b = f->out.buf[n];
    char atom[MAXATOMLEN], detail[1024];
    long dlen = 0;
    assert_int_equal(ei_decode_tuple_header(b, &idx, &arity), 0);
    assert_int_equal(arity, 2);
    assert_int_equal(ei_decode_atom(b, &idx, atom), 0);
    assert_string_equal(atom, reason);
    assert_int_equal(ei_decode_binary(b, &idx, detail, &dlen), 0);
    detail[dlen] = '\0';
    if (strstr(detail, needle) == NULL)
        fail_msg("detail '%s' lacks '%s'", detail, needle);
}

static void expect_port(struct fixture *f, int n, unsigned long long id, long port)
{
    int idx = reply_at(f, n, id, "ok");
    long got = 0;
    assert_int_equal(ei_decode_long(f->out.buf[n], &idx, &got), 0);
    assert_int_equal(got, port);
}

static void dist_port_request(struct fixture *f, long id, const char *name, long dflt)
{
    ei_x_buff x;
    begin(&x, id, "dist_port", 3);
    ei_x_encode_map_header(&x, dflt >= 0 ? 2 : 1);
    ei_x_encode_atom(&x, "name");
    ei_x_encode_binary(&x, name, (int)strlen(name));
    if (dflt >= 0) {
        ei_x_encode_atom(&x, "default");
        ei_x_encode_long(&x, dflt);
    }
    send_x(f, &x);
}

static void dist_port_answers_ports_and_rule_errors(void **state)
{
    struct fixture *f = *state;
    dist_port_request(f, 1, "app-4370", -1);
    dist_port_request(f, 2, "app@10.0.0.1", 4370);
    dist_port_request(f, 3, "app-0", 4370);
    dist_port_request(f, 4, "", 4370);
    expect_port(f, 0, 1, 4370);
    expect_port(f, 1, 2, 4370);
    expect_error(f, 2, 3, "port_out_of_range", "1..65535");
    expect_error(f, 3, 4, "empty_name", "empty");
}

static void packets_without_a_readable_id_are_dropped(void **state)
{
    struct fixture *f = *state;
    ei_x_buff x;
    /* No version byte. */
    assert_int_equal(ops_packet(&f->ops, "\x68\x01\x61\x01", 4), 0);
    /* Not a tuple. */
    ei_x_new_with_version(&x);
    ei_x_encode_atom(&x, "hello");
    send_x(f, &x);
    /* Empty tuple. */
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 0);
    send_x(f, &x);
    /* Id is an atom, zero, negative, or beyond 64 bits. */
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 3);
    ei_x_encode_atom(&x, "id");
    send_x(f, &x);
    begin(&x, 0, "info", 3);
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);
    begin(&x, -5, "info", 3);
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);
    /* 2^72 as SMALL_BIG: sign 0, 9 digit bytes. */
    const char big[] = "\x83\x68\x03\x6e\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01";
    assert_int_equal(ops_packet(&f->ops, big, sizeof big - 1), 0);
    /* Version byte only, and a tuple header cut short. */
    assert_int_equal(ops_packet(&f->ops, "\x83", 1), 0);
    assert_int_equal(ops_packet(&f->ops, "\x83\x69\x00", 3), 0);

    assert_int_equal(f->out.count, 0);
    assert_int_equal(f->ops.r.counters.dropped, 9);
    assert_int_equal(f->ops.r.counters.requests, 0);
}

static void malformed_after_the_id_gets_an_error_reply(void **state)
{
    struct fixture *f = *state;
    ei_x_buff x;

    begin(&x, 10, "info", 2); /* wrong arity */
    send_x(f, &x);
    begin(&x, 11, NULL, 3); /* op is a binary */
    ei_x_encode_binary(&x, "info", 4);
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);
    begin(&x, 12, "nosuch", 3);
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);
    begin(&x, 13, "info", 3); /* args not a map */
    ei_x_encode_empty_list(&x);
    send_x(f, &x);
    begin(&x, 14, "info", 3); /* trailing garbage */
    ei_x_encode_map_header(&x, 0);
    ei_x_append_buf(&x, "zz", 2);
    send_x(f, &x);
    begin(&x, 15, "info", 3); /* a pid inside: unsupported */
    erlang_pid pid = {.node = "a@b", .num = 1, .serial = 0, .creation = 1};
    ei_x_encode_pid(&x, &pid);
    send_x(f, &x);
    begin(&x, 16, "info", 3); /* nested 40 deep */
    for (int i = 0; i < 40; i++)
        ei_x_encode_tuple_header(&x, 1);
    ei_x_encode_atom(&x, "deep");
    send_x(f, &x);
    begin(&x, 17, "info", 3); /* a list that claims 2^32-1 elements */
    ei_x_append_buf(&x, "\x6c\xff\xff\xff\xff\x6a", 6);
    send_x(f, &x);
    begin(&x, 18, "info", 3); /* a binary that claims more bytes than exist */
    ei_x_append_buf(&x, "\x6d\x00\x00\x10\x00" "abc", 8);
    send_x(f, &x);
    begin(&x, 19, "a_very_long_operation_name_beyond_32_bytes", 3);
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);

    expect_error(f, 0, 10, "bad_request", "{Id, Op, Args}");
    expect_error(f, 1, 11, "bad_request", "atom");
    expect_error(f, 2, 12, "unknown_op", "nosuch");
    expect_error(f, 3, 13, "bad_args", "not a map");
    expect_error(f, 4, 14, "bad_term", "after the term");
    expect_error(f, 5, 15, "bad_term", "unsupported");
    expect_error(f, 6, 16, "bad_term", "deeply");
    expect_error(f, 7, 17, "bad_term", "truncated");
    expect_error(f, 8, 18, "bad_term", "truncated");
    expect_error(f, 9, 19, "bad_request", "32 bytes");
    assert_int_equal(f->ops.r.counters.errors, 10);
}

static void bad_arguments_are_named(void **state)
{
    struct fixture *f = *state;
    ei_x_buff x;

    begin(&x, 20, "dist_port", 3); /* missing name */
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);
    begin(&x, 21, "dist_port", 3); /* name as a string (a list) */
    ei_x_encode_map_header(&x, 1);
    ei_x_encode_atom(&x, "name");
    ei_x_encode_string(&x, "app-1");
    send_x(f, &x);
    begin(&x, 22, "dist_port", 3); /* unknown key */
    ei_x_encode_map_header(&x, 2);
    ei_x_encode_atom(&x, "name");
    ei_x_encode_binary(&x, "a", 1);
    ei_x_encode_atom(&x, "colour");
    ei_x_encode_atom(&x, "red");
    send_x(f, &x);
    dist_port_request(f, 23, "app", 70000); /* default out of range */
    begin(&x, 24, "dist_port", 3); /* key that is not an atom */
    ei_x_encode_map_header(&x, 1);
    ei_x_encode_binary(&x, "name", 4);
    ei_x_encode_binary(&x, "a", 1);
    send_x(f, &x);
    char longname[1100];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    dist_port_request(f, 25, longname, -1);
    longname[300] = '\0';
    dist_port_request(f, 26, longname, -1);

    expect_error(f, 0, 20, "bad_args", "missing argument 'name'");
    expect_error(f, 1, 21, "bad_args", "name: expected a binary");
    expect_error(f, 2, 22, "bad_args", "unknown argument 'colour'");
    expect_error(f, 3, 23, "bad_args", "default: must be an integer in 0..65535");
    expect_error(f, 4, 24, "bad_args", "keys must be atoms");
    expect_error(f, 5, 25, "bad_args", "longer than 1024 bytes");
    expect_error(f, 6, 26, "name_too_long", "at most 255");
}

/* {Id, Op, #{name => Name, Key => Value}}: one integer argument beside a name. */
static void int_arg_request(struct fixture *f, long id, const char *op, const char *key,
                            long long value)
{
    ei_x_buff x;
    begin(&x, id, op, 3);
    ei_x_encode_map_header(&x, 2);
    ei_x_encode_atom(&x, "name");
    ei_x_encode_binary(&x, "app", 3);
    ei_x_encode_atom(&x, key);
    ei_x_encode_longlong(&x, value);
    send_x(f, &x);
}

/* Integers below their minimum are refused as bad_args naming the range, as
 * those above their maximum are (docs/protocol.md): a timeout of 0 or -5, 0
 * tries, a default port of -1. None of them starts a lookup. */
static void integers_below_their_minimum_are_refused(void **state)
{
    struct fixture *f = *state;
    int_arg_request(f, 40, "srv", "timeout_ms", 0);
    int_arg_request(f, 41, "srv", "timeout_ms", -5);
    int_arg_request(f, 42, "addr", "tries", 0);
    int_arg_request(f, 43, "dist_port", "default", -1);
    assert_int_equal(f->out.count, 4);
    expect_error(f, 0, 40, "bad_args", "timeout_ms: must be an integer in 1..60000");
    expect_error(f, 1, 41, "bad_args", "timeout_ms: must be an integer in 1..60000");
    expect_error(f, 2, 42, "bad_args", "tries: must be an integer in 1..10");
    expect_error(f, 3, 43, "bad_args", "default: must be an integer in 0..65535");
}

/* A NUL byte inside a string argument would cut the C string short
 * (<<"web",0,"x">> queried "web"): refused as bad_args naming the key, before
 * any request leaves. */
static void nul_in_a_string_argument_is_refused(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *op, *key;
    } cases[] = {
        {"consul_health", "token"},  {"consul_health", "service"}, {"consul_health", "tag"},
        {"consul_health", "dc"},     {"nomad_services", "namespace"},
        {"nomad_services", "service"}, {"srv", "name"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        ei_x_buff x;
        bool http = strcmp(cases[i].op, "srv") != 0;
        bool own_service = strcmp(cases[i].key, "service") == 0;
        begin(&x, 40 + (long)i, cases[i].op, 3);
        ei_x_encode_map_header(&x, http ? (own_service ? 2 : 3) : 1);
        if (http) {
            /* A port nothing listens on: were the value accepted, the
             * reply would be a transport error, not bad_args. */
            ei_x_encode_atom(&x, "url");
            ei_x_encode_binary(&x, "http://127.0.0.1:1", 18);
            if (!own_service) {
                ei_x_encode_atom(&x, "service");
                ei_x_encode_binary(&x, "web", 3);
            }
        }
        ei_x_encode_atom(&x, cases[i].key);
        ei_x_encode_binary(&x, "web\0x", 5);
        send_x(f, &x);
    }
    assert_int_equal(f->out.count, (int)n);
    for (size_t i = 0; i < n; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "%s: holds a NUL byte", cases[i].key);
        expect_error(f, (int)i, 40 + i, "bad_args", needle);
    }
    /* dist_port reads its name byte by byte and names the rule itself. */
    ei_x_buff x;
    begin(&x, 60, "dist_port", 3);
    ei_x_encode_map_header(&x, 1);
    ei_x_encode_atom(&x, "name");
    ei_x_encode_binary(&x, "app\0-1", 6);
    send_x(f, &x);
    expect_error(f, (int)n, 60, "invalid_name", "");
}

/* Every prefix of a valid request: never a crash, never more than one reply. */
static void every_truncation_is_handled(void **state)
{
    struct fixture *f = *state;
    ei_x_buff x;
    begin(&x, 300, "dist_port", 3);
    ei_x_encode_map_header(&x, 2);
    ei_x_encode_atom(&x, "name");
    ei_x_encode_binary(&x, "app-4370", 8);
    ei_x_encode_atom(&x, "default");
    ei_x_encode_long(&x, 4370);
    for (int cut = 0; cut < x.index; cut++) {
        int before = f->out.count;
        char *copy = malloc((size_t)cut + 1); /* exact size: ASan sees overreads */
        memcpy(copy, x.buff, (size_t)cut);
        assert_int_equal(ops_packet(&f->ops, copy, (size_t)cut), 0);
        free(copy);
        assert_true(f->out.count - before <= 1);
        if (f->out.count > before) {
            expect_error(f, f->out.count - 1, 300, "bad_term", "truncated");
            free(f->out.buf[--f->out.count]);
        }
    }
    assert_int_equal(ops_packet(&f->ops, x.buff, (size_t)x.index), 0);
    expect_port(f, f->out.count - 1, 300, 4370);
    ei_x_free(&x);
}

static void info_reports_version_and_counters(void **state)
{
    struct fixture *f = *state;
    dist_port_request(f, 1, "a-1", -1);
    ei_x_buff x;
    begin(&x, 2, "info", 3);
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);

    int idx = reply_at(f, 1, 2, "ok"), arity = 0;
    const char *b = f->out.buf[1];
    assert_int_equal(ei_decode_map_header(b, &idx, &arity), 0);
    assert_int_equal(arity, 16);
    int found = 0;
    for (int i = 0; i < arity; i++) {
        char key[MAXATOMLEN];
        assert_int_equal(ei_decode_atom(b, &idx, key), 0);
        if (strcmp(key, "version") == 0) {
            char v[64];
            long len = 0;
            assert_int_equal(ei_decode_binary(b, &idx, v, &len), 0);
            assert_memory_equal(v, CARAVAN_VERSION, (size_t)len);
            found++;
        } else if (strcmp(key, "libcurl") == 0) {
            /* No HTTP request yet: none loaded, and it says so. */
            char v[512];
            long len = 0;
            assert_int_equal(ei_decode_binary(b, &idx, v, &len), 0);
            v[len] = '\0';
            assert_non_null(strstr(v, "none: not loaded yet"));
            found++;
        } else {
            unsigned long long n = 0;
            assert_int_equal(ei_decode_ulonglong(b, &idx, &n), 0);
            if (strcmp(key, "requests") == 0 || strcmp(key, "ok") == 0) {
                assert_int_equal(n, 2);
                found++;
            }
        }
    }
    assert_int_equal(found, 4);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* {Id, Op, #{Key => Value}}: one integer argument. */
static void one_arg_request(struct fixture *f, long id, const char *op, const char *key,
                            long value)
{
    ei_x_buff x;
    begin(&x, id, op, 3);
    ei_x_encode_map_header(&x, 1);
    ei_x_encode_atom(&x, key);
    ei_x_encode_long(&x, value);
    send_x(f, &x);
}

static void delayed_ping(struct fixture *f, long id, long delay)
{
    one_arg_request(f, id, "ping", "delay_ms", delay);
}

static void cancel_request(struct fixture *f, long id, long tag)
{
    one_arg_request(f, id, "cancel", "id", tag);
}

/* A delayed ping is answered after requests sent behind it. */
static void replies_leave_out_of_order(void **state)
{
    struct fixture *f = *state;
    delayed_ping(f, 7, 30);
    dist_port_request(f, 8, "a-2", -1);
    assert_int_equal(f->out.count, 1);
    expect_port(f, 0, 8, 2);
    assert_true(ops_timeout(&f->ops, 1000) <= 30);
    assert_int_equal(ops_tick(&f->ops), 0);
    assert_int_equal(f->out.count, 1); /* not due yet */
    sleep_ms(40);
    assert_int_equal(ops_timeout(&f->ops, 1000), 0);
    assert_int_equal(ops_tick(&f->ops), 0);
    assert_int_equal(f->out.count, 2);
    reply_at(f, 1, 7, "ok");
    assert_int_equal(ops_timeout(&f->ops, 1000), 1000);
}

static void deferred_queue_is_bounded(void **state)
{
    struct fixture *f = *state;
    for (long i = 1; i <= DEFERRED_MAX; i++)
        delayed_ping(f, i, 60000);
    assert_int_equal(f->out.count, 0);
    delayed_ping(f, 5000, 60000);
    expect_error(f, 0, 5000, "overload", "too many");
}

static void expect_atom(struct fixture *f, int n, unsigned long long id, const char *want)
{
    int idx = reply_at(f, n, id, "ok");
    char atom[MAXATOMLEN];
    assert_int_equal(ei_decode_atom(f->out.buf[n], &idx, atom), 0);
    assert_string_equal(atom, want);
}

/* A cancel ends the request and frees its slot at once: with the delayed
 * replies full, one cancelled makes room for another; the cancelled one is
 * never answered; cancels of it again or of an id never seen are no-ops. */
static void cancel_frees_the_slot_and_silences_the_request(void **state)
{
    struct fixture *f = *state;
    for (long i = 1; i <= DEFERRED_MAX; i++)
        delayed_ping(f, i, i == 1 ? 20 : 60000);
    assert_int_equal(f->out.count, 0);
    cancel_request(f, 5001, 1);
    expect_atom(f, 0, 5001, "cancelled");
    assert_int_equal(f->ops.deferred.count, DEFERRED_MAX - 1);
    delayed_ping(f, 5002, 60000); /* the freed slot: no overload */
    assert_int_equal(f->out.count, 1);
    cancel_request(f, 5003, 1);
    expect_atom(f, 1, 5003, "not_found");
    cancel_request(f, 5004, 987654321);
    expect_atom(f, 2, 5004, "not_found");
    sleep_ms(30);
    assert_int_equal(ops_tick(&f->ops), 0);
    assert_int_equal(f->out.count, 3); /* ping 1 was due, but cancelled */
    assert_int_equal(f->ops.r.counters.cancelled, 1);
    assert_int_equal(f->ops.r.counters.cancel_noops, 2);
}

static void cancel_needs_a_positive_id(void **state)
{
    struct fixture *f = *state;
    cancel_request(f, 1, 0);
    expect_error(f, 0, 1, "bad_args", "id");
    assert_int_equal(f->ops.r.counters.cancel_noops, 0);
}

/* Requests in flight of the backend info reports under key. */
static uint64_t inflight(struct fixture *f, const char *key)
{
    for (size_t i = 0; i < OPS_BACKENDS; i++)
        if (strcmp(f->ops.backends[i].inflight_key, key) == 0)
            return f->ops.backends[i].inflight(f->ops.backends[i].state);
    fail_msg("no backend reports %s", key);
    return 0;
}

/* One turn of the program's loop over the backends (main.c's order). */
static void loop_turn_tick(struct fixture *f, int extra_fd, short extra_events, short *revents,
                           bool tick);

static void loop_turn(struct fixture *f, int extra_fd, short extra_events, short *revents)
{
    loop_turn_tick(f, extra_fd, extra_events, revents, true);
}

/* tick false: answers done on the worker thread stay there. */
static void loop_turn_tick(struct fixture *f, int extra_fd, short extra_events, short *revents,
                           bool tick)
{
    size_t cap = ops_nfds(&f->ops) + 1;
    struct pollfd *fds = calloc(cap, sizeof *fds);
    size_t nb = ops_poll_fds(&f->ops, fds, cap - 1), n = nb;
    if (extra_fd >= 0)
        fds[n++] = (struct pollfd){.fd = extra_fd, .events = extra_events};
    assert_true(poll(fds, n, ops_timeout(&f->ops, 20)) >= 0);
    ops_process(&f->ops, fds, nb);
    if (tick)
        assert_int_equal(ops_tick(&f->ops), 0);
    if (revents)
        *revents = extra_fd >= 0 ? fds[n - 1].revents : 0;
    free(fds);
}

static int bound_socket(int type, int *port)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (type == SOCK_STREAM)
        assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Starts {Id, Op, #{name, servers => ["127.0.0.1:Port"], transport, K}}:
 * the caller encodes the fourth key K and its value, and sends x. */
static void dns_request_begin(ei_x_buff *x, long id, const char *op, const char *name, int port,
                              const char *transport)
{
    char server[64];
    snprintf(server, sizeof server, "127.0.0.1:%d", port);
    begin(x, id, op, 3);
    ei_x_encode_map_header(x, 4);
    ei_x_encode_atom(x, "name");
    ei_x_encode_binary(x, name, (int)strlen(name));
    ei_x_encode_atom(x, "servers");
    ei_x_encode_list_header(x, 1);
    ei_x_encode_binary(x, server, (int)strlen(server));
    ei_x_encode_empty_list(x);
    ei_x_encode_atom(x, "transport");
    ei_x_encode_atom(x, transport);
}

/* {Id, srv, #{name, servers => ["127.0.0.1:Port"], transport, timeout_ms}}. */
static void srv_request(struct fixture *f, long id, int port, const char *transport,
                        long timeout_ms)
{
    ei_x_buff x;
    dns_request_begin(&x, id, "srv", "_x._tcp.example", port, transport);
    ei_x_encode_atom(&x, "timeout_ms");
    ei_x_encode_long(&x, timeout_ms);
    send_x(f, &x);
}

/* A DNS lookup whose server never answers: the cancel ends it at once
 * (dns_inflight back to 0) and, past its deadline, nothing is sent for it. */
static void cancel_ends_a_dns_lookup(void **state)
{
    struct fixture *f = *state;
    int port = 0, udp = bound_socket(SOCK_DGRAM, &port);
    srv_request(f, 11, port, "udp", 150);
    short rev = 0;
    for (int i = 0; i < 100 && !(rev & POLLIN); i++) /* the question reaches the server */
        loop_turn(f, udp, POLLIN, &rev);
    assert_true(rev & POLLIN);
    assert_int_equal(inflight(f, "dns_inflight"), 1);
    cancel_request(f, 12, 11);
    expect_atom(f, 0, 12, "cancelled");
    assert_int_equal(inflight(f, "dns_inflight"), 0);
    for (int i = 0; i < 12; i++) /* past the lookup's deadline */
        loop_turn(f, -1, 0, NULL);
    sleep_ms(160);
    loop_turn(f, -1, 0, NULL);
    assert_int_equal(f->out.count, 1);
    cancel_request(f, 13, 11);
    expect_atom(f, 1, 13, "not_found");
    close(udp);
}

/* A TCP lookup cancelled before its question is written (c-ares queues it
 * until the connection is made): nothing reaches the server. Before, the
 * cancel's ares_cancel freed the question but left it on c-ares' send
 * queue: written later from freed memory (ASan: heap-use-after-free;
 * release build: 34 bytes of freed heap sent to the server). */
static void cancel_before_a_tcp_question_is_written(void **state)
{
    struct fixture *f = *state;
    int port = 0, lsock = bound_socket(SOCK_STREAM, &port);
    srv_request(f, 61, port, "tcp", 2000);
    cancel_request(f, 62, 61); /* no loop turn yet: the question is queued */
    expect_atom(f, 0, 62, "cancelled");
    int conn = -1;
    for (int i = 0; i < 20; i++) {
        loop_turn(f, lsock, POLLIN, NULL);
        if (conn < 0)
            conn = accept(lsock, NULL, NULL);
    }
    size_t got = 0;
    if (conn >= 0) {
        char buf[512];
        ssize_t r;
        for (int i = 0; i < 20; i++) {
            loop_turn(f, conn, POLLIN, NULL);
            while ((r = recv(conn, buf, sizeof buf, MSG_DONTWAIT)) > 0)
                got += (size_t)r;
        }
        close(conn);
    }
    assert_int_equal(got, 0);
    assert_int_equal(inflight(f, "dns_inflight"), 0);
    assert_int_equal(f->out.count, 1);
    close(lsock);
}

static void consul_request(struct fixture *f, long id, const char *url)
{
    ei_x_buff x;
    begin(&x, id, "consul_health", 3);
    ei_x_encode_map_header(&x, 3);
    ei_x_encode_atom(&x, "url");
    ei_x_encode_binary(&x, url, (int)strlen(url));
    ei_x_encode_atom(&x, "service");
    ei_x_encode_binary(&x, "web", 3);
    ei_x_encode_atom(&x, "proxy");
    ei_x_encode_atom(&x, "none");
    send_x(f, &x);
}

/* A listening socket on a free loopback port and a consul_health request
 * to HOST:that port (proxy none); skips the test where libcurl is missing.
 * The caller closes *lsock. */
static void held_request(struct fixture *f, long id, const char *host, int *lsock)
{
    int port = 0;
    *lsock = bound_socket(SOCK_STREAM, &port);
    char url[64];
    snprintf(url, sizeof url, "http://%s:%d", host, port);
    consul_request(f, id, url);
    /* libcurl loads on a thread of its own: the loop turns meanwhile. */
    for (int i = 0; i < 500 && http_library_loading(); i++)
        loop_turn(f, -1, 0, NULL);
    if (!ops_catalog_http_loaded(&f->ops.backends[1])) {
        close(*lsock);
        skip(); /* no libcurl on this machine */
    }
}

/* The connection the program makes to lsock, the loop turning meanwhile
 * (tick: as loop_turn_tick's). */
static int accept_turning(struct fixture *f, int lsock, bool tick)
{
    int conn = -1;
    for (int i = 0; i < 200 && conn < 0; i++) {
        loop_turn_tick(f, lsock, POLLIN, NULL, tick);
        conn = accept(lsock, NULL, NULL);
    }
    assert_true(conn >= 0);
    return conn;
}

/* Accepts the program's connection to lsock and reads its request, the
 * loop turning meanwhile (tick: as loop_turn_tick's). Returns the
 * connection. */
static int accept_request(struct fixture *f, int lsock, bool tick)
{
    int conn = accept_turning(f, lsock, tick);
    char buf[4096];
    for (int i = 0; i < 200; i++) {
        loop_turn_tick(f, conn, POLLIN, NULL, tick);
        if (recv(conn, buf, sizeof buf, MSG_DONTWAIT) > 0)
            break;
    }
    return conn;
}

/* A consul_health request id held by a server on 127.0.0.1 (held_request),
 * its connection accepted and its request read (accept_request). */
struct held {
    int lsock, conn;
};

static struct held held_connection(struct fixture *f, long id, bool tick)
{
    struct held h;
    held_request(f, id, "127.0.0.1", &h.lsock);
    h.conn = accept_request(f, h.lsock, tick);
    return h;
}

static void held_close(const struct held *h)
{
    close(h->conn);
    close(h->lsock);
}

/* Answers on conn: 200, X-Consul-Index 5, the n bytes of body. */
static void send_answer(int conn, const char *body, size_t n)
{
    char head[256];
    int hlen = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "X-Consul-Index: 5\r\nContent-Length: %zu\r\n\r\n", n);
    assert_int_equal(send(conn, head, (size_t)hlen, 0), hlen);
    assert_int_equal(send(conn, body, n, 0), (ssize_t)n);
}

/* An HTTP request the server holds open: the cancel takes the transfer out
 * of libcurl at once, so the server sees its connection closed, and
 * http_inflight is back to 0. */
static void cancel_closes_an_http_transfer(void **state)
{
    struct fixture *f = *state;
    struct held h = held_connection(f, 21, true); /* no answer is given */
    assert_int_equal(inflight(f, "http_inflight"), 1);
    cancel_request(f, 22, 21);
    expect_atom(f, 0, 22, "cancelled");
    assert_int_equal(inflight(f, "http_inflight"), 0);
    struct pollfd p = {.fd = h.conn, .events = POLLIN};
    char buf[4096];
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(recv(h.conn, buf, sizeof buf, 0), 0); /* closed by the program */
    loop_turn(f, -1, 0, NULL);
    assert_int_equal(f->out.count, 1);
    held_close(&h);
}

/* A host name (localhost, from /etc/hosts through c-ares) resolved but not
 * yet handed to libcurl: the cancel frees it; nothing connects. */
static void cancel_ends_a_transfer_being_resolved(void **state)
{
    struct fixture *f = *state;
    int lsock;
    held_request(f, 31, "localhost", &lsock);
    assert_int_equal(inflight(f, "http_inflight"), 1);
    cancel_request(f, 32, 31);
    expect_atom(f, 0, 32, "cancelled");
    assert_int_equal(inflight(f, "http_inflight"), 0);
    for (int i = 0; i < 5; i++)
        loop_turn(f, -1, 0, NULL);
    assert_true(accept(lsock, NULL, NULL) < 0); /* never connected */
    assert_int_equal(f->out.count, 1);
    close(lsock);
}

/* A 200 answer of 200 members goes to the worker thread to be encoded
 * (answer_worker.h); a cancel arriving then drops the reply when the loop
 * takes the job back. */
static void cancel_drops_an_answer_on_the_worker(void **state)
{
    struct fixture *f = *state;
    struct held h = held_connection(f, 41, false);
    size_t cap = 64 * 1024, n = 0;
    char *body = malloc(cap);
    n += (size_t)snprintf(body + n, cap - n, "[");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"Node\":{\"Node\":\"n%d\",\"Address\":\"10.0.0.1\"},"
                              "\"Service\":{\"ID\":\"s%d\",\"Service\":\"web\","
                              "\"Address\":\"10.0.1.%d\",\"Port\":%d}}",
                              i ? "," : "", i, i, i % 250, 4000 + i);
    n += (size_t)snprintf(body + n, cap - n, "]");
    send_answer(h.conn, body, n);
    free(body);
    for (int i = 0; i < 400 && inflight(f, "http_inflight") > 0; i++)
        loop_turn_tick(f, -1, 0, NULL, false);
    assert_int_equal(inflight(f, "http_inflight"), 0);
    assert_int_equal(f->out.count, 0);
    assert_true(ops_catalog_has_worker(&f->ops.backends[1])); /* it went to the worker */
    cancel_request(f, 42, 41);
    expect_atom(f, 0, 42, "cancelled");
    for (int i = 0; i < 50; i++) {
        sleep_ms(5);
        assert_int_equal(ops_tick(&f->ops), 0);
    }
    assert_int_equal(f->out.count, 1); /* no reply for 41 */
    cancel_request(f, 43, 41);
    expect_atom(f, 1, 43, "not_found");
    held_close(&h);
}

/* A body far over the loop's 64 KiB budget per turn (http.c pauses the
 * transfer past it): the cancel, a turn into the body, frees the transfer,
 * paused or not, and closes its connection; nothing is answered. */
static void cancel_ends_a_transfer_mid_body(void **state)
{
    struct fixture *f = *state;
    struct held h = held_connection(f, 51, true);
    char buf[4096];
    /* 1 MiB of one JSON string: read piece by piece, never whole. */
    size_t n = 1024 * 1024;
    char *body = malloc(n);
    memset(body, 'a', n);
    body[0] = '[';
    body[1] = '"';
    char head[256];
    int hlen = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                        n + 2);
    assert_int_equal(send(h.conn, head, (size_t)hlen, 0), hlen);
    size_t sent = 0;
    for (int i = 0; i < 400 && sent < n; i++) { /* as much as the socket takes */
        ssize_t k = send(h.conn, body + sent, n - sent, MSG_DONTWAIT);
        if (k > 0)
            sent += (size_t)k;
        loop_turn(f, -1, 0, NULL);
        if (sent > 256 * 1024)
            break;
    }
    free(body);
    assert_int_equal(inflight(f, "http_inflight"), 1);
    assert_int_equal(f->out.count, 0);
    cancel_request(f, 52, 51);
    expect_atom(f, 0, 52, "cancelled");
    assert_int_equal(inflight(f, "http_inflight"), 0);
    struct pollfd p = {.fd = h.conn, .events = POLLIN};
    ssize_t got = 1;
    for (int i = 0; i < 2000 && got != 0; i++) { /* drain to the close */
        assert_true(poll(&p, 1, 2000) == 1);
        got = recv(h.conn, buf, sizeof buf, 0);
        if (got < 0)
            got = 0; /* a reset: closed all the same */
    }
    assert_int_equal(got, 0);
    for (int i = 0; i < 3; i++)
        loop_turn(f, -1, 0, NULL);
    assert_int_equal(f->out.count, 1);
    held_close(&h);
}

/* After an answer failed to encode: it was {Id, error, {no_memory, _}}
 * (reply n), the failure was spent, and the program answers the next
 * request as ever. */
static void expect_no_memory_then_going_on(struct fixture *f, int n, unsigned long long id)
{
    assert_null(fail_atom); /* the planted failure was hit */
    assert_int_equal(f->out.count, n + 1);
    expect_error(f, n, id, "no_memory", "out of memory");
    ei_x_buff x;
    begin(&x, 900, "ping", 3);
    ei_x_encode_map_header(&x, 0);
    send_x(f, &x);
    expect_atom(f, n + 1, 900, "pong");
}

static void plain_request(struct fixture *f, long id, const char *op)
{
    ei_x_buff x;
    begin(&x, id, op, 3);
    ei_x_encode_map_header(&x, 0);
    fail_atom = "ok"; /* the reply's {Id, ok, ...} */
    send_x(f, &x);
}

static void ping_out_of_memory_is_answered(void **state)
{
    struct fixture *f = *state;
    plain_request(f, 1, "ping");
    expect_no_memory_then_going_on(f, 0, 1);
}

static void info_out_of_memory_is_answered(void **state)
{
    struct fixture *f = *state;
    ei_x_buff x;
    begin(&x, 2, "info", 3);
    ei_x_encode_map_header(&x, 0);
    fail_atom = "libcurl"; /* the last key of the map */
    send_x(f, &x);
    expect_no_memory_then_going_on(f, 0, 2);
    assert_int_equal(f->ops.r.counters.ok, 1); /* the pong; info counted as an error */
    assert_int_equal(f->ops.r.counters.errors, 1);
}

static void dist_port_out_of_memory_is_answered(void **state)
{
    struct fixture *f = *state;
    fail_atom = "ok";
    dist_port_request(f, 3, "a-4370", -1);
    expect_no_memory_then_going_on(f, 0, 3);
}

static void deferred_pong_out_of_memory_is_answered(void **state)
{
    struct fixture *f = *state;
    delayed_ping(f, 4, 1);
    sleep_ms(5);
    fail_atom = "ok";
    assert_int_equal(ops_tick(&f->ops), 0);
    expect_no_memory_then_going_on(f, 0, 4);
}

/* {Id, addr, #{name, servers => ["127.0.0.1:Port"], transport => udp, family => inet}}. */
static void addr_request(struct fixture *f, long id, int port)
{
    ei_x_buff x;
    dns_request_begin(&x, id, "addr", "node.example", port, "udp");
    ei_x_encode_atom(&x, "family");
    ei_x_encode_atom(&x, "inet");
    send_x(f, &x);
}

/* Answers the one A question waiting on udp with 127.0.0.1. */
/* A question the program sent to udp, read into m (the loop turned until
 * it is there): the header becomes an answer's (QR RD, RA NOERROR, no
 * authority or additional records) for the caller to count and fill.
 * Returns where the records go, after the question; its sender in *from. */
static size_t take_question(struct fixture *f, int udp, unsigned char *m, size_t cap,
                            struct sockaddr_in *from, socklen_t *flen)
{
    short rev = 0;
    for (int i = 0; i < 100 && !(rev & POLLIN); i++)
        loop_turn_tick(f, udp, POLLIN, &rev, false);
    assert_true(rev & POLLIN);
    *flen = sizeof *from;
    ssize_t n = recvfrom(udp, m, cap, 0, (struct sockaddr *)from, flen);
    assert_true(n > 12);
    size_t q = 12;
    while (q < (size_t)n && m[q] != 0)
        q += m[q] + 1u;
    q += 1 + 4; /* the root label, QTYPE and QCLASS */
    assert_true(q <= (size_t)n);
    m[2] = 0x81; /* QR, RD */
    m[3] = 0x80; /* RA, NOERROR */
    m[8] = m[9] = m[10] = m[11] = 0;
    return q;
}

/* Answers the A question the program sent to udp with 127.0.0.1. */
static void answer_a_question(struct fixture *f, int udp)
{
    unsigned char m[512];
    struct sockaddr_in from;
    socklen_t flen;
    size_t q = take_question(f, udp, m, sizeof m - 16, &from, &flen);
    m[6] = 0, m[7] = 1; /* one answer */
    static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
    memcpy(m + q, rr, sizeof rr);
    assert_int_equal(sendto(udp, m, q + sizeof rr, 0, (struct sockaddr *)&from, flen),
                     (ssize_t)(q + sizeof rr));
}

static void dns_answer_out_of_memory_is_answered(void **state)
{
    struct fixture *f = *state;
    int port = 0, udp = bound_socket(SOCK_DGRAM, &port);
    addr_request(f, 5, port);
    answer_a_question(f, udp);
    fail_atom = "ok";
    for (int i = 0; i < 200 && f->out.count == 0; i++)
        loop_turn(f, -1, 0, NULL);
    expect_no_memory_then_going_on(f, 0, 5);
    /* Unplanted, the same lookup is answered. */
    addr_request(f, 6, port);
    answer_a_question(f, udp);
    for (int i = 0; i < 200 && f->out.count == 2; i++)
        loop_turn(f, -1, 0, NULL);
    reply_at(f, 2, 6, "ok");
    close(udp);
}

/* Answers the SRV question the program sent to udp with n records, each
 * naming its own target t<i>.<40 x>, whose A record (127.0.1.<i>) is in
 * ADDITIONAL. */
static void answer_srv_question(struct fixture *f, int udp, int n)
{
    static unsigned char m[4096];
    struct sockaddr_in from;
    socklen_t flen;
    size_t q = take_question(f, udp, m, 512, &from, &flen);
    m[6] = 0, m[7] = (unsigned char)n;  /* answers */
    m[11] = (unsigned char)n;           /* additional */
    size_t at = q, target[256];
    for (int i = 0; i < n; i++) {
        unsigned char rr[] = {0xc0, 0x0c, 0, 33, 0, 1, 0, 0, 0, 60, 0, 6 + 47, 0, 1, 0, 1, 0x11, 0x12};
        memcpy(m + at, rr, sizeof rr);
        at += sizeof rr;
        target[i] = at;
        m[at++] = 4;
        at += (size_t)snprintf((char *)m + at, 5, "t%03d", i);
        m[at++] = 40;
        memset(m + at, 'x', 40);
        at += 40;
        m[at++] = 0;
    }
    for (int i = 0; i < n; i++) {
        unsigned char rr[] = {(unsigned char)(0xc0 | target[i] >> 8), (unsigned char)target[i],
                              0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 1, (unsigned char)i};
        memcpy(m + at, rr, sizeof rr);
        at += sizeof rr;
    }
    assert_true(at <= sizeof m);
    assert_int_equal(sendto(udp, m, at, 0, (struct sockaddr *)&from, flen), (ssize_t)at);
}

/* The reply to an SRV answer of 40 records (5 KB encoded) is encoded into
 * room reserved at once: ei's encoders grew the buffer 200 bytes at a
 * time, some 30 reallocs here, 2,000 for the crafted 360-record answer of
 * issue 18, each a copy or an mremap, 8 ms of one loop turn. */
static void a_dns_reply_grows_its_buffer_once(void **state)
{
    struct fixture *f = *state;
    int port = 0, udp = bound_socket(SOCK_DGRAM, &port);
    srv_request(f, 9, port, "udp", 5000);
    answer_srv_question(f, udp, 40);
    ei_reallocs = 0;
    for (int i = 0; i < 200 && f->out.count == 0; i++)
        loop_turn(f, -1, 0, NULL);
    assert_int_equal(f->out.count, 1);
    assert_true(f->out.len[0] > 4500);
    reply_at(f, 0, 9, "ok");
    assert_true(ei_reallocs <= 1); /* the {Id, ok, ...} start's, in a new buffer */
    close(udp);
}

/* Room reserved for exactly what is encoded next is room enough: ei grows
 * its buffer whenever fewer than 100 bytes would be left, which for an
 * exact bound meant one last realloc of the whole reply. */
static void a_reserve_covers_ei_s_own_margin(void **state)
{
    (void)state;
    static char blob[50000];
    ei_x_buff x;
    assert_int_equal(ei_x_new(&x), 0);
    assert_int_equal(reply_reserve(&x, 5 + sizeof blob), 0); /* a binary's header and bytes */
    ei_reallocs = 0;
    assert_int_equal(ei_x_encode_binary(&x, blob, sizeof blob), 0);
    assert_int_equal(x.index, 5 + (int)sizeof blob);
    assert_int_equal(ei_reallocs, 0);
    ei_x_free(&x);
}

static int owned_sent;

static int capture_owned(void *ctx, char *buf, size_t len)
{
    (void)ctx;
    (void)len;
    owned_sent++;
    free(buf);
    return 0;
}

/* An ok reply over 64 KiB goes to the writer buffer and all: it waits
 * for the VM in chunks, and was copied there first (a fresh 400 KB per
 * crafted SRV answer); the replier keeps no buffer of that size after
 * it. Smaller replies are copied as before. */
static void a_big_reply_is_handed_over_uncopied(void **state)
{
    (void)state;
    struct captured out = {0};
    struct replier r;
    struct reply_sink sink = {.send = capture, .send_owned = capture_owned, .ctx = &out};
    assert_int_equal(replier_init(&r, sink), 0);
    static char blob[100 * 1024];
    owned_sent = 0;
    ei_x_buff *x = replier_ok_begin(&r, 5);
    assert_non_null(x);
    assert_int_equal(ei_x_encode_binary(x, blob, sizeof blob), 0);
    assert_int_equal(replier_ok_end(&r, false), 0);
    assert_int_equal(owned_sent, 1);
    assert_int_equal(out.count, 0);
    assert_true(r.x.buffsz < 64 * 1024);
    assert_int_equal(replier_ok_atom(&r, 6, "pong"), 0);
    assert_int_equal(owned_sent, 1);
    assert_int_equal(out.count, 1);
    assert_int_equal(r.counters.ok, 2);
    /* An error after a hand-over keeps its whole detail (the stack
     * fallback, for out of memory only, cuts it near 440 bytes). */
    owned_sent = 0;
    x = replier_ok_begin(&r, 7);
    assert_int_equal(ei_x_encode_binary(x, blob, sizeof blob), 0);
    assert_int_equal(replier_ok_end(&r, false), 0);
    assert_int_equal(owned_sent, 1);
    char detail[600];
    memset(detail, 'd', sizeof detail - 1);
    detail[sizeof detail - 1] = '\0';
    assert_int_equal(replier_error(&r, 8, "bad_args", detail), 0);
    assert_int_equal(out.count, 2);
    assert_true(out.len[1] > sizeof detail);
    replier_free(&r);
    free(out.buf[0]);
    free(out.buf[1]);
}

static void catalog_answer_out_of_memory_is_answered(void **state)
{
    struct fixture *f = *state;
    struct held h = held_connection(f, 7, true);
    static const char body[] = "[{\"Node\":{\"Node\":\"n1\",\"Address\":\"10.0.0.1\"},"
                               "\"Service\":{\"ID\":\"s1\",\"Service\":\"web\","
                               "\"Address\":\"10.0.1.1\",\"Port\":4001}}]";
    send_answer(h.conn, body, sizeof body - 1);
    fail_atom = "ok";
    for (int i = 0; i < 400 && f->out.count == 0; i++)
        loop_turn(f, -1, 0, NULL);
    expect_no_memory_then_going_on(f, 0, 7);
    held_close(&h);
}

/* A test run on a fresh fixture (setup, teardown). */
#define OPS_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        OPS_TEST(dist_port_answers_ports_and_rule_errors),
        OPS_TEST(packets_without_a_readable_id_are_dropped),
        OPS_TEST(malformed_after_the_id_gets_an_error_reply),
        OPS_TEST(bad_arguments_are_named),
        OPS_TEST(integers_below_their_minimum_are_refused),
        OPS_TEST(nul_in_a_string_argument_is_refused),
        OPS_TEST(every_truncation_is_handled),
        OPS_TEST(info_reports_version_and_counters),
        OPS_TEST(replies_leave_out_of_order),
        OPS_TEST(deferred_queue_is_bounded),
        OPS_TEST(cancel_frees_the_slot_and_silences_the_request),
        OPS_TEST(cancel_needs_a_positive_id),
        OPS_TEST(cancel_ends_a_dns_lookup),
        OPS_TEST(cancel_before_a_tcp_question_is_written),
        OPS_TEST(cancel_closes_an_http_transfer),
        OPS_TEST(cancel_ends_a_transfer_being_resolved),
        OPS_TEST(cancel_drops_an_answer_on_the_worker),
        OPS_TEST(cancel_ends_a_transfer_mid_body),
        OPS_TEST(ping_out_of_memory_is_answered),
        OPS_TEST(info_out_of_memory_is_answered),
        OPS_TEST(dist_port_out_of_memory_is_answered),
        OPS_TEST(deferred_pong_out_of_memory_is_answered),
        OPS_TEST(dns_answer_out_of_memory_is_answered),
        OPS_TEST(catalog_answer_out_of_memory_is_answered),
        OPS_TEST(a_dns_reply_grows_its_buffer_once),
        cmocka_unit_test(a_big_reply_is_handed_over_uncopied),
        cmocka_unit_test(a_reserve_covers_ei_s_own_margin),
    };
    ei_init();
    return cmocka_run_group_tests_name("ops", tests, NULL, NULL);
}
