/* cli.c - command-line modes; see cli.h. */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "address.h"
#include "catalog.h"
#include "catalog_detail.h"
#include "catalog_request.h"
#include "clock.h"
#include "dist_port.h"
#include "dns.h"
#include "http.h"

const char cli_usage[] =
    "usage: caravan_port                      run as an Erlang port (stdin not a terminal)\n"
    "       caravan_port dist-port NAME [--default PORT]\n"
    "           print the distribution port a node name carries\n"
    "       caravan_port lookup NAME [--dns IP:PORT]... [--basename B] [--timeout MS]\n"
    "                               [--type srv|a|aaaa]... [--port P] [--udp] [--verbose]\n"
    "       caravan_port lookup SERVICE --consul URL | --nomad URL [--basename B]\n"
    "                               [--timeout MS] [--verbose]\n"
    "           look up a service and print the node names its instances make,\n"
    "           B-PORT@ADDRESS, one per line (--verbose: the records themselves).\n"
    "           DNS: the SRV records of NAME, or its A/AAAA records (--type a, aaaa,\n"
    "           or both: B-P@ADDRESS for each address). --consul: Consul's passing instances\n"
    "           (GET /v1/health/service); --nomad: Nomad's registrations\n"
    "           (GET /v1/service). URL: http(s)://host:port or unix:///socket.\n"
    "           Tokens and TLS files come from the environment, as for the consul and\n"
    "           nomad commands: CONSUL_HTTP_TOKEN, CONSUL_CACERT, CONSUL_CLIENT_CERT,\n"
    "           CONSUL_CLIENT_KEY; NOMAD_TOKEN, NOMAD_NAMESPACE, NOMAD_CACERT,\n"
    "           NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY.\n"
    "           --dns      server to ask, repeatable (default 127.0.0.1:8600, the local\n"
    "                      Consul agent); --dns system uses /etc/resolv.conf\n"
    "           --basename default: the service label of NAME (app in app.service.consul),\n"
    "                      the first label of NAME for A/AAAA (myapp in myapp.internal),\n"
    "                      or SERVICE\n"
    "           --type     srv (default), a, aaaa; a and aaaa may both be given\n"
    "           --port     P of A/AAAA-found nodes, 1..65535 (required with a/aaaa:\n"
    "                      a node takes its own port from its name)\n"
    "           --timeout  for the whole lookup, in ms (default 2000)\n"
    "           --udp      UDP with EDNS and TCP fallback instead of TCP (the default\n"
    "                      for a/aaaa)\n"
    "           NAME is asked as written with --dns IP:PORT; with --dns system it\n"
    "           follows resolv.conf's search list and ndots (a final dot: as written).\n"
    "       caravan_port kill PID\n"
    "           SIGKILL to PID if the same parent started it (how caravan ends a hung\n"
    "           program without an external kill)\n"
    "       caravan_port --version | --help\n"
    "\n"
    "The port of a node is the run of digits ending its name part:\n"
    "app-4370@10.0.0.5 -> 4370. Without digits the default is used (4370).\n"
    "As a port it speaks {packet,4} external terms; see docs/protocol.md.\n";

static int usage_error(const char *what)
{
    fprintf(stderr, "caravan_port: %s\n\n%s", what, cli_usage);
    return 2;
}

int cli_dist_port(int argc, char **argv)
{
    long default_port = 4370;
    const char *name = NULL;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--default") == 0 && i + 1 < argc) {
            char *end = NULL;
            default_port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || default_port < 0 || default_port > 65535)
                return usage_error("--default takes a port 0..65535");
        } else if (name == NULL) {
            name = argv[i];
        } else {
            return usage_error("dist-port takes one name");
        }
    }
    if (name == NULL)
        return usage_error("dist-port needs a node name");

    char msg[512];
    long port = 0;
    enum dist_port_error e =
        dist_port_from_name(name, strlen(name), default_port, &port, msg, sizeof msg);
    if (e != DIST_PORT_OK) {
        fprintf(stderr, "caravan_port: %s (%s)\n", msg, dist_port_error_atom(e));
        return 1;
    }
    printf("%ld\n", port);
    return 0;
}

struct outcome {
    bool done;
    int status;
    const char *basename;
    long port; /* of A/AAAA-found nodes */
    bool verbose;
};

static void print_addr(const struct dns_addr *a, char *buf, size_t len)
{
    inet_ntop(a->family, a->bytes, buf, (socklen_t)len);
}

