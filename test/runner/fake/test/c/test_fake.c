/* cmocka: one pass, one skip (cmocka's skip() takes no reason). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

static void passes(void **state) { (void)state; }
static void skipped(void **state) { (void)state; skip(); }

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(passes), cmocka_unit_test(skipped)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
