/* {packet,4} framing (port_src/frame.c): split reads, empty and oversize
 * packets, partial writes, replies that wait for the reader. */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ei.h>

#include "frame.h"

static void put_header(uint8_t *h, size_t len)
{
    h[0] = (uint8_t)(len >> 24);
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
}

static void whole_packets_come_out_whole(void **state)
{
    (void)state;
    struct frame_reader r;
    frame_reader_init(&r);
    uint8_t wire[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 1, 'z'};
    frame_reader_push(&r, wire, sizeof wire);

    const uint8_t *d;
    size_t n;
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_PACKET);
    assert_int_equal(n, 3);
    assert_memory_equal(d, "abc", 3);
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_PACKET);
    assert_int_equal(n, 1);
    assert_memory_equal(d, "z", 1);
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_NONE);
    frame_reader_free(&r);
}

/* Every split point of a two-packet stream, including inside the header. */
static void split_reads_at_every_byte(void **state)
{
    (void)state;
    uint8_t wire[4 + 5 + 4 + 2];
    put_header(wire, 5);
    memcpy(wire + 4, "hello", 5);
    put_header(wire + 9, 2);
    memcpy(wire + 13, "hi", 2);

    for (size_t cut = 0; cut <= sizeof wire; cut++) {
        struct frame_reader r;
        frame_reader_init(&r);
        int seen = 0;
        const uint8_t *d;
        size_t n;
        frame_reader_push(&r, wire, cut);
        while (frame_reader_next(&r, &d, &n) == FRAME_PACKET)
            seen++;
        frame_reader_push(&r, wire + cut, sizeof wire - cut);
        while (frame_reader_next(&r, &d, &n) == FRAME_PACKET) {
            seen++;
            if (seen == 2)
                assert_memory_equal(d, "hi", 2);
        }
        assert_int_equal(seen, 2);
        frame_reader_free(&r);
    }
}

static void one_byte_at_a_time(void **state)
{
    (void)state;
    uint8_t wire[4 + 300];
    put_header(wire, 300);
    for (int i = 0; i < 300; i++)
        wire[4 + i] = (uint8_t)i;
    struct frame_reader r;
    frame_reader_init(&r);
    const uint8_t *d;
    size_t n;
    for (size_t i = 0; i < sizeof wire - 1; i++) {
        frame_reader_push(&r, wire + i, 1);
        assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_NONE);
    }
    frame_reader_push(&r, wire + sizeof wire - 1, 1);
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_PACKET);
    assert_int_equal(n, 300);
    assert_memory_equal(d, wire + 4, 300);
    frame_reader_free(&r);
}

static void zero_length_is_reported_and_skipped(void **state)
{
    (void)state;
    uint8_t wire[] = {0, 0, 0, 0, 0, 0, 0, 1, 'x'};
    struct frame_reader r;
    frame_reader_init(&r);
    frame_reader_push(&r, wire, sizeof wire);
    const uint8_t *d;
    size_t n;
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_EMPTY);
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_PACKET);
    assert_memory_equal(d, "x", 1);
    frame_reader_free(&r);
}

/* An oversize packet is dropped as it streams in; the next one is intact. */
static void oversize_is_discarded_and_stream_stays_in_sync(void **state)
{
    (void)state;
    size_t big = FRAME_MAX_PACKET + 10;
    uint8_t h[4];
    put_header(h, big);
    struct frame_reader r;
    frame_reader_init(&r);
    frame_reader_push(&r, h, 4);
    const uint8_t *d;
    size_t n;
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_OVERSIZE);

    uint8_t *junk = calloc(1, 65536);
    size_t left = big;
    while (left > 0) {
        size_t chunk = left < 65536 ? left : 65536;
        frame_reader_push(&r, junk, chunk);
        left -= chunk;
        assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_NONE);
        assert_true(r.cap <= 4 * 65536); /* never buffers the oversize packet */
    }
    free(junk);
    uint8_t next[] = {0, 0, 0, 2, 'o', 'k'};
    frame_reader_push(&r, next, sizeof next);
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_PACKET);
    assert_memory_equal(d, "ok", 2);
    frame_reader_free(&r);
}

