/* dns_msg.c - bounded reader of DNS messages; see dns_msg.h. */
#include "dns_msg.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HEADER_LEN 12
#define RR_FIXED_LEN 10 /* type, class, ttl, rdlength */

void dns_answer_init(struct dns_answer *a)
{
    memset(a, 0, sizeof *a);
}

void dns_answer_free(struct dns_answer *a)
{
    free(a->srv);
    memset(a, 0, sizeof *a);
}

static int read_u16(const uint8_t *msg, size_t len, size_t off, uint16_t *v)
{
    if (off > len || len - off < 2)
        return -1;
    *v = (uint16_t)((msg[off] << 8) | msg[off + 1]);
    return 0;
}

static bool plain_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int dns_name_read(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap)
{
    size_t pos = *off, used = 0, wire = 0;
    int jumps = 0;
    bool jumped = false;

    if (outcap == 0)
        return -1;
    for (;;) {
        if (pos >= len)
            return -1;
        uint8_t b = msg[pos];
        if ((b & 0xC0) == 0xC0) {
            if (pos + 1 >= len || ++jumps > DNS_MSG_MAX_JUMPS)
                return -1;
            size_t target = ((size_t)(b & 0x3F) << 8) | msg[pos + 1];
            if (!jumped)
                *off = pos + 2;
            jumped = true;
            pos = target;
            continue;
        }
        if ((b & 0xC0) != 0)
            return -1; /* 0x40 and 0x80 label types are obsolete or reserved */
        pos++;
        if (b == 0)
            break;
        wire += (size_t)b + 1;
        if (wire > 255 || b > len - pos)
            return -1;
        if (used > 0) {
            if (used + 1 >= outcap)
                return -1;
            out[used++] = '.';
        }
        for (size_t i = 0; i < b; i++) {
            uint8_t c = msg[pos + i];
            if (plain_char(c)) {
                if (used + 1 >= outcap)
                    return -1;
                out[used++] = (char)c;
            } else {
                if (used + 4 >= outcap)
                    return -1;
                snprintf(out + used, 5, "\\%03u", c);
                used += 4;
            }
        }
        pos += b;
    }
    out[used] = '\0';
    if (!jumped)
        *off = pos;
    return 0;
}

