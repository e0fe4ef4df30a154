/*
 * cli.h - caravan_port's command-line modes for operators and scripts.
 * Results go to stdout, one per line; errors to stderr with a non-zero exit
 * status (1: the lookup failed, 2: bad usage).
 */
#ifndef CARAVAN_CLI_H
#define CARAVAN_CLI_H

extern const char cli_usage[];

/* caravan_port dist-port NAME [--default PORT] */
int cli_dist_port(int argc, char **argv);

/* caravan_port lookup NAME [--dns IP:PORT]... [--basename B] [--timeout MS]
 *                          [--udp] [--verbose] */
int cli_lookup(int argc, char **argv);

/* caravan_port kill PID: SIGKILL to PID if it is a sibling (a program the
 * same VM started; see cli_kill.c). Exit status 0: killed or already gone;
 * 1: not a sibling, or the signal failed; 2: bad usage. */
int cli_kill(int argc, char **argv);

#endif
