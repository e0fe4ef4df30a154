/* The DNS message walker (port_src/dns_msg.c) on hand-made packets: the
 * ADDITIONAL section, compression, and every way a packet can lie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns_msg.h"

/* The arrays the parser grows, counted by their element size
 * (test_dns_msg is linked with -Wl,--wrap=grow_array). */
void *__real_grow_array(void *arr, size_t *cap, size_t need, size_t elem, size_t first);
void *__wrap_grow_array(void *arr, size_t *cap, size_t need, size_t elem, size_t first);
static int srv_array_grown;

void *__wrap_grow_array(void *arr, size_t *cap, size_t need, size_t elem, size_t first)
{
    void *grown = __real_grow_array(arr, cap, need, elem, first);
    if (elem == sizeof(struct dns_srv) && grown != arr)
        srv_array_grown++;
    return grown;
}

struct pkt {
    uint8_t b[8192];
    size_t n;
};

static void u8(struct pkt *p, uint8_t v) { p->b[p->n++] = v; }
static void u16(struct pkt *p, uint16_t v) { u8(p, (uint8_t)(v >> 8)); u8(p, (uint8_t)v); }
static void u32(struct pkt *p, uint32_t v) { u16(p, (uint16_t)(v >> 16)); u16(p, (uint16_t)v); }

/* Writes a dotted name as labels (no compression). */
static void name(struct pkt *p, const char *dotted)
{
    while (*dotted) {
        size_t len = strcspn(dotted, ".");
        u8(p, (uint8_t)len);
        memcpy(p->b + p->n, dotted, len);
        p->n += len;
        dotted += len;
        if (*dotted == '.')
            dotted++;
    }
    u8(p, 0);
}

static void pointer(struct pkt *p, uint16_t at) { u16(p, (uint16_t)(0xC000 | at)); }

static void header(struct pkt *p, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns,
                   uint16_t ar)
{
    p->n = 0;
    u16(p, 0x1234);
    u16(p, flags);
    u16(p, qd);
    u16(p, an);
    u16(p, ns);
    u16(p, ar);
}

static void rr_fixed(struct pkt *p, uint16_t type, uint16_t rdlen)
{
    u16(p, type);
    u16(p, 1); /* IN */
    u32(p, 0);
    u16(p, rdlen);
}

/* A Consul-shaped answer: 2 SRV records, their A/AAAA in ADDITIONAL, with
 * the SRV targets written once and pointed to afterwards. */
static size_t consul_answer(struct pkt *p)
{
    header(p, 0x8400, 1, 2, 0, 3);
    size_t qname = p->n;
    name(p, "app.service.consul");
    u16(p, 33);
    u16(p, 1);

    pointer(p, (uint16_t)qname);
    rr_fixed(p, 33, 6 + 2 + 5 + 1 + 2); /* priority weight port + "\2n1\4node" + ptr */
    u16(p, 1);
    u16(p, 5);
    u16(p, 4371);
    size_t target1 = p->n;
    u8(p, 2); memcpy(p->b + p->n, "n1", 2); p->n += 2;
    u8(p, 4); memcpy(p->b + p->n, "node", 4); p->n += 4;
    pointer(p, (uint16_t)(qname + 12)); /* "consul" */
    (void)target1;

    pointer(p, (uint16_t)qname);
    rr_fixed(p, 33, 6 + 3 + 2); /* target "n2" + pointer to "node.consul" */
    u16(p, 2);
    u16(p, 10);
    u16(p, 4372);
    u8(p, 2); memcpy(p->b + p->n, "n2", 2); p->n += 2;
    pointer(p, (uint16_t)(target1 + 3)); /* "node.consul" */

    /* ADDITIONAL: owner names in other case and by pointer. */
    name(p, "N1.NODE.consul");
    rr_fixed(p, 1, 4);
    u8(p, 10); u8(p, 0); u8(p, 0); u8(p, 5);
    pointer(p, (uint16_t)target1);
    rr_fixed(p, 28, 16);
    uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    memcpy(p->b + p->n, v6, 16); p->n += 16;
    name(p, "n2.node.consul");
    rr_fixed(p, 1, 4);
    u8(p, 10); u8(p, 0); u8(p, 0); u8(p, 6);
    return p->n;
}

