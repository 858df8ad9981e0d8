#!/usr/bin/env bash
# Algorithm 2 family of HRN-2x5x3x (m=8) on MNIST-5k: build each network, train 3 epochs with Hinton KD from
# the trained unreduced network (built and trained first, 5 epochs), then plot accuracy against ReLUs and
# estimated PI latency (docs/figures/hrn-2x5x3x-family-mnist.svg was made this way). Takes ~1 h on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-data.sh
cargo build --release --locked -p optimizer
P=target/release/pi-opt
C="--family hrn --alpha 2 --beta 5 --gamma 3 --blocks 2,2,2,2 --classes 10 --input 32"
D=data/mnist_5k.csv.gz
mkdir -p out/family
$P build $C --base-channels 8 -o out/family/base-init.onnx >/dev/null
$P train --model out/family/base-init.onnx --data $D --epochs 5 -o out/family/base.onnx
declare -A STEPS=(
  [Net]="--base-channels 8 --cull S1"
  [Net_T]="--base-channels 8 --cull S1 --thin S2,S3,S4"
  [Net_C]="--base-channels 4 --cull S1 --thin S2,S3,S4"
  [Net_R4]="--base-channels 8 --cull S1 --thin S2,S3,S4 --reuse 4"
  [Net_R8]="--base-channels 8 --cull S1 --thin S2,S3,S4 --reuse 8"
  [Net_R16]="--base-channels 8 --cull S1 --thin S2,S3,S4 --reuse 16"
)
for n in Net Net_T Net_C Net_R4 Net_R8 Net_R16; do
  $P build $C ${STEPS[$n]} -o out/family/$n-init.onnx >/dev/null
  $P train --model out/family/$n-init.onnx --data $D --epochs 3 --kd hinton \
     --teacher out/family/base.onnx -o out/family/$n.onnx
done
$P plot --models out/family/base.onnx out/family/{Net,Net_T,Net_C,Net_R4,Net_R8,Net_R16}.onnx \
  --labels HRN-2x5x3x Net Net_T Net_C Net_R4 Net_R8 Net_R16 --data $D \
  --title "HRN-2x5x3x (m=8), Algorithm 2 family, MNIST-5k, 3 epochs + KD" -o out/family/accuracy.svg
echo "plot: out/family/accuracy.svg"
