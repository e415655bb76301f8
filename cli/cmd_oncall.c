/* vigilctl oncall [list] | oncall override --schedule S --user U --from T --to T */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "config.h"
#include "ctl_admin.h"
#include "timeutil.h"

/* Digits at s[0..n), all of them; -1 otherwise. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* RFC 3339: 2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00, seconds and fraction optional. */
static int parse_rfc3339(const char *s, int64_t *ret_ms)
{
    size_t len = strlen(s);
    int year, mon, day, hour, min, sec = 0, off = 0, frac_ms = 0;
    const char *p;

    if (len < 16 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':')
        return -EINVAL;
    year = digits(s, 4);
    mon = digits(s + 5, 2);
    day = digits(s + 8, 2);
    hour = digits(s + 11, 2);
    min = digits(s + 14, 2);
    p = s + 16;
    if (*p == ':') {
        sec = digits(p + 1, 2);
        if (strlen(p) < 3)
            return -EINVAL;
        p += 3;
        if (*p == '.') {
            int scale = 100;
            for (p++; isdigit((unsigned char)*p); p++) {
                frac_ms += (*p - '0') * scale;
                scale /= 10;
            }
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return -EINVAL;
        off = (*p == '-' ? -1 : 1) * (oh * 60 + om);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p || year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
        min < 0 || min > 59 || sec < 0 || sec > 60)
        return -EINVAL;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != day) /* 2024-02-30 normalizes to March */
        return -EINVAL;
    *ret_ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac_ms;
    return 0;
}

/* "now", "+2h" / "-30m" from now, or RFC 3339. */
static int parse_time(const char *text, int64_t now_ms, int64_t *ret_ms)
{
    int64_t d;
    if (strcmp(text, "now") == 0) {
        *ret_ms = now_ms;
        return 0;
    }
    if ((text[0] == '+' || text[0] == '-') && vg_parse_duration_ms(text + 1, &d) == 0) {
        *ret_ms = text[0] == '+' ? now_ms + d : now_ms - d;
        return 0;
    }
    return parse_rfc3339(text, ret_ms);
}

static json_t *user_json(const char *user)
{
    return user && user[0] ? output_json_string(user) : json_null();
}

static json_t *oncall_json(const Vigil__OncallInfo *o)
{
    /* clang-format off */
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:b}",
                     "schedule", output_json_string(o->schedule),
                     "timezone", output_json_string(o->timezone),
                     "user", user_json(o->user),
                     "since", output_json_time(o->since_ms),
                     "until", output_json_time(o->until_ms),
                     "next_user", user_json(o->next_user),
                     "next_since", output_json_time(o->until_ms),
                     "override", (int)o->override,
                     "next_override", (int)o->next_override);
    /* clang-format on */
}

static int print_json(const Vigil__AdminReply *reply)
{
    json_t *list = json_array();
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_oncall; i++) {
        if (json_array_append_new(list, oncall_json(reply->oncall[i])) < 0) {
            json_decref(list);
            return -ENOMEM;
        }
    }
    return output_json_print(&list, stdout);
}

static void who(const char *user, bool override, char *buf, size_t len)
{
    if (!user || !user[0])
        snprintf(buf, len, "(nobody)");
    else
        snprintf(buf, len, "%s%s", user, override ? " (override)" : "");
}

static int print_table(const Vigil__AdminReply *reply)
{
    static const char *const headers[] = {"SCHEDULE", "ON-CALL", "SINCE",
                                          "UNTIL",    "NEXT",    "TIMEZONE"};
    output_table_t *table = output_table_new(6, headers);
    int r = 0;

    if (!table)
        return -ENOMEM;
    for (size_t i = 0; i < reply->n_oncall && r == 0; i++) {
        const Vigil__OncallInfo *o = reply->oncall[i];
        char user[96], next[96], since[40] = "-", until[40] = "-";
        who(o->user, o->override, user, sizeof(user));
        who(o->next_user, o->next_override, next, sizeof(next));
        if (o->since_ms)
            output_time_rfc3339(o->since_ms, since, sizeof(since));
        output_time_rfc3339(o->until_ms, until, sizeof(until));
        const char *cells[] = {o->schedule, user, since, until, next, o->timezone};
        r = output_table_add_row(table, cells);
    }
    if (r == 0)
        r = output_table_print(table, stdout);
    output_table_destroy(&table);
    return r;
}

