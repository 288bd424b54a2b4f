/*
 * master_service - services from master.cf: listeners, process accounting,
 * throttling and wakeup timers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/master_proto.h"
#include "mail/params.h"
#include "mail/trigger.h"
#include "master.h"
#include "util/events.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define MASTER_BACKLOG  128

MASTER_SERV *master_services;
MASTER_SERV *master_retired;

static void master_listen_event(int event, void *context);
static void master_wakeup_event(int event, void *context);
static void master_unthrottle(int event, void *context);

/* --- listeners -------------------------------------------------------- */

static int master_set_cloexec(int fd)
{
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Listen on one resolved address; -1 with err set. */
static int master_listen_inet(const struct addrinfo *ai, STRBUF *name,
                              STRBUF *err)
{
    char host[NI_MAXHOST];
    char port[NI_MAXSERV];
    int on = 1;
    int fd;

    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), port,
                    sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        strcpy(host, "?");              /* fits */
    strbuf_printf(name, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
                  host, port);
    if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        strbuf_printf(err, "socket for %s: %s", name->data, strerror(errno));
        return -1;
    }
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ai->ai_family == AF_INET6)
        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0
        || listen(fd, MASTER_BACKLOG) < 0) {
        strbuf_printf(err, "bind %s: %s", name->data, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Split "host:port", "[v6]:port" or "port"; host is NULL for the last. */
static int master_split_service(const char *service, char **host_r,
                                char **port_r)
{
    const char *colon;

    *host_r = NULL;
    if (*service == '[') {
        const char *close = strchr(service, ']');

        if (close == NULL || close[1] != ':' || close[2] == 0)
            return -1;
        *host_r = xstrndup(service + 1, (size_t) (close - service - 1));
        *port_r = xstrdup(close + 2);
        return 0;
    }
    if ((colon = strrchr(service, ':')) != NULL) {
        if (colon == service || colon[1] == 0
            || strchr(service, ':') != colon)
            return -1;
        *host_r = xstrndup(service, (size_t) (colon - service));
        *port_r = xstrdup(colon + 1);
        return 0;
    }
    *port_r = xstrdup(service);
    return 0;
}

static int master_protocol_wanted(int family)
{
    ARGV *protos = argv_split(var_inet_protocols, ", \t");
    int want = 0;

    for (size_t i = 0; i < protos->argc; i++) {
        const char *p = protos->argv[i];

        if (strcasecmp(p, "all") == 0
            || (strcasecmp(p, "ipv4") == 0 && family == AF_INET)
            || (strcasecmp(p, "ipv6") == 0 && family == AF_INET6))
            want = 1;
    }
    argv_free(&protos);
    return want;
}

static void master_add_listener(MASTER_SERV *serv, int fd, const char *name)
{
    serv->listen_fds = xreallocarray(serv->listen_fds,
                                     (size_t) serv->listen_count + 1,
                                     sizeof(int));
    serv->listen_names = xreallocarray(serv->listen_names,
                                       (size_t) serv->listen_count + 1,
                                       sizeof(char *));
    serv->listen_fds[serv->listen_count] = fd;
    serv->listen_names[serv->listen_count] = xstrdup(name);
    serv->listen_count++;
}

/* Resolve one host (NULL: wildcard) and listen on each address. */
static int master_listen_host(MASTER_SERV *serv, const char *host,
                              const char *port, STRBUF *err)
{
    STRBUF *name = strbuf_alloc(64);
    struct addrinfo hints;
    struct addrinfo *res;
    struct addrinfo *ai;
    int rc;
    int count = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | (host ? 0 : AI_ADDRCONFIG);
    hints.ai_family = AF_UNSPEC;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        strbuf_printf(err, "service %s: %s%s%s: %s", serv->name,
                      host ? host : "", host ? ":" : "", port,
                      gai_strerror(rc));
        strbuf_free(&name);
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int fd;

        if (!master_protocol_wanted(ai->ai_family))
            continue;
        if ((fd = master_listen_inet(ai, name, err)) < 0) {
            /* No IPv6 on this host is not an error for a wildcard. */
            if (host == NULL && ai->ai_family == AF_INET6
                && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
                continue;
            freeaddrinfo(res);
            strbuf_free(&name);
            return -1;
        }
        master_add_listener(serv, fd, name->data);
        count++;
    }
    freeaddrinfo(res);
    strbuf_free(&name);
    if (count == 0) {
        strbuf_printf(err, "service %s: no address to listen on (check "
                      "inet_interfaces and inet_protocols)", serv->name);
        return -1;
    }
    return 0;
}

static int master_listen_inet_service(MASTER_SERV *serv, STRBUF *err)
{
    char *host;
    char *port;
    int rc = 0;

    if (master_split_service(serv->name, &host, &port) < 0) {
        strbuf_printf(err, "service %s: bad address, need [host:]port",
                      serv->name);
        return -1;
    }
    if (host) {
        rc = master_listen_host(serv, host, port, err);
    } else if (strcasecmp(var_inet_interfaces, "all") == 0) {
        rc = master_listen_host(serv, NULL, port, err);
    } else {
        ARGV *ifaces = argv_split(var_inet_interfaces, ", \t");

        for (size_t i = 0; rc == 0 && i < ifaces->argc; i++) {
            if (strcasecmp(ifaces->argv[i], "loopback-only") == 0) {
                if (master_protocol_wanted(AF_INET))
                    rc = master_listen_host(serv, "127.0.0.1", port, err);
                if (rc == 0 && master_protocol_wanted(AF_INET6))
                    rc = master_listen_host(serv, "::1", port, err);
            } else {
                rc = master_listen_host(serv, ifaces->argv[i], port, err);
            }
        }
        argv_free(&ifaces);
    }
    free(host);
    free(port);
    return rc;
}

static int master_listen_unix(MASTER_SERV *serv, STRBUF *err)
{
    STRBUF *path = strbuf_alloc(64);
    struct sockaddr_un sun;
    int fd = -1;

    strbuf_printf(path, "%s/%s", serv->private_ ? "private" : "public",
                  serv->name);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (path->len >= sizeof(sun.sun_path)) {
        strbuf_printf(err, "service %s: socket name too long", serv->name);
        goto fail;
    }
    memcpy(sun.sun_path, path->data, path->len + 1);
    (void) unlink(path->data);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0
        || bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0
        || chmod(path->data, 0666) < 0
        || listen(fd, MASTER_BACKLOG) < 0) {
        strbuf_printf(err, "service %s: listen on %s: %s", serv->name,
                      path->data, strerror(errno));
        goto fail;
    }
    master_add_listener(serv, fd, path->data);
    strbuf_free(&path);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    strbuf_free(&path);
    return -1;
}

/* The old service with the same key whose listeners can be taken over. */
static MASTER_SERV *master_find_adoptable(const MASTER_SERV *serv,
                                          MASTER_SERV *old)
{
    for (; old; old = old->next)
        if (strcmp(old->key, serv->key) == 0 && old->listen_count > 0
            && old->private_ == serv->private_)
            return old;
    return NULL;
}

static void master_adopt_listeners(MASTER_SERV *serv, MASTER_SERV *old)
{
    serv->listen_fds = old->listen_fds;
    serv->listen_names = old->listen_names;
    serv->listen_count = old->listen_count;
    old->listen_fds = NULL;
    old->listen_names = NULL;
    old->listen_count = 0;
    old->listening = 0;
}

/* --- building --------------------------------------------------------- */

static MASTER_SERV *master_service_alloc(const MASTER_ENT *ent)
{
    MASTER_SERV *serv = xcalloc(1, sizeof(*serv));
    STRBUF *buf = strbuf_alloc(64);

    strbuf_printf(buf, "%s/%s", ent->service, ent->type);
    serv->key = xstrdup(buf->data);
    serv->name = xstrdup(ent->service);
    serv->type = xstrdup(ent->type);
    serv->private_ = ent->private_;
    serv->unpriv = ent->unpriv;
    serv->chroot = ent->chroot;
    serv->wakeup = ent->wakeup;
    serv->wakeup_on_use = ent->wakeup_on_use;
    serv->max_proc = ent->maxproc < 0 ? var_default_process_limit
        : ent->maxproc;
    strbuf_printf(buf, "%s/%s", var_daemon_directory, ent->args->argv[0]);
    serv->path = xstrdup(buf->data);

    /* The child's argv: see master_proto.h. */
    serv->args = argv_alloc(16);
    argv_add(serv->args, ent->args->argv[0]);
    argv_add(serv->args, "-c");
    argv_add(serv->args, master_config_dir);
    argv_add(serv->args, "-m");
    argv_add(serv->args, master_running_cf);
    argv_add(serv->args, "-n");
    argv_add(serv->args, ent->service);
    argv_add(serv->args, "-t");
    argv_add(serv->args, ent->type);
    if (serv->unpriv)
        argv_add(serv->args, "-U");
    if (serv->chroot)
        argv_add(serv->args, "-C");
    if (msg_verbose)
        argv_add(serv->args, "-v");
    /*
     * Then the master.cf command line as written: its options (-o
     * name=value, -v) are parsed by the skeleton's getopt, and what
     * follows the first non-option belongs to the program (Postfix).
     */
    for (size_t i = 1; i < ent->args->argc; i++)
        argv_add(serv->args, ent->args->argv[i]);
    serv->status_fd[0] = serv->status_fd[1] = -1;
    strbuf_free(&buf);
    return serv;
}

void master_service_close_listeners(MASTER_SERV *serv)
{
    for (int i = 0; i < serv->listen_count; i++) {
        event_disable_readwrite(serv->listen_fds[i]);
        (void) close(serv->listen_fds[i]);
        free(serv->listen_names[i]);
    }
    free(serv->listen_fds);
    free(serv->listen_names);
    serv->listen_fds = NULL;
    serv->listen_names = NULL;
    serv->listen_count = 0;
    serv->listening = 0;
}

void master_service_free(MASTER_SERV *serv)
{
    master_service_close_listeners(serv);
    for (int i = 0; i < 2; i++) {
        if (serv->status_fd[i] >= 0) {
            if (i == 0)
                event_disable_readwrite(serv->status_fd[0]);
            (void) close(serv->status_fd[i]);
        }
    }
    event_cancel_timer(master_wakeup_event, serv);
    event_cancel_timer(master_unthrottle, serv);
    free(serv->key);
    free(serv->name);
    free(serv->type);
    free(serv->path);
    argv_free(&serv->args);
    free(serv);
}

/*
 * Build the service list for a master.cf.  Listeners of services that
 * exist in old (a reload) are taken over, so that the port never closes;
 * the others are opened here.  Nothing in old changes unless every new
 * listener could be opened.
 */
int master_services_build(const MASTERCF *cf, MASTER_SERV **list_r,
                          MASTER_SERV *old, STRBUF *err)
{
    MASTER_SERV *head = NULL;
    MASTER_SERV **tail = &head;
    MASTER_SERV *serv;

    for (size_t i = 0; i < cf->count; i++) {
        int rc;

        serv = master_service_alloc(cf->entries[i]);
        *tail = serv;
        tail = &serv->next;
        if (master_find_adoptable(serv, old))
            continue;
        rc = strcmp(serv->type, "inet") == 0
            ? master_listen_inet_service(serv, err)
            : master_listen_unix(serv, err);
        if (rc < 0) {
            while (head) {
                MASTER_SERV *next = head->next;

                master_service_free(head);
                head = next;
            }
            return -1;
        }
    }
    for (serv = head; serv; serv = serv->next) {
        MASTER_SERV *from = master_find_adoptable(serv, old);

        if (from && serv->listen_count == 0) {
            event_disable_readwrite(from->listen_fds[0]);
            for (int i = 0; i < from->listen_count; i++)
                event_disable_readwrite(from->listen_fds[i]);
            master_adopt_listeners(serv, from);
        }
    }
    *list_r = head;
    return 0;
}

/* --- running ---------------------------------------------------------- */

void master_service_start(MASTER_SERV *serv)
{
    if (pipe2(serv->status_fd, O_CLOEXEC) < 0)
        msg_fatal("pipe: %m");
    /* Status reads must never block master. */
    (void) fcntl(serv->status_fd[0], F_SETFL,
                 fcntl(serv->status_fd[0], F_GETFL) | O_NONBLOCK);
    event_enable_read(serv->status_fd[0], master_status_event, serv);
    for (int i = 0; i < serv->listen_count; i++) {
        (void) master_set_cloexec(serv->listen_fds[i]);
        msg_info("service %s: listening on %s", serv->key,
                 serv->listen_names[i]);
    }
    master_avail_update(serv);
    if (serv->wakeup > 0 && !serv->wakeup_on_use)
        event_request_timer(master_wakeup_event, serv, 0);
}

void master_service_retire(MASTER_SERV *serv)
{
    serv->retired = 1;
    event_cancel_timer(master_wakeup_event, serv);
    event_cancel_timer(master_unthrottle, serv);
    master_service_close_listeners(serv);
}

/* Watch the listeners only when a new process would be needed. */
void master_avail_update(MASTER_SERV *serv)
{
    int want = !serv->retired && !serv->throttled && !master_stopping
        && serv->avail_proc == 0
        && (serv->max_proc == 0 || serv->total_proc < serv->max_proc);

    if (want == serv->listening)
        return;
    for (int i = 0; i < serv->listen_count; i++) {
        if (want)
            event_enable_read(serv->listen_fds[i], master_listen_event, serv);
        else
            event_disable_readwrite(serv->listen_fds[i]);
    }
    serv->listening = want;
}

static void master_listen_event(int event, void *context)
{
    MASTER_SERV *serv = context;

    (void) event;
    if (serv->avail_proc == 0 && !serv->throttled)
        master_spawn(serv);
}

static void master_unthrottle(int event, void *context)
{
    MASTER_SERV *serv = context;

    (void) event;
    serv->throttled = 0;
    msg_info("service %s: resuming after throttle", serv->key);
    master_avail_update(serv);
}

/*
 * A process of this service failed at start-up: wait before forking it
 * again instead of looping (Postfix "bad command startup -- throttling").
 */
void master_throttle(MASTER_SERV *serv)
{
    if (serv->throttled)
        return;
    serv->throttled = 1;
    msg_warn("%s: bad command startup -- throttling for %d seconds",
             serv->path, var_service_throttle_time);
    master_avail_update(serv);
    event_request_timer(master_unthrottle, serv,
                        (long long) var_service_throttle_time * 1000);
}

/* Poke a service with a wakeup time, so that it runs periodically. */
static void master_wakeup_event(int event, void *context)
{
    MASTER_SERV *serv = context;
    char trigger = TRIGGER_WAKEUP;

    (void) event;
    if (strcmp(serv->type, "unix") == 0 && !master_stopping
        && trigger_send(serv->private_ ? "private" : "public", serv->name,
                        &trigger, 1) < 0)
        msg_warn("service %s: wakeup: %m", serv->key);
    event_request_timer(master_wakeup_event, serv,
                        (long long) serv->wakeup * 1000);
}
