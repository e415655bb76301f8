/*
 * vigilctl's configuration file: where the coordinator is and which keys to speak CURVE with.
 *
 *   coordinator: "tcp://127.0.0.1:7401"
 *   coordinator_public_key: "<40 Z85 characters>"
 *   public_key: "<40 Z85 characters>"
 *   secret_key: "<40 Z85 characters>"
 *   signing_key_file: "<path>"   (optional: the operator's Ed25519 signing key, from
 *                                 'vigilctl keygen'; default: this file's path + ".sign")
 *
 * The file holds the operator's secret key, so it must be mode 0600 or stricter.
 */
#ifndef CTL_CONFIG_H
#define CTL_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CTL_CONFIG_ENV "VIGIL_CONFIG"
#define CTL_CONFIG_DEFAULT_RELPATH ".config/vigil/vigilctl.yaml" /* under $HOME */

struct ctl_config {
    char *coordinator;            /* ZeroMQ endpoint of the coordinator's admin socket */
    char *coordinator_public_key; /* Z85 */
    char *public_key;             /* the operator's key pair, Z85 */
    char *secret_key;
    char *signing_key_file; /* NULL or "" = the configuration file's path + ".sign" */
};

/*
 * Which file to read: flag_path (--config) if given, else $VIGIL_CONFIG, else
 * $HOME/.config/vigil/vigilctl.yaml. *ret_path is malloc'd. 0, -ENOENT (no home), -ENOMEM.
 */
int ctl_config_path(const char *flag_path, char **ret_path);

/*
 * Checks the file's mode, loads and validates it. On failure returns a negative errno and a
 * one-line message in err; cfg must be freed with ctl_config_free either way.
 */
int ctl_config_load(const char *path, struct ctl_config *cfg, char *err, size_t errlen);

/* Where the operator's signing key file is: cfg->signing_key_file (a relative path is relative
 * to the configuration file's directory), or config_path + ".sign" when that is empty.
 * *ret_path is malloc'd. 0 or -ENOMEM. */
int ctl_config_signing_key_path(const char *config_path, const struct ctl_config *cfg,
                                char **ret_path);

/* Frees the strings (the secret key is wiped first). Safe on a zeroed or half-loaded cfg. */
void ctl_config_free(struct ctl_config *cfg);

/* Prints the file format, one line per key, for the help text. */
void ctl_config_describe(FILE *out);

#endif
