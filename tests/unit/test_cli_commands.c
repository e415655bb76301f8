/*
 * vigilctl's command table (cli/commands.h): every verb documented, found and handed its own
 * options; and the built vigilctl, next to this test, refusing another command's option.
 */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "commands.h"

static size_t all_commands(const struct ctl_command **cmds)
{
    size_t n = ctl_command_list(cmds, CTL_MAX_COMMANDS);
    assert_in_range(n, 1, CTL_MAX_COMMANDS - 1);
    return n;
}

/* 'vigilctl help' lists each command alphabetically, each found by its name. */
static void test_commands_sorted_and_found(void **state)
{
    const struct ctl_command *cmds[CTL_MAX_COMMANDS] = {0};
    size_t n = all_commands(cmds);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(ctl_command_find(cmds[i]->name), cmds[i]);
        if (i > 0)
            assert_true(strcmp(cmds[i - 1]->name, cmds[i]->name) < 0); /* and unique */
    }
    assert_non_null(ctl_command_find("ack"));
    assert_non_null(ctl_command_find("collect"));
    assert_null(ctl_command_find("help")); /* main.c's own */
    assert_null(ctl_command_find("bogus"));
    assert_null(ctl_command_find("ac"));
}

/* 'vigilctl help' shows a line per form; 'vigilctl help NAME' starts with its usage and names
 * every option the command takes. */
static void test_every_command_documented(void **state)
{
    const struct ctl_command *cmds[CTL_MAX_COMMANDS] = {0};
    size_t n = all_commands(cmds);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        const struct ctl_command *cmd = cmds[i];
        char usage[64];
        snprintf(usage, sizeof(usage), "Usage: vigilctl %s", cmd->name);
        assert_non_null(cmd->run);
        assert_non_null(cmd->help);
        if (strncmp(cmd->help, usage, strlen(usage)) != 0)
            fail_msg("%s: the help does not start with \"%s\"", cmd->name, usage);
        assert_int_equal(cmd->help[strlen(cmd->help) - 1], '\n');

        assert_non_null(cmd->forms[0].usage);
        for (size_t f = 0; f < CTL_MAX_FORMS && cmd->forms[f].usage != NULL; f++) {
            const struct ctl_form *form = &cmd->forms[f];
            size_t len = strlen(cmd->name);
            if (strncmp(form->usage, cmd->name, len) != 0 ||
                (form->usage[len] != '\0' && form->usage[len] != ' '))
                fail_msg("%s: the form \"%s\" is not of this command", cmd->name, form->usage);
            assert_non_null(form->summary);
            assert_true(form->summary[0] != '\0');
            assert_null(strchr(form->summary, '\n'));
            assert_null(strchr(form->usage, '\n'));
        }

        for (size_t o = 0; o < CTL_MAX_OPTIONS && cmd->options[o].name != NULL; o++) {
            char option[64];
            snprintf(option, sizeof(option), "--%s", cmd->options[o].name);
            if (strstr(cmd->help, option) == NULL)
                fail_msg("%s takes %s but its help does not say so", cmd->name, option);
        }
    }
}

/* One name, one meaning: an option several commands take has the same kind everywhere, and
 * none shadows a global option. */
static void test_options_consistent(void **state)
{
    static const char *const global[] = {"config",  "output", "timeout",
                                         "verbose", "help",   "version"};
    const struct ctl_command *cmds[CTL_MAX_COMMANDS] = {0};
    size_t n = all_commands(cmds);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        for (size_t o = 0; o < CTL_MAX_OPTIONS && cmds[i]->options[o].name != NULL; o++) {
            const struct ctl_option *opt = &cmds[i]->options[o];
            assert_int_equal(ctl_command_option(cmds[i], opt->name), (int)o); /* declared once */
            for (size_t g = 0; g < sizeof(global) / sizeof(global[0]); g++)
                if (strcmp(opt->name, global[g]) == 0)
                    fail_msg("%s: --%s is a global option", cmds[i]->name, opt->name);
            for (size_t j = 0; j < n; j++) {
                int k = ctl_command_option(cmds[j], opt->name);
                if (k >= 0 && cmds[j]->options[k].kind != opt->kind)
                    fail_msg("--%s: %s and %s disagree on its kind", opt->name, cmds[i]->name,
                             cmds[j]->name);
            }
        }
    }
}