static void additional_section_gives_target_addresses(void **state)
{
    (void)state;
    struct pkt p;
    consul_answer(&p);
    struct dns_answer a;
    const char *err = NULL;
    dns_answer_init(&a);
    assert_int_equal(dns_msg_parse(p.b, p.n, &a, &err), 0);
    assert_int_equal(a.nsrv, 2);
    assert_string_equal(a.srv[0].target, "n1.node.consul");
    assert_int_equal(a.srv[0].port, 4371);
    assert_int_equal(a.srv[0].weight, 5);
    assert_int_equal(a.srv[0].naddrs, 2);
    assert_int_equal(a.srv[0].addrs[0].family, AF_INET);
    assert_memory_equal(a.srv[0].addrs[0].bytes, "\x0a\x00\x00\x05", 4);
    assert_int_equal(a.srv[0].addrs[1].family, AF_INET6);
    assert_string_equal(a.srv[1].target, "n2.node.consul");
    assert_int_equal(a.srv[1].priority, 2);
    assert_int_equal(a.srv[1].naddrs, 1);
    assert_memory_equal(a.srv[1].addrs[0].bytes, "\x0a\x00\x00\x06", 4);
    assert_int_equal(a.naddrs, 0); /* no A records in the answer section */
    dns_answer_free(&a);
}

/* Every prefix of a valid answer: an error, never a read past the end (run
 * under ASan by the sanitizer build), and never a crash. */
static void every_truncation_is_an_error(void **state)
{
    (void)state;
    struct pkt p;
    size_t full = consul_answer(&p);
    for (size_t cut = 0; cut < full; cut++) {
        uint8_t *copy = malloc(cut + 1);
        memcpy(copy, p.b, cut);
        struct dns_answer a;
        const char *err = NULL;
        dns_answer_init(&a);
        assert_int_equal(dns_msg_parse(copy, cut, &a, &err), -1);
        assert_non_null(err);
        dns_answer_free(&a);
        free(copy);
    }
}

static int parse_err(struct pkt *p, const char **err)
{
    struct dns_answer a;
    dns_answer_init(&a);
    int rc = dns_msg_parse(p->b, p->n, &a, err);
    dns_answer_free(&a);
    return rc;
}

static void compression_loop_is_refused(void **state)
{
    (void)state;
    struct pkt p;
    const char *err = NULL;
    header(&p, 0x8400, 0, 1, 0, 0);
    size_t self = p.n;
    pointer(&p, (uint16_t)self); /* owner points at itself */
    rr_fixed(&p, 1, 4);
    u32(&p, 0x7f000001);
    assert_int_equal(parse_err(&p, &err), -1);
    assert_string_equal(err, "record owner is not a valid name");

    /* Two pointers pointing at each other. */
    header(&p, 0x8400, 0, 1, 0, 0);
    size_t a = p.n;
    pointer(&p, (uint16_t)(a + 2));
    pointer(&p, (uint16_t)a);
    rr_fixed(&p, 1, 4);
    u32(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);
}

static void pointer_past_the_end_is_refused(void **state)
{
    (void)state;
    struct pkt p;
    const char *err = NULL;
    header(&p, 0x8400, 0, 1, 0, 0);
    pointer(&p, 0x3FFF);
    rr_fixed(&p, 1, 4);
    u32(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);

    /* A pointer inside SRV rdata that leaves the message. */
    header(&p, 0x8400, 0, 1, 0, 0);
    name(&p, "a.consul");
    rr_fixed(&p, 33, 8);
    u16(&p, 1); u16(&p, 1); u16(&p, 1);
    pointer(&p, 0x3FF0);
    assert_int_equal(parse_err(&p, &err), -1);
    assert_string_equal(err, "SRV target is not a valid name");
}

