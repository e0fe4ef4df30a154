/* Strict JSON reading (port_src/json.c) and the Consul/Nomad answer readers
 * (port_src/catalog.c) on hand-written bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "json.h"

static int parses(const char *text)
{
    struct json j;
    const char *err = NULL;
    return json_parse(&j, text, strlen(text), &err);
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
    const char *text = "[\"a\\\"b\\\\c\\/d\\n\", \"\\u00e9\\u20ac\", \"\\ud83d\\ude00\"]";
    struct json j;
    const char *err = NULL;
    assert_int_equal(json_parse(&j, text, strlen(text), &err), 0);
    char out[64];
    long e = json_array_next(&j, j.root, -1);
    assert_int_equal(json_string(&j, e, out, sizeof out), 8);
    assert_string_equal(out, "a\"b\\c/d\n");
    e = json_array_next(&j, j.root, e);
    assert_int_equal(json_string(&j, e, out, sizeof out), 5);
    assert_string_equal(out, "\xc3\xa9\xe2\x82\xac");
    e = json_array_next(&j, j.root, e);
    assert_string_equal((json_string(&j, e, out, sizeof out), out), "\xf0\x9f\x98\x80");
    assert_int_equal(json_array_next(&j, j.root, e), -1);
    /* Too long for the buffer: an error, not an overflow. */
    assert_int_equal(json_string(&j, json_array_next(&j, j.root, -1), out, 4), -1);
    /* Lone surrogates, raw control characters, bad escapes: the whole
     * document is refused, not just the string. */
    const char *bad[] = {"[\"\\ud800\"]", "[\"\\udc00x\"]", "[\"raw\ttab\"]",
                         "[\"\\u12\"]", "[\"\\q\"]", "[\"\\ud800\\u0041\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parses(bad[i]) != -1)
            fail_msg("accepted %s", bad[i]);
}

