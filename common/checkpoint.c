/* Signed checkpoints of the evidence vault's and the other chains' heads (checkpoint.h). */
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "digest.h"
#include "strict_text.h"

#define MAGIC "vigil-checkpoint-v1"
/* magic, issued_at_ms, two per chain, signing_public_key, signature */
#define LINES (2 + 2 * VG_CHAINS + 2)
#define SIGNED_LINES (LINES - 1)
#define LINE_KEY (LINES - 2) /* 0-based index of signing_public_key */
#define SIGNATURE_B64_LEN 88 /* base64 (standard, padded) of 64 bytes */
#define KEY_MAX 32

static const char *const chain_names[VG_CHAINS] = {"evidence", "audit", "timeline", "reports"};

const char *vg_chain_name(enum vg_chain chain)
{
    return (unsigned)chain < VG_CHAINS ? chain_names[chain] : NULL;
}

int vg_checkpoint_format(const struct vg_checkpoint *cp, const struct vg_signing_key *k, char *out,
                         size_t outlen)
{
    char hex[2 * 32 + 1];
    char sig_b64[SIGNATURE_B64_LEN + 1];
    unsigned char sig[VG_SIGNATURE_LEN];
    size_t used = 0;

#define PUT(...)                                                                                   \
    do {                                                                                           \
        int n_ = snprintf(out + used, outlen - used, __VA_ARGS__);                                 \
        if (n_ < 0 || (size_t)n_ >= outlen - used)                                                 \
            return -ENOSPC;                                                                        \
        used += (size_t)n_;                                                                        \
    } while (0)
    PUT(MAGIC "\nissued_at_ms: %" PRId64 "\n", cp->issued_at_ms);
    for (int c = 0; c < VG_CHAINS; c++) {
        vg_hex(cp->chains[c].hash, sizeof(cp->chains[c].hash), hex);
        PUT("%s_head: %" PRIu64 "\n%s_hash: %s\n", chain_names[c], cp->chains[c].head,
            chain_names[c], hex);
    }
    PUT("signing_public_key: %s\n", k->public_b64);
    vg_sign_detached(k, out, used, sig);
    sodium_bin2base64(sig_b64, sizeof(sig_b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    PUT("signature: %s\n", sig_b64);
#undef PUT
    return 0;
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int line,
                                                      const char *fmt, ...)
{
    va_list ap;
    int n = line ? snprintf(err, errlen, "line %d: ", line) : 0;
    if (n < 0 || (size_t)n >= errlen)
        n = 0;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* "key: value": value into *value (not NUL-terminated, *vlen bytes). */
static bool field(const char *line, size_t len, const char *key, const char **value, size_t *vlen)
{
    size_t klen = strlen(key);
    if (len < klen + 2 || memcmp(line, key, klen) != 0 || line[klen] != ':' ||
        line[klen + 1] != ' ')
        return false;
    *value = line + klen + 2;
    *vlen = len - klen - 2;
    return true;
}

/* One value line (0-based index i, its key in keys[i]) into cp. */
static int value(int i, const char *key, const char *v, size_t vlen, struct vg_checkpoint *cp,
                 char *err, size_t errlen)
{
    if (i == 1) {
        uint64_t issued;
        if (!vg_strict_decimal(v, vlen, INT64_MAX, &issued))
            return fail(err, errlen, i + 1,
                        "issued_at_ms must be a decimal number of milliseconds");
        cp->issued_at_ms = (int64_t)issued;
        return 0;
    }
    if (i < LINE_KEY) {
        struct vg_chain_head *h = &cp->chains[(i - 2) / 2];
        if ((i - 2) % 2 == 0 && !vg_strict_decimal(v, vlen, INT64_MAX, &h->head))
            return fail(err, errlen, i + 1, "%s must be a decimal row number", key);
        if ((i - 2) % 2 == 1 && !vg_strict_hex32(v, vlen, h->hash))
            return fail(err, errlen, i + 1, "%s must be 64 lowercase hex digits", key);
        return 0;
    }
    char key_b64[VG_SIGN_PUBLIC_B64_LEN + 1];
    if (vlen != VG_SIGN_PUBLIC_B64_LEN)
        return fail(err, errlen, i + 1, "signing_public_key must be base64 of 32 bytes");
    memcpy(key_b64, v, vlen);
    key_b64[vlen] = '\0';
    if (vg_sign_public_parse(key_b64, cp->signing_public_key) < 0)
        return fail(err, errlen, i + 1, "signing_public_key must be base64 of 32 bytes");
    return 0;
}

int vg_checkpoint_parse(const char *text, size_t len, struct vg_checkpoint *ret, char *err,
                        size_t errlen)
{
    char keys[LINES][KEY_MAX];
    struct vg_checkpoint cp;
    size_t at = 0, signed_len = 0;
    int nlines = 0;
    memset(&cp, 0, sizeof(cp));

    snprintf(keys[1], KEY_MAX, "issued_at_ms");
    for (int c = 0; c < VG_CHAINS; c++) {
        snprintf(keys[2 + 2 * c], KEY_MAX, "%s_head", chain_names[c]);
        snprintf(keys[3 + 2 * c], KEY_MAX, "%s_hash", chain_names[c]);
    }
    snprintf(keys[LINE_KEY], KEY_MAX, "signing_public_key");
    snprintf(keys[LINES - 1], KEY_MAX, "signature");

    if (!text || len > VG_CHECKPOINT_MAX_LEN)
        return fail(err, errlen, 0, "not a checkpoint: over %d bytes", VG_CHECKPOINT_MAX_LEN);
    /* Line by line: the first wrong line is the one named. */
    const char *sig_text = NULL;
    size_t sig_len = 0;
    while (nlines < LINES) {
        const char *nl = at < len ? memchr(text + at, '\n', len - at) : NULL;
        if (!nl)
            break;
        const char *line = text + at, *v = NULL;
        size_t line_len = (size_t)(nl - line), vlen = 0;
        at = (size_t)(nl - text) + 1;
        int i = nlines++;
        if (i == 0) {
            if (line_len != strlen(MAGIC) || memcmp(line, MAGIC, line_len) != 0)
                return fail(err, errlen, 1,
                            "not a checkpoint: the first line must be \"" MAGIC "\"");
            continue;
        }
        if (!field(line, line_len, keys[i], &v, &vlen))
            return fail(err, errlen, i + 1, "expected \"%s: ...\"", keys[i]);
        if (i == LINES - 1) {
            sig_text = v;
            sig_len = vlen;
            continue;
        }
        int r = value(i, keys[i], v, vlen, &cp, err, errlen);
        if (r < 0)
            return r;
        if (i == SIGNED_LINES - 1)
            signed_len = at;
    }
    if (nlines < LINES)
        return fail(err, errlen, nlines + 1,
                    "missing (a checkpoint has %d lines, each ending in a newline)", LINES);
    if (at != len)
        return fail(err, errlen, LINES + 1, "unexpected text after the signature");
    unsigned char sig[VG_SIGNATURE_LEN];
    size_t got = 0;
    const char *end = NULL;
    if (sig_len != SIGNATURE_B64_LEN ||
        sodium_base642bin(sig, sizeof(sig), sig_text, sig_len, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != sizeof(sig) || end != sig_text + sig_len)
        return fail(err, errlen, LINES, "signature must be base64 of 64 bytes");
    if (!vg_sign_verify(cp.signing_public_key, text, signed_len, sig)) {
        snprintf(err, errlen,
                 "the signature does not verify: the checkpoint was changed, or not "
                 "signed by the key it names");
        return -EBADMSG;
    }
    *ret = cp;
    return 0;
}