/* The refusal names the commands that take the option. */
static void test_owners(void **state)
{
    char buf[256];

    (void)state;
    assert_int_equal(ctl_command_owners("note", buf, sizeof(buf)), 5);
    assert_string_equal(buf, "ack followup mitigate resolve severity");
    assert_int_equal(ctl_command_owners("out", buf, sizeof(buf)), 2);
    assert_string_equal(buf, "evidence keygen");
    assert_int_equal(ctl_command_owners("bogus", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
}

/* What a command reads back: the last value, flags, and every value of a list option. */
static void test_args_access(void **state)
{
    const struct ctl_command *collect = ctl_command_find("collect");
    struct ctl_args args = {.command = collect};
    const char *const *values = NULL;
    int node = ctl_command_option(collect, "node");
    int all = ctl_command_option(collect, "all");
    int arg = ctl_command_option(collect, "arg");

    (void)state;
    assert_true(node >= 0 && all >= 0 && arg >= 0);
    assert_null(ctl_args_value(&args, "node"));
    assert_false(ctl_args_has(&args, "all"));
    assert_int_equal(ctl_args_list(&args, "arg", &values), 0);

    args.value[node] = "web-2";
    args.count[node] = 2;
    args.value[all] = "";
    args.count[all] = 1;
    args.list[arg][0] = "path=/a";
    args.list[arg][1] = "lines=5";
    args.value[arg] = "lines=5";
    args.count[arg] = 2;
    assert_string_equal(ctl_args_value(&args, "node"), "web-2");
    assert_true(ctl_args_has(&args, "all"));
    assert_int_equal(ctl_args_list(&args, "arg", &values), 2);
    assert_string_equal(values[0], "path=/a");
    assert_string_equal(values[1], "lines=5");
}

/* ---- the built vigilctl ---- */

/* Runs the vigilctl built next to this test with argv (NULL-terminated, argv[0] included);
 * its exit status, and the first line it wrote to stderr in err. */
static int vigilctl(char *const argv[], char *err, size_t errlen)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(len > 0);
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    assert_non_null(slash);
    *slash = '\0';
    snprintf(path, sizeof(path), "%s/vigilctl", self);
    if (access(path, X_OK) != 0)
        fail_msg("%s is not there: build vigilctl first", path);

    FILE *errf = tmpfile();
    assert_non_null(errf);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fileno(errf), STDERR_FILENO);
    /* No configuration: a command that got past its options fails at loading it. */
    char *envp[] = {"VIGIL_CONFIG=/nonexistent/vigilctl.yaml", "HOME=/nonexistent", NULL};
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, path, &actions, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&actions);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));

    rewind(errf);
    if (fgets(err, (int)errlen, errf) == NULL)
        err[0] = '\0';
    err[strcspn(err, "\n")] = '\0';
    fclose(errf);
    return WEXITSTATUS(status);
}

static void test_vigilctl_options(void **state)
{
    char err[512];

    (void)state;
    /* An option of other commands: refused, naming the command and those that take it. */
    char *signals_out[] = {"vigilctl", "signals", "--out", "x", NULL};
    assert_int_equal(vigilctl(signals_out, err, sizeof(err)), CTL_EXIT_USAGE);
    assert_string_equal(err,
                        "vigilctl: --out is not an option of 'signals' (it belongs to: evidence "
                        "keygen)");
    /* Before the command too. */
    char *note_first[] = {"vigilctl", "--note", "x", "escalate", "5", NULL};
    assert_int_equal(vigilctl(note_first, err, sizeof(err)), CTL_EXIT_USAGE);
    assert_string_equal(err, "vigilctl: --note is not an option of 'escalate' (it belongs to: "
                             "ack followup mitigate resolve severity)");
    /* --help wins over it, as it always did. */
    char *help_wins[] = {"vigilctl", "keygen", "--help", "--node", "x", NULL};
    assert_int_equal(vigilctl(help_wins, err, sizeof(err)), CTL_EXIT_OK);

    /* Its own options, before or after its words or the command: on to the configuration. */
    char *own[] = {"vigilctl", "resolve", "--note", "done", "5", NULL};
    assert_int_equal(vigilctl(own, err, sizeof(err)), CTL_EXIT_FAILURE);
    assert_non_null(strstr(err, "/nonexistent/vigilctl.yaml"));
    char *own_first[] = {"vigilctl", "--note=done", "-o", "json", "resolve", "5", NULL};
    assert_int_equal(vigilctl(own_first, err, sizeof(err)), CTL_EXIT_FAILURE);
    assert_non_null(strstr(err, "/nonexistent/vigilctl.yaml"));
    /* Checked by the command: a list option past its bound. */
    char *many[] = {"vigilctl",  "collect",   "--all",     "host",      "--arg=a=1", "--arg=b=1",
                    "--arg=c=1", "--arg=d=1", "--arg=e=1", "--arg=f=1", "--arg=g=1", "--arg=h=1",
                    "--arg=i=1", "--arg=j=1", "--arg=k=1", "--arg=l=1", "--arg=m=1", "--arg=n=1",
                    "--arg=o=1", "--arg=p=1", "--arg=q=1", NULL};
    assert_int_equal(vigilctl(many, err, sizeof(err)), CTL_EXIT_USAGE);
    assert_string_equal(err, "vigilctl: at most 16 --arg options");

    /* An abbreviation several options share is not guessed. */
    char *ambiguous[] = {"vigilctl", "signals", "--n", "x", NULL};
    assert_int_equal(vigilctl(ambiguous, err, sizeof(err)), CTL_EXIT_USAGE);
    assert_string_equal(err, "vigilctl: unknown option --n; try 'vigilctl help'");
    char *flag_value[] = {"vigilctl", "collect", "--all=yes", "host", NULL};
    assert_int_equal(vigilctl(flag_value, err, sizeof(err)), CTL_EXIT_USAGE);
    assert_string_equal(err, "vigilctl: --all takes no value; try 'vigilctl help'");
    char *unknown[] = {"vigilctl", "help", "bogus", NULL};
    assert_int_equal(vigilctl(unknown, err, sizeof(err)), CTL_EXIT_USAGE);
    assert_non_null(strstr(
        err,
        "the commands are ack, agents, approve, automation, cancel, collect, command, commands, "));
    assert_non_null(strstr(err, ", tail, token and update"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_sorted_and_found),
        cmocka_unit_test(test_every_command_documented),
        cmocka_unit_test(test_options_consistent),
        cmocka_unit_test(test_owners),
        cmocka_unit_test(test_args_access),
        cmocka_unit_test(test_vigilctl_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
