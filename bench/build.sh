#!/bin/sh
# Chapter 06's build benchmark: the book's two-stage Dockerfile (06-mini-docker/
# dockerfiles/greeter), built with no cache and built again from the cache, by
# mini-docker and by podman (buildah), in one hyperfine run.
#
#   sudo bench/build.sh        (needs hyperfine and podman)
#
# Both start from the same busybox: mini-docker's, built from this host, given to
# podman with `save | podman load`. RUN has no network (--network none), and
# everything runs in a network namespace made for the benchmark. Compared:
#   - no cache     every step runs: 2 RUN containers, COPYs packed into layers
#   - cached       the same context again: every step found in the cache
set -eu
cd "$(dirname "$0")/.."
for tool in hyperfine podman; do
  command -v $tool >/dev/null || { echo "bench/build.sh needs $tool (apt-get install $tool)"; exit 1; }
done
cargo build -q --release -p mini-docker
BIN=$PWD/target/release/mini-docker
RUNS=${RUNS:-20}
WORK=$(mktemp -d /tmp/build-bench.XXXXXX)
CTX=$PWD/06-mini-docker/dockerfiles/greeter
PODMAN="podman --root $WORK/p --runroot $WORK/pr --storage-driver vfs"
# podman's own cgroups (not systemd's), events to a file, and runc: crun refuses a
# hybrid cgroup host.
printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "%s/events.log"\nruntime = "runc"\n' "$WORK" > "$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"

unshare --net sleep 3600 &
HOLDER=$!
trap 'kill $HOLDER 2>/dev/null; $PODMAN rmi -af >/dev/null 2>&1; rm -rf "$WORK"' EXIT
sleep 0.1
IN="nsenter --net=/proc/$HOLDER/ns/net"

export MINI_DOCKER_ROOT="$WORK/store"
$IN "$BIN" build -q --network none -t greeter "$CTX" >/dev/null
"$BIN" save -o "$WORK/busybox.tar" busybox
$PODMAN load -q -i "$WORK/busybox.tar" >/dev/null
$IN $PODMAN build -q --pull=never --network none -t greeter "$CTX" >/dev/null

# Before each build with no cache, the images of the one before are pruned: the
# store stays as it was, and so does the time it takes to read it.
$IN hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$WORK/build.json" \
  --prepare "$BIN image prune" --prepare true \
  --prepare "$PODMAN image prune -f" --prepare true \
  -n "mini-docker build, no cache" "$BIN build -q --no-cache --network none $CTX" \
  -n "mini-docker build, cached" "$BIN build -q --network none $CTX" \
  -n "podman build, no cache" "$PODMAN build -q --no-cache --pull=never --network none $CTX" \
  -n "podman build, cached" "$PODMAN build -q --pull=never --network none $CTX"
python3 - "$WORK/build.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for r in results:
    print(f'{r["command"]:<30} median {r["median"] * 1000:8.1f} ms')
m = {r["command"]: r["median"] for r in results}
for tool in ("mini-docker", "podman"):
    print(f'{tool}: cached is {m[tool + " build, no cache"] / m[tool + " build, cached"]:.0f}x faster')
PY
