/* request_input.h - the input of the fuzz targets that read one request
 * (fuzz_args, fuzz_register): a first byte that picks what is fuzzed,
 * then one packet body ({Id, Op, Args} in external format). */
#ifndef CARAVAN_FUZZ_REQUEST_INPUT_H
#define CARAVAN_FUZZ_REQUEST_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "term.h"

/* Decodes the body after data's first byte into req (which points into
 * data). Returns that first byte, or -1 when there is none or the body is
 * no request. */
static inline int request_input(const uint8_t *data, size_t size, struct request *req)
{
    const char *detail = NULL;
    if (size < 1 || term_request_decode((const char *)data + 1, size - 1, req, &detail) != TERM_OK)
        return -1;
    return data[0];
}

#endif
