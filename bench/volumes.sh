#!/bin/sh
# Chapter 06's volume and compose benchmark, in one network namespace made for it.
#
#   sudo bench/volumes.sh        (needs hyperfine and podman)
#
# `run --rm --network none IMAGE true`, each with the same busybox, by mini-docker
# and by podman (vfs, runc), in one hyperfine run:
#   - no volume              the baseline
#   - a named volume         -v data:/data, the volume made before
#   - copy-up                the book's db image: its VOLUME is a new anonymous
#                            volume at each run, filled from the image, removed by --rm
# Then the book's compose project: `compose up -d` and `compose down -t 0` as one
# step (a shell runs both; mini-docker only: podman-compose is not on Debian's list).
set -eu
cd "$(dirname "$0")/.."
for tool in hyperfine podman; do
  command -v $tool >/dev/null || { echo "bench/volumes.sh needs $tool (apt-get install $tool)"; exit 1; }
done
cargo build -q --release -p mini-docker
BIN=$PWD/target/release/mini-docker
RUNS=${RUNS:-30}
WORK=$(mktemp -d /tmp/volume-bench.XXXXXX)
PODMAN="podman --root $WORK/p --runroot $WORK/pr --storage-driver vfs"
# The sandbox's hard limits are below podman's default ulimits: give it these.
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s/events.log"\nruntime = "runc"\n' "$WORK" > "$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"

unshare --net sleep 3600 &
HOLDER=$!
trap 'kill $HOLDER 2>/dev/null; $PODMAN rm -af >/dev/null 2>&1; $PODMAN volume prune -f >/dev/null 2>&1; $PODMAN rmi -af >/dev/null 2>&1; rm -rf "$WORK"' EXIT
sleep 0.1
IN="nsenter --net=/proc/$HOLDER/ns/net"
$IN ip link set lo up

export MINI_DOCKER_ROOT="$WORK/store"
$IN "$BIN" build -q --network none -t db 06-mini-docker/dockerfiles/db >/dev/null
"$BIN" volume create data >/dev/null
"$BIN" save -o "$WORK/images.tar" busybox db
$PODMAN load -q -i "$WORK/images.tar" >/dev/null
$PODMAN volume create data >/dev/null

RUN="run --rm --network none"
# --pull=never: podman must never look for an image beyond this machine.
PRUN="$RUN --pull=never"
$IN hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/volumes.json" \
  -n "mini-docker, no volume" "$BIN $RUN busybox true" \
  -n "mini-docker, a named volume" "$BIN $RUN -v data:/data busybox true" \
  -n "mini-docker, copy-up" "$BIN $RUN db true" \
  -n "podman, no volume" "$PODMAN $PRUN busybox true" \
  -n "podman, a named volume" "$PODMAN $PRUN -v data:/data busybox true" \
  -n "podman, copy-up" "$PODMAN $PRUN localhost/db true"

cp -r 06-mini-docker/compose/notes "$WORK/notes"
cd "$WORK/notes"
$IN hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/compose.json" \
  -n "mini-docker compose up -d, down" "$BIN compose up -d 2>/dev/null && $BIN compose down -t 0 2>/dev/null"
cd - >/dev/null
python3 - "$WORK/volumes.json" "$WORK/compose.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        print(f'{r["command"]:<34} median {r["median"] * 1000:8.1f} ms')
PY
