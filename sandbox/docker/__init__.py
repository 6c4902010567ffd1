"""The docker backend: a warm pool of hardened containers, each running `runner.py` as pid 1.

Submodules: `engine` (reach the Docker engine), `image` (build the sandbox image offline or from a
registry, with the judge packages of `judge-packages.txt`), `pool` (`DockerSandbox`). The runner
and its fork server (`sandbox/runner.py`, `sandbox/forkserver.py`) are copied into the image and
shared with the local backend; they are not imported here.
"""

__all__: list[str] = []
