/*
 * dict_pcre - pcre:/path lookup tables (Postfix pcre_table(5)); the
 * syntax and where Postern is stricter than Postfix are in dict_pcre.h.
 *
 * Rules are kept in one array in file order.  An "if" rule records the
 * index of its "endif", so a lookup that fails the "if" jumps past the
 * block.  Every pattern is compiled when the table is opened (and JIT
 * compiled when the library can), so a lookup only runs pcre2_match().
 *
 * Matching is bounded: the keys are hostile (header values, client names,
 * addresses), and a pattern with nested quantifiers can backtrack for
 * hours on a few dozen bytes.  The limits below make such a lookup fail
 * quickly instead; patterns may lower them with (*LIMIT_MATCH=n) and
 * friends, never raise them.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcre2.h>

#include "mail/dict_pcre.h"
#include "util/cfline.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

/*
 * Limits per pcre2_match() call.  The match limit bounds time (about
 * 10 ms with JIT, 25 ms interpreted, on a 2020s x86-64); the depth and
 * heap limits bound the interpreter's backtracking memory (JIT ignores
 * them and uses its own stack, bounded by DICT_PCRE_JIT_STACK_MAX).
 * Ordinary header_checks patterns on a 100 kB header stay far below all
 * of them.  PCRE2's own defaults are 10 million matches and 20 GB of heap.
 */
#define DICT_PCRE_MATCH_LIMIT   1000000
#define DICT_PCRE_DEPTH_LIMIT   100000
#define DICT_PCRE_HEAP_LIMIT    (64 * 1024)     /* KiB */
#define DICT_PCRE_JIT_STACK_MIN (32 * 1024)
#define DICT_PCRE_JIT_STACK_MAX (1024 * 1024)

/* PCRE2 allows at most 65535 capture groups. */
#define DICT_PCRE_MAX_GROUP     65535

#define DICT_PCRE_OP_MATCH  1
#define DICT_PCRE_OP_IF     2
#define DICT_PCRE_OP_ENDIF  3

typedef struct DICT_PCRE_RULE {
    int     op;                         /* DICT_PCRE_OP_* */
    int     lineno;                     /* where the rule starts */
    int     negate;                     /* applies when there is no match */
    pcre2_code *code;                   /* MATCH and IF */
    char   *result;                     /* MATCH: template with $n */
    size_t  endif;                      /* IF: index of its ENDIF */
} DICT_PCRE_RULE;

typedef struct DICT_PCRE {
    DICT    dict;
    DICT_PCRE_RULE *rules;
    size_t  nrules;
    size_t  rules_alloc;
    pcre2_general_context *gcontext;    /* allocates with xmalloc */
    pcre2_match_context *mcontext;      /* the limits */
    pcre2_jit_stack *jit_stack;
    pcre2_match_data *match_data;       /* room for the most groups */
    STRBUF *result;                     /* lookup result */
} DICT_PCRE;

/* A pattern as written: the text between the delimiters and its flags. */
typedef struct DICT_PCRE_PATTERN {
    const char *regex;
    size_t  len;
    uint32_t options;
    int     negate;
} DICT_PCRE_PATTERN;

/* Parser state for one table text. */
typedef struct DICT_PCRE_PARSE {
    DICT_PCRE *dp;
    const char *origin;
    pcre2_compile_context *ccontext;
    size_t *if_stack;                   /* rule indices of open ifs */
    size_t  if_depth;
    size_t  if_alloc;
    uint32_t max_groups;                /* over all patterns */
    STRBUF *err;
} DICT_PCRE_PARSE;

/*
 * PCRE2 allocates through these, so that running out of memory ends the
 * process as everywhere else instead of looking like a bad pattern.
 */
static void *dict_pcre_malloc(PCRE2_SIZE len, void *ctx)
{
    (void) ctx;
    return xmalloc(len ? len : 1);
}

static void dict_pcre_free(void *ptr, void *ctx)
{
    (void) ctx;
    free(ptr);
}

static void dict_pcre_nomem(void *ptr, const char *what)
{
    if (ptr == NULL)
        msg_fatal("dict_pcre: %s: out of memory", what);
}

