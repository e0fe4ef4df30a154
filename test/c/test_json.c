/* Strict JSON reading (port_src/json.c) and the Consul/Nomad answer readers
 * (port_src/catalog.c) on hand-written bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "json.h"

static int parses(const char *text)
{
    struct json j;
    const char *err = NULL;
    int rc = json_parse(&j, text, strlen(text), &err);
    if (rc == 0)
        json_free(&j);
    return rc;
}

static void literals_and_numbers_are_checked(void **state)
{
    (void)state;
    const char *good[] = {"[true,false,null]", "[0,-0,1.5,-2e10,3E+2,4e-1]", "{\"a\":[]}", "[]"};
    const char *bad[] = {"[tru]", "[nul]", "[01]", "[1.]", "[-]", "[+1]", "[.5]", "[1e]",
                         "[truex]", "{\"a\":1,2:3}", "[1] [2]", "", "[1,", "{\"a\"}"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(parses(good[i]), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parses(bad[i]) != -1)
            fail_msg("accepted %s", bad[i]);
}

static void strings_are_unescaped(void **state)
{
    (void)state;
    const char *text = "[\"a\\\"b\\\\c\\/d\\n\", \"\\u00e9\\u20ac\", \"\\ud83d\\ude00\","
                       " \"\\ud800\", \"\\udc00x\", \"raw\ttab\"]";
    struct json j;
    const char *err = NULL;
    assert_int_equal(json_parse(&j, text, strlen(text), &err), 0);
    char out[64];
    int e = json_array_next(&j, 0, -1);
    assert_int_equal(json_string(&j, e, out, sizeof out), 8);
    assert_string_equal(out, "a\"b\\c/d\n");
    e = json_array_next(&j, 0, e);
    assert_int_equal(json_string(&j, e, out, sizeof out), 5);
    assert_string_equal(out, "\xc3\xa9\xe2\x82\xac");
    e = json_array_next(&j, 0, e);
    assert_string_equal((json_string(&j, e, out, sizeof out), out), "\xf0\x9f\x98\x80");
    for (int k = 0; k < 3; k++) { /* lone surrogates, a raw tab */
        e = json_array_next(&j, 0, e);
        assert_int_equal(json_string(&j, e, out, sizeof out), -1);
    }
    assert_int_equal(json_array_next(&j, 0, e), -1);
    /* Escapes jsmn itself refuses. */
    assert_int_equal(parses("[\"\\u12\"]"), -1);
    assert_int_equal(parses("[\"\\q\"]"), -1);
    /* Too long for the buffer: an error, not an overflow. */
    assert_int_equal(json_string(&j, json_array_next(&j, 0, -1), out, 4), -1);
    json_free(&j);
}

static void integers_are_range_checked(void **state)
{
    (void)state;
    const char *text = "[4370, 70000, 1.5, -1, 99999999999999999999, \"1\"]";
    struct json j;
    const char *err = NULL;
    long long v;
    assert_int_equal(json_parse(&j, text, strlen(text), &err), 0);
    int e = json_array_next(&j, 0, -1);
    assert_int_equal(json_int(&j, e, 0, 65535, &v), 0);
    assert_int_equal(v, 4370);
    for (int k = 0; k < 5; k++) {
        e = json_array_next(&j, 0, e);
        assert_int_equal(json_int(&j, e, 0, 65535, &v), -1);
    }
    json_free(&j);
}

static const char consul_body[] =
    "[{\"Node\":{\"Node\":\"n1\",\"Address\":\"10.0.0.1\","
    "\"TaggedAddresses\":{\"lan\":\"10.0.0.1\",\"wan\":\"198.18.0.1\"}},"
    "\"Service\":{\"ID\":\"app-1\",\"Address\":\"\",\"Port\":4370,"
    "\"TaggedAddresses\":{\"lan_ipv4\":{\"address\":\"10.1.0.1\",\"port\":5000}}},\"Checks\":[]},"
    " {\"Node\":{\"Node\":\"n2\",\"Address\":\"10.0.0.2\"},"
    "\"Service\":{\"ID\":\"app-2\",\"Address\":\"10.2.0.2\",\"Port\":4371,"
    "\"TaggedAddresses\":{\"LAN_IPV4\":{\"Address\":\"10.1.0.2\",\"Port\":5001}}},\"Checks\":[]}]";

static void consul_addresses(void **state)
{
    (void)state;
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    assert_int_equal(consul_health_parse(consul_body, strlen(consul_body), "", &ms, &err), 0);
    assert_int_equal(ms.n, 2);
    assert_string_equal(ms.m[0].address, "10.0.0.1"); /* empty Service.Address */
    assert_int_equal(ms.m[0].port, 4370);
    assert_string_equal(ms.m[0].node, "n1");
    assert_string_equal(ms.m[0].id, "app-1");
    assert_string_equal(ms.m[1].address, "10.2.0.2");
    members_free(&ms);

    assert_int_equal(consul_health_parse(consul_body, strlen(consul_body), "lan_ipv4", &ms, &err), 0);
    assert_string_equal(ms.m[0].address, "10.1.0.1");
    assert_int_equal(ms.m[0].port, 5000);
    assert_string_equal(ms.m[1].address, "10.1.0.2"); /* other key casing */
    assert_int_equal(ms.m[1].port, 5001);
    members_free(&ms);

    assert_int_equal(consul_health_parse(consul_body, strlen(consul_body), "wan", &ms, &err), 0);
    assert_string_equal(ms.m[0].address, "198.18.0.1"); /* the node's tagged string */
    assert_int_equal(ms.m[0].port, 4370);
    assert_string_equal(ms.m[1].address, "10.2.0.2"); /* no such tag: the default */
    members_free(&ms);
}

static void consul_bodies_that_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "{}", "[1]", "[{\"Node\":{}}]",
        "[{\"Node\":{\"Address\":\"a\"},\"Service\":{}}]",
        "[{\"Node\":{\"Address\":\"a\"},\"Service\":{\"Port\":-1}}]",
        "[{\"Node\":{\"Address\":\"a\"},\"Service\":{\"Port\":\"80\"}}]",
        "[{\"Node\":{\"Address\":7},\"Service\":{\"Port\":80}}]",
        "[{\"Node\":{},\"Service\":{\"Port\":80}}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct members ms;
        const char *err = NULL;
        members_init(&ms);
        if (consul_health_parse(bad[i], strlen(bad[i]), "", &ms, &err) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(err);
        members_free(&ms);
    }
}

static void nomad_registrations(void **state)
{
    (void)state;
    const char *body = "[{\"Address\":\"10.0.0.5\",\"Port\":23001,\"ID\":\"_nomad-task-1\","
                       "\"NodeID\":\"node-a\",\"ServiceName\":\"app\",\"Tags\":null}]";
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    assert_int_equal(nomad_services_parse(body, strlen(body), &ms, &err), 0);
    assert_int_equal(ms.n, 1);
    assert_string_equal(ms.m[0].address, "10.0.0.5");
    assert_int_equal(ms.m[0].port, 23001);
    assert_string_equal(ms.m[0].node, "node-a");
    members_free(&ms);
    const char *no_port = "[{\"Address\":\"10.0.0.5\"}]";
    assert_int_equal(nomad_services_parse(no_port, strlen(no_port), &ms, &err), -1);
    members_free(&ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literals_and_numbers_are_checked),
        cmocka_unit_test(strings_are_unescaped),
        cmocka_unit_test(integers_are_range_checked),
        cmocka_unit_test(consul_addresses),
        cmocka_unit_test(consul_bodies_that_are_refused),
        cmocka_unit_test(nomad_registrations),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
