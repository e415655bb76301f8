/*
 * vigilctl: the operator's command line. Parses the options, finds the command, runs it.
 * The commands live in cmd_*.c, the coordinator conversation in ctl_admin.c, the
 * configuration in ctl_config.c and the table/JSON printing in output.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "ctl_admin.h"
#include "log.h"

#define TIMEOUT_MIN_MS 100
#define TIMEOUT_MAX_MS (INT64_C(60) * 60 * 1000)

struct command {
    const char *name;
    int (*run)(struct ctl_context *ctx, int argc, char **argv);
    const char *help; /* shown by 'vigilctl help NAME' and 'vigilctl NAME --help' */
};

static const struct command commands[] = {
    {
        "ack",
        cmd_ack,
        "Usage: vigilctl ack ID [--note TEXT] [-o table|json]\n"
        "\n"
        "Acknowledges incident ID: you are on it. It moves from detected to acknowledged and\n"
        "the timeline records your operator name and the note (at most 1024 bytes). An unknown\n"
        "id fails with \"incident ID not found\"; acknowledging twice, or an incident past that\n"
        "point, fails with the reason. With -o json: the incident as it now is (the fields of\n"
        "'vigilctl help incidents'). Needs the responder role.\n",
    },
    {
        "agents",
        cmd_agents,
        "Usage: vigilctl agents [list]\n"
        "       vigilctl agents approve ID\n"
        "       vigilctl agents revoke ID\n"
        "\n"
        "  agents [list]    list the enrolled agents: ID NODE STATE VERSION LAST-SEEN SPOOL\n"
        "                   NOTE. STATE is pending (waiting for approval), active, lost (missed\n"
        "                   its heartbeats) or revoked; SPOOL is the number of messages the\n"
        "                   agent holds unacknowledged, and how many it had to drop. A node name\n"
        "                   belongs to the key that enrolled it first: NOTE shows a new key that\n"
        "                   claims a node another agent holds (pending, beside the holder), or an\n"
        "                   agent that asked for another name (it keeps its name until approved).\n"
        "                   With -o json: an array of objects with id, node, state, version,\n"
        "                   last_seen, spool_depth, dropped_messages, public_key, enrolled_at,\n"
        "                   state_since (times in RFC 3339 UTC, null for never), requested_node,\n"
        "                   node_held_by.\n"
        "  approve ID       admit a pending agent (one that enrolled without a valid token, or\n"
        "                   a new key for a node: revoke the holder first), or give an agent the\n"
        "                   node name it asked for.\n"
        "  revoke ID        revoke an agent's key: the coordinator refuses it from then on.\n"
        "\n"
        "Needs the configuration file (see 'vigilctl help').\n",
    },
    {
        "collect",
        cmd_collect,
        "Usage: vigilctl collect (--node NODE | --all) KIND [--arg KEY=VALUE ...]\n"
        "                        [--timeout DURATION] [-o table|json]\n"
        "\n"
        "Asks agents for an artifact now, waits until each has answered, and prints what was\n"
        "stored: ID NODE KIND SIZE SHA256. Each agent hashes (SHA-256) what it reads; the\n"
        "coordinator hashes the bytes it received again and stores the artifact only if both\n"
        "agree. Fetch one with 'vigilctl evidence get ID --out FILE'.\n"
        "\n"
        "  KIND              netstat, processes, host, log_tail, file, postgres or redis\n"
        "  --node NODE       the active agents of this node\n"
        "  --all             every active agent\n"
        "  --arg KEY=VALUE   an argument for the kind, up to 16: file needs path=/abs/path\n"
        "                    (inside the agent's evidence.allow_dirs); log_tail takes name=\n"
        "                    (a log the agent tails) and lines=N. Each key once.\n"
        "  --timeout D       how long to wait for the agents (default 60s, at least 1s); a\n"
        "                    target still without an artifact then counts as failed\n"
        "\n"
        "Every target that delivered nothing is one line on stderr, such as\n"
        "  vigilctl: node-a: file: path /etc/shadow is outside the allowed directories\n"
        "\n"
        "With -o json: an array with one object per agent asked\n"
        "  {\"id\": 12, \"collection_id\": 7, \"node\": \"...\", \"agent_id\": \"ag-...\",\n"
        "   \"kind\": \"file\", \"args\": {\"path\": \"...\"}, \"status\": \"stored\" | \"failed\" "
        "|\n"
        "   \"pending\", \"size\": 5242880, \"sha256\": \"<64 hex>\", \"collected_at\": \"...\",\n"
        "   \"stored_at\": \"...\", \"truncated\": false, \"error\": null}\n"
        "id, size and sha256 are null unless stored; error says why a target failed.\n"
        "\n"
        "Exit status: 0 every agent's artifact is stored; 3 some agent delivered nothing\n"
        "(refused, failed, hash mismatch or timed out; the others' artifacts are printed);\n"
        "1 the request itself failed (unknown kind, no active agent on the node, ...).\n"
        "Needs the responder role. Needs the configuration file (see 'vigilctl help').\n",
    },
    {
        "escalate",
        cmd_escalate,
        "Usage: vigilctl escalate ID [-o table|json]\n"
        "\n"
        "Pages incident ID's next escalation level now instead of at its time (also after an\n"
        "acknowledgement: asking for help). The timeline records who asked. Fails for a\n"
        "resolved incident. Needs the responder role.\n",
    },
    {
        "evidence",
        cmd_evidence,
        "Usage: vigilctl evidence [list] [--collection ID] [--node NODE] [--limit N]\n"
        "       vigilctl evidence get ID --out FILE\n"
        "       vigilctl evidence verify [--limit N] [-o table|json]\n"
        "\n"
        "  evidence [list]   the latest stored artifacts, newest first (--limit N, default 50,\n"
        "                    at most 1000): ID COLLECTION NODE KIND STATUS SIZE SHA256\n"
        "                    COLLECTED ERROR. With --collection ID: every agent that\n"
        "                    collection asked, with its status (pending, stored, failed) and\n"
        "                    error. --node NODE keeps one node's rows. -o json prints the\n"
        "                    objects 'vigilctl help collect' describes.\n"
        "  get ID --out FILE fetch an artifact's bytes into FILE (created with mode 0600; an\n"
        "                    existing file is never overwritten; --out - writes to standard\n"
        "                    output). The bytes are hashed as they arrive: if they do not hash\n"
        "                    to the SHA-256 the vault recorded, FILE is removed and the command\n"
        "                    fails.\n"
        "  verify            check the whole vault, oldest first: every artifact's content is\n"
        "                    re-hashed from its stored chunks against its size and SHA-256, and\n"
        "                    every chain link recomputed. Prints\n"
        "                      evidence vault: N artifacts, B bytes, chain intact\n"
        "                    and exits 0, or names the first broken link and exits 1:\n"
        "                      evidence vault: chain broken at evidence ID: REASON\n"
        "                    (the artifact whose content or row was changed, or the row after\n"
        "                    a deleted one). An error talking to the coordinator exits 1 too.\n"
        "                    The coordinator checks in steps of a quarter second so ingest goes\n"
        "                    on; --limit N caps the artifacts per step, --timeout is per step.\n"
        "                    -o json: {\"checked\": N, \"bytes\": B, \"ok\": true|false,\n"
        "                    \"broken_id\": ID|null, \"reason\": \"...\"|null,\n"
        "                    \"last_id\": ID|null, \"last_chain\": \"<64 hex>\"}: the last\n"
        "                    intact row and its chain hash. Keep them elsewhere: deleting\n"
        "                    the newest rows breaks no link, but changes the last one.\n"
        "\n"
        "Listing needs the viewer role, get and verify the responder role. Needs the\n"
        "configuration file (see 'vigilctl help').\n",
    },
    {
        "incident",
        cmd_incident,
        "Usage: vigilctl incident show ID [-o table|json]\n"
        "\n"
        "Everything about incident ID: severity, state, runbook, fingerprint, scope (the nodes\n"
        "involved), when it opened and when a response is due, then its timeline in order:\n"
        "AT KIND ACTOR TEXT. KIND is opened, symptom (the rule engine saw it again, or it\n"
        "cleared), severity (a rise, with its reason), acknowledged, mitigated, resolved\n"
        "(by an operator, or by vigil once the runbook's verify conditions held: the text says\n"
        "which), reopened (the symptom returned soon after a resolve), attached (a dependent\n"
        "symptom explained by this incident), report or closed; ACTOR is the operator's name\n"
        "or \"vigil\".\n"
        "With -o json: the object 'vigilctl help incidents' describes, plus \"fingerprint\",\n"
        "\"scope\", \"acknowledged_at\", \"resolved_at\" and \"timeline\": an array of\n"
        "  {\"id\": 7, \"at\": \"...\", \"kind\": \"opened\", \"actor\": \"vigil\",\n"
        "   \"text\": \"...\", \"data\": {...}}\n"
        "The viewer role is enough.\n",
    },
    {
        "incidents",
        cmd_incidents,
        "Usage: vigilctl incidents [--status open|all] [-o table|json]\n"
        "\n"
        "Lists incidents, newest first (at most 100): ID SEV STATE TITLE SCOPE OPENED AGE DUE.\n"
        "  --status open   (default) detected, acknowledged and mitigated incidents\n"
        "  --status all    resolved and closed ones too\n"
        "SEV is SEV1 (critical, respond within 15 minutes), SEV2 (1 hour), SEV3 (4 hours) or\n"
        "SEV4 (the next business day, 09:00 UTC); DUE is the time left to acknowledge, or how\n"
        "long it is overdue (\"-\" once acknowledged).\n"
        "With -o json: an array of objects\n"
        "  {\"id\": 42, \"runbook\": \"...\", \"severity\": \"SEV2\", \"state\": \"detected\",\n"
        "   \"title\": \"...\", \"opened_at\": \"...\", \"response_due\": \"...\",\n"
        "   \"fingerprint\": \"...\", \"scope\": [\"node\", ...], \"acknowledged_at\": null, ...}\n"
        "times in RFC 3339 UTC. The viewer role is enough.\n",
    },
    {
        "keygen",
        cmd_keygen,
        "Usage: vigilctl keygen --out FILE\n"
        "\n"
        "Makes a CURVE key pair, writes it to FILE (mode 0600; an existing file is never\n"
        "overwritten) and prints the public key. FILE holds 'public-key' and 'secret-key'; for an\n"
        "operator, copy them into the configuration file as public_key and secret_key and have\n"
        "the public key registered with the coordinator. Needs no configuration file.\n",
    },
    {
        "mitigate",
        cmd_mitigate,
        "Usage: vigilctl mitigate ID --note TEXT [-o table|json]\n"
        "\n"
        "Marks incident ID mitigated (from detected or acknowledged): the impact is contained\n"
        "(traffic moved, a feature switched off) while the cause may remain. The note is\n"
        "required: what was done (at most 1024 bytes). The incident stays open until resolved.\n"
        "With -o json: the incident as it now is. Needs the responder role.\n",
    },
    {
        "oncall",
        cmd_oncall,
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
        "Listing needs the viewer role, override the responder role.\n",
    },
    {
        "notifications",
        cmd_notifications,
        "Usage: vigilctl notifications ID [-o table|json]\n"
        "\n"
        "Every message incident ID sent, oldest first: ID KIND LEVEL CHANNEL TARGET STATUS\n"
        "ATTEMPTS CODE SENT ERROR. KIND is page (an escalation level), audience (told of the\n"
        "opening by severity), update (every status_update_interval while open), acknowledged,\n"
        "resolved or report_due; STATUS is pending, sending, sent or failed (after the last\n"
        "retry); CODE the HTTP status or SMTP reply of the last attempt.\n"
        "With -o json: an array of {\"id\", \"kind\", \"level\" (0 = first; -1 = not a page),\n"
        "\"round\", \"channel\", \"target\", \"event\", \"status\", \"attempts\", \"code\",\n"
        "\"error\", \"created_at\", \"sent_at\"}. The viewer role is enough.\n",
    },
    {
        "report",
        cmd_report,
        "Usage: vigilctl report ID [-o table|json]\n"
        "       vigilctl report ID --file FILE\n"
        "\n"
        "The post-incident report (the incident-response document asks for one within 24 hours\n"
        "of the resolution).\n"
        "  report ID              prints the stored report; when there is none yet, a draft in\n"
        "                         the document's template, filled from the incident and its\n"
        "                         timeline (a note on stderr says it is a draft). With -o json:\n"
        "                         {\"id\": N, \"draft\": true|false, \"report\": \"...\"}.\n"
        "  report ID --file FILE  stores FILE (\"-\" = standard input; UTF-8 text, at most\n"
        "                         256 KiB) as the report. The first report of a resolved\n"
        "                         incident closes it; a later one is kept as a new version.\n"
        "                         An incident still open is refused: resolve it first.\n"
        "Reading needs the viewer role, storing the responder role.\n",
    },
    {
        "resolve",
        cmd_resolve,
        "Usage: vigilctl resolve ID --note TEXT [-o table|json]\n"
        "\n"
        "Resolves incident ID (from detected, acknowledged or mitigated). The note is required:\n"
        "what was done, for the timeline (at most 1024 bytes). If its symptom returns soon\n"
        "after, the same incident reopens. With -o json: the incident as it now is.\n"
        "Needs the responder role.\n",
    },
    {
        "signals",
        cmd_signals,
        "Usage: vigilctl signals [--node NODE] [--name GLOB]\n"
        "\n"
        "Lists the latest value of each signal series the agents report, and where it stands\n"
        "against its alert thresholds: NODE NAME LABELS VALUE UNIT STATE AGE, sorted by node,\n"
        "then name, then labels.\n"
        "\n"
        "  LABELS   the series' labels as key=value pairs, comma-separated and sorted by key\n"
        "           (\"-\" for none)\n"
        "  VALUE    the latest sample, to 6 significant digits\n"
        "  STATE    ok, warning or critical, as the agent evaluated the signal's thresholds;\n"
        "           \"-\" for a signal without thresholds\n"
        "  AGE      how long ago the agent took the sample\n"
        "\n"
        "  --node NODE   only the signals of this node (its exact name)\n"
        "  --name GLOB   only the signals whose name matches this shell glob: * any text,\n"
        "                ? one character, [abc] one of these; e.g. 'host.cpu.*'. Quote it so\n"
        "                the shell leaves it alone. At most 128 bytes, like --node.\n"
        "\n"
        "With -o json: an array, in the same order, of objects\n"
        "  {\"agent_id\": \"ag-...\", \"node\": \"...\", \"name\": \"...\",\n"
        "   \"labels\": {\"key\": \"value\", ...}, \"value\": 0.42, \"unit\": \"...\",\n"
        "   \"state\": \"ok\" | \"warning\" | \"critical\" | \"none\",\n"
        "   \"ts\": \"2024-05-01T12:00:03Z\"}\n"
        "value is null when the sample is NaN or infinite; ts is RFC 3339 UTC, null if unknown.\n"
        "\n"
        "The viewer role is enough. Needs the configuration file (see 'vigilctl help').\n",
    },
    {
        "tail",
        cmd_tail,
        "Usage: vigilctl tail [-o table|json]\n"
        "\n"
        "Follows every incident's timeline from now on, one line per change, until Ctrl-C:\n"
        "  TIME incident ID SEV TITLE [STATE] KIND by ACTOR: TEXT\n"
        "KIND is what happened (opened, symptom, severity, attached, acknowledged, mitigated,\n"
        "resolved, reopened, report, closed); STATE is the incident's state now. The coordinator\n"
        "is asked twice a second; if it stops answering, tail says so once and keeps trying,\n"
        "then goes on from the last change it printed, so nothing is missed.\n"
        "With -o json: one compact JSON object per line (JSON Lines): the event's id, at, kind,\n"
        "actor, text, data, and \"incident\": the incident as 'vigilctl help incidents'\n"
        "describes it. The viewer role is enough.\n",
    },
    {
        "token",
        cmd_token,
        "Usage: vigilctl token --secret-file FILE (--public-key Z85 | --key-file KEYFILE)\n"
        "\n"
        "Prints the 64-hex-digit bootstrap enrollment token for one agent: HMAC-SHA256 of the\n"
        "agent's public key under the cluster's enrollment secret. An agent that enrolls with\n"
        "a valid token is admitted at once; without one it waits as pending until\n"
        "'vigilctl agents approve'.\n"
        "\n"
        "  --secret-file FILE   the enrollment secret (mode 0600; trailing newlines ignored)\n"
        "  --public-key Z85     the agent's public key (40 characters)\n"
        "  --key-file KEYFILE   or read it from the agent's key file\n"
        "\n"
        "Needs no configuration file.\n",
    },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_help(FILE *out)
{
    fputs("vigilctl: the Vigil operator's command line\n"
          "\n"
          "Usage: vigilctl [--config FILE] [-o table|json] [--timeout DURATION] COMMAND [ARGS]\n"
          "\n"
          "Commands:\n"
          "  ack ID [--note TEXT]    acknowledge an incident\n"
          "  agents [list]           list agents with their state, last contact and spool\n"
          "  agents approve ID       admit a pending agent, or approve its rename\n"
          "  agents revoke ID        revoke an agent's key\n"
          "  collect (--node NODE | --all) KIND [--arg KEY=VALUE ...]\n"
          "                          ask agents for an artifact now and wait for it\n"
          "  escalate ID             page an incident's next escalation level now\n"
          "  evidence [list] [--collection ID] [--node NODE] [--limit N]\n"
          "                          stored artifacts, or one collection's outcome per agent\n"
          "  evidence get ID --out FILE\n"
          "                          fetch an artifact, checking its SHA-256\n"
          "  evidence verify         re-hash the vault and check its chain; exit 1 if broken\n"
          "  incidents [--status open|all]\n"
          "                          open (or all) incidents with severity and response due\n"
          "  incident show ID        one incident and its timeline\n"
          "  keygen --out FILE       make a CURVE key pair and print its public key\n"
          "  mitigate ID --note TEXT mark an incident's impact contained\n"
          "  notifications ID        every message an incident sent, with its outcome\n"
          "  oncall [list]           who is on call now and next, per schedule\n"
          "  oncall override --schedule S --user U --from T --to T\n"
          "                          put someone on call for a while instead of the rotation\n"
          "  report ID [--file FILE] print (or draft) an incident's report; store one and close\n"
          "  resolve ID --note TEXT  resolve an incident, saying what was done\n"
          "  signals [--node NODE] [--name GLOB]\n"
          "                          the latest value of each signal and its threshold state\n"
          "  tail                    follow incident changes as they happen\n"
          "  token --secret-file FILE (--public-key Z85 | --key-file KEYFILE)\n"
          "                          print the bootstrap enrollment token for an agent key\n"
          "  help [COMMAND]          this help, or one command's ('vigilctl COMMAND --help')\n"
          "\n"
          "Options (before or after the command):\n"
          "  -c, --config FILE       configuration file (default: $" CTL_CONFIG_ENV ", else\n"
          "                          ~/" CTL_CONFIG_DEFAULT_RELPATH ")\n"
          "  -o, --output FORMAT     table (default) or json\n"
          "      --timeout DURATION  how long to wait for the coordinator, e.g. 500ms, 5s, 1m\n"
          "                          (default 5s; for collect, for the artifacts: 60s)\n"
          "  -v, --verbose           debug messages on stderr\n"
          "  -h, --help              show help\n"
          "      --version           print the version\n"
          "\n"
          "Configuration file (YAML; it holds a secret key, so it must be mode 0600):\n",
          out);
    ctl_config_describe(out);
    fputs("\n"
          "  For example:\n"
          "    coordinator: \"tcp://vigil.example.net:7401\"\n"
          "    coordinator_public_key: \"<the coordinator's public key>\"\n"
          "    public_key: \"<from 'vigilctl keygen --out FILE'>\"\n"
          "    secret_key: \"<from the same file>\"\n"
          "\n"
          "Environment:\n"
          "  " CTL_CONFIG_ENV "            configuration file, when --config is not given\n"
          "\n"
          "Exit status:\n"
          "  0  success\n"
          "  1  the command failed; one line on stderr says why\n"
          "  2  the command line is wrong\n"
          "  3  collect: some agents delivered no artifact (see 'vigilctl help collect')\n",
          out);
}

static const struct command *command_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

/* 'vigilctl help [COMMAND]' */
static int run_help(int argc, char **argv)
{
    if (argc == 0) {
        print_help(stdout);
        return CTL_EXIT_OK;
    }
    const struct command *cmd = command_find(argv[0]);
    if (cmd == NULL || argc > 1) {
        output_error("no help for \"%s\"; the commands are ack, agents, collect, escalate, "
                     "evidence, incident, incidents, keygen, mitigate, notifications, oncall, "
                     "report, resolve, signals, tail and token",
                     argv[0]);
        return CTL_EXIT_USAGE;
    }
    fputs(cmd->help, stdout);
    return CTL_EXIT_OK;
}

int ctl_context_config(struct ctl_context *ctx, const struct ctl_config **ret_cfg)
{
    if (!ctx->config_loaded) {
        char err[1024] = "";
        int r = ctl_config_path(ctx->config_flag, &ctx->config_path);
        if (r == -ENOENT) {
            output_error("no configuration file: give --config FILE or set " CTL_CONFIG_ENV
                         " (there is no home directory to look in)");
            return CTL_EXIT_FAILURE;
        }
        if (r < 0) {
            output_error("out of memory");
            return CTL_EXIT_FAILURE;
        }
        r = ctl_config_load(ctx->config_path, &ctx->config, err, sizeof(err));
        if (r < 0) {
            output_error("%s", err);
            return CTL_EXIT_FAILURE;
        }
        ctx->config_loaded = true;
    }
    *ret_cfg = &ctx->config;
    return CTL_EXIT_OK;
}

enum long_only_option {
    OPT_TIMEOUT = 256,
    OPT_VERSION,
    OPT_OUT,
    OPT_SECRET_FILE,
    OPT_PUBLIC_KEY,
    OPT_KEY_FILE,
    OPT_NODE,
    OPT_NAME,
    OPT_ALL,
    OPT_ARG,
    OPT_COLLECTION,
    OPT_LIMIT,
    OPT_STATUS,
    OPT_NOTE,
    OPT_FILE,
    OPT_SCHEDULE,
    OPT_USER,
    OPT_FROM,
    OPT_TO,
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"output", required_argument, NULL, 'o'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"out", required_argument, NULL, OPT_OUT},
    {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
    {"public-key", required_argument, NULL, OPT_PUBLIC_KEY},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"node", required_argument, NULL, OPT_NODE},
    {"name", required_argument, NULL, OPT_NAME},
    {"all", no_argument, NULL, OPT_ALL},
    {"arg", required_argument, NULL, OPT_ARG},
    {"collection", required_argument, NULL, OPT_COLLECTION},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"status", required_argument, NULL, OPT_STATUS},
    {"note", required_argument, NULL, OPT_NOTE},
    {"file", required_argument, NULL, OPT_FILE},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"user", required_argument, NULL, OPT_USER},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {NULL, 0, NULL, 0},
};

