/* frame.c - {packet,4} reader and writer; see frame.h. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ei.h>

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

/* A chunk's packet begins with its length and the term up to its Bytes:
 * version, {Id, chunk, {Seq, Size, then the binary's tag and length; at
 * most 4 + 1 + 2 + 11 + 7 + 2 + 11 + 11 + 5 bytes. */
#define HEAD_MAX 64

struct frame_out {
    struct frame_out *next;
    uint8_t head[HEAD_MAX];
    size_t head_len;
    uint8_t *data;
    size_t len;       /* bytes of data */
    size_t off;       /* bytes of head and data written */
    bool borrowed;    /* data points into a frame_big: not freed here */
};

/* A reply to send in chunks: data[sent..len) is still to be cut. */
struct frame_big {
    struct frame_big *next;
    uint64_t id;
    uint8_t *data;
    size_t len;
    size_t sent;  /* bytes cut into chunks so far */
    uint64_t seq; /* the next chunk's */
};

void frame_writer_init(struct frame_writer *w, int fd)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
}

static void out_free(struct frame_out *o)
{
    if (!o->borrowed)
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
    /* The current packet may borrow from w->big: free it first. */
    if (w->current != NULL)
        out_free(w->current);
    drop_all(w->small);
    drop_all(w->whole);
    while (w->big != NULL) {
        struct frame_big *next = w->big->next;
        free(w->big->data);
        free(w->big);
        w->big = next;
    }
    frame_writer_init(w, w->fd);
}

bool frame_writer_pending(const struct frame_writer *w)
{
    return w->current != NULL || w->small != NULL || w->whole != NULL || w->big != NULL;
}

int frame_reply_id(const void *data, size_t len, uint64_t *id)
{
    /* The version, a tuple header and the longest integer: what the
     * decoders below may read (they take no length). */
    if (len < 1 + 5 + 11)
        return -1;
    int i = 0, arity = 0, type = 0, size = 0;
    unsigned long long v = 0;
    if (ei_decode_version(data, &i, NULL) != 0 || ei_decode_tuple_header(data, &i, &arity) != 0 ||
        arity != 3 || ei_get_type(data, &i, &type, &size) != 0 ||
        (type != ERL_SMALL_INTEGER_EXT && type != ERL_INTEGER_EXT &&
         type != ERL_SMALL_BIG_EXT) ||
        ei_decode_ulonglong(data, &i, &v) != 0 || v == 0)
        return -1;
    *id = v;
    return 0;
}

static void put_length(uint8_t *p, size_t len)
{
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
}

/* Writes as much of o as fd takes. Returns 1 when o is all written, 0 when
 * the fd would block, -1 on an error (errno set). */
