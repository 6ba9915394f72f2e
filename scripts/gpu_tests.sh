# Run the cuda-marked tests and the README's GPU commands on the device machine.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/gpu.txt"
timeout 300 python3 -m pytest -m cuda -q -p no:cacheprovider tests/ 2>&1 | tee "$OUT/cuda_tests.log" | tail -40
python3 -m cnnprof resnet50 --device cuda --time --batch 32 --depth 1 2>&1 | tail -25
