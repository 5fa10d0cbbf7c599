#!/usr/bin/env bash
# The warehouse lives beside Airflow's metadata on the same server, in its own database and
# with its own role (run once by the postgres image on first start).
#
# random_page_cost: the server's default (4) prices a random read for a spinning disk. At 1.1,
# the setting for SSDs and for data the server's cache holds, PostgreSQL joins through the
# indexes instead of hashing whole tables: the KPI DAG's horizon at a million prospects took
# 701 s against 805 s, attribution 126 s against 190 s (docs/performance.md). On a server
# created earlier, run the `alter database` line once by hand.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
create user revops with password '${POSTGRES_PASSWORD}';
create database revops owner revops;
alter database revops set random_page_cost = 1.1;
SQL
