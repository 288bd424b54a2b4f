/*
 * fuzz_pcre_table - pcre: table parser and lookups (lib/mail/dict_pcre.c).
 *
 * Parses the input as pcre_table(5) text; when it parses, looks up a few
 * keys (plain, empty, 8-bit, one that almost matches backtracking-heavy
 * patterns, and the input itself) and closes the table.  Nothing may
 * crash, leak or hang: the matching limits must stop any pattern.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dict_pcre.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static void fuzz_quiet(const char *severity, const char *text)
{
    (void) severity;
    (void) text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {
        "user@example.com",
        "",
        "Subject: \xe9t\xe9 \xff\xfe caf\xc3\xa9",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
        "mail.example.com[192.0.2.1]",
    };
    STRBUF *err = strbuf_alloc(64);
    const char *value;
    DICT *d;

    msg_set_hook(fuzz_quiet);
    d = dict_pcre_open_text("fuzz.pcre", (const char *) data, size,
                            DICT_FLAG_DEFAULT, err);
    if (d != NULL) {
        char *self = xstrndup((const char *) data, size);

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (d->lookup(d, keys[i], &value) == DICT_FOUND)
                (void) strlen(value);
        if (d->lookup(d, self, &value) == DICT_FOUND)
            (void) strlen(value);
        free(self);
        d->close(d);
    } else if (err->len == 0) {
        abort();                        /* every failure names a reason */
    }
    strbuf_free(&err);
    return 0;
}
