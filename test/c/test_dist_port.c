/* The name -> port rule (port_src/dist_port.c), case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "dist_port.h"

static enum dist_port_error derive(const char *name, long dflt, long *port, char *msg)
{
    *port = -1;
    return dist_port_from_name(name, strlen(name), dflt, port, msg, 512);
}

static void ok_case(const char *name, long dflt, long want)
{
    char msg[512] = "";
    long port;
    assert_int_equal(derive(name, dflt, &port, msg), DIST_PORT_OK);
    assert_int_equal(port, want);
}

static void err_case(const char *name, long dflt, enum dist_port_error want, const char *needle)
{
    char msg[512] = "";
    long port;
    assert_int_equal(derive(name, dflt, &port, msg), want);
    assert_int_equal(port, -1);
    assert_non_null(strstr(msg, needle));
}

static void trailing_digits_are_the_port(void **state)
{
    (void)state;
    ok_case("app-4370", 4370, 4370);
    ok_case("node3434", 4370, 3434);
    ok_case("app-name-4834", 4370, 4834);
    ok_case("app-4370@10.0.0.5", 1, 4370);
    ok_case("app-4370@127.0.0.2", 1, 4370);
    ok_case("rem-a1b2-app-4370", 1, 4370);
    ok_case("a1", 4370, 1);
    ok_case("x65535", 4370, 65535);
    ok_case("007", 4370, 7);
}

static void no_digits_gets_the_default(void **state)
{
    (void)state;
    ok_case("app", 4370, 4370);
    ok_case("app-", 9000, 9000);
    ok_case("app@host9", 4370, 4370); /* digits in the host do not count */
    err_case("app", 0, DIST_PORT_NO_DEFAULT, "no default port");
}

static void zero_and_too_large_are_refused(void **state)
{
    (void)state;
    err_case("app-0", 4370, DIST_PORT_OUT_OF_RANGE, "app-0");
    err_case("app-65536", 4370, DIST_PORT_OUT_OF_RANGE, "1..65535");
    err_case("app-000", 4370, DIST_PORT_OUT_OF_RANGE, "1..65535");
    /* 30 digits: must not overflow into a valid-looking port. */
    err_case("app-100000000000000000000000004370", 4370, DIST_PORT_OUT_OF_RANGE, "1..65535");
    err_case("999999999999999999999999999999", 4370, DIST_PORT_OUT_OF_RANGE, "1..65535");
}

static void empty_names_are_refused(void **state)
{
    (void)state;
    err_case("", 4370, DIST_PORT_EMPTY, "empty");
    err_case("@host", 4370, DIST_PORT_EMPTY, "empty");
}

static void long_names_are_refused(void **state)
{
    (void)state;
    char name[300];
    memset(name, 'a', sizeof name);
    strcpy(name + 255 - 4, "4370"); /* exactly 255 bytes: allowed */
    ok_case(name, 1, 4370);
    memset(name, 'a', sizeof name);
    strcpy(name + 256 - 4, "4370"); /* 256 bytes */
    err_case(name, 1, DIST_PORT_TOO_LONG, "at most 255");
}

static void non_ascii_is_refused(void **state)
{
    (void)state;
    err_case("n\xc3\xa9ud-4370", 4370, DIST_PORT_BAD_CHAR, "0xc3");
    err_case("app 4370", 4370, DIST_PORT_BAD_CHAR, "0x20");
    err_case("app\t1", 4370, DIST_PORT_BAD_CHAR, "0x09");
    /* A NUL inside the given length is a byte like any other. */
    char msg[512];
    long port;
    assert_int_equal(dist_port_from_name("ap\0p-1", 6, 1, &port, msg, sizeof msg),
                     DIST_PORT_BAD_CHAR);
}

static void error_atoms_are_stable(void **state)
{
    (void)state;
    assert_string_equal(dist_port_error_atom(DIST_PORT_EMPTY), "empty_name");
    assert_string_equal(dist_port_error_atom(DIST_PORT_TOO_LONG), "name_too_long");
    assert_string_equal(dist_port_error_atom(DIST_PORT_BAD_CHAR), "invalid_name");
    assert_string_equal(dist_port_error_atom(DIST_PORT_OUT_OF_RANGE), "port_out_of_range");
    assert_string_equal(dist_port_error_atom(DIST_PORT_NO_DEFAULT), "no_port");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trailing_digits_are_the_port),
        cmocka_unit_test(no_digits_gets_the_default),
        cmocka_unit_test(zero_and_too_large_are_refused),
        cmocka_unit_test(empty_names_are_refused),
        cmocka_unit_test(long_names_are_refused),
        cmocka_unit_test(non_ascii_is_refused),
        cmocka_unit_test(error_atoms_are_stable),
    };
    return cmocka_run_group_tests_name("dist_port", tests, NULL, NULL);
}
