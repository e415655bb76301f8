/*
 * coordinator/admin: the command tables. Every request body the protocol defines has exactly
 * one entry, with the role the documentation promises (viewer reads, responder acts on
 * incidents and evidence, admin manages agents), and a handler; each entry's field checks
 * refuse what is out of bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin_internal.h"
#include "keys.h"
#include "sign.h"
#include "wire.h"

struct expected_role {
    Vigil__AdminRequest__BodyCase body;
    enum operator_role role;
};

static const struct expected_role expected[] = {
    {VIGIL__ADMIN_REQUEST__BODY_LIST_AGENTS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_APPROVE_AGENT, ROLE_ADMIN},
    {VIGIL__ADMIN_REQUEST__BODY_REVOKE_AGENT, ROLE_ADMIN},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_SIGNALS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_COLLECT, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_EVIDENCE, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_GET_EVIDENCE, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_VERIFY_EVIDENCE, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_INCIDENTS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_SHOW_INCIDENT, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_ACK_INCIDENT, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_MITIGATE_INCIDENT, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_RESOLVE_INCIDENT, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_PUT_INCIDENT_REPORT, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_GET_INCIDENT_REPORT, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_ESCALATE_INCIDENT, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_NOTIFICATIONS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_TAIL_INCIDENTS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_ONCALL, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_ADD_ONCALL_OVERRIDE, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_OPERATORS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_ADD_OPERATOR, ROLE_ADMIN},
    {VIGIL__ADMIN_REQUEST__BODY_REVOKE_OPERATOR, ROLE_ADMIN},
    {VIGIL__ADMIN_REQUEST__BODY_ROTATE_OPERATOR_KEYS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_RUN_COMMAND, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_APPROVE_COMMAND, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_CANCEL_COMMAND, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_COMMANDS, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_SHOW_COMMAND, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_SHOW_AUTOMATION, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_SET_AUTOMATION, ROLE_ADMIN},
    {VIGIL__ADMIN_REQUEST__BODY_ADD_SILENCE, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_SILENCES, ROLE_VIEWER},
    {VIGIL__ADMIN_REQUEST__BODY_END_SILENCE, ROLE_RESPONDER},
    /* issue 18: a viewer cannot open, note, update or publish */
    {VIGIL__ADMIN_REQUEST__BODY_OPEN_INCIDENT, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_SET_INCIDENT_SEVERITY, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_ADD_INCIDENT_NOTE, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_POST_STATUS_UPDATE, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_GET_STATUS_PAGE, ROLE_VIEWER},
    /* issue 17: a drill pages people (its live form checks admin in its handler) */
    {VIGIL__ADMIN_REQUEST__BODY_RUN_DRILL, ROLE_RESPONDER},
    /* issue 15: a checkpoint holds only hashes */
    {VIGIL__ADMIN_REQUEST__BODY_GET_CHECKPOINT, ROLE_VIEWER},
    /* issue 15: an export bundle carries the artifacts' content */
    {VIGIL__ADMIN_REQUEST__BODY_EXPORT_INCIDENT, ROLE_RESPONDER},
    /* issue 18: follow-up actions (a viewer can list them, not add or finish them) */
    {VIGIL__ADMIN_REQUEST__BODY_ADD_FOLLOWUP, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_FINISH_FOLLOWUP, ROLE_RESPONDER},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_FOLLOWUPS, ROLE_VIEWER},
    /* issue 15: a legal hold overrides the configured retention: admin only; listing is not */
    {VIGIL__ADMIN_REQUEST__BODY_PLACE_HOLD, ROLE_ADMIN},
    {VIGIL__ADMIN_REQUEST__BODY_RELEASE_HOLD, ROLE_ADMIN},
    {VIGIL__ADMIN_REQUEST__BODY_LIST_HOLDS, ROLE_VIEWER},
};

/* Every field of AdminRequest's body oneof, from the descriptor: a request added to the proto
 * without an entry in a table fails here. */
static void test_every_request_has_one_entry(void **unused)
{
    (void)unused;
    const ProtobufCMessageDescriptor *d = &vigil__admin_request__descriptor;
    size_t bodies = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        bodies++;
        const struct admin_command *cmd = admin_command_find((Vigil__AdminRequest__BodyCase)f->id);
        if (!cmd)
            fail_msg("request %s (%u) has no entry in the admin command tables", f->name, f->id);
        assert_non_null(cmd->handle);
        assert_non_null(cmd->what);
        bool listed = false;
        for (size_t k = 0; k < sizeof(expected) / sizeof(expected[0]); k++) {
            if (expected[k].body != cmd->body)
                continue;
            listed = true;
            if (cmd->role != expected[k].role)
                fail_msg("request %s needs role %d, expected %d", f->name, cmd->role,
                         expected[k].role);
        }
        if (!listed)
            fail_msg("request %s: add its expected role to this test", f->name);
    }
    assert_int_equal(bodies, sizeof(expected) / sizeof(expected[0]));
}

