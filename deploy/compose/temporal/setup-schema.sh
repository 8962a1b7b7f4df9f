#!/bin/sh
# Temporal's schema in its two PostgreSQL databases (made by postgres/init-databases.sh), with
# temporal-sql-tool from the official temporalio/admin-tools image, as in Temporal's own
# compose samples (temporalio/samples-server, compose/scripts/setup-postgres.sh) but safe to
# run on every `docker compose up`: the base schema once, then the versioned updates, which
# apply only what the database does not have yet (also after a Temporal upgrade).
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
export SQL_PASSWORD="$POSTGRES_PWD"
SCHEMA=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
    -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
  database=${pair%%:*}
  schema=${pair#*:}
  if ! out=$(sql_tool --db "$database" setup-schema -v 0.0 2>&1); then
    case "$out" in
      *"already exists"*) echo "$database: base schema already there" ;;
      *) echo "$out" >&2; exit 1 ;;
    esac
  fi
  sql_tool --db "$database" update-schema -d "$SCHEMA/$schema/versioned"
done
echo "temporal schema is current"
