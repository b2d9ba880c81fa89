#!/bin/sh
# board/demo/run.sh BINARY: what `make run` starts. Writes an embedded default
# configuration into build/run/ (state folder inside the build tree,
# unprivileged loopback ports, a demo user) and runs postie in the
# foreground until Ctrl-C.
set -eu
bin=${1:-build/host/postie}
cd "$(dirname "$0")/../.."
run=build/run
port=${POSTIE_PORT:-2525}
mkdir -p "$run/mail" "$run/spool"
[ -f "$run/postie.conf" ] || cat >"$run/postie.conf" <<CONF
# postie demo configuration (written by make run; edit freely, it is rewritten
# only when missing)
hostname        mail.demo.lan
listen          smtp        127.0.0.1:$port
users           ./users
aliases         ./aliases
mail_dir        ./mail
spool_dir       ./spool
local_domains   demo.lan localhost
max_message_size 10M
log             stderr
CONF
# user "demo", password "demo" (for the authenticated services to come)
[ -f "$run/users" ] || echo 'demo:$6$postiedemo$aTkRwSdT0noqDF8KyJcMkKran4tk.iz9uaHyqARkdG7KsyDaSADWvi9anN/uaaAwsYwWc2t5dn6NDCM4sndYx0' >"$run/users"
[ -f "$run/aliases" ] || printf 'postmaster: demo\nroot: demo\n' >"$run/aliases"
cat <<MSG
postie demo: SMTP on 127.0.0.1:$port, mail for demo@demo.lan lands in $run/mail/demo

  send one:  curl -s smtp://127.0.0.1:$port --mail-from you@example.org \\
               --mail-rcpt demo@demo.lan -T - <<<'Subject: hello'
        or:  swaks --server 127.0.0.1:$port --to demo@demo.lan
  read it:   cat $run/mail/demo     (or: mutt -f $run/mail/demo)
  stop:      Ctrl-C

MSG
cd "$run"
exec "../../$bin" -c postie.conf
