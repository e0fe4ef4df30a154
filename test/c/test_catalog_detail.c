/* The error detail of a non-200 answer (port_src/catalog/catalog_detail.c): the ACL
 * token never shows, wherever it sits in the body, the cut through it
 * included (issue 10 item 6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "catalog_detail.h"

static const char token[] = "b1c7a2e0-5d8f-4c3b-9a61-2f0e8d7c6b5a"; /* 36 bytes */

/* No run of 4 or more of the token's bytes survives: a partial token is a
 * leak too (35 of 36 characters came through before the fix). */
static void assert_no_token_piece(const char *detail, size_t at)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i + 4 <= tl; i++) {
        char piece[5];
        memcpy(piece, token + i, 4);
        piece[4] = '\0';
        if (strstr(detail, piece) != NULL)
            fail_msg("token at %zu: piece \"%s\" leaked in \"%s\"", at, piece, detail);
    }
}

static void token_masked_at_every_position(void **state)
{
    (void)state;
    size_t tl = strlen(token);
    /* Positions past the limit, straddling it, and within it. */
    for (size_t at = 0; at <= CATALOG_DETAIL_BODY_MAX + 10; at++) {
        char body[512];
        memset(body, '.', at);
        memcpy(body + at, token, tl);
        memcpy(body + at + tl, " denied", 8);
        char detail[256];
        catalog_detail(detail, sizeof detail, 403, body, strlen(body), token);
        assert_no_token_piece(detail, at);
        assert_true(strncmp(detail, "HTTP 403: ", 10) == 0);
        /* The shown part is cut at the limit, and what was the token is
         * stars up to it. */
        size_t shown = strlen(detail) - 10;
        assert_true(shown <= CATALOG_DETAIL_BODY_MAX);
        if (at < CATALOG_DETAIL_BODY_MAX)
            assert_int_equal(detail[10 + at], '*');
    }
}

static void token_masked_every_time_and_body_kept(void **state)
{
    (void)state;
    char body[256];
    snprintf(body, sizeof body, "%s ACL not found: %s%s\nsecond line %s", token, token, token,
             token);
    char detail[256];
    catalog_detail(detail, sizeof detail, 401, body, strlen(body), token);
    assert_no_token_piece(detail, 0);
    assert_non_null(strstr(detail, " ACL not found: "));
    assert_null(strchr(detail, '\n'));
    assert_null(strstr(detail, "second line"));
    /* Without a token the body shows as it is, unprintables as '?'. */
    catalog_detail(detail, sizeof detail, 500, "boom\x01\xff", 6, "");
    assert_string_equal(detail, "HTTP 500: boom??");
    /* A short body shorter than the token. */
    catalog_detail(detail, sizeof detail, 403, "no", 2, token);
    assert_string_equal(detail, "HTTP 403: no");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_masked_at_every_position),
        cmocka_unit_test(token_masked_every_time_and_body_kept),
    };
    return cmocka_run_group_tests_name("catalog_detail", tests, NULL, NULL);
}
