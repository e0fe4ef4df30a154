/* libFuzzer target: Consul health answers (and so the JSON reader). The
 * first byte picks the tagged address asked for. */
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *tagged[] = {"", "lan_ipv4", "wan", "lan"};
    if (size < 1)
        return 0;
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    consul_health_parse((const char *)data + 1, size - 1, tagged[data[0] & 3], &ms, &err);
    members_free(&ms);
    return 0;
}
