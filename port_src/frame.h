/*
 * frame.h - {packet,4} framing between caravan_port and the Erlang VM.
 *
 * Every message in either direction is a 4-byte big-endian length followed by
 * that many bytes (one term in external format). This file is the only place
 * that knows about lengths: readers get whole packets, writers hand over whole
 * packets.
 *
 * The reader never blocks: frame_reader_fill() does at most one read(2) and is
 * meant to be called when poll() reports the fd readable. Packets larger than
 * FRAME_MAX_PACKET are discarded as their bytes arrive (the stream stays in
 * sync), and reported once so the caller can log them.
 */
#ifndef CARAVAN_FRAME_H
#define CARAVAN_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Requests are small maps (a node name, a few options); 1 MiB leaves room for
 * later operations while bounding what a broken peer can make us hold. */
#define FRAME_MAX_PACKET (1024u * 1024u)

enum frame_status {
    FRAME_NONE = 0,  /* no complete packet buffered yet */
    FRAME_PACKET,    /* *data, *len: one packet, valid until the next fill or push */
    FRAME_EMPTY,     /* a zero-length packet was received and dropped */
    FRAME_OVERSIZE,  /* a packet above FRAME_MAX_PACKET is being discarded */
    FRAME_EOF,       /* the peer closed the stream */
    FRAME_ERROR      /* read(2) failed; errno is set */
};

struct frame_reader {
    uint8_t *buf;
    size_t cap;
    size_t used;     /* bytes buffered, starting at buf[0] */
    size_t consumed; /* bytes of buf already handed out as packets */
    size_t discard;  /* bytes of an oversize packet still to drop */
};

void frame_reader_init(struct frame_reader *r);
void frame_reader_free(struct frame_reader *r);

/* One read(2) from fd into the buffer. Returns FRAME_NONE after a read that
 * made progress (or was interrupted), FRAME_EOF or FRAME_ERROR. */
enum frame_status frame_reader_fill(struct frame_reader *r, int fd);

/* Appends bytes as if they had been read; used by tests and fuzzers. Returns
 * FRAME_NONE, or FRAME_ERROR when memory runs out. */
enum frame_status frame_reader_push(struct frame_reader *r, const void *bytes, size_t n);

/* Takes the next buffered packet. Call until it returns FRAME_NONE. */
enum frame_status frame_reader_next(struct frame_reader *r, const uint8_t **data, size_t *len);

/* Writes one whole packet to a blocking fd, retrying partial writes and EINTR.
 * Returns 0, or -1 with errno set (EPIPE when the VM is gone). */
int frame_write(int fd, const void *data, size_t len);

#endif
