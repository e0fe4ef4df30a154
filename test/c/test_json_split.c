/* Answers read as they arrive (port_src/json_split.c through catalog.c's
 * stream): the same answer however the body is cut, the same strictness
 * as json_parse on the whole, and memory for one element, not the body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "json.h"
#include "json_split.h"

struct outcome {
    int rc;
    bool json_ok; /* the body was strict JSON, whatever its entries were */
    struct members ms;
};

/* Feeds body in pieces cut at the given offsets (ascending, then piece
 * bytes at a time when piece > 0). */
static struct outcome read_cut(const char *body, size_t len, const size_t *cuts, size_t ncuts,
                               size_t piece)
{
    struct outcome o;
    struct catalog_stream s;
    const char *err = NULL;
    members_init(&o.ms);
    catalog_stream_init(&s, API_CONSUL, "", &o.ms);
    size_t at = 0;
    o.rc = 0;
    for (size_t i = 0; i <= ncuts && o.rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        while (at < to && o.rc == 0) {
            size_t n = piece > 0 && to - at > piece ? piece : to - at;
            o.rc = catalog_stream_feed(&s, body + at, n, &err);
            at += n;
        }
    }
    if (o.rc == 0)
        o.rc = catalog_stream_end(&s, &err);
    if (o.rc != 0)
        assert_non_null(err);
    o.json_ok = s.split.err == NULL;
    catalog_stream_free(&s);
    return o;
}

static void assert_same(const struct outcome *a, const struct outcome *b, const char *body,
                        size_t cut)
{
    if (a->rc != b->rc)
        fail_msg("cut at %zu: rc %d, whole %d: %s", cut, b->rc, a->rc, body);
    if (a->rc != 0)
        return;
    assert_int_equal(a->ms.n, b->ms.n);
    assert_int_equal(a->ms.skipped, b->ms.skipped);
    for (size_t i = 0; i < a->ms.n; i++) {
        assert_string_equal(a->ms.m[i].address, b->ms.m[i].address);
        assert_string_equal(a->ms.m[i].node, b->ms.m[i].node);
        assert_string_equal(a->ms.m[i].id, b->ms.m[i].id);
        assert_int_equal(a->ms.m[i].port, b->ms.m[i].port);
    }
}

#define ENTRY(addr) "{\"Node\":{\"Node\":\"n\",\"Address\":\"" addr "\"},\"Service\":{\"ID\":\"a\\\"]},\",\"Port\":1}}"

/* Bodies whose every byte is a possible cut: valid ones, refused ones,
 * strings holding brackets, commas and escaped quotes, scalars as
 * elements, whitespace everywhere the grammar allows it. */
static const char *const bodies[] = {
    "[" ENTRY("10.0.0.1") "," ENTRY("10.0.0.2") "]",
    " \r\n\t[ " ENTRY("10.0.0.1") " ,\n" ENTRY("10.0.0.2") " ] \n",
    "[]", " [ ] ", "[1]", "[\"x\"]", "[null, " ENTRY("a") ", true, 1.5e3, \"]\"]",
    "[" ENTRY("\\u00e9\\ud83d\\ude00") "]",
    "[" ENTRY("a") "," ENTRY("b\\\\") "]",
    /* refused: */
    "", "   ", "{}", "x", "[", "[" ENTRY("a"), "[" ENTRY("a") ",", "[" ENTRY("a") ",]",
    "[," ENTRY("a") "]", "[" ENTRY("a") ",," ENTRY("b") "]", "[" ENTRY("a") " " ENTRY("b") "]",
    "[" ENTRY("a") "]]", "[" ENTRY("a") "] x", "[1 2]", "[1,]", "[tru]", "[01]", "[1.]",
    "[\"a\" \"b\"]", "[{\"a\":1,}]", "[{]", "[{\"a\":1]", "[\"\\u0000\"]", "[\"\xff\"]",
    "[" ENTRY("10.0.0.5\\u0000evil") "]", "[\"\\ud800\"]", "[[[[[]]]]", "[}", "[]\x01",
};

static void any_cut_gets_the_whole_answer(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        const char *body = bodies[b];
        size_t len = strlen(body);
        struct outcome whole = read_cut(body, len, NULL, 0, 0);
        /* Strictness is json_parse's on the whole body. */
        struct json j;
        const char *err = NULL;
        bool strict = json_parse(&j, body, len, &err) == 0 && json_is(&j, j.root, JSON_ARRAY);
        if (strict != whole.json_ok)
            fail_msg("json_parse %s it, the stream %s: %s", strict ? "accepts" : "refuses",
                     whole.rc == 0 ? "accepts" : "refuses", body);
        for (size_t cut = 0; cut <= len; cut++) {
            size_t cuts[] = {cut};
            struct outcome one = read_cut(body, len, cuts, 1, 0);
            assert_same(&whole, &one, body, cut);
            members_free(&one.ms);
            /* and a byte at a time from there on */
            struct outcome bytes = read_cut(body, len, cuts, 1, 1);
            assert_same(&whole, &bytes, body, cut);
            members_free(&bytes.ms);
        }
        members_free(&whole.ms);
    }
}

