/*
 * vigilctl: the operator's command line. Parses the options, finds the command in the table
 * (commands.h), hands it the options it declares and runs it. 'vigilctl help' and
 * 'vigilctl help NAME' are printed from the same table.
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
#include "digest_openssl.h"
#include "log.h"

#define TIMEOUT_MIN_MS 100
#define TIMEOUT_MAX_MS (INT64_C(60) * 60 * 1000)
#define USAGE_WIDTH 24 /* the usage column of 'vigilctl help' */

enum long_only_option {
    OPT_TIMEOUT = 256,
    OPT_VERSION,
    OPT_COMMAND, /* OPT_COMMAND + k: the option at k in the table long_options builds */
};

/* Before or after the command word; every command takes them. */
static const struct option global_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"output", required_argument, NULL, 'o'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
};
#define NGLOBAL (sizeof(global_options) / sizeof(global_options[0]))
#define MAX_LONG_OPTIONS (NGLOBAL + CTL_MAX_COMMANDS * CTL_MAX_OPTIONS + 1)

/* A command option as given, before the command is known: its name as declared and its value
 * ("" for a flag). */
struct given_option {
    const char *name;
    const char *value;
};

/* One line of the command list: the usage, then the summary in its column (or below it). */
static void print_form(FILE *out, const char *usage, const char *summary)
{
    if (strlen(usage) < USAGE_WIDTH)
        fprintf(out, "  %-*s%s\n", USAGE_WIDTH, usage, summary);
    else
        fprintf(out, "  %s\n  %*s%s\n", usage, USAGE_WIDTH, "", summary);
}

