/*
 * mastercf - master.cf reader.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mail/maincf.h"
#include "mail/mastercf.h"
#include "util/cfline.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/token.h"
#include "util/xmalloc.h"

#define MASTER_DELIM    " \t\r\n"

MASTERCF *mastercf_alloc(const char *path)
{
    MASTERCF *cf = xcalloc(1, sizeof(*cf));

    cf->path = xstrdup(path);
    return cf;
}

static void mastercf_ent_free(MASTER_ENT *ent)
{
    free(ent->service);
    free(ent->type);
    for (int i = 0; i < 5; i++)
        free(ent->raw[i]);
    argv_free(&ent->args);
    argv_free(&ent->overrides);
    free(ent);
}

void mastercf_free(MASTERCF **cfp)
{
    MASTERCF *cf = *cfp;

    if (cf == NULL)
        return;
    for (size_t i = 0; i < cf->count; i++)
        mastercf_ent_free(cf->entries[i]);
    free(cf->entries);
    free(cf->path);
    xfree(cfp);
}

static int mastercf_bool(const char *field, int defval, int *value_r)
{
    if (strcmp(field, "-") == 0)
        *value_r = defval;
    else if (strcmp(field, "y") == 0)
        *value_r = 1;
    else if (strcmp(field, "n") == 0)
        *value_r = 0;
    else
        return -1;
    return 0;
}

/* Normalise one -o value: "name = value" -> "name=value"; -1 if bad. */
static int mastercf_override(const char *text, STRBUF *out)
{
    char *copy = xstrdup(text);
    const char *why;
    char *name;
    char *value;
    int rc;

    if ((rc = maincf_split_line(copy, &name, &value, &why)) == 0)
        strbuf_printf(out, "%s=%s", name, value);
    free(copy);
    return rc;
}

