"""The optional bulk-scoring workflow of template.yaml: `sam validate --lint` with it switched on
(BulkScoring=true, a bucket named), and its state machine definition checked against the Amazon
States Language schema by asl-validator (npm; cfn-lint does not look inside a SAM Definition).

    python tests/template_bulk.py ASL_VALIDATOR     # with sam on PATH (make test)
"""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def definition(text):
    """The state machine's Definition as JSON, with its substitutions filled in."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader, _suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", any_tag)
    resource = yaml.load(text, Loader=Loader)["Resources"]["BulkScoringStateMachine"]["Properties"]
    filled = json.dumps(resource["Definition"])
    for name, value in {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:sentimiento",
                        "Bucket": "sentimiento-bulk-example"}.items():
        filled = filled.replace("${" + name + "}", value)
    return filled


def main():
    validator = sys.argv[1]
    text = (ROOT / "template.yaml").read_text()
    enabled = re.sub(r'(BulkScoring:\n    Type: String\n    Default: )"false"', r'\1"true"', text)
    enabled = re.sub(r'(BulkBucket:\n    Type: String\n    Default: )""', r'\1"sentimiento-bulk-example"', enabled)
    if enabled.count('"true"') == text.count('"true"') or "sentimiento-bulk-example" not in enabled:
        sys.exit("FAIL: could not switch BulkScoring on in template.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "template.yaml"
        copy.write_text(enabled)
        done = subprocess.run(["sam", "validate", "--lint", "--template-file", str(copy)], capture_output=True, text=True)
    linted = done.returncode == 0
    print(f"{'ok  ' if linted else 'FAIL'} sam validate --lint with BulkScoring=true: "
          f"{(done.stdout + done.stderr).strip()[-400:]}")
    done = subprocess.run([validator, "--json-definition", definition(text)], capture_output=True, text=True)
    valid = done.returncode == 0
    print(f"{'ok  ' if valid else 'FAIL'} the Distributed Map definition: {(done.stdout + done.stderr).strip()}")
    passed = int(linted) + int(valid)
    print(f"template-bulk: {passed} passed, {2 - passed} failed")
    sys.exit(0 if passed == 2 else 1)


if __name__ == "__main__":
    main()
