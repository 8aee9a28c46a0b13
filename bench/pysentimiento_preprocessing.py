"""pysentimiento's preprocessing module, loaded from its preprocessing.py alone: the package's
__init__ imports torch, which neither the benchmark venv nor the golden-data venv has
(preprocessing.py needs only re and emoji). Used by bench/ and tests/golden/make_golden.py."""
import importlib.util
import pathlib


def module():
    root = importlib.util.find_spec("pysentimiento").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location("preprocessing", pathlib.Path(root) / "preprocessing.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def load():
    return module().preprocess_tweet
