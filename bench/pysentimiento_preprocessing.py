"""pysentimiento's preprocess_tweet, loaded from its preprocessing.py alone: the package's __init__
imports torch, which the benchmark venv does not have (preprocessing.py needs only re and emoji)."""
import importlib.util
import pathlib


def load():
    root = importlib.util.find_spec("pysentimiento").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location("preprocessing", pathlib.Path(root) / "preprocessing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.preprocess_tweet
