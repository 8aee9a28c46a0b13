"""arm64 (Graviton) as far as it can be checked without one: the bootstrap of `make lambda ARCH=arm64`
run by qemu-user as Graviton2's core (QEMU_CPU=neoverse-n1), on the pinned arm64 runtime libraries
of the arm64 image (target/image-libs-arm64), with Graviton2's /proc/cpuinfo
(tests/fixtures/graviton2-cpuinfo) bind-mounted and /sys/devices/system/cpu hidden, as on Lambda,
in a private mount namespace.

1. Every sample event in events/ and the Distributed Map batch, through the Runtime API emulator
   (tests/runtime_api.py): the statuses and error codes of tests/events_expected.json and the
   labels the x86_64 binary gives on the same model.
   With --image, the same events for the arm64 image (make image ARCH=arm64), unpacked and run in a
   chroot as tests/image.py runs x86_64's.
2. GOLDEN_N texts of tests/golden/preprocess.jsonl scored in bulk (`predict` on JSON Lines): the
   same labels as x86_64 and every probability within MAX_DP of x86_64's (int8 kernels differ by
   instruction set), on each --golden-model directory (make verify-arm64: the default model, and
   its own fp32 graph, whose arithmetic does not depend on the instruction set's int8 kernels).

Emulation is not Graviton: this checks the arm64 code paths of the binary and of ONNX Runtime, not
their speed. Too slow for `make test` (the cross-build alone takes minutes): `make verify-arm64`.

    python3 tests/arm64.py [--image DIR] [--x86-cpu CPU] X86_BIN X86_ORT ARM64_BIN ARM64_ORT ARM64_LIBS    # root: mount namespace
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import image  # noqa: E402
from image import LAMBDA_ENV, host_labels, problems_with, texts_of  # noqa: E402
from runtime_api import RuntimeApi  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "target/arm64-test"
CPUINFO = ROOT / "tests/fixtures/graviton2-cpuinfo"
GOLDEN_N, MAX_DP = 200, 0.01
REFERENCE_STEP = 10
EM_AARCH64 = 183  # ELF e_machine
# Run inside the private mount namespace ($1 the cpuinfo file, then the command).
MOUNTS = r"""cpuinfo=$1; shift
mount --bind "$cpuinfo" /proc/cpuinfo && mount -t tmpfs tmpfs /sys/devices/system/cpu && exec "$@"
"""
# The image's chroot as tests/image.py mounts it, with Graviton2's cpuinfo over its /proc's (the image
# has no /sys). qemu itself is copied into the unpacked root file system, not into the image.
QEMU_IN_ROOT, CPUINFO_IN_ROOT = ".qemu-aarch64-static", ".graviton2-cpuinfo"
IMAGE_MOUNTS = image.MOUNTS.replace('exec "$@"', f'mount --bind "$root/{CPUINFO_IN_ROOT}" "$root/proc/cpuinfo"\nexec "$@"')


def emulated(command, libs, qemu_cpu):
    """`command` (an arm64 executable and its arguments) as Graviton2 runs it, and its environment.
    QEMU_LD_PREFIX gives the loader and libc of one build: qemu takes ld.so from the prefix, and a
    prefix without the multiarch libc (Debian's /usr/aarch64-linux-gnu) pairs the cross loader with
    the host's libc6:arm64, which spins forever in pthread_create (docs/arm64.md)."""
    env = {"PATH": os.environ["PATH"], "QEMU_LD_PREFIX": str(libs), "QEMU_CPU": qemu_cpu}
    return ["unshare", "--mount", "sh", "-c", MOUNTS, "sh", str(CPUINFO), "qemu-aarch64-static", *command], env


def is_aarch64(path):
    with open(path, "rb") as f:
        header = f.read(20)
    return header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64


def model_env(ort, model=ROOT / "model"):
    return {"MODEL_DIR": str(model), "ORT_DYLIB_PATH": str(ort)}


def event_labels(x86_bin):
    """The sample events, and x86_64's labels of every text in them."""
    events = sorted((ROOT / "events").glob("*.json"))
    texts = {t for e in events for t in texts_of(json.loads(e.read_text())) if isinstance(t, str) and t.strip()}
    return events, host_labels(x86_bin, sorted(texts))


def answer_events(invoke, events, labels):
    """Sends every event after a first health check; returns (failures, seconds to the first answer)."""
    started = time.perf_counter()
    invoke(json.loads((ROOT / "events/http-health.json").read_text()), 300)
    first_s = time.perf_counter() - started
    failed = 0
    for event in events:
        problems = problems_with(event, invoke(json.loads(event.read_text()), 120), labels)
        failed += bool(problems)
        print(f"{'ok  ' if not problems else 'FAIL'} {event.name} {'; '.join(problems)}")
    return failed, first_s


def events_answered(binary, ort, libs, x86_bin, qemu_cpu):
    """The bootstrap as the zip runs it. Returns (failures, seconds from start to the first answer)."""
    events, labels = event_labels(x86_bin)
    api = RuntimeApi()
    command, env = emulated([binary], libs, qemu_cpu)
    env.update(LAMBDA_ENV, **model_env(ort), AWS_LAMBDA_RUNTIME_API=api.address, SENTIMIENTO_EAGER="1", RUST_LOG="warn")
    with open(WORK / "lambda.log", "w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            return answer_events(lambda e, t: api.invoke(e, timeout=t, alive=lambda: proc.poll() is None), events, labels)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            api.close()


def image_answered(layout, x86_bin, qemu_cpu):
    """The arm64 image of `make image ARCH=arm64`, unpacked and run in a chroot as tests/image.py runs
    x86_64's, its entry point under the qemu copied in. Returns (failures, seconds to the first answer)."""
    _, _, config = image.manifest_and_config(layout)
    if config["architecture"] != "arm64":
        sys.exit(f"FAIL: {layout} is an {config['architecture']} image")
    rootfs = image.unpack(layout, WORK / "image-bundle")
    shutil.copy(shutil.which("qemu-aarch64-static"), rootfs / QEMU_IN_ROOT)
    shutil.copy(CPUINFO, rootfs / CPUINFO_IN_ROOT)
    config["config"]["Entrypoint"] = [f"/{QEMU_IN_ROOT}", "-cpu", qemu_cpu, *config["config"]["Entrypoint"]]
    events, labels = event_labels(x86_bin)
    api = RuntimeApi()
    with open(WORK / "image.log", "w") as log:
        function = image.Function(rootfs, config, api, log, mounts=IMAGE_MOUNTS)
        try:
            return answer_events(lambda e, t: api.invoke(e, timeout=t, alive=lambda: function.proc.poll() is None),
                                 events, labels)
        finally:
            function.stop()
            api.close()


def golden_texts():
    lines = (ROOT / "tests/golden/preprocess.jsonl").read_text().split("\n")[:-1]  # texts hold U+2028
    texts = list(dict.fromkeys(t for t in (json.loads(line)["text"] for line in lines) if t.strip()))
    step = len(texts) / GOLDEN_N  # spread over the file: its sections test different rules
    return [texts[int(i * step)] for i in range(GOLDEN_N)]


def scored(command, env, texts):
    """`predict` in bulk on `texts`: the answers in order, and the seconds it took."""
    lines = "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts))
    started = time.perf_counter()
    done = subprocess.run([*command, "predict"], input=lines, env=dict(env, RUST_LOG="off"),
                          capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"FAIL: {' '.join(command[-1:])} predict exited {done.returncode}: {done.stderr[-1000:]}")
    return [json.loads(line) for line in done.stdout.split("\n")[:-1]], seconds


def agreement(name, texts, want, got):
    """Prints how far `got` is from x86_64's answers `want`; returns (labels equal, max |dp|)."""
    if len(got) != len(want):
        sys.exit(f"FAIL golden: {name} gave {len(got)} answers for {len(want)} texts")
    same = sum(g["output"] == w["output"] for g, w in zip(got, want))
    dps = [max(abs(g["probas"][k] - w["probas"][k]) for k in w["probas"]) for g, w in zip(got, want)]
    print(f"     {name}: |dp| median {sorted(dps)[len(dps) // 2]:.1g}, over {MAX_DP} on {sum(d > MAX_DP for d in dps)} texts; "
          f"the largest:")
    for i in sorted(range(len(texts)), key=dps.__getitem__, reverse=True)[:3]:
        print(f"       {dps[i]:.3f} {want[i]['output']}->{got[i]['output']} {texts[i][:60]!r}")
    return same, max(dps)


def golden_agree(binary, ort, libs, x86_bin, x86_ort, qemu_cpu, x86_cpu, model):
    """Returns the number of failures on the model directory `model`. With x86_cpu, x86_64's own
    binary on that CPU model (qemu-x86_64) is printed too: how far another instruction set moves
    x86_64's answers."""
    texts = golden_texts()
    x86_env = dict(model_env(x86_ort, model), PATH=os.environ["PATH"])
    want, x86_s = scored([x86_bin], x86_env, texts)
    command, env = emulated([binary], libs, qemu_cpu)
    got, arm_s = scored(command, dict(env, **model_env(ort, model)), texts)
    (WORK / f"golden-{model.name}.json").write_text(json.dumps({"texts": texts, "x86_64": want, "arm64": got},
                                                               ensure_ascii=False))
    same, max_dp = agreement("arm64", texts, want, got)
    ok = same == len(texts) and max_dp <= MAX_DP
    print(f"{'ok  ' if ok else 'FAIL'} golden, {model.relative_to(ROOT)}: labels equal to x86_64's {same}/{len(texts)}, "
          f"max |dp| {max_dp:.3f} (<= {MAX_DP}); {arm_s:.1f} s under emulation, {x86_s:.1f} s natively ({arm_s / x86_s:.0f}x), "
          f"model load included")
    if x86_cpu:  # every REFERENCE_STEP-th text: x86_64 emulated is slower than arm64 (200 texts: over 30 min)
        picked = range(0, len(texts), REFERENCE_STEP)
        some = [texts[i] for i in picked]
        other, other_s = scored(["qemu-x86_64-static", "-cpu", x86_cpu, x86_bin], x86_env, some)
        same, max_dp = agreement(f"x86_64 on qemu -cpu {x86_cpu}", some, [want[i] for i in picked], other)
        arm_same, arm_dp = agreement("arm64 on the same texts", some, [want[i] for i in picked], [got[i] for i in picked])
        print(f"     reference on {len(some)} of the texts ({other_s:.0f} s): x86_64 on qemu -cpu {x86_cpu} against this "
              f"host's x86_64: labels equal {same}/{len(some)}, max |dp| {max_dp:.3f}; arm64: {arm_same}/{len(some)}, "
              f"{arm_dp:.3f}")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description="arm64 under qemu-user against x86_64 (docs/arm64.md)")
    for name in ("x86_bin", "x86_ort", "arm64_bin", "arm64_ort", "arm64_libs"):
        parser.add_argument(name, type=lambda a: str(pathlib.Path(a).resolve()))
    parser.add_argument("--image", help="also run this arm64 image (make image ARCH=arm64) in a chroot")
    parser.add_argument("--x86-cpu", help="also score the golden texts with x86_64 on this qemu CPU model (a reference)")
    parser.add_argument("--golden-model", action="append", type=lambda a: pathlib.Path(a).resolve(),
                        help="score the golden texts on this model directory (repeatable; default: model/)")
    args = parser.parse_args()
    x86_bin, x86_ort, binary, ort, libs, x86_cpu = (args.x86_bin, args.x86_ort, args.arm64_bin, args.arm64_ort,
                                                   args.arm64_libs, args.x86_cpu)
    if os.geteuid() != 0:
        sys.exit("tests/arm64.py needs root: a mount namespace for /proc/cpuinfo")
    for path in (binary, ort):
        if not is_aarch64(path):
            sys.exit(f"FAIL: {path} is not an aarch64 ELF file")
    qemu_cpu = os.environ.get("QEMU_CPU", "neoverse-n1")
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"arm64 under qemu-aarch64-static -cpu {qemu_cpu}, Graviton2 /proc/cpuinfo, /sys/devices/system/cpu hidden "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    started = time.perf_counter()
    failed, first_s = events_answered(binary, ort, libs, x86_bin, qemu_cpu)
    print(f"     start to first answer under emulation (eager model load included): {first_s:.1f} s")
    if args.image:
        print(f"the arm64 image {args.image} in a chroot, its entry point under qemu:")
        image_failed, first_s = image_answered(pathlib.Path(args.image).resolve(), x86_bin, qemu_cpu)
        print(f"     start to first answer in the image's chroot under emulation: {first_s:.1f} s")
        failed += image_failed
    for model in args.golden_model or [ROOT / "model"]:
        failed += golden_agree(binary, ort, libs, x86_bin, x86_ort, qemu_cpu, x86_cpu, model)
    print(f"arm64: {'0 failed' if not failed else f'{failed} failed'} in {time.perf_counter() - started:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
