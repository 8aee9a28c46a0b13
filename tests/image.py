"""The Lambda container image (`make image`) run as Lambda runs it: unpacked by umoci (an
independent reader of the OCI layout), its entry point started in a chroot of only the image's
files (a private mount and PID namespace adds /proc, /tmp and four /dev nodes, which Lambda
provides), with the image config's environment, against the Runtime API emulator of
tests/runtime_api.py.

1. The default-model image: built twice, the same digest; answers every sample event in events/
   and the Distributed Map batch (statuses and error codes of tests/events_expected.json, labels
   equal to the host binary's on the same model); its start to first answer beside the same
   bootstrap run from its folder as the zip is.
2. An eight-model image (the default model laid out as eight <task>/<lang>/ pairs) in a 512 MB
   memory cgroup as a 512 MB function: requests cycle through the eight, the budget unloads, every
   request is answered; the group's peak and limit hits printed.

    python tests/image.py BIN     # as root: chroot, mounts and cgroups (make test)
"""
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from e2e_lambda import EXPECTED  # noqa: E402
from runtime_api import RuntimeApi  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "target/image-test"
# Eight copies of the default model (~62 MiB each) are more than a 512 MB function's budget holds
# (384 MB): the budget must unload. Six fitted once the default model became 8-bit.
PAIRS = ["sentiment/es", "emotion/es", "hate_speech/es", "irony/es", "sentiment/pt", "emotion/pt", "sentiment/en",
         "emotion/en"]
ROUNDS, PER_MODEL = 3, 3
FUNCTION_MB = 512
MEMORY_CGROUP = pathlib.Path("/sys/fs/cgroup/memory")
# What Lambda's runtime sets beside the image's own environment.
LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "sentimiento", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
              "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(FUNCTION_MB), "AWS_REGION": "us-east-1",
              "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/sentimiento", "AWS_LAMBDA_LOG_STREAM_NAME": "image-test"}
# Run inside the private namespaces ($1 the root file system, then the command): what Lambda mounts.
MOUNTS = r"""root=$1; shift
mount -t proc proc "$root/proc" && mount -t tmpfs -o size=512m tmpfs "$root/tmp" && mount -t tmpfs tmpfs "$root/dev"
for node in null zero random urandom; do touch "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node"; done
exec "$@"
"""


def make_image(out, **variables):
    done = subprocess.run(["make", "--no-print-directory", "image", f"IMAGE={out}",
                           *(f"{k}={v}" for k, v in variables.items())], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"FAIL: make image: {done.stdout[-1000:]} {done.stderr[-1000:]}")
    return [line for line in done.stdout.splitlines() if line.startswith(("layer ", "image "))]


def blob(image, digest):
    return image / "blobs/sha256" / digest.split(":", 1)[1]


def manifest_and_config(image):
    pointer = json.loads((image / "index.json").read_text())["manifests"][0]
    manifest = json.loads(blob(image, pointer["digest"]).read_text())
    return pointer["digest"], manifest, json.loads(blob(image, manifest["config"]["digest"]).read_text())


def unpack(image, bundle):
    shutil.rmtree(bundle, ignore_errors=True)
    done = subprocess.run(["umoci", "unpack", "--image", f"{image}:latest", str(bundle)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"FAIL: umoci unpack {image}: {done.stderr.strip()}")
    return bundle / "rootfs"


class Function:
    """The image's entry point in a chroot of `rootfs` (or, with chroot=False, its task root run
    as the zip is), answering `api`; in `cgroup` when given."""

    def __init__(self, rootfs, config, api, log, chroot=True, cgroup=None, mounts=MOUNTS):
        env = dict(e.split("=", 1) for e in config["config"]["Env"])
        env.update(LAMBDA_ENV, AWS_LAMBDA_RUNTIME_API=api.address)
        entry = config["config"]["Entrypoint"]
        if chroot:
            # env(1) and chroot(8) are the host's, run before the root changes: the image has neither.
            command = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", mounts, "sh", str(rootfs),
                       "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), "/usr/sbin/chroot", str(rootfs), *entry]
            run_env = {"PATH": os.environ["PATH"]}
        else:  # as the zip runs: the files of the task root, the host's libraries
            task_root = rootfs / "var/task"
            env.update(LAMBDA_TASK_ROOT=str(task_root), MODEL_DIR=str(task_root / "model"),
                       ORT_DYLIB_PATH=str(task_root / "libonnxruntime.so"))
            command, run_env = [str(rootfs / entry[0].lstrip("/"))], env
        if cgroup:
            command = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *command]
        self.api = api
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, env=run_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def invoke(self, event):
        return self.api.invoke(event, alive=lambda: self.proc.poll() is None)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def texts_of(event):
    """The texts an event asks about: an HTTP body's text/texts, or a Map batch's items."""
    if "Items" in event:
        return [item.get("text") for item in event["Items"]]
    try:  # the bad-request events are meant not to parse
        body = event.get("body") or ""
        request = json.loads(base64.b64decode(body).decode() if event.get("isBase64Encoded") else body)
    except ValueError:
        return []
    texts = (request.get("texts") or [request.get("text")]) if isinstance(request, dict) else []
    return texts if isinstance(texts, list) else []


