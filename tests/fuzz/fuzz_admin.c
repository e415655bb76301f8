/*
 * Fuzz target: an operator's request as the coordinator's admin socket reads it, and the reply
 * as vigilctl reads it: vg_admin_request_decode (common/wire.c: size, protobuf, version, a known
 * body), then the field check of the request's entry in the admin command tables
 * (admin_request_check, the tables in coordinator/admin/), which admin_dispatch runs before the
 * role check and the handler; and vg_admin_reply_decode on the same bytes.
 *
 * Oracles beyond "no crash, no sanitizer report": a request that decodes has a body; every body
 * the decoder lets through either has an entry with a role and a handler or is refused as
 * unknown; a refusal says why; a request that passes its check encodes again (without its unknown
 * fields), and decodes and passes again from its own encoding (the check does not depend on how
 * the bytes were laid out).
 */
#include <stdint.h>
#include <stdlib.h>

#include "admin_internal.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Vigil__AdminRequest *req = NULL;
    const char *why = NULL;

    if (vg_admin_request_decode(data, size, &req, &why) == VG_DECODE_OK) {
        if (req->body_case == VIGIL__ADMIN_REQUEST__BODY__NOT_SET)
            abort();
        const struct admin_command *cmd = admin_command_find(req->body_case);
        why = NULL;
        enum vg_decode_error e = admin_request_check(req, &why);
        if (cmd == NULL) {
            if (e != VG_DECODE_UNKNOWN_TYPE || !why)
                abort();
        } else if (!cmd->handle || !cmd->what) {
            abort();
        } else if (e != VG_DECODE_OK) {
            if (e != VG_DECODE_LIMITS || !why)
                abort();
        } else {
            /* Without the unknown fields: protobuf-c keeps some that it cannot read back (a
             * field number 0 in an overlong varint tag is accepted, and packed as a tag 0). */
            unsigned n_unknown = req->base.n_unknown_fields;
            req->base.n_unknown_fields = 0;
            size_t len = vigil__admin_request__get_packed_size(req);
            uint8_t *buf = malloc(len ? len : 1);
            if (!buf)
                abort();
            vigil__admin_request__pack(req, buf);
            req->base.n_unknown_fields = n_unknown;
            Vigil__AdminRequest *again = NULL;
            if (vg_admin_request_decode(buf, len, &again, &why) != VG_DECODE_OK ||
                admin_request_check(again, &why) != VG_DECODE_OK)
                abort();
            vigil__admin_request__free_unpacked(again, NULL);
            free(buf);
        }
        vigil__admin_request__free_unpacked(req, NULL);
    }

    Vigil__AdminReply *rep = NULL;
    if (vg_admin_reply_decode(data, size, &rep, &why) == VG_DECODE_OK)
        vigil__admin_reply__free_unpacked(rep, NULL);
    return 0;
}
