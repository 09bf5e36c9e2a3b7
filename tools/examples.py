"""The example passengers the notebook and the tests send to the lessons.

Defined once: the first two are the examples the package shows in /docs
(``titanic_api.schemas.EXAMPLES``), and the notebook and
the tests import them from here. ``PASSENGER`` is the example every lesson
shows in /docs.
"""

from __future__ import annotations

from titanic_api.schemas import EXAMPLES

# The example passenger every lesson shows in /docs (a third-class man, aged 22).
PASSENGER: dict[str, object] = dict(EXAMPLES[0])
# A passenger the model is sure survived (a first-class woman, aged 38).
SURVIVOR: dict[str, object] = dict(EXAMPLES[1])
# A child, so a batch of all three has three different ages: one not whole, and a
# power of two apart from it, so sums of ages stay exact in floating point.
CHILD: dict[str, object] = {**EXAMPLES[2], "Age": 4.5}
