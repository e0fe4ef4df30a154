/*
 * fds.h - telling "out of file descriptors" apart from a server that is
 * down. When the program's descriptors are exhausted, c-ares cannot open a
 * socket and says "Could not contact DNS servers", libcurl "Couldn't
 * connect to server": an operator then looks for a dead agent. A failed DNS
 * lookup or HTTP request asks fds_exhausted() and, if so, says so.
 */
#ifndef CARAVAN_FDS_H
#define CARAVAN_FDS_H

/* NULL if a socket can be opened now (it is closed at once), else why not:
 * "out of file descriptors (EMFILE)" or the system-wide "(ENFILE)". The
 * first time in a row of failures it is also logged on stderr. */
const char *fds_exhausted(void);

#endif
