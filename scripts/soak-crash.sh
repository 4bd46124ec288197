#!/usr/bin/env bash
# Crash soak on the local cluster: ROUNDS times (default 50) inject a fault (node_kill or
# pause on a random limiter node), SIGKILL one of the headless monitor, the headless agent
# or the app in tmux at a random moment, start it again, and wait for the repair. Then
# checks what a crash must never cost, and prints the counts:
#   - every fault injected is counted: an occurrence of a node_down ticket for its node
#     (a recurrence within the flap window reopens the same ticket);
#   - no violation key has two unresolved tickets; every ticket ends resolved;
#   - no fault is left in effect, in the ledger or on the cluster;
#   - no command an agent started outlives the agent (looked at 3 s after each kill);
#   - no process runs in the instance's folder that its record does not list;
#   - the DB passes PRAGMA integrity_check.
# Exit status 0 only when all of them hold. Outside CI: it takes about a minute per 4 rounds.
#   ./scripts/soak-crash.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-50}"
./scripts/setup.sh test >/dev/null
cargo build --release --bins --quiet
exec python3 - "${CARGO_TARGET_DIR:-$PWD/target}/release/operator" "$rounds" <<'PY'
import json, os, random, signal, sqlite3, subprocess, sys, tempfile, time

op, rounds = sys.argv[1], int(sys.argv[2])
state = tempfile.mkdtemp(prefix="operator-soak-")
instance = "7"
config = os.path.join(state, "config.toml")
with open(config, "w") as f:
    f.write('[monitor]\ninterval = "500ms"\n[agent]\nbackend = "runbook"\nmode = "auto"\n')
env = dict(os.environ, OPERATOR_STATE_DIR=state, OPERATOR_CONFIG=config,
           OPERATOR_INSTANCE=instance, NO_COLOR="1")
env.pop("ANTHROPIC_API_KEY", None)
db = os.path.join(state, "operator.db")
tmux = ["tmux", "-L", f"operator-soak-{os.getpid()}"]
quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def cli(*args, check=True):
    p = subprocess.run([op, *args], env=env, capture_output=True, text=True, cwd="/")
    if check and p.returncode != 0:
        raise SystemExit(f"operator {' '.join(args)} failed: {p.stderr.strip()}")
    return p.stdout

def cli_json(*args):
    return json.loads(cli(*args, "--json"))

class Headless:
    """`operator monitor` or `operator agent`, in a session of its own (its commands too)."""
    def __init__(self, *args):
        self.args, self.p = args, None
        self.start()
    def start(self):
        self.p = subprocess.Popen([op, *self.args], env=env, cwd="/", start_new_session=True, **quiet)
    def pid(self):
        return self.p.pid
    def kill(self):
        self.p.kill()
        self.p.wait()
    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

class App:
    """The app in a real terminal (tmux): its pane's process leads a session of its own."""
    def start(self):
        cmd = " ".join(f"{k}={v}" for k, v in [("OPERATOR_STATE_DIR", state),
            ("OPERATOR_CONFIG", config), ("OPERATOR_INSTANCE", instance)])
        subprocess.run([*tmux, "new-session", "-d", "-s", "app", "-x", "120", "-y", "40",
                        f"cd / && exec env {cmd} {op} tui --backend runbook --mode auto"], check=True)
    def pid(self):
        out = subprocess.run([*tmux, "display", "-p", "-t", "app", "#{pane_pid}"],
                             capture_output=True, text=True).stdout.strip()
        return int(out) if out.isdigit() else None
    def kill(self):
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 5
        while self.pid() and time.time() < deadline:
            time.sleep(0.05)
        subprocess.run([*tmux, "kill-server"], **quiet)
    def stop(self):
        subprocess.run([*tmux, "send-keys", "-t", "app", "q"], **quiet)
        time.sleep(1)
        subprocess.run([*tmux, "send-keys", "-t", "app", "n"], **quiet)
        deadline = time.time() + 10
        while self.pid() and time.time() < deadline:
            time.sleep(0.1)
        if self.pid():
            self.kill()

def session_members(sid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[3]) == sid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out

def status():
    try:
        return cli_json("status")
    except (SystemExit, json.JSONDecodeError):
        return None

def node_states():
    """Each node: `up` when running and healthy, else its state."""
    return {n["name"]: "up" if n.get("state") == "running" and n.get("healthy") else n.get("state")
            for n in status() or []}

def tickets():
    c = sqlite3.connect(db, timeout=30)
    try:
        rows = c.execute("SELECT id, violation_key, invariant, entity, status, occurrences "
                         "FROM tickets").fetchall()
    finally:
        c.close()
    return [dict(zip(["id", "key", "invariant", "entity", "status", "occurrences"], r)) for r in rows]

def wait(what, cond, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.25)
    print(f"  (gave up waiting for {what} after {secs}s)", flush=True)
    return False

