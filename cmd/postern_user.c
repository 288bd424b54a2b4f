/*
 * postern user - the virtual mail users: their passwords in the SASL
 * store (sasl_db_path) and their mailboxes in virtual_mailbox_maps, kept
 * in step.
 *
 *   postern user add USER@DOMAIN [MAILBOX]
 *   postern user passwd USER@DOMAIN
 *   postern user del USER@DOMAIN
 *   postern user list [DOMAIN]
 *
 * The password comes from standard input (one line) or, on a terminal,
 * from a prompt without echo, asked twice; never from the command line,
 * where other users could see it in ps(1).  DOMAIN must be one of
 * virtual_mailbox_domains, and virtual_mailbox_maps must hold a table
 * with a text source this command can edit (lmdb:, rebuilt after each
 * change, or texthash:).  The mailbox defaults to DOMAIN/USER/ (a Maildir
 * under virtual_mailbox_base).  Deleting a user leaves the mail on disk.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "mail/dict.h"
#include "mail/dict_lmdb.h"
#include "mail/match_list.h"
#include "mail/params.h"
#include "postern.h"
#include "sasl/xsasl.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/strbuf.h"
#include "util/xmalloc.h"
#include "util/file_atomic.h"

#define USER_PASSWORD_MAX   1024

static void user_usage(void)
{
    fprintf(stderr,
            "usage: postern user add USER@DOMAIN [MAILBOX]\n"
            "       postern user passwd USER@DOMAIN\n"
            "       postern user del USER@DOMAIN\n"
            "       postern user list [DOMAIN]\n"
            "The password is read from standard input, or asked for on a "
            "terminal.\n");
    exit(2);
}

/* --- the mailbox table ------------------------------------------------- */

/* The table of virtual_mailbox_maps that postern user keeps. */
typedef struct USER_TABLE {
    char   *type;                       /* "lmdb" or "texthash" */
    char   *source;                     /* the text file */
} USER_TABLE;

static void user_table(USER_TABLE *t)
{
    ARGV *list = argv_split(var_virtual_mailbox_maps, ", \t\r\n");

    for (size_t i = 0; i < list->argc; i++) {
        const char *spec = list->argv[i];
        const char *colon = strchr(spec, ':');

        if (colon && (strncmp(spec, "lmdb:", 5) == 0
                      || strncmp(spec, "texthash:", 9) == 0)) {
            t->type = xstrndup(spec, (size_t) (colon - spec));
            t->source = xstrdup(colon + 1);
            argv_free(&list);
            return;
        }
    }
    argv_free(&list);
    msg_fatal("virtual_mailbox_maps (\"%s\") has no lmdb: or texthash: table "
              "whose source file postern user could keep",
              var_virtual_mailbox_maps);
}

/*
 * The entries of a postmap(1) source, read as cfline/dict_source read
 * them: blank lines and lines whose first non-blank character is '#' are
 * skipped (also between an entry and its continuation lines); a line
 * that starts with white space continues the entry before it.
 */
typedef struct USER_ENTRY {
    size_t  start;                      /* byte offsets in the file */
    size_t  end;
    char   *key;
    char   *value;
} USER_ENTRY;

typedef struct USER_SOURCE {
    STRBUF *text;
    USER_ENTRY *entries;
    size_t  count;
    int     exists;
    mode_t  mode;
} USER_SOURCE;

/* A line of the source that the table skips (blank or a comment). */
static int user_line_skipped(const char *line, size_t len)
{
    size_t lead = 0;

    while (lead < len && isspace((unsigned char) line[lead]))
        lead++;
    return lead == len || line[lead] == '#';
}

