/*
 * term.h - reading untrusted terms in external format.
 *
 * ei's decoders take no buffer length: fed a truncated term they read past the
 * end. So every term is first walked by term_skip(), which checks each length
 * against the bytes that are really there and accepts only the types the
 * protocol uses (integers, atoms, binaries, tuples, lists, maps, floats).
 * Once a span has passed term_skip(), ei may decode inside it.
 *
 * Requests are {Id, Op, Args}; see docs/protocol.md.
 */
#ifndef CARAVAN_TERM_H
#define CARAVAN_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused rather than walked: no request needs
 * more than a few levels, and a bound keeps the walk's stack small. */
#define TERM_MAX_DEPTH 16
/* The longest operation name we dispatch on. */
#define TERM_MAX_OP 32

enum term_error {
    TERM_OK = 0,
    TERM_TRUNCATED,   /* a length points past the end of the packet */
    TERM_UNSUPPORTED, /* a pid, port, reference, fun or bitstring */
    TERM_TOO_DEEP,    /* nesting beyond TERM_MAX_DEPTH */
    TERM_BAD_VERSION, /* the first byte is not 131 */
    TERM_TRAILING,    /* bytes left over after the term */
    TERM_BAD_SHAPE    /* well-formed, but not what the protocol expects */
};

/* Human-readable name of an error, for error replies and stderr. */
const char *term_error_text(enum term_error e);

/* Advances *idx past one term of buf[0..len), checking every length.
 * Returns TERM_OK or the first problem found. */
enum term_error term_skip(const char *buf, size_t len, size_t *idx, int depth);

struct request {
    bool has_id;           /* false: not even the id could be read */
    uint64_t id;
    char op[TERM_MAX_OP + 1];
    const char *buf;       /* the whole packet */
    size_t len;
    size_t args;           /* index of Args inside buf (already validated) */
};

/* Decodes {Id, Op, Args}. On failure *detail says what was wrong; req->has_id
 * tells whether an error reply can be addressed. */
enum term_error term_request_decode(const char *buf, size_t len, struct request *req,
                                    const char **detail);

/*
 * Argument maps: each operation describes the keys it accepts in a table of
 * struct term_arg; term_args_parse() fills the destinations, rejects unknown
 * keys, wrong types, out-of-range integers and over-long binaries, and
 * reports the first problem in msg.
 */
enum term_arg_type { ARG_BINARY, ARG_INT, ARG_ATOM, ARG_BINARY_LIST, ARG_ATOM_OR_BINARY, ARG_TERM };

struct term_arg {
    const char *key;
    enum term_arg_type type;
    bool required;
    /* ARG_BINARY: dest is char[max + 1], NUL-terminated; *len_out gets the size.
     *   A binary holding a NUL byte is refused, naming the key (bad_args).
     * ARG_INT: dest is long long, accepted range [min, max].
     * ARG_ATOM: dest is char[max + 1]; the atom's name, NUL-terminated.
     * ARG_ATOM_OR_BINARY: either; *is_atom tells which it was.
     * ARG_BINARY_LIST: a list of binaries, none containing a comma, joined
     *   with ',' into char[max + 1] (the form c-ares takes server lists in);
     *   *len_out gets the element count.
     * ARG_TERM: any term (already walked by term_skip); dest is a size_t that
     *   gets its index in req->buf, for the operation to decode itself. */
    void *dest;
    size_t *len_out;
    long long min, max;
    bool *seen; /* optional: set when the key was present */
    /* ARG_BINARY: let NUL bytes through (with len_out, for a value the
     * operation checks byte by byte itself, as dist_port's name). */
    bool nul_ok;
    bool *is_atom; /* ARG_ATOM_OR_BINARY */
};

int term_args_parse(const struct request *req, const struct term_arg *spec, size_t n,
                    char *msg, size_t msglen);

#endif
