"""``python -m trainer.configs.model_schema`` prints the model config reference."""

from trainer.configs.model_schema import reference_markdown

print(reference_markdown(), end="")
