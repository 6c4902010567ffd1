"""`restem serve`: restem's verifiers as an HTTP service (Starlette on uvicorn).

Its own endpoints (/verify/math, /verify/code) and the shapes trainers already call: OpenRLHF's
remote reward (/get_reward) and SandboxFusion's /run_code. See restem/serve/app.py and docs/serve.md.
Importing this package loads neither Starlette nor uvicorn.
"""

from restem.serve.config import TOKEN_ENV, ServeSettings

__all__ = ["TOKEN_ENV", "ServeSettings"]
