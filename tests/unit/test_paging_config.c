/*
 * The paging configuration as coord_config loads it (under `paging:` in coordinator.yaml, or
 * from paging.file): a valid team, the built-in policies, and each refusal with its exact
 * "file:line:col: message".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord_config.h"
#include "paging_config.h"
#include "runbook.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-paging.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/coordinator.yaml", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "%s/coordinator.yaml", dir);
    unlink(cmd);
    snprintf(cmd, sizeof(cmd), "%s/team.yaml", dir);
    unlink(cmd);
    snprintf(cmd, sizeof(cmd), "%s/runbook.yaml", dir);
    unlink(cmd);
    rmdir(dir);
    return 0;
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads coordinator.yaml made of the common head and body (line 1 is "state_dir"). */
static int load(const char *body, struct coord_config *cfg, char *err, size_t errlen)
{
    char text[8192];
    snprintf(text, sizeof(text), "state_dir: /tmp/vigil-paging-state\n%s", body);
    write_file(path, text);
    err[0] = '\0';
    return coord_config_load(path, cfg, err, errlen);
}

/* Loads body and expects the error "<path>:<where> message". */
static void refused(const char *body, const char *where_msg)
{
    struct coord_config cfg;
    char err[1024], want[1024];
    int r = load(body, &cfg, err, sizeof(err));
    snprintf(want, sizeof(want), "%s:%s", path, where_msg);
    if (r == 0)
        fail_msg("accepted, expected: %s", want);
    assert_string_equal(err, want);
    coord_config_free(&cfg);
}

/* A team the way the README shows it (line numbers matter for the refusals below). */
#define CONTACTS                                                                                   \
    "paging:\n"                                                                        /* 2 */     \
    "  smtp: {url: \"smtp://127.0.0.1:2525\", from: vigil@example.com}\n"              /* 3 */     \
    "  contacts:\n"                                                                    /* 4 */     \
    "    - {name: alice, slack: \"http://127.0.0.1:9/a\", email: alice@example.com}\n" /* 5 */     \
    "    - {name: bob, pagerduty: R0UT1NGKEY}\n"                                       /* 6 */     \
    "    - {name: carol, webhook: \"https://hooks.example.com/c\"}\n"                  /* 7 */     \
    "    - {name: manager, email: manager@example.com}\n"                              /* 8 */     \
    "    - {name: cto, email: cto@example.com}\n"                                      /* 9 */     \
    "    - {name: stakeholders, email: stakeholders@example.com}\n"                    /* 10 */    \
    "    - {name: security, email: security@example.com}\n"                            /* 11 */    \
    "    - {name: alerts, slack: \"http://127.0.0.1:9/alerts\"}\n"                     /* 12 */

#define SCHEDULES                                                                                  \
    "  schedules:\n"                      /* 13 */                                                 \
    "    - name: primary\n"               /* 14 */                                                 \
    "      timezone: Europe/Berlin\n"     /* 15 */                                                 \
    "      handover: \"Mon 09:00\"\n"     /* 16 */                                                 \
    "      start: 2024-03-04\n"           /* 17 */                                                 \
    "      users: [alice, bob, carol]\n"  /* 18 */                                                 \
    "    - name: secondary\n"             /* 19 */                                                 \
    "      timezone: America/New_York\n"  /* 20 */                                                 \
    "      handover: \"tuesday 10:30\"\n" /* 21 */                                                 \
    "      start: 2024-03-05\n"           /* 22 */                                                 \
    "      users: [carol, alice]\n"       /* 23 */

static void test_valid_team(void **state)
{
    (void)state;
    struct coord_config cfg;
    char err[1024];
    int r = load(CONTACTS SCHEDULES "  policies:\n"
                                    "    - name: platform\n"
                                    "      repeat: 2\n"
                                    "      levels:\n"
                                    "        - {delay: 0s, targets: [\"schedule:primary\"]}\n"
                                    "        - {delay: 5m, targets: [\"schedule:secondary\", "
                                    "\"contact:manager\"]}\n"
                                    "  routing:\n"
                                    "    SEV1: {policy: platform, also: [\"contact:manager\", "
                                    "\"contact:stakeholders\"]}\n"
                                    "    SEV2: {also: [\"contact:manager\"]}\n"
                                    "  announce: [\"contact:alerts\"]\n"
                                    "  notify: {attempts: 3, backoff: 1s}\n",
                 &cfg, err, sizeof(err));
    if (r != 0)
        fail_msg("refused: %s", err);
    const struct paging_config *p = &cfg.paging;
    assert_true(paging_enabled(p));
    assert_int_equal(p->contacts.count, 8);
    assert_int_equal(p->schedules.count, 2);

    const struct paging_schedule *s = paging_schedule_find(p, "secondary");
    assert_non_null(s);
    assert_int_equal(s->handover_wday, 2);
    assert_int_equal(s->handover_hour, 10);
    assert_int_equal(s->handover_minute, 30);
    assert_int_equal(s->start_year, 2024);
    assert_int_equal(s->start_month, 3);
    assert_int_equal(s->start_day, 5);

    const struct paging_policy *pol = paging_policy_find(p, "platform");
    assert_non_null(pol);
    assert_false(pol->builtin);
    assert_int_equal(pol->repeat, 2);
    assert_int_equal(pol->levels.count, 2);
    assert_int_equal(paging_policy_level(pol, 1)->delay_ms, 5 * 60 * 1000);
    assert_null(paging_policy_level(pol, 2));

    /* The built-ins are there: the document's timeline. */
    const struct paging_policy *def = paging_policy_find(p, "default");
    assert_non_null(def);
    assert_true(def->builtin);
    assert_int_equal(def->levels.count, 4);
    static const int64_t delays[] = {0, 15, 30, 60};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(paging_policy_level(def, i)->delay_ms, delays[i] * 60 * 1000);
    assert_string_equal(paging_policy_level(def, 0)->targets.items[0], "schedule:primary");
    assert_int_equal(paging_policy_level(def, 0)->targets.count, 1);
    assert_string_equal(paging_policy_level(def, 3)->targets.items[1], "contact:stakeholders");
    const struct paging_policy *sec = paging_policy_find(p, "security");
    assert_non_null(sec);
    assert_int_equal(paging_policy_level(sec, 0)->targets.count, 2);
    assert_string_equal(paging_policy_level(sec, 0)->targets.items[1], "contact:security");

    /* Routing. */
    assert_string_equal(paging_route_for(p, 1)->policy, "platform");
    assert_int_equal(paging_route_for(p, 1)->also.count, 2);
    assert_string_equal(paging_route_for(p, 2)->policy, "default");
    assert_int_equal(paging_route_for(p, 2)->also.count, 1);
    assert_int_equal(paging_route_for(p, 4)->also.count, 0);
    assert_null(paging_route_for(p, 0));
    assert_null(paging_route_for(p, 5));

    /* Targets and channels. */
    struct paging_target t;
    assert_int_equal(paging_target_resolve(p, "schedule:primary", &t), 0);
    assert_int_equal(t.kind, PAGING_TARGET_SCHEDULE);
    assert_string_equal(t.schedule->name, "primary");
    assert_int_equal(paging_target_resolve(p, "contact:bob", &t), 0);
    assert_int_equal(t.kind, PAGING_TARGET_CONTACT);
    assert_string_equal(paging_contact_address(t.contact, PAGING_CHANNEL_PAGERDUTY), "R0UT1NGKEY");
    assert_string_equal(paging_contact_address(t.contact, PAGING_CHANNEL_SLACK), "");
    assert_true(paging_channel_usable(p, t.contact, PAGING_CHANNEL_PAGERDUTY));
    assert_false(paging_channel_usable(p, t.contact, PAGING_CHANNEL_EMAIL));
    assert_int_equal(paging_target_resolve(p, "contact:nobody", &t), -ENOENT);
    assert_int_equal(paging_target_resolve(p, "person:bob", &t), -EINVAL);
    assert_string_equal(paging_channel_name(PAGING_CHANNEL_EMAIL), "email");

    /* Defaults and the values set. */
    assert_int_equal(p->status_update_interval_ms, 30 * 60 * 1000);
    assert_int_equal(p->report_due_ms, 24 * 3600 * 1000LL);
    assert_int_equal(p->notify_attempts, 3);
    assert_int_equal(p->notify_backoff_ms, 1000);
    assert_int_equal(p->notify_max_backoff_ms, 5 * 60 * 1000);
    assert_int_equal(p->notify_timeout_ms, 10 * 1000);
    assert_string_equal(p->pagerduty_url, "https://events.pagerduty.com/v2/enqueue");
    assert_string_equal(p->smtp_from, "vigil@example.com");
    assert_int_equal(p->announce.count, 1);
    coord_config_free(&cfg);
}

