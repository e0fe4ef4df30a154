/* The proxy rule (http_proxy.h): loopback, localhost and unix sockets never
 * go through a proxy; other hosts follow HTTP(S)_PROXY and NO_PROXY as Go's
 * ProxyFromEnvironment reads them, unless the request says otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "http_proxy.h"

static void clear_env(void)
{
    static const char *vars[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
                                 "https_proxy", "NO_PROXY",   "no_proxy"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

/* The proxy chosen for base, or "ERR" when refused. */
static const char *choose(const char *base, enum http_proxy_mode mode, const char *option)
{
    static char out[HTTP_PROXY_URL_MAX];
    const char *why = NULL;
    if (http_proxy_choose(base, mode, option, out, sizeof out, &why) != 0) {
        assert_non_null(why);
        return "ERR";
    }
    return out;
}

static void loopback_and_unix_sockets_never_use_a_proxy(void **state)
{
    (void)state;
    setenv("HTTP_PROXY", "http://127.0.0.1:3128", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:3128", 1);
    static const char *direct[] = {
        "http://127.0.0.1:8500",     "http://127.9.8.7:8500",   "https://127.0.0.1:8501",
        "http://localhost:8500",     "http://LocalHost",        "http://localhost.:4646",
        "http://consul.localhost:1", "http://[::1]:8500",       "http://[::ffff:127.0.0.2]:80",
        "http://127.1:8500",         "http://2130706433:8500",  "http://0x7f.1:8500",
        "http://user:pw@127.0.0.1:8500", "unix:///run/nomad/api.sock",
    };
    for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++) {
        /* The environment, and even an explicit proxy, leave them direct. */
        assert_string_equal(choose(direct[i], HTTP_PROXY_ENV, ""), "");
        assert_string_equal(choose(direct[i], HTTP_PROXY_URL, "http://10.1.1.1:3128"), "");
    }
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_ENV, ""),
                        "http://127.0.0.1:3128");
    assert_string_equal(choose("http://128.0.0.1:8500", HTTP_PROXY_ENV, ""),
                        "http://127.0.0.1:3128");
    assert_string_equal(choose("http://notlocalhost:8500", HTTP_PROXY_ENV, ""),
                        "http://127.0.0.1:3128");
    clear_env();
}

/* issue 18: libcurl 7.88 percent-decodes the host, so "%31%32%37.0.0.1"
 * is 127.0.0.1 to it; such hosts (and empty labels) are refused, never
 * proxied with the token, whether the proxy is the environment's or the
 * request's; the unspecified addresses are the local host and go direct. */
static void encoded_hosts_are_refused_not_proxied(void **state)
{
    (void)state;
    setenv("HTTP_PROXY", "http://127.0.0.1:3128", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:3128", 1);
    setenv("NO_PROXY", "consul.example", 1);
    static const char *refused[] = {
        "http://%31%32%37.0.0.1:8500",
        "http://%6c%6f%63%61%6c%68%6f%73%74:8500",
        "http://%6C%6F%63%61%6C%68%6F%73%74:4646",
        "http://127.0.0.1%2e:8500",
        "http://localhost%2e:8500",
        "http://localhost%2E:8500",
        "http://localhost..:8500",
        "http://127.0.0.1..:8500",
        "http://.localhost:8500",
        "https://%31%32%37.0.0.1:8501",
        "http://user@%31%32%37.0.0.1:8500",
        "http://c%6fnsul.example:8500", /* NO_PROXY must not be sidestepped either */
        "http://[%3a%3a1]:8500",
        "http://[::1%25lo%2f]:8500",
    };
    /* Every form that is not refused is named, not just the first. */
    char wrong[2048] = "";
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (strcmp(choose(refused[i], HTTP_PROXY_ENV, ""), "ERR") != 0 ||
            strcmp(choose(refused[i], HTTP_PROXY_URL, "http://10.1.1.1:3128"), "ERR") != 0 ||
            http_proxy_url_refusal(refused[i]) == NULL) {
            strncat(wrong, refused[i], sizeof wrong - strlen(wrong) - 1);
            strncat(wrong, " ", sizeof wrong - strlen(wrong) - 1);
        }
    }
    assert_string_equal(wrong, "");
    /* A proxy given with an encoded host is refused as well. */
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_URL, "http://%31%30.1.1.1:3128"),
                        "ERR");
    static const char *local[] = {
        "http://0.0.0.0:8500", "http://0:8500",       "http://[::]:8500",
        "http://[::ffff:0.0.0.0]:8500", "http://[::1%25lo]:8500", "http://127.0.0.1.:8500",
        "http://localhost.:8500",
    };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        assert_null(http_proxy_url_refusal(local[i]));
        assert_string_equal(choose(local[i], HTTP_PROXY_ENV, ""), "");
        assert_string_equal(choose(local[i], HTTP_PROXY_URL, "http://10.1.1.1:3128"), "");
    }
    /* Plain hosts are not refused: the rule is unchanged for them. */
    assert_null(http_proxy_url_refusal("http://consul.example:8500/v1/x?a=%20"));
    assert_null(http_proxy_url_refusal("http://[fe80::1%25eth0]:8500"));
    assert_null(http_proxy_url_refusal("unix:///run/a%20b.sock"));
    assert_string_equal(choose("http://consul.example:8500", HTTP_PROXY_ENV, ""), "");
    assert_string_equal(choose("http://vault.example:8500", HTTP_PROXY_ENV, ""),
                        "http://127.0.0.1:3128");
    assert_string_equal(choose("http://0.0.0.1:8500", HTTP_PROXY_ENV, ""),
                        "http://127.0.0.1:3128");
    clear_env();
}