/* Issue 10 item 5: RFC 8259's grammar, every one of these refused. */
static void strict_rfc8259_negatives(void **state)
{
    (void)state;
    const char *bad[] = {
        "[1 2]", "[1,,2]", "[,1]", "[1,]", "{\"a\":1,}", "[\"a\" \"b\"]",
        "{\"a\":1 \"b\":2}", "{,\"a\":1}", "{\"a\" 1}", "{\"a\":}", "[1]]", "[[1]",
        "[\"10.0.0.5\\u0000evil\"]", "[\"\\u0000\"]",
        "[\"\xc0\xaf\"]", "[\"\xed\xa0\x80\"]", "[\"\xff\"]", "[\"\xe2\x82\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct json j;
        const char *err = NULL;
        if (json_parse(&j, bad[i], strlen(bad[i]), &err) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(err);
    }
    /* Bytes after a NUL: a C-string reader would stop at the NUL and see a
     * valid document. */
    static const char nul_then[] = "[1]\0[2]";
    static const char nul_only[] = "[1]\0";
    static const char nul_inside[] = "[\"a\0b\"]";
    struct json j;
    const char *err = NULL;
    assert_int_equal(json_parse(&j, nul_then, sizeof nul_then - 1, &err), -1);
    assert_int_equal(json_parse(&j, nul_only, sizeof nul_only - 1, &err), -1);
    assert_int_equal(json_parse(&j, nul_inside, sizeof nul_inside - 1, &err), -1);
    /* And the same through the Consul reader: an answer, not an entry. */
    const char *consul = "[{\"Node\":{\"Address\":\"10.0.0.5\\u0000evil\"},"
                         "\"Service\":{\"Port\":1}}]";
    struct members ms;
    members_init(&ms);
    assert_int_equal(consul_health_parse(consul, strlen(consul), "", &ms, &err), -1);
    assert_int_equal(ms.n, 0);
    members_free(&ms);
    /* Valid neighbours of the refused ones still pass. */
    assert_int_equal(parses(" [ 1 , 2 ] "), 0);
    assert_int_equal(parses("{\"a\":1,\"b\":[{}]}"), 0);
    assert_int_equal(parses("[\"\xe2\x82\xac\xf0\x9f\x98\x80\"]"), 0);
}

/* Issue 19: jsmn (JSMN_STRICT) tokenizes, and lets through what these
 * are; json.c's check over its tokens and the bytes between them refuses
 * each, with this reason. */
static void what_jsmn_lets_through_is_refused_with_a_reason(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"[01]", "invalid JSON number"},
        {"[-01]", "invalid JSON number"},
        {"[1.]", "invalid JSON number"},
        {"[1e+]", "invalid JSON number"},
        {"[-]", "invalid JSON number"},
        {"[tru]", "invalid JSON literal"},
        {"[nulll]", "invalid JSON literal"},
        {"[1 2]", "expected ',' or ']' in a JSON array"},
        {"[1,,2]", "expected ',' or ']' in a JSON array"},
        {"[,1]", "expected ',' or ']' in a JSON array"},
        {"[1,]", "expected ',' or ']' in a JSON array"},
        {"[1:2]", "invalid JSON number"},
        {"{\"a\":1,}", "expected ',' or '}' in a JSON object"},
        {"{\"a\":1 \"b\":2}", "expected ':' after a JSON object key"},
        {"{\"a\" \"b\"}", "expected ':' after a JSON object key"},
        {"{\"a\"}", "expected ':' after a JSON object key"},
        {"{\"a\":}", "expected ':' after a JSON object key"},
        {"{\"a\":{}\"c\":2}", "expected ':' after a JSON object key"},
        {"{\"a\" 1}", "expected a string key or ':' in a JSON object"},
        {"{1:2}", "expected a string key or ':' in a JSON object"},
        {"[\"a\":1]", "expected ',' or a closing bracket in JSON"},
        {"{\"a\":\"b\":\"c\"}", "expected ',' or a closing bracket in JSON"},
        {"[1]]", "JSON brackets do not match"},
        {"{\"a\":1]", "JSON brackets do not match"},
        {"[[1]", "JSON ends early"},
        {"[1] [2]", "bytes after the JSON value"},
        {"1 2", "bytes after the JSON value"},
        {"[\"\x01\"]", "control character in a JSON string"},
        {"[\"\xff\"]", "invalid UTF-8"},
        {"[\"\xc0\xaf\"]", "invalid UTF-8"},
        {"[\"\\ud800\"]", "lone surrogate in a JSON string"},
        {"[\"\\udc00x\"]", "lone surrogate in a JSON string"},
        {"[\"\\u0000\"]", "\\u0000 in a JSON string"},
        {"[\"\\q\"]", "invalid escape in a JSON string"},
        {"", "empty JSON document"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct json j;
        const char *err = NULL;
        if (json_parse(&j, cases[i].text, strlen(cases[i].text), &err) != -1)
            fail_msg("accepted %s", cases[i].text);
        if (err == NULL || strcmp(err, cases[i].why) != 0)
            fail_msg("%s refused with \"%s\", not \"%s\"", cases[i].text, err ? err : "(none)",
                     cases[i].why);
    }
    /* Their valid neighbours: scalars alone (jsmn's strict mode wants a
     * delimiter after one), whitespace anywhere between tokens. */
    const char *good[] = {"12", " -0.5e+3 ", "true", "\"x\"", "[1e5,-0.0E+1]",
                          " { \"a\" :  1 , \"b\" : [ ] } "};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (parses(good[i]) != 0)
            fail_msg("refused %s", good[i]);
}

