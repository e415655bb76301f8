/*
 * SHA-256 and HMAC-SHA256 for every program, on libsodium.
 *
 * libsodium is already mapped by libzmq (CURVE), so hashing through it costs the agent no
 * extra library; OpenSSL's libcrypto alone would add about 3 MiB to every process.
 */
#ifndef VG_DIGEST_H
#define VG_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define VG_SHA256_LEN 32
#define VG_SHA256_HEX_LEN 64

struct vg_sha256 {
    crypto_hash_sha256_state state;
};

void vg_sha256_init(struct vg_sha256 *h);
void vg_sha256_update(struct vg_sha256 *h, const void *data, size_t len);
void vg_sha256_final(struct vg_sha256 *h, uint8_t out[VG_SHA256_LEN]);

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
