/*
 * Bootstrap enrollment tokens: HMAC-SHA256(enrollment secret, Z85 public key text).
 * An agent that presents a valid token for its own key is admitted at once; the secret
 * itself never crosses the wire.
 */
#ifndef VG_TOKEN_H
#define VG_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_TOKEN_LEN 32
#define VG_TOKEN_HEX_LEN 64

int vg_token_compute(const void *secret, size_t secret_len, const char *public_z85,
                     uint8_t ret_token[VG_TOKEN_LEN]);

/* Constant-time comparison; false for a wrong length. */
bool vg_token_verify(const void *secret, size_t secret_len, const char *public_z85,
                     const uint8_t *token, size_t token_len);

void vg_token_to_hex(const uint8_t token[VG_TOKEN_LEN], char ret_hex[VG_TOKEN_HEX_LEN + 1]);

/* Returns 0, or -EINVAL when hex is not exactly 64 hex digits. */
int vg_token_from_hex(const char *hex, uint8_t ret_token[VG_TOKEN_LEN]);

#endif
