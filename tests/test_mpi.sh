#!/usr/bin/env bash
# Two MPI ranks on this machine (mpirun -np 2, one PoCL device and kernel cache each) train to
# the same weights as two devices in one process (wrn train --devices); a rank killed mid-run
# ends the job within the timeout with the last checkpoint intact and loadable; a rank that
# stops answering makes the other give up after --mpi-timeout with a message.
# Skipped (77) without mpirun or when wrn was built without MPI.
set -uo pipefail
cli=${WRN_CLI:?WRN_CLI names the wrn binary}
src=${WRN_SOURCE_DIR:?}
if ! command -v mpirun >/dev/null; then
  echo "SKIP: no mpirun (install openmpi-bin)"
  exit 77
fi
if "$cli" train --help | grep -q "built without MPI"; then
  echo "SKIP: this wrn was built without MPI"
  exit 77
fi
tmp=$(mktemp -d /tmp/wrn-mpi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Open MPI on one machine, as root in a container, without ssh.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm=isolated \
  OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none \
  OMPI_MCA_mpi_yield_when_idle=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Caches: seeded from the caller's (so that kernels are not compiled again), then one copy
# per rank, since processes sharing PoCL's cache have crashed.
mkdir -p "$tmp/pocl" "$tmp/xdg"
[ -n "${POCL_CACHE_DIR:-}" ] && [ -d "$POCL_CACHE_DIR" ] && cp -r "$POCL_CACHE_DIR/." "$tmp/pocl/"
[ -n "${XDG_CACHE_HOME:-}" ] && [ -d "$XDG_CACHE_HOME/wrn" ] && cp -r "$XDG_CACHE_HOME/wrn" "$tmp/xdg/"
export XDG_CACHE_HOME=$tmp/xdg WRN_GEMM=clblast
common=(--data "$src/data/cifar10-sample" --model wrn-10-1 --train-limit 128 --test-limit 40
        --batch 32 --dropout 0.3 --epoch-step 2 --conv-algo im2col --split 16,16
        --progress off)

# Two devices in one process.
POCL_DEVICES="pthread pthread" POCL_CACHE_DIR=$tmp/pocl "$cli" train "${common[@]}" \
  --epochs 1 --devices 0:0,0:1 --out "$tmp/inproc" >"$tmp/inproc.txt" 2>&1 ||
  { cat "$tmp/inproc.txt"; fail "the in-process run failed"; }

echo "two devices in one process: done"
# Two ranks, one device each, each with its own copy of the caches.
for r in 0 1; do
  cp -r "$tmp/pocl" "$tmp/pocl$r"
  cp -r "$tmp/xdg" "$tmp/xdg$r"
done
rank_cmd='POCL_DEVICES=pthread POCL_CACHE_DIR='"$tmp"'/pocl$OMPI_COMM_WORLD_RANK XDG_CACHE_HOME='"$tmp"'/xdg$OMPI_COMM_WORLD_RANK exec "$0" "$@"'
t0=$(date +%s)
mpirun --oversubscribe --allow-run-as-root -np 2 bash -c "$rank_cmd" "$cli" train \
  "${common[@]}" --epochs 1 --out "$tmp/mpi" >"$tmp/mpi.txt" 2>&1 ||
  { cat "$tmp/mpi.txt"; fail "mpirun -np 2 wrn train failed"; }
echo "mpirun -np 2: $(( $(date +%s) - t0 )) s"
grep -q "x 2 rank(s)" "$tmp/mpi.txt" || { cat "$tmp/mpi.txt"; fail "the run did not see 2 ranks"; }
[ "$(wc -l <"$tmp/mpi/log.jsonl")" -eq 1 ] || fail "rank 0 should write one log line"

# The weights of two runs: every tensor equal to fp32 round-off (printed: the largest
# difference).
compare() {
python3 - "$1" "$2" "$3" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    d = b[8 + n:]
    return {k: struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4),
                             d[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()
            if v["dtype"] == "F32"}
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), "tensor names differ"
worst = max((abs(x - y), k) for k in a for x, y in zip(a[k], b[k]))
print("%s: %d tensors, max |diff| %.3g (%s)" % (sys.argv[3], len(a), worst[0], worst[1]))
sys.exit(0 if worst[0] <= 1e-5 else 1)
PY
}
compare "$tmp/inproc/last.safetensors" "$tmp/mpi/last.safetensors" \
  "2 ranks vs 2 in-process devices" || fail "weights differ"

# --resume under mpirun (the same N): one more epoch equals a 2-epoch in-process run.
POCL_DEVICES="pthread pthread" POCL_CACHE_DIR=$tmp/pocl "$cli" train "${common[@]}" \
  --epochs 2 --devices 0:0,0:1 --out "$tmp/inproc2" >"$tmp/inproc2.txt" 2>&1 ||
  { cat "$tmp/inproc2.txt"; fail "the 2-epoch in-process run failed"; }
