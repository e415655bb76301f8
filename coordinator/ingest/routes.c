#include "routes.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ROUTING_ID_MAX 255
/* Connections an agent has left, remembered so their late bytes cannot take its route back. */
#define LEFT_MAX 4

struct pending {
    uint64_t key;
    int64_t expires_wall_ms;
    size_t len;
    uint8_t *envelope;
};

struct route {
    uint8_t rid[ROUTING_ID_MAX];
    size_t rid_len;
    uint64_t left[LEFT_MAX]; /* hashes of the routing ids it spoke on before */
    unsigned nleft;
    struct pending *pending; /* allocated on the first request: most agents have none */
    unsigned npending;
};

struct routes {
    zhashx_t *by_agent; /* agent id -> struct route */
};

static void route_free(void **item)
{
    struct route *r = *item;
    if (r) {
        for (unsigned i = 0; i < r->npending; i++)
            free(r->pending[i].envelope);
        free(r->pending);
        free(r);
    }
    *item = NULL;
}

routes_t *routes_new(void)
{
    routes_t *self = calloc(1, sizeof(*self));
    if (!self || !(self->by_agent = zhashx_new())) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->by_agent, route_free);
    return self;
}

void routes_destroy(routes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->by_agent);
    free(*self_p);
    *self_p = NULL;
}

/* FNV-1a: identities compared among an agent's own, not defended against collisions. */
static uint64_t fnv1a(const uint8_t *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

bool routes_update(routes_t *self, const char *agent_id, const uint8_t *rid, size_t rid_len)
{
    if (rid_len > ROUTING_ID_MAX)
        rid_len = ROUTING_ID_MAX;
    struct route *r = zhashx_lookup(self->by_agent, agent_id);
    if (r && r->rid_len == rid_len && memcmp(r->rid, rid, rid_len) == 0)
        return false;
    bool moved = false;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return false;
        if (zhashx_insert(self->by_agent, agent_id, r) != 0) {
            free(r);
            return false;
        }
    } else {
        /* libzmq never reuses a routing id: one the agent has left is an old connection. */
        uint64_t hash = fnv1a(rid, rid_len);
        for (unsigned i = 0; i < r->nleft; i++)
            if (r->left[i] == hash)
                return false;
        if (r->nleft == LEFT_MAX)
            memmove(r->left, r->left + 1, sizeof(r->left[0]) * (LEFT_MAX - 1));
        else
            r->nleft++;
        r->left[r->nleft - 1] = fnv1a(r->rid, r->rid_len);
        moved = true;
    }
    memcpy(r->rid, rid, rid_len);
    r->rid_len = rid_len;
    return moved;
}

const uint8_t *routes_lookup(const routes_t *self, const char *agent_id, size_t *rid_len)
{
    const struct route *r = zhashx_lookup(self->by_agent, agent_id);
    if (!r)
        return NULL;
    *rid_len = r->rid_len;
    return r->rid;
}

void routes_forget(routes_t *self, const char *agent_id)
{
    zhashx_delete(self->by_agent, agent_id);
}

uint64_t routes_key_collection(uint64_t collection_id)
{
    return collection_id << 1; /* even: collections; odd: commands */
}

uint64_t routes_key_command(const char *request_id)
{
    return fnv1a((const uint8_t *)request_id, strlen(request_id)) | 1;
}

static void drop_pending(struct route *r, unsigned i)
{
    free(r->pending[i].envelope);
    memmove(r->pending + i, r->pending + i + 1, sizeof(r->pending[0]) * (r->npending - i - 1));
    r->npending--;
}

int routes_remember(routes_t *self, const char *agent_id, uint64_t key, const void *envelope,
                    size_t len, int64_t expires_wall_ms)
{
    struct route *r = zhashx_lookup(self->by_agent, agent_id);
    if (!r)
        return 0; /* never sent: nothing to resend */
    if (!r->pending && !(r->pending = calloc(ROUTES_PENDING_MAX, sizeof(*r->pending))))
        return -ENOMEM;
    for (unsigned i = 0; i < r->npending; i++)
        if (r->pending[i].key == key)
            drop_pending(r, i--); /* the newer copy replaces it */
    if (r->npending == ROUTES_PENDING_MAX)
        drop_pending(r, 0);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, envelope, len);
    r->pending[r->npending++] = (struct pending){
        .key = key, .expires_wall_ms = expires_wall_ms, .len = len, .envelope = copy};
    return 0;
}

static void release_if_empty(struct route *r)
{
    if (r->npending == 0) {
        free(r->pending);
        r->pending = NULL;
    }
}

void routes_answered(routes_t *self, const char *agent_id, uint64_t key)
{
    struct route *r = zhashx_lookup(self->by_agent, agent_id);
    if (!r)
        return;
    for (unsigned i = 0; i < r->npending; i++)
        if (r->pending[i].key == key)
            drop_pending(r, i--);
    release_if_empty(r);
}

unsigned routes_resend(routes_t *self, const char *agent_id, int64_t now_wall_ms,
                       routes_send_fn send, void *userdata)
{
    struct route *r = zhashx_lookup(self->by_agent, agent_id);
    unsigned sent = 0;
    if (!r)
        return 0;
    for (unsigned i = 0; i < r->npending; i++) {
        if (r->pending[i].expires_wall_ms <= now_wall_ms) {
            drop_pending(r, i--);
            continue;
        }
        if (send(userdata, r->rid, r->rid_len, r->pending[i].envelope, r->pending[i].len) == 0)
            sent++;
    }
    release_if_empty(r);
    return sent;
}

unsigned routes_pending(const routes_t *self, const char *agent_id)
{
    const struct route *r = zhashx_lookup(self->by_agent, agent_id);
    return r ? r->npending : 0;
}
