/* libFuzzer target: the argument map of consul_register / consul_deregister
 * (register_args) and the PUT built from it (register_build). No request
 * is sent. The input is one packet body ({Id, Op, Args} in external format);
 * the first byte picks the operation (mod 3: register, deregister, check pass). Whatever is taken must build
 * into a body that is valid JSON-escaped text: no raw control byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "register.h"
#include "request_input.h"
#include "term.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request req;
    int pick = request_input(data, size, &req);
    if (pick < 0)
        return 0;
    static struct register_query q;
    static struct http_request r;
    static char body[HTTP_BODY_MAX];
    char msg[512];
    enum register_op op = pick % 3 == 0 ? REGISTER_OP_REGISTER
                        : pick % 3 == 1 ? REGISTER_OP_DEREGISTER
                                        : REGISTER_OP_CHECK_PASS;
    if (register_args(&req, op, &q, msg, sizeof msg) != 0)
        return 0;
    if (register_build(&q, &r, body, sizeof body) != 0)
        return 0;
    for (size_t i = 0; i < r.body_len; i++)
        if ((unsigned char)body[i] < 0x20)
            abort();
    return 0;
}
