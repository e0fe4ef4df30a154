/*
 * answer_worker.h - Consul and Nomad answers read and encoded on a thread
 * of their own, so that the poll loop keeps answering while a big body is
 * read (a 17.5 MB answer takes about 300 ms; pings sent meanwhile waited
 * that long when it was read in the loop).
 *
 * A job is self-contained: it owns its body and its reply buffer, and the
 * thread touches nothing else (catalog.c and json.c keep no state; ei's
 * encoders only write the job's buffer). The loop submits jobs, polls
 * answer_worker_fd, and takes finished jobs back to send their replies.
 *
 * Ownership: a submitted job belongs to the worker until answer_worker_take
 * returns it; the caller then sends job->x and calls answer_job_free.
 */
#ifndef CARAVAN_ANSWER_WORKER_H
#define CARAVAN_ANSWER_WORKER_H

#include <ei.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog_request.h"

/* Bodies up to this size are read on the loop instead (ops_http.c): well
 * under a millisecond each, and never queued behind a big one. */
#define ANSWER_INLINE_MAX (16 * 1024)

enum answer_outcome { ANSWER_OK, ANSWER_ERROR, ANSWER_NOT_ENCODED };

struct answer_job {
    struct answer_job *next;
    /* In: the request and its 200 response. */
    uint64_t id;
    enum catalog_api api;
    char tagged[64];
    char *body; /* malloc'd, may be NULL when len is 0; freed by the run */
    size_t len;
    char index[32];
    char next_token[HTTP_HEADER_VALUE_MAX];
    /* Out: the whole reply, {Id, ok, _} or {Id, error, {bad_answer, _}}. */
    enum answer_outcome outcome;
    ei_x_buff x;
    size_t skipped;
    const char *skip_reason;
};

/* Reads and encodes job (on any thread). */
void answer_job_run(struct answer_job *job);
void answer_job_free(struct answer_job *job);

struct answer_worker;

/* NULL when no thread can be had: the caller runs jobs itself. */
struct answer_worker *answer_worker_new(void);
/* Returns 0, or -1 (the worker is stopping): the caller keeps the job. */
int answer_worker_submit(struct answer_worker *w, struct answer_job *job);
/* Readable when a job has finished. */
int answer_worker_fd(const struct answer_worker *w);
/* A finished job, or NULL. */
struct answer_job *answer_worker_take(struct answer_worker *w);
/* Stops the worker. Jobs not started are dropped. A job being read is left
 * to finish on its own rather than waited for, so that the program exits
 * at once: the worker's memory is then left to the process's exit. */
void answer_worker_free(struct answer_worker *w);

#endif
