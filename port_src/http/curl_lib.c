/* curl_lib.c - libcurl bound with dlopen() on a loader thread, and its
 * errors as atoms; see curl_lib.h. */
#include "curl_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct curl_fns curl_lib;

/* Owned by the loop's thread: the loader's results reach it through
 * pthread_join only. */
static enum curl_lib_state state = CURL_LIB_UNLOADED;
/* Why the last load failed, for caravan:info(); empty if none did. */
static char load_error[256];

/* The loader thread (state CURL_LIB_LOADING): it binds curl_lib, writes
 * its error (if any) to error and one byte to pipe[1] when it is done. */
static struct {
    pthread_t thread;
    int pipe[2];
    int rc;
    char error[sizeof load_error];
} loader = {.pipe = {-1, -1}};

/* Binds curl_lib's pointers. Returns 0, or -1 with a reason in err. */
static int load_libcurl(char *load_err, size_t cap)
{
    void *h = dlopen(HTTP_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(load_err, cap, "cannot load " HTTP_LIBCURL_SONAME ": %s", dlerror());
        return -1;
    }
    /* POSIX allows converting dlsym's void * to a function pointer; C11
     * does not, so go through memcpy. */
#define BIND(field, symbol)                                                                    \
    do {                                                                                       \
        void *sym = dlsym(h, symbol);                                                          \
        if (sym == NULL) {                                                                     \
            snprintf(load_err, cap, HTTP_LIBCURL_SONAME " lacks %s", symbol);                  \
            dlclose(h);                                                                        \
            return -1;                                                                         \
        }                                                                                      \
        memcpy(&curl_lib.field, &sym, sizeof sym);                                                  \
    } while (0)
    BIND(global_init, "curl_global_init");
    BIND(multi_init, "curl_multi_init");
    BIND(multi_setopt, "curl_multi_setopt");
    BIND(multi_add_handle, "curl_multi_add_handle");
    BIND(multi_remove_handle, "curl_multi_remove_handle");
    BIND(multi_cleanup, "curl_multi_cleanup");
    BIND(multi_socket_action, "curl_multi_socket_action");
    BIND(multi_info_read, "curl_multi_info_read");
    BIND(easy_init, "curl_easy_init");
    BIND(easy_setopt, "curl_easy_setopt");
    BIND(easy_getinfo, "curl_easy_getinfo");
    BIND(easy_pause, "curl_easy_pause");
    BIND(easy_cleanup, "curl_easy_cleanup");
    BIND(easy_strerror, "curl_easy_strerror");
    BIND(slist_append, "curl_slist_append");
    BIND(slist_free_all, "curl_slist_free_all");
    BIND(version, "curl_version");
#undef BIND
    return 0;
}

/* The whole load, on any thread: dlopen, the bindings, curl_global_init
 * (OpenSSL's initialisation: most of the time). Returns 0 or -1 with err. */
static int load_and_init(char *err, size_t cap)
{
    if (load_libcurl(err, cap) != 0)
        return -1;
    if (curl_lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, cap, "curl_global_init failed");
        return -1;
    }
    return 0;
}

/* The loop's side of a finished load. */
static void publish(int rc, const char *err)
{
    if (rc == 0) {
        load_error[0] = '\0';
        state = CURL_LIB_READY;
        return;
    }
    /* Every request after a failed load tries again: said once per reason,
     * not once per try (a watch retrying for hours wrote a line each time);
     * caravan:info()'s libcurl key says it as long as it lasts. */
    if (strcmp(load_error, err) != 0)
        fprintf(stderr, "caravan_port: %s\n", err);
    snprintf(load_error, sizeof load_error, "%s", err);
    state = CURL_LIB_FAILED;
}

static void *loader_main(void *arg)
{
    (void)arg;
    loader.rc = load_and_init(loader.error, sizeof loader.error);
    /* IMPORTANT: the last thing the thread does; the loop joins it once
     * this byte has arrived, and only then reads what it wrote. */
    while (write(loader.pipe[1], "", 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

static void close_pipe(void)
{
    for (int i = 0; i < 2; i++) {
        if (loader.pipe[i] >= 0)
            close(loader.pipe[i]);
        loader.pipe[i] = -1;
    }
}

enum curl_lib_state curl_lib_load_start(void)
{
    if (state == CURL_LIB_READY || state == CURL_LIB_LOADING)
        return state;
    loader.error[0] = '\0';
    if (pipe(loader.pipe) == 0) {
        for (int i = 0; i < 2; i++) {
            fcntl(loader.pipe[i], F_SETFL, fcntl(loader.pipe[i], F_GETFL) | O_NONBLOCK);
            fcntl(loader.pipe[i], F_SETFD, FD_CLOEXEC);
        }
        if (pthread_create(&loader.thread, NULL, loader_main, NULL) == 0) {
            state = CURL_LIB_LOADING;
            return state;
        }
        close_pipe();
    }
    /* No thread to be had: load here, holding up the loop as before. */
    char err[sizeof load_error] = "";
    publish(load_and_init(err, sizeof err), err);
    return state;
}

int curl_lib_loader_fd(void)
{
    return state == CURL_LIB_LOADING ? loader.pipe[0] : -1;
}

enum curl_lib_state curl_lib_load_poll(void)
{
    if (state != CURL_LIB_LOADING)
        return state;
    char byte;
    ssize_t n = read(loader.pipe[0], &byte, 1);
    if (n != 1)
        return state; /* still loading (EAGAIN) */
    pthread_join(loader.thread, NULL);
    close_pipe();
    publish(loader.rc, loader.error);
    return state;
}

enum curl_lib_state curl_lib_state(void)
{
    return state;
}

const char *curl_lib_error(void)
{
    return load_error;
}

void curl_lib_describe(char *out, size_t cap)
{
    if (state == CURL_LIB_READY)
        snprintf(out, cap, HTTP_LIBCURL_SONAME ": %s", curl_lib.version());
    else if (state == CURL_LIB_LOADING)
        snprintf(out, cap, "none: not loaded yet (loading, for the first HTTP request)");
    else if (load_error[0])
        snprintf(out, cap, "none: %s", load_error);
    else
        snprintf(out, cap, "none: not loaded yet (loaded on the first HTTP request)");
}

const char *curl_lib_atom(CURLcode c, bool too_large, const char *error)
{
    if (too_large)
        return "too_large";
    /* TLS 1.3 lets the client finish its handshake before the server
     * judges the client's certificate: the server's refusal then arrives
     * as an alert on the first read, which libcurl reports as a receive
     * error. It is a TLS failure all the same. */
    if ((c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR) && strstr(error, " alert ") != NULL)
        return "tls_error";
    switch (c) {
    case CURLE_COULDNT_CONNECT: return "connection_refused";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST: return "nxdomain";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED: return "tls_error";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE: return "connection_closed";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return "bad_args";
    case CURLE_OUT_OF_MEMORY: return "no_memory";
    default: return "http_error";
    }
}
