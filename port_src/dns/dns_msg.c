/* dns_msg.c - bounded reader of DNS messages; see dns_msg.h. */
#include "dns_msg.h"

#include "grow.h"

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
    free(a->addrs);
    memset(a, 0, sizeof *a);
}

int dns_answer_add_addr(struct dns_answer *a, const struct dns_addr *addr)
{
    if (a->naddrs >= DNS_MAX_ANSWER_ADDRS)
        return 0; /* keep the first DNS_MAX_ANSWER_ADDRS */
    struct dns_addr *grown = grow_array(a->addrs, &a->addrs_cap, a->naddrs + 1, sizeof *grown, 16);
    if (grown == NULL)
        return -1;
    a->addrs = grown;
    a->addrs[a->naddrs++] = *addr;
    return 0;
}

static int addr_order(const void *x, const void *y)
{
    const struct dns_addr *a = x, *b = y;
    if (a->family != b->family)
        return a->family == AF_INET ? -1 : 1;
    return memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16);
}

/* Sorting, not comparing each address with the others: a 64 KiB answer of
 * ~4,000 A records would be 8 million comparisons. */
void dns_answer_sort_addrs(struct dns_answer *a)
{
    if (a->naddrs < 2)
        return;
    qsort(a->addrs, a->naddrs, sizeof a->addrs[0], addr_order);
    size_t kept = 1;
    for (size_t i = 1; i < a->naddrs; i++)
        if (addr_order(&a->addrs[kept - 1], &a->addrs[i]) != 0)
            a->addrs[kept++] = a->addrs[i];
    a->naddrs = kept;
}

static int read_u16(const uint8_t *msg, size_t len, size_t off, uint16_t *v)
{
    if (off > len || len - off < 2)
        return -1;
    *v = (uint16_t)((msg[off] << 8) | msg[off + 1]);
    return 0;
}

/* Open addressing over the records that start a group: slots hold
 * index + 1, 0 is empty. */
struct target_index {
    size_t *slots;
    size_t mask;
};

/* The first record naming name, or DNS_SRV_NONE. */
static size_t index_find(const struct target_index *t, const struct dns_answer *a,
                         const char *name, uint64_t h)
{
    for (size_t k = (size_t)h & t->mask;; k = (k + 1) & t->mask) {
        if (t->slots[k] == 0)
            return DNS_SRV_NONE;
        size_t i = t->slots[k] - 1;
        if (dns_name_equal(a->srv[i].target, name))
            return i;
    }
}

/* Groups a's records; t (freed by the caller) finds a group by name. */
static int group_index(struct dns_answer *a, struct target_index *t)
{
    t->slots = NULL;
    for (size_t i = 0; i < a->nsrv; i++) {
        a->srv[i].first_same = i;
        a->srv[i].next_same = DNS_SRV_NONE;
    }
    size_t cap = 16;
    while (cap < 2 * a->nsrv)
        cap *= 2;
    size_t *tail = malloc(a->nsrv * sizeof *tail + 1);
    t->slots = calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    if (tail == NULL || t->slots == NULL) {
        free(tail);
        free(t->slots);
        t->slots = NULL;
        return -1;
    }
    /* Records whose targets start at the same place are grouped without
     * reading their names (by_at: that place's first record plus one). */
    size_t max_at = 0;
    for (size_t i = 0; i < a->nsrv; i++)
        if (a->srv[i].target_at < 65536 && a->srv[i].target_at > max_at)
            max_at = a->srv[i].target_at;
    uint32_t *by_at = calloc(max_at + 1, sizeof *by_at);
    for (size_t i = 0; i < a->nsrv; i++) {
        size_t at = a->srv[i].target_at, first;
        bool placed = by_at != NULL && at <= max_at;
        if (placed && by_at[at] != 0) {
            first = a->srv[by_at[at] - 1].first_same;
        } else {
            uint64_t h = dns_name_hash(a->srv[i].target);
            first = index_find(t, a, a->srv[i].target, h);
            if (first == DNS_SRV_NONE) {
                size_t k = (size_t)h & t->mask;
                while (t->slots[k] != 0)
                    k = (k + 1) & t->mask;
                t->slots[k] = i + 1;
                tail[i] = i;
                if (placed)
                    by_at[at] = (uint32_t)i + 1;
                continue;
            }
            if (placed)
                by_at[at] = (uint32_t)i + 1;
        }
        a->srv[i].first_same = first;
        a->srv[tail[first]].next_same = i;
        tail[first] = i;
    }
    free(by_at);
    free(tail);
    return 0;
}