static int mastercf_parse_entry(MASTERCF *cf, const char *line, int lineno,
                                STRBUF *err)
{
    static const char *types[] = {"inet", "unix", "unix-dgram", "fifo",
                                  "pass"};
    static const char *names[] = {"private", "unprivileged", "chroot",
                                  "wakeup", "process limit"};
    MASTER_ENT *ent = xcalloc(1, sizeof(*ent));
    STRBUF *tmp = strbuf_alloc(64);
    TOKEN_CURSOR cur;
    const char *tok;
    const char *error;
    size_t len;
    int field = 0;
    int rc;
    int known_type = 0;
    int in_options = 1;
    int want_value = 0;

    ent->lineno = lineno;
    ent->args = argv_alloc(4);
    ent->overrides = argv_alloc(4);
    token_init(&cur, line);
    /* The seven fixed fields take no braces. */
    for (field = 0; field < 7; field++) {
        if (token_next(&cur, MASTER_DELIM, &tok, &len) == 0) {
            strbuf_printf(err, "%s, line %d: missing %s field", cf->path,
                          lineno, field == 0 ? "service" : field == 1 ? "type"
                          : field < 7 ? names[field - 2] : "command");
            goto bad;
        }
        if (field == 0)
            ent->service = xstrndup(tok, len);
        else if (field == 1)
            ent->type = xstrndup(tok, len);
        else
            ent->raw[field - 2] = xstrndup(tok, len);
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(ent->type, types[i]) == 0)
            known_type = 1;
    if (!known_type) {
        strbuf_printf(err, "%s, line %d: bad transport type: %s", cf->path,
                      lineno, ent->type);
        goto bad;
    }
    if (mastercf_bool(ent->raw[0], 1, &ent->private_) < 0
        || mastercf_bool(ent->raw[1], 1, &ent->unpriv) < 0
        || mastercf_bool(ent->raw[2], 0, &ent->chroot) < 0) {
        strbuf_printf(err, "%s, line %d: bad boolean field (use y, n or -): "
                      "%s %s %s", cf->path, lineno, ent->raw[0], ent->raw[1],
                      ent->raw[2]);
        goto bad;
    }
    if (strcmp(ent->type, "inet") == 0 && strcmp(ent->raw[0], "y") == 0) {
        strbuf_printf(err, "%s, line %d: inet service cannot be private",
                      cf->path, lineno);
        goto bad;
    }
    if (strcmp(ent->type, "inet") == 0)
        ent->private_ = 0;
    if (strcmp(ent->raw[3], "-") != 0) {
        const char *w = ent->raw[3];
        size_t n = strspn(w, "0123456789");
        unsigned long secs;

        if (str_to_ulong_n(w, n, 0x7fffffff, &secs) < 0
            || (w[n] && (w[n] != '?' || w[n + 1]))) {
            strbuf_printf(err, "%s, line %d: bad wakeup time: %s", cf->path,
                          lineno, w);
            goto bad;
        }
        ent->wakeup = (int) secs;
        ent->wakeup_on_use = w[n] == '?';
    }
    ent->maxproc = -1;
    if (strcmp(ent->raw[4], "-") != 0) {
        long n;

        if (str_to_long(ent->raw[4], 0, 0x7fffffff, &n) < 0) {
            strbuf_printf(err, "%s, line %d: bad process limit: %s", cf->path,
                          lineno, ent->raw[4]);
            goto bad;
        }
        ent->maxproc = (int) n;
    }
    /*
     * The command and its arguments.  Daemons parse their options with
     * getopt("+..."), as Postfix's do: -o is an option only before the
     * first non-option argument; after that it belongs to the program
     * (e.g. "pipe ... argv=/bin/foo -o bar").
     */
    while ((rc = token_next_braced(&cur, MASTER_DELIM, &tok, &len,
                                   &error)) > 0) {
        const char *arg;

        argv_addn(ent->args, tok, len);
        if (ent->args->argc == 1)
            continue;                   /* the command itself */
        arg = ent->args->argv[ent->args->argc - 1];
        if (want_value) {
            if (mastercf_override(arg, tmp) < 0) {
                strbuf_printf(err, "%s, line %d: bad -o argument, need "
                              "name=value: \"%s\"", cf->path, lineno, arg);
                goto bad;
            }
            argv_truncate(ent->args, ent->args->argc - 1);
            argv_add(ent->args, tmp->data);
            argv_add(ent->overrides, tmp->data);
            want_value = 0;
        } else if (in_options) {
            if (arg[0] != '-' || strcmp(arg, "--") == 0)
                in_options = 0;
            else if (strcmp(arg, "-o") == 0)
                want_value = 1;
        }
    }
    if (rc < 0) {
        strbuf_printf(err, "%s, line %d: %s", cf->path, lineno, error);
        goto bad;
    }
    if (ent->args->argc == 0) {
        strbuf_printf(err, "%s, line %d: missing command field", cf->path,
                      lineno);
        goto bad;
    }
    if (want_value) {
        strbuf_printf(err, "%s, line %d: -o without name=value", cf->path,
                      lineno);
        goto bad;
    }
    /* A repeated service/type: the last one wins. */
    for (size_t i = 0; i < cf->count; i++) {
        MASTER_ENT *old = cf->entries[i];

        if (strcmp(old->service, ent->service) == 0
            && strcmp(old->type, ent->type) == 0) {
            msg_warn("%s, line %d: duplicate service %s/%s overrides line %d",
                     cf->path, lineno, ent->service, ent->type, old->lineno);
            mastercf_ent_free(old);
            memmove(cf->entries + i, cf->entries + i + 1,
                    (cf->count - i - 1) * sizeof(MASTER_ENT *));
            cf->count--;
            break;
        }
    }
    cf->entries = xreallocarray(cf->entries, cf->count + 1,
                                sizeof(MASTER_ENT *));
    cf->entries[cf->count++] = ent;
    strbuf_free(&tmp);
    return 0;

bad:
    mastercf_ent_free(ent);
    strbuf_free(&tmp);
    return -1;
}

int mastercf_parse(MASTERCF *cf, const char *text, size_t len, STRBUF *err)
{
    STRBUF *line = strbuf_alloc(256);
    CFLINE reader;
    int lineno;
    int rc;

    cfline_init(&reader, text, len);
    while ((rc = cfline_next(&reader, line, &lineno, NULL)) > 0) {
        if (mastercf_parse_entry(cf, line->data, lineno, err) < 0) {
            strbuf_free(&line);
            return -1;
        }
    }
    strbuf_free(&line);
    if (rc < 0) {
        strbuf_printf(err, "%s, line %d: NUL byte in input", cf->path,
                      lineno);
        return -1;
    }
    return 0;
}