static void user_source_read(const char *path, USER_SOURCE *src)
{
    FILE *fp;
    char buf[8192];
    size_t n;
    size_t pos = 0;
    struct stat st;
    USER_ENTRY *cur = NULL;

    memset(src, 0, sizeof(*src));
    src->text = strbuf_alloc(4096);
    src->mode = 0644;
    if ((fp = fopen(path, "r")) == NULL) {
        if (errno != ENOENT)
            msg_fatal("open %s: %m", path);
        return;
    }
    src->exists = 1;
    if (fstat(fileno(fp), &st) == 0)
        src->mode = st.st_mode & 07777;
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        strbuf_append(src->text, buf, n);
    if (ferror(fp))
        msg_fatal("read %s: %m", path);
    fclose(fp);
    /* As the table builder; the line scan below relies on it, too. */
    if (memchr(src->text->data, 0, src->text->len) != NULL)
        msg_fatal("%s: NUL byte in the file", path);

    while (pos < src->text->len) {
        const char *line = src->text->data + pos;
        size_t len = strcspn(line, "\n");
        size_t next = pos + len + (line[len] == '\n');
        size_t lead = 0;

        while (len > 0 && isspace((unsigned char) line[len - 1]))
            len--;
        while (lead < len && isspace((unsigned char) line[lead]))
            lead++;
        if (user_line_skipped(line, len)) {
            /* blank or comment: neither ends nor continues an entry */
        } else if (lead > 0 && cur) {
            /* A continuation line. */
            STRBUF *v = strbuf_alloc(64);

            strbuf_printf(v, "%s%s%.*s", cur->value, *cur->value ? " " : "",
                          (int) (len - lead), line + lead);
            free(cur->value);
            cur->value = strbuf_export(&v);
            cur->end = next;
        } else {
            const char *key = line + lead;
            const char *val = key;

            while (val < line + len && !isspace((unsigned char) *val))
                val++;
            src->entries = xreallocarray(src->entries, src->count + 1,
                                         sizeof(USER_ENTRY));
            cur = &src->entries[src->count++];
            cur->start = pos;
            cur->end = next;
            cur->key = xstrndup(key, (size_t) (val - key));
            while (val < line + len && isspace((unsigned char) *val))
                val++;
            cur->value = xstrndup(val, (size_t) (line + len - val));
        }
        pos = next;
    }
}

static void user_source_free(USER_SOURCE *src)
{
    for (size_t i = 0; i < src->count; i++) {
        free(src->entries[i].key);
        free(src->entries[i].value);
    }
    free(src->entries);
    strbuf_free(&src->text);
}

/* The end of every subcommand: the table, its source and SASL. */
static void user_done(USER_TABLE *t, USER_SOURCE *src)
{
    user_source_free(src);
    free(t->type);
    free(t->source);
    xsasl_server_done();
}

static USER_ENTRY *user_source_find(USER_SOURCE *src, const char *key)
{
    for (size_t i = 0; i < src->count; i++)
        if (strcasecmp(src->entries[i].key, key) == 0)
            return &src->entries[i];
    return NULL;
}

/* Write the new source and rebuild the table from it. */
static void user_source_commit(const USER_TABLE *t, const USER_SOURCE *src,
                               const STRBUF *text)
{
    STRBUF *err = strbuf_alloc(128);

    if (file_write_atomic(t->source, text->data, text->len, src->mode, err) < 0)
        msg_fatal("%s", err->data);
    if (strcmp(t->type, "lmdb") == 0
        && dict_lmdb_build(t->source, NULL, DICT_FLAG_DEFAULT, err) < 0)
        msg_fatal("%s (the source was changed; fix it and run postern map "
                  "lmdb:%s)", err->data, t->source);
    strbuf_free(&err);
}

/* --- addresses and passwords ------------------------------------------ */

static MATCH_LIST *user_domains;

/* Does str hold a space or a control character (a table line breaker)? */
static int user_has_ctl(const char *str)
{
    for (const unsigned char *cp = (const unsigned char *) str; *cp; cp++)
        if (*cp <= ' ' || *cp == 0x7f)
            return 1;
    return 0;
}

/* Check USER@DOMAIN; returns the domain part. */
static const char *user_check_address(const char *addr)
{
    const char *at = strrchr(addr, '@');

    if (at == NULL || at == addr || at[1] == 0)
        msg_fatal_status(2, "%s: expected USER@DOMAIN", addr);
    if (user_has_ctl(addr) || strpbrk(addr, ":,"))
        msg_fatal_status(2, "%s: an address without spaces, control "
                         "characters, ':' or ','", addr);
    if (user_domains == NULL)
        user_domains = match_list_domains("virtual_mailbox_domains",
                                          var_virtual_mailbox_domains);
    switch (match_list_domain(user_domains, at + 1)) {
    case MATCH_YES:
        return at + 1;
    case MATCH_ERROR:
        msg_fatal("virtual_mailbox_domains: %s",
                  match_list_error(user_domains));
    default:
        msg_fatal("%s is not a virtual mailbox domain (virtual_mailbox_domains "
                  "= %s)", at + 1, var_virtual_mailbox_domains);
    }
}

