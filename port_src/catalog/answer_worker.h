/*
 * answer_worker.h - Consul and Nomad answers encoded on a thread of their
 * own, so that the poll loop keeps answering while a long member list is
 * encoded (the members themselves are read as the body arrives, in the
 * loop, a piece at a time: catalog.h).
 *
 * A job is self-contained: it owns its members and its reply buffer, and
 * the thread touches nothing else (ei's encoders only write the job's
 * buffer). The loop submits jobs, polls answer_worker_fd, and takes
 * finished jobs back to send their replies.
 *
 * Ownership: a submitted job belongs to the worker until answer_worker_take
 * returns it; the caller then sends job->x and calls answer_job_free.
 */
#ifndef CARAVAN_ANSWER_WORKER_H
#define CARAVAN_ANSWER_WORKER_H

#include <ei.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog_request.h"

/* Answers with up to this many members are encoded on the loop instead
 * (ops_catalog.c): well under a millisecond each, and never queued behind a
 * big one. */
#define ANSWER_INLINE_MEMBERS 64

enum answer_outcome { ANSWER_OK, ANSWER_ERROR, ANSWER_NOT_ENCODED };

struct answer_job {
    struct answer_job *next;
    /* In: the request and its 200 response, read. */
    uint64_t id;
    enum catalog_api api;
    struct members members; /* freed by the run */
    const char *body_error; /* why the body was refused, or NULL */
    char index[32];
    char next_token[HTTP_HEADER_VALUE_MAX];
    /* Out: the whole reply, {Id, ok, _} or {Id, error, {bad_answer, _}}. */
    enum answer_outcome outcome;
    ei_x_buff x;
    size_t skipped;
    const char *skip_reason;
    size_t members_n; /* how many members the answer had */
    /* Cancelled by the owner while the worker held the job: its reply is
     * dropped when taken back. Set and read by the loop only (under the
     * worker's lock while the worker holds the job); the thread never
     * reads it. */
    bool cancelled;
};

/* Encodes job (on any thread). */
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
/* Marks the job of request id, queued, being encoded or finished but not
 * taken yet, as cancelled. Returns 1, or 0 when the worker holds no job of
 * that id. The job itself runs on; answer_worker_take returns it as ever. */
int answer_worker_cancel(struct answer_worker *w, uint64_t id);
/* Stops the worker. Jobs not started are dropped. A job being read is left
 * to finish on its own rather than waited for, so that the program exits
 * at once: the worker's memory is then left to the process's exit. */
void answer_worker_free(struct answer_worker *w);

#endif
