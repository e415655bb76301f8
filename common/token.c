/* Bootstrap enrollment tokens: HMAC-SHA256(secret, Z85 public key text). See token.h. */
#include "token.h"

#include "keys.h"
#include "log.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

int vg_token_compute(const void *secret, size_t secret_len, const char *public_z85,
                     uint8_t ret_token[VG_TOKEN_LEN])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    /* An empty key would make every token computable by anyone. */
    if (!secret || secret_len == 0 || secret_len > INT_MAX)
        return -EINVAL;
    if (!vg_key_z85_valid(public_z85))
        return -EINVAL;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)public_z85,
              VG_KEY_Z85_LEN, mac, &mac_len) ||
        mac_len != VG_TOKEN_LEN) {
        vg_log(VG_LOG_DEBUG, "HMAC-SHA256 failed");
        return -EIO;
    }
    memcpy(ret_token, mac, VG_TOKEN_LEN);
    OPENSSL_cleanse(mac, sizeof(mac));
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
    ok = CRYPTO_memcmp(expected, token, VG_TOKEN_LEN) == 0;
    OPENSSL_cleanse(expected, sizeof(expected));
    return ok;
}

void vg_token_to_hex(const uint8_t token[VG_TOKEN_LEN], char ret_hex[VG_TOKEN_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < VG_TOKEN_LEN; i++) {
        ret_hex[2 * i] = hex[token[i] >> 4];
        ret_hex[2 * i + 1] = hex[token[i] & 0x0f];
    }
    ret_hex[VG_TOKEN_HEX_LEN] = '\0';
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
