/*
 * dns.h - asynchronous DNS lookups with c-ares for the `srv' and `addr'
 * operations, driven by the program's poll() loop. (The HTTP client
 * resolves its URLs' hosts with a c-ares channel of its own,
 * http_resolve.h; ares_socks.h is what both share.)
 *
 * A lookup is an SRV query (with the addresses of its targets taken from the
 * ADDITIONAL section, from Consul's `.addr.` names, or from follow-up A/AAAA
 * queries) or an A/AAAA query. Each lookup has its own deadline; when it
 * passes, the lookup is answered with a timeout at once, whatever c-ares is
 * still doing, and lets go of everything it held. Lookups to the same
 * servers over the same transport share a c-ares channel whatever their
 * timeout_ms and tries (DNS_MAX_CHANNELS server sets at most).
 *
 * Every lookup started successfully is answered exactly once through the
 * done callback, possibly from inside dns_start() itself.
 *
 * Ownership rule: a channel is freed only by the reaper, which runs outside
 * every c-ares call (dns_poll_fds, the end of dns_process, dns_free) and
 * frees only a channel that no lookup holds, no c-ares query is pending on
 * and the poll table no longer lists; eviction merely marks a channel dead.
 * A lookup owns its queries until it is answered, then detaches them (they
 * complete on their channel with no lookup), frees those still waiting for
 * room in the channel's window, and drops its channel holds at once, so
 * nothing that outlives a lookup points into it.
 */
#ifndef CARAVAN_DNS_H
#define CARAVAN_DNS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "ares_socks.h"
#include "dns_msg.h"

/* Channels are cheap but each holds sockets; a handful of distinct server
 * sets is all a node uses. */
#define DNS_MAX_CHANNELS 8
/* Outstanding lookups; beyond this a new one is refused with overload. */
#define DNS_MAX_INFLIGHT 4096
/* Room for a comma-separated server list ("[v6]:port" is at most 47 bytes). */
#define DNS_SERVERS_MAX 1024
/* Sockets one channel may hold: one per server and transport. A socket
 * beyond it is refused (its query fails over to the next server), so every
 * open socket is polled. */
#define DNS_MAX_SOCKS_PER_CHANNEL ARES_SOCKS_MAX
/* Servers one lookup may name: two sockets each (UDP and TCP) fit the cap. */
#define DNS_MAX_SERVERS (DNS_MAX_SOCKS_PER_CHANNEL / 2)
/* c-ares' timeout per try and tries per server. Channels are shared across
 * lookups with different timeout_ms and tries, so both are fixed; a lookup
 * with more tries re-asks a timed-out question itself while its deadline
 * allows, and every lookup is answered at its own deadline regardless. */
#define DNS_TRY_TIMEOUT_MS 1000
#define DNS_CHANNEL_TRIES 2
/* A UDP lookup whose timeout_ms is under DNS_CHANNEL_TRIES tries would get
 * no resend of a lost packet from c-ares within it. Such a lookup sends its
 * question(s) again itself, once, at half its timeout if still unanswered;
 * the first answer of the two copies counts, the other is dropped. The
 * channel stays shared (its window and sockets), whatever the timeout.
 * Follow-up A/AAAA questions (always UDP, whatever the transport) of such
 * a lookup resend the same way, once each, halfway between their sending
 * and the lookup's deadline. */

enum dns_kind { DNS_LOOKUP_SRV, DNS_LOOKUP_ADDR };
enum dns_transport { DNS_TCP, DNS_UDP };

#define DNS_FAMILY_INET 1
#define DNS_FAMILY_INET6 2

struct dns_query {
    enum dns_kind kind;
    char name[DNS_NAME_TEXT_MAX];
    char servers[DNS_SERVERS_MAX]; /* "ip:port,[v6]:port"; empty: resolv_conf */
    char resolv_conf[256];         /* empty: /etc/resolv.conf */
    int timeout_ms;                /* the whole lookup, follow-ups included */
    int tries;
    enum dns_transport transport;  /* TCP, or UDP with EDNS and fallback on TC */
    int families;                  /* DNS_FAMILY_* bits for addresses */
};

struct dns_result {
    enum dns_kind kind;
    const char *reason;    /* NULL on success, else a stable atom */
    char detail[256];      /* one sentence when reason is set */
    const struct dns_answer *answer; /* srv (SRV lookups) or addrs (ADDR lookups) */
};

typedef void (*dns_done_fn)(void *ctx, uint64_t id, const struct dns_result *result);

struct dns;

struct dns *dns_new(dns_done_fn done, void *ctx);
/* Cancels everything outstanding without calling done. */
void dns_free(struct dns *d);

/* Starts a lookup. Returns 0 (done will be called), or -1 with *reason and
 * detail set (done will not be called): overload, bad_args (also more than
 * DNS_MAX_SERVERS servers), no_memory. */
int dns_start(struct dns *d, uint64_t id, const struct dns_query *q, const char **reason,
              char *detail, size_t detail_len);

/* Appends the sockets c-ares wants watched to fds; returns how many. */
size_t dns_poll_fds(struct dns *d, struct pollfd *fds, size_t cap);

/* Milliseconds until c-ares or a lookup deadline needs attention, at most cap. */
int dns_timeout(struct dns *d, int cap);

/* Handles the poll results of the fds dns_poll_fds() returned, then
 * timeouts and deadlines. */
void dns_process(struct dns *d, const struct pollfd *fds, size_t n);

/* Ends lookup id at once without calling done, as its deadline would but
 * unanswered: it is freed and its slot with it, its queries detached
 * (their answers, when they come, free only themselves), and a channel
 * left with detached queries only has them cancelled (ares_cancel:
 * c-ares 1.18 has no per-query cancel). Returns 1, or 0 when no lookup of
 * that id is in flight. Not from inside done or a c-ares callback. */
int dns_cancel(struct dns *d, uint64_t id);

/* Lookups outstanding, for info. */
size_t dns_inflight(const struct dns *d);

#endif
