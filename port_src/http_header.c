/* http_header.c - the headers caravan reads; see http_header.h. */
#include "http_header.h"

#include <string.h>
#include <strings.h>

/* Copies the value of header `name` if line is that header. Returns -1
 * when it is but its value does not fit in cap - 1 bytes. */
static int take(const char *line, size_t n, const char *name, char *out, size_t cap)
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
    /* A NUL inside would cut the C string short: as good as too long. */
    if (vn >= cap || memchr(v, '\0', vn) != NULL)
        return -1;
    memcpy(out, v, vn);
    out[vn] = '\0';
    return 0;
}

int http_header_read(const char *line, size_t n, struct http_response *resp, const char **name)
{
    static const char *const names[] = {"X-Consul-Index", "X-Nomad-Index", "X-Nomad-NextToken"};
    char *outs[] = {resp->index, resp->index, resp->next_token};
    size_t caps[] = {sizeof resp->index, sizeof resp->index, sizeof resp->next_token};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (take(line, n, names[i], outs[i], caps[i]) != 0) {
            *name = names[i];
            return -1;
        }
    }
    return 0;
}