bool dns_name_equal(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int dns_addr_from_target(const char *target, struct dns_addr *addr)
{
    const char *dot = strchr(target, '.');
    if (dot == NULL || strncasecmp(dot, ".addr.", 6) != 0)
        return 0;
    size_t n = (size_t)(dot - target);
    if (n != 8 && n != 32)
        return 0;
    memset(addr, 0, sizeof *addr);
    addr->family = n == 8 ? AF_INET : AF_INET6;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_value(target[i]), lo = hex_value(target[i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        addr->bytes[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

static void add_addr(struct dns_addr *list, size_t *n, int family, const uint8_t *bytes)
{
    size_t size = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < *n; i++)
        if (list[i].family == family && memcmp(list[i].bytes, bytes, size) == 0)
            return; /* the same address in both sections */
    if (*n >= DNS_MAX_ADDRS)
        return;
    memset(&list[*n], 0, sizeof list[*n]);
    list[*n].family = family;
    memcpy(list[*n].bytes, bytes, size);
    (*n)++;
}

static int add_srv(struct dns_answer *a, const uint8_t *msg, size_t len, size_t rdata,
                   uint16_t rdlen, const char **err)
{
    if (rdlen < 7) {
        *err = "SRV record shorter than its fixed fields";
        return -1;
    }
    if (a->nsrv >= DNS_MAX_RECORDS)
        return 0; /* keep the first DNS_MAX_RECORDS */
    if (a->nsrv == a->srv_cap) {
        size_t cap = a->srv_cap ? 2 * a->srv_cap : 16;
        struct dns_srv *grown = realloc(a->srv, cap * sizeof *a->srv);
        if (grown == NULL) {
            *err = "out of memory";
            return -1;
        }
        a->srv = grown;
        a->srv_cap = cap;
    }
    struct dns_srv *s = &a->srv[a->nsrv];
    memset(s, 0, sizeof *s);
    read_u16(msg, len, rdata, &s->priority);
    read_u16(msg, len, rdata + 2, &s->weight);
    read_u16(msg, len, rdata + 4, &s->port);
    size_t name_at = rdata + 6;
    if (dns_name_read(msg, len, &name_at, s->target, sizeof s->target) != 0 ||
        name_at > rdata + rdlen) {
        *err = "SRV target is not a valid name";
        return -1;
    }
    a->nsrv++;
    return 0;
}

/* Attaches an address record to every SRV record whose target is its owner. */
static void attach_addr(struct dns_answer *a, const char *owner, int family,
                        const uint8_t *bytes)
{
    for (size_t i = 0; i < a->nsrv; i++)
        if (dns_name_equal(a->srv[i].target, owner))
            add_addr(a->srv[i].addrs, &a->srv[i].naddrs, family, bytes);
}

struct rr {
    char owner[DNS_NAME_TEXT_MAX];
    uint16_t type, class, rdlen;
    size_t rdata;
};

static int read_rr(const uint8_t *msg, size_t len, size_t *off, struct rr *rr, const char **err)
{
    if (dns_name_read(msg, len, off, rr->owner, sizeof rr->owner) != 0) {
        *err = "record owner is not a valid name";
        return -1;
    }
    if (*off > len || len - *off < RR_FIXED_LEN) {
        *err = "record truncated in its fixed fields";
        return -1;
    }
    read_u16(msg, len, *off, &rr->type);
    read_u16(msg, len, *off + 2, &rr->class);
    read_u16(msg, len, *off + 8, &rr->rdlen);
    rr->rdata = *off + RR_FIXED_LEN;
    if (rr->rdlen > len - rr->rdata) {
        *err = "record data runs past the end of the message";
        return -1;
    }
    *off = rr->rdata + rr->rdlen;
    return 0;
}

/* Reads one record of section `section` (0 answer, 1 authority, 2 additional). */
static int take_rr(struct dns_answer *a, const uint8_t *msg, size_t len, const struct rr *rr,
                   int section, const char **err)
{
    if (rr->class != DNS_CLASS_IN || section == 1)
        return 0;
    if (rr->type == DNS_TYPE_SRV && section == 0)
        return add_srv(a, msg, len, rr->rdata, rr->rdlen, err);
    if (rr->type == DNS_TYPE_A || rr->type == DNS_TYPE_AAAA) {
        int family = rr->type == DNS_TYPE_A ? AF_INET : AF_INET6;
        if (rr->rdlen != (family == AF_INET ? 4 : 16)) {
            *err = "address record of the wrong length";
            return -1;
        }
        if (section == 0)
            add_addr(a->addrs, &a->naddrs, family, msg + rr->rdata);
        attach_addr(a, rr->owner, family, msg + rr->rdata);
    }
    return 0;
}

int dns_msg_parse(const uint8_t *msg, size_t len, struct dns_answer *a, const char **err)
{
    uint16_t flags, qd, counts[3];

    if (len < HEADER_LEN) {
        *err = "message shorter than a DNS header";
        return -1;
    }
    read_u16(msg, len, 2, &flags);
    read_u16(msg, len, 4, &qd);
    read_u16(msg, len, 6, &counts[0]);
    read_u16(msg, len, 8, &counts[1]);
    read_u16(msg, len, 10, &counts[2]);
    if (!(flags & 0x8000)) {
        *err = "message is a query, not a response";
        return -1;
    }
    a->truncated = (flags & 0x0200) != 0;
    a->rcode = flags & 0x000F;

    size_t off = HEADER_LEN;
    char scratch[DNS_NAME_TEXT_MAX];
    for (unsigned i = 0; i < qd; i++) {
        if (dns_name_read(msg, len, &off, scratch, sizeof scratch) != 0 || off > len ||
            len - off < 4) {
            *err = "question section truncated";
            return -1;
        }
        off += 4;
    }
    for (int section = 0; section < 3; section++) {
        for (unsigned i = 0; i < counts[section]; i++) {
            struct rr rr;
            if (read_rr(msg, len, &off, &rr, err) != 0 || take_rr(a, msg, len, &rr, section, err) != 0)
                return -1;
        }
    }
    return 0;
}
