/*
 * maincf - main.cf reader.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mail/maincf.h"
#include "util/cfline.h"
#include "util/msg.h"
#include "util/xmalloc.h"

MAINCF *maincf_alloc(const char *path)
{
    MAINCF *cf = xmalloc(sizeof(*cf));

    cf->path = xstrdup(path);
    cf->entries = htable_alloc(128);
    return cf;
}

static void maincf_entry_free(void *ptr)
{
    MAINCF_ENTRY *ent = ptr;

    free(ent->name);
    free(ent->value);
    free(ent);
}

void maincf_free(MAINCF **cfp)
{
    if (*cfp == NULL)
        return;
    htable_free(&(*cfp)->entries, maincf_entry_free);
    free((*cfp)->path);
    xfree(cfp);
}

int maincf_valid_name(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char) name[i]) && name[i] != '_')
            return 0;
    return 1;
}

int maincf_split_line(char *line, char **name_r, char **value_r,
                      const char **why_r)
{
    char *name = line;
    char *cp;
    char *value;

    while (isspace((unsigned char) *name))
        name++;
    for (cp = name; *cp && *cp != '=' && !isspace((unsigned char) *cp); cp++)
        /* void */ ;
    if (!maincf_valid_name(name, (size_t) (cp - name))) {
        *why_r = "bad parameter name";
        return -1;
    }
    value = cp;
    while (isspace((unsigned char) *value))
        value++;
    if (*value != '=') {
        *why_r = "missing '=' after parameter name";
        return -1;
    }
    *cp = 0;
    value++;
    while (isspace((unsigned char) *value))
        value++;
    /* Trailing whitespace: cfline already removed it per physical line. */
    cp = value + strlen(value);
    while (cp > value && isspace((unsigned char) cp[-1]))
        *--cp = 0;
    *name_r = name;
    *value_r = value;
    return 0;
}

int maincf_parse(MAINCF *cf, const char *text, size_t len, STRBUF *err)
{
    STRBUF *line = strbuf_alloc(256);
    CFLINE reader;
    int lineno;
    int leading_ws;
    int rc;

    cfline_init(&reader, text, len);
    while ((rc = cfline_next(&reader, line, &lineno, &leading_ws)) > 0) {
        MAINCF_ENTRY *ent;
        HTABLE_ENTRY *hent;
        const char *why;
        char *name;
        char *value;

        if (leading_ws)
            msg_warn("%s, line %d: logical line must not start with "
                     "whitespace", cf->path, lineno);
        if (maincf_split_line(line->data, &name, &value, &why) < 0) {
            strbuf_printf(err, "%s, line %d: %s: \"%s\"", cf->path, lineno,
                          why, line->data);
            strbuf_free(&line);
            return -1;
        }
        if ((hent = htable_locate(cf->entries, name)) != NULL) {
            ent = hent->value;
            msg_warn("%s, line %d: overriding earlier entry: %s=%s", cf->path,
                     lineno, name, ent->value);
            /* The last one wins, and takes the later place in file order. */
            htable_delete(cf->entries, name, maincf_entry_free);
        }
        ent = xmalloc(sizeof(*ent));
        ent->name = xstrdup(name);
        ent->value = xstrdup(value);
        ent->lineno = lineno;
        htable_enter(cf->entries, name, ent);
    }
    strbuf_free(&line);
    if (rc < 0) {
        strbuf_printf(err, "%s, line %d: NUL byte in input", cf->path,
                      lineno);
        return -1;
    }
    return 0;
}

static int maincf_parse_cb(void *ctx, const char *text, size_t len,
                           STRBUF *err)
{
    return maincf_parse(ctx, text, len, err);
}

int maincf_read(MAINCF *cf, STRBUF *err)
{
    return cfline_parse_file(cf->path, maincf_parse_cb, cf, err);
}

const MAINCF_ENTRY *maincf_find(const MAINCF *cf, const char *name)
{
    return htable_find(cf->entries, name);
}
