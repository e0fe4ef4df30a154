/* libFuzzer target: Consul health answers (and so the JSON reader and the
 * array splitter). The first byte picks the tagged address asked for and
 * the size of the pieces the body is fed in. The target aborts unless a
 * body gets the same answer whole and in pieces, and unless the splitter
 * refuses exactly the bodies json_parse refuses as a whole (or that are not
 * arrays): what reading by pieces accepts is what strict JSON allows. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "json.h"

static int same(const struct members *a, const struct members *b)
{
    if (a->n != b->n || a->skipped != b->skipped)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->m[i].port != b->m[i].port || strcmp(a->m[i].address, b->m[i].address) != 0 ||
            strcmp(a->m[i].node, b->m[i].node) != 0 || strcmp(a->m[i].id, b->m[i].id) != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *tagged[] = {"", "lan_ipv4", "wan", "lan"};
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1, piece = (size_t)(data[0] >> 2) + 1;
    struct members whole, cut;
    const char *err = NULL;
    members_init(&whole);
    members_init(&cut);
    int rc_whole = consul_health_parse(body, len, tagged[data[0] & 3], &whole, &err);

    struct catalog_stream s;
    catalog_stream_init(&s, API_CONSUL, tagged[data[0] & 3], &cut);
    int rc_cut = 0;
    for (size_t at = 0; at < len && rc_cut == 0; at += piece)
        rc_cut = catalog_stream_feed(&s, body + at, len - at < piece ? len - at : piece, &err);
    if (rc_cut == 0)
        rc_cut = catalog_stream_end(&s, &err);
    catalog_stream_free(&s);

    if (rc_whole != rc_cut || (rc_whole == 0 && !same(&whole, &cut)))
        abort();
    struct json j;
    bool strict = json_parse(&j, body, len, &err) == 0 && json_is(&j, j.root, JSON_ARRAY);
    /* A strict array fails only when every entry in it was dropped. */
    if (strict ? rc_whole != 0 && !(whole.n == 0 && whole.skipped > 0) : rc_whole == 0)
        abort();
    members_free(&whole);
    members_free(&cut);
    return 0;
}