/* One line from stdin, or twice from a terminal without echo. */
static char *user_read_password(void)
{
    char buf[USER_PASSWORD_MAX + 2];
    char again[USER_PASSWORD_MAX + 2];
    int tty = isatty(STDIN_FILENO);
    struct termios saved;
    struct termios quiet;
    size_t len;

    if (tty) {
        if (tcgetattr(STDIN_FILENO, &saved) < 0)
            msg_fatal("tcgetattr: %m");
        quiet = saved;
        quiet.c_lflag &= (tcflag_t) ~ECHO;
        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs("Password: ", stderr);
    }
    if (fgets(buf, sizeof(buf), stdin) == NULL)
        buf[0] = 0;
    if (tty) {
        fputs("\nRetype password: ", stderr);
        if (fgets(again, sizeof(again), stdin) == NULL)
            again[0] = 0;
        fputs("\n", stderr);
        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        if (strcmp(buf, again) != 0) {
            memset(buf, 0, sizeof(buf));
            memset(again, 0, sizeof(again));
            msg_fatal_status(1, "the passwords differ");
        }
        memset(again, 0, sizeof(again));
    }
    len = strcspn(buf, "\r\n");
    if (len > USER_PASSWORD_MAX)
        msg_fatal_status(1, "password longer than %d bytes", USER_PASSWORD_MAX);
    buf[len] = 0;
    if (len == 0)
        msg_fatal_status(1, "empty password");
    {
        char *pw = xstrdup(buf);

        memset(buf, 0, sizeof(buf));
        return pw;
    }
}

static void user_wipe(char **pw)
{
    if (*pw) {
        memset(*pw, 0, strlen(*pw));
        free(*pw);
        *pw = NULL;
    }
}

static void user_sasl_init(void)
{
    XSASL_CONF conf;
    STRBUF *why = strbuf_alloc(64);
    STRBUF *dir = strbuf_alloc(64);

    strbuf_printf(dir, "%s/sasl", var_config_directory);
    memset(&conf, 0, sizeof(conf));
    conf.app_name = "postern";
    conf.db_path = var_sasl_db_path;
    conf.mech_list = var_sasl_mech_list;
    conf.conf_dir = dir->data;
    if (xsasl_server_init(&conf, why) < 0)
        msg_fatal("%s", why->data);
    strbuf_free(&why);
    strbuf_free(&dir);
}

/*
 * The store must be readable by the services (mail_owner) and by no one
 * else: root owns it, mail_owner's group reads it.
 */
static void user_sasl_perms(void)
{
    struct passwd *pw;

    if (geteuid() != 0)
        (void) chmod(var_sasl_db_path, 0600);
    else if ((pw = getpwnam(var_mail_owner)) == NULL)
        msg_warn("mail_owner %s: no such user; %s is left as it is",
                 var_mail_owner, var_sasl_db_path);
    else if (chown(var_sasl_db_path, 0, pw->pw_gid) < 0
             || chmod(var_sasl_db_path, 0640) < 0)
        msg_fatal("set owner and mode of %s: %m", var_sasl_db_path);
}

/* --- commands --------------------------------------------------------- */

static int user_add(const char *addr, const char *mailbox)
{
    const char *domain = user_check_address(addr);
    STRBUF *why = strbuf_alloc(64);
    STRBUF *text;
    STRBUF *box = strbuf_alloc(64);
    USER_TABLE t = {0};
    USER_SOURCE src;
    char *password;
    int known;

    user_table(&t);
    user_source_read(t.source, &src);
    if (user_source_find(&src, addr))
        msg_fatal_status(1, "%s already exists in %s (use postern user passwd "
                         "to change the password)", addr, t.source);
    if (mailbox == NULL) {
        strbuf_printf(box, "%s/%.*s/", domain,
                      (int) (strrchr(addr, '@') - addr), addr);
        strbuf_lower(box);
        mailbox = box->data;
    } else if (*mailbox == 0 || *mailbox == '/' || strstr(mailbox, "..")
               || user_has_ctl(mailbox)) {
        msg_fatal_status(2, "%s: the mailbox is a path under "
                         "virtual_mailbox_base, without spaces or \"..\"",
                         mailbox);
    }
    user_sasl_init();
    if ((known = xsasl_user_exists(addr, why)) < 0)
        msg_fatal("%s", why->data);
    if (known)
        msg_fatal_status(1, "%s already has a password in %s", addr,
                         var_sasl_db_path);
    password = user_read_password();
    if (xsasl_user_set(addr, password, why) < 0) {
        user_wipe(&password);
        msg_fatal("%s", why->data);
    }
    user_wipe(&password);
    user_sasl_perms();

    text = strbuf_alloc(src.text->len + 128);
    strbuf_append(text, src.text->data, src.text->len);
    if (text->len && text->data[text->len - 1] != '\n')
        strbuf_cat(text, "\n");
    strbuf_printf_append(text, "%s\t%s\n", addr, mailbox);
    user_source_commit(&t, &src, text);
    printf("added %s, mailbox %s\n", addr, mailbox);

    strbuf_free(&text);
    strbuf_free(&box);
    strbuf_free(&why);
    user_done(&t, &src);
    return 0;
}