/* dict_pcre_error_text - PCRE2's message for an error code. */
static void dict_pcre_error_text(int code, STRBUF *out)
{
    /* The library writes at most sizeof(text) bytes and terminates them. */
    PCRE2_UCHAR text[256];

    if (pcre2_get_error_message(code, text, sizeof(text)) < 0)
        strbuf_printf(out, "PCRE2 error %d", code);
    else
        strbuf_set(out, (const char *) text);
}

/* dict_pcre_syntax - set err to "ORIGIN, line N: reason"; returns -1. */
static int dict_pcre_syntax(DICT_PCRE_PARSE *ps, int lineno,
                            const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int dict_pcre_syntax(DICT_PCRE_PARSE *ps, int lineno,
                            const char *fmt, ...)
{
    va_list ap;

    strbuf_printf(ps->err, "%s, line %d: ", ps->origin, lineno);
    va_start(ap, fmt);
    strbuf_vprintf_append(ps->err, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * dict_pcre_group - check the name of a $name, ${name} or $(name)
 * reference and return its group number.  Like Postfix, "$1x" names
 * group "1x", which is an error, and "$10" is group 10.
 */
static int dict_pcre_group(const char *name, size_t len,
                           unsigned long *n_r, STRBUF *why)
{
    if (len == 0) {
        strbuf_set(why, "\"$\" without a group number (write \"$$\" for "
                   "a literal \"$\")");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char) name[i])) {
            strbuf_printf(why, "\"%.*s\" after \"$\" is not a group number "
                          "(write \"$$\" for a literal \"$\")", (int) len,
                          name);
            return -1;
        }
    }
    while (len > 1 && *name == '0')
        name++, len--;
    if (str_to_ulong_n(name, len, DICT_PCRE_MAX_GROUP, n_r) < 0
        || *n_r == 0) {
        strbuf_printf(why, "group number $%.*s is out of range", (int) len,
                      name);
        return -1;
    }
    return 0;
}

/*
 * dict_pcre_expand - walk a result template in Postfix mac_parse(3)
 * syntax.  Without a match (ovec NULL) only check it and report the
 * highest group used in *max_r; with one, append the expansion to out.
 * A group that took no part in the match expands to nothing.
 */
static int dict_pcre_expand(const char *tmpl, const char *subject,
                            const PCRE2_SIZE *ovec, int groups, STRBUF *out,
                            unsigned long *max_r, STRBUF *why)
{
    const char *cp = tmpl;
    const char *name;
    unsigned long n;
    size_t len;

    if (max_r)
        *max_r = 0;
    while (*cp) {
        if (*cp != '$') {
            len = strcspn(cp, "$");
            if (out)
                strbuf_append(out, cp, len);
            cp += len;
            continue;
        }
        if (cp[1] == '$') {
            if (out)
                strbuf_addch(out, '$');
            cp += 2;
            continue;
        }
        cp++;
        if (*cp == '{' || *cp == '(') {
            char lparen = *cp;
            char rparen = lparen == '{' ? '}' : ')';
            int level = 1;

            name = ++cp;
            for (; *cp; cp++)
                if (*cp == lparen)
                    level++;
                else if (*cp == rparen && --level == 0)
                    break;
            if (*cp == 0) {
                strbuf_printf(why, "missing \"%c\" after \"$%c\"", rparen,
                              lparen);
                return -1;
            }
            len = (size_t) (cp++ - name);
        } else {
            name = cp;
            while (isalnum((unsigned char) *cp) || *cp == '_')
                cp++;
            len = (size_t) (cp - name);
        }
        if (dict_pcre_group(name, len, &n, why) < 0)
            return -1;
        if (max_r && n > *max_r)
            *max_r = n;
        if (ovec && out && n < (unsigned long) groups
            && ovec[2 * n] != PCRE2_UNSET && ovec[2 * n] < ovec[2 * n + 1])
            strbuf_append(out, subject + ovec[2 * n],
                          ovec[2 * n + 1] - ovec[2 * n]);
    }
    return 0;
}

/*
 * dict_pcre_parse_pattern - [!...]DELIM regex DELIM flags at *cpp.  On
 * success *cpp points after the flags.  As in Postfix, "!" may repeat
 * (each one flips the sense) and be followed by whitespace, and a
 * backslash hides the next character, delimiter included; the backslash
 * stays in the pattern for PCRE2 to read.
 */
