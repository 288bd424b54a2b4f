/*
 * smtp_addr - MAIL FROM / RCPT TO argument parsing.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail/smtp_addr.h"

/* Is s valid UTF-8 (no overlongs, no surrogates)? */
static int smtp_utf8_valid(const unsigned char *s)
{
    while (*s) {
        int n;
        unsigned cp;

        if (*s < 0x80) {
            s++;
            continue;
        }
        if ((*s & 0xe0) == 0xc0) {
            n = 1;
            cp = *s & 0x1f;
        } else if ((*s & 0xf0) == 0xe0) {
            n = 2;
            cp = *s & 0x0f;
        } else if ((*s & 0xf8) == 0xf0) {
            n = 3;
            cp = *s & 0x07;
        } else {
            return 0;
        }
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800)
            || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
            || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += n + 1;
    }
    return 1;
}

int smtp_addr_8bit(const char *addr)
{
    for (const unsigned char *cp = (const unsigned char *) addr; *cp; cp++)
        if (*cp & 0x80)
            return 1;
    return 0;
}

/* Check the address itself (without brackets). */
static int smtp_addr_check(const char *addr, const char **why_r)
{
    int quoted = 0;
    int ats = 0;
    const char *last_at = NULL;

    if (strlen(addr) > SMTP_ADDR_MAX) {
        *why_r = "address too long";
        return -1;
    }
    for (const unsigned char *cp = (const unsigned char *) addr; *cp; cp++) {
        if (*cp < 0x20 || *cp == 0x7f) {
            *why_r = "control character in address";
            return -1;
        }
        if (quoted) {
            /* A quoted pair escapes printable text only (RFC 5321). */
            if (*cp == '\\' && cp[1] >= 0x20 && cp[1] != 0x7f)
                cp++;
            else if (*cp == '"')
                quoted = 0;
            continue;
        }
        if (*cp == '"') {
            quoted = 1;
        } else if (*cp == '@') {
            ats++;
            last_at = (const char *) cp;
        } else if (*cp == ' ' || *cp == '\t' || *cp == '<' || *cp == '>'
                   || *cp == '(' || *cp == ')' || *cp == ',' || *cp == ';'
                   || *cp == '\\') {
            *why_r = "bad character in address";
            return -1;
        }
    }
    if (quoted) {
        *why_r = "unbalanced quote in address";
        return -1;
    }
    if (ats > 1 || (last_at && (last_at == addr || last_at[1] == 0))) {
        *why_r = "bad address syntax";
        return -1;
    }
    if (!smtp_utf8_valid((const unsigned char *) addr)) {
        *why_r = "malformed UTF-8 in address";
        return -1;
    }
    return 0;
}

int smtp_addr_parse(const char *args, const char *keyword, int strict,
                    STRBUF *addr, ARGV *params, const char **why_r)
{
    size_t klen = strlen(keyword);
    const char *cp = args;
    const char *start;
    const char *end;
    const char *rest;

    strbuf_reset(addr);
    argv_truncate(params, 0);
    if (strncasecmp(cp, keyword, klen) != 0 || cp[klen] != ':') {
        *why_r = "missing keyword";
        return -1;
    }
    cp += klen + 1;
    while (*cp == ' ')
        cp++;
    if (*cp == '<') {
        int quoted = 0;

        start = ++cp;
        for (end = start; *end && (quoted || *end != '>'); end++) {
            if (*end == '"')
                quoted = !quoted;
            else if (*end == '\\' && quoted && end[1])
                end++;
        }
        if (*end != '>') {
            *why_r = "missing '>'";
            return -1;
        }
        rest = end + 1;
        if (*rest && *rest != ' ') {
            *why_r = "text after '>'";
            return -1;
        }
    } else {
        if (strict) {
            *why_r = "missing '<'";
            return -1;
        }
        start = cp;
        end = cp + strcspn(cp, " ");
        rest = end;
        /* "FROM:" alone is no address: only "<>" is the null sender. */
        if (end == start) {
            *why_r = "missing address";
            return -1;
        }
    }
    /* A source route: "@a,@b:user@domain" -> "user@domain". */
    if (*start == '@') {
        const char *colon = memchr(start, ':', (size_t) (end - start));

        if (colon == NULL) {
            *why_r = "bad source route";
            return -1;
        }
        start = colon + 1;
    }
    strbuf_append(addr, start, (size_t) (end - start));
    if (smtp_addr_check(addr->data, why_r) < 0)
        return -1;
    /* Parameters. */
    for (cp = rest; *cp;) {
        size_t n;

        while (*cp == ' ')
            cp++;
        if (*cp == 0)
            break;
        n = strcspn(cp, " ");
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char) cp[i];

            if (ch < 0x21 || ch == 0x7f) {
                *why_r = "bad parameter";
                return -1;
            }
        }
        if (cp[0] == '=') {
            *why_r = "bad parameter";
            return -1;
        }
        argv_addn(params, cp, n);
        cp += n;
    }
    return 0;
}

int xtext_decode(const char *text, STRBUF *out)
{
    strbuf_reset(out);
    for (const unsigned char *cp = (const unsigned char *) text; *cp; cp++) {
        if (*cp == '+') {
            int hi;
            int lo;

            if (!isxdigit(cp[1]) || !isxdigit(cp[2])
                || islower(cp[1]) || islower(cp[2]))
                return -1;
            hi = isdigit(cp[1]) ? cp[1] - '0' : cp[1] - 'A' + 10;
            lo = isdigit(cp[2]) ? cp[2] - '0' : cp[2] - 'A' + 10;
            strbuf_addch(out, hi * 16 + lo);
            cp += 2;
        } else if (*cp < 0x21 || *cp > 0x7e || *cp == '=') {
            return -1;
        } else {
            strbuf_addch(out, *cp);
        }
    }
    return 0;
}

void xtext_encode(const char *text, STRBUF *out)
{
    strbuf_reset(out);
    for (const unsigned char *cp = (const unsigned char *) text; *cp; cp++) {
        if (*cp < 0x21 || *cp > 0x7e || *cp == '+' || *cp == '=')
            strbuf_printf_append(out, "+%02X", *cp);
        else
            strbuf_addch(out, *cp);
    }
}
