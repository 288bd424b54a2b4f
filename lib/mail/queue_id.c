/*
 * queue_id - long queue IDs.
 */
#include <string.h>

#include "mail/queue_id.h"

static const char queue_id_digits[] =
    "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

/* Append value in base (51 or 52), at least width digits. */
static void queue_id_encode(STRBUF *id, unsigned long long value, int base,
                            int width)
{
    char tmp[32];
    int n = 0;

    do {
        tmp[n++] = queue_id_digits[value % (unsigned) base];
        value /= (unsigned) base;
    } while (value && n < (int) sizeof(tmp));
    while (n < width && n < (int) sizeof(tmp))
        tmp[n++] = '0';
    while (n > 0)
        strbuf_addch(id, tmp[--n]);
}

void queue_id_make(STRBUF *id, long sec, long usec, ino_t inode)
{
    strbuf_reset(id);
    queue_id_encode(id, (unsigned long long) sec, 52, 6);
    queue_id_encode(id, (unsigned long long) usec, 52, 4);
    strbuf_addch(id, 'z');
    queue_id_encode(id, (unsigned long long) inode, 51, 1);
}

/*
 * The time digits are base 52 and may contain "z" themselves: the
 * separator is the last "z", and the inode after it is base 51 (no "z").
 */
int queue_id_valid(const char *str)
{
    size_t len = strlen(str);
    const char *z = strrchr(str, 'z');

    if (len < 12 || len > QUEUE_ID_MAX || z == NULL || z - str < 10
        || z[1] == 0)
        return 0;
    for (const char *cp = str; *cp; cp++)
        if (strchr(queue_id_digits, *cp) == NULL)
            return 0;
    return 1;
}

long queue_id_time(const char *str)
{
    const char *z = strrchr(str, 'z');
    long sec = 0;

    if (!queue_id_valid(str))
        return -1;
    for (const char *cp = str; cp < z - 4; cp++)
        sec = sec * 52 + (long) (strchr(queue_id_digits, *cp)
                                 - queue_id_digits);
    return sec;
}
