/* cli_kill.c - `caravan_port kill PID': how the Erlang owner ends a hung
 * program; see cli.h.
 *
 * The owner kills a program that stopped answering (SIGSTOPped, stuck) with
 * SIGKILL: closing its stdin does nothing to a stopped process. The VM has no
 * way to signal an OS process itself, and an external `kill' may be missing
 * (a slim image without procps: the hung program then lived on, one more per
 * hang) or not be on the VM's PATH, so the owner runs this binary instead,
 * by the absolute path it already knows.
 *
 * IMPORTANT: only a sibling is killed. The VM starts every port program
 * through the same helper process (erl_child_setup), so the hung program
 * and this one share their parent; a pid whose parent is another process is
 * not the owner's program (it died and the pid was reused) and is left
 * alone. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* The parent pid in /proc/PID/stat ("pid (comm) state ppid ..."; comm may
 * hold spaces and parentheses, so read after the last ')'). -1 if gone. */
static long parent_of(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *close = strrchr(buf, ')');
    char state;
    long ppid;
    if (close == NULL || sscanf(close + 1, " %c %ld", &state, &ppid) != 2)
        return -1;
    return state == 'Z' ? -1 : ppid; /* a zombie is dead already */
}

int cli_kill(int argc, char **argv)
{
    char *end = NULL;
    long pid = argc == 1 ? strtol(argv[0], &end, 10) : 0;
    if (argc != 1 || end == argv[0] || *end != '\0' || pid <= 1) {
        fprintf(stderr, "caravan_port: kill takes one process id above 1\n");
        return 2;
    }
    long ppid = parent_of(pid);
    if (ppid < 0)
        return 0; /* gone: nothing left to do */
    if (ppid != (long)getppid()) {
        fprintf(stderr, "caravan_port: kill: process %ld is not a sibling (its parent is %ld, "
                        "ours %ld); left alone\n", pid, ppid, (long)getppid());
        return 1;
    }
    if (kill((pid_t)pid, SIGKILL) != 0 && errno != ESRCH) {
        fprintf(stderr, "caravan_port: kill %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    return 0;
}
