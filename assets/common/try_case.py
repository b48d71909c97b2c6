"""Implementation of try_case.sh (see the comment at the top of that file)."""
import decimal
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib

CATEGORIES = {"file_processing", "media", "software_testing", "version_control",
              "data_processing"}
N_TASKS = 40
LONG_INDEX = 39


def die(msg, code=2):
    print("try_case: " + msg, file=sys.stderr)
    sys.exit(code)


def fmt_value(v):
    """Format a size/param value for the environment (floats like Rust's Display)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        s = format(decimal.Decimal(repr(v)), "f")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s
    return str(v)


def scale_value(v, scale):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        die("size values must be numbers, got %r" % (v,))
    if isinstance(v, int):
        return max(1, int(round(v * scale)))
    return v * scale


def load_case(path, scale):
    with open(path, "rb") as f:
        case = tomllib.load(f)
    stem = os.path.splitext(os.path.basename(path))[0]
    problems = []
    if case.get("id") != stem:
        problems.append("id %r does not match file name %r" % (case.get("id"), stem))
    if not re.fullmatch(r"[a-z0-9_]+", str(case.get("id", ""))):
        problems.append("id must match [a-z0-9_]+")
    if case.get("category") not in CATEGORIES:
        problems.append("unknown category %r" % case.get("category"))
    ei = case.get("expected_improvement")
    if not isinstance(ei, float) or not 0.30 <= ei <= 0.35:
        problems.append("expected_improvement should be a float in 0.30..0.35")
    for key in ("name", "description"):
        if not isinstance(case.get(key), str) or not case[key].strip():
            problems.append("missing %s" % key)
    cmds = case.get("commands", {})
    for key in ("setup", "short", "long"):
        if not isinstance(cmds.get(key), str):
            problems.append("missing commands.%s" % key)
    for group in ("long_task", "short_task"):
        comms = case.get(group, {}).get("comm")
        if not comms or not all(isinstance(c, str) and 0 < len(c) <= 15 for c in comms):
            problems.append("%s.comm must be a non-empty list of names of <= 15 chars" % group)
    if set(case.get("long_task", {}).get("comm", [])) & set(case.get("short_task", {}).get("comm", [])):
        problems.append("long_task.comm and short_task.comm overlap")
    if problems:
        die("%s: %s" % (path, "; ".join(problems)))
    sizes = {k: scale_value(v, scale) for k, v in case.get("sizes", {}).items()}
    params = dict(case.get("params", {}))
    return case, sizes, params


def check_deps(case, env):
    missing = []
    for dep in case.get("dependencies", []):
        if "command" in dep:
            if shutil.which(dep["command"], path=env["PATH"]) is None:
                missing.append("command %s (apt-get install %s)" % (dep["command"], dep.get("package")))
        elif "python_module" in dep:
            r = subprocess.run([env["PYTHON"], "-c", "import " + dep["python_module"]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                missing.append("python module %s for %s (apt-get install %s)"
                               % (dep["python_module"], env["PYTHON"], dep.get("package")))
    return missing


def tree_state(root):
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            state[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return state


def busy_seconds():
    """CPU seconds spent by the whole machine so far (all CPUs, non-idle), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_of(ru):
    return ru.ru_utime + ru.ru_stime


class Sampler:
    """Samples /proc: comm and thread count of every thread in each task's session."""

    def __init__(self):
        self.sid_to_task = {}
        self.seen = {}        # task index -> {comm: max threads seen in one process}

    def add(self, sid, index):
        self.sid_to_task[sid] = index
        self.seen.setdefault(index, {})

    def sample(self):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            rest = stat[stat.rfind(")") + 2:].split()
            sid = int(rest[3])
            index = self.sid_to_task.get(sid)
            if index is None:
                continue
            nthreads = int(rest[17])
            try:
                tids = os.listdir("/proc/%s/task" % pid)
            except OSError:
                continue
            for tid in tids:
                try:
                    with open("/proc/%s/task/%s/comm" % (pid, tid)) as f:
                        comm = f.read().rstrip("\n")
                except OSError:
                    continue
                d = self.seen[index]
                d[comm] = max(d.get(comm, 0), nthreads)


