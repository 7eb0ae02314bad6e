"""The one error the knowledge loader raises: which file, which key, what is wrong."""

from __future__ import annotations


class KnowledgeError(ValueError):
    """rules/ (or a site override) is invalid: start-up must stop and say where."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem
