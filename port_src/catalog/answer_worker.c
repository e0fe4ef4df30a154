/* answer_worker.c - encoding answers off the loop; see answer_worker.h. */
#include "answer_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "reply.h"

struct answer_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct answer_job *todo, *todo_tail, *done, *done_tail, *busy;
    int pipe[2]; /* the thread writes a byte per finished job */
    bool stop;
};

static int encode_text(ei_x_buff *x, const char *key, const char *value)
{
    return ei_x_encode_atom(x, key) || ei_x_encode_binary(x, value, (int)strlen(value));
}

/* Makes room for the whole member list at once (reply_reserve). The bound
 * per member: map header 5, four small atoms 2 + 7, 2 + 4, 2 + 4, 2 + 2,
 * three binary headers 5 each, a long at most 11: 56 bytes, plus the
 * strings. */
static int reserve_members(ei_x_buff *x, const struct members *ms)
{
    size_t need = 16;
    for (size_t i = 0; i < ms->n; i++)
        need += 64 + strlen(ms->m[i].address) + strlen(ms->m[i].node) + strlen(ms->m[i].id);
    return reply_reserve(x, need);
}

static int encode_members(ei_x_buff *x, const struct members *ms)
{
    if (reserve_members(x, ms) != 0)
        return -1;
    if (ms->n > 0 && ei_x_encode_list_header(x, (long)ms->n))
        return -1;
    for (size_t i = 0; i < ms->n; i++) {
        const struct member *m = &ms->m[i];
        if (ei_x_encode_map_header(x, 4) || encode_text(x, "address", m->address) ||
            ei_x_encode_atom(x, "port") || ei_x_encode_long(x, m->port) ||
            encode_text(x, "node", m->node) || encode_text(x, "id", m->id))
            return -1;
    }
    return ei_x_encode_empty_list(x);
}

/* X-Consul-Index / X-Nomad-Index: absent is 0; otherwise decimal digits
 * only, below 2^64. strtoull alone would take "-1" as 2^64 - 1 and wrap an
 * overflow to ULLONG_MAX, which a watch would then send back forever. */
static int parse_index(const char *s, unsigned long long *out)
{
    *out = 0;
    if (s[0] == '\0')
        return 0;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

void answer_job_run(struct answer_job *job)
{
    char detail[256];
    unsigned long long index = 0;
    struct members *ms = &job->members;
    job->outcome = ANSWER_NOT_ENCODED;
    job->skipped = ms->skipped;
    job->skip_reason = ms->skip_reason;
    job->members_n = ms->n;
    if (ei_x_new(&job->x) != 0)
        goto done;
    if (job->body_error != NULL || parse_index(job->index, &index) != 0) {
        if (job->body_error != NULL)
            snprintf(detail, sizeof detail, "unexpected response body: %s", job->body_error);
        else
            snprintf(detail, sizeof detail,
                     "index header is not a decimal number below 2^64: %.40s", job->index);
        if (reply_error(&job->x, job->id, "bad_answer", detail) == 0)
            job->outcome = ANSWER_ERROR;
        goto done;
    }
    ei_x_buff *x = &job->x;
    if (reply_ok_begin(x, job->id) == 0 && ei_x_encode_map_header(x, 3) == 0 &&
        ei_x_encode_atom(x, "index") == 0 && ei_x_encode_ulonglong(x, index) == 0 &&
        encode_text(x, "next_token", job->next_token) == 0 &&
        ei_x_encode_atom(x, "members") == 0 && encode_members(x, ms) == 0)
        job->outcome = ANSWER_OK;
done:
    /* The reply holds copies now: the members go at once. */
    members_free(ms);
}

void answer_job_free(struct answer_job *job)
{
    if (job == NULL)
        return;
    members_free(&job->members);
    if (job->x.buff != NULL)
        ei_x_free(&job->x);
    free(job);
}

static void *work(void *arg)
{
    struct answer_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->todo == NULL)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        struct answer_job *job = w->todo;
        w->todo = job->next;
        if (w->todo == NULL)
            w->todo_tail = NULL;
        job->next = NULL;
        w->busy = job;
        pthread_mutex_unlock(&w->mu);
        answer_job_run(job);
        pthread_mutex_lock(&w->mu);
        w->busy = NULL;
        if (w->stop) {
            answer_job_free(job);
            break;
        }
        if (w->done_tail)
            w->done_tail->next = job;
        else
            w->done = job;
        w->done_tail = job;
        /* Non-blocking: a full pipe already says there is something. */
        ssize_t n = write(w->pipe[1], "", 1);
        (void)n;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* The one worker of the program, reachable for as long as the process
 * lives: a job left running at exit is not a leak. */
static struct answer_worker *the_worker;

struct answer_worker *answer_worker_new(void)
{
    struct answer_worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    if (pipe(w->pipe) != 0) {
        free(w);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(w->pipe[i], F_SETFL, fcntl(w->pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(w->pipe[i], F_SETFD, FD_CLOEXEC);
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, work, w) != 0) {
        close(w->pipe[0]);
        close(w->pipe[1]);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    the_worker = w;
    return w;
}

int answer_worker_submit(struct answer_worker *w, struct answer_job *job)
{
    pthread_mutex_lock(&w->mu);
    int rc = w->stop ? -1 : 0;
    if (rc == 0) {
        job->next = NULL;
        if (w->todo_tail)
            w->todo_tail->next = job;
        else
            w->todo = job;
        w->todo_tail = job;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int answer_worker_fd(const struct answer_worker *w)
{
    return w->pipe[0];
}

struct answer_job *answer_worker_take(struct answer_worker *w)
{
    char buf[64];
    while (read(w->pipe[0], buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&w->mu);
    struct answer_job *job = w->done;
    if (job) {
        w->done = job->next;
        if (w->done == NULL)
            w->done_tail = NULL;
        job->next = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    return job;
}

int answer_worker_cancel(struct answer_worker *w, uint64_t id)
{
    int found = 0;
    pthread_mutex_lock(&w->mu);
    /* busy is one job, not a list: the thread set its next to NULL. */
    struct answer_job *lists[] = {w->todo, w->busy, w->done};
    for (size_t i = 0; i < 3 && !found; i++)
        for (struct answer_job *j = lists[i]; j != NULL && !found; j = j->next)
            if (j->id == id && !j->cancelled) {
                j->cancelled = true;
                found = 1;
            }
    pthread_mutex_unlock(&w->mu);
    return found;
}

static void free_list(struct answer_job *j)
{
    while (j) {
        struct answer_job *next = j->next;
        answer_job_free(j);
        j = next;
    }
}

void answer_worker_free(struct answer_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    free_list(w->todo);
    free_list(w->done);
    w->todo = w->todo_tail = w->done = w->done_tail = NULL;
    bool busy = w->busy != NULL;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (busy) {
        /* Reading a big body: do not wait for it. The thread frees its job
         * when done and finds nothing else to do; the process exits. */
        pthread_detach(w->thread);
        return;
    }
    pthread_join(w->thread, NULL);
    close(w->pipe[0]);
    close(w->pipe[1]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    the_worker = NULL;
    free(w);
}
