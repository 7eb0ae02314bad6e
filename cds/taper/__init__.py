"""Oral baclofen taper planning: schedule, FHIR order, rendering and CDS Hooks suggestions.

Parameters (step sizes, intervals, deliverable products) live in rules/taper.yaml.
"""
