/*
 * params - the typed parameter table and its values.
 *
 * After params_load(), every parameter of param_list.h has its value in a
 * global var_NAME, converted to its type: main.cf over the built-in
 * default, master.cf -o overrides over both, $name expanded at load time
 * (Postfix semantics: a daemon reads its parameters once, at start).
 */
#ifndef POSTERN_PARAMS_H
#define POSTERN_PARAMS_H

#include "mail/maincf.h"
#include "util/argv.h"
#include "util/strbuf.h"

#ifndef DEF_CONFIG_DIR
#define DEF_CONFIG_DIR      "/etc/postern"
#endif
#ifndef DEF_QUEUE_DIR
#define DEF_QUEUE_DIR       "/var/spool/postern"
#endif
#ifndef DEF_DATA_DIR
#define DEF_DATA_DIR        "/var/lib/postern"
#endif
#ifndef DEF_DAEMON_DIR
#define DEF_DAEMON_DIR      "/usr/local/libexec/postern"
#endif
#ifndef DEF_COMMAND_DIR
#define DEF_COMMAND_DIR     "/usr/local/sbin"
#endif

#define POSTERN_VERSION     "0.1"

typedef enum PARAM_TYPE {
    PARAM_STR, PARAM_RAW, PARAM_FN, PARAM_INT, PARAM_LONG, PARAM_BOOL,
    PARAM_TIME,
} PARAM_TYPE;

typedef struct PARAM_CTX PARAM_CTX;

typedef struct PARAM_DEF {
    const char *name;
    PARAM_TYPE type;
    const char *defval;                 /* NULL for PARAM_FN */
    const char *(*def_fn)(PARAM_CTX *ctx);      /* PARAM_FN */
    void   *var;
    long    min;
    long    max;
    char    unit;                       /* PARAM_TIME default unit */
    const char *doc;
} PARAM_DEF;

/* The variables. */
#define P_STR(n, d, doc)                 extern char *var_##n;
#define P_RAW(n, d, doc)                 extern char *var_##n;
#define P_FN(n, f, doc)                  extern char *var_##n;
#define P_INT(n, d, lo, hi, doc)         extern int var_##n;
#define P_LONG(n, d, lo, hi, doc)        extern long var_##n;
#define P_BOOL(n, d, doc)                extern int var_##n;
#define P_TIME(n, d, u, lo, hi, doc)     extern int var_##n;
#include "mail/param_list.h"
#undef P_STR
#undef P_RAW
#undef P_FN
#undef P_INT
#undef P_LONG
#undef P_BOOL
#undef P_TIME

extern const PARAM_DEF param_table[];
extern const size_t param_table_size;

const PARAM_DEF *param_find(const char *name);

/*
 * A parameter context: main.cf as read, overrides, and how to find the
 * default of a parameter.  params_load() builds one; "postern conf" uses
 * it directly to print raw, default and expanded values.
 */
struct PARAM_CTX {
    MAINCF *maincf;                     /* may be NULL: defaults only */
    HTABLE *overrides;                  /* name -> MAINCF_ENTRY, may be NULL */
    int     defaults_only;              /* postern conf -d */
    HTABLE *fn_cache;                   /* computed defaults */
};

PARAM_CTX *param_ctx_alloc(MAINCF *maincf);
void    param_ctx_free(PARAM_CTX **ctxp);

/* Add "name=value" overrides (master.cf -o, postern conf -o); -1 if bad. */
int     param_ctx_override(PARAM_CTX *ctx, const char *assignment,
                           const char *origin, STRBUF *err);

/* The default of a known parameter, unexpanded ("" when unknown). */
const char *param_default(PARAM_CTX *ctx, const PARAM_DEF *def);

/* The raw value: override, else main.cf, else default; NULL if none. */
const char *param_raw(PARAM_CTX *ctx, const char *name);

/* Where the raw value came from, for error messages ("main.cf, line 3"). */
void    param_origin(PARAM_CTX *ctx, const char *name, STRBUF *out);

/* Expand $name references in text against ctx; -1 with err on error. */
int     param_expand(PARAM_CTX *ctx, const char *text, STRBUF *out,
                     STRBUF *err);

/* Names used as $name or ${name...} in any main.cf or override value. */
HTABLE *param_referenced_names(PARAM_CTX *ctx);

/*
 * params_load - read CONFIG_DIR/main.cf (config_dir NULL: the
 * POSTERN_CONFIG_DIR environment variable, else the built-in default),
 * apply "name=value" overrides, set every var_*.  Errors name the file and
 * line.  A missing main.cf is an error unless PARAMS_FLAG_MISSING_OK.  The _r form returns -1 with err set; params_load() is fatal.
 */
#define PARAMS_FLAG_MISSING_OK  (1 << 0)        /* no main.cf: defaults */
#define PARAMS_FLAG_CHECK_ONLY  (1 << 1)        /* validate, set nothing */

int     params_load_r(const char *config_dir, const ARGV *overrides,
                      int flags, STRBUF *err);
void    params_load(const char *config_dir, const ARGV *overrides, int flags);

/*
 * Read main.cf from this file instead of CONFIG_DIR/main.cf (NULL: back to
 * normal).  master gives its children the copy of main.cf it validated,
 * so that an edit with an error cannot reach a new process before a
 * reload has checked it.
 */
void    params_set_maincf_file(const char *path);

/* The config directory params_load() would use for config_dir. */
const char *params_config_dir(const char *config_dir);

/*
 * Per-transport parameters (TRANSPORT_destination_concurrency_limit...):
 * their names are made at run time, so they are not in the table.  The
 * value as the last params_load() saw it, expanded, or defval.
 */
const char *param_dynamic(const char *name, const char *defval);
long    param_dynamic_long(const char *name, long defval, long min, long max);

/* Is name one of those per-transport names? */
int     param_dynamic_known(const char *name);

/* Warn (msg_warn) about main.cf names that are neither known nor used. */
void    params_warn_unknown(PARAM_CTX *ctx);

/* Convert a value as the parameter's type; -1 with err naming origin. */
int     param_convert(const PARAM_DEF *def, const char *value,
                      const char *origin, STRBUF *err);

/* Computed defaults (param_list.h P_FN). */
const char *param_default_myhostname(PARAM_CTX *ctx);
const char *param_default_mydomain(PARAM_CTX *ctx);
const char *param_default_mail_version(PARAM_CTX *ctx);
const char *param_default_mynetworks(PARAM_CTX *ctx);

#endif