/* The point of reading as the body arrives: 10,000 entries (1.5 MB) fed in
 * 4 KiB pieces never make the splitter hold more than an element or two.
 * Held whole, the body was most of the program's memory (issue 10: peak
 * RSS 17.2 MiB against a goal of 13.9 for a 5 MB answer). */
static void memory_is_one_element_not_the_body(void **state)
{
    (void)state;
    static const char entry[] =
        "{\"Node\":{\"Node\":\"node-%06zu\",\"Address\":\"10.0.%zu.%zu\"},"
        "\"Service\":{\"ID\":\"app-%06zu\",\"Port\":%zu},\"Checks\":[]}";
    char *body = malloc(10000 * 200);
    assert_non_null(body);
    size_t len = 0;
    body[len++] = '[';
    for (size_t i = 0; i < 10000; i++) {
        if (i)
            body[len++] = ',';
        len += (size_t)snprintf(body + len, 200, entry, i, i >> 8 & 255, i & 255, i, 1024 + i);
    }
    body[len++] = ']';
    struct members ms;
    struct catalog_stream s;
    const char *err = NULL;
    members_init(&ms);
    catalog_stream_init(&s, API_CONSUL, "", &ms);
    size_t most = 0;
    for (size_t at = 0; at < len; at += 4096) {
        assert_int_equal(catalog_stream_feed(&s, body + at, len - at < 4096 ? len - at : 4096, &err),
                         0);
        if (s.split.cap > most)
            most = s.split.cap;
    }
    assert_int_equal(catalog_stream_end(&s, &err), 0);
    assert_int_equal(ms.n, 10000);
    assert_string_equal(ms.m[9999].node, "node-009999");
    if (most > 4096)
        fail_msg("the splitter held %zu bytes for %zu-byte entries", most, strlen(entry));
    catalog_stream_free(&s);
    members_free(&ms);
    free(body);
}

/* A nesting bomb is refused at its 65th bracket (JSON_MAX_DEPTH levels), in the piece that holds
 * it: nothing of it is gathered, and later pieces are refused at once. */
static void nesting_bomb_is_refused_where_it_starts(void **state)
{
    (void)state;
    char piece[1024];
    memset(piece, '[', sizeof piece);
    struct members ms;
    struct catalog_stream s;
    const char *err = NULL;
    members_init(&ms);
    catalog_stream_init(&s, API_CONSUL, "", &ms);
    assert_int_equal(catalog_stream_feed(&s, piece, sizeof piece, &err), -1);
    assert_string_equal(err, "JSON nested too deeply");
    assert_int_equal(s.split.cap, 0);
    err = NULL;
    assert_int_equal(catalog_stream_feed(&s, "]", 1, &err), -1);
    assert_string_equal(err, "JSON nested too deeply");
    assert_int_equal(catalog_stream_end(&s, &err), -1);
    catalog_stream_free(&s);
    members_free(&ms);
    /* The bound is json_parse's: JSON_MAX_DEPTH levels pass, one more not. */
    char ok[2 * JSON_MAX_DEPTH + 2];
    memset(ok, '[', JSON_MAX_DEPTH + 1);
    memset(ok + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    struct json j;
    assert_int_equal(json_parse(&j, ok, 2 * JSON_MAX_DEPTH + 2, &err), -1);
    assert_int_equal(json_parse(&j, ok + 1, 2 * JSON_MAX_DEPTH, &err), 0);
    /* and the splitter refuses the extra level as soon as it opens, before
     * the element ends (the element's own json_parse would refuse it only
     * once it is whole) */
    catalog_stream_init(&s, API_CONSUL, "", &ms);
    assert_int_equal(catalog_stream_feed(&s, ok, JSON_MAX_DEPTH + 1, &err), -1);
    catalog_stream_free(&s);
    catalog_stream_init(&s, API_CONSUL, "", &ms);
    assert_int_equal(catalog_stream_feed(&s, ok, JSON_MAX_DEPTH, &err), 0);
    catalog_stream_free(&s);
    struct outcome whole = read_cut(ok + 1, 2 * JSON_MAX_DEPTH, NULL, 0, 7);
    assert_int_equal(whole.ms.skipped, 1); /* an array is no Consul entry */
    members_free(&whole.ms);
    struct outcome deeper = read_cut(ok, 2 * JSON_MAX_DEPTH + 2, NULL, 0, 7);
    assert_int_equal(deeper.rc, -1);
    members_free(&deeper.ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(any_cut_gets_the_whole_answer),
        cmocka_unit_test(memory_is_one_element_not_the_body),
        cmocka_unit_test(nesting_bomb_is_refused_where_it_starts),
    };
    return cmocka_run_group_tests_name("json_split", tests, NULL, NULL);
}
