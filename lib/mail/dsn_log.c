/*
 * dsn_log - read and append per-message delivery status logs in Postfix's
 * bounce-log format (see dsn_log.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/dsn_log.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

/* --- text forms -------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), 0 if none. */
static size_t dsn_log_utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t len;

    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    /* No overlong forms, no surrogates, nothing above U+10FFFF. */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (avail < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

static void dsn_log_clean(STRBUF *out, const char *text, size_t len,
                          int keep_ctrl)
{
    const unsigned char *cp = (const unsigned char *) text;
    const unsigned char *end = cp + len;

    strbuf_reset(out);
    while (cp < end) {
        size_t n;

        if (*cp < 0x80) {
            strbuf_addch(out, (*cp < 0x20 || *cp == 0x7f) && !keep_ctrl
                         ? '?' : *cp);
            cp++;
        } else if ((n = dsn_log_utf8_seq(cp, (size_t) (end - cp))) > 0) {
            strbuf_append(out, cp, n);
            cp += n;
        } else {
            strbuf_addch(out, '?');
            cp++;
        }
    }
}

void dsn_log_printable(STRBUF *out, const char *text, size_t len)
{
    dsn_log_clean(out, text, len, 0);
}

void dsn_log_utf8_clean(STRBUF *out, const char *text, size_t len)
{
    dsn_log_clean(out, text, len, 1);
}

/* Is local[0..len) an RFC 822 dot-string (Postfix is_822_dot_string)? */
static int dsn_log_dot_string(const char *local, size_t len)
{
    static const char specials[] = "()<>@,;:\\\"[]";

    if (len == 0 || local[0] == '.' || local[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) local[i];

        if (ch == '.' && i + 1 < len && local[i + 1] == '.')
            return 0;
        if (ch == ' ' || ch < 0x20 || ch == 0x7f
            || (ch < 0x80 && strchr(specials, ch) != NULL))
            return 0;
    }
    return 1;
}

void dsn_log_quote_address(STRBUF *out, const char *addr)
{
    const char *start = addr;
    const char *end;
    const char *colon;

    /* Skip a source route: @a,@b:user@domain. */
    if (addr[0] == '@' && (colon = strchr(addr, ':')) != NULL)
        start = colon + 1;
    if ((end = strrchr(start, '@')) == NULL)
        end = start + strlen(start);
    strbuf_reset(out);
    if (dsn_log_dot_string(start, (size_t) (end - start))) {
        strbuf_cat(out, addr);
        return;
    }
    strbuf_append(out, addr, (size_t) (start - addr));
    strbuf_addch(out, '"');
    for (const char *cp = start; cp < end; cp++) {
        if (*cp == '"' || *cp == '\\' || *cp == '\r')
            strbuf_addch(out, '\\');
        strbuf_addch(out, *cp);
    }
    strbuf_addch(out, '"');
    strbuf_cat(out, end);
}

/* --- reading ----------------------------------------------------------- */

static void dsn_log_entry_free(DSN_LOG_ENTRY *e)
{
    free(e->recipient);
    free(e->orig_rcpt);
    free(e->dsn_orcpt);
    free(e->status);
    free(e->action);
    free(e->diag_type);
    free(e->diag_text);
    free(e->mta_type);
    free(e->mta_name);
    free(e->reason);
}

void dsn_log_free(DSN_LOG **logp)
{
    DSN_LOG *log = *logp;

    if (log == NULL)
        return;
    for (size_t i = 0; i < log->count; i++)
        dsn_log_entry_free(&log->entries[i]);
    free(log->entries);
    xfree(logp);
}

/* The entry being read: NULL fields are absent. */
typedef struct DSN_LOG_PARSE {
    DSN_LOG_ENTRY cur;
    int     fields;                     /* valid lines in this entry */
    const char *name;
    size_t  lineno;
} DSN_LOG_PARSE;

static void dsn_log_set(char **field, const char *value)
{
    free(*field);
    *field = xstrdup(value);
}

/* Add the finished entry, with place holders for what it lacks. */
static void dsn_log_finish(DSN_LOG *log, DSN_LOG_PARSE *p)
{
    DSN_LOG_ENTRY *e = &p->cur;
    char **opt[] = {&e->orig_rcpt, &e->dsn_orcpt, &e->status, &e->action,
                    &e->diag_type, &e->diag_text, &e->mta_type, &e->mta_name};

    if (p->fields == 0) {
        dsn_log_entry_free(e);
    } else {
        if (e->recipient == NULL)
            e->recipient = xstrdup(DSN_LOG_NO_RECIPIENT);
        if (e->reason == NULL)
            e->reason = xstrdup(DSN_LOG_NO_REASON);
        for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
            if (*opt[i] == NULL)
                *opt[i] = xstrdup("");
        if (log->count == log->size) {
            log->size = log->size ? log->size * 2 : 8;
            log->entries = xreallocarray(log->entries, log->size,
                                         sizeof(*log->entries));
        }
        log->entries[log->count++] = *e;
    }
    memset(e, 0, sizeof(*e));
    p->fields = 0;
}

/* "name = value" (Postfix split_nameval); 0, or -1 with *why. */
static int dsn_log_nameval(char *line, char **name_r, char **value_r,
                           const char **why)
{
    char *np = line;
    char *ep;
    char *vp;
    char *tp;

    while (isspace((unsigned char) *np))
        np++;
    if (*np == 0 || *np == '=') {
        *why = "missing attribute name";
        return -1;
    }
    for (ep = np; *ep && !isspace((unsigned char) *ep) && *ep != '='; ep++)
        ;
    for (vp = ep; isspace((unsigned char) *vp); vp++)
        ;
    if (*vp != '=') {
        *why = "missing '='";
        return -1;
    }
    *ep = 0;
    for (vp++; isspace((unsigned char) *vp); vp++)
        ;
    for (tp = vp + strlen(vp); tp > vp && isspace((unsigned char) tp[-1]);
         tp--)
        ;
    *tp = 0;
    *name_r = np;
    *value_r = vp;
    return 0;
}

static void dsn_log_attr(DSN_LOG_PARSE *p, char *line)
{
    DSN_LOG_ENTRY *e = &p->cur;
    static const struct {
        const char *name;
        size_t  off;
    } strs[] = {
        {"original_recipient", offsetof(DSN_LOG_ENTRY, orig_rcpt)},
        {"dsn_orig_rcpt", offsetof(DSN_LOG_ENTRY, dsn_orcpt)},
        {"status", offsetof(DSN_LOG_ENTRY, status)},
        {"action", offsetof(DSN_LOG_ENTRY, action)},
        {"diag_type", offsetof(DSN_LOG_ENTRY, diag_type)},
        {"diag_text", offsetof(DSN_LOG_ENTRY, diag_text)},
        {"mta_type", offsetof(DSN_LOG_ENTRY, mta_type)},
        {"mta_mname", offsetof(DSN_LOG_ENTRY, mta_name)},
        {"reason", offsetof(DSN_LOG_ENTRY, reason)},
    };
    const char *why;
    char *name;
    char *value;
    long n;

    if (dsn_log_nameval(line, &name, &value, &why) < 0) {
        msg_warn("%s, line %zu: malformed record: %s", p->name, p->lineno,
                 why);
        return;
    }
    if (strcmp(name, "recipient") == 0) {
        /* An empty value is Postfix's way of saying the null address. */
        dsn_log_set(&e->recipient, *value ? value : "(MAILER-DAEMON)");
    } else if (strcmp(name, "offset") == 0) {
        if (str_to_long(value, 1, 0x7fffffffffffffffL, &n) < 0) {
            msg_warn("%s, line %zu: bad offset: %.100s", p->name, p->lineno,
                     value);
            return;
        }
        e->offset = n;
    } else if (strcmp(name, "notify_flags") == 0) {
        if (str_to_long(value, 1, 15, &n) < 0) {
            msg_warn("%s, line %zu: bad notify_flags: %.100s", p->name,
                     p->lineno, value);
            return;
        }
        e->notify = (int) n;
    } else {
        size_t i;

        for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
            if (strcmp(name, strs[i].name) == 0)
                break;
        if (i == sizeof(strs) / sizeof(strs[0])) {
            msg_warn("%s, line %zu: unknown attribute name: %.100s, ignored",
                     p->name, p->lineno, name);
            return;
        }
        dsn_log_set((char **) ((char *) e + strs[i].off), value);
    }
    p->fields++;
}

/* Postfix's old format: "<recipient>: reason". */
static void dsn_log_old(DSN_LOG_PARSE *p, char *line)
{
    char *rcpt = line + 1;
    char *cp = strstr(rcpt, ">: ");
    char *text;

    if (cp == NULL) {
        msg_warn("%s, line %zu: malformed record: %.30s...", p->name,
                 p->lineno, line);
        return;
    }
    *cp = 0;
    for (text = cp + 2; isspace((unsigned char) *text); text++)
        ;
    dsn_log_set(&p->cur.recipient, *rcpt ? rcpt : "(MAILER-DAEMON)");
    dsn_log_set(&p->cur.reason, text);
    p->fields++;
}

static void dsn_log_line(DSN_LOG *log, DSN_LOG_PARSE *p, char *line,
                         size_t len)
{
    if (len == 0) {
        /* A blank line ends an entry (and starts one: both are there). */
        dsn_log_finish(log, p);
    } else if (memchr(line, 0, len) != NULL) {
        msg_warn("%s, line %zu: NUL byte, line ignored", p->name, p->lineno);
    } else if (isalnum((unsigned char) line[0])) {
        dsn_log_attr(p, line);
    } else if (line[0] == '<') {
        dsn_log_old(p, line);
    } else {
        msg_warn("%s, line %zu: malformed record: %.30s...", p->name,
                 p->lineno, line);
    }
}

DSN_LOG *dsn_log_parse(const char *buf, size_t len, const char *name)
{
    DSN_LOG *log = xcalloc(1, sizeof(*log));
    DSN_LOG_PARSE p;
    STRBUF *line = strbuf_alloc(256);
    const char *cp = buf;
    const char *end = buf + len;

    memset(&p, 0, sizeof(p));
    p.name = name;
    while (cp < end) {
        const char *nl = memchr(cp, '\n', (size_t) (end - cp));

        p.lineno++;
        if (nl == NULL) {
            /* Cut short: a crash, or a writer still at work. */
            msg_warn("%s, line %zu: incomplete last line ignored", name,
                     p.lineno);
            break;
        }
        strbuf_setn(line, cp, (size_t) (nl - cp));
        dsn_log_line(log, &p, line->data, line->len);
        cp = nl + 1;
    }
    /*
     * An entry that lacks its closing blank line counts once it has its
     * reason, which writers put last: a reader that comes while an entry
     * is being appended sees it whole or not at all.
     */
    if (p.cur.reason == NULL)
        p.fields = 0;
    dsn_log_finish(log, &p);
    strbuf_free(&line);
    return log;
}

int dsn_log_read(const char *path, DSN_LOG **log_r, STRBUF *err)
{
    STRBUF *buf;
    struct stat st;
    char chunk[8192];
    ssize_t n;
    int fd;

    *log_r = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
        if (errno == ENOENT)
            return 0;
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        strbuf_printf(err, "stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > DSN_LOG_MAX) {
        strbuf_printf(err, "%s: %s", path, S_ISREG(st.st_mode)
                      ? "file too large" : "not a regular file");
        close(fd);
        return -1;
    }
    buf = strbuf_alloc((size_t) st.st_size + 1);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            strbuf_printf(err, "read %s: %s", path, strerror(errno));
            strbuf_free(&buf);
            close(fd);
            return -1;
        }
        if (buf->len + (size_t) n > DSN_LOG_MAX) {
            strbuf_printf(err, "%s: file too large", path);
            strbuf_free(&buf);
            close(fd);
            return -1;
        }
        strbuf_append(buf, chunk, (size_t) n);
    }
    close(fd);
    *log_r = dsn_log_parse(buf->data, buf->len, path);
    strbuf_free(&buf);
    return 1;
}

