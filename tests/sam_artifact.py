"""`sam build` packs what Lambda needs, and the package runs as it will there: from its own
folder, with no ORT_DYLIB_PATH or MODEL_DIR (the library beside bootstrap, model/ under the
task root), needing no newer glibc or libstdc++ than provided.al2023's. Then the same build step
with PACKAGE_MODELS packs only the models it names from a <task>/<lang>/ layout (the one
tests/pysentimiento/check.py converted), and serves each of them.

    python tests/sam_artifact.py     # after `make sam-build` and tests/pysentimiento/check.py
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / ".aws-sam/build/SentimientoFunction"
MODEL_FILES = ["model.onnx", "model.onnx.data", "tokenizer.json", "config.json", "pipeline.json"]
sys.path.insert(0, str(ROOT / "scripts"))
from al2023_compat import too_new_symbols  # noqa: E402


def run_packaged(artifact, *args):
    """bootstrap ARGS as Lambda runs it: from elsewhere, the task root its only hint."""
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DYLIB_PATH", "MODEL_DIR")}
    env["LAMBDA_TASK_ROOT"] = str(artifact)
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run([str(artifact / "bootstrap"), *args], cwd=elsewhere, env=env, capture_output=True,
                              text=True, timeout=120)


def package_models(models_dir, pairs):
    """The SAM build step with PACKAGE_MODELS: only those models, each answering its task."""
    with tempfile.TemporaryDirectory() as tmp:
        artifact = pathlib.Path(tmp)
        done = subprocess.run(["make", "--no-print-directory", "build-SentimientoFunction", f"ARTIFACTS_DIR={tmp}",
                               f"MODEL_DIR={models_dir}", f"PACKAGE_MODELS={' '.join(pairs)}"],
                              cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"FAIL: build-SentimientoFunction with PACKAGE_MODELS: {done.stderr.strip()[-500:]}")
        packed = sorted(str(p.parent.relative_to(artifact / "model")) for p in artifact.rglob("config.json"))
        if packed != sorted(pairs):
            sys.exit(f"FAIL: PACKAGE_MODELS={pairs} packed {packed}")
        for pair in pairs:
            task, lang = pair.split("/")
            answer = run_packaged(artifact, "predict", "--task", task, "--lang", lang, "me encanta, qué genial")
            if answer.returncode != 0:
                sys.exit(f"FAIL: packaged {pair} did not answer: {answer.stdout} {answer.stderr.strip()}")
    print(f"PACKAGE_MODELS={' '.join(pairs)}: packed and answering")


def main():
    # Every model file the source directory has, and the function's own two files.
    required = ["bootstrap", "libonnxruntime.so"] + [f"model/{f}" for f in MODEL_FILES if (ROOT / "model" / f).is_file()]
    missing = [f for f in required if not (ARTIFACT / f).is_file()]
    if missing:
        sys.exit(f"FAIL: the SAM artifact lacks {missing}")
    # Lambda runs the code as another user than the one who built the zip.
    unreadable = [str(f.relative_to(ARTIFACT)) for f in ARTIFACT.rglob("*") if f.is_file() and not f.stat().st_mode & 0o004]
    if unreadable:
        sys.exit(f"FAIL: not world-readable, Lambda could not read them: {unreadable}")
    for binary in ("bootstrap", "libonnxruntime.so"):
        if too_new := too_new_symbols(ARTIFACT / binary):
            sys.exit(f"FAIL: {binary} needs {too_new}, newer than provided.al2023 has (scripts/al2023_compat.py)")
    done = run_packaged(ARTIFACT, "predict", "me encanta, qué genial")
    if done.returncode != 0:
        sys.exit(f"FAIL: bootstrap predict exited {done.returncode}: {done.stderr.strip()}")
    answer = json.loads(done.stdout)
    if set(answer["probas"]) != {"NEG", "NEU", "POS"}:
        sys.exit(f"FAIL: unexpected answer {answer}")
    size = sum(f.stat().st_size for f in ARTIFACT.rglob("*") if f.is_file())
    print(f"artifact {ARTIFACT.relative_to(ROOT)}: {size / 2**20:.1f} MiB unzipped; answer {answer['output']}")
    package_models(ROOT / "target/pysentimiento/int8", ["sentiment/es", "irony/it"])
    print("sam-artifact: 2 passed, 0 failed")


if __name__ == "__main__":
    main()
