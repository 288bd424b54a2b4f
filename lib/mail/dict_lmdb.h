/*
 * dict_lmdb - lmdb: tables, binary-compatible with Postfix's.
 *
 * "lmdb:/etc/postern/access" is the file /etc/postern/access.lmdb, built
 * from the text source /etc/postern/access (dict_source.h) by "postern
 * map".  The on-disk format is the one Postfix's "postmap lmdb:" writes on
 * Linux, so either program reads the other's tables:
 *   - a single-file environment (MDB_NOSUBDIR) without LMDB's lock file
 *     (MDB_NOLOCK); entries live in the unnamed main database;
 *   - keys and values are stored with their trailing NUL byte; lookups
 *     also try the key without it, and a value is accepted either way;
 *   - concurrency is by fcntl() locks on the whole .lmdb file: a reader
 *     holds a shared lock around each read transaction, the builder an
 *     exclusive lock around its one write transaction, which empties the
 *     table and writes every entry.  Readers therefore see the old or the
 *     new content, never a mix, and need not reopen the table.
 * Open the table after fork(), and only once per process (dict_open()
 * shares it).
 */
#ifndef POSTERN_DICT_LMDB_H
#define POSTERN_DICT_LMDB_H

#include <stddef.h>

#include "mail/dict.h"
#include "util/strbuf.h"

#define DICT_LMDB_SUFFIX        ".lmdb"
#define DICT_LMDB_MAP_SIZE_DEF  ((size_t) 16777216)
#define DICT_LMDB_MAP_SIZE_MIN  ((size_t) 32768)

/*
 * dict_lmdb_set_map_size - the map size new environments start with, and
 * the step by which a build grows the map when it fills up (lmdb_map_size).
 * Smaller values are raised to DICT_LMDB_MAP_SIZE_MIN; 0 restores the
 * default.  Readers pick up a larger map that a builder wrote by
 * themselves.
 */
void    dict_lmdb_set_map_size(size_t size);

/*
 * dict_lmdb_build - build (or rebuild in place) db_path, by default
 * source_path + ".lmdb", from the postmap(1)-format text source_path.
 * Keys are lowercased when flags has DICT_FLAG_FOLD_FIX.  A new file gets
 * the read bits of the source plus owner read/write, as with postmap.
 *
 * The whole source is parsed before the table is touched, and the table
 * is replaced in one transaction: on any error (a bad source line, a key
 * too long for LMDB, a write error) the old content stays as it was, and
 * a file that this call created is removed.  A damaged table cannot be
 * emptied (LMDB walks the old tree): remove the file first.
 * Returns 0, or -1 with the reason in err ("SOURCE, line N: ..." where
 * there is a line to blame).
 */
int     dict_lmdb_build(const char *source_path, const char *db_path,
                        int flags, STRBUF *err);

#endif
