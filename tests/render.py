"""render.yaml run the way Render runs it (make test; docs/render.md, "How it is tested").

1. The blueprint: one web service on the native Rust runtime, the free plan, /health as its
   health check, `make render-build` and `sentimiento serve`, the environment a 512 MB instance
   needs (a generated API key; the model URL and hash, and CORS origins, left to the user).
2. Model archives: `pack` gives the same bytes for the same files whatever their mtimes and
   refuses a directory without a model; `fetch` refuses members with an absolute path, `..` or a
   link, a URL without a hash, and a destination it did not write (a source directory).
3. The build command, as an unprivileged user (created with useradd if missing), in a copy of
   the working tree, with a clean HOME and `apt-get` and `sudo` first on PATH, answering with an
   error and noting the call (any call fails the test). The Rust toolchain is reached without
   /root (mode 700): a private mount namespace (unshare -m) mounts the rustup toolchain read-only
   elsewhere and puts the clean HOME over /root, so that the build cache restored into it
   (cargo's registry, and target/ from this tree's release build) is at the paths cargo recorded,
   as a build cache restored on a redeploy would be. Sources keep their mtimes, so
   cargo finds the crate fresh and checks rather than compiles (a fresh clone on Render recompiles
   the crate itself: set RENDER_TEST_REBUILD=1 to do that here too; minutes at 2 cores).
   MODEL_URL is served from loopback (http.server on 127.0.0.1, the default model packed by
   `make package-model`'s script): a missing file and a wrong MODEL_SHA256 fail the build, the
   right one builds.
4. The start command, through a shell, with PORT=10000 in a cgroup v1 of 512 MB and a 0.1 CPU
   quota (cfs_quota_us 10000 per 100000), as the build user: /health answers 200, POST /predict
   answers with the generated key (401 without), and SIGTERM to its processes empties the group
   within Render's 30 s, the server having drained (its shutdown_signal and draining log lines).

Needs root (useradd, unshare, cgroups). Prints each phase's duration.

    python tests/render.py   # from the repository root, after make build model ort
"""
import hashlib
import http.client
import io
import json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

import yaml  # PyYAML: in .venv through aws-sam-cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARCHIVER = ROOT / "scripts" / "model_archive.py"
USER = "sentimiento-build"
PORT = 10000
MEMORY_MB = 512
CPU_PERIOD_US, CPU_QUOTA_US = 100_000, 10_000
SIGTERM_LIMIT_S = 30
# A 0.1 CPU instance loads the default model in a few seconds; a busy machine stretches that.
HEALTHY_WITHIN_S = 180
CGROUP = pathlib.Path("/sys/fs/cgroup")
CARGO_HOME = pathlib.Path("/root/.cargo")
DENIED = ("apt-get", "apt", "sudo")


def check(condition, message):
    if not condition:
        sys.exit(f"FAIL: {message}")


def phase(name, started):
    print(f"  {name}: {time.monotonic() - started:.1f} s", flush=True)


# 1. The blueprint.

def blueprint():
    spec = yaml.safe_load((ROOT / "render.yaml").read_text())
    services = spec.get("services", [])
    check(len(services) == 1, f"render.yaml has {len(services)} services, not one")
    service = services[0]
    for key, want in [("type", "web"), ("runtime", "rust"), ("plan", "free"), ("healthCheckPath", "/health"),
                      ("buildCommand", "make render-build")]:
        check(service.get(key) == want, f"render.yaml's {key} is {service.get(key)!r}, not {want!r}")
    check(service.get("startCommand", "").endswith("sentimiento serve"),
          f"the start command {service.get('startCommand')!r} is not `sentimiento serve`")
    env = {e["key"]: e for e in service.get("envVars", [])}
    check(env.get("SENTIMIENTO_API_KEY", {}).get("generateValue") is True, "the API key is not generated")
    for key in ("MODEL_URL", "MODEL_SHA256", "SENTIMIENTO_CORS_ORIGINS"):
        check(env.get(key, {}).get("sync") is False, f"{key} is not left to the user (sync: false)")
    for key in ("SENTIMIENTO_MEMORY_MB", "SENTIMIENTO_EAGER", "MODEL_DIR"):
        check("value" in env.get(key, {}), f"{key} has no value")
    check(float(env["SENTIMIENTO_MEMORY_MB"]["value"]) < MEMORY_MB, "the model budget is not below 512 MB")
    check("PORT" not in env, "PORT is Render's to set")
    return service


