/*
 * Ed25519 signing keys and signatures on libsodium (see sign.h).
 *
 * The file checks, the creation of a new secret file and load-or-create are keys.c's, shared
 * with the CURVE key files; the file itself is read with the common config loader, so a
 * malformed one gets "file:line:col: message" errors like any other configuration file.
 */
#include "sign.h"

#include "config.h"
#include "keys.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#define KIND "signing key"

_Static_assert(crypto_sign_PUBLICKEYBYTES == VG_SIGN_PUBLIC_LEN, "Ed25519 public key size");
_Static_assert(crypto_sign_SECRETKEYBYTES == VG_SIGN_SECRET_LEN, "Ed25519 secret key size");
_Static_assert(crypto_sign_BYTES == VG_SIGNATURE_LEN, "Ed25519 signature size");
_Static_assert(sodium_base64_ENCODED_LEN(VG_SIGN_PUBLIC_LEN, sodium_base64_VARIANT_ORIGINAL) ==
                   VG_SIGN_PUBLIC_B64_LEN + 1,
               "base64 of a public key");
_Static_assert(sodium_base64_ENCODED_LEN(VG_SIGN_SECRET_LEN, sodium_base64_VARIANT_ORIGINAL) ==
                   VG_SIGN_SECRET_B64_LEN + 1,
               "base64 of a secret key");

/* sodium_init is idempotent and cheap once done; it selects the fast implementations and
 * seeds randombytes. */
static int sodium_ready(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

/* Decodes text that must be the canonical base64 of exactly len bytes. 0 or -EINVAL. */
static int b64_decode_exact(const char *text, unsigned char *ret, size_t len)
{
    size_t text_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL) - 1;
    size_t bin_len = 0;
    const char *end = NULL;

    if (!text || strnlen(text, text_len + 1) != text_len)
        return -EINVAL;
    if (sodium_base642bin(ret, len, text, text_len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        bin_len != len || end != text + text_len) {
        sodium_memzero(ret, len);
        return -EINVAL;
    }
    return 0;
}

int vg_sign_public_parse(const char *text, unsigned char ret[VG_SIGN_PUBLIC_LEN])
{
    unsigned char key[VG_SIGN_PUBLIC_LEN];

    if (sodium_ready() < 0 || b64_decode_exact(text, key, sizeof(key)) < 0)
        return -EINVAL;
    memcpy(ret, key, sizeof(key));
    return 0;
}

void vg_sign_public_format(const unsigned char public_key[VG_SIGN_PUBLIC_LEN],
                           char ret_b64[VG_SIGN_PUBLIC_B64_LEN + 1])
{
    sodium_bin2base64(ret_b64, VG_SIGN_PUBLIC_B64_LEN + 1, public_key, VG_SIGN_PUBLIC_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
}

int vg_signing_key_generate(struct vg_signing_key *ret)
{
    struct vg_signing_key k;

    if (sodium_ready() < 0)
        return -EIO;
    crypto_sign_keypair(k.public_key, k.secret_key);
    vg_sign_public_format(k.public_key, k.public_b64);
    *ret = k;
    sodium_memzero(&k, sizeof(k));
    return 0;
}

void vg_signing_key_wipe(struct vg_signing_key *k)
{
    sodium_memzero(k, sizeof(*k));
}

/* True when the public key and the secret key's copy of it both derive from its seed. */
static bool key_consistent(const unsigned char public_key[VG_SIGN_PUBLIC_LEN],
                           const unsigned char secret_key[VG_SIGN_SECRET_LEN])
{
    unsigned char seed[crypto_sign_SEEDBYTES];
    unsigned char derived_public[VG_SIGN_PUBLIC_LEN];
    unsigned char derived_secret[VG_SIGN_SECRET_LEN];
    bool same;

    crypto_sign_ed25519_sk_to_seed(seed, secret_key);
    crypto_sign_seed_keypair(derived_public, derived_secret, seed);
    same = sodium_memcmp(derived_public, public_key, VG_SIGN_PUBLIC_LEN) == 0 &&
           sodium_memcmp(derived_secret, secret_key, VG_SIGN_SECRET_LEN) == 0;
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(derived_secret, sizeof(derived_secret));
    return same;
}

int vg_signing_key_save(const char *path, const struct vg_signing_key *k, char *err, size_t errlen)
{
    char public_b64[VG_SIGN_PUBLIC_B64_LEN + 1];
    char secret_b64[VG_SIGN_SECRET_B64_LEN + 1];
    char text[384];
    int n, r;

    if (sodium_ready() < 0) {
        vg_set_err(err, errlen, KIND " file %s: cannot initialise libsodium", path);
        return -EIO;
    }
    if (!key_consistent(k->public_key, k->secret_key)) {
        vg_set_err(err, errlen, KIND " file %s: refusing to save an inconsistent key", path);
        return -EINVAL;
    }
    vg_sign_public_format(k->public_key, public_b64);
    sodium_bin2base64(secret_b64, sizeof(secret_b64), k->secret_key, VG_SIGN_SECRET_LEN,
                      sodium_base64_VARIANT_ORIGINAL);
    n = snprintf(text, sizeof(text),
                 "# Vigil Ed25519 signing key. Keep it secret (mode 0600): whoever holds the"
                 " secret key can sign commands and approvals as its owner.\n"
                 "signing-public-key: \"%s\"\n"
                 "signing-secret-key: \"%s\"\n",
                 public_b64, secret_b64);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        vg_set_err(err, errlen, KIND " file %s: internal error formatting the key file", path);
        r = -EINVAL;
        goto out_clear;
    }
    r = vg_secret_file_create(path, KIND, text, (size_t)n, err, errlen);

out_clear:
    sodium_memzero(secret_b64, sizeof(secret_b64));
    sodium_memzero(text, sizeof(text));
    return r;
}

struct signing_key_file {
    char *public_key;
    char *secret_key;
};

static const struct vg_cfg_key signing_key_file_keys[] = {
    {.path = "signing-public-key",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct signing_key_file, public_key),
     .min = 0,
     .max = VG_SIGN_PUBLIC_B64_LEN,
     .def = NULL,
     .required = true,
     .help = "base64 Ed25519 public key (32 bytes)"},
    {.path = "signing-secret-key",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct signing_key_file, secret_key),
     .min = 0,
     .max = VG_SIGN_SECRET_B64_LEN,
     .def = NULL,
     .required = true,
     .help = "base64 Ed25519 secret key (64 bytes: seed and public key)"},
};
#define SIGNING_KEY_FILE_NKEYS (sizeof(signing_key_file_keys) / sizeof(signing_key_file_keys[0]))

