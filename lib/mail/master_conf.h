/*
 * master_conf - read and check the whole configuration the way master
 * uses it: main.cf values (typed), master.cf entries, and main.cf as each
 * service sees it with its -o overrides.  Shared by master (start and
 * reload) and by "postern start/check", so that a configuration that
 * would not run is refused before anything starts.
 */
#ifndef POSTERN_MASTER_CONF_H
#define POSTERN_MASTER_CONF_H

#include "mail/mastercf.h"
#include "util/strbuf.h"

/*
 * Check everything without changing var_* values; on success *cf_r (if
 * not NULL) gets the parsed master.cf.  -1 with err naming file and line.
 */
int     master_conf_check(const char *config_dir, MASTERCF **cf_r,
                          STRBUF *err);

/* Is this master.cf service type one that master can run? */
int     master_conf_type_supported(const char *type);

#endif
