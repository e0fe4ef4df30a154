/*
 * dist_port.h - the distribution port a node name carries.
 *
 * The rule (Caravan 1.0.1's, kept so its users can switch): the port is the
 * run of decimal digits at the end of the name part, `app-4370@10.0.0.5` ->
 * 4370, `node3434` -> 3434. A name without trailing digits gets the caller's
 * default. The name part must be 1..255 printable ASCII bytes without '@'
 * (what OTP accepts for a node name), and the port must be 1..65535.
 */
#ifndef CARAVAN_DIST_PORT_H
#define CARAVAN_DIST_PORT_H

#include <stddef.h>

#define DIST_PORT_MAX_NAME 255

enum dist_port_error {
    DIST_PORT_OK = 0,
    DIST_PORT_EMPTY,        /* nothing before '@' */
    DIST_PORT_TOO_LONG,     /* name part above DIST_PORT_MAX_NAME bytes */
    DIST_PORT_BAD_CHAR,     /* a byte that is not printable ASCII */
    DIST_PORT_OUT_OF_RANGE, /* trailing digits are 0 or above 65535 */
    DIST_PORT_NO_DEFAULT    /* no digits, and the default is 0 */
};

/* Stable atom for an error, as sent in error replies. */
const char *dist_port_error_atom(enum dist_port_error e);

/* Derives the port of `name` (`name` or `name@host`, len bytes, not necessarily
 * NUL-terminated). default_port is used when the name has no trailing digits.
 * On error, msg gets one sentence naming the node and the rule. */
enum dist_port_error dist_port_from_name(const char *name, size_t len, long default_port,
                                         long *port, char *msg, size_t msglen);

#endif
