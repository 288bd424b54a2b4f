/*
 * master.h - the supervisor's internal interfaces.
 */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <sys/types.h>

#include "mail/mastercf.h"
#include "util/argv.h"
#include "util/strbuf.h"

typedef struct MASTER_SERV {
    char   *key;                        /* "service/type" */
    char   *name;                       /* the master.cf service field */
    char   *type;                       /* inet or unix */
    int     private_;
    int     unpriv;
    int     chroot;
    int     wakeup;                     /* seconds, 0 = none */
    int     wakeup_on_use;
    int     max_proc;                   /* 0 = no limit */
    char   *path;                       /* $daemon_directory/command */
    ARGV   *args;                       /* argv for the child, without path */
    int    *listen_fds;
    char  **listen_names;               /* for logs: "127.0.0.1:25" */
    int     listen_count;
    int     status_fd[2];               /* children report busy/free */
    int     total_proc;
    int     avail_proc;
    int     throttled;
    int     used;                       /* has had a process */
    int     retired;                    /* replaced by a reload */
    int     listening;                  /* listen fds in the event loop */
    struct MASTER_SERV *next;
} MASTER_SERV;

typedef struct MASTER_PROC {
    pid_t   pid;
    MASTER_SERV *serv;
    int     avail;
    int     use_count;                  /* TAKEN reports so far */
    struct MASTER_PROC *next;
} MASTER_PROC;

extern MASTER_SERV *master_services;    /* current generation */
extern MASTER_SERV *master_retired;     /* old, waiting for children */
extern MASTER_PROC *master_procs;
extern const char *master_config_dir;
extern char *master_running_cf;
extern int master_stopping;

/* master_service.c */
int     master_services_build(const MASTERCF *cf, MASTER_SERV **list_r,
                              MASTER_SERV *old, STRBUF *err);
void    master_service_start(MASTER_SERV *serv);
void    master_service_retire(MASTER_SERV *serv);
void    master_service_free(MASTER_SERV *serv);
void    master_service_close_listeners(MASTER_SERV *serv);
void    master_avail_update(MASTER_SERV *serv);
void    master_throttle(MASTER_SERV *serv);

/* master_spawn.c */
void    master_spawn(MASTER_SERV *serv);
void    master_reap(void);
void    master_status_event(int event, void *context);
void    master_kill_all(MASTER_SERV *list, int sig);
int     master_proc_count(void);


#endif
