#!/usr/bin/env bash
# Every GPU check and measurement the issues ask for, in one run (about 4 minutes on one H100):
# the network's CUDA conformance tests, the model speed/memory grid, RAFT, the official segment
# pipeline and its SAM2 refinement (random weights: timing does not depend on them), the streaming
# engine as the node runs it (official model, window 8 / stride 4, bf16) and an official training step.
#
#   GEOMOTION_SHARED=/path/to/shared benchmarks/gpu_suite.sh OUTDIR
#
# OUTDIR receives suite.log (everything printed) and model.json, segment.json, train.json.
set -u
out=${1:?usage: gpu_suite.sh OUTDIR}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
log="$out/suite.log"

step() {
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    echo "=== $name: exit $?" | tee -a "$log"
}

step device 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step versions 40 "$python" -c "import torch, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'opencv', cv2.__version__)"
step conformance 120 "$python" -m pytest -q -p no:cacheprovider tests/test_model_cuda.py
step streaming 120 "$python" benchmarks/bench_streaming.py --backend geomotion --random-weights --flow raft \
    --precision bf16 --device cuda --window 8 --stride 4 --frames 96
step segment 200 "$python" benchmarks/bench_segment.py --preset official --random-weights --device cuda --json "$out/segment.json"
step refine 150 "$python" benchmarks/bench_refine.py --device cuda --random-weights --frames 32
step model 200 "$python" benchmarks/bench_model.py --device cuda --json "$out/model.json"
step train 180 "$python" benchmarks/bench_train.py --preset official --flow raft --random-weights --steps 5 \
    --warmup 2 --device cuda --json "$out/train.json"
step raft 60 "$python" benchmarks/bench_flow.py --device cuda --methods raft --pairs 8 --batch-size 8
step attention 90 "$python" benchmarks/bench_model.py --device cuda --frames 8 --sizes 518x518 --precision fp32 \
    --sdpa default,math
