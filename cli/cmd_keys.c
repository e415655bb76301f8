/* vigilctl keygen, vigilctl token: key material, made locally; no coordinator needed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "keys.h"
#include "sign.h"
#include "token.h"

/* A key file that could not be written: the saver's message, or one made from r. */
static int write_failed(const char *path, int r, const char *err)
{
    if (err[0] != '\0')
        output_error("%s", err);
    else if (r == -EEXIST)
        output_error("%s already exists; refusing to overwrite it", path);
    else
        output_error("cannot write %s: %s", path, strerror(-r));
    return CTL_EXIT_FAILURE;
}

/* Writes a new signing key to path; *ret its public half. */
static int keygen_signing(const char *path, struct vg_signing_key *ret)
{
    char err[512] = "";
    int r = vg_signing_key_generate(ret);
    if (r < 0) {
        output_error("cannot generate a signing key: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    r = vg_signing_key_save(path, ret, err, sizeof(err));
    if (r < 0) {
        vg_signing_key_wipe(ret);
        return write_failed(path, r, err);
    }
    return CTL_EXIT_OK;
}

/* Writes a new CURVE key pair to path; *ret its public half. */
static int keygen_curve(const char *path, char ret[VG_KEY_Z85_LEN + 1])
{
    struct vg_keypair kp;
    char err[512] = "";
    int r = vg_keypair_generate(&kp);
    if (r < 0) {
        output_error("cannot generate a key pair: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    r = vg_keypair_save(path, &kp, err, sizeof(err));
    explicit_bzero(kp.secret_key, sizeof(kp.secret_key));
    if (r < 0)
        return write_failed(path, r, err);
    memcpy(ret, kp.public_key, VG_KEY_Z85_LEN + 1);
    return CTL_EXIT_OK;
}

static int keygen_print(struct ctl_context *ctx, const char *curve_path, const char *public_key,
                        const char *signing_path, const char *signing_key)
{
    int r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc = json_object();
        if (doc != NULL && curve_path != NULL) {
            json_object_set_new(doc, "public_key", json_string(public_key));
            json_object_set_new(doc, "key_file", json_string(curve_path));
        }
        if (doc != NULL) {
            json_object_set_new(doc, "signing_key", json_string(signing_key));
            json_object_set_new(doc, "signing_key_file", json_string(signing_path));
        }
        r = output_json_print(&doc, stdout);
    } else {
        r = 0;
        if (curve_path != NULL && printf("public-key:  %s  (%s)\n", public_key, curve_path) < 0)
            r = -EIO;
        if (printf("signing-key: %s  (%s)\n", signing_key, signing_path) < 0)
            r = -EIO;
    }
    if (r < 0) {
        output_error("cannot write the output");
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static int run_keygen(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *out_path = ctl_args_value(args, "out");
    const char *signing_out = ctl_args_value(args, "signing-out");
    char public_key[VG_KEY_Z85_LEN + 1];
    struct vg_signing_key sk;
    char *default_signing = NULL;
    int r;

    if (args->argc > 0) {
        output_error("keygen takes no arguments (got \"%s\"); try 'vigilctl keygen --help'",
                     args->argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (out_path == NULL && signing_out == NULL) {
        output_error("keygen needs --out FILE (where to write the new key pair; the signing key "
                     "goes to FILE.sign), or --signing-out FILE alone for a signing key only");
        return CTL_EXIT_USAGE;
    }
    if (signing_out == NULL) {
        if (asprintf(&default_signing, "%s.sign", out_path) < 0) {
            output_error("out of memory");
            return CTL_EXIT_FAILURE;
        }
        signing_out = default_signing;
    }
    /* Neither file is written when either is there already. */
    const char *existing = out_path != NULL && access(out_path, F_OK) == 0 ? out_path
                           : access(signing_out, F_OK) == 0                ? signing_out
                                                                           : NULL;
    if (existing != NULL) {
        output_error("%s already exists; refusing to overwrite it", existing);
        free(default_signing);
        return CTL_EXIT_FAILURE;
    }

    r = out_path != NULL ? keygen_curve(out_path, public_key) : CTL_EXIT_OK;
    if (r == CTL_EXIT_OK) {
        r = keygen_signing(signing_out, &sk);
        if (r != CTL_EXIT_OK && out_path != NULL)
            unlink(out_path); /* both or neither */
    }
    if (r == CTL_EXIT_OK) {
        r = keygen_print(ctx, out_path, public_key, signing_out, sk.public_b64);
        vg_signing_key_wipe(&sk);
    }
    free(default_signing);
    return r;
}

/* The agent public key the token is for: from --public-key or from the agent's key file. */
static int token_public_key(const char *public_key, const char *key_file,
                            char ret_key[VG_KEY_Z85_LEN + 1])
{
    if (public_key != NULL) {
        if (!vg_key_z85_valid(public_key)) {
            output_error("--public-key: \"%s\" is not a CURVE public key (expected 40 Z85 "
                         "characters)",
                         public_key);
            return CTL_EXIT_USAGE;
        }
        memcpy(ret_key, public_key, VG_KEY_Z85_LEN + 1);
        return CTL_EXIT_OK;
    }

    struct vg_keypair kp;
    char err[512] = "";
    int r = vg_keypair_load(key_file, &kp, err, sizeof(err));
    if (r < 0) {
        if (err[0] != '\0')
            output_error("%s", err);
        else
            output_error("cannot load key file %s: %s", key_file, strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    memcpy(ret_key, kp.public_key, VG_KEY_Z85_LEN + 1);
    explicit_bzero(kp.secret_key, sizeof(kp.secret_key));
    return CTL_EXIT_OK;
}

static int run_token(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *secret_file = ctl_args_value(args, "secret-file");
    const char *public_key_text = ctl_args_value(args, "public-key");
    const char *key_file = ctl_args_value(args, "key-file");
    char public_key[VG_KEY_Z85_LEN + 1];
    uint8_t token[VG_TOKEN_LEN];
    char hex[VG_TOKEN_HEX_LEN + 1];
    char err[512] = "";
    char *secret = NULL;
    size_t secret_len = 0;
    int r;

    if (args->argc > 0) {
        output_error("token takes no arguments (got \"%s\"); try 'vigilctl token --help'",
                     args->argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (secret_file == NULL) {
        output_error("token needs --secret-file FILE (the cluster's enrollment secret)");
        return CTL_EXIT_USAGE;
    }
    if ((public_key_text == NULL) == (key_file == NULL)) {
        output_error("token needs exactly one of --public-key Z85 or --key-file FILE");
        return CTL_EXIT_USAGE;
    }

    r = token_public_key(public_key_text, key_file, public_key);
    if (r != CTL_EXIT_OK)
        return r;

    r = vg_secret_file_read(secret_file, &secret, &secret_len, err, sizeof(err));
    if (r < 0) {
        if (err[0] != '\0')
            output_error("%s", err);
        else
            output_error("cannot read %s: %s", secret_file, strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    if (secret_len == 0) {
        free(secret);
        output_error("%s is empty: an enrollment secret is needed", secret_file);
        return CTL_EXIT_FAILURE;
    }
    r = vg_token_compute(secret, secret_len, public_key, token);
    explicit_bzero(secret, secret_len);
    free(secret);
    secret = NULL;
    if (r < 0) {
        output_error("cannot compute the token: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    vg_token_to_hex(token, hex);

    if (ctx->format == OUTPUT_JSON) {
        char agent_id[VG_AGENT_ID_LEN + 1];
        vg_agent_id_from_key(public_key, agent_id);
        json_t *doc = json_pack("{s:s, s:s, s:s}", "agent_id", agent_id, "public_key", public_key,
                                "token", hex);
        if (output_json_print(&doc, stdout) < 0) {
            output_error("cannot write the output");
            return CTL_EXIT_FAILURE;
        }
    } else {
        printf("%s\n", hex);
    }
    return CTL_EXIT_OK;
}

/* ---- the command table ---- */

static const char keygen_help[] =
    "Usage: vigilctl keygen --out FILE [--signing-out SFILE]\n"
    "       vigilctl keygen --signing-out SFILE\n"
    "\n"
    "Makes a CURVE key pair (for the connection) and writes it to FILE, and an Ed25519 signing\n"
    "key (for approvals) and writes it to SFILE (default FILE.sign); prints both public keys.\n"
    "With --signing-out alone, makes only the signing key. Files are mode 0600 and never\n"
    "overwritten: when either exists, neither is written.\n"
    "\n"
    "FILE holds 'public-key' and 'secret-key'; for an operator, copy them into the\n"
    "configuration file as public_key and secret_key, set signing_key_file to SFILE (or keep it\n"
    "at the configuration file's path + .sign), and have an admin register both public keys:\n"
    "'vigilctl operators add NAME --role ROLE --public-key K --signing-key S'.\n"
    "Needs no configuration file.\n";

static const char token_help[] =
    "Usage: vigilctl token --secret-file FILE (--public-key Z85 | --key-file KEYFILE)\n"
    "\n"
    "Prints the 64-hex-digit bootstrap enrollment token for one agent: HMAC-SHA256 of the\n"
    "agent's public key under the cluster's enrollment secret. An agent that enrolls with\n"
    "a valid token is admitted at once; without one it waits as pending until\n"
    "'vigilctl agents approve'.\n"
    "\n"
    "  --secret-file FILE   the enrollment secret (mode 0600; trailing newlines ignored)\n"
    "  --public-key Z85     the agent's public key (40 characters)\n"
    "  --key-file KEYFILE   or read it from the agent's key file\n"
    "\n"
    "Needs no configuration file.\n";

const struct ctl_command cmd_keys_table[] = {
    {
        .name = "keygen",
        .forms = {{"keygen --out FILE [--signing-out SFILE]",
                   "make a CURVE key pair and a signing key; print their public keys"}},
        .help = keygen_help,
        .options = {{"out", CTL_OPTION_VALUE}, {"signing-out", CTL_OPTION_VALUE}},
        .run = run_keygen,
    },
    {
        .name = "token",
        .forms = {{"token --secret-file FILE (--public-key Z85 | --key-file KEYFILE)",
                   "print the bootstrap enrollment token for an agent key"}},
        .help = token_help,
        .options = {{"secret-file", CTL_OPTION_VALUE},
                    {"public-key", CTL_OPTION_VALUE},
                    {"key-file", CTL_OPTION_VALUE}},
        .run = run_token,
    },
    {.name = NULL},
};