def host_labels(binary, texts):
    """What the host binary answers on the default model: the reference the image must equal."""
    env = dict(os.environ, MODEL_DIR=str(ROOT / "model"), ORT_DYLIB_PATH=str(ROOT / "lib/libonnxruntime.so"), RUST_LOG="off")
    done = subprocess.run([binary, "predict", "--", *texts], env=env, capture_output=True, text=True, check=True)
    return dict(zip(texts, (r["output"] for r in json.loads(done.stdout)["results"])))


def problems_with(event_path, response, labels):
    door, case = event_path.stem.split("-", 1)
    want = EXPECTED[case]
    event = json.loads(event_path.read_text())
    if door == "map":
        got = {"ids": [i.get("id") for i in response], "codes": [i.get("error", {}).get("code") for i in response],
               "outputs": [i.get("output") for i in response]}
        want = dict(want, outputs=[labels[t] if code is None else None for t, code in zip(texts_of(event), want["codes"])])
        return [f"{k} {got[k]} != {want[k]}" for k in ("outputs", "ids", "codes") if got[k] != want[k]]
    body = json.loads(response["body"])
    problems = [] if response["statusCode"] == want["status"] else [f"status {response['statusCode']} != {want['status']}"]
    if "outputs" in want:
        got = [r["output"] for r in body["results"]] if "results" in body else [body.get("output")]
        if got != [labels[t] for t in texts_of(event)]:
            problems.append(f"labels {got} != the host binary's {[labels[t] for t in texts_of(event)]}")
    if "code" in want and body.get("error", {}).get("code") != want["code"]:
        problems.append(f"error code {body.get('error')} != {want['code']}")
    return problems


def print_image(lines, image):
    digest, manifest, config = manifest_and_config(image)
    for line in lines:
        print(f"  {line}")
    print(f"  entry point {config['config']['Entrypoint']}, {config['architecture']}/{config['os']}, "
          f"{sum(l['size'] for l in manifest['layers']) / 2**20:.1f} MiB compressed")
    return digest, config


def first_answer_ms(function):
    function.invoke(json.loads((ROOT / "events/http-health.json").read_text()))
    return (time.perf_counter() - function.started) * 1e3


def default_model_image(binary):
    """Returns the number of failures."""
    small, again = WORK / "small", WORK / "small-again"
    started = time.perf_counter()
    lines = make_image(small)
    print(f"default-model image ({time.perf_counter() - started:.1f} s to build, make's and cargo's up-to-date checks included):")
    digest, config = print_image(lines, small)
    failed = 0
    make_image(again)
    if manifest_and_config(again)[0] != digest:
        print(f"FAIL a second build of the same inputs gave another digest than {digest}")
        failed += 1
    else:
        print(f"ok   reproducible: a second build has the same digest {digest[:19]}")
    rootfs = unpack(small, WORK / "small-bundle")
    events = sorted((ROOT / "events").glob("*.json"))
    texts = {t for e in events for t in texts_of(json.loads(e.read_text())) if isinstance(t, str) and t.strip()}
    labels = host_labels(binary, sorted(texts))
    api = RuntimeApi()
    with open(WORK / "small.log", "w") as log:
        function = Function(rootfs, config, api, log)
        try:
            chroot_ms = first_answer_ms(function)
            for event in events:
                problems = problems_with(event, function.invoke(json.loads(event.read_text())), labels)
                failed += bool(problems)
                print(f"{'ok  ' if not problems else 'FAIL'} {event.name} {'; '.join(problems)}")
        finally:
            function.stop()
            api.close()
        api = RuntimeApi()
        zip_like = Function(rootfs, config, api, log, chroot=False)
        try:
            zip_ms = first_answer_ms(zip_like)
        finally:
            zip_like.stop()
            api.close()
    print(f"start to first answer (eager model load included): {chroot_ms:.0f} ms in the image's chroot, "
          f"{zip_ms:.0f} ms for the same bootstrap from its folder as the zip runs")
    return failed