static int user_passwd(const char *addr)
{
    STRBUF *why = strbuf_alloc(64);
    USER_TABLE t = {0};
    USER_SOURCE src;
    char *password;
    int known;

    (void) user_check_address(addr);
    user_table(&t);
    user_source_read(t.source, &src);
    user_sasl_init();
    if ((known = xsasl_user_exists(addr, why)) < 0)
        msg_fatal("%s", why->data);
    if (!known && !user_source_find(&src, addr))
        msg_fatal_status(1, "%s: no such user", addr);
    password = user_read_password();
    if (xsasl_user_set(addr, password, why) < 0) {
        user_wipe(&password);
        msg_fatal("%s", why->data);
    }
    user_wipe(&password);
    user_sasl_perms();
    printf("changed the password of %s\n", addr);
    strbuf_free(&why);
    user_done(&t, &src);
    return 0;
}

static int user_del(const char *addr)
{
    STRBUF *why = strbuf_alloc(64);
    STRBUF *text;
    USER_TABLE t = {0};
    USER_SOURCE src;
    USER_ENTRY *e;
    size_t pos = 0;
    int known;
    int listed = 0;

    (void) user_check_address(addr);
    user_table(&t);
    user_source_read(t.source, &src);
    user_sasl_init();
    if ((known = xsasl_user_exists(addr, why)) < 0)
        msg_fatal("%s", why->data);
    text = strbuf_alloc(src.text->len + 1);
    for (size_t i = 0; i < src.count; i++) {
        e = &src.entries[i];
        if (strcasecmp(e->key, addr) != 0)
            continue;
        if (!listed)
            printf("removed %s, mailbox %s (its mail is kept)\n", addr,
                   e->value);
        listed = 1;
        strbuf_append(text, src.text->data + pos, e->start - pos);
        /* Comments between the entry's lines stay. */
        for (pos = e->start; pos < e->end;) {
            const char *line = src.text->data + pos;
            size_t len = strcspn(line, "\n");
            size_t next = pos + len + (line[len] == '\n');

            if (pos != e->start && user_line_skipped(line, len))
                strbuf_append(text, line, next - pos);
            pos = next;
        }
    }
    if (!known && !listed)
        msg_fatal_status(1, "%s: no such user", addr);
    strbuf_append(text, src.text->data + pos, src.text->len - pos);
    if (listed)
        user_source_commit(&t, &src, text);
    if (known && xsasl_user_delete(addr, why) < 0)
        msg_fatal("%s", why->data);
    if (!listed)
        printf("removed the password of %s (it had no mailbox)\n", addr);
    strbuf_free(&text);
    strbuf_free(&why);
    user_done(&t, &src);
    return 0;
}

static int user_list(const char *domain)
{
    STRBUF *why = strbuf_alloc(64);
    USER_TABLE t = {0};
    USER_SOURCE src;

    if (user_domains == NULL)
        user_domains = match_list_domains("virtual_mailbox_domains",
                                          var_virtual_mailbox_domains);
    user_table(&t);
    user_source_read(t.source, &src);
    user_sasl_init();
    for (size_t i = 0; i < src.count; i++) {
        const USER_ENTRY *e = &src.entries[i];
        const char *at = strrchr(e->key, '@');
        int known;

        /* Users only: not "@domain" catch-alls, not other domains. */
        if (at == NULL || at == e->key
            || match_list_domain(user_domains, at + 1) != MATCH_YES
            || (domain && strcasecmp(at + 1, domain) != 0))
            continue;
        if ((known = xsasl_user_exists(e->key, why)) < 0)
            msg_fatal("%s", why->data);
        printf("%-32s %s%s\n", e->key, e->value,
               known ? "" : "  (no password)");
    }
    strbuf_free(&why);
    user_done(&t, &src);
    return 0;
}

int postern_user_main(int argc, char **argv, const char *config_dir)
{
    if (argc < 2)
        user_usage();
    params_load(config_dir, NULL, 0);
    /* Nothing this command writes may be readable by others by accident. */
    umask(022);
    if (strcmp(argv[1], "add") == 0 && (argc == 3 || argc == 4))
        return user_add(argv[2], argc == 4 ? argv[3] : NULL);
    if (strcmp(argv[1], "passwd") == 0 && argc == 3)
        return user_passwd(argv[2]);
    if ((strcmp(argv[1], "del") == 0 || strcmp(argv[1], "delete") == 0)
        && argc == 3)
        return user_del(argv[2]);
    if (strcmp(argv[1], "list") == 0 && argc <= 3)
        return user_list(argc == 3 ? argv[2] : NULL);
    user_usage();
    return 2;
}
