/*
 * postern map - build and query lookup tables (postmap(1)).
 *
 *   postern map [-f] [type:]file ...        build file.lmdb from file
 *   postern map -a [type:]file ...           the same from aliases(5) syntax
 *   postern map [-f] -q key table ...       print the first value found
 *   postern map [-f] -q - table ...         keys from stdin, "key<TAB>value"
 *   postern map -s table ...                list every entry
 *
 * Exit status as postmap: 0 found/built, 1 not found, 2 usage; a table
 * that cannot be read is a "table lookup problem" with status 75
 * (EX_TEMPFAIL), never "not found".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "postern.h"
#include "mail/dict.h"
#include "mail/dict_lmdb.h"
#include "mail/params.h"
#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

#define MAP_KEY_LIMIT   4096            /* longest key read from stdin */

static void map_usage(void)
{
    fprintf(stderr,
            "usage: postern map [-a] [-f] [type:]file ...\n"
            "       postern map [-f] -q key|- table ...\n"
            "       postern map -s table ...\n");
    exit(2);
}

/* "file" -> "$default_database_type:file"; "type:file" as is. */
static void map_spec(const char *arg, STRBUF *spec)
{
    const char *colon = strchr(arg, ':');

    if (colon && colon > arg && arg[strcspn(arg, ":/")] == ':')
        strbuf_set(spec, arg);
    else
        strbuf_printf(spec, "%s:%s", var_default_database_type, arg);
}

static DICT **map_open_all(char **tables, int ntables, int flags)
{
    DICT **dicts = xcalloc((size_t) ntables, sizeof(DICT *));
    STRBUF *spec = strbuf_alloc(256);
    STRBUF *err = strbuf_alloc(256);

    for (int i = 0; i < ntables; i++) {
        map_spec(tables[i], spec);
        if ((dicts[i] = dict_open(spec->data, flags, err)) == NULL)
            msg_fatal_status(EX_TEMPFAIL, "%s", err->data);
    }
    strbuf_free(&spec);
    strbuf_free(&err);
    return dicts;
}

static void map_close_all(DICT **dicts, int ntables)
{
    for (int i = 0; i < ntables; i++)
        dict_close(&dicts[i]);
    free(dicts);
}

/* First table that has key; 1 found, 0 not found; fatal on failure. */
static int map_find(DICT **dicts, int ntables, const char *key,
                    const char **value_r)
{
    for (int i = 0; i < ntables; i++) {
        switch (dict_lookup(dicts[i], key, value_r)) {
        case DICT_FOUND:
            return 1;
        case DICT_ERROR:
            msg_fatal_status(EX_TEMPFAIL, "table %s:%s: lookup of \"%s\" "
                             "failed: %s", dicts[i]->type, dicts[i]->name,
                             key, dicts[i]->error->data);
        }
    }
    return 0;
}

static int map_query(const char *key, char **tables, int ntables, int flags)
{
    DICT **dicts = map_open_all(tables, ntables, flags);
    const char *value;
    int found = 0;

    if (strcmp(key, "-") != 0) {
        if ((found = map_find(dicts, ntables, key, &value)) != 0)
            printf("%s\n", value);
    } else {
        STREAM *in = stream_open(STDIN_FILENO, 0, MAP_KEY_LIMIT);
        STRBUF *line = strbuf_alloc(256);
        ssize_t n;

        while ((n = stream_get_line(in, line)) > 0) {
            if (line->data[line->len - 1] != '\n' && !stream_eof(in))
                msg_fatal("stdin: key longer than %d bytes", MAP_KEY_LIMIT);
            strbuf_trim_right(line);
            if (map_find(dicts, ntables, line->data, &value)) {
                printf("%s\t%s\n", line->data, value);
                found = 1;
            }
        }
        if (n < 0)
            msg_fatal("read stdin: %m");
        strbuf_free(&line);
        stream_free(&in);
    }
    map_close_all(dicts, ntables);
    return found ? 0 : 1;
}

static int map_dump(char **tables, int ntables, int flags)
{
    DICT **dicts = map_open_all(tables, ntables, flags);

    for (int i = 0; i < ntables; i++) {
        const char *key;
        const char *value;
        int rc;

        if (dicts[i]->sequence == NULL)
            msg_fatal("table %s:%s cannot be listed", dicts[i]->type,
                      dicts[i]->name);
        for (rc = dicts[i]->sequence(dicts[i], 1, &key, &value);
             rc == DICT_FOUND;
             rc = dicts[i]->sequence(dicts[i], 0, &key, &value))
            printf("%s\t%s\n", key, value);
        if (rc == DICT_ERROR)
            msg_fatal_status(EX_TEMPFAIL, "table %s:%s: %s", dicts[i]->type,
                             dicts[i]->name, dicts[i]->error->data);
    }
    map_close_all(dicts, ntables);
    return 0;
}

static int map_build(char **tables, int ntables, int flags)
{
    STRBUF *spec = strbuf_alloc(256);
    STRBUF *err = strbuf_alloc(256);

    for (int i = 0; i < ntables; i++) {
        const char *colon;

        map_spec(tables[i], spec);
        colon = strchr(spec->data, ':');
        if (strncmp(spec->data, "lmdb:", 5) != 0)
            msg_fatal_status(2, "%s: only lmdb: tables are built; "
                             "%.*s: tables are read directly",
                             tables[i], (int) (colon - spec->data),
                             spec->data);
        if (dict_lmdb_build(colon + 1, NULL, flags, err) < 0)
            msg_fatal("%s", err->data);
    }
    strbuf_free(&spec);
    strbuf_free(&err);
    return 0;
}

int postern_map_main(int argc, char **argv, const char *config_dir)
{
    int flags = DICT_FLAG_DEFAULT;
    const char *query = NULL;
    int dump = 0;
    int ch;
    int status;

    while ((ch = getopt(argc, argv, "ac:fq:sv")) != -1) {
        switch (ch) {
        case 'a':
            flags |= DICT_FLAG_ALIASES;
            break;
        case 'c':
            config_dir = optarg;
            break;
        case 'f':
            flags &= ~DICT_FLAG_FOLD_FIX;
            break;
        case 'q':
            query = optarg;
            break;
        case 's':
            dump = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            map_usage();
        }
    }
    if (optind >= argc || (query && dump))
        map_usage();
    params_load(config_dir, NULL, PARAMS_FLAG_MISSING_OK);
    dict_lmdb_set_map_size((size_t) var_lmdb_map_size);
    if (query)
        status = map_query(query, argv + optind, argc - optind, flags);
    else if (dump)
        status = map_dump(argv + optind, argc - optind, flags);
    else
        status = map_build(argv + optind, argc - optind, flags);
    if (fflush(stdout) != 0 || ferror(stdout))
        msg_fatal("write stdout: %m");
    return status;
}
