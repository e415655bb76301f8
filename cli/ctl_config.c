#include "ctl_config.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "config.h"
#include "keys.h"

#define ENDPOINT_MAX_LEN 1024

static const struct vg_cfg_key config_keys[] = {
    {
        .path = "coordinator",
        .type = VG_CFG_STRING,
        .offset = offsetof(struct ctl_config, coordinator),
        .max = ENDPOINT_MAX_LEN,
        .def = "tcp://127.0.0.1:7401",
        .help = "the coordinator's admin endpoint",
    },
    {
        .path = "coordinator_public_key",
        .type = VG_CFG_STRING,
        .offset = offsetof(struct ctl_config, coordinator_public_key),
        .max = VG_KEY_Z85_LEN,
        .required = true,
        .help = "the coordinator's CURVE public key, Z85",
    },
    {
        .path = "public_key",
        .type = VG_CFG_STRING,
        .offset = offsetof(struct ctl_config, public_key),
        .max = VG_KEY_Z85_LEN,
        .required = true,
        .help = "this operator's CURVE public key, Z85",
    },
    {
        .path = "secret_key",
        .type = VG_CFG_STRING,
        .offset = offsetof(struct ctl_config, secret_key),
        .max = VG_KEY_Z85_LEN,
        .required = true,
        .help = "this operator's CURVE secret key, Z85",
    },
    {
        .path = "signing_key_file",
        .type = VG_CFG_STRING,
        .offset = offsetof(struct ctl_config, signing_key_file),
        .max = PATH_MAX,
        .help = "this operator's Ed25519 signing key file, FILE.sign of 'vigilctl keygen --out "
                "FILE' (default: this file's path + .sign)",
    },
};
#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

int ctl_config_path(const char *flag_path, char **ret_path)
{
    const char *home;
    char *path;

    if (flag_path != NULL && flag_path[0] != '\0') {
        path = strdup(flag_path);
        goto done;
    }
    const char *env = getenv(CTL_CONFIG_ENV);
    if (env != NULL && env[0] != '\0') {
        path = strdup(env);
        goto done;
    }
    home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        const struct passwd *pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] == '\0')
        return -ENOENT;
    if (asprintf(&path, "%s/%s", home, CTL_CONFIG_DEFAULT_RELPATH) < 0)
        path = NULL;
done:
    if (path == NULL)
        return -ENOMEM;
    *ret_path = path;
    return 0;
}

static int check_key(const char *path, const char *name, const char *value, char *err,
                     size_t errlen)
{
    if (value != NULL && vg_key_z85_valid(value))
        return 0;
    snprintf(err, errlen,
             "%s: %s is not a CURVE key (expected 40 Z85 characters, as printed by "
             "'vigilctl keygen')",
             path, name);
    return -EINVAL;
}

int ctl_config_load(const char *path, struct ctl_config *cfg, char *err, size_t errlen)
{
    struct stat st;
    int r;

    memset(cfg, 0, sizeof(*cfg));
    if (stat(path, &st) < 0) {
        r = -errno;
        if (r == -ENOENT)
            snprintf(err, errlen,
                     "configuration file %s does not exist ('vigilctl help' says where it is "
                     "looked for and what goes in it)",
                     path);
        else
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
        return r;
    }

    /* The file holds a secret key: refuse it before reading a byte if others can read it. */
    err[0] = '\0';
    r = vg_secret_file_check(path, err, errlen);
    if (r < 0) {
        if (err[0] == '\0')
            snprintf(err, errlen,
                     "%s: holds a secret key, so it must not be accessible by group or others "
                     "(chmod 600 %s)",
                     path, path);
        return r;
    }

    err[0] = '\0';
    r = vg_config_load(path, config_keys, CONFIG_NKEYS, cfg, err, errlen);
    if (r < 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }

    if (cfg->coordinator == NULL || cfg->coordinator[0] == '\0') {
        snprintf(err, errlen, "%s: coordinator must not be empty", path);
        return -EINVAL;
    }
    r = check_key(path, "coordinator_public_key", cfg->coordinator_public_key, err, errlen);
    if (r < 0)
        return r;
    r = check_key(path, "public_key", cfg->public_key, err, errlen);
    if (r < 0)
        return r;
    r = check_key(path, "secret_key", cfg->secret_key, err, errlen);
    if (r < 0)
        return r;

    /* A mismatched pair would only show up as a refused handshake: say so now instead. */
    char derived[VG_KEY_Z85_LEN + 1];
    if (zmq_curve_public(derived, cfg->secret_key) == 0 && strcmp(derived, cfg->public_key) != 0) {
        snprintf(err, errlen, "%s: public_key is not the public half of secret_key", path);
        return -EINVAL;
    }
    return 0;
}

int ctl_config_signing_key_path(const char *config_path, const struct ctl_config *cfg,
                                char **ret_path)
{
    const char *file = cfg->signing_key_file;
    const char *slash = strrchr(config_path, '/');
    char *path = NULL;
    int n;

    if (file == NULL || file[0] == '\0')
        n = asprintf(&path, "%s.sign", config_path);
    else if (file[0] == '/' || slash == NULL)
        n = asprintf(&path, "%s", file);
    else /* relative to the configuration file's directory, not to wherever vigilctl runs */
        n = asprintf(&path, "%.*s/%s", (int)(slash - config_path), config_path, file);
    if (n < 0)
        path = NULL;
    if (path == NULL)
        return -ENOMEM;
    *ret_path = path;
    return 0;
}

void ctl_config_free(struct ctl_config *cfg)
{
    if (cfg->secret_key != NULL)
        explicit_bzero(cfg->secret_key, strlen(cfg->secret_key));
    vg_config_free(config_keys, CONFIG_NKEYS, cfg);
    memset(cfg, 0, sizeof(*cfg));
}

void ctl_config_describe(FILE *out)
{
    for (size_t i = 0; i < CONFIG_NKEYS; i++) {
        const struct vg_cfg_key *key = &config_keys[i];
        fprintf(out, "  %-24s %s", key->path, key->help);
        if (key->required)
            fputs(" (required)", out);
        else if (key->def != NULL)
            fprintf(out, " (default \"%s\")", key->def);
        fputc('\n', out);
    }
}
