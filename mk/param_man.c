/*
 * param_man - generate main.cf(5) from the parameter table.
 *
 * Usage: param_man TEMPLATE > main.cf.5
 * Copies TEMPLATE, replacing the line "@PARAMETERS@" with one entry per
 * parameter of lib/mail/param_list.h: name, default and description.
 * Build-time tool only; never installed.
 */
#include <stdio.h>
#include <string.h>

#include "mail/params.h"
#include "util/cfline.h"
#include "util/msg.h"

/* Write text escaped for roff: backslashes, and a leading . or '. */
static void man_escape(const char *text)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", stdout);
    for (const char *cp = text; *cp; cp++) {
        if (*cp == '\\')
            fputs("\\e", stdout);
        else if (*cp == '-')
            fputs("\\-", stdout);
        else
            putchar(*cp);
    }
}

static const char *man_type(const PARAM_DEF *def)
{
    switch (def->type) {
    case PARAM_INT:
    case PARAM_LONG:
        return "number";
    case PARAM_BOOL:
        return "yes or no";
    case PARAM_TIME:
        return "time";
    default:
        return NULL;
    }
}

static void man_parameters(void)
{
    PARAM_CTX *ctx = param_ctx_alloc(NULL);

    for (size_t i = 0; i < param_table_size; i++) {
        const PARAM_DEF *def = &param_table[i];
        const char *type = man_type(def);

        printf(".SH %s (default: ", def->name);
        if (def->type == PARAM_FN)
            fputs("computed, see postern conf \\-d", stdout);
        else if (*def->defval)
            man_escape(def->defval);
        else
            fputs("empty", stdout);
        puts(")");
        man_escape(def->doc);
        putchar('\n');
        if (type) {
            printf(".br\nType: %s", type);
            if (def->type == PARAM_TIME)
                printf(" (default unit: %c; units s, m, h, d, w)", def->unit);
            if (def->type != PARAM_BOOL)
                printf("; range %ld to %ld", def->min, def->max);
            puts(".");
        }
    }
    param_ctx_free(&ctx);
}

int main(int argc, char **argv)
{
    STRBUF *text = strbuf_alloc(8192);
    char *line;
    char *next;

    msg_init(argv[0], MSG_STDERR);
    if (argc != 2)
        msg_fatal("usage: %s template", argv[0]);
    if (cfline_read_file(argv[1], text) < 0)
        msg_fatal("open %s: %m", argv[1]);
    for (line = text->data; *line; line = next) {
        size_t len = strcspn(line, "\n");

        next = line + len + (line[len] ? 1 : 0);
        if (len == 12 && strncmp(line, "@PARAMETERS@", 12) == 0)
            man_parameters();
        else
            fwrite(line, 1, (size_t) (next - line), stdout);
    }
    strbuf_free(&text);
    return ferror(stdout) ? 1 : 0;
}
