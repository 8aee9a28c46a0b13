"""template.yaml deploys the zip or the container image, on x86_64 or arm64: each combination of
its PackageType and Architecture parameters goes through what CloudFormation runs on it — the
AWS::LanguageExtensions expansion, then the SAM transform (SAM CLI's own local copies of both, as
`sam validate --language-extensions` uses them) — and the Lambda function it yields is checked.

    python tests/template_image.py     # with the venv of aws-sam-cli (make test)
"""
import json
import pathlib
import sys

from samcli.lib.translate.sam_template_validator import SamTemplateValidator
from samcli.yamlhelper import yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sentimiento:latest"
CASES = [
    ({}, {"PackageType": "Zip", "Architectures": ["x86_64"], "Handler": "bootstrap", "ImageUri": None}),
    ({"Architecture": "arm64"}, {"PackageType": "Zip", "Architectures": ["arm64"], "Handler": "bootstrap", "ImageUri": None}),
    ({"PackageType": "Image", "ImageUri": IMAGE_URI},
     {"PackageType": "Image", "Architectures": ["x86_64"], "Handler": None, "ImageUri": IMAGE_URI}),
    ({"PackageType": "Image", "ImageUri": IMAGE_URI, "Architecture": "arm64"},
     {"PackageType": "Image", "Architectures": ["arm64"], "Handler": None, "ImageUri": IMAGE_URI}),
    # The bulk workflow on the image function (its state machine's policies through the same transforms).
    ({"PackageType": "Image", "ImageUri": IMAGE_URI, "BulkScoring": "true", "BulkBucket": "sentimiento-bulk-example"},
     {"PackageType": "Image", "Architectures": ["x86_64"], "Handler": None, "ImageUri": IMAGE_URI}),
]


class NoManagedPolicies:
    """The transform asks IAM for AWS managed policies only for policy names it does not know."""

    def load(self):
        return {}


def function(parameters):
    template = yaml_parse((ROOT / "template.yaml").read_text())
    validator = SamTemplateValidator(template, NoManagedPolicies(), region="us-east-1",
                                     parameter_overrides=parameters, language_extensions_enabled=True)
    resources = yaml_parse(validator.get_translated_template_if_valid())["Resources"]
    return next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function")


def main():
    failed = 0
    for parameters, want in CASES:
        try:
            props = function(parameters)
        except Exception as e:  # the transform's own error is the finding
            print(f"FAIL {parameters or 'defaults'}: {e}")
            failed += 1
            continue
        got = {"PackageType": props.get("PackageType", "Zip"), "Architectures": props.get("Architectures"),
               "Handler": props.get("Handler"), "ImageUri": props.get("Code", {}).get("ImageUri")}
        problems = [f"{k} {got[k]!r} != {want[k]!r}" for k in want if got[k] != want[k]]
        if want["PackageType"] == "Zip" and "S3Bucket" not in props.get("Code", {}):
            problems.append(f"the zip's Code is {json.dumps(props.get('Code'))}")
        failed += bool(problems)
        print(f"{'ok  ' if not problems else 'FAIL'} {parameters or 'defaults'}: {'; '.join(problems) or got}")
    print(f"template-image: {len(CASES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
