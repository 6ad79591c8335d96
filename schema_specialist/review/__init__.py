"""`schemagen review`: read, fix and approve a generated dataset's pairs on a local web page.

Decisions are data: `decisions.jsonl` in the dataset directory, one appended line per decision
(`decisions.py`), replayed by the page, by `train` and by `check-data`; the generated files are never
rewritten. `session.py` holds a dataset under review, `stats.py` its histograms and card figures,
`summary.py` the manifest's `review` section and the card's lines, `app.py` the Starlette app.
"""

from __future__ import annotations

from .decisions import DECISIONS, DecisionLog, reviewed_splits
from .summary import review_card_lines

__all__ = ["DECISIONS", "DecisionLog", "review_card_lines", "reviewed_splits"]
