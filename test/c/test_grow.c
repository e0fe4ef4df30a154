/* The growable buffer rule (port_src/core/grow.c) the HTTP body, the JSON
 * splitter and the frame reader share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

static void doubles_from_first_and_keeps_contents(void **state)
{
    (void)state;
    size_t cap = 0;
    char *b = grow(NULL, &cap, 10, 16);
    assert_non_null(b);
    assert_int_equal(cap, 16);
    memcpy(b, "0123456789", 10);
    b = grow(b, &cap, 100, 16);
    assert_non_null(b);
    assert_int_equal(cap, 128);
    assert_memory_equal(b, "0123456789", 10);
    char *same = grow(b, &cap, 128, 16); /* enough already */
    assert_ptr_equal(same, b);
    assert_int_equal(cap, 128);
    free(b);
}

static void overflow_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    size_t cap = 64;
    char *b = malloc(cap);
    assert_non_null(b);
    assert_null(grow(b, &cap, SIZE_MAX, 16));
    assert_int_equal(cap, 64); /* b is still the caller's, whole */
    free(b);
}

/* grow_array counts elements: a first count, doubling, contents kept. */
static void arrays_grow_in_elements(void **state)
{
    (void)state;
    struct pair {
        long a, b;
    };
    size_t cap = 0;
    struct pair *v = grow_array(NULL, &cap, 1, sizeof *v, 16);
    assert_non_null(v);
    assert_int_equal(cap, 16);
    for (size_t i = 0; i < 16; i++)
        v[i] = (struct pair){(long)i, -(long)i};
    v = grow_array(v, &cap, 17, sizeof *v, 16);
    assert_non_null(v);
    assert_int_equal(cap, 32);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(v[i].b, -(long)i);
    struct pair *same = grow_array(v, &cap, 32, sizeof *v, 16); /* room already */
    assert_ptr_equal(same, v);
    assert_int_equal(cap, 32);
    free(v);
}

/* need * elem past SIZE_MAX: refused, nothing changed (not a short buffer). */
static void array_overflow_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    size_t cap = 4;
    long *v = malloc(cap * sizeof *v);
    assert_non_null(v);
    assert_null(grow_array(v, &cap, SIZE_MAX / sizeof *v + 1, sizeof *v, 16));
    assert_int_equal(cap, 4);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doubles_from_first_and_keeps_contents),
        cmocka_unit_test(overflow_is_refused_and_changes_nothing),
        cmocka_unit_test(arrays_grow_in_elements),
        cmocka_unit_test(array_overflow_is_refused_and_changes_nothing),
    };
    return cmocka_run_group_tests_name("grow", tests, NULL, NULL);
}
