"""The foreign runs-log formats ``runs import`` reads, apart from ``importers.py`` so that the
CLI can list them without importing pandas (a fast ``--help``)."""

FORMATS = ("regmix", "olmix", "wandb", "csv")
