#!/usr/bin/env bash
# A normal (non-editable) install works (issue 18: a wheel once shipped without
# mixsurrogate.search, so `propose --explore` failed after `pip install .`). Builds the wheel from
# a clean copy of the checkout, installs it into a fresh virtualenv and, from outside the
# checkout (so the checkout's package cannot be imported), imports every module of the source
# tree and runs a few quick commands. Everything lives in one temporary folder, removed at exit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/mixsurrogate-wheel-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# a clean copy: no virtualenv, no earlier build/ folder whose stale files could hide a gap
mkdir "$work/source"
tar -C "$root" --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
    -cf - . | tar -C "$work/source" -xf -

python3 -m venv "$work/venv"
. "$work/venv/bin/activate"
pip install -q torch==2.13.0          # the CPU wheel; a plain `torch` would pull a CUDA build
pip wheel -q --no-deps -w "$work/dist" "$work/source"
pip install -q "$work"/dist/mixsurrogate-*.whl

cd "$work"
MIXSURROGATE_SOURCE="$root/mixsurrogate" python - <<'PY'
"""Every module of the source tree imports from the installed wheel (walk_packages alone would
skip a subpackage the wheel lacks), and the wheel's package is the one imported."""
import importlib
import os
import pkgutil
from pathlib import Path

import mixsurrogate

installed = Path(mixsurrogate.__file__).resolve().parent
source = Path(os.environ["MIXSURROGATE_SOURCE"]).resolve()
assert installed != source and "site-packages" in installed.parts, installed
names = {
    ".".join(("mixsurrogate", *p.relative_to(source).with_suffix("").parts)).removesuffix(
        ".__init__"
    )
    for p in source.rglob("*.py")
}


def fail(name: str) -> None:
    raise SystemExit(f"cannot import {name} from the installed wheel")


names |= {m.name for m in pkgutil.walk_packages(mixsurrogate.__path__, "mixsurrogate.", fail)}
for name in sorted(names):
    importlib.import_module(name)
from mixsurrogate.experts.presets import list_presets  # noqa: E402

assert list_presets(), "no model presets in the installed wheel"
print(f"imported {len(names)} modules from {installed}; presets: {', '.join(list_presets())}")
PY
mixsurrogate --help > /dev/null
mixsurrogate cv regmix:train-1m --test regmix:test-1m -p linear -t pile_cc > /dev/null
# --explore on a small log (the first 24 RegMix runs): the GP search path, in seconds
python -c "
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.runs import save_runs
save_runs(regmix_runs('train-1m').subset(list(range(24))), 'small.csv')"
mixsurrogate propose small.csv --explore -n 4 --objective pile_cc=1 --json > proposal.json
python -c "import json; assert len(json.load(open('proposal.json'))['proposals']) == 4"
echo "wheel smoke test: ok"
