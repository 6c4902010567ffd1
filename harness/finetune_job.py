"""The M-step as a standard distributed job: ``torchrun`` / ``accelerate launch`` run this module.

The loop writes a job folder next to the checkpoint it wants (``<out_dir>.job/``)::

    spec.json      what to train: FinetuneSettings (base model, out_dir, TrainConfig, ...), the
                   tokenizer folder and the pairs file
    pairs.jsonl    {"prompt": ..., "completion": ...} per line
    tokenizer/     the run's tokenizer, saved as the loop loaded it
    job.log        the launcher's output, every attempt appended
    result.json    written by rank 0 once the model is in place: steps, world size, loss history

and runs, for ``train: {launcher: torchrun, processes: N}``::

    python -m torch.distributed.run --standalone --nnodes 1 --nproc-per-node N \\
        -m restem.harness.finetune_job --spec <out_dir>.job/spec.json

Every rank runs the same :func:`restem.harness.train.finetune` as the in-process M-step (the Trainer
picks up DDP from the launcher's environment; gloo on CPU, NCCL on GPUs); rank 0 alone writes the
finished model, renamed into place when complete. The Trainer's checkpoints live next to
``out_dir`` as in-process, so a killed job rerun with the same spec resumes from them.

Every rank ends by destroying the process group after a barrier. Left to interpreter exit, a
rank with nothing to save (rank 1) tore its interpreter down while the group's communication
threads still ran: "terminate called without an active exception", the rank aborted, and the
launcher then stopped rank 0, sometimes while it was still writing the model.
"""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from restem.harness.train import FinetuneSettings

from restem.errors import ConfigError, JobError

__all__ = [
    "JobError",
    "finished_steps",
    "job_command",
    "job_dir_for",
    "main",
    "read_result",
    "run_job",
    "write_job",
]

MODULE = "restem.harness.finetune_job"
SPEC_VERSION = 2


# ---------------------------------------------------------------- the launching side


def job_dir_for(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.parent / f"{out_dir.name}.job"


def write_job(
    job_dir: Path, settings: FinetuneSettings, tokenizer, pairs: list[tuple[str, str]]
) -> Path:
    """Write the spec, pairs and tokenizer of one fine-tune into ``job_dir``; return the spec path.

    Paths are written absolute, so the spec can be run from any working directory (and by hand on
    every node of a multi-node job, when the run directory is on a shared filesystem).
    """
    from restem.harness.rundir import write_json_atomic, write_jsonl_atomic

    job_dir = Path(job_dir).absolute()
    job_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(job_dir / "pairs.jsonl", [{"prompt": p, "completion": c} for p, c in pairs])
    tokenizer.save_pretrained(str(job_dir / "tokenizer"))
    base = Path(settings.base_path)
    settings_dict = settings.to_dict() | {
        # a local folder is made absolute; anything else is a hub id, passed as is
        "base_path": str(base.absolute()) if base.exists() else settings.base_path,
        "out_dir": str(settings.out_dir.absolute()),
    }
    spec = {
        "version": SPEC_VERSION,
        "settings": settings_dict,
        "tokenizer": str(job_dir / "tokenizer"),
        "pairs": str(job_dir / "pairs.jsonl"),
        "result": str(job_dir / "result.json"),
    }
    (job_dir / "result.json").unlink(missing_ok=True)  # a result is only ever this spec's
    write_json_atomic(job_dir / "spec.json", spec)
    return job_dir / "spec.json"


def job_command(launcher: str, processes: int, spec_path: Path) -> list[str]:
    """The command line that runs the job in ``spec_path`` with ``processes`` on this node."""
    if launcher == "torchrun":
        head = ["-m", "torch.distributed.run", "--standalone", "--nnodes", "1"]
        head += ["--nproc-per-node", str(processes)]
    elif launcher == "accelerate":
        head = ["-m", "accelerate.commands.launch", "--num_machines", "1"]
        head += ["--num_processes", str(processes), "--mixed_precision", "no"]
        head += ["--dynamo_backend", "no"]
        if processes > 1:
            # accelerate's only local multi-process launcher is the "multi-GPU" one (torchrun
            # underneath); the Trainer itself picks gloo on CPU. Port 0: a free port.
            head += ["--multi_gpu", "--main_process_port", "0"]
    else:
        raise ValueError(f"unknown launcher {launcher!r} (torchrun or accelerate)")
    return [sys.executable, *head, "-m", MODULE, "--spec", str(spec_path)]


def run_job(command: list[str], log_path: Path) -> None:
    """Run ``command``, streaming its output to stderr and appending it to ``log_path``.

    Raises JobError naming the command, the exit status, the log and the log's last lines.
    """
    # the workers import the installed restem (the same install on every node)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    shown = shlex.join(command)
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode
    with open(log_path, "ab") as log:
        log.write(f"$ {shown}\n".encode())
        log.flush()
        start = log.tell()  # this attempt's output begins here
        try:
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
            )
        except OSError as exc:
            raise JobError(f"cannot start the M-step job `{shown}`: {exc}") from None
        try:
            while chunk := proc.stdout.read1(1 << 16):
                log.write(chunk)
                log.flush()
                sys.stderr.write(decode(chunk))
                sys.stderr.flush()
            code = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: the launcher stops its workers on SIGTERM
                proc.terminate()
                proc.wait()
        log.write(f"[restem] exit status {code}\n".encode())
    if code != 0:
        with open(log_path, "rb") as log:
            log.seek(start)
            output = log.read().decode("utf-8", "replace")
        lines = [line.rstrip() for line in output.replace("\r", "\n").splitlines() if line.strip()]
        causes = [m[1] for m in map(_EXCEPTION.match, lines) if m and m[3] not in _WRAPPERS]
        causes = causes or [m[1] for m in map(_SIGNAL.search, lines) if m]  # OOM killer, ...
        cause = f": {causes[-1]}" if causes else ""
        tail = "\n".join("    " + line for line in lines[-16:-1])  # minus our status line
        raise JobError(
            f"the M-step job failed (exit status {code}){cause}\n"
            f"  command: {shown}\n  log: {log_path}\n  the log ends:\n{tail}"
        )


