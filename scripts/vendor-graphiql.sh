#!/usr/bin/env bash
# Vendors GraphiQL and React into assets/graphiql/vendor/ so the server can embed and serve
# them itself (no CDN at run time). Downloads pinned releases from the npm registry with
# `npm pack`, checks each tarball against its pinned integrity, copies only the browser
# builds and their LICENSE files, writes deterministic gzip copies (gzip -9n) next to each
# served file, and lists everything in assets/graphiql/VERSIONS.
#
# GraphiQL 4.1.2 is the last release that ships a UMD build (graphiql.min.js, a global
# `GraphiQL`); 5.x ships ES modules only. React 18.3.1 is the last React with UMD builds.
#
# Usage: scripts/vendor-graphiql.sh   (needs npm, node, gzip, sha256sum)
set -euo pipefail
cd "$(dirname "$0")/.."

# name version integrity (the registry's dist.integrity)
packages=(
    "graphiql 4.1.2 sha512-rNlzQIAzm6i2KBXmVQWBgLvt0TloxFVB2d18bukvdsvjEuFDHsKx5IVOomL1W1o5WW+tE54+ioHb2AEKzO2cUg=="
    "react 18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
    "react-dom 18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
)
# package  path in its tarball  name in vendor/ (served files; LICENSE files are added below)
files=(
    "graphiql package/graphiql.min.js graphiql.min.js"
    "graphiql package/graphiql.min.css graphiql.min.css"
    "react package/umd/react.production.min.js react.production.min.js"
    "react-dom package/umd/react-dom.production.min.js react-dom.production.min.js"
)

dest=assets/graphiql
vendor=$dest/vendor
work=$(mktemp -d /tmp/vendor-graphiql.XXXXXX)
trap 'rm -rf "$work"' EXIT

declare -A version
for entry in "${packages[@]}"; do
    read -r name ver integrity <<<"$entry"
    version[$name]=$ver
    echo "== $name@$ver"
    tarball=$(cd "$work" && npm pack --silent "$name@$ver")
    actual="sha512-$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$work/$tarball")"
    if [ "$actual" != "$integrity" ]; then
        echo "integrity mismatch for $name@$ver: got $actual, pinned $integrity" >&2
        exit 1
    fi
    mkdir -p "$work/$name"
    tar -xzf "$work/$tarball" -C "$work/$name"
done

rm -rf "$vendor"
mkdir -p "$vendor"
for entry in "${files[@]}"; do
    read -r name src out <<<"$entry"
    install -m 644 "$work/$name/$src" "$vendor/$out"
    gzip -9 -n -c "$vendor/$out" >"$vendor/$out.gz"
    chmod 644 "$vendor/$out.gz"
done
for entry in "${packages[@]}"; do
    read -r name _ <<<"$entry"
    install -m 644 "$work/$name/package/LICENSE" "$vendor/$name.LICENSE"
done

# VERSIONS: one line per file, `package@version  path (relative to assets/graphiql)  sha256`.
{
    echo "# Written by scripts/vendor-graphiql.sh; do not edit by hand."
    echo "# package@version path sha256"
    for entry in "${files[@]}"; do
        read -r name _ out <<<"$entry"
        for f in "$out" "$out.gz"; do
            echo "$name@${version[$name]} vendor/$f $(sha256sum "$vendor/$f" | cut -d' ' -f1)"
        done
    done
    for entry in "${packages[@]}"; do
        read -r name ver _ <<<"$entry"
        echo "$name@$ver vendor/$name.LICENSE $(sha256sum "$vendor/$name.LICENSE" | cut -d' ' -f1)"
    done
} >"$dest/VERSIONS"

echo "== wrote $vendor and $dest/VERSIONS"
du -sh "$vendor"
