/*
 * CURVE key pairs and secret files (see keys.h).
 *
 * Key files are parsed with the common config loader, so a malformed key file gets the same
 * "file:line:col: message" errors as any other configuration file.
 */
#include "keys.h"

#include "digest.h"

#include "config.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define SECRET_FILE_MAX (64 * 1024)
#define Z85_DECODED_LEN 32

static const char z85_alphabet[] = "0123456789"
                                   "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";

bool vg_key_z85_valid(const char *text)
{
    uint8_t decoded[Z85_DECODED_LEN];

    if (!text || strnlen(text, VG_KEY_Z85_LEN + 1) != VG_KEY_Z85_LEN)
        return false;
    /* Check the alphabet and that every 5-character group fits in 32 bits ourselves: not
     * every libzmq version rejects these in zmq_z85_decode. */
    for (size_t i = 0; i < VG_KEY_Z85_LEN; i += 5) {
        uint64_t group = 0;
        for (size_t j = 0; j < 5; j++) {
            const char *p = memchr(z85_alphabet, text[i + j], sizeof(z85_alphabet) - 1);
            if (!p || text[i + j] == '\0')
                return false;
            group = group * 85 + (uint64_t)(p - z85_alphabet);
        }
        if (group > UINT32_MAX)
            return false;
    }
    return zmq_z85_decode(decoded, text) != NULL;
}

int vg_keypair_generate(struct vg_keypair *ret)
{
    struct vg_keypair kp;

    errno = 0;
    if (zmq_curve_keypair(kp.public_key, kp.secret_key) != 0) {
        int r = errno ? -errno : -EIO;
        vg_log(VG_LOG_DEBUG, "zmq_curve_keypair failed: %s", zmq_strerror(-r));
        return r;
    }
    *ret = kp;
    sodium_memzero(&kp, sizeof(kp));
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *buf = data;

    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes the new directory entry durable; best effort (some filesystems refuse it). */
static void fsync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    int fd;

    if (!copy)
        return;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

int vg_secret_file_create(const char *path, const char *kind, const void *text, size_t len,
                          char *err, size_t errlen)
{
    int fd, r;

    fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = -errno;
        if (r == -EEXIST)
            vg_set_err(err, errlen, "%s file %s already exists; refusing to overwrite it", kind,
                       path);
        else
            vg_set_err(err, errlen, "%s file %s: cannot create: %s", kind, path, strerror(-r));
        return r;
    }
    /* The umask may have removed bits; make sure the owner can read the key back. */
    if (fchmod(fd, 0600) < 0) {
        r = -errno;
        vg_set_err(err, errlen, "%s file %s: cannot set mode 0600: %s", kind, path, strerror(-r));
        goto err_unlink;
    }
    r = write_all(fd, text, len);
    if (r < 0) {
        vg_set_err(err, errlen, "%s file %s: cannot write: %s", kind, path, strerror(-r));
        goto err_unlink;
    }
    if (fsync(fd) < 0) {
        r = -errno;
        vg_set_err(err, errlen, "%s file %s: cannot sync: %s", kind, path, strerror(-r));
        goto err_unlink;
    }
    if (close(fd) < 0) {
        fd = -1;
        r = -errno;
        vg_set_err(err, errlen, "%s file %s: cannot close: %s", kind, path, strerror(-r));
        goto err_unlink;
    }
    fsync_parent_dir(path);
    vg_log(VG_LOG_DEBUG, "%s file saved path=%s", kind, path);
    return 0;

err_unlink:
    if (fd >= 0)
        close(fd);
    unlink(path); /* we created it (O_EXCL): do not leave a partial key file behind */
    return r;
}

int vg_keypair_save(const char *path, const struct vg_keypair *kp, char *err, size_t errlen)
{
    char text[256];
    int n, r;

    if (!vg_key_z85_valid(kp->public_key) || !vg_key_z85_valid(kp->secret_key)) {
        vg_set_err(err, errlen, "key file %s: refusing to save an invalid key pair", path);
        return -EINVAL;
    }
    n = snprintf(text, sizeof(text),
                 "# Vigil CURVE key pair. Keep it secret (mode 0600): whoever holds the secret key"
                 " can act as its owner.\n"
                 "public-key: \"%s\"\n"
                 "secret-key: \"%s\"\n",
                 kp->public_key, kp->secret_key);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        vg_set_err(err, errlen, "key file %s: internal error formatting the key file", path);
        r = -EINVAL;
        goto out_clear_text;
    }
    r = vg_secret_file_create(path, "key", text, (size_t)n, err, errlen);

