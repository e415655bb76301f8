/*
 * SHA-256 and HMAC-SHA256 for every program, on libsodium by default.
 *
 * libsodium is already mapped by libzmq (CURVE), so hashing through it costs the agent no
 * extra library; OpenSSL's libcrypto alone would add about 3 MiB to every process. Its
 * SHA-256 is portable C, though (~230 MB/s here, where libcrypto's SHA-NI code does ~1.4 GB/s),
 * so the programs that hash whole artifacts and already map libcrypto through libpq and libcurl
 * (the coordinator, vigilctl) install a faster engine at start with vg_sha256_set_engine()
 * (digest_openssl.h). The digests are the same either way; only the speed differs.
 */
#ifndef VG_DIGEST_H
#define VG_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define VG_SHA256_LEN 32
#define VG_SHA256_HEX_LEN 64

/* A running SHA-256: libsodium's state, or the installed engine's context when it has one. */
struct vg_sha256 {
    crypto_hash_sha256_state state;
    void *engine_ctx;
};

/* Another implementation of the same SHA-256: begin returns a context (NULL when it cannot,
 * and libsodium takes that hash over), end writes the digest and frees the context. */
struct vg_sha256_engine {
    void *(*begin)(void);
    void (*update)(void *ctx, const void *data, size_t len);
    void (*end)(void *ctx, uint8_t out[VG_SHA256_LEN]);
    void (*oneshot)(const void *data, size_t len, uint8_t out[VG_SHA256_LEN]);
};

/* Installs engine (NULL: back to libsodium) for every later hash of the process. Call it at
 * start, before any thread hashes. */
void vg_sha256_set_engine(const struct vg_sha256_engine *engine);

/* init, then any number of updates, then exactly one of final or discard. */
void vg_sha256_init(struct vg_sha256 *h);
void vg_sha256_update(struct vg_sha256 *h, const void *data, size_t len);
void vg_sha256_final(struct vg_sha256 *h, uint8_t out[VG_SHA256_LEN]);
/* Ends a hash whose digest is no longer wanted (an error path), freeing what init took. */
void vg_sha256_discard(struct vg_sha256 *h);

/* One-shot SHA-256. */
void vg_sha256(const void *data, size_t len, uint8_t out[VG_SHA256_LEN]);

/* HMAC-SHA256 with a key of any length. */
void vg_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[VG_SHA256_LEN]);

/* Lowercase hex of len bytes into out (2 * len + 1 bytes). */
void vg_hex(const uint8_t *bytes, size_t len, char *out);

/* Constant-time comparison: 0 when equal. */
int vg_memcmp_ct(const void *a, const void *b, size_t len);

#endif