/* No paging keys: paging is off, and the built-ins are not required. */
static void test_paging_off(void **state)
{
    (void)state;
    struct coord_config cfg;
    char err[1024];
    assert_int_equal(load("log: {level: info}\n", &cfg, err, sizeof(err)), 0);
    assert_false(paging_enabled(&cfg.paging));
    assert_null(paging_policy_find(&cfg.paging, "default"));
    struct rb_runbook rb = {.id = "x", .policy = "nosuch", .file = path};
    struct rb_set set = {.runbooks = &rb, .n = 1};
    assert_int_equal(paging_check_runbooks(&cfg.paging, &set, err, sizeof(err)), 0);
    coord_config_free(&cfg);
}

/* "which is how escalations silently fail elsewhere": every way a level reaches nobody. */
static void test_level_reaches_nobody(void **state)
{
    (void)state;
    refused("paging:\n"
            "  contacts:\n"
            "    - {name: oncall, slack: \"http://127.0.0.1:9/a\"}\n"
            "    - {name: cto, email: cto@example.com}\n"
            "  policies:\n"
            "    - name: default\n"
            "      levels:\n"
            "        - {delay: 0s, targets: [\"contact:oncall\"]}\n"
            "        - {delay: 1h, targets: [\"contact:cto\"]}\n",
            "10:33: \"paging.policies[0].levels[1].targets\": level 2 of policy \"default\" "
            "reaches nobody: contact \"cto\" has only e-mail, and paging.smtp.url is not set");
    refused("paging:\n"
            "  contacts:\n"
            "    - {name: oncall, slack: \"http://127.0.0.1:9/a\"}\n"
            "  policies:\n"
            "    - name: default\n"
            "      levels:\n"
            "        - delay: 0s\n"
            "          targets: []\n",
            "9:11: \"paging.policies[0].levels[0].targets\": level 1 of policy \"default\" "
            "reaches nobody: it has no targets");
    /* A schedule with one user nobody can reach leaves a week without a page. */
    refused("paging:\n"
            "  contacts:\n"
            "    - {name: a, slack: \"http://127.0.0.1:9/a\"}\n"
            "    - {name: b, email: b@example.com}\n"
            "  schedules:\n"
            "    - {name: primary, start: 2024-03-04, users: [a, b]}\n"
            "  policies:\n"
            "    - name: default\n"
            "      levels: [{targets: [\"schedule:primary\"]}]\n",
            "10:27: \"paging.policies[0].levels[0].targets\": level 1 of policy \"default\" "
            "reaches nobody: schedule \"primary\" has a week nobody is paged: contact \"b\" has "
            "only e-mail, and paging.smtp.url is not set");
    /* Reachable levels, but an e-mail address that can never be sent to. */
    refused("paging:\n"
            "  contacts:\n"
            "    - {name: a, slack: \"http://127.0.0.1:9/a\", email: a@example.com}\n"
            "  policies:\n"
            "    - name: default\n"
            "      levels: [{targets: [\"contact:a\"]}]\n",
            "4:55: \"paging.contacts[0].email\": contact \"a\" has an e-mail address, but "
            "paging.smtp.url is not set");
}