out_clear_text:
    sodium_memzero(text, sizeof(text));
    return r;
}

int vg_secret_file_check_kind(const char *path, const char *kind, char *err, size_t errlen)
{
    struct stat st;
    mode_t mode;
    const char *what;

    if (stat(path, &st) < 0) {
        int r = -errno;
        vg_set_err(err, errlen, "%s file %s: %s", kind, path, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        vg_set_err(err, errlen, "%s file %s is not a regular file", kind, path);
        return -EPERM;
    }
    mode = st.st_mode & 07777;
    if ((mode & 077) == 0)
        return 0;
    if (mode & 044)
        what = "readable";
    else if (mode & 022)
        what = "writable";
    else
        what = "accessible";
    vg_set_err(err, errlen, "%s file %s is %s by group or others (mode %04o); chmod 600 it", kind,
               path, what, (unsigned)mode);
    return -EPERM;
}

int vg_secret_file_check(const char *path, char *err, size_t errlen)
{
    return vg_secret_file_check_kind(path, "secret", err, errlen);
}

struct keyfile {
    char *public_key;
    char *secret_key;
};

static const struct vg_cfg_key keyfile_keys[] = {
    {.path = "public-key",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct keyfile, public_key),
     .min = 0,
     .max = VG_KEY_Z85_LEN,
     .def = NULL,
     .required = true,
     .help = "Z85-encoded CURVE public key"},
    {.path = "secret-key",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct keyfile, secret_key),
     .min = 0,
     .max = VG_KEY_Z85_LEN,
     .def = NULL,
     .required = true,
     .help = "Z85-encoded CURVE secret key"},
};
#define KEYFILE_NKEYS (sizeof(keyfile_keys) / sizeof(keyfile_keys[0]))

int vg_keypair_load(const char *path, struct vg_keypair *ret, char *err, size_t errlen)
{
    struct keyfile kf = {0};
    char derived[VG_KEY_Z85_LEN + 1];
    int r;

    r = vg_secret_file_check_kind(path, "key", err, errlen);
    if (r < 0)
        return r;
    r = vg_config_load(path, keyfile_keys, KEYFILE_NKEYS, &kf, err, errlen);
    if (r < 0)
        goto out_free;
    if (!vg_key_z85_valid(kf.public_key)) {
        vg_set_err(err, errlen,
                   "key file %s: public-key is not a valid Z85 CURVE key (40 characters)", path);
        r = -EINVAL;
        goto out_free;
    }
    if (!vg_key_z85_valid(kf.secret_key)) {
        vg_set_err(err, errlen,
                   "key file %s: secret-key is not a valid Z85 CURVE key (40 characters)", path);
        r = -EINVAL;
        goto out_free;
    }
    errno = 0;
    if (zmq_curve_public(derived, kf.secret_key) != 0) {
        r = errno ? -errno : -EIO;
        vg_set_err(err, errlen, "key file %s: cannot derive the public key: %s", path,
                   zmq_strerror(-r));
        goto out_free;
    }
    if (strcmp(derived, kf.public_key) != 0) {
        vg_set_err(err, errlen, "key file %s: public-key does not match secret-key", path);
        r = -EINVAL;
        goto out_free;
    }
    memcpy(ret->public_key, kf.public_key, sizeof(ret->public_key));
    memcpy(ret->secret_key, kf.secret_key, sizeof(ret->secret_key));
    r = 0;

out_free:
    if (kf.secret_key)
        sodium_memzero(kf.secret_key, strlen(kf.secret_key));
    vg_config_free(keyfile_keys, KEYFILE_NKEYS, &kf);
    return r;
}