static void lying_lengths_are_refused(void **state)
{
    (void)state;
    struct pkt p;
    const char *err = NULL;

    header(&p, 0x8400, 0, 1, 0, 0); /* rdlength beyond the message */
    name(&p, "a.consul");
    rr_fixed(&p, 1, 400);
    u32(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);
    assert_string_equal(err, "record data runs past the end of the message");

    header(&p, 0x8400, 0, 1, 0, 0); /* A record of 5 bytes */
    name(&p, "a.consul");
    rr_fixed(&p, 1, 5);
    u32(&p, 0);
    u8(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);
    assert_string_equal(err, "address record of the wrong length");

    header(&p, 0x8400, 0, 1, 0, 0); /* SRV shorter than its fixed part */
    name(&p, "a.consul");
    rr_fixed(&p, 33, 3);
    u16(&p, 0);
    u8(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);

    header(&p, 0x8400, 0, 40000, 0, 0); /* counts far beyond the content */
    name(&p, "a.consul");
    rr_fixed(&p, 1, 4);
    u32(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);

    header(&p, 0x0000, 0, 0, 0, 0); /* a query, not a response */
    assert_int_equal(parse_err(&p, &err), -1);
    assert_string_equal(err, "message is a query, not a response");
}

static void bad_labels_are_refused(void **state)
{
    (void)state;
    struct pkt p;
    const char *err = NULL;
    header(&p, 0x8400, 0, 1, 0, 0); /* 0x40 label type */
    u8(&p, 0x41);
    u8(&p, 'a');
    u8(&p, 0);
    rr_fixed(&p, 1, 4);
    u32(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);

    header(&p, 0x8400, 0, 1, 0, 0); /* a name of 300 bytes on the wire */
    for (int i = 0; i < 5; i++) {
        u8(&p, 59);
        memset(p.b + p.n, 'x', 59);
        p.n += 59;
    }
    u8(&p, 0);
    rr_fixed(&p, 1, 4);
    u32(&p, 0);
    assert_int_equal(parse_err(&p, &err), -1);
}

static void odd_bytes_in_names_are_escaped(void **state)
{
    (void)state;
    uint8_t msg[] = {3, 'a', '.', 0xff, 2, 'o', 'k', 0};
    char out[DNS_NAME_TEXT_MAX];
    size_t off = 0;
    assert_int_equal(dns_name_read(msg, sizeof msg, &off, out, sizeof out), 0);
    assert_string_equal(out, "a\\046\\255.ok");
    assert_int_equal(off, sizeof msg);
    /* An output buffer too small is an error, not an overflow. */
    off = 0;
    assert_int_equal(dns_name_read(msg, sizeof msg, &off, out, 6), -1);
}

static void addr_targets_decode(void **state)
{
    (void)state;
    struct dns_addr a;
    assert_int_equal(dns_addr_from_target("7f000002.addr.dc1.consul", &a), 1);
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.bytes, "\x7f\x00\x00\x02", 4);
    assert_int_equal(dns_addr_from_target("fd000000000000000000000000000001.addr.dc1.consul", &a),
                     1);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.bytes[0], 0xfd);
    assert_int_equal(a.bytes[15], 1);
    assert_int_equal(dns_addr_from_target("7F00000A.ADDR.dc1.consul", &a), 1);
    assert_int_equal(a.bytes[3], 10);
    assert_int_equal(dns_addr_from_target("7g000002.addr.dc1.consul", &a), 0);
    assert_int_equal(dns_addr_from_target("7f0000.addr.dc1.consul", &a), 0);
    assert_int_equal(dns_addr_from_target("node1.node.dc1.consul", &a), 0);
    assert_int_equal(dns_addr_from_target("7f000002", &a), 0);
}