static void test_unknown_names(void **state)
{
    (void)state;
    refused(CONTACTS "  policies:\n"
                     "    - name: default\n"
                     "      levels:\n"
                     "        - {delay: 0s, targets: [\"contact:alice\", \"contact:dave\"]}\n",
            "16:50: \"paging.policies[0].levels[0].targets[1]\": no contact named \"dave\"");
    refused(CONTACTS "  policies:\n"
                     "    - name: default\n"
                     "      levels:\n"
                     "        - {delay: 0s, targets: [\"schedule:oncall\"]}\n",
            "16:33: \"paging.policies[0].levels[0].targets[0]\": no schedule named \"oncall\"");
    refused(CONTACTS "  policies:\n"
                     "    - name: default\n"
                     "      levels:\n"
                     "        - {delay: 0s, targets: [\"alice\"]}\n",
            "16:33: \"paging.policies[0].levels[0].targets[0]\": must be \"schedule:NAME\" or "
            "\"contact:NAME\" (got \"alice\")");
    refused(CONTACTS "  schedules:\n"
                     "    - {name: primary, start: 2024-03-04, users: [alice, dave]}\n",
            "14:57: \"paging.schedules[0].users[1]\": no contact named \"dave\"");
    refused(CONTACTS SCHEDULES "  routing:\n"
                               "    SEV1: {policy: nosuch}\n",
            "25:20: \"paging.routing.SEV1.policy\": no policy named \"nosuch\"");
    refused(CONTACTS SCHEDULES "  routing:\n"
                               "    SEV2:\n"
                               "      also: [\"contact:partners\"]\n",
            "26:14: \"paging.routing.SEV2.also[0]\": no contact named \"partners\"");
}

static void test_schedule_refusals(void **state)
{
    (void)state;
    refused(CONTACTS "  schedules:\n"
                     "    - {name: primary, timezone: Europe/Berlln, start: 2024-03-04, users: "
                     "[alice]}\n",
            "14:33: \"paging.schedules[0].timezone\": timezone \"Europe/Berlln\" is not a time "
            "zone in /usr/share/zoneinfo (an IANA name such as Europe/Berlin or "
            "America/New_York)");
    refused(CONTACTS "  schedules:\n"
                     "    - {name: primary, timezone: ../../etc/passwd, start: 2024-03-04, "
                     "users: [alice]}\n",
            "14:33: \"paging.schedules[0].timezone\": timezone \"../../etc/passwd\" is not a "
            "time zone in /usr/share/zoneinfo (an IANA name such as Europe/Berlin or "
            "America/New_York)");
    refused(CONTACTS "  schedules:\n"
                     "    - {name: primary, handover: \"Mon 9am\", start: 2024-03-04, users: "
                     "[alice]}\n",
            "14:33: \"paging.schedules[0].handover\": handover must be a weekday and a local "
            "time, like \"Mon 09:00\" (got \"Mon 9am\")");
    refused(CONTACTS "  schedules:\n"
                     "    - {name: primary, start: 2024-03-06, users: [alice]}\n",
            "14:30: \"paging.schedules[0].start\": start 2024-03-06 is a Wednesday, but the "
            "handover is on Mondays: start the rotation on a Monday");
    refused(CONTACTS "  schedules:\n"
                     "    - {name: primary, start: 2023-02-29, users: [alice]}\n",
            "14:30: \"paging.schedules[0].start\": start must be a real date between 1970 and "
            "2200 (got \"2023-02-29\")");
    refused(CONTACTS "  schedules:\n"
                     "    - {name: primary, start: 2024-03-04, users: []}\n",
            "14:42: \"paging.schedules[0].users\": schedule \"primary\" has no users: list "
            "contact names");
    refused(CONTACTS SCHEDULES "    - name: primary\n"
                               "      start: 2024-03-04\n"
                               "      users: [bob]\n",
            "24:13: \"paging.schedules[2].name\": schedule \"primary\" is defined twice (first "
            "as schedules[0])");
}

