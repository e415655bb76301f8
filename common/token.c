/* Bootstrap enrollment tokens: HMAC-SHA256(secret, Z85 public key text). See token.h. */
#include "token.h"

#include "digest.h"
#include "keys.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

int vg_token_compute(const void *secret, size_t secret_len, const char *public_z85,
                     uint8_t ret_token[VG_TOKEN_LEN])
{
    /* An empty key would make every token computable by anyone. */
    if (!secret || secret_len == 0 || secret_len > INT_MAX)
        return -EINVAL;
    if (!vg_key_z85_valid(public_z85))
        return -EINVAL;
    vg_hmac_sha256(secret, secret_len, public_z85, VG_KEY_Z85_LEN, ret_token);
    return 0;
}

bool vg_token_verify(const void *secret, size_t secret_len, const char *public_z85,
                     const uint8_t *token, size_t token_len)
{
    uint8_t expected[VG_TOKEN_LEN];
    bool ok;

    if (!token || token_len != VG_TOKEN_LEN)
        return false;
    if (vg_token_compute(secret, secret_len, public_z85, expected) < 0)
        return false;
    ok = vg_memcmp_ct(expected, token, VG_TOKEN_LEN) == 0;
    sodium_memzero(expected, sizeof(expected));
    return ok;
}

void vg_token_to_hex(const uint8_t token[VG_TOKEN_LEN], char ret_hex[VG_TOKEN_HEX_LEN + 1])
{
    vg_hex(token, VG_TOKEN_LEN, ret_hex);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int vg_token_from_hex(const char *hex, uint8_t ret_token[VG_TOKEN_LEN])
{
    uint8_t token[VG_TOKEN_LEN];

    if (!hex || strnlen(hex, VG_TOKEN_HEX_LEN + 1) != VG_TOKEN_HEX_LEN)
        return -EINVAL;
    for (size_t i = 0; i < VG_TOKEN_LEN; i++) {
        int hi = hex_digit(hex[2 * i]);
        int lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        token[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(ret_token, token, VG_TOKEN_LEN);
    return 0;
}
