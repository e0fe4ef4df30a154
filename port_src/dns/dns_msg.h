/*
 * dns_msg.h - reading DNS answers (RFC 1035 section 4, RFC 2782 for SRV).
 *
 * c-ares carries the packets; this file reads them, because the parts caravan
 * needs are the ones c-ares' own parsers skip: Consul puts the addresses of
 * SRV targets in the ADDITIONAL section. Everything is read through bounded
 * helpers: every length is checked against the message, compression pointers
 * are followed at most DNS_MSG_MAX_JUMPS times, and a bad message yields an
 * error string, never a read past the end.
 */
#ifndef CARAVAN_DNS_MSG_H
#define CARAVAN_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns_name.h"

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
#define DNS_CLASS_IN 1

/* Addresses kept per SRV target: more than any host has, fewer than a
 * hostile answer could list. */
#define DNS_MAX_ADDRS 8
/* Records kept per answer. A 64 KiB TCP answer holds at most ~1,600 SRV
 * records; the cap bounds memory whatever the message claims. */
#define DNS_MAX_RECORDS 4096
/* Addresses kept from an answer section (A/AAAA lookups): a 64 KiB TCP
 * answer holds at most ~4,000 A records; the cap bounds memory whatever
 * the message claims. */
#define DNS_MAX_ANSWER_ADDRS DNS_MAX_RECORDS

struct dns_addr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t bytes[16];
};

struct dns_srv {
    uint16_t priority, weight, port;
    char target[DNS_NAME_TEXT_MAX];
    struct dns_addr addrs[DNS_MAX_ADDRS];
    size_t naddrs;
    /* Records naming the same target (dns_answer_group): the first of
     * them, and the next after this one (DNS_SRV_NONE at the end). */
    size_t first_same, next_same;
    /* Where the target's labels start in the message it was read from: two
     * records with the same position name the same target (a compressed
     * answer points there again), known without reading or comparing it. */
    size_t target_at;
};

#define DNS_SRV_NONE ((size_t)-1)

struct dns_answer {
    unsigned rcode;
    bool truncated;
    struct dns_srv *srv; /* SRV records of the answer section */
    size_t nsrv, srv_cap;
    /* A/AAAA of the answer section, sorted (IPv4 first, then by bytes),
     * without duplicates; owned, freed by dns_answer_free. */
    struct dns_addr *addrs;
    size_t naddrs, addrs_cap;
    /* CNAME records of the answer section, and the target of the last one
     * (the end of the chain as the server wrote it). */
    size_t ncname;
    char cname[DNS_NAME_TEXT_MAX];
};

void dns_answer_init(struct dns_answer *a);
void dns_answer_free(struct dns_answer *a);

/* Parses msg. SRV records go to a->srv, each given the A/AAAA records of the
 * answer and additional sections whose owner is its target (wherever they
 * stand in the message), and grouped (dns_answer_group); A/AAAA records of
 * the answer section go to a->addrs (at most DNS_MAX_ANSWER_ADDRS, sorted,
 * duplicates dropped) whatever their owner: a CNAME chain the server
 * followed ends in them. Returns 0, or -1 with *err set. */
int dns_msg_parse(const uint8_t *msg, size_t len, struct dns_answer *a, const char **err);

/* Appends *addr to a->addrs unless DNS_MAX_ANSWER_ADDRS are there already;
 * dns_answer_sort_addrs then orders them and drops duplicates. Returns 0,
 * or -1 out of memory. */
int dns_answer_add_addr(struct dns_answer *a, const struct dns_addr *addr);
void dns_answer_sort_addrs(struct dns_answer *a);

/* Consul's `<hex>.addr.<dc>.consul` targets encode the address in the name
 * (8 hex digits for IPv4, 32 for IPv6). Returns 1 and fills *addr when target
 * is one, else 0. */
int dns_addr_from_target(const char *target, struct dns_addr *addr);

/* Groups a's SRV records by target (first_same, next_same) through a hash
 * of their names: one comparison per record expected, where matching each
 * record against every other one was quadratic (a crafted 64 KiB answer of
 * 360 long, nearly identical targets and 2,068 ADDITIONAL records held the
 * loop 16-20 ms). dns_msg_parse groups its answer; call again after
 * removing records. Returns 0, or -1 out of memory (each record then alone
 * in its group). */
int dns_answer_group(struct dns_answer *a);

#endif
