#!/usr/bin/env bash
# Start the local services the test suite talks to (PostgreSQL, Redis) when they are not running.
# Debian's packages; run as root. CI machines usually have them running already.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! up 5432; then
  if ! command -v pg_ctlcluster >/dev/null; then apt-get update -q && apt-get install -y -q postgresql; fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
if ! up 6379; then
  if ! command -v redis-server >/dev/null; then apt-get update -q && apt-get install -y -q redis-server; fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for i in $(seq 1 30); do up 5432 && up 6379 && exit 0; sleep 1; done
echo "services did not come up: PostgreSQL on 5432 and Redis on 6379 are needed" >&2
exit 1
