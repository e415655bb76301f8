/*
 * vault-fill CONNINFO N: appends N empty artifacts to the evidence vault, each correctly
 * chained to the one before (store_evidence_chain, as the coordinator does), in one COPY, for
 * tests/bench/evidence.sh to time `vigilctl evidence verify` over a vault of a million rows
 * without collecting a million artifacts. Prints the last id. A benchmark tool: it writes to
 * the database directly and must never run against a vault that matters.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "store.h"

#define AGENT "bench-fill"
#define AT_MS INT64_C(1765000000000)

static int fail(PGconn *conn, const char *what)
{
    fprintf(stderr, "vault-fill: %s: %s", what, PQerrorMessage(conn));
    PQfinish(conn);
    return 1;
}

static void unhex(const char *hex, uint8_t out[32])
{
    for (size_t i = 0; i < 32; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vault-fill CONNINFO N\n");
        return 2;
    }
    long long n = atoll(argv[2]);
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK)
        return fail(conn, "connect");

    /* The chain's head and this tool's last artifact number, to go on from. */
    PGresult *res = PQexec(conn, "SELECT encode(chain, 'hex') FROM evidence ORDER BY id DESC LIMIT 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(conn, "head");
    uint8_t prev[32] = {0};
    if (PQntuples(res) == 1)
        unhex(PQgetvalue(res, 0, 0), prev);
    PQclear(res);
    res = PQexec(conn, "SELECT coalesce(max(agent_seq), 0) FROM evidence WHERE agent_id = '" AGENT "'");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(conn, "seq");
    uint64_t seq = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    res = PQexec(conn, "COPY evidence (collection_id, agent_id, agent_seq, artifact, node, kind, args,"
                       " collected_at, stored_at, size, sha256, truncated, prev_chain, chain)"
                       " FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return fail(conn, "copy");
    PQclear(res);

    uint8_t empty[32], chain[32];
    char empty_hex[65], prev_hex[65], chain_hex[65], line[512];
    struct vg_sha256 h;
    vg_sha256_init(&h);
    vg_sha256_final(&h, empty);
    vg_hex(empty, 32, empty_hex);
    for (long long i = 0; i < n; i++) {
        seq++;
        struct store_evidence_meta meta = {.collection_id = 1,
                                           .agent_id = AGENT,
                                           .agent_seq = seq,
                                           .artifact = seq,
                                           .node = "bench-node",
                                           .kind = "host",
                                           .collected_at_ms = AT_MS,
                                           .stored_at_ms = AT_MS};
        store_evidence_chain(prev, empty, &meta, chain);
        vg_hex(prev, 32, prev_hex);
        vg_hex(chain, 32, chain_hex);
        int len = snprintf(line, sizeof(line),
                           "1\t" AGENT "\t%" PRIu64 "\t%" PRIu64 "\tbench-node\thost\t{}\t"
                           "2025-12-06 05:46:40+00\t2025-12-06 05:46:40+00\t0\t\\\\x%s\tf\t"
                           "\\\\x%s\t\\\\x%s\n",
                           seq, seq, empty_hex, prev_hex, chain_hex);
        if (PQputCopyData(conn, line, len) != 1)
            return fail(conn, "copy data");
        memcpy(prev, chain, 32);
    }
    if (PQputCopyEnd(conn, NULL) != 1)
        return fail(conn, "copy end");
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(conn, "copy result");
    PQclear(res);
    PQfinish(conn);
    printf("%lld\n", n);
    return 0;
}
