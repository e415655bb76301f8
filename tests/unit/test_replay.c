/* Unit tests for the executor's replay cache (agent/replay.c): replays refused, across reopen and
 * crash-torn files; expired nonces dropped and the file compacted; a full cache refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOW INT64_C(1700000000000)
#define HEADER_LEN 16
#define REC_LEN 32

static char tmpdir[] = "/tmp/vigil-test-replay-XXXXXX";
static char dir[512];
static char file[600];
static char err[512];

static void new_dir(void)
{
    static int counter;
    snprintf(dir, sizeof(dir), "%s/%d", tmpdir, counter++);
    snprintf(file, sizeof(file), "%s/replay.log", dir);
}

static void nonce_of(unsigned n, unsigned char nonce[REPLAY_NONCE_LEN])
{
    memset(nonce, 0, REPLAY_NONCE_LEN);
    memcpy(nonce, &n, sizeof(n));
    nonce[15] = 0xa5;
}

static int add(replay_t *r, unsigned n, int64_t not_after, int64_t now)
{
    unsigned char nonce[REPLAY_NONCE_LEN];
    nonce_of(n, nonce);
    return replay_seen_or_add(r, nonce, not_after, now);
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    return st.st_size;
}

static replay_t *open_ok(size_t max)
{
    replay_t *r = replay_open(dir, max, err, sizeof(err));
    if (!r)
        fail_msg("replay_open: %s", err);
    return r;
}

static void assert_err_contains(const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not contain \"%s\"", err, needle);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_replay_refused(void **state)
{
    (void)state;
    struct stat st;

    new_dir();
    replay_t *r = open_ok(0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(add(r, 1, NOW + 300000, NOW), 0);
    assert_int_equal(add(r, 1, NOW + 300000, NOW + 1), -EALREADY);
    /* The nonce decides, not the time it claims. */
    assert_int_equal(add(r, 1, NOW + 900000, NOW + 2), -EALREADY);
    assert_int_equal(add(r, 2, NOW + 300000, NOW + 3), 0);
    assert_int_equal(replay_count(r), 2);
    /* Already expired: nothing to remember. */
    assert_int_equal(add(r, 3, NOW, NOW), -EINVAL);
    assert_int_equal(replay_count(r), 2);
    assert_int_equal(file_size(), HEADER_LEN + 2 * REC_LEN);

    /* One owner at a time. */
    assert_null(replay_open(dir, 0, err, sizeof(err)));
    assert_err_contains("in use by another process");
    replay_destroy(&r);
    assert_null(r);
    replay_destroy(&r);
    replay_destroy(NULL);
}

static void test_survives_reopen(void **state)
{
    (void)state;

    new_dir();
    replay_t *r = open_ok(0);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(add(r, i, NOW + 60000 + i, NOW), 0);
    replay_destroy(&r);

    r = open_ok(0);
    assert_int_equal(replay_count(r), 10);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(add(r, i, NOW + 60000 + i, NOW + 1000), -EALREADY);
    assert_int_equal(add(r, 10, NOW + 60000, NOW + 1000), 0);
    replay_destroy(&r);
}

/* A process killed right after seen_or_add returned: the nonce is on disk. */
static void test_survives_kill(void **state)
{
    (void)state;
    int status;

    new_dir();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        replay_t *child = replay_open(dir, 0, err, sizeof(err));
        if (!child || add(child, 77, NOW + 60000, NOW) != 0)
            _exit(1);
        _exit(0); /* no replay_destroy: as if killed */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    replay_t *r = open_ok(0);
    assert_int_equal(add(r, 77, NOW + 60000, NOW + 1), -EALREADY);
    replay_destroy(&r);
}

