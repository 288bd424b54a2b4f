/*
 * dict_unix - unix:passwd.byname and unix:group.byname, the system user
 * and group databases as lookup tables (Postfix dict_unix).
 *
 * The value is the entry as a passwd(5) or group(5) line, exactly as
 * Postfix builds it, so tables and scripts written for Postfix see the
 * same text:
 *   passwd.byname  name:passwd:uid:gid:gecos:dir:shell
 *   group.byname   name:passwd:gid:member,member,...
 * Keys are folded to lowercase like every fixed-key table (Postfix does
 * too, although Unix names are case-sensitive).  The tables cannot be
 * listed (Postfix cannot either).
 *
 * "Not found" must not be confused with "cannot read the database": in a
 * chroot without /etc/passwd, or with a broken NSS service, every user
 * would seem not to exist and smtpd would reject mail for real users.
 * So, until the database has answered once, a miss is double-checked:
 * uid/gid 0 must be found (Postfix's sanity check), and /etc/passwd or
 * /etc/group must be readable.  The second test is ours: NSS modules
 * such as systemd's synthesize root without any file, so in a chroot
 * Postfix's check alone passes while every real user is missing.  This
 * matters more to Postern than to Postfix, because proxy: opens the table
 * in the daemon itself (dict_proxy.c).  If either test fails the lookup
 * is an error.  Errors from getpwnam_r()/getgrnam_r() other than "no such
 * entry" are lookup errors as well.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/dict.h"
#include "util/xmalloc.h"

#define DICT_UNIX_BUF_MIN   1024
#define DICT_UNIX_BUF_MAX   (1024 * 1024)       /* ERANGE growth limit */

typedef struct DICT_UNIX DICT_UNIX;

struct DICT_UNIX {
    DICT    dict;
    int     (*fetch)(DICT_UNIX *du, const char *key);
    const char *file;                   /* the sanity check's file */
    STRBUF *value;                      /* the last entry found */
    char   *buf;                        /* scratch for the _r functions */
    size_t  buf_size;
    int     sane;                       /* the database answered once */
};

/* Errors that glibc and others use for "no such entry". */
static int dict_unix_notfound_errno(int err)
{
    return err == 0 || err == ENOENT || err == ESRCH || err == EBADF
        || err == EPERM;
}

/* Grow the scratch buffer after ERANGE; -1 when it would grow too big. */
static int dict_unix_grow(DICT_UNIX *du)
{
    if (du->buf_size >= DICT_UNIX_BUF_MAX)
        return -1;
    du->buf_size *= 2;
    du->buf = xrealloc(du->buf, du->buf_size);
    return 0;
}

/*
 * Each lookup function: DICT_FOUND with du->value set, DICT_NOTFOUND, or
 * DICT_ERROR with the reason in the table.  'key' NULL looks up id 0,
 * for the sanity check.
 */
static int dict_unix_getpw(DICT_UNIX *du, const char *key)
{
    struct passwd pwbuf;
    struct passwd *pw;
    int rc;

    for (;;) {
        pw = NULL;
        rc = key ? getpwnam_r(key, &pwbuf, du->buf, du->buf_size, &pw)
            : getpwuid_r(0, &pwbuf, du->buf, du->buf_size, &pw);
        if (rc != ERANGE)
            break;
        if (dict_unix_grow(du) < 0)
            return dict_fail(&du->dict, "unix:passwd.byname: entry for "
                             "\"%s\" too large", key ? key : "uid 0");
    }
    if (pw == NULL) {
        if (dict_unix_notfound_errno(rc))
            return DICT_NOTFOUND;
        return dict_fail(&du->dict, "unix:passwd.byname: lookup \"%s\": %s",
                         key ? key : "uid 0", strerror(rc));
    }
    strbuf_printf(du->value, "%s:%s:%ld:%ld:%s:%s:%s", pw->pw_name,
                  pw->pw_passwd, (long) pw->pw_uid, (long) pw->pw_gid,
                  pw->pw_gecos, pw->pw_dir, pw->pw_shell);
    return DICT_FOUND;
}