def render_env(service, **given):
    """The service's environment as Render sets it: values, a generated secret, and what the
    user typed for the sync: false keys (empty unless given)."""
    env = {"RENDER": "true"}
    for entry in service["envVars"]:
        if "value" in entry:
            env[entry["key"]] = str(entry["value"])
        elif entry.get("generateValue"):
            env[entry["key"]] = secrets.token_urlsafe(32)
        else:
            env[entry["key"]] = given.get(entry["key"], "")
    return env


# 2. Model archives.

def archiver(*args, **kw):
    return subprocess.run([sys.executable, str(ARCHIVER), *map(str, args)], capture_output=True, text=True, **kw)


def archives_are_reproducible_and_checked(work):
    fixture = ROOT / "tests" / "fixtures" / "tiny"
    copy = work / "tiny-copy"
    shutil.copytree(fixture, copy)
    for f in copy.iterdir():
        os.utime(f, (1e9, 1e9))
    a, b = work / "a.tar.gz", work / "b.tar.gz"
    for model, archive in ((fixture, a), (copy, b)):
        done = archiver("pack", model, archive)
        check(done.returncode == 0, f"pack failed: {done.stderr}")
    check(a.read_bytes() == b.read_bytes(), "the same model packed twice gave different archives")
    shutil.rmtree(copy)
    for name, member in [("absolute", "/tmp/evil.json"), ("parent", "../evil.json"), ("link", None)]:
        bad = work / f"{name}.tar.gz"
        with tarfile.open(bad, "w:gz") as tar:
            info = tarfile.TarInfo(member or "config.json")
            if member is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                data = b"{}"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        digest = hashlib.sha256(bad.read_bytes()).hexdigest()
        done = archiver("fetch", bad.as_uri(), digest, work / f"{name}-model")
        check(done.returncode != 0 and "error:" in done.stderr, f"a {name} member was accepted: {done.stderr}")
        check(not (work / f"{name}-model").exists(), f"a refused {name} archive left a model directory")
    check(not pathlib.Path("/tmp/evil.json").exists() and not (work / "evil.json").exists(), "a member escaped")
    done = archiver("fetch", a.as_uri(), "", work / "no-hash")
    check(done.returncode != 0 and "MODEL_SHA256" in done.stderr, f"a fetch without a hash was accepted: {done.stderr}")
    sources = work / "sources"  # a directory the fetch did not write, as model/ is
    sources.mkdir()
    (sources / "build.py").write_text("# a source file\n")
    done = archiver("fetch", a.as_uri(), hashlib.sha256(a.read_bytes()).hexdigest(), sources)
    check(done.returncode != 0 and (sources / "build.py").exists(), f"a fetch replaced a source directory: {done.stderr}")
    empty = work / "empty"
    empty.mkdir()
    done = archiver("pack", empty, work / "empty.tar.gz")
    check(done.returncode != 0 and not list(work.glob("empty.tar.gz*")), "an empty directory was packed")


# 3. The build, unprivileged.

def build_user():
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        USER], check=True)
        entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid


def chown_tree(path, uid, gid):
    subprocess.run(["chown", "-R", f"{uid}:{gid}", str(path)], check=True)


