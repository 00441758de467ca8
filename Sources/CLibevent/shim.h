#ifndef GATEHOUSE_CLIBEVENT_SHIM_H
#define GATEHOUSE_CLIBEVENT_SHIM_H
/* System headers first: libevent's event-config.h defines _GNU_SOURCE, and a shim that
   includes only event2 headers clashes with SwiftGlibc over fd_set on clean builds. */
#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <event2/dns.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* Swift cannot walk the TAILQ macros of evkeyvalq nor see macro constants: small helpers. */

static inline struct evkeyval *gh_headers_first(struct evkeyvalq *q) { return q->tqh_first; }
static inline struct evkeyval *gh_header_next(struct evkeyval *kv) { return kv->next.tqe_next; }

static inline short gh_ev_read(void) { return EV_READ; }
static inline short gh_ev_write(void) { return EV_WRITE; }
static inline short gh_ev_persist(void) { return EV_PERSIST; }
static inline short gh_ev_signal(void) { return EV_SIGNAL; }
static inline short gh_ev_timeout(void) { return EV_TIMEOUT; }

/* evsignal_new / evtimer_new are macros. */
static inline struct event *gh_signal_new(struct event_base *b, int sig,
        void (*cb)(evutil_socket_t, short, void *), void *arg) {
    return event_new(b, sig, EV_SIGNAL | EV_PERSIST, cb, arg);
}
static inline struct event *gh_timer_new(struct event_base *b, int persist,
        void (*cb)(evutil_socket_t, short, void *), void *arg) {
    return event_new(b, -1, persist ? EV_PERSIST : 0, cb, arg);
}
/* A non-blocking, close-on-exec eventfd: how other threads wake a worker's loop, whose base
   has no lock (EVENT_BASE_FLAG_NOLOCK) and so cannot be woken with event_active from them. */
static inline int gh_wake_fd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static inline int gh_timer_add_ms(struct event *ev, long long ms) {
    struct timeval tv; tv.tv_sec = ms / 1000; tv.tv_usec = (ms % 1000) * 1000;
    return event_add(ev, &tv);
}

/* evhttp_bind_listener makes a listener call evhttp's private accept_socket_cb, and libevent
   2.1 has neither a getter for a listener's callback nor a public way to hand an accepted
   socket to evhttp. The gateway wraps that callback (to count client connections and pause
   accepting, SPEC §3.2), so it reads it from the listener, whose struct begins (listener.c,
   the same from 2.0 to 2.2) with: ops, lock, cb, errorcb, user_data. The callback is returned
   only when user_data holds `expected_arg` (NULL otherwise), so that another layout is noticed
   instead of misread; the caller checks the layout with a callback of its own first. */
struct gh_evconnlistener_prefix {
    const void *ops;
    void *lock;
    evconnlistener_cb cb;
    evconnlistener_errorcb errorcb;
    void *user_data;
};
static inline evconnlistener_cb gh_listener_callback(struct evconnlistener *lev, void *expected_arg) {
    const struct gh_evconnlistener_prefix *prefix = (const struct gh_evconnlistener_prefix *)(const void *)lev;
    return prefix->user_data == expected_arg ? prefix->cb : NULL;
}

/* A plain client bufferevent, as evhttp makes one itself when no bevcb gives one. */
static inline struct bufferevent *gh_plain_server_bufferevent(struct event_base *base) {
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

/* Ignore SIGPIPE: writes to closed sockets must return EPIPE, not kill the process. */
static inline void gh_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

/* Block the handled signals in worker threads so that only the main loop sees them. */
static inline void gh_block_signals_in_thread(void) {
    sigset_t set; sigemptyset(&set);
    sigaddset(&set, SIGHUP); sigaddset(&set, SIGTERM); sigaddset(&set, SIGINT); sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* The TLS 1.2 suites a server accepts (SPEC §3.2 TLS): ECDHE key exchange with an AEAD cipher
   only, i.e. forward secrecy and no CBC or SHA-1 MAC. Static-RSA key exchange (AES128-SHA,
   AES256-GCM-SHA384, ...), CBC suites (ECDHE-RSA-AES128-SHA, ...) and finite-field DHE are
   refused. TLS 1.3 keeps OpenSSL's own suites (all AEAD with (EC)DHE). */
#define GH_TLS12_SERVER_CIPHERS \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* TLS server defaults (SPEC §2 server.tls, §3.2 TLS): TLS 1.2 or newer, ECDHE + AEAD suites
   only on 1.2, no renegotiation, the server's cipher order. The setters are macros. Returns 1
   on success. */
static inline int gh_ssl_ctx_server_defaults(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    if (SSL_CTX_set_cipher_list(ctx, GH_TLS12_SERVER_CIPHERS) != 1) return 0;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    return 1;
}

/* A client connection's bufferevent for a TLS listener: OpenSSL in server mode on the socket
   evhttp sets later. Abrupt closes without close_notify count as EOF, not as errors. */
static inline struct bufferevent *gh_tls_server_bufferevent(struct event_base *base, SSL_CTX *ctx) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                             BEV_OPT_CLOSE_ON_FREE);
    if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* TLS client for fetching JWKS over https: SNI and host name verification are macros or
   need several calls; one helper makes a verifying SSL object for `host`. */
static inline SSL *gh_ssl_client_new(SSL_CTX *ctx, const char *host) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    /* RFC 6066 §3: no literal IP address in server_name. OpenSSL 3's SSL_set1_host checks
       IP addresses against the certificate's IP SANs. */
    unsigned char ip[16];
    if (inet_pton(AF_INET, host, ip) != 1 && inet_pton(AF_INET6, host, ip) != 1)
        SSL_set_tlsext_host_name(ssl, host);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, host) != 1) { SSL_free(ssl); return NULL; }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    return ssl;
}

/* A client context that verifies peers against the system trust store (SSL_CERT_FILE and
   SSL_CERT_DIR are honoured, as OpenSSL always does). */
/* An https upstream connection on a raw non-blocking socket: gh_ssl_client_new's checks, in
   client mode on `fd`, writing what a call gets through (partial writes), retried from wherever
   the rest then is. */
static inline SSL *gh_ssl_client_on_fd(SSL_CTX *ctx, const char *host, int fd) {
    SSL *ssl = gh_ssl_client_new(ctx, host);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) { SSL_free(ssl); return NULL; }
    SSL_set_connect_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ssl;
}

static inline SSL_CTX *gh_ssl_client_ctx_new(void) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_verify_paths(ctx);
    return ctx;
}

#endif
