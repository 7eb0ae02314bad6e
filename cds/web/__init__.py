"""HTTP layer: blueprints that translate between Flask and the pipeline."""