static void lookup_done(void *ctx, uint64_t id, const struct dns_result *r)
{
    (void)id;
    struct outcome *out = ctx;
    out->done = true;
    if (r->reason) {
        fprintf(stderr, "caravan_port: %s (%s)\n", r->detail, r->reason);
        out->status = 1;
        return;
    }
    if (r->kind == DNS_LOOKUP_ADDR) {
        for (size_t i = 0; i < r->answer->naddrs; i++) {
            char text[INET6_ADDRSTRLEN];
            print_addr(&r->answer->addrs[i], text, sizeof text);
            if (out->verbose)
                printf("%s\n", text);
            else
                printf("%s-%ld@%s\n", out->basename, out->port, text);
        }
        return;
    }
    for (size_t i = 0; i < r->answer->nsrv; i++) {
        const struct dns_srv *s = &r->answer->srv[i];
        char text[INET6_ADDRSTRLEN];
        if (out->verbose) {
            printf("%u %u %u %s", s->priority, s->weight, s->port, s->target);
            for (size_t k = 0; k < s->naddrs; k++) {
                print_addr(&s->addrs[k], text, sizeof text);
                printf(" %s", text);
            }
            printf("\n");
        } else if (s->naddrs > 0) {
            /* IPv4 first, as the Erlang side names nodes. */
            size_t pick = 0;
            for (size_t k = 0; k < s->naddrs; k++)
                if (s->addrs[k].family == AF_INET) {
                    pick = k;
                    break;
                }
            print_addr(&s->addrs[pick], text, sizeof text);
            printf("%s-%u@%s\n", out->basename, s->port, text);
        }
    }
}

/* app.service.consul -> app; _app._tcp.service.consul -> app. */
static void default_basename(const char *name, char *out, size_t len)
{
    const char *svc = strstr(name, "._tcp.");
    const char *start = name;
    size_t n;
    if (svc != NULL) {
        n = (size_t)(svc - name);
    } else {
        const char *dot = strstr(name, ".service.");
        const char *end = dot ? dot : name + strcspn(name, ".");
        const char *prev = end;
        while (prev > name && prev[-1] != '.')
            prev--;
        start = prev;
        n = (size_t)(end - prev);
    }
    while (n > 0 && *start == '_') {
        start++;
        n--;
    }
    snprintf(out, len, "%.*s", (int)n, start);
}

static void copy_env(char *out, size_t cap, const char *var)
{
    const char *v = getenv(var);
    snprintf(out, cap, "%s", v ? v : "");
}

struct http_outcome {
    bool done;
    const char *reason;
    char detail[256];
    long status;
    char *body;
    size_t len;
    char next_token[HTTP_HEADER_VALUE_MAX];
};

static void http_done(void *ctx, uint64_t id, void *user, const struct http_result *r)
{
    (void)id;
    (void)user;
    struct http_outcome *out = ctx;
    out->done = true;
    out->reason = r->reason;
    snprintf(out->detail, sizeof out->detail, "%s", r->detail);
    if (r->reason == NULL) {
        out->status = r->response->status;
        out->body = malloc(r->response->body_len + 1);
        if (out->body) {
            memcpy(out->body, r->response->body, r->response->body_len);
            out->len = r->response->body_len;
        }
        snprintf(out->next_token, sizeof out->next_token, "%s", r->response->next_token);
    }
}

/* One GET, run to completion in a private loop. */
static int fetch(const struct catalog_query *q, struct http_outcome *out)
{
    struct http_request req;
    memset(out, 0, sizeof *out);
    if (catalog_request_build(q, &req) != 0) {
        fprintf(stderr, "caravan_port: URL or parameters too long\n");
        return 2;
    }
    struct http *h = http_new(http_done, out);
    const char *reason = NULL;
    char detail[256];
    if (h == NULL || http_start(h, 1, &req, NULL, &reason, detail, sizeof detail) != 0) {
        fprintf(stderr, "caravan_port: cannot start the request (%s%s%s)\n",
                reason ? reason : "init", reason ? ": " : "", reason ? detail : "");
        http_free(h);
        return 1;
    }
    int64_t give_up = clock_now_ms() + req.timeout_ms + 1000;
    while (!out->done && clock_now_ms() < give_up) {
        struct pollfd fds[HTTP_MAX_SOCKETS];
        size_t n = http_poll_fds(h, fds, HTTP_MAX_SOCKETS);
        if (poll(fds, n, http_timeout(h, 100)) < 0 && errno != EINTR)
            break;
        http_process(h, fds, n);
    }
    http_free(h);
    if (!out->done || out->reason) {
        fprintf(stderr, "caravan_port: %s (%s)\n", out->done ? out->detail : "no answer",
                out->done ? out->reason : "timeout");
        return 1;
    }
    if (out->status != 200) {
        /* The port's detail: first line, printable, the token masked (a
         * gateway may quote the request, token and all, in its page). */
        char why[256];
        catalog_detail(why, sizeof why, out->status, out->body ? out->body : "", out->len,
                    q->token);
        fprintf(stderr, "caravan_port: %s\n", why);
        return 1;
    }
    return 0;
}

