/* The node's signer file: loading and checking it (signers.h). */
#include "signers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfgcheck.h"
#include "config.h"
#include "log.h"
#include "yaml.h"

#define ROLE_TEXT_MAX 16
#define KEY_TEXT_MAX 128 /* longer than any base64 key, so a wrong length is named, not cut */

/* signers[] as the table loader fills it. */
struct signer_config {
    char *name;
    char *role;
    char *public_key;
};

struct signers_file_config {
    struct vg_cfg_list signers; /* of struct signer_config */
};

static const struct vg_cfg_key signer_keys[] = {
    {.path = "name",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct signer_config, name),
     .max = SIGNER_NAME_MAX,
     .required = true,
     .help = "who holds the key: an operator's name, or e.g. coordinator"},
    {.path = "role",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct signer_config, role),
     .max = ROLE_TEXT_MAX,
     .required = true,
     .help = "coordinator, responder or admin"},
    {.path = "public_key",
     .type = VG_CFG_STRING,
     .offset = offsetof(struct signer_config, public_key),
     .max = KEY_TEXT_MAX,
     .required = true,
     .help = "Ed25519 public key, standard base64 of 32 bytes"},
};

static const struct vg_cfg_key signers_file_keys[] = {
    {.path = "signers",
     .type = VG_CFG_LIST,
     .offset = offsetof(struct signers_file_config, signers),
     .max = SIGNERS_MAX,
     .help = "the keys this node accepts on commands: {name, role, public_key}",
     .sub = signer_keys,
     .nsub = sizeof(signer_keys) / sizeof(signer_keys[0]),
     .elem_size = sizeof(struct signer_config)},
};
#define SIGNERS_FILE_NKEYS (sizeof(signers_file_keys) / sizeof(signers_file_keys[0]))

struct signers {
    struct signer *items;
    size_t count;
};

/* Operator names as the coordinator allows them (coordinator/admin/operators.c). */
static bool name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > SIGNER_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

static int role_parse(const char *text, enum vg_signer_role *ret)
{
    enum vg_signer_role role;

    if (vg_signer_role_parse(text, &role) < 0 || role == VG_SIGNER_VIEWER)
        return -EINVAL; /* a viewer approves nothing: it has no place in the file */
    *ret = role;
    return 0;
}

void signers_destroy(struct signers **self_p)
{
    struct signers *self = self_p ? *self_p : NULL;

    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free(self->items[i].name);
    free(self->items);
    free(self);
    *self_p = NULL;
}

/* Checks every entry and copies it into self (which has room for all of them). */
static int check_signers(struct signers *self, const struct vg_cfg_list *list,
                         const cfgcheck_doc_t *doc, const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < list->count; i++) {
        const struct signer_config *c = VG_CFG_ITEM(*list, struct signer_config, i);
        struct signer *s = &self->items[i];
        char shown[VG_YAML_QUOTE_MAX + 1];
        char ypath[64];
        const struct signer *dup;

        snprintf(ypath, sizeof(ypath), "/signers/%zu/name", i);
        if (!name_ok(c->name))
            return cfgcheck_fail(doc, path, ypath, err, errlen,
                                 "signers[%zu]: the name \"%s\" must be 1 to %d letters, digits, "
                                 "'.', '_', '@' or '-'",
                                 i,
                                 vg_yaml_quotable(c->name, strlen(c->name), shown, sizeof(shown)),
                                 SIGNER_NAME_MAX);
        if ((dup = signers_find_name(self, c->name)))
            return cfgcheck_fail(doc, path, ypath, err, errlen,
                                 "signer \"%s\" is listed twice (first as signers[%zu]); each "
                                 "name appears once",
                                 c->name, (size_t)(dup - self->items));

        snprintf(ypath, sizeof(ypath), "/signers/%zu/role", i);
        if (role_parse(c->role, &s->role) < 0)
            return cfgcheck_fail(
                doc, path, ypath, err, errlen,
                "signer \"%s\": the role must be coordinator, responder or admin (got \"%s\")",
                c->name, vg_yaml_quotable(c->role, strlen(c->role), shown, sizeof(shown)));

        snprintf(ypath, sizeof(ypath), "/signers/%zu/public_key", i);
        if (vg_sign_public_parse(c->public_key, s->public_key) < 0)
            return cfgcheck_fail(doc, path, ypath, err, errlen,
                                 "signer \"%s\": public_key must be the standard base64 of a "
                                 "32-byte Ed25519 key (%d characters ending in '='; got %zu "
                                 "characters that do not decode to 32 bytes)",
                                 c->name, VG_SIGN_PUBLIC_B64_LEN, strlen(c->public_key));
        if ((dup = signers_find_key(self, s->public_key)))
            return cfgcheck_fail(doc, path, ypath, err, errlen,
                                 "signer \"%s\": this key is already %s's; a key belongs to one "
                                 "signer",
                                 c->name, dup->name);

        s->name = strdup(c->name);
        if (!s->name) {
            vg_set_err(err, errlen, "%s: out of memory", path);
            return -ENOMEM;
        }
        self->count = i + 1;
    }
    return 0;
}

