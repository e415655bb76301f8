/*
 * Fuzz target: the Alertmanager webhook payload (alertmanager_parse in
 * coordinator/incidents/alertmanager.c), the body anyone who can reach the coordinator's HTTP
 * port may POST, and the RFC 3339 times inside it (alertmanager_parse_time).
 *
 * Oracles beyond "no crash, no sanitizer report": a refused payload leaves an empty batch and
 * says why (MALFORMED or VERSION, with a reason); an accepted one holds alerts whose text fields
 * are terminated and within the wire's bounds, named "alert.<...>", with a labels object that is
 * valid JSON; alerts kept plus alerts skipped never exceed what the payload can hold.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alertmanager.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS INT64_C(1790000000000)

static void check_text(const char *field, size_t cap)
{
    if (memchr(field, '\0', cap) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct am_batch batch = {0};
    enum am_refusal refusal = AM_REFUSE_NONE;
    char reason[256] = "";

    int r = alertmanager_parse((const char *)data, size, NOW_MS, &batch, &refusal, reason,
                               sizeof(reason));
    if (r != 0) {
        if (r != -EINVAL || (refusal != AM_REFUSE_MALFORMED && refusal != AM_REFUSE_VERSION) ||
            reason[0] == '\0' || batch.n != 0)
            abort();
        (void)am_refusal_name(refusal);
    } else {
        for (size_t i = 0; i < batch.n; i++) {
            const struct am_alert *a = &batch.alerts[i];
            check_text(a->name, sizeof(a->name));
            check_text(a->fingerprint, sizeof(a->fingerprint));
            check_text(a->node, sizeof(a->node));
            if (strncmp(a->name, "alert.", 6) != 0 || !vg_utf8_valid(a->name) ||
                !vg_utf8_valid(a->node) || a->labels_json == NULL)
                abort();
            json_error_t err;
            json_t *labels = json_loads(a->labels_json, 0, &err);
            if (!labels || !json_is_object(labels))
                abort();
            json_decref(labels);
        }
    }
    am_batch_clear(&batch);

    /* The time parser on its own, NUL-terminated. */
    if (size < 128) {
        char text[128];
        memcpy(text, data, size);
        text[size] = '\0';
        int64_t ms;
        (void)alertmanager_parse_time(text, &ms);
    }
    return 0;
}
