/*
 * vigilctl's command table: the tables of the cmd_*.c files, listed once, and what every
 * command is handed (its options, the configuration). See commands.h for adding a verb.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "output.h"

/* Every cmd_*.c file's table, once. */
static const struct ctl_command *const tables[] = {
    cmd_agents_table, cmd_commands_table,      cmd_evidence_table, cmd_incidents_table,
    cmd_keys_table,   cmd_notifications_table, cmd_oncall_table,   cmd_operators_table,
    cmd_report_table, cmd_signals_table,       cmd_tail_table,     cmd_silences_table,
    cmd_steer_table,  cmd_drills_table,        cmd_followups_table, cmd_holds_table,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

const struct ctl_command *ctl_command_find(const char *name)
{
    for (size_t t = 0; t < NTABLES; t++) {
        for (const struct ctl_command *cmd = tables[t]; cmd->name != NULL; cmd++) {
            if (strcmp(cmd->name, name) == 0)
                return cmd;
        }
    }
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    const struct ctl_command *ca = *(const struct ctl_command *const *)a;
    const struct ctl_command *cb = *(const struct ctl_command *const *)b;
    return strcmp(ca->name, cb->name);
}

size_t ctl_command_list(const struct ctl_command **ret, size_t max)
{
    size_t n = 0;

    for (size_t t = 0; t < NTABLES; t++) {
        for (const struct ctl_command *cmd = tables[t]; cmd->name != NULL; cmd++) {
            if (n < max)
                ret[n] = cmd;
            n++;
        }
    }
    qsort(ret, n < max ? n : max, sizeof(const struct ctl_command *), by_name);
    return n;
}

int ctl_command_option(const struct ctl_command *cmd, const char *option)
{
    for (int i = 0; i < CTL_MAX_OPTIONS && cmd->options[i].name != NULL; i++) {
        if (strcmp(cmd->options[i].name, option) == 0)
            return i;
    }
    return -1;
}

size_t ctl_command_owners(const char *option, char *buf, size_t buflen)
{
    const struct ctl_command *all[CTL_MAX_COMMANDS] = {0};
    size_t n = ctl_command_list(all, CTL_MAX_COMMANDS), owners = 0, used = 0;

    if (buflen > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < n && i < CTL_MAX_COMMANDS; i++) {
        if (ctl_command_option(all[i], option) < 0)
            continue;
        if (used < buflen) {
            int w =
                snprintf(buf + used, buflen - used, "%s%s", owners > 0 ? " " : "", all[i]->name);
            used += w > 0 ? (size_t)w : 0;
        }
        owners++;
    }
    return owners;
}

/* The option's position; asking for an option the entry does not declare is a bug. */
static int declared(const struct ctl_args *args, const char *option)
{
    int i = ctl_command_option(args->command, option);
    assert(i >= 0 && "the command's entry does not declare this option");
    return i;
}

bool ctl_key_values(const char *const *texts, size_t n, size_t max,
                    char keys[][VG_MAX_NAME_LEN + 1], const char **ret_values)
{
    if (n > max) {
        output_error("at most %zu --arg options", max);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *text = texts[i];
        const char *eq = strchr(text, '=');
        size_t key_len = eq ? (size_t)(eq - text) : 0;
        if (key_len == 0 || key_len > VG_MAX_NAME_LEN) {
            output_error("--arg must be KEY=VALUE with a key of 1 to %d bytes (got \"%s\")",
                         VG_MAX_NAME_LEN, text);
            return false;
        }
        if (strlen(eq + 1) > VG_MAX_VALUE_LEN) {
            output_error("--arg %.*s: the value must be at most %d bytes", (int)key_len, text,
                         VG_MAX_VALUE_LEN);
            return false;
        }
        memcpy(keys[i], text, key_len);
        keys[i][key_len] = '\0';
        for (size_t k = 0; k < i; k++) {
            if (strcmp(keys[k], keys[i]) == 0) {
                output_error("--arg %s is given twice", keys[i]);
                return false;
            }
        }
        ret_values[i] = eq + 1;
    }
    return true;
}

const char *ctl_args_value(const struct ctl_args *args, const char *option)
{
    int i = declared(args, option);
    return i >= 0 ? args->value[i] : NULL;
}

bool ctl_args_has(const struct ctl_args *args, const char *option)
{
    int i = declared(args, option);
    return i >= 0 && args->count[i] > 0;
}

size_t ctl_args_list(const struct ctl_args *args, const char *option,
                     const char *const **ret_values)
{
    int i = declared(args, option);
    if (i < 0)
        return 0;
    *ret_values = args->list[i];
    return args->count[i];
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
