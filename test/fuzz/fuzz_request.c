/* libFuzzer target: bytes as they arrive on the port's stdin. They go
 * through the framing reader, then each packet through the request decoder
 * and, for the operations that stay inside the program (dist_port, info,
 * ping), through the handler and reply encoder. Operations that would open
 * sockets are decoded only: a fuzzer must never send traffic. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"
#include "ops.h"
#include "term.h"

static int discard(void *ctx, const char *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return 0;
}

static struct ops ops;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        ei_init();
        struct reply_sink sink = {.send = discard, .ctx = NULL};
        if (ops_init(&ops, sink) != 0)
            return 0;
        ready = 1;
    }
    struct frame_reader r;
    frame_reader_init(&r);
    frame_reader_push(&r, data, size);
    const uint8_t *pkt;
    size_t len;
    enum frame_status s;
    while ((s = frame_reader_next(&r, &pkt, &len)) != FRAME_NONE) {
        if (s != FRAME_PACKET)
            continue;
        struct request req;
        const char *detail = NULL;
        if (term_request_decode((const char *)pkt, len, &req, &detail) != TERM_OK)
            continue;
        if (strcmp(req.op, "dist_port") == 0 || strcmp(req.op, "info") == 0 ||
            strcmp(req.op, "ping") == 0)
            ops_packet(&ops, (const char *)pkt, len);
    }
    frame_reader_free(&r);
    ops.deferred.count = 0; /* delayed pings would only pile up across runs */
    return 0;
}
