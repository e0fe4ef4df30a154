/* libFuzzer target: Nomad service answers (and so the JSON reader). */
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    nomad_services_parse((const char *)data, size, &ms, &err);
    members_free(&ms);
    return 0;
}
