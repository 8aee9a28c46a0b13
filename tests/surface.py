"""The production surface from the outside, on the default model (make test):

1. schemathesis (pinned, tests/api/) generates requests from the served /openapi.json and checks
   every answer against it: no 5xx, every status, content type, header and body as documented,
   invalid requests refused, and, with an API key set, no protected route answering without it.
2. The playground page in headless Chromium (Debian's): a sentence typed and submitted, the label
   and bars read back and compared with POST /predict, a wrong key's error shown; a screenshot is
   saved (target/playground.png, the README's docs/playground.png).
3. The playground on a function serving three kinds of model (the default, a NER fixture and a
   pair task): the words and their labels, the entities, and the target field, each compared with
   POST /predict (target/playground-ner.png).

usage: surface.py BIN MODEL_DIR   (ORT_DYLIB_PATH set; tests/api's venv on PATH)
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "surface-test-key"
SENTENCE = "Me encanta este lugar, la comida es increíble @amiga 😍 https://t.co/x"
CHROMIUM_FLAGS = [  # no background connections: this machine's network refuses them
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, model_dir, log):
    port = free_port()
    env = dict(os.environ, PORT=str(port), MODEL_DIR=model_dir, SENTIMIENTO_API_KEY=KEY)
    server = subprocess.Popen([binary, "serve"], env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            return server, base
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit("the server did not start")


def predict(base, text, **fields):
    req = urllib.request.Request(
        base + "/predict",
        data=json.dumps({"text": text, "include_sentence": True, **fields}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {KEY}"},
    )
    return json.load(urllib.request.urlopen(req))


def api_contract(base):
    """schemathesis against the served document, with every check but those the config file turns
    off (and says why). The key is required there (the server runs with
    one), so that schemathesis also checks that no protected route answers without it."""
    doc = json.load(urllib.request.urlopen(base + "/openapi.json"))
    for path in doc["paths"].values():
        for operation in path.values():
            if operation.get("security"):
                operation["security"] = [{"apiKey": []}]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    command = [
        "st", "--config-file", str(HERE / "api/schemathesis.toml"), "run", f.name, "--url", base,
        "--header", f"Authorization: Bearer {KEY}", "--seed", "20261128",
        "--workers", "1", "--continue-on-failure", "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True)
    summary = run.stdout[run.stdout.find("SUMMARY"):] if "SUMMARY" in run.stdout else run.stdout[-3000:]
    print("schemathesis:", summary.strip(), sep="\n")
    if run.returncode != 0:
        print(run.stdout[-12000:], run.stderr[-3000:], sep="\n")
        sys.exit(f"schemathesis found answers outside the contract (exit {run.returncode})")


def playground(base, screenshot):
    from playwright.sync_api import sync_playwright

    expected = predict(base, SENTENCE)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 820, "height": 720}, device_scale_factor=1)
        page.goto(base + "/")
        page.wait_for_selector("#model option", state="attached")
        assert page.is_visible("#key"), "the server needs a key: the page must ask for it"
        page.fill("#key", "wrong-key")
        page.fill("#text", SENTENCE)
        page.click("#submit")
        page.wait_for_selector("#error:not([hidden])")
        assert "401 unauthorized" in page.inner_text("#error"), page.inner_text("#error")
        page.fill("#key", KEY)
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden]) .bar")
        bars = page.eval_on_selector_all(
            ".bar", "bars => bars.map(b => [b.dataset.label, Number(b.dataset.value), b.querySelector('.fill').style.width])"
        )
        output, sentence = page.inner_text("#output"), page.inner_text("#sentence")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    shown = {label: value for label, value, _ in bars}
    assert output == expected["output"], (output, expected)
    assert shown.keys() == expected["probas"].keys(), (shown, expected)
    for label, value, width in bars:
        assert abs(value - expected["probas"][label]) < 1e-6, (label, value, expected)
        assert abs(float(width.rstrip("%")) - 100 * value) < 0.06, (label, width, value)
    assert sentence == expected["sentence"], (sentence, expected["sentence"])
    print(f"playground: {output} with bars {', '.join(f'{l} {w}' for l, _, w in bars)}; "
          f"preprocessed {sentence!r}; screenshot {screenshot}")


def tasks_layout(model_dir, out):
    """MODEL_DIR/<task>/<lang>/: the default model, the NER fixture, and a pair task (the token-type
    fixture reading a target)."""
    fixtures = HERE / "fixtures"
    for task, source in (("sentiment", Path(model_dir).resolve()), ("ner", fixtures / "tiny-words")):
        (out / task).mkdir(parents=True)
        (out / task / "es").symlink_to(source)
    pair = out / "targeted_sentiment" / "es"
    shutil.copytree(fixtures / "tiny-token-types", pair)
    pipeline = json.loads((pair / "pipeline.json").read_text()) | {"task": "targeted_sentiment", "pair": "target"}
    (pair / "pipeline.json").write_text(json.dumps(pipeline))


def option(task):
    return json.dumps({"task": task, "lang": "es"}, separators=(",", ":"))


def playground_tasks(base, screenshot):
    from playwright.sync_api import sync_playwright

    text = "@ana vive en Nueva York, y Juan Pérez en Madrid."
    ner, pair = predict(base, text, task="ner"), predict(base, "el día", task="targeted_sentiment", target="horrible")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 820, "height": 720}, device_scale_factor=1)
        page.goto(base + "/")
        page.wait_for_selector("#model option", state="attached")
        page.fill("#key", KEY)
        page.select_option("#model", value=option("ner"))
        assert not page.is_visible("#second"), "NER reads no second text"
        page.fill("#text", text)
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden]) .word")
        chips = page.eval_on_selector_all(
            ".word", "ws => ws.map(w => [w.firstChild.textContent, w.dataset.label, w.classList.contains('entity')])")
        output = page.inner_text("#output")
        page.screenshot(path=str(screenshot), full_page=True)
        page.select_option("#model", value=option("targeted_sentiment"))
        assert page.is_visible("#second") and page.inner_text("#second-name") == "Objetivo"
        page.fill("#text", "el día")
        page.fill("#second", "horrible")
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden]) .bar")
        pair_output = page.inner_text("#output")
        browser.close()
    words = [(w, l or "") for w, l in zip(ner["tokens"], ner["labels"]) if w.strip()]
    assert [(w, l) for w, l, _ in chips] == words, (chips, words)
    entity_words = {w for e in ner["entities"] for w in e["text"].split()}
    assert {w for w, _, marked in chips if marked} == entity_words, (chips, ner["entities"])
    assert all(f"{e['text']} ({e['type']})" in output for e in ner["entities"]), (output, ner["entities"])
    assert pair_output == pair["output"], (pair_output, pair)
    print(f"playground, NER: {output!r}, {len(chips)} words labelled as POST /predict; "
          f"pair task: {pair_output} with its target; screenshot {screenshot}")


def main():
    binary, model_dir = sys.argv[1], sys.argv[2]
    Path("target").mkdir(exist_ok=True)
    with open("target/surface-server.log", "w") as log:
        server, base = start(binary, model_dir, log)
        try:
            api_contract(base)
            playground(base, Path("target/playground.png"))
        finally:
            server.terminate()
            server.wait(timeout=30)
        with tempfile.TemporaryDirectory() as layout:
            tasks_layout(model_dir, Path(layout))
            server, base = start(binary, layout, log)
            try:
                playground_tasks(base, Path("target/playground-ner.png"))
            finally:
                server.terminate()
                server.wait(timeout=30)
    errors = [line for line in open("target/surface-server.log") if '"status":5' in line]
    assert not errors, f"5xx answers in the server log: {errors[:3]}"
    print("surface: OK")


if __name__ == "__main__":
    main()
