"""A real single-node Slurm cluster on localhost, for the tests that submit job arrays.

Adapted from the tiny-training-on-slurm reference: Debian's ``slurmctld``, ``slurmd``,
``slurm-client`` and ``munge``, installed when missing (as root, with apt), run without systemd
or cgroups. Everything of this cluster is its own: a slurm.conf (``SLURM_CONF``), state, logs and
a munge socket in one folder, daemons started as children of this process and stopped by their
PIDs only, never by name.

With ``accounting=True`` it also runs ``slurmdbd`` (Debian's, and ``mariadb-server``) on a
private MariaDB (its own datadir, socket and port in the same folder), so ``sacct`` answers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket as socket_module
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
ACCOUNTING_PACKAGES = ("slurmdbd", "mariadb-server")
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


def install(accounting: bool = False) -> None:
    """Install Slurm and munge where they are missing (needs root and apt); with
    ``accounting``, slurmdbd and MariaDB too."""
    packages = PACKAGES + (ACCOUNTING_PACKAGES if accounting else ())
    programs = ("slurmctld", "slurmd", "munged") + (
        ("slurmdbd", "mariadbd", "mariadb-install-db") if accounting else ()
    )
    missing = subprocess.run(["dpkg", "-s", *packages], capture_output=True).returncode != 0
    if not missing and all(shutil.which(name) for name in programs):
        return
    what = "Slurm with accounting (slurmdbd, MariaDB)" if accounting else "Slurm"
    if os.environ.get(INSTALL_OPT_IN) != "1":  # the suite changes no machine unasked
        raise Unavailable(f"{what} is not installed: {INSTALL_OPT_IN}=1 lets the tests install it")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(f"{what} is not installed, and installing it needs root and apt")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _no_service_starts():
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise Unavailable(f"{' '.join(command[:2])} failed: {done.stderr.strip()[-300:]}")


_POLICY = Path("/usr/sbin/policy-rc.d")


@contextmanager
def _no_service_starts() -> Iterator[None]:
    """While installing, no package starts its service (a system MariaDB, munged or slurmdbd
    that no test started and none would stop): Debian's policy-rc.d answers 101, "denied", as
    container images already have it; one there already is left as it is."""
    if _POLICY.exists():
        yield
        return
    _POLICY.write_text("#!/bin/sh\n# tests/slurm_cluster.py, while it installs Slurm\nexit 101\n")
    _POLICY.chmod(0o755)
    try:
        yield
    finally:
        _POLICY.unlink(missing_ok=True)


@dataclass
class Cluster:
    """A running cluster: its folder, the environment its commands need, and its daemons.

    Attributes:
        folder: Where its config, state, logs and munge socket are.
        env: ``os.environ`` with ``SLURM_CONF`` pointing at this cluster.
        max_array_size: Its ``MaxArraySize``.
        memory_cgroup: Whether a task's ``--mem`` is a cgroup's limit (with accounting, where
            the cgroup v1 memory controller is writable), so a task past it ends
            ``OUT_OF_MEMORY``; else, with accounting, Slurm kills it (signal 9) and it ends
            ``FAILED``.
    """

    folder: Path
    env: dict[str, str]
    max_array_size: int
    daemons: list[subprocess.Popen[bytes]] = field(default_factory=list)
    memory_cgroup: bool = False

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

    def release(self, task: str, timeout: float = 60) -> None:
        """Start the requeued array task ``task`` (``1234_5``) now, not after the two minutes
        Slurm holds a requeued task (BeginTime), once the node has let its last start go: sooner,
        slurmd may refuse the launch ("already killed") and the task fails, which Slurm's hold
        is there to prevent."""
        fields = dict(
            item.split("=", 1)
            for item in self.run("scontrol", "-o", "show", "job", task).stdout.split()
            if "=" in item
        )
        job, restarts = fields["JobId"], int(fields["Restarts"])
        log = self.folder / "log" / "slurmd.log"
        deadline = time.monotonic() + timeout
        while log.read_text(errors="replace").count(f"[{job}.batch] done with job") < restarts:
            assert time.monotonic() < deadline, f"the node did not let {task} go"
            time.sleep(0.2)
        time.sleep(2)  # and its revoked credential, which slurmd checks a relaunch against
        released = self.run("scontrol", "update", f"JobId={task}", "StartTime=now")
        assert released.returncode == 0, released.stderr

    def stop(self) -> None:
        """Cancel every job, then stop exactly the daemons this cluster started."""
        self.run("scancel", "--full", f"--user={pwd.getpwuid(os.getuid()).pw_name}")
        deadline = time.monotonic() + 20
        while self.run("squeue", "-h").stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.2)
        # slurmd, slurmctld, then (with accounting) slurmdbd and mariadbd, then munged
        for daemon in reversed(self.daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.memory_cgroup:
            _remove_cgroups(_SLURM_CGROUP)


@contextmanager
def running_cluster(
    cpus: int = 4, max_array_size: int = 4, accounting: bool = False
) -> Iterator[Cluster]:
    """Install (if needed) and start a one-node cluster; stop it afterwards.

    Args:
        cpus: CPUs the node advertises (more than the machine has: array tasks run at once).
        max_array_size: The cluster's ``MaxArraySize``: array indices 0 to this minus 1.
        accounting: Also run slurmdbd on a private MariaDB, so ``sacct`` answers; a task's
            ``--mem`` is then its limit: past it, a memory cgroup's oom-kill ends it
            ``OUT_OF_MEMORY`` where the cgroup v1 memory controller is writable, else Slurm
            kills it and it ends ``FAILED`` (signal 9) (see :attr:`Cluster.memory_cgroup`).

    Raises:
        Unavailable: Slurm cannot be installed or does not start here.
    """
    install(accounting)
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
    storage = _NO_CGROUPS + "AccountingStorageType=accounting_storage/none\n"
    select = "CR_Core"
    # Slurm's cgroup of this node's jobs, made by slurmd: used only where no other slurmd's is
    # there, so that stop() removes only this cluster's.
    memory_cgroup = accounting and _memory_cgroup_writable() and not _SLURM_CGROUP.exists()
    if accounting:
        # Slurm hands a task its --mem as a limit only where it allocates memory; a task
        # without --mem gets its share of the node, so `cpus` of them still run at once.
        select = f"CR_Core_Memory\nDefMemPerCPU={memory // cpus}"
        storage = _NO_CGROUPS.replace(
            "JobAcctGatherType=jobacct_gather/none\n", _ACCOUNTING.format(socket=socket)
        )
        if memory_cgroup:
            storage = storage.replace("TaskPlugin=task/none", "TaskPlugin=task/cgroup")
            (folder / "cgroup.conf").write_text(_CGROUP_CONF)  # read beside SLURM_CONF
        else:
            storage += "JobAcctGatherParams=OverMemoryKill\n"
    conf.write_text(
        f"""\
