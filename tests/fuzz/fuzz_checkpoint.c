/*
 * Fuzz target: a checkpoint file as `vigilctl evidence verify --checkpoint FILE` and the
 * coordinator read it (common/checkpoint.c).
 *
 * Random bytes never carry a valid Ed25519 signature, so after parsing the input as it came the
 * target signs its first ten lines itself with a fixed key (adding that key's line and the
 * signature) and parses that too, which reaches the checks behind the signature.
 *
 * Oracles beyond "no crash, no sanitizer report": a checkpoint that parses has one spelling —
 * formatting what was parsed with the same key gives back the same bytes; a parsed checkpoint
 * names the key that signed it; changing any byte of the signed lines makes it fail.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "checkpoint.h"
#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vg_signing_key key;

static void init_key(void)
{
    static bool done;
    if (done)
        return;
    unsigned char seed[crypto_sign_SEEDBYTES] = {7};
    if (sodium_init() < 0 ||
        crypto_sign_seed_keypair(key.public_key, key.secret_key, seed) != 0)
        abort();
    vg_sign_public_format(key.public_key, key.public_b64);
    done = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_checkpoint cp;
    char err[256];
    init_key();
    (void)vg_checkpoint_parse((const char *)data, size, &cp, err, sizeof(err));

    /* The input's first ten lines (up to the last chain hash), then this key's line, signed. */
    char text[VG_CHECKPOINT_MAX_LEN * 2];
    size_t at = 0;
    for (int lines = 0; lines < 10 && at < size; at++)
        if (data[at] == '\n')
            lines++;
    int n = snprintf(text, sizeof(text), "%.*ssigning_public_key: %s\n", (int)at,
                     (const char *)data, key.public_b64);
    if (n < 0 || (size_t)n >= sizeof(text) - 100 || memchr(text, '\0', (size_t)n))
        return 0;
    unsigned char sig[VG_SIGNATURE_LEN];
    vg_sign_detached(&key, text, (size_t)n, sig);
    char b64[sodium_base64_ENCODED_LEN(VG_SIGNATURE_LEN, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    int m = snprintf(text + n, sizeof(text) - (size_t)n, "signature: %s\n", b64);
    size_t len = (size_t)n + (size_t)m;
    if (vg_checkpoint_parse(text, len, &cp, err, sizeof(err)) != 0)
        return 0;
    if (memcmp(cp.signing_public_key, key.public_key, VG_SIGN_PUBLIC_LEN) != 0)
        abort();
    char again[VG_CHECKPOINT_MAX_LEN];
    if (vg_checkpoint_format(&cp, &key, again, sizeof(again)) != 0 || strlen(again) != len ||
        memcmp(again, text, len) != 0)
        abort(); /* two spellings of one checkpoint */
    text[(size_t)n / 2] ^= 1;
    if (vg_checkpoint_parse(text, len, &cp, err, sizeof(err)) == 0)
        abort(); /* a changed signed byte still verified */
    return 0;
}
