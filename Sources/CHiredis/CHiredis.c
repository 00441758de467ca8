/* The parts of hiredis that Swift cannot reach: its libevent adapter is static C. */
#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "CHiredis.h"

redisAsyncContext *gh_redis_connect(struct event_base *base, const char *host, int port,
                                    char *err, size_t err_len) {
    if (err_len > 0) err[0] = '\0';
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (ac == NULL) {
        if (err_len > 0) snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (ac->err) {
        /* Failed at once (e.g. ECONNREFUSED on loopback): no callback will ever fire. */
        if (err_len > 0) snprintf(err, err_len, "%s", ac->c.errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (redisLibeventAttach(ac, base) != REDIS_OK) {
        if (err_len > 0) snprintf(err, err_len, "cannot attach to the event loop");
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

void gh_redis_detach(redisAsyncContext *ac) {
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    ac->data = NULL;
}

void gh_redis_free_silently(redisAsyncContext *ac) {
    gh_redis_detach(ac);
    redisAsyncFree(ac);
}

const char *gh_redis_errstr(const redisAsyncContext *ac) {
    return ac->c.errstr;
}