static void the_largest_allowed_packet_passes(void **state)
{
    (void)state;
    uint8_t h[4];
    put_header(h, FRAME_MAX_PACKET);
    uint8_t *body = calloc(1, FRAME_MAX_PACKET);
    struct frame_reader r;
    frame_reader_init(&r);
    frame_reader_push(&r, h, 4);
    frame_reader_push(&r, body, FRAME_MAX_PACKET);
    const uint8_t *d;
    size_t n;
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_PACKET);
    assert_int_equal(n, FRAME_MAX_PACKET);
    free(body);
    frame_reader_free(&r);
}

/* Through a real pipe: fill() reads what is there, EOF is reported. */
static void fill_from_a_pipe_until_eof(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct frame_writer w;
    frame_writer_init(&w, p[1]);
    assert_int_equal(frame_writer_send(&w, "ping", 4, false), 0);
    assert_false(frame_writer_pending(&w));
    close(p[1]);

    struct frame_reader r;
    frame_reader_init(&r);
    assert_int_equal(frame_reader_fill(&r, p[0]), FRAME_NONE);
    const uint8_t *d;
    size_t n;
    assert_int_equal(frame_reader_next(&r, &d, &n), FRAME_PACKET);
    assert_memory_equal(d, "ping", 4);
    assert_int_equal(frame_reader_fill(&r, p[0]), FRAME_EOF);
    close(p[0]);
    frame_reader_free(&r);
}

/* A payload far larger than the pipe buffer forces partial writes. */
static void large_writes_survive_partial_writes(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    size_t len = 512 * 1024;
    uint8_t *payload = malloc(len);
    for (size_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(i * 7);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        /* Non-blocking, as the program's stdout: the rest waits in the
         * writer and goes out as the pipe drains. */
        fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
        struct frame_writer w;
        frame_writer_init(&w, p[1]);
        if (frame_writer_send(&w, payload, len, false) != 0)
            _exit(1);
        for (int i = 0; i < 100000 && frame_writer_pending(&w); i++) {
            struct pollfd pfd = {.fd = p[1], .events = POLLOUT};
            if (poll(&pfd, 1, 1000) < 0 || frame_writer_flush(&w) != 0)
                _exit(1);
        }
        _exit(frame_writer_pending(&w) ? 1 : 0);
    }
    close(p[1]);
    struct frame_reader r;
    frame_reader_init(&r);
    const uint8_t *d = NULL;
    size_t n = 0;
    enum frame_status s = FRAME_NONE;
    for (int reads = 0; reads < 100000; reads++) {
        assert_int_equal(frame_reader_fill(&r, p[0]), FRAME_NONE);
        s = frame_reader_next(&r, &d, &n);
        if (s == FRAME_PACKET)
            break;
    }
    assert_int_equal(s, FRAME_PACKET);
    assert_int_equal(n, len);
    assert_memory_equal(d, payload, len);
    close(p[0]);
    free(payload);
    frame_reader_free(&r);
}

static void write_to_a_closed_pipe_is_epipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    struct frame_writer w;
    frame_writer_init(&w, p[1]);
    assert_int_equal(frame_writer_send(&w, "x", 1, false), -1);
    assert_int_equal(errno, EPIPE);
    close(p[1]);
}

/* A pipe whose write end is non-blocking, as the program's stdout, with a
 * writer on it. */
static void writer_on_a_pipe(int p[2], struct frame_writer *w)
{
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
    frame_writer_init(w, p[1]);
}

/* Reads one packet from a blocking fd in a forked child; returns its
 * length, its payload in out (malloc'd). No cmocka there (a failed assert
 * would go on running the tests in the child): EOF or an error ends the
 * child with status 9, and the child's alarm() bounds its wait. */
static size_t child_read_packet(int fd, uint8_t **out)
{
    uint8_t h[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t n = read(fd, h + got, 4 - got);
        if (n <= 0)
            _exit(9);
        got += (size_t)n;
    }
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    *out = malloc(len ? len : 1);
    for (got = 0; got < len;) {
        ssize_t n = read(fd, *out + got, len - got);
        if (n <= 0)
            _exit(9);
        got += (size_t)n;
    }
    return len;
}

/* The parent's side of a forked reader: flushes w into fd, the pipe's
 * write end, until nothing is pending; closes it (a child still waiting
 * for packets reads EOF); and checks the child, pid, exited 0. */