def run_tasks(indices, cmds, base_env, work, logs, timeout, concurrent):
    """Run the given task indices; returns {index: (rc, wall, cpu)} and the sampler."""
    sampler = Sampler()
    results = {}

    def start(i):
        group = "long" if i == LONG_INDEX else "short"
        task_dir = os.path.join(work, "task-%02d" % i)
        os.makedirs(task_dir, exist_ok=True)
        env = dict(base_env, TASK_DIR=task_dir, TASK_INDEX=str(i), TASK_GROUP=group)
        out = open(os.path.join(logs, "task-%02d.log" % i), "wb")
        p = subprocess.Popen(["/bin/sh", "-c", cmds[group]], cwd=task_dir, env=env,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        out.close()
        sampler.add(p.pid, i)
        return p

    def run_batch(batch_indices):
        """Start the tasks of one batch back to back and wait for all of them."""
        running = {}
        started = {}
        killed = set()
        t0 = time.monotonic()

        def reap():
            while True:
                try:
                    pid, status, ru = os.wait4(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
                if pid in running:
                    i, p = running.pop(pid)
                    p.returncode = os.waitstatus_to_exitcode(status)
                    results[i] = (p.returncode, time.monotonic() - started[i], cpu_of(ru))

        def kill_session(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        try:
            for i in batch_indices:
                started[i] = time.monotonic()
                p = start(i)
                running[p.pid] = (i, p)
                reap()
            while running:
                reap()
                sampler.sample()
                if timeout and time.monotonic() - t0 > timeout:
                    for pid, (i, p) in running.items():
                        if pid not in killed:
                            print("try_case: task %d timed out, killing it" % i, file=sys.stderr)
                            killed.add(pid)
                        kill_session(pid)
                time.sleep(0.02)
        except BaseException:
            # Ctrl-C or an error in here: leave no task behind
            for pid in running:
                kill_session(pid)
            for pid, (i, p) in running.items():
                p.wait()
            raise

    if concurrent:
        run_batch(indices)
    else:
        for i in indices:
            run_batch([i])
    return results, sampler


def main():
    args = sys.argv[1:]
    opts = {"data": None, "reuse": False, "keep": False, "alone": False,
            "setup_only": False, "timeout": None, "quiet": False, "ro": True}
    pos = []
    while args:
        a = args.pop(0)
        if a == "--data":
            opts["data"] = args.pop(0)
        elif a == "--reuse":
            opts["reuse"] = True
        elif a == "--keep":
            opts["keep"] = True
        elif a == "--alone":
            opts["alone"] = True
        elif a == "--setup-only":
            opts["setup_only"] = True
        elif a == "--timeout":
            opts["timeout"] = float(args.pop(0))
        elif a == "--quiet-tasks":
            opts["quiet"] = True
        elif a == "--no-ro":
            opts["ro"] = False
        elif a.startswith("-") and a not in ("-h", "--help"):
            die("unknown option " + a)
        elif a in ("-h", "--help"):
            die("usage: try_case.sh [--data DIR] [--reuse] [--keep] [--alone] [--setup-only] "
                "[--timeout S] [--quiet-tasks] [--no-ro] CASE_TOML [SCALE]")
        else:
            pos.append(a)
    if not 1 <= len(pos) <= 2:
        die("usage: try_case.sh [OPTIONS] CASE_TOML [SCALE]")
    case_path = os.path.abspath(pos[0])
    scale = float(pos[1]) if len(pos) > 1 else 1.0
    if scale <= 0:
        die("scale must be > 0")
    case, sizes, params = load_case(case_path, scale)
    cid = case["id"]
    assets = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

    tmp_data = opts["data"] is None
    data = tempfile.mkdtemp(prefix="try-%s-data-" % cid) if tmp_data else os.path.abspath(opts["data"])
    work = tempfile.mkdtemp(prefix="try-%s-work-" % cid)
    logs = os.path.join(work, "logs")
    os.makedirs(logs)

    env = dict(os.environ)
    env.setdefault("PYTHON", "/usr/bin/python3")
    env.update(DATA=data, BIN=os.path.join(data, "bin"), ASSETS=assets,
               CASE_ASSETS=os.path.join(assets, cid), WORK=work, SCALE=fmt_value(scale))
    for k, v in list(sizes.items()) + list(params.items()):
        env[k.upper()] = fmt_value(v)
    print("case %s  scale %s  DATA=%s  WORK=%s" % (cid, fmt_value(scale), data, work))
    print("sizes: " + " ".join("%s=%s" % (k.upper(), fmt_value(v)) for k, v in sizes.items()))

    missing = check_deps(case, env)
    if missing:
        die("missing dependencies: " + "; ".join(missing), 1)

    ok = True
    t_all = time.monotonic()
    marker = os.path.join(data, ".try_case_setup_done")
    if opts["reuse"] and not tmp_data and os.path.exists(marker):
        print("setup: reusing existing DATA")
        setup_wall = 0.0
    else:
        if os.path.exists(data):
            if os.listdir(data) and not os.path.exists(marker):
                die("refusing to wipe %s: not empty and not made by try_case" % data)
            shutil.rmtree(data)
        os.makedirs(os.path.join(data, "bin"))
        t0 = time.monotonic()
        r0 = os.times()
        busy_setup0 = busy_seconds()
        with open(os.path.join(logs, "setup.log"), "wb") as out:
            rc = subprocess.call(["/bin/sh", "-eu", "-c", case["commands"]["setup"]], cwd=data,
                                 env=env, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT)
        setup_wall = time.monotonic() - t0
        r1 = os.times()
        setup_cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        du = sum(s[0] for s in tree_state(data).values())
        other = busy_seconds() - busy_setup0 - setup_cpu
        print("setup: rc=%d  wall %.2f s  cpu %.2f s  DATA %.1f MB  (other processes used %.2f CPU s "
              "meanwhile)" % (rc, setup_wall, setup_cpu, du / 1048576, other))
        if rc != 0:
            print(open(os.path.join(logs, "setup.log"), errors="replace").read()[-3000:])
            die("setup failed", 1)
        open(marker, "w").close()
    if opts["setup_only"]:
        if tmp_data and not opts["keep"]:
            shutil.rmtree(data)
        shutil.rmtree(work)
        return 0

    before = tree_state(data)
    ro = False
    if opts["ro"]:
        # make DATA really read-only for the tasks, as in the runner's VM (needs root)
        r = subprocess.run(["/bin/sh", "-c", 'mount --bind "$0" "$0" && '
                            'mount -o remount,bind,ro "$0" || { umount "$0" 2>/dev/null; exit 1; }',
                            data], stderr=subprocess.PIPE)
        ro = r.returncode == 0
        print("DATA is %s for the tasks" % ("mounted read-only" if ro else
                                             "NOT read-only (bind mount failed; checking mtimes only)"))
    if opts["alone"]:
        indices = [0, LONG_INDEX]
    else:
        indices = list(range(N_TASKS))
    t0 = time.monotonic()
    busy0 = busy_seconds()
    try:
        results, sampler = run_tasks(indices, case["commands"], env, work, logs, opts["timeout"],
                                     concurrent=not opts["alone"])
    finally:
        if ro:
            subprocess.run(["umount", data])
    tasks_wall = time.monotonic() - t0
    other_cpu = busy_seconds() - busy0 - sum(r[2] for r in results.values())
    after = tree_state(data)

    cleanup = case["commands"].get("cleanup")
    if cleanup:
        rc = subprocess.call(["/bin/sh", "-c", cleanup], cwd=work, env=env,
                             stdin=subprocess.DEVNULL)
        if rc != 0:
            print("CHECK FAILED: cleanup exited %d" % rc)
            ok = False

    long_comms = set(case["long_task"]["comm"])
    short_comms = set(case["short_task"]["comm"])
    if not opts["quiet"] or opts["alone"]:
        print("%-5s %-5s %4s %8s %8s  %s" % ("task", "group", "rc", "wall_s", "cpu_s", "comm (max threads)"))
    for i in indices:
        rc, wall, cpu = results[i]
        seen = sampler.seen.get(i, {})
        comms = " ".join("%s(%d)" % (c, n) for c, n in sorted(seen.items()))
        if not opts["quiet"] or opts["alone"] or rc != 0:
            print("%-5d %-5s %4d %8.2f %8.2f  %s" % (i, "long" if i == LONG_INDEX else "short",
                                                     rc, wall, cpu, comms))
    failed = [i for i in indices if results[i][0] != 0]
    if failed:
        ok = False
        print("CHECK FAILED: tasks %s exited non-zero; last log lines:" % failed)
        for i in failed[:3]:
            log = open(os.path.join(logs, "task-%02d.log" % i), errors="replace").read()
            print("--- task %d ---\n%s" % (i, log[-1500:]))

    # comm check
    seen_long, seen_short = set(), set()
    for i in indices:
        names = set(sampler.seen.get(i, {})) - {"sh"}
        (seen_long if i == LONG_INDEX else seen_short).update(names)
    if seen_long - long_comms:
        ok = False
        print("CHECK FAILED: long task ran comm(s) not in long_task.comm: %s" % sorted(seen_long - long_comms))
    if seen_short - short_comms:
        ok = False
        print("CHECK FAILED: short tasks ran comm(s) not in short_task.comm: %s" % sorted(seen_short - short_comms))
    if long_comms - seen_long:
        print("note: declared long comm(s) never sampled: %s" % sorted(long_comms - seen_long))
    if short_comms - seen_short:
        print("note: declared short comm(s) never sampled: %s" % sorted(short_comms - seen_short))
    multi = sorted({"%s(%d)" % (c, n) for d in sampler.seen.values() for c, n in d.items() if n > 1})
    if multi:
        print("note: multi-threaded processes seen: %s" % " ".join(multi))

    # DATA must be read-only for tasks
    changed = sorted(set(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)))
    if changed:
        ok = False
        print("CHECK FAILED: tasks changed DATA: %s" % changed[:10])

    cpu_long = results[LONG_INDEX][2]
    wall_long = results[LONG_INDEX][1]
    shorts = [results[i] for i in indices if i != LONG_INDEX]
    max_short_cpu = max(r[2] for r in shorts)
    mean_short_cpu = sum(r[2] for r in shorts) / len(shorts)
    mean_short_wall = sum(r[1] for r in shorts) / len(shorts)
    if cpu_long <= max_short_cpu:
        ok = False
        print("CHECK FAILED: long task cpu %.3f s is not above the largest short task cpu %.3f s"
              % (cpu_long, max_short_cpu))
    total = time.monotonic() - t_all
    print("machine: %d CPUs; CPU used by other processes while the tasks ran: %.2f s "
          "(%.0f%% of one CPU); load average now %.2f"
          % (os.cpu_count(), other_cpu, 100 * other_cpu / max(tasks_wall, 1e-9), os.getloadavg()[0]))
    if opts["alone"]:
        print("alone: short wall %.2f s cpu %.2f s | long wall %.2f s cpu %.2f s | L/s wall %.2f cpu %.2f"
              % (shorts[0][1], shorts[0][2], wall_long, cpu_long, wall_long / shorts[0][1],
                 cpu_long / max(shorts[0][2], 1e-9)))
    else:
        print("tasks: wall %.2f s (makespan)  long cpu %.3f s  short cpu mean %.3f max %.3f  "
              "long/max-short cpu %.2f  mean short wall %.2f s"
              % (tasks_wall, cpu_long, mean_short_cpu, max_short_cpu,
                 cpu_long / max(max_short_cpu, 1e-9), mean_short_wall))
    print("total (setup + tasks + cleanup): %.2f s" % total)
    print("RESULT: %s" % ("ok" if ok else "FAILED"))

    if opts["keep"]:
        print("kept DATA=%s WORK=%s" % (data, work))
    else:
        shutil.rmtree(work, ignore_errors=True)
        if tmp_data:
            shutil.rmtree(data, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
