/*
 * Fuzz target: the runbook loader (coordinator/incidents/runbook_load.c, runbook_parse.c,
 * runbook_condition.c, runbook_yaml.c), which reads every YAML file of the runbooks directory.
 *
 * The input is loaded twice: whole, as one file (runbooks_load_file); and split into files
 * (inputfiles.h: parts "<name>\n<content>" separated by INPUTFILES_SEPARATOR) as a directory
 * (runbooks_load_dir), which adds the checks across files (unique ids, depends_on, cycles).
 *
 * Oracles beyond "no crash, no sanitizer report": a refusal comes with a message; a loaded set
 * finds each of its runbooks by id; a single file loads as exactly one runbook.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inputfiles.h"
#include "runbook_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(struct rb_set *set, const char *err, size_t want)
{
    if (!set) {
        if (err[0] == '\0')
            abort();
        return;
    }
    if (want && set->n != want)
        abort();
    for (size_t i = 0; i < set->n; i++) {
        if (runbooks_find(set, set->runbooks[i].id) != &set->runbooks[i])
            abort();
        (void)rb_severity_name(set->runbooks[i].severity);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024] = "";

    inputfiles_reset();
    const char *path = inputfiles_write("runbook.yaml", data, size);
    if (!path)
        abort();
    struct rb_set *set = runbooks_load_file(path, err, sizeof(err));
    check(set, err, 1);
    runbooks_free(&set);

    if (inputfiles_unpack(data, size) > 0) {
        err[0] = '\0';
        set = runbooks_load_dir(inputfiles_dir(), err, sizeof(err));
        check(set, err, 0);
        runbooks_free(&set);
    }
    return 0;
}
