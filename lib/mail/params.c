/*
 * params - the parameter table, main.cf + override evaluation, typing.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/params.h"
#include "util/mac_expand.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

/* The variables. */
#define P_STR(n, d, doc)                 char *var_##n;
#define P_RAW(n, d, doc)                 char *var_##n;
#define P_FN(n, f, doc)                  char *var_##n;
#define P_INT(n, d, lo, hi, doc)         int var_##n;
#define P_LONG(n, d, lo, hi, doc)        long var_##n;
#define P_BOOL(n, d, doc)                int var_##n;
#define P_TIME(n, d, u, lo, hi, doc)     int var_##n;
#include "mail/param_list.h"
#undef P_STR
#undef P_RAW
#undef P_FN
#undef P_INT
#undef P_LONG
#undef P_BOOL
#undef P_TIME

/* The table. */
#define P_STR(n, d, doc)  {#n, PARAM_STR, d, NULL, &var_##n, 0, 0, 0, doc},
#define P_RAW(n, d, doc)  {#n, PARAM_RAW, d, NULL, &var_##n, 0, 0, 0, doc},
#define P_FN(n, f, doc)   {#n, PARAM_FN, NULL, f, &var_##n, 0, 0, 0, doc},
#define P_INT(n, d, lo, hi, doc) \
        {#n, PARAM_INT, d, NULL, &var_##n, lo, hi, 0, doc},
#define P_LONG(n, d, lo, hi, doc) \
        {#n, PARAM_LONG, d, NULL, &var_##n, lo, hi, 0, doc},
#define P_BOOL(n, d, doc) {#n, PARAM_BOOL, d, NULL, &var_##n, 0, 1, 0, doc},
#define P_TIME(n, d, u, lo, hi, doc) \
        {#n, PARAM_TIME, d, NULL, &var_##n, lo, hi, u, doc},
const PARAM_DEF param_table[] = {
#include "mail/param_list.h"
};
#undef P_STR
#undef P_RAW
#undef P_FN
#undef P_INT
#undef P_LONG
#undef P_BOOL
#undef P_TIME

const size_t param_table_size = sizeof(param_table) / sizeof(param_table[0]);

static HTABLE *param_index;

const PARAM_DEF *param_find(const char *name)
{
    if (param_index == NULL) {
        param_index = htable_alloc(param_table_size * 2);
        for (size_t i = 0; i < param_table_size; i++)
            htable_enter(param_index, param_table[i].name,
                         (void *) &param_table[i]);
    }
    return htable_find(param_index, name);
}

/* --- context ---------------------------------------------------------- */

PARAM_CTX *param_ctx_alloc(MAINCF *maincf)
{
    PARAM_CTX *ctx = xcalloc(1, sizeof(*ctx));

    ctx->maincf = maincf;
    ctx->overrides = htable_alloc(16);
    ctx->fn_cache = htable_alloc(16);
    return ctx;
}

static void param_override_free(void *ptr)
{
    MAINCF_ENTRY *ent = ptr;

    free(ent->name);
    free(ent->value);
    free(ent);
}

void param_ctx_free(PARAM_CTX **ctxp)
{
    PARAM_CTX *ctx = *ctxp;

    if (ctx == NULL)
        return;
    htable_free(&ctx->overrides, param_override_free);
    htable_free(&ctx->fn_cache, free);
    xfree(ctxp);
}

int param_ctx_override(PARAM_CTX *ctx, const char *assignment,
                       const char *origin, STRBUF *err)
{
    char *copy = xstrdup(assignment);
    MAINCF_ENTRY *ent;
    const char *why;
    char *name;
    char *value;

    if (maincf_split_line(copy, &name, &value, &why) < 0) {
        strbuf_printf(err, "%s: %s: \"%s\"", origin, why, assignment);
        free(copy);
        return -1;
    }
    htable_delete(ctx->overrides, name, param_override_free);
    ent = xmalloc(sizeof(*ent));
    ent->name = xstrdup(name);
    ent->value = xstrdup(value);
    ent->lineno = 0;
    htable_enter(ctx->overrides, name, ent);
    free(copy);
    /* A computed default may depend on any parameter (mydomain on
     * myhostname): compute them all again. */
    htable_free(&ctx->fn_cache, free);
    ctx->fn_cache = htable_alloc(16);
    return 0;
}

const char *param_default(PARAM_CTX *ctx, const PARAM_DEF *def)
{
    HTABLE_ENTRY *ent;
    char *value;

    if (def->type != PARAM_FN)
        return def->defval;
    if ((ent = htable_locate(ctx->fn_cache, def->name)) == NULL) {
        /*
         * "myhostname = host.$mydomain" with no mydomain: the mydomain
         * default expands myhostname, which asks for the mydomain default
         * again.  While it is being computed, it is empty, as an undefined
         * name would be, instead of recursing until the stack runs out.
         */
        ent = htable_enter(ctx->fn_cache, def->name, xstrdup(""));
        value = xstrdup(def->def_fn(ctx));
        free(ent->value);
        ent->value = value;
    }
    return ent->value;
}

const char *param_raw(PARAM_CTX *ctx, const char *name)
{
    const MAINCF_ENTRY *ent;
    const PARAM_DEF *def;

    if (!ctx->defaults_only) {
        if ((ent = htable_find(ctx->overrides, name)) != NULL)
            return ent->value;
        if (ctx->maincf && (ent = maincf_find(ctx->maincf, name)) != NULL)
            return ent->value;
    }
    if ((def = param_find(name)) != NULL)
        return param_default(ctx, def);
    return NULL;
}

void param_origin(PARAM_CTX *ctx, const char *name, STRBUF *out)
{
    const MAINCF_ENTRY *ent;

    if (!ctx->defaults_only
        && (ent = htable_find(ctx->overrides, name)) != NULL)
        strbuf_printf(out, "override %s=%s", name, ent->value);
    else if (!ctx->defaults_only && ctx->maincf
             && (ent = maincf_find(ctx->maincf, name)) != NULL)
        strbuf_printf(out, "%s, line %d", ctx->maincf->path, ent->lineno);
    else
        strbuf_printf(out, "default for %s", name);
}

static const char *param_lookup_cb(const char *name, void *ctx)
{
    return param_raw(ctx, name);
}

int param_expand(PARAM_CTX *ctx, const char *text, STRBUF *out, STRBUF *err)
{
    strbuf_reset(out);
    return mac_expand(out, text, MAC_EXP_RECURSE, param_lookup_cb, ctx, err);
}

/* Collect $name references without expanding (for "unused" warnings). */
static void param_scan_refs(const char *text, HTABLE *names)
{
    const char *cp = text;

    while ((cp = strchr(cp, '$')) != NULL) {
        const char *name;

        cp++;
        if (*cp == '$') {
            cp++;
            continue;
        }
        if (*cp == '{' || *cp == '(')
            cp++;
        name = cp;
        while (isalnum((unsigned char) *cp) || *cp == '_')
            cp++;
        if (cp > name) {
            char *key = xstrndup(name, (size_t) (cp - name));

            htable_enter(names, key, NULL);
            free(key);
        }
    }
}

HTABLE *param_referenced_names(PARAM_CTX *ctx)
{
    HTABLE *names = htable_alloc(64);
    HTABLE_ENTRY *ent;

    if (ctx->maincf)
        HTABLE_FOREACH(ctx->maincf->entries, ent)
            param_scan_refs(((MAINCF_ENTRY *) ent->value)->value, names);
    HTABLE_FOREACH(ctx->overrides, ent)
        param_scan_refs(((MAINCF_ENTRY *) ent->value)->value, names);
    for (size_t i = 0; i < param_table_size; i++)
        if (param_table[i].defval)
            param_scan_refs(param_table[i].defval, names);
    return names;
}

void params_warn_unknown(PARAM_CTX *ctx)
{
    HTABLE *refs;
    HTABLE_ENTRY *ent;

    if (ctx->maincf == NULL)
        return;
    refs = param_referenced_names(ctx);
    HTABLE_FOREACH(ctx->maincf->entries, ent) {
        MAINCF_ENTRY *me = ent->value;

        if (param_find(me->name) == NULL && !htable_locate(refs, me->name)
            && !param_dynamic_known(me->name))
            msg_warn("%s, line %d: unknown parameter: %s=%s",
                     ctx->maincf->path, me->lineno, me->name, me->value);
    }
    htable_free(&refs, NULL);
}

/* --- typing ----------------------------------------------------------- */

static int param_parse_time(const PARAM_DEF *def, const char *value,
                            long *secs_r)
{
    size_t n = strspn(value, "0123456789");
    unsigned long num;
    long mult;
    char unit = value[n] ? value[n] : def->unit;

    if (value[n] && value[n + 1])
        return -1;
    if (str_to_ulong_n(value, n, LONG_MAX, &num) < 0)
        return -1;
    switch (unit) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 604800;
        break;
    default:
        return -1;
    }
    if (num > (unsigned long) (LONG_MAX / mult))
        return -1;
    *secs_r = (long) num * mult;
    return 0;
}

/* Convert value into *dest, which has the C type of the parameter. */
static int param_convert_dest(const PARAM_DEF *def, const char *value,
                              const char *origin, STRBUF *err, void *dest)
{
    long num = 0;                       /* set by every numeric case below */
    long min;
    long max;

    switch (def->type) {
    case PARAM_STR:
    case PARAM_RAW:
    case PARAM_FN:
        free(*(char **) dest);
        *(char **) dest = xstrdup(value);
        return 0;
    case PARAM_BOOL:
        if (strcasecmp(value, "yes") == 0)
            *(int *) dest = 1;
        else if (strcasecmp(value, "no") == 0)
            *(int *) dest = 0;
        else {
            strbuf_printf(err, "%s: bad boolean configuration: %s = %s "
                          "(use yes or no)", origin, def->name, value);
            return -1;
        }
        return 0;
    case PARAM_INT:
    case PARAM_LONG:
        if (str_to_long(value, LONG_MIN, LONG_MAX, &num) < 0) {
            strbuf_printf(err, "%s: bad numerical configuration: %s = %s",
                          origin, def->name, value);
            return -1;
        }
        break;
    case PARAM_TIME:
        if (param_parse_time(def, value, &num) < 0) {
            strbuf_printf(err, "%s: bad time configuration: %s = %s (use a "
                          "number with an optional s, m, h, d or w suffix)",
                          origin, def->name, value);
            return -1;
        }
        break;
    }
    /* An int variable must not wrap around, whatever the table says. */
    min = def->type == PARAM_LONG || def->min > INT_MIN ? def->min : INT_MIN;
    max = def->type == PARAM_LONG || def->max < INT_MAX ? def->max : INT_MAX;
    if (num < min || num > max) {
        strbuf_printf(err, "%s: invalid %s parameter value %s: must be in "
                      "the range %ld..%ld", origin, def->name, value, min,
                      max);
        return -1;
    }
    if (def->type == PARAM_LONG)
        *(long *) dest = num;
    else
        *(int *) dest = (int) num;
    return 0;
}

int param_convert(const PARAM_DEF *def, const char *value, const char *origin,
                  STRBUF *err)
{
    return param_convert_dest(def, value, origin, err, def->var);
}

/* Convert into scratch storage: validation without side effects. */
static int param_check_value(const PARAM_DEF *def, const char *value,
                             const char *origin, STRBUF *err)
{
    union {
        char   *str;
        int     num;
        long    lnum;
    } scratch;
    int rc;

    memset(&scratch, 0, sizeof(scratch));
    rc = param_convert_dest(def, value, origin, err, &scratch);
    if (def->type == PARAM_STR || def->type == PARAM_RAW
        || def->type == PARAM_FN)
        free(scratch.str);
    return rc;
}

/* --- loading ---------------------------------------------------------- */

static char *params_maincf_file;
static PARAM_CTX *params_loaded_ctx;    /* the configuration now in var_* */

void params_set_maincf_file(const char *path)
{
    free(params_maincf_file);
    params_maincf_file = path ? xstrdup(path) : NULL;
}

const char *params_config_dir(const char *config_dir)
{
    const char *env;

    if (config_dir && *config_dir)
        return config_dir;
    if ((env = getenv("POSTERN_CONFIG_DIR")) != NULL && *env)
        return env;
    return DEF_CONFIG_DIR;
}

int params_load_r(const char *config_dir, const ARGV *overrides, int flags,
                  STRBUF *err)
{
    const char *dir = params_config_dir(config_dir);
    STRBUF *path = strbuf_alloc(256);
    STRBUF *value = strbuf_alloc(256);
    STRBUF *origin = strbuf_alloc(128);
    STRBUF *why = strbuf_alloc(128);
    MAINCF *cf;
    PARAM_CTX *ctx;
    int rc = -1;

    if (params_maincf_file)
        strbuf_set(path, params_maincf_file);
    else
        strbuf_printf(path, "%s/main.cf", dir);
    cf = maincf_alloc(path->data);
    ctx = param_ctx_alloc(cf);
    if (maincf_read(cf, err) < 0) {
        if (errno != ENOENT || !(flags & PARAMS_FLAG_MISSING_OK))
            goto done;
        strbuf_reset(err);
    }
    /* config_directory is where we read from, whatever main.cf says. */
    strbuf_printf(value, "config_directory=%s", dir);
    if (param_ctx_override(ctx, value->data, "config directory", err) < 0)
        goto done;
    for (size_t i = 0; overrides && i < overrides->argc; i++)
        if (param_ctx_override(ctx, overrides->argv[i], "-o", err) < 0)
            goto done;
    /*
     * Two passes: check every value first, then assign.  A reload with a
     * bad value must leave the running configuration untouched.
     */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && (flags & PARAMS_FLAG_CHECK_ONLY))
            break;
        for (size_t i = 0; i < param_table_size; i++) {
            const PARAM_DEF *def = &param_table[i];
            const char *raw = param_raw(ctx, def->name);

            strbuf_reset(why);
            param_origin(ctx, def->name, origin);
            if (def->type == PARAM_RAW) {
                strbuf_set(value, raw);
            } else if (param_expand(ctx, raw, value, why) < 0) {
                strbuf_printf(err, "%s: %s: %s", origin->data, def->name,
                              why->data);
                goto done;
            }
            if ((pass == 0 ? param_check_value(def, value->data,
                                               origin->data, err)
                 : param_convert(def, value->data, origin->data, err)) < 0)
                goto done;
        }
    }
    rc = 0;
    /* Keep the loaded configuration for param_dynamic(). */
    if (!(flags & PARAMS_FLAG_CHECK_ONLY)) {
        if (params_loaded_ctx) {
            MAINCF *old = params_loaded_ctx->maincf;

            param_ctx_free(&params_loaded_ctx);
            maincf_free(&old);
        }
        params_loaded_ctx = ctx;
        ctx = NULL;
        cf = NULL;
    }
done:
    param_ctx_free(&ctx);
    maincf_free(&cf);
    strbuf_free(&path);
    strbuf_free(&value);
    strbuf_free(&origin);
    strbuf_free(&why);
    return rc;
}

