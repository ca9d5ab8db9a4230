#!/usr/bin/env bash
# Roster's per-turn benchmark beside the LangGraph peer, in one run, so the
# ratios in docs/PERFORMANCE.md come from one machine state.
#   scripts/bench.sh            SQLite only
#   ROSTER_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test scripts/bench.sh
#                               SQLite and PostgreSQL
# Writes one JSON line per measurement to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -p roster >&2
roster="$CARGO_TARGET_DIR/release/roster"
python3 scripts/fsync_probe.py 1000

backends=("")
[ -n "${ROSTER_BENCH_DATABASE_URL:-}" ] && backends+=("$ROSTER_BENCH_DATABASE_URL")
for url in "${backends[@]}"; do
    db=()
    [ -n "$url" ] && db=(--database-url "$url")
    for history in 10 1000 10000; do
        env -u ROSTER_BENCH_DATABASE_URL "$roster" bench "${db[@]}" --sessions 1 --turns "${TURNS_ONE:-300}" --history "$history"
        env -u ROSTER_BENCH_DATABASE_URL "$roster" bench "${db[@]}" --sessions 100 --turns "${TURNS_MANY:-20}" --history "$history"
    done
done

peer="${PEER_DIR:-../shared/peers/langgraph}"
if [ -f "$peer/bench_langgraph.py" ] && [ -z "${SKIP_PEER:-}" ]; then
    venv="${PEER_VENV:-$HOME/.cache/roster/langgraph-venv}"
    [ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$peer/requirements.txt"; } >&2
    tmp=$(mktemp -d)
    "$venv/bin/python" "$peer/bench_langgraph.py" multi --threads 100 --turns-per-thread 10 --durability sync --db "$tmp/multi.db"
    "$venv/bin/python" "$peer/bench_langgraph.py" seq --turns 200 --saver sqlite --durability sync --db "$tmp/seq.db"
    "$venv/bin/python" "$peer/bench_langgraph.py" history --sizes 10,1000,4000 --samples 10 --durability sync --db "$tmp/history.db"
    rm -rf "$tmp"
fi
