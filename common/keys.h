/*
 * CURVE key pairs and key files.
 *
 * A key file is YAML with Z85-encoded keys:
 *     public-key: "<40 chars>"
 *     secret-key: "<40 chars>"
 * Files holding a secret key must be mode 0600 or stricter: a file readable or writable by
 * group or others is refused (-EPERM), because a leaked secret key lets anyone act as its owner.
 */
#ifndef VG_KEYS_H
#define VG_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define VG_KEY_Z85_LEN 40
#define VG_AGENT_ID_LEN 19 /* "ag-" + 16 hex digits */

struct vg_keypair {
    char public_key[VG_KEY_Z85_LEN + 1];
    char secret_key[VG_KEY_Z85_LEN + 1];
};

/* True when text is exactly 40 Z85 characters that decode to 32 bytes. */
bool vg_key_z85_valid(const char *text);

int vg_keypair_generate(struct vg_keypair *ret);

/* Creates path with mode 0600 (refuses to overwrite: -EEXIST). Returns 0 or negative errno. */
int vg_keypair_save(const char *path, const struct vg_keypair *kp, char *err, size_t errlen);

/* Loads and validates; refuses files with group/other permission bits (-EPERM). */
int vg_keypair_load(const char *path, struct vg_keypair *ret, char *err, size_t errlen);

/* Loads path if it exists, otherwise generates a pair and saves it. *ret_created tells which. */
int vg_keypair_load_or_create(const char *path, struct vg_keypair *ret, bool *ret_created,
                              char *err, size_t errlen);

/* 0 if path is a regular file without group/other permission bits, -EPERM otherwise. */
int vg_secret_file_check(const char *path, char *err, size_t errlen);

/*
 * Shared by every kind of key file (CURVE pairs here, Ed25519 signing keys in sign.h); kind
 * names the file in messages ("key file ...", "signing key file ...").
 *
 * vg_secret_file_check_kind: vg_secret_file_check, naming the file as kind.
 * vg_secret_file_create: creates path with mode 0600 (O_EXCL: -EEXIST when it exists) holding
 * len bytes of text, synced with its directory; on failure nothing is left behind.
 * vg_key_file_load_or_create: loads path with load if it exists, otherwise makes it with create
 * (which generates, saves and fills ret); a file another process created meanwhile is loaded.
 * Both callbacks leave ret untouched on failure.
 */
typedef int (*vg_key_file_fn)(const char *path, void *ret, char *err, size_t errlen);
int vg_secret_file_check_kind(const char *path, const char *kind, char *err, size_t errlen);
int vg_secret_file_create(const char *path, const char *kind, const void *text, size_t len,
                          char *err, size_t errlen);
int vg_key_file_load_or_create(const char *path, const char *kind, vg_key_file_fn create,
                               vg_key_file_fn load, void *ret, bool *ret_created, char *err,
                               size_t errlen);

/* Reads a whole secret file (checked with vg_secret_file_check), trailing newlines stripped.
 * *ret is malloc'd and NUL-terminated. */
int vg_secret_file_read(const char *path, char **ret, size_t *ret_len, char *err, size_t errlen);

/* Agent id: "ag-" + first 16 hex digits of SHA-256 over the Z85 public key text. */
void vg_agent_id_from_key(const char *public_z85, char ret_id[VG_AGENT_ID_LEN + 1]);

#endif