static void test_contact_and_policy_refusals(void **state)
{
    (void)state;
    refused(CONTACTS "    - {name: bob, slack: \"http://127.0.0.1:9/b\"}\n",
            "13:14: \"paging.contacts[8].name\": contact \"bob\" is defined twice (first as "
            "contacts[1])");
    refused(CONTACTS "    - {name: dave}\n",
            "13:8: \"paging.contacts[8]\": contact \"dave\" has no channel: set slack, email, "
            "webhook, pagerduty or phone");
    refused(CONTACTS "    - {name: dave, slack: \"ftp://x\"}\n",
            "13:27: \"paging.contacts[8].slack\": must be an http:// or https:// URL");
    refused(CONTACTS "    - {name: dave, email: \"dave@example.com\\r\\nBcc: x@y\"}\n",
            "13:27: \"paging.contacts[8].email\": must be an address like oncall@example.com "
            "(got \"dave@example.com??Bcc: x@y\")");
    refused(CONTACTS "    - {name: \"dave smith\", slack: \"http://127.0.0.1:9/b\"}\n",
            "13:14: \"paging.contacts[8].name\": must be 1 to 64 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit (got \"dave smith\")");
    refused(CONTACTS SCHEDULES "  policies:\n"
                               "    - name: default\n"
                               "      levels:\n"
                               "        - {delay: 15m, targets: [\"contact:alice\"]}\n"
                               "        - {delay: 10m, targets: [\"contact:bob\"]}\n",
            "28:19: \"paging.policies[0].levels[1].delay\": must be later than the delay of "
            "level 1");
    refused(CONTACTS SCHEDULES "  policies:\n"
                               "    - {name: p, levels: [{targets: [\"contact:alice\"]}]}\n"
                               "    - {name: p, levels: [{targets: [\"contact:bob\"]}]}\n",
            "26:14: \"paging.policies[1].name\": policy \"p\" is defined twice (first as "
            "policies[0])");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  smtp: {url: \"http://mail\"}\n",
            "4:15: \"paging.smtp.url\": must be smtp://HOST[:PORT] or smtps://HOST[:PORT] (got "
            "\"http://mail\")");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  smtp: {url: \"smtp://127.0.0.1:25\"}\n",
            "4:10: \"paging.smtp.from\": must be the sender's address, like vigil@example.com, "
            "when smtp.url is set (got \"\")");
}