mpirun --oversubscribe --allow-run-as-root -np 2 bash -c "$rank_cmd" "$cli" train \
  --resume "$tmp/mpi" --epochs 2 --progress off >"$tmp/resume.txt" 2>&1 ||
  { cat "$tmp/resume.txt"; fail "mpirun -np 2 wrn train --resume failed"; }
[ "$(wc -l <"$tmp/mpi/log.jsonl")" -eq 2 ] || fail "the resumed run should have 2 log lines"
compare "$tmp/inproc2/last.safetensors" "$tmp/mpi/last.safetensors" \
  "2 ranks resumed for epoch 2 vs 2 in-process devices for 2 epochs" || fail "weights differ"

# A rank killed mid-run: the job ends within the timeout, nonzero, and the last checkpoint
# of the finished epochs is intact.
mpirun --oversubscribe --allow-run-as-root -np 2 bash -c "$rank_cmd" "$cli" train \
  "${common[@]}" --epochs 50 --mpi-timeout 20 --out "$tmp/kill" >"$tmp/kill.txt" 2>&1 &
mp=$!
for _ in $(seq 1 600); do
  [ -s "$tmp/kill/log.jsonl" ] && break
  kill -0 $mp 2>/dev/null || break
  sleep 0.2
done
[ -s "$tmp/kill/log.jsonl" ] || { cat "$tmp/kill.txt"; fail "no epoch finished"; }
ranks=$(pgrep -f -- "--out $tmp/kill" | grep -vx "$mp" | tr '\n' ' ')
victim=$(echo "$ranks" | awk '{print $NF}')
[ -n "$victim" ] || fail "no rank process found"
t0=$(date +%s)
kill -9 "$victim"
for _ in $(seq 1 300); do kill -0 $mp 2>/dev/null || break; sleep 0.2; done
if kill -0 $mp 2>/dev/null; then
  kill -9 $mp
  fail "the job still ran 60 s after a rank was killed"
fi
wait $mp
rc=$?
echo "a killed rank: the job ended after $(( $(date +%s) - t0 )) s with status $rc"
[ $rc -ne 0 ] || fail "the job exited 0 after a rank was killed"
for r in $ranks; do
  for _ in $(seq 1 50); do kill -0 "$r" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$r" 2>/dev/null; then fail "rank process $r still runs 10 s after the job ended"; fi
done
# The run computed with im2col; the evaluation that checks its checkpoint loads computes with
# what the checkpoint records, so it times no algorithm on its cold cache.
POCL_DEVICES=pthread POCL_CACHE_DIR=$tmp/pocl "$cli" eval --checkpoint "$tmp/kill/last.safetensors" \
  --data "$src/data/cifar10-sample" --test-limit 40 >"$tmp/eval.txt" 2>&1 ||
  { cat "$tmp/eval.txt"; fail "the last checkpoint does not load"; }

# A rank that hangs (stopped, not dead, so mpirun does not notice): the other gives up after
# --mpi-timeout with a message naming what it waited for, and the command ends the job.
mpirun --oversubscribe --allow-run-as-root -np 2 bash -c "$rank_cmd" "$cli" train \
  "${common[@]}" --epochs 50 --mpi-timeout 8 --out "$tmp/hang" >"$tmp/hang.txt" 2>&1 &
mp=$!
for _ in $(seq 1 600); do
  [ -s "$tmp/hang/log.jsonl" ] && break
  kill -0 $mp 2>/dev/null || break
  sleep 0.2
done
[ -s "$tmp/hang/log.jsonl" ] || { cat "$tmp/hang.txt"; fail "no epoch finished"; }
ranks=$(pgrep -f -- "--out $tmp/hang" | grep -vx "$mp" | tr '\n' ' ')
victim=$(echo "$ranks" | awk '{print $NF}')
[ -n "$victim" ] || fail "no rank process found"
t0=$(date +%s)
kill -STOP "$victim"
for _ in $(seq 1 300); do kill -0 $mp 2>/dev/null || break; sleep 0.2; done
if kill -0 $mp 2>/dev/null; then
  kill -9 $mp $ranks 2>/dev/null
  fail "the job still ran 60 s after a rank stopped answering (timeout 8 s)"
fi
wait $mp
rc=$?
echo "a silent rank: the job ended after $(( $(date +%s) - t0 )) s with status $rc"
for r in $ranks; do kill -9 "$r" 2>/dev/null; done
[ $rc -ne 0 ] || fail "the job exited 0 after a rank stopped answering"
grep -q "heard nothing from the other ranks" "$tmp/hang.txt" ||
  { cat "$tmp/hang.txt"; fail "no message about the silent rank"; }
grep "heard nothing" "$tmp/hang.txt" | head -1
echo "ok"
