#!/bin/sh
# try_case.sh: run one schedgen case by hand, without the Rust runner.
#
# Usage:
#   assets/common/try_case.sh [OPTIONS] cases/<id>.toml [SCALE]
#
# What it does (the same contract as the runner, see cases/README.md):
#   1. reads the case file (TOML, parsed with Python's tomllib), checks the
#      dependencies, scales [sizes] by SCALE (default 1.0) and exports DATA, BIN,
#      ASSETS, CASE_ASSETS, WORK, PYTHON, SCALE and every [sizes]/[params] key
#      in upper case;
#   2. runs `setup` with `/bin/sh -eu -c` in a fresh, empty DATA (cwd = DATA);
#   3. runs the 40 tasks at once (index 0..38 `short`, 39 `long`), each in its own
#      TASK_DIR=$WORK/task-NN with TASK_INDEX and TASK_GROUP set, and reports per
#      task: exit status, wall seconds, CPU seconds (user+sys of the task and
#      all its waited-for descendants, from wait4);
#   4. runs `cleanup` (cwd = WORK), even when tasks failed;
#   5. checks: all tasks exited 0; the long task used the most CPU; the `comm`
#      of every process/thread seen in each task's session (sampled from /proc
#      every 20 ms; the runner's `sh` wrapper is ignored) is listed in
#      [long_task]/[short_task]; nothing under DATA changed while tasks ran.
#      When run as root, DATA is also bind-mounted read-only over itself while
#      the tasks run (as in the runner's VM), so a write into DATA fails the task.
#
# Options:
#   --data DIR    use DIR as DATA instead of a temporary directory (kept
#                 afterwards).  DIR is wiped and set up again unless --reuse is
#                 given and its setup finished before; a non-empty DIR that
#                 try_case did not make is never wiped.
#   --reuse       skip setup when DATA/.try_case_setup_done exists (needs --data)
#   --keep        keep the temporary DATA and WORK directories (paths are printed)
#   --alone       instead of 40 concurrent tasks, run short task 0 and then the
#                 long task 39 on their own, one after the other (for timing)
#   --setup-only  run setup and stop
#   --timeout S   kill a task still running after S seconds (default: none)
#   --quiet-tasks do not print the per-task table (only the summary)
#   --no-ro       do not bind-mount DATA read-only for the tasks
#
# The setup cache (--data/--reuse) is keyed by nothing: after changing a case's
# setup, sizes or assets, drop --reuse or use a new --data directory.
#
# Environment: PYTHON (default /usr/bin/python3) is passed to the case as $PYTHON.
# Exit status: 0 if every check passed, 1 if a check failed, 2 on usage errors.
#
# Example:
#   assets/common/try_case.sh cases/compression.toml 0.01
#   assets/common/try_case.sh --alone --data /tmp/cmp1 --reuse cases/compression.toml 1
set -eu
# The work is done by try_case.py next to this file (needs Python >= 3.11 for tomllib).
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/try_case.py" "$@"
