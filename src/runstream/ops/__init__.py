"""Domain operators for `Observable[Event]`, used with `.pipe(...)`.

Each function returns an operator (`Callable[[Observable[A]], Observable[B]]`)
that goes beside reactivex's own:

```python
from runstream import ops

app.run("hi").pipe(
    ops.root_only(),
    ops.coalesce_text(0.05),
    ops.profile("user_chat"),
)
```

Time-based operators (`coalesce_text`, `latest_progress`, `batch`) take their
timers from their `scheduler=` argument if given, else from the scheduler they
are subscribed with (`attach` and `drain` pass an
`AsyncIOScheduler`), else from reactivex's `TimeoutScheduler`.
"""

from ..protocols import to_ag_ui, to_ai_sdk
from ._batch import batch
from ._coalesce import coalesce_text
from ._of_type import of_type
from ._profile import Profile, profile
from ._progress import latest_progress
from ._root_only import root_only
from ._usage import TokenCount, UsageTotals, usage_totals

__all__ = [
    "Profile",
    "TokenCount",
    "UsageTotals",
    "batch",
    "coalesce_text",
    "latest_progress",
    "of_type",
    "profile",
    "root_only",
    "to_ag_ui",
    "to_ai_sdk",
    "usage_totals",
]

# Internal API for the server (per-connection profiles): importable from the
# package, not part of the public surface.
from ._profile import event_filter as event_filter
