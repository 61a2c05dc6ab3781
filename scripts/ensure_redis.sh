#!/usr/bin/env bash
# Make sure a Redis server answers on 127.0.0.1:6379: start Debian's redis-server, installing it
# first when it is absent. Idempotent: does nothing when Redis already answers.
set -euo pipefail
port="${LORE_REDIS_PORT:-6379}"
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if answers; then exit 0; fi
if ! command -v redis-server >/dev/null; then
  echo "redis-server not found: installing Debian's redis-server"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq redis-server >/dev/null
fi
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no >/dev/null
for _ in $(seq 1 50); do answers && exit 0; sleep 0.1; done
echo "redis-server did not answer on 127.0.0.1:$port" >&2
exit 1
