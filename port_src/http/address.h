/*
 * address.h - how address text from a listing (Consul's Service.Address,
 * Nomad's Address) is read before it names a node: the rule of
 * caravan_name:address/1 on the Erlang side, so that both sides agree.
 *
 *   - strict: what inet_pton(3) takes (dotted decimal with four parts and no
 *     leading zeros; RFC 4291 IPv6), without a zone: an address, written
 *     back as inet_ntop(3) writes it ("FD00::0001" -> "fd00::1");
 *   - ambiguous: other text a lenient parser (inet_aton(3), libcurl, OTP's
 *     inet:parse_address/1 and resolver) reads as an address, which is then
 *     another host than it looks: "127.000.000.010" (octal, 127.0.0.8),
 *     "2130706442" (127.0.0.10), "0x7f.1", "127.1", "fe80::1%eth0". No
 *     node's host: such an entry is left out and counted;
 *   - anything else: a host name, kept as written.
 */
#ifndef CARAVAN_ADDRESS_H
#define CARAVAN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum address_kind { ADDRESS_STRICT, ADDRESS_AMBIGUOUS, ADDRESS_HOST_NAME };

/* Classifies text; for ADDRESS_STRICT writes the address's canonical text
 * into out (cap bytes; INET6_ADDRSTRLEN is enough). */
enum address_kind address_classify(const char *text, char *out, size_t cap);

/* Whether text is an IPv4 address in one of inet_aton(3)'s forms: 1 to 4
 * dot-separated numbers, each decimal, 0-octal or 0x-hex, the last filling
 * the bytes left ("127.1", "2130706433", "0x7f.1"), as libcurl's URL
 * parser also reads a host. *addr gets it in host order. */
bool address_ipv4_lenient(const char *text, uint32_t *addr);

#endif
