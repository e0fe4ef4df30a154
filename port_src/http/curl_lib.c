/* curl_lib.c - libcurl bound with dlopen() and its errors as atoms; see
 * curl_lib.h. */
#include "curl_lib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

struct curl_fns curl_lib;

static bool library_ready = false;
/* Why the last load failed, for caravan:info(); empty if none did. */
static char load_error[256];

/* Binds curl_lib's pointers. Returns 0, or -1 with a reason on stderr. */
static int load_libcurl(void)
{
    void *h = dlopen(HTTP_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(load_error, sizeof load_error, "cannot load " HTTP_LIBCURL_SONAME ": %s",
                 dlerror());
        fprintf(stderr, "caravan_port: %s\n", load_error);
        return -1;
    }
    /* POSIX allows converting dlsym's void * to a function pointer; C11
     * does not, so go through memcpy. */
#define BIND(field, symbol)                                                                    \
    do {                                                                                       \
        void *sym = dlsym(h, symbol);                                                          \
        if (sym == NULL) {                                                                     \
            snprintf(load_error, sizeof load_error, HTTP_LIBCURL_SONAME " lacks %s", symbol);   \
            fprintf(stderr, "caravan_port: %s\n", load_error);                                 \
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

int curl_lib_load(void)
{
    if (library_ready)
        return 0;
    if (load_libcurl() != 0)
        return -1;
    if (curl_lib.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        return -1;
    }
    load_error[0] = '\0';
    library_ready = true;
    return 0;
}

void curl_lib_describe(char *out, size_t cap)
{
    if (library_ready)
        snprintf(out, cap, HTTP_LIBCURL_SONAME ": %s", curl_lib.version());
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
