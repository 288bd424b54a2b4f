#!/bin/sh
# deps.sh - install the Debian 12 packages Postern needs to build and test,
# only those missing.  Runs apt-get update first, because a fresh machine's
# package lists are empty or stale.  Root runs apt-get; others go through sudo.
#
# Services in these packages (postfix, nsd, dovecot, ...) are only used as test peers
# and are started by the tests themselves; a policy-rc.d keeps apt from
# starting them system-wide during the install.
set -eu

PACKAGES="
build-essential pkg-config clang libclang-rt-14-dev
libssl-dev openssl
libsasl2-dev libsasl2-modules sasl2-bin
libpcre2-dev
liblmdb-dev lmdb-utils
libspf2-dev libopendkim-dev libopendmarc-dev publicsuffix
libcmocka-dev
python3 python3-pytest python3-dnspython python3-dkim
postfix postfix-lmdb postfix-pcre pflogsumm swaks libnet-ssleay-perl
nsd dovecot-lmtpd dovecot-pop3d fetchmail curl
"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        "install ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi

# Keep package maintainer scripts from starting daemons (postfix on port 25,
# nsd on port 53): CI must run with no services but those the tests start.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=yes
fi
cleanup() {
    if [ -n "$made_policy" ]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT

$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends $missing
