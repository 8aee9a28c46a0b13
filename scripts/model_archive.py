"""Model archives for a build that cannot convert models itself (Render's: no PyTorch there).

    python3 scripts/model_archive.py pack DIR ARCHIVE          # make package-model
    python3 scripts/model_archive.py fetch URL SHA256 DEST     # make render-build with MODEL_URL
    python3 scripts/model_archive.py install DIR DEST          # make render-build without it

`pack` writes a model directory, or a `<task>/<lang>/` tree of them, as a .tar.gz that is the same
bytes for the same files (sorted members, fixed mtime, owner and modes, gzip without a name or a
time), and prints its SHA-256. `fetch` downloads one, refuses it unless its SHA-256 is the one
given, refuses members that could land outside DEST (absolute paths, `..`, links, devices), and
unpacks it. `install` copies a model directory's files the same way. Both replace DEST only when it
is absent, empty or made by this script (the marker file), so that a mistyped DEST never wipes a
source directory. Standard library only: the build has Python but no venv yet.
"""
import contextlib
import gzip
import hashlib
import pathlib
import shutil
import sys
import tarfile
import urllib.error
import urllib.request

# The files a model directory may hold (docs/model-directory.md); anything else in it is left out.
MODEL_FILES = ["config.json", "model.onnx", "model.onnx.data", "pipeline.json", "tokenizer.json"]
MARKER = ".sentimiento-model"
# int8 weights barely compress: on the default model level 9 saves 4 of 38 MB for 9x the time.
GZIP_LEVEL = 1
CHUNK = 1 << 20


def fail(message):
    sys.exit(f"error: {message}")


def models_in(root):
    """The model directories under root, relative to it: itself, or each <task>/<lang>/."""
    if (root / "config.json").is_file():
        return [pathlib.Path(".")]
    found = sorted(p.parent.relative_to(root) for p in root.glob("*/*/config.json"))
    if not found:
        fail(f"{root} holds no model: no config.json in it nor in its <task>/<lang>/ directories")
    return found


def members(root):
    """(name in the archive, file) for every model file under root, sorted by name."""
    pairs = []
    for model in models_in(root):
        for name in MODEL_FILES:
            path = root / model / name
            if path.is_file():
                pairs.append(((model / name).as_posix(), path))
    return sorted(pairs)


def pack(root, archive):
    root, archive = pathlib.Path(root), pathlib.Path(archive)
    files = members(root)  # exits naming what is missing before anything is written
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with open(partial, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                              compresslevel=GZIP_LEVEL, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, path in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    partial.rename(archive)
    digest = sha256_of(archive)
    print(f"{archive}  {archive.stat().st_size} bytes  sha256 {digest}")
    print(f"serve it at a URL, then set MODEL_URL=<that URL> MODEL_SHA256={digest}")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def download(url, into):
    """Streams url into the file `into`; returns its SHA-256. Any HTTP error or a refused
    connection ends the build with the URL and the reason."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(into, "wb") as out:
            while block := response.read(CHUNK):
                h.update(block)
                out.write(block)
    except urllib.error.HTTPError as e:
        fail(f"MODEL_URL {url} answered {e.code} {e.reason}")
    except (urllib.error.URLError, OSError, ValueError) as e:
        fail(f"MODEL_URL {url} could not be read: {getattr(e, 'reason', e)}")
    return h.hexdigest()


def safe_name(member):
    """The member's path if it is a plain file or directory that stays inside the destination."""
    path = pathlib.PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        fail(f"the archive's member {member.name!r} would land outside the model directory")
    if not (member.isfile() or member.isdir()):
        fail(f"the archive's member {member.name!r} is not a plain file or directory")
    return path


def unpack(archive, into):
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                path = into / safe_name(member)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        fail(f"the archive is not a readable .tar.gz: {e}")


def replace(dest, staged):
    """Moves the staged model directory to dest, refusing a dest this script did not make."""
    if dest.exists() and any(dest.iterdir()) and not (dest / MARKER).exists():
        fail(f"{dest} exists and was not written by a model fetch; set MODEL_DIR to a directory of its own")
    models_in(staged)  # exits naming what is missing
    (staged / MARKER).write_text("written by scripts/model_archive.py; replaced by the next build\n")
    if dest.exists():
        shutil.rmtree(dest)
    staged.rename(dest)


@contextlib.contextmanager
def staging(dest):
    """A fresh directory beside dest to unpack into; removed unless replace() moved it to dest."""
    staged = dest.with_name(dest.name + ".partial")
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    try:
        yield staged
    finally:
        if staged.exists():
            shutil.rmtree(staged)


def fetch(url, expected, dest):
    if not url:
        fail("MODEL_URL is empty")
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected.lower()):
        fail(f"MODEL_SHA256 must be the archive's 64 hex digits (make package-model prints them), not {expected!r}")
    dest = pathlib.Path(dest)
    archive = dest.with_name(dest.name + ".download")
    with staging(dest) as staged:
        try:
            got = download(url, archive)
            if got != expected.lower():
                fail(f"MODEL_URL {url} has SHA-256 {got}, MODEL_SHA256 says {expected.lower()}: refusing it")
            unpack(archive, staged)
        finally:
            archive.unlink(missing_ok=True)
        replace(dest, staged)
    print(f"{dest}: the model of {url} (sha256 {got})")


def install(source, dest):
    source, dest = pathlib.Path(source), pathlib.Path(dest)
    if dest.resolve() == source.resolve():
        return
    with staging(dest) as staged:
        for name, path in members(source):
            (staged / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staged / name)
        replace(dest, staged)
    print(f"{dest}: the model of {source}")


def main():
    commands = {"pack": (pack, 2), "fetch": (fetch, 3), "install": (install, 2)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) != commands[sys.argv[1]][1] + 2:
        sys.exit(__doc__)
    function, _ = commands[sys.argv[1]]
    function(*sys.argv[2:])


if __name__ == "__main__":
    main()
