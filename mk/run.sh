#!/bin/sh
# run.sh BUILD_DIR - start the development instance in ./run (make run).
#
# run/etc/main.cf is written once (edit it freely); run/etc/master.cf is
# written from conf/master.cf on every run, with the services moved to the
# development ports on 127.0.0.1, so that new services appear.  The queue
# and the mail store in run/ are kept between runs.
set -eu

top=$(pwd)
build=$top/$1
run=$top/run

mkdir -p "$run/etc"
chmod 755 "$run"

# The demo mailbox belongs to the mail system's account when run as root
# (a real site would use a dedicated vmail account), else to the caller.
if [ "$(id -u)" = 0 ] && getent passwd postern >/dev/null; then
    mail_uid=$(id -u postern)
    mail_gid=$(id -g postern)
else
    mail_uid=$(id -u)
    mail_gid=$(id -g)
fi
mkdir -p "$run/mail"
chown "$mail_uid:$mail_gid" "$run/mail"

if [ ! -f "$run/etc/main.cf" ]; then
    {
        cat "$top/conf/main.cf"
        cat <<EOT

# --- development instance (make run) ---
myhostname = mail.example.test
mydomain = example.test
queue_directory = $run/queue
data_directory = $run/data
daemon_directory = $build/libexec
command_directory = $build/bin
maillog_file = /dev/stderr
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
# The demo user: mail for demo@example.test lands in run/mail/.
virtual_mailbox_domains = example.test
virtual_mailbox_base = $run/mail
virtual_uid_maps = static:$mail_uid
virtual_gid_maps = static:$mail_gid
EOT
    } > "$run/etc/main.cf"
fi

# TLS and AUTH (added once, also to a main.cf from before they existed).
if ! grep -q '^# --- TLS and AUTH (make run) ---' "$run/etc/main.cf"; then
    sed -i '/^virtual_mailbox_maps = inline:/d' "$run/etc/main.cf"
    cat >> "$run/etc/main.cf" <<EOT

# --- TLS and AUTH (make run) ---
# Users and passwords: postern -c $run/etc user add|passwd|del|list
virtual_mailbox_maps = lmdb:$run/etc/vmailbox
smtpd_tls_cert_file = $run/etc/cert.pem
smtpd_tls_key_file = $run/etc/key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sender_login_maps = pcre:$run/etc/sender_logins
EOT
fi

# Relaying out (added once): mail for example.net goes to a local
# smtp-sink that this script starts on 127.0.0.1:2526, through the smtp
# transport; every other remote domain by MX lookup, as in production.
if ! grep -q '^# --- relaying (make run) ---' "$run/etc/main.cf"; then
    cat >> "$run/etc/main.cf" <<EOT

# --- relaying (make run) ---
transport_maps = inline:{ example.net=smtp:[127.0.0.1]:2526 }
EOT
fi

# A self-signed certificate for mail.example.test and 127.0.0.1.
if [ ! -f "$run/etc/key.pem" ] || [ ! -f "$run/etc/cert.pem" ]; then
    (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
        -keyout "$run/etc/key.pem" -out "$run/etc/cert.pem" \
        -subj "/CN=mail.example.test" \
        -addext "subjectAltName=DNS:mail.example.test,IP:127.0.0.1" \
        2>/dev/null)
    chmod 644 "$run/etc/cert.pem"
fi
if [ ! -f "$run/etc/sender_logins" ]; then
    cat > "$run/etc/sender_logins" <<'EOT'
# Each address belongs to the login of the same name (postern user names
# users by their address); used by reject_sender_login_mismatch.
/^(.+)$/    $1
EOT
fi

# Development ports: the service names of conf/master.cf, moved; the
# demo checks that users send as themselves.
sed -e 's/^#\(  -o smtpd_sender_restrictions=reject_sender_login_mismatch\)/\1/' \
    -e 's/^smtp\([[:space:]]\{1,\}inet\)/127.0.0.1:2525\1/' \
    -e 's/^submission\([[:space:]]\{1,\}inet\)/127.0.0.1:2587\1/' \
    -e 's/^smtps\([[:space:]]\{1,\}inet\)/127.0.0.1:2465\1/' \
    -e 's/^pop3\([[:space:]]\{1,\}inet\)/127.0.0.1:2110\1/' \
    -e 's/^pop3s\([[:space:]]\{1,\}inet\)/127.0.0.1:2995\1/' \
    -e 's/^imap\([[:space:]]\{1,\}inet\)/127.0.0.1:2143\1/' \
    -e 's/^imaps\([[:space:]]\{1,\}inet\)/127.0.0.1:2993\1/' \
    "$top/conf/master.cf" > "$run/etc/master.cf"

postern="$build/bin/postern -c $run/etc"

# The demo user and its password (demo), once.
mkdir -p "$run/data"
if ! $postern user list 2>/dev/null | grep -q '^demo@example.test '; then
    echo demo | $postern user add demo@example.test >/dev/null
fi
cat <<EOT
== Postern development instance
   config:  $run/etc (main.cf, master.cf)
   queue:   $run/queue
   log:     this terminal; Ctrl-C stops master and every service
   control: $postern status|reload|stop   (from another terminal)
   services (from master.cf):
EOT
grep -v '^[[:space:]]' "$run/etc/master.cf" | grep -v '^#' | grep -v '^$' \
    | awk '{ printf "     %-16s %-5s %s\n", $1, $2, $8 }'
cat <<EOT
   try:     swaks --to demo@example.test --server 127.0.0.1:2525
            (the message lands in $run/mail/example.test/demo/new/)
            $postern queue list
   mail client (Thunderbird-style), user demo@example.test, password demo:
            SMTP 127.0.0.1:2587 STARTTLS, or 127.0.0.1:2465 SSL/TLS
            swaks --server 127.0.0.1:2587 --tls --auth-user demo@example.test \\
                  --auth-password demo --from demo@example.test --to bob@example.net
            (relayed to the smtp-sink on 127.0.0.1:2526: $run/sink/)
            POP3 127.0.0.1:2110 STARTTLS, or 127.0.0.1:2995 SSL/TLS
            curl -u demo@example.test:demo pop3://127.0.0.1:2110/1
            (the certificate is self-signed: $run/etc/cert.pem)
EOT
echo

# The smtp-sink that stands for the outside world (Postfix's test tool).
sink_pid=""
if [ -x /usr/sbin/smtp-sink ]; then
    mkdir -p "$run/sink"
    sink_user=$(id -un)
    if [ "$(id -u)" = 0 ] && getent passwd postern >/dev/null; then
        sink_user=postern
        chown postern "$run/sink"
    fi
    /usr/sbin/smtp-sink -u "$sink_user" -d "$run/sink/%Y%m%d%H/%M." \
        127.0.0.1:2526 100 &
    sink_pid=$!
fi
stop_sink() {
    if [ -n "$sink_pid" ]; then
        kill "$sink_pid" 2>/dev/null || true
        wait "$sink_pid" 2>/dev/null || true
    fi
}
trap stop_sink EXIT
trap 'exit 130' INT TERM
$postern start-fg
