/* address.c - the strict address rule; see address.h. */
#include "address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool address_ipv4_lenient(const char *text, uint32_t *addr)
{
    unsigned long long part[4];
    size_t n = 0;
    for (const char *c = text;;) {
        if (*c < '0' || *c > '9' || n == 4)
            return false;
        char *end;
        errno = 0;
        part[n++] = strtoull(c, &end, 0);
        if (errno == ERANGE || part[n - 1] > 0xffffffffULL)
            return false;
        if (*end == '\0')
            break;
        if (*end != '.')
            return false;
        c = end + 1;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (part[i] > 0xff)
            return false;
    if (part[n - 1] > (0xffffffffULL >> (8 * (n - 1))))
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i + 1 < n; i++)
        v |= (uint32_t)part[i] << (24 - 8 * i);
    *addr = v | (uint32_t)part[n - 1];
    return true;
}

enum address_kind address_classify(const char *text, char *out, size_t cap)
{
    unsigned char bytes[16];
    const char *zone = strchr(text, '%');
    if (zone == NULL) {
        int family = inet_pton(AF_INET, text, bytes) == 1    ? AF_INET
                   : inet_pton(AF_INET6, text, bytes) == 1 ? AF_INET6
                                                             : 0;
        if (family != 0) {
            if (inet_ntop(family, bytes, out, (socklen_t)cap) == NULL)
                snprintf(out, cap, "%s", text);
            return ADDRESS_STRICT;
        }
    } else {
        /* An IPv6 zone names an interface of the host that wrote it. */
        char head[64];
        size_t n = (size_t)(zone - text);
        if (n < sizeof head) {
            memcpy(head, text, n);
            head[n] = '\0';
            if (inet_pton(AF_INET6, head, bytes) == 1)
                return ADDRESS_AMBIGUOUS;
        }
    }
    uint32_t v4;
    return address_ipv4_lenient(text, &v4) ? ADDRESS_AMBIGUOUS : ADDRESS_HOST_NAME;
}
