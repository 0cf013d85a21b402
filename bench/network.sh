#!/bin/sh
# Chapter 05's benchmark: what the network costs one container, bridge present.
#
#   sudo bench/network.sh        (needs hyperfine; builds the release binaries)
#
# Everything runs inside a network namespace made for the benchmark, never on the
# host's own network. Compared, in one hyperfine run:
#   - run --network none   the container with its own, empty network namespace
#   - run (bridge)         the same, plugged into the bridge: the difference is the
#                          network setup (veth, address, routes, lease, /etc files)
#   - run -p 8080:80       plus one published port (DNAT and FORWARD rules, added
#                          and removed with iptables)
#   - ip commands          the same veth/address/route steps done by iproute2, one
#                          process per step, as a shell script would
set -eu
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "bench/network.sh needs hyperfine (apt-get install hyperfine)"; exit 1; }
cargo build -q --release -p ch05-network
BIN=$PWD/target/release/ch05-network
RUNS=${RUNS:-200}

unshare --net sleep 3600 &
HOLDER=$!
trap 'nsenter --net=/proc/$HOLDER/ns/net "$BIN" -q down >/dev/null 2>&1 || true; kill $HOLDER' EXIT
sleep 0.1
IN="nsenter --net=/proc/$HOLDER/ns/net"
$IN ip link set lo up
$IN "$BIN" -q run -- true    # the bridge, its rules and forwarding: made once, here

cat > /tmp/ch05-bench-ip.sh <<'SCRIPT'
unshare --net --mount --uts sleep 10 & P=$!
ip link add vethbench master lab0 up type veth peer name eth0 netns $P
nsenter -t $P -n ip addr add 10.77.0.250/24 dev eth0
nsenter -t $P -n ip link set lo up
nsenter -t $P -n ip link set eth0 up
nsenter -t $P -n ip route add default via 10.77.0.1
kill $P; wait $P 2>/dev/null
ip link del vethbench 2>/dev/null || true
SCRIPT

$IN hyperfine -N --warmup 20 --runs "$RUNS" --export-json /tmp/ch05-bench.json \
  -n "run --network none" "$BIN -q run --network none -- true" \
  -n "run (bridge)" "$BIN -q run -- true" \
  -n "run -p 8080:80" "$BIN -q run -p 8080:80 -- true" \
  -n "ip commands (same steps)" "sh /tmp/ch05-bench-ip.sh"
rm -f /tmp/ch05-bench-ip.sh
python3 - <<'PY'
import json
r = json.load(open("/tmp/ch05-bench.json"))["results"]
none = r[0]["median"]
print("\n| command | median | min | max | network cost (median - none) |")
print("|---|---|---|---|---|")
for x in r:
    print(f"| {x['command']} | {x['median']*1e3:.2f} ms | {x['min']*1e3:.2f} ms | {x['max']*1e3:.2f} ms | {(x['median']-none)*1e3:+.2f} ms |")
PY
rm -f /tmp/ch05-bench.json