def checkout(src):
    """The working tree's files (tracked, and new ones not ignored), mtimes kept: what a clone of
    it would hold."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, listed):
        path = ROOT / os.fsdecode(name)
        if path.is_file():
            (src / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / os.fsdecode(name), follow_symlinks=False)


def restore_build_cache(src, home):
    """What Render's build cache brings back on a redeploy: target/ and cargo's registry."""
    release = ROOT / "target" / "release"
    check((release / "sentimiento").is_file(), "no release build to seed the build cache (make build)")
    shutil.copytree(release, src / "target" / "release", symlinks=True,
                    ignore=shutil.ignore_patterns("incremental"))
    registry = CARGO_HOME / "registry"
    if registry.is_dir():
        shutil.copytree(registry, home / ".cargo" / "registry", symlinks=True)
    if os.environ.get("RENDER_TEST_REBUILD") == "1":
        for f in (src / "src").rglob("*.rs"):
            f.touch()


def deny_tools(work, uid, gid):
    deny, log = work / "deny", work / "denied.log"
    deny.mkdir()
    log.touch()
    os.chown(log, uid, gid)
    for tool in DENIED:
        script = deny / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n'
                          f'echo "error: {tool} is not available in this build (no root)" >&2\nexit 100\n')
        script.chmod(0o755)
    return deny, log


class Build:
    """The build command in a private mount namespace, as the build user."""

    def __init__(self, work, service, uid, gid):
        self.work, self.service, self.uid, self.gid = work, service, uid, gid
        self.src, self.home, self.toolchain = work / "src", work / "home", work / "toolchain"
        for d in (self.src, self.home, self.toolchain):
            d.mkdir()
        self.sysroot = subprocess.run(["rustc", "--print", "sysroot"], check=True, capture_output=True,
                                      text=True).stdout.strip()
        checkout(self.src)
        restore_build_cache(self.src, self.home)
        self.deny, self.denied = deny_tools(work, uid, gid)
        chown_tree(self.src, uid, gid)
        chown_tree(self.home, uid, gid)

    def run(self, name, env):
        path = f"{self.deny}:{self.toolchain}/bin:/usr/local/bin:/usr/bin:/bin"
        env = dict(env, HOME="/root", USER=USER, PATH=path, LANG="C.UTF-8")
        # Mounted before /root is covered, so the toolchain stays reachable through its new path.
        setup = (f"mount --bind {self.sysroot} {self.toolchain} && mount -o remount,bind,ro {self.toolchain} && "
                 f"mount --bind {self.home} /root && cd {self.src} && "
                 f'exec setpriv --reuid={self.uid} --regid={self.gid} --clear-groups env -i "$@"')
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup, "sh",
                   *[f"{k}={v}" for k, v in env.items()], "sh", "-c", self.service["buildCommand"]]
        log = self.work / f"build-{name}.log"
        started = time.monotonic()
        with open(log, "w") as out:
            code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
        out = log.read_text(errors="replace")
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        phase(f"build, {name}: exit {code}{' (' + errors[-1] + ')' if errors else ''}", started)
        return code, out


def serve_archives(www):
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(www),
                               "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
    port = int(line.split(" port ")[1].split()[0])
    return server, f"http://127.0.0.1:{port}"


def builds(work, service, uid, gid):
    www = work / "www"
    www.mkdir()
    started = time.monotonic()
    done = archiver("pack", ROOT / "model", www / "model.tar.gz")
    check(done.returncode == 0, f"packing the default model failed: {done.stderr}")
    digest = hashlib.sha256((www / "model.tar.gz").read_bytes()).hexdigest()
    phase("default model packed", started)
    started = time.monotonic()
    build = Build(work, service, uid, gid)
    phase("checkout and build cache restored", started)
    server, base = serve_archives(www)
    try:
        missing = render_env(service, MODEL_URL=f"{base}/missing.tar.gz", MODEL_SHA256=digest)
        code, out = build.run("missing file", missing)
        check(code != 0 and "404" in out, f"a missing MODEL_URL did not fail the build with its 404:\n{out[-2000:]}")
        wrong = render_env(service, MODEL_URL=f"{base}/model.tar.gz", MODEL_SHA256="0" * 64)
        code, out = build.run("wrong hash", wrong)
        check(code != 0 and "MODEL_SHA256 says" in out, f"a wrong MODEL_SHA256 did not fail the build:\n{out[-2000:]}")
        right = render_env(service, MODEL_URL=f"{base}/model.tar.gz", MODEL_SHA256=digest)
        code, out = build.run("MODEL_URL", right)
        check(code == 0 and "Finished `release`" in out, f"the build failed, or ran no cargo:\n{out[-4000:]}")
    finally:
        server.terminate()
        server.wait()
    denied = build.denied.read_text()
    check(not denied, f"the build called what needs root: {denied}")
    served = build.src / right["MODEL_DIR"]
    for f in ("config.json", "model.onnx", "tokenizer.json"):
        check((served / f).read_bytes() == (ROOT / "model" / f).read_bytes(), f"{served / f} is not the archive's")
    check((build.src / "lib" / "libonnxruntime.so").is_file(), "the build left no ONNX Runtime library")
    return build.src, right


# 4. The instance.

class Instance:
    """A cgroup v1 pair with the free instance's memory and CPU quota."""

    def __init__(self):
        self.dirs = [CGROUP / kind / f"sentimiento-render-{os.getpid()}" for kind in ("cpu", "memory")]
        for d in self.dirs:
            d.mkdir()
        cpu, memory = self.dirs
        (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(CPU_QUOTA_US))
        (memory / "memory.limit_in_bytes").write_text(str(MEMORY_MB * 2**20))

    def wrap(self, uid, gid, command):
        enter = " && ".join(f"echo $$ > {d}/cgroup.procs" for d in self.dirs)
        return ["sh", "-c", f'{enter} && exec setpriv --reuid={uid} --regid={gid} --clear-groups "$@"', "sh", *command]

    def processes(self):
        return (self.dirs[1] / "cgroup.procs").read_text().split()

    def peak_mib(self):
        return int((self.dirs[1] / "memory.max_usage_in_bytes").read_text()) / 2**20

    def remove(self):
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def request(method, path, body=None, headers=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"content-type": "application/json", **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def wait_healthy(server):
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while time.monotonic() < deadline:
        check(server.poll() is None, f"the server exited with {server.returncode} before it was healthy")
        try:
            status, data = request("GET", "/health", timeout=5)
            if status == 200:
                return json.loads(data)
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"FAIL: /health did not answer 200 within {HEALTHY_WITHIN_S} s")


