"""Writes the function as a Lambda container image: an OCI image layout directory, no daemon.

An OCI image is a few JSON documents (index, manifest, config) and gzip'd tar layers, each a blob
named by its SHA-256 (github.com/opencontainers/image-spec). Writing them here takes only the
standard library and no root, where umoci/skopeo/buildah would need apt (root) to install and a
base image this machine cannot pull. Three layers, so that a model change re-pushes one:

1. the runtime libraries: every shared library bootstrap and ONNX Runtime need (their DT_NEEDED,
   followed recursively, and the ELF interpreter), taken from Debian packages unpacked in
   --libs-from, with those packages' copyright files, and the mount points Lambda fills (/tmp...);
2. /var/task/bootstrap and /var/task/libonnxruntime.so beside it;
3. /var/task/model: one model, or a <task>/<lang>/ tree.

Reproducible: entries sorted, owner 0:0, fixed mtime, modes normalised, gzip without a name or
time, so the same inputs give the same digests. Identical files within a layer are stored once
(tar hard links), as the same model laid out under several names is.

    python3 scripts/oci_image.py --out DIR --bootstrap B --ort SO --libs-from ROOT --models DIR \
        [--pairs "sentiment/es emotion/es"] --model-files "model.onnx ..." [--tag latest]
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

TASK_ROOT = "var/task"
MTIME = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
# OCI's architecture names, and Debian's multiarch directories of each.
TRIPLETS = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
ELF_MACHINES = {"amd64": 62, "arm64": 183}  # e_machine
# Directories Lambda's runtime mounts or expects (/tmp is its writable scratch space).
MOUNT_POINTS = {"tmp": 0o1777, "proc": 0o555, "dev": 0o755}
# The environment of the function as template.yaml deploys the zip; the template's own
# Environment still overrides these.
ENV = [
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "LAMBDA_TASK_ROOT=/var/task",
    "MODEL_DIR=/var/task/model",
    "ORT_DYLIB_PATH=/var/task/libonnxruntime.so",
    "RUST_LOG=info",
    "SENTIMIENTO_THREADS=1",
    "SENTIMIENTO_EAGER=1",
    "SENTIMIENTO_EMF=1",
]
MEDIA = "application/vnd.oci.image."


class Entry:
    """One member of a layer: a file (from `source`), a directory, or a symlink (to `link`)."""

    def __init__(self, path, source=None, link=None, mode=None):
        self.path, self.source, self.link, self.mode = path.strip("/"), source, link, mode


def needed(elf):
    """The sonames an ELF file asks for, and its program interpreter (None for a library)."""
    dynamic = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    headers = subprocess.run(["readelf", "-l", str(elf)], capture_output=True, text=True, check=True).stdout
    interpreter = re.search(r"program interpreter: (\S+?)\]", headers)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic), interpreter and interpreter.group(1)


def check_arch(elf, arch):
    """Refuses an ELF file built for another architecture than the image's."""
    header = Path(elf).read_bytes()[:20]
    if header[:4] != b"\x7fELF" or int.from_bytes(header[18:20], "little") != ELF_MACHINES[arch]:
        sys.exit(f"error: {elf} is not an {arch} ELF file")


def from_root(root, path, entries):
    """Adds image path `path` from the unpacked packages in `root`, following its symlinks
    (each link kept as a link, its target added too); returns the real file's host path."""
    host = root / path.strip("/")
    if host.is_symlink():
        target = os.readlink(host)
        entries[path.strip("/")] = Entry(path, link=target)
        resolved = target if target.startswith("/") else str(Path(path).parent / target)
        return from_root(root, os.path.normpath(resolved), entries)
    if not host.is_file():
        sys.exit(f"error: {path} is not in the unpacked Debian packages under {root}")
    entries[path.strip("/")] = Entry(path, source=host)
    return host


def runtime_libraries(root, elves, arch):
    """Every library the ELF files load, resolved in the Debian packages of `arch`, recursively."""
    lib_dirs = [f"lib/{TRIPLETS[arch]}", f"usr/lib/{TRIPLETS[arch]}"]
    entries, queue, seen = {}, list(elves), set()
    while queue:
        sonames, interpreter = needed(queue.pop())
        if interpreter:
            from_root(root, interpreter, entries)
        for soname in sonames:
            if soname in seen:
                continue
            seen.add(soname)
            found = next((d for d in lib_dirs if (root / d / soname).exists()), None)
            if found is None:
                sys.exit(f"error: {soname} is in none of {lib_dirs} under {root}: add its Debian package")
            queue.append(from_root(root, f"{found}/{soname}", entries))
    # The packages' licences travel with their libraries.
    for copyright in sorted(root.glob("usr/share/doc/*/copyright")):
        if not copyright.parent.is_symlink():
            entries[str(copyright.relative_to(root))] = Entry(str(copyright.relative_to(root)), source=copyright)
    for path, mode in MOUNT_POINTS.items():
        entries[path] = Entry(path, mode=mode)
    return list(entries.values())


def model_dirs(models, pairs, model_files):
    """(path under model/, host dir) of each model: `pairs` of a <task>/<lang>/ tree, the whole
    tree, or `models` itself when it is one model."""
    if pairs:
        found = [(pair, models / pair) for pair in pairs]
    elif (models / "config.json").is_file():
        found = [("", models)]
    else:
        found = [(str(c.parent.relative_to(models)), c.parent) for c in sorted(models.glob("*/*/config.json"))]
    if not found:
        sys.exit(f"error: no model in {models} (neither config.json nor <task>/<lang>/config.json)")
    for name, d in found:
        if not (d / "config.json").is_file():
            sys.exit(f"error: no model in {d}")
    return [Entry(f"{TASK_ROOT}/model/{name}/{f}".replace("//", "/"), source=d / f)
            for name, d in found for f in model_files if (d / f).is_file()]