static int lookup_http(enum catalog_api api, const char *url, const char *service,
                       const char *basename, long timeout, bool verbose)
{
    struct catalog_query q;
    catalog_query_init(&q, api);
    if (strlen(url) >= sizeof q.url || strlen(service) >= sizeof q.service)
        return usage_error("URL or service name too long");
    memcpy(q.url, url, strlen(url) + 1);
    memcpy(q.service, service, strlen(service) + 1);
    q.timeout_ms = timeout;
    bool consul = api == API_CONSUL;
    copy_env(q.token, sizeof q.token, consul ? "CONSUL_HTTP_TOKEN" : "NOMAD_TOKEN");
    copy_env(q.ca_file, sizeof q.ca_file, consul ? "CONSUL_CACERT" : "NOMAD_CACERT");
    copy_env(q.cert_file, sizeof q.cert_file, consul ? "CONSUL_CLIENT_CERT" : "NOMAD_CLIENT_CERT");
    copy_env(q.key_file, sizeof q.key_file, consul ? "CONSUL_CLIENT_KEY" : "NOMAD_CLIENT_KEY");
    if (!consul)
        copy_env(q.namespace_, sizeof q.namespace_, "NOMAD_NAMESPACE");

    struct members ms;
    members_init(&ms);
    int rc = 0;
    /* Nomad pages; Consul answers in one. A bound stops a lying next token. */
    for (int page = 0; page < 1000; page++) {
        struct http_outcome out;
        rc = fetch(&q, &out);
        if (rc != 0) {
            free(out.body);
            break;
        }
        const char *err = NULL;
        if ((consul ? consul_health_parse(out.body, out.len, "", &ms, &err)
                    : nomad_services_parse(out.body, out.len, &ms, &err)) != 0) {
            fprintf(stderr, "caravan_port: unexpected response body: %s (bad_answer)\n", err);
            free(out.body);
            rc = 1;
            break;
        }
        free(out.body);
        if (consul || out.next_token[0] == '\0')
            break;
        snprintf(q.next_token, sizeof q.next_token, "%s", out.next_token);
    }
    /* Node names as the Erlang side makes them (caravan_name): port 0
     * left out, an address read strictly (address.h), one that is not
     * strict but would be read as another host left out and counted. The
     * verbose form shows the records as the server sent them. */
    size_t ambiguous = 0;
    const char *example = NULL;
    for (size_t i = 0; rc == 0 && i < ms.n; i++) {
        const struct member *m = &ms.m[i];
        char host[64];
        if (verbose) {
            printf("%s %ld %s %s\n", m->address, m->port, m->node, m->id);
            continue;
        }
        if (m->port == 0)
            continue;
        switch (address_classify(m->address, host, sizeof host)) {
        case ADDRESS_STRICT: printf("%s-%ld@%s\n", basename, m->port, host); break;
        case ADDRESS_HOST_NAME: printf("%s-%ld@%s\n", basename, m->port, m->address); break;
        case ADDRESS_AMBIGUOUS:
            if (ambiguous++ == 0)
                example = m->address;
            break;
        }
    }
    if (ambiguous > 0)
        fprintf(stderr, "caravan_port: %zu instance(s) left out: an address that is not in "
                        "strict form (%s; zero-padded, octal, hexadecimal, a bare number, a "
                        "shortened IPv4 or a zone) would be read as another host\n",
                ambiguous, example);
    members_free(&ms);
    return rc;
}

