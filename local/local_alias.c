/*
 * local_alias - aliases(5): lookup, the values of an alias, :include:
 * files, nesting and loops.
 *
 * An alias value is a list separated by commas: addresses, |command,
 * /file, :include:/file, and \user (the user's own mailbox, no alias
 * lookup).  An item in double quotes may contain commas and spaces.
 * Local addresses (mydestination) are expanded again right here; other
 * addresses are forwarded through cleanup as one new message.
 *
 * Loops: an alias that appears again inside its own expansion, directly
 * (root: root, admin) or further down (a: b, b: a), is not expanded
 * again: that address goes to the user's own mailbox, as Postfix does
 * for an alias that names itself (or bounces as an unknown user when
 * there is no such user).  A :include: file that includes itself is
 * skipped.  Nesting deeper than LOCAL_EXPAND_DEPTH bounces with 5.4.6.
 * The same destination reached twice for one recipient is delivered
 * once.
 *
 * Rights: |command and /file run as the owner of the alias table file
 * when that is not root, else as default_privs; those named in a
 * :include: file run as the file's owner when that is not root, else
 * with the rights the :include: itself had.  An include file is read
 * with those rights too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "mail/addr_canon.h"
#include "mail/params.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define LOCAL_CLASS_ALIAS   "alias"
#define LOCAL_CLASS_INCLUDE "include"

/* Remember a destination: 1 when it is new, 0 when already delivered. */
int local_mark_done(LOCAL_RCPT *lrc, const char *kind, const char *what)
{
    STRBUF *key = strbuf_alloc(64);
    int fresh;

    strbuf_printf(key, "%s:%s", kind, what);
    fresh = htable_enter(lrc->done, key->data, NULL) != NULL;
    strbuf_free(&key);
    return fresh;
}

/* --- splitting values ------------------------------------------------- */

/* An item wholly in double quotes, without them; else NULL. */
static char *local_unquote(const char *item, size_t len)
{
    STRBUF *out;

    if (len < 2 || item[0] != '"' || item[len - 1] != '"')
        return NULL;
    out = strbuf_alloc(len);
    for (size_t i = 1; i < len - 1; i++) {
        if (item[i] == '\\' && i + 1 < len - 1)
            i++;
        else if (item[i] == '"') {
            strbuf_free(&out);
            return NULL;                /* "a"@b: a quoted local part */
        }
        strbuf_addch(out, item[i]);
    }
    return strbuf_export(&out);
}

static int local_is_special(const char *item)
{
    return *item == '|' || *item == '/'
        || strncasecmp(item, ":include:", 9) == 0;
}

/* Split an address item further at whitespace outside quotes. */
static void local_split_words(const char *item, ARGV *items)
{
    const char *start = NULL;
    int inq = 0;

    for (const char *cp = item;; cp++) {
        int end = *cp == 0 || (!inq && (*cp == ' ' || *cp == '\t'
                                         || *cp == '\n'));

        if (end) {
            if (start)
                argv_addn(items, start, (size_t) (cp - start));
            start = NULL;
            if (*cp == 0)
                break;
            continue;
        }
        if (start == NULL)
            start = cp;
        if (*cp == '\\' && inq && cp[1])
            cp++;
        else if (*cp == '"')
            inq = !inq;
    }
}

static void local_add_item(const char *item, size_t len, ARGV *items)
{
    char *copy;
    char *unq;

    while (len > 0 && strchr(" \t\n", *item)) {
        item++;
        len--;
    }
    while (len > 0 && strchr(" \t\n", item[len - 1]))
        len--;
    if (len == 0)
        return;
    if ((unq = local_unquote(item, len)) != NULL) {
        if (*unq)
            argv_add(items, unq);
        free(unq);
        return;
    }
    copy = xstrndup(item, len);
    if (local_is_special(copy))
        argv_add(items, copy);
    else
        local_split_words(copy, items);
    free(copy);
}

void local_split_values(const char *value, ARGV *items)
{
    const char *start = value;
    int inq = 0;

    for (const char *cp = value;; cp++) {
        if (*cp == 0 || (*cp == ',' && !inq)) {
            local_add_item(start, (size_t) (cp - start), items);
            if (*cp == 0)
                break;
            start = cp + 1;
        } else if (*cp == '\\' && inq && cp[1]) {
            cp++;
        } else if (*cp == '"') {
            inq = !inq;
        }
    }
}

/* --- policy ----------------------------------------------------------- */

/* Does allow_mail_to_commands or _files list this class? */
static int local_allowed(const char *list, const char *class)
{
    ARGV *words = argv_split(list, ", \t\n");
    int ok = 0;

    for (size_t i = 0; i < words->argc && !ok; i++)
        ok = strcasecmp(words->argv[i], class) == 0;
    argv_free(&words);
    return ok;
}