static void flush_to_child(struct frame_writer *w, int fd, pid_t pid)
{
    for (int i = 0; i < 100000 && frame_writer_pending(w); i++) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        assert_true(poll(&pfd, 1, 5000) > 0);
        assert_int_equal(frame_writer_flush(w), 0);
    }
    assert_false(frame_writer_pending(w));
    close(fd);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The VM is slow to read: a 1 MiB reply is begun, another waits, and a
 * pong is sent. The pong goes out right after the begun reply, before the
 * waiting one: a begun packet is never cut into, and a small one never
 * waits behind a big one not yet begun. Blocking writes made the loop
 * wait as long as the VM took to read each big reply. */
static void small_packets_go_before_big_ones_not_yet_begun(void **state)
{
    (void)state;
    int p[2];
    struct frame_writer w;
    writer_on_a_pipe(p, &w);
    size_t big = 1024 * 1024;
    uint8_t *first = malloc(big), *second = malloc(big);
    memset(first, 'a', big);
    memset(second, 'b', big);
    assert_int_equal(frame_writer_send(&w, first, big, true), 0);  /* taken over */
    assert_true(frame_writer_pending(&w));
    assert_int_equal(frame_writer_send(&w, second, big, true), 0);
    assert_int_equal(frame_writer_send(&w, "pong", 4, false), 0);   /* copied */

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        close(p[1]);
        uint8_t *d;
        size_t lens[3];
        char kinds[3];
        for (int i = 0; i < 3; i++) {
            lens[i] = child_read_packet(p[0], &d);
            kinds[i] = (char)d[0];
            free(d);
        }
        _exit(lens[0] == big && kinds[0] == 'a' && lens[1] == 4 && kinds[1] == 'p' &&
                      lens[2] == big && kinds[2] == 'b'
                  ? 0
                  : 1);
    }
    close(p[0]);
    flush_to_child(&w, p[1], pid);
    frame_writer_free(&w);
}

/* What is still queued when the VM goes is dropped, owned buffers freed
 * (the ASan build's leak check sees to that). */
static void queued_replies_are_dropped_with_the_writer(void **state)
{
    (void)state;
    int p[2];
    struct frame_writer w;
    writer_on_a_pipe(p, &w);
    for (int i = 0; i < 4; i++) {
        uint8_t *b = malloc(256 * 1024);
        memset(b, i, 256 * 1024);
        assert_int_equal(frame_writer_send(&w, b, 256 * 1024, true), 0);
        assert_int_equal(frame_writer_send(&w, "pong", 4, false), 0);
    }
    assert_true(frame_writer_pending(&w));
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(frame_writer_flush(&w), -1);
    assert_int_equal(errno, EPIPE);
    frame_writer_free(&w);
    assert_false(frame_writer_pending(&w));
    close(p[1]);
}

/* {Id, ok, <<Len bytes>>} in external format, malloc'd; *n its size. */
static char *reply_term(uint64_t id, size_t len, size_t *n)
{
    ei_x_buff x;
    assert_int_equal(ei_x_new_with_version(&x), 0);
    char *bytes = malloc(len);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (char)(i * 13 + i / 65536);
    assert_int_equal(ei_x_encode_tuple_header(&x, 3), 0);
    assert_int_equal(ei_x_encode_ulonglong(&x, id), 0);
    assert_int_equal(ei_x_encode_atom(&x, "ok"), 0);
    assert_int_equal(ei_x_encode_binary(&x, bytes, (long)len), 0);
    free(bytes);
    *n = (size_t)x.index;
    return x.buff; /* ei_x_new allocates with malloc */
}

/* One packet read by the child: a chunk {Id, chunk, {Seq, Size, Bytes}}
 * (kind 'c'), or another reply (kind 'r', its id). */
struct seen {
    char kind;
    uint64_t id, seq, size;
    size_t len;
};

