"""Column names of a runs log: the prefixes every module that reads or writes one agrees on."""

WEIGHT_PREFIX = "w:"
LOSS_PREFIX = "loss:"
METADATA_COLUMNS = ("params", "tokens", "steps", "seed", "notes", "eval_id")
#: ``unique:<domain>``: the unique training tokens a run drew domain ``<domain>`` from, when it
#: trained on a subsample (repetition-matched proxies); empty or absent: the corpus's count
UNIQUE_PREFIX = "unique:"
