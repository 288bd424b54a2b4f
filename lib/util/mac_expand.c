/*
 * mac_expand - $name expansion with conditionals and relational tests.
 */
#include <ctype.h>
#include <string.h>

#include "util/mac_expand.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define MAC_MAX_DEPTH   100
#define MAC_MAX_OUTPUT  (1024 * 1024)   /* $a$a$a... chains grow fast */

typedef struct MAC_STATE {
    int     flags;
    MAC_LOOKUP lookup;
    void   *ctx;
    STRBUF *err;
    int     depth;
} MAC_STATE;

static int mac_expand_text(MAC_STATE *st, STRBUF *out, const char *text,
                           size_t len);

static int mac_is_name_char(int ch)
{
    return isalnum(ch) || ch == '_';
}

static const char *mac_skip_space(const char *cp, const char *end)
{
    while (cp < end && isspace((unsigned char) *cp))
        cp++;
    return cp;
}

/* Find the close that matches the open at *start within [start, end). */
static const char *mac_match(const char *start, const char *end, char open,
                             char close)
{
    int depth = 0;

    for (const char *cp = start; cp < end; cp++) {
        if (*cp == open)
            depth++;
        else if (*cp == close && --depth == 0)
            return cp;
    }
    return NULL;
}

/* Expand the value of one name (recursively if asked). */
static int mac_expand_name(MAC_STATE *st, STRBUF *out, const char *name,
                           size_t len)
{
    char *key = xstrndup(name, len);
    const char *value = st->lookup(key, st->ctx);
    int rc = 0;

    if (value != NULL) {
        if (st->flags & MAC_EXP_RECURSE) {
            if (++st->depth > MAC_MAX_DEPTH) {
                strbuf_printf(st->err, "unreasonable macro call nesting: "
                              "\"%s\"", key);
                rc = -1;
            } else {
                rc = mac_expand_text(st, out, value, strlen(value));
            }
            st->depth--;
            if (rc == 0 && out->len > MAC_MAX_OUTPUT) {
                strbuf_printf(st->err, "expansion of \"%s\" is longer than "
                              "%d bytes", key, MAC_MAX_OUTPUT);
                rc = -1;
            }
        } else {
            strbuf_cat(out, value);
        }
    }
    free(key);
    return rc;
}

/* Parse "{text}" at *cpp; on success [*start_r, *len_r) is the inside. */
static int mac_braced(MAC_STATE *st, const char **cpp, const char *end,
                      const char **start_r, size_t *len_r)
{
    const char *cp = mac_skip_space(*cpp, end);
    const char *close;

    if (cp >= end || *cp != '{'
        || (close = mac_match(cp, end, '{', '}')) == NULL) {
        strbuf_printf(st->err, "expected {text} in \"%.*s\"",
                      (int) (end - *cpp), *cpp);
        return -1;
    }
    *start_r = cp + 1;
    *len_r = (size_t) (close - cp - 1);
    *cpp = mac_skip_space(close + 1, end);
    return 0;
}

int mac_level_compare(const char *a, const char *b)
{
    unsigned long va[3] = {0, 0, 0};
    unsigned long vb[3] = {0, 0, 0};
    const char *strs[2] = {a, b};
    unsigned long *vals[2] = {va, vb};

    for (int k = 0; k < 2; k++) {
        const char *cp = strs[k];

        for (int i = 0; i < 3; i++) {
            size_t n = strspn(cp, "0123456789");

            if (str_to_ulong_n(cp, n, 1000000000UL, &vals[k][i]) < 0)
                return -2;
            cp += n;
            if (*cp == 0)
                break;
            if (*cp != '.' || i == 2)
                return -2;
            cp++;
        }
    }
    for (int i = 0; i < 3; i++)
        if (va[i] != vb[i])
            return va[i] < vb[i] ? -1 : 1;
    return 0;
}

static int mac_all_digits(const char *s)
{
    if (*s == 0)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char) *s))
            return 0;
    return 1;
}