int vg_signing_key_load(const char *path, struct vg_signing_key *ret, char *err, size_t errlen)
{
    struct signing_key_file kf = {0};
    struct vg_signing_key k;
    int r;

    r = vg_secret_file_check_kind(path, KIND, err, errlen);
    if (r < 0)
        return r;
    if (sodium_ready() < 0) {
        vg_set_err(err, errlen, KIND " file %s: cannot initialise libsodium", path);
        return -EIO;
    }
    r = vg_config_load(path, signing_key_file_keys, SIGNING_KEY_FILE_NKEYS, &kf, err, errlen);
    if (r < 0)
        goto out_free;
    if (b64_decode_exact(kf.public_key, k.public_key, sizeof(k.public_key)) < 0) {
        vg_set_err(err, errlen,
                   KIND " file %s: signing-public-key is not the base64 of a 32-byte Ed25519 "
                        "public key",
                   path);
        r = -EINVAL;
        goto out_free;
    }
    if (b64_decode_exact(kf.secret_key, k.secret_key, sizeof(k.secret_key)) < 0) {
        vg_set_err(err, errlen,
                   KIND " file %s: signing-secret-key is not the base64 of a 64-byte Ed25519 "
                        "secret key",
                   path);
        r = -EINVAL;
        goto out_wipe;
    }
    if (!key_consistent(k.public_key, k.secret_key)) {
        vg_set_err(err, errlen,
                   KIND " file %s: signing-public-key does not match signing-secret-key", path);
        r = -EINVAL;
        goto out_wipe;
    }
    vg_sign_public_format(k.public_key, k.public_b64);
    *ret = k;
    r = 0;

out_wipe:
    sodium_memzero(&k, sizeof(k));
out_free:
    if (kf.secret_key)
        sodium_memzero(kf.secret_key, strlen(kf.secret_key));
    vg_config_free(signing_key_file_keys, SIGNING_KEY_FILE_NKEYS, &kf);
    return r;
}

/* vg_key_file_fn: a new signing key saved at path. */
static int signing_key_create(const char *path, void *ret, char *err, size_t errlen)
{
    struct vg_signing_key k;
    int r;

    r = vg_signing_key_generate(&k);
    if (r < 0) {
        vg_set_err(err, errlen, KIND " file %s: cannot generate an Ed25519 key: %s", path,
                   strerror(-r));
        return r;
    }
    r = vg_signing_key_save(path, &k, err, errlen);
    if (r == 0)
        *(struct vg_signing_key *)ret = k;
    vg_signing_key_wipe(&k);
    return r;
}

static int signing_key_load(const char *path, void *ret, char *err, size_t errlen)
{
    return vg_signing_key_load(path, ret, err, errlen);
}

int vg_signing_key_load_or_create(const char *path, struct vg_signing_key *ret, bool *ret_created,
                                  char *err, size_t errlen)
{
    return vg_key_file_load_or_create(path, KIND, signing_key_create, signing_key_load, ret,
                                      ret_created, err, errlen);
}

void vg_sign_detached(const struct vg_signing_key *k, const void *msg, size_t len,
                      unsigned char sig[VG_SIGNATURE_LEN])
{
    (void)sodium_ready(); /* signing needs no randomness: works either way */
    crypto_sign_detached(sig, NULL, msg, len, k->secret_key);
}

bool vg_sign_verify(const unsigned char public_key[VG_SIGN_PUBLIC_LEN], const void *msg, size_t len,
                    const unsigned char sig[VG_SIGNATURE_LEN])
{
    (void)sodium_ready();
    return crypto_sign_verify_detached(sig, msg, len, public_key) == 0;
}
