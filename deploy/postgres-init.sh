#!/usr/bin/env bash
# The warehouse lives beside Airflow's metadata on the same server, in its own database and
# with its own role (run once by the postgres image on first start).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
create user revops with password '${POSTGRES_PASSWORD}';
create database revops owner revops;
SQL
