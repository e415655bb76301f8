/*
 * Fuzz target: the envelope decoder an agent's or anyone's bytes reach first (vg_envelope_decode,
 * with the unknown-field caps of pbfilter.c), and vg_envelope_peek_seq.
 *
 * Oracles beyond "no crash, no sanitizer report": a decoded envelope encodes again; whenever
 * the unknown fields can be counted they can be stripped, and the stripped copy is no longer
 * than the input and has none left.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pbfilter.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Vigil__Envelope *env = NULL;
    const char *why = NULL;
    if (vg_envelope_decode(data, size, &env, &why) == VG_DECODE_OK) {
        uint8_t *buf;
        size_t len;
        if (vg_envelope_encode(env, &buf, &len) < 0)
            abort();
        free(buf);
        vg_envelope_free(env);
    }
    (void)vg_envelope_peek_seq(data, size);

    struct vg_pb_unknown unknown;
    if (vg_pb_count_unknown(&vigil__envelope__descriptor, data, size, &unknown) == 0) {
        uint8_t *known;
        size_t known_len;
        struct vg_pb_unknown left;
        if (vg_pb_strip_unknown(&vigil__envelope__descriptor, data, size, &known, &known_len) < 0)
            abort();
        if (known_len > size ||
            vg_pb_count_unknown(&vigil__envelope__descriptor, known, known_len, &left) < 0 ||
            left.fields != 0)
            abort();
        free(known);
    }
    return 0;
}
