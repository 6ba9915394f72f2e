# On the device machine: the cuda-marked tests, then the full calibration; everything under
# $OUT is packed into one archive (the device returns a limited number of files).
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
export PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1
mkdir -p "$OUT/gpu"
nvidia-smi --query-gpu=name,driver_version --format=csv > "$OUT/gpu/nvidia-smi.txt"
timeout "${TESTS_TIMEOUT:-150}" python3 -m pytest -m cuda -q -p no:cacheprovider tests/test_timing_cuda.py > "$OUT/gpu/cuda_tests.log" 2>&1
tail -3 "$OUT/gpu/cuda_tests.log"
timeout "${CAL_TIMEOUT:-400}" python3 benchmarks/gpu_calibrate.py --out "$OUT/gpu" > /dev/null 2>&1
tail -2 "$OUT/gpu/calibrate.log"
tar -C "$OUT" -czf "$OUT/gpu.tgz" gpu && rm -rf "$OUT/gpu"
