/*
 * evidence-fake-agent: one agent that answers CollectRequests from a file, for testing the
 * coordinator's evidence path without the real agent (and for what the real agent never
 * does: send bytes that do not match its hash).
 *
 *   evidence-fake-agent --endpoint E --server-key K --secret-file F --node NODE
 *                       --file PATH [--mode ok|tamper|error|silent|twice|partial] [--chunk BYTES]
 *                       [--requests N]
 *
 * Enrolls with a bootstrap token, prints "ready agent=ID" and heartbeats; answers each
 * CollectRequest with PATH in chunks (ok), with one byte changed after hashing (tamper), or
 * with an error chunk (error), or not at all (silent); exits 0 after N requests are answered and
 * acknowledged. Not built by default: cc -I<build>/proto -Icommon ... (see the report of the
 * evidence work).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "digest.h"
#include "fake_wire.h"
#include "keys.h"
#include "timeutil.h"
#include "token.h"
#include "wire.h"

static void die(const char *what)
{
    fprintf(stderr, "evidence-fake-agent: %s\n", what);
    exit(2);
}

static void send_env(void *s, Vigil__Envelope *env)
{
    fake_wire_send("evidence-fake-agent", s, env);
}

static Vigil__Envelope *receive(void *s, int timeout_ms)
{
    return fake_wire_receive("evidence-fake-agent", s, timeout_ms);
}

static uint8_t *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open --file");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(len > 0 ? (size_t)len : 1);
    if (!data || (len > 0 && fread(data, 1, (size_t)len, f) != (size_t)len))
        die("cannot read --file");
    fclose(f);
    *ret_len = (size_t)len;
    return data;
}

/* Spools nothing: sends every chunk at once and returns the last seq used. */
static uint64_t answer(void *s, const char *id, uint64_t seq, const Vigil__CollectRequest *req,
                       const char *mode, const uint8_t *file, size_t file_len, size_t chunk)
{
    Vigil__EvidenceChunk c = VIGIL__EVIDENCE_CHUNK__INIT;
    Vigil__Envelope env;
    uint8_t sha[VG_SHA256_LEN];
    uint8_t *data = malloc(file_len ? file_len : 1);
    memcpy(data, file, file_len);
    vg_sha256(data, file_len, sha);
    if (strcmp(mode, "tamper") == 0 && file_len > 0)
        data[file_len / 2] ^= 0x01; /* changed after the hash: the coordinator must notice */

    c.collection_id = req->collection_id;
    c.kind = req->kind;
    c.args = req->args;
    c.n_args = req->n_args;
    c.collected_at_ms = vg_wall_ms();
    c.artifact = seq;
    if (strcmp(mode, "error") == 0) {
        c.error = "path /etc/shadow is outside the allowed directories";
        c.last = true;
        vg_envelope_init(&env, id, seq);
        env.body_case = VIGIL__ENVELOPE__BODY_EVIDENCE;
        env.evidence = &c;
        send_env(s, &env);
        free(data);
        return seq;
    }
    /* "twice": two whole artifacts for one request, back to back (one batch at the
     * coordinator): only the first may enter the vault. */
    int copies = strcmp(mode, "twice") == 0 ? 2 : 1;
    for (int copy = 0; copy < copies; copy++) {
        c.artifact = seq;
        c.total_size = 0;
        c.sha256.data = NULL;
        c.sha256.len = 0;
        size_t off = 0;
        do {
            size_t n = file_len - off < chunk ? file_len - off : chunk;
            c.offset = off;
            c.data.data = data + off;
            c.data.len = n;
            c.last = off + n == file_len;
            if (c.last) {
                c.total_size = file_len;
                c.sha256.data = sha;
                c.sha256.len = VG_SHA256_LEN;
            }
            vg_envelope_init(&env, id, seq);
            env.body_case = VIGIL__ENVELOPE__BODY_EVIDENCE;
            env.evidence = &c;
            /* "partial": every chunk but the last, so the upload never completes */
            if (!(c.last && strcmp(mode, "partial") == 0))
                send_env(s, &env);
            off += n;
            seq++;
        } while (off < file_len);
    }
    free(data);
    return seq - 1;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *server_key = NULL, *secret_file = NULL, *node = NULL;
    const char *path = NULL, *mode = "ok";
    size_t chunk = 256 * 1024;
    int requests = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--server-key") == 0)
            server_key = argv[i + 1];
        else if (strcmp(argv[i], "--secret-file") == 0)
            secret_file = argv[i + 1];
        else if (strcmp(argv[i], "--node") == 0)
            node = argv[i + 1];
        else if (strcmp(argv[i], "--file") == 0)
            path = argv[i + 1];
        else if (strcmp(argv[i], "--mode") == 0)
            mode = argv[i + 1];
        else if (strcmp(argv[i], "--chunk") == 0)
            chunk = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--requests") == 0)
            requests = (int)strtol(argv[i + 1], NULL, 10);
        else
            die("unknown option");
    }
    if (!endpoint || !server_key || !secret_file || !node || !path || chunk == 0 ||
        chunk > VG_MAX_EVIDENCE_CHUNK_BYTES)
        die("usage: see the comment at the top of evidence-fake-agent.c");

    size_t file_len;
    uint8_t *file = read_file(path, &file_len);
    char *secret, err[256];
    size_t secret_len;
    if (vg_secret_file_read(secret_file, &secret, &secret_len, err, sizeof(err)) < 0)
        die(err);
    struct vg_keypair keys;
    if (vg_keypair_generate(&keys) < 0)
        die("keygen failed");
    char id[VG_AGENT_ID_LEN + 1];
    vg_agent_id_from_key(keys.public_key, id);

    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (vg_zmq_common_options(s, 1000, VG_LIVENESS_TCP) < 0 ||
        vg_zmq_curve_client(s, keys.public_key, keys.secret_key, server_key) < 0 ||
        zmq_connect(s, endpoint) < 0)
        die("connect failed");

    Vigil__Enroll enroll = VIGIL__ENROLL__INIT;
    uint8_t token[VG_TOKEN_LEN];
    vg_token_compute(secret, secret_len, keys.public_key, token);
    enroll.node = (char *)node;
    enroll.agent_version = "fake";
    enroll.token.data = token;
    enroll.token.len = sizeof(token);
    Vigil__Envelope env;
    vg_envelope_init(&env, id, 0);
    env.body_case = VIGIL__ENVELOPE__BODY_ENROLL;
    env.enroll = &enroll;
    send_env(s, &env);

    uint64_t next_seq = 1, last_sent = 0, acked = 0;
    int answered = 0;
    int64_t next_heartbeat = 0, deadline = vg_mono_ms() + 120000;
    bool ready = false;
    while (vg_mono_ms() < deadline) {
        if (ready && vg_mono_ms() >= next_heartbeat) {
            Vigil__Heartbeat hb = VIGIL__HEARTBEAT__INIT;
            vg_envelope_init(&env, id, 0);
            env.body_case = VIGIL__ENVELOPE__BODY_HEARTBEAT;
            env.heartbeat = &hb;
            send_env(s, &env);
            next_heartbeat = vg_mono_ms() + 500;
        }
        Vigil__Envelope *in = receive(s, 100);
        if (!in)
            continue;
        if (in->body_case == VIGIL__ENVELOPE__BODY_ENROLL_REPLY && !ready) {
            ready = true;
            printf("ready agent=%s\n", id);
            fflush(stdout);
        } else if (in->body_case == VIGIL__ENVELOPE__BODY_ACK) {
            for (size_t i = 0; i < in->ack->n_ranges; i++)
                if (in->ack->ranges[i]->last > acked)
                    acked = in->ack->ranges[i]->last;
        } else if (in->body_case == VIGIL__ENVELOPE__BODY_COLLECT && strcmp(mode, "silent") != 0) {
            last_sent = answer(s, id, next_seq, in->collect, mode, file, file_len, chunk);
            next_seq = last_sent + 1;
            answered++;
        } else if (in->body_case == VIGIL__ENVELOPE__BODY_REFUSAL) {
            fprintf(stderr, "evidence-fake-agent: refused: %s\n", in->refusal->reason);
        }
        vg_envelope_free(in);
        if (answered >= requests && acked >= last_sent) {
            zmq_close(s);
            zmq_ctx_term(ctx);
            return 0;
        }
    }
    die("timed out");
}