static int write_some(int fd, struct frame_out *o)
{
    while (o->off < o->head_len + o->len) {
        struct iovec iov[2];
        int count = 0;
        if (o->off < o->head_len)
            iov[count++] = (struct iovec){.iov_base = o->head + o->off,
                                          .iov_len = o->head_len - o->off};
        size_t done = o->off < o->head_len ? 0 : o->off - o->head_len;
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

static void push_front(struct frame_out **head, struct frame_out **tail, struct frame_out *o)
{
    o->next = *head;
    *head = o;
    if (*tail == NULL)
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

/* The next chunk of w->big as a packet borrowing its bytes, or NULL when
 * memory runs out. */
static struct frame_out *cut_chunk(struct frame_writer *w)
{
    struct frame_big *b = w->big;
    struct frame_out *o = calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    size_t n = b->len - b->sent < FRAME_CHUNK_BYTES ? b->len - b->sent : FRAME_CHUNK_BYTES;
    char *h = (char *)o->head + HEADER_BYTES;
    int i = 0;
    /* Cannot fail: HEAD_MAX holds the longest of each. */
    (void)(ei_encode_version(h, &i) || ei_encode_tuple_header(h, &i, 3) ||
           ei_encode_ulonglong(h, &i, b->id) || ei_encode_atom(h, &i, "chunk") ||
           ei_encode_tuple_header(h, &i, 3) || ei_encode_ulonglong(h, &i, b->seq) ||
           ei_encode_ulonglong(h, &i, b->len));
    h[i++] = (char)ERL_BINARY_EXT;
    put_length((uint8_t *)h + i, n);
    i += 4;
    o->head_len = HEADER_BYTES + (size_t)i;
    put_length(o->head, (size_t)i + n);
    o->data = b->data + b->sent;
    o->len = n;
    o->borrowed = true;
    b->sent += n;
    b->seq++;
    w->counters.chunks++;
    return o;
}

/* The chunk o, not begun, goes back into its reply. */
static void uncut_chunk(struct frame_writer *w, struct frame_out *o)
{
    w->big->sent -= o->len;
    w->big->seq--;
    w->counters.chunks--;
    out_free(o);
}

/* A chunk all written: its reply is done when it was the last. */
static void chunk_written(struct frame_writer *w)
{
    struct frame_big *b = w->big;
    if (b->sent < b->len)
        return;
    w->big = b->next;
    if (w->big == NULL)
        w->big_tail = NULL;
    free(b->data);
    free(b);
}

int frame_writer_flush(struct frame_writer *w)
{
    for (size_t out = 0; out < FRAME_FLUSH_BYTES;) {
        /* A packet begun first (nothing may come between its bytes), then
         * the small ones, then a big one sent whole, then the next chunk. */
        struct frame_out *o = w->current;
        if (o == NULL && (o = pop(&w->small, &w->small_tail)) == NULL &&
            (o = pop(&w->whole, &w->whole_tail)) == NULL && w->big != NULL &&
            (o = cut_chunk(w)) == NULL) {
            errno = ENOMEM;
            return -1;
        }
        if (o == NULL)
            return 0;
        w->current = NULL;
        int rc = write_some(w->fd, o);
        if (rc < 0) {
            /* The VM is gone; a borrowed chunk's reply is freed with the writer. */
            out_free(o);
            return -1;
        }
        if (rc == 0) {
            /* Not begun: back where it came from, where a small packet
             * sent meanwhile can still go before it. */
            if (o->off > 0)
                w->current = o;
            else if (o->borrowed)
                uncut_chunk(w, o);
            else if (o->len <= FRAME_SMALL_PACKET)
                push_front(&w->small, &w->small_tail, o);
            else
                push_front(&w->whole, &w->whole_tail, o);
            return 0;
        }
        bool chunk = o->borrowed;
        out += o->head_len + o->len;
        out_free(o);
        if (chunk)
            chunk_written(w);
    }
    return 0;
}

/* Queues a reply of more than FRAME_SMALL_PACKET bytes to go in chunks. */
static int queue_big(struct frame_writer *w, uint64_t id, void *data, size_t len, bool owned)
{
    struct frame_big *b = malloc(sizeof *b);
    if (b != NULL && !owned) {
        void *copy = malloc(len);
        if (copy != NULL)
            memcpy(copy, data, len);
        data = copy;
        owned = true;
    }
    if (b == NULL || data == NULL) {
        if (owned)
            free(data);
        free(b);
        errno = ENOMEM;
        return -1;
    }
    *b = (struct frame_big){.id = id, .data = data, .len = len};
    if (w->big_tail != NULL)
        w->big_tail->next = b;
    else
        w->big = b;
    w->big_tail = b;
    w->counters.chunked++;
    return 0;
}

int frame_writer_send(struct frame_writer *w, void *data, size_t len, bool owned)
{
    if (len > UINT32_MAX) {
        if (owned)
            free(data);
        errno = EMSGSIZE;
        return -1;
    }
    bool idle = !frame_writer_pending(w);
    uint64_t id = 0;
    if (len > FRAME_SMALL_PACKET && frame_reply_id(data, len, &id) == 0) {
        if (queue_big(w, id, data, len, owned) != 0)
            return -1;
        return idle ? frame_writer_flush(w) : 0;
    }
    struct frame_out *o = malloc(sizeof *o);
    if (o == NULL) {
        if (owned)
            free(data);
        errno = ENOMEM;
        return -1;
    }
    *o = (struct frame_out){.data = data, .len = len, .head_len = HEADER_BYTES};
    put_length(o->head, len);
    if (idle) {
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
    if (o->off > 0)
        w->current = o; /* begun: nothing may come between its bytes */
    else if (len <= FRAME_SMALL_PACKET)
        push(&w->small, &w->small_tail, o);
    else
        push(&w->whole, &w->whole_tail, o);
    return 0;
}
