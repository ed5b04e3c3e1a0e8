"""Column names of a runs log: the prefixes every module that reads or writes one agrees on."""

WEIGHT_PREFIX = "w:"
LOSS_PREFIX = "loss:"
METADATA_COLUMNS = ("params", "tokens", "steps", "seed", "notes", "eval_id")