static int dict_pcre_parse_pattern(DICT_PCRE_PARSE *ps, int lineno,
                                   const char **cpp, DICT_PCRE_PATTERN *pat)
{
    const char *cp = *cpp;
    char delim;

    pat->negate = 0;
    for (; *cp == '!' || isspace((unsigned char) *cp); cp++)
        if (*cp == '!')
            pat->negate = !pat->negate;
    if (*cp == 0)
        return dict_pcre_syntax(ps, lineno, "missing regular expression");
    delim = *cp++;
    pat->regex = cp;
    for (; *cp; cp++) {
        if (*cp == '\\') {
            if (cp[1] == 0)
                break;
            cp++;
        } else if (*cp == delim) {
            break;
        }
    }
    if (*cp == 0)
        return dict_pcre_syntax(ps, lineno, "missing closing delimiter "
                                "\"%c\" of the regular expression", delim);
    pat->len = (size_t) (cp++ - pat->regex);

    pat->options = PCRE2_CASELESS | PCRE2_DOTALL;
    for (; *cp && !isspace((unsigned char) *cp); cp++) {
        switch (*cp) {
        case 'i':
            pat->options ^= PCRE2_CASELESS;
            break;
        case 'm':
            pat->options ^= PCRE2_MULTILINE;
            break;
        case 's':
            pat->options ^= PCRE2_DOTALL;
            break;
        case 'x':
            pat->options ^= PCRE2_EXTENDED;
            break;
        case 'A':
            pat->options ^= PCRE2_ANCHORED;
            break;
        case 'E':
            pat->options ^= PCRE2_DOLLAR_ENDONLY;
            break;
        case 'U':
            pat->options ^= PCRE2_UNGREEDY;
            break;
        case 'X':
            /* PCRE_EXTRA: PCRE2 always rejects unknown escapes. */
            break;
        default:
            if (isprint((unsigned char) *cp))
                return dict_pcre_syntax(ps, lineno, "unknown regular "
                                        "expression flag \"%c\"", *cp);
            return dict_pcre_syntax(ps, lineno, "unknown regular "
                                    "expression flag \\x%02x",
                                    (unsigned char) *cp);
        }
    }
    *cpp = cp;
    return 0;
}

/*
 * dict_pcre_compile - compile and JIT-compile a pattern; *groups_r gets
 * its number of capture groups.  A pattern that turns UTF on itself with
 * (*UTF) is compiled again with PCRE2_MATCH_INVALID_UTF, so that a key
 * that is not UTF-8 fails to match instead of failing the lookup.
 */
static pcre2_code *dict_pcre_compile(DICT_PCRE_PARSE *ps, int lineno,
                                     const DICT_PCRE_PATTERN *pat,
                                     uint32_t *groups_r)
{
    pcre2_code *code;
    uint32_t all_options;
    PCRE2_SIZE offset;
    int errcode;

    code = pcre2_compile((PCRE2_SPTR) pat->regex, pat->len, pat->options,
                         &errcode, &offset, ps->ccontext);
    if (code != NULL
        && pcre2_pattern_info(code, PCRE2_INFO_ALLOPTIONS, &all_options) == 0
        && (all_options & PCRE2_UTF)) {
        pcre2_code_free(code);
        code = pcre2_compile((PCRE2_SPTR) pat->regex, pat->len,
                             pat->options | PCRE2_MATCH_INVALID_UTF,
                             &errcode, &offset, ps->ccontext);
    }
    if (code == NULL) {
        STRBUF *why = strbuf_alloc(128);

        if (errcode == PCRE2_ERROR_NOMEMORY)
            msg_fatal("dict_pcre: pcre2_compile: out of memory");
        dict_pcre_error_text(errcode, why);
        dict_pcre_syntax(ps, lineno, "error in regular expression at "
                         "offset %zu: %s", (size_t) offset, why->data);
        strbuf_free(&why);
        return NULL;
    }
    /* Without JIT (unsupported CPU, no executable memory) we interpret. */
    (void) pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    if (pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, groups_r) != 0)
        msg_panic("dict_pcre: pcre2_pattern_info failed");
    if (*groups_r > ps->max_groups)
        ps->max_groups = *groups_r;
    return code;
}

