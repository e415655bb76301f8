/*
 * Ed25519 signing keys: the coordinator signs command capsules with one, every operator signs
 * approvals with one (capsule.h). CURVE keys (keys.h) are X25519 and cannot sign, so each
 * signer holds a signing key beside its CURVE pair.
 *
 * A signing key file is YAML with standard, padded base64:
 *     signing-public-key: "<44 characters: 32 bytes>"
 *     signing-secret-key: "<88 characters: 64 bytes, libsodium's seed || public key>"
 * created with mode 0600 and never overwritten (-EEXIST). Loading refuses a file that group or
 * others may read or write (-EPERM, as keys.h does), a key that is not base64 of the right
 * size, and a public key (or the copy inside the secret key) that does not derive from the
 * secret's seed (-EINVAL): a file edited by hand must not sign as someone else.
 *
 * Public keys travel and are configured as base64 text (vg_sign_public_parse). Every function
 * may be called from any thread; libsodium is initialised on first use.
 */
#ifndef VG_SIGN_H
#define VG_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#define VG_SIGN_PUBLIC_LEN 32
#define VG_SIGN_SECRET_LEN 64
#define VG_SIGNATURE_LEN 64
#define VG_SIGN_PUBLIC_B64_LEN 44 /* base64 (standard, padded) of 32 bytes */
#define VG_SIGN_SECRET_B64_LEN 88 /* base64 (standard, padded) of 64 bytes */

struct vg_signing_key {
    unsigned char public_key[VG_SIGN_PUBLIC_LEN];
    unsigned char secret_key[VG_SIGN_SECRET_LEN];
    char public_b64[VG_SIGN_PUBLIC_B64_LEN + 1];
};

/* A new random key. 0, or -EIO when libsodium cannot be initialised. */
int vg_signing_key_generate(struct vg_signing_key *ret);

/* Writes k to a new file (mode 0600, O_EXCL: -EEXIST when path exists). 0 or negative errno
 * with err set. */
int vg_signing_key_save(const char *path, const struct vg_signing_key *k, char *err, size_t errlen);

/* Loads and checks a key file (see above). 0 or negative errno with err set; *ret is untouched
 * on failure. */
int vg_signing_key_load(const char *path, struct vg_signing_key *ret, char *err, size_t errlen);

/* Loads path if it exists, otherwise generates a key and saves it there; *ret_created says
 * which. */
int vg_signing_key_load_or_create(const char *path, struct vg_signing_key *ret, bool *ret_created,
                                  char *err, size_t errlen);

/* Zeroes the whole key (secret included). */
void vg_signing_key_wipe(struct vg_signing_key *k);

/* 0, or -EINVAL when text is not the base64 of exactly 32 bytes. Only the canonical text is
 * accepted (padding required, unused bits zero, no whitespace), so one key has one spelling. */
int vg_sign_public_parse(const char *text, unsigned char ret[VG_SIGN_PUBLIC_LEN]);

/* ret_b64: the canonical base64 text of a public key. */
void vg_sign_public_format(const unsigned char public_key[VG_SIGN_PUBLIC_LEN],
                           char ret_b64[VG_SIGN_PUBLIC_B64_LEN + 1]);

void vg_sign_detached(const struct vg_signing_key *k, const void *msg, size_t len,
                      unsigned char sig[VG_SIGNATURE_LEN]);

/* True when sig is k's signature of msg (libsodium's strict Ed25519 verification). */
bool vg_sign_verify(const unsigned char public_key[VG_SIGN_PUBLIC_LEN], const void *msg, size_t len,
                    const unsigned char sig[VG_SIGNATURE_LEN]);

#endif
