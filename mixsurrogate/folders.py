"""Whether a file a folder names stays in that folder once links are followed.

A score store or a corpus can come from anyone. Refusing ``..`` and absolute names is not
enough: ``x.logp.npy`` or ``tokens/web.train.u16`` may be a symbolic link to a file elsewhere,
and following it would make the tools read (and train on, or report) data the folder does not
hold. Links that stay inside the folder are fine, and so is a folder that is itself a link.
"""

from __future__ import annotations

from pathlib import Path


def escapes(root: Path, path: Path) -> Path | None:
    """Where ``path`` really leads when, every link followed, it is outside ``root``; else None."""
    target = Path(path).resolve()
    return None if target.is_relative_to(Path(root).resolve()) else target
