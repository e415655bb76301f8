/* Running SHA-256 of artifacts being uploaded (see artifact_hash.h). */
#include "artifact_hash.h"

#include <string.h>

static struct artifact_hash_slot *find(struct artifact_hashes *t, const char *agent_id,
                                       uint64_t artifact)
{
    for (size_t i = 0; i < ARTIFACT_HASH_SLOTS; i++) {
        struct artifact_hash_slot *s = &t->slots[i];
        if (s->used && s->artifact == artifact && strcmp(s->agent_id, agent_id) == 0)
            return s;
    }
    return NULL;
}

static void drop(struct artifact_hash_slot *s)
{
    vg_sha256_discard(&s->hash);
    s->used = false;
}

/* A free slot, or the least recently fed one emptied. */
static struct artifact_hash_slot *claim(struct artifact_hashes *t)
{
    struct artifact_hash_slot *oldest = &t->slots[0];

    for (size_t i = 0; i < ARTIFACT_HASH_SLOTS; i++) {
        struct artifact_hash_slot *s = &t->slots[i];
        if (!s->used)
            return s;
        if (s->last_fed < oldest->last_fed)
            oldest = s;
    }
    drop(oldest);
    return oldest;
}

void artifact_hash_feed(struct artifact_hashes *t, const char *agent_id, uint64_t artifact,
                        uint64_t offset, const void *data, size_t len)
{
    struct artifact_hash_slot *s = find(t, agent_id, artifact);

    if (s && offset != s->next_offset) {
        drop(s); /* out of order, or fed again after a rollback: the chunks decide */
        return;
    }
    if (!s) {
        size_t id_len = strnlen(agent_id, ARTIFACT_HASH_AGENT_MAX + 1);
        if (offset != 0 || id_len > ARTIFACT_HASH_AGENT_MAX)
            return; /* began before this process, or its slot was taken: the chunks decide */
        s = claim(t);
        s->used = true;
        memcpy(s->agent_id, agent_id, id_len);
        s->agent_id[id_len] = '\0';
        s->artifact = artifact;
        s->next_offset = 0;
        vg_sha256_init(&s->hash);
    }
    vg_sha256_update(&s->hash, data, len);
    s->next_offset += len;
    s->last_fed = ++t->clock;
}

bool artifact_hash_take(struct artifact_hashes *t, const char *agent_id, uint64_t artifact,
                        uint64_t total, uint8_t ret_sha[VG_SHA256_LEN])
{
    struct artifact_hash_slot *s = find(t, agent_id, artifact);

    if (!s)
        return false;
    if (s->next_offset != total) {
        drop(s);
        return false;
    }
    vg_sha256_final(&s->hash, ret_sha);
    s->used = false;
    return true;
}

void artifact_hash_clear(struct artifact_hashes *t)
{
    for (size_t i = 0; i < ARTIFACT_HASH_SLOTS; i++)
        if (t->slots[i].used)
            drop(&t->slots[i]);
}
