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
    static const char *const names[] = {"X-Consul-Index", "X-Nomad-Index", "X-Nomad-NextToken"};
    char *outs[] = {resp->index, resp->index, resp->next_token};
    size_t caps[] = {sizeof resp->index, sizeof resp->index, sizeof resp->next_token};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (take(line, n, names[i], outs[i], caps[i], why, cap) != 0)
            return -1;
    }
    return 0;
}
