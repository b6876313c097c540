#!/bin/sh
# A run interrupted after an epoch and resumed with --resume ends with the
# same numbers, bit for bit, as the same run made in one go: examples/copy
# three times on a small setting, comparing the metrics of the JSON lines
# they end with (all but the training time).
set -eu
copy=./examples/copy/copy
test -x "$copy" || { echo "resume.sh: $copy not built"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/cformer-resume.XXXXXX")
trap 'rm -rf "$dir"' EXIT
flags="--epochs 3 --steps 4 --test 20 --threads 1"

metrics() { # the metrics object of the last line of $1, without the time
    tail -n 1 "$1" | sed -e 's/.*"metrics": {\([^}]*\)}.*/\1/' -e 's/, "train_seconds": [^,]*//'
}

$copy $flags --out "$dir/straight" > "$dir/straight.log"
$copy $flags --out "$dir/resumed" --stop-after 1 > "$dir/first.log"
$copy $flags --out "$dir/resumed" --resume > "$dir/second.log"
grep -q "resumed from .* after epoch 1 " "$dir/second.log"
straight=$(metrics "$dir/straight.log")
resumed=$(metrics "$dir/second.log")
echo "straight: $straight"
echo "resumed:  $resumed"
case $straight in *'"final_loss": '[0-9]*) ;; *) echo "no final loss"; exit 1 ;; esac
test "$straight" = "$resumed"
