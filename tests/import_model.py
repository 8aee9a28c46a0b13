"""`make model FROM=DIR`: an exported directory in the Hugging Face layout (onnx/model_quantized.onnx
+ tokenizer.json + config.json) is imported and served; a broken one is refused with a message.
Uses the fixture with token_type_ids, laid out as a public export.

    .venv-model/bin/python tests/import_model.py target/release/sentimiento
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/tiny-token-types"


def export_layout(dst):
    (dst / "onnx").mkdir(parents=True)
    shutil.copyfile(FIXTURE / "model.onnx", dst / "onnx/model_quantized.onnx")
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(FIXTURE / name, dst / name)


def export_layout_model(dst):
    shutil.copyfile(FIXTURE / "model.onnx", dst / "onnx/model_quantized.onnx")


def importer(src, out, *options):
    return subprocess.run([sys.executable, str(ROOT / "model/import_model.py"), "--from", str(src), "--out", str(out),
                           *options], capture_output=True, text=True)


def predict(binary, model_dir, *options, text="me encanta, genial"):
    return subprocess.run([binary, "predict", *options, "--", text], capture_output=True, text=True,
                          env=dict(os.environ, MODEL_DIR=str(model_dir)))


def main():
    binary = sys.argv[1]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        export_layout(tmp / "export")
        done = importer(tmp / "export", tmp / "model")
        answer = predict(binary, tmp / "model")
        ok = done.returncode == 0 and answer.returncode == 0 and json.loads(answer.stdout)["output"] == "POS"
        print(f"{'ok  ' if ok else 'FAIL'} import and serve: {done.stdout.strip() or done.stderr.strip()}")
        passed, failed = passed + ok, failed + (not ok)

        # The import optimises the graph offline; it must answer exactly as the exported file does.
        pipeline = json.loads((tmp / "model/pipeline.json").read_text()) if done.returncode == 0 else {}
        same = answer.returncode == 0 and answer.stdout == predict(binary, FIXTURE).stdout
        ok = pipeline.get("pre_optimized") is True and same
        print(f"{'ok  ' if ok else 'FAIL'} optimised offline, same answer as the export: {answer.stdout.strip()}")
        passed, failed = passed + ok, failed + (not ok)

        # A graph that answers alike alone and in a padded batch is marked for bulk scoring to batch
        # (fp32, masked pooling); today's dynamic int8 takes one activation scale per run: it is not.
        ok = pipeline.get("batch_padding_id") == 0 and "bulk scoring batches" in done.stdout
        print(f"{'ok  ' if ok else 'FAIL'} fp32 export marked to batch: {pipeline.get('batch_padding_id')}")
        passed, failed = passed + ok, failed + (not ok)
        sys.path.insert(0, str(ROOT / "model"))
        import precision
        precision.quantize(FIXTURE / "model.onnx", tmp / "export/onnx/model_quantized.onnx", "int8-dynamic")
        done = importer(tmp / "export", tmp / "dynamic")
        marked = json.loads((tmp / "dynamic/pipeline.json").read_text()) if done.returncode == 0 else {"failed": done.stderr}
        ok = done.returncode == 0 and "batch_padding_id" not in marked and "one text at a time" in done.stdout
        print(f"{'ok  ' if ok else 'FAIL'} dynamic int8 not marked: {done.stdout.strip().splitlines()[-2:]}")
        passed, failed = passed + ok, failed + (not ok)
        export_layout_model(tmp / "export")

        # The language reaches preprocessing: an Italian model reads Italian user tokens.
        done = importer(tmp / "export", tmp / "italian", "--task", "irony", "--lang", "it")
        answer = predict(binary, tmp / "italian", "--task", "irony", "--include-sentence", text="@ana genial")
        sentence = json.loads(answer.stdout).get("sentence") if answer.returncode == 0 else answer.stderr
        ok = done.returncode == 0 and sentence == "##user genial"
        print(f"{'ok  ' if ok else 'FAIL'} --lang it --task irony reach the function: {sentence}")
        passed, failed = passed + ok, failed + (not ok)

        config = json.loads((tmp / "export/config.json").read_text())
        config["id2label"] = {"0": "NEG", "1": "POS"}
        (tmp / "export/config.json").write_text(json.dumps(config))
        done = importer(tmp / "export", tmp / "refused")
        ok = done.returncode != 0 and "expected (1, 2)" in done.stderr and not (tmp / "refused").exists()
        print(f"{'ok  ' if ok else 'FAIL'} label mismatch refused: {done.stderr.strip()}")
        passed, failed = passed + ok, failed + (not ok)

    # RoBERTa configs may write "pad_token_id": null; positions still start after RoBERTa's pad id 1.
    from import_model import max_tokens
    cases = [({"model_type": "roberta", "max_position_embeddings": 130, "pad_token_id": None}, 128),
             ({"model_type": "roberta", "max_position_embeddings": 66, "pad_token_id": 1}, 64),
             ({"model_type": "bert", "max_position_embeddings": 512, "pad_token_id": None}, 128)]
    got = [max_tokens(config) for config, _ in cases]
    ok = got == [want for _, want in cases]
    print(f"{'ok  ' if ok else 'FAIL'} usable positions, pad_token_id null or set: {got}")
    passed, failed = passed + ok, failed + (not ok)
    print(f"import: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
