/* The Consul GET (port_src/catalog_request.c): consistency and caching
 * parameters as Consul's "Consistency Modes" and "Agent Caching" docs name
 * them, and the pairs Consul refuses (issue 24). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "catalog_request.h"

static void path_for(const char *consistency, const char *cached, char *out, size_t cap)
{
    struct catalog_query q;
    struct http_request r;
    catalog_query_init(&q, API_CONSUL);
    snprintf(q.url, sizeof q.url, "http://127.0.0.1:8500");
    snprintf(q.service, sizeof q.service, "app");
    snprintf(q.consistency, sizeof q.consistency, "%s", consistency);
    snprintf(q.cached, sizeof q.cached, "%s", cached);
    q.index = 7;
    q.wait_ms = 1000;
    assert_int_equal(catalog_request_build(&q, &r), 0);
    snprintf(out, cap, "%s", r.path);
}

static void mode_parameters(void **state)
{
    (void)state;
    static char path[sizeof ((struct http_request *)0)->path];
    path_for("", "", path, sizeof path);
    assert_string_equal(path, "/v1/health/service/app?passing=true&index=7&wait=1000ms");
    path_for("default", "false", path, sizeof path);
    assert_string_equal(path, "/v1/health/service/app?passing=true&index=7&wait=1000ms");
    path_for("stale", "true", path, sizeof path);
    assert_string_equal(path,
                        "/v1/health/service/app?passing=true&stale&cached&index=7&wait=1000ms");
    path_for("consistent", "false", path, sizeof path);
    assert_string_equal(path, "/v1/health/service/app?passing=true&consistent&index=7&wait=1000ms");
    path_for("default", "true", path, sizeof path);
    assert_string_equal(path, "/v1/health/service/app?passing=true&cached&index=7&wait=1000ms");
}

static int check(const char *consistency, const char *cached, long long max_stale_ms, char *msg,
                 size_t cap)
{
    struct catalog_query q;
    catalog_query_init(&q, API_CONSUL);
    snprintf(q.consistency, sizeof q.consistency, "%s", consistency);
    snprintf(q.cached, sizeof q.cached, "%s", cached);
    q.max_stale_ms = max_stale_ms;
    msg[0] = '\0';
    return catalog_query_check_consistency(&q, msg, cap);
}

static void refused_pairs(void **state)
{
    (void)state;
    char msg[128];
    assert_int_equal(check("", "", 0, msg, sizeof msg), 0);
    assert_int_equal(check("stale", "true", 5000, msg, sizeof msg), 0);
    assert_int_equal(check("consistent", "false", 0, msg, sizeof msg), 0);
    assert_int_equal(check("consistent", "true", 0, msg, sizeof msg), -1);
    assert_string_equal(msg, "cached: Consul refuses ?cached with ?consistent");
    assert_int_equal(check("consistent", "", 10, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "max_stale_ms"));
    assert_int_equal(check("default", "", 10, msg, sizeof msg), -1);
    assert_int_equal(check("eventual", "", 0, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "consistency"));
    assert_int_equal(check("stale", "yes", 0, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "cached"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mode_parameters),
        cmocka_unit_test(refused_pairs),
    };
    return cmocka_run_group_tests_name("catalog_request", tests, NULL, NULL);
}
