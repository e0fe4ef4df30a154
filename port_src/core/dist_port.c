/* dist_port.c - node name -> distribution port; see dist_port.h. */
#include "dist_port.h"

#include <stdio.h>
#include <string.h>

#define PORT_MAX 65535L

const char *dist_port_error_atom(enum dist_port_error e)
{
    switch (e) {
    case DIST_PORT_OK: return "ok";
    case DIST_PORT_EMPTY: return "empty_name";
    case DIST_PORT_TOO_LONG: return "name_too_long";
    case DIST_PORT_BAD_CHAR: return "invalid_name";
    case DIST_PORT_OUT_OF_RANGE: return "port_out_of_range";
    case DIST_PORT_NO_DEFAULT: return "no_port";
    }
    return "invalid_name";
}

enum dist_port_error dist_port_from_name(const char *name, size_t len, long default_port,
                                         long *port, char *msg, size_t msglen)
{
    const char *at = memchr(name, '@', len);
    size_t n = at ? (size_t)(at - name) : len;

    if (n == 0) {
        snprintf(msg, msglen, "node name is empty: the name part before '@' is required");
        return DIST_PORT_EMPTY;
    }
    if (n > DIST_PORT_MAX_NAME) {
        snprintf(msg, msglen, "node name is %zu bytes: at most %d are allowed", n,
                 DIST_PORT_MAX_NAME);
        return DIST_PORT_TOO_LONG;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c > 0x7e) {
            snprintf(msg, msglen,
                     "node name has byte 0x%02x at %zu: only printable ASCII is allowed", c, i);
            return DIST_PORT_BAD_CHAR;
        }
    }

    size_t start = n;
    while (start > 0 && name[start - 1] >= '0' && name[start - 1] <= '9')
        start--;

    if (start == n) {
        if (default_port < 1 || default_port > PORT_MAX) {
            snprintf(msg, msglen,
                     "node %.*s has no port: its name does not end in digits and no default "
                     "port is set",
                     (int)n, name);
            return DIST_PORT_NO_DEFAULT;
        }
        *port = default_port;
        return DIST_PORT_OK;
    }

    /* Accumulate with a clamp so 30 digits cannot overflow. */
    long value = 0;
    for (size_t i = start; i < n; i++) {
        value = value * 10 + (name[i] - '0');
        if (value > PORT_MAX)
            break;
    }
    if (value < 1 || value > PORT_MAX) {
        snprintf(msg, msglen,
                 "node %.*s: the digits ending a node name are its port and must be 1..65535",
                 (int)n, name);
        return DIST_PORT_OUT_OF_RANGE;
    }
    *port = value;
    return DIST_PORT_OK;
}
