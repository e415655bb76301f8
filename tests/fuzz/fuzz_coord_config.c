/*
 * Fuzz target: the coordinator's configuration file (coord_config_load in
 * coordinator/coord_config.c, with the paging section of coordinator/paging/paging_config.c):
 * the key table through libfyaml and every cross-check after it. The input is written to a file
 * in a private temporary directory.
 *
 * Oracles beyond "no crash, no sanitizer report": a refusal is a negative errno with a message;
 * an accepted file has a state directory and a server key path; freeing is clean either way
 * (ASan's leak check).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord_config.h"
#include "inputfiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct coord_config cfg;
    char err[1024] = "";

    inputfiles_reset();
    const char *path = inputfiles_write("coordinator.yaml", data, size);
    if (!path)
        abort();
    int r = coord_config_load(path, &cfg, err, sizeof(err));
    if (r > 0)
        abort();
    if (r < 0 && (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL))
        abort();
    if (r == 0 &&
        (!cfg.state_dir || !cfg.state_dir[0] || !cfg.server_key_file || !cfg.server_key_file[0]))
        abort();
    coord_config_free(&cfg);
    return 0;
}