ClusterName={CLUSTER_NAME}
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
{storage}JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters={select}
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
    cluster = Cluster(folder, env, max_array_size, memory_cgroup=memory_cgroup)
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
        if accounting:
            _start_accounting(cluster, socket)
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


CLUSTER_NAME = "tcwtest"
_DATABASE = "slurm_acct_db"
# With accounting: slurmdbd on localhost (AccountingStoragePass is then the munge socket to reach
# it through), and each task's memory read every second from /proc, for sacct's MaxRSS and,
# without a memory cgroup, for Slurm to kill a task past its --mem (OverMemoryKill).
_ACCOUNTING = """\
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePass={socket}
"""


def _start_accounting(cluster: Cluster, munge_socket: Path) -> None:
    """Start a private MariaDB and slurmdbd on it, and register this cluster (in the order
    slurmctld needs: it reports to slurmdbd from its start)."""
    folder, env, log = cluster.folder, cluster.env, cluster.folder / "log"
    data, db_socket = folder / "mariadb", folder / "mariadb.sock"
    # Its own files and port only (--no-defaults: nothing of /etc/mysql), as root like the rest.
    mariadb = ["--no-defaults", f"--datadir={data}", "--user=root"]
    try:
        installed = subprocess.run(
            [
                "mariadb-install-db",
                *mariadb,
                "--skip-test-db",
                "--auth-root-authentication-method=socket",  # root, through the socket only
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable("mariadb-install-db did not finish within 120 s") from None
    if installed.returncode != 0:
        raise Unavailable(f"mariadb-install-db failed: {installed.stderr.strip()[-600:]}")
    port = _free_port()
    cluster.daemons.append(
        _start(
            [
                "mariadbd",
                *mariadb,
                f"--socket={db_socket}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                f"--pid-file={folder}/mariadb.pid",
                f"--log-error={log}/mariadb.log",
                # A test's database: nothing to keep across a crash of the machine.
                "--innodb-flush-log-at-trx-commit=0",
            ],
            log / "mariadb.out",
            env,
        )
    )

    def sql(statement: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={db_socket}", "-u", "root", "-e", statement],
            capture_output=True,
            text=True,
        )

    _until(lambda: sql("SELECT 1").returncode == 0, "mariadbd did not start", log / "mariadb.log")
    password = secrets.token_hex(12)
    created = sql(
        f"CREATE DATABASE {_DATABASE}; "
        f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
        f"GRANT ALL ON {_DATABASE}.* TO 'slurm'@'127.0.0.1';"
    )
    if created.returncode != 0:
        raise Unavailable(f"cannot create the slurm database: {created.stderr.strip()[-600:]}")
    dbd_conf = folder / "slurmdbd.conf"  # slurmdbd reads it beside SLURM_CONF
    # slurmdbd refuses a slurmdbd.conf that others may read (it holds the password), or that
    # is not its SlurmUser's.
    dbd_conf.touch(mode=0o600)
    dbd_conf.write_text(
        f"""\
AuthType=auth/munge
AuthInfo=socket={munge_socket}
DbdHost=localhost
SlurmUser=root
LogFile={log}/slurmdbd.log
PidFile={folder}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={port}
StorageUser=slurm
StoragePass={password}
StorageLoc={_DATABASE}
"""
    )
    cluster.daemons.append(_start(["slurmdbd", "-D"], log / "dbd.out", env))
    asked: list[subprocess.CompletedProcess[str]] = []

    def answers() -> bool:
        asked.append(cluster.run("sacctmgr", "--noheader", "--parsable2", "list", "cluster"))
        return asked[-1].returncode == 0

    try:
        _until(answers, "slurmdbd did not answer sacctmgr", log / "slurmdbd.log")
    except Unavailable as why:  # sacctmgr's own error says more than slurmdbd's log
        raise Unavailable(f"{why}\nsacctmgr: {asked[-1].stderr.strip()[-400:]}") from None
    # Registered before slurmctld starts, so it reports its jobs from the first one; no
    # AccountingStorageEnforce, so no account or user association is needed.
    added = cluster.run("sacctmgr", "-i", "add", "cluster", CLUSTER_NAME)
    listed = cluster.run(
        "sacctmgr", "--noheader", "--parsable2", "list", "cluster", "format=cluster"
    )
    if CLUSTER_NAME not in listed.stdout.split():
        raise Unavailable(f"sacctmgr did not add the cluster: {added.stdout}{added.stderr}")


# Only a cgroup's limit makes Slurm 22.05 record OUT_OF_MEMORY (task/cgroup reports the kernel's
# oom-kill); only the memory controller is used, so cpuset, devices and freezer stay untouched.
_CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")
_SLURM_CGROUP = _CGROUP_V1_MEMORY / "slurm_localhost"  # slurm_<node name>
_CGROUP_CONF = f"""\
CgroupPlugin=cgroup/v1
CgroupMountpoint={_CGROUP_V1_MEMORY.parent}
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
"""


def _memory_cgroup_writable() -> bool:
    return (_CGROUP_V1_MEMORY / "memory.limit_in_bytes").is_file() and os.access(
        _CGROUP_V1_MEMORY, os.W_OK
    )


def _remove_cgroups(top: Path) -> None:
    """Remove the cgroup ``top`` and those under it, deepest first (a cgroup goes by rmdir)."""
    for folder, _, _ in sorted(os.walk(top), key=lambda found: -len(found[0])):
        with contextlib.suppress(OSError):  # a process left in it, or gone already: leave it
            os.rmdir(folder)


def _free_port() -> int:
    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def cluster_fixture(**options: Any) -> Any:
    """A module-scoped ``cluster`` fixture: :func:`running_cluster` with ``options``, or a skip
    that says why Slurm cannot run here."""

    @pytest.fixture(scope="module")
    def cluster() -> Iterator[Cluster]:
        try:
            with running_cluster(**options) as running:
                yield running
        except Unavailable as why:
            pytest.skip(f"needs a Slurm cluster: {why}")

    return cluster


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait until ``predicate()`` holds, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
