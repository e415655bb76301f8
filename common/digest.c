/* SHA-256 and HMAC-SHA256 on libsodium, or on an installed engine (see digest.h). */
#include "digest.h"

/* Set once at start, before any other thread runs; read-only afterwards. */
static const struct vg_sha256_engine *engine;

void vg_sha256_set_engine(const struct vg_sha256_engine *e)
{
    engine = e;
}

void vg_sha256_init(struct vg_sha256 *h)
{
    h->engine_ctx = engine ? engine->begin() : NULL;
    if (!h->engine_ctx)
        crypto_hash_sha256_init(&h->state);
}

void vg_sha256_update(struct vg_sha256 *h, const void *data, size_t len)
{
    if (h->engine_ctx)
        engine->update(h->engine_ctx, data, len);
    else
        crypto_hash_sha256_update(&h->state, data, len);
}

void vg_sha256_final(struct vg_sha256 *h, uint8_t out[VG_SHA256_LEN])
{
    if (h->engine_ctx)
        engine->end(h->engine_ctx, out);
    else
        crypto_hash_sha256_final(&h->state, out);
    h->engine_ctx = NULL;
}

void vg_sha256_discard(struct vg_sha256 *h)
{
    if (h->engine_ctx) {
        uint8_t ignored[VG_SHA256_LEN];
        vg_sha256_final(h, ignored);
    }
}

void vg_sha256(const void *data, size_t len, uint8_t out[VG_SHA256_LEN])
{
    if (engine)
        engine->oneshot(data, len, out);
    else
        crypto_hash_sha256(out, data, len);
}

void vg_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[VG_SHA256_LEN])
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, data, len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof(st));
}

void vg_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * len] = '\0';
}

int vg_memcmp_ct(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len);
}