static int oncall_list(struct ctl_context *ctx)
{
    Vigil__ListOncall body = VIGIL__LIST_ONCALL__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;

    req.body_case = VIGIL__ADMIN_REQUEST__BODY_LIST_ONCALL;
    req.list_oncall = &body;
    int r = ctl_admin_request(ctx, &req, "list who is on call", NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (reply->n_oncall == 0 && ctx->format != OUTPUT_JSON)
        fputs("vigilctl: no on-call schedules are configured (paging.schedules in the "
              "coordinator's configuration)\n",
              stderr);
    r = ctx->format == OUTPUT_JSON ? print_json(reply) : reply->n_oncall ? print_table(reply) : 0;
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the on-call list: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static int oncall_override(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *schedule = ctl_args_value(args, "schedule");
    const char *user = ctl_args_value(args, "user");
    const char *from = ctl_args_value(args, "from");
    const char *to = ctl_args_value(args, "to");
    Vigil__AddOncallOverride body = VIGIL__ADD_ONCALL_OVERRIDE__INIT;
    Vigil__AdminRequest req = VIGIL__ADMIN_REQUEST__INIT;
    Vigil__AdminReply *reply = NULL;
    int64_t now = vg_wall_ms();
    char what[VG_MAX_NAME_LEN + 64];

    if (!schedule || !user || !from || !to) {
        output_error("oncall override needs --schedule S --user U --from T --to T");
        return CTL_EXIT_USAGE;
    }
    if (strlen(schedule) > VG_MAX_NAME_LEN || strlen(user) > VG_MAX_NAME_LEN) {
        output_error("--schedule and --user are at most %d bytes", VG_MAX_NAME_LEN);
        return CTL_EXIT_USAGE;
    }
    if (parse_time(from, now, &body.from_ms) < 0 || body.from_ms <= 0) {
        output_error("--from must be now, +DURATION (like +2h) or an RFC 3339 time like "
                     "2024-05-01T09:00:00Z (got \"%s\")",
                     from);
        return CTL_EXIT_USAGE;
    }
    if (parse_time(to, now, &body.to_ms) < 0) {
        output_error("--to must be now, +DURATION (like +2h) or an RFC 3339 time like "
                     "2024-05-01T09:00:00Z (got \"%s\")",
                     to);
        return CTL_EXIT_USAGE;
    }
    if (body.to_ms <= body.from_ms) {
        output_error("--to must be after --from");
        return CTL_EXIT_USAGE;
    }
    body.schedule = (char *)schedule;
    body.user = (char *)user;
    req.body_case = VIGIL__ADMIN_REQUEST__BODY_ADD_ONCALL_OVERRIDE;
    req.add_oncall_override = &body;
    snprintf(what, sizeof(what), "override the on-call of %s", schedule);
    /* The coordinator's text says which name is unknown (schedule or user). */
    int r = ctl_admin_request(ctx, &req, what, NULL, &reply);
    if (r != CTL_EXIT_OK)
        return r;
    if (ctx->format == OUTPUT_JSON) {
        json_t *doc =
            json_pack("{s:I, s:o, s:o, s:o, s:o, s:o*}", "id", (json_int_t)reply->override_id,
                      "schedule", output_json_string(schedule), "user", output_json_string(user),
                      "from", output_json_time(body.from_ms), "to", output_json_time(body.to_ms),
                      "oncall", reply->n_oncall ? oncall_json(reply->oncall[0]) : NULL);
        r = doc ? output_json_print(&doc, stdout) : -ENOMEM;
    } else {
        char from_utc[40], to_utc[40];
        output_time_rfc3339(body.from_ms, from_utc, sizeof(from_utc));
        output_time_rfc3339(body.to_ms, to_utc, sizeof(to_utc));
        r = printf("override %" PRIu64 ": %s is on call for %s from %s until %s\n",
                   reply->override_id, user, schedule, from_utc, to_utc) < 0
                ? -EIO
                : 0;
        if (r == 0 && reply->n_oncall)
            r = print_table(reply);
    }
    vigil__admin_reply__free_unpacked(reply, NULL);
    if (r < 0) {
        output_error("cannot write the result: %s", strerror(-r));
        return CTL_EXIT_FAILURE;
    }
    return CTL_EXIT_OK;
}

static int run_oncall(struct ctl_context *ctx, const struct ctl_args *args)
{
    const char *sub = args->argc > 0 ? args->argv[0] : "list";
    bool override = strcmp(sub, "override") == 0;

    if (args->argc > 1 || (!override && strcmp(sub, "list") != 0)) {
        output_error("usage: vigilctl oncall [list] | oncall override --schedule S --user U "
                     "--from T --to T");
        return CTL_EXIT_USAGE;
    }
    if (!override && (ctl_args_has(args, "schedule") || ctl_args_has(args, "user") ||
                      ctl_args_has(args, "from") || ctl_args_has(args, "to"))) {
        output_error("--schedule, --user, --from and --to belong to 'vigilctl oncall override'");
        return CTL_EXIT_USAGE;
    }
    return override ? oncall_override(ctx, args) : oncall_list(ctx);
}

/* ---- the command table ---- */

static const char oncall_help[] =
    "Usage: vigilctl oncall [list] [-o table|json]\n"
    "       vigilctl oncall override --schedule S --user U --from T --to T\n"
    "\n"
    "  oncall [list]   every on-call schedule of the coordinator's paging configuration:\n"
    "                  SCHEDULE ON-CALL SINCE UNTIL NEXT TIMEZONE. ON-CALL is the contact on\n"
    "                  call now (\"(override)\" when an override put them there, \"(nobody)\"\n"
    "                  before the rotation's start); SINCE and UNTIL are the handovers (or\n"
    "                  the override's edges) around now, in RFC 3339 UTC; NEXT is who takes\n"
    "                  over at UNTIL. Handovers happen at the schedule's local time in its\n"
    "                  TIMEZONE, across daylight-saving changes. With -o json: an array of\n"
    "                  {\"schedule\": \"primary\", \"timezone\": \"Europe/Berlin\",\n"
    "                   \"user\": \"alice\", \"since\": \"...\", \"until\": \"...\",\n"
    "                   \"next_user\": \"bob\", \"next_since\": \"...\", \"override\": false,\n"
    "                   \"next_override\": false}\n"
    "                  (user and next_user null for nobody, since null for always).\n"
    "  override        user (a contact's name) is on call for schedule S from --from until\n"
    "                  --to instead of the rotation; where overrides overlap the newest wins.\n"
    "                  T is now, +DURATION from now (+30m, +2h, +1d) or an RFC 3339 time\n"
    "                  (2024-05-01T09:00:00Z, 2024-05-01T11:00:00+02:00). An unknown\n"
    "                  schedule or contact, a contact without a working channel, --to not\n"
    "                  after --from or already past are refused. Overrides are stored, so\n"
    "                  they survive a coordinator restart. Prints the override's id and the\n"
    "                  schedule as it now is (-o json: {\"id\", \"schedule\", \"user\",\n"
    "                  \"from\", \"to\", \"oncall\": {...}}).\n"
    "\n"
    "Listing needs the viewer role, override the responder role.\n";

const struct ctl_command cmd_oncall_table[] = {
    {
        .name = "oncall",
        .forms = {{"oncall [list]", "who is on call now and next, per schedule"},
                  {"oncall override --schedule S --user U --from T --to T",
                   "put someone on call for a while instead of the rotation"}},
        .help = oncall_help,
        .options = {{"schedule", CTL_OPTION_VALUE},
                    {"user", CTL_OPTION_VALUE},
                    {"from", CTL_OPTION_VALUE},
                    {"to", CTL_OPTION_VALUE}},
        .run = run_oncall,
    },
    {.name = NULL},
};
