/* coordinator/ingest/routes.c: an agent's newest connection, and the requests it has not
 * answered, sent again when it comes back on a new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routes.h"

static const uint8_t C1[] = {0, 0, 0, 0, 1}, C2[] = {0, 0, 0, 0, 2}, C3[] = {0, 0, 0, 0, 3};

/* What routes_resend handed over: the connection and the envelopes, in order. */
struct sent {
    uint8_t rid[8];
    size_t rid_len;
    char envelopes[8][16];
    int n;
};

static int record_send(void *userdata, const uint8_t *rid, size_t rid_len, const void *envelope,
                       size_t len)
{
    struct sent *s = userdata;
    memcpy(s->rid, rid, rid_len);
    s->rid_len = rid_len;
    snprintf(s->envelopes[s->n++], sizeof(s->envelopes[0]), "%.*s", (int)len,
             (const char *)envelope);
    return 0;
}

static void lookup_is(routes_t *r, const char *agent, const uint8_t *want)
{
    size_t len = 0;
    const uint8_t *rid = routes_lookup(r, agent, &len);
    assert_non_null(rid);
    assert_int_equal(len, 5);
    assert_memory_equal(rid, want, 5);
}

static void test_newest_connection_wins(void **state)
{
    (void)state;
    routes_t *r = routes_new();
    size_t len;
    assert_null(routes_lookup(r, "ag-a", &len));
    assert_false(routes_update(r, "ag-a", C1, 5)); /* the first: nothing left behind */
    lookup_is(r, "ag-a", C1);
    assert_false(routes_update(r, "ag-a", C1, 5));
    assert_true(routes_update(r, "ag-a", C2, 5)); /* a reconnect */
    lookup_is(r, "ag-a", C2);
    /* Late bytes on the connection it left do not take the route back. */
    assert_false(routes_update(r, "ag-a", C1, 5));
    lookup_is(r, "ag-a", C2);
    assert_true(routes_update(r, "ag-a", C3, 5));
    lookup_is(r, "ag-a", C3);
    /* Another agent is its own. */
    assert_false(routes_update(r, "ag-b", C1, 5));
    lookup_is(r, "ag-b", C1);
    lookup_is(r, "ag-a", C3);
    routes_forget(r, "ag-a");
    assert_null(routes_lookup(r, "ag-a", &len));
    routes_destroy(&r);
    assert_null(r);
}

static void test_unanswered_requests_go_again(void **state)
{
    (void)state;
    routes_t *r = routes_new();
    routes_update(r, "ag-a", C1, 5);
    uint64_t col7 = routes_key_collection(7), col8 = routes_key_collection(8);
    uint64_t cmd = routes_key_command("cmd-0123456789abcdef");
    assert_int_not_equal(col7, col8);
    assert_int_not_equal(col7 & 1, cmd & 1); /* a collection never looks like a command */
    assert_int_equal(routes_remember(r, "ag-a", col7, "collect-7", 9, 2000), 0);
    assert_int_equal(routes_remember(r, "ag-a", col8, "collect-8", 9, 1000), 0);
    assert_int_equal(routes_remember(r, "ag-a", cmd, "capsule", 7, 5000), 0);
    assert_int_equal(routes_pending(r, "ag-a"), 3);

    /* The agent answered collection 7; 8 expires before the reconnect. */
    routes_answered(r, "ag-a", col7);
    assert_int_equal(routes_pending(r, "ag-a"), 2);
    assert_true(routes_update(r, "ag-a", C2, 5));
    struct sent s = {0};
    assert_int_equal(routes_resend(r, "ag-a", 1500, record_send, &s), 1);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.envelopes[0], "capsule");
    assert_memory_equal(s.rid, C2, 5);
    assert_int_equal(routes_pending(r, "ag-a"), 1); /* still unanswered: kept */
    routes_answered(r, "ag-a", routes_key_command("cmd-0123456789abcdef"));
    assert_int_equal(routes_pending(r, "ag-a"), 0);
    s.n = 0;
    assert_int_equal(routes_resend(r, "ag-a", 1500, record_send, &s), 0);
    /* An agent never seen has nothing remembered. */
    assert_int_equal(routes_remember(r, "ag-z", col7, "x", 1, 9000), 0);
    assert_int_equal(routes_pending(r, "ag-z"), 0);
    routes_destroy(&r);
}

/* Counts what routes_resend hands over and keeps the first and the last envelope. */
struct tally {
    unsigned n;
    char first[16], last[16];
};

static int count_send(void *userdata, const uint8_t *rid, size_t rid_len, const void *envelope,
                      size_t len)
{
    struct tally *t = userdata;
    (void)rid;
    (void)rid_len;
    snprintf(t->n == 0 ? t->first : t->last, sizeof(t->first), "%.*s", (int)len,
             (const char *)envelope);
    if (t->n > 0)
        snprintf(t->last, sizeof(t->last), "%.*s", (int)len, (const char *)envelope);
    t->n++;
    return 0;
}

static void test_pending_is_bounded(void **state)
{
    (void)state;
    routes_t *r = routes_new();
    routes_update(r, "ag-a", C1, 5);
    char text[16];
    for (int i = 1; i <= ROUTES_PENDING_MAX + 5; i++) {
        snprintf(text, sizeof(text), "c%d", i);
        assert_int_equal(routes_remember(r, "ag-a", routes_key_collection((uint64_t)i), text,
                                         strlen(text), 9000),
                         0);
    }
    assert_int_equal(routes_pending(r, "ag-a"), ROUTES_PENDING_MAX);
    /* A request remembered again replaces its older copy (and becomes the newest). */
    assert_int_equal(routes_remember(r, "ag-a", routes_key_collection(10), "c10", 3, 9000), 0);
    assert_int_equal(routes_pending(r, "ag-a"), ROUTES_PENDING_MAX);
    routes_update(r, "ag-a", C2, 5);
    struct tally t = {0};
    assert_int_equal(routes_resend(r, "ag-a", 0, count_send, &t), ROUTES_PENDING_MAX);
    assert_int_equal(t.n, ROUTES_PENDING_MAX);
    assert_string_equal(t.first, "c6"); /* the five oldest went past the bound */
    assert_string_equal(t.last, "c10");
    routes_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_newest_connection_wins),
        cmocka_unit_test(test_unanswered_requests_go_again),
        cmocka_unit_test(test_pending_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
