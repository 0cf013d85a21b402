#!/bin/sh
# Chapter 06's registry benchmark: a pull from a registry on loopback, into an empty
# store each time (download, digest checks, unpack), next to podman's and skopeo's.
#
#   sudo bench/pull.sh        (needs hyperfine, docker-registry, skopeo, podman, openssl)
#
# Everything runs inside a network namespace made for the benchmark: the registry
# (Debian's docker-registry) listens on its 127.0.0.1:5000, nothing else is reached.
# The image is busybox (built from this host) plus a 6 MB layer of random bytes, two
# layers, pushed once by mini-docker. Compared, in one hyperfine run:
#   - mini-docker pull     download both layers (in parallel), check, unpack, store
#   - podman pull          the same into its own empty store (vfs driver, no overlay)
#   - skopeo copy          download and check only, into an OCI layout (no unpack)
set -eu
cd "$(dirname "$0")/.."
for tool in hyperfine docker-registry skopeo podman; do
  command -v $tool >/dev/null || { echo "bench/pull.sh needs $tool (apt-get install $tool)"; exit 1; }
done
cargo build -q --release -p mini-docker
BIN=$PWD/target/release/mini-docker
RUNS=${RUNS:-30}
WORK=$(mktemp -d /tmp/pull-bench.XXXXXX)

unshare --net sleep 3600 &
HOLDER=$!
trap 'kill $REGISTRY $HOLDER 2>/dev/null; rm -rf "$WORK"' EXIT
sleep 0.1
IN="nsenter --net=/proc/$HOLDER/ns/net"
$IN ip link set lo up
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:5000\n' "$WORK" > "$WORK/registry.yml"
$IN docker-registry serve "$WORK/registry.yml" 2>/dev/null &
REGISTRY=$!
until $IN bash -c 'exec 3<>/dev/tcp/127.0.0.1/5000' 2>/dev/null; do sleep 0.05; done

export MINI_DOCKER_ROOT="$WORK/store"
$IN "$BIN" run --name noise --network none busybox sh -c 'head -c 6000000 /dev/urandom > /noise' 
$IN "$BIN" commit noise 127.0.0.1:5000/bench/two:1 >/dev/null
$IN "$BIN" rm noise >/dev/null
$IN "$BIN" push 127.0.0.1:5000/bench/two:1 >/dev/null

$IN hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/pull.json" \
  -n "mini-docker pull" \
  --prepare "rm -rf $WORK/fresh" \
  "env MINI_DOCKER_ROOT=$WORK/fresh $BIN pull 127.0.0.1:5000/bench/two:1" \
  -n "podman pull" \
  --prepare "sh -c 'podman --root $WORK/p --runroot $WORK/pr --storage-driver vfs rmi -af >/dev/null 2>&1; true'" \
  "podman --root $WORK/p --runroot $WORK/pr --storage-driver vfs pull -q --tls-verify=false 127.0.0.1:5000/bench/two:1" \
  -n "skopeo copy (no unpack)" \
  --prepare "rm -rf $WORK/oci" \
  "skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5000/bench/two:1 oci:$WORK/oci:1"
python3 - "$WORK/pull.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f'{r["command"]:<26} median {r["median"] * 1000:8.1f} ms')
PY
podman --root "$WORK/p" --runroot "$WORK/pr" --storage-driver vfs rmi -af >/dev/null 2>&1 || true
