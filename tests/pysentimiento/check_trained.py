"""pysentimiento's own analyzer against the function on trained checkpoints (issue #21).

check.py's random stand-ins pin shapes and edge cases; these are a real pretrained encoder
(all-MiniLM-L6-v2's BERT, uncased WordPiece) fine-tuned by make_trained.py (cached by its inputs):
a 3-label sentiment classifier, a multi-label one and a token classifier. For each, pysentimiento
0.7.3's create_analyzer(task, "es", model_name=DIR) over check.py's 440 texts is the reference;
`make model HF_MODEL=DIR PRECISION=fp32` must give its labels exactly and its probabilities within
1e-4, and the default precision (int8 today) is held to floors set from measurement. The figures
go to WORK/figures.json.

    python tests/pysentimiento/check_trained.py BIN WORK WHEEL EVOMSA_SDIST CACHE
"""
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check  # noqa: E402
import make_trained  # noqa: E402

TASKS = {"sentiment-es": "sentiment", "hate_speech-es": "hate_speech", "ner-es": "ner"}
LANG = "es"
# Today's default (dynamic int8, per channel) on these checkpoints and texts, measured 2026-12-01
# (target/pysentimiento-trained/figures.json): sentiment 97.95 % same labels, max |dp| 0.119;
# multi-label 99.55 % (all five labels), 0.032; words 98.49 % labelled alike, 0.42 (384/440 texts
# identical). Floors a little under those, so that a change for the worse fails. The issue's
# targets (>= 99.5 % labels, >= 99 % words, max |dp| <= 0.03) are for the precision change it asks
# for next: today's int8 meets only the multi-label's label target.
INT8_FLOORS = {"sentiment-es": (0.97, 0.2), "hate_speech-es": (0.985, 0.08), "ner-es": (0.97, 0.6)}
ISSUE_TARGETS = {"label_agreement": 0.995, "word_agreement": 0.99, "max_abs_dp": 0.03}


def default_precision(checkpoint, task, out):
    """`make model HF_MODEL=DIR` with no PRECISION: whatever the Makefile's default is."""
    return check.make("model", f"HF_MODEL={checkpoint}", f"TASK={task}", f"MODEL_LANG={LANG}", f"OUT={out}")


def main():
    binary, work = sys.argv[1], pathlib.Path(sys.argv[2]).resolve()
    wheel, evomsa, cache = sys.argv[3:6]
    start = time.monotonic()
    trained = make_trained.build(wheel, evomsa, cache)
    print(f"trained checkpoints in {trained} ({time.monotonic() - start:.0f} s; training times in trained.json)")
    inputs = check.texts()
    figures = {"texts": len(inputs), "training": json.loads((trained / "trained.json").read_text()),
               "int8_floors": INT8_FLOORS, "issue_21_targets_for_a_later_precision": ISSUE_TARGETS}
    for name, task in TASKS.items():
        checkpoint = trained / name
        want = check.reference(checkpoint, task, LANG, inputs)
        for precision in ("fp32", "default"):
            out = work / precision / task / LANG
            done = (check.convert(checkpoint, task, LANG, "fp32", out) if precision == "fp32"
                    else default_precision(checkpoint, task, out))
            check.check(done.returncode == 0, f"make model HF_MODEL={name} ({precision}): {check.said(done, 'convert')}")
            if done.returncode != 0:
                print(done.stderr[-1500:])
                continue
            got = check.served(binary, work / precision, task, LANG, inputs)
            kind = json.loads((out / "report.json").read_text())["precision"]
            figures[f"{name} {kind}"] = check.compare(name, task, kind, want, got, INT8_FLOORS[name])
    work.mkdir(parents=True, exist_ok=True)
    (work / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(f"pysentimiento, trained checkpoints: {len(inputs)} texts per model; figures in {work / 'figures.json'}")
    print(f"pysentimiento, trained checkpoints: {check.results['passed']} passed, {check.results['failed']} failed")
    sys.exit(1 if check.results["failed"] else 0)


if __name__ == "__main__":
    main()