/* Numeric comparison of digit strings of any length. */
static int mac_num_compare(const char *a, const char *b)
{
    size_t la;
    size_t lb;
    int c;

    while (*a == '0' && a[1])
        a++;
    while (*b == '0' && b[1])
        b++;
    la = strlen(a);
    lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    c = strcmp(a, b);
    return c < 0 ? -1 : c > 0;
}

/* Evaluate "{a} OP {b}" at *cpp; sets *truth_r. */
static int mac_relational(MAC_STATE *st, const char **cpp, const char *end,
                          int *truth_r)
{
    static const char *ops[] = {"==", "!=", "<=", ">=", "<", ">"};
    const char *a_start;
    const char *b_start;
    size_t a_len;
    size_t b_len;
    const char *op = NULL;
    int level = 0;
    STRBUF *a = NULL;
    STRBUF *b = NULL;
    int cmp;
    int rc = -1;

    if (mac_braced(st, cpp, end, &a_start, &a_len) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i]);

        if ((size_t) (end - *cpp) >= n && strncmp(*cpp, ops[i], n) == 0) {
            op = ops[i];
            *cpp += n;
            break;
        }
    }
    if (op == NULL) {
        strbuf_printf(st->err, "missing relational operator in \"%.*s\"",
                      (int) (end - *cpp), *cpp);
        return -1;
    }
    if ((size_t) (end - *cpp) >= 5 && strncmp(*cpp, "level", 5) == 0) {
        level = 1;
        *cpp += 5;
    }
    if (mac_braced(st, cpp, end, &b_start, &b_len) < 0)
        return -1;
    a = strbuf_alloc(64);
    b = strbuf_alloc(64);
    if (mac_expand_text(st, a, a_start, a_len) < 0
        || mac_expand_text(st, b, b_start, b_len) < 0)
        goto done;
    if (level) {
        if ((cmp = mac_level_compare(a->data, b->data)) == -2) {
            strbuf_printf(st->err, "bad compatibility level in \"%s\" %slevel "
                          "\"%s\"", a->data, op, b->data);
            goto done;
        }
    } else if (mac_all_digits(a->data) && mac_all_digits(b->data)) {
        cmp = mac_num_compare(a->data, b->data);
    } else {
        cmp = strcmp(a->data, b->data);
        cmp = cmp < 0 ? -1 : cmp > 0;
    }
    switch (op[0]) {
    case '=':
        *truth_r = cmp == 0;
        break;
    case '!':
        *truth_r = cmp != 0;
        break;
    case '<':
        *truth_r = op[1] ? cmp <= 0 : cmp < 0;
        break;
    default:
        *truth_r = op[1] ? cmp >= 0 : cmp > 0;
        break;
    }
    rc = 0;
done:
    strbuf_free(&a);
    strbuf_free(&b);
    return rc;
}

