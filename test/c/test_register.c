/* The registration PUT (register.h): typed arguments become Consul's JSON
 * service definition, every string escaped; bad input is refused with the
 * key named, before anything could be sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ei.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "register.h"
#include "term.h"

/* Encodes {1, consul_register, Args}; extra(x) adds the map's pairs. */
struct args {
    const char *id, *name, *address, *token, *check, *interval, *ttl, *deregister_after;
    long port; /* 0: left out */
    const char *const *tags;
    int ntags;
    const char *const *meta; /* key, value, key, value... */
    int nmeta;
    bool bad_tag; /* one tag an atom */
};

static ei_x_buff x;
static struct request req;

static void bin(const char *key, const char *value)
{
    ei_x_encode_atom(&x, key);
    ei_x_encode_binary(&x, value, (long)strlen(value));
}

static const struct request *encode(const struct args *a, bool deregister)
{
    int pairs = 2 + (a->name != NULL) + (a->address != NULL) + (a->port != 0) +
                (a->token != NULL) + (a->check != NULL) + (a->interval != NULL) +
                (a->ttl != NULL) + (a->deregister_after != NULL) + (a->tags != NULL || a->bad_tag) +
                (a->meta != NULL);
    ei_x_free(&x);
    ei_x_new_with_version(&x);
    ei_x_encode_tuple_header(&x, 3);
    ei_x_encode_long(&x, 1);
    ei_x_encode_atom(&x, deregister ? "consul_deregister" : "consul_register");
    ei_x_encode_map_header(&x, pairs);
    bin("url", "http://127.0.0.1:8500/");
    bin("id", a->id ? a->id : "app-dist-app-4370@h1");
    if (a->name)
        bin("name", a->name);
    if (a->address)
        bin("address", a->address);
    if (a->port != 0) {
        ei_x_encode_atom(&x, "port");
        ei_x_encode_long(&x, a->port);
    }
    if (a->token)
        bin("token", a->token);
    if (a->check) {
        ei_x_encode_atom(&x, "check");
        ei_x_encode_atom(&x, a->check);
    }
    if (a->interval)
        bin("interval", a->interval);
    if (a->ttl)
        bin("ttl", a->ttl);
    if (a->deregister_after)
        bin("deregister_after", a->deregister_after);
    if (a->tags != NULL || a->bad_tag) {
        ei_x_encode_atom(&x, "tags");
        ei_x_encode_list_header(&x, a->ntags + a->bad_tag);
        for (int i = 0; i < a->ntags; i++)
            ei_x_encode_binary(&x, a->tags[i], (long)strlen(a->tags[i]));
        if (a->bad_tag)
            ei_x_encode_atom(&x, "web");
        ei_x_encode_empty_list(&x);
    }
    if (a->meta) {
        ei_x_encode_atom(&x, "meta");
        ei_x_encode_map_header(&x, a->nmeta);
        for (int i = 0; i < 2 * a->nmeta; i++)
            ei_x_encode_binary(&x, a->meta[i], (long)strlen(a->meta[i]));
    }
    const char *detail = NULL;
    assert_int_equal(term_request_decode(x.buff, (size_t)x.index, &req, &detail), TERM_OK);
    return &req;
}

static struct register_query q;
static struct http_request r;
static char body[HTTP_BODY_MAX], msg[512];

static int run_op(const struct args *a, enum register_op op)
{
    if (register_args(encode(a, op != REGISTER_OP_REGISTER), op, &q, msg, sizeof msg) != 0)
        return -1;
    assert_int_equal(register_build(&q, &r, body, sizeof body), 0);
    return 0;
}

static int run(const struct args *a, bool deregister)
{
    return run_op(a, deregister ? REGISTER_OP_DEREGISTER : REGISTER_OP_REGISTER);
}

static void registers_with_a_tcp_check(void **state)
{
    (void)state;
    const char *tags[] = {"v1", "quote\"back\\slash"};
    const char *meta[] = {"erlang_node", "app-4370@h1"};
    struct args a = {.name = "app-dist", .address = "h1", .port = 4370, .tags = tags, .ntags = 2,
                     .meta = meta, .nmeta = 1, .deregister_after = "1m", .token = "s3cret"};
    assert_int_equal(run(&a, false), 0);
    assert_true(r.put);
    assert_string_equal(r.base, "http://127.0.0.1:8500");
    assert_string_equal(r.path, "/v1/agent/service/register?replace-existing-checks=true");
    assert_string_equal(r.token_header, "X-Consul-Token: s3cret");
    assert_string_equal(body,
        "{\"ID\":\"app-dist-app-4370@h1\",\"Name\":\"app-dist\",\"Address\":\"h1\",\"Port\":4370,"
        "\"Tags\":[\"v1\",\"quote\\\"back\\\\slash\"],\"Meta\":{\"erlang_node\":\"app-4370@h1\"},"
        "\"Check\":{\"TCP\":\"h1:4370\",\"Interval\":\"10s\",\"DeregisterCriticalServiceAfter\":\"1m\"}}");
    assert_int_equal(r.body_len, strlen(body));
}