static struct seen classify(const uint8_t *d, size_t n, uint8_t *whole, size_t *whole_len)
{
    struct seen s = {.kind = '?'};
    const char *b = (const char *)d;
    int i = 0, arity = 0, inner = 0;
    unsigned long long id = 0, seq = 0, size = 0;
    char atom[MAXATOMLEN];
    if (ei_decode_version(b, &i, NULL) || ei_decode_tuple_header(b, &i, &arity) || arity != 3 ||
        ei_decode_ulonglong(b, &i, &id) || ei_decode_atom(b, &i, atom))
        return s;
    s.id = id;
    if (strcmp(atom, "chunk") != 0) {
        s.kind = 'r';
        return s;
    }
    int type = 0, blen = 0;
    if (ei_decode_tuple_header(b, &i, &inner) || inner != 3 || ei_decode_ulonglong(b, &i, &seq) ||
        ei_decode_ulonglong(b, &i, &size) || ei_get_type(b, &i, &type, &blen) ||
        type != ERL_BINARY_EXT || (size_t)i + 5 + (size_t)blen != n)
        return s;
    /* Reassembled in the order the chunks came. */
    memcpy(whole + *whole_len, d + i + 5, (size_t)blen);
    *whole_len += (size_t)blen;
    s = (struct seen){.kind = 'c', .id = id, .seq = seq, .size = size, .len = (size_t)blen};
    return s;
}

/* A 1 MiB reply goes out in chunks of FRAME_CHUNK_BYTES, Seq 0, 1, 2...
 * in order, each carrying the reply's id and size; joined in the order they
 * came they are the reply. A pong sent while the first chunk is on the
 * pipe arrives right after that chunk, not after the whole reply: a ping
 * never waits for more than one chunk. (The bug this catches: a big reply
 * sent as one packet, or a pong queued behind all its chunks; and chunks
 * cut out of order.) */
static void a_pong_goes_between_the_chunks_of_a_big_reply(void **state)
{
    (void)state;
    int p[2];
    struct frame_writer w;
    writer_on_a_pipe(p, &w);
    size_t big_len = 0, pong_len = 0;
    char *big = reply_term(7, 1024 * 1024, &big_len);
    char *copy = malloc(big_len);
    memcpy(copy, big, big_len);
    size_t expect_chunks = (big_len + FRAME_CHUNK_BYTES - 1) / FRAME_CHUNK_BYTES;
    assert_int_equal(frame_writer_send(&w, big, big_len, true), 0); /* taken over */
    assert_true(frame_writer_pending(&w)); /* the pipe holds less than one chunk */
    char *pong = reply_term(8, 4, &pong_len);
    assert_int_equal(frame_writer_send(&w, pong, pong_len, false), 0);
    free(pong);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        close(p[1]);
        uint8_t *whole = malloc(big_len);
        size_t whole_len = 0;
        int pong_at = -1, bad = 0;
        size_t chunks = 0;
        for (size_t k = 0; k < expect_chunks + 1; k++) {
            uint8_t *d;
            size_t n = child_read_packet(p[0], &d);
            struct seen s = classify(d, n, whole, &whole_len);
            free(d);
            if (s.kind == 'r' && s.id == 8)
                pong_at = (int)k;
            else if (s.kind == 'c' && s.id == 7 && s.seq == chunks && s.size == big_len &&
                     s.len <= FRAME_CHUNK_BYTES)
                chunks++;
            else
                bad = 1;
        }
        _exit(bad ? 2 : chunks != expect_chunks ? 3 : pong_at != 1 ? 4
              : whole_len != big_len || memcmp(whole, copy, big_len) != 0 ? 5 : 0);
    }
    close(p[0]);
    flush_to_child(&w, p[1], pid);
    assert_int_equal(w.counters.chunked, 1);
    assert_int_equal(w.counters.chunks, expect_chunks);
    free(copy);
    frame_writer_free(&w);
}

/* Bytes waiting in a pipe. */
static size_t in_pipe(int fd)
{
    int n = 0;
    assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
    return (size_t)n;
}

/* A VM that reads as fast as the program writes: a pipe of 1 MiB takes a
 * 600 KB reply whole. One flush still writes about FRAME_FLUSH_BYTES and
 * returns to the loop, which reads its stdin before the next (a ping
 * waited while a 400 KB DNS answer went out in one call, 1-6 ms); the
 * calls that follow send the rest, in order. */