/* More SRV records than DNS_MAX_RECORDS: the first are kept, memory bounded. */
static void record_count_is_bounded(void **state)
{
    (void)state;
    size_t records = DNS_MAX_RECORDS + 10;
    size_t cap = 12 + records * 32 + 64;
    uint8_t *b = calloc(1, cap);
    struct pkt *p = calloc(1, sizeof *p);
    header(p, 0x8400, 0, (uint16_t)records, 0, 0);
    memcpy(b, p->b, p->n);
    size_t n = p->n;
    for (size_t i = 0; i < records; i++) {
        p->n = 0;
        u8(p, 1); u8(p, 'a'); u8(p, 0);
        rr_fixed(p, 33, 6 + 3);
        u16(p, 1); u16(p, 1); u16(p, (uint16_t)(i + 1));
        u8(p, 1); u8(p, 'b'); u8(p, 0);
        memcpy(b + n, p->b, p->n);
        n += p->n;
    }
    struct dns_answer a;
    const char *err = NULL;
    dns_answer_init(&a);
    assert_int_equal(dns_msg_parse(b, n, &a, &err), 0);
    assert_int_equal(a.nsrv, DNS_MAX_RECORDS);
    dns_answer_free(&a);
    free(b);
    free(p);
}

/* A message of up to 64 KiB, built on the heap. */
struct big {
    uint8_t *b;
    size_t n;
};

static void b8(struct big *p, uint8_t v)
{
    assert_true(p->n < 65535);
    p->b[p->n++] = v;
}
static void b16(struct big *p, uint16_t v) { b8(p, (uint8_t)(v >> 8)); b8(p, (uint8_t)v); }

static void big_rr(struct big *p, uint16_t type, uint16_t rdlen)
{
    b16(p, type);
    b16(p, 1);
    b16(p, 0);
    b16(p, 0);
    b16(p, rdlen);
}

/* Issue 18 item 11's crafted answer: nsrv SRV records whose targets are
 * `distinct` long names (four 60-byte labels of \001 bytes, 1,000 bytes as
 * text, told apart only by their last byte), each written once and pointed
 * to after; then naddr A records in ADDITIONAL, owners pointing at the
 * targets in turn. With inline, every owner is written out in full instead
 * (no two at the same place). */
static size_t crafted_answer(struct big *p, unsigned nsrv, unsigned distinct, unsigned naddr,
                             bool inline_owners)
{
    size_t at[64];
    assert_true(distinct <= 64);
    p->n = 0;
    b16(p, 0x1234);
    b16(p, 0x8400);
    b16(p, 1);
    b16(p, (uint16_t)nsrv);
    b16(p, 0);
    b16(p, (uint16_t)naddr);
    size_t qname = p->n;
    const char *q = "\003app\007service\006consul";
    for (size_t i = 0; i < strlen(q) + 1; i++)
        b8(p, (uint8_t)q[i]);
    b16(p, 33);
    b16(p, 1);
    for (unsigned i = 0; i < nsrv; i++) {
        unsigned t = i % distinct;
        bool first = i < distinct;
        b16(p, (uint16_t)(0xC000 | qname));
        big_rr(p, 33, (uint16_t)(6 + (first ? 245 : 2)));
        b16(p, 1);
        b16(p, 1);
        b16(p, (uint16_t)(20000 + i));
        if (!first) {
            b16(p, (uint16_t)(0xC000 | at[t]));
            continue;
        }
        at[t] = p->n;
        for (int l = 0; l < 4; l++) {
            b8(p, 60);
            for (int c = 0; c < 60; c++)
                b8(p, (uint8_t)(l == 3 && c == 59 ? 'a' + t : 1));
        }
        b8(p, 0);
    }
    for (unsigned k = 0; k < naddr; k++) {
        unsigned t = k % distinct;
        if (inline_owners) {
            size_t from = at[t];
            for (int c = 0; c < 245; c++)
                b8(p, p->b[from + (size_t)c]);
        } else {
            b16(p, (uint16_t)(0xC000 | at[t]));
        }
        big_rr(p, 1, 4);
        b8(p, 127);
        b8(p, 0);
        b8(p, (uint8_t)t);
        b8(p, (uint8_t)(k / distinct));
    }
    return p->n;
}

