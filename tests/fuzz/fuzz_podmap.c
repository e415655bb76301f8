/*
 * Fuzz target: the names podmap (agent/collect/podmap.c) reads from /var/log/pods and
 * /var/log/containers, which anyone who can create a directory there chooses. Each line of the
 * input is one directory entry's name, read as a pod directory, a container directory and a
 * container log link.
 *
 * Oracles beyond "no crash, no sanitizer report": whatever is accepted round-trips (the parts
 * put back together with their separators are the name itself), every part is a terminated
 * string within its field, and a container id is 64 lowercase hex digits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "podmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *field, size_t cap)
{
    if (memchr(field, '\0', cap) == NULL)
        abort();
}

static void one_name(const char *name)
{
    struct pod_identity id;
    char cid[PROCFS_CONTAINER_ID_MAX], back[1024];

    if (podmap_parse_pod_dir(name, &id) == 0) {
        check_text(id.namespace, sizeof(id.namespace));
        check_text(id.pod, sizeof(id.pod));
        check_text(id.uid, sizeof(id.uid));
        snprintf(back, sizeof(back), "%s_%s_%s", id.namespace, id.pod, id.uid);
        if (strcmp(back, name) != 0 || id.container[0] != '\0')
            abort();
    }
    if (podmap_container_name_valid(name) && (strlen(name) > 63 || strchr(name, '_')))
        abort();
    if (podmap_parse_container_link(name, &id, cid) == 0) {
        check_text(id.container, sizeof(id.container));
        if (strlen(cid) != 64 || strspn(cid, "0123456789abcdef") != 64)
            abort();
        snprintf(back, sizeof(back), "%s_%s_%s-%s.log", id.pod, id.namespace, id.container, cid);
        if (strcmp(back, name) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        one_name(line); /* a NUL inside ends the name early, as it would a directory entry's */
    }
    free(text);
    return 0;
}
