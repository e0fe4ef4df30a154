/* frame.c - {packet,4} reader and writer; see frame.h. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

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
    size_t need = r->used + extra;
    if (need <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : READ_CHUNK;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *grown = realloc(r->buf, cap);
    if (grown == NULL)
        return -1;
    r->buf = grown;
    r->cap = cap;
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

int frame_write(int fd, const void *data, size_t len)
{
    if (len > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    uint8_t header[HEADER_BYTES] = {
        (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    struct iovec iov[2] = {
        {.iov_base = header, .iov_len = HEADER_BYTES},
        {.iov_base = (void *)data, .iov_len = len},
    };
    struct iovec *v = iov;
    int count = 2;

    while (count > 0) {
        ssize_t n = writev(fd, v, count);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t done = (size_t)n;
        while (count > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            count--;
        }
        if (count > 0) {
            v->iov_base = (uint8_t *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}