def port_free():
    try:
        request("GET", "/health", timeout=1)
    except OSError:
        return True
    return False


def stop(server, group, log):
    """SIGTERM to every process the start command made (a shell runs it, as on Render), then the
    group must empty within Render's 30 s, the server having drained rather than been cut off."""
    stopping = time.monotonic()
    os.killpg(server.pid, signal.SIGTERM)
    while group.processes():
        check(time.monotonic() - stopping < SIGTERM_LIMIT_S, f"still running {SIGTERM_LIMIT_S} s after SIGTERM")
        time.sleep(0.05)
    server.wait()
    lines = log.read_text(errors="replace")
    check('"shutdown_signal"' in lines and '"draining"' in lines and "drain_timeout" not in lines,
          f"the server did not shut down cleanly:\n{lines[-2000:]}")
    phase("SIGTERM -> every process gone", stopping)


def instance(src, env, service, uid, gid):
    check(port_free(), f"something already answers on port {PORT}")
    group = Instance()
    env = dict(env, PORT=str(PORT), HOME="/nonexistent", PATH="/usr/bin:/bin")
    log = src.parent / "serve.log"
    started = time.monotonic()
    with open(log, "w") as err:
        server = subprocess.Popen(group.wrap(uid, gid, ["sh", "-c", service["startCommand"]]), cwd=src, env=env,
                                  stderr=err, start_new_session=True)
    try:
        health = wait_healthy(server)
        healthy_s = time.monotonic() - started
        check(health.get("status") == "ok", f"/health says {health}")
        key = {"authorization": f"Bearer {env['SENTIMIENTO_API_KEY']}"}
        status, data = request("POST", "/predict", {"text": "Me encanta este día"}, key)
        answered_s = time.monotonic() - started
        check(status == 200 and "probas" in json.loads(data), f"POST /predict answered {status}: {data[:300]!r}")
        status, _ = request("POST", "/predict", {"text": "hola"})
        check(status == 401, f"POST /predict without the generated key answered {status}, not 401")
        print(f"  start -> healthy {healthy_s:.1f} s, -> first answer {answered_s:.1f} s, "
              f"peak {group.peak_mib():.0f} MiB of {MEMORY_MB} (0.1 CPU)", flush=True)
        stop(server, group, log)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        group.remove()


def main():
    if os.geteuid() != 0 or not os.access(CGROUP / "cpu", os.W_OK) or not os.access(CGROUP / "memory", os.W_OK):
        sys.exit("tests/render.py needs root: useradd, unshare -m, and writable cgroup v1 cpu and memory controllers")
    started = time.monotonic()
    service = blueprint()
    uid, gid = build_user()
    work = pathlib.Path(tempfile.mkdtemp(prefix="sentimiento-render-"))
    work.chmod(0o755)
    try:
        archives_are_reproducible_and_checked(work)
        phase("archives", started)
        src, env = builds(work, service, uid, gid)
        instance(src, env, service, uid, gid)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"render.yaml: built unprivileged without apt, served at 0.1 CPU / {MEMORY_MB} MB: ok "
          f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
