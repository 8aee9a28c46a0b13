"""Whether a Linux binary loads on Lambda's provided.al2023: the GLIBC and GLIBCXX symbol versions
it needs (objdump -T) against al2023's glibc 2.34 and GCC 11's libstdc++. Exits 0 when it does;
otherwise prints what is newer (or that objdump is missing) and exits 1. `make lambda` uses it to
choose the bootstrap; tests/sam_artifact.py checks the package with it.

    python3 scripts/al2023_compat.py BINARY
"""
import re
import subprocess
import sys

# A binary needing newer symbols fails at Lambda's init.
AL2023 = {"GLIBC": (2, 34), "GLIBCXX": (3, 4, 29)}


def too_new_symbols(path):
    """The symbol versions `path` needs that provided.al2023 does not have."""
    table = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True, check=True).stdout
    needed = {(lib, tuple(map(int, v.split(".")))) for lib, v in re.findall(r"\b(GLIBC|GLIBCXX)_([0-9][0-9.]*[0-9])", table)}
    return sorted(f"{lib}_{'.'.join(map(str, v))}" for lib, v in needed if v > AL2023[lib])


def main():
    try:
        too_new = too_new_symbols(sys.argv[1])
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"{sys.argv[1]}: cannot read its symbol versions ({e})")
        return 1
    if too_new:
        have = ", ".join(f"{lib}_{'.'.join(map(str, v))}" for lib, v in AL2023.items())
        print(f"{sys.argv[1]} needs {too_new}; provided.al2023 has up to {have}")
    return 1 if too_new else 0


if __name__ == "__main__":
    sys.exit(main())