static void ipv6_tcp_target_is_bracketed_and_ttl_check(void **state)
{
    (void)state;
    struct args a = {.name = "s", .address = "::1", .port = 9, .interval = "500ms"};
    assert_int_equal(run(&a, false), 0);
    assert_non_null(strstr(body, "\"TCP\":\"[::1]:9\",\"Interval\":\"500ms\""));
    struct args t = {.name = "s", .address = "h", .port = 9, .check = "ttl", .ttl = "15s"};
    assert_int_equal(run(&t, false), 0);
    assert_non_null(strstr(body, "\"Check\":{\"TTL\":\"15s\"}"));
    struct args n = {.name = "s", .address = "h", .port = 9, .check = "none"};
    assert_int_equal(run(&n, false), 0);
    assert_null(strstr(body, "Check"));
}

static void deregisters_by_escaped_id(void **state)
{
    (void)state;
    struct args a = {.id = "app dist/x"};
    assert_int_equal(run(&a, true), 0);
    assert_true(r.put);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.path, "/v1/agent/service/deregister/app%20dist%2Fx");
    assert_int_equal(run_op(&a, REGISTER_OP_CHECK_PASS), 0);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.path, "/v1/agent/check/pass/service%3Aapp%20dist%2Fx");
}

static void control_characters_are_escaped(void **state)
{
    (void)state;
    char out[64];
    size_t used = 0;
    assert_int_equal(register_json_string(out, sizeof out, &used, "a\x01\n\"é", strlen("a\x01\n\"é")), 0);
    assert_string_equal(out, "\"a\\u0001\\u000a\\\"é\"");
    used = 0;
    assert_int_equal(register_json_string(out, sizeof out, &used, "\xc3", 1), -1);
    used = 0;
    assert_int_equal(register_json_string(out, 4, &used, "abcdef", 6), -1);
}

static void refusals_name_the_key(void **state)
{
    (void)state;
    const struct {
        struct args a;
        const char *key;
    } cases[] = {
        {{.name = "s", .address = "h"}, "missing argument 'port'"},
        {{.name = "s", .address = "h", .port = 70000}, "port: must be an integer in 1..65535"},
        {{.name = "s", .port = 1}, "missing argument 'address'"},
        {{.name = "s", .address = "h", .port = 1, .bad_tag = true}, "tags: element 1"},
        {{.name = "s", .address = "h", .port = 1, .interval = "10"}, "interval: not a duration"},
        {{.name = "s", .address = "h", .port = 1, .deregister_after = "1x"},
         "deregister_after: not a duration"},
        {{.name = "s", .address = "h", .port = 1, .check = "ttl"}, "ttl: a TTL check needs one"},
        {{.name = "s", .address = "h", .port = 1, .check = "http"}, "check: must be tcp"},
        {{.name = "s", .address = "h", .port = 1, .token = "a\nb"}, "token: must be one line"},
        {{.name = "s\x01", .address = "h", .port = 1}, "name, address:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(run(&cases[i].a, false), -1);
        if (strncmp(msg, cases[i].key, strlen(cases[i].key)) != 0)
            fail_msg("case %zu: '%s' does not start with '%s'", i, msg, cases[i].key);
    }
    const char *meta[] = {"consul-x", "v"};
    struct args m = {.name = "s", .address = "h", .port = 1, .meta = meta, .nmeta = 1};
    assert_int_equal(run(&m, false), -1);
    assert_non_null(strstr(msg, "meta: keys"));
    const char *meta2[] = {"bad key", "v"};
    m.meta = meta2;
    assert_int_equal(run(&m, false), -1);
}

static void durations_as_go_reads_them(void **state)
{
    (void)state;
    const char *good[] = {"10s", "1m30s", "500ms", "1.5h", "2us", "3ns", ".5s"};
    const char *bad[] = {"", "10", "s", "-1s", "1d", "1 s", "1.s.", "1sm"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(register_duration_ok(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (register_duration_ok(bad[i]))
            fail_msg("'%s' taken", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registers_with_a_tcp_check),
        cmocka_unit_test(ipv6_tcp_target_is_bracketed_and_ttl_check),
        cmocka_unit_test(deregisters_by_escaped_id),
        cmocka_unit_test(control_characters_are_escaped),
        cmocka_unit_test(refusals_name_the_key),
        cmocka_unit_test(durations_as_go_reads_them),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ei_x_free(&x);
    return rc;
}
