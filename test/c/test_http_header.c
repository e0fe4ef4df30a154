/* Response headers (port_src/http_header.c): values read whole or refused,
 * never cut (issue 10 item 8: a 256-byte X-Nomad-NextToken became <<>>). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_header.h"

/* why: the refusal's text (left alone when the line is read). */
static int read_line(struct http_response *r, const char *line, char (*why)[HTTP_HEADER_WHY_MAX])
{
    return http_header_read(line, strlen(line), r, *why, sizeof *why);
}

static void long_values_are_whole_or_refused(void **state)
{
    (void)state;
    const size_t sizes[] = {1, 255, 256, 257, 300, 1000, HTTP_HEADER_VALUE_MAX - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct http_response r;
        memset(&r, 0, sizeof r);
        char *line = malloc(sizes[i] + 64);
        assert_non_null(line);
        int n = sprintf(line, "X-Nomad-NextToken: ");
        memset(line + n, 'k', sizes[i]);
        strcpy(line + n + sizes[i], "\r\n");
        char why[HTTP_HEADER_WHY_MAX] = "";
        assert_int_equal(read_line(&r, line, &why), 0);
        assert_string_equal(why, "");
        if (strlen(r.next_token) != sizes[i])
            fail_msg("a %zu-byte token came out as %zu bytes", sizes[i], strlen(r.next_token));
        free(line);
    }
    /* One byte past the field: refused, with the header named. */
    struct http_response r;
    memset(&r, 0, sizeof r);
    char *line = malloc(HTTP_HEADER_VALUE_MAX + 64);
    assert_non_null(line);
    int n = sprintf(line, "x-nomad-nexttoken:");
    memset(line + n, 'k', HTTP_HEADER_VALUE_MAX);
    strcpy(line + n + HTTP_HEADER_VALUE_MAX, "\r\n");
    char why[HTTP_HEADER_WHY_MAX] = "";
    assert_int_equal(read_line(&r, line, &why), -1);
    char want[HTTP_HEADER_WHY_MAX];
    snprintf(want, sizeof want, "X-Nomad-NextToken header longer than %d bytes",
             HTTP_HEADER_VALUE_MAX - 1);
    assert_string_equal(why, want);
    assert_string_equal(r.next_token, "");
    free(line);
}

static void index_headers(void **state)
{
    (void)state;
    struct http_response r;
    memset(&r, 0, sizeof r);
    char why[HTTP_HEADER_WHY_MAX] = "";
    assert_int_equal(read_line(&r, "X-Consul-Index:  42 \r\n", &why), 0);
    assert_string_equal(r.index, "42");
    assert_int_equal(read_line(&r, "x-nomad-index: 7\r\n", &why), 0);
    assert_string_equal(r.index, "7");
    /* Other headers, and prefixes of ours, leave everything alone. */
    assert_int_equal(read_line(&r, "X-Consul-Indexes: 9\r\n", &why), 0);
    assert_int_equal(read_line(&r, "X-Consul-Index\r\n", &why), 0);
    assert_int_equal(read_line(&r, "HTTP/1.1 200 OK\r\n", &why), 0);
    assert_string_equal(r.index, "7");
    /* 40 digits do not fit in the index field: refused, not cut to 31. */
    assert_int_equal(read_line(&r, "X-Consul-Index: 1234567890123456789012345678901234567890\r\n",
                               &why), -1);
    assert_string_equal(why, "X-Consul-Index header longer than 31 bytes");
    /* A NUL inside a value: refused for what it is, however short. */
    static const char nul[] = "X-Nomad-NextToken: ab\0cd\r\n";
    assert_int_equal(http_header_read(nul, sizeof nul - 1, &r, why, sizeof why), -1);
    assert_string_equal(why, "X-Nomad-NextToken header holds a NUL byte");
    assert_string_equal(r.next_token, "");
}

/* Consul's "Consistency Modes" (KnownLeader, LastContact) and "Agent
 * Caching" (Age) headers, read and judged by http_header_fresh. */
static void staleness_headers(void **state)
{
    (void)state;
    struct http_response r;
    memset(&r, 0, sizeof r);
    char why[256] = "";
    /* No headers: nothing to judge by, fresh. */
    assert_int_equal(http_header_fresh(&r, 1000, why, sizeof why), 0);
    assert_int_equal(read_line(&r, "X-Consul-KnownLeader: true\r\n", &(char[HTTP_HEADER_WHY_MAX]){""}), 0);
    assert_int_equal(read_line(&r, "X-Consul-LastContact: 1000\r\n", &(char[HTTP_HEADER_WHY_MAX]){""}), 0);
    assert_int_equal(read_line(&r, "Age: 1\r\n", &(char[HTTP_HEADER_WHY_MAX]){""}), 0);
    assert_string_equal(r.known_leader, "true");
    assert_string_equal(r.last_contact, "1000");
    assert_string_equal(r.age, "1");
    assert_int_equal(http_header_fresh(&r, 1000, why, sizeof why), 0);
    assert_int_equal(http_header_fresh(&r, 0, why, sizeof why), 0);
    /* Over the bound by one ms, or by one s of cache age. */
    snprintf(r.last_contact, sizeof r.last_contact, "1001");
    assert_int_equal(http_header_fresh(&r, 1000, why, sizeof why), -1);
    assert_string_equal(why, "X-Consul-LastContact 1001 ms is over max_stale 1000 ms");
    assert_int_equal(http_header_fresh(&r, 0, why, sizeof why), 0); /* no bound */
    snprintf(r.last_contact, sizeof r.last_contact, "0");
    snprintf(r.age, sizeof r.age, "2");
    assert_int_equal(http_header_fresh(&r, 1999, why, sizeof why), -1);
    assert_string_equal(why, "Age 2 s (agent cache) is over max_stale 1999 ms");
    assert_int_equal(http_header_fresh(&r, 2000, why, sizeof why), 0);
    /* Not a number: refused when bounded. */
    snprintf(r.last_contact, sizeof r.last_contact, "-5");
    assert_int_equal(http_header_fresh(&r, 2000, why, sizeof why), -1);
    snprintf(r.last_contact, sizeof r.last_contact, "0");
    /* No known leader: stale whatever the bound, in any case. */
    assert_int_equal(read_line(&r, "x-consul-knownleader: False\r\n", &(char[HTTP_HEADER_WHY_MAX]){""}), 0);
    assert_int_equal(http_header_fresh(&r, 0, why, sizeof why), -1);
    assert_string_equal(why, "no known leader (X-Consul-KnownLeader: false)");
    /* A value too long for its field is refused, not cut. */
    char w[HTTP_HEADER_WHY_MAX] = "";
    assert_int_equal(read_line(&r, "X-Consul-KnownLeader: falsefalse\r\n", &w), -1);
    assert_string_equal(w, "X-Consul-KnownLeader header longer than 7 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(long_values_are_whole_or_refused),
        cmocka_unit_test(index_headers),
        cmocka_unit_test(staleness_headers),
    };
    return cmocka_run_group_tests_name("http_header", tests, NULL, NULL);
}
