/*
 * postern conf - show and edit main.cf and master.cf (postconf(1)).
 *
 *   postern conf [-dnxhHf] [-o name=value] [name ...]
 *   postern conf -e name=value ...      (or just name=value ...)
 *   postern conf -# name ...  |  -X name ...
 *   postern conf -M[f] [service[/type] ...]
 *   postern conf -M service/type='entry'  |  -M# service/type  |  -MX ...
 *
 * Output matches postconf: "name = value", sorted, whitespace in values
 * normalised to single spaces; warnings go to stderr.  Edits keep
 * comments and order and replace the file atomically.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "postern.h"
#include "mail/maincf.h"
#include "mail/mastercf.h"
#include "mail/params.h"
#include "util/argv.h"
#include "util/cfline.h"
#include "util/file_atomic.h"
#include "util/htable.h"
#include "util/msg.h"
#include "util/xmalloc.h"

#define CONF_SHOW_DEFAULTS  (1 << 0)    /* -d */
#define CONF_SHOW_NONDEF    (1 << 1)    /* -n */
#define CONF_EXPAND         (1 << 2)    /* -x */
#define CONF_VALUE_ONLY     (1 << 3)    /* -h */
#define CONF_NAME_ONLY      (1 << 4)    /* -H */
#define CONF_FOLD           (1 << 5)    /* -f */

typedef enum {
    CONF_MODE_SHOW, CONF_MODE_EDIT, CONF_MODE_COMMENT, CONF_MODE_DELETE,
} CONF_MODE;

static void conf_usage(void)
{
    fprintf(stderr,
            "usage: postern conf [-dnxhHf] [-o name=value] [name ...]\n"
            "       postern conf [-e] name=value ...\n"
            "       postern conf -# name ... | -X name ...\n"
            "       postern conf -M[f#X] [service[/type][=entry] ...]\n");
    exit(2);
}

/* Collapse whitespace runs to one space, as postconf displays values. */
static void conf_normalise(const char *value, STRBUF *out)
{
    const char *cp = value;

    strbuf_reset(out);
    while (*cp) {
        size_t n = strcspn(cp, " \t\r\n");

        if (n > 0) {
            if (out->len)
                strbuf_addch(out, ' ');
            strbuf_append(out, cp, n);
            cp += n;
        }
        cp += strspn(cp, " \t\r\n");
    }
}

/* Print "name = value" (or parts), folding at 80 columns with -f. */
static void conf_print(const char *name, const char *value, int flags)
{
    STRBUF *line = strbuf_alloc(256);
    STRBUF *norm = strbuf_alloc(256);

    conf_normalise(value, norm);
    if (flags & CONF_NAME_ONLY)
        strbuf_set(line, name);
    else if (flags & CONF_VALUE_ONLY)
        strbuf_set(line, norm->data);
    else if (norm->len)
        strbuf_printf(line, "%s = %s", name, norm->data);
    else
        strbuf_printf(line, "%s =", name);
    if ((flags & CONF_FOLD) && line->len > 80) {
        /* Break at spaces; continuation lines start with 4 spaces. */
        size_t col = 0;
        const char *cp = line->data;

        while (*cp) {
            size_t n = strcspn(cp, " ");

            if (col > 0 && col + 1 + n > 80) {
                fputs("\n    ", stdout);
                col = 4;
            } else if (col > 0) {
                putchar(' ');
                col++;
            }
            fwrite(cp, 1, n, stdout);
            col += n;
            cp += n;
            cp += strspn(cp, " ");
        }
        putchar('\n');
    } else {
        puts(line->data);
    }
    strbuf_free(&norm);
    strbuf_free(&line);
}

