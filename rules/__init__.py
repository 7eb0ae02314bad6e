"""The clinical knowledge of baclofen-cds, as data: see README.md in this folder.

Nothing here is code; `cds.knowledge` loads and checks these files. (This file only makes
the folder a package, so the YAML files ship with the service.)
"""
