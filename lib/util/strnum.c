/*
 * strnum - strict number parsing.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "util/strnum.h"

int str_to_long(const char *str, long min, long max, long *value_r)
{
    char *end;
    long val;

    if (*str == 0 || isspace((unsigned char) *str) || *str == '+')
        return -1;
    errno = 0;
    val = strtol(str, &end, 10);
    if (errno != 0 || *end != 0 || val < min || val > max)
        return -1;
    *value_r = val;
    return 0;
}

int str_to_ulong_n(const char *str, size_t len, unsigned long max,
                   unsigned long *value_r)
{
    unsigned long val = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (!isdigit((unsigned char) str[i]))
            return -1;
        d = (unsigned) (str[i] - '0');
        /* val * 10 + d <= max; "max - d" must not wrap when max < 9. */
        if (d > max || val > (max - d) / 10)
            return -1;
        val = val * 10 + d;
    }
    *value_r = val;
    return 0;
}

int str_to_ulong(const char *str, unsigned long max, unsigned long *value_r)
{
    size_t len = 0;

    while (str[len])
        len++;
    return str_to_ulong_n(str, len, max, value_r);
}
