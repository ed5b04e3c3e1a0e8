"""Which packages ship: every ``mixsurrogate*`` package under mixsurrogate/, found rather than
listed (a hand-kept list once left ``mixsurrogate.search`` out of wheels), plus
``mixsurrogate.presets``, the top-level experts/ folder (mapped in pyproject.toml's package-dir).
pyproject.toml's ``packages.find`` cannot add a package from outside the tree it walks, hence
this file; everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["mixsurrogate", "mixsurrogate.*"]), "mixsurrogate.presets"])
