"""A real single-node Slurm cluster on localhost, for the tests that submit job arrays.

Adapted from the tiny-training-on-slurm reference: Debian's ``slurmctld``, ``slurmd``,
``slurm-client`` and ``munge``, installed when missing (as root, with apt), run without systemd
or cgroups. Everything of this cluster is its own: a slurm.conf (``SLURM_CONF``), state, logs and
a munge socket in one folder, daemons started as children of this process and stopped by their
PIDs only, never by name.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
# The three lines that let slurmd run in a container without cgroups (see the reference).
_NO_CGROUPS = """\
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
"""


class Unavailable(Exception):
    """Slurm cannot run here (not installable, or not starting): the tests skip with this."""


# Set to 1 (CI does) to let the suite install Slurm and munge with apt where they are missing.
INSTALL_OPT_IN = "TCW_TESTS_INSTALL_SLURM"


def install() -> None:
    """Install Slurm and munge where they are missing (needs root and apt)."""
    missing = subprocess.run(["dpkg", "-s", *PACKAGES], capture_output=True).returncode != 0
    if not missing and all(shutil.which(name) for name in ("slurmctld", "slurmd", "munged")):
        return
    if os.environ.get(INSTALL_OPT_IN) != "1":  # the suite changes no machine unasked
        raise Unavailable(f"Slurm is not installed: {INSTALL_OPT_IN}=1 lets the tests install it")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable("Slurm is not installed, and installing it needs root and apt")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(command[:2])} failed: {done.stderr.strip()[-300:]}")


@dataclass
class Cluster:
    """A running cluster: its folder, the environment its commands need, and its daemons.

    Attributes:
        folder: Where its config, state, logs and munge socket are.
        env: ``os.environ`` with ``SLURM_CONF`` pointing at this cluster.
        max_array_size: Its ``MaxArraySize``.
    """

    folder: Path
    env: dict[str, str]
    max_array_size: int
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, *command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True)

    def sbatch(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Submit from ``cwd``; the job id."""
        done = subprocess.run(
            ["sbatch", "--parsable", *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().split(";")[0]

    def wait(self, job: str, timeout: float = 600) -> dict[int, tuple[str, int]]:
        """Wait until no task of the array ``job`` is queued or running; each task's state and
        exit code, by array index."""
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", "-j", job).stdout.strip():
            assert time.monotonic() < deadline, f"job {job} still running after {timeout} s"
            time.sleep(0.5)
        shown = self.run("scontrol", "-o", "show", "job", job)
        assert shown.returncode == 0, shown.stderr
        tasks = {}
        for line in shown.stdout.splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            index = fields.get("ArrayTaskId")
            if index is None or not index.isdigit():
                continue
            tasks[int(index)] = (fields["JobState"], int(fields["ExitCode"].split(":")[0]))
        return tasks

    def stop(self) -> None:
        """Cancel every job, then stop exactly the daemons this cluster started."""
        self.run("scancel", "--full", f"--user={pwd.getpwuid(os.getuid()).pw_name}")
        deadline = time.monotonic() + 20
        while self.run("squeue", "-h").stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.2)
        for daemon in reversed(self.daemons):  # slurmd, slurmctld, then munged
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def running_cluster(cpus: int = 4, max_array_size: int = 4) -> Iterator[Cluster]:
    """Install (if needed) and start a one-node cluster; stop it afterwards.

    Args:
        cpus: CPUs the node advertises (more than the machine has: array tasks run at once).
        max_array_size: The cluster's ``MaxArraySize``: array indices 0 to this minus 1.

    Raises:
        Unavailable: Slurm cannot be installed or does not start here.
    """
    install()
    if not MUNGE_KEY.is_file():
        raise Unavailable(f"{MUNGE_KEY} is missing: reinstall munge")
    # Not under pytest's 0700 folders: munged runs as the munge user and must reach its socket.
    folder = Path(tempfile.mkdtemp(prefix="tcw-slurm-", dir="/tmp"))
    folder.chmod(0o755)
    munge = folder / "munge"
    munge.mkdir()
    user = pwd.getpwnam("munge")
    os.chown(munge, user.pw_uid, user.pw_gid)
    socket = munge / "munge.socket"
    for name in ("state", "spool", "log"):
        (folder / name).mkdir()
    conf = folder / "slurm.conf"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 * 9 // 10
    conf.write_text(
        f"""\
ClusterName=tcwtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket}
CredType=cred/munge
MailProg=/bin/true
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
{_NO_CGROUPS}AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MinJobAge=3600
MaxArraySize={max_array_size}
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Cluster(folder, env, max_array_size)
    try:
        cluster.daemons.append(
            _start(
                [
                    "setpriv",
                    f"--reuid={user.pw_uid}",
                    f"--regid={user.pw_gid}",
                    "--init-groups",
                    "munged",
                    "-F",
                    f"--socket={socket}",
                    f"--pid-file={munge}/munged.pid",
                    f"--log-file={munge}/munged.log",
                    f"--seed-file={munge}/munged.seed",
                    f"--key-file={MUNGE_KEY}",
                ],
                folder / "log" / "munged.out",
                env,
            )
        )
        _until(lambda: socket.exists(), "munged did not start", folder / "log" / "munged.out")
        cluster.daemons.append(_start(["slurmctld", "-D"], folder / "log" / "ctld.out", env))
        _until(
            lambda: "UP" in cluster.run("scontrol", "ping").stdout,
            "slurmctld did not start",
            folder / "log" / "slurmctld.log",
        )
        cluster.daemons.append(
            _start(["slurmd", "-D", "-N", "localhost"], folder / "log" / "d.out", env)
        )
        _until(
            lambda: cluster.run("sinfo", "-h", "-o", "%T").stdout.strip().startswith("idle"),
            "slurmd did not start",
            folder / "log" / "slurmd.log",
        )
    except Unavailable:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def _until(ready: object, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
    raise Unavailable(f"{what} within {timeout:.0f} s: {tail}")