def with_parents(entries):
    """The entries and every directory above them, sorted so that a directory precedes its contents."""
    paths = {e.path: e for e in entries}
    for e in entries:
        parent = Path(e.path).parent
        while str(parent) != ".":
            paths.setdefault(str(parent), Entry(str(parent)))
            parent = parent.parent
    return [paths[p] for p in sorted(paths)]


def tar_info(entry, first_of_content):
    info = tarfile.TarInfo(entry.path)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = MTIME
    if entry.link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
    elif entry.source is None:
        info.type, info.mode = tarfile.DIRTYPE, entry.mode or 0o755
    else:
        executable = os.stat(entry.source).st_mode & 0o100
        info.mode = 0o755 if executable else 0o644
        if first_of_content:  # the same bytes already stored: a hard link to them
            info.type, info.linkname = tarfile.LNKTYPE, first_of_content
        else:
            info.size = os.path.getsize(entry.source)
    return info


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to `sink`."""

    def __init__(self, sink):
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.sink.write(data) if self.sink else len(data)


def write_layer(blobs, entries):
    """The layer as a gzip'd tar blob; returns (descriptor, diff_id, uncompressed bytes)."""
    tmp = blobs / "layer.tmp"
    stored = {}
    with open(tmp, "wb") as out:
        compressed = Hashing(out)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
            plain = Hashing(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                for entry in with_parents(entries):
                    first = None
                    if entry.source is not None and entry.link is None:
                        digest = file_digest(entry.source)
                        first = stored.get(digest)
                        stored.setdefault(digest, entry.path)
                    info = tar_info(entry, first)
                    if info.isreg():
                        with open(entry.source, "rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
    digest = compressed.sha.hexdigest()
    tmp.rename(blobs / digest)
    descriptor = {"mediaType": MEDIA + "layer.v1.tar+gzip", "digest": f"sha256:{digest}", "size": compressed.size}
    return descriptor, f"sha256:{plain.sha.hexdigest()}", plain.size


def write_json(blobs, document, media_type):
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"mediaType": MEDIA + media_type, "digest": f"sha256:{digest}", "size": len(data)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the OCI image layout directory (replaced)")
    parser.add_argument("--tag", default="latest")
    parser.add_argument("--bootstrap", type=Path, required=True)
    parser.add_argument("--ort", type=Path, required=True, help="libonnxruntime.so")
    parser.add_argument("--libs-from", type=Path, required=True, help="the Debian packages, unpacked (dpkg-deb -x)")
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--pairs", nargs="*", default=[], help="<task>/<lang> of --models to take (default: all)")
    parser.add_argument("--model-files", required=True, help="the files of a model directory the function reads")
    parser.add_argument("--arch", choices=sorted(TRIPLETS), default="amd64", help="of bootstrap, ONNX Runtime and --libs-from")
    args = parser.parse_args()
    for elf in (args.bootstrap, args.ort):
        check_arch(elf, args.arch)

    layers = [
        ("runtime libraries (Debian packages)", runtime_libraries(args.libs_from, [args.bootstrap, args.ort], args.arch)),
        ("bootstrap and ONNX Runtime", [Entry(f"{TASK_ROOT}/bootstrap", source=args.bootstrap),
                                        Entry(f"{TASK_ROOT}/libonnxruntime.so", source=args.ort)]),
        ("models", model_dirs(args.models, args.pairs, args.model_files.split())),
    ]
    work = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    blobs = work / "blobs/sha256"
    blobs.mkdir(parents=True)
    descriptors, diff_ids, history = [], [], []
    for name, entries in layers:
        descriptor, diff_id, plain = write_layer(blobs, entries)
        descriptors.append(descriptor)
        diff_ids.append(diff_id)
        history.append({"created": "1970-01-01T00:00:00Z", "created_by": f"scripts/oci_image.py: {name}"})
        print(f"layer {name}: {len(with_parents(entries))} entries, {plain / 2**20:.1f} MiB, "
              f"{descriptor['size'] / 2**20:.1f} MiB gzip'd, {descriptor['digest'][:19]}")
    config = {"architecture": args.arch, "os": "linux", "created": "1970-01-01T00:00:00Z",
              "config": {"Entrypoint": [f"/{TASK_ROOT}/bootstrap"], "Env": ENV, "WorkingDir": f"/{TASK_ROOT}"},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    manifest = {"schemaVersion": 2, "mediaType": MEDIA + "manifest.v1+json",
                "config": write_json(blobs, config, "config.v1+json"), "layers": descriptors}
    pointer = write_json(blobs, manifest, "manifest.v1+json")
    pointer.update(platform={"architecture": args.arch, "os": "linux"},
                   annotations={"org.opencontainers.image.ref.name": args.tag})
    index = {"schemaVersion": 2, "mediaType": MEDIA + "index.v1+json", "manifests": [pointer]}
    (work / "index.json").write_text(json.dumps(index, sort_keys=True, indent=1) + "\n")
    (work / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}\n')
    shutil.rmtree(args.out, ignore_errors=True)
    work.rename(args.out)
    total = sum(d["size"] for d in descriptors)
    print(f"image {args.out}:{args.tag}: {pointer['digest']}, {total / 2**20:.1f} MiB compressed in {len(descriptors)} layers")


if __name__ == "__main__":
    main()
