/*
 * sendmail_addr - extract addresses from RFC 5322 address lists.
 *
 * A small tokenizer (atoms, quoted strings, domain literals, comments,
 * specials) and a one-pass scan: outside angle brackets, "," and ";" end
 * a mailbox and ":" ends a group name; inside them, the tokens are the
 * address, minus an obsolete source route ("@a,@b:").  A mailbox without
 * angle brackets is its tokens joined without white space.  It never
 * fails: text that holds no address yields none.
 */
#include <string.h>

#include "sendmail.h"

typedef struct SM_ADDR_SCAN {
    const char *cp;
    STRBUF *phrase;                     /* tokens outside <> */
    STRBUF *angle;                      /* tokens inside <> */
    int     in_angle;
    int     seen_angle;
    int     in_route;                   /* skipping "@a,@b:" in <> */
    size_t  count;
} SM_ADDR_SCAN;

/* Characters that end an atom. */
static int sm_addr_special(int c)
{
    return c <= ' ' || c == 0x7f || strchr("()<>@,;:\\\".[]", c) != NULL;
}

/* Skip a comment; nested parentheses and backslash escapes. */
static const char *sm_addr_comment(const char *cp)
{
    int depth = 0;

    for (; *cp; cp++) {
        if (*cp == '\\' && cp[1])
            cp++;
        else if (*cp == '(')
            depth++;
        else if (*cp == ')' && --depth == 0)
            return cp + 1;
    }
    return cp;
}

/* The end of a quoted string or domain literal that starts at cp. */
static const char *sm_addr_quoted(const char *cp, int close)
{
    for (cp++; *cp && *cp != close; cp++)
        if (*cp == '\\' && cp[1])
            cp++;
    return *cp ? cp + 1 : cp;
}

static void sm_addr_finish(SM_ADDR_SCAN *sc, ARGV *out, int keep_empty)
{
    STRBUF *addr = sc->seen_angle ? sc->angle : sc->phrase;

    if (addr->len > 0 || (sc->seen_angle && keep_empty)) {
        argv_add(out, addr->data);
        sc->count++;
    }
    strbuf_reset(sc->phrase);
    strbuf_reset(sc->angle);
    sc->in_angle = sc->seen_angle = sc->in_route = 0;
}

/* One token of text [start, end) inside angle brackets. */
static void sm_addr_angle_token(SM_ADDR_SCAN *sc, const char *start,
                                size_t len)
{
    if (sc->angle->len == 0 && !sc->in_route && len == 1 && *start == '@')
        sc->in_route = 1;
    if (sc->in_route) {
        if (len == 1 && *start == ':')
            sc->in_route = 0;
        return;
    }
    strbuf_append(sc->angle, start, len);
}

/* One special character outside angle brackets. */
static void sm_addr_outside_special(SM_ADDR_SCAN *sc, int c, ARGV *out,
                                    int keep_empty)
{
    switch (c) {
    case ',':
    case ';':
        sm_addr_finish(sc, out, keep_empty);
        break;
    case ':':                           /* a group name */
        strbuf_reset(sc->phrase);
        break;
    case '<':
        sc->in_angle = 1;
        sc->seen_angle = 1;
        strbuf_reset(sc->angle);
        break;
    case '>':
        break;
    default:                            /* @ . [ and friends */
        strbuf_addch(sc->phrase, c);
        break;
    }
}

size_t sm_addr_parse(const char *text, ARGV *out, int keep_empty)
{
    SM_ADDR_SCAN sc;
    size_t count;

    memset(&sc, 0, sizeof(sc));
    sc.phrase = strbuf_alloc(64);
    sc.angle = strbuf_alloc(64);
    for (sc.cp = text; *sc.cp;) {
        const char *start = sc.cp;
        int c = (unsigned char) *sc.cp;

        if (c == '(') {
            sc.cp = sm_addr_comment(sc.cp);
            continue;
        }
        if (c <= ' ' || c == 0x7f) {
            sc.cp++;
            continue;
        }
        if (c == '"' || c == '[')
            sc.cp = sm_addr_quoted(sc.cp, c == '"' ? '"' : ']');
        else if (!sm_addr_special(c))
            while (*sc.cp && !sm_addr_special((unsigned char) *sc.cp))
                sc.cp++;
        else
            sc.cp++;
        if (sc.in_angle) {
            if (c == '>')
                sc.in_angle = 0;
            else if (c != '<')
                sm_addr_angle_token(&sc, start, (size_t) (sc.cp - start));
        } else if (sc.cp - start == 1 && sm_addr_special(c) && c != '"'
                   && c != '[') {
            sm_addr_outside_special(&sc, c, out, keep_empty);
        } else if (!sc.seen_angle) {
            strbuf_append(sc.phrase, start, (size_t) (sc.cp - start));
        }
    }
    sm_addr_finish(&sc, out, keep_empty);
    count = sc.count;
    strbuf_free(&sc.phrase);
    strbuf_free(&sc.angle);
    return count;
}