static void a_flush_returns_to_the_loop_after_its_budget(void **state)
{
    (void)state;
    int p[2];
    struct frame_writer w;
    writer_on_a_pipe(p, &w);
    if (fcntl(p[1], F_SETPIPE_SZ, 1024 * 1024) < 1024 * 1024) {
        close(p[0]);
        close(p[1]);
        frame_writer_free(&w);
        skip(); /* the pipe cannot be made that large here */
    }
    size_t big_len = 0;
    char *big = reply_term(9, 600 * 1024, &big_len);
    /* A chunk packet adds its term's header (id, atom, Seq, Size) and 4
     * bytes of length to its bytes: well under 64 bytes. */
    size_t bound = FRAME_FLUSH_BYTES + FRAME_CHUNK_BYTES + 64;
    assert_int_equal(frame_writer_send(&w, big, big_len, true), 0); /* flushes once */
    size_t first = in_pipe(p[0]);
    assert_true(first >= FRAME_FLUSH_BYTES);
    assert_true(first <= bound);
    assert_true(frame_writer_pending(&w));
    assert_int_equal(frame_writer_flush(&w), 0);
    assert_true(in_pipe(p[0]) - first <= bound);
    for (int i = 0; i < 20 && frame_writer_pending(&w); i++)
        assert_int_equal(frame_writer_flush(&w), 0);
    assert_false(frame_writer_pending(&w));
    assert_true(in_pipe(p[0]) > big_len);
    close(p[0]);
    close(p[1]);
    frame_writer_free(&w);
}

/* Two big replies: the second's chunks follow the first's, never mixed
 * (each reply's chunks arrive in order); a reply exactly FRAME_SMALL_PACKET
 * long goes whole. */
static void big_replies_go_one_after_the_other(void **state)
{
    (void)state;
    int p[2];
    struct frame_writer w;
    writer_on_a_pipe(p, &w);
    size_t a_len = 0, b_len = 0, s_len = 0;
    char *a = reply_term(1, 200 * 1024, &a_len);
    char *b = reply_term(2, 300 * 1024, &b_len);
    char *small = reply_term(3, 100, &s_len);
    size_t pad = FRAME_SMALL_PACKET - s_len; /* make it exactly the bound */
    free(small);
    small = reply_term(3, 100 + pad, &s_len);
    assert_int_equal(s_len, FRAME_SMALL_PACKET);
    assert_int_equal(frame_writer_send(&w, a, a_len, true), 0);
    assert_int_equal(frame_writer_send(&w, b, b_len, true), 0);
    assert_int_equal(frame_writer_send(&w, small, s_len, true), 0);
    size_t na = (a_len + FRAME_CHUNK_BYTES - 1) / FRAME_CHUNK_BYTES;
    size_t nb = (b_len + FRAME_CHUNK_BYTES - 1) / FRAME_CHUNK_BYTES;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20);
        close(p[1]);
        uint8_t *whole = malloc(a_len + b_len);
        size_t whole_len = 0, seq[3] = {0, 0, 0};
        int bad = 0, last = 1;
        for (size_t k = 0; k < na + nb + 1; k++) {
            uint8_t *d;
            size_t n = child_read_packet(p[0], &d);
            struct seen s = classify(d, n, whole, &whole_len);
            free(d);
            if (s.kind == 'r' && s.id == 3 && n == FRAME_SMALL_PACKET)
                continue;
            if (s.kind != 'c' || s.id < (uint64_t)last || s.id > 2 || s.seq != seq[s.id]++)
                bad = 1;
            last = (int)s.id;
        }
        _exit(bad || seq[1] != na || seq[2] != nb ? 1 : 0);
    }
    close(p[0]);
    flush_to_child(&w, p[1], pid);
    assert_int_equal(w.counters.chunked, 2);
    frame_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_packets_come_out_whole),
        cmocka_unit_test(split_reads_at_every_byte),
        cmocka_unit_test(one_byte_at_a_time),
        cmocka_unit_test(zero_length_is_reported_and_skipped),
        cmocka_unit_test(oversize_is_discarded_and_stream_stays_in_sync),
        cmocka_unit_test(the_largest_allowed_packet_passes),
        cmocka_unit_test(fill_from_a_pipe_until_eof),
        cmocka_unit_test(large_writes_survive_partial_writes),
        cmocka_unit_test(write_to_a_closed_pipe_is_epipe),
        cmocka_unit_test(small_packets_go_before_big_ones_not_yet_begun),
        cmocka_unit_test(queued_replies_are_dropped_with_the_writer),
        cmocka_unit_test(a_pong_goes_between_the_chunks_of_a_big_reply),
        cmocka_unit_test(big_replies_go_one_after_the_other),
        cmocka_unit_test(a_flush_returns_to_the_loop_after_its_budget),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