# "ValueError: ..." lines of a traceback; the launchers' own wrappers of a worker's failure aside
_EXCEPTION = re.compile(r"^\s*(([A-Za-z_][\w.]*?\.)?([A-Z]\w*(?:Error|Exception)): .*)$")
_WRAPPERS = {"ChildFailedError", "CalledProcessError"}
# torchrun's report of a worker killed by a signal
_SIGNAL = re.compile(r"(Signal \d+ \(\w+\) received by PID \d+)")


def finished_steps(out_dir: Path) -> int | None:
    """The step count of a job that already wrote ``out_dir`` (run by the loop or by hand)."""
    result = job_dir_for(out_dir) / "result.json"
    if (Path(out_dir) / "config.json").exists() and result.exists():
        return int(json.loads(result.read_text(encoding="utf-8"))["steps"])
    return None


def read_result(spec_path: Path) -> dict | None:
    """The job's result (None when it has not finished)."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    path = Path(spec["result"])
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


# ---------------------------------------------------------------- the job (every rank)


def _rank_device(device: str) -> str:
    """Under a launcher, each rank trains on its own GPU: cuda:LOCAL_RANK."""
    local_rank = os.environ.get("LOCAL_RANK")
    if device.startswith("cuda") and local_rank is not None:
        return f"cuda:{int(local_rank)}"
    return device


def _end_process_group() -> None:
    """Wait for every rank, then destroy the process group (see the module docstring)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    from restem.harness.rundir import read_jsonl, write_json_atomic
    from restem.harness.train import load_tokenizer, run_finetune

    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="One M-step fine-tune from a job spec; run it under torchrun or accelerate.",
    )
    parser.add_argument("--spec", required=True, help="spec.json written by the restem loop")
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    if spec.get("version") != SPEC_VERSION:
        parser.error(f"{args.spec}: spec version {spec.get('version')!r}, expected {SPEC_VERSION}")
    try:
        settings = FinetuneSettings.from_dict(spec["settings"])
    except (TypeError, ConfigError) as exc:
        parser.error(f"{args.spec}: bad settings: {exc}")
    settings = dataclasses.replace(settings, device=_rank_device(settings.device))
    pairs = [(row["prompt"], row["completion"]) for row in read_jsonl(Path(spec["pairs"]))]
    result = run_finetune(settings, load_tokenizer(spec["tokenizer"]), pairs)
    if result.is_main:
        write_json_atomic(
            Path(spec["result"]),
            {
                "steps": result.steps,
                "world_size": result.world_size,
                "log_history": result.log_history,
            },
        )
    # Only after a clean finish: a failing rank must not wait at a barrier for the others (the
    # launcher stops them).
    _end_process_group()
    return 0


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import record

    # record: a failing rank's exception is reported in torchrun's summary, not just its exit code
    raise SystemExit(record(main)())
