set -x
nvidia-smi --query-gpu=name,driver_version --format=csv
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"
export PYTHONPATH=src
python3 - <<'PY'
import json, time, cnnprof
for name in ["resnet50", "vit_b_16", "mobilenet_v3_large", "swin_t"]:
    r = {}
    for dev in ["meta", "cpu", "cuda"]:
        t = time.time()
        rep = cnnprof.profile(name, device=dev)
        r[dev] = (rep.totals.macs, rep.totals.flops, rep.totals.params, rep.unsupported_ops, round(time.time()-t, 2))
    print(name, r, flush=True)
PY
python3 -m cnnprof alexnet --input 3x224x224 --device cuda | tail -5