static void test_torn_tail_cut(void **state)
{
    (void)state;

    new_dir();
    replay_t *r = open_ok(0);
    assert_int_equal(add(r, 1, NOW + 60000, NOW), 0);
    assert_int_equal(add(r, 2, NOW + 60000, NOW), 0);
    replay_destroy(&r);

    /* A crash in the middle of appending a third record: 10 of its 32 bytes. */
    int fd = open(file, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);
    r = open_ok(0);
    assert_int_equal(replay_count(r), 2);
    assert_int_equal(file_size(), HEADER_LEN + 2 * REC_LEN);
    assert_int_equal(add(r, 2, NOW + 60000, NOW), -EALREADY);
    assert_int_equal(add(r, 3, NOW + 60000, NOW), 0);
    replay_destroy(&r);

    /* A whole last record of garbage (the write reached its size, not its data). */
    fd = open(file, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    char zeros[REC_LEN] = {0};
    assert_int_equal(write(fd, zeros, REC_LEN), REC_LEN);
    close(fd);
    r = open_ok(0);
    assert_int_equal(replay_count(r), 3);
    assert_int_equal(file_size(), HEADER_LEN + 3 * REC_LEN);
    replay_destroy(&r);
}

static void test_damage_refused(void **state)
{
    (void)state;

    new_dir();
    replay_t *r = open_ok(0);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(add(r, i, NOW + 60000, NOW), 0);
    replay_destroy(&r);

    /* One bit of the first record's nonce: open refuses rather than forget it. */
    int fd = open(file, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, HEADER_LEN + 3), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, HEADER_LEN + 3), 1);
    close(fd);
    assert_null(replay_open(dir, 0, err, sizeof(err)));
    assert_err_contains("is damaged (record 1 of 3 does not check)");

    /* Not a replay cache at all. */
    new_dir();
    assert_int_equal(mkdir(dir, 0700), 0);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "vigil-spool 1\n0 0 0 0 0 0\n", 26), 26);
    close(fd);
    assert_null(replay_open(dir, 0, err, sizeof(err)));
    assert_err_contains("bad header");

    /* A header cut short by a crash at creation: nothing was ever accepted, start afresh. */
    new_dir();
    assert_int_equal(mkdir(dir, 0700), 0);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "vigil-re", 8), 8);
    close(fd);
    r = open_ok(0);
    assert_int_equal(file_size(), HEADER_LEN);
    assert_int_equal(add(r, 1, NOW + 60000, NOW), 0);
    replay_destroy(&r);

    assert_null(replay_open(dir, REPLAY_MAX_ENTRIES_LIMIT + 1, err, sizeof(err)));
    assert_err_contains("at most");
}

static void test_expired_dropped_and_compacted(void **state)
{
    (void)state;

    new_dir();
    replay_t *r = open_ok(0);
    /* 40 nonces valid for 1 s, one for an hour. */
    for (unsigned i = 0; i < 40; i++)
        assert_int_equal(add(r, i, NOW + 1000, NOW), 0);
    assert_int_equal(add(r, 1000, NOW + 3600000, NOW), 0);
    assert_int_equal(file_size(), HEADER_LEN + 41 * REC_LEN);

    /* After they expire, their nonces are forgotten (a capsule that old is refused anyway)... */
    assert_int_equal(add(r, 0, NOW + 61000, NOW + 1000), 0);
    assert_int_equal(replay_count(r), 2);
    /* ...and the file was rewritten with the live ones only. */
    assert_int_equal(file_size(), HEADER_LEN + 2 * REC_LEN);
    assert_int_equal(add(r, 1000, NOW + 3600000, NOW + 1000), -EALREADY);
    replay_destroy(&r);

    r = open_ok(0);
    assert_int_equal(replay_count(r), 2);
    assert_int_equal(add(r, 0, NOW + 61000, NOW + 2000), -EALREADY);
    assert_int_equal(add(r, 1000, NOW + 3600000, NOW + 2000), -EALREADY);
    assert_int_equal(add(r, 5, NOW + 61000, NOW + 2000), 0);
    replay_destroy(&r);
}

static void test_full_cache_refuses(void **state)
{
    (void)state;

    new_dir();
    replay_t *r = open_ok(4);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(add(r, i, NOW + 10000 + i, NOW), 0);
    /* Full: a new nonce is refused, a replay is still a replay. */
    assert_int_equal(add(r, 4, NOW + 10000, NOW + 1), -ENOSPC);
    assert_int_equal(add(r, 2, NOW + 10002, NOW + 1), -EALREADY);
    assert_int_equal(replay_count(r), 4);
    /* Once the first expires there is room for one. */
    assert_int_equal(add(r, 4, NOW + 20000, NOW + 10000), 0);
    assert_int_equal(add(r, 5, NOW + 20000, NOW + 10000), -ENOSPC);
    assert_int_equal(add(r, 1, NOW + 10001, NOW + 10000), -EALREADY);
    replay_destroy(&r);

    /* Opened again with a smaller bound: every unexpired nonce is still held, nothing fits. */
    r = open_ok(2);
    assert_int_equal(add(r, 9, NOW + 20000, NOW + 10000), -ENOSPC);
    assert_int_equal(replay_count(r), 4);
    assert_int_equal(add(r, 3, NOW + 10003, NOW + 10000), -EALREADY);
    replay_destroy(&r);
}

/* A symlink in place of the log (O_NOFOLLOW) is refused, not followed. */
static void test_symlink_refused(void **state)
{
    (void)state;

    new_dir();
    replay_t *r = open_ok(0);
    assert_int_equal(add(r, 1, NOW + 60000, NOW), 0);
    replay_destroy(&r);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(symlink("/dev/null", file), 0);
    assert_null(replay_open(dir, 0, err, sizeof(err)));
    assert_err_contains("cannot open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_refused),
        cmocka_unit_test(test_survives_reopen),
        cmocka_unit_test(test_survives_kill),
        cmocka_unit_test(test_torn_tail_cut),
        cmocka_unit_test(test_damage_refused),
        cmocka_unit_test(test_expired_dropped_and_compacted),
        cmocka_unit_test(test_full_cache_refuses),
        cmocka_unit_test(test_symlink_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
