/*
 * loop.h - the port's loop: reads {packet,4} requests on stdin and writes
 * replies on stdout until stdin closes. stdout carries nothing but packets:
 * every diagnostic goes to stderr, prefixed "caravan_port:".
 */
#ifndef CARAVAN_LOOP_H
#define CARAVAN_LOOP_H

/* Runs until stdin closes (EXIT_SUCCESS) or stdout, poll or memory fails
 * (EXIT_FAILURE). */
int loop_run(void);

#endif
