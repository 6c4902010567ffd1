"""The docker backend: a warm pool of hardened containers, each running `runner.py` as pid 1.

Submodules: `engine` (reach the Docker engine), `image` (build the sandbox image offline or from a
registry), `pool` (`DockerSandbox`), `runner` (runs inside each container; not imported here).
"""

__all__: list[str] = []
