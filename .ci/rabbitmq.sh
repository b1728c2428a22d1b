#!/usr/bin/env bash
# Makes sure a RabbitMQ broker is running for the tests of adapters/rabbitmq (and anything
# else that talks AMQP to 127.0.0.1:5672), on a fresh Debian machine as root:
#   1. a broker already listening on the port is used as it is;
#   2. else, if RabbitMQ is installed, it is started (or its app started, if the node is up
#      with the app stopped, as `rabbitmqctl stop_app` leaves it);
#   3. else it is installed from Debian packages (listening on loopback only) and started.
# Every wait is bounded (RABBITMQ_WAIT_SECONDS, default 60). Exits non-zero, saying why, if
# no broker answers in the end.
#
# The tests read the broker URL from PONG_AMQP_URL (default
# amqp://guest:guest@127.0.0.1:5672/%2f); this script only ever manages a local broker, and
# with a PONG_AMQP_URL naming another host it just checks that one answers.
set -euo pipefail

WAIT_SECONDS="${RABBITMQ_WAIT_SECONDS:-60}"
URL="${PONG_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

say() { echo "rabbitmq.sh: $*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# host and port out of amqp://user:pass@host:port/vhost (port 5672 if absent).
authority="${URL#*://}"
authority="${authority%%/*}"
authority="${authority##*@}"
HOST="${authority%%:*}"
PORT=5672
[[ "$authority" == *:* ]] && PORT="${authority##*:}"
[[ -z "$HOST" ]] && HOST=127.0.0.1

listening() {
    # bash's /dev/tcp: no netcat needed on a fresh machine. The subshell closes the socket.
    timeout 2 bash -c "exec 3<>/dev/tcp/${HOST}/${PORT}" 2>/dev/null
}

wait_for_port() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until listening; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 1
    done
}

if listening; then
    say "a broker is already listening on ${HOST}:${PORT}; using it"
    exit 0
fi

case "$HOST" in
    127.0.0.1 | localhost | ::1) ;;
    *) fail "nothing answers on ${HOST}:${PORT} (from PONG_AMQP_URL), and that is not this machine" ;;
esac

if ! command -v rabbitmq-server >/dev/null 2>&1; then
    say "RabbitMQ is not installed; installing it from Debian packages"
    if [[ ! -e /etc/rabbitmq/rabbitmq.conf ]]; then
        # Before the install, so a broker the package starts already listens on loopback only.
        mkdir -p /etc/rabbitmq
        printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$PORT" >/etc/rabbitmq/rabbitmq.conf
    fi
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || fail "apt-get update failed"
    timeout 900 apt-get install -y -qq --no-install-recommends rabbitmq-server \
        || fail "apt-get install rabbitmq-server failed"
    command -v rabbitmq-server >/dev/null 2>&1 || fail "rabbitmq-server is still not on PATH"
    # The package may have started it already (with an init system) or not (in a
    # container): either way the checks below start it if needed and wait for it.
    sleep 2
    if listening; then
        say "the freshly installed broker is listening on ${HOST}:${PORT}"
        exit 0
    fi
fi

if timeout 20 rabbitmqctl -q ping >/dev/null 2>&1; then
    # The node runs but does not listen: its app was stopped (rabbitmqctl stop_app).
    say "the RabbitMQ node is up but not listening; starting its app"
    timeout "$WAIT_SECONDS" rabbitmqctl -q start_app || fail "rabbitmqctl start_app failed"
else
    say "starting RabbitMQ (rabbitmq-server -detached)"
    # Not fatal: a node that is still booting (started by the package) refuses a second
    # start, and the bounded wait below is what decides.
    rabbitmq-server -detached || say "rabbitmq-server -detached failed; waiting anyway"
fi

# await_startup returns once the node has booted; it fails fast while the node is not up
# yet at all, so retry it within the same bounded wait, then check the port itself.
deadline=$((SECONDS + WAIT_SECONDS))
until timeout "$WAIT_SECONDS" rabbitmqctl -q await_startup >/dev/null 2>&1; do
    ((SECONDS < deadline)) || break
    sleep 1
done
wait_for_port || fail "RabbitMQ did not listen on ${HOST}:${PORT} within ${WAIT_SECONDS}s \
(see /var/log/rabbitmq/ for why)"
say "RabbitMQ is listening on ${HOST}:${PORT}"
