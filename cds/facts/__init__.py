"""Fact extraction: a request's resources become the facts the rules reason about.

`cds.facts.subjects.extract_facts` does all reading of FHIR JSON; the rules see only
the flat facts listed in `cds.facts.catalogue`.
"""
