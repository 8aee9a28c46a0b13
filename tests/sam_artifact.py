"""`sam build` packs what Lambda needs, and the package runs as it will there: from its own
folder, with no ORT_DYLIB_PATH or MODEL_DIR (the library beside bootstrap, model/ under the
task root).

    python tests/sam_artifact.py     # after `make sam-build`
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
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DYLIB_PATH", "MODEL_DIR")}
    env["LAMBDA_TASK_ROOT"] = str(ARTIFACT)
    with tempfile.TemporaryDirectory() as elsewhere:
        done = subprocess.run([str(ARTIFACT / "bootstrap"), "predict", "me encanta, qué genial"],
                              cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"FAIL: bootstrap predict exited {done.returncode}: {done.stderr.strip()}")
    answer = json.loads(done.stdout)
    if set(answer["probas"]) != {"NEG", "NEU", "POS"}:
        sys.exit(f"FAIL: unexpected answer {answer}")
    size = sum(f.stat().st_size for f in ARTIFACT.rglob("*") if f.is_file())
    print(f"artifact {ARTIFACT.relative_to(ROOT)}: {size / 2**20:.1f} MiB unzipped; answer {answer['output']}")
    print("sam-artifact: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
