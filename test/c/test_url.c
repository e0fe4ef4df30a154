/* The pure URL checks (url.h): which URLs are refused and with what text,
 * which host c-ares resolves, and percent-encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

static void accepted_urls_have_no_refusal(void **state)
{
    (void)state;
    static const char *ok[] = {
        "http://consul:8500",          "https://consul.example/v1",
        "http://127.0.0.1:8500/x?y#z", "http://[::1]:8500",
        "http://[fe80::1%25eth0]/",    "http://user:pw@consul:8500",
        "http://consul:",              "https://consul:65535",
        "http://consul:1",             "unix:///run/consul.sock",
        "unix://anything at all",      "http://consul?a=b",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *why = url_refusal(ok[i]);
        if (why != NULL)
            fail_msg("%s refused: %s", ok[i], why);
    }
}

static void refused_urls_say_why(void **state)
{
    (void)state;
    static const struct {
        const char *url, *why;
    } cases[] = {
        {"consul:8500", "url: must start with http://, https:// or unix://"},
        {"ftp://consul/", "url: must start with http://, https:// or unix://"},
        {"HTTP://consul/", "url: must start with http://, https:// or unix://"},
        {"", "url: must start with http://, https:// or unix://"},
        {"http://a@b@consul/", "url: its user info holds an '@'; write it as %40"},
        {"http://[::1:8500/", "url: an IPv6 address without its closing ']'"},
        {"http:///consul:8500", "url: no host after the scheme"},
        {"http://", "url: no host after the scheme"},
        {"http://user@:80/", "url: no host after the scheme"},
        {"http://[::1]x/", "url: the host must be followed by :PORT or a path"},
        {"http://consul:0", "url: the port must be a number in 1..65535"},
        {"http://consul:65536", "url: the port must be a number in 1..65535"},
        {"http://consul:123456", "url: the port must be a number in 1..65535"},
        {"http://consul:80x/", "url: the port must be a number in 1..65535"},
        {"http://consul:-1/", "url: the port must be a number in 1..65535"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = url_refusal(cases[i].url);
        if (why == NULL || strcmp(why, cases[i].why) != 0)
            fail_msg("%s: got %s, want %s", cases[i].url, why ? why : "(accepted)",
                     cases[i].why);
    }
}

static void a_host_of_256_bytes_is_refused_255_taken(void **state)
{
    (void)state;
    char url[300] = "http://";
    memset(url + 7, 'a', 255);
    strcpy(url + 7 + 255, ":80/");
    assert_null(url_refusal(url));
    char host[URL_HOST_MAX];
    long port = 0;
    assert_true(url_host_to_resolve(url, host, sizeof host, &port));
    assert_int_equal(strlen(host), 255);
    url[7 + 255] = 'a';
    strcpy(url + 7 + 256, ":80/");
    assert_string_equal(url_refusal(url), "url: host name longer than 255 bytes");
    assert_false(url_host_to_resolve(url, host, sizeof host, &port));
}

static void names_are_resolved_with_their_port(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
        long port;
    } cases[] = {
        {"http://consul", "consul", 80},
        {"https://consul", "consul", 443},
        {"http://consul:8500/v1", "consul", 8500},
        {"https://u:p@consul.example:8501?x", "consul.example", 8501},
        {"http://consul:/", "consul", 80},
        {"http://localhost#x", "localhost", 80},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[URL_HOST_MAX] = "";
        long port = -1;
        if (!url_host_to_resolve(cases[i].url, host, sizeof host, &port))
            fail_msg("%s: not resolved", cases[i].url);
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
}

static void literals_and_unix_sockets_are_not_resolved(void **state)
{
    (void)state;
    /* "127.1" and "2130706433" are what libcurl reads as IPv4 literals. */
    static const char *literal[] = {"http://127.0.0.1:8500", "http://[::1]:8500/",
                                    "http://127.1/",        "http://2130706433/",
                                    "http://0x7f.1/",       "unix:///run/consul.sock",
                                    "http:///x",            "consul:8500"};
    for (size_t i = 0; i < sizeof literal / sizeof literal[0]; i++) {
        char host[URL_HOST_MAX];
        long port;
        if (url_host_to_resolve(literal[i], host, sizeof host, &port))
            fail_msg("%s: resolved as %s", literal[i], host);
    }
}

/* s appended percent-encoded to prefix in a buffer of exactly cap bytes
 * (ASan sees any write past it): want, or refused (-1) where want is NULL. */
static void escape_case(size_t cap, const char *prefix, const char *s, const char *want)
{
    char *buf = malloc(cap);
    assert_non_null(buf);
    assert_true(strlen(prefix) < cap);
    strcpy(buf, prefix);
    int rc = url_escape_append(buf, cap, s);
    if (want == NULL) {
        assert_int_equal(rc, -1);
    } else {
        assert_int_equal(rc, 0);
        assert_string_equal(buf, want);
    }
    free(buf);
}

static void escape_keeps_unreserved_and_encodes_the_rest(void **state)
{
    (void)state;
    escape_case(64, "/v1/health/service/", "a-b_c.d~E9", "/v1/health/service/a-b_c.d~E9");
    escape_case(64, "tag=", "a b/&?\xc3\xa9", "tag=a%20b%2F%26%3F%C3%A9");
}

static void escape_refuses_what_does_not_fit(void **state)
{
    (void)state;
    escape_case(5, "", "abcd", "abcd");
    escape_case(5, "", "abcde", NULL);
    escape_case(3, "", " ", NULL); /* "%20" and its NUL need 4 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_urls_have_no_refusal),
        cmocka_unit_test(refused_urls_say_why),
        cmocka_unit_test(a_host_of_256_bytes_is_refused_255_taken),
        cmocka_unit_test(names_are_resolved_with_their_port),
        cmocka_unit_test(literals_and_unix_sockets_are_not_resolved),
        cmocka_unit_test(escape_keeps_unreserved_and_encodes_the_rest),
        cmocka_unit_test(escape_refuses_what_does_not_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
