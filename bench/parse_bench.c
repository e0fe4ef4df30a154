/* parse_bench - the JSON reading of catalog.c timed side by side, jsmn's
 * (today's json.c) against the hand-written parser of c1dd4bb (built from
 * git by bench/old_parser.sh, linked in as old_*), in one run:
 * `parse_bench FILE [ROUNDS]`. Run by make bench (bench/http_bench.escript,
 * FILE a 10,000-instance Consul answer).
 *
 * Rows: the answer read through consul_health_parse (the ratio, goal
 * <= 1.3), peak RSS after the jsmn rounds (goal <= 2x body + 4 MiB), and
 * the adversarial bodies of caravan_http_SUITE at 1x and 2x their size
 * through json_parse (linear: 2x the size at most ~2.2x the time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "catalog.h"
#include "json.h"

/* The old parser's entry points; its struct json was three words (a body,
 * a length, an offset): a larger buffer stands in for it. */
int old_consul_health_parse(const char *body, size_t len, const char *tagged,
                            struct members *out, const char **err);
int old_json_parse(void *j, const char *js, size_t len, const char **err);

typedef int (*whole_fn)(const char *, size_t, const char *, struct members *, const char **);

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct timing {
    double best, total;
    int rounds;
};

static void record(struct timing *t, double ms)
{
    if (t->rounds == 0 || ms < t->best)
        t->best = ms;
    t->total += ms;
    t->rounds++;
}

static size_t answer_round(whole_fn parse, const char *body, size_t len, struct timing *t)
{
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    double t0 = now_ms();
    if (parse(body, len, "", &ms, &err) != 0) {
        fprintf(stderr, "parse failed: %s\n", err);
        exit(1);
    }
    record(t, now_ms() - t0);
    size_t n = ms.n;
    members_free(&ms);
    return n;
}

static long peak_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static char *repeat_into(char *p, const char *s, size_t times)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < times; i++, p += n)
        memcpy(p, s, n);
    return p;
}

/* caravan_http_SUITE's two: `copies` objects 62 deep in an array, and one
 * chain `levels` deep (refused at JSON_MAX_DEPTH). */
static size_t nested_body(char *body, size_t copies)
{
    char *p = body;
    *p++ = '[';
    for (size_t c = 0; c < copies; c++) {
        if (c)
            *p++ = ',';
        p = repeat_into(p, "{\"a\":", 62);
        *p++ = '1';
        p = repeat_into(p, "}", 62);
    }
    *p++ = ']';
    return (size_t)(p - body);
}

static size_t deep_body(char *body, size_t levels)
{
    char *p = repeat_into(body, "{\"a\":", levels);
    *p++ = '1';
    p = repeat_into(p, "}", levels);
    return (size_t)(p - body);
}

/* One read of an adversarial body by jsmn's parser (old false) or
 * c1dd4bb's: whole, through json_parse, or as an answer. */
static int parse_whole(bool old, const char *body, size_t len)
{
    struct json j;
    long old_j[8];
    const char *err = NULL;
    return old ? old_json_parse(old_j, body, len, &err) : json_parse(&j, body, len, &err);
}

static int parse_answer(bool old, const char *body, size_t len)
{
    struct members ms;
    const char *err = NULL;
    members_init(&ms);
    int rc = (old ? old_consul_health_parse : consul_health_parse)(body, len, "", &ms, &err);
    members_free(&ms);
    return rc;
}

typedef int (*read_fn)(bool, const char *, size_t);

static double best_of(read_fn read, bool old, const char *body, size_t len, int want)
{
    struct timing t = {0};
    for (int r = 0; r < 20; r++) {
        double t0 = now_ms();
        int rc = read(old, body, len);
        record(&t, now_ms() - t0);
        if (rc != want) {
            fprintf(stderr, "%s parser: rc %d on an adversarial body\n", old ? "old" : "jsmn", rc);
            exit(1);
        }
    }
    return t.best;
}

static void adversarial(const char *name, size_t (*make)(char *, size_t), size_t unit,
                        read_fn read, int want)
{
    char *one = malloc(unit * 6 * 64 + 16), *two = malloc(2 * unit * 6 * 64 + 16);
    if (one == NULL || two == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    size_t n1 = make(one, unit), n2 = make(two, 2 * unit);
    double j1 = best_of(read, false, one, n1, want), j2 = best_of(read, false, two, n2, want);
    double o1 = best_of(read, true, one, n1, want), o2 = best_of(read, true, two, n2, want);
    printf("  %-34s %4zu KB: jsmn %7.3f ms, old %7.3f ms (jsmn/old %5.2f); %4zu KB: jsmn %7.3f ms, "
           "old %7.3f ms; 2x size: jsmn x%.2f, old x%.2f (goal <= 2.2): %s\n",
           name, n1 / 1024, j1, o1, j1 / o1, n2 / 1024, j2, o2, j2 / j1, o2 / o1,
           j2 / j1 <= 2.2 ? "met" : "MISSED");
    free(one);
    free(two);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: parse_bench FILE [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 20;
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *body = malloc((size_t)len);
    if (body == NULL || fread(body, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);

    /* jsmn's rounds first, so that the peak RSS is theirs alone; then the
     * two alternate, so that both see the same machine. */
    struct timing jt = {0}, ot = {0};
    size_t n = 0;
    for (int r = 0; r < rounds; r++)
        n = answer_round(consul_health_parse, body, (size_t)len, &jt);
    long peak = peak_kib(), goal = 2 * len / 1024 + 4096;
    for (int r = 0; r < rounds; r++) {
        answer_round(old_consul_health_parse, body, (size_t)len, &ot);
        answer_round(consul_health_parse, body, (size_t)len, &jt);
    }
    double ratio = jt.best / ot.best;
    printf("  %zu instances, %.1f MB body, consul_health_parse over %d rounds: jsmn best %.1f ms "
           "(mean %.1f), hand-written c1dd4bb best %.1f ms (mean %.1f): jsmn/old %.2f "
           "(goal <= 1.3): %s\n",
           n, len / 1e6, rounds, jt.best, jt.total / jt.rounds, ot.best, ot.total / ot.rounds,
           ratio, ratio <= 1.3 ? "met" : "MISSED");
    printf("  peak RSS after the jsmn rounds %ld KiB (body included); goal <= 2x body + 4 MiB = "
           "%ld KiB: %s\n",
           peak, goal, peak <= goal ? "met" : "MISSED");
    adversarial("62-deep objects, json_parse", nested_body, 3900, parse_whole, 0);
    adversarial("62-deep objects, as an answer", nested_body, 3900, parse_answer, -1);
    adversarial("chain 40,000 deep, json_parse", deep_body, 40000, parse_whole, -1);
    free(body);
    return 0;
}
