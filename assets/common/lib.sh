# Shell helpers for the cases' setup commands.  Source it from a setup:
#     . "$ASSETS/common/lib.sh"
# It relies on the runner's variables BIN, ASSETS and PYTHON, and on `set -eu`
# (the runner runs setup with `/bin/sh -eu -c`).

# copy_tool TOOL NAME...
#   Copy the executable that TOOL resolves to on PATH to $BIN/NAME for every NAME.
#   Running $BIN/NAME gives the process the comm NAME (at most 15 characters),
#   which is how a scheduler tells the long task from the short ones.
copy_tool() {
	_tool=$1
	shift
	_src=$(command -v "$_tool") || { echo "setup: $_tool not found on PATH" >&2; return 1; }
	for _name in "$@"; do
		cp -L "$_src" "$BIN/$_name"
		chmod 755 "$BIN/$_name"
	done
}

# install_py SCRIPT NAME...
#   Copy the Python script SCRIPT to $BIN/NAME with its first line replaced by
#   "#!<absolute path of $PYTHON>", so that executing $BIN/NAME directly gives
#   the process the comm NAME instead of "python3".
install_py() {
	_src=$1
	shift
	_py=$(command -v "$PYTHON") || { echo "setup: PYTHON=$PYTHON not found" >&2; return 1; }
	case $_py in
	/*) ;;
	*) echo "setup: cannot resolve PYTHON=$PYTHON to an absolute path" >&2; return 1 ;;
	esac
	for _name in "$@"; do
		{ printf '#!%s\n' "$_py"; sed '1{/^#!/d;}' "$_src"; } > "$BIN/$_name"
		chmod 755 "$BIN/$_name"
	done
}

# build_c SOURCE NAME [GCC ARGS...]
#   Compile one C file with gcc -O2 into $BIN/NAME.
build_c() {
	_src=$1
	_name=$2
	shift 2
	gcc -O2 -o "$BIN/$_name" "$_src" "$@"
}

# build_textgen: compile the shared data generator into $BIN/textgen.
build_textgen() {
	build_c "$ASSETS/common/textgen.c" textgen -lm
}