static unsigned long long comparisons_parsing(struct big *p, size_t len, struct dns_answer *a)
{
    const char *err = NULL;
    dns_answer_init(a);
    unsigned long long before = dns_name_comparisons;
    if (dns_msg_parse(p->b, len, a, &err) != 0)
        fail_msg("parse: %s", err);
    return dns_name_comparisons - before;
}

/* Issue 18 item 11: matching targets to addresses compared every address
 * record's owner with every target (744,480 comparisons of 1,000-byte
 * names for this answer: the loop stalled 16-20 ms). Now a comparison per
 * record at most, whatever the answer's shape. */
static void crafted_answer_is_matched_in_linear_time(void **state)
{
    (void)state;
    struct big p = {.b = malloc(65536)};
    struct dns_answer a;
    size_t len = crafted_answer(&p, 360, 8, 2068, false);
    assert_true(len > 40000 && len <= 65535);
    unsigned long long c = comparisons_parsing(&p, len, &a);
    assert_int_equal(a.nsrv, 360);
    for (size_t i = 0; i < a.nsrv; i++) {
        assert_int_equal(a.srv[i].naddrs, DNS_MAX_ADDRS); /* 258 each, 8 kept */
        assert_int_equal(a.srv[i].addrs[0].bytes[2], i % 8);
    }
    assert_true(c <= 2 * (360 + 2068));
    dns_answer_free(&a);

    /* Owners written out in full: each is read and looked up, still a
     * bounded number of comparisons per record. */
    len = crafted_answer(&p, 32, 32, 150, true);
    c = comparisons_parsing(&p, len, &a);
    assert_int_equal(a.nsrv, 32);
    for (size_t i = 0; i < a.nsrv; i++)
        assert_true(a.srv[i].naddrs >= 4);
    assert_true(c <= 2 * (32 + 150));
    dns_answer_free(&a);

    /* Twice the records, about twice the comparisons: not four times. */
    len = crafted_answer(&p, 150, 50, 600, false);
    unsigned long long c1 = comparisons_parsing(&p, len, &a);
    dns_answer_free(&a);
    len = crafted_answer(&p, 300, 50, 1200, false);
    unsigned long long c2 = comparisons_parsing(&p, len, &a);
    dns_answer_free(&a);
    if (c2 > 2 * c1 + 100)
        fail_msg("comparisons grew from %llu to %llu for twice the records", c1, c2);
    free(p.b);
}

/* The SRV records of an answer to an SRV question go into an array sized
 * once from the answer count: grown by doubling from 16, the crafted
 * answer's 360 records (1.2 KB each) were copied five times, most of a
 * fresh program's first answer. A count that lies (65,535 in a message of
 * two records) sizes it by what the message can hold, not by the lie. */
static void the_srv_array_is_sized_once(void **state)
{
    (void)state;
    struct big p = {.b = malloc(65536)};
    struct dns_answer a;
    size_t len = crafted_answer(&p, 360, 8, 2068, false);
    srv_array_grown = 0;
    (void)comparisons_parsing(&p, len, &a);
    assert_int_equal(a.nsrv, 360);
    assert_int_equal(srv_array_grown, 1);
    dns_answer_free(&a);

    len = crafted_answer(&p, 2, 2, 2, false);
    p.b[6] = 0xff, p.b[7] = 0xff; /* ANCOUNT 65,535 */
    const char *err = NULL;
    dns_answer_init(&a);
    (void)dns_msg_parse(p.b, len, &a, &err); /* runs out of records: an error */
    assert_true(a.srv_cap <= len / 18);
    dns_answer_free(&a);
    free(p.b);
}