def many_models(work):
    """The default model as the PAIRS (task, lang); its big files hard-linked, not copied."""
    shutil.rmtree(work, ignore_errors=True)
    for pair in PAIRS:
        dst = work / pair
        dst.mkdir(parents=True)
        for f in ("model.onnx", "model.onnx.data", "tokenizer.json", "config.json"):
            os.link(ROOT / "model" / f, dst / f)
        pipeline = json.loads((ROOT / "model/pipeline.json").read_text())
        pipeline["task"], pipeline["lang"] = pair.split("/")
        (dst / "pipeline.json").write_text(json.dumps(pipeline, indent=1) + "\n")


def predict_event(text, pair):
    event = json.loads((ROOT / "events/http-predict.json").read_text())
    task, lang = pair.split("/")
    event["body"] = json.dumps({"text": text, "task": task, "lang": lang})
    return event


def many_model_image():
    many_models(WORK / "many-models")
    image = WORK / "many"
    lines = make_image(image, IMAGE_MODELS_DIR=WORK / "many-models")
    print(f"{len(PAIRS)}-model image ({', '.join(PAIRS)}: the default model {len(PAIRS)} times, its files stored once):")
    _, config = print_image(lines, image)
    rootfs = unpack(image, WORK / "many-bundle")
    group = MEMORY_CGROUP / f"sentimiento-image-{os.getpid()}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(FUNCTION_MB * 2**20))
    api = RuntimeApi()
    answered, failed = 0, 0
    log_path = WORK / "many.log"
    try:
        with open(log_path, "w") as log:
            function = Function(rootfs, config, api, log, cgroup=group)
            try:
                for _ in range(ROUNDS):
                    for pair in PAIRS:
                        for i in range(PER_MODEL):
                            response = function.invoke(predict_event(f"me encanta el día {i}, qué genial", pair))
                            ok = response["statusCode"] == 200 and "probas" in json.loads(response["body"])
                            answered += ok
                            failed += not ok
                alive = function.proc.poll() is None
            finally:
                function.stop()
        peak = int((group / "memory.max_usage_in_bytes").read_text()) / 2**20
        hits = int((group / "memory.failcnt").read_text())
        oom_kills = next((int(l.split()[1]) for l in (group / "memory.oom_control").read_text().splitlines()
                          if l.startswith("oom_kill ")), 0)
    finally:
        api.close()
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    unloads = sum('"model_unloaded"' in line for line in log_path.read_text(errors="replace").splitlines())
    total = ROUNDS * len(PAIRS) * PER_MODEL
    print(f"as a {FUNCTION_MB} MB function in a {FUNCTION_MB} MB cgroup: {answered}/{total} answered over {ROUNDS} "
          f"rounds of {len(PAIRS)} models, {unloads} unloads, group peak {peak:.0f} MiB (page cache included), "
          f"limit hits {hits}, OOM kills {oom_kills}")
    problems = [p for p, bad in [("a request was not answered", failed), ("the budget never unloaded", unloads == 0),
                                 ("the function died", not alive), ("the OOM killer struck", oom_kills)] if bad]
    for problem in problems:
        print(f"FAIL {problem}")
    return len(problems)


def main():
    if os.geteuid() != 0:
        sys.exit("tests/image.py needs root: chroot, mount namespaces and a memory cgroup")
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    failed = default_model_image(sys.argv[1]) + many_model_image()
    print(f"image: {'0 failed' if not failed else f'{failed} failed'} in {time.perf_counter() - started:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
