#!/bin/bash
# exchanger-healthcheck [PATH]: exits 0 when `GET PATH` (default /readyz) on the server in
# this container answers 200, 1 otherwise. Used by the image's HEALTHCHECK and by
# docker-compose.yml.
#
# Plain bash (its /dev/tcp redirection), so the runtime image needs no curl or wget: bash and
# coreutils are part of every Debian base image. The port comes from BIND_ADDR, so the check
# follows the server when BIND_ADDR is changed.
set -u

path="${1:-/readyz}"
bind="${BIND_ADDR:-0.0.0.0:8080}"
port="${bind##*:}"
host="${bind%:*}"
host="${host#[}"
host="${host%]}"
# A wildcard listen address is reached over loopback.
case "$host" in "" | 0.0.0.0 | :: | "*") host=127.0.0.1 ;; esac

if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
    echo "unhealthy: cannot connect to $host:$port" >&2
    exit 1
fi
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: exchanger-healthcheck\r\nConnection: close\r\n\r\n' \
    "$path" >&3
if ! IFS= read -r -t 5 status <&3; then
    echo "unhealthy: no answer from $host:$port$path" >&2
    exit 1
fi
status="${status%$'\r'}"
case "$status" in
    "HTTP/1."?" 200"*) exit 0 ;;
    *)
        echo "unhealthy: $path answered '$status'" >&2
        exit 1
        ;;
esac
