#!/usr/bin/env bash
# Every GPU check and measurement the issues ask for, in one run (about 4 minutes on one H100):
# the network's CUDA conformance tests, the model speed/memory grid, RAFT, the official segment
# pipeline and its SAM2 refinement (random weights: timing does not depend on them), the streaming
# engine as the node runs it (official model, window 8 / stride 4, bf16) and an official training step.
# Deployment (issue 16, docs/export.md): the export/engine CUDA tests (TensorRT ones need the
# `tensorrt` package on the machine), the network with CUDA graphs (torch.compile reduce-overhead) and
# as TensorRT engines at N=1 and 8, the official network exported to ONNX, and the fast official
# protocol (bf16) against the exact one.
#
#   GEOMOTION_TEST_DATA=/path/to/data benchmarks/gpu_suite.sh OUTDIR
#
# from the repository root (the benchmarks run as modules, `python -m benchmarks.bench_x`), with
# GEOMOTION_TEST_DATA the folder holding DAVIS2016/ (docs/testing.md).
#
# The GPU machine has no network: carry the export extra as wheels (about 40 MB) and set WHEELS, e.g.
#   pip download --only-binary=:all: -d wheels onnx onnxscript onnx-ir ml-dtypes onnxruntime
#   WHEELS=wheels GEOMOTION_TEST_DATA=... benchmarks/gpu_suite.sh OUTDIR
# TensorRT (over 1 GB of wheels) only runs where the machine's image has the `tensorrt` package;
# otherwise its tests are skipped and its step fails with a one-line message.
#
# OUTDIR receives suite.log (everything printed) and model.json, segment.json, train.json,
# model_graphs.json, model_tensorrt.json, fast_protocol.json and export/ (report.json; the ONNX
# files are deleted at the end: 3.9 GB).
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

if [ -n "${WHEELS:-}" ]; then
    step wheels 120 "$python" -m pip install --no-index --find-links "$WHEELS" onnx onnxscript onnxruntime
fi
step device 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step versions 40 "$python" -c "import torch, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'opencv', cv2.__version__)"
step trt-version 40 "$python" -c "import tensorrt, onnxruntime; print('tensorrt', tensorrt.__version__, 'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())"
step conformance 120 "$python" -m pytest -q -p no:cacheprovider tests/test_model_cuda.py
step engines 420 "$python" -m pytest -q -p no:cacheprovider -rs tests/test_export_cuda.py
step cuda-graphs 240 "$python" -m benchmarks.bench_model --device cuda --frames 1,8 --sizes 518x518 --precision fp32,bf16 \
    --compile --compile-mode reduce-overhead --warmup 3 --json "$out/model_graphs.json"
step tensorrt 600 "$python" -m benchmarks.bench_model --device cuda --frames 1,8 --sizes 518x518 --precision fp16,bf16 \
    --engine tensorrt --json "$out/model_tensorrt.json"
step fast-protocol 400 "$python" -m benchmarks.bench_fast_protocol --preset official --random-weights --device cuda \
    --frames 32 --json "$out/fast_protocol.json"
step export 500 "$python" -m geomotion_core.cli export --random-weights -o "$out/export" --size 518 --max-frames 32
rm -f "$out"/export/*.onnx "$out"/export/*.onnx.data
step streaming 120 "$python" -m benchmarks.bench_streaming --backend geomotion --random-weights --flow raft \
    --precision bf16 --device cuda --window 8 --stride 4 --frames 96
step segment 200 "$python" -m benchmarks.bench_segment --preset official --random-weights --device cuda --json "$out/segment.json"
step refine 150 "$python" -m benchmarks.bench_refine --device cuda --random-weights --frames 32
step model 200 "$python" -m benchmarks.bench_model --device cuda --json "$out/model.json"
step train 180 "$python" -m benchmarks.bench_train --preset official --flow raft --random-weights --steps 5 \
    --warmup 2 --device cuda --json "$out/train.json"
step raft 60 "$python" -m benchmarks.bench_flow --device cuda --methods raft --pairs 8 --batch-size 8
step attention 90 "$python" -m benchmarks.bench_model --device cuda --frames 8 --sizes 518x518 --precision fp32 \
    --sdpa default,math
