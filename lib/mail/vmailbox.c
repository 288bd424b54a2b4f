/*
 * vmailbox - a virtual mailbox user's Maildir and ids (see vmailbox.h).
 */
#include <string.h>

#include "mail/dict.h"
#include "mail/params.h"
#include "mail/vmailbox.h"
#include "util/msg.h"
#include "util/strnum.h"

void vmailbox_maps_open(VMAILBOX_MAPS *vm)
{
    vm->mailbox = maps_open("virtual_mailbox_maps", var_virtual_mailbox_maps,
                            DICT_FLAG_DEFAULT);
    vm->uid = maps_open("virtual_uid_maps", var_virtual_uid_maps,
                        DICT_FLAG_DEFAULT);
    vm->gid = maps_open("virtual_gid_maps", var_virtual_gid_maps,
                        DICT_FLAG_DEFAULT);
}

void vmailbox_maps_free(VMAILBOX_MAPS *vm)
{
    maps_free(&vm->mailbox);
    maps_free(&vm->uid);
    maps_free(&vm->gid);
}

/*
 * A numeric id from virtual_uid_maps or virtual_gid_maps: 0 with *id_r,
 * or -1 after a warning (a configuration error: the mail waits).
 */
static int vmailbox_id(MAPS *maps, const char *title, const char *address,
                       long min, long *id_r)
{
    const char *value;

    switch (maps_find_addr(maps, address, MAPS_ADDR_MAILBOX, 0, &value,
                           NULL)) {
    case DICT_FOUND:
        if (str_to_long(value, min, 0x7fffffffL, id_r) == 0)
            return 0;
        msg_warn("recipient %s: bad %s value \"%s\" (the least allowed is "
                 "%ld)", address, title, value, min);
        return -1;
    case DICT_NOTFOUND:
        msg_warn("recipient %s: not found in %s", address, title);
        return -1;
    default:
        msg_warn("recipient %s: %s", address, maps->error->data);
        return -1;
    }
}

/* Is there a ".." component in a path from a table? */
static int vmailbox_dotdot(const char *path)
{
    for (const char *cp = path; (cp = strstr(cp, "..")) != NULL; cp += 2)
        if ((cp == path || cp[-1] == '/') && (cp[2] == 0 || cp[2] == '/'))
            return 1;
    return 0;
}

int vmailbox_find(VMAILBOX_MAPS *vm, const char *address, VMAILBOX *box)
{
    STRBUF *key = strbuf_alloc(64);
    const char *value;
    long uid;
    long gid;
    int rc = VMAILBOX_FOUND;

    strbuf_set(key, address);
    strbuf_lower(key);
    switch (maps_find_addr(vm->mailbox, key->data, MAPS_ADDR_MAILBOX, 0,
                           &value, NULL)) {
    case DICT_FOUND:
        break;
    case DICT_NOTFOUND:
        rc = VMAILBOX_NOTFOUND;
        goto done;
    default:
        msg_warn("recipient %s: %s", address, vm->mailbox->error->data);
        rc = VMAILBOX_RETRY;
        goto done;
    }
    strbuf_printf(box->path, "%s/%s", var_virtual_mailbox_base, value);
    if (*var_virtual_mailbox_base != '/' || *value == 0
        || vmailbox_dotdot(value)) {
        msg_warn("recipient %s: bad mailbox path \"%s\" (virtual_mailbox_base"
                 " must be an absolute path, the table result a path under "
                 "it)", address, box->path->data);
        rc = VMAILBOX_CONFIG;
        goto done;
    }
    if (vmailbox_id(vm->uid, "virtual_uid_maps", key->data,
                    var_virtual_minimum_uid, &uid) < 0
        || vmailbox_id(vm->gid, "virtual_gid_maps", key->data, 1, &gid) < 0) {
        rc = VMAILBOX_CONFIG;
        goto done;
    }
    box->uid = (uid_t) uid;
    box->gid = (gid_t) gid;
done:
    strbuf_free(&key);
    return rc;
}
