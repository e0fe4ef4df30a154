/* frame.c - {packet,4} reader and writer; see frame.h. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "grow.h"

#define HEADER_BYTES 4
/* One read(2) asks for at most this much; large enough that a burst of small
 * requests costs one system call. */
#define READ_CHUNK 65536

void frame_reader_init(struct frame_reader *r)
{
    memset(r, 0, sizeof *r);
}

void frame_reader_free(struct frame_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Moves unconsumed bytes to the front so the buffer never grows past one
 * packet plus one read. */
static void compact(struct frame_reader *r)
{
    if (r->consumed == 0)
        return;
    memmove(r->buf, r->buf + r->consumed, r->used - r->consumed);
    r->used -= r->consumed;
    r->consumed = 0;
}

static int reserve(struct frame_reader *r, size_t extra)
{
    compact(r);
    if (extra > SIZE_MAX - r->used)
        return -1;
    uint8_t *buf = grow(r->buf, &r->cap, r->used + extra, READ_CHUNK);
    if (buf == NULL)
        return -1;
    r->buf = buf;
    return 0;
}

enum frame_status frame_reader_fill(struct frame_reader *r, int fd)
{
    if (reserve(r, READ_CHUNK) != 0) {
        errno = ENOMEM;
        return FRAME_ERROR;
    }
    ssize_t n = read(fd, r->buf + r->used, READ_CHUNK);
    if (n > 0) {
        r->used += (size_t)n;
        return FRAME_NONE;
    }
    if (n == 0)
        return FRAME_EOF;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
        return FRAME_NONE;
    return FRAME_ERROR;
}

enum frame_status frame_reader_push(struct frame_reader *r, const void *bytes, size_t n)
{
    if (reserve(r, n) != 0)
        return FRAME_ERROR;
    if (n > 0)
        memcpy(r->buf + r->used, bytes, n);
    r->used += n;
    return FRAME_NONE;
}

enum frame_status frame_reader_next(struct frame_reader *r, const uint8_t **data, size_t *len)
{
    size_t avail = r->used - r->consumed;

    if (r->discard > 0) {
        size_t drop = avail < r->discard ? avail : r->discard;
        r->consumed += drop;
        r->discard -= drop;
        if (r->discard > 0)
            return FRAME_NONE;
        avail -= drop;
    }
    if (avail < HEADER_BYTES)
        return FRAME_NONE;

    const uint8_t *p = r->buf + r->consumed;
    size_t plen = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
    if (plen == 0) {
        r->consumed += HEADER_BYTES;
        return FRAME_EMPTY;
    }
    if (plen > FRAME_MAX_PACKET) {
        r->consumed += HEADER_BYTES;
        r->discard = plen;
        return FRAME_OVERSIZE;
    }
    if (avail - HEADER_BYTES < plen)
        return FRAME_NONE;

    *data = p + HEADER_BYTES;
    *len = plen;
    r->consumed += HEADER_BYTES + plen;
    return FRAME_PACKET;
}

struct frame_out {
    struct frame_out *next;
    uint8_t header[HEADER_BYTES];
    uint8_t *data;
    size_t len;
    size_t off; /* bytes of header and data written */
};

void frame_writer_init(struct frame_writer *w, int fd)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
}

static void out_free(struct frame_out *o)
{
    free(o->data);
    free(o);
}

static void drop_all(struct frame_out *o)
{
    while (o != NULL) {
        struct frame_out *next = o->next;
        out_free(o);
        o = next;
    }
}

void frame_writer_free(struct frame_writer *w)
{
    if (w->current != NULL)
        out_free(w->current);
    drop_all(w->small);
    drop_all(w->big);
    frame_writer_init(w, w->fd);
}

bool frame_writer_pending(const struct frame_writer *w)
{
    return w->current != NULL || w->small != NULL || w->big != NULL;
}

/* Writes as much of o as fd takes. Returns 1 when o is all written, 0 when
 * the fd would block, -1 on an error (errno set). */
static int write_some(int fd, struct frame_out *o)
{
    while (o->off < HEADER_BYTES + o->len) {
        struct iovec iov[2];
        int count = 0;
        if (o->off < HEADER_BYTES)
            iov[count++] = (struct iovec){.iov_base = o->header + o->off,
                                          .iov_len = HEADER_BYTES - o->off};
        size_t done = o->off < HEADER_BYTES ? 0 : o->off - HEADER_BYTES;
        if (o->len > done)
            iov[count++] = (struct iovec){.iov_base = o->data + done, .iov_len = o->len - done};
        ssize_t n = writev(fd, iov, count);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        o->off += (size_t)n;
    }
    return 1;
}

static void push(struct frame_out **head, struct frame_out **tail, struct frame_out *o)
{
    o->next = NULL;
    if (*tail != NULL)
        (*tail)->next = o;
    else
        *head = o;
    *tail = o;
}

static struct frame_out *pop(struct frame_out **head, struct frame_out **tail)
{
    struct frame_out *o = *head;
    if (o != NULL) {
        *head = o->next;
        if (*head == NULL)
            *tail = NULL;
    }
    return o;
}

static void queue(struct frame_writer *w, struct frame_out *o)
{
    if (o->off > 0)
        w->current = o; /* begun: nothing may come between its bytes */
    else if (o->len <= FRAME_SMALL_PACKET)
        push(&w->small, &w->small_tail, o);
    else
        push(&w->big, &w->big_tail, o);
}

int frame_writer_flush(struct frame_writer *w)
{
    for (;;) {
        struct frame_out *o = w->current;
        if (o == NULL && (o = pop(&w->small, &w->small_tail)) == NULL &&
            (o = pop(&w->big, &w->big_tail)) == NULL)
            return 0;
        w->current = NULL;
        int rc = write_some(w->fd, o);
        if (rc < 0) {
            out_free(o);
            return -1;
        }
        if (rc == 0) {
            /* Not begun: back to the front of its queue, where a small
             * packet sent meanwhile can still go before it. */
            if (o->off == 0 && o->len <= FRAME_SMALL_PACKET) {
                o->next = w->small;
                w->small = o;
                if (w->small_tail == NULL)
                    w->small_tail = o;
            } else if (o->off == 0) {
                o->next = w->big;
                w->big = o;
                if (w->big_tail == NULL)
                    w->big_tail = o;
            } else {
                w->current = o;
            }
            return 0;
        }
        out_free(o);
    }
}

int frame_writer_send(struct frame_writer *w, void *data, size_t len, bool owned)
{
    if (len > UINT32_MAX) {
        if (owned)
            free(data);
        errno = EMSGSIZE;
        return -1;
    }
    struct frame_out *o = malloc(sizeof *o);
    if (o == NULL) {
        if (owned)
            free(data);
        errno = ENOMEM;
        return -1;
    }
    *o = (struct frame_out){.data = data, .len = len,
                            .header = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                                       (uint8_t)(len >> 8), (uint8_t)len}};
    if (!frame_writer_pending(w)) {
        int rc = write_some(w->fd, o);
        if (rc != 0) { /* all written, or an error */
            if (owned)
                free(data);
            free(o);
            return rc < 0 ? -1 : 0;
        }
    }
    if (!owned) {
        /* It waits beyond the caller's buffer: keep a copy. */
        o->data = malloc(len ? len : 1);
        if (o->data == NULL) {
            free(o);
            errno = ENOMEM;
            return -1;
        }
        memcpy(o->data, data, len);
    }
    queue(w, o);
    return 0;
}