int signers_load(const char *path, struct signers **ret, char *err, size_t errlen)
{
    struct signers_file_config cfg = {0};
    struct signers *self = NULL;
    cfgcheck_doc_t *doc = NULL;
    struct stat st;
    int r;

    r = cfgcheck_root_owned(path, "signer file", &st, err, errlen);
    if (r < 0)
        return r;
    r = vg_config_load(path, signers_file_keys, SIGNERS_FILE_NKEYS, &cfg, err, errlen);
    if (r < 0)
        goto err_free_config;
    /* The file read must be the one examined: a swap in between is refused, not trusted. */
    if (!cfgcheck_same_file(path, &st)) {
        vg_set_err(err, errlen, "%s: the signer file changed while it was read; try again", path);
        r = -EAGAIN;
        goto err_free_config;
    }

    self = calloc(1, sizeof(*self));
    if (!self || (cfg.signers.count > 0 &&
                  !(self->items = calloc(cfg.signers.count, sizeof(*self->items))))) {
        vg_set_err(err, errlen, "%s: out of memory", path);
        r = -ENOMEM;
        goto err_destroy;
    }
    if (cfg.signers.count > 0)
        doc = cfgcheck_doc_open(path);
    r = check_signers(self, &cfg.signers, doc, path, err, errlen);
    if (r < 0)
        goto err_destroy;

    cfgcheck_doc_close(&doc);
    vg_config_free(signers_file_keys, SIGNERS_FILE_NKEYS, &cfg);
    vg_log(VG_LOG_DEBUG, "signers loaded file=%s count=%zu", path, self->count);
    *ret = self;
    return 0;

err_destroy:
    cfgcheck_doc_close(&doc);
    signers_destroy(&self);
err_free_config:
    vg_config_free(signers_file_keys, SIGNERS_FILE_NKEYS, &cfg);
    return r;
}

size_t signers_count(const struct signers *self)
{
    return self ? self->count : 0;
}

const struct signer *signers_get(const struct signers *self, size_t i)
{
    return self && i < self->count ? &self->items[i] : NULL;
}

const struct signer *signers_find_key(const struct signers *self,
                                      const unsigned char key[VG_SIGN_PUBLIC_LEN])
{
    for (size_t i = 0; self && i < self->count; i++)
        if (memcmp(self->items[i].public_key, key, VG_SIGN_PUBLIC_LEN) == 0)
            return &self->items[i];
    return NULL;
}

const struct signer *signers_find_name(const struct signers *self, const char *name)
{
    for (size_t i = 0; self && name && i < self->count; i++)
        if (self->items[i].name && strcmp(self->items[i].name, name) == 0)
            return &self->items[i];
    return NULL;
}