int dns_answer_group(struct dns_answer *a)
{
    struct target_index t;
    int rc = group_index(a, &t);
    free(t.slots);
    return rc;
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
    if (*n >= DNS_MAX_ADDRS)
        return; /* full: nothing to add, and no need to look */
    for (size_t i = 0; i < *n; i++)
        if (list[i].family == family && memcmp(list[i].bytes, bytes, size) == 0)
            return; /* the same address in both sections */
    memset(&list[*n], 0, sizeof list[*n]);
    list[*n].family = family;
    memcpy(list[*n].bytes, bytes, size);
    (*n)++;
}

/* seen (len entries, or NULL): for each label position, the first record
 * whose target starts there, plus one; its text is copied, not read again
 * (a 255-byte name can be 1,016 bytes of \DDD text). */
static int add_srv(struct dns_answer *a, const uint8_t *msg, size_t len, size_t rdata,
                   uint16_t rdlen, uint16_t *seen, const char **err)
{
    if (rdlen < 7) {
        *err = "SRV record shorter than its fixed fields";
        return -1;
    }
    if (a->nsrv >= DNS_MAX_RECORDS)
        return 0; /* keep the first DNS_MAX_RECORDS */
    struct dns_srv *grown = grow_array(a->srv, &a->srv_cap, a->nsrv + 1, sizeof *grown, 16);
    if (grown == NULL) {
        *err = "out of memory";
        return -1;
    }
    a->srv = grown;
    struct dns_srv *s = &a->srv[a->nsrv];
    memset(s, 0, sizeof *s);
    read_u16(msg, len, rdata, &s->priority);
    read_u16(msg, len, rdata + 2, &s->weight);
    read_u16(msg, len, rdata + 4, &s->port);
    size_t name_at = rdata + 6, label_at = 0;
    if (dns_name_walk(msg, len, &name_at, NULL, 0, &label_at) != 0 || name_at > rdata + rdlen) {
        *err = "SRV target is not a valid name";
        return -1;
    }
    s->target_at = label_at;
    if (seen != NULL && label_at < len && seen[label_at] != 0) {
        memcpy(s->target, a->srv[seen[label_at] - 1].target, sizeof s->target);
    } else {
        name_at = rdata + 6;
        if (dns_name_read(msg, len, &name_at, s->target, sizeof s->target) != 0) {
            *err = "SRV target is not a valid name";
            return -1;
        }
        if (seen != NULL && label_at < len)
            seen[label_at] = (uint16_t)(a->nsrv + 1);
    }
    a->nsrv++;
    return 0;
}

/* An A/AAAA record read, attached once every SRV record is known. */
struct addr_rr {
    size_t owner; /* offset of its owner name in the message */
    size_t label; /* where the owner's labels start (name_walk) */
    size_t rdata;
    int family;
};

struct addr_rrs {
    struct addr_rr *v;
    size_t n, cap;
};

/* Gives each address record to the records naming its owner: the
 * addresses are kept by the first record of the group and copied to the
 * others at the end, so a group of many records costs no more than one. An
 * owner is read as text (four bytes per odd byte: a 255-byte name can be
 * 1,020) only the first time its labels' position is seen: compressed
 * answers name a target again by pointing there. Every record was walked in
 * bounds already (read_rr), so its owner walks again. */
static int attach_addrs(struct dns_answer *a, const uint8_t *msg, size_t len,
                        const struct addr_rrs *rrs, const char **err)
{
    if (a->nsrv == 0)
        return 0;
    struct target_index t;
    /* by_label[L]: 0 unknown, 1 no record names the name starting at L,
     * else the group's first record + 2 (two bytes, as seen[]). */
    _Static_assert(DNS_MAX_RECORDS + 2 <= UINT16_MAX, "record indices fit by_label[]");
    uint16_t *by_label = calloc(len, sizeof *by_label);
    if (by_label == NULL || group_index(a, &t) != 0) {
        free(by_label);
        *err = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < a->nsrv; i++)
        if (a->srv[i].target_at < len && by_label[a->srv[i].target_at] == 0)
            by_label[a->srv[i].target_at] = (uint16_t)(a->srv[i].first_same + 2);
    char owner[DNS_NAME_TEXT_MAX];
    for (size_t k = 0; k < rrs->n; k++) {
        size_t off, label = rrs->v[k].label;
        if (label >= len)
            continue;
        if (by_label[label] == 0) {
            off = rrs->v[k].owner;
            size_t first = DNS_SRV_NONE;
            if (dns_name_read(msg, len, &off, owner, sizeof owner) == 0)
                first = index_find(&t, a, owner, dns_name_hash(owner));
            by_label[label] = first == DNS_SRV_NONE ? 1 : (uint16_t)(first + 2);
        }
        if (by_label[label] == 1)
            continue;
        struct dns_srv *first = &a->srv[by_label[label] - 2];
        add_addr(first->addrs, &first->naddrs, rrs->v[k].family, msg + rrs->v[k].rdata);
    }
    for (size_t i = 0; i < a->nsrv; i++) {
        const struct dns_srv *first = &a->srv[a->srv[i].first_same];
        if (first != &a->srv[i]) {
            memcpy(a->srv[i].addrs, first->addrs, first->naddrs * sizeof first->addrs[0]);
            a->srv[i].naddrs = first->naddrs;
        }
    }
    free(t.slots);
    free(by_label);
    return 0;
}

