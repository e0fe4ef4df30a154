/* dns_name.c - DNS names: reading them off the wire (compression pointers
 * bounded), comparing and hashing their text (RFC 1035 section 4.1.4, RFC
 * 4343). See dns_name.h. */
#include "dns_name.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static bool plain_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* dns_name_read's walk. With out NULL nothing is written (the checks are
 * the same: a text of DNS_NAME_TEXT_MAX always fits a 255-byte name);
 * *label_at, if given, gets where the name's labels start once the
 * pointers before them are followed: two names starting there are the same
 * name, which a compressed answer repeats by pointing there again. */
int dns_name_walk(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap,
                  size_t *label_at)
{
    size_t pos = *off, used = 0, wire = 0;
    int jumps = 0;
    bool jumped = false, labelled = false;

    if (out != NULL && outcap == 0)
        return -1;
    if (out == NULL)
        outcap = DNS_NAME_TEXT_MAX;
    for (;;) {
        if (pos >= len)
            return -1;
        uint8_t b = msg[pos];
        if (!labelled && (b & 0xC0) != 0xC0) {
            labelled = true;
            if (label_at != NULL)
                *label_at = pos;
        }
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
        if (out == NULL) {
            /* Walking only: a 255-byte name is at most 1,016 bytes of text,
             * so the text checks below cannot fail; skip the bytes. */
            pos += b;
            continue;
        }
        if (used > 0) {
            if (used + 1 >= outcap)
                return -1;
            if (out != NULL)
                out[used] = '.';
            used++;
        }
        for (size_t i = 0; i < b; i++) {
            uint8_t c = msg[pos + i];
            if (plain_char(c)) {
                if (used + 1 >= outcap)
                    return -1;
                if (out != NULL)
                    out[used] = (char)c;
                used++;
            } else {
                if (used + 4 >= outcap)
                    return -1;
                if (out != NULL) { /* \DDD; by hand: snprintf per byte made a
                                    * 1,000-byte name cost microseconds */
                    out[used] = '\\';
                    out[used + 1] = (char)('0' + c / 100);
                    out[used + 2] = (char)('0' + c / 10 % 10);
                    out[used + 3] = (char)('0' + c % 10);
                }
                used += 4;
            }
        }
        pos += b;
    }
    if (out != NULL)
        out[used] = '\0';
    if (!jumped)
        *off = pos;
    return 0;
}

int dns_name_read(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap)
{
    return dns_name_walk(msg, len, off, out, outcap, NULL);
}

unsigned long long dns_name_comparisons;

bool dns_name_equal(const char *a, const char *b)
{
    dns_name_comparisons++;
    return strcasecmp(a, b) == 0;
}

/* Targets are found by a hash of their text, case folded (RFC 4343), with
 * a seed drawn per process so that an answer cannot be made to collide on
 * purpose: one comparison per lookup, where matching every record against
 * every other was quadratic. */
static uint64_t hash_seed;

uint64_t dns_name_hash(const char *s)
{
    if (hash_seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        hash_seed = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)getpid() ^
                    (uint64_t)(uintptr_t)&hash_seed;
        hash_seed |= 1;
    }
    uint64_t h = 0xcbf29ce484222325ULL ^ hash_seed; /* FNV-1a */
    for (; *s; s++) {
        h ^= (uint8_t)tolower((unsigned char)*s);
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}