static int local_in_chain(const ARGV *chain, const char *name)
{
    for (size_t i = 0; i < chain->argc; i++)
        if (strcmp(chain->argv[i], name) == 0)
            return 1;
    return 0;
}

/* --- :include: -------------------------------------------------------- */

/* Read a whole include file as priv: 0 with text, or -1 after branch(). */
static int local_include_read(LOCAL_RCPT *lrc, const char *owner,
                              const char *path, const LOCAL_PRIV *priv,
                              STRBUF *text, uid_t *uid_r)
{
    struct stat sb;
    char chunk[4096];
    ssize_t n;
    int fd;

    if (*path != '/') {
        msg_warn("%s: :include:%s: not an absolute path", owner, path);
        local_branch(lrc, owner, 550, "5.3.0",
                     "mail system configuration error");
        return -1;
    }
    if ((fd = local_priv_open(priv, path, O_RDONLY | O_NONBLOCK)) < 0) {
        int perm = errno == ENOENT || errno == EACCES || errno == ENOTDIR
            || errno == ELOOP || errno == EPERM;

        msg_warn("%s: cannot open include file %s: %m", owner, path);
        local_branch(lrc, owner, perm ? 550 : 450, perm ? "5.3.0" : "4.3.0",
                     "mail system configuration error");
        return -1;
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)
        || sb.st_size > LOCAL_INCLUDE_MAX) {
        msg_warn("%s: include file %s: not a regular file of at most %d "
                 "bytes", owner, path, LOCAL_INCLUDE_MAX);
        local_branch(lrc, owner, 550, "5.3.0",
                     "mail system configuration error");
        close(fd);
        return -1;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) > 0
           && text->len < LOCAL_INCLUDE_MAX)
        strbuf_append(text, chunk, (size_t) n);
    if (n < 0) {
        msg_warn("%s: read include file %s: %m", owner, path);
        local_branch(lrc, owner, 450, "4.3.0",
                     "mail system configuration error");
        close(fd);
        return -1;
    }
    close(fd);
    *uid_r = sb.st_uid;
    return 0;
}

static void local_include(LOCAL_RCPT *lrc, const char *owner,
                          const char *path, int depth, ARGV *chain,
                          const LOCAL_PRIV *priv)
{
    STRBUF *text = strbuf_alloc(1024);
    STRBUF *mark = strbuf_alloc(64);
    LOCAL_PRIV *inc_priv = NULL;
    uid_t uid = 0;

    strbuf_printf(mark, ":include:%s", path);
    if (local_in_chain(chain, mark->data)) {
        msg_warn("%s: :include:%s includes itself -- skipped", owner, path);
        goto done;
    }
    if (local_include_read(lrc, owner, path, priv, text, &uid) < 0)
        goto done;
    /* A file of an ordinary user: what it names runs as that user. */
    if (uid != 0 && (inc_priv = local_priv_uid(uid)) == NULL) {
        msg_warn("%s: include file %s: owner uid %ld has no passwd entry",
                 owner, path, (long) uid);
        local_branch(lrc, owner, 450, "4.3.0",
                     "mail system configuration error");
        goto done;
    }
    argv_add(chain, mark->data);
    for (char *line = text->data; line && *line;) {
        char *nl = strchr(line, '\n');

        if (nl)
            *nl = 0;
        line += strspn(line, " \t\r");
        if (*line && *line != '#')
            local_expand(lrc, owner, line, depth + 1, chain,
                         LOCAL_CLASS_INCLUDE, inc_priv ? inc_priv : priv);
        line = nl ? nl + 1 : NULL;
    }
    argv_truncate(chain, chain->argc - 1);
done:
    local_priv_free(&inc_priv);
    strbuf_free(&text);
    strbuf_free(&mark);
}

/* --- expansion -------------------------------------------------------- */

/* One address item of an alias. */
static void local_expand_address(LOCAL_RCPT *lrc, const char *item,
                                 int depth, ARGV *chain)
{
    STRBUF *canon = strbuf_alloc(64);
    LOCAL_RESULT res;
    int bare = *item == '\\';
    size_t len;
    char *addr;
    int mine;

    res.reason = strbuf_alloc(64);
    if (bare)
        item++;
    /* <address> as people write it. */
    len = strlen(item);
    if (len >= 2 && item[0] == '<' && item[len - 1] == '>')
        addr = xstrndup(item + 1, len - 2);
    else
        addr = xstrdup(item);
    if (*addr == 0)
        goto done;
    addr_canon(addr, local_tables.mydestination, canon);
    mine = local_is_mydestination(addr_domain(canon->data), &res);
    if (mine == MATCH_ERROR) {
        local_branch_done(lrc, canon->data, &res);
    } else if (mine == MATCH_YES && bare) {
        local_deliver_bare(lrc, canon->data);
    } else if (mine == MATCH_YES) {
        local_deliver_address(lrc, canon->data, depth, chain);
    } else {
        STRBUF *key = strbuf_alloc(64);

        strbuf_set(key, canon->data);
        strbuf_lower(key);
        if (local_mark_done(lrc, "forward", key->data))
            argv_add(lrc->forward, canon->data);
        strbuf_free(&key);
    }
done:
    free(addr);
    strbuf_free(&res.reason);
    strbuf_free(&canon);
}

