#!/usr/bin/env bash
# The local model beside llama.cpp, same file, prompt and thread count, in
# one run:  scripts/local_model_bench.sh MODEL.gguf [THREADS]
# llama.cpp comes from the PyPI source package llama-cpp-python (built with
# cmake); its virtualenv is kept in ~/.cache/roster/llama-venv. pip passes
# CMAKE_ARGS on to the build: where the native build crashes (it did on an
# AMX machine), docs/PERFORMANCE.md gives the flags used instead.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1"
threads="${2:-1}"
venv="${LLAMA_VENV:-$HOME/.cache/roster/llama-venv}"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q cmake llama-cpp-python; } >&2
cargo build --release -q -p roster-local --example speed >&2
prompt="$(mktemp)"
trap 'rm -f "$prompt"' EXIT
# An agent-sized prompt: about 1,000 tokens of instructions and context.
python3 - "$prompt" <<'PY'
import sys
rules = ["Answer the customer's question using only the policy excerpts below.",
         "Cite the section you used in brackets, for example [Leave 2.1].",
         "If the excerpts do not answer the question, say so and suggest whom to ask.",
         "Keep answers under one hundred words and never invent numbers."]
excerpt = ("Section {n}. Employees accrue {d} days of paid leave per year, pro rata for part-time work; "
           "requests go to the line manager at least {w} weeks ahead, and unused days carry over until March.")
text = "\n".join(rules) + "\n\n" + "\n".join(excerpt.format(n=n, d=20 + n % 7, w=1 + n % 3) for n in range(1, 24))
text += "\n\nQuestion: how many days of leave do I get in my first year, and when must I ask?"
open(sys.argv[1], "w").write(text)
PY
target="${CARGO_TARGET_DIR:-target}"
for round in 1 2 3; do
    "$target/release/examples/speed" "$model" "$prompt" "$threads" 128
    "$venv/bin/python" scripts/local_model_bench.py "$model" "$prompt" "$threads" 128
done
