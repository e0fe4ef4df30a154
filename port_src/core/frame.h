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

#include <stdbool.h>
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

/*
 * The writer: packets to a non-blocking fd (the port's stdout, read by the
 * VM). What the pipe does not take at once is queued, and the loop calls
 * frame_writer_flush when poll() says the fd is writable, so a reply of
 * megabytes never holds the loop while the VM reads it.
 *
 * A reply above FRAME_SMALL_PACKET bytes goes out in chunks (docs/protocol.md,
 * "Chunked replies"): packets {Id, chunk, {Seq, Size, Bytes}} of at most
 * FRAME_CHUNK_BYTES bytes of the reply each, Seq 0, 1, 2... in order, Size
 * the whole reply's. Packets of at most FRAME_SMALL_PACKET bytes (pongs,
 * small answers) go ahead of the chunks not yet begun, never into the
 * middle of a packet begun: so a pong waits for at most one chunk on the
 * pipe, not for megabytes of member lists. Big replies go out one after the
 * other, oldest first. Bytes that are no reply (no id to read) go whole.
 */
#define FRAME_SMALL_PACKET (64u * 1024u)
#define FRAME_CHUNK_BYTES (64u * 1024u)
/* One flush writes packets until this many bytes are out, then returns
 * to the loop however much the fd would take: with the VM reading as fast
 * as the program writes, a 400 KB answer written in one call held the loop
 * 1-6 ms, while a ping waited on stdin. */
#define FRAME_FLUSH_BYTES (2u * FRAME_CHUNK_BYTES)

struct frame_out;
struct frame_big;

struct frame_writer_counters {
    uint64_t chunked; /* replies sent in chunks */
    uint64_t chunks;  /* chunk packets sent */
};

struct frame_writer {
    int fd;
    struct frame_out *current;            /* begun, not finished; or NULL */
    struct frame_out *small, *small_tail; /* waiting, oldest first */
    struct frame_out *whole, *whole_tail; /* big, not chunkable: sent whole */
    struct frame_big *big, *big_tail;     /* big replies, chunks still to send */
    struct frame_writer_counters counters;
};

void frame_writer_init(struct frame_writer *w, int fd);
/* Drops whatever is still queued. */
void frame_writer_free(struct frame_writer *w);
/* Sends one packet, at once if nothing waits and the fd takes it, else
 * queued. With owned, data is malloc'd memory the writer takes over and
 * frees (no copy of a big reply); otherwise what has to wait is copied.
 * Returns 0, or -1 with errno set (EPIPE when the VM is gone, ENOMEM). */
int frame_writer_send(struct frame_writer *w, void *data, size_t len, bool owned);
/* Writes what the fd takes now, up to about FRAME_FLUSH_BYTES (the loop
 * calls again while poll() says writable). Returns 0, or -1 with errno set. */
int frame_writer_flush(struct frame_writer *w);
bool frame_writer_pending(const struct frame_writer *w);

/* The id of a reply {Id, _, _} in external format, for chunking it.
 * Returns 0, or -1 for bytes that are no such term. */
int frame_reply_id(const void *data, size_t len, uint64_t *id);

#endif
