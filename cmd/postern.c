/*
 * postern - the admin command.
 *
 *   postern [-c DIR] [-v] conf ...     postconf(1) work-alike
 *   postern [-c DIR] [-v] map ...      postmap(1) work-alike
 *   postern [-c DIR] [-v] queue ...    mailq(1), postqueue(1), postcat(1)
 *
 * See postern(1).  -c DIR (or POSTERN_CONFIG_DIR) selects the config
 * directory for every subcommand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "postern.h"
#include "util/msg.h"
#include "util/strbuf.h"

static const struct {
    const char *name;
    int     (*fn)(int, char **, const char *);
} postern_commands[] = {
    {"conf", postern_conf_main},
    {"map", postern_map_main},
    {"queue", postern_queue_main},
    {"user", postern_user_main},
    {"start", postern_ctl_main},
    {"start-fg", postern_ctl_main},
    {"stop", postern_ctl_main},
    {"abort", postern_ctl_main},
    {"reload", postern_ctl_main},
    {"status", postern_ctl_main},
    {"check", postern_ctl_main},
};

static void postern_usage(void)
{
    fprintf(stderr,
            "usage: postern [-c config_dir] [-v] command [args]\n"
            "commands:\n"
            "  start | start-fg | stop | abort | reload | status | check\n"
            "          control the mail system (like postfix)\n"
            "  conf    show or edit main.cf and master.cf (like postconf)\n"
            "  map     build or query lookup tables (like postmap)\n"
            "  queue   list the queue or show a message (like mailq, "
            "postcat)\n"
            "  user    add, delete, list mail users and set passwords\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *config_dir = NULL;
    int ch;

    msg_init("postern", MSG_STDERR);
    while ((ch = getopt(argc, argv, "+c:v")) != -1) {
        switch (ch) {
        case 'c':
            config_dir = optarg;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            postern_usage();
        }
    }
    if (optind >= argc)
        postern_usage();
    for (size_t i = 0; i < sizeof(postern_commands) / sizeof(postern_commands[0]);
         i++) {
        if (strcmp(argv[optind], postern_commands[i].name) == 0) {
            {
                char **sub = argv + optind;
                int subc = argc - optind;

                optind = 1;
                return postern_commands[i].fn(subc, sub, config_dir);
            }
        }
    }
    msg_fatal_status(2, "unknown command: %s (try postern -h)", argv[optind]);
}
