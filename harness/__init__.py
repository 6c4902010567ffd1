"""The ReST-EM self-training harness (generate -> verify -> filter -> fine-tune), and the `restem` CLI."""

__all__: list[str] = []
