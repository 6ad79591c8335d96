"""Libraries kept quiet while we load and run models: our own lines and bars are all a command prints.

transformers' per-load "Loading weights" bar and info logs, and the FutureWarning/UserWarning/
DeprecationWarning that transformers, PEFT and outlines raise on our calls, are silenced inside the
`quiet_libraries()` block only; everything is restored after it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

LIBRARIES = ("transformers", "peft", "outlines", "accelerate", "huggingface_hub", "torch", "llguidance", "xgrammar")
CATEGORIES: tuple[type[Warning], ...] = (FutureWarning, UserWarning, DeprecationWarning)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence the model libraries' progress bars, logs below ERROR and warnings for the block."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    loggers = {name: logging.getLogger(name).level for name in LIBRARIES if name != "transformers"}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in CATEGORIES:
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
