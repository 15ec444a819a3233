#!/usr/bin/env bash
# A month of AAPL quotes (March 2024, 740,000) into a fresh PostgreSQL database, this build
# against an earlier one, alternating 3 rounds, from one replaying stand-in (each binary's
# pages filled by one untimed import first), so the client and the server are measured, not
# the stand-in's generation. Prints each timed round; compare medians.
#
#   benches/pg_month.sh target/release/data ../base/target/release/data [postgres://root@127.0.0.1:5432]
#   START=2024-01-01 END=2024-12-31 benches/pg_month.sh ...   # the full year instead
set -euo pipefail
start=${START:-2024-03-01}; end=${END:-2024-03-31}
ours=$(realpath "$1"); base=$(realpath "$2"); server=${3:-postgres://root@127.0.0.1:5432}
standin=$(dirname "$ours")/alpaca-standin
work=$(mktemp -d); cd "$work"
"$standin" --listen 127.0.0.1:0 --replay > standin.out 2>&1 &
standin_pid=$!; trap 'kill $standin_pid; rm -rf "$work"' EXIT
url=""
for _ in $(seq 50); do
  url=$(sed -n 's/^alpaca-standin listening on //p' standin.out); [ -n "$url" ] && break; sleep 0.1
done
export APCA_API_KEY_ID=bench APCA_API_SECRET_KEY=bench BULK_IMPORT_RATE_LIMIT=0
run() { # BINARY LABEL
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS pg_month" -qc "CREATE DATABASE pg_month" >/dev/null 2>&1
  local t0 t1; t0=$(date +%s.%N)
  "$1" import-api quotes AAPL "$start" "$end" --api-url "$url" --database-url "$server/pg_month" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$2 $(echo "$t1 - $t0" | bc) s"
}
run "$ours" fill >/dev/null; run "$base" fill >/dev/null
for r in 1 2 3; do
  if [ $((r % 2)) -eq 1 ]; then run "$ours" "this build"; run "$base" baseline
  else run "$base" baseline; run "$ours" "this build"; fi
done
echo "rows: $(psql "$server/pg_month" -Atc 'select count(*) from quotes')"
psql "$server/postgres" -qc "DROP DATABASE IF EXISTS pg_month" >/dev/null 2>&1