/* Grouping: the first record of each target, and the others chained after
 * it in answer order, for dns.c's follow-ups. */
static void records_are_grouped_by_target(void **state)
{
    (void)state;
    struct big p = {.b = malloc(65536)};
    struct dns_answer a;
    size_t len = crafted_answer(&p, 12, 3, 0, false);
    (void)comparisons_parsing(&p, len, &a);
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(a.srv[i].first_same, i % 3);
        assert_int_equal(a.srv[i].next_same, i + 3 < 12 ? i + 3 : DNS_SRV_NONE);
    }
    dns_answer_free(&a);
    free(p.b);
}


/* An A/AAAA answer: a CNAME, then 500 A records (owner: the CNAME's target)
 * in descending order with every address twice, and one AAAA: more than the
 * 8 addresses a target keeps, all kept, sorted IPv4 first, duplicates gone. */
static void answer_addresses_are_many_sorted_and_unique(void **state)
{
    (void)state;
    static struct pkt p;
    enum { N = 500 };
    header(&p, 0x8400, 1, N + 2, 0, 0);
    size_t qname = p.n;
    name(&p, "alias.consul");
    u16(&p, 1);
    u16(&p, 1);
    pointer(&p, (uint16_t)qname);
    rr_fixed(&p, 5, 6); /* CNAME "\3web" + pointer to "consul" */
    size_t target = p.n;
    u8(&p, 3); memcpy(p.b + p.n, "web", 3); p.n += 3;
    pointer(&p, (uint16_t)(qname + 6));
    for (int i = 0; i < N; i++) {
        int k = (N - 1 - i) / 2; /* 249, 249, 248, 248, ... 0, 0 */
        pointer(&p, (uint16_t)target);
        rr_fixed(&p, 1, 4);
        u8(&p, 10); u8(&p, 1); u8(&p, (uint8_t)(k / 256)); u8(&p, (uint8_t)(k % 256));
    }
    pointer(&p, (uint16_t)target);
    rr_fixed(&p, 28, 16);
    uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    memcpy(p.b + p.n, v6, 16); p.n += 16;
    assert_true(p.n <= sizeof p.b);

    struct dns_answer a;
    const char *err = NULL;
    dns_answer_init(&a);
    assert_int_equal(dns_msg_parse(p.b, p.n, &a, &err), 0);
    assert_int_equal(a.naddrs, N / 2 + 1);
    for (size_t i = 0; i < N / 2; i++) {
        assert_int_equal(a.addrs[i].family, AF_INET);
        assert_int_equal(a.addrs[i].bytes[2] * 256 + a.addrs[i].bytes[3], (int)i);
    }
    assert_int_equal(a.addrs[N / 2].family, AF_INET6);
    assert_int_equal(a.ncname, 1);
    assert_string_equal(a.cname, "web.consul");
    dns_answer_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(additional_section_gives_target_addresses),
        cmocka_unit_test(every_truncation_is_an_error),
        cmocka_unit_test(compression_loop_is_refused),
        cmocka_unit_test(pointer_past_the_end_is_refused),
        cmocka_unit_test(lying_lengths_are_refused),
        cmocka_unit_test(bad_labels_are_refused),
        cmocka_unit_test(odd_bytes_in_names_are_escaped),
        cmocka_unit_test(addr_targets_decode),
        cmocka_unit_test(the_srv_array_is_sized_once),
        cmocka_unit_test(record_count_is_bounded),
        cmocka_unit_test(crafted_answer_is_matched_in_linear_time),
        cmocka_unit_test(records_are_grouped_by_target),
        cmocka_unit_test(answer_addresses_are_many_sorted_and_unique),
    };
    return cmocka_run_group_tests_name("dns_msg", tests, NULL, NULL);
}