struct rr {
    uint16_t type, class, rdlen;
    size_t rdata;
    size_t owner_label; /* where the owner's labels start */
};

/* The owner is walked, not read as text: only an address record's owner
 * is ever needed, and attach_addrs reads it when it must. */
static int read_rr(const uint8_t *msg, size_t len, size_t *off, struct rr *rr, const char **err)
{
    if (dns_name_walk(msg, len, off, NULL, 0, &rr->owner_label) != 0) {
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
                   size_t owner_at, int section, struct addr_rrs *rrs, uint16_t *seen,
                   const char **err)
{
    if (rr->class != DNS_CLASS_IN || section == 1)
        return 0;
    if (rr->type == DNS_TYPE_SRV && section == 0)
        return add_srv(a, msg, len, rr->rdata, rr->rdlen, seen, err);
    if (rr->type == DNS_TYPE_CNAME && section == 0) {
        /* Only counted and named, for an A/AAAA lookup's error text: a bad
         * one costs nothing (SRV answers read before it was read at all). */
        size_t at = rr->rdata;
        a->ncname++;
        if (dns_name_read(msg, len, &at, a->cname, sizeof a->cname) != 0 ||
            at > rr->rdata + rr->rdlen)
            snprintf(a->cname, sizeof a->cname, "(unreadable name)");
        return 0;
    }
    if (rr->type == DNS_TYPE_A || rr->type == DNS_TYPE_AAAA) {
        int family = rr->type == DNS_TYPE_A ? AF_INET : AF_INET6;
        if (rr->rdlen != (family == AF_INET ? 4 : 16)) {
            *err = "address record of the wrong length";
            return -1;
        }
        if (section == 0) {
            struct dns_addr addr;
            memset(&addr, 0, sizeof addr);
            addr.family = family;
            memcpy(addr.bytes, msg + rr->rdata, rr->rdlen);
            if (dns_answer_add_addr(a, &addr) != 0) {
                *err = "out of memory";
                return -1;
            }
        }
        struct addr_rr *grown = grow_array(rrs->v, &rrs->cap, rrs->n + 1, sizeof *grown, 64);
        if (grown == NULL) {
            *err = "out of memory";
            return -1;
        }
        rrs->v = grown;
        rrs->v[rrs->n++] = (struct addr_rr){.owner = owner_at, .label = rr->owner_label,
                                             .rdata = rr->rdata, .family = family};
    }
    return 0;
}

/* Sizes a->srv at once for the SRV records the answer says it holds, at
 * most what its bytes can (18 each): doubled from 16, a 360-record array
 * (430 KB) was copied five times. Out of memory, records grow it as ever. */
static void presize_srv(struct dns_answer *a, uint16_t qtype, uint16_t ancount, size_t left)
{
    size_t n = ancount;
    if (qtype != DNS_TYPE_SRV || a->srv_cap > 0)
        return;
    if (n > left / 18)
        n = left / 18;
    if (n > DNS_MAX_RECORDS)
        n = DNS_MAX_RECORDS;
    struct dns_srv *sized = n > 0 ? grow_array(NULL, &a->srv_cap, n, sizeof *sized, n) : NULL;
    if (sized != NULL)
        a->srv = sized;
}

int dns_msg_parse(const uint8_t *msg, size_t len, struct dns_answer *a, const char **err)
{
    uint16_t flags, qd, counts[3], qtype = 0;

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
        if (i == 0)
            read_u16(msg, len, off, &qtype);
        off += 4;
    }
    presize_srv(a, qtype, counts[0], len - off);
    struct addr_rrs rrs = {0};
    /* Without it (out of memory) every target is read as text: slower,
     * the same answer. */
    /* Two bytes a position, not four: half the pages to fault in, and for
     * most messages under glibc's mmap threshold (reused heap pages). */
    _Static_assert(DNS_MAX_RECORDS < UINT16_MAX, "record indices fit seen[]");
    uint16_t *seen = calloc(len, sizeof *seen);
    int rc = 0;
    for (int section = 0; section < 3 && rc == 0; section++) {
        for (unsigned i = 0; i < counts[section] && rc == 0; i++) {
            struct rr rr = {0};
            size_t owner_at = off;
            if (read_rr(msg, len, &off, &rr, err) != 0 ||
                take_rr(a, msg, len, &rr, owner_at, section, &rrs, seen, err) != 0)
                rc = -1;
        }
    }
    if (rc == 0)
        rc = attach_addrs(a, msg, len, &rrs, err);
    dns_answer_sort_addrs(a);
    free(rrs.v);
    free(seen);
    return rc;
}