static DICT_PCRE_RULE *dict_pcre_rule_add(DICT_PCRE *dp, int op, int lineno)
{
    DICT_PCRE_RULE *rule;

    if (dp->nrules == dp->rules_alloc) {
        dp->rules_alloc = dp->rules_alloc ? 2 * dp->rules_alloc : 16;
        dp->rules = xreallocarray(dp->rules, dp->rules_alloc,
                                  sizeof(*dp->rules));
    }
    rule = dp->rules + dp->nrules++;
    memset(rule, 0, sizeof(*rule));
    rule->op = op;
    rule->lineno = lineno;
    return rule;
}

/* dict_pcre_check_result - syntax check; *max_r gets the highest $n. */
static int dict_pcre_check_result(DICT_PCRE_PARSE *ps, int lineno,
                                  const char *result, unsigned long *max_r)
{
    STRBUF *why = strbuf_alloc(64);
    int status = 0;

    if (dict_pcre_expand(result, NULL, NULL, 0, NULL, max_r, why) < 0)
        status = dict_pcre_syntax(ps, lineno, "bad result: %s", why->data);
    strbuf_free(&why);
    return status;
}

/* dict_pcre_parse_match - "[!]/pattern/flags result". */
static int dict_pcre_parse_match(DICT_PCRE_PARSE *ps, int lineno,
                                 const char *cp)
{
    DICT_PCRE_PATTERN pat;
    DICT_PCRE_RULE *rule;
    pcre2_code *code;
    unsigned long max_group;
    uint32_t groups;

    if (dict_pcre_parse_pattern(ps, lineno, &cp, &pat) < 0)
        return -1;
    while (isspace((unsigned char) *cp))
        cp++;
    if (*cp == 0)
        return dict_pcre_syntax(ps, lineno, "missing result after the "
                                "regular expression");
    if (dict_pcre_check_result(ps, lineno, cp, &max_group) < 0)
        return -1;
    if (pat.negate && max_group > 0)
        return dict_pcre_syntax(ps, lineno, "$%lu in the result of a "
                                "negated pattern (there is no match to "
                                "take it from)", max_group);
    if ((code = dict_pcre_compile(ps, lineno, &pat, &groups)) == NULL)
        return -1;
    if (max_group > groups) {
        pcre2_code_free(code);
        return dict_pcre_syntax(ps, lineno, "result refers to $%lu, but the "
                                "pattern has %u group%s", max_group,
                                (unsigned) groups, groups == 1 ? "" : "s");
    }
    rule = dict_pcre_rule_add(ps->dp, DICT_PCRE_OP_MATCH, lineno);
    rule->negate = pat.negate;
    rule->code = code;
    rule->result = xstrdup(cp);
    return 0;
}

/* dict_pcre_parse_if - "if [!]/pattern/flags", after the "if". */
static int dict_pcre_parse_if(DICT_PCRE_PARSE *ps, int lineno, const char *cp)
{
    DICT_PCRE_PATTERN pat;
    DICT_PCRE_RULE *rule;
    pcre2_code *code;
    uint32_t groups;

    while (isspace((unsigned char) *cp))
        cp++;
    if (dict_pcre_parse_pattern(ps, lineno, &cp, &pat) < 0)
        return -1;
    while (isspace((unsigned char) *cp))
        cp++;
    /* Usually an indented rule, which continues the "if" line. */
    if (*cp != 0)
        return dict_pcre_syntax(ps, lineno, "text after the \"if\" pattern "
                                "(lines between if and endif must not "
                                "start with whitespace)");
    if ((code = dict_pcre_compile(ps, lineno, &pat, &groups)) == NULL)
        return -1;
    rule = dict_pcre_rule_add(ps->dp, DICT_PCRE_OP_IF, lineno);
    rule->negate = pat.negate;
    rule->code = code;
    if (ps->if_depth == ps->if_alloc) {
        ps->if_alloc = ps->if_alloc ? 2 * ps->if_alloc : 8;
        ps->if_stack = xreallocarray(ps->if_stack, ps->if_alloc,
                                     sizeof(*ps->if_stack));
    }
    ps->if_stack[ps->if_depth++] = ps->dp->nrules - 1;
    return 0;
}