const char *param_dynamic(const char *name, const char *defval)
{
    static STRBUF *value;
    STRBUF *err;
    const char *raw;

    if (params_loaded_ctx == NULL
        || (raw = param_raw(params_loaded_ctx, name)) == NULL)
        return defval;
    if (value == NULL)
        value = strbuf_alloc(64);
    err = strbuf_alloc(64);
    if (param_expand(params_loaded_ctx, raw, value, err) < 0) {
        msg_warn("%s: %s", name, err->data);
        strbuf_free(&err);
        return defval;
    }
    strbuf_free(&err);
    return value->data;
}

long param_dynamic_long(const char *name, long defval, long min, long max)
{
    const char *value = param_dynamic(name, NULL);
    long n;

    if (value == NULL)
        return defval;
    if (str_to_long(value, min, max, &n) < 0) {
        msg_warn("%s = %s: not a number in %ld..%ld -- using %ld", name,
                 value, min, max, defval);
        return defval;
    }
    return n;
}

int param_dynamic_known(const char *name)
{
    static const char *suffixes[] = {
        "_destination_concurrency_limit", "_destination_recipient_limit",
        NULL,
    };
    size_t len = strlen(name);

    for (int i = 0; suffixes[i]; i++) {
        size_t n = strlen(suffixes[i]);

        if (len > n && strcmp(name + len - n, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

void params_load(const char *config_dir, const ARGV *overrides, int flags)
{
    STRBUF *err = strbuf_alloc(256);

    if (params_load_r(config_dir, overrides, flags, err) < 0)
        msg_fatal("%s", err->data);
    strbuf_free(&err);
}

/* --- computed defaults ------------------------------------------------ */

const char *param_default_myhostname(PARAM_CTX *ctx)
{
    static STRBUF *buf;
    char host[256];

    (void) ctx;
    if (buf == NULL)
        buf = strbuf_alloc(64);
    if (gethostname(host, sizeof(host)) < 0)
        msg_fatal("gethostname: %m");
    host[sizeof(host) - 1] = 0;
    strbuf_set(buf, host);
    if (strchr(host, '.') == NULL)
        strbuf_cat(buf, ".localdomain");
    strbuf_lower(buf);
    return buf->data;
}

const char *param_default_mydomain(PARAM_CTX *ctx)
{
    static STRBUF *buf;
    STRBUF *err = strbuf_alloc(64);
    const char *dot;

    if (buf == NULL)
        buf = strbuf_alloc(64);
    if (param_expand(ctx, param_raw(ctx, "myhostname"), buf, err) < 0)
        strbuf_reset(buf);
    strbuf_free(&err);
    if ((dot = strchr(buf->data, '.')) != NULL && strchr(dot + 1, '.'))
        return dot + 1;
    return "localdomain";
}

/* Is this IP version in inet_protocols? */
static int param_proto_wanted(PARAM_CTX *ctx, int family)
{
    STRBUF *value = strbuf_alloc(32);
    STRBUF *err = strbuf_alloc(32);
    ARGV *protos;
    int want = 0;

    if (param_expand(ctx, param_raw(ctx, "inet_protocols"), value, err) < 0)
        strbuf_set(value, "all");
    protos = argv_split(value->data, ", \t");
    for (size_t i = 0; i < protos->argc; i++)
        if (strcasecmp(protos->argv[i], "all") == 0
            || (strcasecmp(protos->argv[i], "ipv4") == 0 && family == AF_INET)
            || (strcasecmp(protos->argv[i], "ipv6") == 0
                && family == AF_INET6))
            want = 1;
    argv_free(&protos);
    strbuf_free(&value);
    strbuf_free(&err);
    return want;
}

/* Keep only the first 'bits' bits of an address. */
static void param_mask(unsigned char *addr, size_t len, int bits)
{
    for (size_t i = 0; i < len; i++) {
        int keep = bits >= 8 ? 8 : bits > 0 ? bits : 0;

        addr[i] &= (unsigned char) (0xff << (8 - keep));
        bits -= 8;
    }
}

static int param_prefix_len(const unsigned char *mask, size_t len)
{
    int bits = 0;

    for (size_t i = 0; i < len; i++)
        for (int b = 7; b >= 0 && (mask[i] >> b) & 1; b--)
            bits++;
    return bits;
}

/*
 * mynetworks: this host's interface addresses (style host) or networks
 * (style subnet), IPv4 first, as Postfix computes it.
 */
const char *param_default_mynetworks(PARAM_CTX *ctx)
{
    static STRBUF *buf;
    STRBUF *style = strbuf_alloc(16);
    STRBUF *err = strbuf_alloc(32);
    ARGV *seen = argv_alloc(8);
    struct ifaddrs *ifa_list = NULL;
    int subnet;

    if (buf == NULL)
        buf = strbuf_alloc(128);
    strbuf_reset(buf);
    if (param_expand(ctx, param_raw(ctx, "mynetworks_style"), style, err) < 0)
        strbuf_set(style, "host");
    subnet = strcasecmp(style->data, "subnet") == 0;
    if (getifaddrs(&ifa_list) < 0)
        ifa_list = NULL;
    for (int family = AF_INET; family; family = family == AF_INET ? AF_INET6
         : 0) {
        if (!param_proto_wanted(ctx, family))
            continue;
        for (struct ifaddrs *ifa = ifa_list; ifa; ifa = ifa->ifa_next) {
            unsigned char addr[16];
            unsigned char mask[16];
            char text[INET6_ADDRSTRLEN];
            size_t len = family == AF_INET ? 4 : 16;
            STRBUF *item;
            int bits;
            int dup = 0;

            if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != family)
                continue;
            if (family == AF_INET) {
                memcpy(addr, &((struct sockaddr_in *) ifa->ifa_addr)->sin_addr,
                       4);
                memset(mask, 0xff, 4);
                if (ifa->ifa_netmask)
                    memcpy(mask, &((struct sockaddr_in *)
                                   ifa->ifa_netmask)->sin_addr, 4);
            } else {
                memcpy(addr, &((struct sockaddr_in6 *)
                               ifa->ifa_addr)->sin6_addr, 16);
                memset(mask, 0xff, 16);
                if (ifa->ifa_netmask)
                    memcpy(mask, &((struct sockaddr_in6 *)
                                   ifa->ifa_netmask)->sin6_addr, 16);
            }
            bits = subnet ? param_prefix_len(mask, len) : (int) len * 8;
            param_mask(addr, len, bits);
            inet_ntop(family, addr, text, sizeof(text));
            item = strbuf_alloc(64);
            strbuf_printf(item, family == AF_INET ? "%s/%d" : "[%s]/%d", text,
                          bits);
            for (size_t i = 0; i < seen->argc; i++)
                dup |= strcmp(seen->argv[i], item->data) == 0;
            if (!dup) {
                argv_add(seen, item->data);
                if (buf->len)
                    strbuf_addch(buf, ' ');
                strbuf_cat(buf, item->data);
            }
            strbuf_free(&item);
        }
    }
    if (ifa_list)
        freeifaddrs(ifa_list);
    if (buf->len == 0)
        strbuf_set(buf, "127.0.0.0/8");
    argv_free(&seen);
    strbuf_free(&style);
    strbuf_free(&err);
    return buf->data;
}

const char *param_default_mail_version(PARAM_CTX *ctx)
{
    (void) ctx;
    return POSTERN_VERSION;
}
