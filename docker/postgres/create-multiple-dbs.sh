#!/usr/bin/env bash
# Init script for the official postgres image: creates every database listed in
# POSTGRES_MULTIPLE_DATABASES (comma separated, e.g. "exchanger_identity,exchanger_web"),
# each owned by $POSTGRES_USER.
#
# The image runs /docker-entrypoint-initdb.d/* once, on an empty data directory, against a
# temporary server that listens on the Unix socket only. It *executes* a .sh file that is
# executable and *sources* one that is not (e.g. a checkout that lost the mode bit), so the
# work is done in a subshell function: no `exit`, and `set -euo pipefail` stays local.
#
# Idempotent: a database that exists already is left alone, so the script can also be run
# by hand to repair a volume whose first initialisation was interrupted:
#   docker compose exec postgres /docker-entrypoint-initdb.d/create-multiple-dbs.sh

create_multiple_dbs() (
    set -euo pipefail
    local owner="${POSTGRES_USER:-postgres}"
    local list="${POSTGRES_MULTIPLE_DATABASES:-}"
    if [[ -z "$list" ]]; then
        echo "create-multiple-dbs: POSTGRES_MULTIPLE_DATABASES is empty, nothing to do"
        return 0
    fi

    local -a databases
    local raw db
    IFS=',' read -r -a databases <<<"$list"
    for raw in "${databases[@]}"; do
        # Trim surrounding whitespace; skip empty entries (e.g. a trailing comma).
        db="${raw#"${raw%%[![:space:]]*}"}"
        db="${db%"${db##*[![:space:]]}"}"
        [[ -z "$db" ]] && continue

        echo "create-multiple-dbs: database '$db' owned by '$owner'"
        # psql quotes both names itself (%I / :'var'); \gexec runs the CREATE only when the
        # SELECT returns a row, i.e. when the database does not exist yet (CREATE DATABASE
        # cannot run inside a DO block or a transaction).
        psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$owner" --dbname postgres \
            --set db="$db" --set owner="$owner" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')
\gexec
SQL
    done
)

create_multiple_dbs
