/*
 * fuzz_maincf - main.cf parser and $name expansion.
 *
 * Parses the input as main.cf text; when it parses, expands every value
 * against it (self references, conditionals, relational tests) the way a
 * daemon does at start.  Nothing may crash, leak or hang.
 */
#include <stddef.h>
#include <stdint.h>

#include "mail/maincf.h"
#include "mail/params.h"
#include "util/msg.h"

static void fuzz_quiet(const char *severity, const char *text)
{
    (void) severity;
    (void) text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MAINCF *cf = maincf_alloc("fuzz/main.cf");
    STRBUF *err = strbuf_alloc(64);
    STRBUF *out = strbuf_alloc(64);
    HTABLE_ENTRY *ent;

    msg_set_hook(fuzz_quiet);
    if (maincf_parse(cf, (const char *) data, size, err) == 0) {
        PARAM_CTX *ctx = param_ctx_alloc(cf);

        HTABLE_FOREACH(cf->entries, ent) {
            strbuf_reset(err);
            (void) param_expand(ctx, ((MAINCF_ENTRY *) ent->value)->value,
                                out, err);
        }
        params_warn_unknown(ctx);
        param_ctx_free(&ctx);
    }
    maincf_free(&cf);
    strbuf_free(&err);
    strbuf_free(&out);
    return 0;
}