/* Expand the inside of ${...} (or $(...)). */
static int mac_expand_braced(MAC_STATE *st, STRBUF *out, const char *cp,
                             const char *end)
{
    const char *name = NULL;
    size_t name_len = 0;
    int truth = 0;
    const char *v1;
    const char *v2;
    size_t v1_len;
    size_t v2_len;
    STRBUF *tmp;
    char kind;

    cp = mac_skip_space(cp, end);
    if (cp < end && *cp == '{') {
        if (mac_relational(st, &cp, end, &truth) < 0)
            return -1;
    } else {
        name = cp;
        while (cp < end && mac_is_name_char((unsigned char) *cp))
            cp++;
        name_len = (size_t) (cp - name);
        if (name_len == 0 || (cp < end && *cp != '?' && *cp != ':')) {
            strbuf_printf(st->err, "bad parameter name in \"${%.*s}\"",
                          (int) (end - name), name);
            return -1;
        }
        if (cp == end)
            return mac_expand_name(st, out, name, name_len);
        tmp = strbuf_alloc(64);
        if (mac_expand_name(st, tmp, name, name_len) < 0) {
            strbuf_free(&tmp);
            return -1;
        }
        truth = tmp->len > 0;
        strbuf_free(&tmp);
    }
    if (cp >= end || (*cp != '?' && *cp != ':')) {
        strbuf_printf(st->err, "expected '?' or ':' in \"%.*s\"",
                      (int) (end - cp), cp);
        return -1;
    }
    kind = *cp++;
    if (mac_skip_space(cp, end) < end && *mac_skip_space(cp, end) == '{') {
        if (mac_braced(st, &cp, end, &v1, &v1_len) < 0)
            return -1;
    } else {
        /* Unbraced: the rest is the value (with name tests only). */
        v1 = cp;
        v1_len = (size_t) (end - cp);
        cp = end;
    }
    v2 = NULL;
    v2_len = 0;
    if (kind == '?' && cp < end && *cp == ':') {
        cp++;
        if (mac_skip_space(cp, end) < end
            && *mac_skip_space(cp, end) == '{') {
            if (mac_braced(st, &cp, end, &v2, &v2_len) < 0)
                return -1;
        } else {
            v2 = cp;
            v2_len = (size_t) (end - cp);
            cp = end;
        }
    }
    if (cp != end) {
        strbuf_printf(st->err, "unexpected text \"%.*s\"", (int) (end - cp),
                      cp);
        return -1;
    }
    if (kind == ':')
        return truth ? 0 : mac_expand_text(st, out, v1, v1_len);
    if (truth)
        return mac_expand_text(st, out, v1, v1_len);
    return v2 ? mac_expand_text(st, out, v2, v2_len) : 0;
}

static int mac_expand_text(MAC_STATE *st, STRBUF *out, const char *text,
                           size_t len)
{
    const char *end = text + len;
    const char *cp = text;

    while (cp < end) {
        const char *dollar = memchr(cp, '$', (size_t) (end - cp));
        const char *close;

        if (dollar == NULL) {
            strbuf_append(out, cp, (size_t) (end - cp));
            break;
        }
        strbuf_append(out, cp, (size_t) (dollar - cp));
        cp = dollar + 1;
        if (cp < end && *cp == '$') {
            strbuf_addch(out, '$');
            cp++;
        } else if (cp < end && (*cp == '{' || *cp == '(')) {
            char open = *cp;
            char shut = open == '{' ? '}' : ')';
            int rc;

            if ((close = mac_match(cp, end, open, shut)) == NULL) {
                strbuf_printf(st->err, "missing '%c' in \"%.*s\"", shut,
                              (int) (end - dollar), dollar);
                return -1;
            }
            /*
             * Nesting in the text itself counts too: deeply nested input
             * would otherwise overflow the stack (and rescan the text once
             * per level).
             */
            if (++st->depth > MAC_MAX_DEPTH) {
                strbuf_printf(st->err, "unreasonable macro call nesting: "
                              "\"%.*s\"", end - dollar < 60 ?
                              (int) (end - dollar) : 60, dollar);
                rc = -1;
            } else {
                rc = mac_expand_braced(st, out, cp + 1, close);
            }
            st->depth--;
            if (rc < 0)
                return -1;
            cp = close + 1;
        } else if (cp < end && mac_is_name_char((unsigned char) *cp)) {
            const char *name = cp;

            while (cp < end && mac_is_name_char((unsigned char) *cp))
                cp++;
            if (mac_expand_name(st, out, name, (size_t) (cp - name)) < 0)
                return -1;
        } else {
            strbuf_addch(out, '$');     /* a lone $ stays as it is */
        }
    }
    return 0;
}

int mac_expand(STRBUF *out, const char *text, int flags, MAC_LOOKUP lookup,
               void *ctx, STRBUF *err)
{
    MAC_STATE st;

    st.flags = flags;
    st.lookup = lookup;
    st.ctx = ctx;
    st.err = err;
    st.depth = 0;
    return mac_expand_text(&st, out, text, strlen(text));
}