/* Phones (E.164, only with sms configured), business hours and tickets. */
static void test_hours_sms_and_tickets(void **state)
{
    (void)state;
    struct coord_config cfg;
    char err[1024];
    char token[160];
    snprintf(token, sizeof(token), "%s/token", dir);
    write_file(token, "secret\n");
    assert_int_equal(chmod(token, 0600), 0);

    refused("paging:\n"
            "  contacts: [{name: a, phone: \"0151 123\"}]\n",
            "3:31: \"paging.contacts[0].phone\": must be a number in E.164 form: '+', the "
            "country code and the number, digits only, like +4915112345678 (got \"0151 123\")");
    refused("paging:\n"
            "  contacts: [{name: a, phone: \"+4915112345678\"}, {name: b, webhook: \"http://b\"}]\n"
            "  policies: [{name: default, levels: [{targets: [\"contact:b\"]}]}]\n",
            "3:31: \"paging.contacts[0].phone\": contact \"a\" has a phone number, but "
            "paging.sms.account_sid is not set");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  policies: [{name: p, levels: [{targets: [\"contact:a\"], hours: office}]}]\n",
            "4:65: \"paging.policies[0].levels[0].hours\": no business_hours named \"office\"");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  business_hours: [{name: office, start: \"18:00\", end: \"08:00\"}]\n",
            "4:56: \"paging.business_hours[0].end\": must be later than start (18:00); a window "
            "past midnight is two windows: end it at 24:00 and start the next day at 00:00");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  business_hours: [{name: office, days: [Mon, Feiertag]}]\n",
            "4:47: \"paging.business_hours[0].days[1]\": must be a weekday, Mon to Sun (got "
            "\"Feiertag\")");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  business_hours: [{name: office, holidays: [\"2026-02-30\"]}]\n",
            "4:46: \"paging.business_hours[0].holidays[0]\": must be a date YYYY-MM-DD (got "
            "\"2026-02-30\")");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  tickets: {kind: gitlab}\n",
            "4:19: \"paging.tickets.kind\": must be github or jira (got \"gitlab\")");
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  tickets: {kind: jira, base_url: \"https://acme.atlassian.net\", user: bot,\n"
            "            project: OPS}\n",
            "4:13: \"paging.tickets.token_file\": must be set when tickets.kind is");

    char body[2048];
    snprintf(
        body, sizeof(body),
        "paging:\n"
        "  contacts:\n"
        "    - {name: a, phone: \"+4915112345678\"}\n"
        "    - {name: b, slack: \"http://127.0.0.1:9/b\"}\n"
        "  schedules:\n"
        "    - {name: day, start: 2024-03-04, users: [a], hours: office}\n"
        "  business_hours:\n"
        "    - {name: office, timezone: Europe/Berlin, holidays: [\"2026-12-25\"]}\n"
        "  policies:\n"
        "    - name: team\n"
        "      levels: [{targets: [\"schedule:day\"]}, {delay: 1h, targets: [\"contact:b\"]}]\n"
        "  routing: {SEV1: {policy: team}, SEV2: {policy: team}, SEV3: {policy: team},\n"
        "            SEV4: {policy: team}}\n"
        "  sms: {account_sid: AC123, auth_token_file: \"%s\", from: \"+15005550006\"}\n"
        "  tickets: {kind: github, owner: acme, repo: ops, token_file: \"%s\",\n"
        "            severities: [SEV3, SEV4]}\n",
        token, token);
    if (load(body, &cfg, err, sizeof(err)) != 0)
        fail_msg("refused: %s", err);
    const struct paging_config *p = &cfg.paging;
    const struct paging_hours *h = paging_hours_find(p, "office");
    assert_non_null(h);
    assert_int_equal(h->day_mask, 0x3E); /* Mon..Fri by default */
    assert_int_equal(h->start_minute, 9 * 60);
    assert_int_equal(h->end_minute, 17 * 60);
    const struct paging_policy *team = paging_policy_find(p, "team");
    assert_ptr_equal(paging_level_hours(p, paging_policy_level(team, 0)), h); /* its schedule's */
    assert_null(paging_level_hours(p, paging_policy_level(team, 1)));
    assert_false(paging_hours_apply(p, 1));
    assert_true(paging_hours_apply(p, 3));
    assert_true(paging_ticket_wanted(p, 3));
    assert_false(paging_ticket_wanted(p, 2));
    const struct paging_contact *a = paging_contact_find(p, "a");
    assert_string_equal(paging_contact_address(a, PAGING_CHANNEL_SMS), "+4915112345678");
    assert_true(paging_channel_usable(p, a, PAGING_CHANNEL_SMS));
    assert_false(paging_channel_usable(p, a, PAGING_CHANNEL_TICKET));
    coord_config_free(&cfg);
}

/* The built-in default policy is used by routing: its people must exist. */
static void test_builtin_default_needs_its_people(void **state)
{
    (void)state;
    refused("paging:\n"
            "  contacts: [{name: a, slack: \"http://127.0.0.1:9/a\"}]\n"
            "  schedules:\n"
            "    - {name: primary, start: 2024-03-04, users: [a]}\n",
            "3:3: \"paging.routing.SEV1.policy\": the built-in policy \"default\" pages "
            "schedule:secondary, which is not configured: define the schedules primary and "
            "secondary and the contacts manager, cto and stakeholders, or a policy named "
            "\"default\" of your own");
    /* With all of them it loads. */
    struct coord_config cfg;
    char err[1024];
    int r = load(CONTACTS SCHEDULES, &cfg, err, sizeof(err));
    if (r != 0)
        fail_msg("refused: %s", err);
    coord_config_free(&cfg);
}

/* paging.file: the same keys at the top level of a file of their own, positions in it. */
static void test_paging_file(void **state)
{
    (void)state;
    struct coord_config cfg;
    char err[1024], team[128], want[1024];
    snprintf(team, sizeof(team), "%s/team.yaml", dir);
    write_file(team,
               "contacts:\n"
               "  - {name: a, slack: \"http://127.0.0.1:9/a\"}\n"
               "policies:\n"
               "  - name: default\n"
               "    levels: [{targets: [\"contact:a\"]}, {delay: 1m, targets: [\"contact:b\"]}]\n");
    assert_int_not_equal(load("paging: {file: team.yaml}\n", &cfg, err, sizeof(err)), 0);
    snprintf(want, sizeof(want),
             "%s:5:62: \"policies[0].levels[1].targets[0]\": no contact named \"b\"", team);
    assert_string_equal(err, want);
    coord_config_free(&cfg);

    write_file(team, "contacts:\n"
                     "  - {name: a, slack: \"http://127.0.0.1:9/a\"}\n"
                     "policies:\n"
                     "  - name: default\n"
                     "    levels: [{targets: [\"contact:a\"]}]\n"
                     "status_update_interval: 10s\n");
    int r = load("paging: {file: team.yaml}\n", &cfg, err, sizeof(err));
    if (r != 0)
        fail_msg("refused: %s", err);
    assert_true(paging_enabled(&cfg.paging));
    assert_int_equal(cfg.paging.status_update_interval_ms, 10000);
    assert_string_equal(cfg.paging.file, team);
    assert_non_null(paging_contact_find(&cfg.paging, "a"));
    coord_config_free(&cfg);

    /* Both places at once would leave one of them ignored. */
    assert_int_not_equal(
        load("paging:\n  file: team.yaml\n  status_update_interval: 1m\n", &cfg, err, sizeof(err)),
        0);
    snprintf(want, sizeof(want),
             "%s: \"paging.file\" is set, so the other paging keys belong in team.yaml, not here",
             path);
    assert_string_equal(err, want);
    coord_config_free(&cfg);
}

/* A runbook's policy: must exist; a built-in one must find its people. */
static void test_runbook_policies(void **state)
{
    (void)state;
    struct coord_config cfg;
    char err[1024], rbfile[128], want[1024];
    int r = load("paging:\n"
                 "  contacts:\n"
                 "    - {name: a, slack: \"http://127.0.0.1:9/a\"}\n"
                 "  policies:\n"
                 "    - {name: default, levels: [{targets: [\"contact:a\"]}]}\n",
                 &cfg, err, sizeof(err));
    if (r != 0)
        fail_msg("refused: %s", err);
    snprintf(rbfile, sizeof(rbfile), "%s/runbook.yaml", dir);
    write_file(rbfile, "id: app-down\ntitle: x\npolicy: nosuch\n");
    struct rb_runbook rbs[2] = {
        {.id = "ok", .policy = "", .file = rbfile},
        {.id = "app-down", .policy = "nosuch", .file = rbfile},
    };
    struct rb_set set = {.runbooks = rbs, .n = 2};
    assert_int_equal(paging_check_runbooks(&cfg.paging, &set, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want),
             "%s:3:9: \"policy\": runbook \"app-down\" names the escalation policy \"nosuch\", "
             "which is neither in paging.policies nor built in (default, security)",
             rbfile);
    assert_string_equal(err, want);

    /* The built-in security policy needs the security contact and the default's people. */
    write_file(rbfile, "id: security-incident\npolicy: security\n");
    rbs[1].id = "security-incident";
    rbs[1].policy = "security";
    assert_int_equal(paging_check_runbooks(&cfg.paging, &set, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want),
             "%s:2:9: \"policy\": the built-in policy \"security\" pages schedule:primary, "
             "which is not configured: define the schedules primary and secondary and the "
             "contacts manager, cto and stakeholders and security, or a policy named "
             "\"security\" of your own (runbook \"security-incident\")",
             rbfile);
    assert_string_equal(err, want);
    rbs[1].policy = "default";
    assert_int_equal(paging_check_runbooks(&cfg.paging, &set, err, sizeof(err)), 0);
    coord_config_free(&cfg);
}

/* The shipped example configuration loads (its team is commented out). */
static void test_example_config(void **state)
{
    (void)state;
    const char *src = getenv("VIGIL_SRC");
    char example[512], err[1024];
    struct coord_config cfg;
    if (!src)
        skip();
    snprintf(example, sizeof(example), "%s/deploy/config/coordinator.yaml", src);
    int r = coord_config_load(example, &cfg, err, sizeof(err));
    if (r != 0)
        fail_msg("refused: %s", err);
    assert_false(paging_enabled(&cfg.paging));
    coord_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_team),
        cmocka_unit_test(test_paging_off),
        cmocka_unit_test(test_level_reaches_nobody),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_schedule_refusals),
        cmocka_unit_test(test_contact_and_policy_refusals),
        cmocka_unit_test(test_builtin_default_needs_its_people),
        cmocka_unit_test(test_paging_file),
        cmocka_unit_test(test_runbook_policies),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_hours_sms_and_tickets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
