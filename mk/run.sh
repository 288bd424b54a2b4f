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
virtual_mailbox_maps = inline:{ demo@example.test=example.test/demo/ }
virtual_uid_maps = static:$mail_uid
virtual_gid_maps = static:$mail_gid
EOT
    } > "$run/etc/main.cf"
fi

# Development ports: the service names of conf/master.cf, moved.
sed -e 's/^smtp\([[:space:]]\{1,\}inet\)/127.0.0.1:2525\1/' \
    -e 's/^submission\([[:space:]]\{1,\}inet\)/127.0.0.1:2587\1/' \
    -e 's/^smtps\([[:space:]]\{1,\}inet\)/127.0.0.1:2465\1/' \
    -e 's/^pop3\([[:space:]]\{1,\}inet\)/127.0.0.1:2110\1/' \
    -e 's/^pop3s\([[:space:]]\{1,\}inet\)/127.0.0.1:2995\1/' \
    -e 's/^imap\([[:space:]]\{1,\}inet\)/127.0.0.1:2143\1/' \
    -e 's/^imaps\([[:space:]]\{1,\}inet\)/127.0.0.1:2993\1/' \
    "$top/conf/master.cf" > "$run/etc/master.cf"

postern="$build/bin/postern -c $run/etc"
cat <<EOT
== Postern development instance
   config:  $run/etc (main.cf, master.cf)
   queue:   $run/queue
   log:     this terminal; Ctrl-C stops master and every service
   control: $postern status|reload|stop   (from another terminal)
   services (from master.cf):
EOT
grep -v '^[[:space:]]*#' "$run/etc/master.cf" | grep -v '^[[:space:]]*$' \
    | awk '{ printf "     %-16s %-5s %s\n", $1, $2, $8 }'
cat <<EOT
   try:     swaks --to demo@example.test --server 127.0.0.1:2525
            (the message lands in $run/mail/example.test/demo/new/)
            $postern queue list
EOT
echo
exec $postern start-fg
