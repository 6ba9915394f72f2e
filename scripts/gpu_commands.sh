#!/usr/bin/env bash
# On the device machine: every `--device cuda` command the README and docs/ show (those naming
# a real model; placeholders such as MODEL are skipped), plus the timing options they do not
# show, each with a time limit, its exit code and the end of its output in one log.
#   bash scripts/gpu_commands.sh                     # $OUT/gpu_commands.log
#   DEVICE=cpu OUT=/tmp/x bash scripts/gpu_commands.sh   # dry run of the script itself
set -u
cd "$(dirname "$0")/.."
if [ -d .whl ]; then  # wheels carried to the device (click, rich ... when missing there)
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1
device=${DEVICE:-cuda}
out=${OUT:-/tmp}
log="$out/gpu_commands.log"
mkdir -p "$out"
: > "$log"
commands=$(grep -h -o "cnnprof [^#\`|]*--device cuda[^#\`|]*" README.md docs/*.md \
           | sed 's/ *$//' | grep -v -e " MODEL" -e "\./" | sort -u)
commands+=$'\n'"cnnprof resnet50 --device cuda --time --channels-last --dtype float16"
commands+=$'\n'"cnnprof resnet18 --device cuda --time --mode train --columns time"
commands+=$'\n'"cnnprof check --init resnet18 --device cuda"
fails=0
while IFS= read -r command; do
  [ -n "$command" ] || continue
  command=${command//--device cuda/--device $device}
  read -r -a argv <<< "${command#cnnprof }"
  start=$(date +%s%N)
  timeout "${LIMIT:-120}" python3 -m cnnprof "${argv[@]}" > /tmp/gpu_command.out 2>&1
  rc=$?
  [ "$rc" -eq 0 ] || fails=$((fails + 1))
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf '$ %s\nrc=%s  %d.%03d s\n' "$command" "$rc" $((ms / 1000)) $((ms % 1000)) >> "$log"
  tail -n "${TAIL:-12}" /tmp/gpu_command.out >> "$log"
  echo >> "$log"
done <<< "$commands"
echo "$fails command(s) failed" | tee -a "$log"
