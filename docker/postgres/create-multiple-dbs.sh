#!/usr/bin/env bash
# Init script for the official postgres image (run once, from
# /docker-entrypoint-initdb.d/, when the data directory is empty).
#
# Creates every database listed in POSTGRES_MULTIPLE_DATABASES
# (comma separated, e.g. "exchanger_identity,exchanger_web"),
# each owned by $POSTGRES_USER.
set -euo pipefail

if [[ -z "${POSTGRES_MULTIPLE_DATABASES:-}" ]]; then
    echo "create-multiple-dbs: POSTGRES_MULTIPLE_DATABASES is empty, nothing to do"
    exit 0
fi

IFS=',' read -r -a databases <<< "$POSTGRES_MULTIPLE_DATABASES"
for raw in "${databases[@]}"; do
    # Trim surrounding whitespace; skip empty entries (e.g. a trailing comma).
    db="${raw#"${raw%%[![:space:]]*}"}"
    db="${db%"${db##*[![:space:]]}"}"
    [[ -z "$db" ]] && continue

    echo "create-multiple-dbs: creating database '$db' owned by '$POSTGRES_USER'"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v db="$db" -v owner="$POSTGRES_USER" <<-'SQL'
		CREATE DATABASE :"db" OWNER :"owner";
	SQL
done
