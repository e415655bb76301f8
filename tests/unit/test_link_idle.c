/*
 * The agent's link while the coordinator cannot be reached: its next deadline must stay in the
 * future, since it is how long the agent's loop sleeps. It used to stay at the first missed
 * heartbeat, so an agent whose coordinator was down (or not up yet: a DaemonSet starting before
 * the coordinator) polled without sleeping, a fifth of a core, until it connected.
 */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keys.h"
#include "link.h"
#include "spool.h"
#include "wire.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define HEARTBEAT_MS 100

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_unreachable_coordinator_lets_the_loop_sleep(void **state)
{
    (void)state;
    char dir[64], spool_dir[96], endpoint[128], err[256] = "", agent_id[VG_AGENT_ID_LEN + 1];
    struct vg_keypair server, agent;

    snprintf(dir, sizeof(dir), "/tmp/vigil-link-idle-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(spool_dir, sizeof(spool_dir), "%s/spool", dir);
    snprintf(endpoint, sizeof(endpoint), "ipc://%s/nobody-listens", dir);
    assert_int_equal(vg_keypair_generate(&server), 0);
    assert_int_equal(vg_keypair_generate(&agent), 0);
    vg_agent_id_from_key(agent.public_key, agent_id);
    struct spool_limits limits = {0};
    spool_t *spool = spool_open(spool_dir, &limits, err, sizeof(err));
    assert_non_null(spool);
    void *ctx = zmq_ctx_new();
    assert_non_null(ctx);
    struct link_config cfg = {
        .endpoint = endpoint,
        .server_public_key = server.public_key,
        .keys = &agent,
        .agent_id = agent_id,
        .node = "idle-node",
        .heartbeat_interval_ms = HEARTBEAT_MS,
        .max_inflight = 16,
        .ack_timeout_ms = 1000,
        .reconnect_min_ms = 50,
        .reconnect_max_ms = 200,
    };
    link_t *link = link_new(ctx, &cfg, spool, err, sizeof(err));
    assert_non_null(link);

    /* Past several heartbeat deadlines, never connected: each turn still has time to sleep. */
    for (int turn = 0; turn < 6; turn++) {
        sleep_ms(HEARTBEAT_MS + HEARTBEAT_MS / 2);
        link_handle_monitor(link);
        link_tick(link);
        int64_t wait = link_next_timeout(link);
        assert_true(wait > 0);
        assert_true(wait <= HEARTBEAT_MS);
    }
    struct link_status ls;
    link_get_status(link, &ls);
    assert_false(ls.connected);
    assert_int_equal(ls.last_contact_ms, 0);

    link_destroy(&link);
    zmq_ctx_term(ctx);
    spool_destroy(&spool);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_coordinator_lets_the_loop_sleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
