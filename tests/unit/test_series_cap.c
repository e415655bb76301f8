/* coordinator/ingest/series_cap.c: known series always pass, new ones only up to the bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "series_cap.h"

/* A batch as the router has it: unpacked, every sample its own allocation. Sample i is
 * host.disk.used_pct{mount=/m<first + i>, fstype=ext4}, labels in the given order. */
static Vigil__SignalBatch *batch_of(int first, int n, bool fstype_first)
{
    Vigil__Signal sigs[16], *ptrs[16];
    Vigil__Label mount[16], fstype[16], *labels[16][2];
    char names[16][32];
    for (int i = 0; i < n; i++) {
        vigil__signal__init(&sigs[i]);
        vigil__label__init(&mount[i]);
        vigil__label__init(&fstype[i]);
        snprintf(names[i], sizeof(names[i]), "/m%d", first + i);
        mount[i].key = "mount";
        mount[i].value = names[i];
        fstype[i].key = "fstype";
        fstype[i].value = "ext4";
        labels[i][fstype_first ? 1 : 0] = &mount[i];
        labels[i][fstype_first ? 0 : 1] = &fstype[i];
        sigs[i].name = "host.disk.used_pct";
        sigs[i].labels = labels[i];
        sigs[i].n_labels = 2;
        ptrs[i] = &sigs[i];
    }
    Vigil__SignalBatch b = VIGIL__SIGNAL_BATCH__INIT;
    b.signals = ptrs;
    b.n_signals = (size_t)n;
    uint8_t buf[4096];
    size_t len = vigil__signal_batch__pack(&b, buf);
    return vigil__signal_batch__unpack(NULL, len, buf);
}

static void test_bound(void **unused)
{
    (void)unused;
    series_cap_t *cap = series_cap_new(3);
    bool first;

    Vigil__SignalBatch *b = batch_of(0, 5, false);
    assert_int_equal(series_cap_filter(cap, "ag-a", b, &first), 2);
    assert_true(first);
    assert_int_equal(b->n_signals, 3);
    assert_string_equal(b->signals[2]->labels[0]->value, "/m2");
    vigil__signal_batch__free_unpacked(b, NULL);

    /* The same series again, labels in another order: the three known pass, silently. */
    b = batch_of(0, 5, true);
    assert_int_equal(series_cap_filter(cap, "ag-a", b, &first), 2);
    assert_false(first);
    assert_int_equal(b->n_signals, 3);
    vigil__signal_batch__free_unpacked(b, NULL);

    /* Another agent has its own bound. */
    b = batch_of(0, 3, false);
    assert_int_equal(series_cap_filter(cap, "ag-b", b, &first), 0);
    vigil__signal_batch__free_unpacked(b, NULL);

    /* Forgotten: it starts again. */
    series_cap_forget(cap, "ag-a");
    b = batch_of(10, 3, false);
    assert_int_equal(series_cap_filter(cap, "ag-a", b, &first), 0);
    vigil__signal_batch__free_unpacked(b, NULL);
    series_cap_destroy(&cap);
    assert_null(cap);
}

static void test_many_series_grow(void **unused)
{
    (void)unused;
    series_cap_t *cap = series_cap_new(1000);
    bool first;
    size_t dropped = 0;
    for (int round = 0; round < 100; round++) { /* 1,600 distinct series, 16 at a time */
        Vigil__SignalBatch *b = batch_of(round * 16, 16, false);
        dropped += series_cap_filter(cap, "ag-a", b, &first);
        vigil__signal_batch__free_unpacked(b, NULL);
    }
    assert_int_equal(dropped, 600);
    series_cap_destroy(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_many_series_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
