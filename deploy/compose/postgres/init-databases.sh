#!/bin/bash
# One role and one database per service, made by the official postgres image on the first start
# of an empty data volume (/docker-entrypoint-initdb.d). Passwords come from the environment
# (compose.yaml); URLs in the services carry no password: libpq reads PGPASSWORD.
set -euo pipefail

role_and_database() {  # role password database...
  local role=$1 password=$2
  shift 2
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$role" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
SQL
  for database in "$@"; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
      -v role="$role" -v database="$database" <<'SQL'
CREATE DATABASE :"database" OWNER :"role";
SQL
  done
}

role_and_database exchange "$EXCHANGE_DB_PASSWORD" exchange
# Temporal's persistence and visibility stores; temporal-sql-tool (admin-tools) makes the schema.
role_and_database temporal "$TEMPORAL_DB_PASSWORD" temporal temporal_visibility
# Each merchant's node has a ledger of its own.
role_and_database tea_house "$TEA_HOUSE_DB_PASSWORD" tea_house
role_and_database noodle_bar "$NOODLE_BAR_DB_PASSWORD" noodle_bar
role_and_database hair_salon "$HAIR_SALON_DB_PASSWORD" hair_salon