static int conf_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Show one parameter; returns 0, or -1 if it is unknown. */
static int conf_show_one(PARAM_CTX *ctx, const char *name, int flags,
                         HTABLE *refs)
{
    STRBUF *value = strbuf_alloc(256);
    STRBUF *err = strbuf_alloc(128);
    const char *raw = NULL;
    const MAINCF_ENTRY *ent = NULL;

    if (!(flags & CONF_SHOW_DEFAULTS) && ctx->maincf)
        ent = maincf_find(ctx->maincf, name);
    if (param_find(name) || (ent && (htable_locate(refs, name)
                                     || param_dynamic_known(name))))
        raw = param_raw(ctx, name);
    if (raw == NULL) {
        msg_warn("%s: unknown parameter", name);
        strbuf_free(&value);
        strbuf_free(&err);
        return -1;
    }
    if ((flags & CONF_EXPAND) && param_expand(ctx, raw, value, err) < 0) {
        msg_warn("%s: %s", name, err->data);
        strbuf_set(value, raw);
    } else if (!(flags & CONF_EXPAND)) {
        strbuf_set(value, raw);
    }
    conf_print(name, value->data, flags);
    strbuf_free(&value);
    strbuf_free(&err);
    return 0;
}

/* Was the config directory chosen with -c or POSTERN_CONFIG_DIR? */
static int conf_explicit_dir;

static void conf_show(PARAM_CTX *ctx, int flags, char **names, int nnames)
{
    HTABLE *refs = param_referenced_names(ctx);
    ARGV *list = argv_alloc(param_table_size + 16);
    HTABLE_ENTRY *ent;

    if (nnames > 0) {
        for (int i = 0; i < nnames; i++)
            (void) conf_show_one(ctx, names[i], flags, refs);
        goto done;
    }
    if (flags & CONF_SHOW_NONDEF) {
        HTABLE_FOREACH(ctx->maincf->entries, ent)
            if (param_find(ent->key) || htable_locate(refs, ent->key)
                || param_dynamic_known(ent->key))
                argv_add(list, ent->key);
        /* postconf -c DIR shows config_directory as if set in main.cf. */
        if (conf_explicit_dir
            && htable_locate(ctx->overrides, "config_directory")
            && !maincf_find(ctx->maincf, "config_directory"))
            argv_add(list, "config_directory");
    } else {
        for (size_t i = 0; i < param_table_size; i++)
            argv_add(list, param_table[i].name);
        if (ctx->maincf && !(flags & CONF_SHOW_DEFAULTS))
            HTABLE_FOREACH(ctx->maincf->entries, ent)
                if (!param_find(ent->key) && htable_locate(refs, ent->key))
                    argv_add(list, ent->key);
    }
    qsort(list->argv, list->argc, sizeof(char *), conf_name_cmp);
    for (size_t i = 0; i < list->argc; i++)
        (void) conf_show_one(ctx, list->argv[i], flags, refs);
done:
    argv_free(&list);
    htable_free(&refs, NULL);
}

/* --- editing main.cf -------------------------------------------------- */

/*
 * Physical lines of a file, each tagged with the logical entry it belongs
 * to (the parameter name for main.cf, "service/type" for master.cf), or
 * NULL for comments, blank lines and text before any entry.
 */
typedef struct CONF_LINES {
    ARGV   *text;                       /* physical lines without newline */
    ARGV   *owner;                      /* entry name or "" */
} CONF_LINES;

static int conf_is_comment(const char *line)
{
    line += strspn(line, " \t\r");
    return *line == 0 || *line == '#';
}

typedef void (*CONF_KEY_FN)(const char *logical_start, STRBUF *key);

static void conf_maincf_key(const char *line, STRBUF *key)
{
    size_t n = strcspn(line, " \t=");

    strbuf_reset(key);
    if (maincf_valid_name(line, n))
        strbuf_append(key, line, n);
}

static void conf_mastercf_key(const char *line, STRBUF *key)
{
    ARGV *words = argv_split(line, " \t\r");

    strbuf_reset(key);
    if (words->argc >= 2)
        strbuf_printf(key, "%s/%s", words->argv[0], words->argv[1]);
    argv_free(&words);
}