static void the_scheme_picks_the_variable_uppercase_first(void **state)
{
    (void)state;
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_ENV, ""), "");
    setenv("http_proxy", "http://lower:1", 1);
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_ENV, ""), "http://lower:1");
    setenv("HTTP_PROXY", "http://upper:2", 1);
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_ENV, ""), "http://upper:2");
    setenv("HTTP_PROXY", "", 1); /* empty counts as unset, as in Go */
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_ENV, ""), "http://lower:1");
    /* https:// reads only HTTPS_PROXY / https_proxy. */
    assert_string_equal(choose("https://198.18.0.2:8501", HTTP_PROXY_ENV, ""), "");
    setenv("https_proxy", "proxy.example:3128", 1); /* no scheme: http:// */
    assert_string_equal(choose("https://198.18.0.2:8501", HTTP_PROXY_ENV, ""),
                        "http://proxy.example:3128");
    /* The port is always written: libcurl's default would be 1080. */
    setenv("HTTPS_PROXY", "https://u:p@proxy", 1);
    assert_string_equal(choose("https://198.18.0.2:8501", HTTP_PROXY_ENV, ""),
                        "https://u:p@proxy:443");
    setenv("HTTPS_PROXY", "http://[fd00::1]", 1);
    assert_string_equal(choose("https://198.18.0.2:8501", HTTP_PROXY_ENV, ""),
                        "http://[fd00::1]:80");
    setenv("HTTPS_PROXY", "socks5://proxy:1080", 1);
    assert_string_equal(choose("https://198.18.0.2:8501", HTTP_PROXY_ENV, ""), "ERR");
    clear_env();
}

static void the_request_option_wins_over_the_environment(void **state)
{
    (void)state;
    setenv("HTTP_PROXY", "http://env:3128", 1);
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_NONE, ""), "");
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_URL, "http://mine:8080/"),
                        "http://mine:8080");
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_URL, "ftp://mine"), "ERR");
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_URL, "http://:80"), "ERR");
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_URL, "http://h:99999"), "ERR");
    /* NO_PROXY is the environment's rule: an explicit proxy is used. */
    setenv("NO_PROXY", "198.18.0.2", 1);
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_URL, "http://mine:8080"),
                        "http://mine:8080");
    assert_string_equal(choose("http://198.18.0.2:8500", HTTP_PROXY_ENV, ""), "");
    clear_env();
}

static void no_proxy_matches_as_go_does(void **state)
{
    (void)state;
    static const struct {
        const char *no_proxy, *host;
        long port;
        bool exempt;
    } cases[] = {
        {"*", "anything.example", 80, true},
        {"198.18.0.2", "198.18.0.2", 8500, true},
        {"198.18.0.3", "198.18.0.2", 8500, false},
        {"198.18.0.2:8500", "198.18.0.2", 8500, true},
        {"198.18.0.2:8501", "198.18.0.2", 8500, false},
        {"198.18.0.0/15", "198.19.255.1", 80, true},
        {"198.18.0.0/16", "198.19.0.1", 80, false},
        {"fd00::/8", "fd00::7", 80, true},
        {"[fd00::7]:4646", "fd00::7", 4646, true},
        {"fd00::7", "fd00::7", 1, true},
        {"consul.example", "consul.example", 80, true},
        {"consul.example", "a.consul.example", 80, true},
        {"consul.example", "xconsul.example", 80, false},
        {".consul.example", "consul.example", 80, false},
        {".consul.example", "a.consul.example", 80, true},
        {"*.consul.example", "consul.example", 80, false},
        {"*.consul.example", "b.a.consul.example", 80, true},
        {"consul.example:8500", "consul.example", 8500, true},
        {"consul.example:8500", "consul.example", 80, false},
        {" foo , CONSUL.Example ", "consul.example", 80, true},
        {",,", "consul.example", 80, false},
        /* What libcurl connects to counts: it reads 10.0.0.010 as 10.0.0.8. */
        {"10.0.0.8", "10.0.0.010", 80, true},
        {"10.0.0.10", "10.0.0.010", 80, false},
        {"198.18.0.2", "198.18.2", 80, true},  /* libcurl connects 198.18.2 to 198.18.0.2 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = http_proxy_no_proxy(cases[i].no_proxy, cases[i].host, cases[i].port);
        if (got != cases[i].exempt)
            fail_msg("NO_PROXY=%s %s:%ld: got %d", cases[i].no_proxy, cases[i].host,
                     cases[i].port, got);
    }
    /* The target's default port counts. */
    setenv("HTTPS_PROXY", "http://p:1", 1);
    setenv("no_proxy", "198.18.0.2:443", 1);
    assert_string_equal(choose("https://198.18.0.2", HTTP_PROXY_ENV, ""), "");
    assert_string_equal(choose("https://198.18.0.2:8501", HTTP_PROXY_ENV, ""), "http://p:1");
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(loopback_and_unix_sockets_never_use_a_proxy, setup),
        cmocka_unit_test_setup(encoded_hosts_are_refused_not_proxied, setup),
        cmocka_unit_test_setup(the_scheme_picks_the_variable_uppercase_first, setup),
        cmocka_unit_test_setup(the_request_option_wins_over_the_environment, setup),
        cmocka_unit_test_setup(no_proxy_matches_as_go_does, setup),
    };
    return cmocka_run_group_tests_name("http_proxy", tests, NULL, NULL);
}
