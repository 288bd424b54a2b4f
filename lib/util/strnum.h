/*
 * strnum - range-checked number parsing (OpenSMTPD strtonum, Dovecot strnum).
 *
 * The whole string must be the number: no sign unless allowed, no leading
 * or trailing junk, no overflow.  Returns 0 on success, -1 otherwise.
 */
#ifndef POSTERN_STRNUM_H
#define POSTERN_STRNUM_H

#include <stddef.h>

int     str_to_long(const char *str, long min, long max, long *value_r);
int     str_to_ulong(const char *str, unsigned long max,
                     unsigned long *value_r);

/*
 * Parse a counted run of digits: exactly the first 'len' characters, which
 * must all be digits (e.g. len = strspn(str, "0123456789")).
 */
int     str_to_ulong_n(const char *str, size_t len, unsigned long max,
                       unsigned long *value_r);

#endif