static int parse_timeout(const char *text, int64_t *ret_ms)
{
    int64_t ms;

    if (vg_parse_duration_ms(text, &ms) < 0 || ms < TIMEOUT_MIN_MS || ms > TIMEOUT_MAX_MS) {
        output_error("--timeout must be a duration between 100ms and 1h, like 5s (got \"%s\")",
                     text);
        return -EINVAL;
    }
    *ret_ms = ms;
    return 0;
}

/* Command-specific options belong to their commands (owners: space-separated names): say so
 * rather than ignore them. */
static int check_option_owner(const char *cmd, const char *owners, const char *option, bool given)
{
    if (!given)
        return 0;
    size_t len = strlen(cmd);
    for (const char *p = owners; *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && strncmp(p, cmd, n) == 0)
            return 0;
        p += n;
        p += *p == ' ';
    }
    output_error("--%s is not an option of '%s' (it belongs to: %s)", option, cmd, owners);
    return -EINVAL;
}

/*
 * Parses argv into ctx. Returns -1 to go on with the command in argv[optind...], or an exit
 * status to stop with. *ret_help is set when --help was given.
 */
static int parse_options(int argc, char **argv, struct ctl_context *ctx, bool *ret_help)
{
    int opt;

    opterr = 0; /* our own one-line messages */
    while ((opt = getopt_long(argc, argv, ":c:o:vh", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            ctx->config_flag = optarg;
            break;
        case 'o':
            if (output_format_parse(optarg, &ctx->format) < 0) {
                output_error("-o must be table or json (got \"%s\")", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case OPT_TIMEOUT:
            if (parse_timeout(optarg, &ctx->timeout_ms) < 0)
                return CTL_EXIT_USAGE;
            ctx->timeout_given = true;
            break;
        case 'v':
            vg_log_threshold = VG_LOG_DEBUG;
            break;
        case 'h':
            *ret_help = true;
            break;
        case OPT_VERSION:
            printf("vigilctl %s (protocol %d)\n", VIGIL_VERSION, VG_PROTOCOL_VERSION);
            return CTL_EXIT_OK;
        case OPT_OUT:
            ctx->out_path = optarg;
            break;
        case OPT_SECRET_FILE:
            ctx->secret_file = optarg;
            break;
        case OPT_PUBLIC_KEY:
            ctx->public_key = optarg;
            break;
        case OPT_KEY_FILE:
            ctx->key_file = optarg;
            break;
        case OPT_NODE:
            ctx->node = optarg;
            break;
        case OPT_NAME:
            ctx->name_glob = optarg;
            break;
        case OPT_ALL:
            ctx->all = true;
            break;
        case OPT_ARG:
            if (ctx->nargs < sizeof(ctx->args) / sizeof(ctx->args[0]))
                ctx->args[ctx->nargs++] = optarg;
            else
                ctx->too_many_args = true;
            break;
        case OPT_COLLECTION:
            ctx->collection = optarg;
            break;
        case OPT_LIMIT:
            ctx->limit = optarg;
            break;
        case OPT_STATUS:
            ctx->status = optarg;
            break;
        case OPT_NOTE:
            ctx->note = optarg;
            break;
        case OPT_FILE:
            ctx->file = optarg;
            break;
        case OPT_SCHEDULE:
            ctx->schedule = optarg;
            break;
        case OPT_USER:
            ctx->user = optarg;
            break;
        case OPT_FROM:
            ctx->from = optarg;
            break;
        case OPT_TO:
            ctx->to = optarg;
            break;
        case ':':
            output_error("%s needs a value; try 'vigilctl help'", argv[optind - 1]);
            return CTL_EXIT_USAGE;
        default:
            if (optopt != 0)
                output_error("unknown option -%c; try 'vigilctl help'", optopt);
            else
                output_error("unknown option %s; try 'vigilctl help'", argv[optind - 1]);
            return CTL_EXIT_USAGE;
        }
    }
    return -1;
}

static int run(int argc, char **argv, struct ctl_context *ctx)
{
    bool help = false;
    int r = parse_options(argc, argv, ctx, &help);
    if (r >= 0)
        return r;

    int nargs = argc - optind;
    char **args = argv + optind;
    if (nargs == 0) {
        if (help) {
            print_help(stdout);
            return CTL_EXIT_OK;
        }
        output_error("no command given; try 'vigilctl help'");
        return CTL_EXIT_USAGE;
    }
    if (strcmp(args[0], "help") == 0)
        return run_help(nargs - 1, args + 1);

    const struct command *cmd = command_find(args[0]);
    if (cmd == NULL) {
        output_error("unknown command \"%s\"; try 'vigilctl help'", args[0]);
        return CTL_EXIT_USAGE;
    }
    if (help) {
        fputs(cmd->help, stdout);
        return CTL_EXIT_OK;
    }
    if (check_option_owner(cmd->name, "keygen evidence", "out", ctx->out_path != NULL) < 0 ||
        check_option_owner(cmd->name, "token", "secret-file", ctx->secret_file != NULL) < 0 ||
        check_option_owner(cmd->name, "token", "public-key", ctx->public_key != NULL) < 0 ||
        check_option_owner(cmd->name, "token", "key-file", ctx->key_file != NULL) < 0 ||
        check_option_owner(cmd->name, "signals collect evidence", "node", ctx->node != NULL) < 0 ||
        check_option_owner(cmd->name, "signals", "name", ctx->name_glob != NULL) < 0 ||
        check_option_owner(cmd->name, "collect", "all", ctx->all) < 0 ||
        check_option_owner(cmd->name, "collect", "arg", ctx->nargs > 0 || ctx->too_many_args) < 0 ||
        check_option_owner(cmd->name, "evidence", "collection", ctx->collection != NULL) < 0 ||
        check_option_owner(cmd->name, "evidence", "limit", ctx->limit != NULL) < 0 ||
        check_option_owner(cmd->name, "incidents", "status", ctx->status != NULL) < 0 ||
        check_option_owner(cmd->name, "ack mitigate resolve", "note", ctx->note != NULL) < 0 ||
        check_option_owner(cmd->name, "report", "file", ctx->file != NULL) < 0 ||
        check_option_owner(cmd->name, "oncall", "schedule", ctx->schedule != NULL) < 0 ||
        check_option_owner(cmd->name, "oncall", "user", ctx->user != NULL) < 0 ||
        check_option_owner(cmd->name, "oncall", "from", ctx->from != NULL) < 0 ||
        check_option_owner(cmd->name, "oncall", "to", ctx->to != NULL) < 0)
        return CTL_EXIT_USAGE;

    return cmd->run(ctx, nargs - 1, args + 1);
}

int main(int argc, char **argv)
{
    struct ctl_context ctx = {
        .format = OUTPUT_TABLE,
        .timeout_ms = CTL_ADMIN_DEFAULT_TIMEOUT_MS,
    };

    vg_log_init("vigilctl", VG_LOG_WARN, false);
    int status = run(argc, argv, &ctx);

    if (ctx.config_loaded || ctx.config_path != NULL)
        ctl_config_free(&ctx.config);
    free(ctx.config_path);
    ctx.config_path = NULL;

    /* A full disk or a closed pipe must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (status == CTL_EXIT_OK)
            output_error("cannot write to standard output: %s", strerror(errno));
        return CTL_EXIT_FAILURE;
    }
    return status;
}