/* dict_pcre_parse_endif - "endif", after the "endif". */
static int dict_pcre_parse_endif(DICT_PCRE_PARSE *ps, int lineno,
                                 const char *cp)
{
    while (isspace((unsigned char) *cp))
        cp++;
    if (*cp != 0)
        return dict_pcre_syntax(ps, lineno, "text after \"endif\"");
    if (ps->if_depth == 0)
        return dict_pcre_syntax(ps, lineno, "\"endif\" without \"if\"");
    (void) dict_pcre_rule_add(ps->dp, DICT_PCRE_OP_ENDIF, lineno);
    ps->dp->rules[ps->if_stack[--ps->if_depth]].endif = ps->dp->nrules - 1;
    return 0;
}

/*
 * dict_pcre_keyword - does the line start with the keyword (any case,
 * as in Postfix) followed by something that cannot continue a word?
 */
static int dict_pcre_keyword(const char *line, const char *word)
{
    size_t len = strlen(word);

    return strncasecmp(line, word, len) == 0
        && !isalnum((unsigned char) line[len]);
}

static int dict_pcre_parse_line(DICT_PCRE_PARSE *ps, int lineno,
                                const char *line)
{
    /* As in Postfix: a rule starts with anything but a letter or digit. */
    if (!isalnum((unsigned char) *line))
        return dict_pcre_parse_match(ps, lineno, line);
    if (dict_pcre_keyword(line, "if"))
        return dict_pcre_parse_if(ps, lineno, line + 2);
    if (dict_pcre_keyword(line, "endif"))
        return dict_pcre_parse_endif(ps, lineno, line + 5);
    return dict_pcre_syntax(ps, lineno, "expected \"/pattern/ result\", "
                            "\"if /pattern/\" or \"endif\"");
}

/* dict_pcre_lookup_match - does the rule apply?  1, 0, or DICT_ERROR. */
static int dict_pcre_lookup_match(DICT_PCRE *dp, const DICT_PCRE_RULE *rule,
                                  const char *key, size_t len, int *groups_r)
{
    int rc = pcre2_match(rule->code, (PCRE2_SPTR) key, len, 0, 0,
                         dp->match_data, dp->mcontext);

    *groups_r = rc;
    if (rc >= 0)
        return !rule->negate;
    if (rc == PCRE2_ERROR_NOMATCH)
        return rule->negate;
    if (rc == PCRE2_ERROR_NOMEMORY)
        msg_fatal("dict_pcre: pcre2_match: out of memory");
    dict_pcre_error_text(rc, dp->result);
    return dict_fail(&dp->dict, "%s, line %d: cannot match: %s",
                     dp->dict.name, rule->lineno, dp->result->data);
}

static int dict_pcre_lookup(DICT *d, const char *key, const char **value_r)
{
    DICT_PCRE *dp = (DICT_PCRE *) d;
    size_t len = strlen(key);
    DICT_PCRE_RULE *rule;
    int groups;
    int rc;

    if (msg_verbose)
        msg_info("dict_pcre_lookup: %s: %s", d->name, key);
    for (size_t i = 0; i < dp->nrules; i++) {
        rule = dp->rules + i;
        if (rule->op == DICT_PCRE_OP_ENDIF)
            continue;
        if ((rc = dict_pcre_lookup_match(dp, rule, key, len, &groups)) < 0)
            return DICT_ERROR;
        if (rule->op == DICT_PCRE_OP_IF) {
            if (rc == 0)
                i = rule->endif;
            continue;
        }
        if (rc == 0)
            continue;
        strbuf_reset(dp->result);
        if (dict_pcre_expand(rule->result, key, rule->negate ? NULL
                             : pcre2_get_ovector_pointer(dp->match_data),
                             groups, dp->result, NULL, d->error) < 0)
            msg_panic("dict_pcre_lookup: %s, line %d: result was checked "
                      "at open: %s", d->name, rule->lineno, d->error->data);
        /* Postfix maps_find() also refuses an empty result as an error. */
        if (dp->result->len == 0)
            return dict_fail(d, "%s, line %d: the result is empty after "
                             "$number substitution", d->name, rule->lineno);
        *value_r = dp->result->data;
        return DICT_FOUND;
    }
    return DICT_NOTFOUND;
}

static void dict_pcre_close(DICT *d)
{
    DICT_PCRE *dp = (DICT_PCRE *) d;

    for (size_t i = 0; i < dp->nrules; i++) {
        pcre2_code_free(dp->rules[i].code);
        free(dp->rules[i].result);
    }
    free(dp->rules);
    pcre2_match_data_free(dp->match_data);
    pcre2_jit_stack_free(dp->jit_stack);
    pcre2_match_context_free(dp->mcontext);
    pcre2_general_context_free(dp->gcontext);
    strbuf_free(&dp->result);
    dict_free(d);
}

