"""Clinical knowledge for baclofen-cds: code sets, thresholds, signs, card texts and rulesets.

A clinician-informaticist reviews this folder alone: the YAML files hold every code,
threshold and card text with its source; `withdrawal_rules.py` holds the rulesets.
"""

from rules.knowledge import CodeSet, Knowledge, KnowledgeError, load_knowledge

__all__ = ["CodeSet", "Knowledge", "KnowledgeError", "load_knowledge"]
