/*
 * file_atomic - replace a file's contents so that readers see the old
 * file or the new one, never a mix: write a temporary file next to it,
 * fsync, rename.  An existing file keeps its mode.
 */
#ifndef POSTERN_FILE_ATOMIC_H
#define POSTERN_FILE_ATOMIC_H

#include <stddef.h>
#include <sys/types.h>

#include "util/strbuf.h"

/* Returns 0, or -1 with err set; no temporary file is left behind. */
int     file_write_atomic(const char *path, const void *data, size_t len,
                          mode_t new_mode, STRBUF *err);

#endif
