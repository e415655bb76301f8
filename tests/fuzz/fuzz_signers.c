/*
 * Fuzz target: the node's signer file (signers_load in agent/signers.c), the root of trust for
 * remediation: the key table through libfyaml, then every signer's name, role and key, with the
 * file:line:col positions cfgcheck.c reads again for the messages. The input is written to a
 * root-owned file of mode 0600 in a private temporary directory (the fuzzer runs as root; as
 * another user the ownership check refuses the file before it is parsed).
 *
 * Oracles beyond "no crash, no sanitizer report": a refusal is a negative errno with a message
 * and leaves *ret alone; a loaded set has unique names and unique keys (each found again by its
 * name and by its key) and only the three roles a signer file may hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inputfiles.h"
#include "signers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct signers *set = NULL;
    struct signers *const untouched = (struct signers *)&set;
    char err[1024] = "";

    inputfiles_reset();
    const char *path = inputfiles_write("signers.yaml", data, size);
    if (!path)
        abort();
    set = untouched;
    int r = signers_load(path, &set, err, sizeof(err));
    if (r < 0) {
        if (set != untouched || err[0] == '\0')
            abort();
        return 0;
    }
    if (r != 0 || set == untouched || set == NULL)
        abort();
    for (size_t i = 0; i < signers_count(set); i++) {
        const struct signer *s = signers_get(set, i);
        if (signers_find_name(set, s->name) != s || signers_find_key(set, s->public_key) != s)
            abort();
        if (s->role != VG_SIGNER_COORDINATOR && s->role != VG_SIGNER_RESPONDER &&
            s->role != VG_SIGNER_ADMIN)
            abort();
        if (strlen(s->name) == 0 || strlen(s->name) > SIGNER_NAME_MAX)
            abort();
    }
    signers_destroy(&set);
    return 0;
}
