#ifndef GATEHOUSE_CHIREDIS_H
#define GATEHOUSE_CHIREDIS_H
/* hiredis 0.14 (Debian libhiredis-dev) for the Redis session store.
 *
 * Why this target exists: hiredis's libevent adapter (hiredis/adapters/libevent.h) is made of
 * static C functions that Swift cannot call, and a few hiredis fields are easier to reach from
 * C. Everything else (redisAsyncCommandArgv, redisReply, the callbacks) Swift uses directly.
 *
 * System headers come first, as in CLibevent's shim; the event2 headers are kept out of this
 * header on purpose (libevent's event-config.h defines _GNU_SOURCE, which clashes with
 * SwiftGlibc): `struct event_base` is only forward-declared, so Swift sees it as the same
 * OpaquePointer that CLibevent hands out. */
#include <sys/types.h>
#include <sys/time.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

struct event_base;

/* redisAsyncConnect + redisLibeventAttach (the adapter's static function). Returns NULL when
 * the connection fails at once (refused, bad address: the reason is copied into `err`) or
 * cannot be attached; the half-made context is freed then. Otherwise the context belongs to
 * hiredis until its connect callback reports failure, its disconnect callback has returned,
 * or gh_redis_free_silently is called: never touch it after that.
 *
 * Note: hiredis resolves `host` with a blocking getaddrinfo(3). Give an IP address, or a name
 * that /etc/hosts answers, to keep the loop from waiting on DNS. */
redisAsyncContext *gh_redis_connect(struct event_base *base, const char *host, int port,
                                    char *err, size_t err_len);

/* Clears the context's `data` and its connect and disconnect callbacks: its owner hears
 * nothing more from it (used once the owner has moved on, while hiredis is freeing it). */
void gh_redis_detach(redisAsyncContext *ac);

/* Frees the context now without calling its connect or disconnect callbacks (they are
 * cleared first, along with `data`). Pending commands still get their reply callback, with a
 * NULL reply, before this returns (or, when called from inside a reply callback, right after
 * that callback returns: hiredis defers the free then). */
void gh_redis_free_silently(redisAsyncContext *ac);

/* The context's last error text (the inline buffer of its redisContext: always valid while
 * the context is, unlike `ac->errstr`, which is NULL until hiredis copies the error). */
const char *gh_redis_errstr(const redisAsyncContext *ac);

/* REDIS_OK / REDIS_ERR and the reply types, as values (macros are imported unevenly). */
static inline int gh_redis_ok(void) { return REDIS_OK; }
static inline int gh_reply_string(void) { return REDIS_REPLY_STRING; }
static inline int gh_reply_array(void) { return REDIS_REPLY_ARRAY; }
static inline int gh_reply_integer(void) { return REDIS_REPLY_INTEGER; }
static inline int gh_reply_nil(void) { return REDIS_REPLY_NIL; }
static inline int gh_reply_status(void) { return REDIS_REPLY_STATUS; }
static inline int gh_reply_error(void) { return REDIS_REPLY_ERROR; }

#endif
