/* dns_window.c - the per-channel wait window: at most DNS_CHANNEL_WINDOW
 * queries handed to c-ares at once, the rest waiting oldest first; see
 * dns_internal.h. */
#include <sys/select.h> /* before ares.h under _POSIX_C_SOURCE */

#include "dns_internal.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ares_socks.h"
#include "clock.h"
#include "fds.h"

void dns_wait_remove(struct query *q)
{
    struct channel *ch = q->ch;
    if (q->wprev)
        q->wprev->wnext = q->wnext;
    else
        ch->wait_head = q->wnext;
    if (q->wnext)
        q->wnext->wprev = q->wprev;
    else
        ch->wait_tail = q->wprev;
    q->wprev = q->wnext = NULL;
    q->waiting = false;
    ch->waiting--;
}

void dns_wait_append(struct query *q)
{
    struct channel *ch = q->ch;
    q->waiting = true;
    q->wnext = NULL;
    q->wprev = ch->wait_tail;
    if (ch->wait_tail)
        ch->wait_tail->wnext = q;
    else
        ch->wait_head = q;
    ch->wait_tail = q;
    ch->waiting++;
}

void dns_send_query(struct query *q)
{
    struct dns *d = q->ch->d;
    q->ch->queries++;
    q->ch->last_used = clock_now_ms();
    d->depth++;
    /* A lookup's own question follows the channel's search rules; a
     * follow-up asks for a target an answer named, which is complete. */
    if (q->ch->search && !q->followup)
        ares_search(q->ch->ares, q->target, ns_c_in, q->type, dns_on_answer, q);
    else
        ares_query(q->ch->ares, q->target, ns_c_in, q->type, dns_on_answer, q);
    d->depth--;
}

/* Sends waiting queries while ch's window has room. Runs inside c-ares
 * callbacks (dns_on_answer), where a send may answer at once and re-enter:
 * the outer call keeps going instead. */
void dns_pump(struct channel *ch)
{
    if (ch->pumping)
        return;
    ch->pumping = true;
    while (ch->wait_head != NULL && ch->queries < DNS_CHANNEL_WINDOW && !ch->d->closing) {
        struct query *q = ch->wait_head;
        dns_wait_remove(q);
        dns_send_query(q);
    }
    ch->pumping = false;
}