static CONF_LINES *conf_lines_read(const char *path, CONF_KEY_FN key_fn,
                                   int must_exist)
{
    CONF_LINES *cl = xmalloc(sizeof(*cl));
    STRBUF *text = strbuf_alloc(8192);
    STRBUF *key = strbuf_alloc(64);
    char *cp;

    cl->text = argv_alloc(64);
    cl->owner = argv_alloc(64);
    if (cfline_read_file(path, text) < 0) {
        if (errno != ENOENT || must_exist)
            msg_fatal("open %s: %m", path);
    }
    cp = text->data;
    while (cp < text->data + text->len) {
        char *nl = memchr(cp, '\n', (size_t) (text->data + text->len - cp));
        size_t len = nl ? (size_t) (nl - cp) : strlen(cp);

        argv_addn(cl->text, cp, len);
        cp += len + (nl ? 1 : 0);
        if (conf_is_comment(cl->text->argv[cl->text->argc - 1])) {
            argv_add(cl->owner, "");
            continue;
        }
        if (!isspace((unsigned char) *cl->text->argv[cl->text->argc - 1])) {
            key_fn(cl->text->argv[cl->text->argc - 1], key);
            argv_add(cl->owner, key->data);
        } else {
            /* A continuation belongs to the entry above it. */
            size_t i = cl->owner->argc;

            while (i > 0 && conf_is_comment(cl->text->argv[i - 1]))
                i--;
            argv_add(cl->owner, i > 0 ? cl->owner->argv[i - 1] : "");
        }
    }
    strbuf_free(&text);
    strbuf_free(&key);
    return cl;
}

static void conf_lines_free(CONF_LINES **clp)
{
    argv_free(&(*clp)->text);
    argv_free(&(*clp)->owner);
    xfree(clp);
}

static void conf_lines_write(const char *path, CONF_LINES *cl)
{
    STRBUF *out = strbuf_alloc(8192);
    STRBUF *err = strbuf_alloc(128);

    for (size_t i = 0; i < cl->text->argc; i++) {
        strbuf_cat(out, cl->text->argv[i]);
        strbuf_addch(out, '\n');
    }
    if (file_write_atomic(path, out->data, out->len, 0644, err) < 0)
        msg_fatal("%s", err->data);
    strbuf_free(&out);
    strbuf_free(&err);
}

/*
 * Apply an edit to every entry named key: replace it with new_text (its
 * first line takes the text, continuation lines go), comment it out, or
 * delete it.  Interior comment lines stay.  Returns how many entries.
 */
static int conf_lines_edit(CONF_LINES *cl, const char *key, CONF_MODE mode,
                           const char *new_text)
{
    ARGV *text = argv_alloc(cl->text->argc + 1);
    ARGV *owner = argv_alloc(cl->text->argc + 1);
    STRBUF *tmp = strbuf_alloc(256);
    int count = 0;

    for (size_t i = 0; i < cl->text->argc; i++) {
        const char *line = cl->text->argv[i];
        int mine = strcmp(cl->owner->argv[i], key) == 0;
        int first = mine && !isspace((unsigned char) *line);

        if (!mine) {
            argv_add(text, line);
            argv_add(owner, cl->owner->argv[i]);
            continue;
        }
        count += first;
        if (mode == CONF_MODE_EDIT && first) {
            argv_add(text, new_text);
            argv_add(owner, key);
        } else if (mode == CONF_MODE_COMMENT) {
            strbuf_printf(tmp, "#%s", line);
            argv_add(text, tmp->data);
            argv_add(owner, "");
        }
    }
    argv_free(&cl->text);
    argv_free(&cl->owner);
    cl->text = text;
    cl->owner = owner;
    strbuf_free(&tmp);
    return count;
}