/* dict_pcre_alloc - an empty table with its PCRE2 contexts and limits. */
static DICT_PCRE *dict_pcre_alloc(const char *origin, int flags)
{
    DICT_PCRE *dp;

    flags = (flags & ~DICT_FLAG_FIXED) | DICT_FLAG_PATTERN;
    dp = (DICT_PCRE *) dict_alloc("pcre", origin, sizeof(*dp), flags);
    dp->dict.lookup = dict_pcre_lookup;
    dp->dict.sequence = NULL;           /* patterns cannot be listed */
    dp->dict.close = dict_pcre_close;
    dp->result = strbuf_alloc(64);
    dp->gcontext = pcre2_general_context_create(dict_pcre_malloc,
                                                dict_pcre_free, NULL);
    dict_pcre_nomem(dp->gcontext, "pcre2_general_context_create");
    dp->mcontext = pcre2_match_context_create(dp->gcontext);
    dict_pcre_nomem(dp->mcontext, "pcre2_match_context_create");
    pcre2_set_match_limit(dp->mcontext, DICT_PCRE_MATCH_LIMIT);
    pcre2_set_depth_limit(dp->mcontext, DICT_PCRE_DEPTH_LIMIT);
    pcre2_set_heap_limit(dp->mcontext, DICT_PCRE_HEAP_LIMIT);
    /* NULL when the library has no JIT: nothing then uses it. */
    dp->jit_stack = pcre2_jit_stack_create(DICT_PCRE_JIT_STACK_MIN,
                                           DICT_PCRE_JIT_STACK_MAX,
                                           dp->gcontext);
    if (dp->jit_stack != NULL)
        pcre2_jit_stack_assign(dp->mcontext, NULL, dp->jit_stack);
    return dp;
}

DICT *dict_pcre_open_text(const char *origin, const char *text, size_t len,
                          int flags, STRBUF *err)
{
    DICT_PCRE_PARSE ps;
    STRBUF *line = strbuf_alloc(256);
    CFLINE cf;
    int lineno;
    int leading_ws;
    int rc;
    int status = 0;

    memset(&ps, 0, sizeof(ps));
    ps.dp = dict_pcre_alloc(origin, flags);
    ps.origin = origin;
    ps.err = err;
    ps.ccontext = pcre2_compile_context_create(ps.dp->gcontext);
    dict_pcre_nomem(ps.ccontext, "pcre2_compile_context_create");

    cfline_init(&cf, text, len);
    while ((rc = cfline_next(&cf, line, &lineno, &leading_ws)) > 0) {
        /* Postfix skips such a line with a warning; its rule would be lost. */
        if (leading_ws) {
            status = dict_pcre_syntax(&ps, lineno, "logical line must not "
                                      "start with whitespace");
            break;
        }
        if ((status = dict_pcre_parse_line(&ps, lineno, line->data)) < 0)
            break;
    }
    if (rc < 0)
        status = dict_pcre_syntax(&ps, lineno, "NUL byte in input");
    if (status == 0 && ps.if_depth > 0)
        status = dict_pcre_syntax(&ps, ps.dp->rules[ps.if_stack[
                                  ps.if_depth - 1]].lineno,
                                  "\"if\" without \"endif\"");
    if (status == 0) {
        ps.dp->match_data = pcre2_match_data_create(ps.max_groups + 1,
                                                    ps.dp->gcontext);
        dict_pcre_nomem(ps.dp->match_data, "pcre2_match_data_create");
    }
    pcre2_compile_context_free(ps.ccontext);
    free(ps.if_stack);
    strbuf_free(&line);
    if (status < 0) {
        dict_pcre_close(&ps.dp->dict);
        return NULL;
    }
    return &ps.dp->dict;
}

DICT *dict_pcre_open(const char *name, int flags, STRBUF *err)
{
    STRBUF *text = strbuf_alloc(4096);
    DICT *d;

    if (cfline_read_file(name, text) < 0) {
        strbuf_printf(err, "open %s: %s", name, strerror(errno));
        d = NULL;
    } else {
        d = dict_pcre_open_text(name, text->data, text->len, flags, err);
    }
    strbuf_free(&text);
    return d;
}