/* No request is answered twice: the tables do not overlap. */
static void test_tables_do_not_overlap(void **unused)
{
    (void)unused;
    const struct admin_command *const tables[] = {
        admin_agent_commands,    admin_signal_commands, admin_evidence_commands,
        admin_incident_commands, admin_paging_commands, admin_operator_commands,
        admin_silence_commands,
    };
    size_t n = sizeof(tables) / sizeof(tables[0]);
    for (size_t a = 0; a < n; a++)
        for (const struct admin_command *x = tables[a]; x->body; x++)
            for (size_t b = 0; b < n; b++)
                for (const struct admin_command *y = tables[b]; y->body; y++)
                    if (x != y && x->body == y->body)
                        fail_msg("request %d has two entries", x->body);
    assert_null(admin_command_find(VIGIL__ADMIN_REQUEST__BODY__NOT_SET));
}

/* A reply releases what it owns, newest first, and says so when it cannot own more. */
static int released[4], nreleased;
static void note_release(void *ptr)
{
    released[nreleased++] = *(int *)ptr;
}

static void test_reply_owns_its_memory(void **unused)
{
    (void)unused;
    struct reply rep;
    memset(&rep, 0, sizeof(rep));
    static int one = 1, two = 2, three = 3;
    assert_ptr_equal(reply_own(&rep, &one, note_release), &one);
    assert_ptr_equal(reply_own(&rep, &two, note_release), &two);
    assert_null(reply_own(&rep, NULL, note_release)); /* nothing to own */
    assert_ptr_equal(reply_own(&rep, &three, note_release), &three);
    reply_release(&rep);
    assert_int_equal(nreleased, 3);
    assert_int_equal(released[0], 3);
    assert_int_equal(released[2], 1);
    assert_null(rep.owned);
}

/* A request as it crosses the wire: encoded, decoded (vg_admin_request_decode: version and a
 * known body) and checked by its table entry (the fields). */
static enum vg_decode_error decode_admin(Vigil__AdminRequest *req, const char **reason)
{
    req->version = VG_PROTOCOL_VERSION;
    size_t len = vigil__admin_request__get_packed_size(req);
    uint8_t *buf = malloc(len);
    vigil__admin_request__pack(req, buf);
    Vigil__AdminRequest *out = NULL;
    const char *why = NULL;
    enum vg_decode_error e = vg_admin_request_decode(buf, len, &out, &why);
    if (e == VG_DECODE_OK)
        e = admin_request_check(out, &why);
    if (out)
        vigil__admin_request__free_unpacked(out, NULL);
    free(buf);
    if (reason)
        *reason = why;
    return e;
}

static void test_admin_evidence_requests_strict(void **state)
{
    (void)state;
    const char *reason = NULL;
    Vigil__Label arg = VIGIL__LABEL__INIT;
    arg.key = "path";
    arg.value = "/var/log/syslog";
    Vigil__Label *args[VG_MAX_EVIDENCE_ARGS + 1];
    for (size_t i = 0; i < VG_MAX_EVIDENCE_ARGS + 1; i++)
        args[i] = &arg;
    Vigil__Collect collect = VIGIL__COLLECT__INIT;
    collect.node = "node-a";
    collect.kind = "file";
    collect.args = args;
    collect.n_args = 1;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_COLLECT;
    req.collect = &collect;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    collect.n_args = VG_MAX_EVIDENCE_ARGS + 1;
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "16 arguments"));
    collect.n_args = 1;
    collect.kind = "";
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);

    Vigil__GetEvidence get = VIGIL__GET_EVIDENCE__INIT;
    get.id = 1;
    get.offset = (uint64_t)VG_MAX_EVIDENCE_BYTES + 1;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_GET_EVIDENCE;
    req.get_evidence = &get;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);
    get.offset = 0;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);

    char long_node[VG_MAX_NAME_LEN + 2];
    memset(long_node, 'n', sizeof(long_node) - 1);
    long_node[sizeof(long_node) - 1] = '\0';
    Vigil__ListEvidence list = VIGIL__LIST_EVIDENCE__INIT;
    list.node = long_node;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_EVIDENCE;
    req.list_evidence = &list;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);
    list.node = "node-a";
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
}

