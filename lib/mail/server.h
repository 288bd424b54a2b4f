/*
 * server - the daemon skeletons; a service's own folder holds only its
 * protocol (Postfix single_server / trigger_server, Dovecot master_service).
 *
 * server_main() does everything a service process needs before and
 * around its protocol: options from master, main.cf and -o overrides,
 * logging, chdir to the queue directory, the privileged pre_init, chroot
 * and the switch to mail_owner (verified), the post_init, then:
 *
 *   SERVER_SINGLE  accept one client at a time on the inherited
 *                  listeners, tell master busy/free, exit after max_use
 *                  clients or max_idle seconds without one;
 *   SERVER_EVENT   run an event loop (events.h); each accepted connection
 *                  goes to ops->accept, or, for trigger services (no
 *                  ops->accept), its first bytes go to ops->trigger and
 *                  the connection is closed: master's wakeup timer and
 *                  other services poke such a service that way (qmgr,
 *                  pickup).  No idle exit.
 *
 * SIGTERM from master: a single server finishes its client and exits; an
 * event server calls ops->pre_exit and exits.
 */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <netinet/in.h>
#include <sys/types.h>
#include <sys/socket.h>

typedef struct SERVER_CLIENT {
    int     fd;
    int     wfd;                        /* replies: fd, or stdout (-S) */
    int     family;                     /* AF_INET, AF_INET6, AF_UNIX */
    char    addr[64];                   /* numeric address or "local" */
    int     port;
    char    local_addr[64];             /* the address it connected to */
    int     local_port;
} SERVER_CLIENT;

typedef enum { SERVER_SINGLE, SERVER_EVENT } SERVER_KIND;

typedef struct SERVER_OPS {
    SERVER_KIND kind;
    /* As root (when started as root), before chroot: open keys, tables. */
    void    (*pre_init)(const char *service, char **argv);
    /* After privileges are dropped; the queue directory is the cwd. */
    void    (*post_init)(const char *service, char **argv);
    /* SERVER_SINGLE: serve one client; the skeleton closes client->fd. */
    void    (*serve)(SERVER_CLIENT *client, const char *service, char **argv);
    /* SERVER_EVENT: a new connection; the callee owns client->fd. */
    void    (*accept)(SERVER_CLIENT *client, const char *service,
                      char **argv);
    /* SERVER_EVENT trigger services: up to 64 bytes a poker sent. */
    void    (*trigger)(const char *buf, size_t len, const char *service,
                       char **argv);
    /*
     * SERVER_SINGLE, optional: called between clients; returns in how many
     * milliseconds it wants to be called again (0: not before the next
     * client).  The smtp client closes its cached connections here.
     */
    int     (*idle)(void);
    /* Before a normal exit. */
    void    (*pre_exit)(void);
} SERVER_OPS;

void    server_main(int argc, char **argv, const SERVER_OPS *ops)
        __attribute__((noreturn));

/*
 * In a process forked to serve part of a session: close the listeners
 * and master's status pipe (only the parent talks to master), and let
 * SIGTERM end it at once.
 */
void    server_child_detach(void);

/* The service name (-n) and whether a stop was requested (SIGTERM). */
const char *server_service_name(void);
int     server_stopping(void);

/*
 * The directory the process will chroot to after pre_init (and is in
 * after it), or NULL: pre_init code that opens files later, by name,
 * must name them as seen from inside.
 */
const char *server_chroot(void);

/*
 * Stand-alone mode (-S, SERVER_SINGLE only): no master; serve one client
 * on stdin/stdout as the invoking user, then exit (sendmail -bs).
 */
int     server_standalone(void);

/*
 * server_drop_privileges - chroot (if root_dir) and become user/group,
 * verified; fatal on any failure.  Exposed for tests and the local
 * delivery agent's per-user switch.
 */
void    server_drop_privileges(const char *user, const char *root_dir);

/*
 * The same for any ids, not fatal: chroot (if root_dir), then become
 * uid/gid (plus extra_gid unless it is -1), verified.  0, or -1 after a
 * warning.
 */
int     server_become(uid_t uid, gid_t gid, gid_t extra_gid,
                      const char *root_dir);

#endif
