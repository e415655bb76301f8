/*
 * Fuzz target: a kubeconfig file as vigil-agent-action's kubernetes module reads it
 * (kube_creds_load in agent/action/kubeconfig.c, through libfyaml and common/yaml.c). The input
 * is written as "config" into a private temporary directory (inputfiles.h) that also holds a CA
 * bundle "ca.crt", a token file "token" and an empty file "empty" (written once), so that
 * relative paths in the input name real files. Each input is loaded for its current-context and for
 * the context "fuzz".
 *
 * Oracles beyond "no crash, no sanitizer report": a refusal is a negative errno with a message
 * and leaves the credentials zeroed; accepted credentials have an https:// server without a
 * trailing slash, space or control character, a token of visible ASCII or a client certificate
 * with its key, and a CA file (when named) under a path that can be read; kube_creds_clear
 * leaves them zeroed and frees everything (ASan's leak check).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inputfiles.h"
#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";

static bool zeroed(const struct kube_creds *c)
{
    static const struct kube_creds zero;
    return memcmp(c, &zero, sizeof(zero)) == 0;
}

static void check(int r, struct kube_creds *c, const char *err)
{
    if (r > 0)
        abort();
    if (r < 0) {
        if (err[0] == '\0' || memchr(err, '\0', 1024) == NULL || !zeroed(c))
            abort();
        return;
    }
    size_t len = strlen(c->server);
    if (strncmp(c->server, "https://", 8) != 0 || len <= 8 || c->server[len - 1] == '/')
        abort();
    for (const char *p = c->server; *p; p++)
        if (*p <= 0x20 || *p > 0x7e)
            abort();
    if (c->token) {
        if (!c->token[0])
            abort();
        for (const char *p = c->token; *p; p++)
            if (*p < 0x21 || *p > 0x7e)
                abort();
    }
    bool cert = c->cert_file || c->cert.data, key = c->key_file || c->key.data;
    if (cert != key || (!c->token && !cert))
        abort();
    if ((c->ca.data && c->ca.len == 0) || (c->cert.data && c->cert.len == 0) ||
        (c->key.data && c->key.len == 0))
        abort();
    if (c->ca_file && access(c->ca_file, R_OK) != 0)
        abort();
    kube_creds_clear(c);
    if (!zeroed(c))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const contexts[] = {NULL, "fuzz"};
    struct kube_creds c;
    char err[1024];

    static bool files_written;
    if (!files_written) { /* once: the loader only reads them */
        inputfiles_reset();
        if (!inputfiles_write("ca.crt", (const uint8_t *)ca_pem, sizeof(ca_pem) - 1) ||
            !inputfiles_write("token", (const uint8_t *)"fuzz-token\n", 11) ||
            !inputfiles_write("empty", (const uint8_t *)"", 0))
            abort();
        files_written = true;
    }
    const char *written = inputfiles_write("config", data, size);
    if (!written)
        abort();
    char path[4096];
    snprintf(path, sizeof(path), "%s", written);

    for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
        struct kube_source src = {.kubeconfig = path, .context = contexts[i]};
        memset(&c, 0xa5, sizeof(c)); /* kube_creds_load zeroes it first */
        err[0] = '\0';
        int r = kube_creds_load(&src, &c, err, sizeof(err));
        check(r, &c, err);
    }
    return 0;
}
