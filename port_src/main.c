/*
 * main.c - caravan_port: the program behind caravan's Erlang ports, and a
 * small command line for operators. Only the argument vector and the mode
 * are read here: as a port (no arguments, stdin not a terminal) the loop
 * runs (core/loop.h); otherwise a command of cli.h.
 */
#include <ei.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "loop.h"

int main(int argc, char **argv)
{
    /* A write to a closed stdout must come back as EPIPE, not kill us before
     * we can exit cleanly. */
    signal(SIGPIPE, SIG_IGN);
    ei_init();

    if (argc == 1) {
        if (isatty(STDIN_FILENO)) {
            fputs(cli_usage, stderr);
            return 2;
        }
        return loop_run();
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cli_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("caravan_port %s\n", CARAVAN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "dist-port") == 0)
        return cli_dist_port(argc - 2, argv + 2);
    if (strcmp(argv[1], "lookup") == 0)
        return cli_lookup(argc - 2, argv + 2);
    if (strcmp(argv[1], "kill") == 0)
        return cli_kill(argc - 2, argv + 2);
    fputs(cli_usage, stderr);
    return 2;
}