/* The incident and paging requests: ids required, bounded text, the verify step's pair. */
static void test_admin_incident_requests_strict(void **state)
{
    (void)state;
    const char *reason = NULL;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;

    Vigil__MitigateIncident mit = VIGIL__MITIGATE_INCIDENT__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_MITIGATE_INCIDENT;
    req.mitigate_incident = &mit;
    mit.note = "traffic moved";
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS); /* id 0 */
    mit.id = 7;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    char long_note[VG_MAX_VALUE_LEN + 2];
    memset(long_note, 'x', sizeof(long_note) - 1);
    long_note[sizeof(long_note) - 1] = '\0';
    mit.note = long_note;
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "1024 bytes"));

    Vigil__PutIncidentReport put = VIGIL__PUT_INCIDENT_REPORT__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_PUT_INCIDENT_REPORT;
    req.put_incident_report = &put;
    put.id = 7;
    put.body = "# Incident Report: 7";
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    char *big = malloc(VG_MAX_REPORT_BYTES + 2);
    assert_non_null(big);
    memset(big, 'r', VG_MAX_REPORT_BYTES + 1);
    big[VG_MAX_REPORT_BYTES + 1] = '\0';
    put.body = big;
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "256 KiB"));
    free(big);

    Vigil__TailIncidents tail = VIGIL__TAIL_INCIDENTS__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_TAIL_INCIDENTS;
    req.tail_incidents = &tail;
    tail.limit = 1000;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    tail.limit = 1001;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);

    Vigil__EscalateIncident esc = VIGIL__ESCALATE_INCIDENT__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ESCALATE_INCIDENT;
    req.escalate_incident = &esc;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);
    esc.id = 3;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);

    Vigil__ListNotifications notes = VIGIL__LIST_NOTIFICATIONS__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_NOTIFICATIONS;
    req.list_notifications = &notes;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);
    notes.id = 3;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);

    /* Verify continues from a row id only together with that row's 32-byte chain hash. */
    uint8_t chain[32] = {0};
    Vigil__VerifyEvidence verify = VIGIL__VERIFY_EVIDENCE__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_VERIFY_EVIDENCE;
    req.verify_evidence = &verify;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    verify.after_id = 5;
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "after_chain"));
    verify.after_chain.data = chain;
    verify.after_chain.len = 31;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);
    verify.after_chain.len = 32;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    verify.after_id = 0;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS); /* a chain without an id */
}

/* Operators: names people can type and read, known roles, keys in their one spelling. */
static void test_admin_operator_requests_strict(void **state)
{
    (void)state;
    const char *reason = NULL;
    struct vg_keypair kp;
    struct vg_signing_key sk;
    assert_int_equal(vg_keypair_generate(&kp), 0);
    assert_int_equal(vg_signing_key_generate(&sk), 0);
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;

    Vigil__AddOperator add = VIGIL__ADD_OPERATOR__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ADD_OPERATOR;
    req.add_operator = &add;
    add.name = "bob.smith@oncall";
    add.role = "responder";
    add.public_key = kp.public_key;
    add.signing_key = sk.public_b64;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    add.name = "bob smith"; /* would not read as one key=value in a log line */
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "name"));
    add.name = "";
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);
    add.name = "bob";
    add.role = "root";
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "role"));
    add.role = "viewer";
    add.public_key = sk.public_b64; /* the keys swapped */
    add.signing_key = kp.public_key;
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "public_key"));
    add.public_key = kp.public_key;
    assert_int_equal(decode_admin(&req, &reason), VG_DECODE_LIMITS);
    assert_non_null(strstr(reason, "signing_key"));
    char unpadded[VG_SIGN_PUBLIC_B64_LEN + 1];
    memcpy(unpadded, sk.public_b64, sizeof(unpadded));
    unpadded[VG_SIGN_PUBLIC_B64_LEN - 1] = '\0'; /* base64 without its '=' */
    add.signing_key = unpadded;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);

    Vigil__RotateOperatorKeys rot = VIGIL__ROTATE_OPERATOR_KEYS__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ROTATE_OPERATOR_KEYS;
    req.rotate_operator_keys = &rot;
    rot.public_key = kp.public_key;
    rot.signing_key = sk.public_b64;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    rot.signing_key = "";
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS);

    Vigil__RevokeOperator revoke = VIGIL__REVOKE_OPERATOR__INIT;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_REVOKE_OPERATOR;
    req.revoke_operator = &revoke;
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_LIMITS); /* no name */
    revoke.name = "Alice O'Brien"; /* an operator from before names were checked can go */
    assert_int_equal(decode_admin(&req, NULL), VG_DECODE_OK);
    vg_signing_key_wipe(&sk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_request_has_one_entry),
        cmocka_unit_test(test_tables_do_not_overlap),
        cmocka_unit_test(test_reply_owns_its_memory),
        cmocka_unit_test(test_admin_evidence_requests_strict),
        cmocka_unit_test(test_admin_operator_requests_strict),
        cmocka_unit_test(test_admin_incident_requests_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
