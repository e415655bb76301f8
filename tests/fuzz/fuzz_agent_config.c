/*
 * Fuzz target: the agent's configuration file as vigil-agent and vigil-agent-exec read it
 * (agent_config_load and agent_config_load_remediation in agent/agent_config.c): the key table
 * through libfyaml (common/config.c, common/yaml.c), the cross-checks, and the action catalog
 * with its parameter types, deny lists and the re-read positions of cfgcheck.c
 * (agent/actions*.c). The input is written to a file in a private temporary directory.
 *
 * Oracles beyond "no crash, no sanitizer report": a refusal is a negative errno with a message;
 * an accepted file has a node name, a state directory and a catalog whose every action can be
 * found by its name; freeing is clean either way (ASan's leak check).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "agent_config.h"
#include "inputfiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int r, const struct agent_config *cfg, const char *err)
{
    if (r > 0)
        abort();
    if (r < 0) {
        if (err[0] == '\0' || memchr(err, '\0', 1024) == NULL)
            abort();
        return;
    }
    if (!cfg->node || !cfg->node[0] || !cfg->state_dir || !cfg->state_dir[0] || !cfg->catalog)
        abort();
    for (size_t i = 0; i < actions_count(cfg->catalog); i++) {
        const struct action *a = actions_get(cfg->catalog, i);
        if (actions_find(cfg->catalog, a->name) != a)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_config cfg;
    char err[1024];

    inputfiles_reset();
    const char *path = inputfiles_write("agent.yaml", data, size);
    if (!path)
        abort();

    err[0] = '\0';
    int r = agent_config_load_remediation(path, &cfg, err, sizeof(err));
    check(r, &cfg, err);
    agent_config_free(&cfg);

    err[0] = '\0';
    r = agent_config_load(path, &cfg, err, sizeof(err));
    check(r, &cfg, err);
    agent_config_free(&cfg);
    return 0;
}
