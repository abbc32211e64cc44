#!/bin/bash
# handler_ssh.sh: the sshd forced command (root, backup host, port 2222) in front of
# repmgr_handler.sh.  Accepts exactly "NODE_ID EVENT" in SSH_ORIGINAL_COMMAND.
set -f
read -r id event extra <<<"${SSH_ORIGINAL_COMMAND:-}"
[[ $id =~ ^[12]$ && $event =~ ^[a-z_]+$ && -z $extra ]] || { echo "bad request" >&2; exit 2; }
exec "$(dirname "$0")/repmgr_handler.sh" "$id" "$event"