int cli_lookup(int argc, char **argv)
{
    struct dns_query q;
    char basename[256] = "";
    struct outcome out = {0};
    long timeout = 2000;

    memset(&q, 0, sizeof q);
    q.kind = DNS_LOOKUP_SRV;
    q.transport = DNS_TCP;
    q.tries = 2;
    q.families = DNS_FAMILY_INET | DNS_FAMILY_INET6;
    bool servers_given = false, system = false, udp = false;
    int families = 0, srv = 0;
    const char *consul = NULL, *nomad = NULL;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "--dns") == 0 && has_value) {
            const char *server = argv[++i];
            servers_given = true;
            if (strcmp(server, "system") == 0) {
                system = true;
                continue;
            }
            size_t used = strlen(q.servers);
            if (used + strlen(server) + 2 > sizeof q.servers)
                return usage_error("too many --dns servers");
            snprintf(q.servers + used, sizeof q.servers - used, "%s%s", used ? "," : "", server);
        } else if (strcmp(arg, "--consul") == 0 && has_value) {
            consul = argv[++i];
        } else if (strcmp(arg, "--nomad") == 0 && has_value) {
            nomad = argv[++i];
        } else if (strcmp(arg, "--basename") == 0 && has_value) {
            snprintf(basename, sizeof basename, "%s", argv[++i]);
        } else if (strcmp(arg, "--timeout") == 0 && has_value) {
            char *end = NULL;
            timeout = strtol(argv[++i], &end, 10);
            if (*end != '\0' || timeout < 1 || timeout > 60000)
                return usage_error("--timeout takes 1..60000 ms");
        } else if (strcmp(arg, "--type") == 0 && has_value) {
            const char *t = argv[++i];
            if (strcmp(t, "a") == 0)
                families |= DNS_FAMILY_INET;
            else if (strcmp(t, "aaaa") == 0)
                families |= DNS_FAMILY_INET6;
            else if (strcmp(t, "srv") == 0)
                srv = 1;
            else
                return usage_error("--type takes srv, a or aaaa");
        } else if (strcmp(arg, "--port") == 0 && has_value) {
            char *end = NULL;
            out.port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || out.port < 1 || out.port > 65535)
                return usage_error("--port takes 1..65535");
        } else if (strcmp(arg, "--udp") == 0) {
            udp = true;
        } else if (strcmp(arg, "--verbose") == 0) {
            out.verbose = true;
        } else if (arg[0] != '-' && q.name[0] == '\0' && strlen(arg) < 256) {
            snprintf(q.name, sizeof q.name, "%s", arg);
        } else {
            return usage_error("unknown or repeated argument to lookup");
        }
    }
    if (q.name[0] == '\0')
        return usage_error("lookup needs a name");
    if (srv && families)
        return usage_error("--type srv and a/aaaa are separate lookups: give one or the other");
    if (families && out.port == 0)
        return usage_error("--type a/aaaa needs --port: A/AAAA records carry none");
    if (!families && out.port != 0)
        return usage_error("--port is for --type a/aaaa: SRV records carry their own");
    if (families) {
        q.kind = DNS_LOOKUP_ADDR;
        q.families = families;
        q.transport = DNS_UDP;
    }
    if (udp)
        q.transport = DNS_UDP;
    if (consul && nomad)
        return usage_error("--consul and --nomad exclude each other");
    if (consul || nomad)
        return lookup_http(consul ? API_CONSUL : API_NOMAD, consul ? consul : nomad, q.name,
                           basename[0] ? basename : q.name, timeout, out.verbose);
    if (system)
        q.servers[0] = '\0';
    else if (!servers_given)
        snprintf(q.servers, sizeof q.servers, "127.0.0.1:8600");
    if (basename[0] == '\0' && families)
        snprintf(basename, sizeof basename, "%.*s", (int)strcspn(q.name, "."), q.name);
    else if (basename[0] == '\0')
        default_basename(q.name, basename, sizeof basename);
    q.timeout_ms = (int)timeout;
    out.basename = basename;

    struct dns *d = dns_new(lookup_done, &out);
    if (d == NULL) {
        fprintf(stderr, "caravan_port: cannot initialise c-ares\n");
        return 1;
    }
    const char *reason = NULL;
    char detail[256];
    if (dns_start(d, 1, &q, &reason, detail, sizeof detail) != 0) {
        fprintf(stderr, "caravan_port: %s (%s)\n", detail, reason);
        dns_free(d);
        return reason && strcmp(reason, "bad_args") == 0 ? 2 : 1;
    }
    /* The lookup's own deadline ends the loop; the bound is a second guard. */
    int64_t give_up = clock_now_ms() + timeout + 1000;
    while (!out.done && clock_now_ms() < give_up) {
        struct pollfd fds[DNS_MAX_CHANNELS * DNS_MAX_SOCKS_PER_CHANNEL];
        size_t n = dns_poll_fds(d, fds, sizeof fds / sizeof fds[0]);
        if (poll(fds, n, dns_timeout(d, 100)) < 0 && errno != EINTR)
            break;
        dns_process(d, fds, n);
    }
    dns_free(d);
    if (!out.done) {
        fprintf(stderr, "caravan_port: no answer within %ld ms (timeout)\n", timeout);
        return 1;
    }
    return out.status;
}