static void conf_edit_maincf(const char *config_dir, CONF_MODE mode,
                             char **args, int nargs)
{
    STRBUF *path = strbuf_alloc(256);
    STRBUF *line = strbuf_alloc(256);
    CONF_LINES *cl;

    strbuf_printf(path, "%s/main.cf", config_dir);
    cl = conf_lines_read(path->data, conf_maincf_key, mode != CONF_MODE_EDIT);
    for (int i = 0; i < nargs; i++) {
        char *copy = xstrdup(args[i]);
        const char *why;
        char *name = copy;
        char *value = NULL;
        int count;

        if (mode == CONF_MODE_EDIT) {
            if (maincf_split_line(copy, &name, &value, &why) < 0)
                msg_fatal("bad name=value: \"%s\": %s", args[i], why);
            strbuf_printf(line, "%s = %s", name, value);
        } else if (!maincf_valid_name(name, strlen(name))) {
            msg_fatal("bad parameter name: \"%s\"", name);
        }
        count = conf_lines_edit(cl, name, mode, line->data);
        if (count > 1)
            msg_warn("%s: multiple entries for \"%s\"", path->data, name);
        if (count == 0 && mode == CONF_MODE_EDIT) {
            argv_add(cl->text, line->data);
            argv_add(cl->owner, name);
        }
        if (mode == CONF_MODE_EDIT && !param_find(name))
            msg_warn("%s: unknown parameter: %s", path->data, name);
        free(copy);
    }
    conf_lines_write(path->data, cl);
    conf_lines_free(&cl);
    strbuf_free(&path);
    strbuf_free(&line);
}

/* --- master.cf -------------------------------------------------------- */

static int conf_master_match(const MASTER_ENT *ent, const char *spec)
{
    const char *slash = strchr(spec, '/');

    if (slash == NULL)
        return strcmp(ent->service, spec) == 0;
    return strncmp(ent->service, spec, (size_t) (slash - spec)) == 0
        && ent->service[slash - spec] == 0
        && strcmp(ent->type, slash + 1) == 0;
}

static int conf_master(const char *config_dir, int fold, CONF_MODE mode,
                       char **args, int nargs)
{
    STRBUF *path = strbuf_alloc(256);
    STRBUF *err = strbuf_alloc(256);
    STRBUF *out = strbuf_alloc(256);
    MASTERCF *cf;
    int status = 0;

    strbuf_printf(path, "%s/master.cf", config_dir);
    if (mode != CONF_MODE_SHOW || (nargs > 0 && strchr(args[0], '='))) {
        CONF_LINES *cl = conf_lines_read(path->data, conf_mastercf_key, 0);

        for (int i = 0; i < nargs; i++) {
            char *copy = xstrdup(args[i]);
            char *eq = strchr(copy, '=');
            char *key = copy;

            if (eq)
                *eq++ = 0;
            if (strchr(key, '/') == NULL)
                msg_fatal("-M edits need service/type: \"%s\"", args[i]);
            if (mode == CONF_MODE_SHOW) {
                /* service/type=entry: check it parses, then store it. */
                MASTERCF *check = mastercf_alloc(args[i]);

                if (eq == NULL
                    || mastercf_parse(check, eq, strlen(eq), err) < 0)
                    msg_fatal("bad master.cf entry: \"%s\"%s%s", args[i],
                              eq ? ": " : "", eq ? err->data : "");
                mastercf_free(&check);
                if (conf_lines_edit(cl, key, CONF_MODE_EDIT, eq) == 0) {
                    argv_add(cl->text, eq);
                    argv_add(cl->owner, key);
                }
            } else {
                (void) conf_lines_edit(cl, key, mode, NULL);
            }
            free(copy);
        }
        conf_lines_write(path->data, cl);
        conf_lines_free(&cl);
        goto done;
    }
    cf = mastercf_alloc(path->data);
    if (mastercf_read(cf, err) < 0)
        msg_fatal("%s", err->data);
    for (size_t i = 0; i < cf->count; i++) {
        int want = nargs == 0;

        for (int k = 0; k < nargs && !want; k++)
            want = conf_master_match(cf->entries[i], args[k]);
        if (!want)
            continue;
        mastercf_format_entry(cf->entries[i], fold, out);
        puts(out->data);
    }
    mastercf_free(&cf);
done:
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&out);
    return status;
}

