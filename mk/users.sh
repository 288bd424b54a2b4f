#!/bin/sh
# users.sh - create the accounts Postern runs as, when missing, as a
# package would: the system user "postern" (mail_owner, with its own group)
# and the group "postdrop" (setgid_group).  Needs root; as another user it
# only says what is missing (development instances then run without
# changing user).
set -eu

user=${1:-postern}
group=${2:-postdrop}

if [ "$(id -u)" != 0 ]; then
    getent passwd "$user" >/dev/null || echo "users: $user is missing (not root, not creating it)"
    exit 0
fi
if ! getent group "$group" >/dev/null; then
    groupadd --system "$group"
    echo "users: created group $group"
fi
if ! getent passwd "$user" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Postern mail system" "$user"
    echo "users: created user $user"
fi
