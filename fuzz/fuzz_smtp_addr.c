/*
 * fuzz_smtp_addr - MAIL FROM / RCPT TO argument parsing, xtext and
 * address canonicalization (lib/mail/smtp_addr.c, lib/mail/addr_canon.c).
 *
 * The input is taken as the argument text of MAIL or RCPT ("FROM:<a@b>
 * SIZE=10"), up to its first NUL.  It is parsed as given and, with its
 * keyword replaced, once as FROM and once as TO, each strict and not.
 * Properties checked (abort() on failure):
 *   - a parsed address is at most SMTP_ADDR_MAX bytes, has no control
 *     characters, and smtp_addr_8bit() agrees with a byte scan;
 *   - what parses strictly parses the same way without strict;
 *   - "KEYWORD:<addr> params..." rebuilt from a result parses to the same
 *     address and parameters;
 *   - xtext: decode(encode(x)) == x for any string, and when the input
 *     decodes, encode(decode(x)) decodes to the same bytes (up to a NUL);
 *   - addr_canon() leaves "" alone and gives every other address an "@".
 * Nothing may crash, leak or hang.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr_canon.h"
#include "mail/match_list.h"
#include "mail/params.h"
#include "mail/smtp_addr.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static MATCH_LIST *fuzz_local_domains;

static void fuzz_quiet(const char *severity, const char *text)
{
    (void) severity;
    (void) text;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    msg_set_hook(fuzz_quiet);
    /* What addr_canon() and match_list read; params_load() is not run. */
    var_myorigin = xstrdup("origin.example");
    var_swap_bangpath = 1;
    var_allow_percent_hack = 1;
    var_parent_domain_matches_subdomains = xstrdup("");
    fuzz_local_domains = match_list_domains("mydestination",
                                            "example.com, localhost, "
                                            ".sub.example");
    return 0;
}

/* Parse args; on success check the result and return 0. */
static int fuzz_parse(const char *args, const char *keyword, int strict,
                      STRBUF *addr, ARGV *params)
{
    const char *why = NULL;
    int eight = 0;

    if (smtp_addr_parse(args, keyword, strict, addr, params, &why) < 0) {
        if (why == NULL || *why == 0)
            abort();                    /* every failure names a reason */
        return -1;
    }
    if (addr->len > SMTP_ADDR_MAX || strlen(addr->data) != addr->len)
        abort();
    for (size_t i = 0; i < addr->len; i++) {
        unsigned char ch = (unsigned char) addr->data[i];

        if (ch < 0x20 || ch == 0x7f)
            abort();
        eight |= ch >= 0x80;
    }
    if (smtp_addr_8bit(addr->data) != eight)
        abort();
    for (size_t i = 0; i < params->argc; i++)
        if (params->argv[i][0] == 0 || params->argv[i][0] == '='
            || strpbrk(params->argv[i], " \t\r\n") != NULL)
            abort();
    return 0;
}

static int fuzz_same(const STRBUF *a1, const ARGV *p1, const STRBUF *a2,
                     const ARGV *p2)
{
    if (strcmp(a1->data, a2->data) != 0 || p1->argc != p2->argc)
        return 0;
    for (size_t i = 0; i < p1->argc; i++)
        if (strcmp(p1->argv[i], p2->argv[i]) != 0)
            return 0;
    return 1;
}

static void fuzz_canon(const char *addr, MATCH_LIST *local)
{
    STRBUF *out = strbuf_alloc(64);

    addr_canon(addr, local, out);
    if (*addr == 0 ? out->len != 0 : strchr(out->data, '@') == NULL)
        abort();
    (void) strlen(addr_domain(out->data));
    strbuf_free(&out);
}

static void fuzz_keyword(const char *args, const char *keyword)
{
    STRBUF *addr = strbuf_alloc(64);
    STRBUF *addr2 = strbuf_alloc(64);
    STRBUF *again = strbuf_alloc(64);
    ARGV *params = argv_alloc(4);
    ARGV *params2 = argv_alloc(4);
    int strict_ok;

    strict_ok = fuzz_parse(args, keyword, 1, addr, params) == 0;
    if (fuzz_parse(args, keyword, 0, addr2, params2) == 0) {
        if (strict_ok && !fuzz_same(addr, params, addr2, params2))
            abort();
        /* Rebuild the command argument and parse it again. */
        strbuf_printf(again, "%s:<%s>", keyword, addr2->data);
        for (size_t i = 0; i < params2->argc; i++)
            strbuf_printf_append(again, " %s", params2->argv[i]);
        if (fuzz_parse(again->data, keyword, 1, addr, params) < 0
            || !fuzz_same(addr, params, addr2, params2))
            abort();
        fuzz_canon(addr2->data, NULL);
        fuzz_canon(addr2->data, fuzz_local_domains);
    } else if (strict_ok) {
        abort();                        /* strict accepted, lax did not */
    }
    strbuf_free(&addr);
    strbuf_free(&addr2);
    strbuf_free(&again);
    argv_free(&params);
    argv_free(&params2);
}

static void fuzz_xtext(const char *text)
{
    STRBUF *dec = strbuf_alloc(64);
    STRBUF *enc = strbuf_alloc(64);
    STRBUF *dec2 = strbuf_alloc(64);

    /* Any string survives encode then decode. */
    xtext_encode(text, enc);
    for (size_t i = 0; i < enc->len; i++) {
        unsigned char ch = (unsigned char) enc->data[i];

        if (ch < 0x21 || ch > 0x7e || ch == '=')
            abort();
    }
    if (xtext_decode(enc->data, dec2) < 0 || dec2->len != strlen(text)
        || memcmp(dec2->data, text, dec2->len) != 0)
        abort();
    /* Valid xtext: its bytes survive encode then decode (to a NUL). */
    if (xtext_decode(text, dec) == 0) {
        size_t n = strlen(dec->data);

        if (dec->len > strlen(text))
            abort();
        xtext_encode(dec->data, enc);
        if (xtext_decode(enc->data, dec2) < 0 || dec2->len != n
            || memcmp(dec2->data, dec->data, n) != 0)
            abort();
    }
    strbuf_free(&dec);
    strbuf_free(&enc);
    strbuf_free(&dec2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *args = xstrndup((const char *) data, size);
    const char *colon = strchr(args, ':');
    const char *tail = colon ? colon + 1 : args;
    STRBUF *buf = strbuf_alloc(size + 8);

    msg_set_hook(fuzz_quiet);
    fuzz_keyword(args, "FROM");
    fuzz_keyword(args, "TO");
    strbuf_printf(buf, "FROM:%s", tail);
    fuzz_keyword(buf->data, "FROM");
    strbuf_printf(buf, "TO:%s", tail);
    fuzz_keyword(buf->data, "TO");
    fuzz_xtext(args);
    fuzz_canon(args, NULL);
    fuzz_canon(args, fuzz_local_domains);
    free(args);
    strbuf_free(&buf);
    return 0;
}
