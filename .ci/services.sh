#!/usr/bin/env bash
# Start (or, on a machine without them, install and start) the servers the service tests use:
# PostgreSQL, Redis and RabbitMQ on loopback. Idempotent and quick when they already run.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done; echo "$2 did not come up on port $1" >&2; return 1; }
apt_install() {
  command -v apt-get >/dev/null || { echo "cannot install $*: no apt-get; install it yourself" >&2; return 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  if [ -z "$ver" ]; then echo "PostgreSQL installed but no cluster found" >&2; exit 1; fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_port 5432 PostgreSQL || exit 1
fi
# the tests connect as postgres without a password on 127.0.0.1
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  hba=$(su postgres -c "psql -Atc 'show hba_file'" 2>/dev/null)
  if [ -n "$hba" ]; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    su postgres -c "psql -Atc 'select pg_reload_conf()'" >/dev/null
  fi
fi

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis || exit 1
fi

if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 RabbitMQ || exit 1
fi
echo "services: PostgreSQL :5432, Redis :6379, RabbitMQ :5672 up"
