"""Package discovery only (metadata lives in pyproject.toml).

Top-level folders (hdl/, sim/, verify/, platforms/) are what users see; their import names
live under one namespace (ubproto.hdl, ubproto.sim, ...). setuptools cannot discover packages
across such a mapping by itself, so every folder with an __init__.py below a mapped root is
listed here, and adding a sub-package needs no edit anywhere.
"""

import os

from setuptools import setup

PACKAGE_DIRS = {
    "ubproto": "ubproto",
    "ubproto.hdl": "hdl",
    "ubproto.sim": "sim",
    "ubproto.verify": "verify",
    "ubproto.platforms": "platforms",
}


def discover():
    packages = []
    for namespace, folder in PACKAGE_DIRS.items():
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
            if "__init__.py" in files:
                rel = os.path.relpath(root, folder)
                packages.append(namespace if rel == "." else
                                namespace + "." + rel.replace(os.sep, "."))
    return sorted(packages)


setup(packages=discover(), package_dir=PACKAGE_DIRS)
