/*
 * fuzz_mastercf - master.cf parser and postconf -M formatting.
 */
#include <stddef.h>
#include <stdint.h>

#include "mail/mastercf.h"
#include "util/msg.h"

static void fuzz_quiet(const char *severity, const char *text)
{
    (void) severity;
    (void) text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MASTERCF *cf = mastercf_alloc("fuzz/master.cf");
    STRBUF *err = strbuf_alloc(64);
    STRBUF *out = strbuf_alloc(64);

    msg_set_hook(fuzz_quiet);
    if (mastercf_parse(cf, (const char *) data, size, err) == 0) {
        for (size_t i = 0; i < cf->count; i++) {
            mastercf_format_entry(cf->entries[i], 0, out);
            mastercf_format_entry(cf->entries[i], 1, out);
        }
    }
    mastercf_free(&cf);
    strbuf_free(&err);
    strbuf_free(&out);
    return 0;
}
