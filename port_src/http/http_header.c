/* http_header.c - the headers caravan reads; see http_header.h. */
#include "http_header.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Copies the value of header `name` if line is that header. Returns -1
 * when it is but its value does not fit in cap - 1 bytes or holds a NUL,
 * saying so in why. */
static int take(const char *line, size_t n, const char *name, char *out, size_t cap,
                char *why, size_t why_cap)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    const char *v = line + k + 1;
    size_t vn = n - k - 1;
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' ' ||
                      v[vn - 1] == '\t'))
        vn--;
    if (vn >= cap) {
        snprintf(why, why_cap, "%s header longer than %zu bytes", name, cap - 1);
        return -1;
    }
    if (memchr(v, '\0', vn) != NULL) {
        snprintf(why, why_cap, "%s header holds a NUL byte", name);
        return -1;
    }
    memcpy(out, v, vn);
    out[vn] = '\0';
    return 0;
}

int http_header_read(const char *line, size_t n, struct http_response *resp, char *why,
                     size_t cap)
{
    static const char *const names[] = {"X-Consul-Index", "X-Nomad-Index", "X-Nomad-NextToken",
                                        "X-Consul-KnownLeader", "X-Consul-LastContact", "Age"};
    char *outs[] = {resp->index, resp->index, resp->next_token,
                    resp->known_leader, resp->last_contact, resp->age};
    size_t caps[] = {sizeof resp->index, sizeof resp->index, sizeof resp->next_token,
                     sizeof resp->known_leader, sizeof resp->last_contact, sizeof resp->age};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (take(line, n, names[i], outs[i], caps[i], why, cap) != 0)
            return -1;
    }
    return 0;
}

/* A header's decimal value, or -1 when absent; -2 when not 0..10^15. */
static long long decimal(const char *v)
{
    if (v[0] == '\0')
        return -1;
    long long n = 0;
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9' || c - v >= 15)
            return -2;
        n = n * 10 + (*c - '0');
    }
    return n;
}

int http_header_fresh(const struct http_response *resp, long long max_stale_ms, char *why,
                      size_t cap)
{
    if (strcasecmp(resp->known_leader, "false") == 0) {
        snprintf(why, cap, "no known leader (X-Consul-KnownLeader: false)");
        return -1;
    }
    if (max_stale_ms <= 0)
        return 0;
    long long contact = decimal(resp->last_contact);
    if (contact == -2 || (contact > max_stale_ms)) {
        snprintf(why, cap, "X-Consul-LastContact %.20s ms is over max_stale %lld ms",
                 resp->last_contact, max_stale_ms);
        return -1;
    }
    long long age = decimal(resp->age);
    if (age == -2 || (age >= 0 && age * 1000 > max_stale_ms)) {
        snprintf(why, cap, "Age %.20s s (agent cache) is over max_stale %lld ms", resp->age,
                 max_stale_ms);
        return -1;
    }
    return 0;
}
