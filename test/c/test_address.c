/* The strict address rule (address.h), case for case as the Erlang side's
 * caravan_name:address/1 reads them (test/caravan_address_tests.erl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "address.h"

static void strict_addresses_are_written_back_canonically(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"10.0.0.1", "10.0.0.1"},         {"10.0.0.10", "10.0.0.10"},
        {"FD00::1", "fd00::1"},           {"FD00::0001", "fd00::1"},
        {"::ffff:10.0.0.1", "::ffff:10.0.0.1"}, {"0.0.0.0", "0.0.0.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        assert_int_equal(address_classify(cases[i][0], out, sizeof out), ADDRESS_STRICT);
        assert_string_equal(out, cases[i][1]);
    }
}

/* Issue 18 item 5: these became app-4370@127.0.0.8, @127.0.0.10, @8.0.0.1. */
static void lenient_forms_are_ambiguous(void **state)
{
    (void)state;
    static const char *cases[] = {"127.000.000.010", "2130706442", "010.0.0.1", "0x7f.0.0.1",
                                  "127.1", "1.2.3.04", "0177.0.0.1", "fe80::1%eth0"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64] = "";
        if (address_classify(cases[i], out, sizeof out) != ADDRESS_AMBIGUOUS)
            fail_msg("%s is not ambiguous", cases[i]);
    }
}

static void anything_else_is_a_host_name(void **state)
{
    (void)state;
    static const char *cases[] = {"node7.example", "n1.node.dc1.consul", "1.2.3.4.", "",
                                  "1.2.3.4.5", "256.1.1.1.example", "-1"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64] = "";
        if (address_classify(cases[i], out, sizeof out) != ADDRESS_HOST_NAME)
            fail_msg("%s is not a host name", cases[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strict_addresses_are_written_back_canonically),
        cmocka_unit_test(lenient_forms_are_ambiguous),
        cmocka_unit_test(anything_else_is_a_host_name),
    };
    return cmocka_run_group_tests_name("address", tests, NULL, NULL);
}
