"""mixsurrogate: choose a language-model data mixture from few proxy runs and data experts."""

__version__ = "0.1.0"
