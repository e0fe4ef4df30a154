/* libFuzzer target: a request's argument map (term_args_parse), as the
 * consul_health and nomad_services operations read it, and the GET built
 * from it. No request is sent: nothing here opens a socket. The input is
 * one packet body ({Id, Op, Args} in external format); the first byte
 * picks the API. */
#include <stddef.h>
#include <stdint.h>

#include "ops_catalog.h"
#include "request_input.h"
#include "term.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request req;
    int pick = request_input(data, size, &req);
    if (pick < 0)
        return 0;
    struct catalog_query q;
    struct http_request r;
    char msg[512];
    enum catalog_api api = pick & 1 ? API_NOMAD : API_CONSUL;
    if (ops_catalog_args(&req, api, &q, msg, sizeof msg) == 0)
        (void)catalog_request_build(&q, &r);
    /* Every argument type, the list of binaries included. */
    char bin[64], atom[16], list[128];
    long long n = 0;
    size_t bin_len = 0, count = 0;
    const struct term_arg spec[] = {
        {.key = "name", .type = ARG_BINARY, .dest = bin, .max = sizeof bin - 1, .len_out = &bin_len},
        {.key = "timeout_ms", .type = ARG_INT, .dest = &n, .min = -5, .max = 1000},
        {.key = "transport", .type = ARG_ATOM, .dest = atom, .max = sizeof atom - 1},
        {.key = "servers", .type = ARG_BINARY_LIST, .dest = list, .max = sizeof list - 1,
         .len_out = &count},
    };
    (void)term_args_parse(&req, spec, sizeof spec / sizeof spec[0], msg, sizeof msg);
    return 0;
}
