/*
 * Fuzz target: each message type an agent or the coordinator receives inside the envelope, past
 * the decoder that fuzz_envelope covers (vg_envelope_decode with the bounds of common/wire.c),
 * through what the receiver does with the decoded body before anything else sees it:
 *   - durable bodies (signals, evidence chunks, command reports): the store's last check before a
 *     record is written (store_message_problem), which the router uses to refuse a record rather
 *     than fail a whole batch;
 *   - signals: the per-agent series bound (series_cap_filter, coordinator/ingest/series_cap.c),
 *     which removes samples from the decoded batch in place;
 *   - enroll: the agent's declared action catalog (catalog_from_enroll, ingest/catalog.c), turned
 *     into registry entries and the JSON the store keeps;
 *   - collect requests: the kind and its arguments as the agent's evidence module checks them;
 *   - acks: the ranges as the agent's spool applies them.
 * Command capsules have a target of their own (fuzz_capsule).
 *
 * Oracles beyond "no crash, no sanitizer report": the series bound removes exactly the samples
 * it reports, keeps at most its bound of new series per agent and, run again on what it let
 * through, removes nothing; a catalog has at most the entries declared, names and modes the
 * wire allows, and its JSON parses as an array of that length; a decoded message encodes again.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "series_cap.h"
#include "store.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SERIES_MAX 4

static void check_signals(Vigil__Envelope *env)
{
    series_cap_t *cap = series_cap_new(SERIES_MAX);
    if (!cap)
        abort();
    size_t before = env->signals->n_signals;
    bool first = false;
    size_t removed = series_cap_filter(cap, env->sender, env->signals, &first);
    if (removed > before || env->signals->n_signals != before - removed || (removed && !first))
        abort();
    /* Distinct series kept: at most the bound (the batch may repeat a series). */
    size_t kept = env->signals->n_signals;
    first = false;
    if (series_cap_filter(cap, env->sender, env->signals, &first) != 0 ||
        env->signals->n_signals != kept || first)
        abort();
    /* Another agent starts with a bound of its own. */
    series_cap_forget(cap, env->sender);
    if (series_cap_filter(cap, "another-agent", env->signals, &first) != 0)
        abort();
    series_cap_destroy(&cap);
}

static void check_enroll(const Vigil__Enroll *enroll)
{
    struct agent_action *actions = NULL;
    size_t n = 0, skipped = 0;
    char *json = NULL;
    if (catalog_from_enroll(enroll, &actions, &n, &json, &skipped) != 0)
        abort();
    /* skipped also counts evidence entries left out of a kept action. */
    if (n > enroll->n_actions || (n < enroll->n_actions && skipped == 0))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!vg_command_action_name_ok(actions[i].name) ||
            memchr(actions[i].kind, '\0', sizeof(actions[i].kind)) == NULL ||
            memchr(actions[i].params, '\0', sizeof(actions[i].params)) == NULL)
            abort();
    }
    json_error_t err;
    json_t *array = json_loads(json, 0, &err);
    if (!array || !json_is_array(array) || json_array_size(array) != n)
        abort();
    json_decref(array);
    free(json);
    free(actions);
}

static void check_collect(const Vigil__CollectRequest *req)
{
    if (!vg_evidence_kind_name_ok(req->kind))
        abort();
    const char *const *args = vg_evidence_kind_args(req->kind);
    if (vg_evidence_kind_known(req->kind) != (args != NULL))
        abort();
}

static void check_ack(const Vigil__Ack *ack)
{
    for (size_t i = 0; i < ack->n_ranges; i++) {
        if (ack->ranges[i]->first == 0 || ack->ranges[i]->first > ack->ranges[i]->last)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Vigil__Envelope *env = NULL;
    const char *why = NULL;

    if (vg_envelope_decode(data, size, &env, &why) != VG_DECODE_OK)
        return 0;
    switch (env->body_case) {
    case VIGIL__ENVELOPE__BODY_SIGNALS:
        (void)store_message_problem(env);
        check_signals(env);
        /* Whatever the bound removed, the rest is still a message the store can judge. */
        (void)store_message_problem(env);
        break;
    case VIGIL__ENVELOPE__BODY_EVIDENCE:
    case VIGIL__ENVELOPE__BODY_COMMAND_REPORT:
        (void)store_message_problem(env);
        break;
    case VIGIL__ENVELOPE__BODY_ENROLL:
        check_enroll(env->enroll);
        break;
    case VIGIL__ENVELOPE__BODY_COLLECT:
        check_collect(env->collect);
        break;
    case VIGIL__ENVELOPE__BODY_ACK:
        check_ack(env->ack);
        break;
    default:
        break;
    }
    uint8_t *buf;
    size_t len;
    if (vg_envelope_encode(env, &buf, &len) < 0)
        abort();
    free(buf);
    vg_envelope_free(env);
    return 0;
}