/* --- main ------------------------------------------------------------- */

/* Print parameters: main.cf (unless -d) over defaults, -o on top. */
static void conf_show_main(const char *config_dir, int flags,
                           const ARGV *overrides, char **names, int nnames)
{
    STRBUF *err = strbuf_alloc(256);
    STRBUF *path = strbuf_alloc(256);
    MAINCF *cf;
    PARAM_CTX *ctx;

    if ((flags & CONF_SHOW_DEFAULTS) && (flags & CONF_SHOW_NONDEF))
        msg_fatal("specify one of -d and -n");
    strbuf_printf(path, "%s/main.cf", config_dir);
    cf = maincf_alloc(path->data);
    if (maincf_read(cf, err) < 0) {
        if (!(flags & CONF_SHOW_DEFAULTS))
            msg_fatal("%s", err->data);
        maincf_free(&cf);
    }
    ctx = param_ctx_alloc(cf);
    ctx->defaults_only = (flags & CONF_SHOW_DEFAULTS) != 0;
    strbuf_printf(path, "config_directory=%s", config_dir);
    if (param_ctx_override(ctx, path->data, "-c", err) < 0)
        msg_fatal("%s", err->data);
    for (size_t i = 0; i < overrides->argc; i++)
        if (param_ctx_override(ctx, overrides->argv[i], "-o", err) < 0)
            msg_fatal("%s", err->data);
    if (cf && !(flags & CONF_SHOW_DEFAULTS))
        params_warn_unknown(ctx);
    conf_show(ctx, flags, names, nnames);
    param_ctx_free(&ctx);
    maincf_free(&cf);
    strbuf_free(&err);
    strbuf_free(&path);
}

int postern_conf_main(int argc, char **argv, const char *config_dir)
{
    ARGV *overrides = argv_alloc(4);
    CONF_MODE mode = CONF_MODE_SHOW;
    int master = 0;
    int status = 0;
    int flags = 0;
    int ch;

    while ((ch = getopt(argc, argv, "c:dnxhHfe#XMo:v")) != -1) {
        switch (ch) {
        case 'c':
            config_dir = optarg;
            break;
        case 'd':
            flags |= CONF_SHOW_DEFAULTS;
            break;
        case 'n':
            flags |= CONF_SHOW_NONDEF;
            break;
        case 'x':
            flags |= CONF_EXPAND;
            break;
        case 'h':
            flags |= CONF_VALUE_ONLY;
            break;
        case 'H':
            flags |= CONF_NAME_ONLY;
            break;
        case 'f':
            flags |= CONF_FOLD;
            break;
        case 'e':
            mode = CONF_MODE_EDIT;
            break;
        case '#':
            mode = CONF_MODE_COMMENT;
            break;
        case 'X':
            mode = CONF_MODE_DELETE;
            break;
        case 'M':
            master = 1;
            break;
        case 'o':
            argv_add(overrides, optarg);
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            conf_usage();
        }
    }
    conf_explicit_dir = config_dir != NULL || getenv("POSTERN_CONFIG_DIR");
    config_dir = params_config_dir(config_dir);
    argc -= optind;
    argv += optind;

    /* Bare name=value arguments mean -e, as with postconf. */
    if (!master && mode == CONF_MODE_SHOW && argc > 0 && strchr(argv[0], '='))
        mode = CONF_MODE_EDIT;
    if (master) {
        status = conf_master(config_dir, (flags & CONF_FOLD) != 0, mode, argv,
                             argc);
    } else if (mode != CONF_MODE_SHOW) {
        if (argc == 0)
            conf_usage();
        conf_edit_maincf(config_dir, mode, argv, argc);
    } else {
        conf_show_main(config_dir, flags, overrides, argv, argc);
    }
    argv_free(&overrides);
    return status;
}
