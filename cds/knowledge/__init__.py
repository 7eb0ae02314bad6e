"""The clinical knowledge base: rules/ loaded, checked and modelled.

`load_knowledge()` reads every file in rules/ (and a site override), checks shapes,
ranges and every reference between files, and returns the typed `Knowledge` the engine
reads. A bad file or override raises `KnowledgeError` naming file, key and problem.
"""

from cds.knowledge.errors import KnowledgeError
from cds.knowledge.loader import load_knowledge
from cds.knowledge.model import CodeSet, Knowledge

__all__ = ["CodeSet", "Knowledge", "KnowledgeError", "load_knowledge"]