static void print_help(FILE *out)
{
    const struct ctl_command *cmds[CTL_MAX_COMMANDS] = {0};
    size_t ncmds = ctl_command_list(cmds, CTL_MAX_COMMANDS);

    fputs("vigilctl: the Vigil operator's command line\n"
          "\n"
          "Usage: vigilctl [--config FILE] [-o table|json] [--timeout DURATION] COMMAND [ARGS]\n"
          "\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < ncmds && i < CTL_MAX_COMMANDS; i++) {
        for (size_t f = 0; f < CTL_MAX_FORMS && cmds[i]->forms[f].usage != NULL; f++)
            print_form(out, cmds[i]->forms[f].usage, cmds[i]->forms[f].summary);
    }
    print_form(out, "help [COMMAND]", "this help, or one command's ('vigilctl COMMAND --help')");
    fputs("\n"
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

/* 'vigilctl help [COMMAND]' */
static int run_help(int argc, char **argv)
{
    if (argc == 0) {
        print_help(stdout);
        return CTL_EXIT_OK;
    }
    const struct ctl_command *cmd = ctl_command_find(argv[0]);
    if (cmd == NULL || argc > 1) {
        const struct ctl_command *cmds[CTL_MAX_COMMANDS] = {0};
        size_t n = ctl_command_list(cmds, CTL_MAX_COMMANDS);
        char names[1024] = "";
        size_t used = 0;
        for (size_t i = 0; i < n && i < CTL_MAX_COMMANDS && used < sizeof(names); i++) {
            const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
            int w = snprintf(names + used, sizeof(names) - used, "%s%s", sep, cmds[i]->name);
            used += w > 0 ? (size_t)w : 0;
        }
        output_error("no help for \"%s\"; the commands are %s", argv[0], names);
        return CTL_EXIT_USAGE;
    }
    fputs(cmd->help, stdout);
    return CTL_EXIT_OK;
}

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

/* Applies global option opt. Returns -1 to go on, or an exit status to stop with. */
static int global_option(struct ctl_context *ctx, int opt, bool *help)
{
    switch (opt) {
    case 'c':
        ctx->config_flag = optarg;
        return -1;
    case 'o':
        if (output_format_parse(optarg, &ctx->format) < 0) {
            output_error("-o must be table or json (got \"%s\")", optarg);
            return CTL_EXIT_USAGE;
        }
        return -1;
    case OPT_TIMEOUT:
        if (parse_timeout(optarg, &ctx->timeout_ms) < 0)
            return CTL_EXIT_USAGE;
        ctx->timeout_given = true;
        return -1;
    case 'v':
        vg_log_threshold = VG_LOG_DEBUG;
        return -1;
    case 'h':
        *help = true;
        return -1;
    case OPT_VERSION:
        printf("vigilctl %s (protocol %d)\n", VIGIL_VERSION, VG_PROTOCOL_VERSION);
        return CTL_EXIT_OK;
    default:
        return -1;
    }
}

/*
 * The global options and every option some command declares, each name once, for
 * getopt_long: knowing them all, it takes an exact name over an abbreviation ("--out" is not
 * "--output"), finds "--n" ambiguous and never takes an option's value for the command word.
 */
static void long_options(struct option *opts)
{
    const struct ctl_command *cmds[CTL_MAX_COMMANDS] = {0};
    size_t ncmds = ctl_command_list(cmds, CTL_MAX_COMMANDS), n = NGLOBAL;

    memcpy(opts, global_options, sizeof(global_options));
    for (size_t c = 0; c < ncmds && c < CTL_MAX_COMMANDS; c++) {
        for (size_t i = 0; i < CTL_MAX_OPTIONS && cmds[c]->options[i].name != NULL; i++) {
            const struct ctl_option *o = &cmds[c]->options[i];
            size_t k = 0;
            while (k < n && strcmp(opts[k].name, o->name) != 0)
                k++;
            if (k < n)
                continue;
            opts[n] = (struct option){o->name,
                                      o->kind == CTL_OPTION_FLAG ? no_argument : required_argument,
                                      NULL, OPT_COMMAND + (int)n};
            n++;
        }
    }
    opts[n] = (struct option){NULL, 0, NULL, 0};
}

/* The one line for what getopt_long refused (':' or '?'); word is the word it refused. */
static void option_error(int opt, const char *word)
{
    if (opt == ':')
        output_error("%s needs a value; try 'vigilctl help'", word);
    else if (optopt != 0 && strncmp(word, "--", 2) == 0) /* "--all=x": a value it does not take */
        output_error("%.*s takes no value; try 'vigilctl help'", (int)strcspn(word, "="), word);
    else if (optopt != 0)
        output_error("unknown option -%c; try 'vigilctl help'", optopt);
    else
        output_error("unknown option %s; try 'vigilctl help'", word);
}

/*
 * Parses argv: the global options into ctx, the command options into given (*ret_ngiven of
 * them, in order), wherever they are; the command and its words are left in argv[optind...].
 * Returns -1 to go on, or an exit status to stop with.
 */
static int parse_options(int argc, char **argv, struct ctl_context *ctx, bool *help,
                         struct given_option *given, size_t *ret_ngiven)
{
    struct option opts[MAX_LONG_OPTIONS];
    int opt;

    long_options(opts);
    *ret_ngiven = 0;
    opterr = 0; /* our own one-line messages */
    while ((opt = getopt_long(argc, argv, ":c:o:vh", opts, NULL)) != -1) {
        if (opt == ':' || opt == '?') {
            option_error(opt, argv[optind - 1]);
            return CTL_EXIT_USAGE;
        }
        if (opt >= OPT_COMMAND) {
            given[*ret_ngiven].name = opts[opt - OPT_COMMAND].name;
            given[*ret_ngiven].value = optarg != NULL ? optarg : "";
            ++*ret_ngiven;
            continue;
        }
        int r = global_option(ctx, opt, help);
        if (r >= 0)
            return r;
    }
    return -1;
}

/*
 * Hands the command its options. One it does not take is refused, naming the command and
 * those that take it; with --help, the help is shown instead. Returns -1 to go on, or an exit
 * status to stop with.
 */
static int take_options(const struct ctl_command *cmd, const struct given_option *given,
                        size_t ngiven, bool help, struct ctl_args *args)
{
    for (size_t g = 0; g < ngiven; g++) {
        int i = ctl_command_option(cmd, given[g].name);
        if (i < 0) {
            if (help)
                continue;
            char owners[256];
            ctl_command_owners(given[g].name, owners, sizeof(owners));
            output_error("--%s is not an option of '%s' (it belongs to: %s)", given[g].name,
                         cmd->name, owners);
            return CTL_EXIT_USAGE;
        }
        if (cmd->options[i].kind == CTL_OPTION_LIST && args->count[i] < CTL_MAX_LIST)
            args->list[i][args->count[i]] = given[g].value;
        args->value[i] = given[g].value;
        args->count[i]++;
    }
    return -1;
}

static int run(int argc, char **argv, struct ctl_context *ctx, struct given_option *given)
{
    bool help = false;
    size_t ngiven = 0;
    int r = parse_options(argc, argv, ctx, &help, given, &ngiven);
    if (r >= 0)
        return r;

    int nwords = argc - optind;
    char **words = argv + optind;
    if (nwords == 0) {
        if (help) {
            print_help(stdout);
            return CTL_EXIT_OK;
        }
        output_error("no command given; try 'vigilctl help'");
        return CTL_EXIT_USAGE;
    }
    if (strcmp(words[0], "help") == 0)
        return run_help(nwords - 1, words + 1);

    const struct ctl_command *cmd = ctl_command_find(words[0]);
    if (cmd == NULL) {
        output_error("unknown command \"%s\"; try 'vigilctl help'", words[0]);
        return CTL_EXIT_USAGE;
    }
    struct ctl_args args = {.command = cmd, .argc = nwords - 1, .argv = words + 1};
    r = take_options(cmd, given, ngiven, help, &args);
    if (r >= 0)
        return r;
    if (help) {
        fputs(cmd->help, stdout);
        return CTL_EXIT_OK;
    }
    return cmd->run(ctx, &args);
}

int main(int argc, char **argv)
{
    struct ctl_context ctx = {
        .format = OUTPUT_TABLE,
        .timeout_ms = CTL_ADMIN_DEFAULT_TIMEOUT_MS,
    };

    vg_log_init("vigilctl", VG_LOG_WARN, false);
    /* evidence get and bundles hash whole artifacts: libcrypto's SHA-256. */
    vg_sha256_set_engine(vg_sha256_openssl());
    /* Every command option takes at least one word of argv. */
    struct given_option *given = calloc((size_t)argc, sizeof(*given));
    if (given == NULL) {
        output_error("out of memory");
        return CTL_EXIT_FAILURE;
    }
    int status = run(argc, argv, &ctx, given);
    free(given);
    given = NULL;

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
