"""Findings become CDS Hooks 2.0 cards, worded from rules/cards.yaml.

`cds.cards.builder.build_card` builds one card; `cds.cards.extension` reads our
extension back; `cds.cards.placeholders` lists what card texts may name.
"""