static int dict_unix_getgr(DICT_UNIX *du, const char *key)
{
    struct group grbuf;
    struct group *gr;
    int rc;

    for (;;) {
        gr = NULL;
        rc = key ? getgrnam_r(key, &grbuf, du->buf, du->buf_size, &gr)
            : getgrgid_r(0, &grbuf, du->buf, du->buf_size, &gr);
        if (rc != ERANGE)
            break;
        if (dict_unix_grow(du) < 0)
            return dict_fail(&du->dict, "unix:group.byname: entry for "
                             "\"%s\" too large", key ? key : "gid 0");
    }
    if (gr == NULL) {
        if (dict_unix_notfound_errno(rc))
            return DICT_NOTFOUND;
        return dict_fail(&du->dict, "unix:group.byname: lookup \"%s\": %s",
                         key ? key : "gid 0", strerror(rc));
    }
    strbuf_printf(du->value, "%s:%s:%ld:", gr->gr_name, gr->gr_passwd,
                  (long) gr->gr_gid);
    for (char **mem = gr->gr_mem; mem && *mem; mem++)
        strbuf_printf_append(du->value, "%s%s", mem == gr->gr_mem ? "" : ",",
                             *mem);
    return DICT_FOUND;
}

static int dict_unix_lookup(DICT *d, const char *key, const char **value_r)
{
    DICT_UNIX *du = (DICT_UNIX *) d;
    int rc = du->fetch(du, key);

    if (rc == DICT_NOTFOUND && !du->sane) {
        /* Is the user missing, or the whole database? */
        int root = du->fetch(du, NULL);

        if (root == DICT_ERROR)
            return root;
        if (root != DICT_FOUND)
            return dict_fail(d, "unix:%s: cannot access the system "
                             "database: id 0 is not found either", d->name);
        if (access(du->file, R_OK) < 0)
            return dict_fail(d, "unix:%s: cannot access the system "
                             "database: %s: %s", d->name, du->file,
                             strerror(errno));
    }
    if (rc == DICT_FOUND) {
        du->sane = 1;
        *value_r = du->value->data;
    } else if (rc == DICT_NOTFOUND) {
        du->sane = 1;
    }
    return rc;
}

static void dict_unix_close(DICT *d)
{
    DICT_UNIX *du = (DICT_UNIX *) d;

    strbuf_free(&du->value);
    free(du->buf);
    dict_free(d);
}

DICT *dict_unix_open(const char *name, int flags, STRBUF *err)
{
    static const struct {
        const char *name;
        int     (*fetch)(DICT_UNIX *du, const char *key);
        const char *file;
    } maps[] = {
        {"passwd.byname", dict_unix_getpw, "/etc/passwd"},
        {"group.byname", dict_unix_getgr, "/etc/group"},
    };
    DICT_UNIX *du;
    size_t i;
    long size;

    for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
        if (strcmp(name, maps[i].name) == 0)
            break;
    if (i == sizeof(maps) / sizeof(maps[0])) {
        strbuf_printf(err, "unix:%s: unknown table (known: passwd.byname, "
                      "group.byname)", name);
        return NULL;
    }
    du = (DICT_UNIX *) dict_alloc("unix", name, sizeof(*du),
                                  flags | DICT_FLAG_FIXED);
    du->fetch = maps[i].fetch;
    du->file = maps[i].file;
    du->value = strbuf_alloc(128);
    size = sysconf(maps[i].fetch == dict_unix_getpw ? _SC_GETPW_R_SIZE_MAX
                   : _SC_GETGR_R_SIZE_MAX);
    du->buf_size = size > DICT_UNIX_BUF_MIN && size <= DICT_UNIX_BUF_MAX
        ? (size_t) size : DICT_UNIX_BUF_MIN;
    du->buf = xmalloc(du->buf_size);
    du->dict.lookup = dict_unix_lookup;
    du->dict.close = dict_unix_close;
    return &du->dict;
}
