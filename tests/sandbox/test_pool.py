"""The warm pool: replacement of broken containers, labels, clean-up on close / Ctrl-C / crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from restem.sandbox import Limits, Status
from restem.sandbox.docker.pool import (
    OWNER_LABEL,
    POOL_LABEL,
    ROLE_LABEL,
    DockerSandbox,
    cleanup_leftovers,
)

pytestmark = pytest.mark.docker
QUICK = Limits(wall_s=1.0, cpu_s=1.0, memory_mb=128, processes=16)


def _containers(client, owner: str | None = None, pool: str | None = None):
    label = ROLE_LABEL
    if pool or owner:
        label = f"{POOL_LABEL}={pool}" if pool else f"{OWNER_LABEL}={owner}"
    return client.containers.list(all=True, filters={"label": label})


def _owner_of(pid: int) -> str:
    import socket

    return f"{socket.gethostname()}:{pid}"


@pytest.fixture
def small_pool(docker_client):
    with DockerSandbox(workers=1, limits=QUICK, reply_margin_s=2.0) as pool:
        yield pool


@pytest.mark.parametrize("breakage", ["killed", "paused", "removed"])
def test_broken_container_is_replaced_and_the_batch_goes_on(small_pool, docker_client, breakage):
    (box,) = small_pool._live
    old_id = box.container.id
    if breakage == "killed":
        box.container.kill()
    elif breakage == "paused":
        box.container.pause()  # the runner can no longer answer: a hung runner
    else:
        box.container.remove(force=True)
    start = time.monotonic()
    results = small_pool.run_batch([(f"print({i})", "") for i in range(3)], QUICK)
    assert time.monotonic() - start < QUICK.wall_s + small_pool.reply_margin_s + 10
    assert results[0].status is Status.SANDBOX_ERROR, results[0]
    assert [r.stdout for r in results[1:]] == ["1\n", "2\n"]
    (new_box,) = small_pool._live
    assert new_box.container.id != old_id
    ids = [c.id for c in _containers(docker_client, pool=small_pool.pool_id)]
    assert ids == [new_box.container.id]  # the broken one is gone, not just forgotten


def test_close_removes_containers_and_is_idempotent(docker_client):
    pool = DockerSandbox(workers=2, limits=QUICK)
    mine = _containers(docker_client, pool=pool.pool_id)
    assert len(mine) == 2
    assert all(c.labels[ROLE_LABEL] == "1" for c in mine)
    assert all(c.labels[OWNER_LABEL] == _owner_of(os.getpid()) for c in mine)
    pool.close()
    pool.close()
    assert _containers(docker_client, pool=pool.pool_id) == []
    with pytest.raises(RuntimeError):
        pool.run("print(1)")


def test_leftovers_of_dead_owners_are_removed_live_ones_kept(docker_client, docker_box):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = docker_client.containers.create(
        docker_box.image,
        labels={ROLE_LABEL: "1", OWNER_LABEL: _owner_of(dead.pid)},
        network_mode="none",
    )
    try:
        cleanup_leftovers(docker_client)
        remaining = {c.id for c in _containers(docker_client)}
        assert stale.id not in remaining
        assert {b.container.id for b in docker_box._live} <= remaining  # ours: alive, kept
    finally:
        try:
            stale.remove(force=True)
        except Exception:
            pass


_CHILD = textwrap.dedent(
    """
    import sys, time
    from restem.sandbox import Limits
    from restem.sandbox.docker.pool import DockerSandbox
    pool = DockerSandbox(workers=2, limits=Limits(wall_s=1, cpu_s=1, memory_mb=128))
    print("ready", flush=True)
    pool.run("import time\\ntime.sleep(60)", "", Limits(wall_s=60, cpu_s=60, memory_mb=128))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl_c", "crash"])
def test_containers_go_on_ctrl_c_and_after_a_crash(docker_client, how):
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        owner = _owner_of(child.pid)
        assert len(_containers(docker_client, owner)) == 2
        time.sleep(0.3)  # mid-run
        child.send_signal(how)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    if how == signal.SIGINT:
        # KeyboardInterrupt unwinds; atexit removes the pool.
        assert _containers(docker_client, owner) == []
    else:
        # SIGKILL leaves them; the next pool to start removes leftovers of dead owners.
        assert len(_containers(docker_client, owner)) == 2
        cleanup_leftovers(docker_client)
        assert _containers(docker_client, owner) == []
