/*
 * master_conf - whole-configuration checks for master and postern.
 */
#include <string.h>

#include "mail/master_conf.h"
#include "mail/params.h"
#include "util/xmalloc.h"

int master_conf_type_supported(const char *type)
{
    return strcmp(type, "inet") == 0 || strcmp(type, "unix") == 0;
}

int master_conf_check(const char *config_dir, MASTERCF **cf_r, STRBUF *err)
{
    STRBUF *path = strbuf_alloc(256);
    STRBUF *why = strbuf_alloc(256);
    MASTERCF *cf;
    int rc = -1;

    config_dir = params_config_dir(config_dir);
    if (params_load_r(config_dir, NULL, PARAMS_FLAG_CHECK_ONLY, err) < 0)
        goto done_path;
    strbuf_printf(path, "%s/master.cf", config_dir);
    cf = mastercf_alloc(path->data);
    if (mastercf_read(cf, err) < 0)
        goto done;
    for (size_t i = 0; i < cf->count; i++) {
        MASTER_ENT *ent = cf->entries[i];

        if (!master_conf_type_supported(ent->type)) {
            strbuf_printf(err, "%s, line %d: service %s: type %s is not "
                          "supported by Postern (use inet or unix)",
                          cf->path, ent->lineno, ent->service, ent->type);
            goto done;
        }
        if (strchr(ent->args->argv[0], '/') != NULL) {
            strbuf_printf(err, "%s, line %d: service %s: the command must "
                          "be a program name in $daemon_directory: %s",
                          cf->path, ent->lineno, ent->service,
                          ent->args->argv[0]);
            goto done;
        }
        /* main.cf as this service will see it, with its -o overrides. */
        if (ent->overrides->argc > 0
            && params_load_r(config_dir, ent->overrides,
                             PARAMS_FLAG_CHECK_ONLY, why) < 0) {
            strbuf_printf(err, "%s, line %d: service %s: %s", cf->path,
                          ent->lineno, ent->service, why->data);
            goto done;
        }
    }
    rc = 0;
done:
    if (rc == 0 && cf_r)
        *cf_r = cf;
    else
        mastercf_free(&cf);
done_path:
    strbuf_free(&path);
    strbuf_free(&why);
    return rc;
}
