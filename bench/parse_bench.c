/* parse_bench - time catalog.c on a Consul health answer read from a file,
 * and report peak memory: `parse_bench FILE [ROUNDS]`. Run by make bench. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "catalog.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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

    double best = 1e9, total = 0;
    size_t n = 0;
    for (int r = 0; r < rounds; r++) {
        struct members ms;
        const char *err = NULL;
        members_init(&ms);
        double t0 = now_ms();
        if (consul_health_parse(body, (size_t)len, "", &ms, &err) != 0) {
            fprintf(stderr, "parse failed: %s\n", err);
            return 1;
        }
        double t = now_ms() - t0;
        total += t;
        if (t < best)
            best = t;
        n = ms.n;
        members_free(&ms);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  %zu instances, %.1f MB body: parse best %.1f ms, mean %.1f ms over %d rounds; "
           "peak RSS %ld KiB (body included)\n",
           n, len / 1e6, best, total / rounds, rounds, ru.ru_maxrss);
    free(body);
    return 0;
}