def healthy():
    states = node_states()
    return bool(states) and all(v == "up" for v in states.values()) and \
        not any(t["status"] != "resolved" for t in tickets())

cli("up")
limiters = [n for n in node_states() if n.startswith("ratelimiter-")]
monitor = Headless("monitor")
agent = Headless("agent", "--backend", "runbook", "--mode", "auto")
app = App()
app.start()
victims = {"monitor": monitor, "agent": agent, "app": app}
faults, kills, stuck, orphans = [], {k: 0 for k in victims}, 0, []
random.seed(int(os.environ.get("SOAK_SEED", time.time())))
try:
    wait("the first look", lambda: bool(node_states()), 30)
    for r in range(1, rounds + 1):
        if not wait("a healthy cluster", healthy, 90):
            stuck += 1
            cli("chaos", "heal", "--all", check=False)
            wait("a healthy cluster after healing", healthy, 60)
        kind = random.choice(["node_kill", "pause"])
        target = random.choice(limiters)
        f = cli_json("chaos", "inject", kind, "--target", target, "--duration", "0")
        faults.append((f["id"], kind, target))
        time.sleep(random.uniform(0, 4))
        name = random.choice(list(victims))
        v = victims[name]
        pid = v.pid()
        v.kill()
        kills[name] += 1
        time.sleep(3)
        left = session_members(pid) if pid else []
        if left:
            orphans.append((name, left))
            for p in left:
                os.kill(p, signal.SIGKILL)
        v.start()
        repaired = wait(f"the repair of {kind} on {target}", lambda: node_states().get(target) == "up", 90)
        cli("chaos", "heal", str(f["id"]), check=False)
        if not repaired:
            stuck += 1
        print(f"round {r}/{rounds}: {kind} on {target}, killed the {name}"
              f"{'' if repaired else ' — NOT repaired'}", flush=True)
    wait("the last tickets to resolve", healthy, 90)
finally:
    for v in victims.values():
        v.stop()

# ---- what a crash must never cost
ts = tickets()
counted = sum(t["occurrences"] for t in ts if t["invariant"] == "node_down"
              and t["entity"] in limiters)
per_target = {}
for _, _, target in faults:
    per_target[target] = per_target.get(target, 0) + 1
lost = sum(max(0, n - sum(t["occurrences"] for t in ts
                          if t["invariant"] == "node_down" and t["entity"] == target))
           for target, n in per_target.items())
keys = {}
for t in ts:
    if t["status"] != "resolved":
        keys[t["key"]] = keys.get(t["key"], 0) + 1
duplicated = sum(n - 1 for n in keys.values() if n > 1)
left_open = [f"#{t['id']} {t['invariant']} {t['entity']} {t['status']}" for t in ts if t["status"] != "resolved"]
live = cli_json("chaos", "list").get("faults", [])
not_up = {n: s for n, s in node_states().items() if s != "up"}
with open(os.path.join(state, "instances", instance, "instance.json")) as f:
    record = json.load(f)
listed = {n["process"]["pid"] for n in record.get("nodes", []) if n.get("process")}
inst_dir = os.path.realpath(os.path.join(state, "instances", instance))
unlisted = []
for d in os.listdir("/proc"):
    if d.isdigit() and int(d) not in listed:
        try:
            cwd = os.path.realpath(os.readlink(f"/proc/{d}/cwd"))
            cmd = open(f"/proc/{d}/cmdline").read().replace("\0", " ")
        except OSError:
            continue
        if cwd.startswith(inst_dir) or inst_dir in cmd:
            unlisted.append(f"{d}: {cmd.strip()}")
c = sqlite3.connect(db)
integrity = c.execute("PRAGMA integrity_check").fetchone()[0]
c.close()
cli("down", check=False)

print()
print(f"rounds {rounds}; kills: " + ", ".join(f"{k} {n}" for k, n in kills.items()))
print(f"faults injected        {len(faults)}")
print(f"faults counted         {counted} node_down occurrences ({lost} lost)")
print(f"tickets duplicated     {duplicated}")
print(f"tickets left open      {len(left_open)} {left_open if left_open else ''}")
print(f"faults left in effect  {len(live)} in the ledger; nodes not up: {not_up or 'none'}")
print(f"commands outliving their agent  {sum(len(p) for _, p in orphans)} {orphans if orphans else ''}")
print(f"unlisted processes     {len(unlisted)} {unlisted if unlisted else ''}")
print(f"rounds not repaired within 90s  {stuck}")
print(f"integrity_check        {integrity}")
ok = (lost == 0 and duplicated == 0 and not left_open and not live and not not_up
      and not orphans and not unlisted and integrity == "ok")
if ok:
    subprocess.run(["rm", "-rf", state])
else:
    print(f"state kept for a look: {state}")
sys.exit(0 if ok else 1)
PY