/* --- writing ----------------------------------------------------------- */

static void dsn_log_put(STRBUF *out, STRBUF *tmp, const char *name,
                        const char *value)
{
    if (value == NULL || *value == 0)
        return;
    dsn_log_printable(tmp, value, strlen(value));
    strbuf_printf_append(out, "%s=%s\n", name, tmp->data);
}

/* The printable quoted form of a raw address; "<>" for the null one. */
static void dsn_log_addr(STRBUF *out, STRBUF *tmp, const char *addr)
{
    if (addr == NULL || *addr == 0) {
        strbuf_set(out, "<>");
        return;
    }
    dsn_log_quote_address(tmp, addr);
    dsn_log_printable(out, tmp->data, tmp->len);
}

static void dsn_log_format(STRBUF *out, const DSN_LOG_ENTRY *e)
{
    STRBUF *tmp = strbuf_alloc(128);
    STRBUF *rcpt = strbuf_alloc(128);
    STRBUF *reason = strbuf_alloc(128);
    const char *why = e->reason ? e->reason : "";

    dsn_log_addr(rcpt, tmp, e->recipient);
    dsn_log_printable(reason, why, strlen(why));
    strbuf_printf(out, "\n<%s>: %s\n", strcmp(rcpt->data, "<>") == 0 ? ""
                  : rcpt->data, reason->data);
    strbuf_printf_append(out, "recipient=%s\n", rcpt->data);
    if (e->orig_rcpt && *e->orig_rcpt && e->recipient
        && strcasecmp(e->recipient, e->orig_rcpt) != 0) {
        dsn_log_addr(rcpt, tmp, e->orig_rcpt);
        strbuf_printf_append(out, "original_recipient=%s\n", rcpt->data);
    }
    if (e->offset > 0)
        strbuf_printf_append(out, "offset=%ld\n", e->offset);
    dsn_log_put(out, tmp, "dsn_orig_rcpt", e->dsn_orcpt);
    if (e->notify > 0)
        strbuf_printf_append(out, "notify_flags=%d\n", e->notify);
    dsn_log_put(out, tmp, "status", e->status);
    dsn_log_put(out, tmp, "action", e->action);
    if (e->diag_type && *e->diag_type && e->diag_text && *e->diag_text) {
        dsn_log_put(out, tmp, "diag_type", e->diag_type);
        dsn_log_put(out, tmp, "diag_text", e->diag_text);
    }
    if (e->mta_type && *e->mta_type && e->mta_name && *e->mta_name) {
        dsn_log_put(out, tmp, "mta_type", e->mta_type);
        dsn_log_put(out, tmp, "mta_mname", e->mta_name);
    }
    strbuf_printf_append(out, "reason=%s\n\n", reason->data);
    strbuf_free(&tmp);
    strbuf_free(&rcpt);
    strbuf_free(&reason);
}

/* fsync the directory that holds path, so that a new file survives. */
static int dsn_log_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, (size_t) (slash - path)) : xstrdup(".");
    int fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -1 : fsync(fd);

    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

static int dsn_log_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

int dsn_log_append(const char *path, const DSN_LOG_ENTRY *entry, STRBUF *err)
{
    STRBUF *text = strbuf_alloc(512);
    struct stat st;
    int created = 1;
    int rc = -1;
    int fd;

    dsn_log_format(text, entry);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC
              | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
        strbuf_printf(err, "lock %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        strbuf_printf(err, "%s: not a regular file", path);
        goto out;
    }
    if (dsn_log_write_all(fd, text->data, text->len) < 0 || fsync(fd) < 0) {
        int saved = errno;

        /* Take the partial entry back, so that readers never see it. */
        if (ftruncate(fd, st.st_size) < 0)
            msg_warn("truncate %s: %m", path);
        strbuf_printf(err, "append %s: %s", path, strerror(saved));
        goto out;
    }
    if (created && dsn_log_sync_dir(path) < 0) {
        strbuf_printf(err, "sync directory of %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    strbuf_free(&text);
    return rc;
}
