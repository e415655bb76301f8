/* vigilctl keygen, vigilctl token: key material, made locally; no coordinator needed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "keys.h"
#include "token.h"

int cmd_keygen(struct ctl_context *ctx, int argc, char **argv)
{
    struct vg_keypair kp;
    char err[512] = "";
    int r;

    if (argc > 0) {
        output_error("keygen takes no arguments (got \"%s\"); try 'vigilctl keygen --help'",
                     argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (ctx->out_path == NULL) {
        output_error("keygen needs --out FILE (where to write the new key pair)");
        return CTL_EXIT_USAGE;
    }

    r = vg_keypair_generate(&kp);
    if (r < 0) {
        output_error("cannot generate a key pair: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    r = vg_keypair_save(ctx->out_path, &kp, err, sizeof(err));
    explicit_bzero(kp.secret_key, sizeof(kp.secret_key));
    if (r < 0) {
        if (err[0] != '\0')
            output_error("%s", err);
        else if (r == -EEXIST)
            output_error("%s already exists; refusing to overwrite it", ctx->out_path);
        else
            output_error("cannot write %s: %s", ctx->out_path, strerror(-r));
        return CTL_EXIT_FAILURE;
    }

    if (ctx->format == OUTPUT_JSON) {
        json_t *doc =
            json_pack("{s:s, s:s}", "public_key", kp.public_key, "key_file", ctx->out_path);
        if (output_json_print(&doc, stdout) < 0) {
            output_error("cannot write the output");
            return CTL_EXIT_FAILURE;
        }
    } else {
        printf("%s\n", kp.public_key);
    }
    return CTL_EXIT_OK;
}

/* The agent public key the token is for: from --public-key or from the agent's key file. */
static int token_public_key(const struct ctl_context *ctx, char ret_key[VG_KEY_Z85_LEN + 1])
{
    if (ctx->public_key != NULL) {
        if (!vg_key_z85_valid(ctx->public_key)) {
            output_error("--public-key: \"%s\" is not a CURVE public key (expected 40 Z85 "
                         "characters)",
                         ctx->public_key);
            return CTL_EXIT_USAGE;
        }
        memcpy(ret_key, ctx->public_key, VG_KEY_Z85_LEN + 1);
        return CTL_EXIT_OK;
    }

    struct vg_keypair kp;
    char err[512] = "";
    int r = vg_keypair_load(ctx->key_file, &kp, err, sizeof(err));
    if (r < 0) {
        if (err[0] != '\0')
            output_error("%s", err);
        else
            output_error("cannot load key file %s: %s", ctx->key_file, strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    memcpy(ret_key, kp.public_key, VG_KEY_Z85_LEN + 1);
    explicit_bzero(kp.secret_key, sizeof(kp.secret_key));
    return CTL_EXIT_OK;
}

int cmd_token(struct ctl_context *ctx, int argc, char **argv)
{
    char public_key[VG_KEY_Z85_LEN + 1];
    uint8_t token[VG_TOKEN_LEN];
    char hex[VG_TOKEN_HEX_LEN + 1];
    char err[512] = "";
    char *secret = NULL;
    size_t secret_len = 0;
    int r;

    if (argc > 0) {
        output_error("token takes no arguments (got \"%s\"); try 'vigilctl token --help'", argv[0]);
        return CTL_EXIT_USAGE;
    }
    if (ctx->secret_file == NULL) {
        output_error("token needs --secret-file FILE (the cluster's enrollment secret)");
        return CTL_EXIT_USAGE;
    }
    if ((ctx->public_key == NULL) == (ctx->key_file == NULL)) {
        output_error("token needs exactly one of --public-key Z85 or --key-file FILE");
        return CTL_EXIT_USAGE;
    }

    r = token_public_key(ctx, public_key);
    if (r != CTL_EXIT_OK)
        return r;

    r = vg_secret_file_read(ctx->secret_file, &secret, &secret_len, err, sizeof(err));
    if (r < 0) {
        if (err[0] != '\0')
            output_error("%s", err);
        else
            output_error("cannot read %s: %s", ctx->secret_file, strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    if (secret_len == 0) {
        free(secret);
        output_error("%s is empty: an enrollment secret is needed", ctx->secret_file);
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
