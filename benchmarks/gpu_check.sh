#!/usr/bin/env bash
# The CUDA paths the CPU test suite cannot reach, in one short run (≤ 8 minutes on one GPU):
#   1. training throughput: the engine (Trainer, bf16 + channels_last + fused Adam) vs the plain seed loop;
#   2. the same seed gives the same faces on the CPU and the GPU (latents come from a CPU generator);
#   3. a short DDP run with NCCL through torchrun (needs 2 GPUs; reported as skipped with one);
#   4. the demo on CUDA: it starts, says it runs on cuda, and answers the faces endpoint.
# Usage, from the repository root with the project installed (`make setup`):
#   bash benchmarks/gpu_check.sh            # writes benchmarks/results/gpu_check.json (+ dcgan_train_cuda.json)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')"

echo "== 1. engine vs plain loop on CUDA"
timeout 240 "$PY" benchmarks/bench_dcgan_train.py --device cuda --steps 30 --out "$OUT/dcgan_train_cuda.json"

echo "== 2. same seed, same faces on CPU and GPU"
timeout 120 "$PY" - <<'EOF' > "$OUT/gpu_same_faces.json"
import json, torch, hub_models
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # compare float32 with float32
result = {}
for model_id in ("dcgan-faces", "convgan-faces128", "cgan-digits"):
    cpu = hub_models.load(model_id, device="cpu").generate(16, seed=0)
    gpu = hub_models.load(model_id, device="cuda").generate(16, seed=0)
    result[model_id] = {"max_abs_diff": float((cpu - gpu).abs().max()), "ok": bool(torch.allclose(cpu, gpu, atol=2e-3))}
print(json.dumps(result))
assert all(r["ok"] for r in result.values()), result
EOF
cat "$OUT/gpu_same_faces.json"

echo "== 3. DDP with NCCL (torchrun)"
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
RUN=$(mktemp -d)
if [ "$GPUS" -ge 2 ]; then
  timeout 180 "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 -m hub_models.cli train gan-ring8 \
    --steps 200 --batch-size 256 --device cuda --out "$RUN/ddp" --no-progress
  "$PY" -c "import json,sys; p=json.load(open('$RUN/ddp/model/config.json'))['provenance']; assert p['world_size']==2, p; print('nccl ok', p['replica_digest'][:12])"
  DDP='"ok"'
else
  echo "only $GPUS GPU: NCCL needs two ranks on two devices, skipped"
  DDP='"skipped: one GPU"'
fi

echo "== 4. the demo on CUDA"
PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$PY" demo/app.py --port "$PORT" > "$RUN/demo.log" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null || true; rm -rf "$RUN"' EXIT
timeout 120 "$PY" - "$PORT" <<'EOF'
import sys, time, urllib.request
from gradio_client import Client
url = f"http://127.0.0.1:{sys.argv[1]}/"
for _ in range(240):
    try:
        page = urllib.request.urlopen(url + "config", timeout=2).read().decode()
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the demo did not start: see its log")
assert "cuda" in page, "the demo does not say it runs on cuda"
start = time.perf_counter()
Client(url, verbose=False).predict("dcgan-faces", 0, 16, 1.0, api_name="/faces")
print(f"demo on cuda: 16 faces answered in {time.perf_counter() - start:.2f} s")
EOF

"$PY" - "$OUT" "$DDP" <<'EOF'
import json, sys
out, ddp = sys.argv[1], json.loads(sys.argv[2])
train = json.load(open(f"{out}/dcgan_train_cuda.json"))
faces = json.load(open(f"{out}/gpu_same_faces.json"))
result = {"engine_vs_plain_speedup": train["speedup"], "goal_speedup": train["goal_speedup"],
          "same_faces_cpu_gpu": faces, "ddp_nccl": ddp, "demo_on_cuda": "ok"}
json.dump(result, open(f"{out}/gpu_check.json", "w"), indent=2)
print(json.dumps(result, indent=2))
EOF
