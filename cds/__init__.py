"""baclofen-cds: a CDS Hooks 2.0 service for abrupt baclofen discontinuation and withdrawal."""

__version__ = "0.1.0"
