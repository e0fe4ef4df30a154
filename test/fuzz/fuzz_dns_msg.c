/* libFuzzer target: DNS answers as a server might send them. */
#include <stddef.h>
#include <stdint.h>

#include "dns_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_answer a;
    const char *err = NULL;
    dns_answer_init(&a);
    dns_msg_parse(data, size, &a, &err);
    for (size_t i = 0; i < a.nsrv; i++) {
        struct dns_addr addr;
        dns_addr_from_target(a.srv[i].target, &addr);
    }
    dns_answer_free(&a);
    /* Names from any offset, as pointers may lead anywhere. */
    if (size > 2) {
        char out[DNS_NAME_TEXT_MAX];
        size_t off = data[0] % size;
        dns_name_read(data, size, &off, out, sizeof out);
    }
    return 0;
}