void local_expand(LOCAL_RCPT *lrc, const char *owner, const char *value,
                  int depth, ARGV *chain, const char *class,
                  const LOCAL_PRIV *priv)
{
    ARGV *items;

    if (depth > LOCAL_EXPAND_DEPTH) {
        msg_warn("alias database loop for %s", owner);
        local_branch(lrc, owner, 550, "5.4.6", "alias database loop for %s",
                     owner);
        return;
    }
    items = argv_alloc(8);
    local_split_values(value, items);
    for (size_t i = 0; i < items->argc; i++) {
        const char *item = items->argv[i];

        if (*item == '|') {
            const char *cmd = item + 1 + strspn(item + 1, " \t");

            if (!local_allowed(var_allow_mail_to_commands, class))
                local_branch(lrc, owner, 550, "5.7.1",
                             "mail to command is restricted");
            else if (*cmd && local_mark_done(lrc, "command", cmd))
                local_deliver_command(lrc, owner, cmd, priv);
        } else if (*item == '/') {
            if (!local_allowed(var_allow_mail_to_files, class))
                local_branch(lrc, owner, 550, "5.7.1",
                             "mail to file is restricted");
            else if (local_mark_done(lrc, "file", item))
                local_deliver_file(lrc, owner, item, priv);
        } else if (strncasecmp(item, ":include:", 9) == 0) {
            const char *path = item + 9 + strspn(item + 9, " \t");

            local_include(lrc, owner, path, depth, chain, priv);
        } else {
            local_expand_address(lrc, item, depth, chain);
        }
    }
    argv_free(&items);
}

/* --- lookup ----------------------------------------------------------- */

/* The file behind a table, for its owner: NAME.lmdb or NAME. */
static uid_t local_table_owner(const DICT *d)
{
    STRBUF *path = strbuf_alloc(64);
    struct stat sb;
    uid_t uid = 0;

    if (*d->name == '/') {
        strbuf_printf(path, "%s%s", d->name,
                      strcmp(d->type, "lmdb") == 0 ? ".lmdb" : "");
        if (stat(path->data, &sb) == 0 || stat(d->name, &sb) == 0)
            uid = sb.st_uid;
    }
    strbuf_free(&path);
    return uid;
}

/*
 * Look the local part up in alias_maps (user+ext, then user; each key in
 * every table before the next key).  1 when the alias was expanded or
 * the lookup failed (both reported), 0 when it is no alias here.
 */
int local_alias(LOCAL_RCPT *lrc, const char *address, const char *localpart,
                int depth, ARGV *chain)
{
    MAPS *maps = local_tables.alias_maps;
    ARGV *keys = argv_alloc(4);
    const DICT *found = NULL;
    const char *key = NULL;
    char *value = NULL;
    LOCAL_PRIV *priv = NULL;
    int rc = 0;

    maps_addr_keys(localpart, MAPS_ADDR_ALIAS, 0, var_recipient_delimiter,
                   keys);
    for (size_t k = 0; k < keys->argc && !found; k++) {
        for (size_t i = 0; i < maps->count && !found; i++) {
            DICT *d = maps->dicts[i];
            const char *v;

            if ((d->flags & DICT_FLAG_PATTERN) && k > 0)
                continue;
            switch (dict_lookup(d, keys->argv[k], &v)) {
            case DICT_FOUND:
                found = d;
                key = keys->argv[k];
                value = xstrdup(v);
                break;
            case DICT_ERROR:
                msg_warn("%s: alias_maps %s:%s: %s", address, d->type,
                         d->name, d->error->data);
                local_branch(lrc, address, 450, "4.3.0",
                             "alias database unavailable");
                rc = 1;
                goto done;
            }
        }
    }
    /* Not an alias, or one we are expanding already: the user. */
    if (!found || local_in_chain(chain, key))
        goto done;
    rc = 1;
    {
        uid_t owner = local_table_owner(found);

        priv = owner != 0 ? local_priv_uid(owner) : local_priv_default();
    }
    if (priv == NULL) {
        msg_warn("%s: no account for the owner of %s:%s, or for "
                 "default_privs = %s", address, found->type, found->name,
                 var_default_privs);
        local_branch(lrc, address, 450, "4.3.5",
                     "mail system configuration error");
        goto done;
    }
    argv_add(chain, key);
    local_expand(lrc, address, value, depth + 1, chain, LOCAL_CLASS_ALIAS,
                 priv);
    argv_truncate(chain, chain->argc - 1);
done:
    local_priv_free(&priv);
    free(value);
    argv_free(&keys);
    return rc;
}
