"""tools/sandbox-e2e: drive a real CDS Hooks Sandbox build against baclofen-cds (see README.md)."""