int vg_key_file_load_or_create(const char *path, const char *kind, vg_key_file_fn create,
                               vg_key_file_fn load, void *ret, bool *ret_created, char *err,
                               size_t errlen)
{
    int r;

    r = vg_secret_file_check_kind(path, kind, err, errlen);
    if (r == -ENOENT) {
        r = create(path, ret, err, errlen);
        if (r == 0) {
            *ret_created = true;
            return 0;
        }
        if (r != -EEXIST) /* -EEXIST: another process created it meanwhile; load theirs */
            return r;
    } else if (r < 0) {
        return r;
    }
    r = load(path, ret, err, errlen);
    if (r == 0)
        *ret_created = false;
    return r;
}

/* vg_key_file_fn: a new CURVE key pair saved at path. */
static int keypair_create(const char *path, void *ret, char *err, size_t errlen)
{
    struct vg_keypair kp;
    int r;

    r = vg_keypair_generate(&kp);
    if (r < 0) {
        vg_set_err(err, errlen, "key file %s: cannot generate a CURVE key pair: %s", path,
                   zmq_strerror(-r));
        return r;
    }
    r = vg_keypair_save(path, &kp, err, errlen);
    if (r == 0)
        *(struct vg_keypair *)ret = kp;
    sodium_memzero(&kp, sizeof(kp));
    return r;
}

static int keypair_load(const char *path, void *ret, char *err, size_t errlen)
{
    return vg_keypair_load(path, ret, err, errlen);
}

int vg_keypair_load_or_create(const char *path, struct vg_keypair *ret, bool *ret_created,
                              char *err, size_t errlen)
{
    return vg_key_file_load_or_create(path, "key", keypair_create, keypair_load, ret, ret_created,
                                      err, errlen);
}

int vg_secret_file_read(const char *path, char **ret, size_t *ret_len, char *err, size_t errlen)
{
    struct stat st;
    char *buf;
    size_t len = 0;
    int fd, r;

    r = vg_secret_file_check_kind(path, "secret", err, errlen);
    if (r < 0)
        return r;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        r = -errno;
        vg_set_err(err, errlen, "secret file %s: cannot open: %s", path, strerror(-r));
        return r;
    }
    /* Check again on what was opened, in case the file was replaced after the check. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        vg_set_err(err, errlen, "secret file %s changed while it was being opened", path);
        r = -EPERM;
        goto err_close;
    }
    buf = malloc(SECRET_FILE_MAX + 1);
    if (!buf) {
        r = -ENOMEM;
        vg_set_err(err, errlen, "secret file %s: out of memory", path);
        goto err_close;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            vg_set_err(err, errlen, "secret file %s: cannot read: %s", path, strerror(-r));
            goto err_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > SECRET_FILE_MAX) {
            vg_set_err(err, errlen, "secret file %s is larger than %d KiB", path,
                       SECRET_FILE_MAX / 1024);
            r = -EFBIG;
            goto err_free;
        }
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == 0) {
        vg_set_err(err, errlen, "secret file %s is empty", path);
        r = -EINVAL;
        goto err_free;
    }
    /* Hand back a buffer of the secret's own size; wipe the large one. */
    char *secret = malloc(len + 1);
    if (!secret) {
        vg_set_err(err, errlen, "secret file %s: out of memory", path);
        r = -ENOMEM;
        goto err_free;
    }
    memcpy(secret, buf, len);
    secret[len] = '\0';
    sodium_memzero(buf, SECRET_FILE_MAX + 1);
    free(buf);
    close(fd);
    *ret = secret;
    if (ret_len)
        *ret_len = len;
    return 0;

err_free:
    sodium_memzero(buf, SECRET_FILE_MAX + 1);
    free(buf);
err_close:
    close(fd);
    return r;
}

void vg_agent_id_from_key(const char *public_z85, char ret_id[VG_AGENT_ID_LEN + 1])
{
    uint8_t digest[VG_SHA256_LEN];

    vg_sha256(public_z85, strlen(public_z85), digest);
    memcpy(ret_id, "ag-", 3); /* NOLINT(bugprone-not-null-terminated-result): vg_hex ends it */
    vg_hex(digest, (VG_AGENT_ID_LEN - 3) / 2, ret_id + 3);
}