/* Values are tokens: reading skips whole subtrees, in any nesting. */
static void values_are_read_across_nesting(void **state)
{
    (void)state;
    const char *text = "{\"a\":{\"x\":[1,{\"y\":2}]},\"b\":[[],[3,[4]],{}],\"c\":\"z\"}";
    struct json j;
    const char *err = NULL;
    char out[8];
    long long v;
    assert_int_equal(json_parse(&j, text, strlen(text), &err), 0);
    assert_int_equal(json_string(&j, json_get(&j, j.root, "c", false), out, sizeof out), 1);
    assert_string_equal(out, "z");
    long b = json_get(&j, j.root, "b", false);
    long e0 = json_array_next(&j, b, -1), e1 = json_array_next(&j, b, e0);
    long e2 = json_array_next(&j, b, e1);
    assert_true(json_is(&j, e0, JSON_ARRAY));
    assert_int_equal(json_array_next(&j, e0, -1), -1);
    assert_int_equal(json_int(&j, json_array_next(&j, e1, -1), 0, 9, &v), 0);
    assert_int_equal(v, 3);
    assert_true(json_is(&j, e2, JSON_OBJECT));
    assert_int_equal(json_array_next(&j, b, e2), -1);
    long x = json_get(&j, json_get(&j, j.root, "a", false), "x", false);
    long y = json_get(&j, json_array_next(&j, x, json_array_next(&j, x, -1)), "y", false);
    assert_int_equal(json_int(&j, y, 0, 9, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(json_get(&j, j.root, "d", false), -1);
    assert_false(json_is_null(&j, b));
}

static void integers_are_range_checked(void **state)
{
    (void)state;
    const char *text = "[4370, 70000, 1.5, -1, 99999999999999999999, \"1\"]";
    struct json j;
    const char *err = NULL;
    long long v;
    assert_int_equal(json_parse(&j, text, strlen(text), &err), 0);
    long e = json_array_next(&j, j.root, -1);
    assert_int_equal(json_int(&j, e, 0, 65535, &v), 0);
    assert_int_equal(v, 4370);
    for (int k = 0; k < 5; k++) {
        e = json_array_next(&j, j.root, e);
        assert_int_equal(json_int(&j, e, 0, 65535, &v), -1);
    }
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


static double cpu_ms(void)
{
    return (double)clock() * 1000.0 / CLOCKS_PER_SEC;
}

static char *repeat_into(char *p, const char *s, size_t times)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < times; i++, p += n)
        memcpy(p, s, n);
    return p;
}

/* Issue 10 item 4: validation and reading are linear. The key check of old
 * walked each key's subtree again: 240 KB of nesting took 5 s. Bounds are
 * in CPU time, with room for the ASan build and a busy machine. */
static void deep_and_huge_json_is_linear(void **state)
{
    (void)state;
    const size_t kb240 = 240 * 1024;
    char *body = malloc(kb240 + 64);
    assert_non_null(body);
    /* One chain of 40,000 objects: refused at JSON_MAX_DEPTH, at once. */
    size_t levels = (kb240 - 1) / 6;
    char *p = repeat_into(body, "{\"a\":", levels);
    *p++ = '1';
    p = repeat_into(p, "}", levels);
    struct json j;
    const char *err = NULL;
    double t0 = cpu_ms();
    assert_int_equal(json_parse(&j, body, (size_t)(p - body), &err), -1);
    assert_string_equal(err, "JSON nested too deeply");
    /* Nesting just inside the bound, repeated to 240 KB: read whole. */
    p = body;
    *p++ = '[';
    size_t per = (JSON_MAX_DEPTH - 2) * 6 + 2, copies = (kb240 - 2) / (per + 1);
    for (size_t c = 0; c < copies; c++) {
        if (c)
            *p++ = ',';
        p = repeat_into(p, "{\"a\":", JSON_MAX_DEPTH - 2);
        *p++ = '1';
        p = repeat_into(p, "}", JSON_MAX_DEPTH - 2);
    }
    *p++ = ']';
    assert_int_equal(json_parse(&j, body, (size_t)(p - body), &err), 0);
    size_t n = 0;
    for (long e = json_array_next(&j, j.root, -1); e >= 0; e = json_array_next(&j, j.root, e)) {
        long v = e;
        while (json_is(&j, v, JSON_OBJECT))
            v = json_get(&j, v, "a", false);
        long long one = 0;
        assert_int_equal(json_int(&j, v, 1, 1, &one), 0);
        n++;
    }
    assert_int_equal(n, copies);
    double took = cpu_ms() - t0;
    if (took > 100)
        fail_msg("240 KB of nested JSON took %.1f ms of CPU", took);
    free(body);
}

/* Issue 10 item 10: a 16.7 MiB answer (max_bytes allows 256 MiB) is read,
 * not refused, and members are packed: 32 bytes plus their strings. */
static void big_answers_are_read_compactly(void **state)
{
    (void)state;
    assert_true(sizeof(struct member) <= 32);
    static const char entry[] =
        "{\"Node\":{\"Node\":\"node-%06zu\",\"Address\":\"10.%zu.%zu.%zu\"},"
        "\"Service\":{\"ID\":\"app-%06zu\",\"Port\":%zu,\"Meta\":{\"k\":\"v\"}},"
        "\"Checks\":[{\"Status\":\"passing\",\"Output\":\"ok ok ok ok ok ok ok ok ok\"}]}";
    const size_t want = 17500000; /* > 16.7 MiB */
    char *body = malloc(want + 512);
    assert_non_null(body);
    size_t len = 0, count = 0;
    body[len++] = '[';
    while (len < want) {
        if (count)
            body[len++] = ',';
        len += (size_t)snprintf(body + len, 512, entry, count, count >> 16 & 255,
                                count >> 8 & 255, count & 255, count, 1024 + count % 60000);
        count++;
    }
    body[len++] = ']';
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    if (consul_health_parse(body, len, "", &ms, &err) != 0)
        fail_msg("a %zu-byte answer was refused: %s", len, err);
    assert_int_equal(ms.n, count);
    assert_int_equal(ms.skipped, 0);
    char last[32];
    snprintf(last, sizeof last, "node-%06zu", count - 1);
    assert_string_equal(ms.m[count - 1].node, last);
    assert_int_equal(ms.m[count - 1].port, 1024 + (count - 1) % 60000);
    members_free(&ms);
    free(body);
}

/* Issue 10 item 11: one unusable entry is dropped and counted; the others
 * are kept. Only an answer with no usable entry at all is refused. */
static void one_bad_entry_is_dropped_and_counted(void **state)
{
    (void)state;
    char longaddr[301];
    memset(longaddr, 'a', 300);
    longaddr[300] = '\0';
    char body[1024];
    snprintf(body, sizeof body,
             "[{\"Node\":{\"Node\":\"n1\",\"Address\":\"10.0.0.1\"},\"Service\":{\"Port\":1}},"
             "{\"Node\":{\"Node\":\"n2\",\"Address\":\"%s\"},\"Service\":{\"Port\":2}},"
             "{\"Node\":{\"Node\":\"n3\",\"Address\":\"10.0.0.3\"},\"Service\":{\"Port\":70000}},"
             "{\"Node\":{\"Node\":\"n4\",\"Address\":\"10.0.0.4\"},\"Service\":{\"Port\":4}}]",
             longaddr);
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    assert_int_equal(consul_health_parse(body, strlen(body), "", &ms, &err), 0);
    assert_int_equal(ms.n, 2);
    assert_string_equal(ms.m[0].node, "n1");
    assert_string_equal(ms.m[1].node, "n4");
    assert_int_equal(ms.skipped, 2);
    assert_non_null(ms.skip_reason);
    members_free(&ms);
    /* Nomad alike. */
    snprintf(body, sizeof body,
             "[{\"Address\":\"%s\",\"Port\":1},{\"Address\":\"10.0.0.2\",\"Port\":2}]",
             longaddr);
    members_init(&ms);
    assert_int_equal(nomad_services_parse(body, strlen(body), &ms, &err), 0);
    assert_int_equal(ms.n, 1);
    assert_int_equal(ms.skipped, 1);
    members_free(&ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literals_and_numbers_are_checked),
        cmocka_unit_test(strings_are_unescaped),
        cmocka_unit_test(strict_rfc8259_negatives),
        cmocka_unit_test(what_jsmn_lets_through_is_refused_with_a_reason),
        cmocka_unit_test(values_are_read_across_nesting),
        cmocka_unit_test(deep_and_huge_json_is_linear),
        cmocka_unit_test(big_answers_are_read_compactly),
        cmocka_unit_test(one_bad_entry_is_dropped_and_counted),
        cmocka_unit_test(integers_are_range_checked),
        cmocka_unit_test(consul_addresses),
        cmocka_unit_test(consul_bodies_that_are_refused),
        cmocka_unit_test(nomad_registrations),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