static int mastercf_parse_cb(void *ctx, const char *text, size_t len,
                             STRBUF *err)
{
    return mastercf_parse(ctx, text, len, err);
}

int mastercf_read(MASTERCF *cf, STRBUF *err)
{
    return cfline_parse_file(cf->path, mastercf_parse_cb, cf, err);
}

MASTER_ENT *mastercf_find(const MASTERCF *cf, const char *service,
                          const char *type)
{
    for (size_t i = 0; i < cf->count; i++)
        if (strcmp(cf->entries[i]->service, service) == 0
            && (type == NULL || strcmp(cf->entries[i]->type, type) == 0))
            return cf->entries[i];
    return NULL;
}

/* One argument as postconf prints it: braces around text with spaces. */
static void mastercf_format_arg(const char *arg, STRBUF *out)
{
    if (arg[strcspn(arg, MASTER_DELIM)] != 0 || *arg == 0)
        strbuf_printf_append(out, "{%s}", arg);
    else
        strbuf_cat(out, arg);
}

/*
 * The arguments as separate display words: "-o x=y" is one word when it
 * is an option, i.e. before the first non-option argument (see above).
 */
static ARGV *mastercf_words(const MASTER_ENT *ent)
{
    ARGV *words = argv_alloc(ent->args->argc);
    STRBUF *word = strbuf_alloc(64);
    int in_options = 1;

    for (size_t i = 0; i < ent->args->argc; i++) {
        const char *arg = ent->args->argv[i];

        strbuf_reset(word);
        if (i > 0 && in_options) {
            if (arg[0] != '-' || strcmp(arg, "--") == 0) {
                in_options = 0;
            } else if (strcmp(arg, "-o") == 0 && i + 1 < ent->args->argc) {
                strbuf_cat(word, "-o ");
                i++;
            }
        }
        mastercf_format_arg(ent->args->argv[i], word);
        argv_add(words, word->data);
    }
    strbuf_free(&word);
    return words;
}

void mastercf_format_command(const MASTER_ENT *ent, STRBUF *out)
{
    ARGV *words = mastercf_words(ent);

    strbuf_reset(out);
    for (size_t i = 0; i < words->argc; i++) {
        if (i)
            strbuf_addch(out, ' ');
        strbuf_cat(out, words->argv[i]);
    }
    argv_free(&words);
}

void mastercf_format_entry(const MASTER_ENT *ent, int fold, STRBUF *out)
{
    static const size_t columns[] = {0, 11, 17, 25, 33, 41, 49, 57};
    const char *fields[7];
    ARGV *words;
    size_t line_start = 0;
    int prev_pair = 0;

    fields[0] = ent->service;
    fields[1] = ent->type;
    for (int i = 0; i < 5; i++)
        fields[i + 2] = ent->raw[i];
    strbuf_reset(out);
    for (int i = 0; i < 8; i++) {
        const char *text = i < 7 ? fields[i] : NULL;
        size_t want = columns[i];

        if (i > 0 && out->len + 1 > want)
            want = out->len + 1;
        while (out->len < want)
            strbuf_addch(out, ' ');
        if (text)
            strbuf_cat(out, text);
    }
    /*
     * Like postconf -Mf: an "-o name=value" option sits on a line of its
     * own (the next word starts a new line too), and other words wrap
     * when the line would reach 80 columns.
     */
    words = mastercf_words(ent);
    for (size_t i = 0; i < words->argc; i++) {
        const char *w = words->argv[i];
        int pair = i > 0 && strncmp(w, "-o ", 3) == 0;

        if (i > 0) {
            int wrap = fold && (pair || prev_pair
                                || out->len - line_start + 1 + strlen(w)
                                >= 80);

            if (wrap) {
                strbuf_cat(out, "\n    ");
                line_start = out->len - 4;
            } else {
                strbuf_addch(out, ' ');
            }
        }
        strbuf_cat(out, w);
        prev_pair = pair;
    }
    argv_free(&words);
}
