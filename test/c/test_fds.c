/* fds_exhausted (port_src/fds.h): out of descriptors is named, and logged
 * once per episode, not at every failed request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fds.h"

/* Lowers the soft limit to the lowest free descriptor: the next one
 * cannot be had. Returns the old limits. */
static struct rlimit exhaust(void)
{
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = 0;
    while (fcntl(lowest, F_GETFD) != -1)
        lowest++;
    struct rlimit low = {.rlim_cur = (rlim_t)lowest, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    return old;
}

static void exhaustion_is_named_and_logged_once_per_episode(void **state)
{
    (void)state;
    char path[] = "/tmp/caravan-test-fds-XXXXXX";
    int log = mkstemp(path);
    assert_true(log >= 0);
    unlink(path);
    int saved = dup(2);
    assert_int_equal(dup2(log, 2), 2);

    assert_null(fds_exhausted());
    struct rlimit old = exhaust();
    for (int i = 0; i < 3; i++) {
        const char *why = fds_exhausted();
        assert_non_null(why);
        assert_string_equal(why, "out of file descriptors (EMFILE)");
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_null(fds_exhausted()); /* the episode ends */
    old = exhaust();
    assert_non_null(fds_exhausted());
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

    dup2(saved, 2);
    close(saved);
    char buf[4096];
    ssize_t n = pread(log, buf, sizeof buf - 1, 0);
    close(log);
    assert_true(n > 0);
    buf[n] = '\0';
    int lines = 0;
    for (const char *p = buf; (p = strstr(p, "out of file descriptors")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 2); /* four failures in two episodes: two lines */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exhaustion_is_named_and_logged_once_per_episode),
    };
    return cmocka_run_group_tests_name("fds", tests, NULL, NULL);
}
